"""docker-compose.yml, the Dockerfile and deploy/*.toml agree with each other and with the code.

No Docker here: the file is parsed and every piece it names is checked against the repo —
commands against the CLI parser, mounts against files, configs against the config loader.
"""

from __future__ import annotations

import base64
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from watcher.cli import build_parser
from watcher.config import check_notify_targets, load_config
from watcher.rules.check import check_files

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
WATCHER_SERVICES = ("watcher", "simulator", "watcher-demo")  # the services built from the Dockerfile


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, Any]:
    return compose()["services"]


def command_of(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def env_of(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return {k: v for k, _, v in (e.partition("=") if "=" in e else (e, "", None) for e in env)}
    return {k: None if v is None else str(v) for k, v in env.items()}


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of every bind mount (``./x:/y[:ro]``)."""
    out = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out.append((ROOT / source, target))
    return out


def mounted_configs() -> list[tuple[str, Path]]:
    """(service, host file) for each config mounted at the path its `run --config` names."""
    out = []
    for name, svc in services().items():
        cmd = command_of(svc) if "command" in svc else []
        if cmd[:1] == ["run"]:
            target = cmd[cmd.index("--config") + 1]
            hosts = [src for src, dst in bind_mounts(svc) if dst == target]
            assert len(hosts) == 1, f"{name}: nothing mounted at {target}"
            out.append((name, hosts[0]))
    return out


def dockerfile_instruction(name: str) -> str:
    lines = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.upper().startswith(name + " ")]
    assert lines, f"Dockerfile has no {name}"
    return lines[-1].split(" ", 1)[1]


# -- the services ---------------------------------------------------------------------------


def test_services_and_profiles() -> None:
    svcs = services()
    assert set(svcs) == {"kafka", "watcher", "simulator", "mailpit", "watcher-demo"}
    profiles = {name: svc.get("profiles", []) for name, svc in svcs.items()}
    assert profiles == {"kafka": [], "watcher": [], "simulator": ["demo"], "mailpit": ["demo"], "watcher-demo": ["demo"]}


def test_kafka_is_single_node_kraft() -> None:
    kafka = services()["kafka"]
    assert re.fullmatch(r"apache/kafka:(3\.9\.\d+|4\.\d+\.\d+)", kafka["image"])
    env = env_of(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    listeners = dict(item.split("://") for item in str(env["KAFKA_LISTENERS"]).split(","))
    assert listeners["PLAINTEXT"] == ":9092" and listeners["CONTROLLER"] == ":9093"
    assert "PLAINTEXT://kafka:9092" in str(env["KAFKA_ADVERTISED_LISTENERS"]).split(",")
    protocols = dict(item.split(":") for item in str(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]).split(","))
    assert set(listeners) <= set(protocols)
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env[key] == "1", key
    # KRaft wants a base64url UUID: 16 bytes.
    assert len(base64.urlsafe_b64decode(str(env["CLUSTER_ID"]) + "==")) == 16
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_watcher_services_share_the_image_and_wait_for_kafka() -> None:
    for name in WATCHER_SERVICES:
        svc = services()[name]
        assert svc["build"] == ".", name
        assert svc["depends_on"]["kafka"]["condition"] == "service_healthy", name


def test_real_watcher_takes_secrets_from_the_host_env_only() -> None:
    env = env_of(services()["watcher"])
    assert {"HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"} <= set(env)
    assert all(value is None for value in env.values()), "pass-through only: no value in the file"


def test_demo_uses_the_simulators_throwaway_keys() -> None:
    from watcher.simulator import DEFAULT_AK, DEFAULT_SK

    env = env_of(services()["watcher-demo"])
    assert (env["HUAWEICLOUD_SDK_AK"], env["HUAWEICLOUD_SDK_SK"]) == (DEFAULT_AK, DEFAULT_SK)
    deps = services()["watcher-demo"]["depends_on"]
    assert {"kafka", "simulator", "mailpit"} <= set(deps)


def test_simulator_listens_beyond_localhost_on_8080() -> None:
    args = build_parser().parse_args(command_of(services()["simulator"]))
    assert (args.host, args.port) == ("0.0.0.0", 8080)


def test_mailpit_smtp_and_ui() -> None:
    mailpit = services()["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit:")
    ports = [p.rsplit(":", 1)[-1] for p in mailpit["ports"]]
    assert {"1025", "8025"} <= set(ports)


# -- commands, files, configs ----------------------------------------------------------------


@pytest.mark.parametrize("name", WATCHER_SERVICES)
def test_command_is_accepted_by_the_cli(name: str) -> None:
    args = build_parser().parse_args(command_of(services()[name]))
    assert callable(args.func)


@pytest.mark.parametrize("name", WATCHER_SERVICES)
def test_bind_mounts_exist(name: str) -> None:
    mounts = bind_mounts(services()[name])
    assert mounts
    for source, _ in mounts:
        assert source.exists(), f"{name} mounts {source}, which does not exist"


def test_simulator_scenario_is_mounted() -> None:
    svc = services()["simulator"]
    args = build_parser().parse_args(command_of(svc))
    dirs = {dst: src for src, dst in bind_mounts(svc)}
    scenario = Path(args.scenario)
    assert scenario.parent.as_posix() in dirs
    assert (dirs[scenario.parent.as_posix()] / scenario.name).is_file()


def test_every_run_service_mounts_a_config_that_loads() -> None:
    configs = mounted_configs()
    assert {name for name, _ in configs} == {"watcher", "watcher-demo"}
    for name, path in configs:
        cfg = load_config(path)  # decodes and validates: no secret needed, none in the file
        check_notify_targets(cfg)
        assert cfg.broker.url == "kafka://kafka:9092", name
        text = path.read_text()
        assert not re.search(r"(?im)^\s*(ak|sk|password|secret|token)\s*=", text), f"{path} holds a secret"


@pytest.mark.parametrize("service", ["watcher", "watcher-demo"])
def test_config_rule_files_are_mounted_where_the_config_names_them(service: str) -> None:
    """Rule paths are relative to the config file: inside the container they must land on
    a mount of the very file the host-side `config check` reads."""
    import os

    svc = services()[service]
    cmd = command_of(svc)
    inside_config = Path(cmd[cmd.index("--config") + 1])
    host_config = dict(mounted_configs())[service]
    mounts = {Path(dst): src for src, dst in bind_mounts(svc)}
    raw = tomllib.loads(host_config.read_text())["rules"]["files"]
    on_host = load_config(host_config).rules.files
    assert raw and len(raw) == len(on_host)
    for rel, host_file in zip(raw, on_host, strict=True):
        inside = Path(os.path.normpath(inside_config.parent / rel))
        mount = next((m for m in mounts if inside == m or inside.is_relative_to(m)), None)
        assert mount is not None, f"{service}: {rel} resolves to {inside}, which nothing is mounted at"
        assert (mounts[mount] / inside.relative_to(mount)).resolve() == Path(host_file).resolve()
        assert check_files([host_file]) == [], f"{host_file} does not check"


def test_demo_config_polls_the_simulator_and_mails_mailpit() -> None:
    cfg = load_config(dict(mounted_configs())["watcher-demo"])
    assert set(cfg.cloud.endpoints.values()) == {"http://simulator:8080"}
    assert cfg.broker.topic_prefix != load_config(dict(mounted_configs())["watcher"]).broker.topic_prefix
    assert cfg.app.id != "watcher"  # not the real worker's consumer group
    assert any(t.url.startswith("mailto://mailpit:1025") for t in cfg.notify.targets)


def test_demo_config_tracks_the_demo_scenarios_by_id_jobs() -> None:
    from watcher.simulator.scenario import load_scenario
    from watcher.simulator.server import demo_scenario_path
    from watcher.simulator.state import Simulator

    sim = Simulator(load_scenario(demo_scenario_path()))
    cfg = load_config(dict(mounted_configs())["watcher-demo"])
    for source in ("evs", "appjob"):
        configured = {(p, j) for w in cfg.watch if w.source == source for p in w.projects for j in w.job_ids}
        expected = {(p, j) for p in sim.projects for j in sim.job_ids(source, p)}
        assert configured == expected, source
    assert {p for w in cfg.watch for p in w.projects} == set(sim.projects)


# -- the image -----------------------------------------------------------------------------


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"watcher": "watcher.cli:main"}
    assert dockerfile_instruction("ENTRYPOINT") == '["watcher"]'
    assert dockerfile_instruction("FROM").startswith("python:3.11-slim")
    assert "pip install ." in (ROOT / "Dockerfile").read_text()


def test_dockerignore_keeps_what_the_image_needs() -> None:
    ignored = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and ln[0] != "#"}
    copied = re.findall(r"^COPY (?:--\S+ )*(.+?) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    for sources in copied:
        for source in sources.split():
            assert source not in ignored, f"{source} is COPYed but .dockerignore drops it"
    assert {".venv", ".git"} <= ignored


def test_scenarios_ship_in_the_wheel() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "scenarios/*.yaml" in data["watcher.simulator"]
