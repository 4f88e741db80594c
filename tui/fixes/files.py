"""Fixes that write files on this host, not the database: edit_file, backup_schedule.

edit_file (``pool.max``): a value in one of the app's files (``server/db.ts``: ``max: 10`` → ``max: 20``).
  The plan shows the unified diff and the file's sha256, and compares the value with the server's
  connection headroom when ``headroom = true``. The run refuses when the file changed since the plan
  (its sha256: the ``sha256`` param when a caller passes it, else the last plan this process showed for
  the file, else the plan run_fix makes just before), keeps a copy beside the file
  (``db.ts.pgpreflight-<time>.bak``) and writes atomically (temp file in the same directory, fsync, the
  old mode, os.replace).

backup_schedule (``backups.daily``): a password-free backup script (pg_dump | gzip into the backup
  directory; libpq finds the password in ~/.pgpass or PGPASSFILE, or the socket is trusted), a daily
  schedule line in the crontab (``--crontab-file``, else the user's crontab through ``crontab -l`` /
  ``crontab -``, a copy of the previous one kept in the state directory), and the first backup, now.

Both are ``writes = True``: --read-only refuses them. Paths come from the config: --app-root,
--backup-dir, --crontab-file, --state-dir.
"""
from __future__ import annotations

import asyncio

import difflib
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from tui.checklist import hostfiles
from tui.config import pgpass_lookup
from tui.fixes.base import Fix, FixContext, FixError, human_bytes, need_disk, register
from tui.model.fixes import FixResult, Plan, Precondition, Progress

#: sha256 of the file as the last plan this process made showed it: {path: (sha256, planned at)}.
_PLANNED: dict[str, tuple[str, float]] = {}
PLAN_MEMORY_S = 900.0

def _app_file(ctx: FixContext, rel: str) -> Path:
    p = Path(rel).expanduser()
    return p if p.is_absolute() else Path(ctx.config.app_root) / p


# ------------------------------------------------------------------------------------------ edit_file
@register
class EditFile(Fix):
    name = "edit_file"
    title = "Edit a value in the app's file"

    def validate_params(self) -> None:
        for key in ("file", "pattern", "value"):
            if key not in self.params:
                raise FixError(f"edit_file needs a {key!r} param")
        try:
            self.rx = re.compile(str(self.params["pattern"]), re.M)
        except re.error as e:
            raise FixError(f"edit_file: pattern {self.params['pattern']!r} is not a regular expression: {e}") from None
        if self.rx.groups < 1:
            raise FixError("edit_file: the pattern needs a group around the value to replace")
        self.value = str(self.params["value"])
        if "\n" in self.value:
            raise FixError("edit_file: the value must be one line")
        self.label_text = str(self.params.get("label") or "value")
        self.headroom = bool(self.params.get("headroom", False))
        self._planned: tuple[str, str, str] | None = None  # (path, sha256, new text)

    def label(self) -> str:
        return f"set {self.label_text} to {self.value} in {self.params['file']}"

    def describe(self) -> str | None:
        return (f"in {self.params['file']} (under --app-root): the value of /{self.params['pattern']}/ becomes "
                f"{self.value}; the plan shows the diff; a copy is kept beside it ({Path(self.params['file']).name}"
                f".pgpreflight-<time>.bak); written atomically")

    def objects(self, ctx: FixContext) -> list[str]:
        return [f"file {os.path.realpath(_app_file(ctx, self.params['file']))}"]

    def _edit(self, text: str) -> tuple[str, str, int] | None:
        """(new text, old value, line number) or None when the pattern is not in the file."""
        m = self.rx.search(text)
        if m is None:
            return None
        a, b = m.span(1)
        return text[:a] + self.value + text[b:], m.group(1), text.count("\n", 0, a) + 1

    async def _headroom(self, ctx: FixContext) -> str:
        from tui.checklist.probes import _HEADROOM_SQL  # the connection_headroom probe's own figures

        r = await ctx.fetchrow(_HEADROOM_SQL)
        reserved = r["superuser_reserved"] + r["reserved"]
        usable = max(r["max_connections"] - reserved, 0)
        free = usable - r["used"]
        try:
            want = int(self.value)
        except ValueError:
            return ""
        facts = (f"the server has {usable} usable connections (max_connections {r['max_connections']} less "
                 f"{reserved} reserved), {r['used']} in use now, {free} free")
        if want > free:
            return (f"DOES NOT FIT: {self.label_text} {want} needs up to {want} connections but {facts}; raise "
                    f"max_connections (a restart) or put a pooler (PgBouncer) in front")
        return f"{self.label_text} {want} fits: {facts}"

    async def plan(self, ctx: FixContext) -> Plan:
        path = _app_file(ctx, self.params["file"])
        rel = str(self.params["file"])
        pre: list[Precondition] = []
        notes: list[str] = []
        commands: list[str] = []
        try:
            raw = await asyncio.to_thread(path.read_bytes)
        except OSError as e:
            pre.append(Precondition("file", False, f"cannot read {path}: {e.strerror or e} (set --app-root to the "
                                                   f"app's directory)"))
            return self.base_plan(ctx, title=f"Set {self.label_text} to {self.value} in {rel}",
                                  preconditions=tuple(pre))
        sha = hashlib.sha256(raw).hexdigest()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            pre.append(Precondition("file", False, f"{path} is not UTF-8 text"))
            return self.base_plan(ctx, title=f"Set {self.label_text} to {self.value} in {rel}", preconditions=tuple(pre))
        edit = self._edit(text)
        if edit is None:
            pre.append(Precondition("file", False, f"no line of {path} matches /{self.params['pattern']}/"))
            return self.base_plan(ctx, title=f"Set {self.label_text} to {self.value} in {rel}", preconditions=tuple(pre))
        new, old_value, line = edit
        title = f"Set {self.label_text} to {self.value} in {rel} (line {line}, now {old_value})"
        key = str(path.resolve())
        expected = self.params.get("sha256")
        remembered = _PLANNED.get(key)
        if expected and expected != sha:
            pre.append(Precondition("file unchanged since the plan", False,
                                    f"{rel} changed since the plan (sha256 {str(expected)[:12]}… then, {sha[:12]}… "
                                    f"now): plan again to see the new diff"))
        elif (not expected and remembered and remembered[0] != sha
              and time.time() - remembered[1] < PLAN_MEMORY_S):
            pre.append(Precondition("file unchanged since the plan", False,
                                    f"{rel} changed since the plan shown at "
                                    f"{time.strftime('%H:%M:%S', time.localtime(remembered[1]))} (sha256 "
                                    f"{remembered[0][:12]}… then, {sha[:12]}… now): plan again (f) to see the new diff"))
        else:
            pre.append(Precondition("file unchanged since the plan", True, f"sha256 {sha}"))
        _PLANNED[key] = (sha, time.time())
        if old_value == self.value:
            notes.append(f"{rel} line {line} already says {self.value}")
            return self.base_plan(ctx, title=title, preconditions=tuple(pre), notes=tuple(notes), nothing_to_do=True)
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
        pre.append(Precondition("write access", writable, f"may write {path} and its directory" if writable else
                                f"cannot write {path} or create a temp file in {path.parent}"))
        self._planned = (key, sha, new)
        diff = list(difflib.unified_diff(text.splitlines(), new.splitlines(), fromfile=f"a/{rel}", tofile=f"b/{rel}",
                                         lineterm="", n=2))
        commands += diff
        backup = hostfiles.backup_copy_path(path, "<time>").name
        commands.append(f"# copy the old file to {backup}, write a temp file beside it, fsync, os.replace "
                        f"(mode {oct(path.stat().st_mode & 0o7777)} kept); refused if sha256 is no longer {sha[:16]}…")
        if self.headroom:
            h = await self._headroom(ctx)
            if h:
                notes.append(h)
        notes.append("the app reads this file when it starts: restart or redeploy it for the new value to apply")
        return self.base_plan(ctx, title=title, commands=tuple(commands), preconditions=tuple(pre),
                              notes=tuple(notes), estimate="under 1 s")

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        if self._planned is None:  # run_fix plans first; a direct call must too
            await self.plan(ctx)
        if self._planned is None:
            return FixResult(False, "nothing planned: the plan found no change to make")
        key, sha, new = self._planned
        path = Path(key)
        rel = str(self.params["file"])
        ctx.check_cancel()
        now_raw = await asyncio.to_thread(path.read_bytes)
        now_sha = hashlib.sha256(now_raw).hexdigest()
        if now_sha != sha:
            return FixResult(False, f"refused: {rel} changed since the plan (sha256 {sha[:12]}… then, "
                                    f"{now_sha[:12]}… now); nothing was written: plan again")
        old = now_raw.decode("utf-8")
        diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), fromfile=f"a/{rel}", tofile=f"b/{rel}",
                                         lineterm="", n=0))
        ctx.note_statement(f"edit {path} (sha256 {sha})")
        for d in diff:
            ctx.note_statement(d)
        ctx.progress(Progress("writing", 0.5, str(path)))
        backup = await asyncio.to_thread(hostfiles.write_atomic, path, new)
        _PLANNED.pop(key, None)
        check = self._edit(path.read_text(encoding="utf-8"))
        ok = check is not None and check[1] == self.value
        figures = {"file": str(path), "backup": str(backup) if backup else "", "value": self.value,
                   "sha256": hostfiles.sha256_file(path)}
        summary = (f"{rel} line {check[2] if check else '?'}: {self.label_text} {self.value}"
                   f"{' (was ' + diff_old(diff) + ')' if diff_old(diff) else ''}; a copy of the old file is "
                   f"{backup.name if backup else 'not kept'}")
        if not ok:
            return FixResult(False, f"wrote {path} but it does not read {self.value} back", figures=figures)
        return FixResult(True, summary, figures=figures, details=tuple(diff))


def diff_old(diff: list[str]) -> str:
    olds = [d[1:].strip() for d in diff if d.startswith("-") and not d.startswith("---")]
    return olds[0] if olds else ""


# ------------------------------------------------------------------------------------------ backup_schedule
_CRON_FIELD = re.compile(r"^[0-9*,/\-]+$")


@register
class BackupSchedule(Fix):
    name = "backup_schedule"
    title = "Set up the daily backup"

    def validate_params(self) -> None:
        self.pattern = str(self.params.get("pattern", "backup-*.sql.gz"))
        if self.pattern.count("*") != 1 or "/" in self.pattern:
            raise FixError(f"backup_schedule: pattern {self.pattern!r} needs exactly one '*' (the date) and no '/'")
        self.prefix, self.suffix = self.pattern.split("*")
        if not self.suffix.endswith(".gz"):
            raise FixError(f"backup_schedule: pattern {self.pattern!r} must end in .gz (pg_dump | gzip)")
        self.when = str(self.params.get("schedule", "0 2 * * *")).strip()
        fields = self.when.split()
        if not (self.when in ("@daily", "@midnight") or (len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields))):
            raise FixError(f"backup_schedule: schedule {self.when!r} is not a crontab time (e.g. '0 2 * * *')")
        if not hostfiles.is_daily(self.when):
            raise FixError(f"backup_schedule: schedule {self.when!r} is not daily")

    def label(self) -> str:
        return "set up the daily backup (script, schedule, first backup now)"

    def describe(self) -> str | None:
        return (f"a script: pg_dump | gzip > <backup dir>/{self.prefix}$(date +%Y%m%d){self.suffix} (no password: "
                f"~/.pgpass or the socket); schedule: {self.when} <script>; the first backup now")

    def objects(self, ctx: FixContext) -> list[str]:
        return [f"backup schedule {ctx.server.database}"]

    # -- where things go --------------------------------------------------------------------
    def _backup_dir(self, ctx: FixContext) -> Path | str:
        raw = ctx.options.get("backup_dir") or ctx.config.backup_dir or self.params.get("dir") or "/backup"
        if hostfiles.is_remote(str(raw)):
            return str(raw)
        return _app_file(ctx, str(raw))

    def _safe_db(self, ctx: FixContext) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", ctx.server.database)

    def _script(self, ctx: FixContext) -> Path:
        if self.params.get("script"):
            return _app_file(ctx, str(self.params["script"]))
        return Path(ctx.config.state_dir) / f"backup-{self._safe_db(ctx)}.sh"

    def _crontab_file(self, ctx: FixContext) -> Path | None:
        f = ctx.options.get("crontab_file") or ctx.config.crontab_file
        return Path(f) if f else None

    def _mark(self, ctx: FixContext) -> str:
        return f"{hostfiles.CRON_MARK} {self._safe_db(ctx)}"

    def _line(self, ctx: FixContext) -> str:
        script = self._script(ctx)
        log = script.with_suffix(".log")
        return f"{self.when} {shlex.quote(str(script))} >> {shlex.quote(str(log))} 2>&1 {self._mark(ctx)}"

    def _script_text(self, ctx: FixContext, pg_dump: str, d: Path) -> str:
        t = ctx.target
        env = [("PGHOST", t.effective_host), ("PGPORT", str(t.effective_port)), ("PGUSER", t.effective_user),
               ("PGDATABASE", t.effective_database), ("PGAPPNAME", "pgpreflight/backup")]
        if t.passfile:
            env.append(("PGPASSFILE", t.passfile))
        if t.sslmode:
            env.append(("PGSSLMODE", t.sslmode))
        q = shlex.quote
        return "\n".join([
            "#!/bin/bash",
            f"# Daily backup of {t.display}, written by pgpreflight (backup_schedule) on "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}.",
            "# No password here: libpq reads it from ~/.pgpass (or PGPASSFILE), or the server trusts the socket.",
            "set -euo pipefail",
            "umask 077",
            *(f"export {k}={q(v)}" for k, v in env),
            "unset PGPASSWORD",
            f"dir={q(str(d))}",
            f"out=\"$dir/{self.prefix}$(date +%Y%m%d){self.suffix}\"",
            f"tmp=\"$(mktemp \"$dir/.{self.prefix}partial.XXXXXX\")\"",
            "trap 'rm -f \"$tmp\"' EXIT",
            f"{q(pg_dump)} --no-password | gzip -c > \"$tmp\"",
            "gzip -t \"$tmp\"",
            "mv -f \"$tmp\" \"$out\"",
            "trap - EXIT",
            "echo \"$(date -u +%Y-%m-%dT%H:%M:%SZ) backup ok: $out ($(stat -c %s \"$out\") bytes)\"",
            "",
        ])

    def _pg_dump(self, ctx: FixContext) -> tuple[str | None, Precondition]:
        from tui.fixes.backup import find_pg_tools

        search = ctx.options.get("pg_bindir_search")
        try:
            tools = find_pg_tools(ctx.server.major, [Path(p) for p in search] if search is not None else None)
        except FixError as e:
            return None, Precondition("pg_dump", False, str(e))
        return str(tools.pg_dump), Precondition("pg_dump", True, f"{tools.version} in {tools.bindir}")

    def _password(self, ctx: FixContext) -> Precondition:
        t = ctx.target
        if t.password is None:
            how = f"PGPASSFILE {t.passfile}" if t.passfile else "the socket or the server's trust/peer rules"
            return Precondition("no password in the script", True, f"the connection needs none given here ({how})")
        passfile = t.passfile or str(Path.home() / ".pgpass")
        if pgpass_lookup(passfile, t.effective_host, t.effective_port, t.effective_database, t.effective_user):
            return Precondition("no password in the script", True, f"libpq finds the password in {passfile}")
        return Precondition("no password in the script", False,
                            f"this connection was given a password, and the script never stores one: put a line "
                            f"{t.effective_host}:{t.effective_port}:{t.effective_database}:{t.effective_user}:<password> "
                            f"in {passfile} (chmod 600) for the user the schedule runs as, then plan again")

    async def plan(self, ctx: FixContext) -> Plan:
        pre: list[Precondition] = []
        d = self._backup_dir(ctx)
        if isinstance(d, str):
            pre.append(Precondition("backup directory", False, f"backups go to {d} (another host): this fix sets "
                                                               f"up local backups only"))
            return self.base_plan(ctx, preconditions=tuple(pre))
        pg_dump, p = self._pg_dump(ctx)
        pre.append(p)
        pre.append(self._password(ctx))
        crontab_file = self._crontab_file(ctx)
        if crontab_file is None and not shutil.which("crontab"):
            pre.append(Precondition("scheduler", False, "no crontab command here: install cron, or give "
                                                        "--crontab-file the file your scheduler reads"))
        db_bytes = int(await ctx.fetchval("SELECT pg_database_size(current_database())"))
        pre.append(need_disk(d, max(db_bytes // 4, 1), f"a compressed dump of {ctx.server.database} "
                                                       f"(database {human_bytes(db_bytes)})"))
        script = self._script(ctx)
        line = self._line(ctx)
        where = (f"{crontab_file} (atomic write; a copy of the old file kept beside it)" if crontab_file else
                 f"the crontab of user {hostfiles._user()} (crontab -l, the line appended, crontab -; the old "
                 f"crontab copied to {Path(ctx.config.state_dir) / 'crontab-<time>.bak'})")
        text = self._script_text(ctx, pg_dump or "pg_dump", d)
        commands = (f"# 1. write {script} (mode 0700):",
                    *(f"#    {ln}" for ln in text.splitlines() if ln and not ln.startswith("#")),
                    f"# 2. install in {where}:",
                    line,
                    "# 3. the first backup, now:",
                    shlex.quote(str(script)))
        return self.base_plan(
            ctx, title=f"Daily backup of {ctx.server.database} into {d} ({self.when})",
            commands=commands, preconditions=tuple(pre), estimate=f"the first dump: {human_bytes(db_bytes)} of data",
            notes=(f"backups land in {d} as {self.pattern}; the schedule is installed only after you confirm",
                   "a line marked '" + self._mark(ctx) + "' already there is replaced, not doubled"),
        )

    async def _install(self, ctx: FixContext, line: str) -> str:
        mark = self._mark(ctx)
        crontab_file = self._crontab_file(ctx)
        if crontab_file is not None:
            old = crontab_file.read_text(encoding="utf-8") if crontab_file.exists() else ""
            kept = [ln for ln in old.splitlines() if not ln.rstrip().endswith(mark)]
            new = "\n".join([*kept, line]) + "\n"
            crontab_file.parent.mkdir(parents=True, exist_ok=True)
            ctx.note_statement(f"append to {crontab_file}: {line}")
            backup = await asyncio.to_thread(hostfiles.write_atomic, crontab_file, new, mode=0o644
                                             if not crontab_file.exists() else None)
            return f"{crontab_file}" + (f" (old copy {backup.name})" if backup else "")
        sched = hostfiles.read_schedule(None)
        if sched.text is None:
            raise OSError(f"cannot read the crontab: {sched.why}")
        state = Path(ctx.config.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        copy = state / f"crontab-{time.strftime('%Y%m%dT%H%M%S')}.bak"
        copy.write_text(sched.text, encoding="utf-8")
        os.chmod(copy, 0o600)
        kept = [ln for ln in sched.text.splitlines() if not ln.rstrip().endswith(mark)]
        new = "\n".join([*kept, line]) + "\n"
        ctx.note_statement(f"$ crontab -   (the old crontab kept in {copy}; appended: {line})")
        r = await asyncio.to_thread(subprocess.run, [shutil.which("crontab") or "crontab", "-"], input=new,
                                    capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise OSError(f"crontab - failed: {(r.stderr or '').strip()[:200]}")
        return f"the crontab of {hostfiles._user()} (old copy {copy})"

    async def run(self, ctx: FixContext, progress_cb, cancel_event) -> FixResult:
        d = self._backup_dir(ctx)
        assert isinstance(d, Path)
        pg_dump, p = self._pg_dump(ctx)
        if pg_dump is None:
            return FixResult(False, p.detail)
        script = self._script(ctx)
        line = self._line(ctx)
        figures: dict = {"backup_dir": str(d), "script": str(script), "schedule": self.when}
        ctx.progress(Progress("writing the backup script", 0.1, str(script), step=1, steps=3))
        d.mkdir(parents=True, exist_ok=True)
        script.parent.mkdir(parents=True, exist_ok=True)
        ctx.note_statement(f"write {script} (mode 0700)")
        await asyncio.to_thread(hostfiles.write_atomic, script, self._script_text(ctx, pg_dump, d), mode=0o700)
        ctx.check_cancel()
        ctx.progress(Progress("installing the schedule", 0.3, line, step=2, steps=3))
        where = await self._install(ctx, line)
        figures["installed_in"] = where
        ctx.check_cancel()
        ctx.progress(Progress("the first backup", 0.5, f"{script}", step=3, steps=3))
        ctx.note_statement(f"$ {shlex.quote(str(script))}")
        t0 = time.monotonic()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
        proc = await asyncio.create_subprocess_exec(str(script), stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE, env=env)
        ctx.register_process(proc)
        out, err = await proc.communicate()
        figures["first_backup_s"] = round(time.monotonic() - t0, 3)
        installed = f"the schedule is installed in {where} and the script is {script}"
        if ctx.cancelled:
            return FixResult(False, f"cancelled during the first backup; {installed}", cancelled=True,
                             figures=figures, left_behind=(installed,))
        if proc.returncode != 0:
            msg = (err.decode(errors="replace").strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            return FixResult(False, f"the first backup failed: {msg[:200]}; {installed}", figures=figures,
                             left_behind=(installed,))
        from tui.checklist.probes import _gzip_ok

        files = sorted((f for f in d.glob(self.pattern) if f.is_file()), key=lambda f: f.stat().st_mtime)
        if not files:
            return FixResult(False, f"the first backup wrote no {self.pattern} in {d}; {installed}", figures=figures)
        newest = files[-1]
        ok, how = await asyncio.to_thread(_gzip_ok, newest)
        figures.update(file=str(newest), bytes=newest.stat().st_size)
        return FixResult(ok, f"first backup {newest.name}, {human_bytes(newest.stat().st_size)}, {how}; "
                             f"scheduled {self.when} in {where}",
                         figures=figures, details=tuple(x for x in out.decode(errors="replace").splitlines()[-3:]))
