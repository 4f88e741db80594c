"""The checklist pane: a self-contained container the app puts in a tab.

It opens its own session (application_name pgpreflight/check), runs the checks in a worker (never
in a message handler), verifies again every ``config.checklist_refresh`` seconds and on `v`, and
keeps ticks and notes in the state file. `f` on an item posts ``ChecklistTree.FixRequested`` up:
the screen that owns fixes handles it, then calls :meth:`ChecklistPane.verify` again.

Runs stand-alone too (``ChecklistPane(config)`` in any App), and with ``canned=`` results for tests.
"""
from __future__ import annotations

import asyncio
import time
from typing import Iterable

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the checklist machinery is imported when the pane starts, not for the first frame
    from tui.checklist.spec import Checklist
    from tui.checklist.state import ChecklistState, DatabaseIdentity
from tui.config import Config, TargetError
from tui.model.checklist import ChecklistView, ItemResult
from widgets.checklist_tree import ChecklistProgress, ChecklistTree, ItemDetailsScreen, NoteScreen


class ChecklistChecked(Message):
    """A whole run finished (or failed): the app may show the counts in its tab title."""

    def __init__(self, view: ChecklistView) -> None:
        super().__init__()
        self.view = view


class ChecklistPane(Vertical):
    DEFAULT_CSS = """
    ChecklistPane { height: 1fr; }
    """

    def __init__(self, config: Config, *, checklist: Checklist | None = None,
                 canned: tuple[dict[str, ItemResult], ChecklistState] | None = None,
                 autorun: bool = True, id: str | None = "checklist-pane") -> None:
        super().__init__(id=id)
        self.config = config
        self.checklist: Checklist | None = checklist
        self.load_error: str | None = None
        self.results: dict[str, ItemResult] = {}
        self.state: ChecklistState | None = None
        self.identity: DatabaseIdentity | None = None
        self.canned = canned
        self.autorun = autorun and canned is None
        self.running = False
        self.last_error: str | None = None
        self.checked_at: float | None = None
        self.last_duration: float | None = None
        self.runs = 0
        self.source = "--checklist" if config.checklist else ""
        self.signoff_line = ""  # "sign-off written to PATH · READY" after S
        self._conn = None

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
        """Load the checklist, draw it, verify it now and every checklist_refresh seconds."""
        if self._started or not self.is_mounted:
            return
        self._started = True
        self._load()
        if self.autorun and self.load_error is None:
            self.verify()
            self.set_interval(self.config.checklist_refresh, self.verify, name="checklist-refresh")

    def _load(self) -> None:
        from tui.checklist.runner import checklist_for
        from tui.checklist.spec import ChecklistError

        if self.checklist is None and (self.config.checklist or not self.autorun):
            # without --checklist the database's own choice (remembered, or its pgpreflight.checklist
            # setting) is resolved on the first run, once there is a session
            try:
                self.checklist = checklist_for(self.config)
            except ChecklistError as e:
                self.load_error = str(e)
        if self.canned is not None:
            self.results, self.state = dict(self.canned[0]), self.canned[1]
            self.identity = self.state.identity
            self.checked_at = max((r.checked_at for r in self.results.values()), default=None)
        self.redraw()

    async def on_unmount(self) -> None:
        await self._close()

    # -- drawing ---------------------------------------------------------------------------
    @property
    def view(self) -> ChecklistView:
        from tui.checklist.runner import build_view

        if self.checklist is None:
            return ChecklistView("?", "checklist", self.config.target.display, (), error=self.load_error)
        return build_view(self.checklist, self.results, self.state, self.config.target.display,
                          checked_at=self.checked_at, running=self.running, error=self.last_error)

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
        """Verify again now (all items, or ``only`` those ids). Runs never overlap."""
        if self.canned is not None or self.load_error is not None:
            return
        if self.checklist is None and only is not None:
            return
        if self.running:
            return
        self._run(list(only) if only is not None else None)

    async def _session(self):
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        from tui.db.connect import connect

        self._conn = await connect(self.config.target, timeout=self.config.connect_timeout, role="check",
                                   statement_timeout_ms=self.config.statement_timeout_ms)
        return self._conn

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception:
                conn.terminate()

    @work(exclusive=True, group="checklist", exit_on_error=False)
    async def _run(self, only: list[str] | None) -> None:
        from tui.checklist.runner import check_connection
        self.running = True
        self.redraw()
        try:
            conn = await self._session()
            if self.checklist is None:
                from tui.checklist.runner import resolve_checklist
                from tui.checklist.spec import ChecklistError

                try:
                    resolved = await resolve_checklist(conn, self.config)
                except ChecklistError as e:
                    self.load_error = str(e)
                    return
                self.config, self.checklist = resolved.config, resolved.checklist
                self.source = resolved.source
            run = await check_connection(conn, self.config, self.checklist, only=only)
            if only is None:
                self.results = dict(run.results)
            else:
                self.results.update(run.results)
            self.state, self.identity = run.state, run.identity
            self.last_duration = run.duration_s
            self.checked_at = run.checked_at
            self.last_error = None
            for w in run.state.warnings:
                self.notify(w, severity="warning", timeout=10)
        except TargetError as e:
            self.last_error = f"cannot verify: {e.reason}"
            await self._close()
        except Exception as e:  # connection lost mid-run and the like: keep the last results
            self.last_error = f"cannot verify: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            await self._close()
        finally:
            self.running = False
            self.runs += 1
            self.redraw()
            if self.runs == 1 and self.results:
                self.query_one(ChecklistTree).place_cursor_on_first_open()
            self.post_message(ChecklistChecked(self.view))

    def show_signoff(self, line: str) -> None:
        self.signoff_line = line
        self.redraw()

    def use_checklist(self, name: str) -> bool:
        """Switch to checklist ``name`` (chosen in the TUI): it is remembered for this database with the
        app root, and verified now."""
        from dataclasses import replace

        from tui.checklist.runner import remember_choice
        from tui.checklist.spec import ChecklistError, load_checklist

        try:
            checklist = load_checklist(name)
        except ChecklistError as e:
            self.notify(str(e), severity="error")
            return False
        config = replace(self.config, checklist=name)
        if self.identity is not None and not self._change_state(lambda st: remember_choice(st, config)):
            return False
        self.config, self.checklist, self.source = config, checklist, "chosen here"
        self.results = {}
        self.load_error = None
        self.redraw()
        self._run(None)
        self.notify(f"checklist {name}: remembered for this database", timeout=4)
        return True

    # -- keys from the tree -----------------------------------------------------------------
    def _rerun_with_rollups(self, item_id: str) -> None:
        if self.checklist is None:
            return
        ids = {item_id} | {i.id for i in self.checklist.items() if i.probe.kind == "items"}
        self.verify(only=ids)

    def _change_state(self, change) -> bool:
        from tui.checklist.state import update_state
        if self.identity is None:
            self.notify("not verified yet: the database identity is not known", severity="warning")
            return False
        try:
            self.state = update_state(self.config.state_dir, self.identity, change)
        except OSError as e:
            self.notify(f"cannot write the checklist state: {e.strerror or e}", severity="error")
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
