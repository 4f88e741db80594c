"""`a`: the alerts raised and not yet cleared, the recent ones with their times, and the thresholds
in force with where each comes from. Public Textual API only (ModalScreen, VerticalScroll, Static).

`c` confirms the thresholds: the checklist's "Alert thresholds defined" reads that confirmation
(the App stores it with the database's checklist state)."""
from __future__ import annotations

from datetime import datetime, timezone

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.alerts import NAMES, OPS, SPECS, fmt_value
from widgets.footer import MODAL_APP_BINDINGS


def _clock(t: datetime) -> str:
    return t.astimezone().strftime("%H:%M:%S")


def _lasted(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def alerts_text(active, log, thresholds, now: datetime | None = None) -> Text:
    """The list: raised first (oldest first), then the recent raised/cleared lines, newest first."""
    now = now or datetime.now(timezone.utc)
    t = Text()
    t.append(f"Raised, not cleared ({len(active)})\n", style="bold underline")
    if not active:
        t.append("  none: every figure is within its threshold\n", style="green")
    for a in sorted(active, key=lambda a: a.started_at):
        t.append("  ▲ ", style="bold red")
        t.append(f"{a.name}", style="bold")
        t.append(f"  since {_clock(a.started_at)} ({_lasted((now - a.started_at).total_seconds())})\n")
        t.append(f"    {a.message}\n")
    t.append("\nRecent (newest first)\n", style="bold underline")
    if not log:
        t.append("  nothing raised since pgpreflight started\n", style="dim")
    for a in list(reversed(log))[:50]:
        if a.raised:
            t.append(f"  {_clock(a.started_at)} ", style="dim")
            t.append("ALERT   ", style="bold red")
        else:
            t.append(f"  {_clock(a.cleared_at)} ", style="dim")
            t.append("cleared ", style="green")
        t.append(f"{a.name}: {a.message}\n")
    if thresholds is not None:
        t.append("\nThresholds in force\n", style="bold underline")
        for name in NAMES:
            spec = SPECS[name]
            t.append(f"  {name:<22}", style="bold")
            t.append(f" alert when {OPS[spec.breach]} {fmt_value(name, thresholds[name]):<14}")
            t.append(f" {thresholds.source(name)}\n", style="dim")
    t.append("\nc confirms these thresholds; Esc or a closes.", style="dim")
    return t


class AlertsScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    AlertsScreen { align: center bottom; }
    AlertsScreen > VerticalScroll {
        /* the header's two lines (PAUSED, DISCONNECTED, STALE...) stay visible above it at 80x24 */
        width: 100%; max-width: 110; height: auto; max-height: 21; margin-bottom: 1;
        border: round $error; background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="alerts.close"),
        Binding("a", "close", "Close", id="alerts.close_a"),
        Binding("c", "confirm", "Confirm thresholds", id="alerts.confirm"),
        *MODAL_APP_BINDINGS,
    ]

    class ThresholdsConfirmed(Message):
        """The user confirmed the thresholds in force (key c)."""

        def __init__(self, thresholds) -> None:
            super().__init__()
            self.thresholds = thresholds

    def __init__(self, active, log, thresholds=None) -> None:
        super().__init__()
        self.raised, self.recent, self.thresholds = tuple(active), tuple(log), thresholds

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="alerts-scroll"):
            yield Static(alerts_text(self.raised, self.recent, self.thresholds), id="alerts-text")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def show(self, active, log) -> None:
        self.raised, self.recent = tuple(active), tuple(log)
        self.query_one("#alerts-text", Static).update(alerts_text(self.raised, self.recent, self.thresholds))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_confirm(self) -> None:
        if self.thresholds is not None:
            self.app.post_message(self.ThresholdsConfirmed(self.thresholds))
