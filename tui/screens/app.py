"""The monitor: header, live panes, checklist. Owns the poll worker; widgets only draw.

One poll worker, one session: every pane has its own interval and is polled only while it is
on screen; the next poll of a pane is armed only after the last one ended, so polls never
overlap. Writes (cancel/terminate) use their own short session and go to the audit log."""
from __future__ import annotations

import asyncio
import gc
import os
import sys
import time

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, TabbedContent, TabPane

from datetime import datetime, timezone

from tui.alerts import AlertBook, Figures, Thresholds
from tui.config import Config, TargetError
from tui.db.connect import connect
from tui.model import events as E
from tui.model.digest import TimelineDigest
from tui.model.series import Timeline
from tui.model.signals import cancel_refusal
from tui.model.snapshot import REMOTE_HOST_MESSAGE, ConnectionState, Snapshot
from tui.screens.messages import ConnectionChanged, PanePolled, PartTurnedOff, ServerPolled, SessionsSignalled
from tui.screens.checklist_pane import ChecklistChecked, ChecklistPane
from tui.screens.compositor import PreflightScreen
from tui.screens.fix_flow import FixCommands, FixController, FixFinished
from tui.screens.preflight_flow import PreflightController
from widgets.checklist_tree import ChecklistTree
from widgets.alerts import AlertsScreen
from widgets.confirm import ConfirmSignalScreen
from widgets.connections import ConnectionsPane, IdleToggled, SessionsSignalRequested
from widgets._fence import STOCK_TEXTUAL
from widgets.footer import KeyFooter
from widgets.help import HelpScreen
from widgets.header import ServerHeader
from widgets.host import HostPane
from widgets.timeline import TimelinePane
from widgets.session_detail import SessionDetailScreen
from widgets.slow_queries import SlowQueriesPane
from widgets.table_sizes import TableSizesPane

OFF_SCREEN_HOST_S = 60.0  # the host off screen: once a minute, for the disk alert
POLL_LOCK_TIMEOUT_MS = 500  # the detail's lock query must not queue behind a migration's lock for long
ALERT_LOG_KEEP = 200  # raised and cleared alerts the list (key a) keeps
PANE_OF_TAB = {"tab-connections": "connections", "tab-slow": "slow", "tab-tables": "tables", "tab-host": "host"}
# the Timeline tab polls no pane of its own: its graphs come from the server poll of every round
WIDE_COLUMNS = 180  # from here on the checklist sits beside the live panes; below, key 5 / l shows it


class PreflightApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "pgpreflight"
    COMMANDS = App.COMMANDS | {FixCommands}
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("p", "toggle_pause", "Pause / resume polling", id="pause"),
        Binding("r", "refresh_now", "Refresh the pane now", id="refresh"),
        Binding("l", "show_checklist", "Show the checklist", id="checklist"),
        Binding("a", "show_alerts", "Alerts: raised and recent", id="alerts"),
        # while replaying a recording (pgpreflight replay FILE); hidden otherwise (check_action)
        Binding("full_stop", "replay_step(1)", "Replay: next round", key_display=".", id="replay.next"),
        Binding("comma", "replay_step(-1)", "Replay: previous round", key_display=",", id="replay.previous"),
        Binding("greater_than_sign", "replay_jump(60)", "Replay: a minute on", key_display=">", id="replay.forward"),
        Binding("less_than_sign", "replay_jump(-60)", "Replay: a minute back", key_display="<", id="replay.back"),
        Binding("G", "replay_goto", "Replay: go to a time", id="replay.goto"),
        Binding("question_mark", "toggle_help", "Help: keys and legend", key_display="?", id="help"),
        *[Binding(str(n), f"show_tab({n})", f"Show {name}", show=False, id=f"tab.{n}")
          for n, name in enumerate(("Connections", "Slow queries", "Tables", "Host", "the checklist", "the timeline"),
                                   start=1)],
        Binding("g", "show_tab(6)", "Graphs: the timeline", id="timeline"),
        Binding("L", "launch_spike", "Demo: launch spike", id="demo.spike"),
    ]

    def __init__(self, config: Config, snapshot: Snapshot | None = None, poll: bool | None = None,
                 connection_history: list[int] | None = None, canned_checklist=None, prefetched=None,
                 source=None, recorder=None, thresholds=None) -> None:
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
        # the event source: the monitor service (made at mount), or a recording's Replayer
        self.source = source
        self.replaying = source is not None and not hasattr(source, "set_every")
        self.recorder = recorder
        # the first round, polled while the app was imported (tui.db.first_poll): the monitor yields it first
        self.prefetched = prefetched if prefetched is not None and prefetched.info is not None else None
        self.figures = Figures()
        self.alert_book = AlertBook(thresholds if thresholds is not None else Thresholds())
        self._thresholds_given = thresholds is not None
        self._thresholds_error = ""
        self.active_alerts: dict[str, E.AlertChanged] = {}
        self.alert_log: list[E.AlertChanged] = []
        self.timeline = Timeline(refresh_s=config.refresh)  # the graphs' series (tui.model.series), fed every round
        self.target_display: str | None = None  # a recording's target, while replaying
        self.spike = None  # the demo's launch spike (key L): set by tui.demo.run
        self.digest = TimelineDigest()  # the sign-off's timeline: peaks, alerts, fixes
        self._latest: dict[str, PanePolled] = {}  # each pane's last poll
        self._undrawn: set[str] = set()  # polled while off screen, not drawn yet
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
        header = ServerHeader(self.target_display or cfg.target.display, cfg.refresh, id="header")
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
                with TabPane("6 Timeline", id="tab-timeline"):
                    yield TimelinePane(self.timeline, id="timeline")
            yield ChecklistPane(cfg, autorun=self.polling and not self.replaying, canned=self.canned_checklist,
                                id="checklist")
        yield KeyFooter(compact=True)

    def on_mount(self) -> None:
        self.fixes = FixController(self, self.config)
        self.preflight = PreflightController(self, self.fixes)
        self._attach_checklist()
        self._apply_width(self.size.width)
        if self.canned is not None:
            self._show_canned(self.canned)
        if self.polling:
            self._resolve_thresholds()
            self._start_source()
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
            tab = self.query_one(f"#{pane_tab}")
            tables = tab.query(DataTable)
            if tables:
                tables.first().focus()
            elif tab.query(TimelinePane):
                tab.query_one(TimelinePane).query("VerticalScroll").first().focus()
        except Exception:
            pass

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.call_after_refresh(self._focus_pane)
        self._steer()  # a pane that just came on screen polls now if its data is stale

    # -- polling: a thin pump over the monitor service (tui.db.monitor) --------------------
    def _wanted(self) -> set[str]:
        """What the monitor polls: the server, the sessions (the alerts on long queries, lock waits
        and idle transactions read them) and the limits always; the host too on a local server (off
        screen once a minute, for the disk alert); the slow queries and tables only while on screen."""
        wanted = {"server", "connections", "limits"}
        if self.config.target.is_local:
            wanted.add("host")
        pane = self.visible_pane()
        if pane is not None:
            wanted.add(pane)
        return wanted

    def _steer(self) -> None:
        """Tell the source what is on screen now (a change of tab, of layout)."""
        src = self.source
        if src is None:
            return
        pane = self.visible_pane()
        if hasattr(src, "set_every"):
            src.set_every("host", self.config.refresh if pane == "host" else OFF_SCREEN_HOST_S)
        src.wanted = self._wanted()
        if pane is not None and pane in self._undrawn:  # polled while off screen: draw its last poll now
            self._undrawn.discard(pane)
            msg = self._latest.get(pane)
            if msg is not None:
                self.post_message(PanePolled(pane, msg.data, msg.message))

    @property
    def polls(self) -> dict[str, int]:
        src = self.source
        polls = getattr(src, "polls", None)
        return dict(polls) if polls is not None else {p: 0 for p in E.PANES}

    def _start_source(self) -> None:
        if self.source is None:
            from tui.db.monitor import Monitor

            self.source = Monitor(self.config, prefetched=self.prefetched, show_idle=self.show_idle,
                                  wanted=self._wanted())
            self.source.set_every("host", OFF_SCREEN_HOST_S)
        self.prefetched = None
        self.pump()

    @work(exclusive=True, group="poll")
    async def pump(self) -> None:
        """Every event of the source to the screen (and the recorder): a round's events are drawn
        together when its RoundEnded comes, so that one round paints one frame."""
        gen = self.source.events()
        pending: list = []
        try:
            async for ev in gen:
                rec = self.recorder
                if isinstance(ev, E.RoundEnded):
                    self._take_round(pending)  # its alerts are recorded before its end, so kept with it
                    pending = []
                    if rec is not None:
                        rec.take(ev)
                    continue
                if rec is not None:
                    rec.take(ev)
                if isinstance(ev, E.ConnectionChanged):
                    if pending:  # a round cut short by the failure: what it got is still news
                        self._take_round(pending)
                        pending = []
                    self._take(ev)
                    self.post_message(ConnectionChanged(ev.state))
                elif isinstance(ev, E.PartTurnedOff):
                    self.post_message(PartTurnedOff(ev.notice))
                elif isinstance(ev, E.AlertChanged):  # a recording's alerts (replay)
                    self.digest.take(ev, self._event_time())
                    self._show_alert(ev, toast=False)
                elif isinstance(ev, (E.FixRan, E.ChecklistRan)):
                    self.digest.take(ev, self._event_time())
                else:
                    pending.append(ev)
        finally:
            await gen.aclose()

    def _take(self, ev) -> None:
        self.figures.take(ev)
        self.digest.take(ev, self._event_time())
        timeline = self.timeline
        if timeline is not None:
            timeline.take(ev)

    def _take_round(self, events: list) -> None:
        info = None
        polled: dict[str, PanePolled] = {}
        for ev in events:
            self._take(ev)
            if isinstance(ev, E.ServerPolled):
                info = ev.info
            elif isinstance(ev, E.ConnectionsPolled):
                polled["connections"] = PanePolled("connections", ev.snap, prompt=ev.prompt)
            elif isinstance(ev, E.SlowQueriesPolled):
                polled["slow"] = PanePolled("slow", ev.snap, prompt=ev.prompt)
            elif isinstance(ev, E.TablesPolled):
                polled["tables"] = PanePolled("tables", ev.snap, prompt=ev.prompt)
            elif isinstance(ev, E.HostPolled):
                polled["host"] = PanePolled("host", ev.snap, ev.message, prompt=ev.prompt)
        visible = self.visible_pane()
        with_info = False
        for pane, msg in polled.items():
            self._latest[pane] = msg
            if pane == visible:
                msg.info, with_info = info, True
                self._undrawn.discard(pane)
                self.post_message(msg)
            else:
                self._undrawn.add(pane)
        if info is not None and not with_info:
            self.post_message(ServerPolled(info))
        if info is not None or polled:
            self._round_drawn()
        if self.replaying:
            self._show_replay_position()

    def _event_time(self):
        """The wall time of the event being drawn: now, or the recorded time while replaying."""
        if self.replaying and getattr(self.source, "position", None) is not None:
            return self.source.position
        return datetime.now(timezone.utc)

    def _round_drawn(self) -> None:
        """After each round: the thresholds, and the graphs if they are on screen."""
        if not self.replaying:
            for a in self.alert_book.update(self.figures.threshold_figures(), datetime.now(timezone.utc)):
                ev = E.AlertChanged(a.name, a.value, a.threshold, a.started_at, a.cleared_at, a.message)
                if self.recorder is not None:
                    self.recorder.take(ev)
                self.digest.take(ev)
                self._show_alert(ev)
        self._draw_timeline()

    def _draw_timeline(self) -> None:
        tabs = self._main(TabbedContent)
        if tabs is not None and tabs.active == "tab-timeline":
            pane = self._main(TimelinePane)
            if pane is not None:
                pane.show(self.timeline)

    # -- alerts ---------------------------------------------------------------------------
    def _show_alert(self, ev, toast: bool = True) -> None:
        """An alert raised or cleared: the header's count, a toast, and the list (key a)."""
        if ev.raised:
            self.active_alerts[ev.name] = ev
        else:
            self.active_alerts.pop(ev.name, None)
        self.alert_log.append(ev)
        del self.alert_log[:-ALERT_LOG_KEEP]
        header = self._main(ServerHeader)
        if header is not None:
            header.alerts = tuple(self.active_alerts.values())
            header.show()
        if toast:
            if ev.raised:
                self.notify(f"ALERT {ev.name}: {ev.message}", severity="error", timeout=10)
            else:
                self.notify(f"cleared {ev.name}: {ev.message}", severity="information", timeout=6)
        screen = self.screen
        if isinstance(screen, AlertsScreen):
            screen.show(tuple(self.active_alerts.values()), tuple(self.alert_log))

    def on_alerts_screen_thresholds_confirmed(self, message: AlertsScreen.ThresholdsConfirmed) -> None:
        self.action_confirm_thresholds()

    def action_confirm_thresholds(self) -> None:
        """The thresholds in force are confirmed for this database (stored with its checklist state)."""
        pane = self._main(ChecklistPane)
        t = self.alert_book.thresholds
        if pane is None or not hasattr(pane, "confirm_thresholds"):
            self.notify("not stored yet: the checklist's 'Alert thresholds defined' is still ticked by hand "
                        "(space on the item)", severity="warning", timeout=8)
            return
        pane.confirm_thresholds(dict(t.values))

    # -- replay: the same screens on a recording (tui.replay.Replayer is the source) ------------
    def check_action(self, action: str, parameters) -> bool | None:
        if action.startswith("replay_"):
            return self.replaying
        if action == "launch_spike":
            return self.spike is not None and not self.replaying
        return True

    def action_replay_step(self, n: int) -> None:
        if self.replaying:
            self.source.step(n)

    def action_replay_jump(self, seconds: float) -> None:
        if self.replaying:
            self.source.jump(seconds)

    def action_replay_goto(self) -> None:
        if not self.replaying:
            return
        from widgets.goto_time import GotoTimeScreen

        first, last = self.source.span()
        position = self.source.position or first

        def go(when) -> None:
            if when is not None:
                self.source.goto(when)

        self.push_screen(GotoTimeScreen(position, first, last), go)

    def _show_replay_position(self) -> None:
        header = self._main(ServerHeader)
        if header is not None and self.replaying:
            header.replay_at = self.source.position
            header.show()

    def action_show_alerts(self) -> None:
        """`a`: the alerts raised and not yet cleared, then the recent ones, with their times."""
        if isinstance(self.screen, AlertsScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(AlertsScreen(tuple(self.active_alerts.values()), tuple(self.alert_log),
                                      self.alert_book.thresholds))

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
        if self.source is not None:
            self.source.show_idle = message.show_idle  # the monitor lists the sessions again at once
        self._release_frame()

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
        if self.source is not None:
            (self.source.pause if self.paused else self.source.resume)()
        header = self._main(ServerHeader)
        header.paused = self.paused
        header.show()
        self.notify("Paused" if self.paused else "Resumed", timeout=2)

    def action_refresh_now(self) -> None:
        self._poll_at_once("all")

    def _poll_at_once(self, what: str) -> None:
        """A key asked for a poll now (a pane, or "all"). A poll round's repaint held back at this
        moment is let go: the key's own frame must not wait for the rest of that round."""
        if self.source is not None:
            self.source.poll_now({what})
        self._release_frame()

    def action_show_tab(self, n: int) -> None:
        """1–4 the live panes, 5 the checklist, 6 the timeline."""
        tabs = self._main(TabbedContent)
        if tabs is None or self.screen is not self.screen_stack[0]:
            return
        if n == 5:
            self.action_show_checklist()
            return
        tab = {1: "tab-connections", 2: "tab-slow", 3: "tab-tables", 4: "tab-host", 6: "tab-timeline"}.get(n)
        if tab is not None:
            self.screen_stack[0].remove_class("-checklist")
            tabs.active = tab
            self.call_after_refresh(self._focus_pane)
            if tab == "tab-timeline":
                self.call_after_refresh(self._draw_timeline)

    # -- the demo's launch spike (tui.demo.spike) ------------------------------------------
    def action_launch_spike(self) -> None:
        """`L` in the demo: a burst of connections, slow queries and a lock wait; alerts fire and clear."""
        self.run_worker(self._spike(), group="spike", exclusive=False, name="spike")

    async def _spike(self) -> None:
        """The demo hands in ``spike``: an async callable(progress) -> summary line, raising with a
        one-line message (tui.demo.run builds it on tui.demo.spike; the App does not import the demo)."""
        if self.spike is None:
            self.notify("the launch spike is the demo's: run pgpreflight demo", severity="warning", timeout=6)
            return
        try:
            line = await self.spike(lambda text: self.notify(text, title="launch spike", markup=False, timeout=5))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.notify(f"launch spike: {e}", severity="warning", timeout=8)
            return
        self.notify(line, title="launch spike", markup=False, timeout=8)

    # -- checklist and fixes -----------------------------------------------------------
    def _attach_checklist(self) -> None:
        pane = self._main(ChecklistPane)
        if pane is not None and self.fixes is not None:
            self.fixes.checklist = pane.checklist
            self.fixes.config = pane.config  # with the app root the database's checklist was chosen with

    def on_checklist_checked(self, message: ChecklistChecked) -> None:
        self._attach_checklist()
        self._resolve_thresholds()

    def _resolve_thresholds(self) -> None:
        """The thresholds: the defaults, the config file's [thresholds], the checklist's (tui.alerts).
        A bad table keeps the last good thresholds and says why, once."""
        if self._thresholds_given:
            return
        from tui.config import UsageError

        pane = self._main(ChecklistPane)
        checklist = pane.checklist if pane is not None else None
        try:
            t = Thresholds.resolve(checklist=checklist)
        except UsageError as e:
            if str(e) != self._thresholds_error:
                self._thresholds_error = str(e)
                self.notify(f"thresholds: {e}", severity="warning", timeout=10)
            return
        self.alert_book.thresholds = t

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
        r = message.result
        if r is not None or message.error:
            ev = E.FixRan(message.item_id, bool(r is not None and r.ok),
                          r.summary if r is not None else message.error, datetime.now(timezone.utc))
            self.digest.take(ev, ev.at)
            if self.recorder is not None:
                self.recorder.take(ev)
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
        self.push_screen(HelpScreen.for_screen(self.screen, self.config.idle_in_xact_threshold_s,
                                               focused=self._in_view()))

    def _in_view(self):
        """The widget whose keys the help lists first: the focus, unless a tab switch has hidden it
        and the focus has not followed yet (then the table of the tab in view)."""
        focused = self.screen.focused
        if self.screen is not self.screen_stack[0] or (focused is not None and focused.is_on_screen):
            return None
        try:
            tab = self.query_one(f"#{self.query_one(TabbedContent).active}")
            tables = tab.query(DataTable)
            return tables.first() if tables else None
        except Exception:
            return None

    def get_system_commands(self, screen):
        """Every action in the command palette under a namespaced name ("session: terminate"),
        besides the fixes (FixCommands): each binding of PALETTE runs its binding's own action, so
        the palette cannot drift from the keys (tests/ui/test_palette.py holds every binding to it)."""
        yield SystemCommand("app: theme", "change the colour theme", self.action_change_theme)
        yield SystemCommand("app: confirm the alert thresholds",
                            "the thresholds in force are the launch's (the checklist's alerts item)",
                            self.action_confirm_thresholds)
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
    "alerts": ("app", "app: alerts raised and recent, thresholds"),
    "replay.next": ("app", "replay: next round"),
    "replay.previous": ("app", "replay: previous round"),
    "replay.forward": ("app", "replay: a minute on"),
    "replay.back": ("app", "replay: a minute back"),
    "replay.goto": ("app", "replay: go to a time"),
    "tab.1": ("app", "app: show connections"),
    "tab.2": ("app", "app: show slow queries"),
    "tab.3": ("app", "app: show tables"),
    "tab.4": ("app", "app: show host"),
    "tab.5": ("app", "app: show the checklist"),
    "tab.6": ("app", "app: show the timeline (graphs)"),
    "timeline": ("app", "app: show the timeline (graphs)"),
    "demo.spike": ("app", "app: demo launch spike (alerts fire and clear)"),
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


def run_app(cfg: Config, identity: dict, prefetched=None, app=None) -> int:
    """The App with its flight recorder (unless --no-record), closed after the App ends."""
    from tui.config import EXIT_OK, EXIT_USAGE
    from tui.watch import open_recorder

    recorder = open_recorder(cfg, identity)
    if recorder == EXIT_USAGE:
        return EXIT_USAGE
    if app is None:
        app = PreflightApp(cfg, prefetched=prefetched, recorder=recorder)
    else:
        app.recorder = recorder
    try:
        app.run()
    finally:
        if recorder is not None:
            recorder.close()
            err = recorder.take_error() if hasattr(recorder, "take_error") else None
            if err:
                print(f"pgpreflight: warning: recording: {err}", file=sys.stderr)
            elif recorder.path is not None:
                print(f"pgpreflight: recorded to {recorder.path} (pgpreflight replay FILE)", file=sys.stderr)
    return EXIT_OK
