"""The other half of the demo story: once the seed's own fixes are applied (its CREATE INDEX
statements, its CHECK constraint, CREATE EXTENSION, and max: 20 in server/db.ts), the items that
failed pass, and the query plans use the new indexes."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg
import pytest

from tui.checklist.probes import ProbeContext, run_checklist
from tui.checklist.spec import load_checklist
from tui.checklist.state import ChecklistState, fetch_identity

pytestmark = pytest.mark.pg

SEED = Path("/work/shared/seed/launch-checklist.md")
SEED_FIXES = """
CREATE INDEX IF NOT EXISTS idx_extraction_requested_at ON extraction_analytics(requested_at DESC);
CREATE INDEX IF NOT EXISTS idx_extraction_tier ON extraction_analytics(tier);
CREATE INDEX IF NOT EXISTS idx_extraction_success ON extraction_analytics(success);
CREATE INDEX IF NOT EXISTS idx_image_mvp_events_user ON image_mvp_events(user_id);
CREATE INDEX IF NOT EXISTS idx_image_mvp_events_type ON image_mvp_events(event_type);
CREATE INDEX IF NOT EXISTS idx_image_mvp_events_created ON image_mvp_events(created_at DESC);
CREATE INDEX IF NOT EXISTS idx_trial_usages_user ON trial_usages(user_id);
CREATE INDEX IF NOT EXISTS idx_trial_usages_session ON trial_usages(session_id);
ALTER TABLE credit_balances ADD CONSTRAINT check_balance_nonnegative CHECK (balance >= 0);
ANALYZE;
"""


async def _quiet(conn) -> None:
    """Keep this module's statements out of pg_stat_statements: other tests read its top lists."""
    try:
        await conn.execute("SET pg_stat_statements.track = 'none'")
    except asyncpg.PostgresError:
        pass


@pytest.fixture(scope="module")
def fixed_dsn(cluster, demo_dsn):
    """A copy of the demo database (CREATE DATABASE ... TEMPLATE, cheap and quiet), with the seed's fixes."""
    from tui.demo.data import build_demo_database

    async def setup() -> str:
        admin = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            await _quiet(admin)
            await admin.execute("DROP DATABASE IF EXISTS metaextract_fixed")
            try:
                await admin.execute("CREATE DATABASE metaextract_fixed TEMPLATE metaextract")
                dsn = cluster.dsn("metaextract_fixed")
            except asyncpg.ObjectInUseError:  # someone is connected to the demo: build a fresh one
                dsn = await build_demo_database(cluster.dsn("postgres"), "metaextract_fixed", replace=True)
        finally:
            await admin.close()
        conn = await asyncpg.connect(dsn)
        try:
            await _quiet(conn)
            await conn.execute(SEED_FIXES)
            if cluster.pg_stat_statements:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        finally:
            await conn.close()
        return dsn

    return asyncio.run(setup())


def test_seed_fix_sql_is_what_this_test_applies():
    if not SEED.exists():
        pytest.skip("seed checklist not on this machine")
    seed = {" ".join(m.split()) for m in re.findall(r"CREATE INDEX IF NOT EXISTS [^;]+;", SEED.read_text())}
    here = {" ".join(m.split()) for m in re.findall(r"CREATE INDEX IF NOT EXISTS [^;]+;", SEED_FIXES)}
    assert seed == here


@pytest.mark.asyncio(loop_scope="session")
async def test_items_pass_after_the_seed_fixes(fixed_dsn, tmp_path, cluster):
    from tui.demo.data import write_app_dir

    app = write_app_dir(tmp_path / "app")
    db_ts = app / "server" / "db.ts"
    db_ts.write_text(db_ts.read_text().replace("max: 10,", "max: 20,"))
    conn = await asyncpg.connect(fixed_dsn)
    try:
        ctx = ProbeContext(app_root=app, state=ChecklistState(await fetch_identity(conn)))
        res = await run_checklist(conn, load_checklist("images-mvp"), ctx, skip_kinds={"last_run"})
    finally:
        await conn.close()
    must_pass = ["pool.max", "indexes.extraction_analytics", "indexes.image_mvp_events", "indexes.trial_usages",
                 "indexes.plans", "integrity.balance_check", "success.pool_size", "success.indexes",
                 "success.credit_race", "health.invalid_indexes", "health.duplicate_indexes"]
    if cluster.pg_stat_statements:
        must_pass += ["performance.pg_stat_statements", "monitoring.slow_queries"]
    bad = {i: (res[i].status, res[i].detail) for i in must_pass if res[i].status != "pass"}
    assert not bad
    assert res["pool.max"].detail == "max: 20 in server/db.ts line 28, needs ≥ 20"
    assert "idx_extraction_requested_at" in res["indexes.plans"].detail
