"""Benchmark of the Timeline (issue 14 §3): what the series cost, and what a frame of the graphs costs.

    .venv/bin/python tests/bench/bench_timeline.py [--frames 20]

Measures, without a database:
  - tui.model.series.Timeline: the time to take one ServerPolled, and the memory 24 hours of polls at a
    2 s refresh take (tracemalloc, and Timeline.nbytes);
  - widgets.timeline.TimelinePane (plotext through textual-plotext): the CPU of one redraw, from show()
    with a new point to the frame on screen, at 200x60 and 80x24, for each window;
  - for comparison, the same six graphs drawn with Textual's Sparkline (a title line and one sparkline of
    4 rows per line of a graph), the other library the issue names.
CPU is process time per frame, less that of as many idle frames. Prints a Markdown table."""
from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from textual.app import App, ComposeResult  # noqa: E402
from textual.containers import Grid, Vertical  # noqa: E402
from textual.widgets import Sparkline, Static  # noqa: E402

from tui.model.events import ServerPolled  # noqa: E402
from tui.model.series import Timeline  # noqa: E402
from tui.model.snapshot import ServerInfo  # noqa: E402
from widgets.timeline import GRAPHS, TimelinePane  # noqa: E402

T0 = datetime(2026, 11, 25, 0, 0, 0, tzinfo=timezone.utc)
REFRESH = 2.0


def info(i: int) -> ServerInfo:
    conns = 40 + int(30 * (1 + math.sin(i / 15)))
    active = 3 + int(4 * (1 + math.sin(i / 7)))
    return ServerInfo(
        version="15.4", version_num=150004, started_at=T0, now=T0, database="bench", connections=conns,
        max_connections=100, reserved_connections=3, xacts=i * 100, blks_hit=i * 1000, blks_read=i, in_recovery=False,
        polled_at=float(i), database_bytes=3 * 1024 ** 3 + i * 4000, database_growth_bps=2000.0,
        tps=100 + 30 * math.sin(i / 10), cache_hit_ratio=0.995 + 0.004 * math.sin(i / 30), commits=i * 100,
        rollbacks=i, commits_per_s=100 + 30 * math.sin(i / 10), rollbacks_per_s=1 + math.sin(i / 5),
        by_state=(("active", active), ("idle", conns - active - 1), ("idle in transaction", 1),
                  ("idle in transaction (aborted)", 0), ("other", 0)),
        lock_waiting=(i // 7) % 3, oldest_xact_s=float(i % 90), pgss_calls=i * 300, pgss_total_ms=i * 400.0,
        calls_per_s=150 + 20 * math.sin(i / 6), mean_ms=1.3 + 0.3 * math.sin(i / 4),
    )


def fill(points: int) -> tuple[Timeline, int]:
    tl = Timeline(refresh_s=REFRESH)
    for i in range(points):
        tl.take(ServerPolled(info(i)), at=T0 + timedelta(seconds=REFRESH * i))
    return tl, points


def series_costs() -> dict[str, float]:
    points = int(86400 / REFRESH)
    evs = [ServerPolled(info(i)) for i in range(points)]
    ats = [T0 + timedelta(seconds=REFRESH * i) for i in range(points)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tl = Timeline(refresh_s=REFRESH)
    for ev, at in zip(evs, ats):
        tl.take(ev, at=at)
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    tl2 = Timeline(refresh_s=REFRESH)
    t0 = time.perf_counter()
    for ev, at in zip(evs, ats):
        tl2.take(ev, at=at)
    take_us = (time.perf_counter() - t0) / points * 1e6
    t0 = time.perf_counter()
    for _ in range(20):
        for g in GRAPHS:
            for ln in g.lines:
                for w in Timeline.WINDOWS:
                    tl2.series(ln.series, w)
    read_ms = (time.perf_counter() - t0) / 20 / 3 * 1000  # one window's series, every graph
    return {"take_us": take_us, "bytes_traced": traced, "bytes_nbytes": tl.nbytes(), "read_ms": read_ms}


class PlotextHost(App):
    def __init__(self, tl: Timeline) -> None:
        super().__init__()
        self.tl = tl

    def compose(self) -> ComposeResult:
        yield TimelinePane(self.tl)

    def redraw(self, tl: Timeline, window: str) -> None:
        pane = self.query_one(TimelinePane)
        pane.window = window
        pane.show(tl)


class SparkGraph(Vertical):
    DEFAULT_CSS = "SparkGraph { height: 1fr; } SparkGraph Sparkline { height: 4; }"

    def __init__(self, spec) -> None:
        super().__init__()
        self.spec = spec

    def compose(self) -> ComposeResult:
        yield Static(self.spec.title)
        for _ln in self.spec.lines:
            yield Sparkline([])


class SparkHost(App):
    CSS = "Grid { grid-size: 2; }"

    def __init__(self, tl: Timeline, columns: int) -> None:
        super().__init__()
        self.tl, self.columns = tl, columns

    def compose(self) -> ComposeResult:
        with Grid() as g:
            g.styles.grid_size_columns = self.columns
            for spec in GRAPHS:
                yield SparkGraph(spec)

    def redraw(self, tl: Timeline, window: str) -> None:
        latest = tl.latest()
        for g in self.query(SparkGraph):
            title = g.spec.title + "  " + "  ".join(f"{ln.label} {latest.get(ln.series)}" for ln in g.spec.lines)
            g.query_one(Static).update(title)
            for ln, sp in zip(g.spec.lines, g.query(Sparkline)):
                sp.data = [v if v is not None else 0.0 for _t, v in tl.series(ln.series, window)]


async def frame_cost(make, size: tuple[int, int], window: str, frames: int, start_points: int,
                     step_s: float = REFRESH, mean: bool = False) -> float:
    """CPU ms per redraw (a new point each, ``step_s`` after the last), less the idle frames' CPU: the
    median, or the mean (``mean``: a round's average where not every round redraws the plots)."""
    tl, n = fill(start_points)
    t = T0 + timedelta(seconds=REFRESH * (n - 1))
    app = make(tl)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.redraw(tl, window)
        await pilot.pause()
        await pilot.pause()
        samples = []
        for _ in range(frames):
            t += timedelta(seconds=step_s)
            tl.take(ServerPolled(info(n)), at=t)
            n += 1
            c0 = time.process_time()
            app.redraw(tl, window)
            await pilot.pause()
            await pilot.pause()
            c1 = time.process_time()
            await pilot.pause()
            await pilot.pause()
            c2 = time.process_time()
            samples.append((c1 - c0) - (c2 - c1))
        return (statistics.mean(samples) if mean else statistics.median(samples)) * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()
    s = series_costs()
    day = int(86400 / REFRESH)
    rows = []
    for size in ((200, 60), (80, 24)):
        for window in Timeline.WINDOWS:
            bucket = Timeline.SPECS[window].bucket_s
            full = asyncio.run(frame_cost(PlotextHost, size, window, args.frames, day, step_s=bucket or REFRESH))
            rows.append((f"plotext (TimelinePane), {size[0]}x{size[1]}, {window}, plots redrawn", full))
            if bucket:  # the plots follow a bucket closing, the titles every round
                rounds = int(bucket / REFRESH) * max(2, args.frames // 10) if window == "1h" else 2 * args.frames
                avg = asyncio.run(frame_cost(PlotextHost, size, window, rounds, day, mean=True))
                rows.append((f"plotext (TimelinePane), {size[0]}x{size[1]}, {window}, mean of {rounds} rounds", avg))
        columns = 2 if size[0] >= 120 else 1
        cost = asyncio.run(frame_cost(lambda tl: SparkHost(tl, columns), size, "5m", args.frames, day))
        rows.append((f"Sparkline (6 graphs, 4-row sparklines), {size[0]}x{size[1]}, 5m", cost))
    print(f"\nTimeline: {day:,} polls (24 h at {REFRESH:g} s)\n")
    print("| what | figure |")
    print("| --- | ---: |")
    print(f"| take() one ServerPolled | {s['take_us']:.1f} µs |")
    print(f"| series() of every graph's lines, one window | {s['read_ms']:.2f} ms |")
    print(f"| memory of 24 h (tracemalloc) | {s['bytes_traced'] / 1024:.0f} KiB |")
    print(f"| memory of 24 h (Timeline.nbytes) | {s['bytes_nbytes'] / 1024:.0f} KiB |")
    for label, cost in rows:
        print(f"| redraw CPU per frame: {label} | {cost:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
