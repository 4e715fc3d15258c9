"""The status page on a production-like cluster: SASL_SSL (SCRAM-SHA-512, a test-time CA) with
only the ACLs ``watcher topics plan`` prints (the session's ``secure_kafka``, see
tests/integration/test_secure_kafka.py).

The page is given the connection ``watcher run`` makes from ``[broker]`` (user ``watcher``, its
password from the environment). Its follower reads the deployment's topics and the incidents
changelog; the Job page answers from its index of ``P.events``; a "Silence similar" click writes
the silence and the action over the same connection. The records are those
tests/integration/ui_deployment.py publishes (as the admin, as the pipeline's stages would).
Over real HTTP; the browser tests drive the pages themselves.
"""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.integration import ui_deployment as U
from tests.integration.harness import unique_prefix, write_config
from tests.integration.test_secure_kafka import NOWHERE, grant
from tests.kafka.legs import SecureLeg
from watcher import events as ev
from watcher.app.kafka import connection
from watcher.app.topics import read_topic
from watcher.config import load_config
from watcher.rules.silence import Silence
from watcher.ui import StatusPage

pytestmark = pytest.mark.timeout(180)

TOKEN = "ui-sasl-token"


async def test_the_page_follows_and_acts_over_sasl_ssl_with_the_plans_acls(
    secure_kafka: SecureLeg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHER_KAFKA_PASSWORD", secure_kafka.password)  # the worker's environment
    prefix = unique_prefix("sec-ui")
    (tmp_path / "rules.yaml").write_text(U.RULES)
    cfg_file = write_config(tmp_path / "w.toml", leg=secure_kafka, prefix=prefix, sim_url=NOWHERE, watches=[],
                            rules=[str(tmp_path / "rules.yaml")], partitions=4)  # fmt: skip
    await grant(secure_kafka, cfg_file, topics=True)  # the topics and ACLs of the plan, as the admin
    cfg = load_config(cfg_file)
    d = U.deployment(prefix, U.now(), app_id=cfg.app.id)
    await U.publish(secure_kafka.conn, cfg, d)
    conn = connection(cfg)
    assert (conn.security_protocol, conn.sasl_username) == ("SASL_SSL", "watcher")
    page = StatusPage(cfg, conn, port=0, token=TOKEN)
    await page.start()
    try:
        await asyncio.wait_for(page.follower.caught_up.wait(), 60)
        assert page.follower.error is None
        async with httpx.AsyncClient(base_url=page.url.rstrip("/")) as client:
            incidents = (await client.get("/incidents")).text
            assert f'data-incident="{html.escape(d.incident.id)}"' in incidents
            job = await client.get("/job", params={"key": d.job_key})
            assert job.status_code == 200 and "RUNNING → FAILED: desktop-failed" in job.text
            assert 'id="events-read"' not in job.text  # from the index the follower built of P.events
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', incidents)
            assert csrf is not None
            form = {"csrf": csrf.group(1), "token": TOKEN, "by": "ana", "incident": d.incident.id, "do": "silence",
                    "hours": "1"}  # fmt: skip
            r = await client.post("/act", data=form, follow_redirects=False)
            assert r.status_code == 303, r.text
            done = html.unescape(r.headers["location"])
            for text in (incidents, job.text, r.text, done):
                assert secure_kafka.password not in text
    finally:
        await page.stop()
    silences = await read_topic(secure_kafka.conn, f"{prefix}.silences",
                                lambda _k, v: msgspec.json.decode(v, type=Silence))  # fmt: skip
    actions = await read_topic(secure_kafka.conn, f"{prefix}.actions", lambda _k, v: ev.decode(v))
    assert [(s.match, s.created_by, s.origin) for s in silences] == [
        ('rule == "desktop-failed" && job_type == "createDesktops"', "ana", "ui")]
    assert [(a.incident, a.kind, a.by, a.via, a.silence_id) for a in actions] == [
        (d.incident.id, "silence", "ana", "ui", silences[0].id)]  # type: ignore[union-attr]
