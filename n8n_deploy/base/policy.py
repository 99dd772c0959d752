"""The audit policy: the rules ``apikey audit`` checks, their defaults and how a team's
settings (``policy set``) are written.  One home for the rules; the help text, the audit
use case (``apikey.audit``) and ``policy show`` are derived from here.

A rule with a threshold takes a number of days or ``off``; a rule without one takes ``on``
or ``off``.  ``strict`` (on/off) makes every warning fail the audit as an error would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from n8n_deploy.base.dates import MAX_DAYS
from n8n_deploy.base.errors import UsageError

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Rule:
    name: str
    finds: str  # what a finding of it is, for help text ("active keys older than DAYS days")
    severity: Severity
    default_days: int | None = None  # None: a rule without a threshold (on or off)

    @property
    def has_days(self) -> bool:
        return self.default_days is not None


RULES: tuple[Rule, ...] = (
    Rule("max-age", "active keys older than DAYS days (rotate them)", "error", 90),
    Rule(
        "expiring-within",
        "keys that expire within DAYS days (an active key already expired is an error)",
        "warning",
        14,
    ),
    Rule("unused-for", "active keys not used (tested) for DAYS days", "warning", 30),
    Rule(
        "inactive-for", "inactive keys kept more than DAYS days after deactivation", "warning", 30
    ),
    Rule("unlinked", "active keys linked to no server", "warning"),
    Rule("no-active-key", "servers with no active key", "warning"),
    Rule(
        "single-key", "servers with a single active key (no rotation without downtime)", "warning"
    ),
)
RULE_NAMES = tuple(rule.name for rule in RULES)
STRICT = "strict"
#: What ``registry_settings`` names a policy value: ``policy.max-age``.
PREFIX = "policy."

#: A rule's setting: days (threshold rules), True (on) or None (off).
Setting = int | bool | None


def _folded(name: str) -> str:
    return name.strip().lower()


def rule(name: str) -> Rule:
    """The rule called ``name`` (in any case, spaces around it ignored); a usage error that
    quotes ``name`` as typed otherwise (never folded: a key typed here stays key-shaped,
    so the error printer hides it)."""
    wanted = _folded(name)
    for candidate in RULES:
        if candidate.name == wanted:
            return candidate
    raise UsageError(f"No policy rule named {name!r}", hint=f"Use one of: {', '.join(RULE_NAMES)}")


def check_setting(name: str) -> str:
    """The name ``policy set/unset`` stores for ``name`` (a rule, or strict; any case); a
    usage error quoting ``name`` as typed otherwise."""
    wanted = _folded(name)
    if wanted != STRICT and wanted not in RULE_NAMES:
        raise UsageError(
            f"No policy setting named {name!r}",
            hint=f"Use one of: {', '.join((*RULE_NAMES, STRICT))}",
        )
    return wanted


def parse_value(name: str, raw: str) -> str:
    """The stored form of ``policy set NAME VALUE``: a number of days, ``on`` or ``off``;
    a usage error naming what the rule takes otherwise."""
    name = check_setting(name)
    value = raw.strip().lower()
    if name == STRICT or not rule(name).has_days:
        if value in ("on", "off"):
            return value
        raise UsageError(
            f"policy {name} takes on or off, not {raw!r}",
            hint=f"e.g. n8n-deploy policy set {name} off",
        )
    if value == "off":
        return value
    if value.isascii() and value.isdigit() and len(value) <= 9 and 1 <= int(value) <= MAX_DAYS:
        return str(int(value))
    raise UsageError(
        f"policy {name} takes a number of days (1 to {MAX_DAYS}) or off, not {raw!r}",
        hint=f"e.g. n8n-deploy policy set {name} {rule(name).default_days}",
    )


@dataclass(frozen=True)
class Policy:
    """The rules in force: each one's setting and where it came from."""

    settings: Mapping[str, Setting]
    sources: Mapping[str, str]  # rule -> "option" | "team policy" | "default"
    strict: bool = False

    def days(self, name: str) -> int | None:
        value = self.settings.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def enabled(self, name: str) -> bool:
        return self.settings.get(name) is not None

    def to_dict(self) -> dict[str, object]:
        return {
            "rules": {
                name: {
                    "value": "off" if value is None else "on" if value is True else value,
                    "severity": rule(name).severity,
                    "source": self.sources[name],
                }
                for name, value in self.settings.items()
            },
            "strict": self.strict,
        }


def resolve_policy(
    stored: Mapping[str, str],
    *,
    options: Mapping[str, int | None] | None = None,
    skipped: tuple[str, ...] = (),
    strict: bool | None = None,
) -> Policy:
    """The policy in force: a command-line option, else the team's stored value
    (``stored`` maps rule names to ``parse_value`` forms), else the default."""
    options = options or {}
    settings: dict[str, Setting] = {}
    sources: dict[str, str] = {}
    for each in RULES:
        source, value = "default", _default(each)
        if each.name in stored:
            source, value = "team policy", _stored(each, stored[each.name])
        if options.get(each.name) is not None:
            source, value = "option", options[each.name]
        if each.name in skipped:
            source, value = "option", None
        settings[each.name], sources[each.name] = value, source
    strict_stored = stored.get(STRICT) == "on"
    return Policy(settings, sources, strict=strict_stored if strict is None else strict)


def _default(each: Rule) -> Setting:
    return each.default_days if each.has_days else True


def _stored(each: Rule, value: str) -> Setting:
    if value == "off":
        return None
    if value == "on" or not each.has_days:
        return True if not each.has_days else each.default_days
    return int(value) if value.isdigit() else each.default_days
