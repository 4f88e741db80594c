"""Issue 13 against the real server: the session detail's locks (pg_locks by pid, who blocks whom),
honest cancel (idle and idle in transaction refused before confirming; a terminate reported from
what pg_stat_activity shows next), and slow queries without pgpreflight's own statements (its polls,
an index build, a backup test's pg_dump and restore) while an application's statement still shows.
Waits poll with a timeout; nothing sleeps for state."""
from __future__ import annotations


import asyncpg
import pytest
from pg_helpers import fresh_database, wait_until
from textual.widgets import DataTable, Static

from tui.config import Config, resolve_target
from tui.db.connect import connect
from tui.db.poller import ConnectionsPoller, ServerPoller, SlowQueriesPoller, TablesPoller
from tui.db.sessions import session_locks
from tui.fixes import run_fix
from widgets.confirm import ConfirmSignalScreen
from widgets.session_detail import SessionDetailScreen

from pg_helpers import live_app, until  # noqa: E402

pytestmark = [pytest.mark.pg, pytest.mark.asyncio(loop_scope="session")]

QUALIFIED = '"Sales ""EU"" ü"."Big table ""x"" — ñ"'  # as tests/pg/conftest.py creates it


def table_keys(app) -> list[str]:
    t = app.query_one("#sessions", DataTable)
    return [t.coordinate_to_cell_key((i, 0)).row_key.value for i in range(t.row_count)]


def notices(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_session_locks_name_what_it_holds_waits_for_and_who_blocks_whom(scene):
    p = scene["pids"]
    conn = await asyncpg.connect(scene["dsn"])
    try:
        waiter = await session_locks(conn, p["waiter"])
        holder = await session_locks(conn, p["holder"])
        gone = await session_locks(conn, 999_999)
    finally:
        await conn.close()
    assert waiter.exists and waiter.blocked_by == (p["holder"],) and waiter.blocking == ()
    assert [(w.mode, w.target) for w in waiter.waiting] == [("AccessShareLock", QUALIFIED)]
    assert holder.blocking == (p["waiter"],) and holder.blocked_by == ()
    assert ("AccessExclusiveLock", QUALIFIED) in [(h.mode, h.target) for h in holder.held]
    assert not holder.waiting
    assert not gone.exists


async def test_detail_of_a_blocked_session_shows_its_locks_from_the_server(scene, state_dir):
    p = scene["pids"]
    app = live_app(scene["dsn"], state_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: str(p["waiter"]) in table_keys(app), what="the blocked session")
        await pilot.press("p")  # the rows hold still while we aim
        app.query_one("#sessions", DataTable).move_cursor(row=table_keys(app).index(str(p["waiter"])))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SessionDetailScreen), what="the detail")
        detail = app.screen
        await until(pilot, lambda: detail.locks is not None, what="the locks")
        text = str(detail.query_one("#detail-locks", Static).render())
        assert f"blocked by   {p['holder']}" in text
        assert f"AccessShareLock on {QUALIFIED}" in text
        facts = str(detail.query_one("#detail-facts", Static).render())
        assert "test-waiter" in facts and "Lock: relation" in facts and "backend      started" in facts


async def test_cancel_refuses_idle_and_idle_in_transaction_and_terminate_is_read_back(scene, state_dir):
    p = scene["pids"]
    app = live_app(scene["dsn"], state_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: str(p["iit"]) in table_keys(app), what="the idle-in-transaction session")
        await pilot.press("i")  # idle ones too
        await until(pilot, lambda: {str(p["idle"]), str(p["iit"])} <= set(table_keys(app)), what="idle sessions")
        await pilot.press("p")
        table = app.query_one("#sessions", DataTable)
        for who, state in (("idle", "idle"), ("iit", "idle in transaction")):
            table.move_cursor(row=table_keys(app).index(str(p[who])))
            await pilot.press("c")
            await until(pilot, lambda: any(f"{p[who]} is {state}," in m for m in notices(app)), what="the refusal")
            assert not isinstance(app.screen, ConfirmSignalScreen)
        assert app.signal_requests == []
        table.move_cursor(row=table_keys(app).index(str(p["iit"])))
        await pilot.press("K", "t")
        await until(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen) and app.screen.second,
                    what="the second confirmation")
        await pilot.press("t")
        await until(pilot, lambda: f"terminated {p['iit']}" in notices(app), what="the terminate read back")
    conn = await asyncpg.connect(scene["dsn"])
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", p["iit"]) == 0
    finally:
        await conn.close()


async def test_slow_queries_leave_out_pgpreflights_own_statements(cluster, state_dir, tmp_path):
    dsn = await fresh_database(cluster, "issue13_slow")  # an index build waits for no other test's sessions
    target = resolve_target(dsn, env={})
    cfg = Config(target=target, state_dir=state_dir, backup_dir=tmp_path / "dumps")
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute("CREATE EXTENSION pg_stat_statements")
        await admin.execute("DROP TABLE IF EXISTS issue13_app")
        await admin.execute("CREATE TABLE issue13_app (id int, v text)")
        await admin.execute("INSERT INTO issue13_app SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
        await admin.execute("SELECT pg_stat_statements_reset()")
        # the tool's own work: a backup test (pg_dump, restore into a scratch database), an index build,
        # a VACUUM ANALYZE on its own session, and the monitor's polls
        res = await run_fix(cfg, "backup_test", {}, confirmations=1)
        assert res.ok, res.text()
        res = await run_fix(cfg, "create_index", {"table": "issue13_app", "indexes": [{"name": "ix_issue13_v",
                                                                                      "columns": ["v"]}]},
                            confirmations=1)
        assert res.ok, res.text()
        own = await connect(target, role="fix")
        try:
            await own.execute("VACUUM ANALYZE issue13_app")
            await ServerPoller().poll(own, with_size=True)
            await ConnectionsPoller().poll(own, include_idle=True)
            await TablesPoller().poll(own)
        finally:
            await own.close()
        poll = await connect(target, role="poll")
        poller = SlowQueriesPoller()
        await poller.poll(poll)  # the slow queries' own poll is recorded before the one that is checked
        # the application's statement
        await admin.fetchval("SELECT count(*) FROM issue13_app WHERE v LIKE $1 /* the app */", "a%")
        try:
            async def listed():
                snap = await poller.poll(poll)
                assert snap.source == "pg_stat_statements", snap.message
                return snap if any("/* the app */" in s.query for s in snap.statements) else None
            snap = await wait_until(listed, what="the application's statement in the slow queries")
        finally:
            await poll.close()
        # the statements that reached pg_stat_statements at all: the tool's are there, and left out
        everything = [r["query"] for r in await admin.fetch("SELECT query FROM pg_stat_statements")]
    finally:
        await admin.close()
    assert any("CREATE INDEX CONCURRENTLY" in q for q in everything)  # recorded, with the marker
    shown = [s.query for s in snap.statements]
    assert any("pg_stat_statements p" in q for q in everything)  # the slow queries' own poll
    for own_text in ("CREATE INDEX", "VACUUM", "TO stdout", "pg_stat_statements p", "pg_export_snapshot",
                     "pg_catalog.", "CREATE DATABASE", "pgpreflight", "pg_stat_get_activity", "pg_database_size"):
        assert not [q for q in shown if own_text in q], (own_text, [q for q in shown if own_text in q])
    assert [q for q in shown if "issue13_app" in q] == ["SELECT count(*) FROM issue13_app WHERE v LIKE $1 /* the app */"]
