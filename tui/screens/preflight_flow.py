"""Preflight in one go (`F` in the checklist) and the sign-off (`S`), for the App.

``F``: verify now → one combined plan of every failing item's fix (tui.fixes.preflight) → the operator
leaves steps out with space and runs the rest with Enter → each step runs through run_fix (every guard
applies) with its progress in a panel → a step that could not get its lock names the root holder, and
``t`` ends it (a second confirmation first) and retries the step → everything is verified again.

``S``: the path (the state directory's reports/ by default, or one typed) → verify now → the Markdown
sign-off, signed by the OS user, written atomically → its path and verdict on the checklist's status line.
"""
from __future__ import annotations

import asyncio

from rich.text import Text

from tui.config import TargetError
from widgets.fix_plan import FixPlanScreen
from widgets.preflight import PreflightPanel, PreflightPlanScreen, SignoffScreen

#: a combined run leaves the database as it was when a step fails (as the headless run does): an INVALID
#: index is dropped, a violated NOT VALID constraint is dropped; the step's result says so
#: the operator is at the screen to end a lock blocker, so a step gives up on its lock sooner than headless
RUN_OPTIONS = {"on_invalid": "drop", "on_violation": "drop", "lock_budget_s": 10.0}


class PreflightController:
    def __init__(self, app, fixes) -> None:
        self.app = app
        self.fixes = fixes  # the FixController: one fix (or one preflight) at a time
        self.panel: PreflightPanel | None = None
        self._cancel: asyncio.Event | None = None
        self.last_outcomes: list = []
        self.signoff_path: str | None = None

    # -- F ---------------------------------------------------------------------------------------
    def request_all(self, pane) -> bool:
        if pane is None or pane.checklist is None:
            self.app.notify("the checklist is not loaded yet", severity="warning")
            return False
        if self.fixes.running:
            self.app.notify(f"a fix is already running ({self.fixes.running_item}); wait for it or cancel it (c)",
                            severity="warning")
            return False
        self.fixes.running_item = "preflight"
        self.app.run_worker(self._flow(pane), group="fix", exclusive=False, name="preflight")
        return True

    async def _flow(self, pane) -> None:
        from tui.checklist.runner import check_database
        from tui.fixes import preflight

        config = pane.config
        try:
            self.app.notify("planning the fix of every failing item…", timeout=3)
            try:
                before = await check_database(config, pane.checklist)
                combined = await preflight.plan_all(config, pane.checklist, before.results, options=RUN_OPTIONS)
            except TargetError as e:
                self.app.notify(f"cannot plan: {e.reason}", severity="error", timeout=8)
                return
            except Exception as e:  # never take the monitor down
                self.app.notify(f"cannot plan: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                                severity="error", timeout=8)
                return
            if not combined.steps:
                self.app.notify("nothing to fix: no failing item has an automatic fix", timeout=5)
                return
            chosen = await self.app.push_screen_wait(PreflightPlanScreen(combined, read_only=config.read_only))
            if not chosen:
                self.app.notify("preflight: aborted, nothing was changed", timeout=4)
                return
            panel = await self._show_panel(combined, chosen)
            self._cancel = asyncio.Event()

            async def confirm_more(step) -> bool:
                return bool(await self.app.push_screen_wait(FixPlanScreen(step.plan, read_only=config.read_only)))

            async def on_outcome(outcome):
                while True:
                    blocker = getattr(outcome.result, "blocker", None) if outcome.result is not None else None
                    if not blocker or self._cancel.is_set():
                        panel.step_done(outcome)
                        return outcome
                    decision = await panel.wait_blocked(outcome, blocker)
                    if decision != "end" or not await self.end_blocker(config, blocker):
                        panel.step_done(outcome)
                        return outcome
                    panel.step_started(outcome.step)
                    outcome = await preflight.run_step(config, outcome.step, confirmations=1,
                                                       progress_cb=panel.update_progress, cancel_event=self._cancel,
                                                       options=RUN_OPTIONS)

            outcomes = await preflight.run_all(config, combined, chosen=chosen, confirm_more=confirm_more,
                                               on_start=panel.step_started, on_outcome=on_outcome,
                                               progress_cb=panel.update_progress, cancel_event=self._cancel,
                                               options=RUN_OPTIONS)
            self.last_outcomes = outcomes
            panel.hint("verifying everything again…", style="bold")
            try:
                after = await check_database(config, pane.checklist)
                still = preflight.failing_items(pane.checklist, after.results)
                verdict = f"{after.count('pass')} pass, {after.count('fail')} fail, {after.count('manual')} manual"
            except Exception as e:
                still, verdict = [], f"could not verify again: {str(e).splitlines()[0] if str(e) else e}"
            ok = all(o.status in ("ok", "left out") for o in outcomes)
            t = Text()
            t.append("✔ " if ok else "✘ ", style="green" if ok else "red")
            t.append(f"preflight: {preflight.summary(outcomes)} · verified again: {verdict}")
            if still:
                t.append("\nstill failing: " + ", ".join(i.id for i in still), style="yellow")
            panel.finished(t, ok)
        finally:
            self._cancel = None
            self.fixes.running_item = None
            pane.verify()
            self.app.action_refresh_now()

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    async def end_blocker(self, config, blocker: dict) -> bool:
        """The usual confirmations (the FixController's), then pg_cancel_backend / pg_terminate_backend
        through run_fix. True when the signal was sent."""
        res = await self.fixes.confirm_and_end_blocker(blocker)
        if res is not None and self.panel is not None:
            self.panel.hint(res.summary, style="bold" if res.ok else "bold red")
        return bool(res is not None and res.ok)

    async def _show_panel(self, combined, chosen) -> PreflightPanel:
        if self.panel is not None and self.panel.is_attached:
            await self.panel.remove()
        old = self.fixes.panel
        if old is not None and old.is_attached:
            await old.remove()
        refocus = getattr(self.app, "_focus_checklist", None)
        self.panel = PreflightPanel(combined, chosen, on_cancel=self.cancel,
                                    on_close=(lambda: self.app.call_after_refresh(refocus)) if refocus else None)
        target = self.fixes.mount_target() if self.fixes.mount_target else self.app.screen
        await target.mount(self.panel)
        self.panel.focus()
        return self.panel

    # -- S ---------------------------------------------------------------------------------------
    def request_signoff(self, pane) -> bool:
        if pane is None or pane.checklist is None or pane.identity is None:
            self.app.notify("the checklist has not been verified yet", severity="warning")
            return False
        from tui.checklist.report import default_report_path
        from tui.checklist.state import os_user

        path = default_report_path(pane.config.state_dir, pane.identity.database)

        def chosen(value: str | None) -> None:
            if value:
                self.app.run_worker(self._signoff(pane, value), group="signoff", exclusive=True, name="signoff")

        self.app.push_screen(SignoffScreen(str(path), os_user()), chosen)
        return True

    async def _signoff(self, pane, path_text: str) -> None:
        from pathlib import Path

        from tui.checklist.report import is_ready, signoff_report, write_report
        from tui.checklist.runner import check_database
        from tui.checklist.state import now_iso, os_user

        try:
            run = await check_database(pane.config, pane.checklist)
            run.source = pane.source or run.source
            digest = getattr(self.app, "digest", None)
            text = signoff_report(run, signed_by=os_user(), signed_at=now_iso(),
                                  timeline=digest.markdown() if digest is not None else None)
            path = Path(path_text).expanduser()
            await asyncio.to_thread(write_report, path, text)
        except OSError as e:
            self.app.notify(f"cannot write {path_text}: {e.strerror or e}", severity="error", timeout=10)
            return
        except TargetError as e:
            self.app.notify(f"cannot verify: {e.reason}", severity="error", timeout=10)
            return
        fails = sum(1 for r in run.results.values() if r.status in ("fail", "error"))
        verdict = "READY" if is_ready(run) else f"NOT READY ({fails} failing, {run.count('manual')} awaiting a person)"
        self.signoff_path = str(path)
        pane.show_signoff(f"sign-off written to {path} · {verdict}")
        self.app.notify(f"sign-off: {verdict}", timeout=5)
