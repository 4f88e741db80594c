"""Hostile input (issue 6): names with quotes, semicolons, spaces, unicode and the maximum length;
query texts and application names with control characters and ANSI escapes; query texts of megabytes;
a thousand sessions. Everything goes through the real CLI against a real server."""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time

import asyncpg
import pytest

from tui.cluster import start_cluster

pytestmark = [pytest.mark.faults, pytest.mark.pg]

DB = "hx_app"
SCHEMA = 'we"ird; sch ema'
TABLE = 'tãblé "x"; DROP TABLE orders; --'
LONG = "l" + "ü" * 31  # 63 bytes: the longest name PostgreSQL keeps
INDEX = 'idx; "quoted" ü'
COLUMN = "Weird Col"
ESC_TABLE = "esc\x1b[31mred\x07"
ESCAPES = ["\x1b[2J", "\x1b]0;title\x07", "\x07", "\r", "\x1b[31m"]


def qi(name: str) -> str:
    """PostgreSQL's quote_ident for these names (none is a plain lower-case identifier)."""
    return '"' + name.replace('"', '""') + '"'


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def assert_terminal_safe(raw: bytes, what: str) -> None:
    assert b"\x1b" not in raw, f"raw ESC reached {what}"
    assert b"\x07" not in raw, f"raw BEL reached {what}"
    assert b"\r" not in raw, f"raw CR reached {what}"


@pytest.fixture(scope="module")
def hostile_db(cluster):
    async def setup():
        admin = await asyncpg.connect(cluster.dsn("postgres"))
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            await admin.execute(f"CREATE DATABASE {DB}")
        finally:
            await admin.close()
        c = await asyncpg.connect(cluster.dsn(DB))
        try:
            assert len(LONG.encode()) == 63
            await c.execute(f"CREATE SCHEMA {qi(SCHEMA)}")
            await c.execute(f"CREATE TABLE {qi(SCHEMA)}.{qi(TABLE)} (id int NOT NULL, {qi(COLUMN)} text)")
            await c.execute(f"INSERT INTO {qi(SCHEMA)}.{qi(TABLE)} SELECT g, repeat('v', 200) "
                            f"FROM generate_series(1, 5000) g")
            await c.execute(f"CREATE INDEX {qi(INDEX)} ON {qi(SCHEMA)}.{qi(TABLE)} ({qi(COLUMN)})")
            await c.execute(f"CREATE TABLE {qi(LONG)} (id int PRIMARY KEY)")
            await c.execute(f"INSERT INTO {qi(LONG)} SELECT generate_series(1, 3000)")
            await c.execute(f"CREATE TABLE {qi(ESC_TABLE)} (id int)")
            await c.execute(f"INSERT INTO {qi(ESC_TABLE)} SELECT generate_series(1, 2000)")
            await c.execute("ANALYZE")
            back = await c.fetchval("SELECT relname FROM pg_class WHERE relname = $1", LONG)
            assert back == LONG, "the 63-byte name was not kept whole"
        finally:
            await c.close()
    asyncio.run(setup())
    return cluster


# ------------------------------------------------------------------------------------------ names
def test_hostile_names_in_snapshot_json_and_text(hostile_db, tmp_path):
    res = run_cli("snapshot", "--format", "json", "--dsn", hostile_db.dsn(DB), "--state-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    tables = {(t["schema"], t["name"]): t for t in json.loads(res.stdout)["tables"]["tables"]}
    assert tables[(SCHEMA, TABLE)]["qualified_name"] == f"{qi(SCHEMA)}.{qi(TABLE)}"
    assert tables[("public", LONG)]["qualified_name"] == f"public.{qi(LONG)}"
    assert ("public", ESC_TABLE) in tables  # exact in JSON (escaped by the encoder), never dropped

    text = run_cli("snapshot", "--format", "text", "--dsn", hostile_db.dsn(DB), "--state-dir", str(tmp_path))
    assert text.returncode == 0, text.stderr
    assert_terminal_safe(text.stdout, "snapshot text")
    out = text.stdout.decode()
    assert f"{qi(SCHEMA)}.{qi(TABLE)}" in out
    assert f"public.{qi(LONG)}" in out
    assert "esc" in out and "red" in out  # the table is listed, its escape made harmless


def _checklist_toml(path) -> None:
    s = json.dumps  # JSON strings are valid TOML basic strings
    path.write_text(f"""
name = "hostile"
title = "Hostile names"

[[section]]
id = "names"
title = "Names"

[[section.item]]
id = "names.table"
title = "The weird table exists"
[section.item.probe]
kind = "table_exists"
schema = {s(SCHEMA)}
tables = [{s(TABLE)}, {s("public." + LONG)}]

[[section.item]]
id = "names.columns"
title = "Its columns"
[section.item.probe]
kind = "columns"
schema = {s(SCHEMA)}
table = {s(TABLE)}
columns = {{ id = "integer", {s(COLUMN)} = "text" }}

[[section.item]]
id = "names.index"
title = "Its index"
[section.item.probe]
kind = "index_exists"
schema = {s(SCHEMA)}
table = {s(TABLE)}
indexes = [{{ columns = [{s(COLUMN)}] }}]

[[section.item]]
id = "names.not_null"
title = "id is NOT NULL"
[section.item.probe]
kind = "constraint"
schema = {s(SCHEMA)}
table = {s(TABLE)}
type = "not_null"
columns = ["id"]

[[section.item]]
id = "names.missing"
title = "A table that is not there"
[section.item.probe]
kind = "table_exists"
table = {s('no "such"; table')}

[[section.item]]
id = "names.esc"
title = "The table with an escape in its name has an index"
[section.item.probe]
kind = "index_exists"
table = {s(ESC_TABLE)}
indexes = [{{ columns = ["id"] }}]
""", encoding="utf-8")


def test_checklist_naming_hostile_tables(hostile_db, tmp_path):
    cl = tmp_path / "hostile.toml"
    _checklist_toml(cl)
    res = run_cli("check", "--format", "json", "--checklist", str(cl), "--dsn", hostile_db.dsn(DB),
                  "--state-dir", str(tmp_path / "state"))
    assert res.returncode == 1, res.stderr  # names.missing fails
    items = {i["id"]: i for i in json.loads(res.stdout)["items"]}
    for ok in ("names.table", "names.columns", "names.index", "names.not_null"):
        assert items[ok]["status"] == "pass", items[ok]
    assert INDEX in items["names.index"]["detail"]
    assert items["names.missing"]["status"] == "fail"
    assert 'no "such"; table' in items["names.missing"]["detail"]
    assert items["names.esc"]["status"] == "fail"  # no index: a finding, not an error
    assert "\x1b" not in items["names.esc"]["detail"] and "\x07" not in items["names.esc"]["detail"]

    text = run_cli("check", "--format", "text", "--checklist", str(cl), "--dsn", hostile_db.dsn(DB),
                   "--state-dir", str(tmp_path / "state"))
    assert text.returncode == 1
    assert_terminal_safe(text.stdout, "check text")
    assert_terminal_safe(text.stderr, "check stderr")
    # the bundled general checklist quotes what it finds (%I): the table without a primary key
    gen = run_cli("check", "--format", "json", "--checklist", "general", "--dsn", hostile_db.dsn(DB),
                  "--state-dir", str(tmp_path / "state"))
    nopk = {i["id"]: i for i in json.loads(gen.stdout)["items"]}["health.tables_without_pk"]
    assert nopk["status"] in ("fail", "warn") and f"{qi(SCHEMA)}.{qi(TABLE)}" in nopk["detail"], nopk
    rep = run_cli("report", "--checklist", str(cl), "--dsn", hostile_db.dsn(DB), "--state-dir", str(tmp_path / "s"))
    assert rep.returncode == 1, rep.stderr  # printed; not ready
    assert_terminal_safe(rep.stdout, "report")


# ------------------------------------------------------------------------------------------ escapes
async def test_escapes_in_query_text_and_application_name(hostile_db, tmp_path):
    app_name = "evil\x1b]0;pwned\x07app\x1b[2J"
    marker = "hx_escape_marker"
    victim = await asyncpg.connect(hostile_db.dsn(DB), server_settings={"application_name": app_name})
    idle = await asyncpg.connect(hostile_db.dsn(DB), server_settings={"application_name": app_name})
    admin = await asyncpg.connect(hostile_db.dsn(DB))
    # the running statement's text carries every escape (in a comment and in a literal)
    hostile_sql = (f"SELECT pg_sleep(30), '{''.join(ESCAPES)}' /* {marker} {''.join(ESCAPES)} */")
    task = asyncio.ensure_future(victim.execute(hostile_sql))
    try:
        await idle.execute(f"SELECT '{marker}\x1b[2J\x07\r'")  # the idle one shows its last statement
        deadline = time.monotonic() + 10
        while not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                       "AND query LIKE $1", f"%{marker}%"):
            assert time.monotonic() < deadline, "the hostile statement never started"
            await asyncio.sleep(0.05)
        res = await asyncio.to_thread(run_cli, "snapshot", "--format", "text", "--dsn", hostile_db.dsn(DB),
                                      "--state-dir", str(tmp_path))
        assert res.returncode == 0, res.stderr
        assert_terminal_safe(res.stdout, "snapshot text")
        out = res.stdout.decode()
        assert marker in out, "the hostile session must still be listed"
        assert "evil" in out and "pwned" not in out.split("evil")[0][-5:]  # listed under its cleaned name
        js = await asyncio.to_thread(run_cli, "snapshot", "--format", "json", "--dsn", hostile_db.dsn(DB),
                                     "--state-dir", str(tmp_path))
        assert js.returncode == 0
        assert_terminal_safe(js.stdout, "snapshot json")
        snap = json.loads(js.stdout)
        ours = [s for s in snap["connections"]["sessions"] if marker in s["query"]]
        assert ours, snap["connections"]["sessions"]
        for s in ours:
            for field in ("query", "application_name"):
                assert not any(ch in s[field] for ch in "\x1b\x07\r"), (field, s[field])
            assert s["application_name"].startswith("evil")
        for label in snap["connections"]["by_application"]:
            assert not any(ch in label for ch in "\x1b\x07\r"), label
        for st in snap["slow_queries"]["statements"]:
            assert not any(ch in st["query"] for ch in "\x1b\x07\r"), st["query"]
    finally:
        task.cancel()
        for c in (victim, idle):
            c.terminate()
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE $1 "
                            "AND pid <> pg_backend_pid()", f"%{marker}%")
        await admin.close()


# ------------------------------------------------------------------------------------------ size and count
@pytest.fixture(scope="module")
def big_cluster():
    c = start_cluster(settings={"track_activity_query_size": "1048576", "max_connections": "1200"})
    yield c
    c.destroy()


async def test_megabyte_query_text_is_truncated(big_cluster, tmp_path):
    marker = "hx_big_marker"
    big = "x" * (3 * 1024 * 1024)
    conn = await asyncpg.connect(big_cluster.dsn("postgres"))
    admin = await asyncpg.connect(big_cluster.dsn("postgres"))
    task = asyncio.ensure_future(conn.execute(f"SELECT pg_sleep(30) /* {marker} {big} */"))
    try:
        deadline = time.monotonic() + 10
        while not (n := await admin.fetchval("SELECT max(octet_length(query)) FROM pg_stat_activity "
                                             "WHERE query LIKE $1 AND state = 'active'", f"%{marker}%")):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert n > 1_000_000, "the server keeps about 1 MB of it (track_activity_query_size)"
        t0 = time.monotonic()
        res = await asyncio.to_thread(run_cli, "snapshot", "--format", "json", "--dsn", big_cluster.dsn("postgres"),
                                      "--state-dir", str(tmp_path))
        elapsed = time.monotonic() - t0
        assert res.returncode == 0, res.stderr
        assert len(res.stdout) < 200_000, f"snapshot JSON is {len(res.stdout)} bytes"
        snap = json.loads(res.stdout)
        ours = [s for s in snap["connections"]["sessions"] if marker in s["query"]]
        assert ours and all(len(s["query"]) <= 4000 for s in ours)
        assert all(len(st["query"]) <= 8000 for st in snap["slow_queries"]["statements"])
        text = await asyncio.to_thread(run_cli, "snapshot", "--format", "text", "--dsn", big_cluster.dsn("postgres"),
                                       "--state-dir", str(tmp_path))
        assert text.returncode == 0
        assert max(len(line) for line in text.stdout.decode().splitlines()) <= 400
        print(f"\nmegabyte query: snapshot json {len(res.stdout)} bytes in {elapsed:.2f} s")
    finally:
        task.cancel()
        conn.terminate()
        # the server would keep sleeping until it next writes to the client: end that backend now
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE $1 "
                            "AND pid <> pg_backend_pid()", f"%{marker}%")
        await admin.close()


async def test_thousand_sessions(big_cluster, tmp_path):
    n_sessions = 1000
    conns: list[asyncpg.Connection] = []
    try:
        for start in range(0, n_sessions, 50):
            conns += await asyncio.gather(*(asyncpg.connect(big_cluster.dsn("postgres"),
                                                            server_settings={"application_name": "hx_crowd"})
                                            for _ in range(start, min(start + 50, n_sessions))))
        t0 = time.monotonic()
        res = await asyncio.to_thread(run_cli, "snapshot", "--format", "json", "--dsn", big_cluster.dsn("postgres"),
                                      "--state-dir", str(tmp_path))
        elapsed_json = time.monotonic() - t0
        assert res.returncode == 0, res.stderr
        snap = json.loads(res.stdout)
        c = snap["connections"]
        assert c["total"] >= n_sessions
        assert c["by_application"].get("hx_crowd") == n_sessions
        assert len(c["sessions"]) <= 200, "the list is capped"
        assert c["sessions_omitted"] == c["total"] - len(c["sessions"]) >= n_sessions - 200
        t0 = time.monotonic()
        text = await asyncio.to_thread(run_cli, "snapshot", "--format", "text", "--dsn", big_cluster.dsn("postgres"),
                                       "--state-dir", str(tmp_path))
        elapsed_text = time.monotonic() - t0
        assert text.returncode == 0
        assert f"and {c['sessions_omitted']} more sessions not listed" in text.stdout.decode()
        # the whole process, Python start-up included
        assert elapsed_json < 5.0 and elapsed_text < 5.0, (elapsed_json, elapsed_text)
        print(f"\n{n_sessions} sessions: snapshot json {elapsed_json:.2f} s, text {elapsed_text:.2f} s "
              f"(process start included), {len(res.stdout)} bytes")
        await _monitor_with_a_crowd(big_cluster, tmp_path, n_sessions)
    finally:
        await asyncio.gather(*(c.close(timeout=5) for c in conns), return_exceptions=True)


# ------------------------------------------------------------------------------------------ checklist files
GOOD_HEAD = '''name = "typed"
title = "Typed"

[[section]]
id = "s"
title = "S"
'''

# (case id, the item's body, the key whose line the error must name, a word the problem must contain)
WRONG_TYPES = [
    ("severity-int", 'id = "s.a"\ntitle = "A"\nseverity = 3\nmanual = true\n', "severity", "string"),
    ("title-array", 'id = "s.a"\ntitle = [1]\nmanual = true\n', "title", "string"),
    ("kind-int", 'id = "s.a"\ntitle = "A"\n[section.item.probe]\nkind = 5\n', "kind", "string"),
    ("table-bool", 'id = "s.a"\ntitle = "A"\n[section.item.probe]\nkind = "table_exists"\ntable = true\n',
     "table", "string"),
    ("tables-string", 'id = "s.a"\ntitle = "A"\n[section.item.probe]\nkind = "table_exists"\ntables = "orders"\n',
     "tables", "array"),
    ("timeout-string", 'id = "s.a"\ntitle = "A"\n[section.item.probe]\nkind = "sql"\nquery = "SELECT 1"\n'
                       'timeout_ms = "soon"\n', "timeout_ms", "integer"),
    ("index-columns-string", 'id = "s.a"\ntitle = "A"\n[section.item.probe]\nkind = "index_exists"\n'
                             'table = "t"\nindexes = [{ columns = "id" }]\n', "indexes", "columns"),
    ("manual-string", 'id = "s.a"\ntitle = "A"\nmanual = "yes"\n', "manual", "true or false"),
]


def _line_of(text: str, key: str, after: str = "[[section.item]]") -> int:
    """The line of ``key =`` after the line ``after`` (the item), else anywhere."""
    lines = text.splitlines()
    start = next((n for n, line in enumerate(lines) if line.strip() == after), 0)
    for n, line in enumerate(lines[start:], start + 1):
        if line.lstrip().startswith(f"{key} ="):
            return n
    for n, line in enumerate(lines, 1):
        if line.lstrip().startswith(f"{key} ="):
            return n
    raise AssertionError(key)


@pytest.mark.parametrize("case, body, key, word", WRONG_TYPES, ids=[c[0] for c in WRONG_TYPES])
@pytest.mark.parametrize("command", ["check", "report", "fix"])
def test_checklist_with_wrong_types(cluster, tmp_path, case, body, key, word, command):
    text = GOOD_HEAD + "\n[[section.item]]\n" + body
    f = tmp_path / f"{case}.toml"
    f.write_text(text, encoding="utf-8")
    args = ["fix", "s.a", "--dry-run"] if command == "fix" else [command]
    res = run_cli(*args, "--checklist", str(f), "--dsn", cluster.dsn("postgres"), "--state-dir", str(tmp_path / "st"))
    err = res.stderr.decode()
    assert res.returncode == 2, (res.returncode, err, res.stdout)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"pgpreflight: error: {f}:{_line_of(text, key)}: "), (lines[0], _line_of(text, key))
    assert key in lines[0] and word in lines[0], lines[0]
    assert res.stdout == b""


def test_checklist_with_unknown_keys_warns_and_runs(cluster, tmp_path):
    text = GOOD_HEAD.replace('title = "Typed"', 'title = "Typed"\nowner = "ops"') + '''
[[section.item]]
id = "s.a"
title = "A"
colour = "red"
fix = { name = "slow_query_log", params = { value_ms = 1000 }, when = "now" }
[section.item.probe]
kind = "setting"
name = "log_min_duration_statement"
op = "between"
value = [0, 1000]
tabel = "typo"
'''
    f = tmp_path / "unknown.toml"
    f.write_text(text, encoding="utf-8")
    common = ["--checklist", str(f), "--dsn", cluster.dsn("postgres"), "--state-dir", str(tmp_path / "st")]
    for args in (["check", "--format", "json"], ["report"], ["fix", "s.a", "--dry-run"]):
        res = run_cli(*args, *common)
        err = res.stderr.decode()
        assert res.returncode in (0, 1), (args, err)
        assert "Traceback" not in err
        warnings = [ln for ln in err.splitlines() if ln.startswith("pgpreflight: warning:")]
        for key in ("owner", "colour", "when", "tabel"):
            hit = [w for w in warnings if repr(key) in w]
            assert hit, (args, key, err)
            assert f"{f}:{_line_of(text, key) if key != 'when' else _line_of(text, 'fix')}:" in hit[0], hit[0]
        if args[0] == "check":
            assert json.loads(res.stdout)["items"][0]["id"] == "s.a"
        elif args[0] == "report":
            assert "s.a" in res.stdout.decode()
        else:
            assert "dry run: nothing was changed" in res.stdout.decode()


async def _monitor_with_a_crowd(cluster, tmp_path, n_sessions: int) -> None:
    """The live TUI with the crowd: idle sessions shown on 'i', the list capped, the rest counted,
    and keys still answered promptly."""
    from textual.widgets import DataTable, Static

    from tui.config import Config, resolve_target
    from tui.screens.app import PreflightApp

    app = PreflightApp(Config(target=resolve_target(cluster.dsn("postgres"), env={}), state_dir=tmp_path / "st",
                              refresh=0.5, app_root=tmp_path))

    async def until(pilot, predicate, what, timeout=20.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await pilot.pause(0.05)

    def summary() -> str:
        return str(app.query_one("#conn-summary", Static).render())

    async with app.run_test(size=(120, 40)) as pilot:
        def total() -> int:
            m = re.search(r"sessions (\d+)/", summary())
            return int(m.group(1)) if m else 0

        await until(pilot, lambda: total() >= n_sessions, "the crowd counted")
        await pilot.press("i")
        await until(pilot, lambda: "not listed" in summary(), "the idle crowd listed, capped")
        table = app.query_one("#sessions", DataTable)
        assert 0 < table.row_count <= 200, table.row_count
        m = re.search(r"(\d+) not listed", summary())
        assert m and int(m.group(1)) >= n_sessions - table.row_count, summary()
        before = app.paused
        t0 = time.monotonic()
        await pilot.press("p")
        assert app.paused is not before and time.monotonic() - t0 < 1.0
        await pilot.press("p")
