"""The launch's timeline, digested for the sign-off report (issue 14 §7): the peaks (connections,
statement latency, lock waits), the alerts with their times, the fixes run, and a small text chart.

Pure Python. ``TimelineDigest.take(ev, at)`` takes the monitor's events (tui.model.events) with their
wall time, live (the App) or from a recording (``report``); memory stays bounded (the chart keeps
at most ``CHART_POINTS`` buckets, merged two by two when full)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from tui.model import events as E

CHART_POINTS = 96
BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass
class Peak:
    value: float | None = None
    at: datetime | None = None
    detail: str = ""

    def offer(self, value, at: datetime, detail: str = "") -> None:
        if value is not None and (self.value is None or value > self.value):
            self.value, self.at, self.detail = float(value), at, detail


@dataclass
class _Buckets:
    """Max per bucket; when full, neighbouring buckets merge and each bucket spans twice the time."""

    points: list = field(default_factory=list)  # [start, value]
    span: float = 0.0  # seconds per bucket; 0 until the second sample

    def add(self, at: datetime, value: float) -> None:
        if value is None:
            return
        ts = at.timestamp()
        if self.points and (ts - self.points[-1][0] < self.span):
            self.points[-1][1] = max(self.points[-1][1], value)
            return
        if len(self.points) == 1 and not self.span:
            self.span = max(1.0, ts - self.points[0][0])
        self.points.append([ts, value])
        if len(self.points) > CHART_POINTS:
            merged = []
            for i in range(0, len(self.points), 2):
                pair = self.points[i:i + 2]
                merged.append([pair[0][0], max(p[1] for p in pair)])
            self.points = merged
            self.span *= 2


def spark(values: list[float]) -> str:
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return BLOCKS[0] * len(values)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int(v / top * (len(BLOCKS) - 1) + 0.5))] for v in values)


class TimelineDigest:
    def __init__(self) -> None:
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.rounds = 0
        self.connections = Peak()
        self.latency_ms = Peak()
        self.lock_waiting = Peak()
        self.usable: int | None = None
        self.alerts: list[E.AlertChanged] = []
        self.fixes: list[E.FixRan] = []
        self._conn_chart = _Buckets()
        self._lat_chart = _Buckets()

    def take(self, ev, at: datetime | None = None) -> None:
        at = at or datetime.now(timezone.utc)
        if isinstance(ev, E.ServerPolled):
            i = ev.info
            self.first = self.first or at
            self.last = at
            self.rounds += 1
            self.usable = i.usable_connections
            self.connections.offer(i.connections, at, f"of {i.usable_connections} usable")
            self._conn_chart.add(at, i.connections)
            mean = getattr(i, "mean_ms", None)
            if mean is not None:
                self.latency_ms.offer(mean, at)
                self._lat_chart.add(at, mean)
            waiting = getattr(i, "lock_waiting", None)
            if waiting is not None:
                self.lock_waiting.offer(waiting, at)
        elif isinstance(ev, E.ConnectionsPolled):
            waiting = sum(1 for s in ev.snap.sessions if s.wait_event_type == "Lock")
            self.lock_waiting.offer(waiting, at)
        elif isinstance(ev, E.AlertChanged):
            self.alerts.append(ev)
        elif isinstance(ev, E.FixRan):
            self.fixes.append(ev)

    # -- the report's section -------------------------------------------------------------
    def markdown(self) -> list[str]:
        """The sign-off's "Launch timeline" section (lines of Markdown); empty when nothing was seen."""
        if self.first is None and not self.alerts and not self.fixes:
            return []

        def t(d: datetime | None) -> str:
            return d.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ") if d else "—"

        out = ["## Launch timeline", ""]
        if self.first is not None:
            out.append(f"Watched from {t(self.first)} to {t(self.last)} ({self.rounds} poll rounds).")
            out.append("")
        out += ["| Peak | Value | At |", "|---|---|---|"]
        c = self.connections
        out.append(f"| Connections | {_num(c.value)} {c.detail} | {t(c.at)} |")
        lat = self.latency_ms
        out.append(f"| Statement latency (mean per interval) | "
                   f"{f'{lat.value:.1f} ms' if lat.value is not None else 'not measured (pg_stat_statements)'} | "
                   f"{t(lat.at)} |")
        lw = self.lock_waiting
        out.append(f"| Sessions waiting on locks | {_num(lw.value)} | {t(lw.at)} |")
        out.append("")
        raised = [a for a in self.alerts if a.raised]
        out.append(f"Alerts: {len(raised)} raised." if raised else "Alerts: none raised.")
        out.append("")
        if self.alerts:
            out += ["| Time | Alert | What |", "|---|---|---|"]
            for a in self.alerts:
                when = a.started_at if a.raised else a.cleared_at
                kind = "raised" if a.raised else "cleared"
                out.append(f"| {t(when)} | {a.name} {kind} | {a.message.replace('|', '/')} |")
            out.append("")
        if self.fixes:
            out += ["Fixes run:", ""]
            out += [f"- {t(f.at)} `{f.item_id}`: {'ok' if f.ok else 'FAILED'} — {f.summary}" for f in self.fixes]
            out.append("")
        charts = []
        if self._conn_chart.points:
            vals = [p[1] for p in self._conn_chart.points]
            charts.append(f"connections  {spark(vals)}  max {_num(max(vals))}")
        if self._lat_chart.points:
            vals = [p[1] for p in self._lat_chart.points]
            charts.append(f"latency ms   {spark(vals)}  max {max(vals):.1f}")
        if charts:
            out += ["```", *charts, "```", ""]
        return out


def _num(v) -> str:
    return "—" if v is None else f"{v:,.0f}"
