"""A background workload that keeps the images-mvp demo database alive.

It plays the app's traffic with asyncpg, under the app's own application names
(``images-mvp-api``, ``images-mvp-worker``, ``images-mvp-analytics``; never
``pgpreflight*``, so the monitor does not mistake it for itself):

* uploads: an ``extraction_analytics`` row plus funnel events at ``rate`` per second
  (Poisson arrivals), and now and then a signup;
* credits: ``UPDATE credit_balances SET balance = balance - 1 WHERE user_id = $1 AND
  balance > 0`` and an ``INSERT INTO trial_usages`` in one transaction, about once a
  second, with an occasional top-up after a purchase;
* the slow queries the missing indexes cause (sequential scans) every second or two:
  a user's event history, the trial check by session, recent extractions by tier, the
  funnel dashboard;
* exactly one session left idle in transaction (``images-mvp-worker``: BEGIN, an
  UPDATE of one credit_balances row, then nothing). If someone terminates it, it comes
  back after ``idle_respawn`` seconds (None: never); after a server restart at once;
* every 30-45 s a burst of ~15 extra connections held for 3-5 s (more than the app's
  pool of 10 would allow).

Each part owns its connection(s) and reconnects on its own with a short backoff;
errors are logged at DEBUG level on the ``tui.demo.workload`` logger and never raised
or printed. :meth:`Workload.stop` is thread-safe; on stop every connection is closed.

asyncpg only: no textual import.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import threading
import time
from typing import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # quiet by default, even without logging config

APP_API = "images-mvp-api"
APP_WORKER = "images-mvp-worker"
APP_ANALYTICS = "images-mvp-analytics"
APP_NAMES = (APP_API, APP_WORKER, APP_ANALYTICS)

FUNNEL_EVENTS = (
    "landing_viewed",
    "upload_selected",
    "analysis_started",
    "analysis_completed",
    "paywall_viewed",
    "purchase_completed",
)

FILE_TYPES = ("jpg", "jpg", "jpg", "png", "png", "heic", "webp", "tiff")
CAMERAS = ("Apple iPhone 15 Pro", "Canon EOS R6", "Sony ILCE-7M4", "Google Pixel 8", "FUJIFILM X-T5", None)

# The parts that must be connected before start_in_thread() returns.
_PARTS = ("uploads", "credits", "history", "analytics", "jobs", "idle-tx")

_BACKOFF_MIN = 0.5
_BACKOFF_MAX = 5.0


class Workload:
    """The demo's app traffic. ``rate`` is uploads per second."""

    def __init__(
        self,
        dsn: str,
        rate: float = 5.0,
        *,
        burst_size: int = 15,
        burst_every: tuple[float, float] = (30.0, 45.0),
        burst_hold: tuple[float, float] = (3.0, 5.0),
        first_burst_after: tuple[float, float] = (8.0, 15.0),
        slow_query_every: tuple[float, float] = (1.0, 2.0),
        idle_respawn: float | None = 60.0,
        seed: int | None = None,
    ) -> None:
        self.dsn = dsn
        self.rate = max(0.05, float(rate))
        self.burst_size = burst_size
        self.burst_every = burst_every
        self.burst_hold = burst_hold
        self.first_burst_after = first_burst_after
        self.slow_query_every = slow_query_every
        self.idle_respawn = idle_respawn
        self.rng = random.Random(seed)
        #: Set once every steady connection is up (and the idle transaction is open).
        self.ready = threading.Event()
        #: Counters for the curious (and the tests): uploads, credits, slow_queries, ...
        self.stats: dict[str, int] = {
            "uploads": 0, "events": 0, "signups": 0, "credits": 0, "topups": 0,
            "slow_queries": 0, "jobs": 0, "bursts": 0, "idle_tx_opened": 0, "errors": 0,
        }
        self.last_error: str | None = None
        self._up: set[str] = set()
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[asyncpg.Connection] = set()
        self._users: list[tuple[str, str]] = []  # (id, tier)
        self._free_users: list[tuple[str, str]] = []
        self._recent_sessions: list[str] = []
        self._held_user: str | None = None

    # -- control ---------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Ask :meth:`run` to finish (closing every connection). Safe from any thread,
        before, during or after run()."""
        self._stop_requested.set()
        loop, ev = self._loop, self._stop_event
        if loop is None or ev is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            ev.set()
        else:
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # loop closed in between
                pass

    def start_thread(self) -> threading.Thread:
        """Run the workload in a daemon thread with its own event loop."""
        if self._thread is not None:
            raise RuntimeError("workload already started")
        self._thread = threading.Thread(target=self._thread_main, name="images-mvp-workload", daemon=True)
        self._thread.start()
        return self._thread

    def stop_and_join(self, timeout: float = 10.0) -> bool:
        """stop() and wait for the thread; True when it has finished."""
        self.stop()
        t = self._thread
        if t is None:
            return True
        if t is not threading.current_thread():
            t.join(timeout)
        return not t.is_alive()

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_quiet_exception_handler)
        try:
            loop.run_until_complete(self.run())
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException as e:  # never let a traceback reach stderr
            log.debug("workload thread ended with %r", e)
        finally:
            for c in list(self._conns):  # anything a cancelled task left open
                try:
                    c.terminate()
                except Exception:
                    pass
            self._conns.clear()
            try:
                loop.close()
            except Exception:
                pass

    # -- main ------------------------------------------------------------------------
    async def run(self) -> None:
        """Run until :meth:`stop`. Never raises (except cancellation of the caller)."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self._stop_requested.is_set():
            return
        tasks: list[asyncio.Task] = []
        try:
            boot = asyncio.ensure_future(self._bootstrap())
            stopper = asyncio.ensure_future(self._stop_event.wait())
            tasks += [boot, stopper]
            await asyncio.wait({boot, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not self._stop_event.is_set():
                tasks += [
                    asyncio.ensure_future(self._part("uploads", APP_API, self._upload, self._upload_gap)),
                    asyncio.ensure_future(self._part("credits", APP_API, self._credit, lambda: self._jitter(0.7, 1.4))),
                    asyncio.ensure_future(self._part("history", APP_API, self._user_history,
                                                     lambda: self._jitter(*self.slow_query_every))),
                    asyncio.ensure_future(self._part("analytics", APP_ANALYTICS, self._dashboard,
                                                     lambda: self._jitter(1.5, 3.0))),
                    asyncio.ensure_future(self._part("jobs", APP_WORKER, self._job, lambda: self._jitter(4.0, 6.0))),
                    asyncio.ensure_future(self._idle_in_transaction()),
                    asyncio.ensure_future(self._bursts()),
                ]
                await stopper
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._note_error("run", e)
        finally:
            await self._shutdown(tasks)

    async def _shutdown(self, tasks: list[asyncio.Task]) -> None:
        for t in tasks:
            t.cancel()
        if tasks:
            try:
                await asyncio.wait(tasks, timeout=5.0)
            except BaseException as e:
                log.debug("workload: waiting for tasks: %r", e)
        for t in tasks:
            if t.done() and not t.cancelled():
                t.exception()  # mark retrieved
        await self._close_all()
        self.ready.clear()
        self._up.clear()

    async def _close_all(self) -> None:
        conns = list(self._conns)
        self._conns.clear()

        async def close(c: asyncpg.Connection) -> None:
            try:
                await asyncio.wait_for(c.close(), 2.0)
            except BaseException:
                c.terminate()

        if conns:
            await asyncio.gather(*(close(c) for c in conns), return_exceptions=True)

    # -- helpers ---------------------------------------------------------------------
    def _note_error(self, where: str, e: BaseException) -> None:
        self.stats["errors"] += 1
        self.last_error = f"{where}: {type(e).__name__}: {e}"
        log.debug("workload %s", self.last_error)

    def _jitter(self, lo: float, hi: float) -> float:
        return self.rng.uniform(lo, hi)

    def _upload_gap(self) -> float:
        return min(max(self.rng.expovariate(self.rate), 0.01), 5.0 / self.rate)

    def _mark_up(self, part: str) -> None:
        self._up.add(part)
        if self._up.issuperset(_PARTS):
            self.ready.set()

    async def _connect(self, app: str) -> asyncpg.Connection:
        conn = await asyncpg.connect(
            self.dsn, timeout=5, command_timeout=30, server_settings={"application_name": app}
        )
        self._conns.add(conn)
        return conn

    async def _discard(self, conn: asyncpg.Connection | None) -> None:
        if conn is None:
            return
        try:
            if not conn.is_closed():
                await asyncio.wait_for(conn.close(), 2.0)
        except asyncio.CancelledError:
            conn.terminate()
            self._conns.discard(conn)
            raise
        except Exception:
            conn.terminate()
        self._conns.discard(conn)

    def _pick_user(self, exclude_held: bool = True) -> tuple[str, str]:
        if len(self._users) < 2:
            return self._users[0]
        while True:
            u = self.rng.choice(self._users)
            if not (exclude_held and u[0] == self._held_user):
                return u

    async def _bootstrap(self) -> None:
        """Load the user ids (retrying until the database answers)."""
        backoff = _BACKOFF_MIN
        while True:
            conn = None
            try:
                conn = await self._connect(APP_API)
                rows = await conn.fetch("SELECT id, tier FROM users")
                sessions = await conn.fetch(
                    "SELECT session_id FROM trial_usages ORDER BY id DESC LIMIT 500"
                )
                await self._discard(conn)
                if not rows:
                    raise RuntimeError("no users in the demo database")
                self._users = [(r["id"], r["tier"]) for r in rows]
                self._free_users = [u for u in self._users if u[1] == "free"] or self._users
                self._recent_sessions = [r["session_id"] for r in sessions] or [_session_id()]
                self._held_user = self.rng.choice(self._users)[0]
                return
            except asyncio.CancelledError:
                await self._discard(conn)
                raise
            except Exception as e:
                self._note_error("bootstrap", e)
                await self._discard(conn)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _part(
        self,
        name: str,
        app: str,
        step: Callable[[asyncpg.Connection], Awaitable[None]],
        gap: Callable[[], float],
    ) -> None:
        """Run ``step`` on a dedicated connection forever, reconnecting on errors."""
        conn: asyncpg.Connection | None = None
        backoff = _BACKOFF_MIN
        try:
            while True:
                try:
                    if conn is None or conn.is_closed():
                        if conn is not None:
                            await self._discard(conn)
                        conn = None
                        conn = await self._connect(app)
                        self._mark_up(name)
                    await step(conn)
                    backoff = _BACKOFF_MIN
                    await asyncio.sleep(gap())
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    self._note_error(name, e)
                    if conn is not None and (conn.is_closed() or conn.is_in_transaction()):
                        await self._discard(conn)
                        conn = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX)
        finally:
            if conn is not None:
                await self._discard(conn)

    # -- the app's traffic -----------------------------------------------------------
    async def _upload(self, conn: asyncpg.Connection) -> None:
        rng = self.rng
        anonymous = rng.random() < 0.3
        user_id, tier = (None, "free") if anonymous else self._pick_user()
        session = _session_id()
        file_type = rng.choice(FILE_TYPES)
        ok = rng.random() < 0.955
        if ok:
            ms = 180 + int(rng.random() ** 2 * 3800)
            metadata = {
                "width": rng.choice((1080, 1920, 3024, 4032, 6000)),
                "height": rng.choice((1350, 1080, 4032, 3024, 4000)),
                "size_bytes": rng.randint(150_000, 9_000_000),
                "fields_extracted": rng.randint(12, 190),
                "has_gps": rng.random() < 0.35,
                "camera": rng.choice(CAMERAS),
            }
        else:
            ms = rng.randint(900, 9900)
            metadata = {"error": rng.choice(("unsupported_format", "file_too_large", "corrupt_exif", "timeout"))}
        await conn.execute(
            "INSERT INTO extraction_analytics (user_id, tier, file_type, success, processing_ms, metadata) "
            "VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
            user_id, tier, file_type, ok, ms, json.dumps(metadata),
        )
        # the funnel: this visitor uploaded; a couple of others only looked
        users: list[str | None] = []
        sessions: list[str] = []
        types: list[str] = []
        props: list[str] = []

        def ev(uid: str | None, sid: str, etype: str, p: dict) -> None:
            users.append(uid)
            sessions.append(sid)
            types.append(etype)
            props.append(json.dumps(p))

        for _ in range(rng.choice((0, 1, 1, 2))):
            ev(None, _session_id(), "landing_viewed", {"path": "/images", "referrer": "google"})
        ev(user_id, session, "landing_viewed", {"path": "/images", "referrer": "direct"})
        ev(user_id, session, "upload_selected", {"file_type": file_type})
        ev(user_id, session, "analysis_started", {"file_type": file_type})
        if ok:
            ev(user_id, session, "analysis_completed", {"file_type": file_type, "duration_ms": ms})
            if tier == "free" and rng.random() < 0.4:
                ev(user_id, session, "paywall_viewed", {"plan_shown": "professional", "trigger": "trial_exhausted"})
                if rng.random() < 0.12:
                    ev(user_id, session, "purchase_completed",
                       {"plan": "professional", "amount_cents": 1900, "credits": 100})
        await conn.execute(
            "INSERT INTO image_mvp_events (user_id, session_id, event_type, properties) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])",
            users, sessions, types, props,
        )
        self.stats["uploads"] += 1
        self.stats["events"] += len(types)
        self._recent_sessions.append(session)
        if len(self._recent_sessions) > 1000:
            del self._recent_sessions[:500]
        if rng.random() < 0.03:
            await self._signup(conn)

    async def _signup(self, conn: asyncpg.Connection) -> None:
        uid = _uuid()
        email = f"user.{uid[:8]}@example.com"
        # one statement: the user and its (free) credits commit together
        await conn.execute(
            "WITH u AS (INSERT INTO users (id, email) VALUES ($1, $2) RETURNING id) "
            "INSERT INTO credit_balances (user_id, balance) SELECT id, 2 FROM u",
            uid, email,
        )
        self._users.append((uid, "free"))
        self._free_users.append((uid, "free"))
        self.stats["signups"] += 1

    async def _credit(self, conn: asyncpg.Connection) -> None:
        user_id, tier = self._pick_user()
        session = self.rng.choice(self._recent_sessions)
        async with conn.transaction():
            left = await conn.fetchval(
                "UPDATE credit_balances SET balance = balance - 1, updated_at = now() "
                "WHERE user_id = $1 AND balance > 0 RETURNING balance",
                user_id,
            )
            await conn.execute(
                "INSERT INTO trial_usages (user_id, session_id, tier, extraction_count) VALUES ($1, $2, $3, $4)",
                user_id, session, tier, 1 if left is not None else 0,
            )
        self.stats["credits"] += 1
        if self.rng.random() < 0.05:  # a purchase: top the balance up
            await conn.execute(
                "UPDATE credit_balances SET balance = balance + 100, updated_at = now() WHERE user_id = $1",
                self._pick_user()[0],
            )
            self.stats["topups"] += 1

    async def _user_history(self, conn: asyncpg.Connection) -> None:
        """The API's per-user / per-session lookups: sequential scans without indexes."""
        choice = self.rng.randrange(3)
        if choice == 0:
            await conn.fetch(
                "SELECT event_type, properties, created_at FROM image_mvp_events "
                "WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20",
                self._pick_user()[0],
            )
        elif choice == 1:
            await conn.fetch(
                "SELECT id, extraction_count, created_at FROM trial_usages WHERE session_id = $1",
                self.rng.choice(self._recent_sessions),
            )
        else:
            await conn.fetch(
                "SELECT id, file_type, success, processing_ms, requested_at FROM extraction_analytics "
                "WHERE user_id = $1 AND requested_at > now() - interval '1 day' ORDER BY requested_at DESC",
                self._pick_user()[0],
            )
        self.stats["slow_queries"] += 1

    async def _dashboard(self, conn: asyncpg.Connection) -> None:
        """The analytics dashboard: recent extractions by tier, the funnel."""
        if self.rng.random() < 0.6:
            await conn.fetch(
                "SELECT count(*) AS requests, count(*) FILTER (WHERE success) AS ok, "
                "avg(processing_ms)::int AS avg_ms FROM extraction_analytics "
                "WHERE requested_at > now() - interval '1 day' AND tier = $1",
                self.rng.choice(("free", "professional", "business")),
            )
        else:
            await conn.fetch(
                "SELECT event_type, count(*) FROM image_mvp_events "
                "WHERE created_at > now() - interval '7 days' GROUP BY event_type"
            )
        self.stats["slow_queries"] += 1

    async def _job(self, conn: asyncpg.Connection) -> None:
        """The worker's periodic job: failed extractions of the last hour."""
        await conn.fetchval(
            "SELECT count(*) FROM extraction_analytics "
            "WHERE success = false AND requested_at > now() - interval '1 hour'"
        )
        self.stats["jobs"] += 1

    async def _idle_in_transaction(self) -> None:
        """One worker session that opens a transaction, updates a row and never ends it.

        If the session dies while the server stays up (someone terminated it, or an
        idle_in_transaction_session_timeout fired), it is re-opened after
        ``idle_respawn`` seconds (never if None); after a server restart, at once."""
        backoff = _BACKOFF_MIN
        server_start = None  # pg_postmaster_start_time() when the session was lost
        lost_at: float | None = None
        while True:
            conn = None
            try:
                conn = await self._connect(APP_WORKER)
                started = await conn.fetchval("SELECT pg_postmaster_start_time()")
                if lost_at is not None and started == server_start:
                    wait = None if self.idle_respawn is None else lost_at + self.idle_respawn - time.monotonic()
                    if wait is None or wait > 0:
                        await self._discard(conn)
                        conn = None
                        if wait is None:
                            return
                        await asyncio.sleep(wait)
                        continue
                lost_at = None
                await conn.execute("BEGIN")
                await conn.execute(
                    "UPDATE credit_balances SET updated_at = now() WHERE user_id = $1", self._held_user
                )
                self.stats["idle_tx_opened"] += 1
                self._mark_up("idle-tx")
                backoff = _BACKOFF_MIN
                while not conn.is_closed():  # hold it until someone kills it (or stop())
                    await asyncio.sleep(0.5)
                log.debug("workload idle-tx: the session was terminated")
                server_start, lost_at = started, time.monotonic()
                await self._discard(conn)
                conn = None
            except asyncio.CancelledError:
                raise  # the connection is still in self._conns: _close_all() closes it
            except Exception as e:
                self._note_error("idle-tx", e)
                await self._discard(conn)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _bursts(self) -> None:
        await asyncio.sleep(self._jitter(*self.first_burst_after))
        while True:
            try:
                await asyncio.gather(*(self._burst_client() for _ in range(self.burst_size)))
                self.stats["bursts"] += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._note_error("burst", e)
            await asyncio.sleep(self._jitter(*self.burst_every))

    async def _burst_client(self) -> None:
        conn = None
        try:
            conn = await self._connect(APP_API)
            await conn.fetchval("SELECT count(*) FROM credit_balances WHERE balance > 0")
            await asyncio.sleep(self._jitter(*self.burst_hold))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._note_error("burst", e)
        finally:
            if conn is not None:
                await self._discard(conn)


def _session_id() -> str:
    return "sess_" + secrets.token_hex(12)


def _uuid() -> str:
    h = secrets.token_hex(16)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    log.debug("workload loop: %s (%r)", context.get("message"), context.get("exception"))


def start_in_thread(dsn: str, rate: float = 5.0, *, timeout: float = 20.0, **kwargs) -> Workload:
    """Start a :class:`Workload` in a daemon thread (its own event loop) and return it
    once all its steady connections are up, the idle transaction included. Raises
    TimeoutError (after stopping it) if that takes longer than ``timeout`` seconds."""
    w = Workload(dsn, rate, **kwargs)
    thread = w.start_thread()
    deadline = time.monotonic() + timeout
    while not w.ready.wait(0.05):
        if not thread.is_alive() or time.monotonic() > deadline:
            w.stop_and_join(5.0)
            raise TimeoutError(
                f"the demo workload did not connect within {timeout:.0f}s"
                + (f" (last error: {w.last_error})" if w.last_error else "")
            )
    return w
