"""ServerPoller's Timeline figures on a fake connection (the real server: tests/pg/test_timeline_poll.py):
rates from successive polls, None after a stats reset, the pg_stat_statements part turning itself off
with one notice, and pgpreflight's own statements left out of the totals by queryid."""
from __future__ import annotations

from datetime import datetime, timezone

import asyncpg
import pytest

from tui.db import sql
from tui.db.poller import VERSION_SQL, ServerPoller

pytestmark = pytest.mark.unit
V = 150000
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
NAMES = {VERSION_SQL: "version"}
for _n in ("server_info", "database_size", "pgss_location"):
    NAMES[sql.get(_n, V)] = _n
TOTALS = sql.get("pgss_totals", V).replace("{pgss}", "public")
OWN = sql.get("pgss_own", V).replace("{pgss}", "public")
NAMES[TOTALS], NAMES[OWN] = "pgss_totals", "pgss_own"


def poller() -> ServerPoller:
    p = ServerPoller()
    p.PGSS_DUTY = 0.0  # read pg_stat_statements on every poll (the polls here come microseconds apart)
    return p


class FakeConn:
    def __init__(self) -> None:
        self.commits, self.rollbacks = 100, 5
        self.pgss: dict | None = {"calls": 1000, "ms": 500.0, "entries": 10}  # None: not created
        self.pgss_error: BaseException | None = None
        self.own_ids = [11, 12]
        self.log: list[tuple[str, tuple]] = []

    async def fetchval(self, text, *args, **kw):
        name = NAMES[text]
        self.log.append((name, args))
        if name == "version":
            return V
        return self.own_ids  # pgss_own

    async def fetchrow(self, text, *args, **kw):
        name = NAMES[text]
        self.log.append((name, args))
        if name == "server_info":
            return {"version": "15.1", "version_num": V, "started_at": NOW, "now": NOW, "database": "db",
                    "connections": 6, "max_connections": 100, "reserved_connections": 3,
                    "xacts": self.commits + self.rollbacks, "commits": self.commits, "rollbacks": self.rollbacks,
                    "blks_hit": 100, "blks_read": 1, "in_recovery": False, "active": 2, "idle": 2, "idle_in_xact": 1,
                    "idle_in_xact_aborted": 0, "other_state": 1, "lock_waiting": 1, "oldest_xact_s": 12.5}
        if name == "database_size":
            return {"database_bytes": 1234, "estimated": False}
        if name == "pgss_location":
            return None if self.pgss is None else {"schema": "public", "version": "1.10"}
        if self.pgss_error is not None:
            raise self.pgss_error
        p = self.pgss
        own = 7 if args[0] else 0  # the own statements' calls, when left out ($1: the previous ids)
        own_now = 7 if args[1] else 0
        return {"entries": p["entries"], "calls_prev": p["calls"] - own, "ms_prev": p["ms"] - own,
                "calls": p["calls"] - own_now, "ms": p["ms"] - own_now}


async def test_rates_states_and_a_stats_reset():
    conn, p = FakeConn(), poller()
    first = await p.poll(conn)
    assert first.commits == 100 and first.rollbacks == 5 and first.commits_per_s is None
    assert first.by_state == (("active", 2), ("idle", 2), ("idle in transaction", 1),
                              ("idle in transaction (aborted)", 0), ("other", 1))
    assert sum(n for _s, n in first.by_state) == first.connections
    assert first.lock_waiting == 1 and first.oldest_xact_s == 12.5
    assert first.pgss_calls == 1000 and first.calls_per_s is None and first.mean_ms is None
    conn.commits, conn.rollbacks = 160, 5
    conn.pgss.update(calls=1100, ms=700.0)
    second = await p.poll(conn)
    assert second.commits_per_s > 0 and second.rollbacks_per_s == 0.0
    dt = second.polled_at - first.polled_at
    assert second.commits_per_s == pytest.approx(60 / dt)
    # the ids learned on the first poll are left out from the second on: the interval compares like with like
    assert second.pgss_calls == 1093 and second.calls_per_s == pytest.approx(100 / dt)
    assert second.mean_ms == pytest.approx(2.0)
    conn.commits = 3  # pg_stat_reset()
    conn.pgss.update(calls=20, ms=10.0)  # pg_stat_statements_reset()
    third = await p.poll(conn)
    assert third.commits_per_s is None and third.calls_per_s is None and third.mean_ms is None
    assert third.tps == 0.0  # the header's own figure keeps its meaning (never negative)
    conn.commits = 13
    conn.pgss.update(calls=20, ms=10.0)
    fourth = await p.poll(conn)
    assert fourth.commits_per_s > 0 and fourth.calls_per_s == 0.0 and fourth.mean_ms is None  # no calls: no mean
    assert p.parts.take_notices() == ()


async def test_own_statements_relearned_only_when_the_entries_change_and_a_minute_passed():
    conn, p = FakeConn(), poller()
    await p.poll(conn)
    await p.poll(conn)
    assert [n for n, _a in conn.log].count("pgss_own") == 1
    totals = [a for n, a in conn.log if n == "pgss_totals"]
    assert totals[0] == ([], []) and totals[1] == ([], [11, 12])
    conn.pgss["entries"] = 11
    await p.poll(conn)
    assert [n for n, _a in conn.log].count("pgss_own") == 1  # not yet a minute
    conn, p = FakeConn(), poller()
    p.PGSS_RELEARN_S = 0.0  # a minute has passed, as it were
    await p.poll(conn)
    await p.poll(conn)
    assert [n for n, _a in conn.log].count("pgss_own") == 1  # the entries did not change
    conn.pgss["entries"] = 11
    conn.own_ids = [11, 12, 13]
    await p.poll(conn)
    await p.poll(conn)
    assert [n for n, _a in conn.log].count("pgss_own") == 2
    totals = [a for n, a in conn.log if n == "pgss_totals"]
    assert totals[-1] == ([11, 12], [11, 12, 13])  # $1: what the stored totals left out


async def test_absent_extension_one_notice_then_found_again():
    conn, p = FakeConn(), poller()
    conn.pgss = None
    a = await p.poll(conn)
    b = await p.poll(conn)
    assert a.pgss_calls is None and b.mean_ms is None
    assert p.parts.take_notices() == ("statement latency turned off: pg_stat_statements is not created in this database",)
    assert [n for n, _a in conn.log].count("pgss_location") == 1  # looked for once a minute, not every poll
    conn.pgss = {"calls": 5, "ms": 1.0, "entries": 1}  # CREATE EXTENSION pg_stat_statements
    p.PGSS_RELOCATE_S = 0.0
    c = await p.poll(conn)
    assert c.pgss_calls == 5 and "statement latency" not in p.parts.off
    assert p.parts.take_notices() == ()


@pytest.mark.parametrize("error,reason", [
    (asyncpg.InsufficientPrivilegeError("permission denied for function pg_stat_statements"), "permission denied"),
    (asyncpg.ObjectNotInPrerequisiteStateError("pg_stat_statements must be loaded via shared_preload_libraries"),
     "not loaded"),
    (TimeoutError(), "it timed out"),
])
async def test_an_unreadable_extension_turns_the_part_off_for_good(error, reason):
    conn, p = FakeConn(), poller()
    conn.pgss_error = error
    info = await p.poll(conn)
    assert info.pgss_calls is None and info.connections == 6  # the header itself goes on
    notices = p.parts.take_notices()
    assert len(notices) == 1 and notices[0].startswith("statement latency turned off") and reason in notices[0]
    conn.pgss_error = None
    p.PGSS_RELOCATE_S = 0.0
    again = await p.poll(conn)
    assert again.pgss_calls is None and p.parts.take_notices() == ()
    assert [n for n, _a in conn.log].count("pgss_totals") == 1


async def test_dropped_extension_is_looked_for_again():
    conn, p = FakeConn(), poller()
    await p.poll(conn)
    conn.pgss_error = asyncpg.UndefinedFunctionError("function public.pg_stat_statements(boolean) does not exist")
    gone = await p.poll(conn)
    assert gone.pgss_calls is None
    assert p.parts.take_notices() == ("statement latency turned off: pg_stat_statements is not created in this database",)
    conn.pgss_error = None
    p.PGSS_RELOCATE_S = 0.0
    back = await p.poll(conn)
    assert back.pgss_calls == 993 and back.calls_per_s is None  # no previous totals since it came back


async def test_an_expensive_read_is_spaced_and_its_figures_carried():
    import asyncio
    import time

    conn, p = FakeConn(), ServerPoller()
    p.PGSS_DUTY, p.PGSS_MAX_INTERVAL_S = 1e9, 0.3  # any read "costs" past the cap: the next one 0.3 s later
    t0 = time.monotonic()
    await p.poll(conn)
    conn.pgss.update(calls=2000)
    second = await p.poll(conn)
    assert [n for n, _a in conn.log].count("pgss_totals") == 1
    assert second.pgss_calls == 1000 and second.connections == 6  # carried; the header itself is fresh
    deadline = time.monotonic() + 5
    while (third := await p.poll(conn)).pgss_calls == 1000:
        assert time.monotonic() < deadline, "never read again"
        await asyncio.sleep(0.02)
    assert time.monotonic() - t0 >= 0.3
    assert third.pgss_calls == 1993 and third.calls_per_s > 0
    assert [n for n, _a in conn.log].count("pgss_totals") == 2
