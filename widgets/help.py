"""`?`: the keys of what is in view first, then the app's, then a legend of every mark, column
and colour. Public Textual API only (ModalScreen, VerticalScroll, Static).

The keys are generated from the bindings, so the help cannot drift from them: the focused widget
and its ancestors up to the screen (the pane in view, or the modal), then the screen and the app.
Only the bindings our own classes declare are listed by name; the ones Textual's widgets bring
(cursor keys, page up/down) come last, under "Moving around". A binding whose ``check_action``
says no (``f`` while fixes are off, say) is left out, as the footer leaves it out.

The legends are built from the same tables the panes draw with (MARKS, COLOURS, the column
tables), with one line of explanation each; tests/ui/test_help.py holds every column and mark
to having one."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static
from rich.text import Text

from tui.model.checklist import COLOURS, MANUAL, MARKS, PASS, PENDING, ERROR, FAIL, WARN

OURS = ("widgets.", "tui.")

# What a pane or a screen is called in the help, by class name (the first one found walking up
# from the focus names the section).
TITLES = {
    "ConnectionsPane": "Connections (1)", "SlowQueriesPane": "Slow queries (2)", "TableSizesPane": "Tables (3)",
    "HostPane": "Host (4)", "ChecklistTree": "Checklist (5 or l)", "ChecklistPane": "Checklist (5 or l)",
    "FixPlanScreen": "The plan of a fix", "FixChoiceScreen": "A fix's choice", "FixProgressScreen": "A running fix",
    "PreflightPlanScreen": "The combined plan (F)", "PreflightPanel": "The combined run",
    "SignoffScreen": "The sign-off (S)", "ConfirmSignalScreen": "Cancel / terminate", "ItemDetailsScreen": "Details",
    "NoteScreen": "A note", "QueryDetailScreen": "The full query",
    "AlertsScreen": "Alerts (a)", "TimelinePane": "Timeline (6 or g)", "GotoTimeScreen": "Go to a time (G)",
}

# binding id → what the help says, where the binding's own description is too short for it
# (the footer shows its short label from widgets/footer.py KEYS)
LONG = {
    "connections.idle": "show or hide idle sessions", "connections.sort": "change the sort order (age, pid, state…)",
    "connections.filter": "filter the sessions by text", "connections.tag": "tag the session (* pid): act on several",
    "connections.chains": "blocking chains: who waits on whom",
    "connections.cancel": "cancel the query of the selected (or tagged) sessions, after a confirmation",
    "connections.terminate": "terminate the selected (or tagged) sessions, after two confirmations",
    "slow.order": "sort by mean or by total time", "slow.detail_d": "the full text of the query",
    "slow.detail": "the full text of the query",
    "checklist.tick": "tick (or untick) an item a person confirms", "checklist.note": "add a note to the item",
    "checklist.details": "the item's evidence, why it matters and its fix",
    "checklist.fix": "fix the item (its plan is shown first)", "checklist.verify": "run every check again now",
    "checklist.fix_all": "one combined plan of every failing item's fix", "checklist.next_open": "next open item",
    "checklist.previous_open": "previous open item", "checklist.signoff": "write the sign-off report",
}

STATUS_MEANING = {
    PASS: "pass: the check holds", FAIL: "fail: the check found a flaw", MANUAL: "manual: a person confirms, then ticks",
    WARN: "warn: holds with a caveat", ERROR: "error: the check could not run", PENDING: "pending: not verified yet",
}

CONNECTION_COLUMNS = {
    "pid": "pid: the server process; * before it = tagged (space), acted on together",
    "user": "user: the role", "state": "state: active, idle, idle in xact (in a transaction, doing nothing)…",
    "xact": "xact: transaction age (since BEGIN)", "query_age": "q age: query age (since the statement started)",
    "blocked_by": "blocked: the pids it waits on (their locks)", "query": "query: the statement (or the last one)",
    "wait": "wait: wait event type:name", "database": "db: the database", "app": "app: application_name",
    "client": "client: client address (local = Unix socket)",
}
SLOW_COLUMNS = {
    "mean": "mean ms: mean time per call", "total": "total ms: time of all calls since the stats' reset",
    "calls": "calls: since the reset", "share": "share: part of all statements' time (red from 25 %)",
    "icalls": "Δcalls: calls since the last poll", "ims": "Δms: time since the last poll",
    "query": "query: the normalized statement ($1 for the values)", "rows": "rows: rows returned since the reset",
    "hit": "hit %: shared-buffer cache hits (yellow below 90 %)", "mcalls": "1m calls: calls in the last minute",
    "mms": "1m ms: time in the last minute", "pid": "pid: the server process", "user": "user: the role",
    "database": "db: the database", "age": "running: how long the statement has run",
}
TABLE_COLUMNS = {
    "name": "table: schema.name; (locked) = a lock kept the sizes from being read",
    "total": "total: heap + indexes + TOAST (~ = last known)", "growth": "growth/min: size change a minute (green = grows)",
    "rows": "est rows: the planner's estimate", "flag": "SEQ-SCAN: a large table read mostly by sequential scans",
    "table": "heap: the table's own pages", "index": "index: all its indexes", "toast": "toast: out-of-line values",
    "seq": "seq scans: sequential scans since the reset", "idx": "idx scans: index scans since the reset",
    "dead": "dead: dead rows (yellow above 20 % of the rows)", "vacuum": "autovacuum: last autovacuum (never = not yet)",
}


def _checklist_legend() -> list[Text]:
    lines = []
    for status in (PASS, FAIL, MANUAL, WARN, ERROR, PENDING):
        t = Text("  ")
        t.append(MARKS[status], style=f"bold {COLOURS[status]}")
        t.append(f"  {STATUS_MEANING[status]} ({COLOURS[status]})")
        lines.append(t)
    lines.append(Text.assemble("  ", ("☑", "green"), "  ticked by a person (☑ who)"))
    lines.append(Text.assemble("  ", ("✎", "cyan"), "  notes (✎2 = two notes; n adds one)"))
    lines.append(Text("  a title in bold: a critical item that does not pass"))
    return lines


def _columns_legend(columns, meaning: dict[str, str]) -> list[Text]:
    return [Text(f"  {meaning.get(key, label or key)}") for key, label, _w in columns]


def legends(threshold_s: float = 60.0) -> list[tuple[str, list[Text]]]:
    """(title, lines) for every pane: marks, columns and colours."""
    from widgets.connections import COLUMNS as CONN
    from widgets.slow_queries import PGSS_COLUMNS, PSA_COLUMNS
    from widgets.table_sizes import COLUMNS as TABLES

    conn = _columns_legend(CONN, CONNECTION_COLUMNS) + [
        Text.assemble("  ", ("bold red", "bold red"), ": blocked, waits on a lock"),
        Text.assemble("  ", ("bold yellow", "bold yellow"), f": idle in transaction for {threshold_s:g} s or more"),
        Text.assemble("  ", ("magenta", "magenta"), ": blocking others (holds a lock they wait on)"),
        Text.assemble("  ", ("reverse", "reverse"), ": tagged (space)"),
    ]
    psa = [(k, lbl, w) for k, lbl, w in PSA_COLUMNS if k not in {c[0] for c in PGSS_COLUMNS}]
    slow = _columns_legend(PGSS_COLUMNS, SLOW_COLUMNS) + [
        Text("  without pg_stat_statements: long-running statements from pg_stat_activity"),
    ] + _columns_legend(psa, SLOW_COLUMNS) + [Text.assemble("  ", ("italic dim", "italic dim"),
                                                            ": query text hidden from this role")]
    tables = _columns_legend(TABLES, TABLE_COLUMNS)
    host = [Text.assemble("  bars: ", ("green", "green"), " below 75 %, ", ("yellow", "yellow"), " from 75 %, ",
                          ("red", "red"), " from 90 %")]
    return [("Checklist", _checklist_legend()), ("Connections", conn), ("Slow queries", slow),
            ("Tables", tables), ("Host", host)]


def _declared(node: DOMNode) -> list[tuple[Binding, bool]]:
    """The bindings ``node``'s classes declare, most derived first: (binding, ours)."""
    out: list[tuple[Binding, bool]] = []
    seen: set[tuple[str, str]] = set()
    for cls in type(node).__mro__:
        for b in cls.__dict__.get("BINDINGS", ()) or ():
            if not isinstance(b, Binding):
                b = Binding(*b)
            if (b.key, b.action) in seen:  # a subclass redeclared it
                continue
            seen.add((b.key, b.action))
            out.append((b, cls.__module__.startswith(OURS)))
    return out


def _allowed(node: DOMNode, b: Binding) -> bool:
    action = b.action.split("(", 1)[0]
    try:
        return node.check_action(action, ()) is not False
    except Exception:
        return True


def key_sections(screen, focused=None) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(keys, description)]): the focus (or ``focused``, the widget the caller means is in
    view) and its ancestors, then the screen and the app, then Textual's own navigation keys."""
    app = screen.app
    focused = focused if focused is not None else screen.focused
    chain = list(focused.ancestors_with_self) if focused is not None else [screen]
    chain = [n for n in chain if n is not app]
    local: list[tuple[str, str]] = []
    navigation: list[tuple[str, str]] = []
    title = None
    taken: set[str] = set()  # binding ids (or key+action) already listed
    nav_keys: set[str] = set()
    local_actions: list[tuple[str, str, tuple]] = []

    def entry(b: Binding) -> tuple[str, str]:
        keys = "/".join(app.get_key_display(Binding(k.strip(), b.action, key_display=b.key_display
                                                     if "," not in b.key else None))
                        for k in b.key.split(","))
        return keys, LONG.get(b.id or "", b.description or b.action)

    for node in chain:
        if node is screen:
            break
        name = type(node).__name__
        for b, ours in _declared(node):
            ident = b.id or f"{b.key}:{b.action}"
            if ident in taken or ident.startswith("modal.") or not _allowed(node, b):
                continue
            taken.add(ident)
            if ours:
                k, desc = entry(b)
                same = next((i for i, (_k, _d, act) in enumerate(local_actions) if act == (node, b.action)), None)
                if same is not None:  # two keys, one action (⏎ and d: the full query): one line
                    local[same] = (f"{local[same][0]}/{k}", local[same][1])
                else:
                    local.append((k, desc))
                    local_actions.append((k, desc, (node, b.action)))
            elif b.description:
                k, desc = entry(b)
                if k not in nav_keys:  # a key a nearer class took already (↑ moves the cursor, not the scroll)
                    nav_keys.add(k)
                    navigation.append((k, desc))
        if title is None and (name in TITLES or any(ours for _b, ours in _declared(node))):
            title = TITLES.get(name, name)
    screen_keys = []
    for b, ours in _declared(screen):
        ident = b.id or f"{b.key}:{b.action}"
        if ours and ident not in taken and not ident.startswith("modal.") and _allowed(screen, b):
            taken.add(ident)
            screen_keys.append(entry(b))
    if screen_keys:
        if local:
            local += screen_keys
        else:
            local = screen_keys
            title = title or TITLES.get(type(screen).__name__, type(screen).__name__)
    if title is None:
        title = TITLES.get(type(screen).__name__, "This screen")
    app_keys = []
    active = screen.active_bindings  # on a modal only q and ? reach the app (MODAL_APP_BINDINGS)
    for b, ours in _declared(app):
        ident = b.id or f"{b.key}:{b.action}"
        if ours and ident not in taken and _allowed(app, b) and (not screen.is_modal or b.key in active):
            app_keys.append(entry(b))
    sections = [(title, local or [("", "no keys of its own: the table scrolls with the arrow keys")]),
                ("Everywhere", app_keys + ([] if screen.is_modal else
                                       [("^p", "the command palette: every action by name")]))]
    if navigation:
        sections.append(("Moving around", navigation))
    return sections


class HelpScreen(ModalScreen[None]):
    """The keys of what is in view, the app's keys, and the legend; Esc or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 100%; max-width: 100; height: 100%; max-height: 40;
        border: round $accent; background: $surface; padding: 0 1;
    }
    HelpScreen .help-title { text-style: bold; color: $accent; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="help.close"),
        Binding("question_mark", "close", "Close", key_display="?", id="help.close_q"),
    ]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]],
                 legend: list[tuple[str, list[Text]]], pane: str | None = None) -> None:
        super().__init__()
        self.sections = sections
        self.legend = legend
        self.pane = pane

    @classmethod
    def for_screen(cls, screen, threshold_s: float = 60.0, focused=None) -> "HelpScreen":
        sections = key_sections(screen, focused)
        legend = legends(threshold_s)
        first = sections[0][0].split(" (")[0]
        # the legend of the pane in view first
        legend.sort(key=lambda s: s[0] != first)
        return cls(sections, legend, pane=first)

    def text(self) -> Text:
        t = Text()
        keys_first = [s for s in self.sections if s[0] != "Moving around"]
        moving = [s for s in self.sections if s[0] == "Moving around"]
        self._keys_text(t, keys_first)
        t.append("Legend\n", style="bold underline")
        for title, lines in self.legend:
            t.append(f"{title}\n", style="bold")
            for line in lines:
                t.append_text(line)
                t.append("\n")
        t.append("\n")
        self._keys_text(t, moving)
        t.append("Esc or ? closes this help; ↑ ↓ PgUp PgDn scroll it.", style="dim")
        return t

    @staticmethod
    def _keys_text(t: Text, sections) -> None:
        for title, keys in sections:
            t.append(f"{title}\n", style="bold underline")
            width = max((len(k) for k, _ in keys), default=0)
            for k, desc in keys:
                t.append(f"  {k:<{width}}", style="bold")
                t.append(f"  {desc}\n")
            t.append("\n")

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-scroll"):
            yield Static(self.text(), id="help-text")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
