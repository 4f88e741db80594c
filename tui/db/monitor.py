"""The monitor service: polling without Textual (DESIGN.md, "the shape it grows into").

It owns the poll session (application_name pgpreflight/poll, lock_timeout 500 ms), the reconnect
backoff (1 s doubling to a 20 s cap) and every pane's due time. Its inputs are explicit:

- ``wanted``: the panes to poll ("server", "connections", "slow", "tables", "host", "limits");
- ``show_idle``: idle sessions listed or not (a change polls the sessions at once);
- ``poll_now(panes)``: poll these now ("all": everything), ``pause()`` / ``resume()``.

``events()`` yields frozen events (tui.model.events), one type per pane; a round's events come together
and end with ``RoundEnded``. The TUI, the recorder and ``watch`` consume them.

The scheduling is that of the App's ``poll_loop``:

- the server is polled every ``refresh`` s, the database size with it every ``tables_refresh`` s;
- each wanted pane when due: connections, slow and host every ``refresh`` s, in the same round as the
  server (their next time is the server's), tables every ``tables_refresh`` s;
- the next poll of a pane is armed only after the last one ended: polls never overlap, one session runs
  them one by one;
- a failed connect or poll says "disconnected" with its retry, waits the backoff and doubles it;
- a prefetched first round (tui.db.first_poll) is handed in: its pollers go on (rates continue), it is
  yielded first, and the next round is due a refresh after it, with no "connecting" in between.

One difference from the App's loop: an input that arrives while a round runs is not lost (the App's
sleep cleared the wake-up a key had set during the round, so that key waited for the next due time)."""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Awaitable, Callable, Iterable

from tui.config import Config, TargetError
from tui.db.connect import connect as db_connect
from tui.db.limits import LIMITS_REFRESH_S, LimitsPoller
from tui.db.poller import ConnectionsPoller, ServerPoller, SlowQueriesPoller, TablesPoller
from tui.model.events import (
    PANES, ConnectionChanged, ConnectionsPolled, HostPolled, LimitsPolled, PartTurnedOff, RoundEnded,
    ServerPolled, SlowQueriesPolled, TablesPolled,
)
from tui.model.snapshot import REMOTE_HOST_MESSAGE, ConnectionState
from tui.model.wake import sleep_or_wake

BACKOFF_CAP_S = 20.0
POLL_LOCK_TIMEOUT_MS = 500  # size functions must not queue behind a migration's lock for long
MIN_SLEEP_S = 0.05
PANE_ORDER = ("connections", "slow", "tables", "host", "limits")  # after the server, one by one


class Monitor:
    def __init__(self, config: Config, *, connect: Callable[..., Awaitable] = db_connect,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] | None = None,
                 wanted: Iterable[str] = ("server", "connections"), show_idle: bool = False,
                 prefetched=None) -> None:
        """``connect(target, *, timeout, role, statement_timeout_ms, lock_timeout_ms)`` opens the poll
        session (tui.db.connect.connect); ``clock`` and ``sleep`` are time.monotonic and asyncio.sleep
        unless a test gives its own. ``prefetched``: tui.db.first_poll.Prefetched."""
        self.config = config
        self._connect = connect
        self._clock = clock
        self._sleep_fn = sleep
        self._wanted = self._check(wanted)
        self._show_idle = bool(show_idle)
        self._paused = False
        self._poll_now: set[str] = set()
        self._wake = asyncio.Event()
        self.every = {"server": config.refresh, "connections": config.refresh, "slow": config.refresh,
                      "tables": config.tables_refresh, "host": config.refresh, "limits": LIMITS_REFRESH_S}
        self.due = {"server": 0.0, "size": 0.0, **{p: 0.0 for p in PANE_ORDER}}
        self.polls: dict[str, int] = {p: 0 for p in PANES}
        self.last_polled: dict[str, float] = {}  # when each pane's last poll ended
        self.server_poller = ServerPoller()
        self.connections_poller = ConnectionsPoller()
        self.slow_poller = SlowQueriesPoller()
        self.tables_poller = TablesPoller()
        self.limits_poller = LimitsPoller()
        self.host_poller = None
        self.backoff = 1.0
        self.last_ok: float | None = None
        self.connected = False
        self.conn = None
        self._prefetched = prefetched if prefetched is not None and prefetched.info is not None else None
        if self._prefetched is not None:
            pre = self._prefetched
            self.server_poller, self.connections_poller = pre.server_poller, pre.connections_poller
            self.last_ok, self.connected = pre.at, True
            self.due["server"] = pre.at + config.refresh
            self.due["size"] = pre.at + config.tables_refresh
            if pre.connections is not None:
                self.due["connections"] = self.due["server"]

    # -- inputs ------------------------------------------------------------------------
    @staticmethod
    def _check(panes: Iterable[str]) -> frozenset[str]:
        out = frozenset(panes)
        unknown = out - set(PANES)
        if unknown:
            raise ValueError(f"unknown pane(s) {sorted(unknown)}; known: {', '.join(PANES)}")
        return out

    @property
    def wanted(self) -> frozenset[str]:
        return self._wanted

    @wanted.setter
    def wanted(self, panes: Iterable[str]) -> None:
        """A pane that comes into ``wanted`` is polled at once if its data is stale (due)."""
        self._wanted = self._check(panes)
        self._wake.set()

    @property
    def show_idle(self) -> bool:
        return self._show_idle

    @show_idle.setter
    def show_idle(self, value: bool) -> None:
        """A change lists the sessions again at once (not the server: it did not change)."""
        if bool(value) != self._show_idle:
            self._show_idle = bool(value)
            self.poll_now({"connections"})

    @property
    def paused(self) -> bool:
        return self._paused

    def set_every(self, pane: str, seconds: float) -> None:
        """Change a pane's interval (the App polls the host once a minute off screen, every refresh on
        it). A shorter interval takes effect at once: the pane is due ``seconds`` after its last poll."""
        self._check({pane})
        self.every[pane] = float(seconds)
        last = self.last_polled.get(pane)
        self.due[pane] = min(self.due[pane], (last if last is not None else 0.0) + float(seconds))
        self._wake.set()

    def poll_now(self, panes: Iterable[str] = ("all",)) -> None:
        """Poll these panes (if wanted) as soon as the session is free; "all": every pane and the size."""
        panes = set(panes)
        self._check(panes - {"all", "size"})
        self._poll_now |= panes
        self._wake.set()

    def pause(self) -> None:
        self._paused = True
        self._wake.set()

    def resume(self) -> None:
        self._paused = False
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------
    async def events(self) -> AsyncIterator:
        """Connect, poll what is due and wanted, wait until the next thing is due; forever.
        Closing the iterator (or cancelling its consumer) closes the session."""
        cfg = self.config
        quiet_connect = False
        try:
            if self._prefetched is not None:
                quiet_connect = True  # the first round is shown already: no "connecting…" flash
                for ev in self._prefetched_events():
                    yield ev
                self._prefetched = None
            while True:
                self._wake.clear()  # inputs are read from here on; one that comes later wakes the sleep
                conn = self.conn
                if conn is None or conn.is_closed():
                    if not quiet_connect:
                        self.connected = False
                        yield ConnectionChanged(ConnectionState("connecting", last_ok_at=self.last_ok))
                    quiet_connect = False
                    try:
                        self.conn = await self._connect(
                            cfg.target, timeout=cfg.connect_timeout, role="poll",
                            statement_timeout_ms=cfg.statement_timeout_ms, lock_timeout_ms=POLL_LOCK_TIMEOUT_MS)
                        self.backoff = 1.0
                    except asyncio.CancelledError:
                        raise
                    except Exception as e:
                        self.conn, self.connected = None, False
                        reason = e.reason if isinstance(e, TargetError) else _reason(e)
                        yield ConnectionChanged(ConnectionState("disconnected", reason, self.backoff, self.last_ok))
                        await self._sleep(self.backoff)
                        self.backoff = min(BACKOFF_CAP_S, self.backoff * 2)
                        continue
                if self._paused:
                    await self._sleep(cfg.refresh)
                    continue
                out: list = []
                failure = None
                polled: list[str] = []
                prompt = bool(self._poll_now)
                try:
                    await self._round(out, polled, prompt)
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # lost connection or a failing query: say so, reconnect
                    failure = e
                for ev in out:
                    yield ev
                if polled and failure is None:
                    yield RoundEnded(self._clock(), tuple(polled), prompt)
                if failure is not None:
                    self._drop_connection()
                    yield ConnectionChanged(ConnectionState("disconnected", _reason(failure), self.backoff,
                                                            self.last_ok))
                    await self._sleep(self.backoff)
                    self.backoff = min(BACKOFF_CAP_S, self.backoff * 2)
                    continue
                await self._sleep(max(MIN_SLEEP_S, self.next_due() - self._clock()))
        finally:
            await self.close()

    def next_due(self) -> float:
        """When the next wanted thing is due (a refresh from now when nothing is wanted)."""
        times = [self.due[p] for p in self._wanted]
        return min(times) if times else self._clock() + self.config.refresh

    async def _round(self, out: list, polled: list[str], prompt: bool) -> None:
        cfg, due, conn = self.config, self.due, self.conn
        asked, self._poll_now = self._poll_now, set()
        for k in (due if "all" in asked else asked & due.keys()):
            due[k] = 0.0
        wanted = self._wanted
        now = self._clock()
        if "server" in wanted and now >= due["server"]:
            with_size = now >= due["size"]
            info = await self.server_poller.poll(conn, with_size=with_size)
            end = self._clock()
            if with_size:
                due["size"] = end + cfg.tables_refresh
            due["server"] = end + cfg.refresh
            self.polls["server"] += 1
            self._ok(end, out)
            out.append(ServerPolled(info))
            polled.append("server")
        for pane in PANE_ORDER:
            if pane not in wanted or self._clock() < due[pane]:
                continue
            self.polls[pane] += 1
            await self._poll_pane(pane, conn, out, prompt)
            polled.append(pane)
            self.last_polled[pane] = self._clock()
            self._ok(self.last_polled[pane], out)
            # a pane polled as often as the server polls in the same round as the server (one frame a
            # round); polls never overlap, each round runs them one by one
            due[pane] = (due["server"] if self.every[pane] == cfg.refresh and "server" in wanted
                         else self._clock() + self.every[pane])

    def _ok(self, at: float, out: list) -> None:
        self.last_ok = at
        if not self.connected:  # said once, not every poll
            self.connected = True
            out.insert(0, ConnectionChanged(ConnectionState("connected", last_ok_at=at)))

    async def _poll_pane(self, pane: str, conn, out: list, prompt: bool) -> None:
        if pane == "connections":
            snap = await self.connections_poller.poll(conn, include_idle=self._show_idle)
            out.append(ConnectionsPolled(snap, prompt))
            notices = self.connections_poller.parts.take_notices()
        elif pane == "slow":
            out.append(SlowQueriesPolled(await self.slow_poller.poll(conn), prompt))
            notices = self.slow_poller.parts.take_notices()
        elif pane == "tables":
            out.append(TablesPolled(await self.tables_poller.poll(conn), prompt))
            notices = ()
        elif pane == "limits":
            out.append(LimitsPolled(await self.limits_poller.poll(conn), prompt))
            notices = self.limits_poller.parts.take_notices()
        else:
            if not self.config.target.is_local:
                out.append(HostPolled(None, REMOTE_HOST_MESSAGE, prompt))
                return
            if self.host_poller is None:
                from tui.db.host import HostPoller
                from tui.db.snapshot import data_directory

                self.host_poller = HostPoller(await data_directory(conn), self.config.backup_dir)
            out.append(HostPolled(self.host_poller.poll(), "", prompt))
            notices = ()
        out.extend(PartTurnedOff(pane, n) for n in notices)

    def _prefetched_events(self) -> list:
        pre = self._prefetched
        out: list = [ConnectionChanged(ConnectionState("connected", last_ok_at=pre.at)), ServerPolled(pre.info)]
        polled = ["server"]
        if pre.connections is not None:
            out.append(ConnectionsPolled(pre.connections))
            polled.append("connections")
        out.extend(PartTurnedOff("connections", n) for n in self.connections_poller.parts.take_notices())
        out.append(RoundEnded(pre.at, tuple(polled)))
        return out

    async def _sleep(self, seconds: float) -> None:
        """Until ``seconds`` have passed or an input changed."""
        await sleep_or_wake(self._wake, seconds, self._sleep_fn)

    def _drop_connection(self) -> None:
        try:
            if self.conn is not None:
                self.conn.terminate()
        except Exception:
            pass
        self.conn, self.connected = None, False

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        self.connected = False
        if conn is None:
            return
        try:
            await asyncio.wait_for(conn.close(), 2)
        except BaseException:
            try:
                conn.terminate()
            except Exception:
                pass


def _reason(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
