"""Checking the whole registry against the team's policy: the use case behind
``n8n-deploy apikey audit``.

Each rule of ``base.policy`` that is on yields findings: what is wrong, with whom, and the
command that fixes it.  Nothing is written.  ``AuditReport.exit_status`` is 0 unless a
finding is an error (or any finding, with ``strict``): then ``ExitStatus.POLICY``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from n8n_deploy.base.dates import human_date, utcnow
from n8n_deploy.base.policy import Policy, Severity, rule
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.base.text import counted, shell_word
from n8n_deploy.store.events import EventRepository
from n8n_deploy.store.repositories import ApiKeyRepository, ServerRepository

ROTATE = 'echo "$NEW_KEY" | n8n-deploy apikey rotate {name} - --name NEW_NAME'


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    subject: str  # "key" | "server"
    name: str
    message: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "subject": self.subject,
            "name": self.name,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class AuditReport:
    policy: Policy
    findings: tuple[Finding, ...]
    keys: int
    servers: int

    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error" or self.policy.strict]

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.POLICY if self.failing() else ExitStatus.SUCCESS

    def summary(self) -> str:
        errors = sum(1 for f in self.findings if f.severity == "error")
        warnings = len(self.findings) - errors
        checked = f"{counted(self.keys, 'key')} and {counted(self.servers, 'server')} checked"
        if not self.findings:
            return f"No findings: {checked}"
        return f"{counted(errors, 'error')}, {counted(warnings, 'warning')}: {checked}"

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": not self.failing(),
            "exit_status": int(self.exit_status),
            "keys": self.keys,
            "servers": self.servers,
            "policy": self.policy.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
        }


def audit_registry(session: Session, policy: Policy, *, now: datetime | None = None) -> AuditReport:
    """Every finding of ``policy`` over the keys and servers in ``session``'s database."""
    now = now or utcnow()
    keys = ApiKeyRepository(session).list()
    servers_repo = ServerRepository(session)
    servers = servers_repo.list()
    counts = servers_repo.count_links()
    deactivated = EventRepository(session).last_of_kind("deactivated")
    found: list[Finding] = []

    def add(name: str, subject: str, who: str, message: str, fix: str, severity: str = "") -> None:
        level: Severity = "error" if severity == "error" else rule(name).severity
        if severity == "warning":
            level = "warning"
        found.append(Finding(name, level, subject, who, message, fix))

    def days_ago(moment: datetime) -> int:
        return max(0, (now - moment).days)

    for key in keys:
        q = shell_word(key.name)
        label = f"API key '{key.name}'"
        if key.is_active:
            max_age = policy.days("max-age")
            if max_age is not None and key.created_at < now - timedelta(days=max_age):
                add(
                    "max-age",
                    "key",
                    key.name,
                    f"{label} is {days_ago(key.created_at)} days old (the maximum is {max_age})",
                    f"create a new key in n8n, then: {ROTATE.format(name=q)}",
                )
            within = policy.days("expiring-within")
            if within is not None and key.expires_at is not None:
                if key.expires_at <= now:
                    add(
                        "expiring-within",
                        "key",
                        key.name,
                        f"{label} is active but expired on {human_date(key.expires_at)}",
                        f"replace it: {ROTATE.format(name=q)}, or: n8n-deploy apikey "
                        f"deactivate {q}",
                        severity="error",
                    )
                elif key.expires_at <= now + timedelta(days=within):
                    add(
                        "expiring-within",
                        "key",
                        key.name,
                        f"{label} expires on {human_date(key.expires_at)}, within {within} days",
                        f"replace it before then: {ROTATE.format(name=q)}",
                    )
            unused = policy.days("unused-for")
            if unused is not None:
                last = key.last_used_at or key.created_at
                if last < now - timedelta(days=unused):
                    when = (
                        f"last used {human_date(key.last_used_at)}"
                        if key.last_used_at
                        else f"never used since it was added on {human_date(key.created_at)}"
                    )
                    add(
                        "unused-for",
                        "key",
                        key.name,
                        f"{label} has not been used for {days_ago(last)} days ({when})",
                        f"test it (n8n-deploy apikey test {q}), or retire it: n8n-deploy "
                        f"apikey deactivate {q}",
                    )
            if policy.enabled("unlinked") and not key.servers:
                add(
                    "unlinked",
                    "key",
                    key.name,
                    f"{label} is active but linked to no server",
                    f"link it: n8n-deploy server link {q} SERVER",
                )
        else:
            kept = policy.days("inactive-for")
            since = deactivated.get(key.id, key.created_at)
            if kept is not None and since < now - timedelta(days=kept):
                add(
                    "inactive-for",
                    "key",
                    key.name,
                    f"{label} has been inactive since {human_date(since)}, over {kept} days",
                    f"delete it if it is not coming back: n8n-deploy apikey delete {q} --confirm",
                )
    for server in servers:
        q = shell_word(server.name)
        active, _total = counts.get(server.id, (0, 0))
        label = f"server '{server.name}'"
        if active == 0 and policy.enabled("no-active-key"):
            add(
                "no-active-key",
                "server",
                server.name,
                f"{label} has no active API key: nothing can deploy to it",
                f'add one: echo "$KEY" | n8n-deploy apikey add - --name NAME --server {q}',
            )
        elif active == 1 and policy.enabled("single-key"):
            add(
                "single-key",
                "server",
                server.name,
                f"{label} has a single active API key: replacing it means a moment without one",
                f'keep a second key: echo "$KEY" | n8n-deploy apikey add - --name NAME '
                f"--server {q}",
            )
    order = {"error": 0, "warning": 1}
    found.sort(key=lambda f: (order[f.severity], f.rule, f.name))
    return AuditReport(policy, tuple(found), len(keys), len(servers))
