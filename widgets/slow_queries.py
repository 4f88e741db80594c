"""Slow queries pane: top statements of pg_stat_statements by mean or total time with interval
figures, or, without the extension, long-running statements and the fix."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tui.model import format as fmt
from tui.model.snapshot import SlowQueriesSnapshot, Statement
from widgets._keyed import KeyedTable, row_key_at_cursor, sync_rows
from widgets.columns import restore_cursor, set_columns, sorted_label
from widgets.confirm import QueryDetailScreen

PGSS_COLUMNS = (  # 80 columns show the figures that matter and the start of the query; mean and total
    # have room for the sort arrow ("mean ms ▼")
    ("mean", "mean ms", 9), ("total", "total ms", 10), ("calls", "calls", 7), ("share", "share", 6),
    ("icalls", "Δcalls", 6), ("ims", "Δms", 8), ("query", "query", 70), ("rows", "rows", 8),
    ("hit", "hit %", 6), ("mcalls", "1m calls", 8), ("mms", "1m ms", 8),
)
PSA_COLUMNS = (("pid", "pid", 8), ("user", "user", 12), ("database", "db", 12), ("age", "running", 8),
               ("query", "query", 120))


class SlowQueriesPane(Vertical):
    DEFAULT_CSS = """
    SlowQueriesPane { height: 1fr; }
    SlowQueriesPane #slow-message { height: auto; max-height: 3; padding: 0 1; }
    SlowQueriesPane #statements { height: 1fr; }
    SlowQueriesPane.-stale #statements { text-opacity: 45%; }
    """
    BINDINGS = [
        Binding("m", "toggle_order", "Mean/total", id="slow.order"),
        Binding("enter", "detail", "Full query", id="slow.detail", show=False),
        Binding("d", "detail", "Full query", id="slow.detail_d"),
    ]

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.snapshot: SlowQueriesSnapshot | None = None
        self.order = "mean"
        self._columns_for: str | None = None
        self.rows: list[Statement] = []
        self._msg_plain: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first poll…", id="slow-message")
        yield KeyedTable(id="statements", cursor_type="row")

    def show_snapshot(self, snap: SlowQueriesSnapshot) -> None:
        self.snapshot = snap
        self._draw()

    def set_stale(self, stale: bool) -> None:
        """The connection is lost: the rows are the last poll's, drawn dimmed."""
        self.set_class(stale, "-stale")

    def _ensure_columns(self, source: str) -> tuple[DataTable, str | None]:
        """The source's columns, the sorted one's label with the arrow ("mean ms ▼"; the long-running
        statements come oldest first: "running ▼")."""
        table = self.query_one("#statements", DataTable)
        if source == "pg_stat_statements":
            specs = [(k, sorted_label(label, k, self.order), w) for k, label, w in PGSS_COLUMNS]
        else:
            specs = [(k, sorted_label(label, k, "age"), w) for k, label, w in PSA_COLUMNS]
        _rebuilt, cursor_key = set_columns(table, specs)
        self._columns_for = source
        return table, cursor_key

    def _draw(self) -> None:
        snap = self.snapshot
        if snap is None:
            return
        msg = Text(no_wrap=False)
        if snap.source == "pg_stat_statements":
            msg.append(f"top statements by {self.order} time", style="bold")
            msg.append(f"  all statements: {fmt.duration((snap.total_ms or 0) / 1000)} since reset", style="dim")
            msg.append("\nm: mean/total  enter: full query  Δ: since last poll  1m: last minute", style="dim")
            rows = sorted(snap.statements, key=lambda s: -(s.mean_ms if self.order == "mean" else s.total_ms))
        else:
            msg.append("pg_stat_statements unavailable: ", style="bold yellow")
            msg.append(snap.message or "")
            msg.append("\nshowing long-running statements from pg_stat_activity instead", style="dim")
            rows = list(snap.statements)
        if msg.plain != self._msg_plain:  # the message rarely changes: no relayout per poll
            self._msg_plain = msg.plain
            self.query_one("#slow-message", Static).update(msg)
        self.rows = rows
        table, cursor_key = self._ensure_columns(snap.source)
        if snap.source == "pg_stat_statements":
            data = [(s.key, self._pgss_cells(s)) for s in rows]
        else:
            data = [(s.key, (str(s.pid), s.user or "", s.database or "", fmt.duration(s.age_s),
                             Text(s.query, style="italic dim" if s.query.startswith("<hidden") else "")))
                    for s in rows]
        with self.app.batch_update():
            sync_rows(table, data)
            restore_cursor(table, cursor_key)

    @staticmethod
    def _pgss_cells(s: Statement) -> tuple:
        hot = "bold red" if (s.share or 0) >= 0.25 else ""
        return (
            Text(fmt.ms(s.mean_ms), justify="right", style="bold" if s.mean_ms >= 100 else ""),
            Text(fmt.ms(s.total_ms), justify="right"),
            Text(fmt.count(s.calls), justify="right"),
            Text(fmt.ratio(s.share), justify="right", style=hot),
            Text(fmt.count(s.interval_calls), justify="right"), Text(fmt.ms(s.interval_ms), justify="right"),
            Text(s.query[:200], style="italic dim" if s.query.startswith("<hidden") else ""),
            Text(fmt.count(s.rows), justify="right"),
            Text(fmt.ratio(s.cache_hit_ratio), justify="right",
                 style="yellow" if s.cache_hit_ratio is not None and s.cache_hit_ratio < 0.9 else ""),
            Text(fmt.count(s.minute_calls), justify="right"), Text(fmt.ms(s.minute_ms), justify="right"),
        )

    def action_toggle_order(self) -> None:
        self.order = "total" if self.order == "mean" else "mean"
        self._draw()

    def current(self) -> Statement | None:
        key = row_key_at_cursor(self.query_one("#statements", DataTable))
        return next((s for s in self.rows if s.key == key), None)

    def action_detail(self) -> None:
        s = self.current()
        if s is not None:
            self.app.push_screen(QueryDetailScreen(s))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_detail()
