"""Guarded fixes against the real server: create_index (cancel halfway, lock_timeout, INVALID leftovers),
add_check_constraint (violations), the guards (confirmation, one fix per object, privileges), session
control. Everything happens in a scratch copy of the demo database (fixes_demo), never the shared one.
Waits poll with a timeout; nothing sleeps for state."""
from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import pytest

from tui.checklist.spec import load_checklist
from tui.checklist.state import fetch_identity, load_state
from tui.config import Config, resolve_target
from tui.fixes import FixError, FixRefused, params_for_item, plan_fix, run_fix, run_followup
from tui.fixes.base import advisory_key
from pg_helpers import own_cluster as start_own_cluster, wait_until

pytestmark = [pytest.mark.pg]  # async tests run by asyncio_mode=auto

DB = "fixes_demo"


@pytest.fixture(scope="module")
def cluster():
    """This module's own throwaway server (it shadows the shared one)."""
    yield from start_own_cluster()


@pytest.fixture(scope="module")
def fixes_dsn(cluster):
    from tui.demo.data import build_demo_database

    dsn = asyncio.run(build_demo_database(cluster.dsn("postgres"), DB, replace=True))

    async def extra():
        c = await asyncpg.connect(dsn)
        try:
            # a table big enough that an index build has phases to watch, under an awkward name
            await c.execute('CREATE TABLE "Big ""t"" x" (id int, v text)')
            await c.execute("""INSERT INTO "Big ""t"" x" SELECT g, md5(g::text) FROM generate_series(1, 200000) g""")
            await c.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
            await c.execute("INSERT INTO accounts SELECT g, CASE WHEN g % 1000 = 0 THEN -g ELSE g END "
                            "FROM generate_series(1, 5000) g")
            await c.execute("CREATE TABLE other (id int)")
            await c.execute("ANALYZE")
        finally:
            await c.close()
    asyncio.run(extra())
    return dsn


def cfg_for(dsn, state_dir, **kw) -> Config:
    return Config(target=resolve_target(dsn, env={}), state_dir=state_dir, **kw)


BIG = 'Big "t" x'


def big_index_params(name="ix_big_v", lock_timeout_ms=None):
    p = {"table": BIG, "indexes": [{"name": name, "columns": ["v"]}]}
    if lock_timeout_ms:
        p["lock_timeout_ms"] = lock_timeout_ms
    return p


async def index_state(conn, name):
    """None when absent, else indisvalid."""
    return await conn.fetchval(
        "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE c.relname = $1", name)


# --------------------------------------------------------------------------------------------- create_index
async def test_create_index_builds_missing_ones_then_has_nothing_to_do(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    item = load_checklist("images-mvp").item("indexes.trial_usages")
    name, params = params_for_item(item)
    plan = await plan_fix(cfg, name, params, item_id=item.id)
    assert not plan.blocked and not plan.nothing_to_do
    assert [s.split(" ON ")[0] for s in plan.statements] == [
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_trial_usages_user"',
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_trial_usages_session"']
    assert any("SHARE UPDATE EXCLUSIVE" in x for x in plan.locks) and "rows" in plan.estimate
    seen = []
    res = await run_fix(cfg, name, params, item_id=item.id, confirmations=1, progress_cb=seen.append)
    assert res.ok, res.summary
    assert res.figures["created"] == 2 and not res.left_behind
    conn = await asyncpg.connect(fixes_dsn)
    try:
        assert await index_state(conn, "idx_trial_usages_user") is True
        assert await index_state(conn, "idx_trial_usages_session") is True
        identity = await fetch_identity(conn)
    finally:
        await conn.close()
    assert seen and seen[-1].fraction == 1.0
    run = load_state(state_dir, identity).fix_run("create_index")
    assert run["ok"] is True and run["item"] == "indexes.trial_usages"
    again = await plan_fix(cfg, name, params, item_id=item.id)
    assert again.nothing_to_do and again.statements == ()
    # the checklist item verifies as passing now
    from tui.checklist.runner import check_database

    check = await check_database(cfg, load_checklist("images-mvp"), only=[item.id])
    assert check.results[item.id].status == "pass", check.results[item.id].detail
    lines = [json.loads(x) for x in (state_dir / "audit.jsonl").read_text().splitlines()]
    assert [x["outcome"].split(":")[0] for x in lines] == ["started", "ok"]
    assert lines[-1]["database"]["name"] == DB and lines[-1]["item"] == item.id
    assert lines[-1]["statements"] == list(plan.statements)


async def _hold_old_snapshot(dsn):
    """A session whose snapshot is older than any index build started after it: CONCURRENTLY waits
    for it in its last phase ('waiting for old snapshots')."""
    holder = await asyncpg.connect(dsn, server_settings={"application_name": "test-old-snapshot"})
    await holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    await holder.fetchval("SELECT count(*) FROM other")
    return holder


async def _run_until_phase(cfg, params, phase_like, options):
    """Start the fix in a task; return (task, cancel event) once pg_stat_progress_create_index shows the phase."""
    cancel = asyncio.Event()
    task = asyncio.create_task(run_fix(cfg, "create_index", params, confirmations=1, cancel_event=cancel,
                                       options=options))
    watch = await asyncpg.connect(**cfg.target.connect_kwargs())
    try:
        async def in_phase():
            if task.done():
                raise AssertionError(f"the fix ended early: {task.result()}")
            return await watch.fetchval(
                "SELECT phase FROM pg_stat_progress_create_index p JOIN pg_stat_activity a USING (pid) "
                "WHERE a.application_name = 'pgpreflight/fix' AND phase LIKE $1", phase_like)
        await wait_until(in_phase, what=f"index build in phase {phase_like}")
    finally:
        await watch.close()
    return task, cancel


async def test_index_build_cancelled_halfway_leaves_no_invalid_index(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    holder = await _hold_old_snapshot(fixes_dsn)
    try:
        task, cancel = await _run_until_phase(cfg, big_index_params("ix_big_cancel"), "%old snapshots%",
                                              {"lock_timeout_ms": 60000, "on_invalid": "drop"})
        conn = await asyncpg.connect(fixes_dsn)
        try:
            assert await index_state(conn, "ix_big_cancel") is False  # halfway: it exists, INVALID
            cancel.set()
            res = await asyncio.wait_for(task, 30)
            assert not res.ok and res.cancelled
            assert "INVALID index it left was dropped" in res.summary
            assert 'DROP INDEX CONCURRENTLY IF EXISTS "public"."ix_big_cancel"' in res.statements
            assert not res.left_behind
            assert await index_state(conn, "ix_big_cancel") is None
            invalid = await conn.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
            assert invalid == 0
        finally:
            await conn.close()
    finally:
        await holder.close()
    lines = [json.loads(x) for x in (state_dir / "audit.jsonl").read_text().splitlines()]
    assert lines[-1]["outcome"].startswith("cancelled")


async def test_index_build_cancelled_in_ui_mode_offers_the_drop(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    holder = await _hold_old_snapshot(fixes_dsn)
    try:
        task, cancel = await _run_until_phase(cfg, big_index_params("ix_big_offer"), "%old snapshots%",
                                              {"lock_timeout_ms": 60000, "on_invalid": "ask"})
        cancel.set()
        res = await asyncio.wait_for(task, 30)
    finally:
        await holder.close()
    assert res.cancelled and res.choice is not None and res.choice.kind == "invalid_index"
    assert res.choice.options[0][0] == "drop" and "DROP INDEX CONCURRENTLY" in res.choice.options[0][1]
    assert any("INVALID index" in x for x in res.left_behind)
    conn = await asyncpg.connect(fixes_dsn)
    try:
        assert await index_state(conn, "ix_big_offer") is False
        follow = await run_followup(cfg, res.choice, "drop")
        assert follow is not None and follow.ok, follow
        assert await index_state(conn, "ix_big_offer") is None
    finally:
        await conn.close()


async def test_lock_timeout_names_the_holder_and_leaves_nothing(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    holder = await asyncpg.connect(fixes_dsn, server_settings={"application_name": "test-lock-holder"})
    try:
        await holder.execute('BEGIN; LOCK TABLE "Big ""t"" x" IN ACCESS EXCLUSIVE MODE')
        t0 = time.monotonic()
        res = await run_fix(cfg, "create_index", big_index_params("ix_big_locked"), confirmations=1,
                            options={"lock_timeout_ms": 300})
        elapsed = time.monotonic() - t0
        assert not res.ok and not res.cancelled
        assert "lock_timeout (300 ms)" in res.summary
        assert f"pid {holder.get_server_pid()}" in res.summary and "test-lock-holder" in res.summary
        assert "no INVALID index was left" in res.summary and not res.left_behind
        assert elapsed < 5
    finally:
        await holder.close()
    conn = await asyncpg.connect(fixes_dsn)
    try:
        assert await index_state(conn, "ix_big_locked") is None
    finally:
        await conn.close()


async def test_bad_index_params_and_missing_table(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    with pytest.raises(FixError, match="single expression"):
        await plan_fix(cfg, "create_index", {"table": "other", "indexes": [{"name": "x", "columns": ["id); DROP TABLE other; --"]}]})
    with pytest.raises(FixError, match="not an access method"):
        await plan_fix(cfg, "create_index", {"table": "other", "indexes": [{"columns": ["id"], "using": "btree; x"}]})
    plan = await plan_fix(cfg, "create_index", {"table": "no_such", "indexes": [{"name": "x", "columns": ["v"]}]})
    assert plan.blocked and "no table" in plan.blockers[0].detail
    with pytest.raises(FixRefused, match="no table"):
        await run_fix(cfg, "create_index", {"table": "no_such", "indexes": [{"name": "x", "columns": ["v"]}]},
                      confirmations=1)


# --------------------------------------------------------------------------------------------- guards
async def test_not_confirmed_refuses_and_changes_nothing(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    with pytest.raises(FixRefused, match="not confirmed"):
        await run_fix(cfg, "create_index", big_index_params("ix_never"), confirmations=0)
    conn = await asyncpg.connect(fixes_dsn)
    try:
        assert await index_state(conn, "ix_never") is None
    finally:
        await conn.close()
    assert json.loads((state_dir / "audit.jsonl").read_text().splitlines()[-1])["outcome"] == "refused: not confirmed"


async def test_one_fix_at_a_time_per_object(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    holder = await _hold_old_snapshot(fixes_dsn)
    try:
        task, cancel = await _run_until_phase(cfg, big_index_params("ix_big_busy"), "%old snapshots%",
                                              {"lock_timeout_ms": 60000})
        with pytest.raises(FixRefused, match="already running"):
            await run_fix(cfg, "create_index", big_index_params("ix_other_name"), confirmations=1)
        cancel.set()
        res = await asyncio.wait_for(task, 30)
        assert res.cancelled
    finally:
        await holder.close()
    # another pgpreflight (another process) holding the advisory lock: refused too
    other = await asyncpg.connect(fixes_dsn, server_settings={"application_name": "pgpreflight/fix"})
    try:
        identity = await fetch_identity(other)
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", advisory_key(f"{identity.key}:table public.{BIG}"))
        with pytest.raises(FixRefused, match=r"another pgpreflight is already fixing .*pid \d+"):
            await run_fix(cfg, "create_index", big_index_params("ix_big_busy"), confirmations=1)
    finally:
        await other.close()


async def test_privilege_needed_is_named(cluster, fixes_dsn, state_dir):
    admin = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await admin.execute("DROP ROLE IF EXISTS fix_nobody")
        await admin.execute("CREATE ROLE fix_nobody LOGIN")
    finally:
        await admin.close()
    cfg = cfg_for(cluster.dsn(DB, user="fix_nobody"), state_dir)
    plan = await plan_fix(cfg, "create_index", big_index_params("ix_priv"))
    assert plan.blocked
    assert any("needs ownership of" in p.detail and "fix_nobody" in p.detail for p in plan.blockers)
    plan = await plan_fix(cfg, "slow_query_log", {"value_ms": 1000})
    assert any("GRANT ALTER SYSTEM ON PARAMETER log_min_duration_statement" in p.detail for p in plan.blockers)
    plan = await plan_fix(cfg, "backup_test", {})
    assert any("CREATEDB" in p.detail for p in plan.blockers)


# --------------------------------------------------------------------------------------------- CHECK constraints
def check_params(name):
    return {"table": "accounts", "name": name, "expression": "balance >= 0"}


async def constraint_state(conn, name):
    return await conn.fetchval("SELECT convalidated FROM pg_constraint WHERE conname = $1", name)


async def test_check_violated_headless_drops_it_and_reports_rows(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    plan = await plan_fix(cfg, "add_check_constraint", check_params("ck_drop"))
    assert plan.statements == ('ALTER TABLE "public"."accounts" ADD CONSTRAINT "ck_drop" CHECK (balance >= 0) NOT VALID',
                               'ALTER TABLE "public"."accounts" VALIDATE CONSTRAINT "ck_drop"')
    res = await run_fix(cfg, "add_check_constraint", check_params("ck_drop"), confirmations=1)
    assert not res.ok
    assert res.figures["violating_rows"] == 5
    assert len(res.figures["sample"]) == 5 and all(r["balance"] < 0 for r in res.figures["sample"])
    assert "5 row(s) of accounts violate" in res.summary and "dropped" in res.summary
    assert not res.left_behind
    conn = await asyncpg.connect(fixes_dsn)
    try:
        assert await constraint_state(conn, "ck_drop") is None
    finally:
        await conn.close()


async def test_check_violated_keep_not_valid_says_what_is_left(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    res = await run_fix(cfg, "add_check_constraint", check_params("ck_keep"), confirmations=1,
                        options={"on_violation": "keep"})
    assert not res.ok and res.choice is None
    assert res.left_behind and "NOT VALID" in res.left_behind[0] and "VALIDATE CONSTRAINT" in res.left_behind[0]
    conn = await asyncpg.connect(fixes_dsn)
    try:
        assert await constraint_state(conn, "ck_keep") is False
        with pytest.raises(asyncpg.CheckViolationError):  # NOT VALID still checks new rows
            await conn.execute("INSERT INTO accounts VALUES (999999, -1)")
        await conn.execute('ALTER TABLE accounts DROP CONSTRAINT "ck_keep"')
    finally:
        await conn.close()


async def test_check_violated_ui_offers_a_choice_and_the_drop_works(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    res = await run_fix(cfg, "add_check_constraint", check_params("ck_ask"), confirmations=1,
                        options={"on_violation": "ask"})
    assert res.choice is not None and res.choice.kind == "check_violation"
    assert [o[0] for o in res.choice.options] == ["drop", "keep"]
    conn = await asyncpg.connect(fixes_dsn)
    try:
        assert await constraint_state(conn, "ck_ask") is False
        assert await run_followup(cfg, res.choice, "keep") is None
        assert await constraint_state(conn, "ck_ask") is False
        follow = await run_followup(cfg, res.choice, "drop")
        assert follow.ok
        assert await constraint_state(conn, "ck_ask") is None
    finally:
        await conn.close()


async def test_check_on_demo_item_passes_and_verifies(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    cl = load_checklist("images-mvp")
    item = cl.item("integrity.balance_check")
    res = await run_fix(cfg, *params_for_item(item), item_id=item.id, confirmations=1)
    assert res.ok, res.summary
    from tui.checklist.runner import check_database

    check = await check_database(cfg, cl, only=[item.id])
    assert check.results[item.id].status == "pass", check.results[item.id].detail


async def test_check_expression_must_be_one_expression(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    with pytest.raises(FixError, match="single expression"):
        await plan_fix(cfg, "add_check_constraint", {"table": "accounts", "expression": "true); DROP TABLE x; --"})


# --------------------------------------------------------------------------------------------- sessions
async def test_cancel_then_terminate_needs_a_second_confirmation(fixes_dsn, state_dir):
    cfg = cfg_for(fixes_dsn, state_dir)
    victim = await asyncpg.connect(fixes_dsn, server_settings={"application_name": "test-victim"})
    watch = await asyncpg.connect(fixes_dsn)
    try:
        pid = victim.get_server_pid()
        sleeper = asyncio.ensure_future(victim.execute("SELECT pg_sleep(60)"))
        await wait_until(lambda: watch.fetchval("SELECT state = 'active' FROM pg_stat_activity WHERE pid = $1", pid),
                         what="victim running")
        res = await run_fix(cfg, "cancel_backend", {"pids": [pid]}, confirmations=1)
        assert res.ok and f"cancelled {pid}" in res.summary
        with pytest.raises(asyncpg.QueryCanceledError):
            await asyncio.wait_for(sleeper, 10)
        with pytest.raises(FixRefused, match="needs 2 confirmations"):
            await run_fix(cfg, "terminate_backend", {"pids": [pid]}, confirmations=1)
        assert await watch.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 1
        res = await run_fix(cfg, "terminate_backend", {"pids": [pid]}, confirmations=2)
        assert res.ok
        await wait_until(lambda: watch.fetchval("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1", pid),
                         what="victim gone")
    finally:
        victim.terminate()
        await watch.close()


async def test_index_build_cancelled_while_waiting_for_writers_says_what_is_left_then_drops_it(fixes_dsn, state_dir):
    """Halfway at the start: the catalog entry exists, the build waits for a transaction that wrote to the table."""
    cfg = cfg_for(fixes_dsn, state_dir)
    writer = await asyncpg.connect(fixes_dsn, server_settings={"application_name": "test-writer"})
    try:
        await writer.execute("BEGIN")
        await writer.execute('INSERT INTO "Big ""t"" x" VALUES (-1, \'w\')')
        task, cancel = await _run_until_phase(cfg, big_index_params("ix_big_writers"), "%waiting for writers%",
                                              {"lock_timeout_ms": 60000})
        cancel.set()
        t0 = time.monotonic()
        res = await asyncio.wait_for(task, 30)
        # the cleanup DROP INDEX CONCURRENTLY waits for the same writer, at most the default 5 s: then it says
        # exactly what is left and who holds it up, and offers the drop
        assert 4 < time.monotonic() - t0 < 15
        assert res.cancelled and "dropping the INVALID index failed" in res.summary, res.text()
        assert f"pid {writer.get_server_pid()}" in res.summary and "test-writer" in res.summary
        assert any('DROP INDEX CONCURRENTLY IF EXISTS "public"."ix_big_writers"' in x for x in res.left_behind)
        assert res.choice is not None and res.choice.fix == "drop_invalid_index"
    finally:
        await writer.execute("ROLLBACK")
        await writer.close()
    conn = await asyncpg.connect(fixes_dsn)
    try:
        assert await index_state(conn, "ix_big_writers") is False
        follow = await run_followup(cfg, res.choice, "drop")
        assert follow.ok, follow
        assert await index_state(conn, "ix_big_writers") is None
        assert await conn.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
    finally:
        await conn.close()


async def test_slow_build_on_a_big_table_shows_blocks_and_cancels_mid_scan(cluster, state_dir):
    """A build made slow by a big table and a tiny maintenance_work_mem, in a scratch database of its own:
    cancelled once pg_stat_progress_create_index shows it scanning; progress carried blocks."""
    admin = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await admin.execute("DROP DATABASE IF EXISTS fixes_big WITH (FORCE)")
        await admin.execute("CREATE DATABASE fixes_big")
        await admin.execute("ALTER DATABASE fixes_big SET maintenance_work_mem = '1MB'")
        await admin.execute("ALTER DATABASE fixes_big SET max_parallel_maintenance_workers = 0")
    finally:
        await admin.close()
    dsn = cluster.dsn("fixes_big")
    c = await asyncpg.connect(dsn)
    try:
        await c.execute("CREATE TABLE big (id int, v text)")
        await c.execute("INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 1500000) g")
        await c.execute("VACUUM ANALYZE big")
    finally:
        await c.close()
    cfg = cfg_for(dsn, state_dir)
    seen = []
    cancel = asyncio.Event()
    params = {"table": "big", "indexes": [{"name": "ix_big_scan", "columns": ["v"]}]}
    plan = await plan_fix(cfg, "create_index", params)
    assert plan.estimate_s and plan.estimate_s > 1 and "1,500,000 rows" in plan.estimate
    task = asyncio.create_task(run_fix(cfg, "create_index", params, confirmations=1, cancel_event=cancel,
                                       progress_cb=seen.append))

    async def scanning():
        assert not task.done(), task.result()
        return any(p.blocks_total and p.blocks_done for p in seen)
    await wait_until(scanning, what="progress with blocks")
    t_cancel = time.monotonic()
    cancel.set()
    res = await asyncio.wait_for(task, 30)
    cancel_s = time.monotonic() - t_cancel
    assert res.cancelled and not res.left_behind, res.text()
    assert cancel_s < 5
    p = next(p for p in seen if p.blocks_total)
    assert "building index" in p.phase and 0 <= p.fraction <= 1
    c = await asyncpg.connect(dsn)
    try:
        assert await c.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
        assert await index_state(c, "ix_big_scan") is None
    finally:
        await c.close()
    admin = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await admin.execute("DROP DATABASE IF EXISTS fixes_big WITH (FORCE)")
    finally:
        await admin.close()


async def test_expression_partial_unique_index_matches_the_probe(fixes_dsn, state_dir):
    """Keys that are expressions, a predicate, UNIQUE, DESC NULLS LAST and a schema-qualified table: built as the
    checklist describes, and then the index_exists probe finds exactly that index."""
    conn = await asyncpg.connect(fixes_dsn)
    try:
        await conn.execute('CREATE SCHEMA IF NOT EXISTS "Sales ü"')
        await conn.execute('CREATE TABLE "Sales ü".people (id int, email text, created timestamptz)')
        await conn.execute('INSERT INTO "Sales ü".people SELECT g, \'u\' || g || \'@x\', now() FROM generate_series(1, 1000) g')
    finally:
        await conn.close()
    params = {"table": "Sales ü.people", "indexes": [
        {"name": "ux_people_email", "columns": ["lower(email)"], "unique": True, "where": "id > 0"},
        {"name": "ix_people_created", "columns": ["created DESC NULLS LAST", "id"]}]}
    cfg = cfg_for(fixes_dsn, state_dir)
    plan = await plan_fix(cfg, "create_index", params)
    assert plan.statements == (
        'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "ux_people_email" ON "Sales ü"."people" ((lower(email))) '
        'WHERE (id > 0)',
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix_people_created" ON "Sales ü"."people" ("created" DESC NULLS LAST, '
        '"id")')
    res = await run_fix(cfg, "create_index", params, confirmations=1)
    assert res.ok, res.text()
    assert (await plan_fix(cfg, "create_index", params)).nothing_to_do
    from tui.checklist.spec import parse_checklist
    from tui.checklist.runner import check_database

    cl = parse_checklist("""
name = "t"
[[section]]
id = "s"
title = "S"
[[section.item]]
id = "s.ix"
title = "people indexes"
fix = { name = "create_index" }
[section.item.probe]
kind = "index_exists"
table = "Sales ü.people"
indexes = [
  { name = "ux_people_email", columns = ["lower(email)"], unique = true, where = "id > 0" },
  { name = "ix_people_created", columns = ["created DESC NULLS LAST", "id"] },
]
""")
    check = await check_database(cfg, cl, only=["s.ix"])
    assert check.results["s.ix"].status == "pass", check.results["s.ix"].detail


async def test_check_already_there_under_another_name_is_found_like_the_probe_finds_it(fixes_dsn, state_dir):
    conn = await asyncpg.connect(fixes_dsn)
    try:
        await conn.execute("CREATE TABLE wallets (id int, balance int)")
        await conn.execute("INSERT INTO wallets SELECT g, g FROM generate_series(1, 100) g")
        await conn.execute("ALTER TABLE wallets ADD CONSTRAINT legacy_positive CHECK ((balance >= 0)) NOT VALID")
        cfg = cfg_for(fixes_dsn, state_dir)
        params = {"table": "wallets", "name": "check_balance_nonnegative", "expression": "balance >= 0"}
        plan = await plan_fix(cfg, "add_check_constraint", params)
        assert plan.statements == ('ALTER TABLE "public"."wallets" VALIDATE CONSTRAINT "legacy_positive"',)
        res = await run_fix(cfg, "add_check_constraint", params, confirmations=1)
        assert res.ok, res.text()
        assert await constraint_state(conn, "legacy_positive") is True
        assert await conn.fetchval("SELECT count(*) FROM pg_constraint WHERE conrelid = 'wallets'::regclass") == 1
        assert (await plan_fix(cfg, "add_check_constraint", params)).nothing_to_do
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------------- pure helpers
def test_helpers_quote_and_measure():
    from tui.fixes.connections import percentile
    from tui.fixes.indexes import column_sql
    from tui.fixes.settings import split_libraries

    assert column_sql("UserId") == '"UserId"'
    assert column_sql('"we""ird" DESC') == '"we""ird" DESC'
    assert column_sql("created ASC NULLS FIRST") == '"created" NULLS FIRST'
    assert column_sql("created DESC NULLS FIRST") == '"created" DESC'  # the default for DESC: not repeated
    assert column_sql("lower(email)") == "(lower(email))"
    assert split_libraries("auto_explain, 'pg_stat_statements' ,\"x\"") == ["auto_explain", "pg_stat_statements", "x"]
    assert split_libraries("") == []
    v = [float(x) for x in range(1, 101)]
    assert percentile(v, 50) == 50 and percentile(v, 95) == 95 and percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    assert advisory_key("x") == advisory_key("x") != advisory_key("y")
    assert -2**63 <= advisory_key("x") < 2**63
