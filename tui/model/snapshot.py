"""Immutable snapshots the pollers produce and the widgets draw. Pure Python."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ServerInfo:
    version: str
    version_num: int
    started_at: datetime
    now: datetime
    database: str
    connections: int
    max_connections: int
    reserved_connections: int
    xacts: int
    blks_hit: int
    blks_read: int
    in_recovery: bool
    polled_at: float  # time.monotonic() of the poll
    database_bytes: int | None = None
    database_growth_bps: float | None = None  # bytes per second, from successive size polls
    tps: float | None = None  # from the previous poll
    cache_hit_ratio: float | None = None  # over the last interval, else cumulative

    @property
    def uptime_s(self) -> float:
        return max(0.0, (self.now - self.started_at).total_seconds())

    @property
    def usable_connections(self) -> int:
        return max(0, self.max_connections - self.reserved_connections)

    @property
    def major(self) -> int:
        return self.version_num // 10000


@dataclass(frozen=True)
class ConnectionState:
    """What the header says about the link to the server."""

    status: str  # "connecting" | "connected" | "disconnected"
    message: str = ""
    retry_in_s: float | None = None
    last_ok_at: float | None = None  # monotonic time of the last good poll
