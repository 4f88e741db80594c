"""A role without pg_monitor and without superuser (issue 6, "Limited privileges").

Every headless command still works as that role: each pane shows what the role may see, says what is
hidden and names the GRANT that would show it; probes that could not run are ``error`` with the reason
(never a false pass); a fix refuses with one line naming the privilege and changes nothing."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import asyncpg
import pytest

pytestmark = [pytest.mark.faults, pytest.mark.pg]

ROLE = "pv_lowly"
OTHER = "pv_other"
DB = "pv_app"
MARKER = "pv_other_marker_query"


def run_cli(*args: str, timeout: float = 60, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)


def assert_one_clean_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("pgpreflight: error")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def limited(cluster):
    """A database with a table, an extension, another role's sessions (one running, one idle in a
    transaction) and a LOGIN role that has none of pg_monitor, pg_read_all_stats, pg_read_all_settings."""
    loop = asyncio.new_event_loop()
    held: list[asyncpg.Connection] = []

    async def setup():
        admin = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            for r in (ROLE, OTHER):
                await admin.execute(f"DROP ROLE IF EXISTS {r}")
            await admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            await admin.execute(f"CREATE ROLE {ROLE} LOGIN")
            await admin.execute(f"CREATE ROLE {OTHER} LOGIN")
            await admin.execute(f"CREATE DATABASE {DB}")
        finally:
            await admin.close()
        db = await asyncpg.connect(cluster.dsn(DB))
        try:
            if cluster.pg_stat_statements:
                await db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await db.execute(f"""
                CREATE TABLE orders (id int PRIMARY KEY, total numeric);
                INSERT INTO orders SELECT g, g FROM generate_series(1, 2000) g;
                CREATE SEQUENCE hidden_seq MAXVALUE 100;
                SELECT setval('hidden_seq', 99);
                GRANT SELECT ON orders TO {ROLE};
                GRANT ALL ON orders TO {OTHER};""")
        finally:
            await db.close()
        runner = await asyncpg.connect(cluster.dsn(DB, OTHER))
        idle_x = await asyncpg.connect(cluster.dsn(DB, OTHER))
        held.extend([runner, idle_x])
        await idle_x.execute("BEGIN; SELECT count(*) FROM orders")
        # a statement of the other role that keeps running while the tests look
        held.append(asyncio.ensure_future(runner.execute(f"SELECT pg_sleep(600) /* {MARKER} */")))
        await asyncio.sleep(0)

    loop.run_until_complete(setup())
    yield cluster
    for h in held:
        if isinstance(h, asyncpg.Connection):
            h.terminate()
        else:
            h.cancel()
    loop.run_until_complete(asyncio.sleep(0.05))

    async def end_backends():  # a closed socket does not stop a sleeping backend: terminate them
        a = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            await a.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", OTHER)
        finally:
            await a.close()
    loop.run_until_complete(end_backends())
    loop.close()


def _wait_other_running(cluster):
    """Poll (as superuser) until the other role's statement is really running."""
    async def poll():
        c = await asyncpg.connect(cluster.dsn(DB))
        try:
            for _ in range(100):
                n = await c.fetchval("SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active'",
                                     f"%{MARKER}%")
                if n:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("the other role's statement never started")
        finally:
            await c.close()
    asyncio.run(poll())


def test_snapshot_json_as_limited_role(limited, tmp_path):
    _wait_other_running(limited)
    res = run_cli("snapshot", "--format", "json", "--dsn", limited.dsn(DB, ROLE), "--state-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    snap = json.loads(res.stdout)
    # connections: the other role's sessions are counted and listed, their query text hidden with the GRANT
    conns = snap["connections"]
    others = [s for s in conns["sessions"] if s["user"] == OTHER]
    assert len(others) >= 2
    assert all(s["query_hidden"] for s in others)
    assert all(f"GRANT pg_read_all_stats TO {ROLE}" in s["query"] for s in others)
    assert MARKER not in res.stdout, "another role's query text must stay hidden"
    assert conns["by_user"].get(OTHER, 0) >= 2
    # the tables pane sees the table (sizes are readable without privileges)
    assert any(t["qualified_name"] == "public.orders" for t in snap["tables"]["tables"])
    # what is hidden, and the GRANT that shows it, is said once for the whole snapshot
    notices = " ".join(snap["notices"])
    assert "pg_read_all_stats" in notices and f"GRANT pg_monitor TO {ROLE}" in notices, notices
    assert "pg_read_all_settings" in notices, notices
    # the slow-query pane never claims pg_stat_statements is missing when it just cannot tell
    sq = snap["slow_queries"]
    if sq["source"] == "pg_stat_statements":
        hidden = [s for s in sq["statements"] if s["query"].startswith("<hidden")]
        assert all("GRANT pg_read_all_stats" in s["query"] for s in hidden)
    else:
        assert "not installed" not in (sq["message"] or ""), sq["message"]
    if snap["host"] is not None:
        assert any("pg_read_all_settings" in n for n in snap["host"]["notes"]), snap["host"]["notes"]


def test_snapshot_text_as_limited_role(limited, tmp_path):
    _wait_other_running(limited)
    res = run_cli("snapshot", "--format", "text", "--dsn", limited.dsn(DB, ROLE), "--state-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    out = res.stdout
    for pane in ("connections:", "slow queries", "tables (", "host:"):
        assert pane in out, f"pane {pane!r} missing from\n{out}"
    assert f"<hidden: GRANT pg_read_all_stats TO {ROLE}>" in out
    assert "notice:" in out and "GRANT pg_monitor" in out
    assert MARKER not in out


def test_fallback_slow_pane_says_running_statements_are_hidden(limited, tmp_path):
    """Without pg_stat_statements in the database, the pane falls back to pg_stat_activity, where the
    other role's running statement has no visible state: it must say so, not 'no statement is running'."""
    async def mk():
        a = await asyncpg.connect(limited.dsn("postgres"))
        try:
            await a.execute("DROP DATABASE IF EXISTS pv_nopgss WITH (FORCE)")
            await a.execute("CREATE DATABASE pv_nopgss")
        finally:
            await a.close()
    asyncio.run(mk())
    _wait_other_running(limited)
    # the other role's pg_sleep runs in pv_app; the fallback lists every database's statements
    res = run_cli("snapshot", "--format", "json", "--dsn", limited.dsn("pv_nopgss", ROLE), "--state-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    sq = json.loads(res.stdout)["slow_queries"]
    assert sq["source"] == "pg_stat_activity"
    msg = sq["message"] or ""
    assert "not installed" not in msg or "pg_read_all_settings" in msg, msg
    if not sq["statements"]:
        assert "pg_read_all_stats" in msg, f"hidden running statements not mentioned: {msg!r}"


def test_check_as_limited_role_reports_errors_not_false_passes(limited, tmp_path):
    res = run_cli("check", "--format", "json", "--checklist", "general", "--dsn", limited.dsn(DB, ROLE),
                  "--state-dir", str(tmp_path))
    assert res.returncode in (0, 1), res.stderr
    assert "Traceback" not in res.stderr
    items = {i["id"]: i for i in json.loads(res.stdout)["items"]}
    # the other role's sequence is at 99% of its maximum: without SELECT on it the role cannot tell
    seq = items["health.sequence_usage"]
    assert seq["status"] == "error", seq
    assert "hidden_seq" in seq["detail"] and "GRANT" in seq["detail"], seq
    # other roles' transactions are invisible without pg_read_all_stats: that is not "none found"
    lt = items["health.long_transactions"]
    assert lt["status"] == "error" and "pg_read_all_stats" in lt["detail"], lt
    # connection headroom counts the sessions it cannot classify (2 of the other role + its own)
    ch = items["health.connection_headroom"]
    used_now = int(ch["detail"].split(" in use now")[0].rsplit(" ", 1)[1])
    assert used_now >= 3, ch
    # pg_stat_statements: shared_preload_libraries is not visible to this role
    pg = items["health.pg_stat_statements"]
    if limited.pg_stat_statements:
        assert pg["status"] == "error" and "pg_read_all_settings" in pg["detail"], pg
    # exit code follows: an error is not success
    assert res.returncode == 1


def test_check_text_and_report_as_limited_role(limited, tmp_path):
    res = run_cli("check", "--format", "text", "--checklist", "general", "--dsn", limited.dsn(DB, ROLE),
                  "--state-dir", str(tmp_path))
    assert res.returncode == 1, res.stderr
    assert "ERROR" in res.stdout and "Traceback" not in res.stderr
    rep = run_cli("report", "--checklist", "general", "--dsn", limited.dsn(DB, ROLE), "--state-dir", str(tmp_path))
    assert rep.returncode == 1, rep.stderr  # printed; not ready
    assert "NOT READY" in rep.stdout and "pg_read_all_stats" in rep.stdout


async def _catalog_fingerprint(cluster) -> tuple:
    c = await asyncpg.connect(cluster.dsn(DB))
    try:
        return (
            await c.fetchval("SELECT setting FROM pg_settings WHERE name = 'log_min_duration_statement'"),
            tuple(await c.fetch("SELECT name, setting FROM pg_file_settings WHERE applied ORDER BY name, seqno")),
            tuple(r[0] for r in await c.fetch("SELECT extname FROM pg_extension ORDER BY 1")),
            tuple(r[0] for r in await c.fetch("SELECT indexrelid::regclass::text FROM pg_index ORDER BY 1")),
            tuple(r[0] for r in await c.fetch("SELECT datname FROM pg_database ORDER BY 1")),
        )
    finally:
        await c.close()


@pytest.mark.parametrize("item, privilege", [
    ("health.slow_query_log", "ALTER SYSTEM"),
    ("health.pg_stat_statements", "pg_read_all_settings"),
    ("health.backup_restore", "CREATEDB"),
])
def test_fix_as_limited_role_refuses_with_the_privilege(limited, tmp_path, item, privilege):
    before = asyncio.run(_catalog_fingerprint(limited))
    res = run_cli("fix", item, "--yes", "--checklist", "general", "--dsn", limited.dsn(DB, ROLE),
                  "--state-dir", str(tmp_path))
    assert res.returncode != 0, res.stdout
    line = assert_one_clean_line(res.stderr)
    assert privilege in line, line
    assert asyncio.run(_catalog_fingerprint(limited)) == before, "a refused fix changed the server"


async def test_monitor_as_limited_role_shows_hidden_queries_with_the_grant(limited, tmp_path):
    """The live TUI as that role: it connects, lists the other role's sessions with their query hidden
    behind the GRANT, and the tables and host panes render."""
    import time

    from textual.widgets import DataTable

    from tui.config import Config, resolve_target
    from tui.screens.app import PreflightApp

    await asyncio.to_thread(_wait_other_running, limited)
    app = PreflightApp(Config(target=resolve_target(limited.dsn(DB, ROLE), env={}), state_dir=tmp_path / "state",
                              refresh=0.3, app_root=tmp_path))

    async def until(pilot, predicate, what, timeout=15.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await pilot.pause(0.05)

    def query_cells():
        return list(app.query_one("#sessions", DataTable).get_column("query"))

    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: any("GRANT pg_read_all_stats" in str(c) for c in query_cells()),
                    "the other role's hidden query")
        assert not any(MARKER in str(c) for c in query_cells())
        # what is hidden, and the GRANT that shows it, is said once as a notification
        said = [n.message for n in app._notifications]
        assert any("pg_read_all_stats" in m and f"GRANT pg_monitor TO {ROLE}" in m for m in said), said
        await pilot.press("3")
        await until(pilot, lambda: app.query_one("#table-sizes", DataTable).row_count > 0, "the table sizes")
        await pilot.press("4")
        await until(pilot, lambda: "pg_read_all_settings" in str(app.query_one("#host").render())
                    or "remote" in str(app.query_one("#host").render()), "the host pane")
