"""The plan of a fix, shown before anything runs (Enter runs it, Esc aborts), and the follow-up choice a
failed fix leaves (drop the INVALID index; drop or keep a NOT VALID constraint). textual + tui.model only."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.model.fixes import Choice, FixResult, Plan
from widgets.footer import MODAL_APP_BINDINGS, KeyFooter


def render_plan(plan: Plan, read_only: bool = False) -> Text:
    t = Text()
    t.append(plan.title + "\n", style="bold")
    t.append(f"{plan.fix}" + (f" for {plan.item_id}" if plan.item_id else "") + f" · {plan.target}\n", style="dim")
    if plan.nothing_to_do:
        t.append("\nNothing to do.\n", style="bold green")
    if plan.statements:
        t.append("\nSQL, in order\n", style="bold underline")
        for s in plan.statements:
            t.append(s + "\n", style="cyan")
    if plan.commands:
        t.append("\nCommands\n", style="bold underline")
        for c in plan.commands:
            t.append(c + "\n", style="cyan")
    if plan.locks:
        t.append("\nRisk: locks\n", style="bold underline")
        for x in plan.locks:
            t.append(f"• {x}\n")
    if plan.estimate:
        t.append("\nRisk: duration\n", style="bold underline")
        t.append(plan.estimate + "\n")
    if plan.preconditions:
        t.append("\nPreconditions\n", style="bold underline")
        for p in plan.preconditions:
            if p.warn and not p.ok:  # a warning: drawn, never blocks the run
                t.append("!! ", style="bold yellow")
                t.append(p.name + " (warn)", style="bold")
                t.append(f": {p.detail}\n" if p.detail else "\n", style="yellow")
                continue
            t.append("✔ " if p.ok else "✘ ", style="green" if p.ok else "bold red")
            t.append(p.name, style="bold")
            t.append(f": {p.detail}\n" if p.detail else "\n", style="" if p.ok else "red")
    for n in plan.notes:
        t.append(f"\nNote: {n}\n", style="yellow")
    return t


def plan_refusal(plan: Plan, read_only: bool) -> str:
    """Why Enter will not run this plan ("" when it will)."""
    if read_only and plan.writes:
        return "read-only: started with --read-only, so this fix will not run (Esc closes)"
    if plan.blocked:
        return "cannot run: " + "; ".join(f"{p.name}: {p.detail}" for p in plan.blockers)
    if plan.nothing_to_do:
        return "nothing to do (Esc closes)"
    return ""


class FixPlanScreen(ModalScreen[bool]):
    """Returns True when the operator confirmed (Enter, twice for a plan that needs two), else False."""

    DEFAULT_CSS = """
    FixPlanScreen { align: center middle; }
    FixPlanScreen > Vertical {
        width: 95%; max-width: 130; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    FixPlanScreen #plan-body { height: auto; max-height: 30; }
    FixPlanScreen.-short > Vertical { height: 90%; }
    FixPlanScreen.-short #plan-body { height: 1fr; max-height: 100%; }
    FixPlanScreen #plan-status { height: auto; margin-top: 1; }
    FixPlanScreen Horizontal { height: auto; align-horizontal: center; }
    FixPlanScreen Button { margin: 0 1; min-width: 12; }
    """

    BINDINGS = [
        Binding("enter", "run", "Run", id="fix_plan.run", priority=True),
        Binding("escape", "abort", "Abort", id="fix_plan.abort"),
        *MODAL_APP_BINDINGS,
    ]

    def __init__(self, plan: Plan, *, read_only: bool = False) -> None:
        super().__init__()
        self.plan = plan
        self.read_only = read_only
        self.confirms = 0

    def compose(self) -> ComposeResult:
        refusal = plan_refusal(self.plan, self.read_only)
        with Vertical():
            with VerticalScroll(id="plan-body"):
                yield Static(render_plan(self.plan, self.read_only))
            status = Text()
            if refusal:
                status.append(refusal, style="bold red" if "cannot" in refusal or "read-only" in refusal else "green")
            else:
                status.append("Enter runs it", style="bold")
                if self.plan.confirmations > 1:
                    status.append(f" (asks {self.plan.confirmations} times)", style="bold red")
                status.append(" · Esc aborts: nothing has been changed yet", style="dim")
            yield Static(status, id="plan-status")
            with Horizontal():
                if not refusal:
                    yield Button("Run (enter)", id="plan-run", variant="warning")
                yield Button("Abort (esc)", id="plan-abort")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self._fit(self.app.size.height)

    def on_resize(self, event) -> None:
        self._fit(event.size.height)

    def _fit(self, height: int) -> None:
        # on a short terminal the plan scrolls inside a box that keeps "Enter runs it" and the buttons on screen
        self.set_class(height < 44, "-short")

    def action_run(self) -> None:
        if plan_refusal(self.plan, self.read_only):
            self.app.bell()
            return
        self.confirms += 1
        if self.confirms >= self.plan.confirmations:
            self.dismiss(True)
            return
        self.query_one("#plan-status", Static).update(
            Text(f"Really? This cannot be undone. Enter again to confirm ({self.confirms}/{self.plan.confirmations}), "
                 "Esc aborts", style="bold red"))

    def action_abort(self) -> None:
        self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "plan-run":
            self.action_run()
        else:
            self.action_abort()


class FixChoiceScreen(ModalScreen[str]):
    """A failed fix left something and asks what to do with it. Returns an option value; Esc means "keep"
    (leave it as it is now, as the result says)."""

    DEFAULT_CSS = """
    FixChoiceScreen { align: center middle; }
    FixChoiceScreen > Vertical {
        width: 95%; max-width: 130; height: auto; max-height: 90%;
        align-horizontal: center;
        border: thick $error; background: $surface; padding: 0 1;
    }
    FixChoiceScreen #choice-body { height: auto; max-height: 24; }
    FixChoiceScreen #choice-options { height: auto; margin-top: 1; }
    FixChoiceScreen #choice-options Button { width: 100%; margin: 0 0; }
    """

    BINDINGS = [
        Binding("escape", "choose_keep", "Leave it", id="fix_choice.keep"),
        Binding("1", "choose_index(0)", "Option 1", show=False, id="fix_choice.1"),
        Binding("2", "choose_index(1)", "Option 2", show=False, id="fix_choice.2"),
        Binding("d", "choose_value('drop')", "Drop", id="fix_choice.drop"),
        Binding("k", "choose_value('keep')", "Keep", id="fix_choice.keep_key"),
        *MODAL_APP_BINDINGS,
    ]

    def __init__(self, choice: Choice, result: FixResult | None = None) -> None:
        super().__init__()
        self.choice = choice
        self.result = result

    def compose(self) -> ComposeResult:
        body = Text()
        body.append(self.choice.prompt + "\n", style="bold")
        if self.result is not None:
            body.append("\n" + self.result.summary + "\n", style="red")
            for d in self.result.details:
                body.append(f"  {d}\n", style="dim")
            for x in self.result.left_behind:
                body.append(f"Left: {x}\n", style="yellow")
        with Vertical():
            with VerticalScroll(id="choice-body"):
                yield Static(body)
            with Vertical(id="choice-options"):
                for i, (value, label) in enumerate(self.choice.options):
                    yield Button(f"{i + 1}. {label}", id=f"choice-{i}",
                                 variant="warning" if value != "keep" else "default")

    def on_mount(self) -> None:
        self.query_one("#choice-0", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose_index(int((event.button.id or "choice-0").split("-")[1]))

    def action_choose_index(self, i: int) -> None:
        if 0 <= i < len(self.choice.options):
            self.dismiss(self.choice.options[i][0])

    def action_choose_value(self, value: str) -> None:
        if any(v == value for v, _ in self.choice.options):
            self.dismiss(value)

    def action_choose_keep(self) -> None:
        self.dismiss("keep")
