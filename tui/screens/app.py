"""The monitor: header, live panes, checklist. Owns the poll workers; widgets only draw."""
from __future__ import annotations

import asyncio
import time

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static, TabbedContent, TabPane

from tui.config import Config, TargetError
from tui.db.connect import connect
from tui.db.poller import ServerPoller
from tui.model.snapshot import ConnectionState
from tui.screens.messages import ConnectionChanged, ServerPolled
from widgets.header import ServerHeader

BACKOFF_CAP_S = 20.0


class PreflightApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "pgpreflight"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("p", "toggle_pause", "Pause", id="pause"),
        Binding("r", "refresh_now", "Refresh", id="refresh"),
    ]

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.paused = False
        self._wake = asyncio.Event()
        self.server_poller = ServerPoller()
        if config.no_color:
            self.theme = "textual-ansi"

    def compose(self) -> ComposeResult:
        header = ServerHeader(self.config.target.display, self.config.refresh, id="header")
        header.read_only = self.config.read_only
        yield header
        with TabbedContent(id="body"):
            with TabPane("Overview", id="tab-overview"):
                yield Static("Live panes and the launch checklist arrive here.", id="overview")
        yield Footer()

    def on_mount(self) -> None:
        self.poll_loop()

    # -- polling -------------------------------------------------------------------
    @work(exclusive=True, group="poll")
    async def poll_loop(self) -> None:
        """Connect, poll, wait; never overlapping: the next poll is armed after the last ends."""
        cfg = self.config
        backoff = 1.0
        conn = None
        last_ok: float | None = None
        last_size = 0.0
        while True:
            if conn is None or conn.is_closed():
                self.post_message(ConnectionChanged(ConnectionState("connecting", last_ok_at=last_ok)))
                try:
                    conn = await connect(cfg.target, timeout=cfg.connect_timeout, role="poll",
                                         statement_timeout_ms=cfg.statement_timeout_ms)
                    backoff = 1.0
                except TargetError as e:
                    conn = None
                    self.post_message(ConnectionChanged(ConnectionState("disconnected", e.reason, backoff, last_ok)))
                    await self._sleep(backoff)
                    backoff = min(BACKOFF_CAP_S, backoff * 2)
                    continue
            if self.paused:
                await self._sleep(cfg.refresh)
                continue
            try:
                with_size = time.monotonic() - last_size >= cfg.tables_refresh
                info = await self.server_poller.poll(conn, with_size=with_size)
                if with_size:
                    last_size = time.monotonic()
                last_ok = time.monotonic()
                self.post_message(ServerPolled(info))
                self.post_message(ConnectionChanged(ConnectionState("connected", last_ok_at=last_ok)))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # lost connection or a failing query: say so, reconnect
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                try:
                    if conn is not None:
                        conn.terminate()
                except Exception:
                    pass
                conn = None
                self.post_message(ConnectionChanged(ConnectionState("disconnected", reason, backoff, last_ok)))
                await self._sleep(backoff)
                backoff = min(BACKOFF_CAP_S, backoff * 2)
                continue
            await self._sleep(cfg.refresh)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    def on_server_polled(self, message: ServerPolled) -> None:
        self.query_one(ServerHeader).show(info=message.info)

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        self.query_one(ServerHeader).show(state=message.state)

    # -- actions -------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        header = self.query_one(ServerHeader)
        header.paused = self.paused
        header.show()
        self.notify("Paused" if self.paused else "Resumed", timeout=2)

    def action_refresh_now(self) -> None:
        self._wake.set()
