"""Table sizes pane: the biggest tables, their parts, growth per minute, scans, dead rows."""
from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tui.model import format as fmt
from tui.model.snapshot import TablesSnapshot, TableStat
from widgets._keyed import KeyedTable, sync_rows
from widgets.columns import sorted_label

SORTED_BY = "total"  # the server sends the biggest tables first: the total column's label has the arrow
COLUMNS = (
    ("name", "table", 24), ("total", "total", 10), ("growth", "growth/min", 10), ("rows", "est rows", 9),
    ("flag", "", 8), ("table", "heap", 10), ("index", "index", 10), ("toast", "toast", 9),
    ("seq", "seq scans", 9), ("idx", "idx scans", 9), ("dead", "dead", 8), ("vacuum", "autovacuum", 11),
)


class TableSizesPane(Vertical):
    DEFAULT_CSS = """
    TableSizesPane { height: 1fr; }
    TableSizesPane #tables-summary { height: auto; padding: 0 1; }
    TableSizesPane #table-sizes { height: 1fr; }
    TableSizesPane.-stale #table-sizes { text-opacity: 45%; }
    """

    BINDINGS = [Binding("enter", "toggle_partitions", "Partitions", id="tables.partitions")]

    def __init__(self, interval_s: float = 30.0, **kw) -> None:
        super().__init__(**kw)
        self.interval_s = interval_s
        self.snapshot: TablesSnapshot | None = None
        self.unfolded: set[str] = set()  # partitioned tables whose partitions are shown under them

    def compose(self) -> ComposeResult:
        yield Static("waiting for the first poll…", id="tables-summary")
        table = KeyedTable(id="table-sizes", cursor_type="row")
        for key, label, width in COLUMNS:
            table.add_column(Text(sorted_label(label, key, SORTED_BY)), key=key, width=width)
        yield table

    def set_stale(self, stale: bool) -> None:
        """The connection is lost: the rows are the last poll's, drawn dimmed."""
        self.set_class(stale, "-stale")

    def show_snapshot(self, snap: TablesSnapshot, growth_bps: float | None = None) -> None:
        self.snapshot = snap
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"database {fmt.size(snap.database_bytes)}", style="bold")
        if growth_bps is not None:
            t.append(f" ({'+' if growth_bps >= 0 else '-'}{fmt.size(abs(growth_bps) * 60)}/min)")
        t.append(f"  top {len(snap.tables)} tables by total size, every {self.interval_s:g}s", style="dim")
        flagged = sum(1 for x in snap.tables if x.mostly_seq_scanned)
        if flagged:
            t.append(f"  {flagged} large table{'s' if flagged > 1 else ''} read mostly by seq scan", style="bold yellow")
        if snap.note:
            t.append(f"  {snap.note}", style="yellow")
        self.query_one("#tables-summary", Static).update(t)
        self._sync()

    def _sync(self) -> None:
        snap = self.snapshot
        if snap is None:
            return
        rows = []
        for x in snap.tables:
            rows.append((x.qualified_name, self._cells(x, unfolded=x.qualified_name in self.unfolded)))
            if x.partition_count is not None and x.qualified_name in self.unfolded:
                for n, p in enumerate(x.partitions):
                    last = n == len(x.partitions) - 1
                    rows.append((f"{x.qualified_name}\x00{p.qualified_name}", self._cells(p, child="└ " if last else "├ ")))
        sync_rows(self.query_one("#table-sizes", DataTable), rows)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on the table (DataTable's own binding selects the row): fold or unfold partitions."""
        event.stop()
        self.action_toggle_partitions()

    def action_toggle_partitions(self) -> None:
        """Enter on a partitioned table: fold or unfold its partitions."""
        from widgets._keyed import row_key_at_cursor

        key = row_key_at_cursor(self.query_one("#table-sizes", DataTable))
        if key is None:
            return
        parent = key.split("\x00", 1)[0]
        x = next((t for t in (self.snapshot.tables if self.snapshot else ()) if t.qualified_name == parent), None)
        if x is None or x.partition_count is None:
            self.notify("not a partitioned table: Enter unfolds a partitioned table's partitions", timeout=3)
            return
        self.unfolded ^= {parent}
        self._sync()

    @staticmethod
    def _cells(x: TableStat, *, unfolded: bool = False, child: str = "") -> tuple:
        def n(v):
            return fmt.count(v) if v is not None else "—"
        name = Text(no_wrap=True, overflow="ellipsis")
        if child:
            name.append("  " + child, style="dim")
        elif x.partition_count is not None:
            name.append("▾ " if unfolded else "▸ ", style="bold")
        name.append(x.qualified_name)
        if x.partition_count is not None:
            name.append(f" ({x.partition_count} partitions)", style="dim")
        if x.locked:
            name.append(f" (locked by pid {x.locked_by})" if x.locked_by else " (locked)", style="yellow")
        growth = "—" if x.growth_bytes_per_min is None else (
            ("+" if x.growth_bytes_per_min >= 0 else "-") + fmt.size(abs(x.growth_bytes_per_min)))
        vac = x.last_autovacuum.strftime("%m-%d %H:%M") if isinstance(x.last_autovacuum, datetime) else "never"
        dead_style = "yellow" if x.dead_rows and x.est_rows and x.dead_rows > 0.2 * x.est_rows else ""
        return (
            name,
            Text(x.size_text if x.total_bytes is not None else
                 (f"{fmt.size(x.last_bytes)}?" if x.last_bytes is not None else "unknown"),
                 justify="right", style="bold" if x.total_bytes is not None else "dim italic"),
            Text(growth, justify="right", style="green" if (x.growth_bytes_per_min or 0) > 0 else ""),
            Text(n(x.est_rows), justify="right"),
            Text("SEQ-SCAN" if x.mostly_seq_scanned else "", style="bold yellow"),
            Text(fmt.size(x.table_bytes), justify="right"), Text(fmt.size(x.index_bytes), justify="right"),
            Text(fmt.size(x.toast_bytes), justify="right"),
            Text(n(x.seq_scan), justify="right"), Text(n(x.idx_scan), justify="right"),
            Text(n(x.dead_rows), justify="right", style=dead_style), Text(vac),
        )
