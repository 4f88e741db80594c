"""Session detail (Enter on a session): the whole query, wrapped and scrollable; application,
client, backend start; transaction, query and state ages and the wait event; the locks it holds
and waits for, who blocks it and whom it blocks. The locks are not in the poll: the screen asks
for them (LocksRequested, up to the app, which runs a short query by pid) and draws what comes
back (show_locks). Cancel and terminate go up as SessionsSignalRequested, like the pane's."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.model import format as fmt
from tui.model.snapshot import Session, SessionLocks


def _pids(pids) -> str:
    return ", ".join(map(str, pids)) if pids else "nobody"


class SessionDetailScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    SessionDetailScreen { align: center middle; }
    SessionDetailScreen > VerticalScroll {
        width: 95%; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    SessionDetailScreen #detail-query { margin: 1 0; }
    """
    BINDINGS = [
        Binding("escape,q", "close", "Close", id="session_detail.close"),
        Binding("c", "signal('cancel')", "Cancel query", id="session_detail.cancel"),
        Binding("K", "signal('terminate')", "Terminate", id="session_detail.terminate"),
        Binding("r", "reload_locks", "Locks again", id="session_detail.reload"),
    ]

    class LocksRequested(Message):
        """The detail wants the session's locks: the app queries pg_locks by pid and calls show_locks."""

        def __init__(self, screen: "SessionDetailScreen", pid: int) -> None:
            super().__init__()
            self.detail = screen
            self.pid = pid

        @property
        def control(self) -> "SessionDetailScreen":
            return self.detail

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.locks: SessionLocks | None = None

    def compose(self) -> ComposeResult:
        s = self.session
        head = Text()
        head.append(f"session {s.pid}", style="bold")
        head.append(f"  user {s.user or '?'}  db {s.database or '?'}  {s.state or '(hidden)'}")
        facts = Text()
        facts.append(f"application  {s.application_name or '(none)'}\n")
        facts.append(f"client       {s.client_addr or 'local socket'}\n")
        facts.append(f"backend      started {fmt.duration(s.backend_age_s)} ago\n"
                     if s.backend_age_s is not None else "backend      start unknown\n")
        facts.append(f"transaction  {fmt.duration(s.xact_age_s) + ' old' if s.xact_age_s is not None else 'none open'}\n")
        facts.append(f"query        started {fmt.duration(s.query_age_s)} ago\n"
                     if s.query_age_s is not None else "query        none yet\n")
        facts.append(f"state        {s.state or '(hidden)'} for {fmt.duration(s.state_age_s)}\n")
        wait = f"{s.wait_event_type}: {s.wait_event}" if s.wait_event_type else "not waiting"
        facts.append(f"wait event   {wait}", style="bold red" if s.wait_event_type == "Lock" else "")
        with VerticalScroll(id="detail-body"):
            yield Static(head, id="detail-head")
            yield Static(facts, id="detail-facts")
            yield Static(Text(s.query or "(no query)", style="italic dim" if s.query_hidden else "cyan"),
                         id="detail-query")
            yield Static(Text("locks: asking pg_locks…", style="dim"), id="detail-locks")
            yield Static(Text("c cancel query · K terminate · r locks again · esc closes", style="dim"),
                         id="detail-keys")

    def on_mount(self) -> None:
        self.query_one("#detail-body", VerticalScroll).focus()
        self.action_reload_locks()

    def action_reload_locks(self) -> None:
        self.post_message(self.LocksRequested(self, self.session.pid))

    def show_locks(self, locks: SessionLocks) -> None:
        """Draw what pg_locks said (the app calls it with the answer to LocksRequested)."""
        self.locks = locks
        t = Text()
        if locks.error:
            t.append(f"locks unknown: {locks.error}", style="yellow")
        elif not locks.exists:
            t.append(f"session {locks.pid} has ended", style="bold yellow")
        else:
            t.append("blocked by   ", style="bold")
            t.append(_pids(locks.blocked_by) + "\n", style="bold red" if locks.blocked_by else "")
            t.append("blocks       ", style="bold")
            t.append(_pids(locks.blocking) + "\n", style="bold magenta" if locks.blocking else "")
            t.append(f"waits for    {len(locks.waiting)} lock{'s' if len(locks.waiting) != 1 else ''}\n", style="bold")
            for lk in locks.waiting:
                t.append(f"  {lk.mode} on {lk.target}\n", style="red")
            t.append(f"holds        {len(locks.held)} lock{'s' if len(locks.held) != 1 else ''}\n", style="bold")
            for lk in locks.held:
                t.append(f"  {lk.mode} on {lk.target}\n")
        self.query_one("#detail-locks", Static).update(t)

    def action_signal(self, action: str) -> None:
        from widgets.connections import SessionsSignalRequested  # the pane's message (it imports this module)

        self.dismiss(None)
        self.app.post_message(SessionsSignalRequested((self.session,), action))

    def action_close(self) -> None:
        self.dismiss(None)
