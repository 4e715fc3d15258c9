"""Mail about one incident threads: Message-ID / In-Reply-To / References (and the subject),
checked in the headers that arrive at a real SMTP server."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import timedelta

import msgspec
import pytest

from tests.fakes.incidents import incident, note
from watcher.notify.channel import Channel
from watcher.notify.config import NotifyTarget
from watcher.notify.mail import MailChannel, with_message_id
from watcher.sinks import Mail, Mailbox, free_port

TITLE = "[FAILED] createDesktops in project 0bec… (cn-north-4)"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox().start()
    yield box
    box.stop()


def wait_for_mail(box: Mailbox, count: int, timeout: float = 10.0) -> list[Mail]:
    deadline = time.monotonic() + timeout
    while len(box.mails) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(box.mails) == count, f"{len(box.mails)} mails, expected {count}"
    return box.mails


async def test_mail_about_one_incident_threads(mailbox: Mailbox) -> None:
    target = NotifyTarget(url=mailbox.url(sender="watcher@alerts.example.com"), tags=("ops",))
    ch = MailChannel(target)
    assert isinstance(ch, Channel) and not ch.editable and ch.domain == "alerts.example.com"
    inc = incident(2)
    digest = hashlib.sha256(f"{inc.id}\x001".encode()).hexdigest()[:32]
    root = f"<watcher.{digest}@alerts.example.com>"
    resolved = msgspec.structs.replace(inc, state="resolved", resolved_at=inc.opened_at + timedelta(minutes=12))
    sends = [note("open", inc, seq=1), note("update", inc, change="desk-02 FAILED", seq=2)]
    results = [await ch.send(n, None) for n in sends]
    # Another worker, its own channel object: computes the same ids.
    results.append(await MailChannel(target).send(note("resolve", resolved, change="all jobs recovered", seq=3), None))
    assert [(r.ok, r.reason, r.ref) for r in results] == [(True, "ok", None)] * 3
    mails = wait_for_mail(mailbox, 3)
    heads = [{h: m.message.get_all(h) for h in ("Message-ID", "In-Reply-To", "References", "Thread-Topic")}
             for m in mails]
    assert heads == [
        {"Message-ID": [root], "In-Reply-To": None, "References": None, "Thread-Topic": [TITLE]},
        {"Message-ID": [f"<watcher.{digest}.2@alerts.example.com>"], "In-Reply-To": [root], "References": [root],
         "Thread-Topic": [TITLE]},
        {"Message-ID": [f"<watcher.{digest}.3@alerts.example.com>"], "In-Reply-To": [root], "References": [root],
         "Thread-Topic": [TITLE]},
    ]
    assert [m.subject for m in mails] == [TITLE, f"Re: {TITLE}", f"Re: {TITLE}"]
    # The opening is the alert's own text, as every mail target gets it; later mails say what changed first.
    assert [m.text.splitlines()[0] for m in mails] == ["Job:      createDesktops (workspace)", "Updated: desk-02 FAILED",
                                                        "Resolved: all jobs recovered"]  # fmt: skip
    assert all(m.rcpt_tos == ["oncall@example.com"] for m in mails)
    # A new episode is a new thread.
    again = await ch.send(note("open", msgspec.structs.replace(inc, episode=2), seq=1), None)
    assert again.ok
    fourth = wait_for_mail(mailbox, 4)[3]
    assert fourth.message["Message-ID"] not in {root} and fourth.message["In-Reply-To"] is None


async def test_mail_failures_are_classified() -> None:
    ch = MailChannel(NotifyTarget(url=f"mailto://u:Secr3tPassw0rd@127.0.0.1:{free_port()}?from=w@example.com"
                                      f"&to=o@example.com&secure=no"))  # fmt: skip
    r = await ch.send(note("open", incident()), None)
    assert (r.ok, r.reason, r.retryable) == (False, "connection", True)
    assert "Secr3tPassw0rd" not in repr(r) + repr(ch)


def test_message_id_is_replaced_not_added() -> None:
    text = "Subject: x\nMessage-ID: <123.456@h>\nDate: now\n\nbody\nMessage-ID: <in body>\n"
    assert with_message_id(text, "<ours@d>") == "Subject: x\nMessage-ID: <ours@d>\nDate: now\n\nbody\nMessage-ID: <in body>\n"
    folded = "Subject: x\nMessage-ID:\n <123.456@h>\nDate: now\n\nbody"
    assert with_message_id(folded, "<ours@d>") == "Subject: x\nMessage-ID: <ours@d>\nDate: now\n\nbody"
    assert with_message_id("Subject: x\n\nbody", "<ours@d>") == "Subject: x\nMessage-ID: <ours@d>\n\nbody"
