"""The demo's launch spike (issue 14 §7): a burst of connections, slow queries and a lock wait against
the demo database, so that a new user sees the graphs move and alerts fire and clear.

With the default thresholds (tui.alerts) and the default timings it raises ``connections_pct`` and
``lock_wait_s`` and clears them, in about 22 s:

- t ≈ 0-1 s: extra connections open until the server counts ``connections_pct`` (83 %) of its usable
  connections (max_connections less the reserved ones, read from the server). While it holds, it
  checks the count every 0.2 s: under the target (a burst of the app's that was there at the start
  has ended), it tops up; over ``usable - keep_free`` (a burst of the app's came), it closes some of
  its own, so it never fills the server. 83 % (81 of the demo's 97: 100 less 3 reserved) is 3
  connections over the 80 % threshold, more than a burst's ending drops in 0.2 s, and leaves the
  workload's burst of 15 room (81 + 15 <= 97);
- t ≈ 1 s: one session locks a ``credit_balances`` row (``SELECT … FOR UPDATE SKIP LOCKED``, nothing
  is changed) and another waits for it with ``SELECT … FOR UPDATE``: a lock wait, released after
  ``lock_s`` (15 s: over the 10 s lock_wait_s with room for a 2 s refresh to see it);
- during the hold, ``slow_sessions`` sessions run ``SELECT pg_sleep($1)`` of 2-4 s each, one after
  the other (pg_stat_statements' mean latency rises, when the extension is created);
- at ``hold_s`` (20 s) everything is released and every connection closed.

The spike's sessions are named ``images-mvp-spike``: never ``pgpreflight…``, which the monitor leaves
out of its session list (tui/db/queries/activity.sql) and so out of ``lock_wait_s``; the spike plays
the app's traffic, and is counted as the app's.

One spike at a time: a second one, in this process or another on the same database, is refused with
:class:`SpikeBusy` (an in-process flag, and a session advisory lock on the server). Cancelled or
stopped, it closes every connection (a waiting or sleeping one is cancelled on the server) before it
returns. asyncpg only: no textual import.

The App (demo only: :meth:`Spike.available`) runs it from a worker::

    spike = Spike(config)
    result = await spike.run(progress=lambda line: app.notify(line))  # SpikeError: one line
"""
from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import asyncpg

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

SPIKE_APP = "images-mvp-spike"
#: pg_try_advisory_lock key of the running spike (per database): "spik" in ASCII
ADVISORY_KEY = 0x7370696B

Progress = Callable[[str], None]

_COUNT_SQL = ("SELECT count(*)::int FROM pg_stat_get_activity(NULL) s "  # as the monitor's server query counts
              "WHERE s.backend_type = 'client backend' OR (s.backend_type IS NULL AND coalesce(s.datid, 0) <> 0)")
_LIMITS_SQL = ("SELECT current_setting('max_connections')::int AS max_connections, "
               "current_setting('superuser_reserved_connections')::int "
               "+ CASE WHEN current_setting('server_version_num')::int >= 160000 "
               "THEN current_setting('reserved_connections')::int ELSE 0 END AS reserved")
_TICK_S = 0.2  # how often the hold checks the count (a burst of the app's ending drops ~1.5 in 0.2 s)
_OPEN_AT_ONCE = 16  # connections opened concurrently
_MAX_EXTRA = 500  # a demo cluster needs ~80; a mistaken target with max_connections 5000 does not get 4000


class SpikeError(Exception):
    """The spike could not run: one line for the user."""


class SpikeBusy(SpikeError):
    """A spike is running already."""


@dataclass(frozen=True)
class SpikeResult:
    extra_connections: int  # the connections the spike opened (top-ups included)
    peak_connections: int  # the most client connections the server counted while it held them
    usable_connections: int
    lock_wait_s: float  # how long its lock wait lasted
    slow_queries: int  # pg_sleep statements that completed
    duration_s: float
    stopped: bool  # ended early by stop() (a cancel raises instead)

    def line(self) -> str:
        return (f"launch spike done in {self.duration_s:.0f} s: {self.extra_connections} extra connections "
                f"(peak {self.peak_connections} of {self.usable_connections} usable), "
                f"a lock wait of {self.lock_wait_s:.0f} s, {self.slow_queries} slow queries"
                + (" (stopped early)" if self.stopped else ""))


_running_lock = threading.Lock()
_running: "Spike | None" = None  # the spike running in this process


def _connect_kwargs(where) -> dict:
    """A DSN string, a tui.config.Target or a tui.config.Config into asyncpg.connect keywords."""
    if isinstance(where, str):
        return {"dsn": where}
    target = getattr(where, "target", where)
    if not hasattr(target, "connect_kwargs"):
        raise TypeError(f"a DSN, a Target or a Config, not {type(where).__name__}")
    return target.connect_kwargs()


def _reason(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text


class Spike:
    """One launch spike against the database of ``where`` (a DSN, a Target or a Config).

    ``hold_s``: how long the extra connections are held, from when they are open; ``lock_s``: how long
    the lock wait lasts (at most until the hold ends); ``connections_pct``: the share of the usable
    connections the server should count while it holds; ``slow_sessions`` sessions each run
    ``pg_sleep`` statements of ``slow_query_s`` (a range) one after the other."""

    def __init__(self, where, *, hold_s: float = 20.0, lock_s: float = 15.0, connections_pct: float = 83.0,
                 keep_free: int = 3, slow_sessions: int = 4, slow_query_s: tuple[float, float] = (2.0, 4.0),
                 connect_timeout: float = 5.0) -> None:
        if not hold_s > 0 or not lock_s > 0:
            raise ValueError("hold_s and lock_s must be greater than 0")
        self._kw = _connect_kwargs(where)
        self.hold_s = float(hold_s)
        self.lock_s = min(float(lock_s), float(hold_s))
        self.connections_pct = float(connections_pct)
        self.keep_free = max(0, int(keep_free))
        self.slow_sessions = max(0, int(slow_sessions))
        self.slow_query_s = slow_query_s
        self.connect_timeout = connect_timeout
        self.started_at: float | None = None  # time.monotonic() when run() began
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._conns: list[asyncpg.Connection] = []
        self._progress: Progress | None = None

    # -- what the App asks -----------------------------------------------------------------
    @staticmethod
    def available(config) -> bool:
        """True when ``config`` is the demo's (``pgpreflight demo`` sets Config.demo): the spike is for
        the throwaway demo database only, never a real one."""
        return bool(getattr(config, "demo", False))

    @staticmethod
    def busy() -> bool:
        """True while a spike runs in this process."""
        return _running is not None

    @property
    def running(self) -> bool:
        return _running is self

    def stop(self) -> None:
        """End the spike early (it releases everything and returns its result). Safe from any thread,
        before, during or after run()."""
        self._stop_requested.set()
        loop, ev = self._loop, self._stop_event
        if loop is None or ev is None or loop.is_closed():
            return
        try:
            same = asyncio.get_running_loop() is loop
        except RuntimeError:
            same = False
        if same:
            ev.set()
        else:
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # the loop closed in between
                pass

    # -- the spike -------------------------------------------------------------------------
    async def run(self, progress: Progress | None = None) -> SpikeResult:
        """Run the whole spike; ``progress`` gets a line at each step (on this event loop). Raises
        SpikeBusy when a spike runs already, SpikeError (one line) when the database cannot be reached or
        fails mid-spike; cancelled, it cleans up and raises CancelledError."""
        global _running
        with _running_lock:
            if _running is not None:
                left = ""
                if _running.started_at is not None:
                    left = f" (about {max(0, _running.started_at + _running.hold_s + 2 - time.monotonic()):.0f} s left)"
                raise SpikeBusy(f"a launch spike is already running{left}")
            _running = self
        self._progress = progress
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stop_requested.is_set():
            self._stop_event.set()
        self.started_at = time.monotonic()
        control = None
        try:
            try:
                control = await self._open()
            except Exception as e:
                from tui.db.connect import describe_error

                raise SpikeError(f"launch spike: cannot connect: {describe_error(e, self.connect_timeout)}") from None
            try:
                if not await control.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_KEY):
                    raise SpikeBusy("a launch spike is already running on this database (another process)")
                return await self._spike(control)
            except SpikeError:
                raise
            except Exception as e:  # the server went away mid-spike, or refused a statement
                raise SpikeError(f"launch spike failed: {_reason(e)}") from None
        finally:
            await self._release(control)
            with _running_lock:
                _running = None
            self._progress = None

    def _say(self, line: str) -> None:
        if self._progress is not None:
            try:
                self._progress(line)
            except Exception as e:  # a UI gone away must not break the cleanup
                log.debug("spike progress callback failed: %r", e)

    async def _open(self) -> asyncpg.Connection:
        conn = await asyncio.wait_for(
            asyncpg.connect(**self._kw, timeout=self.connect_timeout, server_settings={"application_name": SPIKE_APP}),
            self.connect_timeout + 1)
        self._conns.append(conn)
        return conn

    async def _open_many(self, n: int) -> list[asyncpg.Connection]:
        sem = asyncio.Semaphore(_OPEN_AT_ONCE)
        opened: list[asyncpg.Connection] = []

        async def one():
            async with sem:
                try:
                    opened.append(await self._open())
                except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as e:  # the server is full: fine
                    log.debug("spike connection failed: %r", e)

        await asyncio.gather(*(one() for _ in range(max(0, n))))
        return opened

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait ``seconds`` or until stop(); True when stopped."""
        try:
            await asyncio.wait_for(self._stop_event.wait(), timeout=max(0.0, seconds))
            return True
        except asyncio.TimeoutError:
            return False

    async def _spike(self, control: asyncpg.Connection) -> SpikeResult:
        t0 = self.started_at
        limits = await control.fetchrow(_LIMITS_SQL)
        usable = max(0, limits["max_connections"] - limits["reserved"])
        cap = max(0, usable - self.keep_free)
        target = min(cap, math.ceil(self.connections_pct / 100.0 * usable))
        now_count = await control.fetchval(_COUNT_SQL)
        # the lock holder, the waiter and the slow sessions are among the extra connections
        need = min(_MAX_EXTRA, max(2 + self.slow_sessions, target - now_count))
        self._say(f"launch spike: opening {need} connections ({now_count} of {usable} usable now, "
                  f"target {target})")
        opened = await self._open_many(need)
        if len(opened) < 2:
            raise SpikeError(f"launch spike: the server took only {len(opened)} of {need} connections")
        holder, waiter, slow = opened[0], opened[1], opened[2:2 + self.slow_sessions]
        plain = opened[2 + self.slow_sessions:]  # idle: the ones to close when the server gets full
        peak = await control.fetchval(_COUNT_SQL)
        self._say(f"launch spike: {len(opened)} extra connections, {peak} of {usable} usable "
                  f"({100.0 * peak / usable if usable else 0:.0f} %)")

        # the lock wait: a credit row locked by one session, wanted by another (nothing is changed)
        tx = holder.transaction()
        await tx.start()
        row_id = None
        if await holder.fetchval("SELECT to_regclass('credit_balances') IS NOT NULL"):
            row_id = await holder.fetchval(  # not the workload's held row: SKIP LOCKED
                "SELECT user_id FROM credit_balances ORDER BY user_id FOR UPDATE SKIP LOCKED LIMIT 1")
        if row_id is not None:
            wait_sql, wait_args = "SELECT balance FROM credit_balances WHERE user_id = $1 FOR UPDATE", (row_id,)
            what = "a credit_balances row"
        else:  # not the demo's schema: an advisory lock makes the same wait
            await holder.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_KEY + 1)
            wait_sql, wait_args, what = "SELECT pg_advisory_xact_lock($1)", (ADVISORY_KEY + 1,), "an advisory lock"
        lock_t0 = time.monotonic()
        wait_task = asyncio.ensure_future(waiter.fetch(wait_sql, *wait_args))
        self._say(f"launch spike: pid {waiter.get_server_pid()} waits for {what} that pid "
                  f"{holder.get_server_pid()} holds, for {self.lock_s:.0f} s")

        slow_done = [0]
        lo, hi = self.slow_query_s

        async def slow_loop(conn: asyncpg.Connection, i: int) -> None:
            k = i
            while True:
                k += 1
                await conn.fetchval("SELECT pg_sleep($1)", lo + (hi - lo) * ((k * 0.618) % 1.0))
                slow_done[0] += 1

        slow_tasks = [asyncio.ensure_future(slow_loop(c, i)) for i, c in enumerate(slow)]
        extra = len(opened)
        lock_wait = 0.0
        stopped = False
        try:
            hold_end = time.monotonic() + self.hold_s
            lock_end = lock_t0 + self.lock_s
            lock_held = True
            while True:
                now = time.monotonic()
                if lock_held and now >= lock_end:
                    await tx.rollback()
                    lock_held = False
                    await asyncio.wait({wait_task}, timeout=5)
                    lock_wait = time.monotonic() - lock_t0
                    self._say(f"launch spike: lock released after {lock_wait:.0f} s")
                if now >= hold_end:
                    break
                if await self._stopped_within(min(_TICK_S, (lock_end if lock_held else hold_end) - now)):
                    stopped = True
                    break
                count = await control.fetchval(_COUNT_SQL)
                peak = max(peak, count)
                if count < target and extra < _MAX_EXTRA:  # a burst of the app's ended: top up
                    more = await self._open_many(min(target - count, _MAX_EXTRA - extra))
                    extra += len(more)
                    plain.extend(more)
                elif count > cap and plain:  # a burst of the app's came: make room (never fill the server)
                    drop, plain[:] = plain[:count - cap], plain[count - cap:]
                    await self._close_some(drop)
            if lock_held:
                lock_wait = time.monotonic() - lock_t0
        finally:
            for t in (*slow_tasks, wait_task):
                t.cancel()
            await asyncio.gather(*slow_tasks, wait_task, return_exceptions=True)
        result = SpikeResult(extra, peak, usable, lock_wait, slow_done[0], time.monotonic() - t0, stopped)
        self._say("launch spike: releasing every connection")
        return result

    async def _close_some(self, conns: list[asyncpg.Connection]) -> None:
        for c in conns:
            self._conns.remove(c)
        await asyncio.gather(*(_close(c) for c in conns), return_exceptions=True)

    async def _release(self, control: asyncpg.Connection | None) -> None:
        """Close every connection of the spike; those still busy on the server (a pg_sleep, a lock wait)
        are terminated there, and the control session waits until they are gone from pg_stat_activity."""
        conns, self._conns = [c for c in self._conns if c is not control], []
        pids = [c.get_server_pid() for c in conns if not c.is_closed()]

        try:
            await asyncio.gather(*(_close(c) for c in conns), return_exceptions=True)
            if control is not None and not control.is_closed() and pids:
                deadline = time.monotonic() + 5.0
                while True:
                    left = await control.fetch(
                        "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY($1::int[])",
                        pids)
                    if not left or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.05)
        except BaseException as e:  # cancelled again, or the server went away: close what is left
            log.debug("spike cleanup: %r", e)
            for c in conns:
                if not c.is_closed():
                    c.terminate()
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            if control is not None:
                try:
                    await asyncio.wait_for(control.close(), 1.0)  # and its advisory lock with it
                except BaseException:
                    control.terminate()


async def _close(c: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(c.close(), 1.0)
    except BaseException:
        c.terminate()


async def launch_spike(where, *, progress: Progress | None = None, **kwargs) -> SpikeResult:
    """One launch spike (see :class:`Spike` for ``hold_s``, ``lock_s``, ``connections_pct``, …)."""
    return await Spike(where, **kwargs).run(progress)


class SpikeThread:
    """A spike ``delay_s`` seconds from now, in a daemon thread with its own event loop (the demo's
    ``--spike-at``). ``wait_for()``, when given, is polled first: the delay counts from when it is
    true (the App is up). ``progress`` (each step), ``on_end(result)`` and ``on_error(line)`` (why it
    could not run, or failed) are called on that thread."""

    def __init__(self, where, delay_s: float, progress: Progress | None = None,
                 wait_for: Callable[[], bool] | None = None,
                 on_end: Callable[[SpikeResult], None] | None = None,
                 on_error: Progress | None = None, **kwargs) -> None:
        self.spike = Spike(where, **kwargs)
        self.delay_s = max(0.0, float(delay_s))
        self.progress = progress
        self.wait_for = wait_for
        self.on_end = on_end
        self.on_error = on_error
        self.result: SpikeResult | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="images-mvp-spike", daemon=True)

    def start(self) -> "SpikeThread":
        self._thread.start()
        return self

    def _main(self) -> None:
        if self.wait_for is not None:
            while not self._stop.is_set() and not self.wait_for():
                self._stop.wait(0.1)
        if self._stop.wait(self.delay_s):
            return
        try:
            self.result = asyncio.run(self.spike.run(self.progress))
        except SpikeError as e:
            self.error = str(e)
        except BaseException as e:  # never a traceback on the demo's terminal
            self.error = f"launch spike failed: {_reason(e)}"
            log.debug("spike thread ended with %r", e)
        try:
            if self.result is not None and self.on_end is not None:
                self.on_end(self.result)
            elif self.error is not None and self.on_error is not None:
                self.on_error(self.error)
        except Exception as e:
            log.debug("spike thread callback failed: %r", e)

    def stop_and_join(self, timeout: float = 10.0) -> bool:
        self._stop.set()
        self.spike.stop()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()


__all__ = ["Spike", "SpikeBusy", "SpikeError", "SpikeResult", "SpikeThread", "SPIKE_APP", "launch_spike"]
