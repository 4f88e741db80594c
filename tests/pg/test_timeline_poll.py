"""ServerPoller's Timeline figures against the real cluster (issue 14 §3): a session idle in transaction
makes the oldest transaction's age positive and is counted by state, a lock wait is counted, and the
statement totals of pg_stat_statements move with the database's statements but not with our own polls.
Waits poll with a timeout; nothing sleeps for state."""
from __future__ import annotations

import asyncpg
import pytest
from pg_helpers import fresh_database, wait_until

from tui.config import resolve_target
from tui.db.connect import connect
from tui.db.poller import ServerPoller

pytestmark = pytest.mark.pg


@pytest.fixture
async def timeline_db(cluster):
    dsn = await fresh_database(cluster, "timelinedb")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE EXTENSION pg_stat_statements; CREATE TABLE t (id int)")
    finally:
        await conn.close()
    return dsn


async def test_idle_in_transaction_and_a_lock_wait(timeline_db):
    dsn = timeline_db
    poll = await connect(resolve_target(dsn, env={}), role="poll")
    holder = await asyncpg.connect(dsn, server_settings={"application_name": "test-holder"})
    waiter = await asyncpg.connect(dsn, server_settings={"application_name": "test-waiter"})
    p = ServerPoller()
    wait = None
    try:
        before = await p.poll(poll, with_size=True)
        states = dict(before.by_state)
        assert set(states) == {"active", "idle", "idle in transaction", "idle in transaction (aborted)", "other"}
        assert sum(states.values()) == before.connections and states["active"] >= 1  # the poll itself
        assert before.lock_waiting == 0
        assert before.commits is not None and before.rollbacks is not None
        base_iix = states["idle in transaction"]

        tx = holder.transaction()
        await tx.start()
        await holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")  # then idle, in the transaction

        async def holder_seen():
            info = await p.poll(poll)
            ok = dict(info.by_state)["idle in transaction"] == base_iix + 1 and (info.oldest_xact_s or 0) > 0
            return info if ok else None
        info = await wait_until(holder_seen, timeout=10, what="the idle transaction in the header's figures")
        assert info.oldest_xact_s < 60

        wait = waiter.execute("SELECT count(*) FROM t")  # queues behind the lock
        import asyncio

        wait = asyncio.ensure_future(wait)

        async def waiting():
            info = await p.poll(poll)
            return info if info.lock_waiting == 1 else None
        info = await wait_until(waiting, timeout=10, what="the lock wait in the header's figures")
        assert dict(info.by_state)["active"] >= 2  # the waiter is active, waiting on a Lock
        await tx.rollback()
        assert await asyncio.wait_for(wait, 10) == "SELECT 1"
        wait = None

        async def cleared():
            info = await p.poll(poll)
            return info if info.lock_waiting == 0 and dict(info.by_state)["idle in transaction"] == base_iix else None
        info = await wait_until(cleared, timeout=10, what="the wait and the transaction gone")
        assert info.rollbacks_per_s is not None and info.commits_per_s is not None
    finally:
        if wait is not None:
            wait.cancel()
        for c in (holder, waiter, poll):
            c.terminate()


async def test_statement_totals_move_with_the_database_not_with_our_polls(timeline_db):
    dsn = timeline_db
    poll = await connect(resolve_target(dsn, env={}), role="poll")
    app = await asyncpg.connect(dsn)
    p = ServerPoller()
    p.PGSS_DUTY = 0.0  # read on every poll: these polls come milliseconds apart
    try:
        await app.execute("SELECT pg_stat_statements_reset()")
        for _ in range(3):  # the first learns our own statements' ids, the next ones leave them out
            first = await p.poll(poll)
        assert first.pgss_calls is not None and p.parts.take_notices() == ()
        quiet = [await p.poll(poll) for _ in range(3)]
        assert {i.pgss_calls for i in quiet} == {first.pgss_calls}, "our own polls counted"
        assert quiet[-1].calls_per_s == 0.0 and quiet[-1].mean_ms is None
        for _ in range(50):
            await app.fetchval("SELECT pg_sleep(0.002)")
        busy = await p.poll(poll)
        assert busy.pgss_calls >= first.pgss_calls + 50
        assert busy.calls_per_s > 0 and busy.mean_ms is not None and busy.mean_ms >= 1.5
        assert busy.pgss_total_ms > quiet[-1].pgss_total_ms
        await app.execute("SELECT pg_stat_statements_reset()")
        reset = await p.poll(poll)
        assert reset.calls_per_s is None and reset.mean_ms is None  # a reset: no figure, not a negative rate
    finally:
        app.terminate()
        poll.terminate()


async def test_without_the_extension_one_notice(cluster):
    dsn = await fresh_database(cluster, "timelinenopgss")
    poll = await connect(resolve_target(dsn, env={}), role="poll")
    p = ServerPoller()
    try:
        a = await p.poll(poll, with_size=True)
        b = await p.poll(poll)
        assert a.pgss_calls is None and b.calls_per_s is None and b.connections >= 1
        assert p.parts.take_notices() == (
            "statement latency turned off: pg_stat_statements is not created in this database",)
    finally:
        poll.terminate()
