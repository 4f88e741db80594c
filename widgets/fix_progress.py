"""A panel showing a running fix: a progress bar, the phase, blocks and tuples; `c` cancels it. When the fix
could not take its lock, the result names the root holder and `t` asks to end it (the screen confirms twice
where terminate needs it, audits the signal and runs the fix again). textual + tui.model only."""
from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import ProgressBar, Static

from tui.model.fixes import FixResult, Progress, blocker_line


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
        Binding("t", "end_blocker", "End lock holder", id="fix_progress.end_blocker"),
        Binding("escape", "close", "Close", show=False, id="fix_progress.close"),
    ]

    class CancelRequested(Message):
        """`c` on the panel: cancel the running fix."""

    class EndBlockerRequested(Message):
        """`t` on a result that names a root lock holder: end it (after confirmation), then retry the fix."""

        def __init__(self, blocker: dict) -> None:
            super().__init__()
            self.blocker = blocker

    def __init__(self, title: str = "", *, on_cancel: Callable[[], None] | None = None,
                 on_end_blocker: Callable[[dict], None] | None = None,
                 id: str | None = "fix-progress") -> None:
        super().__init__(id=id)
        self.title = title
        self.on_cancel = on_cancel
        self.on_end_blocker = on_end_blocker
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
        self.query_one("#fix-progress-hint", Static).update(
            Text("c cancels the fix (pg_cancel_backend on its own session); the monitor keeps refreshing", style="dim"))
        bar = self.query_one(ProgressBar)
        bar.update(total=None, progress=0)
        self.refresh_bindings()

    @property
    def blocker(self) -> dict | None:
        """The root lock holder the last result names (None while running, or when there is none)."""
        return None if self.running or self.result is None else self.result.blocker

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "end_blocker":  # only on a result that names a holder: hidden from the footer otherwise
            return self.blocker is not None
        return True

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
        b = result.blocker
        if b:
            t.append("\nRoot holder: " + blocker_line(b), style="bold")
        self.query_one("#fix-progress-phase", Static).update(t)
        hint = Text()
        if b:
            verb = "cancel its query" if b.get("action") == "cancel" else "terminate it (idle in transaction)"
            hint.append(f"t: {verb}, after confirming, then run the fix again", style="bold yellow")
            hint.append(f" (or run {result.blocker_call()} yourself) · ", style="dim")
        hint.append("esc closes this panel", style="dim")
        self.query_one("#fix-progress-hint", Static).update(hint)
        self.refresh_bindings()

    def action_cancel(self) -> None:
        if not self.running or self.cancel_asked:
            return
        self.cancel_asked = True
        self.query_one("#fix-progress-hint", Static).update(Text("cancelling: cleaning up…", style="bold yellow"))
        self.post_message(self.CancelRequested())
        if self.on_cancel is not None:
            self.on_cancel()

    def action_end_blocker(self) -> None:
        b = self.blocker
        if b is None:
            return
        self.post_message(self.EndBlockerRequested(dict(b)))
        if self.on_end_blocker is not None:
            self.on_end_blocker(dict(b))

    def action_close(self) -> None:
        if not self.running:
            self.remove()
