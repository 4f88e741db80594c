"""`G` while replaying: go to a recorded time. Public Textual API only (ModalScreen, Input).

Takes HH:MM or HH:MM:SS (that day of the recording, local time) or an ISO date and time; a time
outside the recording goes to its nearest end (the Replayer decides); a text that is no time
says so under the field and stays open."""
from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


def parse_when(text: str, day: datetime) -> datetime:
    """``HH:MM[:SS]`` on ``day`` (an aware datetime, local time used), or ISO; ValueError with the reason."""
    text = text.strip()
    if not text:
        raise ValueError("type a time: HH:MM, HH:MM:SS or YYYY-MM-DD HH:MM")
    local = day.astimezone()
    for fmt in ("%H:%M:%S", "%H:%M"):
        try:
            t = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return local.replace(hour=t.hour, minute=t.minute, second=t.second, microsecond=0)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time (HH:MM, HH:MM:SS or YYYY-MM-DD HH:MM)") from None
    return dt if dt.tzinfo is not None else dt.astimezone()  # a naive time is local


class GotoTimeScreen(ModalScreen[datetime | None]):
    DEFAULT_CSS = """
    GotoTimeScreen { align: center middle; }
    GotoTimeScreen > Vertical { width: 60; height: auto; border: round $accent; background: $surface; padding: 0 1; }
    GotoTimeScreen #goto-error { color: $error; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="goto.cancel")]

    def __init__(self, position: datetime, first: datetime, last: datetime) -> None:
        super().__init__()
        self.position, self.first, self.last = position, first, last

    def compose(self) -> ComposeResult:
        fmt = "%Y-%m-%d %H:%M:%S"
        with Vertical():
            yield Static(f"Go to a time in the recording: {self.first.astimezone():{fmt}} – "
                         f"{self.last.astimezone():%H:%M:%S}")
            yield Input(value=self.position.astimezone().strftime("%H:%M:%S"), id="goto-input")
            yield Static("", id="goto-error")
            yield Static("Enter goes there; Esc cancels.", classes="dim")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            when = parse_when(event.value, self.position)
        except ValueError as e:
            self.query_one("#goto-error", Static).update(str(e))
            return
        self.dismiss(when)

    def action_cancel(self) -> None:
        self.dismiss(None)

