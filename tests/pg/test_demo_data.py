"""The images-mvp demo database, app directory and workload (tui.demo), against a real
throwaway PostgreSQL cluster. The database must reproduce seed/launch-checklist.md,
flaws included: no performance indexes, no CHECK (balance >= 0), pg_stat_statements
preloaded but not created, pool max 10 on server/db.ts:28."""
from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import asyncpg
import pytest
from pg_helpers import own_cluster

from tui.cluster import wait_for
from tui.demo.data import (
    FUNNEL_EVENTS,
    MIGRATION_NAMES,
    MIGRATIONS_TABLE,
    SEED_INDEXES,
    TABLES,
    build_demo_database,
    dsn_with_database,
    migration_files,
    write_app_dir,
)
from tui.demo.workload import APP_NAMES, start_in_thread


def fetch(dsn: str, sql: str, *args) -> list[asyncpg.Record]:
    async def run():
        conn = await asyncpg.connect(dsn, server_settings={"application_name": "pgpreflight-test"})
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def scalar(dsn: str, sql: str, *args):
    return fetch(dsn, sql, *args)[0][0]


@pytest.fixture(scope="module")
def demo_cluster():
    yield from own_cluster()


@pytest.fixture(scope="module")
def demo(demo_cluster):
    t0 = time.monotonic()
    dsn = asyncio.run(build_demo_database(demo_cluster.dsn("postgres"), "metaextract"))
    return SimpleNamespace(dsn=dsn, seconds=time.monotonic() - t0, cluster=demo_cluster)


# -- pure helpers ----------------------------------------------------------------------
@pytest.mark.pg
def test_dsn_with_database_swaps_the_path_and_keeps_the_query():
    uri = "postgresql://postgres@/postgres?host=/tmp/pgpreflight-x&port=5433"
    assert dsn_with_database(uri, "metaextract") == "postgresql://postgres@/metaextract?host=/tmp/pgpreflight-x&port=5433"
    assert dsn_with_database("postgres://u:p@h:5432/db?sslmode=require", "other") == "postgres://u:p@h:5432/other?sslmode=require"
    assert dsn_with_database("postgresql://h", "x") == "postgresql://h/x"
    assert dsn_with_database("postgresql://h/a?dbname=a&port=1", "b") == "postgresql://h/b?dbname=b&port=1"
    assert dsn_with_database("host=/tmp port=5433 dbname=postgres", "metaextract") == "host=/tmp port=5433 dbname='metaextract'"
    assert dsn_with_database("host=/tmp", "m") == "host=/tmp dbname='m'"


@pytest.mark.pg
def test_migration_files_are_the_seeds_five_in_order():
    files = migration_files()
    assert [f.name for f in files] == list(MIGRATION_NAMES) == [
        "001_add_metadata_storage.sql",
        "002_add_trial_usage_tracking.sql",
        "003_add_trial_usage_count.sql",
        "004_add_ui_events.sql",
        "005_add_credit_system.sql",
    ]
    text = "\n".join(f.read_text() for f in files).lower()
    assert "create index idx_extraction" not in text and "idx_image_mvp_events" not in text
    assert "idx_trial_usages" not in text and "check" not in text


# -- the database ------------------------------------------------------------------------
@pytest.mark.pg
def test_build_is_fast_and_returns_the_new_databases_dsn(demo):
    assert demo.seconds < 10.0, f"build took {demo.seconds:.1f}s"
    assert "/metaextract?" in demo.dsn and "host=" in demo.dsn
    assert scalar(demo.dsn, "SELECT current_database()") == "metaextract"


@pytest.mark.pg
def test_the_six_tables_exist(demo):
    rows = fetch(demo.dsn, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    names = {r[0] for r in rows}
    assert set(TABLES) <= names
    assert names - set(TABLES) == {MIGRATIONS_TABLE}


@pytest.mark.pg
def test_columns_match_the_seed(demo):
    rows = fetch(
        demo.dsn,
        "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public'",
    )
    cols = {(r["table_name"], r["column_name"]): r for r in rows}

    def col(table, name, dtype, nullable):
        r = cols.get((table, name))
        assert r is not None, f"{table}.{name} missing"
        assert r["data_type"] == dtype, (table, name, r["data_type"])
        assert (r["is_nullable"] == "YES") == nullable, (table, name)
        return r

    col("users", "id", "text", False)
    col("users", "email", "text", False)
    assert "'free'" in col("users", "tier", "text", False)["column_default"]
    assert "now()" in col("users", "created_at", "timestamp with time zone", False)["column_default"]
    col("subscriptions", "user_id", "text", False)
    col("subscriptions", "tier", "text", False)
    col("subscriptions", "status", "text", False)
    col("subscriptions", "current_period_end", "timestamp with time zone", True)
    col("subscriptions", "created_at", "timestamp with time zone", False)
    col("extraction_analytics", "id", "bigint", False)
    col("extraction_analytics", "user_id", "text", True)
    col("extraction_analytics", "tier", "text", False)
    col("extraction_analytics", "file_type", "text", True)
    col("extraction_analytics", "success", "boolean", False)
    col("extraction_analytics", "processing_ms", "integer", True)
    col("extraction_analytics", "requested_at", "timestamp with time zone", False)
    col("extraction_analytics", "metadata", "jsonb", True)
    col("trial_usages", "id", "bigint", False)
    col("trial_usages", "user_id", "text", True)
    col("trial_usages", "session_id", "text", False)
    col("trial_usages", "email", "text", True)
    assert "'free'" in col("trial_usages", "tier", "text", False)["column_default"]
    assert col("trial_usages", "extraction_count", "integer", False)["column_default"] == "0"
    col("trial_usages", "created_at", "timestamp with time zone", False)
    col("image_mvp_events", "id", "bigint", False)
    col("image_mvp_events", "user_id", "text", True)
    col("image_mvp_events", "session_id", "text", True)
    col("image_mvp_events", "event_type", "text", False)
    col("image_mvp_events", "properties", "jsonb", True)
    col("image_mvp_events", "created_at", "timestamp with time zone", False)
    col("credit_balances", "user_id", "text", False)
    assert col("credit_balances", "balance", "integer", False)["column_default"] == "0"
    col("credit_balances", "updated_at", "timestamp with time zone", False)


@pytest.mark.pg
def test_row_counts_meet_the_minimums(demo):
    counts = {t: scalar(demo.dsn, f"SELECT count(*) FROM {t}") for t in TABLES}
    assert counts["users"] >= 10_000
    assert counts["extraction_analytics"] >= 100_000
    assert counts["image_mvp_events"] >= 200_000
    assert 10_000 <= counts["trial_usages"] <= 20_000
    assert counts["credit_balances"] == counts["users"]
    paying = scalar(demo.dsn, "SELECT count(*) FROM users WHERE tier <> 'free'")
    assert counts["subscriptions"] == paying > 0
    assert scalar(demo.dsn, "SELECT count(*) FROM subscriptions s JOIN users u ON u.id = s.user_id WHERE u.tier = 'free'") == 0
    r = fetch(
        demo.dsn,
        "SELECT min(requested_at) > now() - interval '31 days' AS recent, avg(success::int) AS ok "
        "FROM extraction_analytics",
    )[0]
    assert r["recent"] and 0.85 < r["ok"] < 1.0
    assert scalar(demo.dsn, "SELECT min(balance) FROM credit_balances") >= 0


@pytest.mark.pg
def test_most_users_are_free(demo):
    tiers = {r[0]: r[1] for r in fetch(demo.dsn, "SELECT tier, count(*) FROM users GROUP BY tier")}
    assert set(tiers) == {"free", "professional", "business"}
    share = tiers["free"] / sum(tiers.values())
    assert 0.80 <= share <= 0.90, share


@pytest.mark.pg
def test_funnel_has_exactly_the_six_events_decreasing(demo):
    rows = fetch(demo.dsn, "SELECT event_type, count(*) FROM image_mvp_events GROUP BY event_type")
    counts = {r[0]: r[1] for r in rows}
    assert set(counts) == set(FUNNEL_EVENTS) == {
        "landing_viewed", "upload_selected", "analysis_started",
        "analysis_completed", "paywall_viewed", "purchase_completed",
    }
    ordered = [counts[e] for e in FUNNEL_EVENTS]
    assert ordered == sorted(ordered, reverse=True) and len(set(ordered)) == 6, ordered


@pytest.mark.pg
def test_schema_migrations_records_the_five_versions(demo):
    rows = fetch(demo.dsn, f"SELECT version, name, applied_at FROM {MIGRATIONS_TABLE} ORDER BY version")
    assert [r["version"] for r in rows] == ["001", "002", "003", "004", "005"]
    assert [r["name"] for r in rows] == [
        "add_metadata_storage", "add_trial_usage_tracking", "add_trial_usage_count",
        "add_ui_events", "add_credit_system",
    ]
    assert all(r["applied_at"] is not None for r in rows)


@pytest.mark.pg
def test_none_of_the_seeds_indexes_exist(demo):
    rows = fetch(
        demo.dsn,
        "SELECT c.relname AS tbl, i.relname AS idx, x.indisprimary AS pk, x.indisunique AS uniq "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
    )
    by_table: dict[str, set[str]] = {}
    for r in rows:
        by_table.setdefault(r["tbl"], set()).add(r["idx"])
        if r["tbl"] != "subscriptions":
            assert r["pk"] or r["uniq"], f"unexpected index {r['idx']} on {r['tbl']}"
    for name in SEED_INDEXES:
        assert all(name not in idx for idx in by_table.values()), name
    for t in ("extraction_analytics", "image_mvp_events", "trial_usages", "credit_balances"):
        assert by_table[t] == {f"{t}_pkey"}, by_table[t]
    assert by_table["users"] == {"users_pkey", "users_email_key"}
    assert by_table["subscriptions"] == {"subscriptions_pkey", "idx_subscriptions_user_id"}
    # and pg_indexes (what `\d` shows) agrees
    names = {r[0] for r in fetch(demo.dsn, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert not names & set(SEED_INDEXES)
    assert not any(n.startswith(("idx_extraction", "idx_image_mvp_events", "idx_trial_usages")) for n in names)


@pytest.mark.pg
def test_credit_balances_has_fk_to_users_but_no_check(demo):
    cons = fetch(
        demo.dsn,
        "SELECT contype::text AS contype, confrelid::regclass::text AS ref, pg_get_constraintdef(oid) AS def "
        "FROM pg_constraint WHERE conrelid = 'public.credit_balances'::regclass",
    )
    assert not [c for c in cons if c["contype"] == "c"], cons
    assert any(c["contype"] == "p" and "(user_id)" in c["def"] for c in cons)
    assert any(c["contype"] == "f" and c["ref"] == "users" and "REFERENCES users(id)" in c["def"] for c in cons)
    # the seed's referential_constraints query: subscriptions -> users too
    fks = {(r[0], r[1]) for r in fetch(
        demo.dsn,
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = 'public'::regnamespace",
    )}
    assert fks == {("credit_balances", "users"), ("subscriptions", "users")}
    assert scalar(demo.dsn, "SELECT count(*) FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace") == 0


@pytest.mark.pg
def test_pg_stat_statements_preloaded_but_not_created(demo):
    assert scalar(demo.dsn, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'") == 0
    if demo.cluster.pg_stat_statements:
        assert "pg_stat_statements" in scalar(demo.dsn, "SHOW shared_preload_libraries")


# -- the app directory -----------------------------------------------------------------------
@pytest.mark.pg
def test_write_app_dir_puts_the_pool_config_on_line_28(tmp_path):
    target = tmp_path / "app"
    assert write_app_dir(target) == target
    lines = (target / "server" / "db.ts").read_text().splitlines()
    assert lines[26].strip() == "const DEFAULT_POOL_CONFIG = {"
    assert lines[27].strip() == "max: 10,"
    assert lines[28].strip() == "idleTimeoutMillis: 30000,"
    assert lines[29].strip() == "connectionTimeoutMillis: 2000,"
    assert sum("const DEFAULT_POOL_CONFIG" in line for line in lines) == 1
    copied = sorted(p.name for p in (target / "server" / "migrations").glob("*.sql"))
    assert copied == list(MIGRATION_NAMES)
    for f in migration_files():
        assert (target / "server" / "migrations" / f.name).read_bytes() == f.read_bytes()
    schema = (target / "shared" / "schema.ts").read_text()
    for t in TABLES:
        assert f'pgTable("{t}"' in schema or f'"{t}",' in schema, t
    assert "check(" not in schema.lower()
    # idempotent
    assert write_app_dir(target) == target


@pytest.mark.pg
def test_migrations_apply_with_plain_sql(demo_cluster):
    """The copies in server/migrations are what `psql < file` would run: they work on
    an empty database, in order, on their own."""
    async def run():
        admin = await asyncpg.connect(demo_cluster.dsn("postgres"))
        try:
            await admin.execute("CREATE DATABASE migrations_only")
        finally:
            await admin.close()
        conn = await asyncpg.connect(demo_cluster.dsn("migrations_only"))
        try:
            for f in migration_files():
                await conn.execute(f.read_text())
            return {r[0] for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        finally:
            await conn.close()

    assert asyncio.run(run()) == set(TABLES)


# -- the workload ------------------------------------------------------------------------------
def _workload_sessions(dsn: str) -> list[asyncpg.Record]:
    return fetch(
        dsn,
        "SELECT pid, application_name, state FROM pg_stat_activity WHERE application_name = ANY($1::text[])",
        list(APP_NAMES),
    )


@pytest.mark.pg
def test_workload_runs_and_cleans_up(demo):
    assert all(not n.startswith("pgpreflight") for n in APP_NAMES)
    before = scalar(demo.dsn, "SELECT count(*) FROM extraction_analytics")
    w = start_in_thread(demo.dsn)
    try:
        assert w.ready.is_set()
        wait_for(
            lambda: scalar(
                demo.dsn,
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
                "AND application_name = 'images-mvp-worker' AND now() - state_change > interval '200 ms'",
            ) == 1,
            timeout=15, interval=0.1, what="an images-mvp-worker session idle in transaction",
        )
        wait_for(lambda: scalar(demo.dsn, "SELECT count(*) FROM extraction_analytics") > before,
                 timeout=15, interval=0.1, what="new extraction_analytics rows")
        wait_for(lambda: scalar(demo.dsn, "SELECT count(*) FROM image_mvp_events WHERE created_at > now() - interval '1 minute'") > 0,
                 timeout=15, interval=0.1, what="new funnel events")
        wait_for(lambda: w.stats["slow_queries"] > 0 and w.stats["credits"] > 0,
                 timeout=15, interval=0.1, what="slow queries and credit deductions")
        apps = {r["application_name"] for r in _workload_sessions(demo.dsn)}
        assert apps == set(APP_NAMES)
        assert scalar(demo.dsn, "SELECT min(balance) FROM credit_balances") >= 0
    finally:
        assert w.stop_and_join(10)
    wait_for(lambda: not _workload_sessions(demo.dsn), timeout=10, interval=0.1,
             what="every images-mvp session to go away")
    assert not w.running


@pytest.mark.pg
def test_workload_survives_terminated_sessions_quietly(demo, capfd):
    w = start_in_thread(demo.dsn, idle_respawn=0.5)
    try:
        first = {r["pid"] for r in _workload_sessions(demo.dsn)}
        assert first
        fetch(demo.dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = ANY($1::text[])", list(APP_NAMES))
        uploads = w.stats["uploads"]
        # everything comes back: new backends, the idle transaction, uploads continue
        wait_for(
            lambda: scalar(
                demo.dsn,
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' "
                "AND application_name = 'images-mvp-worker' AND NOT (pid = ANY($1::int[]))",
                list(first),
            ) == 1,
            timeout=20, interval=0.1, what="the idle transaction to be re-opened",
        )
        wait_for(lambda: w.stats["uploads"] > uploads + 3, timeout=20, interval=0.1, what="uploads to resume")
    finally:
        assert w.stop_and_join(10)
    wait_for(lambda: not _workload_sessions(demo.dsn), timeout=10, interval=0.1,
             what="every images-mvp session to go away")
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "Error" not in out + err, (out, err)


@pytest.mark.pg
def test_workload_stop_before_connecting_and_unreachable_server(tmp_path):
    from tui.demo.workload import Workload

    w = Workload("postgresql://postgres@/nope?host=" + str(tmp_path) + "&port=1")
    w.stop()
    asyncio.run(asyncio.wait_for(w.run(), 5))  # returns at once
    with pytest.raises(TimeoutError):
        start_in_thread("postgresql://postgres@/nope?host=" + str(tmp_path) + "&port=1", timeout=1.0)
