"""The closing part of every command's help: its examples, after any longer note.

Click rewraps help paragraphs; the examples are kept as typed (one per line, never broken
inside an option) by click's ``\\b`` marker.  ``tests/test_cli_basics.py`` checks that every
command has examples, that each names its own command and that each one parses.
"""

from __future__ import annotations

EXAMPLES_HEADING = "Examples:"


def examples(*lines: str, note: str = "") -> str:
    """An epilog: ``note`` (rewrapped as usual), then the example command lines verbatim."""
    if not lines:
        raise ValueError("a command's help needs at least one example")
    block = "\b\n" + "\n".join(f"  {line}" for line in lines)
    heading = EXAMPLES_HEADING if len(lines) > 1 else "Example:"
    return (f"{note}\n\n" if note else "") + f"{heading}\n\n{block}"
