"""The Timeline pane: graphs of the header's figures over the last 5 minutes, 1 hour or 24 hours
(issue 14 §3), drawn from a tui.model.series.Timeline with plotext through textual-plotext (Dolphie's
way). Public Textual API only.

- ``show(timeline)`` redraws, only when the pane is mounted and on screen, and only when the series
  moved since the last drawing (``Timeline.version``): at most once a round. Off screen, the drawing
  waits for the pane to be shown.
- ``z`` cycles the window 5m → 1h → 24h (binding id ``timeline.window``).
- Each graph's title says its last figures with their units, and doubles as its legend: the mark and
  colour of each line. The marks differ too (braille dots, bullets, crosses), so the lines stay apart
  under NO_COLOR.
- Room: at 120 columns and more, two columns of three graphs filling the height (200×60: 2×3 of about
  98×18); narrower, one column of graphs of at least GRAPH_MIN_H rows that scrolls (the arrow keys,
  page up/down) — 80×24 shows two graphs at a time.

Cost (tests/bench/bench_timeline.py): the plot is built when Textual renders it, so a graph scrolled
out of view costs nothing, and the canvas keeps the widget's own background (plotext's "textual-clear"
theme: fewer ANSI codes to decode than a filled canvas, about half the render time)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Grid, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Static
from textual_plotext import PlotextPlot

from tui.model import format as fmt
from tui.model.series import DEFAULT_STAT, Timeline

WIDE_MIN_W = 120  # from this width on, two columns of graphs
GRAPH_MIN_H = 8  # a graph's rows at least (its title line and the plot with its time axis)
WINDOW_LABELS = {"5m": "last 5 minutes", "1h": "last hour", "24h": "last 24 hours"}
# time axis ticks: (seconds before the end, label)
TICKS = {
    "5m": [(-300, "-5m"), (-240, "-4m"), (-180, "-3m"), (-120, "-2m"), (-60, "-1m"), (0, "now")],
    "1h": [(-3600, "-60m"), (-2700, "-45m"), (-1800, "-30m"), (-900, "-15m"), (0, "now")],
    "24h": [(-86400, "-24h"), (-64800, "-18h"), (-43200, "-12h"), (-21600, "-6h"), (0, "now")],
}
# the lines' marks: a different one for each line of a graph, legible without colour
MARKS = ("braille", "•", "×")
MARK_KEYS = {"braille": "⣿", "•": "•", "×": "×"}  # how the title (the legend) shows each mark
COLOURS = ("primary", "warning", "success")  # theme colours, in line order; a limit line: "error"


def _count(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"


def _rate(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}/s" if v >= 100 else f"{v:.1f}/s"


def _ms(v: float | None) -> str:
    return "—" if v is None else f"{fmt.ms(v)} ms"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


UNITS = {"count": _count, "rate": _rate, "ms": _ms, "duration": fmt.duration, "size": fmt.size, "pct": _pct}


@dataclass(frozen=True)
class Line:
    series: str  # a tui.model.series.SERIES name
    label: str
    unit: str  # a key of UNITS
    right: bool = False  # on the right-hand y axis (another unit)


@dataclass(frozen=True)
class GraphSpec:
    key: str
    title: str
    lines: tuple[Line, ...]
    empty: str = "no figures yet"  # what the graph says without data


GRAPHS = (
    GraphSpec("connections", "Connections", (
        Line("connections", "used", "count"), Line("active", "active", "count"),
        Line("idle_in_xact", "idle in transaction", "count"))),
    GraphSpec("tps", "Transactions", (
        Line("commits_per_s", "commits", "rate"), Line("rollbacks_per_s", "rollbacks", "rate"))),
    GraphSpec("latency", "Statement latency", (
        Line("mean_ms", "mean", "ms"), Line("calls_per_s", "calls", "rate", right=True)),
        empty="no figures: needs pg_stat_statements in this database"),
    GraphSpec("locks", "Lock waits", (
        Line("lock_waiting", "waiting", "count"), Line("oldest_xact_s", "oldest transaction", "duration", right=True))),
    GraphSpec("size", "Database size", (Line("database_bytes", "size", "size"),)),
    GraphSpec("cache", "Cache hit", (Line("cache_hit_ratio", "hit", "pct"),)),
)


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    out, v = [], start
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    if out[-1] < hi:
        out.append(out[-1] + step)
    return out


def _size_ticks(lo: float, hi: float) -> list[float]:
    """Round ticks in the binary unit of ``hi`` (KiB, MiB, GiB…), so that their labels stay short."""
    unit = 1024 ** max(0, min(5, int(math.log(max(hi, 1.0), 1024))))
    return [v * unit for v in nice_ticks(lo / unit, hi / unit, 3)]


def _size_labels(values: list[float]) -> list[str]:
    """Tick labels in one binary unit, with as many decimals as the step needs to tell them apart."""
    import humanize

    top = max(values[-1], 1.0)
    unit = 1024 ** max(0, min(5, int(math.log(top, 1024))))
    step = (values[1] - values[0]) / unit if len(values) > 1 else 1.0
    decimals = max(0, min(3, -math.floor(math.log10(step)) if step > 0 else 0))
    return [humanize.naturalsize(v, binary=True, format=f"%.{decimals}f") for v in values]


def _thin(points: list[tuple[float, float | None]], limit: int, stat: str) -> list[tuple[float, float | None]]:
    """At most about ``limit`` points: neighbours merged, by their max where peaks matter (``stat`` "max"),
    else their mean. A gap is never merged away: each stretch between gaps is thinned on its own."""
    if len(points) <= limit:
        return points
    k = math.ceil(len(points) / limit)
    merge = max if stat == "max" else min if stat == "min" else (lambda vs: sum(vs) / len(vs))
    out: list[tuple[float, float | None]] = []
    for n, (xs, ys) in enumerate(_runs(points)):
        if n:
            out.append((xs[0], None))
        for j in range(0, len(xs), k):
            out.append((xs[j], merge(ys[j:j + k])))
    return out


def _runs(points: list[tuple[float, float | None]]) -> list[tuple[list[float], list[float]]]:
    """The stretches without a gap: (xs, ys) each."""
    runs: list[tuple[list[float], list[float]]] = []
    xs: list[float] = []
    ys: list[float] = []
    for t, v in points:
        if v is None:
            if xs:
                runs.append((xs, ys))
            xs, ys = [], []
            continue
        xs.append(t)
        ys.append(v)
    if xs:
        runs.append((xs, ys))
    return runs


class TimelineGraph(Vertical):
    """One graph: a title line (the last figures, and the legend) over a plotext plot."""

    DEFAULT_CSS = """
    TimelineGraph { height: 1fr; min-height: 8; padding: 0 1 0 0; }
    TimelineGraph > .timeline--title { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    TimelineGraph > PlotextPlot { height: 1fr; }
    """

    def __init__(self, spec: GraphSpec, **kw) -> None:
        super().__init__(id=f"graph-{spec.key}", **kw)
        self.spec = spec
        self.title_text = Text(spec.title)

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, classes="timeline--title")
        yield PlotextPlot()

    def draw_title(self, timeline: Timeline, colours: dict[str, tuple[int, int, int]]) -> None:
        """The title line: the last figures with their units, each after its line's mark (cheap: every round)."""
        spec = self.spec
        latest = timeline.latest()
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(spec.title, style="bold")
        for i, ln in enumerate(spec.lines):
            colour = colours[COLOURS[i]]
            title.append("  ")
            title.append(MARK_KEYS[MARKS[i]], style=f"rgb({colour[0]},{colour[1]},{colour[2]})")
            title.append(f" {ln.label} ")
            title.append(UNITS[ln.unit](latest.get(ln.series)), style="bold")
            if ln.series == "connections" and latest.get("usable_connections") is not None:
                title.append(f" of {_count(latest['usable_connections'])} usable")
        if spec.key == "size" and latest.get("database_growth_bps") is not None:
            g = latest["database_growth_bps"]
            title.append(f" ({'+' if g >= 0 else '-'}{fmt.size(abs(g) * 60)}/min)")
        if all(latest.get(ln.series) is None for ln in spec.lines):
            title.append(f"  {spec.empty}", style="dim")
        self.title_text = title
        self.query_one(".timeline--title", Static).update(title)

    def draw_plot(self, timeline: Timeline, window: str, colours: dict[str, tuple[int, int, int]]) -> None:
        """The plot of the window: plotext builds it when Textual renders it (only when in view)."""
        spec = self.spec
        span = timeline.span(window)
        latest = timeline.latest()
        end = span[1] if span else 0.0
        scale = 3600.0 if window == "24h" else 60.0 if window == "1h" else 1.0  # x in hours, minutes, seconds
        plot = self.query_one(PlotextPlot)
        limit = max(40, plot.size.width)  # about a point a column: more cost more and show little more
        plot.theme = "textual-clear"
        plt = plot.plt
        plt.clear_figure()
        plt.xaxes(True, False)
        plt.yaxes(True, False)
        plt.xlim(TICKS[window][0][0] / scale, 0.0)
        plt.xticks([t / scale for t, _ in TICKS[window]], [lab for _, lab in TICKS[window]])
        left_hi = right_hi = 0.0
        left_lo = math.inf
        for i, ln in reversed(list(enumerate(spec.lines))):  # the first line drawn last: on top
            pts = _thin([((t - end) / scale, v) for t, v in timeline.series(ln.series, window)], limit,
                        DEFAULT_STAT[ln.series])
            colour = colours[COLOURS[i]]
            side = "right" if ln.right else "left"
            for xs, ys in _runs(pts):
                if len(xs) == 1:
                    plt.scatter(xs, ys, marker=MARKS[i] if MARKS[i] != "braille" else "•", color=colour, yside=side)
                else:
                    plt.plot(xs, ys, marker=MARKS[i], color=colour, yside=side)
                if ln.right:
                    right_hi = max(right_hi, max(ys))
                else:
                    left_hi, left_lo = max(left_hi, max(ys)), min(left_lo, min(ys))
        if spec.key == "connections":
            usable = latest.get("usable_connections")
            if usable and left_hi >= 0.5 * usable:  # the ceiling only when it is near: else the lines flatten
                plt.hline(usable, colours["error"])
                left_hi = max(left_hi, usable)
        self._y_axis(plt, spec.lines[0].unit, left_lo if math.isfinite(left_lo) else 0.0, left_hi, "left")
        if any(ln.right for ln in spec.lines):
            right = next(ln for ln in spec.lines if ln.right)
            self._y_axis(plt, right.unit, 0.0, right_hi, "right")
            plt.yaxes(True, True)
        plot.refresh()

    @staticmethod
    def _y_axis(plt, unit: str, lo: float, hi: float, side: str) -> None:
        if unit == "pct":  # the cache hit: from just under its lowest, to 100 %
            lo = max(0.0, math.floor(min(lo, 0.99) * 100 - 1) / 100)
            ticks = nice_ticks(lo * 100, 100.0, 3)
            values = [v / 100 for v in ticks]
            labels = [f"{v:g}%" for v in ticks]
        elif unit == "size":  # the size: around its range (a database's size moves little in an hour)
            pad = max((hi - lo) * 0.1, hi * 0.001, 1.0)
            values = _size_ticks(max(0.0, lo - pad), hi + pad)
            labels = _size_labels(values)
        else:
            values = nice_ticks(0.0, hi if hi > 0 else 1.0, 4)
            label = {"duration": fmt.duration, "ms": lambda v: f"{v:g} ms", "rate": lambda v: f"{v:g}/s"}.get(
                unit, lambda v: f"{v:g}")
            labels = [label(v) for v in values]
        plt.ylim(values[0], values[-1], yside=side)
        plt.yticks(values, labels, yside=side)


class TimelinePane(Widget):
    """The graphs of a Timeline. ``show(timeline)`` after each round; ``z`` cycles the window."""

    DEFAULT_CSS = """
    TimelinePane { height: 1fr; layout: vertical; }
    TimelinePane > #timeline-head { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    TimelinePane > VerticalScroll { height: 1fr; }
    TimelinePane Grid { grid-size: 1; grid-gutter: 0 2; height: 48; padding: 0 0 0 1; }
    """

    BINDINGS = [
        Binding("z", "cycle_window", "Window 5m/1h/24h", tooltip="the graphs over 5 minutes, 1 hour or 24 hours",
                id="timeline.window"),
    ]

    def __init__(self, timeline: Timeline | None = None, **kw) -> None:
        super().__init__(**kw)
        self.timeline = timeline
        self.window = Timeline.WINDOWS[0]
        self._drawn: tuple | None = None  # what the plots show: (timeline, epoch, window, columns, size)
        self._titled: tuple | None = None  # what the titles show: (timeline, version)
        self._on_screen = False
        self._columns = 1
        self.draws = 0  # how many times the graphs were drawn (tests, the bench)

    def compose(self) -> ComposeResult:
        yield Static(self._head(), id="timeline-head")
        with VerticalScroll(can_focus=True):
            with Grid():
                for spec in GRAPHS:
                    yield TimelineGraph(spec)

    # -- inputs ------------------------------------------------------------------------
    def show(self, timeline: Timeline | None = None) -> None:
        """Draw ``timeline`` (or the one held): now if the pane is on screen and the series moved,
        else when it is next shown."""
        if timeline is not None:
            self.timeline = timeline
        if self.is_mounted and self._on_screen:
            self._draw()

    def action_cycle_window(self) -> None:
        ws = Timeline.WINDOWS
        self.window = ws[(ws.index(self.window) + 1) % len(ws)]
        self._draw()

    # -- Textual events ------------------------------------------------------------------
    def on_show(self) -> None:
        self._on_screen = True
        self._layout()
        self._draw()

    def on_hide(self) -> None:
        self._on_screen = False

    def on_resize(self) -> None:
        self._layout()
        if self._on_screen:
            self._draw()

    # -- drawing -----------------------------------------------------------------------
    def _layout(self) -> None:
        """Two columns filling the height from WIDE_MIN_W columns on, else one that scrolls."""
        w, h = self.size.width, self.size.height - 1  # less the head line
        columns = 2 if w >= WIDE_MIN_W else 1
        rows = math.ceil(len(GRAPHS) / columns)
        height = max(GRAPH_MIN_H, h // rows) if columns > 1 else max(GRAPH_MIN_H, h // 2)
        grid = self.query_one(Grid)
        if columns != self._columns:
            grid.styles.grid_size_columns = columns
            self._columns = columns
        total = rows * height
        if grid.styles.height is None or grid.styles.height.value != total:
            grid.styles.height = total

    def _head(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("Timeline", style="bold")
        t.append(f"  {WINDOW_LABELS[self.window]}")
        tl = self.timeline
        if tl is not None and tl.last_at is not None:
            t.append(f" to {tl.last_at.astimezone(timezone.utc):%H:%M:%S} UTC")
        elif tl is None or tl.last_at is None:
            t.append("  waiting for the first poll…", style="dim")
        t.append("   z: ", style="dim")
        for w in Timeline.WINDOWS:
            t.append(f" {w} ", style="reverse" if w == self.window else "dim")
        return t

    def _colours(self) -> dict[str, tuple[int, int, int]]:
        theme = self.app.current_theme
        out = {}
        for name, fallback in (("primary", "#0178D4"), ("warning", "#FFA62B"), ("success", "#4EBF71"),
                               ("error", "#BA3C5B")):
            value = getattr(theme, name, None) or fallback
            out[name] = Color.parse(value).rgb
        return out

    def _plot_epoch(self, tl: Timeline) -> int:
        """What moves a window's plots: every point in "5m"; in "1h" and "24h" a bucket closing (10 s, 4 min),
        so that their plots are drawn once a bucket while their titles follow every round."""
        spec = Timeline.SPECS[self.window]
        if spec.bucket_s is None or tl.last_at is None:
            return tl.version
        return int(tl.last_at.timestamp() // spec.bucket_s)

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        tl = self.timeline
        self.query_one("#timeline-head", Static).update(self._head())
        if tl is None:
            return
        titles = (id(tl), tl.version)
        plots = (id(tl), self._plot_epoch(tl), self.window, self._columns, self.size)
        if titles == self._titled and plots == self._drawn:
            return
        colours = self._colours()
        graphs = list(self.query(TimelineGraph))
        if titles != self._titled:
            self._titled = titles
            for g in graphs:
                g.draw_title(tl, colours)
        if plots != self._drawn:
            self._drawn = plots
            for g in graphs:
                g.draw_plot(tl, self.window, colours)
            self.draws += 1


__all__ = ["GRAPHS", "TimelinePane", "TimelineGraph", "nice_ticks"]
