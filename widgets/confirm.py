"""Modal screens: confirm a cancel/terminate (naming pid, user and query; cancel offered
first) and show a statement's full text."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.model.snapshot import Session, Statement
from widgets.footer import MODAL_APP_BINDINGS


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class ConfirmSignalScreen(ModalScreen[str | None]):
    """Returns "cancel", "terminate" or None. Cancel is offered (and focused) first."""

    DEFAULT_CSS = """
    ConfirmSignalScreen { align: center middle; }
    ConfirmSignalScreen > Vertical {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ConfirmSignalScreen #confirm-sessions { height: auto; max-height: 12; }
    ConfirmSignalScreen Horizontal { height: auto; align-horizontal: center; }
    ConfirmSignalScreen Button { margin: 0 1; min-width: 10; }
    """

    BINDINGS = [
        *MODAL_APP_BINDINGS,
        Binding("escape,n", "dismiss_none", "Back", id="confirm.back"),
        Binding("c", "choose('cancel')", "Cancel query", id="confirm.cancel"),
        Binding("t", "choose('terminate')", "Terminate", id="confirm.terminate"),
    ]

    def __init__(self, sessions: tuple[Session, ...], action: str, second: bool = False) -> None:
        """``second``: the second confirmation that terminate needs (only Terminate and Back)."""
        super().__init__()
        self.sessions = sessions
        self.requested = action
        self.second = second

    def compose(self) -> ComposeResult:
        n = len(self.sessions)
        plural = "s" if n != 1 else ""
        with Vertical():
            title = Text(style="bold")
            if self.second:
                title.append(f"Really terminate {n} session{plural}?  ", style="bold red")
                title.append("their connections close and open transactions roll back", style="dim")
            else:
                title.append(f"Stop {n} session{plural}?  ")
                title.append("cancel stops the running query; terminate closes the connection", style="dim")
            yield Static(title)
            body = Text()
            for s in self.sessions:
                body.append(f"pid {s.pid}", style="bold")
                body.append(f"  user {s.user or '?'}  db {s.database or '?'}  {s.state or '(hidden)'}\n")
                body.append(f"  {_short(s.query or '(no query)', 300)}\n", style="italic")
            with VerticalScroll(id="confirm-sessions"):
                yield Static(body)
            with Horizontal():
                if not self.second:
                    yield Button("Cancel query (c)", id="do-cancel", variant="warning")
                yield Button("Terminate (t)", id="do-terminate", variant="error")
                yield Button("Back (esc)", id="do-back")

    def on_mount(self) -> None:
        # the second confirmation starts on Back: Enter twice must not terminate
        focus = "#do-back" if self.second else "#do-cancel" if self.requested == "cancel" else "#do-terminate"
        self.query_one(focus, Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        choice = {"do-cancel": "cancel", "do-terminate": "terminate"}.get(event.button.id or "")
        self.dismiss(choice)

    def action_choose(self, choice: str) -> None:
        if self.second and choice != "terminate":
            return
        self.dismiss(choice)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class QueryDetailScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    QueryDetailScreen { align: center middle; }
    QueryDetailScreen > VerticalScroll {
        width: 95%; height: 85%; border: thick $accent; background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,q,enter", "close", "Close", id="detail.close")]

    def __init__(self, statement: Statement) -> None:
        super().__init__()
        self.statement = statement

    def compose(self) -> ComposeResult:
        s = self.statement
        head = Text(style="bold")
        if s.pid is not None:
            head.append(f"pid {s.pid}  user {s.user or '?'}  db {s.database or '?'}  running {s.age_s or 0:.1f} s")
        else:
            head.append(f"queryid {s.queryid or '(hidden)'}  db {s.database or '?'}  user {s.user or '?'}\n")
            head.append(f"calls {s.calls:,}  rows {s.rows:,}  mean {s.mean_ms:.2f} ms  total {s.total_ms:,.1f} ms",
                        style="")
        with VerticalScroll():
            yield Static(head)
            yield Static(Text(s.query, style="cyan"), id="detail-query")
            yield Static(Text("esc closes", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
