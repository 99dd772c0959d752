"""Piped tables are written without rich's layout engine (it costs ~0.6 ms a row); they
must be byte for byte what rich prints for the same table, whatever the text holds."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from rich import box
from rich.console import Console
from rich.table import Table

from n8n_deploy.cli import views
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


@pytest.mark.parametrize("as_stored", [True, False])
@pytest.mark.parametrize("emoji", [True, False])
def test_a_key_listing_makes_the_rows_its_keys_would(as_stored: bool, emoji: bool) -> None:
    """``apikey list`` (masked, in name order) makes its table rows straight from the rows
    as read: the same cells as key_row of each key, for random listings with hostile text,
    damaged rows (a NULL creation time or flag), ephemeral and expired keys."""
    from n8n_deploy.base.dates import stored_text, stored_utc
    from tests.test_json_output import _listing, _stored_moment

    rng = random.Random(16)
    now = stored_utc(stored_text(_stored_moment(rng)))
    seen = set()
    for i in range(100):
        listing = _listing(rng, as_stored, hostile=i % 2 == 0)
        keys = [listing.key(row) for row in listing.rows]
        fast = _outcome(views.key_listing_rows, listing, emoji=emoji, now=now)
        rows = _outcome(_key_rows, keys, emoji=emoji, now=now)
        assert fast == rows  # or the same error, for a value that is not text
        if isinstance(fast, list):
            seen.update(cell for row in fast for cell in row[3:5])
    # Every status and kind of expiry was among them.
    assert {"Unknown", "Never"} <= seen
    assert any("until" in str(cell) for cell in seen)
    assert any("Expired" in str(cell) for cell in seen)
    assert any("Inactive" in str(cell) for cell in seen)


def _key_rows(keys: list[Any], *, emoji: bool, now: datetime) -> list[list[Any]]:
    return [views.key_row(key, emoji=emoji, unmask=False, now=now) for key in keys]


def _outcome(make: Callable[..., object], *args: Any, **kwargs: Any) -> object:
    """What ``make`` returns, or the type of what it raises (a server name that is not
    text: ", ".join refuses it alike)."""
    try:
        return make(*args, **kwargs)
    except TypeError as exc:
        return type(exc)
