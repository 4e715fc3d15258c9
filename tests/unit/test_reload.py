"""Hot reload: a valid change installs new rules, an invalid one keeps the last good ones."""

from __future__ import annotations

import os
from pathlib import Path

from watcher.app.reload import RuleReloader

GOOD = "rules:\n  - name: a\n    when: FAILED\n"
BETTER = "rules:\n  - name: a\n    when: FAILED\n  - name: b\n    when: 'evs: FAIL'\n"
BAD = "rules:\n  - name: a\n    when: FIALED\n"


def touch(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + bump))


def test_reload_valid_then_refuse_invalid(tmp_path: Path, caplog):
    f = tmp_path / "r.yaml"
    f.write_text(GOOD)
    installed: list[list[str]] = []
    r = RuleReloader([str(tmp_path)], lambda rs, sil: installed.append([x.name for x in rs.rules]))
    assert r.check() is None  # nothing changed
    touch(f, BETTER, 1)
    assert r.check(wait=30) is True
    assert installed == [["a", "b"]]
    touch(f, BAD, 2)
    assert r.check(wait=30) is False
    assert installed == [["a", "b"]]  # the last good rules stay
    assert r.last_error is not None and r.last_error.startswith(f"{f}:3:")
    assert any("keeping the last good rules" in m for m in caplog.messages)
    assert r.check() is None  # the same bad file is reported once, not every cycle
    touch(f, GOOD, 3)
    assert r.check(wait=30) is True and installed[-1] == ["a"]
