"""Thresholds and alerts (issue 14 §4): pure Python, no textual, no asyncpg.

``Thresholds``: the defaults (from the anchors), then the config file's ``[thresholds]``, then the
checklist's ``[thresholds]``, then ``--threshold NAME=VALUE``; the same names everywhere, also in
the OpenMetrics labels. ``Figures`` turns the monitor's events into one figure per threshold, and
``AlertBook`` raises an alert once when a figure breaches its threshold, keeps it (with the time it
started) while it lasts, and clears it when the figure is back."""
from __future__ import annotations

import math
import re
import tomllib
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Iterable, Mapping

from tui.config import UsageError


@dataclass(frozen=True)
class ThresholdSpec:
    name: str
    default: float
    breach: str  # "above" (figure > limit), "at_or_above" (>=), "below" (<)
    what: str  # how the figure is said: "{v}" is the figure, in its unit
    unit: str  # "s", "%", ""


SPECS: dict[str, ThresholdSpec] = {s.name: s for s in (
    ThresholdSpec("long_query_s", 60, "above", "a query has run for {v}", "s"),
    ThresholdSpec("connections_pct", 80, "at_or_above", "connections at {v} of the usable ones", "%"),
    ThresholdSpec("cache_hit_pct", 99, "below", "cache hit {v} over the last minute", "%"),
    ThresholdSpec("idle_in_transaction_s", 300, "above", "a session idle in transaction for {v}", "s"),
    ThresholdSpec("lock_wait_s", 10, "above", "a session waiting on a lock for {v}", "s"),
    ThresholdSpec("xid_age", 1_500_000_000, "above", "XID age {v}", ""),
    ThresholdSpec("sequence_pct", 90, "above", "a sequence {v} used", "%"),
    ThresholdSpec("disk_pct", 85, "above", "the data directory's disk {v} full", "%"),
)}
NAMES = tuple(SPECS)
OPS = {"above": ">", "at_or_above": ">=", "below": "<"}


def fmt_value(name: str, v: float) -> str:
    unit = SPECS[name].unit
    if unit == "s":
        return f"{v:.0f} s" if v >= 10 else f"{v:.1f} s"
    if unit == "%":
        return f"{v:.1f} %"
    return f"{v:,.0f}"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNIT_S = {None: 1, "s": 1, "ms": 0.001, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90`` (seconds), ``60s``, ``5m``, ``1h``, ``1.5h``, ``2d``: seconds, or ValueError with the reason."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration (like 90, 60s, 5m or 1h)")
    v = float(m.group(1)) * _UNIT_S[m.group(2)]
    if not v > 0:
        raise ValueError(f"{text!r} must be longer than 0")
    return v


def _number(name: str, raw, where: str) -> float:
    if isinstance(raw, bool):
        raise UsageError(f"{where}: threshold {name} must be a number, not {str(raw).lower()}")
    if isinstance(raw, str):
        text = raw.strip()
        try:
            if SPECS[name].unit == "s" and text and not re.fullmatch(r"[-+0-9._eE]+", text):
                v = parse_duration(text)
            else:
                v = float(text.rstrip("%").strip() if SPECS[name].unit == "%" else text)
        except ValueError:
            raise UsageError(f"{where}: threshold {name} must be a number, not {raw!r}") from None
    elif isinstance(raw, (int, float)):
        v = float(raw)
    else:
        raise UsageError(f"{where}: threshold {name} must be a number, not {type(raw).__name__}")
    if math.isnan(v) or math.isinf(v) or v < 0:
        raise UsageError(f"{where}: threshold {name} must be a finite number, 0 or more (not {raw!r})")
    return v


def _known(name: str, where: str) -> None:
    if name not in SPECS:
        raise UsageError(f"{where}: unknown threshold {name!r} (known: {', '.join(NAMES)})")


@dataclass(frozen=True)
class Thresholds:
    values: tuple[tuple[str, float], ...] = tuple((s.name, float(s.default)) for s in SPECS.values())
    sources: tuple[tuple[str, str], ...] = tuple((n, "default") for n in SPECS)

    def __getitem__(self, name: str) -> float:
        return dict(self.values)[name]

    def source(self, name: str) -> str:
        return dict(self.sources)[name]

    def with_table(self, table: Mapping | Iterable[tuple[str, object]], where: str) -> "Thresholds":
        """``[thresholds]`` from a file (``where`` names it in errors)."""
        items = table.items() if isinstance(table, Mapping) else table
        values, sources = dict(self.values), dict(self.sources)
        for name, raw in items:
            _known(name, where)
            values[name] = _number(name, raw, where)
            sources[name] = where
        return Thresholds(tuple(values.items()), tuple(sources.items()))

    def with_overrides(self, items: Iterable[str]) -> "Thresholds":
        """``--threshold NAME=VALUE`` (repeatable)."""
        pairs = []
        for item in items:
            name, eq, raw = str(item).partition("=")
            name = name.strip()
            if not eq or not name or not raw.strip():
                raise UsageError(f"--threshold {item!r}: expected NAME=VALUE (names: {', '.join(NAMES)})")
            _known(name, "--threshold")
            pairs.append((name, raw))
        return self.with_table(pairs, "--threshold")

    def breached(self, name: str, value: float) -> bool:
        limit, how = self[name], SPECS[name].breach
        return value > limit if how == "above" else value >= limit if how == "at_or_above" else value < limit

    @classmethod
    def resolve(cls, *, overrides: Iterable[str] = (), checklist=None, config_path: Path | None = None) -> "Thresholds":
        """Defaults, then the config file's ``[thresholds]``, the checklist's, ``--threshold``."""
        t = cls()
        if config_path is None:
            from tui.checklist.runner import config_file

            config_path = config_file()
        t = t.with_table(config_thresholds(config_path), f"config file {config_path}")
        raw = getattr(checklist, "thresholds", ()) if checklist is not None else ()
        if raw:
            t = t.with_table(raw, f"checklist {checklist.path or checklist.name}")
        return t.with_overrides(overrides)


def config_thresholds(path: Path) -> dict:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"config file {path} unreadable: {e}") from None
    table = data.get("thresholds", {})
    if not isinstance(table, dict):
        raise UsageError(f"config file {path}: thresholds must be a table ([thresholds])")
    return table


# -- alerts ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    name: str
    value: float  # the figure when raised (or, for a cleared alert, when it cleared)
    threshold: float
    started_at: datetime
    cleared_at: datetime | None = None
    message: str = ""

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def line(self) -> str:
        """The one line ``watch`` prints."""
        if self.cleared_at is None:
            return f"{_iso(self.started_at)} ALERT {self.name}: {self.message}"
        lasted = (self.cleared_at - self.started_at).total_seconds()
        return (f"{_iso(self.cleared_at)} CLEARED {self.name}: {self.message} "
                f"(started {_iso(self.started_at)}, lasted {_lasted(lasted)})")


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def _lasted(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def message_for(name: str, value: float, threshold: float, detail: str = "") -> str:
    spec = SPECS[name]
    text = spec.what.format(v=fmt_value(name, value))
    text += f" ({OPS[spec.breach]} {fmt_value(name, threshold)})"
    return f"{text}: {detail}" if detail else text


class AlertBook:
    """Each round's figures in; the alerts raised and cleared by it out. A breach raises an alert
    once, with the time it started; it stays until its figure is back within the threshold. A figure
    missing from a round (not measured, or unknown) changes nothing."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.active: dict[str, Alert] = {}
        self.raised_count = 0

    def update(self, figures: Mapping[str, "float | tuple[float, str] | None"], at: datetime) -> list[Alert]:
        out = []
        for name in NAMES:
            fig = figures.get(name)
            if fig is None:
                continue
            value, detail = fig if isinstance(fig, tuple) else (fig, "")
            if value is None:
                continue
            limit = self.thresholds[name]
            current = self.active.get(name)
            if self.thresholds.breached(name, value):
                if current is None:
                    a = Alert(name, value, limit, at, None, message_for(name, value, limit, detail))
                    self.active[name] = a
                    self.raised_count += 1
                    out.append(a)
                else:
                    self.active[name] = replace(current, value=value)
            elif current is not None:
                del self.active[name]
                now_said = SPECS[name].what.format(v=fmt_value(name, value))
                out.append(replace(current, value=value, cleared_at=at,
                                   message=f"{now_said}, back within the threshold ({fmt_value(name, limit)})"))
        return out


# -- figures from the monitor's events ------------------------------------------------------------

CACHE_WINDOW_S = 60.0
# fewer block requests than this in the window: too few to judge a hit ratio (a fresh or idle server
# reading its catalogs has a few thousand, at a hit ratio far below 99 %: that is no alarm)
CACHE_MIN_BLOCKS = 20_000


class Figures:
    """The last figures, from the monitor's events (tui.model.events): the thresholds' figures
    (``threshold_figures()``) and what OpenMetrics exposes."""

    def __init__(self) -> None:
        self.info = None  # ServerInfo
        self.connections = None
        self.slow = None
        self.tables = None
        self.host = None
        self.limits = None
        self.connected = False
        self._blocks: deque[tuple[float, int, int]] = deque()  # (polled_at, hit, read)
        self.cache_hit_pct: float | None = None

    def take(self, ev) -> None:
        from tui.model import events as E

        if isinstance(ev, E.ServerPolled):
            self.info = ev.info
            self._sample_blocks(ev.info)
        elif isinstance(ev, E.ConnectionsPolled):
            self.connections = ev.snap
        elif isinstance(ev, E.SlowQueriesPolled):
            self.slow = ev.snap
        elif isinstance(ev, E.TablesPolled):
            self.tables = ev.snap
        elif isinstance(ev, E.HostPolled):
            self.host = ev.snap
        elif isinstance(ev, E.LimitsPolled):
            self.limits = ev.snap
        elif isinstance(ev, E.ConnectionChanged):
            self.connected = ev.state.status == "connected"

    def _sample_blocks(self, info) -> None:
        b = self._blocks
        if b and (info.blks_hit < b[-1][1] or info.blks_read < b[-1][2]):
            b.clear()  # the statistics were reset
        b.append((info.polled_at, info.blks_hit, info.blks_read))
        while len(b) > 2 and info.polled_at - b[1][0] >= CACHE_WINDOW_S:
            b.popleft()
        t0, h0, r0 = b[0]
        dh, dr = info.blks_hit - h0, info.blks_read - r0
        self.cache_hit_pct = 100.0 * dh / (dh + dr) if dh + dr >= CACHE_MIN_BLOCKS else None

    # the figures of the sessions
    def _sessions(self):
        return self.connections.sessions if self.connections is not None else ()

    def longest(self, pick, age) -> tuple[float, str] | None:
        if self.connections is None:
            return None
        best = None
        for s in self._sessions():
            if pick(s) and age(s) is not None and (best is None or age(s) > age(best)):
                best = s
        if best is None:
            return (0.0, "")
        return (float(age(best)), f"pid {best.pid} ({best.user or '?'}@{best.database or '?'})")

    def lock_waiting(self) -> list:
        return [s for s in self._sessions() if s.wait_event_type == "Lock"]

    def oldest_transaction_s(self) -> float | None:
        if self.connections is None:
            return None
        ages = [s.xact_age_s for s in self._sessions() if s.xact_age_s is not None]
        return max(ages, default=0.0)

    def latency_s(self) -> float | None:
        """Mean latency of the statements pg_stat_statements lists, over the last interval."""
        s = self.slow
        if s is None or s.source != "pg_stat_statements":
            return None
        calls = sum(st.interval_calls or 0 for st in s.statements)
        ms = sum(st.interval_ms or 0.0 for st in s.statements)
        return ms / calls / 1000.0 if calls else None

    def disk_pct(self) -> tuple[float, str] | None:
        if self.host is None:
            return None
        for d in self.host.disks:
            if d.label == "data directory":
                return (d.percent, d.path)
        return None

    def threshold_figures(self) -> dict[str, tuple[float, str] | None]:
        f: dict[str, tuple[float, str] | None] = {n: None for n in NAMES}
        info = self.info
        if info is not None and info.usable_connections > 0:
            f["connections_pct"] = (100.0 * info.connections / info.usable_connections,
                                    f"{info.connections} of {info.usable_connections}")
        if self.cache_hit_pct is not None:
            f["cache_hit_pct"] = (self.cache_hit_pct, "")
        f["long_query_s"] = self.longest(lambda s: s.state == "active", lambda s: s.query_age_s)
        f["idle_in_transaction_s"] = self.longest(lambda s: s.is_idle_in_xact, lambda s: s.state_age_s)
        f["lock_wait_s"] = self.longest(lambda s: s.wait_event_type == "Lock", lambda s: s.query_age_s)
        lim = self.limits
        if lim is not None:
            if lim.xid_age is not None:
                f["xid_age"] = (float(lim.xid_age), f"database {lim.xid_database}")
            if lim.sequence_pct is not None:
                f["sequence_pct"] = (lim.sequence_pct, lim.sequence_name or "")
        f["disk_pct"] = self.disk_pct()
        return f
