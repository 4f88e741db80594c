"""The monitor's first poll, made while the app is still being imported.

Importing Textual and the app takes most of a second here; connecting and the first polls take
tens of milliseconds of waiting on the server. ``FirstPoll`` connects, proves the target (what
``check_target`` did) and polls the server and the sessions on a thread of its own with its own
event loop, while the main thread imports; the app then opens on live data instead of waiting
for its own first round. Its pollers are handed on, so rates (TPS) continue from this poll.
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from tui.config import Config, TargetError
from tui.db.connect import connect, target_identity
from tui.db.poller import ConnectionsPoller, ServerPoller


@dataclass
class Prefetched:
    server_poller: ServerPoller
    connections_poller: ConnectionsPoller
    info: object | None = None          # ServerInfo
    connections: object | None = None   # ConnectionsSnapshot
    at: float = 0.0                     # time.monotonic() when the polls ended


class FirstPoll:
    def __init__(self, cfg: Config, include_idle: bool = False) -> None:
        self.cfg = cfg
        self.include_idle = include_idle
        self.identity: dict | None = None
        self.prefetched = Prefetched(ServerPoller(), ConnectionsPoller())
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="pgpreflight-first-poll", daemon=True)

    def start(self) -> "FirstPoll":
        self._thread.start()
        return self

    def result(self) -> tuple[dict, Prefetched]:
        """The target's identity and what was polled. A bad target raises TargetError, as
        check_target does; a failed poll leaves the data out (the app polls again)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.identity or {}, self.prefetched

    def _main(self) -> None:
        try:
            asyncio.run(self._go())
        except BaseException as e:  # handed to the main thread by result()
            self._error = e

    async def _go(self) -> None:
        cfg, pre = self.cfg, self.prefetched
        conn = await connect(cfg.target, timeout=cfg.connect_timeout, role="poll",
                             statement_timeout_ms=cfg.statement_timeout_ms)
        try:
            self.identity = await target_identity(conn)  # what check_target proves
            try:
                pre.info = await pre.server_poller.poll(conn, with_size=True)
                pre.connections = await pre.connections_poller.poll(conn, include_idle=self.include_idle)
            except Exception:  # optional: the app's own first round will say what is wrong
                pre.info = pre.connections = None
            pre.at = time.monotonic()
        finally:
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception:
                conn.terminate()


__all__ = ["FirstPoll", "Prefetched", "TargetError"]
