"""The monitor: header, live panes, checklist. Owns the poll worker; widgets only draw.

One poll worker, one session: every pane has its own interval and is polled only while it is
on screen; the next poll of a pane is armed only after the last one ended, so polls never
overlap. Writes (cancel/terminate) use their own short session and go to the audit log."""
from __future__ import annotations

import asyncio
import gc
import os
import time

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, TabbedContent, TabPane

from tui.config import Config, TargetError
from tui.db.connect import connect
from tui.db.poller import ConnectionsPoller, ServerPoller, SlowQueriesPoller, TablesPoller
from tui.model.signals import cancel_refusal
from tui.model.snapshot import REMOTE_HOST_MESSAGE, ConnectionState, Snapshot
from tui.screens.messages import ConnectionChanged, PanePolled, PartTurnedOff, ServerPolled, SessionsSignalled
from tui.screens.checklist_pane import ChecklistChecked, ChecklistPane
from tui.screens.compositor import PreflightScreen
from tui.screens.fix_flow import FixCommands, FixController, FixFinished
from tui.screens.preflight_flow import PreflightController
from widgets.checklist_tree import ChecklistTree
from widgets.confirm import ConfirmSignalScreen
from widgets.connections import ConnectionsPane, IdleToggled, SessionsSignalRequested
from widgets._fence import STOCK_TEXTUAL
from widgets.footer import KeyFooter
from widgets.help import HelpScreen
from widgets.header import ServerHeader
from widgets.host import HostPane
from widgets.session_detail import SessionDetailScreen
from widgets.slow_queries import SlowQueriesPane
from widgets.table_sizes import TableSizesPane

BACKOFF_CAP_S = 20.0
PANE_OF_TAB = {"tab-connections": "connections", "tab-slow": "slow", "tab-tables": "tables", "tab-host": "host"}
WIDE_COLUMNS = 180  # from here on the checklist sits beside the live panes; below, key 5 / l shows it
POLL_LOCK_TIMEOUT_MS = 500  # size functions must not queue behind a migration's lock for long


class PreflightApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "pgpreflight"
    COMMANDS = App.COMMANDS | {FixCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("p", "toggle_pause", "Pause / resume polling", id="pause"),
        Binding("r", "refresh_now", "Refresh the pane now", id="refresh"),
        Binding("l", "show_checklist", "Show the checklist", id="checklist"),
        Binding("question_mark", "toggle_help", "Help: keys and legend", key_display="?", id="help"),
        *[Binding(str(n), f"show_tab({n})", f"Show {name}", show=False, id=f"tab.{n}")
          for n, name in enumerate(("Connections", "Slow queries", "Tables", "Host", "the checklist"), start=1)],
    ]

    def __init__(self, config: Config, snapshot: Snapshot | None = None, poll: bool | None = None,
                 connection_history: list[int] | None = None, canned_checklist=None, prefetched=None) -> None:
        """``snapshot`` draws a canned snapshot; with it the poll worker is off unless ``poll``."""
        # Textual reads NO_COLOR in App.__init__ (a monochrome filter on every frame) from a copy of the
        # environment: set it for that call only, or it stays set for everything the process starts later
        saved = os.environ.get("NO_COLOR")
        if config.no_color:
            os.environ["NO_COLOR"] = "1"
        try:
            super().__init__()
        finally:
            if config.no_color and saved is None:
                os.environ.pop("NO_COLOR", None)
        self.config = config
        self.canned = snapshot
        self.canned_checklist = canned_checklist
        self.fixes: FixController | None = None
        self.preflight: PreflightController | None = None
        self.polling = (snapshot is None) if poll is None else poll
        self.connection_history = list(connection_history or [])
        self.paused = False
        self.show_idle = False
        self._wake = asyncio.Event()
        # what a key asked to poll at once: a pane whose listing it changed, or everything ("r")
        self._poll_now: set[str] = set()
        self.server_poller = ServerPoller()
        self.connections_poller = ConnectionsPoller()
        # the first round, polled while the app was imported (tui.db.first_poll): shown at mount
        self.prefetched = prefetched if prefetched is not None and prefetched.info is not None else None
        if self.prefetched is not None:
            self.server_poller = self.prefetched.server_poller
            self.connections_poller = self.prefetched.connections_poller
        self.slow_poller = SlowQueriesPoller()
        self.tables_poller = TablesPoller()
        self.host_poller = None
        self.polls: dict[str, int] = {"server": 0, "connections": 0, "slow": 0, "tables": 0, "host": 0}
        self.signal_requests: list[tuple[str, tuple[int, ...], int]] = []  # (action, pids, confirmations)
        self._frame_held = False
        self._frame_batch = None
        self._first_data_seen = False

    def get_default_screen(self) -> Screen:
        if STOCK_TEXTUAL:  # Textual's own screen and compositor
            return Screen(id="_default")
        return PreflightScreen(id="_default")

    def get_driver_class(self):
        """Textual's Linux driver, with an input thread that sleeps until there is input
        (tui.screens.driver); any other driver (Windows, TEXTUAL_DRIVER) as Textual picks it."""
        chosen = super().get_driver_class()
        if STOCK_TEXTUAL:
            return chosen
        if (chosen.__module__, chosen.__name__) == ("textual.drivers.linux_driver", "LinuxDriver"):
            from tui.screens.driver import QuietLinuxDriver
            return QuietLinuxDriver
        return chosen

    # Every line a frame renders asks for the ANSI theme, through current_theme, which copies the
    # dict of all themes to look its name up: once per theme name instead.
    _theme_memo: tuple = (None, None)

    @property
    def current_theme(self):
        if STOCK_TEXTUAL:
            return App.current_theme.fget(self)
        name, theme = self._theme_memo
        if name != self.theme or theme is None:
            theme = App.current_theme.fget(self)
            self._theme_memo = (self.theme, theme)
        return theme

    def register_theme(self, theme) -> None:
        super().register_theme(theme)
        self._theme_memo = (None, None)

    def unregister_theme(self, theme_name: str) -> None:
        super().unregister_theme(theme_name)
        self._theme_memo = (None, None)

    def compose(self) -> ComposeResult:
        cfg = self.config
        header = ServerHeader(cfg.target.display, cfg.refresh, id="header")
        header.read_only = cfg.read_only
        yield header
        with Horizontal(id="main"):
            with TabbedContent(id="body", initial="tab-connections"):
                with TabPane("1 Connections", id="tab-connections"):
                    yield ConnectionsPane(cfg.idle_in_xact_threshold_s, id="connections")
                with TabPane("2 Slow queries", id="tab-slow"):
                    yield SlowQueriesPane(id="slow")
                with TabPane("3 Tables", id="tab-tables"):
                    yield TableSizesPane(cfg.tables_refresh, id="tables")
                with TabPane("4 Host", id="tab-host"):
                    yield HostPane(id="host")
            yield ChecklistPane(cfg, autorun=self.polling, canned=self.canned_checklist, id="checklist")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.fixes = FixController(self, self.config)
        self.preflight = PreflightController(self, self.fixes)
        self._attach_checklist()
        self._apply_width(self.size.width)
        if self.canned is not None:
            self._show_canned(self.canned)
        if self.polling and self.prefetched is not None:
            pre = self.prefetched
            self.post_message(ConnectionChanged(ConnectionState("connected", last_ok_at=pre.at)))
            if pre.connections is not None:
                self.post_message(PanePolled("connections", pre.connections, info=pre.info))
            else:
                self.post_message(ServerPolled(pre.info))
            for n in self.connections_poller.parts.take_notices():
                self.post_message(PartTurnedOff(n))
        if self.polling:
            self.poll_loop()
        self.call_after_refresh(self._focus_pane)

    def _show_canned(self, snap: Snapshot) -> None:
        header = self.query_one(ServerHeader)
        conns = self.query_one(ConnectionsPane)
        for n in self.connection_history:
            conns.history.append(n)
        if snap.server is not None:
            header.show(info=snap.server, state=ConnectionState("connected"))
        if snap.connections is not None:
            conns.show_snapshot(snap.connections)
        if snap.slow_queries is not None:
            self.query_one(SlowQueriesPane).show_snapshot(snap.slow_queries)
        if snap.tables is not None:
            self.query_one(TableSizesPane).show_snapshot(snap.tables)
        if snap.host is not None:
            self.query_one(HostPane).show_snapshot(snap.host)
        else:
            self.query_one(HostPane).show_message(snap.host_message or REMOTE_HOST_MESSAGE)

    # -- which pane is on screen -----------------------------------------------------
    def visible_pane(self) -> str | None:
        tabs = self._main(TabbedContent)
        return PANE_OF_TAB.get(tabs.active) if tabs is not None else None

    def pane_ready(self, tab_id: str) -> bool:
        """True once the pane on ``tab_id`` shows data (screenshots and benchmarks wait on it)."""
        pane = PANE_OF_TAB.get(tab_id)
        if pane is None:
            return True  # not one of the live panes: its owner decides
        widget = self._main({"connections": ConnectionsPane, "slow": SlowQueriesPane,
                             "tables": TableSizesPane, "host": HostPane}[pane])
        if widget is None:
            return False
        if pane == "host" and not self.config.target.is_local:
            return True
        return widget.snapshot is not None

    def _focus_pane(self) -> None:
        if self.screen is not self.screen_stack[0]:
            return
        try:
            pane_tab = self.query_one(TabbedContent).active
            tables = self.query_one(f"#{pane_tab}").query(DataTable)
            if tables:
                tables.first().focus()
        except Exception:
            pass

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.call_after_refresh(self._focus_pane)
        self._wake.set()  # a pane that just came on screen polls now if its data is stale

    # -- polling -------------------------------------------------------------------
    @work(exclusive=True, group="poll")
    async def poll_loop(self) -> None:
        """Connect, poll what is due and visible, wait until the next thing is due."""
        cfg = self.config
        backoff = 1.0
        conn = None
        last_ok: float | None = None
        due = {"server": 0.0, "size": 0.0, "connections": 0.0, "slow": 0.0, "tables": 0.0, "host": 0.0}
        every = {"server": cfg.refresh, "connections": cfg.refresh, "slow": cfg.refresh,
                 "tables": cfg.tables_refresh, "host": cfg.refresh}
        connected = False
        pre = self.prefetched
        quiet_connect = pre is not None  # the header already says connected: no "connecting…" flash
        if pre is not None:  # the first round is on screen already: the next one is due a refresh after it
            last_ok, connected = pre.at, True
            due["server"] = pre.at + cfg.refresh
            due["size"] = pre.at + cfg.tables_refresh
            if pre.connections is not None:
                due["connections"] = due["server"]
        while True:
            if conn is None or conn.is_closed():
                if not quiet_connect:
                    connected = False
                    self.post_message(ConnectionChanged(ConnectionState("connecting", last_ok_at=last_ok)))
                quiet_connect = False
                try:
                    conn = await connect(cfg.target, timeout=cfg.connect_timeout, role="poll",
                                         statement_timeout_ms=cfg.statement_timeout_ms,
                                         lock_timeout_ms=POLL_LOCK_TIMEOUT_MS)
                    backoff = 1.0
                except TargetError as e:
                    conn = None
                    connected = False
                    self.post_message(ConnectionChanged(ConnectionState("disconnected", e.reason, backoff, last_ok)))
                    await self._sleep(backoff)
                    backoff = min(BACKOFF_CAP_S, backoff * 2)
                    continue
            if self.paused:
                await self._sleep(cfg.refresh)
                continue
            prompt = bool(self._poll_now)  # a key asked: paint it without the round's hold
            for k in (due if "all" in self._poll_now else self._poll_now):
                due[k] = 0.0
            self._poll_now.clear()
            pending = None
            try:
                now = time.monotonic()
                if now >= due["server"]:
                    with_size = now >= due["size"]
                    info = await self.server_poller.poll(conn, with_size=with_size)
                    end = time.monotonic()
                    if with_size:
                        due["size"] = end + cfg.tables_refresh
                    due["server"] = end + cfg.refresh
                    last_ok = end
                    self.polls["server"] += 1
                    pending = info  # posted with the pane's poll when one is due: one frame, not two
                    if not connected:  # say it once, not every poll (each says costs a header redraw)
                        connected = True
                        self.post_message(ConnectionChanged(ConnectionState("connected", last_ok_at=last_ok)))
                pane = self.visible_pane()
                if pane is not None and time.monotonic() >= due[pane]:
                    await self._poll_pane(pane, conn, pending, prompt=prompt)
                    pending = None
                    # a pane polled as often as the server polls in the same round as the server
                    # (one frame a round); polls never overlap, each round runs them one by one
                    due[pane] = due["server"] if every[pane] == cfg.refresh else time.monotonic() + every[pane]
                if pending is not None:
                    self.post_message(ServerPolled(pending))
                    pending = None
            except asyncio.CancelledError:
                raise
            except Exception as e:  # lost connection or a failing query: say so, reconnect
                if pending is not None:
                    self.post_message(ServerPolled(pending))
                    pending = None
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                try:
                    if conn is not None:
                        conn.terminate()
                except Exception:
                    pass
                conn = None
                connected = False
                self.post_message(ConnectionChanged(ConnectionState("disconnected", reason, backoff, last_ok)))
                await self._sleep(backoff)
                backoff = min(BACKOFF_CAP_S, backoff * 2)
                continue
            pane = self.visible_pane()
            next_at = min(due["server"], due[pane] if pane else due["server"])
            await self._sleep(max(0.05, next_at - time.monotonic()))

    async def _poll_pane(self, pane: str, conn, info=None, prompt: bool = False) -> None:
        """Poll a pane and post its data, with ``info`` (this round's server poll) if given.
        If the pane's poll fails, ``info`` is posted on its own before the error goes up."""
        self.polls[pane] += 1
        try:
            if pane == "connections":
                data = await self.connections_poller.poll(conn, include_idle=self.show_idle)
                notices = self.connections_poller.parts.take_notices()
            elif pane == "slow":
                data = await self.slow_poller.poll(conn)
                notices = self.slow_poller.parts.take_notices()
            elif pane == "tables":
                data = await self.tables_poller.poll(conn)
                notices = ()
            else:
                if not self.config.target.is_local:
                    self.post_message(PanePolled(pane, None, REMOTE_HOST_MESSAGE, info=info))
                    return
                if self.host_poller is None:
                    from tui.db.host import HostPoller
                    from tui.db.snapshot import data_directory

                    self.host_poller = HostPoller(await data_directory(conn), self.config.backup_dir)
                data, notices = self.host_poller.poll(), ()
        except BaseException:
            if info is not None:
                self.post_message(ServerPolled(info))
            raise
        self.post_message(PanePolled(pane, data, info=info, prompt=prompt))
        for n in notices:
            self.post_message(PartTurnedOff(n))

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    def _main(self, cls):
        """A widget of the main screen, also while a modal is on top; None while shutting down."""
        try:
            return self.screen_stack[0].query_one(cls)
        except (NoMatches, IndexError):
            return None

    def on_server_polled(self, message: ServerPolled) -> None:
        self._show_server(message.info)

    def _show_server(self, info) -> None:
        header, conns = self._main(ServerHeader), self._main(ConnectionsPane)
        try:
            if header is not None:
                header.show(info=info)
            if conns is not None:
                conns.record_total(info.connections, info.max_connections)
        except NoMatches:  # closing
            pass

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        header = self._main(ServerHeader)
        if header is not None:
            header.show(state=message.state)
        # the header says STALE: the panes' rows are the last poll's, drawn dimmed until the next one
        st = message.state
        stale = st.status != "connected" and st.last_ok_at is not None
        for cls in (ConnectionsPane, SlowQueriesPane, TableSizesPane):
            pane = self._main(cls)
            if pane is not None:
                pane.set_stale(stale)

    def on_pane_polled(self, message: PanePolled) -> None:
        if message.prompt:
            # polled because of a key: the key's own frame (drawn from what the pane had) is painted
            # first, then these rows; a reply that came back quickly would otherwise be drawn
            # into that frame and hold it back by the time it takes to draw a screenful of rows
            self._release_frame()  # a round that landed since the key must not hold that frame back
            self.call_after_refresh(self._draw_polled, message)
        else:
            self._draw_polled(message)

    def _draw_polled(self, message: PanePolled) -> None:
        if self._first_data_seen and not message.prompt:  # the first round and a key's paint at once
            self._hold_frame()
        try:
            if message.info is not None:
                self._show_server(message.info)
            self._show_polled(message)
        except NoMatches:  # a poll that lands while the app is closing: nothing left to draw on
            pass
        if not self._first_data_seen:
            self._first_data_seen = True
            self.call_after_refresh(self._after_first_data)

    # Each widget tells the screen of its repaint when it next idles, and the screen paints as soon
    # as one has: the header, the summary and the table of one poll round made two or three frames
    # a second, each of which re-renders every container the union of its dirty lines crosses.
    FRAME_HOLD_S = 0.02

    def _hold_frame(self) -> None:
        """Hold the screen's repaint for a moment, so that one poll round paints one frame."""
        if self._frame_held:
            return
        self._frame_held = True
        self._frame_batch = self.batch_update()  # public: held open until _release_frame
        self._frame_batch.__enter__()
        self.set_timer(self.FRAME_HOLD_S, self._release_frame, name="frame-hold")

    def _release_frame(self) -> None:
        if not self._frame_held:
            return
        self._frame_held = False
        batch, self._frame_batch = self._frame_batch, None
        if batch is not None:
            batch.__exit__(None, None, None)
        try:
            self.screen.check_idle()  # it skipped its repaint while held: ask it again
        except Exception:
            pass

    def _after_first_data(self) -> None:
        """The first data is on screen: now the checklist may load and run, and the heap settle."""
        pane = self._main(ChecklistPane)
        if pane is not None:
            pane.start()
        self.set_timer(1.0, self._freeze_heap, name="freeze-heap")

    def _freeze_heap(self) -> None:
        """Once the first data is on screen: collect, then move everything alive to the permanent
        generation. The tens of thousands of objects Textual builds at start-up are never garbage,
        and a full collection that walked them cost ~95 ms every ~30 s (~0.2 CPU s/min)."""
        gc.collect()
        gc.freeze()

    def _show_polled(self, message: PanePolled) -> None:
        if message.pane == "connections":
            pane = self._main(ConnectionsPane)
            if pane is not None:
                pane.show_snapshot(message.data)
        elif message.pane == "slow":
            pane = self._main(SlowQueriesPane)
            if pane is not None:
                pane.show_snapshot(message.data)
        elif message.pane == "tables":
            header, pane = self._main(ServerHeader), self._main(TableSizesPane)
            growth = header.info.database_growth_bps if header is not None and header.info else None
            if pane is not None:
                pane.show_snapshot(message.data, growth)
        elif message.pane == "host":
            pane = self._main(HostPane)
            if pane is None:
                return
            if message.data is None:
                pane.show_message(message.message)
            else:
                pane.show_snapshot(message.data)

    def on_part_turned_off(self, message: PartTurnedOff) -> None:
        self.notify(message.notice, severity="warning", timeout=8)

    def on_idle_toggled(self, message: IdleToggled) -> None:
        """The table is redrawn from what it has at once; the sessions are polled again at once,
        with or without the idle ones (not the server or the database size: they did not change)."""
        self.show_idle = message.show_idle
        self._poll_at_once("connections")

    # -- session detail: its locks, on a short session of its own -----------------------
    def on_session_detail_screen_locks_requested(self, message: SessionDetailScreen.LocksRequested) -> None:
        message.stop()
        self.fetch_locks(message.detail, message.pid)

    @work(group="locks", exclusive=True)
    async def fetch_locks(self, detail: SessionDetailScreen, pid: int) -> None:
        from tui.db.sessions import session_locks
        from tui.model.snapshot import SessionLocks

        conn = None
        try:
            conn = await connect(self.config.target, timeout=self.config.connect_timeout, role="detail",
                                 statement_timeout_ms=self.config.statement_timeout_ms,
                                 lock_timeout_ms=POLL_LOCK_TIMEOUT_MS)
            locks = await session_locks(conn, pid)
        except TargetError as e:
            locks = SessionLocks(pid=pid, exists=True, error=f"cannot connect: {e.reason}")
        except Exception as e:  # a failing query (privileges, timeout): the detail says why
            locks = SessionLocks(pid=pid, exists=True, error=str(e).splitlines()[0] if str(e) else type(e).__name__)
        finally:
            if conn is not None:
                conn.terminate()
        if detail.is_attached:
            detail.show_locks(locks)

    # -- cancel / terminate --------------------------------------------------------
    # The writes go through the fix machinery (tui.fixes: cancel_backend, terminate_backend), which
    # refuses in read-only mode, re-checks the sessions, and writes the audit log.
    def on_sessions_signal_requested(self, message: SessionsSignalRequested) -> None:
        sessions = message.sessions
        pids = [s.pid for s in sessions]
        refusal = cancel_refusal(sessions) if message.action == "cancel" else None
        if refusal is not None:  # before any confirmation: cancel cannot end an idle transaction
            self.notify(refusal, severity="warning", timeout=6)
            return
        if self.config.read_only:
            self.run_signal(message.action, pids, 0)  # refused (and logged) by the fix machinery
            return

        def second(yes: str | None) -> None:
            if yes == "terminate":
                self.run_signal("terminate", pids, 2)

        def first(action: str | None) -> None:
            if action == "cancel":
                self.run_signal("cancel", pids, 1)
            elif action == "terminate":  # terminate needs a second confirmation
                self.push_screen(ConfirmSignalScreen(sessions, "terminate", second=True), second)

        self.push_screen(ConfirmSignalScreen(sessions, message.action), first)

    SIGNAL_SETTLE_S = 3.0  # how long the result of a signal is watched for in pg_stat_activity

    @work(group="signal")
    async def run_signal(self, action: str, pids: list[int], confirmations: int) -> None:
        """Send the signal through the fix machinery, then say what pg_stat_activity shows of the
        pids afterwards ("terminated 5026", "5026 is still idle in transaction"): never assumed."""
        from tui.db.sessions import session_states
        from tui.fixes.base import FixRefused, run_fix
        from tui.model.signals import outcome, settled

        self.signal_requests.append((action, tuple(pids), confirmations))
        fix = "cancel_backend" if action == "cancel" else "terminate_backend"
        watch = None
        try:
            if confirmations:  # not in read-only mode, where the fix machinery refuses (and logs it)
                watch = await connect(self.config.target, timeout=self.config.connect_timeout, role="signal",
                                      statement_timeout_ms=self.config.statement_timeout_ms)
            before = await session_states(watch, pids) if watch is not None else {}
            res = await run_fix(self.config, fix, {"pids": list(pids)}, confirmations=confirmations, record=False)
            if not res.ok or watch is None:
                self.post_message(SessionsSignalled(res.summary, res.ok))
                return
            deadline = time.monotonic() + self.SIGNAL_SETTLE_S
            after = await session_states(watch, pids)
            while not settled(action, before, after) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)  # a terminated backend takes a moment to leave pg_stat_activity
                after = await session_states(watch, pids)
            summary, ok = outcome(action, pids, before, after)
            self.post_message(SessionsSignalled(summary, ok))
        except FixRefused as e:
            self.post_message(SessionsSignalled(e.reason, False))
        except TargetError as e:
            self.post_message(SessionsSignalled(f"{action} failed: cannot connect: {e.reason}", False))
        except Exception as e:  # the check of the result failed (the server went away): say so, not "done"
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.post_message(SessionsSignalled(f"{action} sent; its result is unknown: {reason}", False))
        finally:
            if watch is not None:
                watch.terminate()

    def on_sessions_signalled(self, message: SessionsSignalled) -> None:
        self.notify(message.summary, severity="information" if message.ok else "warning", timeout=6)
        self.action_refresh_now()

    # -- actions -------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        header = self._main(ServerHeader)
        header.paused = self.paused
        header.show()
        self.notify("Paused" if self.paused else "Resumed", timeout=2)

    def action_refresh_now(self) -> None:
        self._poll_at_once("all")

    def _poll_at_once(self, what: str) -> None:
        """A key asked for a poll now (a pane, or "all"). A poll round's repaint held back at this
        moment is let go: the key's own frame must not wait for the rest of that round."""
        self._poll_now.add(what)
        self._wake.set()
        self._release_frame()

    def action_show_tab(self, n: int) -> None:
        tabs = self._main(TabbedContent)
        if tabs is None or self.screen is not self.screen_stack[0]:
            return
        panes = list(tabs.query(TabPane))
        if n == len(panes) + 1:
            self.action_show_checklist()
            return
        if 1 <= n <= len(panes):
            self.screen_stack[0].remove_class("-checklist")
            tabs.active = panes[n - 1].id
            self.call_after_refresh(self._focus_pane)

    # -- checklist and fixes -----------------------------------------------------------
    def _attach_checklist(self) -> None:
        pane = self._main(ChecklistPane)
        if pane is not None and self.fixes is not None:
            self.fixes.checklist = pane.checklist
            self.fixes.config = pane.config  # with the app root the database's checklist was chosen with

    def on_checklist_checked(self, message: ChecklistChecked) -> None:
        self._attach_checklist()

    def on_checklist_tree_fix_requested(self, message: ChecklistTree.FixRequested) -> None:
        message.stop()
        pane = self._main(ChecklistPane)
        if self.fixes is not None and pane is not None and pane.checklist is not None:
            self.fixes.request_fix(message.item_id, pane.checklist)

    def on_checklist_tree_fix_all_requested(self, message: ChecklistTree.FixAllRequested) -> None:
        message.stop()
        self.action_fix_all()

    def on_checklist_tree_signoff_requested(self, message: ChecklistTree.SignoffRequested) -> None:
        message.stop()
        self.action_signoff()

    def action_fix_all(self) -> None:
        """`F`: one combined plan of every failing item's fix."""
        if self.preflight is not None:
            self.preflight.request_all(self._main(ChecklistPane))

    def action_signoff(self) -> None:
        """`S`: write the sign-off report."""
        if self.preflight is not None:
            self.preflight.request_signoff(self._main(ChecklistPane))

    def on_fix_finished(self, message: FixFinished) -> None:
        pane = self._main(ChecklistPane)
        if pane is not None:
            pane.verify()  # the item and every roll-up that reads it
        self.action_refresh_now()

    async def action_quit(self) -> None:
        if self.preflight is not None and self.fixes is not None and self.fixes.running_item == "preflight":
            self.notify("Stopping the preflight run and cleaning up…", timeout=5)
            self.preflight.cancel()
            deadline = time.monotonic() + 60
            while self.fixes.running_item == "preflight" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        if self.fixes is not None and self.fixes.running:
            self.notify("Stopping the running fix and cleaning up…", timeout=5)
            await self.fixes.shutdown()
        self.exit()

    # -- layout: the checklist beside the panes when there is room ------------------------
    def on_resize(self, event) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        self.screen_stack[0].set_class(width >= WIDE_COLUMNS, "-wide")

    def action_show_checklist(self) -> None:
        base = self.screen_stack[0]
        if self.screen is not base:
            return
        if base.has_class("-wide"):
            base.remove_class("-checklist")
        else:
            base.toggle_class("-checklist")
        if base.has_class("-checklist") or base.has_class("-wide"):
            self.call_after_refresh(self._focus_checklist)
        else:
            self.call_after_refresh(self._focus_pane)

    def _focus_checklist(self) -> None:
        try:
            self.query_one("#checklist-tree").focus()
        except NoMatches:
            pass

    def action_toggle_help(self) -> None:
        """`?`: the keys of what is in view, the app's keys and the legend (widgets/help.py)."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen.for_screen(self.screen, self.config.idle_in_xact_threshold_s))

    def get_system_commands(self, screen):
        """Every action in the command palette under a namespaced name ("session: terminate"),
        besides the fixes (FixCommands): each binding of PALETTE runs its binding's own action, so
        the palette cannot drift from the keys (tests/ui/test_palette.py holds every binding to it)."""
        yield SystemCommand("app: theme", "change the colour theme", self.action_change_theme)
        yield SystemCommand("app: screenshot", "save an SVG of the screen into the state directory",
                            self.action_save_screenshot)
        if screen.maximized is not None:
            yield SystemCommand("app: minimize", "restore the maximized widget", screen.action_minimize)
        elif screen.focused is not None and screen.focused.allow_maximize:
            yield SystemCommand("app: maximize", "maximize the focused widget", screen.action_maximize)
        base = self.screen_stack[0] if self.screen_stack else None
        owners = {"app": self, "connections": self._main(ConnectionsPane), "slow": self._main(SlowQueriesPane),
                  "tables": self._main(TableSizesPane), "checklist": self._main(ChecklistTree)}
        titles: set[str] = set()
        for binding_id, (owner, title) in PALETTE.items():
            node = owners.get(owner)
            binding = _binding(type(node), binding_id) if node is not None else None
            if binding is None or title in titles:
                continue
            if node.check_action(binding.action.split("(", 1)[0], ()) is False:
                continue  # e.g. `f` while fixes are off: its refusing twin is the entry
            titles.add(title)
            keys = "/".join(self.get_key_display(Binding(k.strip(), binding.action)) for k in binding.key.split(","))
            where = {"app": "", "connections": " in Connections", "slow": " in Slow queries",
                     "tables": " in Tables", "checklist": " in the checklist"}[owner]
            yield SystemCommand(title, f"{keys}{where}: {binding.description}",
                                lambda node=node, owner=owner, action=binding.action: self._palette_run(
                                    owner, node, action))
        pane = self._main(ChecklistPane)
        if pane is not None and base is not None:
            from tui.checklist.spec import bundled_names

            for name in bundled_names():
                yield SystemCommand(f"checklist: use {name}", "remembered for this database from now on",
                                    lambda name=name: pane.use_checklist(name))

    async def _palette_run(self, owner: str, node, action: str) -> None:
        """Bring the pane of a palette entry into view (as its key would find it), then run the
        binding's action on it."""
        if owner == "connections":
            self.action_show_tab(1)
        elif owner == "slow":
            self.action_show_tab(2)
        elif owner == "tables":
            self.action_show_tab(3)
        elif owner == "checklist":
            base = self.screen_stack[0]
            if self.screen is base and not base.has_class("-wide") and not base.has_class("-checklist"):
                self.action_show_checklist()
        await self.run_action(action, node)

    def action_save_screenshot(self) -> None:
        """The palette's "app: screenshot": an SVG into <state dir>/screenshots, and where it went."""
        folder = self.config.state_dir / "screenshots"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = self.save_screenshot(path=str(folder))
        except OSError as e:
            self.notify(f"screenshot not saved: {e}", severity="warning", timeout=6)
            return
        self.notify(f"screenshot saved: {path}", timeout=6)


# binding id → (whose binding, palette name). Every binding with an id is here, or in
# tests/ui/test_palette.py's list of modal-internal keys with the reason it is left out.
PALETTE: dict[str, tuple[str, str]] = {
    "quit": ("app", "app: quit"),
    "help": ("app", "app: keys and legend (help)"),
    "pause": ("app", "app: pause / resume polling"),
    "refresh": ("app", "app: refresh now"),
    "checklist": ("app", "app: show the checklist"),
    "tab.1": ("app", "app: show connections"),
    "tab.2": ("app", "app: show slow queries"),
    "tab.3": ("app", "app: show tables"),
    "tab.4": ("app", "app: show host"),
    "tab.5": ("app", "app: show the checklist"),
    "connections.cancel": ("connections", "session: cancel"),
    "connections.terminate": ("connections", "session: terminate"),
    "connections.tag": ("connections", "session: tag"),
    "connections.idle": ("connections", "session: show or hide idle sessions"),
    "connections.filter": ("connections", "session: filter"),
    "connections.sort": ("connections", "session: change the sort order"),
    "connections.chains": ("connections", "session: blocking chains"),
    "connections.detail": ("connections", "session: details (query, locks, ages)"),
    "connections.query_line": ("connections", "session: show the whole query under the table"),
    "tables.partitions": ("tables", "tables: fold or unfold a partitioned table's partitions"),
    "slow.order": ("slow", "slow queries: sort by mean or total time"),
    "slow.detail_d": ("slow", "slow queries: show the full query"),
    "slow.detail": ("slow", "slow queries: show the full query"),
    "checklist.tick": ("checklist", "checklist: tick"),
    "checklist.note": ("checklist", "checklist: note"),
    "checklist.details": ("checklist", "checklist: details"),
    "checklist.fix": ("checklist", "checklist: fix the selected item"),
    "checklist.fix.refused": ("checklist", "checklist: fix the selected item"),
    "checklist.verify": ("checklist", "checklist: verify again now"),
    "checklist.next_open": ("checklist", "checklist: next open item"),
    "checklist.previous_open": ("checklist", "checklist: previous open item"),
    "checklist.fix_all": ("checklist", "fix: every failing item"),
    "checklist.signoff": ("checklist", "report: write the sign-off"),
}


def _binding(cls, binding_id: str) -> Binding | None:
    for klass in cls.__mro__:
        for b in klass.__dict__.get("BINDINGS", ()) or ():
            if isinstance(b, Binding) and b.id == binding_id:
                return b
    return None
