"""One session's facts on demand: its locks (for the session detail) and, after a cancel or
terminate, what pg_stat_activity says of the pids. asyncpg in, frozen model objects out. No textual."""
from __future__ import annotations

import asyncpg

from tui.db import sql
from tui.model.snapshot import LockRow, SessionLocks, SessionState

STATES_SQL = ("-- pgpreflight\nSELECT pid, state, query_start, backend_start FROM pg_stat_activity "
              "WHERE pid = ANY($1::int[])")


async def session_locks(conn: asyncpg.Connection, pid: int) -> SessionLocks:
    """What ``pid`` holds and waits for in pg_locks, who blocks it and whom it blocks."""
    rows = await conn.fetch(sql.get("session_locks"), pid)
    held, waiting = [], []
    blocked_by: tuple[int, ...] = ()
    blocking: tuple[int, ...] = ()
    exists = False
    for r in rows:
        kind = r["kind"]
        if kind == "l":
            lock = LockRow(r["locktype"], r["mode"], bool(r["granted"]), r["target"] or r["locktype"])
            (held if lock.granted else waiting).append(lock)
        elif kind == "b":
            blocked_by = tuple(r["pids"] or ())
        elif kind == "w":
            blocking = tuple(r["pids"] or ())
        elif kind == "e":
            exists = bool(r["granted"])
    held.sort(key=lambda x: (x.locktype != "relation", x.target, x.mode))
    return SessionLocks(pid=pid, exists=exists, held=tuple(held), waiting=tuple(waiting),
                        blocked_by=blocked_by, blocking=blocking)


async def session_states(conn: asyncpg.Connection, pids) -> dict[int, SessionState]:
    """pg_stat_activity's word on ``pids`` now: a pid missing from the answer has ended."""
    rows = await conn.fetch(STATES_SQL, list(pids))
    return {r["pid"]: SessionState(r["pid"], r["state"], r["query_start"], r["backend_start"]) for r in rows}
