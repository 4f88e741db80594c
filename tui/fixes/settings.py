"""Monitoring settings: enable_pg_stat_statements, slow_query_log (and its undo).

ALTER SYSTEM writes postgresql.auto.conf; pg_reload_conf() applies reloadable settings;
pending_restart in pg_settings says when a restart is still needed. These fixes never restart the server."""
from __future__ import annotations

import asyncio
import time

from tui.fixes.base import (Fix, FixContext, FixError, need_primary, need_superuser, quote_literal, register)
from tui.model.fixes import FixResult, Plan, Precondition, Progress

LIB = "pg_stat_statements"


def split_libraries(value: str | None) -> list[str]:
    out = []
    for part in (value or "").split(","):
        p = part.strip().strip('"').strip("'").strip()
        if p:
            out.append(p)
    return out


async def _alter_system_privilege(ctx: FixContext, setting: str) -> Precondition:
    if ctx.server.superuser:
        return Precondition("privilege", True, f"{ctx.server.current_user} is a superuser")
    if ctx.server.version_num >= 150000:
        ok = await ctx.fetchval("SELECT has_parameter_privilege($1, 'ALTER SYSTEM')", setting)
        if ok:
            return Precondition("privilege", True, f"ALTER SYSTEM on {setting} granted")
        return Precondition("privilege", False, f"ALTER SYSTEM SET {setting} needs SUPERUSER or "
                                                f"GRANT ALTER SYSTEM ON PARAMETER {setting}; role "
                                                f"{ctx.server.current_user} has neither")
    return Precondition("privilege", False, f"ALTER SYSTEM needs SUPERUSER before PostgreSQL 15; role "
                                            f"{ctx.server.current_user} is not one")


async def _reload_privilege(ctx: FixContext) -> Precondition:
    ok = await ctx.fetchval("SELECT has_function_privilege('pg_reload_conf()', 'EXECUTE')")
    if ok:
        return Precondition("reload", True, "may run pg_reload_conf()")
    return Precondition("reload", False, "pg_reload_conf() needs SUPERUSER or GRANT EXECUTE ON FUNCTION "
                                         "pg_reload_conf()")


async def auto_conf_value(ctx: FixContext, name: str) -> tuple[bool, str | None]:
    """(readable, value in postgresql.auto.conf or None). pg_file_settings needs superuser or pg_read_all_settings."""
    try:
        v = await ctx.fetchval(
            "SELECT setting FROM pg_file_settings WHERE name = $1 AND sourcefile LIKE '%postgresql.auto.conf' "
            "ORDER BY seqno DESC LIMIT 1", name)
        return True, v
    except Exception:
        return False, None


async def wait_setting(ctx: FixContext, name: str, predicate, timeout: float = 5.0):
    """Poll pg_settings (on a fresh read each time) until predicate(row) or timeout; return the last row."""
    deadline = time.monotonic() + timeout
    while True:
        row = await ctx.fetchrow("SELECT setting, unit, source, pending_restart FROM pg_settings WHERE name = $1", name)
        if predicate(row) or time.monotonic() > deadline:
            return row
        await asyncio.sleep(0.1)


@register
class EnablePgStatStatements(Fix):
    name = "enable_pg_stat_statements"
    title = "Enable pg_stat_statements"

    def validate_params(self) -> None:
        self.preload = bool(self.params.get("preload", True))

    def objects(self, ctx: FixContext) -> list[str]:
        return ["extension pg_stat_statements", "setting shared_preload_libraries"]

    def describe(self) -> str | None:
        return (f"CREATE EXTENSION IF NOT EXISTS {LIB};\n-- when not preloaded: ALTER SYSTEM SET "
                f"shared_preload_libraries = <existing>, '{LIB}'; SELECT pg_reload_conf(); then a restart (yours)")

    async def _facts(self, ctx: FixContext) -> dict:
        avail = await ctx.fetchval("SELECT default_version FROM pg_available_extensions WHERE name = $1", LIB)
        installed = await ctx.fetchval("SELECT extversion FROM pg_extension WHERE extname = $1", LIB)
        running = split_libraries(await ctx.fetchval("SELECT current_setting('shared_preload_libraries')"))
        readable, auto = await auto_conf_value(ctx, "shared_preload_libraries")
        pending = split_libraries(auto) if auto is not None else None
        return {"available": avail, "installed": installed, "running": running, "auto": pending,
                "auto_readable": readable}

    def _alter_sql(self, base: list[str]) -> str:
        libs = base + ([LIB] if LIB not in base else [])
        return "ALTER SYSTEM SET shared_preload_libraries = " + ", ".join(quote_literal(x) for x in libs)

    async def plan(self, ctx: FixContext) -> Plan:
        f = await self._facts(ctx)
        pre = [await need_primary(ctx)]
        notes: list[str] = []
        stmts: list[str] = []
        if not f["available"]:
            pre.append(Precondition("extension files", False, "pg_stat_statements is not installed on the server "
                                                              "(the contrib package, e.g. postgresql-contrib)"))
        if not f["installed"]:
            pre.append(await need_superuser(ctx, "CREATE EXTENSION pg_stat_statements"))
            stmts.append(f"CREATE EXTENSION IF NOT EXISTS {LIB}")
        preloaded = LIB in f["running"]
        if not preloaded:
            if f["auto"] is not None and LIB in f["auto"]:
                notes.append("shared_preload_libraries already lists pg_stat_statements in postgresql.auto.conf: "
                             "a restart is pending (this fix never restarts the server)")
            elif self.preload:
                base = f["auto"] if f["auto"] is not None else f["running"]
                notes.append("pg_stat_statements is not in shared_preload_libraries: that needs a change and a "
                             "server RESTART, which this fix never does. It adds the library with ALTER SYSTEM "
                             f"(keeping {', '.join(base) or 'no other entries'}) and reloads; the restart is yours")
                pre.append(await _alter_system_privilege(ctx, "shared_preload_libraries"))
                pre.append(await _reload_privilege(ctx))
                stmts += [self._alter_sql(base), "SELECT pg_reload_conf()"]
            else:
                notes.append("pg_stat_statements is not in shared_preload_libraries: add it and restart the server")
        return self.base_plan(
            ctx, statements=tuple(stmts),
            locks=(("CREATE EXTENSION: a brief lock on the database's catalog; no table locks",) if stmts else ()),
            estimate="under 1 s" if stmts else "",
            preconditions=tuple(pre), notes=tuple(notes),
            nothing_to_do=not stmts and all(p.ok for p in pre),
        )

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        f = await self._facts(ctx)
        conn = await ctx.session(lock_timeout_ms=ctx.lock_timeout_ms, statement_timeout_ms=30000)
        done = []
        if not f["installed"]:
            ctx.progress(Progress("CREATE EXTENSION", 0.3))
            await ctx.execute(conn, f"CREATE EXTENSION IF NOT EXISTS {LIB}")
            done.append("extension created")
        figures: dict = {}
        if LIB not in f["running"] and self.preload and not (f["auto"] is not None and LIB in f["auto"]):
            base = f["auto"] if f["auto"] is not None else f["running"]
            figures["previous_shared_preload_libraries"] = ", ".join(base)
            ctx.progress(Progress("ALTER SYSTEM", 0.6))
            await ctx.execute(conn, self._alter_sql(base))
            await ctx.execute(conn, "SELECT pg_reload_conf()")
            done.append("shared_preload_libraries set with ALTER SYSTEM")
        row = await wait_setting(ctx, "shared_preload_libraries",
                                 lambda r: LIB in split_libraries(r["setting"]) or r["pending_restart"],
                                 timeout=3.0 if LIB not in f["running"] else 0)
        preloaded = LIB in split_libraries(row["setting"])
        figures["preloaded"] = preloaded
        figures["pending_restart"] = bool(row["pending_restart"])
        if preloaded:
            works = True
            try:
                await conn.fetchval(f"SELECT count(*) FROM {LIB}")
            except Exception:
                works = False
            figures["view_works"] = works
            return FixResult(works, ("; ".join(done) + "; " if done else "") + "pg_stat_statements is loaded and "
                                    "its view answers" if works else "pg_stat_statements is preloaded but its view "
                                    "fails", figures=figures)
        summary = "; ".join(done) + "; " if done else ""
        summary += ("pending_restart: the server must be RESTARTED to load pg_stat_statements (not done by pgpreflight)"
                    if row["pending_restart"] else
                    "pg_stat_statements is not preloaded yet: shared_preload_libraries needs it and a restart")
        return FixResult(False, summary, figures=figures,
                         left_behind=tuple(x for x in (("extension created, unusable until the restart" if not f["installed"]
                                                        else ""),
                                                       ("postgresql.auto.conf: shared_preload_libraries includes "
                                                        "pg_stat_statements (takes effect on restart)"
                                                        if figures.get("previous_shared_preload_libraries") is not None
                                                        else "")) if x))


@register
class SlowQueryLog(Fix):
    name = "slow_query_log"
    title = "Enable slow-query logging"
    setting = "log_min_duration_statement"

    def validate_params(self) -> None:
        v = self.params.get("value_ms", 1000)
        if isinstance(v, bool) or not isinstance(v, int) or v < -1:
            raise FixError(f"slow_query_log: value_ms must be an integer ≥ -1 (milliseconds), not {v!r}")
        self.value_ms = v

    def objects(self, ctx: FixContext) -> list[str]:
        return [f"setting {self.setting}"]

    def label(self) -> str:
        return f"log statements slower than {self.value_ms} ms"

    def describe(self) -> str | None:
        return f"ALTER SYSTEM SET {self.setting} = {int(self.value_ms)};\nSELECT pg_reload_conf();"

    async def _previous(self, ctx: FixContext) -> dict:
        row = await ctx.fetchrow("SELECT setting, source FROM pg_settings WHERE name = $1", self.setting)
        readable, auto = await auto_conf_value(ctx, self.setting)
        return {"previous_ms": int(row["setting"]), "previous_source": row["source"],
                "previous_auto": auto, "previous_auto_known": readable}

    async def plan(self, ctx: FixContext) -> Plan:
        prev = await self._previous(ctx)
        pre = [await need_primary(ctx), await _alter_system_privilege(ctx, self.setting), await _reload_privilege(ctx)]
        same = prev["previous_ms"] == self.value_ms and (prev["previous_auto"] in (None, str(self.value_ms)))
        undo = (f"ALTER SYSTEM SET {self.setting} = {quote_literal(prev['previous_auto'])}"
                if prev["previous_auto"] is not None else f"ALTER SYSTEM RESET {self.setting}")
        return self.base_plan(
            ctx, title=f"Log statements slower than {self.value_ms} ms",
            statements=(f"ALTER SYSTEM SET {self.setting} = {int(self.value_ms)}", "SELECT pg_reload_conf()"),
            locks=("no locks; pg_reload_conf() also applies any other pending change in the configuration files",),
            estimate="under 1 s",
            preconditions=tuple(pre),
            notes=(f"previous value: {prev['previous_ms']} ms (from {prev['previous_source']})",
                   f"undo: pgpreflight fix {ctx.item_id or '<item>'} --undo (runs {undo}; SELECT pg_reload_conf())"),
            nothing_to_do=same and all(p.ok for p in pre),
        )

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        prev = await self._previous(ctx)
        conn = await ctx.session(statement_timeout_ms=30000)
        await ctx.execute(conn, f"ALTER SYSTEM SET {self.setting} = {int(self.value_ms)}")
        await ctx.execute(conn, "SELECT pg_reload_conf()")
        row = await wait_setting(ctx, self.setting, lambda r: int(r["setting"]) == self.value_ms)
        now = int(row["setting"])
        figures = {**prev, "value_ms": now}
        if now != self.value_ms:
            return FixResult(False, f"{self.setting} is still {now} after the reload (expected {self.value_ms}; "
                                    f"a higher-priority source may override it: {row['source']})",
                             figures=figures, left_behind=(f"postgresql.auto.conf: {self.setting} = {self.value_ms}",))
        return FixResult(True, f"{self.setting}: {prev['previous_ms']} → {now} ms (undo with --undo)", figures=figures)


@register
class SlowQueryLogUndo(Fix):
    name = "slow_query_log_undo"
    title = "Undo slow-query logging (restore the previous value)"
    setting = "log_min_duration_statement"

    def validate_params(self) -> None:
        if "previous_auto" not in self.params:
            raise FixError("nothing to undo: no recorded slow_query_log run with its previous value")
        self.previous_auto = self.params["previous_auto"]

    def objects(self, ctx: FixContext) -> list[str]:
        return [f"setting {self.setting}"]

    def sql(self) -> str:
        if self.previous_auto is None:
            return f"ALTER SYSTEM RESET {self.setting}"
        return f"ALTER SYSTEM SET {self.setting} = {quote_literal(str(self.previous_auto))}"

    async def plan(self, ctx: FixContext) -> Plan:
        pre = [await need_primary(ctx), await _alter_system_privilege(ctx, self.setting), await _reload_privilege(ctx)]
        cur = await ctx.fetchval("SELECT setting FROM pg_settings WHERE name = $1", self.setting)
        return self.base_plan(ctx, statements=(self.sql(), "SELECT pg_reload_conf()"), estimate="under 1 s",
                              locks=("no locks",), preconditions=tuple(pre),
                              notes=(f"current value: {cur} ms",))

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        conn = await ctx.session(statement_timeout_ms=30000)
        await ctx.execute(conn, self.sql())
        await ctx.execute(conn, "SELECT pg_reload_conf()")
        expect = self.params.get("previous_ms")
        row = await wait_setting(ctx, self.setting, lambda r: expect is None or int(r["setting"]) == int(expect))
        return FixResult(True, f"{self.setting} restored: now {row['setting']} ms ({row['source']})",
                         figures={"value_ms": int(row["setting"])})
