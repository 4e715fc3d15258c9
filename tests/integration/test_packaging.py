"""What `pip install .` ships, and what `make venv`'s editable install prints.

Issue 12, items 8 and 10: the wheel lacked the demo's rules (`pip install .` then
`watcher demo` failed), and the editable install printed a dozen lines of setuptools'
BuildBackendWarning before every first `make demo`.
"""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=280)


def test_the_wheel_ships_what_the_demo_and_compose_need(tmp_path: Path) -> None:
    out = pip("wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT))
    assert out.returncode == 0, out.stderr
    [wheel] = tmp_path.glob("watcher-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"watcher/rules/demo.yaml", "watcher/simulator/scenarios/demo.yaml",
            "watcher/simulator/scenarios/small.yaml"} <= names
    assert not any(n.startswith(("tests/", "bench/", "rules/")) for n in names)
    from watcher.demo import DEMO_RULES

    assert DEMO_RULES == ROOT / "watcher" / "rules" / "demo.yaml"  # inside the package, found wherever it is installed


def test_the_editable_install_prints_no_build_backend_warning(tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    out = pip("--python", str(target / "bin" / "python"), "install", "--no-deps", "-q", "-e", str(ROOT))
    assert out.returncode == 0, out.stderr
    assert "BuildBackendWarning" not in out.stdout + out.stderr
    assert (out.stdout, out.stderr) == ("", "")
