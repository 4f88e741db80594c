"""Preflight in one go, drawn: the combined plan (space leaves a step out, Enter runs the chosen ones,
Esc aborts) and the panel that follows the run step by step (c cancels, t ends a lock blocker and
retries the step, s goes on without it). textual + tui.fixes.preflight's dataclasses only; public API."""
from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from tui.model.fixes import CombinedPlan, Step, StepOutcome, blocker_line
from widgets.fix_plan import render_plan
from widgets.fix_progress import progress_text
from widgets.footer import MODAL_APP_BINDINGS, KeyFooter

MARK = {"ok": ("✔", "green"), "failed": ("✘", "red"), "cancelled": ("■", "yellow"), "skipped": ("–", "dim"),
        "refused": ("✘", "red"), "left out": ("·", "dim"), "running": ("▶", "bold yellow"),
        "waiting": ("…", "dim"), "blocked": ("!", "bold red")}


def step_prompt(step: Step, chosen: bool) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    if not step.runnable:
        t.append("[ ] ", style="dim")
    else:
        t.append("[x] " if chosen else "[ ] ", style="bold" if chosen else "dim")
    t.append(f"{step.n}. {step.item_id}", style="bold" if chosen else "dim")
    t.append(f"  {step.fix_name}", style="cyan" if chosen else "dim")
    if not step.runnable or step.nothing_to_do:
        t.append(f"  {step.status_line}", style="red" if not step.runnable else "green")
    elif step.plan is not None and step.plan.estimate:
        t.append(f"  {step.plan.estimate}", style="dim")
    if step.depends_on:
        t.append(f"  (after {', '.join(map(str, step.depends_on))})", style="dim")
    return t


class PreflightPlanScreen(ModalScreen["set[int] | None"]):
    """Returns the numbers of the steps to run (Enter), or None (Esc). Space leaves a step out or puts it
    back; the highlighted step's whole plan (SQL or diff, locks, estimate, preconditions) shows below."""

    DEFAULT_CSS = """
    PreflightPlanScreen { align: center middle; }
    PreflightPlanScreen > Vertical {
        width: 98%; max-width: 140; height: 95%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    PreflightPlanScreen #preflight-head { height: auto; }
    PreflightPlanScreen #preflight-steps { height: auto; max-height: 12; border: none; padding: 0;
                                           text-wrap: nowrap; text-overflow: ellipsis; }
    PreflightPlanScreen #preflight-detail { height: 1fr; border-top: solid $primary-darken-2; }
    PreflightPlanScreen #preflight-status { height: auto; }
    """

    BINDINGS = [
        Binding("enter", "run", "Run chosen", id="preflight.run", priority=True),
        Binding("space", "toggle", "Leave out/in", id="preflight.toggle", priority=True),
        Binding("escape", "abort", "Abort", id="preflight.abort"),
        *MODAL_APP_BINDINGS,
    ]

    def __init__(self, combined: CombinedPlan, *, read_only: bool = False) -> None:
        super().__init__()
        self.combined = combined
        self.read_only = read_only
        self.chosen: set[int] = {s.n for s in combined.runnable if not s.nothing_to_do}

    def compose(self) -> ComposeResult:
        head = Text()
        head.append(f"Preflight: {len(self.combined.steps)} step(s) for the failing items of "
                    f"{self.combined.checklist}\n", style="bold")
        head.append(f"{self.combined.target} · in this order; a failed step skips only the steps after it on "
                    f"the same object; everything is verified again at the end", style="dim")
        if self.combined.without_fix:
            head.append(f"\n{len(self.combined.without_fix)} failing item(s) have no automatic fix: "
                        + ", ".join(i for i, _ in self.combined.without_fix), style="yellow")
        with Vertical():
            yield Static(head, id="preflight-head")
            yield OptionList(*[Option(step_prompt(s, s.n in self.chosen), id=str(s.n)) for s in self.combined.steps],
                             id="preflight-steps")
            with VerticalScroll(id="preflight-detail"):
                yield Static("", id="preflight-plan")
            yield Static(self._status(), id="preflight-status")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        steps = self.query_one(OptionList)
        steps.focus()
        if self.combined.steps:
            steps.highlighted = 0
            self._show(self.combined.steps[0])

    def _status(self) -> Text:
        t = Text()
        if self.read_only:
            t.append("read-only: started with --read-only, so no step will run (Esc closes)", style="bold red")
            return t
        n = len(self.chosen)
        t.append(f"Enter runs {n} step(s)" if n else "no step chosen", style="bold")
        t.append(" · space leaves the highlighted step out (or back in) · Esc aborts: nothing has been changed yet",
                 style="dim")
        return t

    def _show(self, step: Step) -> None:
        body = Text()
        if step.plan is not None:
            body.append_text(render_plan(step.plan, self.read_only))
        else:
            body.append(f"{step.item_id}: {step.status_line}\n", style="red")
        self.query_one("#preflight-plan", Static).update(body)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if event.option.id is not None:
            self._show(self.combined.step(int(event.option.id)))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()  # Enter is the screen's "run" (a priority binding); a click only highlights

    def action_toggle(self) -> None:
        steps = self.query_one(OptionList)
        if steps.highlighted is None:
            return
        step = self.combined.steps[steps.highlighted]
        if not step.runnable:
            self.app.bell()
            return
        self.chosen ^= {step.n}
        steps.replace_option_prompt_at_index(steps.highlighted, step_prompt(step, step.n in self.chosen))
        self.query_one("#preflight-status", Static).update(self._status())

    def action_run(self) -> None:
        if self.read_only or not self.chosen:
            self.app.bell()
            return
        self.dismiss(set(self.chosen))

    def action_abort(self) -> None:
        self.dismiss(None)


RUNNING_HINT = "c cancels the running step and the rest; the monitor keeps refreshing"


class PreflightPanel(Vertical, can_focus=True):
    """The run, step by step: one line a step with its mark, the running step's progress, and the result
    of each. When a step could not get its lock, the panel names the root holder and waits for the
    operator: ``t`` ends it (cancel for an active query, terminate for idle in transaction; the controller
    asks the second confirmation) and retries the step, ``s`` goes on without it."""

    DEFAULT_CSS = """
    PreflightPanel {
        dock: bottom; height: auto; max-height: 70%; border: round $warning; padding: 0 1; background: $surface;
    }
    PreflightPanel:focus { border: round $accent; }
    PreflightPanel.-done { border: round $success; }
    PreflightPanel.-failed { border: round $error; }
    PreflightPanel ProgressBar { width: 1fr; }
    PreflightPanel ProgressBar Bar { width: 1fr; }
    PreflightPanel #preflight-lines, PreflightPanel #preflight-phase, PreflightPanel #preflight-hint { height: auto; }
    PreflightPanel #preflight-lines { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    BINDINGS = [
        Binding("c", "cancel", "Cancel", id="preflight_panel.cancel"),
        Binding("t", "end_blocker", "End blocker", id="preflight_panel.end_blocker"),
        Binding("s", "skip_blocked", "Skip step", id="preflight_panel.skip"),
        Binding("escape", "close", "Close", id="preflight_panel.close"),
    ]

    def __init__(self, combined: CombinedPlan, chosen: set[int], *, on_cancel=None, on_close=None,
                 id: str | None = "preflight-panel") -> None:
        super().__init__(id=id)
        self.on_close = on_close
        self.combined = combined
        self.status = {s.n: ("waiting" if s.n in chosen else "left out") for s in combined.steps}
        self.summaries: dict[int, str] = {}
        self.on_cancel = on_cancel
        self.running = True
        self.blocked: StepOutcome | None = None
        self._decision: asyncio.Future | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._lines(), id="preflight-lines")
        yield ProgressBar(total=len(self.combined.steps), show_eta=False, id="preflight-bar")
        yield Static("", id="preflight-phase")
        yield Static(Text(RUNNING_HINT, style="dim"), id="preflight-hint")

    def _lines(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        for s in self.combined.steps:
            mark, style = MARK.get(self.status[s.n], ("?", ""))
            t.append(f"{mark} ", style=style)
            t.append(f"{s.n}. {s.item_id} ({s.fix_name})", style="bold" if self.status[s.n] == "running" else "")
            if s.n in self.summaries:
                t.append(f"  {self.summaries[s.n]}", style="dim")
            t.append("\n")
        t.rstrip()
        return t

    def _redraw(self) -> None:
        self.query_one("#preflight-lines", Static).update(self._lines())
        done = sum(1 for v in self.status.values() if v not in ("waiting", "running", "blocked"))
        self.query_one(ProgressBar).update(progress=done)

    def hint(self, text: str, style: str = "dim") -> None:
        self.query_one("#preflight-hint", Static).update(Text(text, style=style))

    # -- driven by the controller -------------------------------------------------------------
    def step_started(self, step: Step) -> None:
        self.status[step.n] = "running"
        self.query_one("#preflight-phase", Static).update(Text(f"step {step.n}: {step.item_id}", style="bold"))
        self._redraw()

    def update_progress(self, p) -> None:
        self.query_one("#preflight-phase", Static).update(progress_text(p))

    def step_done(self, outcome: StepOutcome) -> None:
        self.status[outcome.step.n] = outcome.status
        self.summaries[outcome.step.n] = (outcome.result.summary if outcome.result is not None else outcome.reason)
        self._redraw()

    async def wait_blocked(self, outcome: StepOutcome, blocker: dict) -> str:
        """Show the root holder and wait for t (returns "end"), s (returns "skip") or a cancel ("skip")."""
        self.blocked = outcome
        self.status[outcome.step.n] = "blocked"
        self._redraw()
        action = blocker.get("action") or "terminate"
        t = Text()
        t.append(f"step {outcome.step.n} could not get its lock: ", style="bold red")
        t.append(blocker_line(blocker))
        self.query_one("#preflight-phase", Static).update(t)
        self.hint(f"t {action}s pid {blocker.get('pid')} (asks first) and retries step {outcome.step.n} · "
                  f"s goes on without it", style="bold")
        self._decision = asyncio.get_running_loop().create_future()
        self.focus()
        try:
            return await self._decision
        finally:
            self._decision = None
            self.blocked = None
            self.hint(RUNNING_HINT)

    def finished(self, text: Text, ok: bool) -> None:
        self.running = False
        self.add_class("-done" if ok else "-failed")
        self.query_one(ProgressBar).update(total=len(self.combined.steps), progress=len(self.combined.steps))
        self.query_one("#preflight-phase", Static).update(text)
        self.hint("esc closes this panel")

    # -- keys -----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("end_blocker", "skip_blocked"):
            return self._decision is not None
        if action == "cancel":
            return self.running
        if action == "close":
            return not self.running
        return True

    def _decide(self, value: str) -> None:
        if self._decision is not None and not self._decision.done():
            self._decision.set_result(value)

    def action_end_blocker(self) -> None:
        self._decide("end")

    def action_skip_blocked(self) -> None:
        self._decide("skip")

    def action_cancel(self) -> None:
        if not self.running:
            return
        self.hint("cancelling: cleaning up…", style="bold yellow")
        self._decide("skip")
        if self.on_cancel is not None:
            self.on_cancel()

    def action_close(self) -> None:
        if not self.running:
            self.remove()
            if self.on_close is not None:
                self.on_close()


class SignoffScreen(ModalScreen["str | None"]):
    """Where to write the sign-off report: the state directory's default path, or one the operator types.
    Enter writes (returns the path), Esc aborts (None)."""

    DEFAULT_CSS = """
    SignoffScreen { align: center middle; }
    SignoffScreen > Vertical {
        width: 95%; max-width: 120; height: auto; border: thick $accent; background: $surface; padding: 0 1;
    }
    SignoffScreen Input { margin: 1 0; }
    """

    BINDINGS = [Binding("escape", "abort", "Abort", id="signoff.abort"), *MODAL_APP_BINDINGS]

    def __init__(self, default_path: str, signer: str) -> None:
        super().__init__()
        self.default_path = default_path
        self.signer = signer

    def compose(self) -> ComposeResult:
        from textual.widgets import Input

        t = Text()
        t.append("Write the sign-off report\n", style="bold")
        t.append(f"Every item is verified again now; the report names you ({self.signer}) and the time, the "
                 "checklist, every item with its evidence, ticks and notes, and the fixes that ran.", style="dim")
        with Vertical():
            yield Static(t)
            yield Input(value=self.default_path, id="signoff-path")
            yield Static(Text("Enter writes it there · Esc aborts", style="bold"))
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        from textual.widgets import Input

        self.query_one(Input).focus()

    def on_input_submitted(self, event) -> None:
        event.stop()
        value = (event.value or "").strip()
        if not value:
            self.app.bell()
            return
        self.dismiss(value)

    def action_abort(self) -> None:
        self.dismiss(None)
