"""Shell completion: key and server names, and installing completion for a shell.

Completing never creates or migrates a database.  bash inserts a completion as it is
given, so this program's bash script quotes each one for the shell (``printf %q``: a name
with spaces completes to ``Production\\ Server``, a word that runs); zsh and fish quote
what they insert themselves, so typer's scripts serve them.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from n8n_deploy.base.settings import resolve_settings
from n8n_deploy.base.text import needs_sanitizing, sanitize

PROG_NAME = "n8n-deploy"
#: The variable the completion scripts set (typer's convention).
COMPLETE_ENV = "_N8N_DEPLOY_COMPLETE"
SHELLS = ("bash", "zsh", "fish")

BASH_SCRIPT = f"""# n8n-deploy completion for bash: each candidate quoted for the shell
_n8n_deploy_completion() {{
    local IFS=$'\\n' candidate
    COMPREPLY=()
    for candidate in $(env COMP_WORDS="${{COMP_WORDS[*]}}" COMP_CWORD=$COMP_CWORD \\
                           {COMPLETE_ENV}=complete_bash "$1"); do
        COMPREPLY+=("$(printf '%q' "$candidate")")
    done
    return 0
}}
complete -o default -F _n8n_deploy_completion {PROG_NAME}
"""


def completion_script(shell: str) -> str:
    """The completion script for ``shell`` (bash, zsh or fish)."""
    if shell == "bash":
        return BASH_SCRIPT
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_ENV, shell=shell)


def install_completion(shell: str) -> Path:
    """Install completion for ``shell`` in the user's home folder; returns the script's
    path.  bash: ~/.bash_completions/n8n-deploy.sh, sourced from ~/.bashrc; zsh and fish:
    where typer puts them (~/.zfunc, ~/.config/fish/completions)."""
    if shell != "bash":
        from typer._completion_shared import install

        return install(shell=shell, prog_name=PROG_NAME, complete_var=COMPLETE_ENV)[1]
    script = Path.home() / ".bash_completions" / f"{PROG_NAME}.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(BASH_SCRIPT, encoding="utf-8")
    rc = Path.home() / ".bashrc"
    line = f"source '{script}'"
    current = rc.read_text(encoding="utf-8") if rc.is_file() else ""
    if line not in current:
        rc.write_text(
            current + ("" if current.endswith("\n") or not current else "\n") + line + "\n",
            encoding="utf-8",
        )
    return script


def detected_shell() -> str | None:
    """The shell this program runs under, when it can be told."""
    try:
        import shellingham

        name, _command = shellingham.detect_shell()
    except Exception:  # noqa: BLE001 - no shell detected is an answer, not an error
        return None
    return str(name).lower()


def _names(ctx: typer.Context, kind: str, incomplete: str) -> list[str]:
    from n8n_deploy.store.names import stored_names

    try:
        root = ctx.find_root()
        settings = resolve_settings(root.params.get("data_dir"), root.params.get("database_url"))
    except Exception:  # noqa: BLE001 - completion must never fail loudly
        return []
    typed = _unescaped(incomplete)
    found = [n for n in stored_names(settings.database_url, kind) if n.startswith(typed)]
    if not needs_sanitizing(" ".join(found)):  # one search for them all
        return found
    # A name that would be printed otherwise than it is (a key or a control character in
    # it, written by another program) is never offered: the shell would show it raw.
    return [n for n in found if sanitize(n) == n]


def _unescaped(word: str) -> str:
    """What the user typed so far, without the quotes or backslashes of the shell."""
    if word[:1] in ("'", '"'):
        word = word[1:]
    return re.sub(r"\\(.)", r"\1", word)


def complete_key_names(ctx: typer.Context, incomplete: str) -> list[str]:
    return _names(ctx, "key", incomplete)


def complete_server_names(ctx: typer.Context, incomplete: str) -> list[str]:
    return _names(ctx, "server", incomplete)
