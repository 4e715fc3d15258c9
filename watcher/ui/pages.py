"""The status page's routes: five pages to read, a preview, and the forms that act.

Reading: ``/`` (overview), ``/incidents``, ``/job?key=…``, ``/silences``, ``/search?q=…&kind=…``
and ``/silences/preview?match=…`` (JSON: how many alerts of the last 24 h a match would mute).
Acting (POST, token and CSRF checked first by :class:`~watcher.ui.security.Guard`):
``/act`` (``do`` = ack | unack | snooze | silence | replay, on ``incident``), ``/silences``
(create), ``/silences/expire``. A refused or failed action is a page that says why; a done one
redirects back with one line saying what was done.

The Job page answers from the view too: the job's events from its index of the last 24 h of
``P.events`` (:meth:`~watcher.ui.view.TopicView.job_events`), the rest of its story from the
alerts, decisions, notifications and marks it keeps, told by
:func:`watcher.app.explain.story_lines`, the CLI's own story. Only a job the index cannot answer
for (older than the view keeps, some of its events pushed out, or the page still catching up)
has its events read from ``P.events`` whole, as ``watcher explain`` does (cached for
:data:`EVENTS_TTL`).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import msgspec
from aiohttp import web

from watcher import events as ev
from watcher.app import explain
from watcher.app.topics import read_topic
from watcher.errors import RuleError, WatcherError
from watcher.rules.engine import RuleSet, load_book
from watcher.rules.silence import Silence, compiled
from watcher.ui import actions, present
from watcher.ui.security import Refused
from watcher.ui.view import dead_key

if TYPE_CHECKING:
    from watcher.ui.server import StatusPage

EVENTS_TTL = 2.0  # seconds a job's events, read from P.events, are reused by the Job page
MAX_HOURS = 24 * 7  # the longest snooze or "silence similar" the forms accept


def _now() -> datetime:
    return datetime.now(UTC)


class Pages:
    """The handlers of one :class:`~watcher.ui.server.StatusPage`."""

    def __init__(self, page: StatusPage) -> None:
        self.page = page
        self._events: dict[str, tuple[float, list[ev.JobEvent]]] = {}
        self.reads = 0  # Job pages whose events came from P.events, not the view: the benchmark counts them
        self._rules: tuple[tuple[Any, ...], RuleSet, list[Silence], str] | None = None

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.overview)
        router.add_get("/incidents", self.incidents)
        router.add_get("/job", self.job)
        router.add_get("/silences", self.silences)
        router.add_get("/silences/preview", self.preview)
        router.add_get("/search", self.search)
        router.add_post("/act", self.act)
        router.add_post("/silences", self.create_silence)
        router.add_post("/silences/expire", self.expire_silence)

    # -- rendering ------------------------------------------------------------------------------

    def render(self, request: web.Request, template: str, status: int = 200, **ctx: Any) -> web.Response:
        p = self.page
        html = p.env.get_template(template).render(
            csrf=p.guard.csrf_for(request), writable=p.guard.writable, done=request.query.get("done", "")[:300],
            now=_now(), version=p.view.version, prefix=p.config.broker.topic_prefix, follower_error=p.follower.error,
            caught_up=p.caught_up, path=request.path_qs, **ctx,
        )  # fmt: skip
        return web.Response(text=html, status=status, content_type="text/html")

    def rules(self) -> tuple[RuleSet, list[Silence], str]:
        """The config's rule files (reloaded when one changes); on a load error, none and the error."""
        files = list(self.page.config.rules.files)
        stamp = tuple((f, Path(f).stat().st_mtime if Path(f).exists() else None) for f in files)
        if self._rules is None or self._rules[0] != stamp:
            try:
                rules, from_files = load_book(files)
                self._rules = (stamp, rules, from_files, "")
            except WatcherError as e:
                self._rules = (stamp, RuleSet([]), [], str(e))
        return self._rules[1], self._rules[2], self._rules[3]

    # -- reading --------------------------------------------------------------------------------

    async def overview(self, request: web.Request) -> web.Response:
        now = _now()
        return self.render(request, "overview.html", page="overview",
                           o=present.overview(self.page.view, self.page.config.targets(), now))  # fmt: skip

    async def incidents(self, request: web.Request) -> web.Response:
        return self.render(request, "incidents.html", page="incidents", i=present.incidents(self.page.view, _now()),
                           states=present.STATES)  # fmt: skip

    async def job(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "").strip()
        if not key:
            return self.render(request, "job.html", page="job", key="", lines=[], rule_error="", latest=None)
        try:
            events, read = await self.events_of(key)
        except WatcherError as e:
            return self.render(request, "error.html", status=502, page="job", title="Job", message=str(e))
        view = self.page.view
        alerts = view.alerts.get(f"j:{key}")
        messages = [a for k, d in view.alerts.by.items() if k.startswith("g:") for a in d]
        # Notifications of every incident the job's alerts opened or updated: the story picks its own.
        notes = [n for i in dict.fromkeys(a.incident for a in alerts if a.incident)
                 for n in view.notifications.get(f"i:{i}")] or view.notifications.get(f"j:{key}")  # fmt: skip
        keys = {a.key for a in alerts} | {a.key for a in messages} | {n.key for n in notes}
        keys |= {a.key for a in view.grouped.get(f"j:{key}")} | {d.alert.key for d in view.decisions.get(f"j:{key}")}
        story = explain.collect(key, events, [*alerts, *messages], view.grouped.get(f"j:{key}"),
                                view.decisions.get(f"j:{key}"), view.marks_of(keys), notes)  # fmt: skip
        rules, _, rule_error = self.rules()
        lines = explain.story_lines(story, self.page.config.broker.topic_prefix, rules)
        incidents = sorted({a.incident for a in alerts if a.incident} & set(view.incidents))
        latest = max(events, key=lambda e: e.observed_at) if events else None
        return self.render(request, "job.html", page="job", key=key, lines=lines, rule_error=rule_error,
                           incidents=incidents, latest=latest, read=read)  # fmt: skip

    async def events_of(self, key: str) -> tuple[list[ev.JobEvent], bool]:
        """The job's events, and whether they were read from the topic (not from the view's index)."""
        if self.page.caught_up:
            events = self.page.view.job_events(key)
            if events is not None:
                return events, False
        self.reads += 1
        hit = self._events.get(key)
        if hit is not None and time.monotonic() - hit[0] < EVENTS_TTL:
            return hit[1], True

        def mine(_k: bytes | None, v: bytes | None) -> ev.JobEvent | None:
            if not v or key.encode() not in v:  # most records are other jobs': skip them undecoded
                return None
            try:
                rec = ev.decode(v)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return None
            return rec if isinstance(rec, ev.JobEvent) and rec.job_key == key else None

        events = await read_topic(self.page.conn, f"{self.page.config.broker.topic_prefix}.events", mine,
                                  idle=0.3)  # fmt: skip
        if len(self._events) > 100:
            self._events.clear()
        self._events[key] = (time.monotonic(), events)
        return events, True

    async def silences(self, request: web.Request) -> web.Response:
        _, from_files, rule_error = self.rules()
        now = _now()
        return self.render(request, "silences.html", page="silences", rule_error=rule_error,
                           s=present.silences(self.page.view, from_files, now), kept=len(self.page.view.alerts),
                           match=request.query.get("match", ""))  # fmt: skip

    async def preview(self, request: web.Request) -> web.Response:
        match = request.query.get("match", "").strip()
        if not match:
            return web.json_response({"count": None, "error": None})
        try:
            compiled(match)
        except RuleError as e:
            return web.json_response({"count": None, "error": str(e)})
        n = await asyncio.to_thread(present.would_match, self.page.view, match, _now())
        return web.json_response({"count": n, "error": None, "of": len(self.page.view.alerts)})

    async def search(self, request: web.Request) -> web.Response:
        q, kind = request.query.get("q", "")[:200], request.query.get("kind", "any")
        if kind not in present.SEARCH_KINDS:
            kind = "any"
        return self.render(request, "search.html", page="search", q=q, kind=kind, kinds=present.SEARCH_KINDS,
                           found=present.search(self.page.view, q, kind))  # fmt: skip

    # -- acting ---------------------------------------------------------------------------------

    async def _form(self, request: web.Request) -> dict[str, str]:
        data = await request.post()
        return {k: v for k, v in data.items() if isinstance(v, str)}

    def _back(self, form: dict[str, str], default: str, done: str) -> web.Response:
        back = form.get("back", "")
        if not back.startswith("/") or back.startswith("//") or "\\" in back:  # local paths only
            back = default
        path, _, fragment = back.partition("#")
        path = path.split("?", 1)[0]
        raise web.HTTPSeeOther(f"{path}?{urlencode({'done': done})}" + (f"#{quote(fragment)}" if fragment else ""))

    def _refused(self, request: web.Request, reason: str) -> web.Response:
        return self.render(request, "refused.html", status=403, page="", reason=reason)

    def _failed(self, request: web.Request, message: str, status: int = 400) -> web.Response:
        return self.render(request, "error.html", status=status, page="", title="Not done", message=message)

    @staticmethod
    def _by(form: dict[str, str]) -> str:
        return (form.get("by", "").strip() or "ui")[:64]

    @staticmethod
    def _hours(form: dict[str, str], default: float) -> float:
        try:
            hours = float(form.get("hours", default))
        except ValueError:
            return default
        return min(max(hours, 0.05), MAX_HOURS)

    async def act(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        try:
            self.page.guard.check(request, form)
        except Refused as e:
            return self._refused(request, e.reason)
        what, iid = form.get("do", ""), form.get("incident", "")
        incident = self.page.view.incidents.get(iid)
        if incident is None:
            return self._failed(request, f"no incident {iid!r} on the page's view: nothing was changed", 404)
        config, conn, by, now = self.page.config, self.page.conn, self._by(form), _now()
        try:
            if what in ("ack", "unack"):
                await actions.publish_action(config, conn, actions.new_action(iid, what, by, now))  # type: ignore[arg-type]
                done = f"{'acknowledged' if what == 'ack' else 'unacknowledged'} {iid}"
            elif what == "snooze":
                action = await actions.snooze(config, conn, iid, by, self._hours(form, 1), now)
                done = f"snoozed {iid} until {present.stamp(action.until)}"
            elif what == "silence":
                silence = await actions.silence_similar(config, conn, incident, by, self._hours(form, 4), now)
                done = f"silence {silence.id} created: {silence.match} until {present.stamp(silence.ends)}"
            elif what == "replay":
                keys = sorted({dead_key(d) for d in self.page.view.dead.get(f"i:{iid}")})
                n = await actions.replay(config, conn, keys)
                done = f"replayed {n} dead letter(s) of {iid}"
            else:
                return self._failed(request, f"unknown action {what!r}: nothing was changed")
        except WatcherError as e:
            return self._failed(request, str(e), 502)
        return self._back(form, "/incidents", done)

    async def create_silence(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        try:
            self.page.guard.check(request, form)
        except Refused as e:
            return self._refused(request, e.reason)
        match = form.get("match", "").strip()
        if not match:
            return self._failed(request, "a silence needs a match expression: nothing was changed")
        try:
            silence = await actions.create_silence(self.page.config, self.page.conn, match,
                                                   form.get("for", "").strip() or None, form.get("comment", "")[:500],
                                                   self._by(form), _now())  # fmt: skip
        except (WatcherError, ValueError) as e:
            return self._failed(request, f"the silence was not created: {e}", 502 if not isinstance(
                e, RuleError | ValueError) else 400)  # fmt: skip
        return self._back(form, "/silences", f"silence {silence.id} created: {silence.match}")

    async def expire_silence(self, request: web.Request) -> web.Response:
        form = await self._form(request)
        try:
            self.page.guard.check(request, form)
        except Refused as e:
            return self._refused(request, e.reason)
        sid = form.get("id", "")
        silence = self.page.view.silences.get(sid)
        if silence is None:
            return self._failed(request, f"no run-time silence {sid!r}: nothing was changed", 404)
        try:
            await actions.expire_silence(self.page.config, self.page.conn, silence, _now())
        except WatcherError as e:
            return self._failed(request, str(e), 502)
        return self._back(form, "/silences", f"silence {sid} expired")
