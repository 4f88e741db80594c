"""Issue 12 §2: every automatic item can pass by keys on the demo. The file fix of pool.max (edit_file),
the daily backup of backups.daily (backup_schedule), pool.errors reading the server's log, and
backups.separate_storage comparing filesystems, against a real server of this module's own that keeps
its log (logging_collector = on, as the demo runs it). Waits poll; nothing sleeps for state."""
from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from tui.checklist.probes import ProbeContext, run_checklist
from tui.checklist.runner import check_database
from tui.checklist.spec import load_checklist
from tui.checklist.state import ChecklistState, DatabaseIdentity
from tui.cluster import ClusterError, start_cluster
from tui.config import Config, resolve_target
from tui.demo.data import DEMO_CRONTAB, write_app_dir
from tui.fixes import FixRefused, plan_fix, run_fix

pytestmark = [pytest.mark.pg]

DB = "files_db"
LOW_ROLE = "files_low"
MVP = load_checklist("images-mvp")


@pytest.fixture(scope="module")
def cluster():
    """This module's own server, logging as the demo's does (logging_collector = on)."""
    try:
        c = start_cluster(collect_logs=True)
    except ClusterError as e:
        pytest.fail(str(e))
    yield c
    c.destroy()


@pytest.fixture(scope="module")
def dsn(cluster):
    async def setup():
        c = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            await c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            await c.execute(f"CREATE DATABASE {DB}")
            await c.execute(f"DROP ROLE IF EXISTS {LOW_ROLE}")
            await c.execute(f"CREATE ROLE {LOW_ROLE} LOGIN")
        finally:
            await c.close()
        c = await asyncpg.connect(cluster.dsn(DB))
        try:
            await c.execute("CREATE TABLE t (id int PRIMARY KEY, pad text)")
            await c.execute("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g")
        finally:
            await c.close()
    asyncio.run(setup())
    return cluster.dsn(DB)


def cfg(dsn, tmp_path, **kw) -> Config:
    kw.setdefault("state_dir", tmp_path / "state")
    kw.setdefault("app_root", tmp_path / "app")
    return Config(target=resolve_target(dsn, env={}), **kw)


async def status(config, item_id):
    run = await check_database(config, MVP, only=[item_id], save=False)
    r = run.results[item_id]
    return r.status, r.detail


def pool_fix():
    return MVP.item("pool.max").fix.name, dict(MVP.item("pool.max").fix.params)


# ------------------------------------------------------------------------------------------ pool.max
async def test_pool_max_fix_shows_the_diff_writes_atomically_and_keeps_a_copy(dsn, tmp_path):
    app = write_app_dir(tmp_path / "app")
    db_ts = app / "server" / "db.ts"
    os.chmod(db_ts, 0o640)
    before = db_ts.read_text()
    ino = db_ts.stat().st_ino
    c = cfg(dsn, tmp_path)
    assert (await status(c, "pool.max"))[0] == "fail"
    name, params = pool_fix()
    assert name == "edit_file"
    plan = await plan_fix(c, name, params, item_id="pool.max")
    assert not plan.blocked, plan.blockers
    assert "-  max: 10," in plan.commands and "+  max: 20," in plan.commands
    assert plan.commands[0] == "--- a/server/db.ts" and plan.commands[1] == "+++ b/server/db.ts"
    assert any(p.name == "file unchanged since the plan" and p.detail.startswith("sha256 ") for p in plan.preconditions)
    assert any("max 20 fits" in n and "max_connections 100 less 3 reserved" in n for n in plan.notes), plan.notes
    res = await run_fix(c, name, params, item_id="pool.max", confirmations=1)
    assert res.ok, res.text()
    after = db_ts.read_text()
    assert after == before.replace("  max: 10,", "  max: 20,", 1) and after.splitlines()[27] == "  max: 20,"
    st = db_ts.stat()
    assert st.st_ino != ino, "not replaced: written in place"
    assert st.st_mode & 0o777 == 0o640
    copies = sorted(app.joinpath("server").glob("db.ts.pgpreflight-*.bak"))
    assert len(copies) == 1 and copies[0].read_text() == before
    assert res.figures["backup"] == str(copies[0])
    leftovers = [p.name for p in app.joinpath("server").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    audit = [json.loads(x) for x in (c.state_dir / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["outcome"].startswith("ok:") and "-  max: 10," in audit[-1]["statements"] \
        and "+  max: 20," in audit[-1]["statements"]
    assert (await status(c, "pool.max")) == ("pass", "max: 20 in server/db.ts line 28, needs ≥ 20")
    again = await plan_fix(c, name, params, item_id="pool.max")
    assert again.nothing_to_do


async def test_pool_max_fix_refuses_a_file_changed_since_the_plan(dsn, tmp_path):
    app = write_app_dir(tmp_path / "app")
    db_ts = app / "server" / "db.ts"
    c = cfg(dsn, tmp_path)
    name, params = pool_fix()
    plan = await plan_fix(c, name, params, item_id="pool.max")
    sha = next(p.detail.split()[1] for p in plan.preconditions if p.name == "file unchanged since the plan")
    edited = db_ts.read_text() + "// someone edited this after the plan\n"
    db_ts.write_text(edited)
    with pytest.raises(FixRefused) as e:
        await run_fix(c, name, params, item_id="pool.max", confirmations=1)
    assert "changed since the plan" in e.value.reason
    assert db_ts.read_text() == edited
    assert not list(app.joinpath("server").glob("*.bak"))
    # a caller that passes the shown plan's sha256 gets the same refusal, every time
    with pytest.raises(FixRefused) as e:
        await run_fix(c, name, {**params, "sha256": sha}, item_id="pool.max", confirmations=1)
    assert "changed since the plan" in e.value.reason and db_ts.read_text() == edited
    # planned again: the new content is what runs
    await plan_fix(c, name, params, item_id="pool.max")
    res = await run_fix(c, name, params, item_id="pool.max", confirmations=1)
    assert res.ok and "max: 20," in db_ts.read_text() and db_ts.read_text().endswith("after the plan\n")


async def test_pool_max_fix_read_only_refuses_and_too_little_headroom_is_said(dsn, tmp_path):
    app = write_app_dir(tmp_path / "app")
    db_ts = app / "server" / "db.ts"
    before = db_ts.read_bytes()
    name, params = pool_fix()
    with pytest.raises(FixRefused) as e:
        await run_fix(cfg(dsn, tmp_path, read_only=True), name, params, item_id="pool.max", confirmations=1)
    assert "read-only" in e.value.reason and db_ts.read_bytes() == before
    plan = await plan_fix(cfg(dsn, tmp_path), name, {**params, "value": 500}, item_id="pool.max")
    assert any(n.startswith("DOES NOT FIT: pool max 500 needs up to 500 connections") for n in plan.notes), plan.notes
    # a bad app root: one clear line
    r = subprocess.run([sys.executable, "-m", "tui", "fix", "pool.max", "--dry-run", "--dsn", dsn,
                        "--app-root", str(tmp_path / "nowhere"), "--state-dir", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "cannot read" in r.stderr and "--app-root" in r.stderr and r.stderr.count("\n") == 1, r.stderr


# ------------------------------------------------------------------------------------------ backups.daily
async def test_backup_schedule_writes_script_and_schedule_runs_the_first_backup(cluster, dsn, tmp_path):
    app = write_app_dir(tmp_path / "app")
    crontab = app / DEMO_CRONTAB
    c = cfg(dsn, tmp_path, backup_dir=tmp_path / "backup", crontab_file=crontab)
    st, detail = await status(c, "backups.daily")
    assert st == "fail" and f"no backup entry in {crontab}" in detail, detail
    fix = MVP.item("backups.daily").fix
    plan = await plan_fix(c, fix.name, dict(fix.params), item_id="backups.daily")
    assert not plan.blocked, plan.blockers
    line = next(x for x in plan.commands if x.startswith("0 2 * * * "))
    assert "# pgpreflight backup files_db" in line
    assert any("pg_dump' --no-password | gzip -c" in x or "pg_dump --no-password | gzip -c" in x for x in plan.commands)
    res = await run_fix(c, fix.name, dict(fix.params), item_id="backups.daily", confirmations=1)
    assert res.ok, res.text()
    script = Path(res.figures["script"])
    assert script.parent == c.state_dir and script.stat().st_mode & 0o777 == 0o700
    text = script.read_text()
    assert cluster.password not in text and "PGPASSWORD=" not in text and "| gzip -c" in text
    assert crontab.read_text().splitlines()[-1] == line
    files = sorted((tmp_path / "backup").glob("files_db*")) or sorted((tmp_path / "backup").glob("metaextract-*.sql.gz"))
    assert len(files) == 1 and files[0].name.startswith("metaextract-")
    with gzip.open(files[0], "rt") as f:
        dump = f.read()
    assert "CREATE TABLE public.t" in dump
    st, detail = await status(c, "backups.daily")
    assert st == "pass" and "gzip -t ok" in detail and f"scheduled 0 2 * * * in {crontab}" in detail, detail
    # run again: one schedule line, not two; the old crontab kept beside it
    res = await run_fix(c, fix.name, dict(fix.params), item_id="backups.daily", confirmations=1)
    assert res.ok
    assert sum("# pgpreflight backup files_db" in x for x in crontab.read_text().splitlines()) == 1
    assert list(app.joinpath("ops").glob("crontab.pgpreflight-*.bak"))
    # the schedule gone: fails
    keep = crontab.read_text()
    crontab.write_text("SHELL=/bin/bash\n")
    st, detail = await status(c, "backups.daily")
    assert st == "fail" and "no backup entry" in detail, detail
    crontab.write_text(keep)
    assert (await status(c, "backups.daily"))[0] == "pass"
    # the newest file corrupt: fails
    bad = tmp_path / "backup" / "metaextract-99999999.sql.gz"
    bad.write_bytes(gzip.compress(b"x" * 1000)[:-12])
    os.utime(bad, (time.time() + 5, time.time() + 5))
    st, detail = await status(c, "backups.daily")
    assert st == "fail" and "metaextract-99999999.sql.gz" in detail and "gzip -t failed" in detail, detail


async def test_backup_schedule_read_only_refuses_and_changes_nothing(dsn, tmp_path):
    app = write_app_dir(tmp_path / "app")
    crontab = app / DEMO_CRONTAB
    before = crontab.read_text()
    fix = MVP.item("backups.daily").fix
    c = cfg(dsn, tmp_path, backup_dir=tmp_path / "backup", crontab_file=crontab, read_only=True)
    with pytest.raises(FixRefused):
        await run_fix(c, fix.name, dict(fix.params), item_id="backups.daily", confirmations=1)
    assert crontab.read_text() == before and not (tmp_path / "backup").exists()
    assert not list(c.state_dir.glob("*.sh")) if c.state_dir.exists() else True


# ------------------------------------------------------------------------------------------ pool.errors
def _ctx(tmp_path, **kw):
    return ProbeContext(app_root=tmp_path, state=ChecklistState(DatabaseIdentity("1", DB)), **kw)


async def _probe(dsn_, item_id, ctx):
    conn = await asyncpg.connect(dsn_)
    try:
        return (await run_checklist(conn, MVP, ctx, only=[item_id]))[item_id]
    finally:
        await conn.close()


async def test_log_scan_reads_the_demo_style_log_and_names_the_missing_privilege(cluster, dsn, tmp_path):
    r = await _probe(dsn, "pool.errors", _ctx(tmp_path))
    assert r.status == "pass", r.detail
    assert f"{cluster.datadir}/log/postgresql-" in r.detail and "none of 'too many connections'" in r.detail
    # a refused connection in the log makes it fail
    admin = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await admin.execute(f"ALTER ROLE {LOW_ROLE} CONNECTION LIMIT 0")
        with pytest.raises(asyncpg.PostgresError):
            await asyncpg.connect(cluster.dsn(DB, user=LOW_ROLE))
        await admin.execute(f"ALTER ROLE {LOW_ROLE} CONNECTION LIMIT -1")
    finally:
        await admin.close()
    low = cluster.dsn(DB, user=LOW_ROLE)
    r = await _probe(low, "pool.errors", _ctx(tmp_path))
    assert r.status == "manual" and f"GRANT pg_monitor TO {LOW_ROLE}" in r.detail, r.detail
    admin = await asyncpg.connect(cluster.dsn(DB))  # function grants are per database
    try:
        await admin.execute(f"GRANT pg_monitor TO {LOW_ROLE}")
        # on another host than the server, the file is read through the server: that needs EXECUTE
        r = await _probe(low, "pool.errors", _ctx(tmp_path, target_local=False))
        assert r.status == "manual" and "GRANT EXECUTE ON FUNCTION pg_read_file(text,bigint,bigint)" in r.detail \
            and LOW_ROLE in r.detail, r.detail
        await admin.execute(f"GRANT EXECUTE ON FUNCTION pg_read_file(text, bigint, bigint), pg_stat_file(text) "
                            f"TO {LOW_ROLE}")
        r = await _probe(low, "pool.errors", _ctx(tmp_path, target_local=False))
        assert r.status == "fail" and "(read through the server)" in r.detail, r.detail
    finally:
        await admin.execute(f"REVOKE pg_monitor FROM {LOW_ROLE}")
        await admin.execute(f"REVOKE EXECUTE ON FUNCTION pg_read_file(text, bigint, bigint), pg_stat_file(text) "
                            f"FROM {LOW_ROLE}")
        await admin.close()


# ------------------------------------------------------------------------------------------ separate_storage
async def test_separate_storage_compares_filesystems(cluster, dsn, tmp_path):
    same = tmp_path / "backup"
    same.mkdir()
    if os.stat(same).st_dev != os.stat(cluster.datadir).st_dev:
        pytest.skip("the test's tmp dir is not on the data directory's filesystem")
    r = await _probe(dsn, "backups.separate_storage", _ctx(tmp_path, backup_dir=same))
    assert r.status == "fail" and r.detail.startswith("same filesystem: backup dir") and " at /" in r.detail, r.detail
    assert str(cluster.datadir) in r.detail
    r = await _probe(dsn, "backups.separate_storage", _ctx(tmp_path, backup_dir="s3://bucket/metaextract"))
    assert r.status == "pass" and "s3://bucket/metaextract" in r.detail and "another host" in r.detail
    r = await _probe(cluster.dsn(DB, user=LOW_ROLE), "backups.separate_storage", _ctx(tmp_path, backup_dir=same))
    assert r.status == "manual" and f"GRANT pg_read_all_settings TO {LOW_ROLE}" in r.detail, r.detail
    r = await _probe(dsn, "backups.separate_storage", _ctx(tmp_path, backup_dir=tmp_path / "missing"))
    assert r.status == "manual" and "no backup directory" in r.detail and "--backup-dir" in r.detail
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(cluster.datadir).st_dev:
        pytest.skip("no other filesystem (/dev/shm) here")
    import tempfile

    other = Path(tempfile.mkdtemp(prefix="pgpreflight-test-", dir=shm))
    try:
        r = await _probe(dsn, "backups.separate_storage", _ctx(tmp_path, backup_dir=other))
        assert r.status == "pass" and f"backup dir {other} on tmpfs at /dev/shm" in r.detail, r.detail
        assert f"data directory {cluster.datadir} on " in r.detail
    finally:
        os.rmdir(other)


# ------------------------------------------------------------------------------------------ the demo
def _env():
    return {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}


def test_demo_no_ui_prints_the_dsn_first_and_every_automatic_item_can_pass_by_its_fix(tmp_path):
    """`pgpreflight demo --no-ui`: the DSN is the first stdout line; the demo's log is readable, its
    backups go to its own directory (on another filesystem when there is one) and its own crontab file;
    with the fixes run, pool.max, pool.errors, backups.daily and backups.separate_storage pass; on stop
    the backup directory is removed."""
    proc = subprocess.Popen([sys.executable, "-m", "tui", "demo", "--no-ui", "--no-workload"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        dsn = proc.stdout.readline().strip()
        assert dsn.startswith("postgresql://") and "@/metaextract?host=" in dsn, (dsn, proc.poll())
        ready = ""
        while "ready;" not in ready:
            ready = proc.stderr.readline()
            assert ready, "the demo ended before it was ready"
        words = ready.split()
        app = Path(words[words.index("--app-root") + 1])
        backup = Path(words[words.index("--backup-dir") + 1])
        crontab = Path(words[words.index("--crontab-file") + 1].rstrip(";"))
        assert crontab == app / DEMO_CRONTAB and crontab.is_file()
        base = app.parent
        assert backup.is_dir()
        if Path("/dev/shm").is_dir() and os.stat("/dev/shm").st_dev != os.stat(base).st_dev:
            assert backup.parent == Path("/dev/shm")
        flags = ["--dsn", dsn, "--app-root", str(app), "--backup-dir", str(backup), "--crontab-file", str(crontab),
                 "--state-dir", str(tmp_path / "state"), "--checklist", "images-mvp"]
        for item in ("pool.max", "backups.daily"):
            r = subprocess.run([sys.executable, "-m", "tui", "fix", item, "--yes", *flags], capture_output=True,
                               text=True, timeout=300, env=_env())
            assert r.returncode == 0, (item, r.stdout, r.stderr)
            assert f"verify {item}: pass" in r.stdout, r.stdout
        r = subprocess.run([sys.executable, "-m", "tui", "check", "--format", "json", *flags], capture_output=True,
                           text=True, timeout=300, env=_env())
        out = json.loads(r.stdout)
        items = {i["id"]: i for s in out.get("sections", []) for i in s.get("items", [])} or \
            {i["id"]: i for i in out.get("items", [])}
        want = ["pool.max", "pool.errors", "backups.daily"]
        if backup.parent == Path("/dev/shm"):
            want.append("backups.separate_storage")
        for iid in want:
            assert items[iid]["status"] == "pass", (iid, items[iid])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, proc.stderr.read()
    assert not backup.exists() and not base.exists()
