"""Secrets (issue 6): the password never appears on stdout, stderr, in the state file, the audit log,
reports or error text; PGPASSWORD and .pgpass (PGPASSFILE) work so it need not be on the command line.

Runs on a cluster of its own: fix --yes on slow_query_log changes the server's settings (ALTER SYSTEM)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest

from tui.cluster import start_cluster

pytestmark = [pytest.mark.faults, pytest.mark.pg]

OPS = "sx_ops"
OPS_PASSWORD = "p@ss:w/rd%'x y#Zq9"  # every character a DSN parser can trip on
WRONG_PASSWORD = "Wr0ngButSecret-7c1e"


@pytest.fixture(scope="module")
def sx():
    c = start_cluster()

    async def setup():
        a = await asyncpg.connect(c.dsn("postgres"))
        try:
            await a.execute(f"CREATE ROLE {OPS} LOGIN SUPERUSER PASSWORD '{OPS_PASSWORD.replace(chr(39), chr(39) * 2)}'")
            await a.execute("CREATE DATABASE sx_app")
        finally:
            await a.close()
    asyncio.run(setup())
    yield c
    c.destroy()


def forms(secret: str) -> set[str]:
    """The ways a password could leak: raw, URL-quoted, quoted with '+' for spaces."""
    return {secret, quote(secret, safe=""), quote(secret, safe="").replace("%20", "+"), quote(secret)}


def run_cli(*args: str, env_extra: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)


def assert_no_secret(secrets: list[str], res: subprocess.CompletedProcess, state_dir: Path, what: str) -> None:
    blobs = {"stdout": res.stdout, "stderr": res.stderr}
    for p in state_dir.rglob("*") if state_dir.exists() else []:
        if p.is_file():
            blobs[str(p)] = p.read_bytes().decode("utf-8", errors="replace")
    for secret in secrets:
        for form in forms(secret):
            for where, text in blobs.items():
                assert form not in text, f"{what}: the password ({form!r}) appears in {where}"
    assert "Traceback" not in res.stderr, res.stderr


def commands(item: str = "health.slow_query_log") -> list[list[str]]:
    return [
        ["snapshot", "--format", "json"],
        ["snapshot", "--format", "text"],
        ["check", "--format", "text"],
        ["check", "--format", "json"],
        ["check", "--format", "junit"],
        ["check", "--format", "markdown"],
        ["report"],
        ["fix", item, "--dry-run"],
    ]


@pytest.mark.parametrize("who", ["superuser", "ops"])
def test_password_in_the_dsn_never_leaks(sx, tmp_path, who):
    user, password = ("postgres", sx.password) if who == "superuser" else (OPS, OPS_PASSWORD)
    dsn = sx.tcp_dsn("sx_app", user, password)
    state = tmp_path / "state"
    for args in commands():
        res = run_cli(*args, "--checklist", "general", "--dsn", dsn, "--state-dir", str(state),
                      "--app-root", str(tmp_path))
        assert res.returncode in (0, 1), (args, res.stderr)
        assert f"postgresql://{user}@127.0.0.1:{sx.port}/sx_app" in res.stdout + res.stderr, args
        assert_no_secret([password], res, state, " ".join(args))
    out = tmp_path / "signoff.md"
    res = run_cli("report", "--checklist", "general", "--dsn", dsn, "--state-dir", str(state), "-o", str(out))
    assert res.returncode == 1, res.stderr  # written; not ready
    assert password not in out.read_text() and quote(password, safe="") not in out.read_text()
    assert (state / "checklist").is_dir(), "the state was written"


def test_fix_yes_and_undo_leave_no_password(sx, tmp_path):
    """A harmless fix that really runs (ALTER SYSTEM on this module's own server), then its undo."""
    dsn = sx.tcp_dsn("sx_app", "postgres", sx.password)
    state = tmp_path / "state"
    res = run_cli("fix", "health.slow_query_log", "--yes", "--checklist", "general", "--dsn", dsn,
                  "--state-dir", str(state))
    assert res.returncode == 0, res.stdout + res.stderr
    assert_no_secret([sx.password], res, state, "fix --yes")
    audit = state / "audit.jsonl"
    assert audit.is_file() and "ALTER SYSTEM SET log_min_duration_statement" in audit.read_text()
    undo = run_cli("fix", "health.slow_query_log", "--undo", "--yes", "--checklist", "general", "--dsn", dsn,
                   "--state-dir", str(state))
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert_no_secret([sx.password], undo, state, "fix --undo --yes")

    async def setting():
        c = await asyncpg.connect(sx.dsn("postgres"))
        try:
            return await c.fetchval("SELECT setting FROM pg_settings WHERE name = 'log_min_duration_statement'")
        finally:
            await c.close()
    assert asyncio.run(setting()) == "-1", "the undo restored the server's setting"


@pytest.mark.parametrize("case", ["wrong-password", "wrong-port", "missing-database", "bad-port-text",
                                  "kv-bad-keyword", "kv-wrong-password"])
def test_failing_connections_never_echo_the_password(sx, tmp_path, case):
    secret = WRONG_PASSWORD if "wrong-password" in case else sx.password
    q = quote(secret, safe="")
    dsn = {
        "wrong-password": f"postgresql://postgres:{q}@127.0.0.1:{sx.port}/sx_app",
        "wrong-port": f"postgresql://postgres:{q}@127.0.0.1:1/sx_app",
        "missing-database": f"postgresql://postgres:{q}@127.0.0.1:{sx.port}/no_such_db",
        "bad-port-text": f"postgresql://postgres:{q}@127.0.0.1:notaport/sx_app",
        "kv-bad-keyword": f"host=127.0.0.1 port={sx.port} user=postgres password={secret} colour=red",
        "kv-wrong-password": f"host=127.0.0.1 port={sx.port} user=postgres password={secret} dbname=sx_app",
    }[case]
    state = tmp_path / "state"
    for args in (["check"], ["snapshot"], ["fix", "health.slow_query_log", "--yes"], ["report"]):
        res = run_cli(*args, "--dsn", dsn, "--connect-timeout", "3", "--state-dir", str(state))
        assert res.returncode == 2, (case, args, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pgpreflight:"), res.stderr
        assert_no_secret([secret], res, state, f"{case} {args[0]}")


def test_password_from_pgpassword(sx, tmp_path):
    state = tmp_path / "state"
    dsn = f"postgresql://{OPS}@127.0.0.1:{sx.port}/sx_app"
    for args in (["snapshot", "--format", "text"], ["check", "--format", "json"]):
        res = run_cli(*args, "--checklist", "general", "--dsn", dsn, "--state-dir", str(state),
                      env_extra={"PGPASSWORD": OPS_PASSWORD})
        assert res.returncode in (0, 1), res.stderr
        assert_no_secret([OPS_PASSWORD], res, state, f"PGPASSWORD {args[0]}")
    # and without it the same DSN is refused: the password really came from the environment
    res = run_cli("check", "--dsn", dsn, "--state-dir", str(state), "--connect-timeout", "3")
    assert res.returncode == 2 and "authentication failed" in res.stderr or "password" in res.stderr, res.stderr


def test_password_from_pgpassfile(sx, tmp_path):
    passfile = tmp_path / "pgpass"
    esc = OPS_PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
    passfile.write_text(f"127.0.0.1:{sx.port}:sx_app:{OPS}:{esc}\n")
    passfile.chmod(0o600)
    state = tmp_path / "state"
    dsn = f"postgresql://{OPS}@127.0.0.1:{sx.port}/sx_app"
    for args in (["snapshot", "--format", "json"], ["check", "--format", "text"], ["report"]):
        res = run_cli(*args, "--checklist", "general", "--dsn", dsn, "--state-dir", str(state),
                      env_extra={"PGPASSFILE": str(passfile)})
        assert res.returncode in (0, 1), (args, res.stderr)
        assert_no_secret([OPS_PASSWORD], res, state, f"PGPASSFILE {args[0]}")
    # DATABASE_URL without a password works the same way
    res = run_cli("snapshot", "--format", "text", "--state-dir", str(state),
                  env_extra={"PGPASSFILE": str(passfile), "DATABASE_URL": dsn})
    assert res.returncode == 0, res.stderr
    assert_no_secret([OPS_PASSWORD], res, state, "PGPASSFILE via DATABASE_URL")
