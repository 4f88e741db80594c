"""Pollers: asyncpg in, frozen snapshots out. No textual."""
from __future__ import annotations

import asyncio
import time
from collections import deque

import asyncpg

from tui.db import sql
from tui.db.connect import OWN_MARKER
from tui.model.format import clean_text
from tui.model.snapshot import (
    HIDDEN_QUERY, ConnectionsSnapshot, ServerInfo, Session, SlowQueriesSnapshot, Statement, TablesSnapshot, TableStat,
)


# Inline statements carry the same marker as the .sql files, so pg_stat_statements views leave them out.
VERSION_SQL = "-- pgpreflight\nSELECT current_setting('server_version_num')::int"
ROLE_SQL = "-- pgpreflight\nSELECT current_user"
MAX_CONN_SQL = "-- pgpreflight\nSELECT current_setting('max_connections')::int"
HIDDEN_SESSIONS_SQL = ("-- pgpreflight\nSELECT count(*)::int FROM pg_stat_activity "
                       "WHERE query = '<insufficient privilege>' AND datid IS NOT NULL")
PRELOADED_SQL = ("-- pgpreflight\nSELECT 'pg_stat_statements' = ANY (string_to_array(replace("
                 "current_setting('shared_preload_libraries'), ' ', ''), ','))")


class ServerPoller:
    """Header figures. Keeps the previous sample to derive TPS, cache hit and growth, and (issue 14 §3) the
    commit and rollback rates and the statement latency of pg_stat_statements, for the Timeline's graphs.

    The pg_stat_statements part is optional (``parts``, as the panes' pollers have): an extension not
    created here is looked for again once a minute, quietly after the first notice; not loaded, not
    readable or too slow, it turns itself off for good with one notice.

    Its cost grows with the entries (pg_stat_statements(false) builds every row: about 5 ms of server time
    at 5,000), so it is read at most every PGSS_DUTY times its last duration (0.1 % of the time; every poll
    while it is cheap, every ~5 s at 5,000 entries), at most PGSS_MAX_INTERVAL_S apart; between two reads
    a poll carries the last interval's figures. The own statements' ids (a read of the texts) are learned
    on the first read, then again only when the entries changed, at most every PGSS_RELEARN_S or
    PGSS_DUTY times that read's duration, whichever is longer."""

    PGSS_PART = "statement latency"
    PGSS_RELOCATE_S = 60.0  # not created: look again this often (CREATE EXTENSION may come, by a fix)
    PGSS_RELEARN_S = 60.0  # own statements' ids learned again at most this often, when the entries changed
    PGSS_DUTY = 1000.0  # the next read after this many times the last one's duration
    PGSS_MAX_INTERVAL_S = 30.0

    def __init__(self, pgss_timeout_s: float = 1.0) -> None:
        self._prev: ServerInfo | None = None
        self._size_sample: tuple[float, int] | None = None
        self._size_prev: tuple[float, int] | None = None
        self.version_num: int | None = None
        self.size_estimated = False  # True past 5,000 relations: the size comes from pg_class
        self.pgss_timeout_s = pgss_timeout_s
        self.parts = OptionalParts()
        self._pgss: str | None = None  # the extension's schema, quoted, once found
        self._pgss_looked_at: float | None = None  # when it was last looked for and not found
        self._pgss_for_good = False  # turned off for good (not loaded, no privilege, too slow)
        self._own_ids: list[int] = []  # pgpreflight's own statements, left out of the totals
        self._own_basis: list[int] = []  # the ids left out of the stored previous totals
        self._own_entries: int | None = None  # pg_stat_statements' entries when the ids were learned
        self._own_next_at = 0.0  # when the ids may be learned again
        self._pgss_next_at = 0.0  # when the totals are read next
        self._pgss_last: tuple = (None, None, None, None)  # the last read's figures, carried in between
        self._pgss_prev: tuple[float, int, float] | None = None  # (monotonic, calls, ms) on _own_basis

    async def poll(self, conn: asyncpg.Connection, with_size: bool = False) -> ServerInfo:
        if self.version_num is None:
            self.version_num = int(await conn.fetchval(VERSION_SQL))
        row = await conn.fetchrow(sql.get("server_info", self.version_num))
        now = time.monotonic()
        if with_size or self._size_sample is None:
            size_row = await conn.fetchrow(sql.get("database_size", self.version_num))
            self.size_estimated = bool(size_row["estimated"])
            self._size_prev, self._size_sample = self._size_sample, (now, int(size_row["database_bytes"] or 0))
        growth = None
        if self._size_prev and self._size_sample and self._size_sample[0] > self._size_prev[0]:
            growth = (self._size_sample[1] - self._size_prev[1]) / (self._size_sample[0] - self._size_prev[0])
        prev = self._prev
        tps = hit = commits_ps = rollbacks_ps = None
        if prev is not None and now > prev.polled_at:
            dt = now - prev.polled_at
            tps = max(0, row["xacts"] - prev.xacts) / dt
            dh, dr = row["blks_hit"] - prev.blks_hit, row["blks_read"] - prev.blks_read
            if dh + dr > 0:
                hit = dh / (dh + dr)
            commits_ps = _rate(row["commits"], prev.commits, dt)
            rollbacks_ps = _rate(row["rollbacks"], prev.rollbacks, dt)
        if hit is None and (row["blks_hit"] + row["blks_read"]) > 0:
            hit = row["blks_hit"] / (row["blks_hit"] + row["blks_read"])
        pgss = await self._statements(conn, now)
        by_state = (("active", row["active"]), ("idle", row["idle"]), ("idle in transaction", row["idle_in_xact"]),
                    ("idle in transaction (aborted)", row["idle_in_xact_aborted"]), ("other", row["other_state"]))
        info = ServerInfo(
            version=row["version"], version_num=row["version_num"], started_at=row["started_at"], now=row["now"],
            database=row["database"], connections=row["connections"], max_connections=row["max_connections"],
            reserved_connections=row["reserved_connections"], xacts=row["xacts"], blks_hit=row["blks_hit"],
            blks_read=row["blks_read"], in_recovery=row["in_recovery"], polled_at=now,
            database_bytes=self._size_sample[1] if self._size_sample else None, database_growth_bps=growth,
            tps=tps, cache_hit_ratio=hit, database_bytes_estimated=self.size_estimated,
            commits=row["commits"], rollbacks=row["rollbacks"], commits_per_s=commits_ps,
            rollbacks_per_s=rollbacks_ps, by_state=tuple((k, int(v or 0)) for k, v in by_state),
            lock_waiting=row["lock_waiting"], oldest_xact_s=row["oldest_xact_s"],
            pgss_calls=pgss[0], pgss_total_ms=pgss[1], calls_per_s=pgss[2], mean_ms=pgss[3],
        )
        self._prev = info
        return info

    async def _statements(self, conn: asyncpg.Connection, now: float) -> tuple:
        """(calls, total ms, calls per s, mean ms) of this database's statements, or Nones."""
        none = (None, None, None, None)
        if self._pgss_for_good:
            return none
        if self._pgss is None:
            if self._pgss_looked_at is not None and now - self._pgss_looked_at < self.PGSS_RELOCATE_S:
                return none
            self._pgss_looked_at = now
            loc = await conn.fetchrow(sql.get("pgss_location", self.version_num))
            if loc is None:
                self.parts.turn_off(self.PGSS_PART, "pg_stat_statements is not created in this database")
                return none
            self._pgss, self._pgss_prev, self._own_entries = loc["schema"], None, None
            self.parts.off.pop(self.PGSS_PART, None)  # back on: created since
        if now < self._pgss_next_at:
            return self._pgss_last
        totals = sql.get("pgss_totals", self.version_num).replace("{pgss}", self._pgss)
        ids = self._own_ids
        try:
            # an optional query: a short client-side timeout (asyncpg sends a cancel request)
            t0 = time.perf_counter()
            r = await conn.fetchrow(totals, self._own_basis, ids, timeout=self.pgss_timeout_s)
            cost = time.perf_counter() - t0
            self._pgss_next_at = now + min(self.PGSS_MAX_INTERVAL_S, cost * self.PGSS_DUTY)
            relearn = self._own_entries is None or (r["entries"] != self._own_entries and now >= self._own_next_at)
            if relearn:
                own = sql.get("pgss_own", self.version_num).replace("{pgss}", self._pgss)
                t0 = time.perf_counter()
                learned = await conn.fetchval(own, timeout=self.pgss_timeout_s)
                self._own_next_at = now + max(self.PGSS_RELEARN_S, (time.perf_counter() - t0) * self.PGSS_DUTY)
        except asyncpg.ObjectNotInPrerequisiteStateError:
            self._pgss_for_good = True
            self.parts.turn_off(self.PGSS_PART, "pg_stat_statements is not loaded (shared_preload_libraries)")
            return none
        except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError):  # dropped: look for it again
            self._pgss, self._pgss_looked_at = None, now
            self.parts.turn_off(self.PGSS_PART, "pg_stat_statements is not created in this database")
            return none
        except OptionalParts.OFF_ERRORS as e:
            self._pgss_for_good = True
            self.parts.turn_off(self.PGSS_PART, e)
            return none
        cps = mean = None
        prev = self._pgss_prev
        if prev is not None and now > prev[0]:
            dc, dm = int(r["calls_prev"]) - prev[1], float(r["ms_prev"]) - prev[2]
            if dc >= 0 and dm > -1e-6:  # else a reset (or evicted entries): no figure for this interval
                cps = dc / (now - prev[0])
                mean = max(0.0, dm) / dc if dc else None
        calls, ms = int(r["calls"]), float(r["ms"])
        self._pgss_prev, self._own_basis = (now, calls, ms), ids
        if relearn:
            self._own_ids = sorted(int(i) for i in (learned or ()))
            self._own_entries = int(r["entries"])
        self._pgss_last = (calls, ms, cps, mean)
        return self._pgss_last


def _rate(cur: int | None, prev: int | None, dt: float) -> float | None:
    """Per second from two cumulative counters; None when one is missing or it went back (a stats reset)."""
    if cur is None or prev is None or dt <= 0 or cur < prev:
        return None
    return (cur - prev) / dt


# -- the panes' pollers ----------------------------------------------------------------

SESSION_LIMIT = 200  # rows listed; the rest is counted
PGSS_FIX = ("add pg_stat_statements to shared_preload_libraries, restart the server, "
            "then run CREATE EXTENSION pg_stat_statements")


class OptionalParts:
    """pg_activity's habit: an optional query that fails on privileges or a timeout switches
    itself off once, with one notice, instead of failing every refresh."""

    OFF_ERRORS = (asyncpg.InsufficientPrivilegeError, asyncpg.QueryCanceledError, asyncio.TimeoutError)

    def __init__(self) -> None:
        self.off: dict[str, str] = {}
        self._notices: list[str] = []

    def turn_off(self, part: str, exc: BaseException | str) -> None:
        """``exc``: the error, or the reason in words."""
        if part in self.off:
            return
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, (asyncpg.QueryCanceledError, asyncio.TimeoutError)):
            reason = "it timed out"
        self.off[part] = reason
        self._notices.append(f"{part} turned off: {reason}")

    def take_notices(self) -> tuple[str, ...]:
        out, self._notices = tuple(self._notices), []
        return out


def _hidden_query(role: str) -> str:
    return HIDDEN_QUERY.format(role=quote_ident_py(role))


def quote_ident_py(name: str) -> str:
    """PostgreSQL identifier quoting for display (the server's quote_ident does it in SQL)."""
    import re as _re

    if _re.fullmatch(r"[a-z_][a-z0-9_$]*", name or ""):
        return name
    return '"' + (name or "").replace('"', '""') + '"'


class ConnectionsPoller:
    def __init__(self, limit: int = SESSION_LIMIT) -> None:
        self.limit = limit
        self.max_connections = 0
        self.version_num: int | None = None
        self.role: str | None = None
        self.parts = OptionalParts()

    async def poll(self, conn: asyncpg.Connection, include_idle: bool = False) -> ConnectionsSnapshot:
        if self.version_num is None:
            self.version_num = int(await conn.fetchval(VERSION_SQL))
            self.role = await conn.fetchval(ROLE_SQL)
            self.max_connections = int(await conn.fetchval(MAX_CONN_SQL))  # changes only with a restart
            from tui.db.snapshot import privilege_notices  # once: what this role cannot see, and the GRANT

            self.parts._notices.extend(await privilege_notices(conn))
        # one round trip, one scan of the activity array: counts (kind 'c') and listed sessions (kind 's')
        rows = await conn.fetch(sql.get("activity_all" if include_idle else "activity", self.version_num), self.limit)
        counts = [r for r in rows if r["kind"] == "c"]
        listed = sorted((r for r in rows if r["kind"] == "s"), key=lambda r: r["ord"])  # no server-side sort
        own = [r for r in rows if r["kind"] == "o"]  # our own sessions that block a listed one
        return build_connections(counts, listed, self.max_connections, include_idle, self.role or "current_user",
                                 self.limit, own_rows=own)


def _session(r, role: str, own: bool = False) -> Session:
    q = r["query"]
    hidden = q == "<insufficient privilege>"
    if own and q and q.startswith(OWN_MARKER):  # our own statement: the chains name it without the marker
        q = q[len(OWN_MARKER):]
    return Session(
        pid=r["pid"], database=clean_text(r["database"], 200) or None, user=clean_text(r["user"], 200) or None,
        application_name=clean_text(r["application_name"] if "application_name" in r.keys() else r["application"], 200),
        client_addr=r["client_addr"], state=r["state"], wait_event_type=r["wait_event_type"],
        wait_event=r["wait_event"], blocked_by=tuple(r["blocked_by"] or ()), xact_age_s=r["xact_age_s"],
        query_age_s=r["query_age_s"], state_age_s=r["state_age_s"],
        query=_hidden_query(role) if hidden else clean_text(q, 4000), query_hidden=hidden, own=own,
        backend_age_s=r["backend_age_s"] if "backend_age_s" in r.keys() else None,
    )


def build_connections(counts, rows, max_connections: int, include_idle: bool, role: str,
                      limit: int = SESSION_LIMIT, own_rows=()) -> ConnectionsSnapshot:
    by: dict[str, list[tuple[str, int]]] = {"state": [], "database": [], "application": [], "user": []}
    total = 0
    for r in counts:
        flags = [k for k in ("state", "database", "application", "user") if r[f"is_{k}"]]
        if not flags:
            total = r["n"]
            continue
        key = flags[0]
        label = clean_text(r[key], 200) or ("(none)" if key != "state" else "(hidden)")
        by[key].append((label, r["n"]))
    for k in by:
        by[k].sort(key=lambda kv: (-kv[1], kv[0]))
    sessions = []
    listed_total = 0
    for r in rows:
        listed_total = r["total"]
        sessions.append(_session(r, role))
    return ConnectionsSnapshot(
        total=total, max_connections=max_connections,
        by_state=tuple(by["state"]), by_database=tuple(by["database"]),
        by_application=tuple(by["application"]), by_user=tuple(by["user"]),
        sessions=tuple(sessions), sessions_omitted=max(0, listed_total - len(sessions)),
        includes_idle=include_idle, polled_at=time.monotonic(),
        own_blockers=tuple(_session(r, role, own=True) for r in own_rows),
    )


class SlowQueriesPoller:
    """Top statements with deltas since the previous poll and over the last minute."""

    MINUTE = 60.0

    def __init__(self, optional_timeout_s: float = 2.0) -> None:
        self.optional_timeout_s = optional_timeout_s
        self.version_num: int | None = None
        self.role: str | None = None
        self.parts = OptionalParts()
        self._pgss: str | None = None  # quoted schema of the extension, once found
        self._history: deque[tuple[float, dict[str, tuple[int, float]]]] = deque()

    async def _locate(self, conn: asyncpg.Connection) -> str:
        """'' when created here, else the message saying why not and naming the fix."""
        row = await conn.fetchrow(sql.get("pgss_location", self.version_num))
        if row is not None:
            self._pgss = row["schema"]
            return ""
        try:
            preloaded = await conn.fetchval(PRELOADED_SQL)
        except asyncpg.InsufficientPrivilegeError:
            preloaded = None
        if preloaded:
            return "pg_stat_statements is loaded but not created in this database: run CREATE EXTENSION pg_stat_statements"
        if preloaded is None:  # shared_preload_libraries is hidden from this role: do not guess
            role = quote_ident_py(self.role or "current_user")
            return ("pg_stat_statements is not created in this database (whether it is preloaded is hidden: "
                    f"GRANT pg_read_all_settings TO {role})")
        return f"pg_stat_statements is not installed: {PGSS_FIX}"

    async def poll(self, conn: asyncpg.Connection) -> SlowQueriesSnapshot:
        if self.version_num is None:
            self.version_num = int(await conn.fetchval(VERSION_SQL))
            self.role = await conn.fetchval(ROLE_SQL)
        message = ""
        if "pg_stat_statements" in self.parts.off:
            message = f"pg_stat_statements turned off ({self.parts.off['pg_stat_statements']})"
        elif self._pgss is None:
            message = await self._locate(conn)
        if not message:
            text = sql.get("statements", self.version_num).replace("{pgss}", self._pgss)
            try:
                # an optional query: a short client-side timeout (asyncpg sends a cancel request)
                rows = await conn.fetch(text, timeout=self.optional_timeout_s)
            except asyncpg.ObjectNotInPrerequisiteStateError:
                self._pgss = None
                message = f"pg_stat_statements is not loaded: {PGSS_FIX}"
            except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError):
                self._pgss = None
                message = f"pg_stat_statements is not installed: {PGSS_FIX}"
            except OptionalParts.OFF_ERRORS as e:
                self.parts.turn_off("pg_stat_statements", e)
                message = f"pg_stat_statements turned off ({self.parts.off['pg_stat_statements']})"
            else:
                return self._from_pgss(rows)
        rows = await conn.fetch(sql.get("long_running", self.version_num))
        if not rows:  # other roles' statements have no visible state without pg_read_all_stats: say so
            hidden = await conn.fetchval(HIDDEN_SESSIONS_SQL)
            if hidden:
                role = quote_ident_py(self.role or "current_user")
                message = (f"{message}; " if message else "") + (
                    f"{hidden} session(s) of other roles hidden (GRANT pg_read_all_stats TO {role})")
        stmts = []
        for r in rows:
            q = r["query"]
            hidden = q == "<insufficient privilege>"
            age_ms = (r["age_s"] or 0.0) * 1000
            stmts.append(Statement(
                key=f"pid:{r['pid']}", query=_hidden_query(self.role or "") if hidden else clean_text(q, 8000),
                calls=1, rows=0, mean_ms=age_ms, total_ms=age_ms, database=clean_text(r["database"], 200) or None,
                user=clean_text(r["user"], 200) or None,
                pid=r["pid"], age_s=r["age_s"],
            ))
        return SlowQueriesSnapshot("pg_stat_activity", tuple(stmts), message=message, polled_at=time.monotonic())

    def _from_pgss(self, rows) -> SlowQueriesSnapshot:
        now = time.monotonic()
        # queryid is NULL for other users' statements without pg_read_all_stats: key them by position
        # pg_stat_statements has a row per (user, database, queryid): the same queryid repeats across
        # databases, so the row id is all three. queryid is NULL for other users' statements without
        # pg_read_all_stats: those are keyed by position.
        keys = [f"{r['queryid']}/{r['database']}/{r['user']}" if r["queryid"] else f"hidden:{r['database']}:{r['user']}:{i}"
                for i, r in enumerate(rows)]
        sample = {k: (int(r["calls"]), float(r["total_ms"])) for k, r in zip(keys, rows)}
        prev = self._history[-1] if self._history else None
        minute = None
        for t, s in self._history:  # the oldest sample at least a minute old, else the oldest
            if now - t >= self.MINUTE:
                minute = (t, s)
        if minute is None and self._history:
            minute = self._history[0]
        all_ms = None
        stmts = []
        for qid, r in zip(keys, rows):
            all_ms = float(r["all_ms"] or 0.0)
            calls, total = sample[qid]
            ic = ims = mc = mms = None
            if prev is not None:
                pc, pt = prev[1].get(qid, (0, 0.0))
                ic, ims = max(0, calls - pc), max(0.0, total - pt)
            if minute is not None:
                pc, pt = minute[1].get(qid, (0, 0.0))
                mc, mms = max(0, calls - pc), max(0.0, total - pt)
            q = r["query"]
            q = _hidden_query(self.role or "") if q == "<insufficient privilege>" else clean_text(q, 8000)
            stmts.append(Statement(
                key=qid, queryid=r["queryid"], query=q, calls=calls, rows=int(r["rows"]),
                mean_ms=float(r["mean_ms"]), total_ms=total, share=(total / all_ms) if all_ms else None,
                cache_hit_ratio=r["cache_hit_ratio"], database=clean_text(r["database"], 200) or None,
                user=clean_text(r["user"], 200) or None,
                interval_calls=ic, interval_ms=ims, interval_s=(now - prev[0]) if prev else None,
                minute_calls=mc, minute_ms=mms,
            ))
        self._history.append((now, sample))
        while len(self._history) > 2 and now - self._history[1][0] >= self.MINUTE:
            self._history.popleft()
        return SlowQueriesSnapshot("pg_stat_statements", tuple(stmts), total_ms=all_ms, polled_at=now)


def _int(x) -> int | None:
    return None if x is None else int(x)


def _partitions(text: str | None) -> tuple[TableStat, ...]:
    """The leaf partitions of a partitioned table, from the tables query's JSON column."""
    if not text:
        return ()
    import json

    out = []
    for p in json.loads(text):
        out.append(TableStat(schema=p["schema"], name=p["name"], qualified_name=clean_text(p["qualified_name"], 400),
                             total_bytes=_int(p.get("total_bytes")), table_bytes=_int(p.get("table_bytes")),
                             index_bytes=_int(p.get("index_bytes")), toast_bytes=None,
                             est_rows=p.get("est_rows"), seq_scan=None, idx_scan=None, dead_rows=None,
                             last_autovacuum=None, locked=bool(p.get("locked"))))
    return tuple(out)


class TablesPoller:
    """Top tables by size and the database size; growth from successive polls."""

    def __init__(self) -> None:
        self.version_num: int | None = None
        self._prev: dict[tuple[str, str], tuple[float, int]] = {}
        self._measured: dict[tuple[str, str], tuple[float, int]] = {}  # the last size measured, kept while locked

    async def poll(self, conn: asyncpg.Connection) -> TablesSnapshot:
        if self.version_num is None:
            self.version_num = int(await conn.fetchval(VERSION_SQL))
        try:
            # the database size comes with the tables: both from the query's one pass over pg_class
            rows = await conn.fetch(sql.get("tables", self.version_num))
        except (asyncpg.LockNotAvailableError, asyncpg.QueryCanceledError) as e:
            # a lock taken between our pg_locks check and the size functions: skip this round
            why = "a table is locked" if isinstance(e, asyncpg.LockNotAvailableError) else "the query timed out"
            return TablesSnapshot(database_bytes=await self._database_bytes(conn), tables=(),
                                  polled_at=time.monotonic(), note=f"table sizes skipped this round: {why}")
        db_bytes = rows[0]["database_bytes"] if rows else await self._database_bytes(conn)  # no tables: no row
        now = time.monotonic()
        tables = []
        seen = {}
        for r in rows:
            locked = bool(r["locked"])
            if r["total_bytes"] is None and not locked:  # dropped between the catalog read and its sizing
                continue
            key = (r["schema"], r["name"])
            total = _int(r["total_bytes"])
            growth = None
            last = self._measured.get(key)
            if total is not None:
                if key in self._prev and now > self._prev[key][0]:
                    t0, b0 = self._prev[key]
                    growth = (total - b0) / (now - t0) * 60.0
                seen[key] = (now, total)
                self._measured[key] = (now, total)
            tables.append(TableStat(
                schema=r["schema"], name=r["name"], qualified_name=clean_text(r["qualified_name"], 400), total_bytes=total,
                table_bytes=_int(r["table_bytes"]), index_bytes=_int(r["index_bytes"]),
                toast_bytes=_int(r["toast_bytes"]), locked=locked, locked_by=r["locked_by"],
                last_bytes=last[1] if (total is None and last) else None,
                last_measured_age_s=(now - last[0]) if (total is None and last) else None,
                est_rows=r["est_rows"], seq_scan=r["seq_scan"], idx_scan=r["idx_scan"], dead_rows=r["dead_rows"],
                last_autovacuum=r["last_autovacuum"], growth_bytes_per_min=growth,
                partition_count=r["partition_count"], partitions=_partitions(r["partitions"]),
            ))
        self._prev = seen
        return TablesSnapshot(database_bytes=_int(db_bytes), tables=tuple(tables), polled_at=now)

    async def _database_bytes(self, conn: asyncpg.Connection) -> int | None:
        """The database size alone (database_size.sql), when the tables query gave no row to carry it."""
        try:
            return _int(await conn.fetchval(sql.get("database_size", self.version_num)))
        except (asyncpg.LockNotAvailableError, asyncpg.QueryCanceledError):
            return None
