"""``watcher rules test`` and ``watcher explain``: read an events file, dry-run it, print the log.

The events file is JSON Lines, one :class:`~watcher.events.JobEvent` per line (the records
of the events topic; the ``"type": "job"`` tag may be left out); blank lines and lines
starting with ``#`` are skipped. Nothing is sent: the run is :class:`~watcher.rules.pipeline.DryRun`.
Exit codes: 0 ok, 1 a rule file has errors, 2 the events file is unreadable or invalid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import msgspec

from watcher.errors import RuleError, WatcherError
from watcher.events import JobEvent
from watcher.rules.check import check_files
from watcher.rules.engine import load_book
from watcher.rules.pipeline import DryRun, Entry, explain
from watcher.rules.templates import utc

EXIT_OK, EXIT_RULES, EXIT_EVENTS = 0, 1, 2

_decoder = msgspec.json.Decoder(JobEvent)


def read_events(path: str | Path) -> list[JobEvent]:
    """Decode a JSON Lines events file; a bad line is a WatcherError naming file:line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise WatcherError(f"{path}: cannot read events file: {e}") from None
    events = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            events.append(_decoder.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise WatcherError(f"{path}:{n}: not a job event: {e}") from None
    return events


def dry_run(rule_paths: Sequence[str | Path], events_path: str | Path) -> DryRun:
    """Load rules (and file silences) and run the events file through them."""
    rules, silences = load_book(list(rule_paths))
    return DryRun(rules, silences).run(read_events(events_path))


def _load(rule_paths: Sequence[str | Path], events_path: str | Path) -> tuple[int, DryRun | None, list[str]]:
    errors = check_files(list(rule_paths))
    if errors:
        return EXIT_RULES, None, [str(e) for e in errors]
    try:
        return EXIT_OK, dry_run(rule_paths, events_path), []
    except RuleError as e:
        return EXIT_RULES, None, [str(e)]
    except WatcherError as e:
        return EXIT_EVENTS, None, [str(e)]


def run_test(rule_paths: Sequence[str | Path], events_path: str | Path, *, as_json: bool = False) -> tuple[int, str]:
    """For the CLI: (exit code, text to print). Errors are the text when the code is not 0."""
    code, run, errors = _load(rule_paths, events_path)
    if run is None:
        return code, "\n".join(errors)
    if as_json:
        out = {"log": run.log, "messages": run.messages, "summary": summary(run)}
        return EXIT_OK, msgspec.json.format(msgspec.json.encode(out)).decode()
    return EXIT_OK, format_text(run)


def run_explain(job_key: str, rule_paths: Sequence[str | Path], events_path: str | Path) -> tuple[int, str]:
    code, run, errors = _load(rule_paths, events_path)
    if run is None:
        return code, "\n".join(errors)
    return EXIT_OK, explain(job_key, run.log)


def summary(run: DryRun) -> dict[str, int]:
    results = Counter(o.result for e in run.log for o in e.alerts)
    return {
        "events": sum(e.trigger == "event" for e in run.log),
        "alerts": sum(len(e.alerts) for e in run.log if e.trigger != "flush"),
        **{r: results[r] for r in ("sent", "grouped", "deduplicated", "silenced", "inhibited")},
        "messages": len(run.messages),
    }


def format_text(run: DryRun) -> str:
    """The decision log, then every message in full, then a summary line."""
    lines = ["== Decisions"]
    for entry in run.log:
        lines += _entry_lines(entry)
    lines.append(f"== Messages ({len(run.messages)})")
    for i, m in enumerate(run.messages, 1):
        a = m.alert
        route = ", ".join(a.tags) or "default route"
        count = f" ({a.count} alerts)" if a.count > 1 else ""
        lines += [f"-- {i}. {utc(m.at)} [{a.severity}{'' if a.kind == 'firing' else ', ' + a.kind}] → {route}{count}",
                  a.title, a.body, ""]  # fmt: skip
    s = summary(run)
    lines.append(
        f"{s['events']} events, {s['alerts']} alerts: {s['sent']} sent, {s['grouped']} grouped, "
        f"{s['deduplicated']} deduplicated, {s['silenced']} silenced, {s['inhibited']} inhibited; "
        f"{s['messages']} messages (nothing was sent)"
    )
    return "\n".join(lines)


def _entry_lines(entry: Entry) -> list[str]:
    when = utc(entry.at)
    if entry.trigger == "event":
        head = f"{when}  {entry.job_key}  {entry.change}: {', '.join(entry.matched) or 'no rule matched'}"
    elif entry.trigger == "timer":
        head = f"{when}  {entry.job_key}  timer"
    else:
        head = f"{when}  group send" + (f": {entry.message} ({len(entry.members)} alerts)" if entry.message else "")
    out = [head, *(f"    {n}" for n in entry.notes)]
    for o in entry.alerts:
        detail = o.group if o.result == "grouped" else o.reason
        out.append(f"    {o.rule} ({o.kind}) {o.key} → {o.result}" + (f": {detail}" if detail else ""))
    return out
