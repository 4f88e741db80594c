"""Every probe kind, with a case that passes and one that fails, against the real server.

The module builds its own database (pgpreflight_probes) with scratch tables, so nothing here
depends on the demo data."""
from __future__ import annotations

import asyncio
import gzip
import os
import time

import asyncpg
import pytest

from tui.checklist.probes import ProbeContext, qident, run_checklist, run_probe
from tui.checklist.spec import Checklist, Item, Probe, Section
from tui.checklist.state import ChecklistState, DatabaseIdentity
from tui.model.checklist import ERROR, FAIL, MANUAL, PASS, WARN

pytestmark = [pytest.mark.pg, pytest.mark.asyncio(loop_scope="session")]

DB = "pgpreflight_probes"
EVIL = 'evil"; DROP TABLE accounts; --'

SCHEMA = f"""
CREATE TABLE accounts (
    id          bigserial PRIMARY KEY,
    email       text NOT NULL,
    tier        text,
    balance     integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts(id),
    total       numeric(10,2)
);
CREATE TABLE events (id bigint, kind text, at timestamptz);
INSERT INTO events SELECT g, 'k' || (g % 50), now() - g * interval '1 second' FROM generate_series(1, 20000) g;
CREATE INDEX zz_whatever_name ON events (at DESC);
CREATE INDEX ON accounts (lower(email));
CREATE UNIQUE INDEX accounts_email_uq ON accounts (email);
ALTER TABLE accounts ADD CONSTRAINT positive_balance CHECK (balance >= 0);
ALTER TABLE orders ADD CONSTRAINT total_small CHECK (total < 1000) NOT VALID;
CREATE TABLE dupes (v int);
INSERT INTO dupes VALUES (1), (1);
CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz DEFAULT now());
INSERT INTO schema_migrations (version) VALUES ('001'), ('002');
CREATE TABLE {qident(EVIL)} (x int);
ANALYZE;
"""


@pytest.fixture(scope="module")
def probe_dsn(cluster):
    async def setup():
        conn = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {DB}")
            await conn.execute(f"CREATE DATABASE {DB}")
        finally:
            await conn.close()
        conn = await asyncpg.connect(cluster.dsn(DB))
        try:
            await conn.execute(SCHEMA)
            # an INVALID index, as a failed CREATE INDEX CONCURRENTLY leaves it
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute("CREATE UNIQUE INDEX CONCURRENTLY dupes_v_uq ON dupes (v)")
        finally:
            await conn.close()

    asyncio.run(setup())
    return cluster.dsn(DB)


@pytest.fixture
async def conn(probe_dsn):
    c = await asyncpg.connect(probe_dsn)
    yield c
    await c.close()


@pytest.fixture
def ctx(tmp_path):
    return ProbeContext(app_root=tmp_path, state=ChecklistState(DatabaseIdentity("1", DB)), statement_timeout_ms=2000)


def item(kind: str, **params) -> Item:
    return Item(id=f"t.{kind}", title=kind, section="t", probe=Probe(kind, params))


async def probe(conn, ctx, kind, **params):
    r = await run_probe(conn, item(kind, **params), ctx)
    assert r.detail and "\n" not in r.detail
    return r


# ---------------------------------------------------------------------------------------------- sql
async def test_sql(conn, ctx):
    q_none = "SELECT relname FROM pg_class WHERE relname = 'no_such_thing'"
    assert (await probe(conn, ctx, "sql", query=q_none, expect="empty")).status == PASS
    r = await probe(conn, ctx, "sql", query="SELECT relname FROM pg_class WHERE relname IN ('accounts', 'orders') ORDER BY 1",
                    expect="empty")
    assert r.status == FAIL and r.detail == "2 found: accounts, orders"
    r = await probe(conn, ctx, "sql", query=q_none, expect="empty", on_fail="warn")
    assert r.status == PASS
    r = await probe(conn, ctx, "sql", query="SELECT 'x' WHERE true", expect="empty", on_fail="warn")
    assert r.status == WARN
    r = await probe(conn, ctx, "sql", query="SELECT count(*) FROM events", op=">=", value=20000)
    assert r.status == PASS and "20000" in r.detail
    r = await probe(conn, ctx, "sql", query="SELECT count(*) FROM events", op="<", value=10)
    assert r.status == FAIL and r.detail == "value 20000, needs < 10"
    r = await probe(conn, ctx, "sql", query="SELECT 'warn' AS status, 'half full' AS detail")
    assert (r.status, r.detail) == (WARN, "half full")


async def test_sql_cannot_write(conn, ctx):
    r = await probe(conn, ctx, "sql", query="INSERT INTO events VALUES (0, 'x', now()) RETURNING id")
    assert r.status == ERROR and "read-only" in r.detail
    assert await conn.fetchval("SELECT count(*) FROM events WHERE id = 0") == 0


async def test_statement_timeout_per_probe_and_the_rest_still_run(conn, ctx):
    slow = Item(id="a.slow", title="slow", section="a",
                probe=Probe("sql", {"query": "SELECT pg_sleep(3)", "timeout_ms": 200}))
    fine = Item(id="a.fine", title="fine", section="a", probe=Probe("table_exists", {"table": "accounts"}))
    cl = Checklist("t", "t", (Section("a", "A", (slow, fine)),))
    t0 = time.monotonic()
    res = await run_checklist(conn, cl, ctx)
    assert time.monotonic() - t0 < 2
    assert res["a.slow"].status == ERROR and "timed out after 200 ms" in res["a.slow"].detail
    assert res["a.fine"].status == PASS


# ---------------------------------------------------------------------------------------------- tables, columns
async def test_table_exists(conn, ctx):
    assert (await probe(conn, ctx, "table_exists", tables=["accounts", "public.orders", "nope|events"])).status == PASS
    r = await probe(conn, ctx, "table_exists", tables=["accounts", "ghosts", "a_x|b_x"])
    assert r.status == FAIL and r.detail == "missing: ghosts, a_x or b_x"


async def test_identifiers_are_quoted_never_pasted(conn, ctx):
    assert (await probe(conn, ctx, "table_exists", table=EVIL)).status == PASS
    r = await probe(conn, ctx, "columns", table=EVIL, columns={"x": "int"})
    assert r.status == PASS
    assert await conn.fetchval("SELECT to_regclass('accounts') IS NOT NULL")


async def test_columns(conn, ctx):
    r = await probe(conn, ctx, "columns", table="accounts",
                    columns={"id": "bigserial", "email": "text", "balance": "int", "created_at": "timestamptz"})
    assert r.status == PASS and r.detail == "4 columns of 1 table match"
    r = await probe(conn, ctx, "columns", tables=[{"table": "orders", "columns": {"total": "numeric(12,2)",
                                                                                   "note": "text"}}])
    assert r.status == FAIL
    assert r.detail == "orders.total is numeric(10,2), expected numeric(12,2), orders.note missing"
    r = await probe(conn, ctx, "columns", table="ghosts", columns={"id": "int"})
    assert r.status == FAIL and r.detail == "table ghosts does not exist"


# ---------------------------------------------------------------------------------------------- indexes
async def test_index_exists_matches_by_columns_order_expression_not_name(conn, ctx):
    r = await probe(conn, ctx, "index_exists", table="events", indexes=[{"name": "idx_events_at", "columns": ["at DESC"]}])
    assert r.status == PASS and "zz_whatever_name" in r.detail
    r = await probe(conn, ctx, "index_exists", table="accounts",
                    indexes=[{"name": "x", "columns": ["lower(email)"]}, {"name": "y", "columns": ["email"]}])
    assert r.status == PASS
    r = await probe(conn, ctx, "index_exists", table="events",
                    indexes=[{"name": "a", "columns": ["at"]}, {"name": "b", "columns": ["kind"]},
                             {"name": "c", "columns": ["at DESC NULLS LAST"]}])
    assert r.status == FAIL
    assert r.detail == "missing on events: (at), (kind), (at DESC NULLS LAST)"


async def test_index_exists_reports_invalid_index_and_missing_table(conn, ctx):
    r = await probe(conn, ctx, "index_exists", table="dupes", indexes=[{"name": "u", "columns": ["v"], "unique": True}])
    assert r.status == FAIL and r.detail == "INVALID on dupes: dupes_v_uq (v)"
    r = await probe(conn, ctx, "index_exists", table="ghosts", indexes=[{"name": "u", "columns": ["v"]}])
    assert r.status == FAIL and r.detail == "table ghosts does not exist"


# ---------------------------------------------------------------------------------------------- constraints
async def test_constraint_check_and_not_valid(conn, ctx):
    r = await probe(conn, ctx, "constraint", table="accounts", type="check", expression="balance >= 0")
    assert r.status == PASS and "positive_balance" in r.detail
    r = await probe(conn, ctx, "constraint", table="accounts", type="check", expression="balance > 0")
    assert r.status == FAIL and r.detail == "missing: CHECK (balance > 0) on accounts"
    r = await probe(conn, ctx, "constraint", table="orders", type="check", expression="total < 1000")
    assert r.status == FAIL and "NOT VALID" in r.detail


async def test_constraint_fk_unique_not_null_pk(conn, ctx):
    ok = [{"table": "orders", "type": "foreign_key", "columns": ["account_id"], "references": "accounts"},
          {"table": "accounts", "type": "unique", "columns": ["email"]},  # a unique index does it
          {"table": "accounts", "type": "not_null", "columns": ["email", "balance"]},
          {"table": "accounts", "type": "primary_key", "columns": ["id"]}]
    r = await probe(conn, ctx, "constraint", constraints=ok)
    assert r.status == PASS and r.detail.startswith("all 4 in place")
    bad = [{"table": "orders", "type": "foreign_key", "columns": ["account_id"], "references": "events"},
           {"table": "accounts", "type": "not_null", "columns": ["tier"]},
           {"table": "events", "type": "primary_key", "columns": ["id"]}]
    r = await probe(conn, ctx, "constraint", constraints=bad)
    assert r.status == FAIL
    assert r.detail == ("missing foreign key orders(account_id) → events, accounts.tier allows NULL, "
                        "missing: PRIMARY KEY events(id)")


# ---------------------------------------------------------------------------------------------- extension, setting
async def test_extension(conn, ctx, cluster):
    r = await probe(conn, ctx, "extension", name="plpgsql")
    assert r.status == PASS and "plpgsql" in r.detail
    r = await probe(conn, ctx, "extension", name="no_such_extension")
    assert r.status == FAIL and "not available" in r.detail
    if cluster.pg_stat_statements:
        r = await probe(conn, ctx, "extension", name="pg_stat_statements", preload=True)
        assert r.status == FAIL and r.detail == f"preloaded, but CREATE EXTENSION pg_stat_statements was not run in {DB}"


async def test_setting(conn, ctx):
    r = await probe(conn, ctx, "setting", name="max_connections", op=">=", value=10)
    assert r.status == PASS and r.detail.startswith("max_connections = ")
    r = await probe(conn, ctx, "setting", name="log_min_duration_statement", op="between", value=[0, 1000])
    assert r.status == FAIL
    assert r.detail == "log_min_duration_statement = -1 (off), needs between 0 and 1000 ms"
    r = await probe(conn, ctx, "setting", name="no_such_setting", op="==", value=1)
    assert r.status == ERROR


async def test_setting_knows_pending_restart(conn, ctx):
    cur = await conn.fetchval("SELECT setting FROM pg_settings WHERE name = 'max_prepared_transactions'")
    await conn.execute(f"ALTER SYSTEM SET max_prepared_transactions = {int(cur) + 5}")
    await conn.execute("SELECT pg_reload_conf()")
    try:
        async def pending():
            return await conn.fetchval("SELECT pending_restart FROM pg_settings WHERE name = 'max_prepared_transactions'")
        deadline = time.monotonic() + 10
        while not await pending():
            assert time.monotonic() < deadline, "pending_restart never showed"
            await asyncio.sleep(0.05)
        r = await probe(conn, ctx, "setting", name="max_prepared_transactions", op=">=", value=0)
        assert r.status == WARN and "pending_restart" in r.detail
    finally:
        await conn.execute("ALTER SYSTEM RESET max_prepared_transactions")
        await conn.execute("SELECT pg_reload_conf()")


# ---------------------------------------------------------------------------------------------- files
async def test_file_pattern(conn, ctx, tmp_path):
    (tmp_path / "server").mkdir()
    lines = ["// pool", "const DEFAULT_POOL_CONFIG = {", "  max: 10,", "};"]
    (tmp_path / "server" / "db.ts").write_text("\n".join(lines))
    params = dict(file="server/db.ts", pattern=r"^\s*max:\s*(\d+)", label="max", op=">=", value=20)
    r = await probe(conn, ctx, "file_pattern", **params)
    assert r.status == FAIL and r.detail == "max: 10 in server/db.ts line 3, needs ≥ 20"
    (tmp_path / "server" / "db.ts").write_text("\n".join(lines).replace("max: 10", "max: 25"))
    r = await probe(conn, ctx, "file_pattern", **params)
    assert r.status == PASS and r.detail == "max: 25 in server/db.ts line 3, needs ≥ 20"
    r = await probe(conn, ctx, "file_pattern", **{**params, "file": "server/nope.ts"})
    assert r.status == ERROR and "--app-root" in r.detail


async def test_migrations_against_tracking_table_and_tables(conn, ctx, tmp_path):
    d = tmp_path / "migrations"
    d.mkdir()
    (d / "001_accounts.sql").write_text("CREATE TABLE IF NOT EXISTS accounts (id bigserial);")
    (d / "002_orders.sql").write_text("CREATE TABLE orders (id int);\n-- CREATE TABLE commented_out (x int);")
    r = await probe(conn, ctx, "migrations", dir="migrations", tracking_table="schema_migrations", expect_count=2)
    assert r.status == PASS and r.detail == "all 2 migrations applied (schema_migrations)"
    (d / "003_ghosts.sql").write_text("CREATE TABLE ghosts (id int);")
    r = await probe(conn, ctx, "migrations", dir="migrations", tracking_table="schema_migrations")
    assert r.status == FAIL and r.detail == "not applied: 003_ghosts.sql"
    r = await probe(conn, ctx, "migrations", dir="migrations", tracking_table="no_tracking")
    assert r.status == FAIL and r.detail.endswith("missing ghosts (003_ghosts.sql)")
    (d / "003_ghosts.sql").unlink()
    r = await probe(conn, ctx, "migrations", dir="migrations")
    assert r.status == PASS and "all 2 exist" in r.detail


async def test_explain(conn, ctx):
    r = await probe(conn, ctx, "explain", queries=[
        {"table": "events", "sql": "SELECT * FROM events WHERE at > now() - interval '5 seconds'"}])
    assert r.status == PASS and "zz_whatever_name" in r.detail
    r = await probe(conn, ctx, "explain", queries=[{"table": "events", "sql": "SELECT * FROM events WHERE kind = 'k1'"}])
    assert r.status == FAIL and r.detail == "no index used on events: Seq Scan (query 1)"
    r = await probe(conn, ctx, "explain", queries=[{"table": "ghosts", "sql": "SELECT * FROM ghosts"}])
    assert r.status == FAIL and r.detail == "table ghosts does not exist"


async def test_backup_files(conn, ctx, tmp_path):
    d = tmp_path / "backup"
    d.mkdir()
    r = await probe(conn, ctx, "backup_files", dir=str(d), pattern="db-*.sql.gz", max_age_hours=26)
    assert r.status == FAIL and r.detail.startswith("no file matching db-*.sql.gz")
    good = d / "db-20260105.sql.gz"
    good.write_bytes(gzip.compress(b"-- PostgreSQL database dump\n" * 100))
    r = await probe(conn, ctx, "backup_files", dir=str(d), pattern="db-*.sql.gz", max_age_hours=26)
    assert r.status == PASS and "db-20260105.sql.gz" in r.detail and ("gzip -t ok" in r.detail or "stream ok" in r.detail)
    bad = d / "db-20260106.sql.gz"
    bad.write_bytes(gzip.compress(b"x" * 5000)[:-20])
    r = await probe(conn, ctx, "backup_files", dir=str(d), pattern="db-*.sql.gz", max_age_hours=26)
    assert r.status == FAIL and "db-20260106.sql.gz" in r.detail
    bad.unlink()
    old = time.time() - 30 * 3600
    os.utime(good, (old, old))
    r = await probe(conn, ctx, "backup_files", dir=str(d), pattern="db-*.sql.gz", max_age_hours=26)
    assert r.status == FAIL and "older than 26 h" in r.detail


async def test_last_run_reads_fix_results_from_state(conn, ctx):
    params = dict(fix="connection_test", max_age_hours=24, require={"connections": ">= 20", "failures": "== 0"})
    r = await probe(conn, ctx, "last_run", **params)
    # headless words: the command, not a TUI key
    assert r.status == FAIL and r.detail.startswith("never run on this database: run its connection_test fix "
                                                    "(pgpreflight fix "), r.detail
    ctx.state.set_fix_run("connection_test", True, {"connections": 25, "failures": 0, "p95_ms": 12}, by="alice",
                          at="2026-12-01T21:30:05+00:00")
    ctx.now = 1796164800.0  # 2026-12-01T22:40:00Z: the pass is reported at its time, not with an age that goes stale
    r = await probe(conn, ctx, "last_run", **dict(params, max_age_hours=1e6))
    assert r.status == PASS and r.detail.startswith("passed at 2026-12-01 21:30 UTC by alice"), r.detail
    assert "connections 25" in r.detail
    ctx.now = __import__("time").time()
    ctx.state.set_fix_run("connection_test", True, {"connections": 10, "failures": 0})
    r = await probe(conn, ctx, "last_run", **params)
    assert r.status == FAIL and "connections 10, needs ≥ 20" in r.detail
    ctx.state.set_fix_run("connection_test", False, {"connections": 25, "failures": 4}, detail="too many connections")
    r = await probe(conn, ctx, "last_run", **params)
    assert r.status == FAIL and "failed: too many connections" in r.detail
    ctx.state.set_fix_run("connection_test", True, {"connections": 25, "failures": 0}, at="2020-01-01T00:00:00+00:00")
    r = await probe(conn, ctx, "last_run", **params)
    assert r.status == FAIL and "older than 24 h" in r.detail


async def test_log_scan(conn, ctx, tmp_path, cluster):
    log = tmp_path / "postgresql.log"
    log.write_text("LOG:  database system is ready\nLOG:  checkpoint complete\n")
    r = await probe(conn, ctx, "log_scan", path=str(log))
    assert r.status == PASS and str(log) in r.detail
    with log.open("a") as f:
        f.write("FATAL:  sorry, too many clients already\n")
        f.write("FATAL:  remaining connection slots are reserved for non-replication superuser connections\n")
    r = await probe(conn, ctx, "log_scan", path=str(log), patterns=["too many clients", "remaining connection slots"])
    assert r.status == FAIL and r.detail.startswith("1 × 'too many clients', 1 × 'remaining connection slots'")
    # the test cluster logs to stderr (no logging_collector): the server cannot say where, so a person checks
    r = await probe(conn, ctx, "log_scan")
    assert r.status == MANUAL and "not readable" in r.detail


async def test_manual_and_ticks(conn, ctx):
    m = Item(id="m.one", title="one", section="m", probe=Probe("manual", {}))
    roll = Item(id="m.all", title="all", section="m", probe=Probe("items", {"refs": ["m.one"]}))
    cl = Checklist("t", "t", (Section("m", "M", (m, roll)),))
    res = await run_checklist(conn, cl, ctx)
    assert res["m.one"].status == MANUAL and res["m.all"].status == MANUAL
    ctx.state.set_tick("m.one", by="alice", at="2026-01-05T10:00:00+00:00")
    res = await run_checklist(conn, cl, ctx)
    assert res["m.one"].status == PASS and res["m.one"].detail == "ticked by alice at 2026-01-05 10:00 UTC"  # whole, never cut
    assert res["m.all"].status == PASS


async def test_general_checks_find_the_invalid_index(conn, ctx):
    from tui.checklist.spec import load_checklist

    res = await run_checklist(conn, load_checklist("general"), ctx, skip_kinds={"last_run"})
    assert res["health.invalid_indexes"].status == FAIL and "dupes_v_uq" in res["health.invalid_indexes"].detail
    assert res["health.tables_without_pk"].status == WARN and "events" in res["health.tables_without_pk"].detail
    assert res["health.xid_age"].status == PASS
    assert all(r.status != ERROR for r in res.values()), {k: r.detail for k, r in res.items() if r.status == ERROR}


async def test_connection_headroom_against_the_peak(conn, ctx):
    r = await probe(conn, ctx, "connection_headroom")
    assert r.status == PASS and "usable connections (max_connections" in r.detail
    peak_now = ctx.state.peaks["connections"]["value"]
    assert peak_now >= 1
    usable = await conn.fetchval("SELECT current_setting('max_connections')::int - "
                                 "current_setting('superuser_reserved_connections')::int - "
                                 "coalesce(current_setting('reserved_connections', true)::int, 0)")
    # a peak seen earlier (kept in the state) counts, not only the sessions open now
    from datetime import datetime, timezone
    ctx.state.peaks["connections"] = {"value": usable - 2, "at": datetime.now(timezone.utc).isoformat()}
    r = await probe(conn, ctx, "connection_headroom")
    assert r.status == FAIL and r.detail.startswith(f"peak {usable - 2} of {usable} usable") and "peak seen at" in r.detail
    ctx.state.peaks["connections"] = {"value": int(usable * 0.8), "at": datetime.now(timezone.utc).isoformat()}
    assert (await probe(conn, ctx, "connection_headroom")).status == WARN
    # a peak older than the window is forgotten
    ctx.state.peaks["connections"] = {"value": usable - 2, "at": "2020-01-01T00:00:00+00:00"}
    assert (await probe(conn, ctx, "connection_headroom")).status == PASS
