"""Fixtures for the live panes and snapshot tests: a database with a large, awkwardly named table,
and a scene of real sessions (idle, idle in transaction, a lock holder and the session it blocks,
a slow statement). Waits poll with a timeout; nothing sleeps for state."""
from __future__ import annotations

import asyncio

import asyncpg
import pytest
from pg_helpers import wait_until

DB = "snapdb"
SCHEMA = 'Sales "EU" ü'
TABLE = 'Big table "x" — ñ'
QUALIFIED = '"Sales ""EU"" ü"."Big table ""x"" — ñ"'
HIDDEN_ROLE = "watcher"
HIDDEN_PW = "w4tcher-Pw-123"




@pytest.fixture(scope="module")
def snapdb(cluster):
    """A database with a large table under an awkward schema and name, pg_stat_statements created."""
    async def setup():
        conn = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {DB}")
            await conn.execute(f"DROP ROLE IF EXISTS {HIDDEN_ROLE}")
            await conn.execute(f"CREATE ROLE {HIDDEN_ROLE} LOGIN PASSWORD '{HIDDEN_PW}'")
        finally:
            await conn.close()
        conn = await asyncpg.connect(cluster.dsn(DB))
        try:
            await conn.execute("CREATE EXTENSION pg_stat_statements")
            await conn.execute("CREATE SCHEMA " + QUALIFIED.split(".")[0])
            await conn.execute(f"CREATE TABLE {QUALIFIED} (id int PRIMARY KEY, pad text)")
            await conn.execute(f"INSERT INTO {QUALIFIED} SELECT g, repeat('x', 200) FROM generate_series(1, 60000) g")
            await conn.execute(f"ANALYZE {QUALIFIED}")
            await conn.execute("CREATE TABLE small_one (id int)")
            await conn.execute(f"GRANT USAGE ON SCHEMA {QUALIFIED.split('.')[0]} TO {HIDDEN_ROLE}")
        finally:
            await conn.close()
    asyncio.run(setup())
    return cluster.dsn(DB)


@pytest.fixture
async def scene(cluster, snapdb):
    """Real sessions: idle, idle in transaction, a lock holder and a session it blocks, a slow statement."""
    dsn = snapdb
    conns = []

    async def open_(app):
        c = await asyncpg.connect(dsn, server_settings={"application_name": app})
        conns.append(c)
        return c

    idle = await open_("test-idle")
    await idle.execute("SELECT 1")
    iit = await open_("test-iit")
    await iit.execute("BEGIN; SELECT 42")
    holder = await open_("test-holder")
    await holder.execute(f"BEGIN; LOCK TABLE {QUALIFIED} IN ACCESS EXCLUSIVE MODE")
    waiter = await open_("test-waiter")
    blocked_task = asyncio.ensure_future(waiter.fetch(f"SELECT count(*) FROM {QUALIFIED}"))
    slow = await open_("test-slow")
    slow_task = asyncio.ensure_future(slow.execute("SELECT pg_sleep(60) /* slow-marker */"))
    # our own-looking session must never be listed
    own = await open_("pgpreflight/fake")
    await own.execute("SELECT 1")

    watch = await asyncpg.connect(cluster.dsn(DB))
    conns.append(watch)
    pids = {"idle": idle.get_server_pid(), "iit": iit.get_server_pid(), "holder": holder.get_server_pid(),
            "waiter": waiter.get_server_pid(), "slow": slow.get_server_pid(), "own": own.get_server_pid()}

    async def ready():
        rows = await watch.fetch(
            "SELECT pid, state, wait_event_type FROM pg_stat_activity WHERE pid = ANY($1::int[])",
            [pids["waiter"], pids["slow"], pids["iit"]])
        by = {r["pid"]: r for r in rows}
        return (by.get(pids["waiter"]) and by[pids["waiter"]]["wait_event_type"] == "Lock"
                and by.get(pids["slow"]) and by[pids["slow"]]["state"] == "active"
                and by.get(pids["iit"]) and by[pids["iit"]]["state"] == "idle in transaction")
    await wait_until(ready, what="blocked, slow and idle-in-transaction sessions")
    yield {"dsn": dsn, "pids": pids, "slow_task": slow_task, "blocked_task": blocked_task, "holder": holder}
    for t in (slow_task, blocked_task):
        t.cancel()
    for c in conns:
        c.terminate()
    await asyncio.gather(slow_task, blocked_task, return_exceptions=True)


