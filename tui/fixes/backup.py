"""backup_test: a real dump and restore round trip.

1. A REPEATABLE READ, READ ONLY transaction exports its snapshot (pg_export_snapshot()).
2. pg_dump -Fc --snapshot=ID (from the server's major version) writes the dump, while the same
   transaction counts every table exactly: the counts and the dump see the same data, so a live
   workload cannot make them differ.
3. CREATE DATABASE pgpreflight_restore_<time>_<random> (on this server, or on --restore-dsn),
   pg_restore into it, count every table again, compare.
4. DROP the scratch database whatever happens: failure, cancel, Ctrl+C (the CLI turns SIGINT and
   SIGTERM into a cancel), or the task being cancelled.

The password, when there is one, goes to pg_dump/pg_restore in PGPASSWORD: never on a command line.
"""
from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import secrets
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tui.config import Target, TargetError, UsageError, resolve_target
from tui.fixes.base import (FIX_ROLE, Fix, FixCancelled, FixContext, FixError, human_bytes, human_seconds, need_disk,
                            qualified, quote_ident, quote_literal, register)
from tui.db.connect import APP_NAME, connect
from tui.model.fixes import FixResult, Plan, Precondition, Progress

SCRATCH_PREFIX = "pgpreflight_restore_"
DUMP_BYTES_PER_S = 60e6  # rough: dump and restore rates for the estimate
RESTORE_BYTES_PER_S = 30e6

TABLES_SQL = """
SELECT n.nspname AS schema, c.relname AS name, pg_table_size(c.oid) AS bytes
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                               AND d.deptype = 'e')
 ORDER BY 1, 2
"""


# ------------------------------------------------------------------------------------------ tools
@dataclass(frozen=True)
class PgTools:
    bindir: Path
    major: int
    version: str

    @property
    def pg_dump(self) -> Path:
        return self.bindir / "pg_dump"

    @property
    def pg_restore(self) -> Path:
        return self.bindir / "pg_restore"


def _tool_version(exe: Path) -> tuple[int, str] | None:
    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)(?:\.(\d+))?", out.stdout)
    if out.returncode != 0 or not m:
        return None
    return int(m.group(1)), out.stdout.strip()


def candidate_bindirs(server_major: int) -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("PGPREFLIGHT_PG_BINDIR")
    if env:
        dirs.append(Path(env))
    dirs += [Path(f"/usr/lib/postgresql/{server_major}/bin"), Path(f"/usr/pgsql-{server_major}/bin"),
             Path(f"/opt/homebrew/opt/postgresql@{server_major}/bin"), Path(f"/usr/local/opt/postgresql@{server_major}/bin")]
    exe = shutil.which("pg_dump")
    if exe:
        dirs.append(Path(exe).resolve().parent)
        dirs.append(Path(exe).parent)
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql*/bin",
                    "/usr/local/opt/postgresql*/bin"):
        dirs += [Path(p) for p in sorted(glob.glob(pattern), reverse=True)]
    seen, out = set(), []
    for d in dirs:
        if str(d) not in seen:
            seen.add(str(d))
            out.append(d)
    return out


def find_pg_tools(server_major: int, search: list[Path] | None = None) -> PgTools:
    """pg_dump and pg_restore of the server's major version (or the nearest newer one).
    Raises FixError naming what was found when they are missing or older than the server."""
    found: list[PgTools] = []
    for d in (search if search is not None else candidate_bindirs(server_major)):
        dump, restore = Path(d) / "pg_dump", Path(d) / "pg_restore"
        if not (dump.is_file() and os.access(dump, os.X_OK) and restore.is_file() and os.access(restore, os.X_OK)):
            continue
        v = _tool_version(dump)
        if v:
            found.append(PgTools(Path(d), v[0], v[1]))
    for t in found:
        if t.major == server_major:
            return t
    newer = sorted((t for t in found if t.major > server_major), key=lambda t: t.major)
    if newer:
        return newer[0]
    if found:
        best = max(found, key=lambda t: t.major)
        raise FixError(f"pg_dump {best.major} ({best.bindir}) is older than the server ({server_major}): it cannot "
                       f"dump it; install the PostgreSQL {server_major} client tools (e.g. postgresql-client-{server_major})")
    raise FixError(f"pg_dump and pg_restore were not found; install the PostgreSQL {server_major} client tools "
                   f"(e.g. 'apt-get install postgresql-client-{server_major}') or set PGPREFLIGHT_PG_BINDIR")


# pg_dump and pg_restore cannot carry the tool's marker comment (tui.db.connect.OWN_MARKER): where the role
# may set pg_stat_statements.track (a superuser; from 15 on, GRANT SET ON PARAMETER), their sessions are not
# tracked at all, so that their ~70 catalog queries and COPYs never reach the slow queries. Otherwise the slow
# queries leave out pg_dump's COPY ... TO stdout by its text and the restore by its scratch database.
UNTRACK_SQL = """
SELECT current_setting('pg_stat_statements.track', true) IS NOT NULL
   AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
"""
UNTRACK_SQL_150000 = """
SELECT current_setting('pg_stat_statements.track', true) IS NOT NULL
   AND ((SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
        OR has_parameter_privilege('pg_stat_statements.track', 'SET'))
"""
UNTRACKED_OPTIONS = "-c pg_stat_statements.track=none"


def libpq_env(target: Target, database: str | None = None, untracked: bool = False) -> dict[str, str]:
    """The environment for pg_dump/pg_restore: connection from PG* variables, password never on argv.
    ``untracked``: pg_stat_statements does not track the session (the role may set its track)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    if untracked:
        env["PGOPTIONS"] = UNTRACKED_OPTIONS
    env.update({"PGHOST": target.effective_host, "PGPORT": str(target.effective_port), "PGUSER": target.effective_user,
                "PGDATABASE": database or target.effective_database, "PGAPPNAME": f"{APP_NAME}/{FIX_ROLE}",
                "PGCONNECT_TIMEOUT": "10"})
    if target.password is not None:
        env["PGPASSWORD"] = target.password
    elif target.passfile:
        env["PGPASSFILE"] = target.passfile
    if target.sslmode:
        env["PGSSLMODE"] = target.sslmode
    return env


async def copy_progress(fetch, datname: str, seen: dict[int, int]) -> int:
    """Rows copied so far by the fix's own COPYs in ``datname`` (pg_stat_progress_copy, PostgreSQL 14+): the
    largest tuples_processed seen per table, summed (a table that starts and ends between two polls is missed,
    so this undercounts a little, never overcounts)."""
    rows = await fetch(
        "SELECT p.relid::bigint AS relid, p.tuples_processed AS n FROM pg_stat_progress_copy p "
        "  JOIN pg_stat_activity a ON a.pid = p.pid WHERE p.datname = $1 AND a.application_name = $2",
        datname, f"{APP_NAME}/{FIX_ROLE}")
    for r in rows:
        seen[r["relid"]] = max(seen.get(r["relid"], 0), int(r["n"]))
    return sum(seen.values())


def scratch_name() -> str:
    return f"{SCRATCH_PREFIX}{time.strftime('%Y%m%d%H%M%S')}_{secrets.token_hex(3)}"


@register
class BackupTest(Fix):
    name = "backup_test"
    title = "Backup and restore test"

    def validate_params(self) -> None:
        self.restore_dsn = self.params.get("restore_dsn")

    def objects(self, ctx: FixContext) -> list[str]:
        return [f"backup_test {ctx.server.database}"]

    def label(self) -> str:
        return "run the backup and restore test"

    def describe(self) -> str | None:
        return ("pg_dump -Fc --snapshot=<exported>  (row counts taken in the same snapshot)\n"
                f"CREATE DATABASE {SCRATCH_PREFIX}<unique>; pg_restore --no-owner --no-privileges into it\n"
                "count(*) every table again and compare; DROP DATABASE the scratch database whatever happens")

    def _restore_target(self, ctx: FixContext) -> Target | None:
        dsn = ctx.options.get("restore_dsn") or self.restore_dsn
        if not dsn:
            return None
        try:
            return resolve_target(dsn, env={})
        except UsageError as e:
            raise FixError(f"--restore-dsn: {e}") from None

    def _dump_dir(self, ctx: FixContext) -> Path:
        return Path(ctx.options.get("backup_dir") or ctx.config.backup_dir or (ctx.config.state_dir / "backups"))

    def _tools(self, ctx: FixContext) -> PgTools:
        search = ctx.options.get("pg_bindir_search")
        return find_pg_tools(ctx.server.major, [Path(p) for p in search] if search is not None else None)

    async def _restore_facts(self, ctx: FixContext, rt: Target | None) -> tuple[str, list[Precondition]]:
        """Where the scratch database goes, and whether we may create it there."""
        pre: list[Precondition] = []
        if rt is None:
            row = await ctx.fetchrow("SELECT rolcreatedb OR rolsuper AS ok FROM pg_roles WHERE rolname = current_user")
            where = f"this server ({ctx.target.display})"
            in_rec = ctx.server.in_recovery
        else:
            where = rt.display
            try:
                c = await connect(rt, timeout=ctx.config.connect_timeout, role=FIX_ROLE, statement_timeout_ms=5000)
            except TargetError as e:
                return where, [Precondition("restore server", False, f"cannot connect to {e.target}: {e.reason}")]
            try:
                row = await c.fetchrow("SELECT rolcreatedb OR rolsuper AS ok, pg_is_in_recovery() AS rec "
                                       "FROM pg_roles WHERE rolname = current_user")
                in_rec = bool(row["rec"])
            finally:
                await c.close()
        pre.append(Precondition("privilege", bool(row and row["ok"]),
                                "may CREATE DATABASE on the restore server" if row and row["ok"] else
                                "the restore needs CREATEDB (ALTER ROLE ... CREATEDB) or SUPERUSER on the restore server"))
        pre.append(Precondition("a primary for the restore", not in_rec,
                                "restore server is a primary" if not in_rec else
                                "the restore server is a standby: it needs a primary (use --restore-dsn)"))
        return where, pre

    async def plan(self, ctx: FixContext) -> Plan:
        pre: list[Precondition] = []
        try:
            tools = self._tools(ctx)
            pre.append(Precondition("pg_dump", True, f"{tools.version} in {tools.bindir}"))
        except FixError as e:
            tools = None
            pre.append(Precondition("pg_dump", False, str(e)))
        rt = self._restore_target(ctx)
        where, rpre = await self._restore_facts(ctx, rt)
        pre += rpre
        tables = await ctx.fetch(TABLES_SQL)
        unreadable = await ctx.fetch(
            "SELECT format('%I.%I', n.nspname, c.relname) AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            " WHERE c.relkind IN ('r', 'p', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "   AND n.nspname NOT LIKE 'pg\\_toast%' AND NOT has_table_privilege(c.oid, 'SELECT') LIMIT 6")
        if unreadable:
            names = ", ".join(r["t"] for r in unreadable[:5]) + (" ..." if len(unreadable) > 5 else "")
            pre.append(Precondition("privilege", False, f"pg_dump needs SELECT on every table (or pg_read_all_data); "
                                                        f"role {ctx.server.current_user} cannot read {names}"))
        else:
            pre.append(Precondition("privilege", True, f"{ctx.server.current_user} can read every table"))
        data_bytes = sum(int(t["bytes"]) for t in tables)
        db_bytes = await ctx.fetchval("SELECT pg_database_size(current_database())")
        dump_dir = self._dump_dir(ctx)
        pre.append(need_disk(dump_dir, data_bytes, f"dump of {ctx.server.database} (table data "
                                                   f"{human_bytes(data_bytes)}, database {human_bytes(db_bytes)})"))
        est = data_bytes / DUMP_BYTES_PER_S + db_bytes / RESTORE_BYTES_PER_S + data_bytes / 200e6 * 2 + 1
        dump_file = dump_dir / f"{ctx.server.database}-<time>.dump"
        scratch = f"{SCRATCH_PREFIX}<time>_<random>"
        pg_dump = tools.pg_dump if tools else "pg_dump"
        pg_restore = tools.pg_restore if tools else "pg_restore"
        conn_note = (f"connection from PGHOST/PGPORT/PGUSER/PGDATABASE ({ctx.target.display})"
                     + ("; password in PGPASSWORD, never on the command line" if ctx.target.password else ""))
        return self.base_plan(
            ctx, title=f"Backup test of {ctx.server.database}: dump, restore into a scratch database, compare rows",
            statements=("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                        "SELECT pg_export_snapshot()",
                        *(f"SELECT count(*) FROM ONLY {qualified(t['schema'], t['name'])}" for t in tables[:50]),
                        *((f"-- ... and {len(tables) - 50} more tables",) if len(tables) > 50 else ()),
                        "COMMIT",
                        f"CREATE DATABASE {quote_ident(scratch)} TEMPLATE template0 ENCODING <the source's>   -- on {where}",
                        "-- the same count(*) of every table, in the scratch database",
                        f"DROP DATABASE IF EXISTS {quote_ident(scratch)}{' WITH (FORCE)' if ctx.server.version_num >= 130000 else ''}"
                        "   -- whatever happens"),
            commands=(shlex.join([str(pg_dump), "-Fc", "--snapshot=<exported snapshot>", "-f", str(dump_file)]),
                      shlex.join([str(pg_restore), "--no-owner", "--no-privileges", "-d", scratch, str(dump_file)]),
                      conn_note),
            locks=("ACCESS SHARE on every table while it is dumped (blocks only DDL such as ALTER TABLE and "
                   "VACUUM FULL)", "the snapshot holds back VACUUM cleanup of rows deleted during the test"),
            estimate=(f"{human_seconds(est)}: {len(tables)} tables, {human_bytes(data_bytes)} of table data, "
                      f"database {human_bytes(db_bytes)}"),
            estimate_s=est,
            preconditions=tuple(pre),
            notes=(f"the dump is kept in {dump_dir} when the test passes", f"restores onto {where}"),
        )

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        figures: dict = {}
        try:
            res = await self._run(ctx, figures)
        except (asyncpg.PostgresError, TargetError, OSError, FixError) as e:
            msg = e.reason if isinstance(e, TargetError) else (str(e).splitlines()[0] if str(e) else type(e).__name__)
            res = FixResult(False, f"failed: {msg}")
        left = list(res.left_behind)
        if figures.get("scratch_left"):
            left.append(figures["scratch_left"])
            figures.pop("scratch_left")
        from dataclasses import replace

        return replace(res, figures={**figures, **res.figures}, left_behind=tuple(left))

    async def _run(self, ctx: FixContext, figures: dict) -> FixResult:
        tools = self._tools(ctx)
        rt = self._restore_target(ctx) or ctx.target
        dump_dir = self._dump_dir(ctx)
        dump_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        safe_db = re.sub(r"[^A-Za-z0-9_.-]", "_", ctx.server.database)
        dump_file = dump_dir / f"{safe_db}-{stamp}-{secrets.token_hex(2)}.dump"
        scratch = scratch_name()
        figures["dump_file"] = str(dump_file)
        left: list[str] = []
        created = False
        admin = None
        ok = False
        try:
            # 1. snapshot + counts + dump, in the same snapshot
            snap = await ctx.session(statement_timeout_ms=0)
            await snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot_id = await snap.fetchval("SELECT pg_export_snapshot()")
            ctx.note_statement("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT pg_export_snapshot()")
            tables = await snap.fetch(TABLES_SQL)
            untracked = bool(await snap.fetchval(
                UNTRACK_SQL_150000 if ctx.server.version_num >= 150000 else UNTRACK_SQL))
            argv = [str(tools.pg_dump), "-Fc", f"--snapshot={snapshot_id}", "-f", str(dump_file)]
            ctx.note_statement("$ " + shlex.join(argv))
            t0 = time.monotonic()
            dump = await asyncio.create_subprocess_exec(*argv, env=libpq_env(ctx.target, untracked=untracked), stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.PIPE)
            ctx.register_process(dump)
            source_counts: dict[str, int] = {}
            for i, t in enumerate(tables, 1):
                ctx.check_cancel()
                rel = qualified(t["schema"], t["name"])
                source_counts[rel] = int(await snap.fetchval(f"SELECT count(*) FROM ONLY {rel}"))
                ctx.progress(Progress("counting rows in the dump's snapshot", i / max(1, len(tables)),
                                      f"{i}/{len(tables)} tables", step=1, steps=3))
            err_task = asyncio.create_task(dump.stderr.read())
            total_rows = sum(source_counts.values())
            copy_seen: dict[int, int] = {}
            has_copy_progress = ctx.server.version_num >= 140000
            while dump.returncode is None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(dump.wait(), 0.25)
                size = dump_file.stat().st_size if dump_file.exists() else 0
                done = None
                if has_copy_progress and dump.returncode is None:
                    with contextlib.suppress(asyncpg.PostgresError):
                        done = await copy_progress(ctx.fetch, ctx.server.database, copy_seen)
                ctx.progress(Progress("pg_dump", min(0.99, done / total_rows) if done is not None and total_rows else None,
                                      f"{human_bytes(size)} written" + (f" · rows {done:,}/{total_rows:,}"
                                                                        if done is not None else ""),
                                      step=2, steps=3, tuples_done=done, tuples_total=total_rows or None))
            dump_err = (await err_task).decode(errors="replace").strip()
            figures["dump_s"] = round(time.monotonic() - t0, 3)
            await snap.execute("COMMIT")
            await ctx.close_session(snap)
            ctx.check_cancel()
            if dump.returncode != 0:
                return FixResult(False, f"pg_dump failed (exit {dump.returncode}): "
                                        f"{(dump_err.splitlines() or ['no message'])[-1]}", figures=figures,
                                 left_behind=tuple(left))
            figures["dump_bytes"] = dump_file.stat().st_size
            figures["tables"] = len(tables)
            figures["rows"] = sum(source_counts.values())

            # 2. scratch database + restore
            admin = await ctx.session(target=rt, statement_timeout_ms=0)
            enc = await ctx.fetchval("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()")
            await ctx.execute(admin, f"CREATE DATABASE {quote_ident(scratch)} TEMPLATE template0 ENCODING {quote_literal(enc)}")
            created = True
            figures["scratch_database"] = scratch
            ctx.check_cancel()
            rargv = [str(tools.pg_restore), "--no-owner", "--no-privileges", "-d", scratch, str(dump_file)]
            ctx.note_statement("$ " + shlex.join(rargv))
            t1 = time.monotonic()
            restore = await asyncio.create_subprocess_exec(*rargv, env=libpq_env(rt, scratch),
                                                           stdout=asyncio.subprocess.DEVNULL,
                                                           stderr=asyncio.subprocess.PIPE)
            ctx.register_process(restore)
            rerr_task = asyncio.create_task(restore.stderr.read())
            restore_seen: dict[int, int] = {}
            rversion = await admin.fetchval("SELECT current_setting('server_version_num')::int")
            while restore.returncode is None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(restore.wait(), 0.25)
                elapsed = time.monotonic() - t1
                done = None
                if rversion >= 140000 and restore.returncode is None:
                    with contextlib.suppress(asyncpg.PostgresError):
                        done = await copy_progress(admin.fetch, scratch, restore_seen)
                ctx.progress(Progress("pg_restore", min(0.99, done / total_rows) if done is not None and total_rows else None,
                                      f"{elapsed:.1f} s" + (f" · rows {done:,}/{total_rows:,}" if done is not None else ""),
                                      step=3, steps=3, tuples_done=done, tuples_total=total_rows or None))
            restore_err = (await rerr_task).decode(errors="replace").strip()
            figures["restore_s"] = round(time.monotonic() - t1, 3)
            ctx.check_cancel()

            # 3. count again, compare
            rconn = await ctx.session(target=rt, database=scratch, statement_timeout_ms=0)
            try:
                restored: dict[str, int | None] = {}
                for rel in source_counts:
                    try:
                        restored[rel] = int(await rconn.fetchval(f"SELECT count(*) FROM ONLY {rel}"))
                    except asyncpg.UndefinedTableError:
                        restored[rel] = None
            finally:
                await ctx.close_session(rconn)
            mismatches = [f"{rel}: {n:,} in the dump's snapshot, "
                          + ("missing" if restored[rel] is None else f"{restored[rel]:,}") + " restored"
                          for rel, n in source_counts.items() if restored[rel] != n]
            figures["mismatches"] = len(mismatches)
            figures["restored_rows"] = sum(v or 0 for v in restored.values())
            restore_errors = [ln for ln in restore_err.splitlines() if "error" in ln.lower()]
            figures["restore_errors"] = len(restore_errors)
            details = tuple(mismatches[:10]) + tuple(f"pg_restore: {ln}" for ln in restore_errors[:5])
            ok = not mismatches and restore.returncode == 0
            summary = (f"{len(tables)} tables, {figures['rows']:,} rows: "
                       + ("every count matches" if not mismatches else f"{len(mismatches)} table(s) differ")
                       + f"; dump {human_bytes(figures['dump_bytes'])} in {figures['dump_s']:.1f} s, "
                       f"restore in {figures['restore_s']:.1f} s"
                       + ("" if restore.returncode == 0 else f"; pg_restore exited {restore.returncode}"))
            return FixResult(ok, summary, figures=figures, details=details)
        except FixCancelled:
            return FixResult(False, "cancelled by the operator", cancelled=True, figures=figures)
        except asyncpg.QueryCanceledError:
            if ctx.cancelled:
                return FixResult(False, "cancelled by the operator", cancelled=True, figures=figures)
            raise
        finally:
            # kill what still runs, then drop the scratch database, whatever happened
            for proc in list(ctx._procs):
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(proc.wait(), 5)
            if not ok:
                with contextlib.suppress(OSError):
                    dump_file.unlink()
            if created or admin is not None:
                await self._drop_scratch(ctx, rt, admin, scratch, figures)

    async def _drop_scratch(self, ctx: FixContext, rt: Target, admin, scratch: str, figures: dict) -> None:
        """DROP the scratch database on a session of its own that no cancel request targets (a cancel still
        being delivered to the fix's sessions must not cancel the cleanup), retrying a few times."""
        force = " WITH (FORCE)" if ctx.server.version_num >= 130000 else ""
        sql = f"DROP DATABASE IF EXISTS {quote_ident(scratch)}{force}"
        last: BaseException | None = None
        ctx.note_statement(sql)
        for attempt in range(4):
            cleaner = None
            try:
                cleaner = await ctx.session(target=rt, statement_timeout_ms=60000, register=False)
                if not force:
                    await cleaner.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                                          scratch)
                await cleaner.execute(sql)
                figures["scratch_dropped"] = True
                return
            except (asyncpg.PostgresError, asyncpg.InterfaceError, TargetError, OSError) as e:
                last = e
                await asyncio.sleep(0.2 * (attempt + 1))
            finally:
                await ctx.close_session(cleaner)
        figures["scratch_dropped"] = False
        why = (getattr(last, "reason", None) or str(last).splitlines()[0]) if last and str(last) else repr(last)
        figures["scratch_left"] = f"database {scratch} on {rt.display} ({why}); drop it with: {sql}"
