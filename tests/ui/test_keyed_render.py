"""KeyedTable renders one-line rows itself (widgets/_keyed.py, _fast_cell and _fast_line) instead of
through DataTable's Console pipeline. These tests hold its output to DataTable's own, segment by
segment and style by style, for every kind of cell the panes use and some they do not."""
from __future__ import annotations

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable

from widgets._keyed import FastKeyedTable as KeyedTable  # the rewrite, also under the stock switch

pytestmark = pytest.mark.ui

COLUMNS = (("a", 6), ("b", 10), ("c", 4), ("d", 12), ("e", 3))


def cells(i: int) -> tuple:
    return (
        [Text(f"{i}", style="bold red"), "plain", None, 3.14159, 42][i % 5],
        [Text("right", justify="right"), Text("center", justify="center", style="on blue"),
         Text("left", justify="left", style="reverse"), "[bold]mark[/]up", Text("much too long for it", overflow="ellipsis")][i % 5],
        [Text("漢字漢字漢"), Text("ab", style="underline"), "x" * 9, "", Text("é", justify="right")][i % 5],
        Text.assemble(("span", "green"), " and ", ("more", "bold italic"), style="dim") if i % 2 else
        Text("fold fold fold fold", overflow="fold"),
        [Text("🙂🙂"), "ok", Text("abc", overflow="crop", style="yellow on black"), 7, "x"][i % 5],
    )


class Pair(App):
    """A KeyedTable beside a DataTable with the same columns and rows."""
    CSS = "DataTable { width: 1fr; height: 1fr; }"

    def __init__(self, columns=COLUMNS, rows=None):
        super().__init__()
        self.columns = columns
        self.rows = rows if rows is not None else [cells(i) for i in range(12)]

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield KeyedTable(id="fast", cursor_type="row")
            yield DataTable(id="slow", cursor_type="row")

    def on_mount(self) -> None:
        for t in self.query(DataTable):
            for key, width in self.columns:
                t.add_column(key, key=key, width=width)
            for i, row in enumerate(self.rows):
                t.add_row(*row, key=str(i))


def lines(table) -> list:
    """Every line of the table as (text, style, meta) per segment."""
    return [[(s.text, str(s.style) if s.style else "", s.style.meta if s.style else {}) for s in table.render_line(y)]
            for y in range(table.size.height)]


async def compare(app: Pair) -> int:
    fast, slow = app.query_one("#fast", KeyedTable), app.query_one("#slow", DataTable)
    assert fast.size == slow.size
    a, b = lines(fast), lines(slow)
    assert a == b
    return len(a)


# at 120 columns each table is wider than its rows; at 70 its rows are cut at its right edge
@pytest.mark.parametrize("screen_width", [120, 70])
async def test_fast_rows_match_datatable_with_cursor_and_after_updates(screen_width):
    app = Pair()
    async with app.run_test(size=(screen_width, 20)) as pilot:
        app.set_focus(None)
        await pilot.pause()
        fast, slow = app.query_one("#fast", KeyedTable), app.query_one("#slow", DataTable)
        assert (fast._column_layout()[1] > fast.size.width) == (screen_width == 70)
        assert await compare(app) == fast.size.height
        for row in (0, 3, 11):
            fast.move_cursor(row=row)
            slow.move_cursor(row=row)
            await pilot.pause()
            await compare(app)
        for t in (fast, slow):
            t.update_cell("3", "b", Text("changed", style="bold green", justify="right"))
            t.update_cell("4", "d", "[red]markup[/] now")
        await pilot.pause()
        await compare(app)
        # focused, the cursor has another style: only one table can have the focus at a time
        slow.focus()
        await pilot.pause()
        focused_slow = lines(slow)
        fast.focus()
        await pilot.pause()
        assert lines(fast) == focused_slow
        # the fast path is what drew those rows (not DataTable's own, as a fallback)
        calls = []
        orig = DataTable._render_line_in_row
        DataTable._render_line_in_row = lambda self, *a, **k: (calls.append(self.id), orig(self, *a, **k))[1]
        try:
            fast._strips.clear()
            fast._cell_lines.clear()
            fast._row_render_cache.clear()
            fast._line_cache.clear()
            slow._line_cache.clear()
            slow._row_render_cache.clear()
            lines(fast), lines(slow)
        finally:
            DataTable._render_line_in_row = orig
        assert calls.count("fast") == 1 and calls.count("slow") == 1 + slow.row_count  # fast: the header only


async def test_fast_cell_falls_back_for_what_it_does_not_handle():
    app = Pair()
    async with app.run_test(size=(120, 20)) as pilot:
        app.set_focus(None)
        await pilot.pause()
        fast = app.query_one("#fast", KeyedTable)
        fast.update_cell("0", "d", Text("two\nlines"))
        fast.update_cell("1", "d", Text("a\ttab"))
        assert fast._fast_cell(fast._row_locations.get_key(0), next(iter(fast.columns)), 0, 0,
                               fast.rich_style, 8, False, False) is not None
        from textual.widgets._data_table import ColumnKey, RowKey
        assert fast._fast_cell(RowKey("0"), ColumnKey("d"), 0, 3, fast.rich_style, 14, False, False) is None
        assert fast._fast_cell(RowKey("1"), ColumnKey("d"), 1, 3, fast.rich_style, 14, False, False) is None
        slow = app.query_one("#slow", DataTable)
        slow.update_cell("0", "d", Text("two\nlines"))
        slow.update_cell("1", "d", Text("a\ttab"))
        await pilot.pause()
        await compare(app)


def ascii_cells() -> list:
    """One-style printable ASCII cells, which KeyedTable lays out with string operations."""
    from rich.style import Style
    out = []
    for text in ("ab", "abcdef", "abcdefgh", "trail  ", "  lead", "a b c d e f g", "x"):
        for justify in (None, "left", "right", "center"):
            for overflow in (None, "ellipsis", "crop", "fold"):
                for style in ("", "bold red", Style(italic=True, bgcolor="blue")):
                    out.append(Text(text, justify=justify, overflow=overflow, style=style))
    return out


@pytest.mark.parametrize("width", [6, 1])
async def test_ascii_cells_match_datatable_at_every_justify_and_overflow(width):
    values = ascii_cells()
    app = Pair(columns=(("one", width), ("two", 1)), rows=[(v, v) for v in values])
    async with app.run_test(size=(60, len(values) + 2)) as pilot:
        app.set_focus(None)
        await pilot.pause()
        fast, slow = app.query_one("#fast", KeyedTable), app.query_one("#slow", DataTable)
        assert fast.size.height >= len(values) + 1  # every row on screen
        assert lines(fast) == lines(slow)


async def test_row_regions_and_batched_repaints():
    from widgets._keyed import sync_rows

    app = Pair()
    async with app.run_test(size=(120, 20)) as pilot:
        await pilot.pause()
        fast = app.query_one("#fast", KeyedTable)
        for i in range(fast.row_count):  # one-line rows sit at their index: DataTable's own answer
            assert fast._get_row_region(i) == DataTable._get_row_region(fast, i)
        rows = [(str(i), cells(i)) for i in range(12)]
        fast.clear()
        sync_rows(fast, rows)
        await pilot.pause()
        fast._repaint_regions.clear()
        changed = [(k, (Text("new"),) + c[1:]) if k in ("2", "3", "5") else (k, c) for k, c in rows]
        assert sync_rows(fast, changed) == 3
        # rows 2-3 in one region, row 5 in another (y + 1: the header line)
        header = fast.header_height
        assert sorted((r.y, r.height) for r in fast._repaint_regions) == [(2 + header, 2), (5 + header, 1)]
        await pilot.pause()
        assert lines(fast)[2 + header][0][0].startswith(" new")


async def test_rows_coming_to_a_tall_table_lay_out_only_when_a_scrollbar_comes_or_goes():
    """A table taller than its window takes new rows without a layout of the screen; its
    scrollbar's thumb still follows, and a scrollbar that appears or goes still lays out."""
    app = Pair(rows=[cells(i) for i in range(40)])
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        fast = app.query_one("#fast", KeyedTable)
        assert fast.show_vertical_scrollbar
        layouts = []
        screen = app.screen
        original = screen._refresh_layout
        screen._refresh_layout = lambda *a, **k: (layouts.append(1), original(*a, **k))[1]
        for i in range(40, 45):
            fast.add_row(*cells(i), key=str(i))
        await pilot.pause()
        assert layouts == []
        assert fast.virtual_size.height == 45 + 1 and fast.vertical_scrollbar.window_virtual_size == 46
        for i in range(3, 45):
            fast.remove_row(str(i))
        await pilot.pause()
        assert not fast.show_vertical_scrollbar and layouts  # the scrollbar went: a layout
