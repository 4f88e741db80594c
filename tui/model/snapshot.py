"""Immutable snapshots the pollers produce and the widgets draw. Pure Python."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ServerInfo:
    version: str
    version_num: int
    started_at: datetime
    now: datetime
    database: str
    connections: int
    max_connections: int
    reserved_connections: int
    xacts: int
    blks_hit: int
    blks_read: int
    in_recovery: bool
    polled_at: float  # time.monotonic() of the poll
    database_bytes: int | None = None
    database_growth_bps: float | None = None  # bytes per second, from successive size polls
    tps: float | None = None  # from the previous poll
    cache_hit_ratio: float | None = None  # over the last interval, else cumulative
    database_bytes_estimated: bool = False  # from pg_class pages (past 5,000 relations), not pg_database_size
    # -- what the Timeline's graphs need every round (issue 14 §3); None where not polled ------------
    commits: int | None = None  # pg_stat_database.xact_commit (cumulative)
    rollbacks: int | None = None  # pg_stat_database.xact_rollback (cumulative)
    commits_per_s: float | None = None  # from the previous poll; None after a stats reset
    rollbacks_per_s: float | None = None
    # client backends by state, in STATES order, summing to ``connections`` (the poll's own session counts,
    # as in ``connections``); "other": hidden (no pg_read_all_stats), fastpath, disabled
    by_state: tuple[tuple[str, int], ...] = ()
    lock_waiting: int | None = None  # client backends with wait_event_type 'Lock'
    oldest_xact_s: float | None = None  # the oldest open transaction's age (not the poll's own); None: none
    # pg_stat_statements of this database, without query texts and without pgpreflight's own statements:
    # cumulative totals, and per interval from the previous read (every poll while the read is cheap, else
    # less often: a poll in between carries the last read's figures; tui.db.poller.ServerPoller). None: the
    # extension is absent or not readable, or (for the rates) the first read, a stats reset, or no calls in
    # the interval (mean_ms)
    pgss_calls: int | None = None
    pgss_total_ms: float | None = None
    calls_per_s: float | None = None
    mean_ms: float | None = None

    STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)", "other")

    @property
    def uptime_s(self) -> float:
        return max(0.0, (self.now - self.started_at).total_seconds())

    @property
    def usable_connections(self) -> int:
        return max(0, self.max_connections - self.reserved_connections)

    @property
    def major(self) -> int:
        return self.version_num // 10000


@dataclass(frozen=True)
class ConnectionState:
    """What the header says about the link to the server."""

    status: str  # "connecting" | "connected" | "disconnected"
    message: str = ""
    retry_in_s: float | None = None
    last_ok_at: float | None = None  # monotonic time of the last good poll


HIDDEN_QUERY = "<hidden: GRANT pg_read_all_stats TO {role}>"


@dataclass(frozen=True)
class Session:
    """One client backend from pg_stat_activity (never the tool's own)."""

    pid: int
    database: str | None
    user: str | None
    application_name: str
    client_addr: str | None
    state: str | None
    wait_event_type: str | None
    wait_event: str | None
    blocked_by: tuple[int, ...]
    xact_age_s: float | None
    query_age_s: float | None
    state_age_s: float | None
    query: str  # cleaned (tui.model.format.clean_text); HIDDEN_QUERY when not visible to us
    query_hidden: bool = False
    own: bool = False  # one of pgpreflight's own sessions (listed only when it blocks a listed session)
    backend_age_s: float | None = None  # since the backend started (its connection opened)

    def chain_label(self, query_chars: int = 80) -> str:
        """What the blocking chains say of this session: "pgpreflight fix: ALTER TABLE …" for our own."""
        q = " ".join((self.query or "").split())
        q = q if len(q) <= query_chars else q[: query_chars - 1] + "…"
        if self.own:
            role = self.application_name.split("/", 1)[1] if "/" in self.application_name else "session"
            return f"pgpreflight {role}: {q}"
        return f"{self.user or '?'} {self.state or '(hidden)'}: {q}"

    @property
    def is_idle(self) -> bool:
        return self.state == "idle"

    @property
    def is_idle_in_xact(self) -> bool:
        return bool(self.state) and self.state.startswith("idle in transaction")

    @property
    def age_s(self) -> float:
        """What the session table orders by: transaction age, else query age."""
        return self.xact_age_s if self.xact_age_s is not None else (self.query_age_s or 0.0)

    def to_dict(self) -> dict:
        return {
            "pid": self.pid, "database": self.database, "user": self.user,
            "application_name": self.application_name, "client_addr": self.client_addr,
            "state": self.state, "wait_event_type": self.wait_event_type, "wait_event": self.wait_event,
            "blocked_by": list(self.blocked_by), "xact_age_s": _r(self.xact_age_s),
            "query_age_s": _r(self.query_age_s), "state_age_s": _r(self.state_age_s),
            "query": self.query, "query_hidden": self.query_hidden,
            **({"own": True} if self.own else {}),
        }


@dataclass(frozen=True)
class LockRow:
    """One row of pg_locks of a session: what it holds (granted) or waits for."""

    locktype: str
    mode: str
    granted: bool
    target: str  # "public.orders", "transaction 1234", "tuple (0,1) of public.orders", …


@dataclass(frozen=True)
class SessionLocks:
    """A session's locks, fetched when its detail opens (tui.db.sessions.session_locks)."""

    pid: int
    exists: bool  # False: the session ended before the query ran
    held: tuple[LockRow, ...] = ()
    waiting: tuple[LockRow, ...] = ()
    blocked_by: tuple[int, ...] = ()  # pg_blocking_pids(pid)
    blocking: tuple[int, ...] = ()  # sessions whose pg_blocking_pids name pid
    error: str = ""  # the query failed: why (the detail says so instead of the locks)


@dataclass(frozen=True)
class SessionState:
    """What pg_stat_activity says of a pid after a cancel or terminate (tui.db.sessions.session_states)."""

    pid: int
    state: str | None
    query_start: datetime | None
    backend_start: datetime | None


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(float(x), nd)


@dataclass(frozen=True)
class ConnectionsSnapshot:
    total: int
    max_connections: int
    by_state: tuple[tuple[str, int], ...]
    by_database: tuple[tuple[str, int], ...]
    by_application: tuple[tuple[str, int], ...]
    by_user: tuple[tuple[str, int], ...]
    sessions: tuple[Session, ...]  # oldest first
    sessions_omitted: int = 0  # what the LIMIT left out
    includes_idle: bool = False
    polled_at: float = 0.0
    # pgpreflight's own sessions that block a listed one (a fix's ALTER in the lock queue): chains only
    own_blockers: tuple[Session, ...] = ()

    def by_pid(self) -> dict[int, Session]:
        """Every session the chains can name: the listed ones and our own blockers."""
        out = {s.pid: s for s in self.own_blockers}
        out.update((s.pid, s) for s in self.sessions)
        return out

    def blocking_chains(self) -> list[tuple[int, int]]:
        """(depth, pid) in tree order: roots are sessions that block others but wait on nobody listed."""
        blockers: dict[int, list[int]] = {}
        everyone = self.sessions + self.own_blockers
        for s in everyone:
            for b in s.blocked_by:
                blockers.setdefault(b, []).append(s.pid)
        if not blockers:
            return []
        waiting = {s.pid for s in everyone if s.blocked_by}
        roots = sorted(p for p in blockers if p not in waiting) or sorted(blockers)
        out: list[tuple[int, int]] = []
        seen: set[int] = set()

        def walk(pid: int, depth: int) -> None:
            if pid in seen:
                return
            seen.add(pid)
            out.append((depth, pid))
            for child in sorted(blockers.get(pid, ())):
                walk(child, depth + 1)

        for r in roots:
            walk(r, 0)
        return out

    def to_dict(self) -> dict:
        return {
            "total": self.total, "max": self.max_connections,
            "by_state": dict(self.by_state), "by_database": dict(self.by_database),
            "by_application": dict(self.by_application), "by_user": dict(self.by_user),
            "sessions": [s.to_dict() for s in self.sessions],
            "sessions_omitted": self.sessions_omitted,
            **({"own_blockers": [s.to_dict() for s in self.own_blockers]} if self.own_blockers else {}),
        }


@dataclass(frozen=True)
class Statement:
    """A pg_stat_statements entry (or, in fallback, a long-running pg_stat_activity query)."""

    key: str  # queryid (or "pid:N" in fallback): the stable row id
    query: str
    calls: int
    rows: int
    mean_ms: float
    total_ms: float
    share: float | None = None  # of all statements' total time
    cache_hit_ratio: float | None = None
    database: str | None = None
    user: str | None = None
    interval_calls: int | None = None  # since the previous poll
    interval_ms: float | None = None
    interval_s: float | None = None
    minute_calls: int | None = None  # over (about) the last minute
    minute_ms: float | None = None
    pid: int | None = None  # fallback only
    age_s: float | None = None  # fallback only
    queryid: str | None = None  # pg_stat_statements' id (one per user and database: key adds both)

    def to_dict(self) -> dict:
        d = {
            "query": self.query, "calls": self.calls, "rows": self.rows,
            "mean_ms": _r(self.mean_ms), "total_ms": _r(self.total_ms),
            "share": _r(self.share, 5), "cache_hit_ratio": _r(self.cache_hit_ratio, 5),
            "database": self.database, "user": self.user,
        }
        if self.key.startswith("pid:"):
            d.update(pid=self.pid, age_s=_r(self.age_s))
        else:
            d["queryid"] = self.queryid
        return d


@dataclass(frozen=True)
class SlowQueriesSnapshot:
    source: str  # "pg_stat_statements" | "pg_stat_activity"
    statements: tuple[Statement, ...]
    message: str = ""  # why the fallback, and the fix
    total_ms: float | None = None  # all statements, since reset
    polled_at: float = 0.0

    def to_dict(self) -> dict:
        return {"source": self.source, "message": self.message or None, "total_ms": _r(self.total_ms),
                "statements": [s.to_dict() for s in self.statements]}


LARGE_TABLE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class TableStat:
    schema: str
    name: str
    qualified_name: str  # quote_ident(schema).quote_ident(name), from the server
    total_bytes: int | None  # None when it could not be measured (locked): never an estimate shown as a size
    table_bytes: int | None  # None when the table was locked
    index_bytes: int | None
    toast_bytes: int | None
    est_rows: int | None
    seq_scan: int | None
    idx_scan: int | None
    dead_rows: int | None
    last_autovacuum: datetime | None
    growth_bytes_per_min: float | None = None
    locked: bool = False  # an AccessExclusiveLock was held or awaited: not measured this round
    locked_by: int | None = None  # the pid holding (or else awaiting) that lock
    last_bytes: int | None = None  # locked: the last size measured, when this monitor measured one
    last_measured_age_s: float | None = None  # how long ago that was
    partition_count: int | None = None  # a partitioned table: how many leaf partitions its size sums
    partitions: tuple["TableStat", ...] = ()  # those partitions, largest first

    @property
    def mostly_seq_scanned(self) -> bool:
        """A large table read mostly by sequential scans: likely a missing index."""
        seq, idx = self.seq_scan or 0, self.idx_scan or 0
        return (self.total_bytes or 0) >= LARGE_TABLE_BYTES and seq > 10 and seq > idx

    @property
    def size_text(self) -> str:
        """The total as measured; for a locked table the last measured size with its age, or "unknown
        (locked by pid N)". Never a figure that was not measured."""
        from tui.model import format as fmt

        if self.total_bytes is not None:
            return fmt.size(self.total_bytes)
        who = f"locked by pid {self.locked_by}" if self.locked_by else "locked"
        if self.last_bytes is not None and self.last_measured_age_s is not None:
            return f"{fmt.size(self.last_bytes)} ({fmt.duration(self.last_measured_age_s)} ago, {who})"
        return f"unknown ({who})"

    def to_dict(self) -> dict:
        return {
            "schema": self.schema, "name": self.name, "qualified_name": self.qualified_name,
            "total_bytes": self.total_bytes, "table_bytes": self.table_bytes, "index_bytes": self.index_bytes,
            "toast_bytes": self.toast_bytes, "est_rows": self.est_rows, "seq_scan": self.seq_scan,
            "idx_scan": self.idx_scan, "dead_rows": self.dead_rows,
            "last_autovacuum": self.last_autovacuum.isoformat() if self.last_autovacuum else None,
            "growth_bytes_per_min": _r(self.growth_bytes_per_min, 1),
            "mostly_seq_scanned": self.mostly_seq_scanned, "locked": self.locked, "locked_by": self.locked_by,
            "last_measured_bytes": self.last_bytes, "last_measured_age_s": _r(self.last_measured_age_s, 1),
            "partition_count": self.partition_count,
            "partitions": [p.to_dict() for p in self.partitions] if self.partition_count is not None else None,
        }


@dataclass(frozen=True)
class TablesSnapshot:
    database_bytes: int | None
    tables: tuple[TableStat, ...]
    polled_at: float = 0.0
    note: str = ""

    def to_dict(self) -> dict:
        return {"database_bytes": self.database_bytes, "tables": [t.to_dict() for t in self.tables],
                "note": self.note or None}


@dataclass(frozen=True)
class DiskUsage:
    label: str  # "data directory" | "backup directory"
    path: str
    total: int
    used: int
    free: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {"label": self.label, "path": self.path, "total_bytes": self.total, "used_bytes": self.used,
                "free_bytes": self.free, "percent": round(self.percent, 1)}


@dataclass(frozen=True)
class HostSnapshot:
    cpu_percent: float | None
    cpu_count: int
    load: tuple[float, float, float] | None
    mem_total: int
    mem_used: int
    mem_available: int
    swap_used: int
    disks: tuple[DiskUsage, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. "data directory not readable"
    polled_at: float = 0.0

    @property
    def mem_percent(self) -> float:
        return 100.0 * (self.mem_total - self.mem_available) / self.mem_total if self.mem_total else 0.0

    def to_dict(self) -> dict:
        return {
            "cpu_percent": _r(self.cpu_percent, 1), "cpu_count": self.cpu_count,
            "load": list(self.load) if self.load else None,
            "memory": {"total_bytes": self.mem_total, "used_bytes": self.mem_used,
                       "available_bytes": self.mem_available, "percent": round(self.mem_percent, 1),
                       "swap_used_bytes": self.swap_used},
            "disks": [d.to_dict() for d in self.disks], "notes": list(self.notes),
        }


REMOTE_HOST_MESSAGE = "host metrics unavailable for a remote server"


@dataclass(frozen=True)
class Snapshot:
    """One poll of every pane: what `pgpreflight snapshot` prints and canned UI tests draw."""

    target: str  # redacted display form
    taken_at: datetime
    server: ServerInfo | None
    connections: ConnectionsSnapshot | None
    slow_queries: SlowQueriesSnapshot | None
    tables: TablesSnapshot | None
    host: HostSnapshot | None  # None for a remote server
    host_message: str = ""
    notices: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        s = self.server
        return {
            "target": self.target,
            "taken_at": self.taken_at.isoformat(),
            "server": None if s is None else {
                "version": s.version, "version_num": s.version_num, "database": s.database,
                "started_at": s.started_at.isoformat(), "uptime_s": round(s.uptime_s, 1),
                "max_connections": s.max_connections, "reserved_connections": s.reserved_connections,
                "connections": s.connections, "in_recovery": s.in_recovery,
                "database_bytes": s.database_bytes, "database_bytes_estimated": s.database_bytes_estimated,
                "cache_hit_ratio": _r(s.cache_hit_ratio, 5),
                "commits": s.commits, "rollbacks": s.rollbacks, "by_state": dict(s.by_state),
                "lock_waiting": s.lock_waiting, "oldest_xact_s": _r(s.oldest_xact_s),
                "statements_calls": s.pgss_calls, "statements_total_ms": _r(s.pgss_total_ms),
            },
            "connections": self.connections.to_dict() if self.connections else None,
            "slow_queries": self.slow_queries.to_dict() if self.slow_queries else None,
            "tables": self.tables.to_dict() if self.tables else None,
            "host": self.host.to_dict() if self.host else None,
            "host_message": self.host_message or None,
            "notices": list(self.notices),
        }
