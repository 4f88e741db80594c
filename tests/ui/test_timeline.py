"""The Timeline pane (widgets/timeline.py) in a small pilot App on a CANNED Timeline (no database):
titles and last values at 80x24 and 200x60, `z` cycling the window, drawing only on screen and once a
round, and an SVG snapshot at each size. Times are fixed so snapshots are stable."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual_plotext import PlotextPlot

from tui.model.events import ConnectionChanged, ServerPolled
from tui.model.series import Timeline
from tui.model.snapshot import ConnectionState, ServerInfo
from widgets.timeline import GRAPHS, MARK_KEYS, MARKS, TimelineGraph, TimelinePane, nice_ticks

pytestmark = pytest.mark.ui

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=timezone.utc)
TITLES = ("Connections", "Transactions", "Statement latency", "Lock waits", "Database size", "Cache hit")


def info(i: int) -> ServerInfo:
    conns = 20 + int(15 * (1 + math.sin(i / 15)))
    active = 3 + int(4 * (1 + math.sin(i / 7)))
    iix = 1 if 40 < i < 70 else 0
    return ServerInfo(
        version="15.4", version_num=150004, started_at=T0 - timedelta(days=3), now=T0 + timedelta(seconds=2 * i),
        database="images", connections=conns, max_connections=100, reserved_connections=3, xacts=0, blks_hit=0,
        blks_read=0, in_recovery=False, polled_at=float(i), database_bytes=3 * 1024 ** 3 + i * 40_000,
        database_growth_bps=20_000.0, tps=120 + 40 * math.sin(i / 10),
        cache_hit_ratio=0.995 - (0.01 if 60 < i < 80 else 0), commits=i * 200, rollbacks=i,
        commits_per_s=118 + 40 * math.sin(i / 10), rollbacks_per_s=1.5 + math.sin(i / 5),
        by_state=(("active", active), ("idle", conns - active - iix), ("idle in transaction", iix),
                  ("idle in transaction (aborted)", 0), ("other", 0)),
        lock_waiting=2 if 90 < i < 100 else 0, oldest_xact_s=(i - 40) * 2.0 if 40 < i < 70 else 0.4,
        pgss_calls=i * 500, pgss_total_ms=i * 600.0, calls_per_s=240 + 30 * math.sin(i / 6),
        mean_ms=1.2 + (0.8 if 90 < i < 100 else 0) + 0.2 * math.sin(i / 4))


def canned(points: int = 150) -> Timeline:
    """Five minutes at a 2 s refresh, with a 10 s disconnection 80 s before the end."""
    tl = Timeline(refresh_s=2.0)
    for i in range(points):
        if i == 110:
            tl.take(ConnectionChanged(ConnectionState("disconnected", "server closed the connection", 1.0)),
                    at=T0 + timedelta(seconds=2 * i))
        if 110 <= i < 115:
            continue
        tl.take(ServerPolled(info(i)), at=T0 + timedelta(seconds=2 * i))
    return tl


class Host(App):
    # the room the app leaves a pane: its header (2 rows) and tabs above, the key bar below
    CSS = "TimelinePane { margin: 4 1 2 1; }"

    def __init__(self, timeline: Timeline | None) -> None:
        super().__init__()
        self.timeline = timeline

    def compose(self) -> ComposeResult:
        yield TimelinePane(self.timeline)

    def on_mount(self) -> None:
        if self.timeline is not None:
            self.query_one(TimelinePane).show(self.timeline)


def lines(widget) -> list[str]:
    return [s.text for s in widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))]


def in_view(widget, app: App) -> bool:
    """Inside the scrolled viewport (a graph scrolled away keeps its place in the map)."""
    return app.query_one(VerticalScroll).region.intersection(widget.region).height > 0


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=["80x24", "200x60"])
async def test_titles_and_last_values_at_each_size(size):
    app = Host(canned())
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        pane = app.query_one(TimelinePane)
        head = "\n".join(lines(app.query_one("#timeline-head")))
        assert "last 5 minutes to 09:04:58 UTC" in head
        titles = {g.spec.key: g.title_text.plain for g in app.query(TimelineGraph)}
        assert titles["connections"].startswith("Connections") and "used 27 of 97 usable" in titles["connections"]
        assert "active 9" in titles["connections"] and "idle in transaction 0" in titles["connections"]
        assert "commits 147/s" in titles["tps"] and "rollbacks 0.5/s" in titles["tps"]
        assert "mean 1.11 ms" in titles["latency"] and "calls 231/s" in titles["latency"]
        assert "waiting 0" in titles["locks"] and "oldest transaction 0s" in titles["locks"]
        assert "size 3.0 GiB (+1.1 MiB/min)" in titles["size"] and "hit 99.5%" in titles["cache"]
        graphs = list(app.query(TimelineGraph))
        visible = [g for g in graphs if in_view(g, app)]
        if size == (200, 60):  # the room used: two columns of three, all in view, each a good height
            assert pane.size == (198, 54)
            assert len(visible) == 6 and {g.region.x for g in graphs} == {graphs[0].region.x, graphs[1].region.x}
            assert graphs[0].region.x != graphs[1].region.x and min(g.size.height for g in graphs) >= 17
            assert min(g.size.width for g in graphs) >= 90
        else:  # one column that scrolls: the first two in view, the rest a key away
            assert pane.size == (78, 18)
            assert in_view(graphs[0], app) and in_view(graphs[1], app) and not in_view(graphs[3], app)
            assert all(g.size.width >= 74 and g.size.height >= 8 for g in graphs)
            scroll = app.query_one(VerticalScroll)
            assert app.focused is scroll
            await pilot.press("end")
            await pilot.pause()
            assert in_view(graphs[-1], app) and not in_view(graphs[0], app)
        plot = "\n".join(lines(graphs[0].query_one(PlotextPlot)))
        assert "-5m" in plot and "now" in plot and "100" in plot  # the time axis, and the usable ceiling
        assert pane.draws == 1


async def test_z_cycles_the_window():
    app = Host(canned())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one(TimelinePane)
        head = app.query_one("#timeline-head")
        for window, label, tick in (("1h", "last hour", "-60m"), ("24h", "last 24 hours", "-24h"),
                                    ("5m", "last 5 minutes", "-5m")):
            await pilot.press("z")
            await pilot.pause()
            assert pane.window == window
            assert label in "\n".join(lines(head))
            assert tick in "\n".join(lines(app.query(TimelineGraph).first().query_one(PlotextPlot)))
        assert pane.draws == 4
        binding = next(b for b in TimelinePane.BINDINGS if b.id == "timeline.window")
        assert binding.key == "z" and "5m/1h/24h" in binding.description


async def test_draws_only_on_screen_and_once_a_round():
    tl = canned(100)
    app = Host(None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = app.query_one(TimelinePane)
        assert "waiting for the first poll" in "\n".join(lines(app.query_one("#timeline-head")))
        pane.display = False
        await pilot.pause()
        pane.show(tl)  # hidden: nothing drawn yet
        assert pane.draws == 0
        pane.display = True
        await pilot.pause()
        assert pane.draws == 1  # drawn when shown
        pane.show(tl)
        pane.show(tl)  # the series did not move: no drawing
        assert pane.draws == 1
        tl.take(ServerPolled(info(100)), at=T0 + timedelta(seconds=200))
        pane.show(tl)
        assert pane.draws == 2
        # the 1 h window draws its plots when a 10 s bucket closes; its titles every round
        app.query_one(VerticalScroll).focus()
        await pilot.press("z")
        await pilot.pause()
        assert pane.draws == 3
        tl.take(ServerPolled(info(101)), at=T0 + timedelta(seconds=202))  # 09:03:22: the same bucket
        pane.show(tl)
        graph = app.query(TimelineGraph).first()
        assert pane.draws == 3 and graph.title_text.plain == app.query(TimelineGraph).first().title_text.plain
        tl.take(ServerPolled(info(104)), at=T0 + timedelta(seconds=208))  # 09:03:28
        tl.take(ServerPolled(info(105)), at=T0 + timedelta(seconds=210))  # 09:03:30: the next bucket
        pane.show(tl)
        assert pane.draws == 4


async def test_without_figures_the_graphs_say_so():
    tl = Timeline()
    bare = info(0)
    from dataclasses import replace

    tl.take(ServerPolled(replace(bare, mean_ms=None, calls_per_s=None, pgss_calls=None)), at=T0)
    app = Host(tl)
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        titles = {g.spec.key: g.title_text.plain for g in app.query(TimelineGraph)}
        assert "needs pg_stat_statements" in titles["latency"] and "mean —" in titles["latency"]
        assert "needs" not in titles["connections"]


def test_marks_tell_the_lines_apart_without_colour():
    for spec in GRAPHS:
        marks = [MARK_KEYS[MARKS[i]] for i in range(len(spec.lines))]
        assert len(set(marks)) == len(marks)
    assert [s.title for s in GRAPHS] == list(TITLES)


def test_nice_ticks():
    assert nice_ticks(0, 97) == [0, 50, 100]
    assert nice_ticks(0, 1) == [0, 0.5, 1.0]
    assert nice_ticks(0, 0) == [0, 0.5, 1.0]
    t = nice_ticks(0, 231)
    assert t[0] == 0 and t[-1] >= 231 and len(t) <= 5


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=["80x24", "200x60"])
def test_snapshot(snap_compare, size):
    async def settle(pilot):
        await pilot.pause()
    assert snap_compare(Host(canned()), terminal_size=size, run_before=settle)


def test_thinning_keeps_gaps_and_peaks():
    from widgets.timeline import _thin

    pts = [(float(i), float(i % 10)) for i in range(100)]
    pts[50] = (50.0, None)
    thin = _thin(pts, 20, "max")
    assert len(thin) <= 30 and (50.0, None) not in thin and any(v is None for _t, v in thin)
    assert max(v for _t, v in thin if v is not None) == 9.0
    assert _thin(pts[:10], 20, "mean") == pts[:10]
