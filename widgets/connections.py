"""Connections pane: counts (aggregated on the server), a sparkline against max_connections,
the session table keyed by pid, blocking chains, and cancel/terminate requests (sent up)."""
from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from tui.model import format as fmt
from tui.model.snapshot import ConnectionsSnapshot, Session
from widgets._keyed import KeyedTable, row_key_at_cursor, sync_rows
from widgets.columns import restore_cursor, set_columns, sorted_label
from widgets.session_detail import SessionDetailScreen
from widgets.textlines import TextLines

SORTS = ("age", "pid", "state", "user", "database")
SORT_COLUMN = {"age": ("xact", "▼"), "pid": ("pid", "▲"), "state": ("state", "▲"), "user": ("user", "▲"),
               "database": ("database", "▲")}  # the column whose label shows the sort, and its direction

# key, label, width. The query comes last and takes all the width that is left (pg_activity's layout);
# the columns before it are the ones that matter most; OPTIONAL ones join, in this order, only while the
# query keeps QUERY_MIN characters (at 80 columns: none of them, the query gets ~28).
CORE_COLUMNS = (("pid", "pid", 7), ("user", "user", 9), ("state", "state", 12), ("xact", "xact", 6),
                ("query_age", "q age", 6))
OPTIONAL_COLUMNS = (("blocked_by", "blocked", 7), ("wait", "wait", 16), ("database", "db", 12),
                    ("app", "app", 14), ("client", "client", 15))
COLUMNS = CORE_COLUMNS + OPTIONAL_COLUMNS + (("query", "query", 60),)
QUERY_MIN = 40
CELL_PADDING = 2  # DataTable's cell_padding of 1 on either side


def column_layout(width: int) -> tuple[tuple[str, str, int], ...]:
    """The columns for a table ``width`` cells wide: the core ones, the optional ones that leave the
    query QUERY_MIN characters, and the query with the rest."""
    cols = list(CORE_COLUMNS)
    left = width - sum(w + CELL_PADDING for _, _, w in cols) - CELL_PADDING
    for key, label, w in OPTIONAL_COLUMNS:
        if left - (w + CELL_PADDING) < QUERY_MIN:
            break
        cols.append((key, label, w))
        left -= w + CELL_PADDING
    return tuple(cols) + (("query", "query", max(10, left)),)


STATE_SHORT = {"idle in transaction": "idle in xact", "idle in transaction (aborted)": "xact aborted",
               "fastpath function call": "fastpath"}


class SessionsSignalRequested(Message):
    """The user asked to cancel (or terminate) sessions: the screen confirms and runs it."""

    def __init__(self, sessions: tuple[Session, ...], action: str) -> None:
        super().__init__()
        self.sessions = sessions
        self.action = action


class IdleToggled(Message):
    def __init__(self, show_idle: bool) -> None:
        super().__init__()
        self.show_idle = show_idle


def _short(text: str | None, n: int) -> str:
    text = text or ""
    return text if len(text) <= n else text[: n - 1] + "…"


class ConnectionsPane(Vertical):
    DEFAULT_CSS = """
    ConnectionsPane { height: 1fr; }
    ConnectionsPane #conn-summary { height: 3; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    ConnectionsPane #conn-filter { display: none; height: 3; }
    ConnectionsPane #conn-filter.-shown { display: block; }
    ConnectionsPane #sessions { height: 1fr; }
    ConnectionsPane.-stale #sessions { text-opacity: 45%; }
    ConnectionsPane #conn-query { display: none; height: auto; max-height: 6; padding: 0 1;
                                  border-top: solid $accent; overflow-y: auto; }
    ConnectionsPane #conn-query.-shown { display: block; }
    ConnectionsPane #chains { display: none; height: auto; max-height: 10; padding: 0 1; border-top: solid $accent; }
    ConnectionsPane #chains.-shown { display: block; }
    """

    BINDINGS = [
        Binding("i", "toggle_idle", "Idle", id="connections.idle"),
        Binding("s", "cycle_sort", "Sort", id="connections.sort"),
        Binding("slash", "filter", "Filter", id="connections.filter"),
        Binding("space", "tag", "Tag", id="connections.tag"),
        Binding("b", "toggle_chains", "Blocking", id="connections.chains"),
        Binding("c", "cancel", "Cancel query", id="connections.cancel"),
        Binding("K", "terminate", "Terminate", id="connections.terminate"),
        Binding("enter", "detail", "Detail", id="connections.detail", show=False),
        Binding("w", "toggle_query_line", "Query", id="connections.query_line"),
    ]

    def __init__(self, idle_in_xact_threshold_s: float = 60.0, **kw) -> None:
        super().__init__(**kw)
        self.threshold = idle_in_xact_threshold_s
        self.snapshot: ConnectionsSnapshot | None = None
        self.show_idle = False
        self.sort = "age"
        self.filter_text = ""
        self.tagged: set[int] = set()
        self.history: deque[int] = deque(maxlen=300)
        self.max_connections: int | None = None
        self.visible_sessions: list[Session] = []
        self._summary_sig: tuple | None = None
        self._chains_sig: str | None = None
        self._row_cells: dict[int, tuple[tuple, tuple]] = {}  # pid: (values, cells) of its last drawing
        self.stale = False
        self.columns = column_layout(80)  # laid out again from the table's width once it has one
        self._query_line_sig: tuple | None = None

    def compose(self) -> ComposeResult:
        yield TextLines("waiting for the first poll…", id="conn-summary")
        yield Input(placeholder="filter: user, database, application, state or query text", id="conn-filter")
        table = KeyedTable(id="sessions", cursor_type="row", zebra_stripes=False)
        for key, label, width in self._labelled(self.columns):
            table.add_column(Text(label), key=key, width=width)
        yield table
        yield Static("", id="conn-query")
        yield Static("", id="chains")

    # -- layout: the query takes the width that is left; the sorted column's label has the arrow ------
    def _labelled(self, cols):
        key, arrow = SORT_COLUMN[self.sort]
        return tuple((k, sorted_label(label, k, key, arrow), w) for k, label, w in cols)

    def _table_width(self) -> int:
        table = self.query_one("#sessions", DataTable)
        width = table.size.width or self.size.width or self.app.size.width
        return width - table.styles.scrollbar_size_vertical

    def _apply_columns(self) -> None:
        """Lay the columns out for the table's width and the sort; the rows again if they changed."""
        self.columns = column_layout(self._table_width())
        table = self.query_one("#sessions", DataTable)
        rebuilt, cursor_key = set_columns(table, self._labelled(self.columns))
        if rebuilt:
            self._row_cells.clear()
            self._draw_table()
            restore_cursor(table, cursor_key)

    def on_resize(self, event) -> None:
        self._apply_columns()

    def on_mount(self) -> None:
        self.call_after_refresh(self._apply_columns)

    def set_stale(self, stale: bool) -> None:
        """The connection is lost: the rows are what was true at the last poll, drawn dimmed."""
        self.stale = stale
        self.set_class(stale, "-stale")

    # -- data in -------------------------------------------------------------------
    def record_total(self, total: int, max_connections: int) -> None:
        """Every server poll adds a point to the sparkline, even while the pane is hidden."""
        self.history.append(total)
        self.max_connections = max_connections
        if self.snapshot is not None:
            self._draw_summary()

    def show_snapshot(self, snap: ConnectionsSnapshot) -> None:
        self.snapshot = snap
        self.max_connections = snap.max_connections
        live = {s.pid for s in snap.sessions}
        self.tagged &= live
        self._draw_table()  # draws the summary too
        self._draw_chains()

    # -- drawing -------------------------------------------------------------------
    def _draw_summary(self) -> None:
        s = self.snapshot
        if s is None:
            return
        def counts(pairs, n=4):
            items = [f"{k} {v}" for k, v in pairs[:n]]
            if len(pairs) > n:
                items.append(f"+{len(pairs) - n}")
            return " · ".join(items) or "—"
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"sessions {s.total}/{s.max_connections} ", style="bold")
        t.append(fmt.sparkline(self.history, self.max_connections or s.max_connections, 30), style="cyan")
        t.append("  ")
        t.append(counts(s.by_state, 5))
        t.append(f"\ndb: {counts(s.by_database, 2)}   app: {counts(s.by_application, 2)}   user: {counts(s.by_user, 2)}")
        shown = len(self.visible_sessions)
        mode = "all" if self.show_idle else "non-idle"
        extra = f", filter “{self.filter_text}”" if self.filter_text else ""
        more = f", {s.sessions_omitted} not listed" if s.sessions_omitted else ""
        tags = f", {len(self.tagged)} tagged" if self.tagged else ""
        t.append(f"\nshowing {shown} {mode} sessions, by {self.sort}{extra}{more}{tags}", style="dim")
        sig = (t.plain, tuple((x.start, x.end, str(x.style)) for x in t.spans))
        if sig != self._summary_sig:  # unchanged text: no repaint at all
            self._summary_sig = sig
            self.query_one("#conn-summary", Static).update(t, layout=False)  # fixed height: no relayout

    def _filtered(self) -> list[Session]:
        s = self.snapshot
        if s is None:
            return []
        rows = [x for x in s.sessions if self.show_idle or not x.is_idle]
        if self.filter_text:
            f = self.filter_text.lower()
            rows = [x for x in rows if f in " ".join(
                str(v) for v in (x.pid, x.user, x.database, x.application_name, x.state, x.query, x.client_addr)
            ).lower()]
        if self.sort == "age":
            pass  # the server sends oldest first
        elif self.sort == "pid":
            rows.sort(key=lambda x: x.pid)
        else:
            rows.sort(key=lambda x: (str(getattr(x, self.sort) or ""), -x.age_s))
        return rows

    def _row_style(self, x: Session, blockers: set[int]) -> str:
        if x.blocked_by:
            return "bold red"
        if x.is_idle_in_xact and (x.state_age_s or 0) >= self.threshold:
            return "bold yellow"
        if x.pid in blockers:
            return "magenta"
        return ""

    def _cells(self, x: Session, blockers: set[int]) -> tuple:
        style = self._row_style(x, blockers)
        tag = "*" if x.pid in self.tagged else " "
        wait = f"{x.wait_event_type}:{x.wait_event}" if x.wait_event_type else ""
        state = STATE_SHORT.get(x.state or "", x.state or "(hidden)")
        keys = tuple(k for k, _, _ in self.columns)
        query_width = self.columns[-1][2]
        every = {
            "pid": f"{tag}{x.pid}", "user": _short(x.user, 9), "state": _short(state, 12),
            "xact": fmt.duration(x.xact_age_s), "query_age": fmt.duration(x.query_age_s),
            "blocked_by": _short(",".join(map(str, x.blocked_by)), 7), "wait": _short(wait, 16),
            "database": _short(x.database, 12), "app": _short(x.application_name, 14),
            "client": _short(x.client_addr or "local", 15),
            "query": _short(" ".join((x.query or "").split()), query_width),  # one line: the rest under w
        }
        vals = tuple(every[k] for k in keys)
        cell_style = style + (" reverse" if x.pid in self.tagged else "")
        sig = (keys, vals, cell_style, x.query_hidden)
        hit = self._row_cells.get(x.pid)
        if hit is not None and hit[0] == sig:
            return hit[1]  # unchanged row: the same cells, which sync_rows skips at once
        out = []
        for k, v in zip(keys, vals):
            st = cell_style
            if k == "query" and x.query_hidden:
                st = (st + " italic dim").strip()
            out.append(Text(v, style=st.strip()))
        cells = tuple(out)
        self._row_cells[x.pid] = (sig, cells)
        return cells

    def _draw_table(self) -> None:
        s = self.snapshot
        if s is None:
            return
        blockers = {b for x in s.sessions for b in x.blocked_by}
        self.visible_sessions = self._filtered()
        live = {x.pid for x in s.sessions}  # hidden idle ones too: toggling them back costs no new cells
        if len(self._row_cells) > 2 * len(live) + 50:  # forget sessions that are gone
            self._row_cells = {p: v for p, v in self._row_cells.items() if p in live}
        table = self.query_one("#sessions", DataTable)
        with self.app.batch_update():
            sync_rows(table, [(str(x.pid), self._cells(x, blockers)) for x in self.visible_sessions])
            self._draw_summary()
            self._draw_query_line()

    def _draw_query_line(self) -> None:
        """`w`: the whole query of the session under the cursor, wrapped, in a line under the table."""
        box = self.query_one("#conn-query", Static)
        if not box.has_class("-shown"):
            return
        key = row_key_at_cursor(self.query_one("#sessions", DataTable))
        x = next((s for s in self.visible_sessions if str(s.pid) == key), None)
        sig = (x.pid, x.query) if x is not None else None
        if sig == self._query_line_sig:
            return
        self._query_line_sig = sig
        t = Text()
        if x is None:
            t.append("no session selected", style="dim")
        else:
            t.append(f"{x.pid} ", style="bold")
            t.append(x.query or "(no query)", style="italic dim" if x.query_hidden else "")
        box.update(t)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._draw_query_line()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_detail()

    def _draw_chains(self) -> None:
        s = self.snapshot
        box = self.query_one("#chains", Static)
        if s is None:
            return
        chains = s.blocking_chains()
        if not chains:
            if self._chains_sig != "":
                self._chains_sig = ""
                box.update(Text("no blocking chains", style="dim"))
            return
        by_pid = s.by_pid()  # pgpreflight's own blockers too (a fix's ALTER in the lock queue)
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("blocking chains (who blocks whom)\n", style="bold")
        for depth, pid in chains:
            x = by_pid.get(pid)
            lead = "  " * depth + ("└ " if depth else "")
            t.append(f"{lead}{pid}", style="bold red" if depth else "bold magenta")
            if x is not None and x.own:
                t.append(f" {x.chain_label(80)}", style="italic")
            elif x is not None:
                t.append(f" {x.user or '?'} {x.state or '(hidden)'} {fmt.duration(x.xact_age_s)}: {_short(x.query, 80)}")
            else:
                t.append(" (not listed)")
            t.append("\n")
        if t.plain != self._chains_sig:
            self._chains_sig = t.plain
            box.update(t)

    # -- selection -----------------------------------------------------------------
    def selected(self) -> tuple[Session, ...]:
        """Tagged sessions, else the one under the cursor."""
        if self.snapshot is None:
            return ()
        by_pid = {x.pid: x for x in self.snapshot.sessions}
        if self.tagged:
            return tuple(by_pid[p] for p in sorted(self.tagged) if p in by_pid)
        key = row_key_at_cursor(self.query_one("#sessions", DataTable))
        return (by_pid[int(key)],) if key is not None and int(key) in by_pid else ()

    # -- actions -------------------------------------------------------------------
    def action_toggle_idle(self) -> None:
        self.show_idle = not self.show_idle
        self._draw_table()
        self.post_message(IdleToggled(self.show_idle))

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._apply_columns()  # the arrow moves to the sorted column's label
        self._draw_table()

    def action_toggle_query_line(self) -> None:
        """`w`: the selected session's whole query, wrapped, under the table (again: hidden)."""
        box = self.query_one("#conn-query", Static)
        box.toggle_class("-shown")
        self._query_line_sig = None
        self._draw_query_line()

    def action_detail(self) -> None:
        """Enter: the session under the cursor in its detail screen (whole query, ages, locks)."""
        key = row_key_at_cursor(self.query_one("#sessions", DataTable))
        x = next((s for s in self.visible_sessions if str(s.pid) == key), None)
        if x is None:
            self.notify("no session selected", severity="warning", timeout=3)
            return
        self.app.push_screen(SessionDetailScreen(x))

    def action_filter(self) -> None:
        box = self.query_one("#conn-filter", Input)
        box.add_class("-shown")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "conn-filter":
            self.filter_text = event.value.strip()
            self._draw_table()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "conn-filter":
            if not event.value.strip():
                event.input.remove_class("-shown")
            self.query_one("#sessions", DataTable).focus()

    def key_escape(self) -> None:
        box = self.query_one("#conn-filter", Input)
        if box.has_class("-shown"):
            box.value = ""
            box.remove_class("-shown")
            self.filter_text = ""
            self._draw_table()
            self.query_one("#sessions", DataTable).focus()

    def action_tag(self) -> None:
        key = row_key_at_cursor(self.query_one("#sessions", DataTable))
        if key is None:
            return
        pid = int(key)
        self.tagged ^= {pid}
        self._draw_table()
        table = self.query_one("#sessions", DataTable)
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_toggle_chains(self) -> None:
        self.query_one("#chains").toggle_class("-shown")

    def _request(self, action: str) -> None:
        chosen = self.selected()
        if not chosen:
            self.notify("no session selected", severity="warning", timeout=3)
            return
        self.post_message(SessionsSignalRequested(chosen, action))

    def action_cancel(self) -> None:
        self._request("cancel")

    def action_terminate(self) -> None:
        self._request("terminate")
