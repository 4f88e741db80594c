"""Issue 13 on canned snapshots (no database): the session detail with a 4,000-character query at
80x24 (whole and scrollable), the query column taking the width that is left and `w`, the sort
arrows on every table, stale rows dimmed, and cancel refused on idle sessions before confirming."""
from __future__ import annotations

import time

import pytest
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.widgets import DataTable, Static

from tui.model.snapshot import ConnectionState
from tui.screens.messages import ConnectionChanged
from widgets.confirm import ConfirmSignalScreen
from widgets.connections import ConnectionsPane
from widgets.session_detail import SessionDetailScreen

from test_panes import SESSIONS, make_app, rows, session, wait_for

pytestmark = pytest.mark.ui

# 4,000 characters, every word numbered: a word that goes missing or a cut shows
LONG = ("SELECT " + " ".join(f"c{i:04d}" for i in range(800)))[:3990]
LONG = LONG + " " * (3993 - len(LONG)) + " FROM t"
assert len(LONG) == 4000


def long_sessions():
    return (session(201, "active", user="etl", app="loader", query=LONG, xact=10.0, qage=9.0),) + SESSIONS


def header_labels(table: DataTable) -> list[str]:
    return [c.label.plain for c in table.ordered_columns]


def plain(static: Static) -> str:
    return str(static.render())


async def test_detail_shows_a_4000_character_query_whole_and_scrolls_at_80x24():
    app = make_app(sessions=long_sessions())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one("#sessions", DataTable)
        assert rows(app)[0] == "201"
        table.move_cursor(row=0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionDetailScreen))
        screen = app.screen
        assert screen.session.pid == 201
        query = screen.query_one("#detail-query", Static)
        assert " ".join(plain(query).split()) == " ".join(LONG.split())  # the whole query, nothing cut
        body = screen.query_one("#detail-body", VerticalScroll)
        await pilot.pause()
        assert query.size.height > 40  # wrapped: 4,000 characters over ~70 columns
        assert query.size.width <= 80
        assert body.max_scroll_y > 0 and body.scroll_y == 0
        await pilot.press("end")
        await wait_for(pilot, lambda: body.scroll_y == body.max_scroll_y)
        assert body.scroll_y > 0
        facts = plain(screen.query_one("#detail-facts", Static))
        assert "loader" in facts and "10.0.0.7" in facts and "wait event   not waiting" in facts
        # the locks were asked for: this canned app has no server, so the detail says why it has none
        locks = screen.query_one("#detail-locks", Static)
        await wait_for(pilot, lambda: "locks unknown" in plain(locks), timeout=10)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, SessionDetailScreen))


async def test_query_column_takes_the_width_left_and_w_shows_it_whole():
    app = make_app(sessions=long_sessions())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one("#sessions", DataTable)
        cols = list(table.ordered_columns)
        assert cols[-1].key.value == "query"
        used = sum(c.get_render_width(table) for c in cols)
        assert table.size.width - 2 - 4 <= used <= table.size.width  # the query fills the row
        assert cols[-1].width >= 25  # it was 20 characters at 80 columns, cut by the screen edge
        assert len(table.get_cell("201", "query").plain) == cols[-1].width
        line = app.query_one("#conn-query", Static)
        assert not line.display
        table.move_cursor(row=0)
        await pilot.press("w")
        await pilot.pause()
        assert line.display and LONG[-40:] in plain(line).replace("\n", "")
        await pilot.press("down")
        await pilot.pause()
        assert plain(line).startswith(f"{rows(app)[1]} ")  # it follows the cursor
        await pilot.press("w")
        await pilot.pause()
        assert not line.display
    wide = make_app(sessions=long_sessions())
    async with wide.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        table = wide.query_one("#sessions", DataTable)
        keys = [c.key.value for c in table.ordered_columns]
        assert keys[-1] == "query" and {"blocked_by", "wait", "database"} <= set(keys)
        assert list(table.ordered_columns)[-1].width >= 40


async def test_sort_arrow_on_the_sorted_column_of_every_table():
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        table = app.query_one("#sessions", DataTable)
        assert "xact ▼" in header_labels(table) and "pid" in header_labels(table)
        table.move_cursor(row=2)
        aimed = rows(app)[2]
        await pilot.press("s")
        await pilot.pause()
        labels = header_labels(table)
        assert "pid ▲" in labels and "xact" in labels and "xact ▼" not in labels
        assert rows(app) == sorted(rows(app), key=int)
        assert rows(app)[table.cursor_row] == aimed  # the columns were rebuilt: the cursor kept its row
        await pilot.press("s")
        await pilot.pause()
        assert "state ▲" in header_labels(table) and "pid" in header_labels(table)
        await pilot.press("2")
        await pilot.pause()
        slow = app.query_one("#statements", DataTable)
        assert header_labels(slow)[:2] == ["mean ms ▼", "total ms"]
        await pilot.press("m")
        await pilot.pause()
        assert header_labels(slow)[:2] == ["mean ms", "total ms ▼"]
        await pilot.press("3")
        await pilot.pause()
        assert "total ▼" in header_labels(app.query_one("#table-sizes", DataTable))


def row_colors(table: DataTable, y: int) -> list:
    strip = table.render_lines(Region(0, y, table.size.width, 1))[0]
    return [seg.style.color for seg in strip if seg.text.strip() and seg.style and seg.style.color]


async def test_stale_rows_are_dimmed_until_the_connection_is_back():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one(ConnectionsPane)
        table = app.query_one("#sessions", DataTable)
        before = row_colors(table, 3)
        assert before
        app.post_message(ConnectionChanged(ConnectionState("disconnected", "connection refused", 1.0,
                                                           last_ok_at=time.monotonic() - 5)))
        await wait_for(pilot, lambda: pane.has_class("-stale"))
        await pilot.pause()
        dim = row_colors(table, 3)
        assert dim and dim != before
        assert app.query_one("#slow").has_class("-stale") and app.query_one("#tables").has_class("-stale")
        app.post_message(ConnectionChanged(ConnectionState("connected", last_ok_at=time.monotonic())))
        await wait_for(pilot, lambda: not pane.has_class("-stale"))
        await pilot.pause()
        assert row_colors(table, 3) == before


async def test_cancel_on_idle_sessions_is_refused_before_any_confirmation():
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        table = app.query_one("#sessions", DataTable)
        table.move_cursor(row=rows(app).index("101"))  # idle in transaction
        await pilot.press("c")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmSignalScreen) and app.signal_requests == []
        said = [n.message for n in app._notifications]
        assert any("101 is idle in transaction" in m and "K terminates" in m for m in said), said
        await pilot.press("K")  # terminate is still offered
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmSignalScreen))
        table.move_cursor(row=rows(app).index("104"))  # active: cancel is offered
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen))
