"""backup_test, connection_test, the settings fixes and the headless `pgpreflight fix` against real servers:
a backup interrupted halfway leaves no scratch database, --read-only and --dry-run change nothing (catalog
compared before and after), connection_test leaves no connection behind, the audit log holds no password.
ALTER SYSTEM runs only on a cluster of this module's own, never the shared one."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from tui.checklist.spec import load_checklist
from tui.cluster import start_cluster
from tui.config import Config, resolve_target
from tui.fixes import FixError, FixRefused, plan_fix, run_fix
from tui.fixes.backup import SCRATCH_PREFIX, find_pg_tools
from pg_helpers import own_cluster as start_own_cluster, wait_until

pytestmark = [pytest.mark.pg]  # async tests run by asyncio_mode=auto

DB = "fixes_ops"
ROLE, ROLE_PW = "fix_limited", "S3cret-Pw/with:odd@chars"


@pytest.fixture(scope="module")
def cluster():
    """This module's own throwaway server (it shadows the shared one)."""
    yield from start_own_cluster()


def cfg_for(dsn, state_dir, **kw) -> Config:
    return Config(target=resolve_target(dsn, env={}), state_dir=state_dir, **kw)


@pytest.fixture(scope="module")
def ops_dsn(cluster):
    from tui.demo.data import build_demo_database

    dsn = asyncio.run(build_demo_database(cluster.dsn("postgres"), DB, replace=True))

    async def extra():
        c = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            await c.execute(f"DROP ROLE IF EXISTS {ROLE}")
            await c.execute(f"CREATE ROLE {ROLE} LOGIN CONNECTION LIMIT 5 PASSWORD '{ROLE_PW}'")
        finally:
            await c.close()
    asyncio.run(extra())
    return dsn


@pytest.fixture(scope="module")
def own_cluster():
    """A cluster of this module's own, without pg_stat_statements preloaded: ALTER SYSTEM happens here."""
    c = start_cluster(preload_pg_stat_statements=False)
    yield c
    c.destroy()


def run_cli(*args, timeout=120, stdin=subprocess.DEVNULL):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=stdin)


async def scratch_databases(admin_dsn) -> list[str]:
    c = await asyncpg.connect(admin_dsn)
    try:
        return [r["datname"] for r in await c.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1",
                                                    SCRATCH_PREFIX + "%")]
    finally:
        await c.close()


# --------------------------------------------------------------------------------------------- backup_test
async def test_backup_round_trip_counts_match_and_scratch_is_dropped(cluster, ops_dsn, state_dir, tmp_path):
    cfg = cfg_for(ops_dsn, state_dir, backup_dir=tmp_path / "dumps")
    plan = await plan_fix(cfg, "backup_test", {}, item_id="backups.restore_tested")
    assert not plan.blocked, plan.blockers
    assert any("--snapshot=" in c for c in plan.commands)
    assert any(p.name == "disk space" and p.ok for p in plan.preconditions)
    seen = []
    res = await run_fix(cfg, "backup_test", {}, item_id="backups.restore_tested", confirmations=1,
                        progress_cb=seen.append)
    assert res.ok, res.text()
    # progress from pg_stat_progress_copy: rows of the dump's and the restore's COPYs, against the exact counts
    for phase in ("pg_dump", "pg_restore"):
        rows = [p for p in seen if p.phase == phase and p.tuples_done]
        assert rows, f"no row progress for {phase}: {[p.line() for p in seen if p.phase == phase]}"
        assert all(0 < p.fraction <= 0.99 and p.tuples_total == res.figures["rows"] for p in rows)
    f = res.figures
    assert f["tables"] == 7 and f["mismatches"] == 0 and f["rows"] == f["restored_rows"] > 300000
    assert f["dump_bytes"] > 1_000_000 and f["dump_s"] > 0 and f["restore_s"] > 0
    assert Path(f["dump_file"]).stat().st_size == f["dump_bytes"]
    assert Path(f["dump_file"]).parent == tmp_path / "dumps"
    assert f["scratch_dropped"] is True
    assert await scratch_databases(cluster.dsn("postgres")) == []
    # the checklist's last_run probe reads what was recorded
    from tui.checklist.runner import check_database

    check = await check_database(cfg, load_checklist("images-mvp"), only=["backups.restore_tested"])
    assert check.results["backups.restore_tested"].status == "pass", check.results["backups.restore_tested"].detail


async def test_backup_counts_come_from_the_dump_snapshot_under_writes(cluster, ops_dsn, state_dir, tmp_path):
    """A writer inserting all along: the source counts still equal the restored ones (same snapshot)."""
    cfg = cfg_for(ops_dsn, state_dir, backup_dir=tmp_path)
    writer = await asyncpg.connect(ops_dsn)
    stop = asyncio.Event()

    async def write():
        n = 0
        while not stop.is_set():
            await writer.execute("INSERT INTO image_mvp_events (user_id, event_type, created_at) "
                                 "SELECT user_id, 'landing_viewed', now() FROM image_mvp_events LIMIT 50")
            n += 1
        return n
    try:
        cols = {r["column_name"] for r in await writer.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'image_mvp_events'")}
        assert {"user_id", "event_type", "created_at"} <= cols
        wt = asyncio.create_task(write())
        res = await run_fix(cfg, "backup_test", {}, confirmations=1)
        stop.set()
        inserts = await wt
    finally:
        await writer.close()
    assert inserts > 0
    assert res.ok and res.figures["mismatches"] == 0, res.text()


async def test_backup_cancelled_halfway_leaves_no_scratch_database(cluster, ops_dsn, state_dir, tmp_path):
    cfg = cfg_for(ops_dsn, state_dir, backup_dir=tmp_path)
    cancel = asyncio.Event()
    task = asyncio.create_task(run_fix(cfg, "backup_test", {}, confirmations=1, cancel_event=cancel))

    async def scratch_exists():
        if task.done():
            raise AssertionError(f"ended before the restore: {task.result()}")
        return await scratch_databases(cluster.dsn("postgres"))
    await wait_until(scratch_exists, what="the scratch database")
    cancel.set()
    res = await asyncio.wait_for(task, 60)
    assert res.cancelled and not res.ok and not res.left_behind
    assert res.figures["scratch_dropped"] is True
    assert await scratch_databases(cluster.dsn("postgres")) == []
    assert list(tmp_path.glob("*.dump")) == []  # the partial dump is removed too


def test_backup_interrupted_by_sigint_in_the_cli_leaves_no_scratch_database(cluster, ops_dsn, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    proc = subprocess.Popen([sys.executable, "-m", "tui", "fix", "backups.restore_tested", "--yes", "--dsn", ops_dsn,
                             "--state-dir", str(tmp_path / "s"), "--backup-dir", str(tmp_path / "b")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not asyncio.run(scratch_databases(cluster.dsn("postgres"))):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no scratch database appeared"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "cancelling" in err and "Traceback" not in err
    assert "CANCELLED" in out
    assert asyncio.run(scratch_databases(cluster.dsn("postgres"))) == []


def test_pg_dump_missing_or_older_is_refused_clearly(tmp_path):
    with pytest.raises(FixError, match="pg_dump and pg_restore were not found"):
        find_pg_tools(15, [tmp_path])
    old = tmp_path / "old"
    old.mkdir()
    for exe in ("pg_dump", "pg_restore"):
        p = old / exe
        p.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 12.9'\n")
        p.chmod(0o755)
    with pytest.raises(FixError, match=r"pg_dump 12 .* is older than the server \(15\)"):
        find_pg_tools(15, [old])
    assert find_pg_tools(12, [old]).major == 12


async def test_backup_with_old_pg_dump_is_refused_before_anything(cluster, ops_dsn, state_dir, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for exe in ("pg_dump", "pg_restore"):
        (old / exe).write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 11.2'\n")
        (old / exe).chmod(0o755)
    cfg = cfg_for(ops_dsn, state_dir, backup_dir=tmp_path)
    with pytest.raises(FixRefused, match="older than the server"):
        await run_fix(cfg, "backup_test", {}, confirmations=1, options={"pg_bindir_search": [str(old)]})
    assert await scratch_databases(cluster.dsn("postgres")) == []


async def test_backup_restores_onto_another_server(own_cluster, ops_dsn, state_dir, tmp_path):
    cfg = cfg_for(ops_dsn, state_dir, backup_dir=tmp_path)
    other = own_cluster.tcp_dsn("postgres", password=own_cluster.password)
    res = await run_fix(cfg, "backup_test", {}, confirmations=1, options={"restore_dsn": other})
    assert res.ok, res.text()
    assert res.figures["mismatches"] == 0
    assert await scratch_databases(own_cluster.dsn("postgres")) == []
    audit_text = (state_dir / "audit.jsonl").read_text()
    assert own_cluster.password not in audit_text


# --------------------------------------------------------------------------------------------- connection_test
async def test_connection_test_reports_figures_and_leaves_no_connection(cluster, ops_dsn, state_dir):
    cfg = cfg_for(ops_dsn, state_dir)
    res = await run_fix(cfg, "connection_test", {"connections": 20, "hold_ms": 100}, item_id="pool.concurrency",
                        confirmations=1)
    assert res.ok, res.text()
    f = res.figures
    assert f["successes"] == 20 and f["failures"] == 0 and f["peak_open"] == 20
    assert 0 < f["p50_ms"] <= f["p95_ms"] <= f["max_ms"]
    assert f["max_connections"] == 100 and f["headroom_before"] <= 97
    # the checklist's last_run probe reads the recorded figures (it requires 20 connections, 0 failures)
    from tui.checklist.runner import check_database

    check = await check_database(cfg, load_checklist("images-mvp"), only=["pool.concurrency"])
    assert check.results["pool.concurrency"].status == "pass", check.results["pool.concurrency"].detail
    watch = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await wait_until(lambda: watch.fetchval(
            "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'pgpreflight/fix'"),
            what="every test connection closed")
    finally:
        await watch.close()


async def test_connection_test_over_tcp_with_a_password_reports_too_many_and_logs_no_password(
        cluster, ops_dsn, state_dir):
    dsn = cluster.tcp_dsn(DB, user=ROLE, password=ROLE_PW)
    cfg = cfg_for(dsn, state_dir)
    res = await run_fix(cfg, "connection_test", {"connections": 8, "hold_ms": 500}, item_id="pool.concurrency",
                        confirmations=1)
    f = res.figures
    assert not res.ok
    # the role may hold 5 sessions; the fix's own control session is one of them
    assert f["successes"] == 4 and f["failures"] == 4, res.text()
    assert any("too many connections" in d for d in res.details)
    for path in state_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert ROLE_PW not in text and "S3cret" not in text, path
    lines = [json.loads(x) for x in (state_dir / "audit.jsonl").read_text().splitlines()]
    assert lines[-1]["target"] == f"postgresql://{ROLE}@127.0.0.1:{cluster.port}/{DB}"
    assert lines[-1]["os_user"] and lines[-1]["fix"] == "connection_test"
    watch = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await wait_until(lambda: watch.fetchval("SELECT count(*) = 0 FROM pg_stat_activity WHERE usename = $1", ROLE),
                         what="every test connection closed")
    finally:
        await watch.close()


# --------------------------------------------------------------------------------------------- settings (own cluster)
async def test_slow_query_log_sets_reloads_and_undoes(own_cluster, state_dir, tmp_path):
    dsn = own_cluster.dsn("postgres")
    cfg = cfg_for(dsn, state_dir)
    plan = await plan_fix(cfg, "slow_query_log", {"value_ms": 1000}, item_id="performance.slow_query_log")
    assert plan.statements == ("ALTER SYSTEM SET log_min_duration_statement = 1000", "SELECT pg_reload_conf()")
    assert any("previous value: -1 ms" in n for n in plan.notes)
    res = await run_fix(cfg, "slow_query_log", {"value_ms": 1000}, item_id="performance.slow_query_log",
                        confirmations=1)
    assert res.ok and res.figures["previous_ms"] == -1 and res.figures["value_ms"] == 1000
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SHOW log_min_duration_statement") == "1s"
        # undo through the CLI, reading the previous value from the recorded result
        r = await asyncio.to_thread(run_cli, "fix", "performance.slow_query_log", "--undo", "--yes", "--dsn", dsn,
                                    "--state-dir", str(state_dir))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "ALTER SYSTEM RESET log_min_duration_statement" in r.stdout
        await wait_until(lambda: conn.fetchval("SELECT setting = '-1' FROM pg_settings "
                                               "WHERE name = 'log_min_duration_statement'"), what="undo applied")
        assert await conn.fetchval("SELECT count(*) FROM pg_file_settings WHERE name = 'log_min_duration_statement'") == 0
    finally:
        await conn.close()


async def test_pg_stat_statements_not_preloaded_says_restart_and_keeps_entries(own_cluster, state_dir):
    dsn = own_cluster.dsn("postgres")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'auto_explain'")
        pid_before = own_cluster.postmaster_pid()
        cfg = cfg_for(dsn, state_dir)
        plan = await plan_fix(cfg, "enable_pg_stat_statements", {})
        assert "ALTER SYSTEM SET shared_preload_libraries = 'auto_explain', 'pg_stat_statements'" in plan.statements
        assert any("RESTART" in n for n in plan.notes)
        res = await run_fix(cfg, "enable_pg_stat_statements", {}, confirmations=1)
        assert not res.ok
        assert res.figures["pending_restart"] is True and res.figures["preloaded"] is False
        assert "RESTARTED" in res.summary and res.left_behind
        auto = await conn.fetchval("SELECT setting FROM pg_file_settings WHERE name = 'shared_preload_libraries' "
                                   "AND sourcefile LIKE '%auto.conf'")
        assert auto == "auto_explain, pg_stat_statements"
        assert await conn.fetchval("SELECT pending_restart FROM pg_settings WHERE name = 'shared_preload_libraries'")
        assert own_cluster.postmaster_pid() == pid_before  # never restarted
        assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'") == 1
        # a second run has nothing more to change and says the restart is pending
        plan2 = await plan_fix(cfg, "enable_pg_stat_statements", {})
        assert plan2.nothing_to_do and any("restart is pending" in n for n in plan2.notes)
    finally:
        await conn.execute("ALTER SYSTEM RESET shared_preload_libraries")
        await conn.close()


# --------------------------------------------------------------------------------------------- read-only / dry-run
CATALOG_SQL = {
    "indexes": "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes ORDER BY 1, 2, 3",
    "invalid": "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1",
    "constraints": "SELECT conrelid::regclass::text, conname, convalidated FROM pg_constraint ORDER BY 1, 2",
    "file_settings": "SELECT sourcefile, name, setting FROM pg_file_settings ORDER BY 1, 2",
    "databases": "SELECT datname FROM pg_database ORDER BY 1",
    "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
    "settings": "SELECT name, setting FROM pg_settings WHERE name IN ('log_min_duration_statement', "
                "'shared_preload_libraries') ORDER BY 1",
}


async def catalog(dsn) -> dict:
    c = await asyncpg.connect(dsn)
    try:
        return {k: [tuple(r) for r in await c.fetch(q)] for k, q in CATALOG_SQL.items()}
    finally:
        await c.close()


FIX_ITEMS = ["indexes.extraction_analytics", "indexes.image_mvp_events", "integrity.balance_check",
             "performance.slow_query_log", "performance.pg_stat_statements", "backups.restore_tested"]


async def test_read_only_and_dry_run_change_nothing(cluster, tmp_path):
    from tui.demo.data import build_demo_database

    dsn = await build_demo_database(cluster.dsn("postgres"), "fixes_ro", replace=True)
    before = await catalog(dsn)
    assert not any(ix[2].startswith("idx_") for ix in before["indexes"] if ix[1] == "extraction_analytics")
    state = tmp_path / "state"
    for item in FIX_ITEMS:
        r = await asyncio.to_thread(run_cli, "fix", item, "--read-only", "--yes", "--dsn", dsn,
                                    "--state-dir", str(state), "--checklist", "images-mvp")
        assert r.returncode == 2, (item, r.stdout, r.stderr)
        assert "read-only: refusing" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1
        d = await asyncio.to_thread(run_cli, "fix", item, "--dry-run", "--dsn", dsn, "--state-dir", str(state))
        assert d.returncode == 0, (item, d.stdout, d.stderr)
        assert "dry run: nothing was changed" in d.stdout and "Fix: " in d.stdout
        # no terminal and no --yes: refused, nothing written
        n = await asyncio.to_thread(run_cli, "fix", item, "--dsn", dsn, "--state-dir", str(state))
        assert n.returncode == 2 and "no terminal" in n.stderr, (item, n.stdout, n.stderr)
    d = await asyncio.to_thread(run_cli, "fix", "indexes.extraction_analytics", "--dry-run", "--dsn", dsn)
    assert 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_extraction_requested_at" ON "public"."extraction_analytics" ' \
           '("requested_at" DESC)' in d.stdout
    after = await catalog(dsn)
    assert after == before
    audit = [json.loads(x) for x in (state / "audit.jsonl").read_text().splitlines()]
    assert len(audit) == len(FIX_ITEMS) and all(a["outcome"] == "refused: read-only" for a in audit)


def test_cli_usage_errors_are_one_line(ops_dsn, tmp_path):
    r = run_cli("fix", "no.such.item", "--dsn", ops_dsn, "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "no item 'no.such.item'" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("fix", "backups.separate_storage", "--dsn", ops_dsn, "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "has no fix" in r.stderr
    r = run_cli("fix", "indexes.trial_usages", "--undo", "--dsn", ops_dsn, "--state-dir", str(tmp_path))
    assert r.returncode == 2 and "--undo is only for slow_query_log" in r.stderr


def test_cli_fix_runs_and_verifies_the_item(cluster, ops_dsn, tmp_path):
    r = run_cli("fix", "indexes.image_mvp_events", "--yes", "--dsn", ops_dsn, "--state-dir", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK: created 3 index(es) on image_mvp_events" in r.stdout
    assert "verify indexes.image_mvp_events: pass" in r.stdout
    r = run_cli("fix", "indexes.image_mvp_events", "--yes", "--dsn", ops_dsn, "--state-dir", str(tmp_path))
    assert r.returncode == 0 and "Nothing to do." in r.stdout


def _run_cli_on_a_tty(args, answer: str, timeout=120):
    """The CLI with a pseudo-terminal as stdin (so it asks y/N), answering ``answer``."""
    import pty

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    try:
        proc = subprocess.Popen([sys.executable, "-m", "tui", *args], stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        os.write(master, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    finally:
        os.close(master)
        os.close(slave)


async def test_cli_asks_on_a_terminal_and_no_means_nothing_changes(ops_dsn, tmp_path):
    args = ["fix", "indexes.trial_usages", "--dsn", ops_dsn, "--state-dir", str(tmp_path)]
    before = await catalog(ops_dsn)
    code, out, err = await asyncio.to_thread(_run_cli_on_a_tty, args, "n")
    assert code == 2 and "Run this fix? [y/N]" in out and "not confirmed: nothing was changed" in out, (out, err)
    assert await catalog(ops_dsn) == before
    code, out, err = await asyncio.to_thread(_run_cli_on_a_tty, args, "y")
    assert code == 0, (out, err)
    assert "OK: created 2 index(es) on trial_usages" in out and "  … " in out  # progress lines while it runs
    after = await catalog(ops_dsn)
    assert {ix[2] for ix in after["indexes"]} - {ix[2] for ix in before["indexes"]} == {
        "idx_trial_usages_user", "idx_trial_usages_session"}


def test_too_little_disk_is_refused_before_starting(tmp_path):
    from tui.fixes.base import need_disk

    p = need_disk(tmp_path / "not-yet" / "dumps", 10**18, "dump of metaextract")
    assert not p.ok and "refusing before starting" in p.detail and "free in" in p.detail
    assert need_disk(tmp_path, 1, "dump").ok


@pytest.fixture(scope="module")
def standby(own_cluster):
    """A hot standby of own_cluster (pg_basebackup -R), on a port and socket directory of its own."""
    import shutil
    import tempfile

    from tui.cluster import Cluster, free_port

    base = Path(tempfile.mkdtemp(prefix="pgpreflight-standby-"))
    os.chmod(base, 0o755)
    sb = Cluster(bindir=own_cluster.bindir, base=base, port=free_port(), password=own_cluster.password,
                 as_user=own_cluster.as_user)
    if sb.as_user:
        shutil.chown(base, user=sb.as_user)
    res = sb.run([str(own_cluster.bindir / "pg_basebackup"), "-D", str(sb.datadir), "-R", "-X", "stream",
                  "-h", str(own_cluster.socket_dir), "-p", str(own_cluster.port), "-U", "postgres"], timeout=120)
    assert res.returncode == 0, res.stderr
    with open(sb.datadir / "postgresql.auto.conf", "a") as fh:
        fh.write(f"port = {sb.port}\nunix_socket_directories = '{base}'\n")
    (sb.datadir / "postmaster.pid").unlink(missing_ok=True)
    sb.start()
    yield sb
    sb.destroy()


async def test_writes_on_a_standby_say_they_need_a_primary(standby, own_cluster, state_dir):
    cfg = cfg_for(standby.dsn("postgres"), state_dir)
    p = await asyncpg.connect(own_cluster.dsn("postgres"))
    try:
        await p.execute("DROP TABLE IF EXISTS sb_t; CREATE TABLE sb_t AS SELECT g FROM generate_series(1, 1000) g")
    finally:
        await p.close()
    c = await asyncpg.connect(standby.dsn("postgres"))
    try:
        assert await c.fetchval("SELECT pg_is_in_recovery()")
        await wait_until(lambda: c.fetchval("SELECT to_regclass('sb_t') IS NOT NULL"), what="replication of sb_t")
    finally:
        await c.close()
    plan = await plan_fix(cfg, "slow_query_log", {"value_ms": 1000})
    assert any(p.name == "a primary" and "standby" in p.detail for p in plan.blockers)
    with pytest.raises(FixRefused, match="needs a primary"):
        await run_fix(cfg, "slow_query_log", {"value_ms": 1000}, confirmations=1)
    plan = await plan_fix(cfg, "backup_test", {})
    assert any("standby" in p.detail and "--restore-dsn" in p.detail for p in plan.blockers)
    # dumping from the standby and restoring onto the primary is fine
    plan = await plan_fix(cfg, "backup_test", {}, options={"restore_dsn": own_cluster.dsn("postgres")})
    assert not plan.blocked, plan.blockers
    res = await run_fix(cfg, "backup_test", {}, confirmations=1, options={"restore_dsn": own_cluster.dsn("postgres"),
                                                                          "backup_dir": str(state_dir / "b")})
    assert res.ok, res.text()
    assert res.figures["rows"] >= 1000 and res.figures["mismatches"] == 0
    assert await scratch_databases(own_cluster.dsn("postgres")) == []
