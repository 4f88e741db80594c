"""The slow-moving limits, polled every ~60 s: XID age (wraparound) and the fullest sequence. No textual."""
from __future__ import annotations

import time

import asyncpg

from tui.db import sql
from tui.db.poller import VERSION_SQL, OptionalParts
from tui.model.events import LimitsSnapshot

LIMITS_REFRESH_S = 60.0


class LimitsPoller:
    """Two cheap catalog reads; each is an optional part (privileges, a timeout: off once, one notice)."""

    def __init__(self, optional_timeout_s: float = 2.0) -> None:
        self.optional_timeout_s = optional_timeout_s
        self.version_num: int | None = None
        self.parts = OptionalParts()

    async def _row(self, conn, part: str, query: str):
        if part in self.parts.off:
            return None
        try:
            return await conn.fetchrow(sql.get(query, self.version_num), timeout=self.optional_timeout_s)
        except OptionalParts.OFF_ERRORS as e:
            self.parts.turn_off(part, e)
            return None

    async def poll(self, conn: asyncpg.Connection) -> LimitsSnapshot:
        if self.version_num is None:
            self.version_num = int(await conn.fetchval(VERSION_SQL))
        xid = await self._row(conn, "xid age", "xid_age")
        seq = await self._row(conn, "sequences", "sequences")
        notes = [f"{p} turned off ({why})" for p, why in self.parts.off.items()]
        seq_off = "sequences" in self.parts.off
        return LimitsSnapshot(
            xid_age=int(xid["xid_age"]) if xid is not None else None,
            xid_database=xid["database"] if xid is not None else None,
            # no used sequence at all is 0 % used; turned off is unknown
            sequence_pct=None if seq_off else (float(seq["pct"] or 0.0) if seq is not None else 0.0),
            sequence_name=seq["name"] if seq is not None else None,
            polled_at=time.monotonic(), note="; ".join(notes),
        )
