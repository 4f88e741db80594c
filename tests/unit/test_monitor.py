"""The monitor service (tui.db.monitor) with a fake connection, a fake clock and a fake sleep:
due times, the backoff on connect failures, poll_now, wanted panes only, the prefetched round."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from tui.config import Config, TargetError, resolve_target
from tui.db import sql
from tui.db.first_poll import Prefetched
from tui.db.monitor import BACKOFF_CAP_S, Monitor
from tui.db.poller import (
    HIDDEN_SESSIONS_SQL, MAX_CONN_SQL, PRELOADED_SQL, ROLE_SQL, VERSION_SQL, ConnectionsPoller, ServerPoller,
)
from tui.db.snapshot import PRIVS_SQL
from tui.model import events as E

pytestmark = pytest.mark.unit
V = 150000
POLL_S = 0.25  # every query takes this long on the fake clock


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s
        await asyncio.sleep(0)


NAMES = {VERSION_SQL: "version", ROLE_SQL: "role", MAX_CONN_SQL: "max_connections", PRELOADED_SQL: "preloaded",
         HIDDEN_SESSIONS_SQL: "hidden", PRIVS_SQL: "privs"}
for _n in ("server_info", "database_size", "activity", "activity_all", "pgss_location", "long_running", "tables",
           "xid_age", "sequences", "data_directory"):
    NAMES[sql.get(_n, V)] = _n


class FakeConn:
    """Answers the pollers' queries by name; records them; each takes POLL_S on the fake clock."""

    def __init__(self, clock: Clock, log: list[tuple[float, str]], fail_on: str | None = None,
                 poll_s: float = POLL_S) -> None:
        self.clock, self.log, self.fail_on, self.poll_s = clock, log, fail_on, poll_s
        self.closed = False
        self.xacts = 0

    def _q(self, text: str) -> str:
        name = NAMES[text]
        self.log.append((self.clock.now, name))
        self.clock.now += self.poll_s
        if name == self.fail_on:
            raise ConnectionResetError("the server closed the connection")
        return name

    async def fetchval(self, text, *a, **kw):
        name = self._q(text)
        return {"version": V, "role": "me", "max_connections": 100, "preloaded": False, "hidden": 0,
                "data_directory": "/", "database_size": 1234}[name]

    async def fetchrow(self, text, *a, **kw):
        name = self._q(text)
        if name == "server_info":
            self.xacts += 10
            now = datetime(2024, 1, 1, tzinfo=timezone.utc)
            return {"version": "15.1", "version_num": V, "started_at": now, "now": now, "database": "db",
                    "connections": 5, "max_connections": 100, "reserved_connections": 3, "xacts": self.xacts,
                    "blks_hit": 100, "blks_read": 1, "in_recovery": False, "commits": self.xacts, "rollbacks": 0,
                    "active": 1, "idle": 4, "idle_in_xact": 0, "idle_in_xact_aborted": 0, "other_state": 0,
                    "lock_waiting": 0, "oldest_xact_s": None}
        if name == "database_size":
            return {"database_bytes": 1234, "estimated": False}
        if name == "privs":
            return {"role": "me", "rolsuper": True, "stats": True, "settings": True}
        if name == "xid_age":
            return {"database": "db", "xid_age": 1000}
        if name == "sequences":
            return {"name": "public.s", "pct": 1.0}
        return None  # pgss_location: not created

    async def fetch(self, text, *a, **kw):
        self._q(text)
        return []

    def is_closed(self) -> bool:
        return self.closed

    def terminate(self) -> None:
        self.closed = True

    async def close(self) -> None:
        self.closed = True


def config(**kw) -> Config:
    return Config(target=resolve_target("postgresql://me@db.example:5432/db", env={}), refresh=2.0,
                  tables_refresh=30.0, **kw)


def make(clock: Clock, *, fail_connects: int = 0, fail_on: str | None = None, poll_s: float = POLL_S, **kw):
    log: list[tuple[float, str]] = []
    connects: list[dict] = []

    async def connect(target, **opts):
        connects.append({"at": clock.now, **opts})
        if len(connects) <= fail_connects:
            raise TargetError(target.display, "connection refused (nothing listens on that host and port)")
        return FakeConn(clock, log, fail_on if len(connects) == fail_connects + 1 else None, poll_s)

    mon = Monitor(config(), connect=connect, clock=clock, sleep=clock.sleep, **kw)
    return mon, log, connects


async def take(mon: Monitor, until, limit: int = 500) -> list:
    """Events until ``until(events)`` holds (a bounded number: never waits on real time)."""
    out = []
    gen = mon.events()
    try:
        async for ev in gen:
            out.append(ev)
            if until(out):
                return out
            assert len(out) < limit, f"condition never held; last events: {out[-5:]}"
    finally:
        await gen.aclose()
    return out


def rounds(n):
    return lambda evs: sum(isinstance(e, E.RoundEnded) for e in evs) >= n


def times(log, name):
    return [t for t, n in log if n == name]


async def test_due_times_and_lock_timeout():
    clock = Clock()
    mon, log, connects = make(clock, wanted={"server", "connections"})
    evs = await take(mon, rounds(4))
    assert connects[0]["lock_timeout_ms"] == 500 and connects[0]["role"] == "poll"
    assert isinstance(evs[0], E.ConnectionChanged) and evs[0].state.status == "connecting"
    assert [e.state.status for e in evs if isinstance(e, E.ConnectionChanged)] == ["connecting", "connected"]
    srv = times(log, "server_info")
    # the next poll is armed after the last ended: the server query's own time, then the refresh
    starts = [round(b - a, 6) for a, b in zip(srv, srv[1:])]
    assert len(starts) == 3 and all(s >= 2.0 for s in starts), starts
    # the sessions are polled in the same round as the server, right after it, every round
    assert len(times(log, "activity")) == 4
    assert all(0 < a - s < 2.0 for s, a in zip(srv, times(log, "activity")))
    # the database size with the first round only (every 30 s)
    assert len(times(log, "database_size")) == 1
    ends = [e for e in evs if isinstance(e, E.RoundEnded)]
    assert all(e.polled == ("server", "connections") for e in ends)


async def test_wanted_panes_only():
    clock = Clock()
    mon, log, _ = make(clock, wanted={"server"})
    await take(mon, rounds(3))
    ran = {n for _, n in log}
    assert "server_info" in ran
    assert not ran & {"activity", "activity_all", "tables", "long_running", "xid_age", "sequences"}, ran


async def test_tables_every_tables_refresh_and_limits():
    clock = Clock()
    mon, log, _ = make(clock, wanted={"server", "tables", "limits", "host"})
    evs = await take(mon, lambda evs: clock.now > 1000 + 65)
    tables = times(log, "tables")
    assert len(tables) == 3 and 30 <= tables[1] - tables[0] < 32, tables
    assert len(times(log, "xid_age")) == 2  # every 60 s
    host = [e for e in evs if isinstance(e, E.HostPolled)]
    assert host and host[0].snap is None and "remote" in host[0].message
    lim = [e for e in evs if isinstance(e, E.LimitsPolled)][0].snap
    assert (lim.xid_age, lim.sequence_pct, lim.sequence_name) == (1000, 1.0, "public.s")


async def test_backoff_doubles_to_the_cap_then_connects():
    clock = Clock()
    mon, log, connects = make(clock, fail_connects=7)
    evs = await take(mon, rounds(1))
    down = [e.state for e in evs if isinstance(e, E.ConnectionChanged) and e.state.status == "disconnected"]
    assert [s.retry_in_s for s in down] == [1, 2, 4, 8, 16, 20, 20]
    assert all("connection refused" in s.message for s in down)
    gaps = [b["at"] - a["at"] for a, b in zip(connects, connects[1:])]
    assert gaps == [1, 2, 4, 8, 16, 20, 20]
    assert mon.backoff == 1.0 and BACKOFF_CAP_S == 20


async def test_failed_poll_says_disconnected_and_reconnects():
    clock = Clock()
    mon, log, connects = make(clock, fail_on="activity")
    evs = await take(mon, rounds(1))
    kinds = [type(e).__name__ for e in evs]
    # the server's figures of the failed round still come, before "disconnected"
    i = kinds.index("ServerPolled")
    assert kinds[i + 1] == "ConnectionChanged" and evs[i + 1].state.status == "disconnected"
    assert "closed the connection" in evs[i + 1].state.message and evs[i + 1].state.retry_in_s == 1
    assert len(connects) == 2 and connects[1]["at"] - connects[0]["at"] >= 1


async def test_poll_now_and_show_idle():
    clock = Clock()
    mon, log, _ = make(clock, wanted={"server", "connections", "tables"}, poll_s=0.01)
    gen = mon.events()
    seen = []
    try:
        async for ev in gen:
            seen.append(ev)
            if isinstance(ev, E.RoundEnded) and len([e for e in seen if isinstance(e, E.RoundEnded)]) == 1:
                t_first = clock.now
                mon.poll_now({"tables"})
                mon.show_idle = True  # the sessions are listed again at once, with the idle ones
            if isinstance(ev, E.RoundEnded) and len([e for e in seen if isinstance(e, E.RoundEnded)]) == 2:
                break
    finally:
        await gen.aclose()
    second = [e for e in seen if isinstance(e, E.RoundEnded)][1]
    assert second.prompt and second.polled == ("connections", "tables")
    assert times(log, "activity_all") and times(log, "activity_all")[0] < t_first + 1.0
    assert len(times(log, "tables")) == 2 and len(times(log, "server_info")) == 1
    assert [e.prompt for e in seen if isinstance(e, E.TablesPolled)] == [False, True]


async def test_pause_polls_nothing_until_resumed():
    clock = Clock()
    mon, log, _ = make(clock)
    mon.pause()
    gen = mon.events()
    evs: list = []

    async def consume():
        async for ev in gen:
            evs.append(ev)

    task = asyncio.ensure_future(consume())

    async def spin_until(cond):
        for _ in range(2000):  # the loop runs on the fake clock: bounded steps, no real waiting
            if cond():
                return True
            await asyncio.sleep(0)
        return cond()

    try:
        assert await spin_until(lambda: clock.now > 1000 + 10)
        assert not times(log, "server_info") and mon.conn is not None  # connected, polling nothing
        mon.resume()
        assert await spin_until(lambda: any(isinstance(e, E.RoundEnded) for e in evs))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await gen.aclose()
    assert times(log, "server_info")[0] < clock.now
    assert mon.conn is None  # closing the events closed the session


async def test_prefetched_round_comes_first_quietly():
    clock = Clock()
    pre = Prefetched(ServerPoller(), ConnectionsPoller())
    log: list = []
    conn = FakeConn(clock, log)
    pre.info = await pre.server_poller.poll(conn, with_size=True)
    pre.connections = await pre.connections_poller.poll(conn)
    pre.at = clock.now
    log.clear()
    mon, log2, _ = make(clock, prefetched=pre)
    evs = await take(mon, rounds(2))
    assert [type(e).__name__ for e in evs[:4]] == ["ConnectionChanged", "ServerPolled", "ConnectionsPolled",
                                                   "RoundEnded"]
    assert evs[1].info is pre.info and evs[3].at == pre.at
    assert not [e for e in evs if isinstance(e, E.ConnectionChanged) and e.state.status == "connecting"]
    srv = times(log2, "server_info")
    assert srv and srv[0] >= pre.at + 2.0  # due a refresh after the prefetched round
    assert not times(log2, "database_size")  # the size is due a tables_refresh after it
    assert mon.server_poller is pre.server_poller
    assert [e for e in evs if isinstance(e, E.ServerPolled)][1].info.tps is not None  # rates go on


def test_unknown_pane_is_refused():
    with pytest.raises(ValueError, match="unknown pane"):
        Monitor(config(), wanted={"server", "replication"})
