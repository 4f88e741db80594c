"""The live panes on CANNED snapshots (no database): keys, sort, filter, the confirmation,
and SVG snapshots of each pane at 80x24 and 160x48. Timestamps are fixed so snapshots are stable."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from textual.widgets import DataTable, TabbedContent

from tui import audit
from tui.config import Config, Target
from tui.model.snapshot import (
    REMOTE_HOST_MESSAGE, ConnectionsSnapshot, DiskUsage, HostSnapshot, ServerInfo, Session, SlowQueriesSnapshot,
    Snapshot, Statement, TablesSnapshot, TableStat,
)
from tui.screens.app import PreflightApp
from widgets.confirm import ConfirmSignalScreen, QueryDetailScreen
from widgets.connections import ConnectionsPane
from widgets.slow_queries import SlowQueriesPane

pytestmark = pytest.mark.ui

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=timezone.utc)
# a socket directory that does not exist: a write attempted from a canned app fails fast, offline
NOWHERE = "/nonexistent/pgpreflight-canned"


def session(pid, state, user="app", db="images", app="web", query="SELECT 1", xact=None, qage=1.0,
            state_age=None, blocked=(), wait=(None, None), hidden=False, client="10.0.0.7"):
    return Session(pid=pid, database=db, user=user, application_name=app, client_addr=client, state=state,
                   wait_event_type=wait[0], wait_event=wait[1], blocked_by=tuple(blocked), xact_age_s=xact,
                   query_age_s=qage, state_age_s=state_age if state_age is not None else qage, query=query,
                   query_hidden=hidden)


SESSIONS = (
    session(101, "idle in transaction", user="worker", app="jobs", query="UPDATE images SET status = 'done' WHERE id = 7",
            xact=754.0, qage=750.0, state_age=750.0),
    session(102, "active", user="migrate", app="alembic", query="ALTER TABLE images ADD COLUMN exif jsonb",
            xact=320.0, qage=300.0, blocked=(101,), wait=("Lock", "relation")),
    session(103, "active", user="api", app="web", query="SELECT * FROM images WHERE user_id = $1 ORDER BY created_at",
            xact=95.0, qage=95.0, blocked=(102,), wait=("Lock", "relation")),
    session(104, "active", user="report", app="metabase", query="SELECT pg_sleep(60) /* monthly report */",
            xact=42.0, qage=42.0),
    session(105, "idle", user="api", app="web", query="COMMIT", qage=30.0),
    session(106, "idle", user="api", app="web", query="SELECT 1", qage=12.0),
    session(107, "active", user="other", app="psql", query="<hidden: GRANT pg_read_all_stats TO monitor>",
            qage=5.0, xact=5.0, hidden=True, client=None),
)


def connections(sessions=SESSIONS, omitted=0):
    states: dict[str, int] = {}
    for s in sessions:
        states[s.state] = states.get(s.state, 0) + 1
    return ConnectionsSnapshot(
        total=len(sessions) + omitted, max_connections=100,
        by_state=tuple(sorted(states.items(), key=lambda kv: -kv[1])), by_database=(("images", len(sessions)),),
        by_application=(("web", 3), ("jobs", 1), ("alembic", 1), ("metabase", 1), ("psql", 1)),
        by_user=(("api", 3), ("worker", 1), ("migrate", 1), ("report", 1), ("other", 1)),
        sessions=tuple(sessions), sessions_omitted=omitted, includes_idle=True, polled_at=1000.0,
    )


STATEMENTS = (
    Statement(key="11", query="SELECT * FROM images WHERE user_id = $1 ORDER BY created_at", calls=48210, rows=964200,
              mean_ms=38.2, total_ms=1_841_622.0, share=0.61, cache_hit_ratio=0.87, database="images", user="api",
              interval_calls=120, interval_ms=4584.0, interval_s=2.0, minute_calls=3600, minute_ms=137_520.0),
    Statement(key="12", query="UPDATE credits SET balance = balance - $1 WHERE user_id = $2", calls=9120, rows=9120,
              mean_ms=2.4, total_ms=21_888.0, share=0.0073, cache_hit_ratio=0.999, database="images", user="api",
              interval_calls=22, interval_ms=52.8, interval_s=2.0, minute_calls=640, minute_ms=1536.0),
    Statement(key="13", query="SELECT count(*) FROM ui_events WHERE created_at > now() - interval '30 days' "
              "GROUP BY event_type, user_id ORDER BY 1 DESC " + "/* long tail of the query text */ " * 4,
              calls=14, rows=14, mean_ms=8_400.5, total_ms=117_607.0, share=0.039, cache_hit_ratio=0.42,
              database="images", user="report", interval_calls=0, interval_ms=0.0, interval_s=2.0,
              minute_calls=1, minute_ms=8400.5),
)


def slow(source="pg_stat_statements"):
    if source == "pg_stat_statements":
        return SlowQueriesSnapshot("pg_stat_statements", STATEMENTS, total_ms=3_019_052.0, polled_at=1000.0)
    return SlowQueriesSnapshot(
        "pg_stat_activity",
        (Statement(key="pid:104", query="SELECT pg_sleep(60) /* monthly report */", calls=1, rows=0, mean_ms=42000.0,
                   total_ms=42000.0, database="images", user="report", pid=104, age_s=42.0),),
        message="pg_stat_statements is not installed: add pg_stat_statements to shared_preload_libraries, "
                "restart the server, then run CREATE EXTENSION pg_stat_statements",
        polled_at=1000.0)


TABLES = TablesSnapshot(database_bytes=3_221_225_472, polled_at=1000.0, tables=(
    TableStat("public", "images", "public.images", 1_610_612_736, 1_073_741_824, 429_496_729, 107_374_183,
              2_400_000, 18_220, 310, 12_000, T0 - timedelta(hours=3), growth_bytes_per_min=5_242_880.0),
    TableStat('Sales "EU" ü', 'Big table "x" — ñ', '"Sales ""EU"" ü"."Big table ""x"" — ñ"', 268_435_456,
              200_000_000, 60_000_000, 8_435_456, 600_000, 12, 4_000, 650_000, None, growth_bytes_per_min=0.0),
    TableStat("public", "ui_events", "public.ui_events", None, None, None, None, 900_000, 4,
              0, 10, None, locked=True, locked_by=4242, last_bytes=134_217_728, last_measured_age_s=42.0),
    TableStat("public", "payment", "public.payment", 66_060_288, 50_331_648, 15_728_640, 0, 16_049, 0, 0, 0, None,
              partition_count=2, partitions=(
                  TableStat("public", "payment_p2022_01", "public.payment_p2022_01", 40_000_000, 30_000_000,
                            10_000_000, None, 9_000, None, None, None, None),
                  TableStat("public", "payment_p2022_02", "public.payment_p2022_02", 26_060_288, 20_331_648,
                            5_728_640, None, 7_049, None, None, None, None))),
))

HOST = HostSnapshot(cpu_percent=37.5, cpu_count=4, load=(1.25, 0.98, 0.7), mem_total=16 * 2**30,
                    mem_used=9 * 2**30, mem_available=6 * 2**30, swap_used=0,
                    disks=(DiskUsage("data directory", "/var/lib/postgresql/15/main", 500 * 2**30, 420 * 2**30,
                                     80 * 2**30),
                           DiskUsage("backup directory", "/backups", 1000 * 2**30, 300 * 2**30, 700 * 2**30)),
                    polled_at=1000.0)

SERVER = ServerInfo(version="15.4 (Debian 15.4-1)", version_num=150004, started_at=T0 - timedelta(days=3, hours=2),
                    now=T0, database="images", connections=9, max_connections=100, reserved_connections=3,
                    xacts=123456, blks_hit=990000, blks_read=10000, in_recovery=False, polled_at=1000.0,
                    database_bytes=3_221_225_472, database_growth_bps=87_381.0, tps=143.0, cache_hit_ratio=0.991)


def canned(host=HOST, slow_source="pg_stat_statements", sessions=SESSIONS) -> Snapshot:
    return Snapshot(target="postgresql://app@db.internal:5432/images", taken_at=T0, server=SERVER,
                    connections=connections(sessions), slow_queries=slow(slow_source), tables=TABLES, host=host,
                    host_message="" if host else REMOTE_HOST_MESSAGE)


def make_app(state_dir: Path | None = None, read_only=False, **kw) -> PreflightApp:
    cfg = Config(target=Target(host=NOWHERE, port=5432, user="app", database="images"), read_only=read_only,
                 state_dir=state_dir or Path("/nonexistent/state"), connect_timeout=1.0)
    return PreflightApp(cfg, snapshot=canned(**kw), connection_history=[5, 6, 8, 9, 12, 20, 35, 30, 18, 9])


def rows(app) -> list[str]:
    table = app.query_one("#sessions", DataTable)
    return [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]


async def wait_for(pilot, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.02)


# -- pilot tests -------------------------------------------------------------------------

async def test_canned_app_does_not_poll():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.polling is False
        assert all(v == 0 for v in app.polls.values())
        assert not [w for w in app.workers if w.group == "poll"]


async def test_idle_hidden_by_default_and_i_shows_them():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert rows(app) == ["101", "102", "103", "104", "107"]  # oldest first, idle hidden
        await pilot.press("i")
        assert rows(app) == ["101", "102", "103", "104", "105", "106", "107"]
        assert app.show_idle is True
        await pilot.press("i")
        assert "105" not in rows(app)


async def test_sort_key_cycles_order():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one(ConnectionsPane)
        await pilot.press("s")
        assert pane.sort == "pid" and rows(app) == ["101", "102", "103", "104", "107"]
        await pilot.press("s")
        assert pane.sort == "state"
        assert rows(app)[:3] == ["102", "103", "104"]  # active first (alphabetical), oldest first within
        await pilot.press("s")
        assert pane.sort == "user" and rows(app)[0] == "103"  # api


async def test_filter_narrows_the_sessions():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("slash")
        await pilot.press(*"metabase")
        assert rows(app) == ["104"]
        await pilot.press("escape")
        assert rows(app) == ["101", "102", "103", "104", "107"]


async def test_blocked_and_old_idle_in_transaction_stand_out():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one("#sessions", DataTable)
        assert "yellow" in str(table.get_cell("101", "pid").style)  # idle in xact 750 s > 60 s
        assert "red" in str(table.get_cell("103", "pid").style)  # blocked
        assert "red" in str(table.get_cell("102", "pid").style)  # blocked (and blocking)
        assert str(table.get_cell("104", "pid").style) == ""
        assert table.get_cell("107", "query").plain.startswith("<hidden: GRANT pg_read_al")  # cut to the width left
        await pilot.press("b")
        chains = str(app.query_one("#chains").render())
        assert "101" in chains and "└ 102" in chains and "└ 103" in chains


async def test_cancel_confirmation_names_pid_user_query_and_is_audited(tmp_path):
    app = make_app(state_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("down", "down", "down")  # 104, the report
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen))
        text = " ".join(str(w.render()) for w in app.screen.query("Static"))
        assert "pid 104" in text and "user report" in text and "pg_sleep(60)" in text
        labels = [str(b.label) for b in app.screen.query("Button")]
        assert labels[0].startswith("Cancel query") and labels[1].startswith("Terminate")
        assert app.screen.focused.id == "do-cancel"
        await pilot.press("escape")  # back: nothing happens
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmSignalScreen))
        assert audit.read(tmp_path) == []
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen))
        await pilot.press("enter")  # the focused button: cancel
        await wait_for(pilot, lambda: app.signal_requests)
        assert app.signal_requests == [("cancel", (104,), 1)]  # one confirmation is enough to cancel
        # the canned target does not exist: the fix machinery cannot connect, and says so in one line
        await wait_for(pilot, lambda: any("cannot connect" in str(n.message) for n in app._notifications))


async def test_tagged_sessions_terminate_together_after_two_confirmations(tmp_path):
    app = make_app(state_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("space", "space")  # tags 101, moves on, tags 102
        assert app.query_one(ConnectionsPane).tagged == {101, 102}
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen))
        assert [s.pid for s in app.screen.sessions] == [101, 102]
        assert app.screen.focused.id == "do-terminate"
        await pilot.press("t")
        # terminate asks twice; the second starts on Back
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen) and app.screen.second)
        assert app.screen.focused.id == "do-back"
        assert not app.screen.query("#do-cancel")
        await pilot.press("c")  # not offered on the second screen: ignored
        assert isinstance(app.screen, ConfirmSignalScreen) and app.signal_requests == []
        await pilot.press("t")
        await wait_for(pilot, lambda: app.signal_requests)
        assert app.signal_requests == [("terminate", (101, 102), 2)]


async def test_read_only_refuses_without_asking(tmp_path):
    app = make_app(state_dir=tmp_path, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("K")
        await wait_for(pilot, lambda: audit.read(tmp_path))
        assert not isinstance(app.screen, ConfirmSignalScreen)
        entry = audit.read(tmp_path)[0]
        assert entry["outcome"] == "refused: read-only" and entry["action"] == "fix terminate_backend"
        assert entry["target"] == app.config.target.display
        await wait_for(pilot, lambda: any("read-only" in str(n.message) for n in app._notifications))


async def test_number_keys_switch_tabs():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tabs = app.query_one(TabbedContent)
        for key, tab in (("3", "tab-tables"), ("2", "tab-slow"), ("4", "tab-host"), ("1", "tab-connections")):
            await pilot.press(key)
            assert tabs.active == tab
            assert app.visible_pane() == tab.removeprefix("tab-")
        await pilot.press("9")  # no such tab: nothing happens
        assert tabs.active == "tab-connections"


async def test_slow_queries_toggle_and_detail():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        pane = app.query_one(SlowQueriesPane)
        table = app.query_one("#statements", DataTable)
        first = lambda: table.coordinate_to_cell_key((0, 0)).row_key.value  # noqa: E731
        assert pane.order == "mean" and first() == "13"
        await wait_for(pilot, lambda: app.focused is table)  # the pane's keys need its table focused
        await pilot.press("m")
        assert pane.order == "total" and first() == "11"
        # the cursor follows its row (keyed by queryid): still on 13, now second
        assert table.cursor_row == 1 and pane.current().key == "13"
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, QueryDetailScreen))
        full = str(app.screen.query_one("#detail-query").render())
        assert full == STATEMENTS[2].query and full.count("long tail") == 4  # all of it, not the cell's 200
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, QueryDetailScreen))


async def test_slow_queries_fallback_names_the_fix():
    app = make_app(slow_source="pg_stat_activity")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await pilot.pause()
        msg = str(app.query_one("#slow-message").render())
        assert "CREATE EXTENSION pg_stat_statements" in msg and "shared_preload_libraries" in msg
        assert app.query_one("#statements", DataTable).row_count == 1


async def test_tables_quote_names_and_flag_seq_scans():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        table = app.query_one("#table-sizes", DataTable)
        assert table.get_cell('"Sales ""EU"" ü"."Big table ""x"" — ñ"', "name").plain.startswith('"Sales ""EU""')
        assert table.get_cell('"Sales ""EU"" ü"."Big table ""x"" — ñ"', "flag").plain == ""  # idx 4,000 > seq 12
        assert table.get_cell("public.images", "flag").plain == "SEQ-SCAN"  # 1.5 GiB, seq 18,220 > idx 310
        # locked: the last size measured, marked, never a made-up figure
        assert table.get_cell("public.ui_events", "total").plain == "128.0 MiB?"
        assert table.get_cell("public.ui_events", "name").plain.endswith("(locked by pid 4242)")
        # a partitioned table: the sum of its partitions, folded; Enter unfolds them under it
        assert table.get_cell("public.payment", "name").plain == "▸ public.payment (2 partitions)"
        assert table.get_cell("public.payment", "total").plain == "63.0 MiB"
        keys = [table.coordinate_to_cell_key((r, 0)).row_key.value for r in range(table.row_count)]
        assert not any("payment_p2022" in k for k in keys)
        table.move_cursor(row=keys.index("public.payment"))
        await pilot.press("enter")
        await pilot.pause()
        keys = [table.coordinate_to_cell_key((r, 0)).row_key.value for r in range(table.row_count)]
        i = keys.index("public.payment")
        assert keys[i + 1].endswith("public.payment_p2022_01") and keys[i + 2].endswith("public.payment_p2022_02")
        assert table.get_cell(keys[i + 2], "name").plain.strip().startswith("└ public.payment_p2022_02")
        await pilot.press("enter")
        await pilot.pause()
        assert table.row_count == len(keys) - 2
        assert "3.0 GiB" in str(app.query_one("#tables-summary").render())


async def test_remote_server_has_no_host_metrics():
    app = make_app(host=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        assert "host metrics unavailable for a remote server" in str(app.query_one("#host").render())


async def test_keyed_update_changes_only_changed_cells_and_keeps_cursor():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one(ConnectionsPane)
        await pilot.press("down", "down")
        assert rows(app)[app.query_one("#sessions", DataTable).cursor_row] == "103"
        from widgets._keyed import sync_rows
        changed = list(SESSIONS)
        changed[3] = session(104, "active", user="report", app="metabase",
                             query="SELECT pg_sleep(60) /* monthly report */", xact=44.0, qage=44.0)
        calls = []
        table = app.query_one("#sessions", DataTable)
        orig = table.update_cells
        table.update_cells = lambda key, changes, **kw: (calls.extend((key, c) for c in changes),
                                                         orig(key, changes, **kw))[1]
        pane.show_snapshot(connections(tuple(changed)))
        await pilot.pause()
        assert sorted(calls) == [("104", "query_age"), ("104", "xact")]
        assert rows(app)[table.cursor_row] == "103"
        # a session that went away is removed; the cursor stays on its pid
        pane.show_snapshot(connections(tuple(s for s in changed if s.pid != 101)))
        await pilot.pause()
        assert "101" not in rows(app) and rows(app)[table.cursor_row] == "103"
        assert sync_rows is not None


async def test_sync_rows_survives_a_repeated_id():
    # found live: pg_stat_statements repeats a queryid across databases; a table must never crash on it
    from widgets._keyed import sync_rows

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one("#sessions", DataTable)
        n = len(table.columns)  # the columns the width leaves room for
        sync_rows(table, [("1", tuple("x" * n)), ("1", tuple("y" * n)), ("2", tuple("z" * n))])
        await pilot.pause()
        assert table.row_count == 2 and table.get_cell("1", "pid") == "x"


# -- SVG snapshots -------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("key", ["1", "2", "3", "4"], ids=["connections", "slow", "tables", "host"])
def test_pane_snapshot(snap_compare, key, size):
    async def settle(pilot):
        await pilot.press(key)
        await pilot.pause()
    assert snap_compare(make_app(), terminal_size=size, run_before=settle)


def test_blocking_chains_snapshot(snap_compare):
    async def settle(pilot):
        await pilot.press("i", "b")
        await pilot.pause()
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=settle)


def test_confirm_modal_snapshot(snap_compare):
    async def settle(pilot):
        await pilot.press("down", "down", "down", "c")
        await pilot.pause()
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=settle)


async def test_pane_ready_tells_when_a_pane_has_data():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert all(app.pane_ready(t) for t in ("tab-connections", "tab-slow", "tab-tables", "tab-host"))
    cfg = Config(target=Target(host=NOWHERE, port=5432, user="app", database="images"))
    empty = PreflightApp(cfg, poll=False)
    async with empty.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert not empty.pane_ready("tab-connections") and not empty.pane_ready("tab-tables")


async def test_a_theme_change_reaches_the_rendered_lines():
    """The app keeps the current theme once per name: switching themes must still switch it."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.current_theme.name == app.theme
        dark_ansi = app.ansi_theme
        app.theme = "textual-light"
        await pilot.pause()
        assert app.current_theme.name == "textual-light"
        assert app.ansi_theme is app.ansi_theme_light and app.ansi_theme is not dark_ansi


async def test_a_keys_frame_is_painted_before_the_rows_it_asked_for():
    """`i` redraws the table from what it has; the sessions it asked the server for, however soon
    they come back, are drawn after that frame, not into it (which would hold the key's answer
    back by a screenful of new rows)."""
    from tui.screens.messages import PanePolled

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one(ConnectionsPane)
        order: list[str] = []
        display, show = app._display, pane.show_snapshot
        app._display = lambda screen, update: (order.append("frame"), display(screen, update))[1]
        pane.show_snapshot = lambda snap: (order.append("rows"), show(snap))[1]
        reply = connections(SESSIONS[:3])
        pane.action_toggle_idle()  # the key's own redraw: the table is dirty, no frame painted yet
        app.post_message(PanePolled("connections", reply, prompt=True))  # a reply that came at once
        await wait_for(pilot, lambda: "rows" in order and order[-1] == "frame")
        assert order.index("frame") < order.index("rows")
        assert rows(app) == ["101", "102", "103"]  # and the reply's rows were drawn after all


@pytest.mark.parametrize("key", ["i", "r"])
async def test_a_key_that_asks_for_a_poll_lets_go_of_a_held_repaint(key):
    """A poll round holds its repaint for a moment so that its parts paint as one frame; a key
    pressed meanwhile must not wait for the rest of the round."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.FRAME_HOLD_S = 60.0  # a round that would hold the screen for the whole test
        app._hold_frame()
        assert app._frame_held and app._batch_count == 1
        await pilot.press(key)
        assert not app._frame_held and app._batch_count == 0
