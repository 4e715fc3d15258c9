"""Prometheus metrics of one worker, in a registry of its own (never the global default one).

Each :class:`Metrics` owns a ``CollectorRegistry``, so several workers (or tests) in one
process never collide. Label values are safe to publish by construction: source and api
names, HTTP status codes, rule names, outcomes, target ids (source/region/project) and
notification target ids, which are *masked* URLs (see :mod:`watcher.notify.redact`).
Never pass a raw URL, a header or an error text as a label.

Metric families (``_total`` is appended to counters by the client library)::

    watcher_cloud_requests_total{api,code}                 HTTP requests to the cloud, by answer
    watcher_polls_total{source,result}                     polls that fetched (ok / error)
    watcher_poll_duration_seconds{source}                  one fetch, retries included
    watcher_last_successful_poll_timestamp_seconds{target}
    watcher_seconds_since_last_successful_poll{target}     computed at scrape time
    watcher_target_consecutive_failures{target}
    watcher_target_blind{target}                           1 while the watcher-blind alert is open
    watcher_events_published_total
    watcher_rules_fired_total{rule,severity}
    watcher_alerts_total{outcome}                          sent, deduplicated, silenced, inhibited, grouped,
                                                           dead_lettered
    watcher_notifications_total{target,result}             per-target sends (ok, or the failure reason)
    watcher_delivery_duration_seconds{outcome}             one alert, retries included
    watcher_self_health_alerts_total{kind}                 firing / resolved watcher-blind notices
    watcher_heartbeats_total{result}
    watcher_consumer_lag{topic,partition}                  highwater - committed, at scrape time
    watcher_ready                                          1 once /readyz would answer 200
    watcher_recovery_stalled_seconds                       table recovery without progress (/healthz 503 past 120 s)
    watcher_outage_buffer_events                           changes held while the broker is unreachable
    watcher_rule_eval_errors_total{rule}                   CEL evaluations that failed (the rule did not match)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Alert outcomes always exported (at 0 until they happen), so dashboards see the series.
ALERT_OUTCOMES = ("sent", "deduplicated", "silenced", "inhibited", "grouped", "dead_lettered", "paged", "merged")

_POLL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

#: (topic, partition, lag) rows, read from the Faust consumer at scrape time.
LagSource = Callable[[], Iterable[tuple[str, int, int]]]


class _Live(Collector):
    """Values that only make sense at scrape time: ages and consumer lag."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        age = GaugeMetricFamily(
            "watcher_seconds_since_last_successful_poll",
            "Seconds since the target was last polled successfully by this worker.",
            labels=["target"],
        )
        for target, ts in sorted(self.metrics.last_ok.items()):
            age.add_metric([target], max(0.0, now - ts))
        yield age
        lag = GaugeMetricFamily(
            "watcher_consumer_lag", "Records not yet processed, per assigned partition.", labels=["topic", "partition"]
        )
        source = self.metrics.lag_source
        if source is not None:
            try:
                rows = list(source())
            except Exception:  # a scrape must never fail because the consumer is mid-rebalance
                rows = []
            for topic, partition, value in sorted(rows):
                lag.add_metric([topic, str(partition)], value)
        yield lag
        errors = CounterMetricFamily(
            "watcher_rule_eval_errors", "CEL evaluations of a rule that failed on an event (it did not match).",
            labels=["rule"],
        )
        for rule, n in sorted(self.metrics.eval_errors.totals().items()):
            errors.add_metric([rule], n)
        yield errors


class EvalErrors:
    """Evaluation errors per rule since the worker started, across rule reloads.

    Each rule set counts its own (``RuleSet.eval_errors``) and a reload installs a new one, so
    this keeps what the replaced sets counted: at each scrape it reads the set in force now,
    and the one before it one last time. ``source`` returns the rule set in force.
    """

    def __init__(self, source: Callable[[], Any] | None = None) -> None:
        self.source = source
        self._current: Any = None
        self._before: dict[str, int] = {}

    def totals(self) -> dict[str, int]:
        current = self.source() if self.source is not None else None
        if current is not self._current:
            for rule, n in getattr(self._current, "eval_errors", {}).items():
                self._before[rule] = self._before.get(rule, 0) + n
            self._current = current
        out = dict(self._before)
        for rule, n in getattr(current, "eval_errors", {}).items():
            out[rule] = out.get(rule, 0) + n
        return out


class Metrics:
    """Every watcher_* metric of one worker, with its own registry."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.cloud_requests = Counter(
            "watcher_cloud_requests",
            "HTTP requests to the cloud APIs, by api and HTTP status code ('error': no answer).",
            ["api", "code"],
            registry=r,
        )
        self.polls = Counter(
            "watcher_polls",
            "Polls that fetched from the cloud, by source and result.",
            ["source", "result"],
            registry=r,
        )
        self.poll_seconds = Histogram(
            "watcher_poll_duration_seconds",
            "Duration of one fetch (retries included).",
            ["source"],
            buckets=_POLL_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            "watcher_last_successful_poll_timestamp_seconds",
            "Unix time of the target's last successful poll by this worker.",
            ["target"],
            registry=r,
        )
        self.failures = Gauge(
            "watcher_target_consecutive_failures", "Failed polls in a row, per target.", ["target"], registry=r
        )
        self.blind = Gauge(
            "watcher_target_blind", "1 while a watcher-blind alert is open for the target.", ["target"], registry=r
        )
        self.events = Counter("watcher_events_published", "Job status-change events published.", registry=r)
        self.rules_fired = Counter(
            "watcher_rules_fired", "Alerts produced by rules, by rule and severity.", ["rule", "severity"], registry=r
        )
        self.alerts = Counter("watcher_alerts", "Alerts by what became of them.", ["outcome"], registry=r)
        for outcome in ALERT_OUTCOMES:
            self.alerts.labels(outcome)
        self.notifications = Counter(
            "watcher_notifications",
            "Sends to one notification target (masked id), by result (ok, or why it failed).",
            ["target", "result"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "watcher_delivery_duration_seconds",
            "Time from a notification's making to its delivery or dead-lettering (retries included), by outcome.",
            ["outcome"],
            buckets=_DELIVERY_BUCKETS,
            registry=r,
        )
        self.incidents = Counter(
            "watcher_incidents",
            "Incident notifications made, by kind (open, update, resolve, escalate, remind) and audience.",
            ["kind", "audience"],
            registry=r,
        )
        self.recovered = Counter(
            "watcher_alerts_recovered",
            "Notifications the re-read net delivered: their worker stopped before settling them "
            "(0 in a healthy run).",
            registry=r,
        )
        self.self_health = Counter(
            "watcher_self_health_alerts", "watcher-blind notices sent, by kind.", ["kind"], registry=r
        )
        self.heartbeats = Counter("watcher_heartbeats", "Dead-man heartbeats, by result.", ["result"], registry=r)
        self.rule_reloads = Counter(
            "watcher_rule_reloads", "Rule file changes seen, by result (applied, refused).", ["result"], registry=r
        )
        for result in ("applied", "refused"):
            self.rule_reloads.labels(result)
        self.rules_loaded = Gauge("watcher_rules_loaded", "Rules in force in this worker.", registry=r)
        self.ready = Gauge("watcher_ready", "1 when the worker is ready (see /readyz).", registry=r)
        self.recovery_stalled = Gauge(
            "watcher_recovery_stalled_seconds",
            "Seconds table recovery has made no progress (0 when it is done or moving; see /healthz).",
            registry=r,
        )
        self.outage_buffer = Gauge(
            "watcher_outage_buffer_events",
            "Polled changes held until the broker acknowledges them (non-zero while it is unreachable).",
            registry=r,
        )
        self.last_ok: dict[str, float] = {}
        self.lag_source: LagSource | None = None
        self.eval_errors = EvalErrors()  # its source: the worker's rule set (see health.WebServer)
        r.register(_Live(self))

    # -- hooks ---------------------------------------------------------------------------

    def cloud_response(self, api: str, code: str) -> None:
        self.cloud_requests.labels(api, code).inc()

    def poll_finished(self, source: str, target: str, seconds: float, ok: bool, failures: int) -> None:
        self.polls.labels(source, "ok" if ok else "error").inc()
        self.poll_seconds.labels(source).observe(seconds)
        self.failures.labels(target).set(failures)
        if ok:
            now = time.time()
            self.last_ok[target] = now
            self.last_success.labels(target).set(now)

    def delivered(self, outcome: Any, seconds: float) -> None:
        """One notification settled: how long from its making to its end, and how it ended."""
        self.delivery_seconds.labels("delivered" if outcome.delivered else "failed").observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class Stats:
    """The counters the Faust agents bump (``comps.stats.sent += 1``), fed into :class:`Metrics`.

    Each attribute reads as a plain int; assigning a larger value adds the difference to its
    metric, so the agents' ``+=`` keeps working unchanged.
    """

    _FEEDS: dict[str, Callable[[Metrics, int], None]] = {
        "polls": lambda m, n: None,  # counted per source and result by the source wrapper
        "events": lambda m, n: m.events.inc(n),
        "fired": lambda m, n: None,  # counted per rule by the ruleset wrapper
        "sent": lambda m, n: m.alerts.labels("sent").inc(n),
        "deduped": lambda m, n: m.alerts.labels("deduplicated").inc(n),
        "dead": lambda m, n: m.alerts.labels("dead_lettered").inc(n),
        "silenced": lambda m, n: m.alerts.labels("silenced").inc(n),
        "opened": lambda m, n: m.incidents.labels("open", "all").inc(n),
        "updated": lambda m, n: m.incidents.labels("update", "editable").inc(n),
        "resolved": lambda m, n: m.incidents.labels("resolve", "all").inc(n),
        "escalated": lambda m, n: m.incidents.labels("escalate", "all").inc(n),
        "inhibited": lambda m, n: m.alerts.labels("inhibited").inc(n),
        "grouped": lambda m, n: m.alerts.labels("grouped").inc(n),  # held in a group; its message is sent
        "group_messages": lambda m, n: None,  # group messages taken by an incident (their members: "grouped")
        "notices": lambda m, n: None,  # self-health alerts taken by an incident (not fired by a rule)
        "paged": lambda m, n: m.alerts.labels("paged").inc(n),  # opened an incident: a page
        "merged": lambda m, n: m.alerts.labels("merged").inc(n),  # joined an open incident: no new page
    }

    def explained(self) -> dict[str, int]:
        """What became of every alert the rules fired, by name: it opened an incident (a page),
        joined one already open (no second page: one failure, one page), was grouped, silenced,
        inhibited, or is still pending (on its way to its incident). The demo prints this; tests
        assert it adds up."""
        settled = {"paged": self.paged, "merged": self.merged, "grouped": self.grouped,
                   "silenced": self.silenced, "inhibited": self.inhibited}
        return {**settled, "pending": max(0, self.fired - sum(settled.values()))}

    def __init__(self, metrics: Metrics | None = None, **initial: int) -> None:
        object.__setattr__(self, "metrics", metrics or Metrics())
        object.__setattr__(self, "_values", dict.fromkeys(self._FEEDS, 0))
        for name, value in initial.items():
            setattr(self, name, value)

    def __getattr__(self, name: str) -> int:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return int(values[name])
        raise AttributeError(name)

    def __setattr__(self, name: str, value: int) -> None:
        if name not in self._FEEDS:
            raise AttributeError(f"Stats has no counter {name!r}")
        delta = value - self._values[name]
        self._values[name] = value
        if delta > 0:
            self._FEEDS[name](self.metrics, delta)

    def __repr__(self) -> str:
        return "Stats(" + ", ".join(f"{k}={v}" for k, v in self._values.items()) + ")"
