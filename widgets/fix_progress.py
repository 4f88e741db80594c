"""A panel showing a running fix: a progress bar, the phase, blocks and tuples; `c` cancels it.
textual + tui.model only."""
from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import ProgressBar, Static

from tui.model.fixes import FixResult, Progress


def progress_text(p: Progress) -> Text:
    t = Text()
    if p.steps > 1:
        t.append(f"[{p.step}/{p.steps}] ", style="bold")
    t.append(p.phase, style="bold")
    parts = []
    if p.blocks_total:
        parts.append(f"blocks {p.blocks_done or 0:,}/{p.blocks_total:,}")
    if p.tuples_total:
        parts.append(f"tuples {p.tuples_done or 0:,}/{p.tuples_total:,}")
    detail = p.detail or " · ".join(parts)
    if detail:
        t.append("  " + detail, style="dim")
    return t


class FixProgressPanel(Vertical, can_focus=True):
    """``show_running(title)``, ``update_progress(Progress)``, ``show_result(FixResult)``.
    `c` asks to cancel: posts :class:`FixProgressPanel.CancelRequested` (and calls ``on_cancel`` if given)."""

    DEFAULT_CSS = """
    FixProgressPanel {
        dock: bottom; height: auto; border: round $warning; padding: 0 1; background: $surface;
    }
    FixProgressPanel:focus { border: round $accent; }
    FixProgressPanel.-done { border: round $success; }
    FixProgressPanel.-failed { border: round $error; }
    FixProgressPanel ProgressBar { width: 1fr; }
    FixProgressPanel ProgressBar Bar { width: 1fr; }
    FixProgressPanel #fix-progress-title, FixProgressPanel #fix-progress-phase,
    FixProgressPanel #fix-progress-hint { height: auto; }
    """

    BINDINGS = [
        Binding("c", "cancel", "Cancel fix", id="fix_progress.cancel"),
        Binding("escape", "close", "Close", show=False, id="fix_progress.close"),
    ]

    class CancelRequested(Message):
        """`c` on the panel: cancel the running fix."""

    def __init__(self, title: str = "", *, on_cancel: Callable[[], None] | None = None,
                 id: str | None = "fix-progress") -> None:
        super().__init__(id=id)
        self.title = title
        self.on_cancel = on_cancel
        self.running = True
        self.cancel_asked = False
        self.last: Progress | None = None
        self.result: FixResult | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(self.title, style="bold"), id="fix-progress-title")
        yield ProgressBar(total=None, show_eta=False, id="fix-progress-bar")
        yield Static("", id="fix-progress-phase")
        yield Static(Text("c cancels the fix (pg_cancel_backend on its own session); the monitor keeps refreshing",
                          style="dim"), id="fix-progress-hint")

    def show_running(self, title: str) -> None:
        self.title, self.running, self.cancel_asked, self.result = title, True, False, None
        self.remove_class("-done", "-failed")
        self.query_one("#fix-progress-title", Static).update(Text(title, style="bold"))
        bar = self.query_one(ProgressBar)
        bar.update(total=None, progress=0)

    def update_progress(self, p: Progress) -> None:
        self.last = p
        bar = self.query_one(ProgressBar)
        if p.fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=max(0.0, min(1.0, p.fraction)) * 100)
        self.query_one("#fix-progress-phase", Static).update(progress_text(p))

    def show_result(self, result: FixResult) -> None:
        self.running, self.result = False, result
        self.add_class("-done" if result.ok else "-failed")
        bar = self.query_one(ProgressBar)
        if result.ok:
            bar.update(total=100, progress=100)
        elif bar.total is None:
            bar.update(total=100, progress=0)
        t = Text()
        t.append("✔ " if result.ok else ("■ " if result.cancelled else "✘ "),
                 style="green" if result.ok else "yellow" if result.cancelled else "red")
        t.append(result.summary)
        if result.left_behind:
            t.append("\nLeft: " + "; ".join(result.left_behind), style="yellow")
        self.query_one("#fix-progress-phase", Static).update(t)
        self.query_one("#fix-progress-hint", Static).update(Text("esc closes this panel", style="dim"))

    def action_cancel(self) -> None:
        if not self.running or self.cancel_asked:
            return
        self.cancel_asked = True
        self.query_one("#fix-progress-hint", Static).update(Text("cancelling: cleaning up…", style="bold yellow"))
        self.post_message(self.CancelRequested())
        if self.on_cancel is not None:
            self.on_cancel()

    def action_close(self) -> None:
        if not self.running:
            self.remove()
