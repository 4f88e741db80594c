"""What the monitor service (tui.db.monitor) yields: one frozen event type per pane, named in the
past tense. Pure Python: the TUI, the recorder and ``watch`` consume these; widgets may import them.

A round's events come together and end with :class:`RoundEnded`, so that a consumer can draw (or
record) one round at once."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tui.model.snapshot import (
    ConnectionsSnapshot, ConnectionState, HostSnapshot, ServerInfo, SlowQueriesSnapshot, TablesSnapshot,
)

#: the parts the monitor can poll; "limits" (XID age, sequences) is polled only when asked for
PANES = ("server", "connections", "slow", "tables", "host", "limits")


@dataclass(frozen=True)
class LimitsSnapshot:
    """The slow-moving limits: transaction ID wraparound and sequence exhaustion (cheap, every ~60 s)."""

    xid_age: int | None  # the largest age(datfrozenxid) of any database
    xid_database: str | None
    sequence_pct: float | None  # the fullest sequence of this database, % of its range used
    sequence_name: str | None  # schema-qualified, quoted by the server
    polled_at: float = 0.0
    note: str = ""  # what could not be read, and why


@dataclass(frozen=True)
class ConnectionChanged:
    state: ConnectionState


@dataclass(frozen=True)
class ServerPolled:
    info: ServerInfo


@dataclass(frozen=True)
class ConnectionsPolled:
    snap: ConnectionsSnapshot
    prompt: bool = False  # polled because poll_now asked (a key): drawn at once, not held for the round


@dataclass(frozen=True)
class SlowQueriesPolled:
    snap: SlowQueriesSnapshot
    prompt: bool = False


@dataclass(frozen=True)
class TablesPolled:
    snap: TablesSnapshot
    prompt: bool = False


@dataclass(frozen=True)
class HostPolled:
    snap: HostSnapshot | None  # None for a remote server: ``message`` says so
    message: str = ""
    prompt: bool = False


@dataclass(frozen=True)
class LimitsPolled:
    snap: LimitsSnapshot
    prompt: bool = False


@dataclass(frozen=True)
class PartTurnedOff:
    """An optional query failed on privileges or a timeout and switched itself off (one notice)."""

    part: str  # the pane it belongs to
    notice: str


@dataclass(frozen=True)
class RoundEnded:
    at: float  # the monitor's clock (time.monotonic()) when the round ended
    polled: tuple[str, ...] = ()  # the panes polled in it, in order
    prompt: bool = False  # the round was asked for by poll_now


@dataclass(frozen=True)
class AlertChanged:
    """An alert raised (``cleared_at`` None) or cleared, as tui.alerts.AlertBook decided after a round.
    Consumers: the TUI (header, toast, list), the recorder, ``watch``. Plain fields: tui.model stays
    below tui.alerts."""

    name: str  # the threshold's name (tui.alerts.NAMES)
    value: float
    threshold: float
    started_at: datetime
    cleared_at: datetime | None
    message: str

    @property
    def raised(self) -> bool:
        return self.cleared_at is None


@dataclass(frozen=True)
class FixRan:
    """A fix (or a guarded test) finished: what the recorder and the sign-off's timeline keep."""

    item_id: str
    ok: bool
    summary: str
    at: datetime


@dataclass(frozen=True)
class ChecklistRan:
    """A checklist run (or re-verify) finished: each item's status ("pass", "fail", "manual", ...)."""

    checklist: str
    results: tuple[tuple[str, str], ...]  # (item id, status)
    at: datetime


PaneEvent = ServerPolled | ConnectionsPolled | SlowQueriesPolled | TablesPolled | HostPolled | LimitsPolled
Event = ConnectionChanged | PaneEvent | PartTurnedOff | RoundEnded | AlertChanged | FixRan | ChecklistRan
