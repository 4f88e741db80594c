"""A server in recovery (issue 6): on a hot standby the panes that can work, work (snapshot, the live
header says standby), the checklist runs without spurious errors, and a fix that writes says it needs
a primary, in one line, changing nothing."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import pytest

from tui.cluster import Cluster, free_port, start_cluster

pytestmark = [pytest.mark.faults, pytest.mark.pg]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True, timeout=120,
                          env=env, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def pair():
    primary = start_cluster()

    async def seed():
        c = await asyncpg.connect(primary.dsn("postgres"))
        try:
            await c.execute("CREATE TABLE sb_orders AS SELECT g AS id, repeat('x', 100) AS v "
                            "FROM generate_series(1, 20000) g")
            if primary.pg_stat_statements:
                await c.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        finally:
            await c.close()
    asyncio.run(seed())
    base = Path(tempfile.mkdtemp(prefix="pgpreflight-standby-"))
    os.chmod(base, 0o755)
    sb = Cluster(bindir=primary.bindir, base=base, port=free_port(), password=primary.password,
                 as_user=primary.as_user)
    if sb.as_user:
        shutil.chown(base, user=sb.as_user)
    try:
        res = sb.run([str(primary.bindir / "pg_basebackup"), "-D", str(sb.datadir), "-R", "-X", "stream", "-c", "fast",
                      "-h", str(primary.socket_dir), "-p", str(primary.port), "-U", "postgres"], timeout=120)
        assert res.returncode == 0, res.stderr
        with open(sb.datadir / "postgresql.auto.conf", "a") as fh:
            fh.write(f"port = {sb.port}\nunix_socket_directories = '{base}'\n")
        (sb.datadir / "postmaster.pid").unlink(missing_ok=True)
        sb.start()

        async def ready():
            deadline = time.monotonic() + 20
            while True:
                try:
                    c = await asyncpg.connect(sb.dsn("postgres"))
                    try:
                        if await c.fetchval("SELECT pg_is_in_recovery() AND to_regclass('sb_orders') IS NOT NULL"):
                            return
                    finally:
                        await c.close()
                except (OSError, asyncpg.PostgresError):
                    pass
                assert time.monotonic() < deadline, "the standby never became ready"
                await asyncio.sleep(0.1)
        asyncio.run(ready())
        yield primary, sb
    finally:
        sb.destroy()
        primary.destroy()


def test_snapshot_on_a_standby(pair, tmp_path):
    _primary, sb = pair
    res = run_cli("snapshot", "--format", "json", "--dsn", sb.dsn("postgres"), "--state-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    snap = json.loads(res.stdout)
    assert snap["server"]["in_recovery"] is True
    assert any(t["name"] == "sb_orders" for t in snap["tables"]["tables"])
    assert snap["connections"] is not None and snap["slow_queries"] is not None
    text = run_cli("snapshot", "--format", "text", "--dsn", sb.dsn("postgres"), "--state-dir", str(tmp_path))
    assert text.returncode == 0 and "STANDBY" in text.stdout.splitlines()[1], text.stdout[:400]


def test_check_on_a_standby_has_no_spurious_errors(pair, tmp_path):
    _primary, sb = pair
    res = run_cli("check", "--format", "json", "--checklist", "general", "--dsn", sb.dsn("postgres"),
                  "--state-dir", str(tmp_path))
    assert res.returncode in (0, 1), res.stderr
    items = json.loads(res.stdout)["items"]
    errors = [i for i in items if i["status"] == "error"]
    assert not errors, errors  # probes are read-only: recovery must not break them
    assert (tmp_path / "checklist").is_dir(), "the state is kept for the standby as for any database"


def test_fix_on_a_standby_needs_a_primary(pair, tmp_path):
    _primary, sb = pair

    async def setting():
        c = await asyncpg.connect(sb.dsn("postgres"))
        try:
            return await c.fetchval("SELECT setting FROM pg_settings WHERE name = 'log_min_duration_statement'")
        finally:
            await c.close()
    before = asyncio.run(setting())
    res = run_cli("fix", "health.slow_query_log", "--yes", "--checklist", "general", "--dsn", sb.dsn("postgres"),
                  "--state-dir", str(tmp_path))
    assert res.returncode == 2, res.stdout + res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "primary" in lines[0] and "Traceback" not in res.stderr, res.stderr
    assert asyncio.run(setting()) == before


async def test_monitor_header_says_standby(pair, tmp_path):
    from tui.config import Config, resolve_target
    from tui.screens.app import PreflightApp
    from widgets.header import ServerHeader

    _primary, sb = pair
    app = PreflightApp(Config(target=resolve_target(sb.dsn("postgres"), env={}), state_dir=tmp_path / "state",
                              refresh=0.3, app_root=tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        deadline = time.monotonic() + 15
        header = app.query_one(ServerHeader)
        while not ("STANDBY" in header.render_text().plain and header.state.status == "connected"):
            assert time.monotonic() < deadline, (header.state, header.render_text().plain)
            await pilot.pause(0.05)
