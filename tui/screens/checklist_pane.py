"""The checklist pane: a self-contained container the app puts in a tab.

It draws what its check service (tui.checklist.service.CheckService: the session, the runs, the state
file) holds. It asks the service to run in a worker (never in a message handler): at start, every
``config.checklist_refresh`` seconds (a re-verify that reuses what cannot have changed) and on `v`
(everything again); a tick or a note goes to the state file through the service, and the item and
its roll-ups are verified again. `f` on an item posts ``ChecklistTree.FixRequested`` up: the screen
that owns fixes handles it, then calls :meth:`ChecklistPane.verify` again.

Runs stand-alone too (``ChecklistPane(config)`` in any App), and with ``canned=`` results for tests.
"""
from __future__ import annotations

import time
from typing import Iterable

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the checklist machinery is imported when the pane starts, not for the first frame
    from tui.checklist.runner import CheckRun
    from tui.checklist.service import CheckService
    from tui.checklist.spec import Checklist
    from tui.checklist.state import ChecklistState, DatabaseIdentity
from tui.config import Config
from tui.model.checklist import ChecklistView, ItemResult
from widgets.checklist_tree import ChecklistProgress, ChecklistTree, ItemDetailsScreen, NoteScreen


class ChecklistChecked(Message):
    """A whole run finished (or failed): the app may show the counts in its tab title."""

    def __init__(self, view: ChecklistView) -> None:
        super().__init__()
        self.view = view


def describe_fix(name: str, params: dict) -> str | None:
    """A fix's SQL for the details screen: tui.fixes, imported on first use (not for the first frame)."""
    from tui.fixes import describe

    return describe(name, params)


class ChecklistPane(Vertical):
    DEFAULT_CSS = """
    ChecklistPane { height: 1fr; }
    """

    def __init__(self, config: Config, *, checklist: Checklist | None = None,
                 canned: tuple[dict[str, ItemResult], ChecklistState] | None = None,
                 autorun: bool = True, id: str | None = "checklist-pane") -> None:
        super().__init__(id=id)
        self._config = config
        self._checklist = checklist
        self.canned = canned
        self.autorun = autorun and canned is None
        self.signoff_line = ""  # "sign-off written to PATH · READY" after S
        self._service: CheckService | None = None
        self._wanted: tuple[set[str] | None, bool] | None = None  # the run asked for next: (only, reuse)
        self._pumping = False

    @property
    def service(self) -> CheckService:
        """The check service (made on first use: the checklist machinery is not needed for the first frame)."""
        if self._service is None:
            from tui.checklist.service import CheckService

            self._service = CheckService(self._config, checklist=self._checklist, canned=self.canned,
                                         describe_fix=describe_fix)
        return self._service

    # what the app, the preflight flow and tests read: the service's
    @property
    def config(self) -> Config:
        return self._service.config if self._service is not None else self._config

    @property
    def checklist(self) -> Checklist | None:
        return self._service.checklist if self._service is not None else self._checklist

    @checklist.setter
    def checklist(self, value: Checklist | None) -> None:
        self.service.checklist = value

    @property
    def results(self) -> dict[str, ItemResult]:
        return self.service.results

    @results.setter
    def results(self, value: dict[str, ItemResult]) -> None:
        self.service.results = value

    @property
    def state(self) -> ChecklistState | None:
        return self.service.state

    @property
    def identity(self) -> DatabaseIdentity | None:
        return self.service.identity

    @property
    def source(self) -> str:
        return self.service.source

    @property
    def load_error(self) -> str | None:
        return self.service.load_error

    @property
    def last_error(self) -> str | None:
        return self.service.last_error

    @property
    def checked_at(self) -> float | None:
        return self.service.checked_at

    @property
    def last_duration(self) -> float | None:
        return self.service.last_duration

    @property
    def runs(self) -> int:
        return self.service.runs

    @property
    def running(self) -> bool:
        return self._pumping

    def compose(self) -> ComposeResult:
        yield ChecklistProgress()
        yield ChecklistTree(id="checklist-tree")

    # With autorun, loading and the first run wait for the monitor's first frame of data (the
    # app calls start()), or this long at most: they would otherwise compete with the first polls.
    START_AT_MOST_S = 2.0
    _started = False

    def on_mount(self) -> None:
        if self.config.read_only:
            tree = self.query_one(ChecklistTree)
            tree.fix_disabled_reason = "--read-only: fixes are off (checks still run)"
            tree.refresh_bindings()
        if self.autorun:
            self.query_one(ChecklistProgress).show_message("loading the checklist…")
            self.set_timer(self.START_AT_MOST_S, self.start, name="checklist-start")
            return
        self._load()

    def start(self) -> None:
        """Load the checklist, draw it, verify it now and again every checklist_refresh seconds."""
        if self._started or not self.is_mounted:
            return
        self._started = True
        self._load()
        if self.autorun and self.load_error is None:
            self.verify()
            self.set_interval(self.config.checklist_refresh, self.refresh_results, name="checklist-refresh")

    def _load(self) -> None:
        # without --checklist the database's own choice (remembered, or its pgpreflight.checklist
        # setting) is resolved on the first run, once there is a session
        self.service.load(need=not self.autorun)
        self.redraw()

    async def on_unmount(self) -> None:
        if self._service is not None:
            await self._service.close()

    # -- drawing ---------------------------------------------------------------------------
    @property
    def view(self) -> ChecklistView:
        return self.service.view(running=self.running)

    def redraw(self) -> None:
        view = self.view
        status = ""
        if self.running:
            status = "verifying…"
        elif self.checked_at:
            status = f"verified {time.strftime('%H:%M:%S', time.localtime(self.checked_at))}"
            if self.last_duration is not None:
                status += f" in {self.last_duration * 1000:.0f} ms"
            status += f" · again every {self.config.checklist_refresh:g} s and on v"
        if self.signoff_line:
            status = self.signoff_line + (f" · {status}" if status else "")
        self.query_one(ChecklistProgress).show(view, status)
        self.query_one(ChecklistTree).show(view)

    # -- running ---------------------------------------------------------------------------
    def verify(self, only: Iterable[str] | None = None) -> None:
        """Verify again now, everything (or ``only`` those ids) probed afresh. A request that comes while
        a run is in progress runs right after it (requests meanwhile are merged)."""
        self._ask(set(only) if only is not None else None, reuse=False)

    def refresh_results(self) -> None:
        """The periodic re-verify: results whose inputs cannot have changed are reused."""
        self._ask(None, reuse=True)

    def _ask(self, only: set[str] | None, reuse: bool) -> None:
        if self.canned is not None or self.load_error is not None:
            return
        if self.checklist is None and only is not None:
            return
        if self._wanted is None:
            self._wanted = (only, reuse)
        else:  # merged: everything wins over some, asked-for (no reuse) over the periodic
            was, was_reuse = self._wanted
            self._wanted = (None if was is None or only is None else was | only, was_reuse and reuse)
        if not self._pumping:
            self._pumping = True
            self.redraw()
            self._run()

    @work(group="checklist", exit_on_error=False)
    async def _run(self) -> None:
        try:
            while self._wanted is not None:
                (only, reuse), self._wanted = self._wanted, None
                first = self.runs == 0
                run = await self.service.run(only, reuse=reuse)
                self._ran(run, first)
        finally:
            self._pumping = False
            self.redraw()

    def _ran(self, run: CheckRun | None, first: bool) -> None:
        if run is not None:
            for w in run.state.warnings:
                self.notify(w, severity="warning", timeout=10)
        self.redraw()
        if first and self.results:
            self.query_one(ChecklistTree).place_cursor_on_first_open()
        self.post_message(ChecklistChecked(self.view))

    def show_signoff(self, line: str) -> None:
        self.signoff_line = line
        self.redraw()

    def use_checklist(self, name: str) -> bool:
        """Switch to checklist ``name`` (chosen in the TUI): it is remembered for this database with the
        app root, and verified now."""
        from tui.checklist.service import StateError
        from tui.checklist.spec import ChecklistError

        try:
            self.service.use_checklist(name)
        except ChecklistError as e:
            self.notify(str(e), severity="error")
            return False
        except StateError as e:
            self.notify(e.message, severity=e.severity)
            return False
        self.redraw()
        self.verify()
        self.notify(f"checklist {name}: remembered for this database", timeout=4)
        return True

    # -- keys from the tree -----------------------------------------------------------------
    def _rerun_with_rollups(self, item_id: str) -> None:
        if self.checklist is not None:
            self.verify(only=self.service.affected([item_id]))

    def _change_state(self, change) -> bool:
        """``change`` the state file through the service; a problem is one notice."""
        from tui.checklist.service import StateError

        try:
            self.service.change_state(change)
        except StateError as e:
            self.notify(e.message, severity=e.severity)
            return False
        return True

    def on_checklist_tree_tick_toggled(self, event: ChecklistTree.TickToggled) -> None:
        event.stop()
        if not self._change_state(lambda st: st.set_tick(event.item_id, event.ticked)):
            return
        if self.canned is not None:
            self.redraw()
            return
        self._rerun_with_rollups(event.item_id)
        self.redraw()

    def on_checklist_tree_not_tickable(self, event: ChecklistTree.NotTickable) -> None:
        event.stop()
        self.notify(event.reason, timeout=4)

    def on_checklist_tree_note_requested(self, event: ChecklistTree.NoteRequested) -> None:
        event.stop()
        item = self.view.item(event.item_id)
        if item is None:
            return

        def saved(text: str | None) -> None:
            if text and self._change_state(lambda st: st.add_note(event.item_id, text)):
                self.redraw()

        self.app.push_screen(NoteScreen(item), saved)

    def on_checklist_tree_details_requested(self, event: ChecklistTree.DetailsRequested) -> None:
        event.stop()
        item = self.view.item(event.item_id)
        if item is not None:
            self.app.push_screen(ItemDetailsScreen(item))

    def on_checklist_tree_verify_requested(self, event: ChecklistTree.VerifyRequested) -> None:
        event.stop()
        if self.canned is None:
            self.verify()

    # FixRequested is not handled here: it bubbles up to the screen that owns fixes.
