"""connection_test (N concurrent connections, each SELECT 1 and an optional hold; figures; every
connection closed) and cancel_backend / terminate_backend (the connections pane's session control:
terminate needs a second confirmation)."""
from __future__ import annotations

import asyncio
import time

import asyncpg

from tui.config import TargetError
from tui.db.connect import connect
from tui.fixes.base import FIX_ROLE, Fix, FixContext, FixError, register
from tui.model.fixes import FixResult, Plan, Precondition, Progress

MAX_CONNECTIONS_TESTED = 1000


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-q * len(v) // 100)) - 1))
    return v[k]


HEADROOM_SQL = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS su_reserved,
       coalesce((SELECT setting::int FROM pg_settings WHERE name = 'reserved_connections'), 0) AS reserved,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS in_use,
       (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user) AS role_limit,
       (SELECT datconnlimit FROM pg_database WHERE datname = current_database()) AS db_limit
"""


@register
class ConnectionTest(Fix):
    name = "connection_test"
    title = "Concurrent connection test"
    writes = False  # opens and closes sessions; changes nothing in the database (allowed with --read-only)

    def validate_params(self) -> None:
        n = self.params.get("connections", 20)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CONNECTIONS_TESTED:
            raise FixError(f"connection_test: connections must be an integer from 1 to {MAX_CONNECTIONS_TESTED}, not {n!r}")
        hold = self.params.get("hold_ms", 200)
        if isinstance(hold, bool) or not isinstance(hold, (int, float)) or not 0 <= hold <= 60000:
            raise FixError(f"connection_test: hold_ms must be 0..60000, not {hold!r}")
        self.n, self.hold_ms = n, float(hold)

    def objects(self, ctx: FixContext) -> list[str]:
        return [f"connection_test {ctx.server.database}"]

    def label(self) -> str:
        return f"test with {self.n} concurrent connections"

    def describe(self) -> str | None:
        return f"-- {self.n} concurrent connections, each: SELECT 1 (hold {self.hold_ms:.0f} ms); all closed after"


    async def plan(self, ctx: FixContext) -> Plan:
        h = await ctx.fetchrow(HEADROOM_SQL)
        usable = h["max_connections"] - h["su_reserved"] - h["reserved"]
        free = usable - h["in_use"]
        pre = [Precondition("free slots", True,
                            f"{free} of {usable} usable slots free now (max_connections {h['max_connections']} "
                            f"− {h['su_reserved'] + h['reserved']} reserved − {h['in_use']} in use, this "
                            f"test's own control session included)")]
        notes = []
        if self.n > free:
            notes.append(f"{self.n} connections exceed the {free} free slots: expect 'too many connections' "
                         f"failures (that is what this test finds)")
        return self.base_plan(
            ctx, title=f"Open {self.n} concurrent connections (SELECT 1, hold {self.hold_ms:.0f} ms), then close them all",
            statements=tuple(f"-- connection {i}: SELECT 1" for i in range(1, min(self.n, 3) + 1))
            + (("-- ...",) if self.n > 3 else ()),
            locks=("no locks; uses up to "
                   f"{self.n} connection slots for about {self.hold_ms / 1000 + 1:.0f} s",),
            estimate=f"about {self.hold_ms / 1000 + 1:.0f} s",
            preconditions=tuple(pre), notes=tuple(notes),
        )

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        h = await ctx.fetchrow(HEADROOM_SQL)
        usable = h["max_connections"] - h["su_reserved"] - h["reserved"]
        opened: list[asyncpg.Connection] = []
        times: list[float] = []
        errors: list[str] = []
        done = 0
        successes = 0
        start_gate = asyncio.Event()

        async def one(i: int) -> None:
            nonlocal done, successes
            await start_gate.wait()
            t0 = time.perf_counter()
            try:
                conn = await connect(ctx.target, timeout=ctx.config.connect_timeout, role=FIX_ROLE,
                                     statement_timeout_ms=5000)
            except TargetError as e:
                errors.append(e.reason)
                return
            finally:
                done += 1
            opened.append(conn)
            times.append((time.perf_counter() - t0) * 1000)
            try:
                if await conn.fetchval("SELECT 1") != 1:  # pragma: no cover
                    errors.append("SELECT 1 returned something else")
                    return
                if self.hold_ms:
                    await asyncio.sleep(self.hold_ms / 1000)
                successes += 1
            except asyncpg.PostgresError as e:
                errors.append(str(e).splitlines()[0])

        tasks = [asyncio.create_task(one(i)) for i in range(self.n)]
        peak = 0
        try:
            start_gate.set()
            pending = set(tasks)
            while pending:
                _, pending = await asyncio.wait(pending, timeout=0.1)
                peak = max(peak, len([c for c in opened if not c.is_closed()]))
                ctx.progress(Progress("connecting", done / self.n, f"{len(times)} open · {len(errors)} failed"))
                if ctx.cancelled:
                    for t in pending:
                        t.cancel()
                    break
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(c.close(timeout=5) for c in opened), return_exceptions=True)
            for c in opened:
                if not c.is_closed():
                    c.terminate()
        figures = {
            "connections": self.n, "successes": successes, "failures": len(errors),
            "p50_ms": round(percentile(times, 50), 1) if times else None,
            "p95_ms": round(percentile(times, 95), 1) if times else None,
            "max_ms": round(max(times), 1) if times else None,
            "max_connections": h["max_connections"], "usable_slots": usable, "in_use_before": h["in_use"],
            "headroom_before": usable - h["in_use"], "peak_open": max(peak, len(times)),
        }
        distinct = sorted(set(errors))
        details = tuple(f"{errors.count(e)}× {e}" for e in distinct)
        if ctx.cancelled:
            return FixResult(False, f"cancelled after {len(times)} connection(s); all closed", figures=figures,
                             cancelled=True, details=details)
        summary = (f"{successes}/{self.n} connections succeeded"
                   + (f", {len(errors)} failed ({distinct[0]})" if errors else "")
                   + (f"; connect p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms" if times else "")
                   + f"; headroom before the test {figures['headroom_before']} of {usable} usable slots")
        return FixResult(not errors, summary, figures=figures, details=details)


class _Signal(Fix):
    function = ""
    verb = ""

    def validate_params(self) -> None:
        pids = self.params.get("pids", self.params.get("pid"))
        if isinstance(pids, int):
            pids = [pids]
        if not isinstance(pids, (list, tuple)) or not pids or not all(isinstance(p, int) and p > 0 for p in pids):
            raise FixError(f"{self.name} needs params.pids: a list of backend pids")
        self.pids = tuple(int(p) for p in pids)

    def objects(self, ctx: FixContext) -> list[str]:
        return [f"backend {p}" for p in self.pids]

    async def plan(self, ctx: FixContext) -> Plan:
        rows = await ctx.fetch(
            "SELECT pid, usename, application_name, state, left(query, 80) AS query, "
            "       (usename = current_user) AS same_role FROM pg_stat_activity WHERE pid = ANY($1::int[])",
            list(self.pids))
        can = await ctx.fetchval("SELECT pg_has_role(current_user, 'pg_signal_backend', 'MEMBER')")
        pre: list[Precondition] = []
        found = {r["pid"]: r for r in rows}
        for p in self.pids:
            r = found.get(p)
            if r is None:
                pre.append(Precondition(f"session {p}", False, "no such session (it may have ended)"))
            elif not (ctx.server.superuser or can or r["same_role"]):
                pre.append(Precondition("privilege", False, f"{self.function}({p}) needs pg_signal_backend, "
                                                            f"SUPERUSER, or the session's own role ({r['usename']})"))
        notes = tuple(f"{r['pid']}: {r['usename']}, {r['application_name'] or 'no application_name'}, {r['state']}: "
                      f"{(r['query'] or '').strip()[:60]}" for r in rows)
        return self.base_plan(ctx, statements=tuple(f"SELECT {self.function}({p})" for p in self.pids),
                              locks=("no locks",), estimate="under 1 s", preconditions=tuple(pre), notes=notes)

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        conn = await ctx.session(statement_timeout_ms=5000)
        ok, failed = [], []
        for p in self.pids:
            ctx.note_statement(f"SELECT {self.function}({p})")
            if await conn.fetchval(f"SELECT {self.function}($1)", p):
                ok.append(p)
            else:
                failed.append(p)
        summary = (f"{self.verb} {', '.join(map(str, ok))}" if ok else "") + \
                  ("; " if ok and failed else "") + (f"no such session: {', '.join(map(str, failed))}" if failed else "")
        return FixResult(not failed, summary, figures={"signalled": len(ok), "failed": len(failed)})


@register
class CancelBackend(_Signal):
    name = "cancel_backend"
    title = "Cancel the running query of a session"
    function = "pg_cancel_backend"
    verb = "cancelled"


@register
class TerminateBackend(_Signal):
    name = "terminate_backend"
    title = "Terminate a session"
    function = "pg_terminate_backend"
    verb = "terminated"
    confirmations = 2  # only on a second confirmation
