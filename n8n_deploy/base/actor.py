"""Who is running n8n-deploy, as the audit trail records it: the CI job when the
environment says so, else the operating-system user and host.

Worked out from the environment the settings were resolved from, the first time an event
is recorded (``Settings.actor``): a command that only reads never asks the system for the
user and host.  ``N8N_DEPLOY_ACTOR`` names
the actor outright (a shared service account, a bot).  What is recorded is one line of at
most 255 characters, with control characters removed and anything shaped like an API key
hidden: an environment variable is not trusted to hold no secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from n8n_deploy.base.text import redact_keys

ACTOR_ENV = "N8N_DEPLOY_ACTOR"
MAX_ACTOR_LENGTH = 255
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]+")


def _job(env: Mapping[str, str]) -> str | None:
    """The CI job, from the variables each CI service documents; None outside CI."""

    def get(name: str) -> str:
        return env.get(name, "").strip()

    def by(user: str) -> str:
        return f" ({user})" if user else ""

    if get("GITHUB_ACTIONS") == "true":
        job = f" job {get('GITHUB_JOB')}" if get("GITHUB_JOB") else ""
        repo = get("GITHUB_REPOSITORY") or "?"
        return f"github-actions {repo} run {get('GITHUB_RUN_ID') or '?'}{job}" + by(
            get("GITHUB_ACTOR")
        )
    if get("GITLAB_CI") == "true":
        project = get("CI_PROJECT_PATH") or "?"
        return f"gitlab-ci {project} job {get('CI_JOB_ID') or '?'}" + by(get("GITLAB_USER_LOGIN"))
    if get("JENKINS_URL") or get("BUILD_TAG").startswith("jenkins-"):
        return f"jenkins {get('BUILD_TAG') or get('JOB_NAME') or '?'}"
    if get("CIRCLECI") == "true":
        project = get("CIRCLE_PROJECT_REPONAME") or "?"
        return f"circleci {project} job {get('CIRCLE_BUILD_NUM') or '?'}" + by(
            get("CIRCLE_USERNAME")
        )
    if get("BUILDKITE") == "true":
        pipeline = get("BUILDKITE_PIPELINE_SLUG") or "?"
        return f"buildkite {pipeline} build {get('BUILDKITE_BUILD_NUMBER') or '?'}"
    if get("TF_BUILD").lower() == "true":
        repo = get("BUILD_REPOSITORY_NAME") or "?"
        return f"azure-pipelines {repo} build {get('BUILD_BUILDID') or '?'}"
    if get("CI").lower() in ("true", "1"):
        return "ci"
    return None


def _user(env: Mapping[str, str]) -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = env.get("USER") or env.get("USERNAME") or "unknown"
    try:
        host = socket.gethostname()
    except OSError:
        host = ""
    return f"{user}@{host}" if host else user


def actor_from(env: Mapping[str, str]) -> str:
    """Who the audit trail records for this run (see the module's docstring)."""
    explicit = env.get(ACTOR_ENV, "").strip()
    raw = explicit or _job(env) or _user(env)
    return clean_actor(raw)


def clean_actor(raw: str) -> str:
    """One safe line: no control or bidi characters, no key, at most 255 characters."""
    line = " ".join(_UNSAFE.sub(" ", redact_keys(raw)).split())
    return line[:MAX_ACTOR_LENGTH] or "unknown"
