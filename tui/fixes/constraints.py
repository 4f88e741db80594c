"""add_check_constraint: ADD CONSTRAINT ... CHECK (...) NOT VALID (a brief ACCESS EXCLUSIVE lock, no scan,
taken with short lock retries: tui.fixes.base.with_lock_retries), then VALIDATE CONSTRAINT (SHARE UPDATE EXCLUSIVE: reads and writes go on). When rows violate it, it stops,
counts them, shows a sample, and drops the constraint (headless default) or leaves it NOT VALID (the
operator's choice). Also drop_constraint, the follow-up."""
from __future__ import annotations

import json
import re

import asyncpg

from tui.db.catalog import norm_check, resolve_table
from tui.fixes.base import (Fix, FixContext, FixError, LockNotTaken, human_bytes, human_seconds, lock_precondition,
                            lock_retry_timeouts, need_primary, need_table_owner, qualified, quote_ident, register,
                            with_lock_retries)
from tui.model.fixes import Choice, FixResult, Plan, Precondition, Progress

SAMPLE_ROWS = 5


def lock_words(ctx: FixContext) -> str:
    """How the ACCESS EXCLUSIVE lock is taken, for the plan's lock lines."""
    ts = lock_retry_timeouts(ctx)
    if len(ts) == 1:
        return f"one try under lock_timeout {ts[0]} ms (--lock-budget 0)"
    return (f"short tries under lock_timeout {ts[0]}→{ts[-1]} ms with pauses, for up to {ctx.lock_budget_s:.0f} s "
            f"(--lock-budget): the app waits behind it for at most one try")


def lock_failed(e: LockNotTaken, left: tuple[str, ...] = ()) -> FixResult:
    """The result when the lock could not be had within the budget: the root holder first, as a field too."""
    return FixResult(False, e.summary(), left_behind=left, blocker=e.blocker,
                     figures={"lock_tries": e.tries, "lock_wait_s": round(e.waited_s, 2)},
                     details=tuple(f"also: pid {h['pid']} {h['state'] or '?'}"
                                   f"{'' if h['granted'] else ' (queued)'}" for h in e.holders[1:6]))


def _check_expression(expr, what: str = "add_check_constraint: expression") -> str:
    """An expression from the checklist file (operator-authored SQL, not an identifier, so it cannot be
    quoted): it must be one expression, with no statement separators and no comments."""
    if not isinstance(expr, str) or not expr.strip():
        raise FixError(f"{what}: needs an expression, e.g. \"balance >= 0\"")
    e = expr.strip()
    if ";" in e or "--" in e or "/*" in e:
        raise FixError(f"{what} {e!r} must be a single expression (no ';' or comments)")
    depth = 0
    for ch in re.sub(r"'(?:[^']|'')*'", "", e):
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            break
    if depth != 0:
        raise FixError(f"{what} {e!r} has unbalanced parentheses")
    return e


@register
class AddCheckConstraint(Fix):
    name = "add_check_constraint"
    title = "Add a CHECK constraint"

    def validate_params(self) -> None:
        p = self.params
        if not isinstance(p.get("table"), str) or not p["table"]:
            raise FixError("add_check_constraint needs params.table")
        self.table_param = p["table"]
        self.schema = p.get("schema") or (p["table"].split(".")[0] if "." in p["table"] else "public")
        self.table = p["table"].split(".")[-1] if "." in p["table"] and not p.get("schema") else p["table"]
        self.expression = _check_expression(p.get("expression"))
        self.cname = p.get("name") or f"{self.table}_check"
        if len(str(self.cname).encode()) > 63:
            raise FixError(f"add_check_constraint: name {self.cname!r} is longer than 63 bytes")

    def objects(self, ctx: FixContext) -> list[str]:
        return [f"table {self.schema}.{self.table}"]

    def label(self) -> str:
        return f"add CHECK ({self.expression}) on {self.table}"

    def describe(self) -> str | None:
        return f"{self.add_sql()};\n{self.validate_sql()};"

    @property
    def rel(self) -> str:
        return qualified(self.schema, self.table)

    def add_sql(self) -> str:
        return f"ALTER TABLE {self.rel} ADD CONSTRAINT {quote_ident(self.cname)} CHECK ({self.expression}) NOT VALID"

    def validate_sql(self) -> str:
        return f"ALTER TABLE {self.rel} VALIDATE CONSTRAINT {quote_ident(self.cname)}"

    def drop_sql(self) -> str:
        return f"ALTER TABLE {self.rel} DROP CONSTRAINT IF EXISTS {quote_ident(self.cname)}"

    async def _existing(self, ctx: FixContext):
        """The CHECK the item asks for, as the checklist probe finds it: the same expression under any name
        (then that name is used), else a constraint of the name asked for. None when there is neither."""
        async with ctx._control_lock:
            oid = await resolve_table(ctx.control, self.table_param, self.params.get("schema"))
            if oid is None:
                return None
            names = await ctx.control.fetchrow(
                "SELECT n.nspname AS schema, c.relname AS name FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1", oid)
            self.schema, self.table = names["schema"], names["name"]
            rows = await ctx.control.fetch(
                "SELECT conname, contype::text AS type, convalidated AS valid, pg_get_constraintdef(oid) AS def "
                "  FROM pg_constraint WHERE conrelid = $1 ORDER BY conname", oid)
        want = norm_check(self.expression)
        for r in rows:
            if r["type"] == "c" and norm_check(r["def"]) == want:
                self.cname = r["conname"]
                return r
        return next((r for r in rows if r["conname"] == self.cname), None)

    async def plan(self, ctx: FixContext) -> Plan:
        ex = await self._existing(ctx)  # resolves the table as the probe does (schema, search_path)
        pre = [await need_primary(ctx), await need_table_owner(ctx, self.schema, self.table, "ALTER TABLE ADD CONSTRAINT")]
        if any(p.name == "table" for p in pre):
            return self.base_plan(ctx, preconditions=tuple(pre))
        size = await ctx.fetchrow(
            "SELECT c.relpages::bigint * current_setting('block_size')::int AS bytes, "
            "greatest(c.reltuples, 0)::bigint AS tuples FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            self.schema, self.table)
        notes: list[str] = []
        stmts: list[str] = []
        if ex is not None and ex["type"] != "c":
            pre.append(Precondition("constraint name", False, f"{self.cname} exists on {self.table} and is not a CHECK"))
        elif ex is not None and ex["valid"]:
            notes.append(f"{self.cname} exists and is validated: {ex['def']}")
        elif ex is not None:
            notes.append(f"{self.cname} exists NOT VALID ({ex['def']}): only VALIDATE runs")
            stmts.append(self.validate_sql())
        else:
            stmts += [self.add_sql(), self.validate_sql()]
        est = size["bytes"] / 150e6 if size else None
        if stmts and stmts[0] == self.add_sql():  # ACCESS EXCLUSIVE: who would make it wait (a warning)
            pre.append(await lock_precondition(ctx, self.rel))
        return self.base_plan(
            ctx, title=f"Add CHECK ({self.expression}) on {self.table}", statements=tuple(stmts),
            locks=(f"ADD ... NOT VALID: ACCESS EXCLUSIVE on {self.rel} for an instant (no scan), "
                   f"{lock_words(ctx)}; new rows are checked from then on",
                   f"VALIDATE: SHARE UPDATE EXCLUSIVE on {self.rel} while it scans: reads and writes go on"),
            estimate=(f"{human_seconds(est)} to scan {human_bytes(size['bytes'])} (~{size['tuples']:,} rows)"
                      if size else ""),
            estimate_s=est,
            preconditions=tuple(pre),
            notes=tuple(notes) + (("if rows violate it: it stops, counts them and shows a sample; headless it then "
                                   "drops the constraint (--keep-not-valid keeps it NOT VALID)",) if stmts else ()),
            nothing_to_do=not stmts and not any(p.blocks for p in pre),
        )

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        ex = await self._existing(ctx)
        conn = await ctx.session(lock_timeout_ms=ctx.lock_timeout_ms, statement_timeout_ms=0)
        added = False
        try:
            if ex is None:
                ctx.progress(Progress("adding NOT VALID", 0.1, step=1, steps=2))
                ctx.check_cancel()
                await with_lock_retries(ctx, conn, self.add_sql(), rel=self.rel, phase="adding NOT VALID")
                added = True
            ctx.check_cancel()
            ctx.progress(Progress("validating (scanning the table)", None, step=2, steps=2))
            await ctx.execute(conn, self.validate_sql())
        except asyncpg.CheckViolationError:
            return await self._violated(ctx, conn, added)
        except LockNotTaken as e:  # ADD CONSTRAINT: nothing was added
            return lock_failed(e, await self._cleanup_after_error(ctx, conn, added))
        except asyncpg.LockNotAvailableError:  # VALIDATE (SHARE UPDATE EXCLUSIVE) under lock_timeout
            holders = await ctx.fetchval(
                "SELECT string_agg(DISTINCT format('pid %s (%s, %s, holds %s)', a.pid, a.usename, "
                "       coalesce(nullif(a.application_name, ''), 'no application_name'), l.mode), '; ') "
                "  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                " WHERE l.relation = $1::regclass AND l.granted AND l.pid <> pg_backend_pid() AND l.pid <> $2",
                self.rel, conn.get_server_pid())
            left = await self._cleanup_after_error(ctx, conn, added)
            return FixResult(False, f"lock_timeout ({ctx.lock_timeout_ms} ms) waiting for a lock on {self.table}"
                                    + (f"; held by {holders}" if holders else ""), left_behind=left)
        except asyncpg.QueryCanceledError:
            left = await self._cleanup_after_error(ctx, conn, added)
            return FixResult(False, "cancelled by the operator" if ctx.cancelled else "the statement was cancelled",
                             cancelled=ctx.cancelled, left_behind=left)
        except Exception:
            await self._cleanup_after_error(ctx, conn, added)
            raise
        ctx.progress(Progress("validated", 1.0, step=2, steps=2))
        return FixResult(True, f"CHECK ({self.expression}) added and validated on {self.table} as {self.cname}")

    async def _cleanup_after_error(self, ctx: FixContext, conn, added: bool) -> tuple[str, ...]:
        if not added:
            return ()
        try:
            drop = await ctx.session(lock_timeout_ms=max(ctx.lock_timeout_ms, 5000), statement_timeout_ms=0,
                                     register=False)
            try:  # not cancellable: the cleanup after a cancel must finish; short tries, the app never stalls
                await with_lock_retries(ctx, drop, self.drop_sql(), rel=self.rel, cancellable=False,
                                        budget_s=max(ctx.lock_budget_s, 5.0), phase="dropping the constraint")
            finally:
                await ctx.close_session(drop)
            return ()
        except Exception as e:  # say exactly what is left (LockNotTaken too)
            return (f"constraint {self.cname} on {self.rel} NOT VALID (dropping it failed: "
                    f"{str(e).splitlines()[0]}); drop it with: {self.drop_sql()}",)

    async def _violated(self, ctx: FixContext, conn, added: bool) -> FixResult:
        # count and sample the rows for which the expression is false (NULL passes a CHECK)
        reader = await ctx.session(statement_timeout_ms=0)
        try:
            where = f"({self.expression}) IS FALSE"
            count = await reader.fetchval(f"SELECT count(*) FROM {self.rel} WHERE {where}")
            rows = await reader.fetch(f"SELECT row_to_json(t)::text AS r FROM {self.rel} AS t WHERE {where} "
                                      f"LIMIT {SAMPLE_ROWS}")
        finally:
            await ctx.close_session(reader)
        sample = tuple(r["r"] if len(r["r"]) <= 160 else r["r"][:157] + "..." for r in rows)
        figures = {"violating_rows": int(count), "sample": [json.loads(r["r"]) for r in rows]}
        head = f"{count:,} row(s) of {self.table} violate CHECK ({self.expression})"
        choice_mode = ctx.options.get("on_violation", "drop")
        if choice_mode == "drop":
            try:
                await with_lock_retries(ctx, conn, self.drop_sql(), rel=self.rel, cancellable=False,
                                        budget_s=max(ctx.lock_budget_s, 5.0), phase="dropping the constraint")
                return FixResult(False, f"{head}; the constraint was dropped: the table is as it was",
                                 figures=figures, details=tuple("sample: " + s for s in sample))
            except (asyncpg.PostgresError, LockNotTaken) as e:
                left = (f"constraint {self.cname} on {self.rel} NOT VALID (drop failed: {str(e).splitlines()[0]})",)
                return FixResult(False, head, figures=figures, left_behind=left,
                                 details=tuple("sample: " + s for s in sample))
        left = (f"constraint {self.cname} on {self.rel} NOT VALID: new and updated rows are checked, the "
                f"{count:,} old violating row(s) are not; fix them, then run: {self.validate_sql()}; or drop it: "
                f"{self.drop_sql()}",)
        choice = None
        if choice_mode == "ask":
            choice = Choice("check_violation", f"{head}. Drop the NOT VALID constraint, or keep it (new rows are "
                                               f"checked) while the old rows are fixed?",
                            (("drop", f"Drop it: {self.drop_sql()}"), ("keep", "Keep it NOT VALID")),
                            fix="drop_constraint",
                            params={"schema": self.schema, "table": self.table, "name": self.cname})
        return FixResult(False, f"{head}; the constraint is kept NOT VALID", figures=figures, left_behind=left,
                         choice=choice, details=tuple("sample: " + s for s in sample))


@register
class DropConstraint(Fix):
    name = "drop_constraint"
    title = "Drop a NOT VALID constraint"

    def validate_params(self) -> None:
        for k in ("table", "name"):
            if not self.params.get(k):
                raise FixError(f"drop_constraint needs params.{k}")
        self.schema = self.params.get("schema") or "public"
        self.table, self.cname = self.params["table"], self.params["name"]

    def objects(self, ctx: FixContext) -> list[str]:
        return [f"table {self.schema}.{self.table}"]

    def sql(self) -> str:
        return (f"ALTER TABLE {qualified(self.schema, self.table)} DROP CONSTRAINT IF EXISTS "
                f"{quote_ident(self.cname)}")

    async def plan(self, ctx: FixContext) -> Plan:
        pre = [await need_primary(ctx), await need_table_owner(ctx, self.schema, self.table, "ALTER TABLE DROP CONSTRAINT")]
        valid = await ctx.fetchval(
            "SELECT co.convalidated FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND co.conname = $3",
            self.schema, self.table, self.cname)
        if valid:
            pre.append(Precondition("constraint is NOT VALID", False, f"{self.cname} is validated: this fix drops only "
                                                                      f"NOT VALID constraints"))
        elif valid is not None:
            pre.append(await lock_precondition(ctx, qualified(self.schema, self.table)))
        return self.base_plan(ctx, title=f"Drop NOT VALID constraint {self.cname}", statements=(self.sql(),),
                              locks=(f"ACCESS EXCLUSIVE on {self.table} for an instant, {lock_words(ctx)}",),
                              estimate="under 1 s", preconditions=tuple(pre), nothing_to_do=valid is None)

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        conn = await ctx.session(lock_timeout_ms=ctx.lock_timeout_ms, statement_timeout_ms=0)
        try:
            await with_lock_retries(ctx, conn, self.sql(), rel=qualified(self.schema, self.table),
                                    phase="dropping the constraint")
        except LockNotTaken as e:
            return lock_failed(e)
        return FixResult(True, f"dropped constraint {self.cname} on {self.table}")
