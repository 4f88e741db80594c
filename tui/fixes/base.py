"""The fix machinery: every guard in one place. No textual here.

A :class:`Fix` says what it would do (:meth:`Fix.plan`, with its preconditions) and does it
(:meth:`Fix.run`). Nothing calls ``run`` directly: :func:`run_fix` does, and on the way it

- refuses a write when the config is read-only (:class:`FixRefused`, exit 2 in the CLI);
- refuses unless the plan was confirmed (a key press in the UI, ``--yes`` or a y at the prompt);
- checks the preconditions again, fresh (privileges, server version, disk, a primary);
- takes the object's lock: an in-process set keyed by database and object, and
  ``pg_try_advisory_lock`` on a hash of the same key, so two pgpreflights do not race;
- writes the audit log (tui.audit: JSON lines, target in its redacted form, never a password),
  once when it starts and once with the outcome;
- records the result in the checklist state (``record_fix_run``);
- cancels on request: ``pg_cancel_backend`` of the fix's own sessions, sent from the control
  session, and SIGTERM to its subprocesses; the fix then cleans up and says what is left.

Sessions opened here carry ``application_name = 'pgpreflight/fix'``. DDL runs under
``lock_timeout`` (default 5 s) and no ``statement_timeout``. A statement that takes ACCESS EXCLUSIVE
goes through :func:`with_lock_retries` instead: many short tries (lock_timeout 100 → 400 ms) with
pauses between them, within a budget (``lock_budget_s``, default 30 s), so that the app's own
statements never queue behind a waiting ALTER for longer than one short try.

What the operator confirmed is what runs: ``run_fix(confirmed_plan=...)`` plans again and raises
:class:`PlanChanged` (nothing ran) when the statements or commands are not the confirmed ones.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import asyncpg

from tui import audit
from tui.checklist.state import DatabaseIdentity, fetch_identity, record_fix_run
from tui.config import Config, Target, TargetError
from tui.db.catalog import quote_ident  # noqa: F401  (the fixes import it from here too)
from tui.db.connect import connect
from tui.model.fixes import Choice, FixResult, Plan, Precondition, Progress

FIX_ROLE = "fix"  # application_name pgpreflight/fix
DEFAULT_LOCK_TIMEOUT_MS = 5000
DEFAULT_LOCK_BUDGET_S = 30.0
# lock_timeout of each try of with_lock_retries: well under 0.5 s, so that a statement of the app queued behind
# the waiting ALTER waits at most one short try (the last value repeats until the budget is spent)
LOCK_RETRY_TIMEOUTS_MS = (100, 150, 200, 250, 300)  # the last try stays well under the 0.5 s an app statement may wait
LOCK_RETRY_PAUSE_S = (0.5, 1.0)  # a pause between tries, with jitter: the queue behind the ALTER drains

ProgressCallback = Callable[[Progress], None]


class FixError(Exception):
    """A fix that cannot even be planned (unknown fix, bad params): one line, exit 2."""


class FixRefused(Exception):
    """A guard said no (read-only, not confirmed, a precondition, the object is busy): one line, exit 2."""

    def __init__(self, reason: str, plan: Plan | None = None):
        super().__init__(reason)
        self.reason = reason
        self.plan = plan


class PlanChanged(FixRefused):
    """The plan computed just before running is not the one the operator confirmed (other statements or
    commands): nothing ran. ``plan`` is the new plan, to be shown and confirmed again."""


class FixCancelled(Exception):
    """Raised inside a fix when the operator asked to cancel."""


class LockNotTaken(Exception):
    """:func:`with_lock_retries` spent its budget: ``blocker`` is the root holder (a dict, or None when
    it was gone by the time we looked), ``holders`` every conflicting session, root first."""

    def __init__(self, rel: str, tries: int, waited_s: float, timeouts_ms: tuple[int, ...],
                 holders: list[dict]):
        self.rel, self.tries, self.waited_s, self.timeouts_ms = rel, tries, waited_s, timeouts_ms
        self.holders = holders
        self.blocker = holders[0] if holders else None
        super().__init__(self.summary())

    def summary(self) -> str:
        from tui.model.fixes import blocker_line

        lo, hi = min(self.timeouts_ms), max(self.timeouts_ms)
        per_try = f"{lo} ms" if lo == hi else f"{lo}→{hi} ms"
        head = (f"could not take the ACCESS EXCLUSIVE lock on {self.rel} in {self.waited_s:.1f} s "
                f"({self.tries} tr{'y' if self.tries == 1 else 'ies'}, lock_timeout {per_try} each)")
        if self.blocker:
            more = f" (+{len(self.holders) - 1} more)" if len(self.holders) > 1 else ""
            return f"{head}; root holder: {blocker_line(self.blocker, 60)}{more}"
        return head + "; the sessions holding it have gone since"


# ------------------------------------------------------------------------------------------ quoting
# quote_ident is tui.db.catalog's (imported above): one quoter for the probes and the fixes


def quote_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def advisory_key(text: str) -> int:
    """A stable signed 64-bit key for pg_try_advisory_lock."""
    return int.from_bytes(hashlib.sha256(("pgpreflight/fix:" + text).encode()).digest()[:8], "big", signed=True)


def human_bytes(n: float | int | None) -> str:
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def human_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    if s < 1:
        return "under 1 s"
    if s < 90:
        return f"about {s:.0f} s"
    if s < 5400:
        return f"about {s / 60:.0f} min"
    return f"about {s / 3600:.1f} h"


# ------------------------------------------------------------------------------------------ context
@dataclass
class ServerInfo:
    version_num: int
    version: str
    current_user: str
    database: str
    superuser: bool
    in_recovery: bool

    @property
    def major(self) -> int:
        return self.version_num // 10000


@dataclass
class FixContext:
    """What a fix sees: the config, its params, the control session, and the helpers that keep
    its sessions cancellable and its statements audited."""

    config: Config
    target: Target
    params: dict
    item_id: str | None
    control: asyncpg.Connection
    server: ServerInfo
    identity: DatabaseIdentity
    options: dict = field(default_factory=dict)  # headless/UI choices: on_violation, on_invalid, restore_dsn
    progress_cb: ProgressCallback | None = None
    cancel_event: asyncio.Event | None = None
    statements: list[str] = field(default_factory=list)
    _sessions: list[asyncpg.Connection] = field(default_factory=list)
    _procs: list[asyncio.subprocess.Process] = field(default_factory=list)
    _control_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    cancel_requested: bool = False
    lock_tries: int = 0  # tries of with_lock_retries so far (a figure of the result)

    @property
    def lock_timeout_ms(self) -> int:
        v = self.options.get("lock_timeout_ms", self.params.get("lock_timeout_ms", DEFAULT_LOCK_TIMEOUT_MS))
        return int(v)

    @property
    def lock_budget_s(self) -> float:
        """The total time :func:`with_lock_retries` may spend trying (0: one try under ``lock_timeout_ms``)."""
        v = self.options.get("lock_budget_s", self.params.get("lock_budget_s", DEFAULT_LOCK_BUDGET_S))
        return max(0.0, float(v))

    @property
    def cancelled(self) -> bool:
        return self.cancel_requested or bool(self.cancel_event and self.cancel_event.is_set())

    def check_cancel(self) -> None:
        if self.cancelled:
            raise FixCancelled("cancelled by the operator")

    def progress(self, p: Progress) -> None:
        if self.progress_cb is not None:
            try:
                self.progress_cb(p)
            except Exception:  # a broken display never breaks a fix
                pass

    # -- reads on the control session (short, under the config's statement_timeout) ----------
    async def fetch(self, sql: str, *args) -> list[asyncpg.Record]:
        async with self._control_lock:
            return await self.control.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args):
        async with self._control_lock:
            return await self.control.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args):
        async with self._control_lock:
            return await self.control.fetchval(sql, *args)

    # -- the fix's own sessions ----------------------------------------------------------------
    async def session(self, *, target: Target | None = None, database: str | None = None,
                      lock_timeout_ms: int | None = None, statement_timeout_ms: int | None = 0,
                      register: bool = True) -> asyncpg.Connection:
        """A new session (pgpreflight/fix). Registered ones are cancelled with pg_cancel_backend on request."""
        t = target or self.target
        if database:
            t = t.with_database(database)
        conn = await connect(t, timeout=self.config.connect_timeout, role=FIX_ROLE,
                             statement_timeout_ms=statement_timeout_ms, lock_timeout_ms=lock_timeout_ms)
        if register:
            self._sessions.append(conn)
        return conn

    async def close_session(self, conn: asyncpg.Connection | None) -> None:
        if conn is None:
            return
        with contextlib.suppress(ValueError):
            self._sessions.remove(conn)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 5)
        if not conn.is_closed():
            conn.terminate()

    async def execute(self, conn: asyncpg.Connection, sql: str, *args) -> str:
        """A statement that changes something: recorded for the audit log, then run."""
        self.statements.append(sql)
        return await conn.execute(sql, *args)

    def note_statement(self, sql: str) -> None:
        self.statements.append(sql)

    def register_process(self, proc: asyncio.subprocess.Process) -> None:
        self._procs.append(proc)

    async def cancel_now(self) -> list[int]:
        """pg_cancel_backend on each of the fix's sessions, from the control session; SIGTERM its processes."""
        self.cancel_requested = True
        cancelled = []
        for proc in list(self._procs):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for conn in list(self._sessions):
            if conn.is_closed():
                continue
            pid = conn.get_server_pid()
            try:
                async with self._control_lock:
                    if await self.control.fetchval("SELECT pg_cancel_backend($1)", pid):
                        cancelled.append(pid)
            except Exception:  # the control session itself is gone: nothing more we can do here
                pass
        return cancelled


# ------------------------------------------------------------------------------------------ Fix
class Fix:
    """One kind of fix. Subclasses set ``name``/``title`` and implement ``plan`` and ``run``."""

    name: str = ""
    title: str = ""
    writes: bool = True  # False: allowed with --read-only (changes nothing in the database)
    confirmations: int = 1

    def __init__(self, params: dict | None = None):
        self.params = dict(params or {})
        self.validate_params()

    def validate_params(self) -> None:
        """Raise FixError on params the fix cannot use."""

    def label(self) -> str:
        """A short imperative line for menus: "create missing indexes on extraction_analytics"."""
        return self.title[:1].lower() + self.title[1:]

    def describe(self) -> str | None:
        """The SQL/commands without a database (the checklist's details pane); the plan is exact."""
        return None

    def objects(self, ctx: FixContext) -> list[str]:
        """Lock keys: one fix at a time per object."""
        return [f"{self.name}"]

    async def check_preconditions(self, ctx: FixContext) -> list[Precondition]:
        """Privileges (named), server version, disk space, a primary: checked fresh, read-only. Each fix
        computes them inside :meth:`plan` (they share its queries), so this is the plan's list."""
        return list((await self.plan(ctx)).preconditions)

    async def plan(self, ctx: FixContext) -> Plan:
        raise NotImplementedError

    async def run(self, ctx: FixContext, progress_cb: ProgressCallback | None,
                  cancel_event: asyncio.Event | None) -> FixResult:
        raise NotImplementedError

    # helpers for subclasses
    def base_plan(self, ctx: FixContext, **kw) -> Plan:
        kw.setdefault("writes", self.writes)
        kw.setdefault("confirmations", self.confirmations)
        return Plan(fix=self.name, title=kw.pop("title", self.title), target=ctx.target.display,
                    item_id=ctx.item_id, **kw)


REGISTRY: dict[str, type[Fix]] = {}


def register(cls: type[Fix]) -> type[Fix]:
    REGISTRY[cls.name] = cls
    return cls


def get_fix_class(name: str) -> type[Fix]:
    _load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        raise FixError(f"unknown fix {name!r} (known: {', '.join(sorted(REGISTRY))})") from None


def _load_all() -> None:
    import tui.fixes  # noqa: F401  (registers every fix module)


# ------------------------------------------------------------------------------------------ common preconditions
async def need_primary(ctx: FixContext) -> Precondition:
    if ctx.server.in_recovery:
        return Precondition("a primary", False, "the server is a standby (pg_is_in_recovery()); this fix needs a primary")
    return Precondition("a primary", True, "not in recovery")


async def need_superuser(ctx: FixContext, what: str) -> Precondition:
    if ctx.server.superuser:
        return Precondition("privilege", True, f"{ctx.server.current_user} is a superuser")
    return Precondition("privilege", False, f"{what} needs SUPERUSER; role {ctx.server.current_user} is not one")


async def need_table_owner(ctx: FixContext, schema: str, table: str, what: str) -> Precondition:
    row = await ctx.fetchrow(
        "SELECT c.oid, pg_has_role(current_user, c.relowner, 'USAGE') AS owner, "
        "       pg_get_userbyid(c.relowner) AS owner_name "
        "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        " WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')", schema, table)
    if row is None:
        return Precondition("table", False, f"no table {qualified(schema, table)}")
    if row["owner"] or ctx.server.superuser:
        return Precondition("privilege", True, f"{ctx.server.current_user} owns {qualified(schema, table)} "
                                               f"(or is a member of {row['owner_name']})")
    return Precondition("privilege", False, f"{what} needs ownership of {qualified(schema, table)} "
                                            f"(owner: {row['owner_name']}); role {ctx.server.current_user} "
                                            f"is not a member of it")


def need_version(ctx: FixContext, min_num: int, what: str) -> Precondition:
    if ctx.server.version_num >= min_num:
        return Precondition("server version", True, ctx.server.version)
    return Precondition("server version", False, f"{what} needs PostgreSQL {min_num // 10000}+; "
                                                 f"the server runs {ctx.server.version}")


def need_disk(path: Path, need_bytes: int, what: str) -> Precondition:
    p = Path(path)
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError as e:
        return Precondition("disk space", False, f"cannot read free space of {p}: {e.strerror or e}")
    ok = free >= need_bytes
    return Precondition("disk space", ok,
                        f"{what}: needs about {human_bytes(need_bytes)}, {human_bytes(free)} free in {probe}"
                        + ("" if ok else " — refusing before starting"))


# ------------------------------------------------------------------------------------------ locks
# Sessions holding or awaiting a lock on a relation (every mode conflicts with ACCESS EXCLUSIVE), one row
# per session: the root holder first (granted, idle in transaction, oldest first), then other holders, then
# those queued. Cheap: pg_locks filtered on one relation, joined to pg_stat_activity for those pids only.
LOCK_HOLDERS_SQL = """
SELECT l.pid, bool_or(l.granted) AS granted, string_agg(DISTINCT l.mode, ',') AS modes,
       a.state, a.usename AS "user", coalesce(a.application_name, '') AS application,
       left(a.query, 300) AS query, a.wait_event_type,
       extract(epoch FROM now() - coalesce(a.xact_start, a.query_start, a.backend_start))::float8 AS age_s
  FROM pg_locks l
  JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'relation' AND l.relation = $1::regclass
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.pid <> pg_backend_pid() AND l.pid <> ALL($2::int[])
 GROUP BY l.pid, a.state, a.usename, a.application_name, a.query, a.wait_event_type, a.xact_start,
          a.query_start, a.backend_start
 ORDER BY bool_or(l.granted) DESC, (a.state LIKE 'idle in transaction%') DESC,
          coalesce(a.xact_start, a.query_start, a.backend_start), l.pid
"""


def _holder(r) -> dict:
    state = r["state"] or ""
    return {"pid": int(r["pid"]), "state": r["state"], "age_s": round(float(r["age_s"] or 0), 1),
            "application": r["application"], "user": r["user"], "query": (r["query"] or "").strip(),
            "granted": bool(r["granted"]), "modes": r["modes"],
            # an idle transaction has no query to cancel: only ending the session releases its locks
            "action": "cancel" if state == "active" else "terminate"}


async def lock_holders(ctx: FixContext, rel: str, exclude: tuple[int, ...] = ()) -> list[dict]:
    """The sessions whose locks on ``rel`` conflict with ACCESS EXCLUSIVE, the root holder first. The fix's
    own sessions are left out (``exclude`` and the control session)."""
    own = [c.get_server_pid() for c in ctx._sessions if not c.is_closed()] + list(exclude)
    return [_holder(r) for r in await ctx.fetch(LOCK_HOLDERS_SQL, rel, own)]


async def lock_precondition(ctx: FixContext, rel: str, what: str = "ACCESS EXCLUSIVE") -> Precondition:
    """A warning (never a guard) naming the sessions that would make the fix wait for its lock."""
    from tui.model.fixes import blocker_line

    try:
        holders = await lock_holders(ctx, rel)
    except asyncpg.PostgresError as e:  # e.g. the table is gone: the other preconditions say so
        return Precondition("lock conflicts", False, f"cannot read pg_locks: {str(e).splitlines()[0]}", warn=True)
    if not holders:
        return Precondition("lock conflicts", True, f"no session holds a lock on {rel} now", warn=True)
    budget = ctx.lock_budget_s
    lines = "; ".join(blocker_line(h, 60) + ("" if h["granted"] else " (queued)") for h in holders[:5])
    more = f"; and {len(holders) - 5} more" if len(holders) > 5 else ""
    return Precondition(
        "lock conflicts", False,
        f"{len(holders)} session(s) hold or await a lock on {rel} that conflicts with {what}; the fix retries "
        f"short tries for up to {budget:.0f} s while they finish, root holder first: {lines}{more}",
        warn=True, holders=tuple(holders))


def lock_retry_timeouts(ctx: FixContext) -> tuple[int, ...]:
    """lock_timeout of each try (ms): the schedule, capped by ``lock_timeout_ms`` (``--lock-timeout``).
    With a budget of 0 a single try under ``lock_timeout_ms``: the old behaviour."""
    cap = max(1, ctx.lock_timeout_ms)
    if ctx.lock_budget_s <= 0:
        return (cap,)
    return tuple(min(t, cap) for t in LOCK_RETRY_TIMEOUTS_MS)


async def with_lock_retries(ctx: FixContext, conn: asyncpg.Connection, sql: str, *, rel: str,
                            budget_s: float | None = None, cancellable: bool = True,
                            pause_s: tuple[float, float] = LOCK_RETRY_PAUSE_S,
                            max_tries: int = 1000, phase: str = "taking the lock") -> int:
    """Run ``sql`` (a statement that takes ACCESS EXCLUSIVE on ``rel``) the way GitLab's ``with_lock_retries``
    does: each try under a short ``lock_timeout`` that grows over the first tries (100 → 400 ms), a pause with
    jitter between tries, until it runs or ``budget_s`` (default ``ctx.lock_budget_s``) is spent; then
    :class:`LockNotTaken` names the root holder. The statement is recorded once. Returns the number of tries.
    The session's lock_timeout is put back afterwards (RESET: the value it was opened with)."""
    timeouts = lock_retry_timeouts(ctx)
    budget = ctx.lock_budget_s if budget_s is None else max(0.0, budget_s)
    t0 = time.monotonic()
    deadline = t0 + budget
    tries = 0
    used: list[int] = []
    held_by = ""
    ctx.note_statement(sql)
    try:
        while True:
            ms = timeouts[min(tries, len(timeouts) - 1)]
            if budget > 0:  # the last try ends with the budget
                ms = max(1, min(ms, int((deadline - time.monotonic()) * 1000) or 1))
            tries += 1
            used.append(ms)
            await conn.execute(f"SET lock_timeout = {int(ms)}")
            try:
                await conn.execute(sql)
                return tries
            except asyncpg.LockNotAvailableError:
                pass
            pause = random.uniform(*pause_s) if pause_s else 0.0
            remaining = deadline - time.monotonic()
            if budget > 0 and remaining > 0.15:
                pause = min(pause, remaining - 0.1)  # the budget is spent to its end: a last, shorter try
            if tries >= max_tries or remaining <= 0.15 or time.monotonic() + pause >= deadline:
                holders = await lock_holders(ctx, rel, exclude=(conn.get_server_pid(),))
                raise LockNotTaken(rel, tries, time.monotonic() - t0, tuple(used), holders) from None
            if tries == 1 or tries % 5 == 0:  # name the holder now and then, not on every try
                with contextlib.suppress(asyncpg.PostgresError):
                    hs = await lock_holders(ctx, rel, exclude=(conn.get_server_pid(),))
                    held_by = f"; held by pid {hs[0]['pid']} ({hs[0]['state'] or '?'})" if hs else ""
            ctx.progress(Progress(f"{phase}: waiting for the lock on {rel}", None,
                                  f"try {tries} under lock_timeout {ms} ms, next in {pause:.1f} s, "
                                  f"{max(0.0, deadline - time.monotonic()):.0f} s of the budget left{held_by}"))
            if cancellable:
                ctx.check_cancel()
                if ctx.cancel_event is not None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(ctx.cancel_event.wait(), pause)
                    ctx.check_cancel()
                else:
                    await asyncio.sleep(pause)
            else:
                await asyncio.sleep(pause)
    finally:
        ctx.lock_tries += tries
        if not conn.is_closed():
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError):
                await conn.execute("RESET lock_timeout")


# ------------------------------------------------------------------------------------------ the runner
_inproc_lock = threading.Lock()
_inproc_busy: set[str] = set()


def busy_objects() -> set[str]:
    with _inproc_lock:
        return set(_inproc_busy)


@contextlib.asynccontextmanager
async def open_context(config: Config, params: dict | None = None, *, item_id: str | None = None,
                       options: dict | None = None, progress_cb: ProgressCallback | None = None,
                       cancel_event: asyncio.Event | None = None):
    """Open the control session and build a FixContext; close every session of the fix at exit."""
    # plan reads never wait long behind a lock someone else holds (sizes use relpages, not pg_relation_size)
    control = await connect(config.target, timeout=config.connect_timeout, role=FIX_ROLE,
                            statement_timeout_ms=config.statement_timeout_ms, lock_timeout_ms=2000)
    ctx = None
    try:
        row = await control.fetchrow(
            "SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS v, "
            "current_user AS usr, current_database() AS db, "
            "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su, pg_is_in_recovery() AS rec")
        server = ServerInfo(row["num"], row["v"], row["usr"], row["db"], bool(row["su"]), bool(row["rec"]))
        identity = await fetch_identity(control)
        ctx = FixContext(config=config, target=config.target, params=dict(params or {}), item_id=item_id,
                         control=control, server=server, identity=identity, options=dict(options or {}),
                         progress_cb=progress_cb, cancel_event=cancel_event)
        yield ctx
    finally:
        if ctx is not None:
            for conn in list(ctx._sessions):
                await ctx.close_session(conn)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(control.close(), 5)
        if not control.is_closed():
            control.terminate()


async def plan_fix(config: Config, fix_name: str, params: dict | None = None, *, item_id: str | None = None,
                   options: dict | None = None) -> Plan:
    """The plan, with its preconditions checked now. Changes nothing."""
    fix = get_fix_class(fix_name)(params)
    async with open_context(config, fix.params, item_id=item_id, options=options) as ctx:
        return await fix.plan(ctx)


async def _identity_for_audit(config: Config) -> dict:
    """The database identity of a refusal that never opened a fix context (read-only): a short read-only
    session; when the server cannot be reached, the name the target gives and why the rest is unknown."""
    try:
        conn = await connect(config.target, timeout=min(config.connect_timeout, 3.0), role=FIX_ROLE,
                             statement_timeout_ms=2000)
    except (TargetError, OSError, asyncpg.PostgresError) as e:
        return {"system_identifier": None, "name": config.target.effective_database,
                "unknown": getattr(e, "reason", None) or str(e).splitlines()[0]}
    try:
        identity = await fetch_identity(conn)
        return {"system_identifier": identity.system_identifier, "name": identity.database}
    except (asyncpg.PostgresError, OSError) as e:
        return {"system_identifier": None, "name": config.target.effective_database,
                "unknown": str(e).splitlines()[0] if str(e) else type(e).__name__}
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 2)


def _audit(config: Config, ctx: FixContext | None, fix: Fix, item_id: str | None, statements, outcome: str,
           database: dict | None = None, **extra) -> None:
    if ctx is not None:
        database = {"system_identifier": ctx.identity.system_identifier, "name": ctx.identity.database}
    try:
        audit.record(config.state_dir, config.target.display, f"fix {fix.name}", list(statements), outcome,
                     item=item_id, fix=fix.name, database=database, **extra)
    except OSError:  # the audit log cannot be written: the fix must not run silently
        if outcome == "started":
            raise FixRefused(f"cannot write the audit log in {config.state_dir}") from None


async def run_fix(config: Config, fix_name: str, params: dict | None = None, *, item_id: str | None = None,
                  confirmations: int = 0, progress_cb: ProgressCallback | None = None,
                  cancel_event: asyncio.Event | None = None, options: dict | None = None,
                  record: bool = True, confirmed_plan: Plan | None = None) -> FixResult:
    """Plan, guard, lock, run, audit, record. Raises FixRefused (nothing ran) or returns a FixResult.

    ``confirmations``: how many times the operator said yes (``--yes`` counts as every one needed).
    ``confirmed_plan``: the plan the operator saw and confirmed. The plan is computed again here; when its
    statements or commands differ, :class:`PlanChanged` (a FixRefused carrying the new plan): nothing ran."""
    fix = get_fix_class(fix_name)(params)
    if config.read_only and fix.writes:
        _audit(config, None, fix, item_id, [], "refused: read-only", database=await _identity_for_audit(config))
        raise FixRefused(f"read-only: refusing to run {fix.name}"
                         f"{' for ' + item_id if item_id else ''} (started with --read-only; nothing was changed)")
    cancel_event = cancel_event or asyncio.Event()
    async with open_context(config, fix.params, item_id=item_id, options=options, progress_cb=progress_cb,
                            cancel_event=cancel_event) as ctx:
        plan = await fix.plan(ctx)
        if confirmed_plan is not None and not plan.same_actions(confirmed_plan):
            _audit(config, ctx, fix, item_id, plan.statements, "refused: the plan changed since it was confirmed",
                   confirmed_statements=list(confirmed_plan.statements))
            raise PlanChanged("the plan changed since it was confirmed (now: "
                              + ("; ".join(plan.statements + plan.commands) or "nothing to run")[:300]
                              + "): nothing was changed; confirm the new plan", plan)
        if confirmations < plan.confirmations:
            _audit(config, ctx, fix, item_id, plan.statements, "refused: not confirmed")
            raise FixRefused("not confirmed: nothing was changed" if plan.confirmations == 1 else
                             f"needs {plan.confirmations} confirmations: nothing was changed", plan)
        if plan.blocked:
            why = "; ".join(f"{p.name}: {p.detail}" for p in plan.blockers)
            _audit(config, ctx, fix, item_id, plan.statements, f"refused: {why}")
            raise FixRefused(f"cannot run {fix.name}: {why}", plan)
        if plan.nothing_to_do:
            res = FixResult(ok=True, summary="nothing to do: " + ("; ".join(plan.notes) or "already in place"))
            _audit(config, ctx, fix, item_id, [], "ok: nothing to do")
            if record:
                _record(config, ctx, fix, item_id, res)
            return res

        keys = [f"{ctx.identity.key}:{o}" for o in fix.objects(ctx)]
        with _inproc_lock:
            taken = [k for k in keys if k in _inproc_busy]
            if not taken:
                _inproc_busy.update(keys)
        if taken:
            raise FixRefused(f"another fix is already running on {', '.join(k.split(':', 1)[1] for k in taken)}", plan)
        got_advisory: list[int] = []
        try:
            for k in keys:
                ak = advisory_key(k)
                if not await ctx.fetchval("SELECT pg_try_advisory_lock($1)", ak):
                    holder = await ctx.fetchval(
                        "SELECT string_agg(format('pid %s (%s)', a.pid, coalesce(nullif(a.application_name, ''), '?')), ', ') "
                        "  FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                        " WHERE l.locktype = 'advisory' AND l.granted "
                        "   AND ((l.classid::bigint << 32) | l.objid::bigint) = $1", ak)
                    raise FixRefused(f"another pgpreflight is already fixing {k.split(':', 1)[1]}"
                                     f"{' (' + holder + ')' if holder else ''}", plan)
                got_advisory.append(ak)
            _audit(config, ctx, fix, item_id, plan.statements, "started")
            t0 = time.monotonic()
            watcher = asyncio.create_task(_watch_cancel(ctx, cancel_event))
            try:
                try:
                    res = await fix.run(ctx, progress_cb, cancel_event)
                except FixCancelled:
                    res = FixResult(ok=False, cancelled=True, statements=tuple(ctx.statements),
                                    summary="cancelled: " + ("nothing was changed" if not ctx.statements else
                                                             f"after {len(ctx.statements)} statement(s), cleaned up"))
                except (TargetError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as e:
                    msg = e.reason if isinstance(e, TargetError) else (str(e).splitlines()[0] if str(e) else type(e).__name__)
                    # the fix could not look at what it left (e.g. the server went away mid-statement): never
                    # claim "nothing" after a write was sent
                    unknown = (f"unknown: the fix stopped after sending {len(ctx.statements)} statement(s) "
                               f"({'; '.join(ctx.statements)[:300]}); when the server is back, run "
                               f"'pgpreflight check' to see what they left (e.g. an INVALID index)",
                               ) if ctx.statements else ()
                    res = FixResult(ok=False, summary=f"failed: {msg}", statements=tuple(ctx.statements),
                                    left_behind=unknown)
                except asyncio.CancelledError:  # the task itself was cancelled (the app is closing): say so, re-raise
                    _audit(config, ctx, fix, item_id, ctx.statements, "cancelled: the task was cancelled (app closing)")
                    raise
                except Exception as e:  # a bug in a fix: still one line in the audit log and the result
                    msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                    res = FixResult(ok=False, summary=f"failed unexpectedly ({msg}); check what is left",
                                    statements=tuple(ctx.statements))
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
            if not res.statements and ctx.statements:
                res = _with(res, statements=tuple(ctx.statements))
            figures = dict(res.figures)
            figures.setdefault("duration_s", round(time.monotonic() - t0, 3))
            if ctx.lock_tries:
                figures.setdefault("lock_tries", ctx.lock_tries)
            res = _with(res, figures=figures)
            outcome = "ok" if res.ok else ("cancelled" if res.cancelled else "failed")
            outcome += f": {res.summary}"
            if res.left_behind:
                outcome += f" | left behind: {'; '.join(res.left_behind)}"
            _audit(config, ctx, fix, item_id, ctx.statements, outcome)
            if record:
                _record(config, ctx, fix, item_id, res)
            return res
        finally:
            for ak in got_advisory:
                with contextlib.suppress(Exception):
                    await ctx.fetchval("SELECT pg_advisory_unlock($1)", ak)
            with _inproc_lock:
                _inproc_busy.difference_update(keys)


def _with(res: FixResult, **kw) -> FixResult:
    from dataclasses import replace

    return replace(res, **kw)


def _record(config: Config, ctx: FixContext, fix: Fix, item_id: str | None, res: FixResult) -> None:
    figures = {k: v for k, v in res.figures.items() if isinstance(v, (int, float, str, bool)) or v is None}
    with contextlib.suppress(OSError):
        record_fix_run(config.state_dir, ctx.identity, fix.name, res.ok, figures, item_id=item_id,
                       detail=res.summary[:300])


async def _watch_cancel(ctx: FixContext, cancel_event: asyncio.Event) -> None:
    await cancel_event.wait()
    await ctx.cancel_now()


async def run_followup(config: Config, choice: Choice, option: str, *, item_id: str | None = None,
                       options: dict | None = None) -> FixResult | None:
    """Carry out the operator's answer to a Choice (e.g. drop the INVALID index). ``keep`` does nothing."""
    if option == "keep" or not choice.fix:
        return None
    return await run_fix(config, choice.fix, dict(choice.params), item_id=item_id, confirmations=1,
                         options=options)


def params_for_item(item: Any) -> tuple[str, dict]:
    """(fix name, params) of a checklist item (tui.checklist.spec.Item)."""
    if getattr(item, "fix", None) is None:
        raise FixError(f"item {item.id!r} has no fix")
    return item.fix.name, dict(item.fix.params)
