"""create_index: CREATE INDEX CONCURRENTLY IF NOT EXISTS for each missing index of an item, one at a
time, never in a transaction, under lock_timeout and no statement_timeout; progress from
pg_stat_progress_create_index; an INVALID index left by a failure or a cancel is found and dropped
(headless) or offered for dropping (UI). Also drop_invalid_index, the follow-up."""
from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass

import asyncpg

from tui.db.catalog import match_index, resolve_table, table_indexes
from tui.fixes.base import (DEFAULT_LOCK_TIMEOUT_MS, Fix, FixCancelled, FixContext, FixError, human_bytes, human_seconds, need_primary,
                            need_table_owner, qualified, quote_ident, register)
from tui.fixes.constraints import _check_expression
from tui.model.fixes import Choice, FixResult, Plan, Progress

_IDENT_COL_RE = re.compile(
    r"""^\s*(?P<col>[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")"""
    r"""(?:\s+(?P<dir>ASC|DESC))?(?:\s+NULLS\s+(?P<nulls>FIRST|LAST))?\s*$""", re.I)
_EXPR_COL_RE = re.compile(r"^(?P<expr>.*?)(?:\s+(?P<dir>ASC|DESC))?(?:\s+NULLS\s+(?P<nulls>FIRST|LAST))?\s*$",
                          re.I | re.S)
_METHOD_RE = re.compile(r"^[a-z_][a-z0-9_]*$")

SCAN_BYTES_PER_S = 80e6  # a rough build rate: two table scans and a sort per CONCURRENTLY build


def _order_sql(direction: str | None, nulls: str | None) -> str:
    out = " DESC" if (direction or "").upper() == "DESC" else ""
    if nulls:
        desc = bool(out)
        first = nulls.upper() == "FIRST"
        if first != desc:  # only when it differs from PostgreSQL's default for the direction
            out += " NULLS FIRST" if first else " NULLS LAST"
    return out


def column_sql(text: str) -> str:
    """One key of an index as SQL: a column name is quoted; an expression (operator-written SQL from the
    checklist file, like a CHECK expression) must be a single expression and is parenthesised."""
    m = _IDENT_COL_RE.match(str(text))
    if m:
        col = m.group("col")
        if col.startswith('"'):
            col = col[1:-1].replace('""', '"')
        return quote_ident(col) + _order_sql(m.group("dir"), m.group("nulls"))
    m = _EXPR_COL_RE.match(str(text))
    expr = _check_expression(m.group("expr") if m else text, "create_index: index key")
    return f"({expr})" + _order_sql(m.group("dir") if m else None, m.group("nulls") if m else None)


@dataclass(frozen=True)
class WantedIndex:
    name: str
    spec: dict  # as the checklist says it: columns, and optional using, where, unique (the probe matches on it)

    @property
    def columns(self) -> list[str]:
        return list(self.spec["columns"])

    def create_sql(self, schema: str, table: str) -> str:
        cols = ", ".join(column_sql(c) for c in self.columns)
        unique = "UNIQUE " if self.spec.get("unique") else ""
        using = self.spec.get("using")
        using_sql = f" USING {quote_ident(using)}" if using and using != "btree" else ""
        where = self.spec.get("where")
        where_sql = f" WHERE ({_check_expression(where, 'create_index: where')})" if where else ""
        return (f"CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(self.name)} ON "
                f"{qualified(schema, table)}{using_sql} ({cols}){where_sql}")


def parse_indexes(params: dict) -> tuple[str | None, str, tuple[WantedIndex, ...]]:
    table = params.get("table")
    if not isinstance(table, str) or not table:
        raise FixError("create_index needs params.table")
    schema = params.get("schema") or None
    raw = params.get("indexes")
    if not isinstance(raw, list) or not raw:
        raise FixError("create_index needs params.indexes = [{ name = ..., columns = [...] }, ...]")
    out = []
    for i, ix in enumerate(raw):
        if not isinstance(ix, dict) or not isinstance(ix.get("columns"), list) or not ix["columns"]:
            raise FixError(f"create_index: indexes[{i}] needs columns = [...]")
        using = ix.get("using")
        if using is not None and not (isinstance(using, str) and _METHOD_RE.match(using)):
            raise FixError(f"create_index: indexes[{i}].using {using!r} is not an access method name")
        name = ix.get("name")
        if not isinstance(name, str) or not name:
            base = "_".join(re.sub(r"[^a-z0-9]+", "_", str(c).lower()).strip("_") for c in ix["columns"])
            name = f"idx_{table.split('.')[-1]}_{base}"[:63]
        if len(name.encode()) > 63:
            raise FixError(f"create_index: index name {name!r} is longer than 63 bytes")
        w = WantedIndex(name, dict(ix))
        w.create_sql("s", "t")  # validates every key and the predicate now (FixError, exit 2)
        out.append(w)
    return schema, table, tuple(out)


@register
class CreateIndex(Fix):
    name = "create_index"
    title = "Create missing indexes"

    def validate_params(self) -> None:
        self.schema_param, self.table_param, self.wanted = parse_indexes(self.params)
        # until resolved on the server: what the checklist says (the table may be "schema.table")
        self.schema = self.schema_param or (self.table_param.split(".")[0] if "." in self.table_param else "public")
        self.table = self.table_param.split(".")[-1] if "." in self.table_param and not self.schema_param \
            else self.table_param

    def objects(self, ctx: FixContext) -> list[str]:
        return [f"table {self.schema}.{self.table}"]

    def label(self) -> str:
        return f"create missing indexes on {self.table}"

    def describe(self) -> str | None:
        return "\n".join(w.create_sql(self.schema, self.table) + ";" for w in self.wanted) + \
            "\n-- only the missing ones, one at a time, lock_timeout 5 s"

    async def _state(self, ctx: FixContext):
        """The table (resolved as the checklist probe resolves it) and its indexes, as the probe sees them."""
        async with ctx._control_lock:
            oid = await resolve_table(ctx.control, self.table_param, self.schema_param)
            if oid is None:
                return None, []
            row = await ctx.control.fetchrow(
                "SELECT c.oid, n.nspname AS schema, c.relname AS name, "
                "       c.relpages::bigint * current_setting('block_size')::int AS bytes, "
                "       greatest(c.reltuples, 0)::bigint AS tuples "
                "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1", oid)
            existing = await table_indexes(ctx.control, oid)
        self.schema, self.table = row["schema"], row["name"]
        return row, existing

    async def missing(self, ctx: FixContext):
        """(table row, [(wanted, name of an INVALID index to drop first or None)], problems).
        An index counts as present exactly when the checklist's index_exists probe would find it."""
        row, existing = await self._state(ctx)
        if row is None:
            return None, [], []
        todo, problems = [], []
        for w in self.wanted:
            ix = match_index(w.spec, existing)
            if ix is not None and ix["valid"]:
                continue
            if ix is not None:  # the same definition, INVALID (a failed build): drop it, build again
                todo.append((w, ix["name"]))
                continue
            taken = await ctx.fetchval(
                "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                " WHERE n.nspname = $1 AND c.relname = $2", self.schema, w.name)
            same = next((e for e in existing if e["name"] == w.name), None)
            if same is not None and not same["valid"]:
                todo.append((w, w.name))  # an INVALID leftover of that name
            elif taken is not None:
                problems.append(f"the name {qualified(self.schema, w.name)} is taken by a relation that is not "
                                f"this index; rename it in the checklist or drop that relation")
            else:
                todo.append((w, None))
        return row, todo, problems

    async def plan(self, ctx: FixContext) -> Plan:
        from tui.model.fixes import Precondition

        pre = [await need_primary(ctx)]
        row, todo, problems = await self.missing(ctx)
        if row is None:
            pre.append(Precondition("table", False, f"no table {qualified(self.schema, self.table)}"))
            return self.base_plan(ctx, preconditions=tuple(pre))
        pre.append(await need_table_owner(ctx, self.schema, self.table, "CREATE INDEX"))
        pre += [Precondition("index name", False, p) for p in problems]
        stmts = []
        for w, invalid in todo:
            if invalid:
                stmts.append(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified(self.schema, invalid)}")
            stmts.append(w.create_sql(self.schema, self.table))
        n = len(todo)
        est = (row["bytes"] * 2 / SCAN_BYTES_PER_S + 0.2) * n if n else 0
        names = ", ".join(w.name for w, _ in todo)
        return self.base_plan(
            ctx, title=f"Create missing indexes on {self.table}" + (f": {names}" if names else ""),
            statements=tuple(stmts),
            locks=(f"SHARE UPDATE EXCLUSIVE on {qualified(self.schema, self.table)} for each build: reads and "
                   f"writes go on; VACUUM, ANALYZE and other DDL on the table wait",
                   f"each build first waits for transactions writing to the table, then for older snapshots: "
                   f"under lock_timeout {ctx.lock_timeout_ms} ms, and no statement_timeout",
                   "never inside a transaction; one index at a time"),
            estimate=(f"{human_seconds(est)} for {n} index(es) on {human_bytes(row['bytes'])} "
                      f"(~{row['tuples']:,} rows), at ~{human_bytes(SCAN_BYTES_PER_S)}/s, two scans each") if n else "",
            estimate_s=est if n else None,
            preconditions=tuple(pre),
            nothing_to_do=not todo and not problems,
            notes=(() if todo or problems else (f"every index of {self.table} is in place",)),
        )

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        row, todo, problems = await self.missing(ctx)
        if row is None or problems:
            return FixResult(False, "the table or index names changed since the plan: " + "; ".join(problems))
        created: list[str] = []
        build = await ctx.session(lock_timeout_ms=ctx.lock_timeout_ms, statement_timeout_ms=0)
        poll = await ctx.session(statement_timeout_ms=2000, register=False)
        try:
            for i, (w, invalid) in enumerate(todo, 1):
                if ctx.cancelled:
                    return FixResult(False, f"cancelled before {w.name}" + (f"; created before it: {', '.join(created)}"
                                                                           if created else "; nothing was changed"),
                                     cancelled=True, figures={"created": len(created)},
                                     left_behind=tuple(f"new index {c}" for c in created))
                ctx.progress(Progress(f"{w.name}: starting", 0.0, step=i, steps=len(todo)))
                if invalid:
                    await ctx.execute(build, f"DROP INDEX CONCURRENTLY IF EXISTS {qualified(self.schema, invalid)}")
                sql = w.create_sql(self.schema, self.table)
                blockers: dict[int, str] = {}
                poller = asyncio.create_task(self._poll(ctx, poll, build.get_server_pid(), w.name, i, len(todo), blockers))
                try:
                    await ctx.execute(build, sql)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, FixCancelled) as e:
                    # (the build session may be gone: the control session still finds what it left)
                    return await self._after_failure(ctx, build, w, e, created, blockers)
                finally:
                    poller.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await poller
                valid = await ctx.fetchval(
                    "SELECT x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                    self.schema, w.name)
                if valid is False:  # pragma: no cover - the server reports an error first
                    return await self._after_failure(ctx, build, w, RuntimeError("index is INVALID"), created, blockers)
                created.append(w.name)
                ctx.progress(Progress(f"{w.name}: done", 1.0, step=i, steps=len(todo)))
        finally:
            await ctx.close_session(poll)
        return FixResult(True, f"created {len(created)} index(es) on {self.table}: {', '.join(created)}",
                         figures={"created": len(created), "table_bytes": row["bytes"]})

    async def _poll(self, ctx: FixContext, poll, pid: int, name: str, step: int, steps: int,
                    blockers: dict[int, str]) -> None:
        while True:
            try:
                r = await poll.fetchrow(
                    "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total, lockers_done, lockers_total, "
                    "       pg_blocking_pids($1) AS blocking "
                    "  FROM pg_stat_progress_create_index WHERE pid = $1", pid)
                if r is not None:
                    if r["blocking"]:
                        rows = await poll.fetch(
                            "SELECT pid, usename, application_name, state, left(query, 80) AS query "
                            "  FROM pg_stat_activity WHERE pid = ANY($1::int[])", r["blocking"])
                        for b in rows:
                            blockers[b["pid"]] = (f"pid {b['pid']} ({b['usename']}, "
                                                  f"{b['application_name'] or 'no application_name'}, {b['state']}: "
                                                  f"{(b['query'] or '').strip()[:60]})")
                    bt, bd, tt, td = r["blocks_total"], r["blocks_done"], r["tuples_total"], r["tuples_done"]
                    frac = bd / bt if bt else (td / tt if tt else None)
                    detail = f"blocks {bd:,}/{bt:,} · tuples {td:,}/{tt:,}"
                    if r["lockers_total"]:
                        detail += f" · waiting for {r['lockers_total'] - r['lockers_done']} transaction(s)"
                    ctx.progress(Progress(f"{name}: {r['phase']}", frac, detail, step, steps, bd, bt, td, tt))
            except asyncpg.PostgresError:
                pass
            await asyncio.sleep(0.2)

    async def _after_failure(self, ctx: FixContext, build, w: WantedIndex, err: BaseException, created: list[str],
                             blockers: dict[int, str]) -> FixResult:
        cancelled = isinstance(err, FixCancelled) or ctx.cancelled
        if isinstance(err, asyncpg.LockNotAvailableError):
            # who holds a lock on the table now, besides the seen blockers
            rows = await ctx.fetch(
                "SELECT DISTINCT a.pid, a.usename, a.application_name, a.state, left(a.query, 60) AS query, l.mode "
                "  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                " WHERE l.relation = $1::regclass AND l.granted AND l.pid <> pg_backend_pid() "
                "   AND l.pid <> $2", qualified(self.schema, self.table), build.get_server_pid())
            for b in rows:
                blockers.setdefault(b["pid"], f"pid {b['pid']} ({b['usename']}, {b['application_name'] or 'no application_name'}, "
                                               f"{b['state']}, holds {b['mode']}: {(b['query'] or '').strip()[:60]})")
            why = f"lock_timeout ({ctx.lock_timeout_ms} ms) waiting for a lock on {self.table}"
            why += ("; held by " + "; ".join(blockers.values())) if blockers else ""
        elif cancelled:
            why = "cancelled by the operator"
        else:
            why = str(err).splitlines()[0] if str(err) else type(err).__name__
        invalid = await ctx.fetchval(
            "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2 AND NOT x.indisvalid", self.schema, w.name)
        figures = {"created": len(created), "blockers": len(blockers)}
        done = f" (created before it: {', '.join(created)})" if created else ""
        if invalid is None:
            return FixResult(False, f"{w.name}: {why}; no INVALID index was left{done}", figures=figures,
                             cancelled=cancelled, left_behind=tuple(f"new index {c}" for c in created))
        drop_sql = f"DROP INDEX CONCURRENTLY IF EXISTS {qualified(self.schema, invalid)}"
        if ctx.options.get("on_invalid", "drop") == "drop":
            # the cleanup waits at most the default lock_timeout, whatever the build's was
            drop_conn = await ctx.session(lock_timeout_ms=DEFAULT_LOCK_TIMEOUT_MS, statement_timeout_ms=0,
                                          register=False)
            try:
                await ctx.execute(drop_conn, drop_sql)
                dropped = True
            except asyncpg.PostgresError as e:
                dropped = False
                why += f"; dropping the INVALID index failed: {str(e).splitlines()[0]}"
                holders = await ctx.fetchval(
                    "SELECT string_agg(DISTINCT format('pid %s (%s, %s)', a.pid, a.usename, "
                    "       coalesce(nullif(a.application_name, ''), 'no application_name')), '; ') "
                    "  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    " WHERE l.relation = $1::regclass AND l.granted AND l.pid <> pg_backend_pid() "
                    "   AND a.application_name <> 'pgpreflight/fix'", qualified(self.schema, self.table))
                if holders:
                    why += f" (sessions using {self.table}: {holders})"
            finally:
                await ctx.close_session(drop_conn)
            if dropped:
                return FixResult(False, f"{w.name}: {why}; the INVALID index it left was dropped "
                                        f"({drop_sql}){done}", figures=figures, cancelled=cancelled,
                                 left_behind=tuple(f"new index {c}" for c in created))
        left = (f"INVALID index {qualified(self.schema, invalid)} (it slows writes and is never used; "
                f"drop it with: {drop_sql})",)
        return FixResult(False, f"{w.name}: {why}; an INVALID index was left behind{done}", figures=figures,
                         cancelled=cancelled, left_behind=left + tuple(f"new index {c}" for c in created),
                         choice=Choice("invalid_index", f"{w.name} failed and left an INVALID index. Drop it now?",
                                       (("drop", f"Drop it: {drop_sql}"), ("keep", "Leave it for now")),
                                       fix="drop_invalid_index", params={"schema": self.schema, "index": invalid}))


@register
class DropInvalidIndex(Fix):
    name = "drop_invalid_index"
    title = "Drop an INVALID index"

    def validate_params(self) -> None:
        if not self.params.get("index"):
            raise FixError("drop_invalid_index needs params.index")
        self.schema = self.params.get("schema") or "public"
        self.index = self.params["index"]

    def objects(self, ctx: FixContext) -> list[str]:
        return [f"index {self.schema}.{self.index}"]

    async def plan(self, ctx: FixContext) -> Plan:
        from tui.model.fixes import Precondition

        row = await ctx.fetchrow(
            "SELECT x.indisvalid AS valid, t.relname AS tbl FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
            "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2", self.schema, self.index)
        pre = [await need_primary(ctx)]
        if row is not None and row["valid"]:
            pre.append(Precondition("index is INVALID", False, f"{qualified(self.schema, self.index)} is valid: "
                                                               f"this fix drops only INVALID indexes"))
        elif row is not None:
            pre.append(await need_table_owner(ctx, self.schema, row["tbl"], "DROP INDEX"))
        return self.base_plan(
            ctx, title=f"Drop INVALID index {self.index}",
            statements=(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified(self.schema, self.index)}",),
            locks=("SHARE UPDATE EXCLUSIVE on the table while dropping: reads and writes go on",),
            estimate="under 1 s once no transaction uses the table", preconditions=tuple(pre),
            nothing_to_do=row is None, notes=(() if row else (f"{self.index} does not exist",)))

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        conn = await ctx.session(lock_timeout_ms=ctx.lock_timeout_ms, statement_timeout_ms=0)
        await ctx.execute(conn, f"DROP INDEX CONCURRENTLY IF EXISTS {qualified(self.schema, self.index)}")
        return FixResult(True, f"dropped INVALID index {qualified(self.schema, self.index)}")
