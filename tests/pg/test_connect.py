"""Target resolution and every bad target, against the real server."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import asyncpg
import pytest

from tui.cluster import free_port
from tui.config import TargetError, resolve_target
from tui.db.connect import connect

pytestmark = pytest.mark.pg

SECRET = "s3cr3t-Pa55-word"


@pytest.fixture(scope="module")
def roles(cluster):
    """A login role with a password and a role that may not log in."""
    async def setup():
        conn = await asyncpg.connect(cluster.dsn())
        try:
            await conn.execute("DROP ROLE IF EXISTS app_user; DROP ROLE IF EXISTS no_login")
            await conn.execute(f"CREATE ROLE app_user LOGIN PASSWORD '{SECRET}'")
            await conn.execute(f"CREATE ROLE no_login NOLOGIN PASSWORD '{SECRET}'")
        finally:
            await conn.close()
    import asyncio
    asyncio.run(setup())
    return {"user": "app_user", "password": SECRET}


def run_cli(*args, env=None, timeout=30):
    e = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    e.update(env or {})
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True, timeout=timeout,
                         env=e, stdin=subprocess.DEVNULL)
    return res, time.monotonic() - start


def assert_one_clean_line(res, target_display, reason_word):
    assert res.returncode == 2, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert SECRET not in res.stderr and SECRET not in res.stdout
    assert target_display in lines[0], lines[0]
    assert reason_word in lines[0], lines[0]


async def test_own_sessions_are_named_and_time_limited(cluster):
    conn = await connect(resolve_target(cluster.dsn()), role="poll", statement_timeout_ms=1234)
    try:
        assert (await conn.fetchval("SHOW application_name")).startswith("pgpreflight")
        assert await conn.fetchval("SHOW statement_timeout") == "1234ms"
    finally:
        await conn.close()


async def test_socket_uri_connects(cluster):
    t = resolve_target(cluster.dsn("postgres"))
    assert t.is_socket and str(cluster.socket_dir) in t.display
    conn = await connect(t)
    try:
        assert await conn.fetchval("SELECT current_database()") == "postgres"
    finally:
        await conn.close()


async def test_dsn_wins_over_database_url_over_libpq_env(cluster, roles):
    env = {"DATABASE_URL": cluster.tcp_dsn("template1", "app_user", SECRET),
           "PGHOST": "127.0.0.1", "PGPORT": str(cluster.port), "PGDATABASE": "nowhere"}
    assert resolve_target(cluster.dsn("postgres"), env=env).database == "postgres"
    t = resolve_target(None, env=env)
    assert t.database == "template1" and t.source == "DATABASE_URL"
    conn = await connect(t)
    try:
        assert await conn.fetchval("SELECT current_user") == "app_user"
    finally:
        await conn.close()
    env.pop("DATABASE_URL")
    assert resolve_target(None, env=env).database == "nowhere"


async def test_libpq_environment_with_pgpassword(cluster, roles):
    env = {"PGHOST": "127.0.0.1", "PGPORT": str(cluster.port), "PGUSER": "app_user",
           "PGDATABASE": "postgres", "PGPASSWORD": SECRET, "PGSSLMODE": "disable"}
    t = resolve_target(None, env=env)
    assert SECRET not in t.display and SECRET not in repr(t)
    conn = await connect(t)
    try:
        assert await conn.fetchval("SELECT current_user") == "app_user"
    finally:
        await conn.close()


async def test_pgpassfile(cluster, roles, tmp_path):
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{cluster.port}:*:app_user:{SECRET}\n")
    passfile.chmod(0o600)
    env = {"PGPASSFILE": str(passfile)}
    t = resolve_target(f"postgresql://app_user@127.0.0.1:{cluster.port}/postgres", env=env)
    conn = await connect(t)
    try:
        assert await conn.fetchval("SELECT current_user") == "app_user"
    finally:
        await conn.close()


def test_closed_port(cluster):
    port = free_port()
    res, took = run_cli("monitor", "--dsn", f"postgresql://app_user:{SECRET}@127.0.0.1:{port}/postgres",
                        "--connect-timeout", "3")
    assert_one_clean_line(res, f"postgresql://app_user@127.0.0.1:{port}/postgres", "refused")
    assert took < 3 + 5


def test_unknown_host(cluster):
    res, took = run_cli("monitor", "--dsn", "postgresql://app_user@no-such-host.invalid:5432/postgres",
                        "--connect-timeout", "3")
    assert_one_clean_line(res, "postgresql://app_user@no-such-host.invalid:5432/postgres", "host")
    assert took < 3 + 5


def test_wrong_password(cluster, roles):
    res, _ = run_cli("monitor", "--dsn", cluster.tcp_dsn("postgres", "app_user", "wrong-" + SECRET))
    assert_one_clean_line(res, f"postgresql://app_user@127.0.0.1:{cluster.port}/postgres", "authentication failed")
    assert "wrong-" not in res.stderr


def test_missing_database(cluster, roles):
    res, _ = run_cli("monitor", "--dsn", cluster.tcp_dsn("no_such_db", "app_user", SECRET))
    assert_one_clean_line(res, f"postgresql://app_user@127.0.0.1:{cluster.port}/no_such_db", "does not exist")


def test_role_without_login(cluster, roles):
    res, _ = run_cli("monitor", "--dsn", cluster.tcp_dsn("postgres", "no_login", SECRET))
    assert_one_clean_line(res, f"postgresql://no_login@127.0.0.1:{cluster.port}/postgres", "not permitted to log in")


def test_wrong_password_from_environment(cluster, roles):
    res, _ = run_cli("monitor", env={"PGHOST": "127.0.0.1", "PGPORT": str(cluster.port), "PGUSER": "app_user",
                                     "PGDATABASE": "postgres", "PGPASSWORD": "x" + SECRET})
    assert_one_clean_line(res, f"postgresql://app_user@127.0.0.1:{cluster.port}/postgres", "authentication failed")


@pytest.mark.parametrize("dsn", ["not a dsn", f"mysql://root:{SECRET}@host/db", "postgresql://u@h:99999/db",
                                 "host=localhost bogus=1"])
def test_not_a_dsn(dsn):
    res, _ = run_cli("monitor", "--dsn", dsn)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a valid DSN" in lines[0], res.stderr
    assert SECRET not in res.stderr and "Traceback" not in res.stderr


def test_timeout_is_respected(cluster):
    """A server that accepts TCP but never answers: the line comes within the connect timeout."""
    import signal
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    port = srv.getsockname()[1]
    try:
        res, took = run_cli("monitor", "--dsn", f"postgresql://u@127.0.0.1:{port}/db", "--connect-timeout", "2")
        assert_one_clean_line(res, f"postgresql://u@127.0.0.1:{port}/db", "timed out after 2 s")
        assert took < 2 + 4
    finally:
        srv.close()
    del signal
