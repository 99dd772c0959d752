"""Documentation that is tested stays true: every command has help text and a README entry,
and every exit status is in the README's table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from n8n_deploy.cli import app
from n8n_deploy.errors import ExitStatus

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands() -> list[tuple[str, object]]:
    root = typer.main.get_command(app)
    found = []
    for group_name, group in root.commands.items():  # type: ignore[attr-defined]
        for name, command in getattr(group, "commands", {}).items():
            found.append((f"{group_name} {name}", command))
    return sorted(found, key=lambda item: item[0])


@pytest.mark.parametrize(("name", "command"), _commands(), ids=lambda v: str(v))
def test_every_command_has_help_and_is_in_the_readme(name: str, command: object) -> None:
    assert (getattr(command, "help", None) or "").strip(), f"{name} has no help text"
    assert f"n8n-deploy {name}" in README, f"README.md does not mention 'n8n-deploy {name}'"


def test_every_exit_status_is_documented() -> None:
    table = {int(m) for m in re.findall(r"^\| (\d+) \|", README, flags=re.MULTILINE)}
    assert {int(status) for status in ExitStatus} <= table
