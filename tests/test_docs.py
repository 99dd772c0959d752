"""Documentation that is tested stays true: every command has help text and a section in
the generated command reference, every exit status is in the README's table, the generated
files are up to date, and every relative link points at a file that exists."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import typer

from n8n_deploy.base.status import ExitStatus
from n8n_deploy.cli import app
from n8n_deploy.cli.helptext import EXAMPLES_HEADING
from tests.helpers import Run

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])

# [text](target) outside code; images too. Targets with a scheme or only an anchor are
# not files.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")


def _commands() -> list[tuple[str, object]]:
    root = typer.main.get_command(app)
    found = []
    for group_name, group in root.commands.items():  # type: ignore[attr-defined]
        for name, command in getattr(group, "commands", {}).items():
            found.append((f"{group_name} {name}", command))
    return sorted(found, key=lambda item: item[0])


def _generator() -> ModuleType:
    """docs/generate.py, imported from its path (it is a script, not part of the package)."""
    path = ROOT / "docs" / "generate.py"
    spec = importlib.util.spec_from_file_location("n8n_deploy_docs_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.mark.parametrize(("name", "command"), _commands(), ids=lambda v: str(v))
def test_every_command_has_help_and_is_in_the_command_reference(name: str, command: object) -> None:
    assert (getattr(command, "help", None) or "").strip(), f"{name} has no help text"
    assert f"n8n-deploy {name}" in COMMANDS, (
        f"docs/commands.md does not mention 'n8n-deploy {name}'; run 'make docs'"
    )


def _example_commands(epilog: str) -> list[list[str]]:
    """The n8n-deploy argument lists in a help's examples (inside $(...) and before | or <)."""
    found = []
    for line in epilog.split(EXAMPLES_HEADING if EXAMPLES_HEADING in epilog else "Example:")[
        -1
    ].splitlines():
        line = line.strip().lstrip("\b").strip()
        if not line:
            continue
        inner = re.search(r"\$\((n8n-deploy [^)]*)\)", line)
        lexer = shlex.shlex(inner.group(1) if inner else line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        start = tokens.index("n8n-deploy") + 1
        words = []
        for token in tokens[start:]:
            if token in {"|", "||", "&&", "<", ">", ";", ")"}:
                break
            words.append(token)
        found.append(words)
    return found


def _unparsed(ctx: typer.Context) -> list[str]:
    """What a group left for its subcommand (click keeps the first word apart)."""
    first = getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", [])
    return [*first, *ctx.args]


@pytest.mark.parametrize(("name", "command"), _commands(), ids=lambda v: str(v))
def test_every_command_help_ends_with_examples_of_itself_that_parse(
    name: str, command: object
) -> None:
    epilog = getattr(command, "epilog", None) or ""
    assert "Example" in epilog, f"{name}: no examples at the end of its help"
    root = typer.main.get_command(app)
    for args in _example_commands(epilog):
        # Parse as the shell would hand them over, down to the command: a misspelled
        # option or a missing argument in an example fails here.
        ctx = root.make_context("n8n-deploy", list(args), resilient_parsing=False)
        command_args = _unparsed(ctx)
        while hasattr(ctx.command, "resolve_command") and command_args:
            sub_name, sub, rest = ctx.command.resolve_command(ctx, command_args)  # type: ignore[attr-defined]
            assert sub is not None and sub_name is not None
            ctx = sub.make_context(sub_name, rest, parent=ctx)
            command_args = _unparsed(ctx)
        assert ctx.command_path == f"n8n-deploy {name}", (name, args)


def test_examples_are_shown_verbatim_never_rewrapped(cli: Callable[..., Run]) -> None:
    result = cli("apikey", "test", "--help", env={"COLUMNS": "60"})
    assert "  n8n-deploy apikey test --all --format junit --output n8n-keys.xml\n" in result.stdout


def test_every_exit_status_is_documented() -> None:
    table = {int(m) for m in re.findall(r"^\| (\d+) \|", README, flags=re.MULTILINE)}
    assert {int(status) for status in ExitStatus} <= table


def test_the_generated_docs_are_up_to_date() -> None:
    generator = _generator()
    stale = [path.relative_to(ROOT).as_posix() for path in generator.outdated()]
    assert stale == [], f"out of date: {', '.join(stale)}; run 'make docs'"


def _relative_links(text: str) -> list[str]:
    prose = CODE.sub("", FENCE.sub("", text))
    targets = [match.group(1) for match in LINK.finditer(prose)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def _anchors(page: Path) -> set[str]:
    """The ids GitHub gives the headings of a markdown page."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    headings = re.findall(r"^#{1,6} +(.+?) *$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.replace("`", "").lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_at_a_file_that_exists(page: Path) -> None:
    missing, no_anchor = [], []
    for target in _relative_links(page.read_text(encoding="utf-8")):
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part) if file_part else page
        if not linked.exists():
            missing.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            no_anchor.append(target)
    assert missing == [], f"{page.relative_to(ROOT)} links to missing files: {missing}"
    assert no_anchor == [], f"{page.relative_to(ROOT)} links to missing headings: {no_anchor}"


def test_every_test_the_security_page_names_exists() -> None:
    """docs/security.md says how each promise is tested: the tests it names must exist."""
    page = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    named = re.findall(r"`(test_\w+\.py)::(test_\w+)", page)
    assert named
    for module, test in named:
        source = ROOT / "tests" / module
        assert source.is_file(), module
        assert f"def {test}(" in source.read_text(encoding="utf-8"), f"{module}::{test}"
