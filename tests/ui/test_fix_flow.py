"""The fix modal, progress panel and controller on canned plans, progress and results: keys (pilot)
and SVG snapshots. The real server runs in tests/pg/test_fixes_ui.py."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import ProgressBar, Static

from tui.checklist.spec import load_checklist
from tui.config import Config, Target
from tui.model.fixes import Choice, FixResult, Plan, Precondition, Progress
from tui.screens.fix_flow import FixCommands, FixController, FixFinished
from widgets.fix_plan import FixChoiceScreen, FixPlanScreen
from widgets.fix_progress import FixProgressPanel

pytestmark = pytest.mark.ui

TARGET = "postgresql://oncall@db.example:5432/metaextract"

PLAN = Plan(
    fix="create_index", item_id="indexes.extraction_analytics",
    title="Create missing indexes on extraction_analytics: idx_extraction_requested_at, idx_extraction_tier",
    target=TARGET,
    statements=('CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_extraction_requested_at" ON "public"."extraction_analytics" '
                '("requested_at" DESC)',
                'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_extraction_tier" ON "public"."extraction_analytics" ("tier")'),
    locks=('SHARE UPDATE EXCLUSIVE on "public"."extraction_analytics" for each build: reads and writes go on',
           "under lock_timeout 5000 ms, and no statement_timeout"),
    estimate="about 3 s for 2 index(es) on 28.2 MB (~120,000 rows)", estimate_s=3.0,
    preconditions=(Precondition("a primary", True, "not in recovery"),
                   Precondition("privilege", True, "oncall owns \"public\".\"extraction_analytics\"")),
)
BLOCKED = Plan(fix="enable_pg_stat_statements", title="Enable pg_stat_statements", target=TARGET,
               statements=("CREATE EXTENSION IF NOT EXISTS pg_stat_statements",),
               preconditions=(Precondition("privilege", False, "CREATE EXTENSION needs SUPERUSER; role oncall is not one"),))
TERMINATE = Plan(fix="terminate_backend", title="Terminate a session", target=TARGET,
                 statements=("SELECT pg_terminate_backend(4242)",), confirmations=2)
PROGRESS = Progress("idx_extraction_tier: building index: scanning table", 0.42,
                    "blocks 1,512/3,600 · tuples 0/0", step=2, steps=2, blocks_done=1512, blocks_total=3600,
                    tuples_done=0, tuples_total=0)
CHOICE = Choice("check_violation", "5 row(s) of credit_balances violate CHECK (balance >= 0). Drop the NOT VALID "
                                   "constraint, or keep it?",
                (("drop", 'Drop it: ALTER TABLE "public"."credit_balances" DROP CONSTRAINT IF EXISTS "check_balance_nonnegative"'),
                 ("keep", "Keep it NOT VALID")), fix="drop_constraint",
                params={"table": "credit_balances", "name": "check_balance_nonnegative"})


def make_config(tmp_path: Path, read_only: bool = False) -> Config:
    return Config(target=Target(host="db.example", port=5432, user="oncall", database="metaextract",
                                password="hunter2-secret"),
                  state_dir=tmp_path, read_only=read_only, checklist="images-mvp")


# --------------------------------------------------------------------------------------------- the modal
class PlanApp(App):
    def __init__(self, plan: Plan, read_only: bool = False):
        super().__init__()
        self.plan, self.read_only, self.answer = plan, read_only, "unset"

    def compose(self) -> ComposeResult:
        yield Static("monitor behind the modal")

    def on_mount(self) -> None:
        self.push_screen(FixPlanScreen(self.plan, read_only=self.read_only), self._done)

    def _done(self, value) -> None:
        self.answer = value


async def test_modal_enter_runs_and_esc_aborts():
    app = PlanApp(PLAN)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FixPlanScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert app.answer is True
    app = PlanApp(PLAN)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.answer is False and not isinstance(app.screen, FixPlanScreen)


async def test_modal_refuses_blocked_and_read_only_plans():
    for plan, ro in ((BLOCKED, False), (PLAN, True)):
        app = PlanApp(plan, read_only=ro)
        async with app.run_test() as pilot:
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            assert app.answer == "unset" and isinstance(app.screen, FixPlanScreen)
            status = str(app.screen.query_one("#plan-status", Static).render())
            assert ("SUPERUSER" in status) if not ro else ("read-only" in status)
            await pilot.press("escape")
            await pilot.pause()
            assert app.answer is False


async def test_modal_terminate_needs_enter_twice():
    app = PlanApp(TERMINATE)
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        assert app.answer == "unset"
        assert "Really?" in str(app.screen.query_one("#plan-status", Static).render())
        await pilot.press("enter")
        await pilot.pause()
        assert app.answer is True


class ChoiceApp(App):
    def __init__(self):
        super().__init__()
        self.answer = "unset"

    def on_mount(self) -> None:
        res = FixResult(False, "5 row(s) of credit_balances violate CHECK (balance >= 0); the constraint is kept NOT VALID",
                        details=('sample: {"user_id":"u-17","balance":-3}',),
                        left_behind=("constraint check_balance_nonnegative NOT VALID",), choice=CHOICE)
        self.push_screen(FixChoiceScreen(CHOICE, res), self._done)

    def _done(self, value) -> None:
        self.answer = value


@pytest.mark.parametrize("key,expected", [("d", "drop"), ("k", "keep"), ("escape", "keep"), ("2", "keep"),
                                          ("enter", "drop")])
async def test_choice_keys(key, expected):
    app = ChoiceApp()
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        assert app.answer == expected


# --------------------------------------------------------------------------------------------- the controller
class FlowApp(App):
    """A tiny app: `f` asks the controller to fix one item; FixFinished is collected."""

    BINDINGS = [Binding("f", "fix", "Fix")]

    def __init__(self, config: Config, item_id: str, runner_plan: Plan = PLAN, result: FixResult | None = None,
                 wait_for_cancel: bool = False):
        super().__init__()
        self.config = config
        self.item_id = item_id
        self.checklist = load_checklist("images-mvp")
        self.finished: list[FixFinished] = []
        self.calls: list[tuple] = []
        self.runner_plan = runner_plan
        self.result = result or FixResult(True, "created 2 index(es) on extraction_analytics")
        self.wait_for_cancel = wait_for_cancel
        self.progress_shown = asyncio.Event()
        self.fixes = FixController(self, config, planner=self._plan, runner=self._run, followup=self._follow)

    def compose(self) -> ComposeResult:
        yield Static("monitor", id="monitor")

    async def _plan(self, config, fix_name, params, *, item_id=None, options=None):
        self.calls.append(("plan", fix_name, item_id, dict(options or {})))
        return self.runner_plan

    async def _run(self, config, fix_name, params, *, item_id=None, confirmations=0, progress_cb=None,
                   cancel_event=None, options=None, confirmed_plan=None):
        self.calls.append(("run", fix_name, item_id, confirmations))
        progress_cb(PROGRESS)
        self.progress_shown.set()
        if self.wait_for_cancel:
            await asyncio.wait_for(cancel_event.wait(), 10)
            return FixResult(False, "idx_extraction_tier: cancelled by the operator; the INVALID index it left was dropped",
                             cancelled=True)
        return self.result

    async def _follow(self, config, choice, option, *, item_id=None):
        self.calls.append(("followup", choice.fix, option))
        return FixResult(True, "dropped constraint check_balance_nonnegative on credit_balances")

    def action_fix(self) -> None:
        self.fixes.request_fix(self.item_id, self.checklist)

    def on_fix_finished(self, event: FixFinished) -> None:
        self.finished.append(event)


async def _until(pilot, cond, what, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_controller_runs_after_enter_and_posts_fix_finished(tmp_path):
    app = FlowApp(make_config(tmp_path), "indexes.extraction_analytics")
    async with app.run_test() as pilot:
        await pilot.press("f")
        await _until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan modal")
        assert app.calls == [("plan", "create_index", "indexes.extraction_analytics",
                              {"on_invalid": "ask", "on_violation": "ask"})]
        await pilot.press("enter")
        await _until(pilot, lambda: app.finished, "FixFinished")
        ev = app.finished[0]
        assert ev.item_id == "indexes.extraction_analytics" and ev.result.ok and ev.fix_name == "create_index"
        assert ("run", "create_index", "indexes.extraction_analytics", 1) in app.calls
        panel = app.screen.query_one(FixProgressPanel)
        assert panel.has_class("-done") and not app.fixes.running
        # the result has its own line in the panel; no toast is put over it
        assert ev.result.summary in str(panel.query_one("#fix-progress-phase").render())
        assert not any(ev.result.summary in n.message for n in app._notifications)


async def test_controller_esc_runs_nothing(tmp_path):
    app = FlowApp(make_config(tmp_path), "indexes.extraction_analytics")
    async with app.run_test() as pilot:
        await pilot.press("f")
        await _until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan modal")
        await pilot.press("escape")
        await _until(pilot, lambda: app.finished, "FixFinished")
        assert app.finished[0].result is None and app.finished[0].error == "aborted"
        assert [c[0] for c in app.calls] == ["plan"]


async def test_controller_read_only_refuses_with_a_notice(tmp_path):
    app = FlowApp(make_config(tmp_path, read_only=True), "indexes.extraction_analytics")
    async with app.run_test() as pilot:
        await pilot.press("f")
        await pilot.pause()
        assert app.calls == [] and not isinstance(app.screen, FixPlanScreen)
        assert any("--read-only" in n.message for n in app._notifications)
        assert app.fixes.disabled_reason.startswith("read-only")


async def test_controller_read_only_still_allows_the_connection_test(tmp_path):
    app = FlowApp(make_config(tmp_path, read_only=True), "pool.concurrency")
    async with app.run_test() as pilot:
        await pilot.press("f")
        await _until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan modal")
        assert app.calls[0][1] == "connection_test"


async def test_controller_cancel_key_in_the_progress_panel(tmp_path):
    app = FlowApp(make_config(tmp_path), "indexes.extraction_analytics", wait_for_cancel=True)
    async with app.run_test() as pilot:
        await pilot.press("f")
        await _until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan modal")
        await pilot.press("enter")
        await _until(pilot, lambda: app.progress_shown.is_set(), "progress")
        panel = app.screen.query_one(FixProgressPanel)
        assert panel.last == PROGRESS and app.screen.query_one(ProgressBar).percentage == pytest.approx(0.42)
        assert app.focused is panel
        # the monitor keeps working while the fix runs: another binding still answers
        assert app.fixes.running
        await pilot.press("c")
        await _until(pilot, lambda: app.finished, "FixFinished")
        assert app.finished[0].result.cancelled and panel.has_class("-failed")


async def test_controller_offers_the_follow_up_choice(tmp_path):
    res = FixResult(False, "5 row(s) of credit_balances violate CHECK (balance >= 0); the constraint is kept NOT VALID",
                    left_behind=("constraint check_balance_nonnegative NOT VALID",), choice=CHOICE)
    app = FlowApp(make_config(tmp_path), "integrity.balance_check", result=res)
    async with app.run_test() as pilot:
        await pilot.press("f")
        await _until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan modal")
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, FixChoiceScreen), "the choice")
        await pilot.press("d")
        await _until(pilot, lambda: app.finished, "FixFinished")
        assert ("followup", "drop_constraint", "drop") in app.calls


async def test_controller_item_without_fix(tmp_path):
    app = FlowApp(make_config(tmp_path), "backups.separate_storage")
    async with app.run_test() as pilot:
        await pilot.press("f")
        await pilot.pause()
        assert app.calls == [] and any("no automatic fix" in n.message for n in app._notifications)


# --------------------------------------------------------------------------------------------- snapshots
def test_snapshot_plan(snap_compare):
    assert snap_compare(PlanApp(PLAN), terminal_size=(120, 36))


def test_snapshot_blocked_plan(snap_compare):
    assert snap_compare(PlanApp(BLOCKED), terminal_size=(100, 24))


class ProgressApp(App):
    def compose(self) -> ComposeResult:
        yield Static("monitor above the panel")
        yield FixProgressPanel("Create missing indexes on extraction_analytics")

    def on_mount(self) -> None:
        self.query_one(FixProgressPanel).update_progress(PROGRESS)


def test_snapshot_progress(snap_compare):
    assert snap_compare(ProgressApp(), terminal_size=(110, 14))


def test_snapshot_choice(snap_compare):
    assert snap_compare(ChoiceApp(), terminal_size=(120, 24))


class PaletteApp(FlowApp):
    COMMANDS = App.COMMANDS | {FixCommands}

    def on_mount(self) -> None:
        self.fixes.checklist = self.checklist


async def test_command_palette_offers_fix_entries(tmp_path):
    app = PaletteApp(make_config(tmp_path), "unused")
    async with app.run_test() as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        for ch in "fix: create missing indexes on extraction":
            await pilot.press(ch if ch != " " else "space")
        await _until(pilot, lambda: _palette_has(app, "extraction_analytics"), "the palette entry")
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan modal")
        assert app.calls[0][:3] == ("plan", "create_index", "indexes.extraction_analytics")


def _palette_has(app, text) -> bool:
    from textual.command import CommandList

    try:
        lst = app.screen.query_one(CommandList)
    except Exception:
        return False
    return any(text in str(opt.prompt) for opt in lst.options)


async def test_shutdown_cancels_a_running_fix_and_waits_for_it(tmp_path):
    app = FlowApp(make_config(tmp_path), "indexes.extraction_analytics", wait_for_cancel=True)
    async with app.run_test() as pilot:
        await pilot.press("f")
        await _until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan modal")
        await pilot.press("enter")
        await _until(pilot, lambda: app.progress_shown.is_set(), "progress")
        assert await app.fixes.shutdown(timeout=10)
        assert not app.fixes.running and app.fixes.last_result.cancelled
        assert not app.fixes.request_fix("indexes.extraction_analytics", app.checklist)  # no new fix while quitting


async def test_shutdown_while_the_plan_is_shown_aborts_it(tmp_path):
    app = FlowApp(make_config(tmp_path), "indexes.extraction_analytics")
    async with app.run_test() as pilot:
        await pilot.press("f")
        await _until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan modal")
        assert await app.fixes.shutdown(timeout=10)
        assert [c[0] for c in app.calls] == ["plan"] and app.fixes.last_result is None
