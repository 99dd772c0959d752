"""Asking people: reading API keys from them and from pipes, and asking for confirmation.

A key is read from the argument, from stdin (``-``, or no argument when piped), or from a
prompt without echo at a terminal.  It is never echoed and never part of a message.
A confirmation is asked at a terminal only; elsewhere ``--confirm`` is required.
"""

from __future__ import annotations

import sys

import typer

from n8n_deploy.base.errors import InvalidKeyFormatError, OperationFailed, UsageError
from n8n_deploy.base.status import ExitStatus
from n8n_deploy.base.text import sanitize
from n8n_deploy.cli.output import note, warn

#: Far more than any n8n API key (267-289 characters); refuse to slurp a whole file.
MAX_KEY_INPUT = 16_384

COMMAND_LINE_WARNING = (
    "a key given as an argument is visible in shell history and the process list; "
    'next time pipe it: echo "$KEY" | {example}'
)
UNMASK_WARNING = "--unmask shows full API keys; keep this output out of logs, shared screens and CI"


def read_key(value: str | None, *, prompt: str, example: str) -> str:
    """The raw key (not yet cleaned): ``value`` itself unless it is None or ``-``."""
    if value is not None and value != "-":
        return value
    if stdin_is_terminal():
        answer: str = typer.prompt(
            prompt, default="", show_default=False, hide_input=True, err=True
        )
        if not answer.strip():  # said for the prompt, not for a pipe (clean_key's words)
            raise UsageError(
                "No API key was typed",
                hint=f'Paste it at the prompt (it is not shown), or pipe it: echo "$KEY" | '
                f"{example}",
            )
        return answer
    return _read_stdin(example)


def warn_key_on_command_line(example: str, *, emoji: bool = True) -> None:
    warn(COMMAND_LINE_WARNING.format(example=example), emoji=emoji)


def warn_unmasked(*, emoji: bool = True) -> None:
    warn(UNMASK_WARNING, emoji=emoji)


def _read_stdin(example: str) -> str:
    hint = f'Pipe the key as text, e.g. echo "$KEY" | {example}'
    stream = sys.stdin
    if stream is None:
        raise UsageError("Cannot read the API key: stdin is closed", hint=hint)
    try:
        text = stream.read(MAX_KEY_INPUT + 1)
    except UnicodeDecodeError:
        raise UsageError("Cannot read the API key: stdin is not UTF-8 text", hint=hint) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise UsageError(f"Cannot read the API key from stdin: {reason}", hint=hint) from None
    if any("\udc80" <= ch <= "\udcff" for ch in text):  # undecodable bytes (surrogateescape)
        raise UsageError("Cannot read the API key: stdin is not UTF-8 text", hint=hint)
    if len(text) > MAX_KEY_INPUT:
        raise InvalidKeyFormatError(
            f"Invalid JWT token format: stdin holds more than {MAX_KEY_INPUT} characters, "
            "far more than an n8n API key",
            hint="Pipe only the key",
        )
    return text


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def confirm(question: str, *, confirmed: bool, action: str, kept: str) -> None:
    """Go on only with the user's yes: ``confirmed`` (``--confirm``) or, at a terminal, an
    answer to ``question``.  Off a terminal without ``--confirm``: refused (exit 1) with
    the flag to add.  Declined: ``Cancelled; <kept>.`` on stderr, exit 1, nothing done."""
    if confirmed:
        return
    if not stdin_is_terminal():
        raise OperationFailed(
            f"Refusing to {action} without confirmation (not at a terminal)",
            hint=f"Add --confirm (or --yes / -y) to {action}",
        )
    if not typer.confirm(sanitize(question), default=False, err=True):
        note(f"Cancelled; {kept}.")
        raise typer.Exit(int(ExitStatus.FAILED))
