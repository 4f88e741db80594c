"""The Timeline: bounded time series of the header's figures for the graphs (issue 14 §3). Pure Python.

Fed by the monitor's events (``take``): every ``ServerPolled`` adds a point, a ``ConnectionChanged`` that
is not "connected" marks a gap. The recorder's replay feeds the same ``take`` with the recorded wall time
(``at``). Three windows:

- ``"5m"``: the raw points of the last 5 minutes;
- ``"1h"``: 10 s buckets (360), each with the min, mean and max of its points;
- ``"24h"``: 4 min buckets (360), the same.

Memory is bounded whatever the refresh: at most ``RAW_CAP`` raw points and 360 buckets per window,
each bucket one ``array('d')`` (8 bytes a figure and a statistic). A gap stays a gap: a point that comes
more than ``gap_factor`` refreshes after the one before, or after a disconnection or ``gap()``, is not
joined to it (``None`` between them), and an empty bucket is ``None``.

Times are wall-clock seconds since the epoch (floats) in ``series``, and aware datetimes in ``peaks``."""
from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

from tui.model.events import ConnectionChanged, ServerPolled
from tui.model.snapshot import ServerInfo

#: every series the Timeline keeps, in storage order
SERIES = (
    "connections",  # client backends (the poll's own session counts, as in the header)
    "usable_connections",  # max_connections - reserved
    "active", "idle", "idle_in_xact", "idle_in_xact_aborted", "other_state",  # connections by state
    "commits_per_s", "rollbacks_per_s", "tps",
    "mean_ms", "calls_per_s",  # pg_stat_statements, per interval
    "lock_waiting", "oldest_xact_s",
    "database_bytes", "database_growth_bps",
    "cache_hit_ratio",  # 0..1
)
#: ServerInfo.by_state's labels, to their series
STATE_SERIES = {"active": "active", "idle": "idle", "idle in transaction": "idle_in_xact",
                "idle in transaction (aborted)": "idle_in_xact_aborted", "other": "other_state"}
#: what a bucket gives by default: the worst case where a peak matters, else the mean
DEFAULT_STAT = {name: "mean" for name in SERIES}
DEFAULT_STAT.update(connections="max", active="max", idle_in_xact="max", idle_in_xact_aborted="max",
                    lock_waiting="max", oldest_xact_s="max", mean_ms="max", usable_connections="min")
#: the peaks kept since the Timeline started (the sign-off report's figures)
PEAK_SERIES = ("connections", "mean_ms", "lock_waiting", "oldest_xact_s")
#: series that can never be negative: a negative figure (an old recording, a counter gone back) is no figure
NON_NEGATIVE = frozenset(SERIES) - {"database_growth_bps"}

_IDX = {name: i for i, name in enumerate(SERIES)}
_M = len(SERIES)
_NAN = float("nan")
_STATS = ("min", "mean", "max")


@dataclass(frozen=True)
class Window:
    name: str
    span_s: float
    bucket_s: float | None  # None: raw points


@dataclass(frozen=True)
class Peak:
    name: str
    value: float
    at: datetime


class _Buckets:
    """A ring of fixed-width buckets: per series (min, max, sum, n) in one array('d')."""

    __slots__ = ("width", "slots", "ring")

    def __init__(self, width: float, slots: int) -> None:
        self.width, self.slots = width, slots
        self.ring: deque[tuple[int, array]] = deque()

    def add(self, t: float, values: array) -> None:
        idx = math.floor(t / self.width)
        if not self.ring or self.ring[-1][0] < idx:
            b = array("d", (math.inf, -math.inf, 0.0, 0.0)) * _M
            self.ring.append((idx, b))
            while self.ring and self.ring[0][0] <= idx - self.slots:
                self.ring.popleft()
        elif self.ring[-1][0] > idx:  # older than the last bucket (a clock step back): into the last one
            idx = self.ring[-1][0]
        b = self.ring[-1][1]
        for i, v in enumerate(values):
            if v != v:  # NaN: no figure
                continue
            j = 4 * i
            if v < b[j]:
                b[j] = v
            if v > b[j + 1]:
                b[j + 1] = v
            b[j + 2] += v
            b[j + 3] += 1.0

    def series(self, i: int, stat: str) -> list[tuple[float, float | None]]:
        if not self.ring:
            return []
        last = self.ring[-1][0]
        present = {idx: b for idx, b in self.ring}
        first = next((idx for idx, b in self.ring if b[4 * i + 3] > 0), None)
        if first is None:
            return []
        out: list[tuple[float, float | None]] = []
        for idx in range(max(first, last - self.slots + 1), last + 1):
            b = present.get(idx)
            v = None
            if b is not None and b[4 * i + 3] > 0:
                j = 4 * i
                v = b[j] if stat == "min" else b[j + 1] if stat == "max" else b[j + 2] / b[j + 3]
            out.append((idx * self.width, v))
        return out

    def nbytes(self) -> int:
        return sum(b.itemsize * len(b) + 64 for _, b in self.ring)


class Timeline:
    """Bounded series for the three windows. ``take(ev, at=None)`` feeds it; ``series``, ``peaks`` and
    ``latest`` read it. ``version`` grows with every change (a widget redraws only when it moved)."""

    WINDOWS = ("5m", "1h", "24h")
    SPECS = {"5m": Window("5m", 300.0, None), "1h": Window("1h", 3600.0, 10.0),
             "24h": Window("24h", 86400.0, 240.0)}
    RAW_CAP = 3000  # raw points kept at most (5 minutes at a 0.1 s refresh)

    def __init__(self, refresh_s: float = 2.0, *, gap_factor: float = 2.5,
                 clock: Callable[[], float] | None = None) -> None:
        """``refresh_s``: the server poll's interval; a point more than ``gap_factor`` intervals after the
        previous one is not joined to it. ``clock``: wall time in epoch seconds when ``take`` is not told
        ``at`` (time.time by default)."""
        import time

        self.refresh_s = float(refresh_s)
        self.gap_s = max(1.0, gap_factor * self.refresh_s)
        self._clock = clock or time.time
        self._raw: deque[tuple[float, array | None]] = deque(maxlen=self.RAW_CAP)  # None: a gap
        self._buckets = {w: _Buckets(spec.bucket_s, int(round(spec.span_s / spec.bucket_s)))
                         for w, spec in self.SPECS.items() if spec.bucket_s}
        self._last_t: float | None = None
        self._latest: dict[str, float | None] = {}
        self._peaks: dict[str, Peak] = {}
        self.version = 0
        self.last_at: datetime | None = None  # the wall time of the last point

    # -- feeding -----------------------------------------------------------------------
    def take(self, ev, at: datetime | None = None) -> bool:
        """One monitor event; True when the series changed. ``at``: the event's wall time (a recording's),
        else now."""
        if isinstance(ev, ServerPolled):
            self.add(ev.info, at)
            return True
        if isinstance(ev, ConnectionChanged) and ev.state.status != "connected":
            return self.gap(at)
        return False

    def take_all(self, events: Iterable, at: datetime | None = None) -> bool:
        changed = False
        for ev in events:
            changed = self.take(ev, at) or changed
        return changed

    def gap(self, at: datetime | None = None) -> bool:
        """Break the lines here (disconnected, paused): the next point is not joined to the last."""
        if self._raw and self._raw[-1][1] is not None:
            self._raw.append((self._time(at), None))
            self.version += 1
            return True
        return False

    def add(self, info: ServerInfo, at: datetime | None = None) -> None:
        t = self._time(at)
        values = _values(info)
        if self._last_t is not None and t - self._last_t > self.gap_s and self._raw and self._raw[-1][1] is not None:
            self._raw.append((self._last_t, None))  # a silence longer than the refresh: a gap, not a line
        self._raw.append((t, values))
        horizon = t - self.SPECS["5m"].span_s
        while self._raw and self._raw[0][0] < horizon:
            self._raw.popleft()
        for b in self._buckets.values():
            b.add(t, values)
        self._last_t = t
        self.last_at = datetime.fromtimestamp(t, timezone.utc)
        self._latest = {name: (None if v != v else v) for name, v in zip(SERIES, values)}
        for name in PEAK_SERIES:
            v = self._latest[name]
            p = self._peaks.get(name)
            if v is not None and (p is None or v > p.value):
                self._peaks[name] = Peak(name, v, self.last_at)
        self.version += 1

    def _time(self, at: datetime | None) -> float:
        t = at.timestamp() if at is not None else float(self._clock())
        if self._last_t is not None and t < self._last_t:  # a clock step back: keep the series in order
            t = self._last_t
        return t

    # -- reading -----------------------------------------------------------------------
    def series(self, name: str, window: str = "5m", stat: str | None = None) -> list[tuple[float, float | None]]:
        """(t, value) oldest first; None: no figure (a gap, an empty bucket, a stats reset). For "1h" and
        "24h" one point per bucket from the first with data, ``t`` the bucket's start; ``stat`` "min",
        "mean" or "max" (DEFAULT_STAT by default)."""
        if name not in _IDX:
            raise KeyError(f"no series named {name!r}; known: {', '.join(SERIES)}")
        if window not in self.SPECS:
            raise KeyError(f"no window {window!r}; known: {', '.join(self.WINDOWS)}")
        stat = stat or DEFAULT_STAT[name]
        if stat not in _STATS:
            raise KeyError(f"no statistic {stat!r}; known: {', '.join(_STATS)}")
        i = _IDX[name]
        if window in self._buckets:
            return self._buckets[window].series(i, stat)
        out: list[tuple[float, float | None]] = []
        for t, vals in self._raw:
            v = None if vals is None else vals[i]
            out.append((t, None if v is None or v != v else v))
        while out and out[0][1] is None:
            out.pop(0)
        return out

    def span(self, window: str) -> tuple[float, float] | None:
        """The window's time range (start, end): it ends at the last point; None before the first."""
        if self._last_t is None:
            return None
        return self._last_t - self.SPECS[window].span_s, self._last_t

    def latest(self) -> dict[str, float | None]:
        """The last point's figures by series name (empty before the first point)."""
        return dict(self._latest)

    def peaks(self) -> dict[str, Peak]:
        """The highest figure of each of PEAK_SERIES since the Timeline started, with its wall time:
        connections, mean statement latency (ms), sessions waiting on locks, the oldest transaction's age.
        A series never measured has no entry."""
        return dict(self._peaks)

    def nbytes(self) -> int:
        """About what the stored series take (the arrays and their containers)."""
        raw = sum(64 + (0 if v is None else v.itemsize * len(v) + 64) for _, v in self._raw)
        return raw + sum(b.nbytes() for b in self._buckets.values())


def _values(info: ServerInfo) -> array:
    st = dict(info.by_state)
    oldest = info.oldest_xact_s
    if oldest is None and info.by_state:  # polled, and no transaction open: age 0 (not a gap)
        oldest = 0.0
    raw = {
        "connections": info.connections, "usable_connections": info.usable_connections,
        "commits_per_s": info.commits_per_s, "rollbacks_per_s": info.rollbacks_per_s, "tps": info.tps,
        "mean_ms": info.mean_ms, "calls_per_s": info.calls_per_s, "lock_waiting": info.lock_waiting,
        "oldest_xact_s": oldest, "database_bytes": info.database_bytes,
        "database_growth_bps": info.database_growth_bps, "cache_hit_ratio": info.cache_hit_ratio,
    }
    for label, name in STATE_SERIES.items():
        raw[name] = st.get(label)
    out = array("d", [_NAN]) * _M
    for name, v in raw.items():
        if v is None:
            continue
        v = float(v)
        if v != v or math.isinf(v) or (v < 0 and name in NON_NEGATIVE):
            continue
        out[_IDX[name]] = v
    return out
