"""The check service (tui.checklist.service) against a real server: a re-verify runs again only the probes
whose inputs changed, and an index or a setting changed by someone else flips its item on the next
re-verify. A cluster of this module's own: it changes a setting with ALTER SYSTEM."""
from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from pg_helpers import own_cluster as start_own_cluster, wait_until

from tui.checklist.reuse import read_signals
from tui.checklist.service import CheckService
from tui.checklist.spec import load_checklist, parse_checklist
from tui.config import Config, resolve_target

pytestmark = [pytest.mark.pg]

DB = "check_service"

CHECKLIST = '''
name = "svc"
title = "Service"
include = [{ checklist = "general" }]

[[section]]
id = "app"
title = "App"

[[section.item]]
id = "app.index"
title = "orders has its index on placed_at"
[section.item.probe]
kind = "index_exists"
table = "orders"
indexes = [{ columns = ["placed_at DESC"] }]

[[section.item]]
id = "app.columns"
title = "orders has its columns"
[section.item.probe]
kind = "columns"
table = "orders"
columns = { id = "integer", placed_at = "timestamptz" }

[[section.item]]
id = "app.criteria"
title = "The app's schema"
[section.item.probe]
kind = "items"
refs = ["app.index", "app.columns"]
'''

#: the probes whose results depend only on the catalogs or the settings (tui.checklist.reuse)
REUSABLE = {"health.invalid_indexes", "health.duplicate_indexes", "health.unindexed_foreign_keys",
            "health.tables_without_pk", "health.pg_stat_statements", "health.slow_query_log", "app.index",
            "app.columns"}


@pytest.fixture(scope="module")
def cluster():
    """This module's own throwaway server (it shadows the shared one): ALTER SYSTEM happens here."""
    yield from start_own_cluster()


@pytest.fixture(scope="module")
def svc_dsn(cluster):
    async def setup():
        admin = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            await admin.execute(f"CREATE DATABASE {DB}")
        finally:
            await admin.close()
        conn = await asyncpg.connect(cluster.dsn(DB))
        try:
            await conn.execute("CREATE TABLE orders (id int PRIMARY KEY, placed_at timestamptz)")
            if cluster.pg_stat_statements:
                await conn.execute("CREATE EXTENSION pg_stat_statements")
        finally:
            await conn.close()
    asyncio.run(setup())
    return cluster.dsn(DB)


def service(dsn, state_dir, tmp_path) -> CheckService:
    cfg = Config(target=resolve_target(dsn, env={}), state_dir=state_dir, app_root=tmp_path)
    return CheckService(cfg, checklist=parse_checklist(CHECKLIST))


async def catalog_signal_moved(conn, before):
    return (await read_signals(conn)).catalog != before.catalog


async def test_a_new_index_flips_its_item_on_the_next_re_verify(svc_dsn, state_dir, tmp_path):
    svc = service(svc_dsn, state_dir, tmp_path)
    other = await asyncpg.connect(svc_dsn)
    try:
        run = await svc.run()
        assert run.reused == ()
        assert svc.results["app.index"].status == "fail" and svc.results["app.criteria"].status == "fail"
        assert svc.results["app.columns"].status == "pass"
        # nothing changed: only the live probes run again
        run = await svc.run(reuse=True)
        assert set(run.reused) == REUSABLE, set(run.reused) ^ REUSABLE
        assert "health.connection_headroom" in run.probed and "health.xid_age" in run.probed
        before = await read_signals(other)
        await other.execute("CREATE INDEX orders_placed_at ON orders (placed_at DESC)")
        # the statistics say so once the writer published its counts (about a second at most)
        await wait_until(lambda: catalog_signal_moved(other, before), timeout=15, what="the catalog signal")
        run = await svc.run(reuse=True)
        assert svc.results["app.index"].status == "pass", svc.results["app.index"]
        assert svc.results["app.criteria"].status == "pass"
        assert {"app.index", "app.columns", "health.invalid_indexes"} <= set(run.probed)
        assert "health.slow_query_log" in run.reused  # the settings did not change
        # a column changes type: the same for a columns probe (catalog rows updated, none added)
        before = await read_signals(other)
        await other.execute("ALTER TABLE orders ALTER COLUMN placed_at TYPE timestamp")
        await wait_until(lambda: catalog_signal_moved(other, before), timeout=15, what="the catalog signal")
        await svc.run(reuse=True)
        assert svc.results["app.columns"].status == "fail"
        assert "placed_at is timestamp without time zone" in svc.results["app.columns"].detail
    finally:
        await other.close()
        await svc.close()


async def test_a_reloaded_setting_flips_its_item_on_a_re_verify(cluster, svc_dsn, state_dir, tmp_path):
    svc = service(svc_dsn, state_dir, tmp_path)
    admin = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await svc.run()
        assert svc.results["health.slow_query_log"].status == "fail"  # -1: off
        run = await svc.run(reuse=True)
        assert "health.slow_query_log" in run.reused
        await admin.execute("ALTER SYSTEM SET log_min_duration_statement = 500")
        await admin.execute("SELECT pg_reload_conf()")
        # the service's session takes the reload when its next statement arrives after the signal
        deadline = time.monotonic() + 15
        runs = 0
        while svc.results["health.slow_query_log"].status != "pass":
            assert time.monotonic() < deadline, svc.results["health.slow_query_log"]
            run = await svc.run(reuse=True)
            runs += 1
            if svc.results["health.slow_query_log"].status != "pass":
                assert "health.slow_query_log" in run.reused  # not yet reloaded here: the old value holds
                await asyncio.sleep(0.05)
        assert "health.slow_query_log" in run.probed
        assert "app.index" in run.reused and "health.tables_without_pk" in run.reused  # the catalogs did not change
        assert "500 ms" in svc.results["health.slow_query_log"].detail
    finally:
        await admin.execute("ALTER SYSTEM RESET log_min_duration_statement")
        await admin.execute("SELECT pg_reload_conf()")
        await admin.close()
        await svc.close()


async def test_a_quiet_re_verify_sends_none_of_the_catalog_probes(cluster, svc_dsn, state_dir, tmp_path):
    if not cluster.pg_stat_statements:
        pytest.skip("pg_stat_statements is not available on this server")
    svc = service(svc_dsn, state_dir, tmp_path)
    admin = await asyncpg.connect(svc_dsn)
    general = {i.id: i for i in load_checklist("general").items()}
    query = " ".join(general["health.tables_without_pk"].probe.params["query"].split())[:60]

    async def calls() -> tuple[int, float]:
        row = await admin.fetchrow(
            "SELECT coalesce(sum(calls), 0)::int AS calls, coalesce(sum(total_exec_time), 0)::float8 AS ms "
            "FROM pg_stat_statements WHERE regexp_replace(query, '\\s+', ' ', 'g') LIKE '%' || $1 || '%'", query)
        return row["calls"], row["ms"]

    try:
        await svc.run()
        await admin.execute("SELECT pg_stat_statements_reset()")
        for _ in range(3):
            await svc.run(reuse=True)
        assert (await calls())[0] == 0
        await svc.run()  # `v`: everything again
        assert (await calls())[0] == 1
    finally:
        await admin.close()
        await svc.close()
