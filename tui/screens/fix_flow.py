"""The fix flow of the TUI: plan → modal (Enter runs, Esc aborts) → run in a worker with a progress panel
(`c` cancels) → follow-up choice when the fix left something → ``FixFinished`` so the checklist verifies again.

Wiring (the app owns it)::

    from tui.screens.fix_flow import FixController, FixFinished

    class PreflightApp(App):
        def on_mount(self):
            self.fixes = FixController(self, self.config)

        def on_checklist_tree_fix_requested(self, event):        # `f` on an item
            event.stop()
            self.fixes.request_fix(event.item_id, checklist)      # the pane's Checklist (spec)

        def on_fix_finished(self, event: FixFinished):
            self.query_one(ChecklistPane).verify(only=[event.item_id])

When the fix could not take its lock within the budget, the result panel names the root holder and `t`
ends it: the usual confirmation (ConfirmSignalScreen, twice for terminate), the signal through the
cancel_backend/terminate_backend fixes (guarded and audited like every write), then the same fix runs
again with the plan the operator confirmed. A plan that changed meanwhile (PlanChanged) is shown again
and asked again. Nothing here ends a session on its own.

``request_fix`` returns at once (the work happens in a worker, so the monitor keeps refreshing).
With ``config.read_only`` it refuses with a notice saying why; ``FixController.disabled_reason`` says
the same for a footer or help line. The guards themselves live in tui.fixes (run_fix), not here.
"""
from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, Awaitable, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.message import Message
from textual.widget import Widget

from tui.config import Config, TargetError
from tui.model.fixes import FixResult, Plan


def _fixes():
    """tui.fixes and its guards, imported on first use: they are not needed for the first frame."""
    from tui.fixes import base
    return base


def fix_label(name, params):
    from tui.fixes import label
    return label(name, params)
from widgets.confirm import ConfirmSignalScreen
from widgets.fix_plan import FixChoiceScreen, FixPlanScreen
from widgets.fix_progress import FixProgressPanel

READ_ONLY_REASON = "read-only: fixes are disabled because pgpreflight was started with --read-only"


class FixFinished(Message):
    """A fix ended (ran, failed, was cancelled, or was refused before running). The checklist verifies
    ``item_id`` again. ``result`` is None when nothing ran (aborted, refused, or could not plan)."""

    def __init__(self, item_id: str, fix_name: str, result: FixResult | None, error: str = "") -> None:
        super().__init__()
        self.item_id = item_id
        self.fix_name = fix_name
        self.result = result
        self.error = error


class FixController:
    """Runs fixes for an App. ``planner``/``runner``/``followup`` default to tui.fixes (tests pass canned ones)."""

    UI_OPTIONS = {"on_invalid": "ask", "on_violation": "ask"}

    def __init__(self, app, config: Config, *,
                 planner: Callable[..., Awaitable[Plan]] | None = None,
                 runner: Callable[..., Awaitable[FixResult]] | None = None,
                 followup: Callable[..., Awaitable[FixResult | None]] | None = None,
                 mount_target: Callable[[], Widget] | None = None,
                 lock_budget_s: float | None = None) -> None:
        self.app = app
        self.config = config
        self.options = dict(self.UI_OPTIONS)  # passed to every plan and run of this controller
        if lock_budget_s is not None:
            self.options["lock_budget_s"] = float(lock_budget_s)
        self.planner = planner or (lambda *a, **k: _fixes().plan_fix(*a, **k))
        self.runner = runner or (lambda *a, **k: _fixes().run_fix(*a, **k))
        self.followup = followup or (lambda *a, **k: _fixes().run_followup(*a, **k))
        self.mount_target = mount_target
        self.running_item: str | None = None
        self.panel: FixProgressPanel | None = None
        self._cancel: asyncio.Event | None = None
        self.last_result: FixResult | None = None
        self.checklist: Any = None  # set by the app: the command palette lists this checklist's fixes
        self._worker = None
        self._shutting_down = False
        # (item_id, fix_name, params, confirmed plan) of the last result that named a root lock holder
        self.retry_after_blocker: tuple[str, str, dict, Plan] | None = None

    # -- state ------------------------------------------------------------------------------
    @property
    def disabled_reason(self) -> str:
        return READ_ONLY_REASON if self.config.read_only else ""

    @property
    def running(self) -> bool:
        return self.running_item is not None

    def cancel(self) -> bool:
        """Cancel the running fix (pg_cancel_backend on its sessions, via tui.fixes). False when none runs."""
        if self._cancel is None or self._cancel.is_set():
            return False
        self._cancel.set()
        return True

    async def shutdown(self, timeout: float = 60.0) -> bool:
        """Before the app exits: cancel a running fix and wait until it has cleaned up (a backup test drops
        its scratch database, an index build drops its INVALID index). Call it from the quit action, before
        ``app.exit()``: a worker cancelled by the exit itself might not get to finish its cleanup.
        Returns True when nothing is left running."""
        if self._worker is None or self._worker.is_finished:
            return True
        self._shutting_down = True
        self.cancel()
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._worker.is_finished and asyncio.get_running_loop().time() < deadline:
            screen = self.app.screen
            if isinstance(screen, FixPlanScreen):  # not started yet: abort it
                screen.dismiss(False)
            elif isinstance(screen, FixChoiceScreen):  # leave what is left, as the result says
                screen.dismiss("keep")
            self.cancel()
            await asyncio.sleep(0.05)
        return self._worker.is_finished

    # -- the flow ---------------------------------------------------------------------------
    def request_fix(self, item: Any, checklist: Any = None) -> bool:
        """Start the flow for a checklist item (a tui.checklist.spec.Item, or an item id with its Checklist).
        Returns False (with a notice) when it does not start."""
        if isinstance(item, str):
            if checklist is None:
                self.app.notify(f"no checklist to find {item} in", severity="error")
                return False
            try:
                item = checklist.item(item)
            except KeyError:
                self.app.notify(f"no item {item} in the checklist", severity="error")
                return False
        if getattr(item, "fix", None) is None:
            then = "then ticks it (space)" if getattr(item, "manual", False) else "then verifies it again (v)"
            self.app.notify(f"{item.id} has no automatic fix: a person acts, {then}",
                            severity="warning")
            return False
        try:
            fix_name, params = _fixes().params_for_item(item)
            writes = _fixes().get_fix_class(fix_name).writes
        except _fixes().FixError as e:
            self.app.notify(str(e), severity="error")
            return False
        if self.config.read_only and writes:
            self.app.notify(f"{READ_ONLY_REASON}; {item.id} was not changed", severity="warning", timeout=8)
            return False
        if self.running:
            self.app.notify(f"a fix is already running ({self.running_item}); wait for it or cancel it (c)",
                            severity="warning")
            return False
        if self._shutting_down:
            return False
        self.running_item = item.id
        self._worker = self.app.run_worker(self._flow(item.id, fix_name, params), group="fix", exclusive=False,
                                           name=f"fix {item.id}")
        return True

    async def _flow(self, item_id: str, fix_name: str, params: dict, confirmed_plan: Plan | None = None) -> None:
        """Plan, confirm, run. ``confirmed_plan``: a retry of a plan the operator already confirmed (after `t`
        ended the lock holder): no new question unless the plan has changed since."""
        result: FixResult | None = None
        error = ""
        try:
            if confirmed_plan is None:
                try:
                    plan = await self.planner(self.config, fix_name, params, item_id=item_id,
                                              options=dict(self.options))
                except (_fixes().FixError, _fixes().FixRefused, TargetError) as e:
                    error = getattr(e, "reason", None) or str(e)
                    self.app.notify(f"{fix_name}: cannot plan: {error}", severity="error", timeout=8)
                    return
                except Exception as e:  # a server error while planning: one line, never a traceback
                    error = str(e).splitlines()[0] if str(e) else type(e).__name__
                    self.app.notify(f"{fix_name}: cannot plan: {error}", severity="error", timeout=8)
                    return
                confirmed = await self.app.push_screen_wait(FixPlanScreen(plan, read_only=self.config.read_only))
                if not confirmed:
                    error = "aborted"
                    self.app.notify(f"{fix_name}: aborted, nothing was changed", timeout=4)
                    return
            else:
                plan = confirmed_plan
            panel = await self._show_panel(plan.title)
            try:
                while True:
                    self._cancel = asyncio.Event()
                    try:
                        # the plan shown is the plan run: run_fix plans again and refuses (PlanChanged) when it differs
                        result = await self.runner(self.config, fix_name, params, item_id=item_id,
                                                   confirmations=plan.confirmations, progress_cb=panel.update_progress,
                                                   cancel_event=self._cancel, options=dict(self.options),
                                                   confirmed_plan=plan)
                        break
                    except _fixes().PlanChanged as e:
                        self._cancel = None
                        panel.show_result(FixResult(False, e.reason))
                        if self._shutting_down or e.plan is None:
                            raise
                        self.app.notify(f"{fix_name}: the plan changed since it was confirmed; confirm the new one",
                                        severity="warning", timeout=8)
                        again = await self.app.push_screen_wait(FixPlanScreen(e.plan, read_only=self.config.read_only))
                        if not again:
                            error = "aborted: the plan changed"
                            self.app.notify(f"{fix_name}: aborted, nothing was changed", timeout=4)
                            return
                        plan = e.plan
                        panel.show_running(plan.title)
            except _fixes().FixRefused as e:
                error = e.reason
                result = None
                panel.show_result(FixResult(False, e.reason))  # its own line: no toast over it
                return
            except (TargetError, _fixes().FixError) as e:
                error = getattr(e, "reason", None) or str(e)
                panel.show_result(FixResult(False, error))
                return
            except Exception as e:  # never take the monitor down with a fix
                error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                panel.show_result(FixResult(False, f"failed unexpectedly: {error}; check the audit log"))
                return
            finally:
                self._cancel = None
            panel.show_result(result)
            self.retry_after_blocker = (item_id, fix_name, dict(params), plan) if result.blocker else None
            if result.choice is not None and self._shutting_down:
                pass  # quitting: no question; the result (and the audit log) says exactly what is left
            elif result.choice is not None:
                option = await self.app.push_screen_wait(FixChoiceScreen(result.choice, result))
                if option and option != "keep":
                    try:
                        follow = await self.followup(self.config, result.choice, option, item_id=item_id)
                    except (_fixes().FixRefused, _fixes().FixError, TargetError) as e:
                        follow = FixResult(False, getattr(e, "reason", None) or str(e))
                    if follow is not None:
                        panel.show_result(FixResult(False, f"{result.summary}; then: {follow.summary}",
                                                    cancelled=result.cancelled,
                                                    left_behind=() if follow.ok else result.left_behind))
            # the result stands in the panel, on its own line: a toast would cover it
        finally:
            self.last_result = result
            self.running_item = None
            self.app.post_message(FixFinished(item_id, fix_name, result, error))

    # -- `t`: end the root lock holder, then run the fix again -------------------------------
    def end_blocker(self, blocker: dict) -> bool:
        """`t` on a result naming the root lock holder: confirm, signal (audited), retry. False when it does not start."""
        if self.running or self._shutting_down:
            self.app.notify("a fix is running: wait for it or cancel it (c)", severity="warning")
            return False
        if self.retry_after_blocker is None:
            return False
        item_id = self.retry_after_blocker[0]
        self.running_item = item_id
        self._worker = self.app.run_worker(self._end_blocker_flow(dict(blocker)), group="fix", exclusive=False,
                                           name=f"end lock holder for {item_id}")
        return True

    async def confirm_and_end_blocker(self, blocker: dict) -> FixResult | None:
        """Ask (ConfirmSignalScreen, twice for terminate, as in the connections pane), then cancel or terminate
        the holder through run_fix (guarded, audited, refused under --read-only). None when the operator
        kept it; else the signal's result. The preflight panel's `t` uses this too."""
        from tui.model.snapshot import Session

        pid = int(blocker["pid"])
        session = Session(pid=pid, database=None, user=blocker.get("user"),
                          application_name=blocker.get("application") or "", client_addr=None,
                          state=blocker.get("state"), wait_event_type=None, wait_event=None, blocked_by=(),
                          xact_age_s=blocker.get("age_s"), query_age_s=None, state_age_s=None,
                          query=blocker.get("query") or "")
        wanted = "cancel" if blocker.get("action") == "cancel" else "terminate"
        action = await self.app.push_screen_wait(ConfirmSignalScreen((session,), wanted))
        confirmations = 1
        if action == "terminate":  # terminate needs a second confirmation, as in the connections pane
            again = await self.app.push_screen_wait(ConfirmSignalScreen((session,), "terminate", second=True))
            action = "terminate" if again == "terminate" else None
            confirmations = 2
        if action is None:
            self.app.notify(f"pid {pid} was left running; nothing was changed", timeout=4)
            return None
        signal_fix = "cancel_backend" if action == "cancel" else "terminate_backend"
        try:  # guarded and audited like every write (read-only refuses it)
            res = await self.runner(self.config, signal_fix, {"pids": [pid]}, confirmations=confirmations,
                                    record=False)
        except (_fixes().FixRefused, _fixes().FixError, TargetError) as e:
            res = FixResult(False, getattr(e, "reason", None) or str(e))
        except Exception as e:  # never take the monitor down
            res = FixResult(False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        self.app.notify(res.summary, severity="information" if res.ok else "error", timeout=6)
        return res

    async def _end_blocker_flow(self, blocker: dict) -> None:
        item_id, fix_name, params, plan = self.retry_after_blocker
        try:
            res = await self.confirm_and_end_blocker(blocker)
            if res is None or not res.ok:
                self.running_item = None
                return
        except BaseException:
            self.running_item = None
            raise
        self.retry_after_blocker = None
        await self._flow(item_id, fix_name, params, confirmed_plan=plan)

    async def _show_panel(self, title: str) -> FixProgressPanel:
        if self.panel is not None and self.panel.is_attached:
            await self.panel.remove()
        self.panel = FixProgressPanel(title, on_cancel=self.cancel, on_end_blocker=self.end_blocker)
        target = self.mount_target() if self.mount_target else self.app.screen
        await target.mount(self.panel)
        self.panel.show_running(title)
        self.panel.focus()
        return self.panel


def palette_entries(checklist: Any) -> list[tuple[str, Any]]:
    """("fix: create missing indexes on extraction_analytics", item) for every item of ``checklist`` with a fix."""
    out = []
    for item in checklist.items():
        if item.fix is None:
            continue
        text = fix_label(item.fix.name, dict(item.fix.params)) or item.fix.name
        out.append((f"fix: {text}", item))
    return out


class FixCommands(Provider):
    """Command palette entries "fix: …" for the checklist's fixes. The app adds it to ``COMMANDS`` and keeps
    a FixController at ``app.fixes`` with ``app.fixes.checklist`` set to the checklist it shows."""

    def _entries(self):
        controller = getattr(self.app, "fixes", None)
        checklist = getattr(controller, "checklist", None)
        if controller is None or checklist is None:
            return None, []
        return controller, palette_entries(checklist)

    def _help(self, controller, item) -> str:
        why = controller.disabled_reason
        return f"{item.id}: {item.title}" + (f" ({why})" if why else "")

    async def discover(self) -> Hits:
        controller, entries = self._entries()
        for text, item in entries:
            yield DiscoveryHit(text, partial(controller.request_fix, item), help=self._help(controller, item))

    async def search(self, query: str) -> Hits:
        controller, entries = self._entries()
        matcher = self.matcher(query)
        for text, item in entries:
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(controller.request_fix, item),
                          help=self._help(controller, item))
