"""The checklist state file when things go wrong (issue 6): corrupt, unreadable, or impossible to write.

Decided behaviour (README "What it survives"): the check still runs and its result is printed with the
usual exit code (0/1); a corrupt file is moved aside (``*.corrupt-<time>``, byte for byte) with one
warning; a state that cannot be saved gives one warning line ("results not recorded") and the file
already there is left exactly as it was. Never a traceback."""
from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys

import asyncpg
import pytest

from tui.checklist.state import ChecklistState, DatabaseIdentity, save_state, state_path

pytestmark = [pytest.mark.faults, pytest.mark.pg]

DB = "sf_app"


def run_cli(*args: str, timeout: float = 60, preexec=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL, preexec_fn=preexec)


@pytest.fixture(scope="module")
def identity(cluster) -> DatabaseIdentity:
    async def setup():
        a = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            await a.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            await a.execute(f"CREATE DATABASE {DB}")
            sysid = await a.fetchval("SELECT system_identifier::text FROM pg_control_system()")
        finally:
            await a.close()
        return DatabaseIdentity(sysid, DB)
    return asyncio.run(setup())


def check(cluster, state_dir, *extra, preexec=None):
    return run_cli("check", "--format", "json", "--checklist", "general", "--dsn", cluster.dsn(DB),
                   "--state-dir", str(state_dir), *extra, preexec=preexec)


def assert_check_printed(res):
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode in (0, 1), (res.returncode, res.stderr)
    doc = json.loads(res.stdout)
    assert len(doc["items"]) == 12
    return doc


def seeded_state(state_dir, identity) -> bytes:
    """A real state file with a tick, a note and a fix run; returns its bytes."""
    st = ChecklistState(identity)
    st.set_tick("health.backup_restore", by="alice", at="2026-11-01T10:00:00+00:00")
    st.add_note("health.slow_query_log", "PR #12 turns it on", by="alice", at="2026-11-01T10:00:00+00:00")
    st.set_fix_run("backup_test", True, {"tables": 6, "rows": 1200}, item_id="health.backup_restore",
                   at="2026-11-01T10:00:00+00:00", by="alice")
    return save_state(state_dir, st).read_bytes()


CORRUPTIONS = {
    "truncated-json": b'{"version": 1, "ticks": {"health.xid_age": {"by": "al',
    "empty": b"",
    "not-utf8": b"\xff\xfe\x00garbage\x80\x81",
    "json-null": b"null",
    "inner-types": json.dumps({"version": 1, "ticks": {"a": 5}, "notes": {"b": "text"}, "results": {"c": 7},
                               "fix_runs": {"backup_test": [1]}, "peaks": {"connections": 3}}).encode(),
    "future-version": json.dumps({"version": 99}).encode(),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupt_state_is_moved_aside_and_the_check_runs(cluster, identity, tmp_path, kind):
    state_dir = tmp_path / "state"
    path = state_path(state_dir, identity)
    path.parent.mkdir(parents=True)
    path.write_bytes(CORRUPTIONS[kind])
    res = check(cluster, state_dir)
    assert_check_printed(res)
    warnings = [ln for ln in res.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "moved aside" in warnings[0], res.stderr
    aside = [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1, list(path.parent.iterdir())
    assert aside[0].read_bytes() == CORRUPTIONS[kind], "the corrupt file is kept byte for byte"
    fresh = json.loads(path.read_text())
    assert fresh["version"] == 1 and "health.xid_age" in fresh["results"]
    # a second run finds a good file: no warning, nothing more moved aside
    again = check(cluster, state_dir)
    assert_check_printed(again)
    assert "warning" not in again.stderr
    assert len([p for p in path.parent.iterdir() if ".corrupt-" in p.name]) == 1


def test_state_dir_under_a_regular_file(cluster, identity, tmp_path):
    """A path whose parent is a file: creating it fails even for root (chmod would not)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("I am a file\n")
    state_dir = blocker / "state"
    res = check(cluster, state_dir)
    assert_check_printed(res)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "warning" in lines[0] and "not recorded" in lines[0], res.stderr
    assert str(state_dir) in lines[0]
    assert blocker.read_text() == "I am a file\n"
    rep = run_cli("report", "--checklist", "general", "--dsn", cluster.dsn(DB), "--state-dir", str(state_dir))
    assert rep.returncode == 1 and "Traceback" not in rep.stderr, rep.stderr
    assert "# Launch sign-off" in rep.stdout


def _no_big_files():
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))  # writes past 64 bytes fail with EFBIG


@pytest.mark.parametrize("how", ["file-size-limit", "lock-is-a-directory"])
def test_unwritable_state_keeps_the_existing_file(cluster, identity, tmp_path, how):
    state_dir = tmp_path / "state"
    original = seeded_state(state_dir, identity)
    path = state_path(state_dir, identity)
    preexec = None
    if how == "file-size-limit":
        preexec = _no_big_files
    else:
        path.with_name(path.name + ".lock").mkdir()
    before = sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock"))
    res = check(cluster, state_dir, preexec=preexec)
    doc = assert_check_printed(res)
    # the tick recorded before is still applied to the result
    assert {i["id"]: i for i in doc["items"]}["health.backup_restore"]["status"] in ("pass", "fail")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not recorded" in lines[0], res.stderr
    assert path.read_bytes() == original, "the existing state must not change"
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")) == before, \
        "no temp file left behind"


def test_ticks_survive_a_corrupt_neighbour(cluster, identity, tmp_path):
    """Another database's corrupt file does not touch this one's state."""
    state_dir = tmp_path / "state"
    original = seeded_state(state_dir, identity)
    other = state_path(state_dir, DatabaseIdentity(identity.system_identifier, "other"))
    other.write_bytes(b"{broken")
    res = check(cluster, state_dir)
    assert_check_printed(res)
    assert "warning" not in res.stderr
    data = json.loads(state_path(state_dir, identity).read_text())
    assert data["ticks"] == json.loads(original)["ticks"]
    assert data["notes"] == json.loads(original)["notes"]
    assert other.read_bytes() == b"{broken"


def test_report_to_an_unwritable_path(cluster, identity, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run_cli("report", "--checklist", "general", "--dsn", cluster.dsn(DB), "--state-dir", str(tmp_path / "st"),
                  "-o", str(blocker / "signoff.md"))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and "cannot write" in errors[0], res.stderr
    assert blocker.read_text() == "x"


def test_fix_refuses_when_its_audit_log_cannot_be_written(tmp_path):
    """No audit, no write: a fix with an unwritable state dir changes nothing on the server."""
    from tui.cluster import start_cluster

    c = start_cluster(preload_pg_stat_statements=False)
    try:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        res = run_cli("fix", "health.slow_query_log", "--yes", "--checklist", "general", "--dsn", c.dsn("postgres"),
                      "--state-dir", str(blocker / "state"))
        assert res.returncode == 2, res.stdout + res.stderr
        assert "Traceback" not in res.stderr
        errors = [ln for ln in res.stderr.splitlines() if "error" in ln]
        assert len(errors) == 1 and "audit log" in errors[0], res.stderr

        async def setting():
            conn = await asyncpg.connect(c.dsn("postgres"))
            try:
                return (await conn.fetchval("SELECT setting FROM pg_settings WHERE name = 'log_min_duration_statement'"),
                        await conn.fetchval("SELECT count(*) FROM pg_file_settings WHERE sourcefile LIKE '%auto.conf' "
                                            "AND name = 'log_min_duration_statement'"))
            finally:
                await conn.close()
        assert asyncio.run(setting()) == ("-1", 0), "nothing was changed"
    finally:
        c.destroy()


MID_FIX_CHECKLIST = '''
name = "midfix"
title = "Mid-fix"
[[section]]
id = "s"
title = "S"
[[section.item]]
id = "s.idx"
title = "big has an index on v"
fix = { name = "create_index" }
[section.item.probe]
kind = "index_exists"
table = "big"
indexes = [{ name = "big_v_idx", columns = ["v"] }]
[[section.item]]
id = "s.person"
title = "Someone watched"
manual = true
'''


def test_server_goes_away_in_the_middle_of_a_fix(tmp_path):
    """CREATE INDEX CONCURRENTLY under way, then an immediate shutdown: the fix fails in one result that
    does not claim it left nothing, the ticks in the state survive, and once the server is back the
    check finds the INVALID index it left."""
    import time

    from tui.cluster import start_cluster

    # durable commits, so what the build committed before the crash is really there afterwards
    c = start_cluster(settings={"maintenance_work_mem": "'1MB'", "fsync": "on", "synchronous_commit": "on"},
                      preload_pg_stat_statements=False)
    try:
        async def setup():
            a = await asyncpg.connect(c.dsn("postgres"))
            try:
                await a.execute("CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v "
                                "FROM generate_series(1, 3000000) g")
                return DatabaseIdentity(await a.fetchval("SELECT system_identifier::text FROM pg_control_system()"),
                                        "postgres")
            finally:
                await a.close()
        ident = asyncio.run(setup())
        cl = tmp_path / "midfix.toml"
        cl.write_text(MID_FIX_CHECKLIST)
        state_dir = tmp_path / "state"
        st = ChecklistState(ident)
        st.set_tick("s.person", by="alice", at="2026-11-01T10:00:00+00:00")
        save_state(state_dir, st)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
        proc = subprocess.Popen([sys.executable, "-m", "tui", "fix", "s.idx", "--yes", "--checklist", str(cl),
                                 "--dsn", c.dsn("postgres"), "--state-dir", str(state_dir), "--connect-timeout", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                stdin=subprocess.DEVNULL)
        try:
            async def build_running():
                a = await asyncpg.connect(c.dsn("postgres"))
                try:
                    deadline = time.monotonic() + 30
                    while not await a.fetchval("SELECT count(*) FROM pg_stat_progress_create_index "
                                               "WHERE phase LIKE 'building%'"):
                        assert time.monotonic() < deadline, "the index build never started"
                        await asyncio.sleep(0.02)
                finally:
                    await a.close()
            asyncio.run(build_running())
            c.stop("immediate")
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode not in (0, None), out
        assert "Traceback" not in err, err
        assert "FAILED" in out
        left = [ln for ln in out.splitlines() if "left behind:" in ln]
        assert left and "nothing" not in left[0] and "unknown" in left[0], out
        # the checklist state is intact: the tick is still there, the file is valid
        data = json.loads(state_path(state_dir, ident).read_text())
        assert data["ticks"]["s.person"]["by"] == "alice"
        audit = [json.loads(ln) for ln in (state_dir / "audit.jsonl").read_text().splitlines()]
        assert [a["outcome"].split(":")[0] for a in audit][-2:] == ["started", "failed"], audit
        # back up: the check tells the truth about what the interrupted build left
        c.start()
        res = run_cli("check", "--format", "json", "--checklist", str(cl), "--dsn", c.dsn("postgres"),
                      "--state-dir", str(state_dir))
        item = {i["id"]: i for i in json.loads(res.stdout)["items"]}["s.idx"]
        assert item["status"] == "fail" and "INVALID" in item["detail"], item
        assert json.loads(state_path(state_dir, ident).read_text())["ticks"]["s.person"]["by"] == "alice"
    finally:
        c.destroy()
