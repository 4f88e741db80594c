"""Pollers: asyncpg in, frozen snapshots out. No textual."""
from __future__ import annotations

import time

import asyncpg

from tui.db import sql
from tui.model.snapshot import ServerInfo


class ServerPoller:
    """Header figures. Keeps the previous sample to derive TPS, cache hit and growth."""

    def __init__(self) -> None:
        self._prev: ServerInfo | None = None
        self._size_sample: tuple[float, int] | None = None
        self._size_prev: tuple[float, int] | None = None
        self.version_num: int | None = None

    async def poll(self, conn: asyncpg.Connection, with_size: bool = False) -> ServerInfo:
        if self.version_num is None:
            self.version_num = int(await conn.fetchval("SELECT current_setting('server_version_num')::int"))
        row = await conn.fetchrow(sql.get("server_info", self.version_num))
        now = time.monotonic()
        if with_size or self._size_sample is None:
            size = await conn.fetchval(sql.get("database_size", self.version_num))
            self._size_prev, self._size_sample = self._size_sample, (now, int(size))
        growth = None
        if self._size_prev and self._size_sample and self._size_sample[0] > self._size_prev[0]:
            growth = (self._size_sample[1] - self._size_prev[1]) / (self._size_sample[0] - self._size_prev[0])
        prev = self._prev
        tps = hit = None
        if prev is not None and now > prev.polled_at:
            dt = now - prev.polled_at
            tps = max(0, row["xacts"] - prev.xacts) / dt
            dh, dr = row["blks_hit"] - prev.blks_hit, row["blks_read"] - prev.blks_read
            if dh + dr > 0:
                hit = dh / (dh + dr)
        if hit is None and (row["blks_hit"] + row["blks_read"]) > 0:
            hit = row["blks_hit"] / (row["blks_hit"] + row["blks_read"])
        info = ServerInfo(
            version=row["version"], version_num=row["version_num"], started_at=row["started_at"], now=row["now"],
            database=row["database"], connections=row["connections"], max_connections=row["max_connections"],
            reserved_connections=row["reserved_connections"], xacts=row["xacts"], blks_hit=row["blks_hit"],
            blks_read=row["blks_read"], in_recovery=row["in_recovery"], polled_at=now,
            database_bytes=self._size_sample[1] if self._size_sample else None, database_growth_bps=growth,
            tps=tps, cache_hit_ratio=hit,
        )
        self._prev = info
        return info
