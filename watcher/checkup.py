"""What `watcher config check` and `watcher run` both check before anything starts.

:func:`watcher.config.load_config` decodes the file and validates each key on its own (no
Apprise, no rule files). This goes one step further, with the same code for both commands,
so `config check` passes exactly the configs `run` accepts:

* every ``[[notify.targets]]`` URL and the ``apprise_config`` file load in Apprise — a bad one
  is a :class:`~watcher.errors.ConfigError` (exit 2);
* every rule file compiles — each error is ``file:line:col: message``;
* every alert has somewhere to go: each rule's tags (or, without ``notify``, the default route)
  and the self-health alerts' ``[health] tags`` reach at least one notification target, as
  :func:`find_route` decides as the notify stage does at run time. An alert that reaches
  none is dead-lettered ``no_route`` on every firing. `config check` fails on it (exit 1);
  `run` starts anyway, since watching with no target is how one tries rules on the topics
  alone, but says so first, in one ERROR line per route.

Imports the config, the notifier (and so Apprise) and the rule compiler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from watcher.config import Config, check_notify_targets, line_of
from watcher.errors import ConfigError
from watcher.notify.deliver import Notifier
from watcher.rules.check import check_book
from watcher.rules.compile import CompiledRule


@dataclass
class Checkup:
    """What the checks found; ``problems`` are one line each, in file order."""

    config: Config
    notifier: Notifier
    rules: list[CompiledRule] = field(default_factory=list)
    rule_files: int = 0
    errors: list[str] = field(default_factory=list)  # rule files that do not compile: nothing can run
    unrouted: list[str] = field(default_factory=list)  # alerts that would reach no target

    @property
    def problems(self) -> list[str]:
        return [*self.errors, *self.unrouted]

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> list[str]:
        """The lines `config check` prints when everything checks."""
        everyone = targets(self.config, self.notifier)
        n_poll, n_notify = len(self.config.targets()), len(everyone)
        lines = [f"{self.config.path}: ok ({_n(n_poll, 'poll target')}, {_n(len(self.rules), 'rule')} in "
                 f"{_n(self.rule_files, 'rule file')}, {_n(n_notify, 'notification target')})"]
        lines += [f"  notify {tid}  tags: {', '.join(sorted(tags)) or '-'}" for tid, tags in everyone]
        default = self.config.notify.default_tags
        routed = ", ".join(find_route(everyone, (), default)) or "-"
        why = f"[notify] default_tags = {list(default)}" if default else "every target: [notify] default_tags is not set"
        lines.append(f"  rules without notify, and the self-health alerts without [health] tags, go to: {routed} ({why})")
        return lines


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _where(tags: Sequence[str], default: Sequence[str]) -> str:
    if tags:
        return f"tags: {', '.join(tags)}"
    if default:
        return f"no notify, so the default route: [notify] default_tags = {list(default)}"
    return "no notify, so the default route: every target, and there is none"


def targets(config: Config, notifier: Notifier) -> list[tuple[str, frozenset[str]]]:
    """(id, tags) of every notification target: Apprise's, then Slack and webhook targets."""
    out = [(t.id, frozenset(t.tags)) for t in notifier.targets]
    for t in config.notify.targets:
        if t.kind != "apprise":
            out.append((t.display(), frozenset(t.tags or config.notify.default_tags)))
    return out


def find_route(everyone: Sequence[tuple[str, frozenset[str]]], tags: Sequence[str],
               default: Sequence[str]) -> list[str]:  # fmt: skip
    """Where an alert with ``tags`` goes, as the notify stage routes it (``watcher.notify.dispatch``)."""
    wanted = set(tags) or set(default)
    if not wanted:
        return [tid for tid, _ in everyone]
    return [tid for tid, t in everyone if t & wanted or "always" in t or "always" in wanted]


def unrouted(config: Config, notifier: Notifier, rules: Sequence[CompiledRule]) -> list[str]:
    """One line per rule (and for the self-health alerts) whose alerts reach no target."""
    default = config.notify.default_tags
    everyone = targets(config, notifier)
    out: list[str] = []
    for rule in rules:
        if rule.enabled and not find_route(everyone, rule.tags, default):
            out.append(f"{rule.location}: rule {rule.name!r} reaches no notification target "
                       f"({_where(rule.tags, default)})")
    if (config.health.enabled or config.health.notify_rule_errors) and not find_route(everyone, config.health.tags,
                                                                                       default):  # fmt: skip
        out.append(f"{config.path or '<config>'}: [health] the self-health alerts (watcher-blind, "
                   f"watcher-rules-refused) reach no notification target ({_where(config.health.tags, default)})")
    return out


def checkup(config: Config) -> Checkup:
    """Load what ``config`` names and follow every route; a bad target URL raises ConfigError."""
    check_notify_targets(config)
    try:
        notifier = Notifier(config.notify)
    except ConfigError as e:  # the Apprise config file: name the watcher config it is named in
        key = e.key or "notify"
        raise ConfigError(str(e).split(f"{key}: ", 1)[-1], file=config.path or None, key=key,
                          line=line_of(config.path, key)) from None
    rules, errors, files = check_book(list(config.rules.files))
    return Checkup(config, notifier, rules, files, [str(e) for e in errors], unrouted(config, notifier, rules))
