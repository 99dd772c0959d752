"""Piped tables are written without rich's layout engine (it costs ~0.6 ms a row); they
must be byte for byte what rich prints for the same table, whatever the text holds."""

from __future__ import annotations

import io
import random

import pytest
from rich import box
from rich.console import Console
from rich.table import Table

from n8n_deploy.cli.output import write_plain_table

# Wide, zero-width, combining, joined and right-to-left characters among plain ones.
PIECES = [
    "a",
    "Z",
    " ",
    "🔑",
    "🚀",
    "中",
    "é",
    "e\u0301",
    "ß",
    "-",
    "👩\u200d💻",
    "١",
    "\u200b",
    "⚠️",
]


def _as_rich_prints_it(headers: list[str], rows: list[list[str]], ascii_borders: bool) -> str:
    out = io.StringIO()
    console = Console(
        file=out,
        no_color=True,
        color_system=None,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=True,
        width=100_000,
        force_terminal=False,
    )
    table = Table(box=box.ASCII2 if ascii_borders else box.SQUARE, header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return out.getvalue()


def _tables(count: int) -> list[tuple[list[str], list[list[str]]]]:
    pick = random.Random(20261202)

    def text(longest: int) -> str:
        return "".join(pick.choice(PIECES) for _ in range(pick.randint(0, longest)))

    found = [(["Name", "Key"], [["prod_key", "********4Pj"], ["emoji 🔑 key", "-"]])]
    for _ in range(count):
        columns = pick.randint(1, 6)
        headers = [text(6) or "H" for _ in range(columns)]
        found.append(
            (headers, [[text(10) for _ in range(columns)] for _ in range(pick.randint(0, 5))])
        )
    return found


@pytest.mark.parametrize("ascii_borders", [False, True], ids=["boxed", "ascii"])
def test_a_piped_table_is_what_rich_would_print(ascii_borders: bool) -> None:
    for headers, rows in _tables(300):
        ours = io.StringIO()
        write_plain_table(ours, headers, rows, ascii_borders=ascii_borders)
        assert ours.getvalue() == _as_rich_prints_it(headers, rows, ascii_borders), (headers, rows)
