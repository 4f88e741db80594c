"""The live app against the real server: the panes poll and show real sessions, hidden panes are
not polled, cancel/terminate go through the confirmation and the fix machinery, and an optional
query that fails on privileges or a timeout turns itself off once."""
from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from pg_helpers import fresh_database
from textual.widgets import DataTable

from tui import audit
from tui.config import Config, resolve_target
from tui.db.poller import SlowQueriesPoller
from tui.screens.app import PreflightApp
from widgets.confirm import ConfirmSignalScreen, QueryDetailScreen

from pg_helpers import live_app, until  # noqa: E402

pytestmark = [pytest.mark.pg, pytest.mark.asyncio(loop_scope="session")]

QUALIFIED = '"Sales ""EU"" ü"."Big table ""x"" — ñ"'  # as tests/pg/conftest.py creates it


def table_keys(app, table_id) -> list[str]:
    t = app.query_one(table_id, DataTable)
    return [t.coordinate_to_cell_key((i, 0)).row_key.value for i in range(t.row_count)]


async def test_live_panes_show_real_sessions_and_skip_hidden_panes(scene, state_dir):
    p = scene["pids"]
    app = live_app(scene["dsn"], state_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: str(p["waiter"]) in table_keys(app, "#sessions"), what="the blocked session")
        table = app.query_one("#sessions", DataTable)
        assert table.get_cell(str(p["waiter"]), "blocked_by").plain == str(p["holder"])
        assert "red" in str(table.get_cell(str(p["waiter"]), "pid").style)
        keys = table_keys(app, "#sessions")
        assert str(p["idle"]) not in keys and str(p["own"]) not in keys  # idle hidden, own never
        await until(pilot, lambda: app.polls["connections"] >= 3, what="three polls")
        # off screen: slow queries and tables not at all; the host once a minute (the disk alert)
        assert app.polls["tables"] == 0 and app.polls["slow"] == 0 and app.polls["host"] <= 1
        assert len([w for w in app.workers if w.group == "poll"]) == 1  # one loop: polls cannot overlap
        await pilot.press("i")
        await until(pilot, lambda: str(p["idle"]) in table_keys(app, "#sessions"), what="idle sessions")
        await pilot.press("3")
        await until(pilot, lambda: QUALIFIED in table_keys(app, "#table-sizes"), what="table sizes")
        sizes = app.query_one("#table-sizes", DataTable)
        # the holder's ACCESS EXCLUSIVE: named, and the size not made up
        assert sizes.get_cell(QUALIFIED, "name").plain == QUALIFIED + f" (locked by pid {p['holder']})"
        assert sizes.get_cell(QUALIFIED, "total").plain == "unknown"
        polled = app.polls["tables"]
        await until(pilot, lambda: app.polls["server"] >= 8, what="more header polls")
        assert app.polls["tables"] == polled  # 30 s interval: not again yet
        await pilot.press("2")
        await until(pilot, lambda: app.query_one("#statements", DataTable).row_count > 0, what="statements")
        # a modal on top: polls go on and still reach the panes underneath (found live: they crashed)
        await until(pilot, lambda: app.focused is app.query_one("#statements"), what="focus on the statements")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, QueryDetailScreen), what="the detail view")
        n = app.polls["slow"]
        await until(pilot, lambda: app.polls["slow"] >= n + 3, what="polls under the modal")
        await pilot.press("escape")
        await pilot.press("4")
        await until(pilot, lambda: "data directory" in str(app.query_one("#host").render()), what="host metrics")


async def test_live_cancel_goes_through_confirmation_and_fix(scene, state_dir):
    p = scene["pids"]
    app = live_app(scene["dsn"], state_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: str(p["slow"]) in table_keys(app, "#sessions"), what="the slow session")
        table = app.query_one("#sessions", DataTable)
        await pilot.press("p")  # pause, so the rows hold still while we aim
        table.move_cursor(row=table_keys(app, "#sessions").index(str(p["slow"])))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen), what="the confirmation")
        assert [s.pid for s in app.screen.sessions] == [p["slow"]]
        await pilot.press("enter")  # Cancel query is focused
        with pytest.raises(asyncpg.QueryCanceledError):
            await asyncio.wait_for(scene["slow_task"], 10)
        await until(pilot, lambda: audit.read(state_dir), what="the audit log")
        done = [e for e in audit.read(state_dir) if e["outcome"].startswith("ok")]
        assert done and done[-1]["action"] == "fix cancel_backend"
        assert done[-1]["statements"] == [f"SELECT pg_cancel_backend({p['slow']})"]


async def test_live_terminate_needs_a_second_confirmation(scene, state_dir):
    p = scene["pids"]
    app = live_app(scene["dsn"], state_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: str(p["holder"]) in table_keys(app, "#sessions"), what="the lock holder")
        await pilot.press("p")
        table = app.query_one("#sessions", DataTable)
        table.move_cursor(row=table_keys(app, "#sessions").index(str(p["holder"])))
        await pilot.press("K", "t")
        await until(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen) and app.screen.second,
                    what="the second confirmation")
        await pilot.press("enter")  # focus starts on Back
        await until(pilot, lambda: not isinstance(app.screen, ConfirmSignalScreen), what="back")
        assert app.signal_requests == []
        assert not scene["blocked_task"].done()
        await pilot.press("K", "t")
        await until(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen) and app.screen.second,
                    what="the second confirmation")
        await pilot.press("t")
        assert (await asyncio.wait_for(scene["blocked_task"], 10))[0][0] == 60000  # the lock went with it
        assert app.signal_requests == [("terminate", (p["holder"],), 2)]


async def test_optional_pg_stat_statements_turns_off_once_on_permission_error(cluster, snapdb):
    await fresh_database(cluster, "privdb")
    admin = await asyncpg.connect(cluster.dsn("privdb"))
    try:
        await admin.execute("CREATE EXTENSION pg_stat_statements")
        await admin.execute("REVOKE ALL ON pg_stat_statements FROM PUBLIC")
    finally:
        await admin.close()
    conn = await asyncpg.connect(cluster.tcp_dsn("privdb", "watcher", "w4tcher-Pw-123"))
    try:
        poller = SlowQueriesPoller()
        first = await poller.poll(conn)
        assert first.source == "pg_stat_activity" and "turned off" in first.message
        notices = poller.parts.take_notices()
        assert len(notices) == 1 and "permission denied" in notices[0]
        second = await poller.poll(conn)
        assert second.source == "pg_stat_activity" and poller.parts.take_notices() == ()
    finally:
        await conn.close()


async def test_optional_pg_stat_statements_turns_off_once_on_timeout(cluster, snapdb):
    locker = await asyncpg.connect(snapdb)
    conn = await asyncpg.connect(snapdb)
    try:
        await locker.execute("BEGIN; LOCK TABLE pg_stat_statements IN ACCESS EXCLUSIVE MODE")
        poller = SlowQueriesPoller(optional_timeout_s=0.5)
        t0 = time.monotonic()
        first = await poller.poll(conn)
        assert time.monotonic() - t0 < 5
        assert first.source == "pg_stat_activity" and "timed out" in first.message
        assert poller.parts.take_notices() == ("pg_stat_statements turned off: it timed out",)
        assert await conn.fetchval("SELECT 1") == 1  # the session is still usable
        await poller.poll(conn)
        assert poller.parts.take_notices() == ()
    finally:
        await locker.execute("ROLLBACK")
        await locker.close()
        await conn.close()


async def test_not_preloaded_pg_stat_statements_names_the_fix(state_dir):
    """CREATE EXTENSION alone is not enough: without shared_preload_libraries the pane says so."""
    from tui.cluster import start_cluster

    c = await asyncio.to_thread(start_cluster, None, None, False)  # pg_stat_statements not preloaded
    try:
        admin = await asyncpg.connect(c.dsn("postgres"))
        try:
            await admin.execute("CREATE EXTENSION pg_stat_statements")
            sleeper = asyncio.ensure_future(admin.execute("SELECT pg_sleep(30) /* still running */"))
            conn = await asyncpg.connect(c.dsn("postgres"))
            try:
                async def running():
                    return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                                               "'SELECT pg_sleep(30)%' AND state = 'active'")
                deadline = time.monotonic() + 10
                while not await running():
                    assert time.monotonic() < deadline, "the slow statement never started"
                    await asyncio.sleep(0.05)
                snap = await SlowQueriesPoller().poll(conn)
                assert snap.source == "pg_stat_activity"
                assert "shared_preload_libraries" in snap.message and "restart" in snap.message
                assert any("pg_sleep(30)" in s.query for s in snap.statements)
            finally:
                await conn.close()
                admin.terminate()
                await asyncio.gather(sleeper, return_exceptions=True)
        except BaseException:
            admin.terminate()
            raise
    finally:
        await asyncio.to_thread(c.destroy)


async def test_table_growth_per_minute_from_successive_polls(cluster):
    from tui.db.poller import TablesPoller

    await fresh_database(cluster, "growdb")
    conn = await asyncpg.connect(cluster.dsn("growdb"))
    try:
        await conn.execute("CREATE TABLE growing (id int, pad text)")
        poller = TablesPoller()
        first = await poller.poll(conn)
        assert first.tables[0].name == "growing" and first.tables[0].growth_bytes_per_min is None
        await conn.execute("INSERT INTO growing SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
        second = await poller.poll(conn)
        t = second.tables[0]
        grown = t.total_bytes - first.tables[0].total_bytes
        assert grown > 4 * 1024 * 1024
        assert t.growth_bytes_per_min is not None and t.growth_bytes_per_min >= grown  # over far less than a minute
    finally:
        await conn.close()


async def test_showing_idle_sessions_polls_the_sessions_at_once(scene, state_dir):
    """`i` lists the idle sessions from a poll of its own, made at once: at a 30 s refresh only
    that poll can bring them, and it polls neither the server nor the database size again."""
    p = scene["pids"]
    app = PreflightApp(Config(target=resolve_target(scene["dsn"], env={}), state_dir=state_dir, refresh=30.0))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: str(p["waiter"]) in table_keys(app, "#sessions"), what="the first poll")
        server_polls, session_polls = app.polls["server"], app.polls["connections"]
        assert str(p["idle"]) not in table_keys(app, "#sessions")
        await pilot.press("i")
        await until(pilot, lambda: str(p["idle"]) in table_keys(app, "#sessions"), timeout=5, what="idle sessions")
        assert app.polls["connections"] == session_polls + 1 and app.polls["server"] == server_polls
