"""`pgpreflight snapshot` against real sessions: idle, idle in transaction, blocked, a slow
statement, and a large table with an awkward name. Waits poll with a timeout, never sleep for state."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import asyncpg
import pytest
from pg_helpers import fresh_database

from tui.config import Config, resolve_target
from tui.db.snapshot import take_snapshot

pytestmark = [pytest.mark.pg, pytest.mark.asyncio(loop_scope="session")]

# the names tests/pg/conftest.py creates (conftest modules are not imported from)
DB = "snapdb"
SCHEMA = 'Sales "EU" ü'
TABLE = 'Big table "x" — ñ'
QUALIFIED = '"Sales ""EU"" ü"."Big table ""x"" — ñ"'
HIDDEN_ROLE = "watcher"
HIDDEN_PW = "w4tcher-Pw-123"


def run_cli(*args, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


async def run_cli_async(*args, timeout=60):
    # the scene's sessions live on this event loop: run the CLI without blocking it
    return await asyncio.to_thread(run_cli, *args, timeout=timeout)


async def test_snapshot_json_shows_real_sessions(scene):
    p = scene["pids"]
    res = await run_cli_async("snapshot", "--dsn", scene["dsn"], "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert set(data) >= {"server", "connections", "slow_queries", "tables", "host"}
    assert data["server"]["version_num"] >= 120000
    assert data["server"]["max_connections"] == 100
    sessions = {s["pid"]: s for s in data["connections"]["sessions"]}
    # idle ones are included, own ones never
    assert sessions[p["idle"]]["state"] == "idle"
    assert sessions[p["iit"]]["state"] == "idle in transaction"
    assert sessions[p["iit"]]["xact_age_s"] is not None
    assert sessions[p["waiter"]]["blocked_by"] == [p["holder"]]
    assert sessions[p["waiter"]]["wait_event_type"] == "Lock"
    assert sessions[p["holder"]]["blocked_by"] == []
    assert sessions[p["slow"]]["state"] == "active" and "pg_sleep(60)" in sessions[p["slow"]]["query"]
    assert p["own"] not in sessions
    assert not [s for s in data["connections"]["sessions"] if s["application_name"].startswith("pgpreflight")]
    # oldest first
    ages = [s["xact_age_s"] if s["xact_age_s"] is not None else (s["query_age_s"] or 0)
            for s in data["connections"]["sessions"]]
    assert all(a >= b - 0.05 for a, b in zip(ages, ages[1:])), ages
    # counts aggregated on the server agree with the list
    by_state = data["connections"]["by_state"]
    assert by_state["idle in transaction"] >= 2  # iit and holder
    assert by_state["active"] >= 2  # waiter and slow
    assert data["connections"]["total"] == sum(by_state.values()) == len(sessions)
    assert data["connections"]["sessions_omitted"] == 0
    assert data["connections"]["by_application"]["test-slow"] == 1
    # the big table is locked ACCESS EXCLUSIVE: not measured (no queueing behind the lock), so its size is
    # null, never a pg_class figure passed off as measured; it still ranks first (by its estimate), and
    # the lock's holder is named
    big = data["tables"]["tables"][0]
    assert big["qualified_name"] == QUALIFIED and big["locked"] is True
    assert big["table_bytes"] is None and big["total_bytes"] is None
    assert big["locked_by"] == scene["pids"]["holder"], (big, scene["pids"])
    assert big["last_measured_bytes"] is None  # one poll: this process never measured it


async def test_snapshot_tables_quote_awkward_names(snapdb):
    res = await run_cli_async("snapshot", "--dsn", snapdb, "--format", "json")
    assert res.returncode == 0, res.stderr
    tables = json.loads(res.stdout)["tables"]
    big = tables["tables"][0]
    assert (big["schema"], big["name"]) == (SCHEMA, TABLE)
    assert big["qualified_name"] == QUALIFIED
    assert big["locked"] is False
    assert big["total_bytes"] >= big["table_bytes"] + big["index_bytes"] > 10 * 1024 * 1024
    assert big["index_bytes"] > 0
    assert big["est_rows"] == 60000
    assert tables["database_bytes"] > big["total_bytes"]
    names = [t["name"] for t in tables["tables"]]
    assert "small_one" in names and names.index("small_one") > 0
    # the quoted name really names the table
    conn = await asyncpg.connect(snapdb)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM {big['qualified_name']}") == 60000  # noqa: S608 - from quote_ident
    finally:
        await conn.close()


async def test_snapshot_slow_queries_from_pg_stat_statements(scene):
    conn = await asyncpg.connect(scene["dsn"])
    try:
        for _ in range(3):
            await conn.execute("SELECT pg_sleep(0.05) /* measured-marker */")
    finally:
        await conn.close()
    res = await run_cli_async("snapshot", "--dsn", scene["dsn"], "--format", "json")
    sq = json.loads(res.stdout)["slow_queries"]
    assert sq["source"] == "pg_stat_statements"
    mine = [s for s in sq["statements"] if "measured-marker" in s["query"]]
    assert mine and mine[0]["calls"] == 3 and mine[0]["mean_ms"] >= 45 and mine[0]["total_ms"] >= 140
    assert 0 < mine[0]["share"] <= 1
    assert not [s for s in sq["statements"] if s["query"].startswith("-- pgpreflight")]


async def test_snapshot_text_format(scene):
    res = await run_cli_async("snapshot", "--dsn", scene["dsn"], "--format", "text")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "blocking chains:" in out
    assert f"{scene['pids']['holder']} " in out and f"└ {scene['pids']['waiter']}" in out
    assert QUALIFIED in out
    assert "host: cpu" in out


async def test_snapshot_caps_sessions_and_counts_the_rest(scene):
    cfg = Config(target=resolve_target(scene["dsn"], env={}))
    snap = await take_snapshot(cfg, session_limit=2)
    c = snap.connections
    assert len(c.sessions) == 2
    assert c.sessions_omitted == c.total - 2 and c.sessions_omitted >= 4
    assert snap.host is not None and snap.host.disks and snap.host.disks[0].label == "data directory"


async def test_fallback_without_the_extension_names_the_fix(cluster, scene):
    # the postgres database has pg_stat_statements preloaded but not created
    cfg = Config(target=resolve_target(cluster.dsn("postgres"), env={}))
    snap = await take_snapshot(cfg)
    sq = snap.slow_queries
    assert sq.source == "pg_stat_activity"
    assert "CREATE EXTENSION pg_stat_statements" in sq.message
    assert any("pg_sleep(60)" in s.query and s.pid == scene["pids"]["slow"] for s in sq.statements)


async def test_other_users_query_text_is_hidden_with_the_grant(cluster, scene):
    dsn = cluster.tcp_dsn(DB, HIDDEN_ROLE, HIDDEN_PW)
    res = await run_cli_async("snapshot", "--dsn", dsn, "--format", "json")
    assert res.returncode == 0, res.stderr
    assert HIDDEN_PW not in res.stdout and HIDDEN_PW not in res.stderr
    sessions = {s["pid"]: s for s in json.loads(res.stdout)["connections"]["sessions"]}
    slow = sessions[scene["pids"]["slow"]]
    assert slow["query"] == f"<hidden: GRANT pg_read_all_stats TO {HIDDEN_ROLE}>"
    assert slow["query_hidden"] is True


async def test_bad_target_is_one_line_exit_2():
    res = await run_cli_async("snapshot", "--dsn", "postgresql://nobody@127.0.0.1:1/x", "--format", "json")
    assert res.returncode == 2
    assert res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


async def test_tables_ranking_catches_a_table_loaded_since_its_last_analyze(cluster):
    """Candidates come from the catalog (relpages, as of the last VACUUM/ANALYZE) and the statistics
    (tuples counted at commit): a table bulk-loaded a moment ago ranks by the second."""
    await fresh_database(cluster, "rankdb")
    conn = await asyncpg.connect(cluster.dsn("rankdb"))
    try:
        for i in range(60):  # 60 analyzed tables of one page each outrank an unanalyzed table by relpages
            await conn.execute(f"CREATE TABLE small_{i} (id int) WITH (autovacuum_enabled = off); "
                               f"INSERT INTO small_{i} VALUES (1); ANALYZE small_{i}")
        await conn.execute("CREATE TABLE fresh_load (id int, pad text) WITH (autovacuum_enabled = off)")
        await conn.execute("INSERT INTO fresh_load SELECT g, repeat('x', 100) FROM generate_series(1, 30000) g")
        assert await conn.fetchval("SELECT relpages FROM pg_class WHERE relname = 'fresh_load'") == 0
    finally:
        await conn.close()
    snap = await take_snapshot(Config(target=resolve_target(cluster.dsn("rankdb"), env={})))
    top = snap.tables.tables[0]
    assert top.qualified_name == "public.fresh_load" and top.total_bytes > 3 * 1024 * 1024
    assert len(snap.tables.tables) == 50


async def test_tables_poll_without_tables_still_reports_the_database_size(cluster):
    """The database size rides on the tables query's rows: with no table there is no row, and the size
    comes from database_size.sql on its own."""
    from tui.db.poller import TablesPoller

    await fresh_database(cluster, "notablesdb")
    conn = await asyncpg.connect(cluster.dsn("notablesdb"))
    try:
        snap = await TablesPoller().poll(conn)
        assert snap.tables == () and snap.note == ""
        assert snap.database_bytes == await conn.fetchval("SELECT pg_database_size(current_database())") > 0
        await conn.execute("CREATE TABLE one (id int)")
        snap = await TablesPoller().poll(conn)
        assert [t.name for t in snap.tables] == ["one"]
        assert snap.database_bytes == await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()


async def test_tables_poll_keeps_skipping_a_locked_table_once_the_statement_is_generic(cluster):
    """asyncpg prepares the tables query once and re-executes it, on the server's generic plan: polled
    16 times on one session, a table held ACCESS EXCLUSIVE is never sized by a size function that would
    queue behind the lock (lock_timeout would turn it into a skipped round): its size is unknown, shown as
    the last size this poller measured, with its age, and the pid holding the lock."""
    from tui.db.poller import TablesPoller

    await fresh_database(cluster, "lockeddb")
    setup = await asyncpg.connect(cluster.dsn("lockeddb"))
    locker = await asyncpg.connect(cluster.dsn("lockeddb"))
    conn = await asyncpg.connect(cluster.dsn("lockeddb"), server_settings={"lock_timeout": "500"})
    try:
        await setup.execute("CREATE TABLE migrating (id int PRIMARY KEY, pad text); "
                            "INSERT INTO migrating SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g; "
                            "CREATE TABLE other (id int); INSERT INTO other VALUES (1); ANALYZE")
        poller = TablesPoller()
        for _ in range(6):  # past the statement cache's first executions
            await poller.poll(conn)
        block = int(await setup.fetchval("SELECT current_setting('block_size')"))
        pages = await setup.fetchval("SELECT relpages FROM pg_class WHERE relname = 'migrating'")
        measured = {t.name: t for t in (await poller.poll(conn)).tables}["migrating"].total_bytes
        assert measured > pages * block  # heap, indexes and the other forks
        await locker.execute("BEGIN; LOCK TABLE migrating IN ACCESS EXCLUSIVE MODE")
        for _ in range(10):
            snap = await poller.poll(conn)
            assert snap.note == ""  # no size function waited for the lock
            by_name = {t.name: t for t in snap.tables}
            m = by_name["migrating"]
            assert m.locked and m.table_bytes is None and m.index_bytes is None and m.toast_bytes is None
            assert m.total_bytes is None and m.locked_by == locker.get_server_pid()
            assert m.last_bytes == measured and m.last_measured_age_s is not None
            assert m.size_text.endswith(f"ago, locked by pid {m.locked_by})")
            assert not by_name["other"].locked and by_name["other"].table_bytes == block
            assert snap.database_bytes > 0
        await locker.execute("ROLLBACK")
        snap = await poller.poll(conn)
        m = {t.name: t for t in snap.tables}["migrating"]
        assert not m.locked and m.total_bytes >= m.table_bytes + m.index_bytes > pages * block
    finally:
        await conn.close()
        await locker.close()
        await setup.close()


async def test_partitioned_table_is_the_sum_of_its_partitions(cluster):
    """A partitioned table (pagila's payment) reads as the sum of its partitions, with their count, and
    the partitions are folded under it, not listed beside it as unrelated tables."""
    await fresh_database(cluster, "partsdb")
    c = await asyncpg.connect(cluster.dsn("partsdb"))
    try:
        await c.execute("""
            CREATE TABLE payment (id bigint, paid_at date NOT NULL, amount numeric) PARTITION BY RANGE (paid_at);
            CREATE TABLE payment_p1 PARTITION OF payment FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');
            CREATE TABLE payment_p2 PARTITION OF payment FOR VALUES FROM ('2022-02-01') TO ('2022-03-01');
            CREATE TABLE payment_p3 PARTITION OF payment FOR VALUES FROM ('2022-03-01') TO ('2022-04-01');
            CREATE INDEX ON payment (paid_at);
            INSERT INTO payment SELECT g, date '2022-01-01' + (g % 89), g FROM generate_series(1, 30000) g;
            CREATE TABLE plain (id int); INSERT INTO plain VALUES (1);
            ANALYZE""")
        sizes = {r["relname"]: r["s"] for r in await c.fetch(
            "SELECT relname, pg_total_relation_size(oid) AS s FROM pg_class WHERE relname LIKE 'payment_p_'")}
    finally:
        await c.close()
    res = await run_cli_async("snapshot", "--dsn", cluster.dsn("partsdb"), "--format", "json")
    assert res.returncode == 0, res.stderr
    tables = json.loads(res.stdout)["tables"]["tables"]
    names = [t["name"] for t in tables]
    assert "payment" in names and not any(n.startswith("payment_p") for n in names), names
    pay = next(t for t in tables if t["name"] == "payment")
    assert pay["partition_count"] == 3
    assert pay["total_bytes"] == sum(sizes.values()) > 0
    assert sorted(p["name"] for p in pay["partitions"]) == ["payment_p1", "payment_p2", "payment_p3"]
    assert {p["name"]: p["total_bytes"] for p in pay["partitions"]} == sizes
    assert pay["est_rows"] == 30000
    plain = next(t for t in tables if t["name"] == "plain")
    assert plain["partition_count"] is None and plain["partitions"] is None
