"""Probe kinds: each turns an item into an :class:`ItemResult` (pass, fail, warn, manual, error) with a
one-line detail of evidence. asyncpg, no textual.

Every database probe runs in its own READ ONLY transaction under its own ``SET LOCAL
statement_timeout``, so a slow probe cannot stall the others and no probe can write. A probe that
names a missing table fails with that reason; any other database error makes that item ``error`` and
the rest still run. Identifiers from files or from the database are passed as parameters
(``to_regclass(quote_ident($1))``) or quoted by :func:`tui.db.catalog.quote_ident`, never pasted into SQL. The only SQL
text taken verbatim is the SQL written in the checklist file itself (``sql`` and ``explain`` probes):
a checklist file is trusted like code.

Probe kinds and their parameters (every kind also takes ``on_fail = "warn"`` and ``timeout_ms``):

- ``sql``: ``query``; ``expect = "empty"`` (rows are findings: fail listing the first column),
  ``"nonempty"``, ``"status"`` (the row's ``status`` and ``detail`` columns), or ``op`` + ``value``
  on the first column of the first row. ``inputs = ["catalog"]`` (and/or ``"settings"``) says the result
  depends on nothing else, so the check service may reuse it until they change (tui.checklist.reuse).
- ``table_exists``: ``table`` or ``tables`` (``"schema.t"`` allowed, ``"a|b"`` for alternatives).
- ``columns``: ``table`` + ``columns = {name = "type"}``, or ``tables = [{table, columns}]``; ``exact``.
- ``index_exists``: ``table``, ``indexes = [{name, columns = ["col DESC", "lower(email)"], unique?,
  using?, where?}]``: matched by columns, order and expressions, whatever the index is called.
- ``constraint``: ``table`` + ``type`` (check | unique | not_null | foreign_key | primary_key) +
  ``columns`` / ``expression`` / ``references``, or ``constraints = [...]`` of those.
- ``extension``: ``name``; ``preload = true`` also wants it in shared_preload_libraries.
- ``setting``: ``name``, ``op`` (==, !=, <, <=, >, >=, between, in, not in), ``value``; a pending
  restart is a warning.
- ``file_pattern``: ``file`` (under --app-root), ``pattern`` (first group is the value), ``op``,
  ``value``, ``label``: "max: 10 in server/db.ts line 28, needs ≥ 20".
- ``migrations``: ``dir`` (under --app-root), ``tracking_table`` + ``version_column``, ``expect_count``;
  without a tracking table, the tables the files CREATE must exist.
- ``explain``: ``queries = [{table, sql}]``: EXPLAIN (no ANALYZE) must show an index scan on ``table``.
- ``backup_files``: ``dir`` (``--backup-dir`` overrides it), ``pattern``, ``max_age_hours``: the newest
  file is young enough and passes ``gzip -t`` (.gz) or has a pg_dump header (.dump). ``schedule``: also
  wants a daily entry that makes them: ``"crontab"`` (``--crontab-file`` when given, else ``crontab -l``)
  or a crontab file under --app-root.
- ``separate_storage``: ``dir`` (``--backup-dir`` overrides it), ``remote``: a backup target on another
  host (``s3://…``, ``host:/path``) passes; a local one passes when its filesystem (st_dev) is not the
  data directory's; manual when the data directory is hidden or on another host.
- ``last_run``: ``fix``, ``max_age_hours``, ``require = {figure = ">= 20"}``: reads the state's fix_runs.
- ``log_scan``: ``patterns``, ``path`` (else the server's current log file: read here when the server runs
  on this host, else through pg_read_file); manual when unreadable, naming the grant that would let it.
- ``connection_headroom``: ``warn_ratio``, ``fail_ratio``: peak use (kept in the state) against
  max_connections less the reserved slots.
- ``items``: ``refs``: the worst status of the items named (the success criteria).
- ``manual``: a person confirms; a tick makes it pass.
"""
from __future__ import annotations

import asyncio
import fnmatch
import gzip
import json
import os
import re
import shutil
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

import asyncpg

from tui.checklist import hostfiles
from tui.checklist.spec import Checklist, Item
from tui.checklist.state import ChecklistState, parse_iso
from tui.db.catalog import (index_label, match_index, norm_check, norm_expr, quote_ident, resolve_table,
                            split_name, table_indexes)
from tui.model.checklist import ERROR, FAIL, MANUAL, PASS, WARN, ItemResult
from tui.model.format import clean_text

qident = quote_ident  # the name tests and older callers know

OP_SYMBOL = {"==": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥"}
NO_DB_KINDS = {"file_pattern", "backup_files", "last_run", "manual", "items"}
#: Locations a backup_files/separate_storage ``dir`` names when nothing else is known (the seed's).
DEFAULT_BACKUP_DIR = "/backup"


@dataclass
class ProbeContext:
    app_root: Path = field(default_factory=Path.cwd)
    state: ChecklistState | None = None
    statement_timeout_ms: int = 2000
    target_local: bool = True
    now: float = field(default_factory=time.time)
    backup_dir: Path | str | None = None  # --backup-dir: overrides the items' dir
    crontab_file: Path | None = None  # --crontab-file: the schedule instead of the user's crontab


class ProbeFailed(Exception):
    """A probe found a problem that is a failure (e.g. a missing table), not an error."""


def _compare(actual: Any, op: str, expected: Any) -> bool:
    def num(x):
        if isinstance(x, bool):
            return x
        if isinstance(x, (int, float)):
            return x
        try:
            return float(str(x).strip())
        except (TypeError, ValueError):
            return str(x)

    a = num(actual)
    if op == "between":
        lo, hi = (num(v) for v in expected)
        return lo <= a <= hi
    if op in ("in", "not in"):
        vals = [num(v) for v in expected]
        return (a in vals) == (op == "in")
    e = num(expected)
    if type(a) is not type(e) and not (isinstance(a, (int, float)) and isinstance(e, (int, float))):
        a, e = str(actual), str(expected)
    return {"==": a == e, "!=": a != e, "<": a < e, "<=": a <= e, ">": a > e, ">=": a >= e}[op]


def _needs(op: str, value: Any, unit: str = "") -> str:
    u = f" {unit}" if unit else ""
    if op == "between":
        return f"between {value[0]} and {value[1]}{u}"
    if op in ("in", "not in"):
        return f"{op} {', '.join(str(v) for v in value)}"
    return f"{OP_SYMBOL.get(op, op)} {value}{u}"


def _short(items: Iterable[str], limit: int = 5) -> str:
    items = list(items)
    head = ", ".join(items[:limit])
    return head + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def _one_line(text: str, width: int = 160) -> str:
    """Evidence is one line, safe for a terminal: names from the database may carry escapes."""
    t = " ".join(clean_text(str(text), max(width * 4, 1000)).split())
    return t if len(t) <= width else t[: width - 1] + "…"


def _fail(item: Item, detail: str) -> tuple[str, str]:
    return (WARN if item.probe.get("on_fail") == "warn" else FAIL), detail


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 5400:
        return f"{int(seconds // 60)} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# ----------------------------------------------------------------------------------------- sql
async def probe_sql(conn, item: Item, ctx: ProbeContext):
    p = item.probe.params
    rows = await conn.fetch(p["query"])
    expect = p.get("expect")
    if expect is None:
        if "op" in p:
            expect = "value"
        elif rows and {"status", "detail"} <= set(rows[0].keys()):
            expect = "status"
        else:
            expect = "nonempty"
    if expect == "status":
        if not rows:
            return FAIL, "the query returned no row"
        status = str(rows[0]["status"]).lower()
        if status not in (PASS, FAIL, WARN, MANUAL, ERROR):
            return ERROR, f"the query returned status {status!r}"
        if status == FAIL and p.get("on_fail") == "warn":
            status = WARN
        return status, _one_line(rows[0]["detail"] or "")
    if expect == "empty":
        if not rows:
            return PASS, str(p.get("pass_detail") or "none found")
        labels = [_one_line(str(r[0]), 80) for r in rows]
        return _fail(item, f"{len(rows)} found: {_short(labels)}")
    if expect == "nonempty":
        if rows:
            return PASS, f"the query returned {len(rows)} row{'s' if len(rows) != 1 else ''}"
        return _fail(item, "the query returned no rows")
    if expect == "value":
        if not rows:
            return _fail(item, "the query returned no row")
        v = rows[0][0]
        ok = _compare(v, p["op"], p["value"])
        d = f"value {v}, needs {_needs(p['op'], p['value'])}"
        return (PASS, d) if ok else _fail(item, d)
    return ERROR, f"unknown expect {expect!r} (use empty, nonempty, status, or op and value)"


# ----------------------------------------------------------------------------------------- tables
def _alternatives(spec: str) -> list[str]:
    return [s.strip() for s in spec.split("|") if s.strip()]


async def probe_table_exists(conn, item: Item, ctx: ProbeContext):
    p = item.probe.params
    tables = p.get("tables") or [p["table"]]
    missing = []
    for t in tables:
        found = False
        for alt in _alternatives(t):
            if await resolve_table(conn, alt, p.get("schema")) is not None:
                found = True
                break
        if not found:
            missing.append(" or ".join(_alternatives(t)))
    if missing:
        return _fail(item, f"missing: {', '.join(missing)}")
    return PASS, f"all {len(tables)} table{'s' if len(tables) != 1 else ''} exist"


_TYPE_ALIASES = {
    "int": "integer", "int4": "integer", "serial": "integer", "serial4": "integer",
    "int8": "bigint", "bigserial": "bigint", "serial8": "bigint",
    "int2": "smallint", "smallserial": "smallint",
    "bool": "boolean", "float8": "double precision", "float4": "real",
    "varchar": "character varying", "char": "character",
    "timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone",
    "timetz": "time with time zone", "time": "time without time zone",
    "decimal": "numeric",
}


def _norm_type(t: str, keep_mod: bool) -> str:
    t = " ".join(t.lower().split())
    base, mod = (t.split("(", 1)[0].strip(), "(" + t.split("(", 1)[1]) if "(" in t else (t, "")
    base = _TYPE_ALIASES.get(base, base)
    return base + (mod.replace(" ", "") if keep_mod else "")


async def probe_columns(conn, item: Item, ctx: ProbeContext):
    p = item.probe.params
    specs = p.get("tables") or [{"table": p["table"], "columns": p.get("columns", {}), "exact": p.get("exact")}]
    problems, checked = [], 0
    for spec in specs:
        table = spec["table"]
        oid = await resolve_table(conn, table, p.get("schema"))
        if oid is None:
            problems.append(f"table {table} does not exist")
            continue
        rows = await conn.fetch(
            "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
            "WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum", oid)
        actual = {r["attname"]: r["type"] for r in rows}
        for col, want in spec.get("columns", {}).items():
            checked += 1
            have = actual.get(col)
            if have is None:
                problems.append(f"{table}.{col} missing")
            elif _norm_type(have, "(" in want) != _norm_type(want, "(" in want):
                problems.append(f"{table}.{col} is {have}, expected {want}")
        if spec.get("exact", p.get("exact")):
            extra = [c for c in actual if c not in spec.get("columns", {})]
            problems += [f"{table}.{c} not expected" for c in extra]
    if problems:
        return _fail(item, _short(problems, 4))
    return PASS, f"{checked} columns of {len(specs)} table{'s' if len(specs) != 1 else ''} match"


# ----------------------------------------------------------------------------------------- indexes
async def probe_index_exists(conn, item: Item, ctx: ProbeContext):
    p = item.probe.params
    table = p["table"]
    oid = await resolve_table(conn, table, p.get("schema"))
    if oid is None:
        raise ProbeFailed(f"table {table} does not exist")
    indexes = await table_indexes(conn, oid)
    missing, invalid, present = [], [], []
    for want in p["indexes"]:
        ix = match_index(want, indexes)
        label = index_label(want["columns"])
        if ix is None:
            missing.append(label)
        elif not ix["valid"]:
            invalid.append(f"{ix['name']} {label}")
        else:
            present.append(f"{ix['name']} {label}")
    if missing or invalid:
        parts = []
        if missing:
            parts.append(f"missing on {table}: {', '.join(missing)}")
        if invalid:
            parts.append(f"INVALID on {table}: {', '.join(invalid)}")
        return _fail(item, "; ".join(parts))
    return PASS, f"{len(present)} of {len(p['indexes'])} present on {table}: {', '.join(present)}"


# ----------------------------------------------------------------------------------------- constraints
_CONSTRAINT_SQL = """
SELECT c.conname, c.contype::text AS contype, c.convalidated, c.confrelid,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS cols,
       pg_get_constraintdef(c.oid) AS def
  FROM pg_constraint c WHERE c.conrelid = $1"""

_TYPE_NAMES = {"check": "c", "unique": "u", "primary_key": "p", "foreign_key": "f", "not_null": None}


async def _check_constraint(conn, spec: dict, schema: str | None) -> tuple[str | None, str]:
    """(problem or None, description)."""
    table, ctype = spec["table"], spec.get("type", "check")
    cols = list(spec.get("columns", []))
    if ctype not in _TYPE_NAMES:
        return f"unknown constraint type {ctype!r}", ""
    oid = await resolve_table(conn, table, schema)
    if oid is None:
        return f"table {table} does not exist", ""
    if ctype == "not_null":
        rows = await conn.fetch("SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 "
                                "AND NOT attisdropped AND attname = ANY($2::text[])", oid, cols)
        have = {r["attname"]: r["attnotnull"] for r in rows}
        probs = [f"{table}.{c} does not exist" if c not in have else f"{table}.{c} allows NULL"
                 for c in cols if not have.get(c)]
        return ("; ".join(probs) or None), f"NOT NULL {table}({', '.join(cols)})"
    cons = await conn.fetch(_CONSTRAINT_SQL, oid)
    if ctype == "check":
        want = norm_check(spec["expression"])
        desc = f"CHECK ({spec['expression']}) on {table}"
        for c in cons:
            if c["contype"] == "c" and norm_check(c["def"]) == want:
                if not c["convalidated"]:
                    return f"{desc} exists as {c['conname']} but is NOT VALID (existing rows unchecked)", desc
                return None, f"{desc} ({c['conname']})"
        return f"missing: {desc}", desc
    if ctype == "foreign_key":
        ref = spec.get("references")
        ref_oid = await resolve_table(conn, ref, schema) if ref else None
        desc = f"{table}({', '.join(cols)}) → {ref}"
        for c in cons:
            if c["contype"] == "f" and list(c["cols"]) == cols and (ref is None or c["confrelid"] == ref_oid):
                if not c["convalidated"]:
                    return f"{desc} exists as {c['conname']} but is NOT VALID", desc
                return None, f"{desc} ({c['conname']})"
        return f"missing foreign key {desc}", desc
    kinds = ("p",) if ctype == "primary_key" else ("u", "p")
    label = "PRIMARY KEY" if ctype == "primary_key" else "UNIQUE"
    desc = f"{label} {table}({', '.join(cols)})"
    for c in cons:
        if c["contype"] in kinds and sorted(c["cols"]) == sorted(cols):
            return None, f"{desc} ({c['conname']})"
    if ctype == "unique":  # a unique index does the same job
        for ix in await table_indexes(conn, oid):
            if ix["unique"] and ix["valid"] and ix["pred"] is None and sorted(k[0] for k in ix["keys"]) == sorted(
                    norm_expr(c) for c in cols):
                return None, f"{desc} (unique index {ix['name']})"
    return f"missing: {desc}", desc


async def probe_constraint(conn, item: Item, ctx: ProbeContext):
    p = item.probe.params
    specs = p.get("constraints") or [{k: v for k, v in p.items() if k in
                                      ("table", "type", "columns", "expression", "references", "name")}]
    problems, found = [], []
    for spec in specs:
        problem, desc = await _check_constraint(conn, spec, p.get("schema"))
        if problem:
            problems.append(problem)
        else:
            found.append(desc)
    if problems:
        return _fail(item, _short(problems, 3))
    if len(found) == 1:
        return PASS, found[0]
    return PASS, f"all {len(found)} in place: {_short(found, 3)}"


# ----------------------------------------------------------------------------------------- extension, setting
def _libraries(setting: str) -> list[str]:
    return [s.strip().strip('"').strip() for s in (setting or "").split(",") if s.strip()]


async def probe_extension(conn, item: Item, ctx: ProbeContext):
    p = item.probe.params
    name = p["name"]
    # pg_available_extensions reads every extension's control file on the server, pg_settings builds a
    # row of every setting: each is asked only when the answer needs it
    preload_needed = bool(p.get("preload"))
    row = await conn.fetchrow(
        "SELECT e.extversion AS installed, current_database() AS db, "
        "       CASE WHEN e.extversion IS NULL THEN EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1) "
        "            ELSE true END AS available "
        "  FROM (SELECT 1) one LEFT JOIN pg_extension e ON e.extname = $1", name)
    preload, pending = None, False
    if preload_needed:  # hidden from roles without pg_read_all_settings: current_setting says so
        preload, _hidden = await _try(conn, "SELECT current_setting('shared_preload_libraries')")
        if preload is not None and name not in _libraries(preload):
            pending = bool(await conn.fetchval(
                "SELECT pending_restart FROM pg_settings WHERE name = 'shared_preload_libraries'"))
    row = {**dict(row), "preload": preload, "pending": pending}
    installed = row["installed"]
    if preload_needed and row["preload"] is None:  # pg_settings hides it from roles without the privilege
        role = await conn.fetchval("SELECT quote_ident(current_user)")
        return ERROR, (f"cannot see shared_preload_libraries: GRANT pg_read_all_settings TO {role} "
                       f"(or pg_monitor); {name} is {'installed' if installed else 'not created'} in {row['db']}")
    preloaded = name in _libraries(row["preload"])
    if not installed and not row["available"]:
        return _fail(item, f"{name} is not available on the server (its contrib package is not installed)")
    if preload_needed and not preloaded:
        if row["pending"]:
            return WARN, f"{name} not loaded yet: shared_preload_libraries changed, the server needs a restart"
        what = "installed" if installed else "not installed"
        return _fail(item, f"{name} {what}, and not in shared_preload_libraries (needs a change and a restart)")
    if not installed:
        pre = "preloaded, but " if preload_needed else ""
        return _fail(item, f"{pre}CREATE EXTENSION {name} was not run in {row['db']}")
    return PASS, f"{name} {installed} installed" + (", in shared_preload_libraries" if preload_needed else "")


async def probe_setting(conn, item: Item, ctx: ProbeContext):
    p = item.probe.params
    name = p["name"]
    row = await conn.fetchrow("SELECT setting, unit, pending_restart, source FROM pg_settings WHERE name = $1", name)
    if row is None:
        return ERROR, f"the server has no setting {name!r}"
    value, unit = row["setting"], row["unit"] or ""
    if value == "-1" and name.startswith("log_"):
        shown = f"{name} = -1 (off)"
    else:
        shown = f"{name} = {value}{(' ' + unit) if unit and value.lstrip('-').isdigit() else ''}"
    needs = _needs(p["op"], p["value"], unit if unit in ("ms", "s", "min", "kB", "MB") else "")
    ok = _compare(value, p["op"], p["value"])
    if row["pending_restart"]:
        return WARN, f"{shown}; a changed value waits for a restart (pending_restart), needs {needs}"
    if ok:
        return PASS, f"{shown}, needs {needs}"
    return _fail(item, f"{shown}, needs {needs}")


# ----------------------------------------------------------------------------------------- files
def _app_path(ctx: ProbeContext, rel: str) -> Path:
    p = Path(rel).expanduser()
    return p if p.is_absolute() else ctx.app_root / p


def _file_pattern_sync(item: Item, ctx: ProbeContext):
    p = item.probe.params
    path = _app_path(ctx, p["file"])
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ERROR, f"{p['file']} not found under {ctx.app_root} (set --app-root to the app's directory)"
    except OSError as e:
        return ERROR, f"cannot read {p['file']}: {e.strerror or e}"
    try:
        rx = re.compile(p["pattern"], re.M)
    except re.error as e:
        return ERROR, f"bad pattern {p['pattern']!r}: {e}"
    m = rx.search(text)
    if not m:
        return _fail(item, f"no match for /{p['pattern']}/ in {p['file']}")
    grp = 1 if rx.groups else 0
    value = m.group(grp)
    line = text.count("\n", 0, m.start(grp)) + 1
    label = p.get("label", "value")
    needs = _needs(p["op"], p["value"], p.get("unit", ""))
    detail = f"{label}: {value} in {p['file']} line {line}"
    if _compare(value, p["op"], p["value"]):
        return PASS, f"{detail}, needs {needs}"
    return _fail(item, f"{detail}, needs {needs}")


async def probe_file_pattern(conn, item: Item, ctx: ProbeContext):
    return await asyncio.to_thread(_file_pattern_sync, item, ctx)


_CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:\"[^\"]+\"|\w+)(?:\.(?:\"[^\"]+\"|\w+))?)",
                           re.I)


async def probe_migrations(conn, item: Item, ctx: ProbeContext):
    p = item.probe.params
    d = _app_path(ctx, p["dir"])
    if not d.is_dir():
        return ERROR, f"{p['dir']} not found under {ctx.app_root} (set --app-root to the app's directory)"
    rx = re.compile(p.get("pattern", r"^(\d+)[_-].*\.sql$"))
    files = sorted(f for f in os.listdir(d) if rx.match(f))
    if not files:
        return _fail(item, f"no migration files in {p['dir']}")
    notes = []
    expect = p.get("expect_count")
    if expect is not None and len(files) != expect:
        notes.append(f"{len(files)} files in {p['dir']}, expected {expect}")
    tracking = p.get("tracking_table")
    oid = await resolve_table(conn, tracking, p.get("schema")) if tracking else None
    if oid is not None:
        qtable = await conn.fetchval("SELECT $1::oid::regclass::text", oid)  # quoted by the server
        col = p.get("version_column", "version")
        versions = {str(v).strip() for v in await conn.fetchval(
            f"SELECT coalesce(array_agg({quote_ident(col)}::text), '{{}}') FROM {qtable}")}
        names_col = p.get("name_column")
        if names_col:
            versions |= {str(v).strip() for v in await conn.fetchval(
                f"SELECT coalesce(array_agg({quote_ident(names_col)}::text), '{{}}') FROM {qtable}")}
        norm = {v.lstrip("0") or "0" for v in versions} | versions

        def applied(f: str) -> bool:
            stem = f.rsplit(".", 1)[0]
            m = rx.match(f)
            prefix = m.group(1) if m and m.groups() else stem
            return bool({f, stem, prefix, prefix.lstrip("0") or "0"} & norm)

        missing = [f for f in files if not applied(f)]
        if missing:
            return _fail(item, "; ".join([f"not applied: {_short(missing, 4)}", *notes]))
        if notes:
            return _fail(item, f"{len(files)} of {len(files)} applied ({tracking}); " + "; ".join(notes))
        return PASS, f"all {len(files)} migrations applied ({tracking})"
    # no tracking table: judge by the tables the files create
    created: list[tuple[str, str]] = []
    for f in files:
        try:
            text = (d / f).read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            return ERROR, f"cannot read {f}: {e.strerror or e}"
        text = re.sub(r"--[^\n]*", "", text)
        created += [(f, m.group(1).replace('"', "")) for m in _CREATE_TABLE.finditer(text)]
    missing = [f"{t} ({f})" for f, t in created if await resolve_table(conn, t, p.get("schema")) is None]
    why = f"no {tracking} table; judged by the tables the files create" if tracking else "judged by the tables created"
    if missing:
        return _fail(item, f"{why}: missing {_short(missing, 4)}")
    if notes:
        return _fail(item, f"{why}; " + "; ".join(notes))
    return PASS, f"{why}: all {len(created)} exist"


# ----------------------------------------------------------------------------------------- explain
def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []) or []:
        yield from _plan_nodes(child)


INDEX_NODES = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


async def probe_explain(conn, item: Item, ctx: ProbeContext):
    p = item.probe.params
    bad, good = [], []
    for n, q in enumerate(p["queries"], 1):
        table = q["table"]
        if await resolve_table(conn, table) is None:
            raise ProbeFailed(f"table {table} does not exist")
        raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + q["sql"])
        plan = json.loads(raw) if isinstance(raw, str) else raw
        root = plan[0]["Plan"]
        _s, rel = split_name(table)
        scans = [nd for nd in _plan_nodes(root) if nd.get("Relation Name") == rel]
        used = [nd for nd in scans if nd.get("Node Type") in INDEX_NODES]
        if used:
            idx = used[0].get("Index Name") or next(
                (c.get("Index Name") for c in _plan_nodes(used[0]) if c.get("Index Name")), "an index")
            good.append(f"{table} via {idx}")
        else:
            how = ", ".join(sorted({nd.get("Node Type", "?") for nd in scans})) or "no scan of it"
            bad.append(f"{table}: {how} (query {n})")
    if bad:
        return _fail(item, f"no index used on {_short(bad, 3)}")
    return PASS, f"{len(good)} of {len(good)} plans use an index: {_short(good, 3)}"


# ----------------------------------------------------------------------------------------- backups
def _gzip_ok(path: Path) -> tuple[bool, str]:
    exe = shutil.which("gzip")
    if exe:
        import subprocess

        try:
            r = subprocess.run([exe, "-t", str(path)], capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return False, "gzip -t took more than 120 s"
        return r.returncode == 0, "gzip -t ok" if r.returncode == 0 else f"gzip -t failed: {_one_line(r.stderr, 80)}"
    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 20):
                pass
        return True, "gzip stream ok"
    except (OSError, EOFError, zlib.error) as e:
        return False, f"gzip stream broken: {e}"


def backup_dir_for(params: dict, ctx: ProbeContext) -> tuple[Path | str, str]:
    """(the backup location, where it came from): --backup-dir, else the item's ``dir``."""
    if ctx.backup_dir:
        return (ctx.backup_dir if hostfiles.is_remote(str(ctx.backup_dir)) else Path(ctx.backup_dir)), "--backup-dir"
    raw = str(params.get("dir") or DEFAULT_BACKUP_DIR)
    return (raw if hostfiles.is_remote(raw) else _app_path(ctx, raw)), "the item's dir"


def schedule_for(params: dict, ctx: ProbeContext) -> Path | None:
    """The crontab file a ``schedule`` param names: "crontab" means --crontab-file (None: the user's crontab)."""
    sched = params.get("schedule")
    if sched in (None, True, "crontab"):
        return Path(ctx.crontab_file) if ctx.crontab_file else None
    return _app_path(ctx, str(sched))


def schedule_needles(d: Path | str, pattern: str) -> list[str]:
    prefix = pattern.split("*", 1)[0]
    return [n for n in ("pg_dump", str(d), prefix if len(prefix) >= 3 else "", hostfiles.CRON_MARK) if n]


def _check_schedule(item: Item, ctx: ProbeContext, d: Path, pattern: str) -> tuple[str | None, str]:
    """(failure or None, evidence) of the backup schedule."""
    sched = hostfiles.read_schedule(schedule_for(item.probe.params, ctx))
    if sched.text is None:
        return f"schedule not readable ({sched.why})", ""
    found = hostfiles.find_backup_line(sched.text, schedule_needles(d, pattern))
    if found is None:
        return (f"no backup entry in {sched.where}" + (f" ({sched.why})" if sched.why else "")
                + f": nothing there runs pg_dump or writes to {d}"), ""
    line, when, _cmd = found
    if not hostfiles.is_daily(when):
        return f"the backup entry in {sched.where} is not daily ({when})", ""
    return None, f"scheduled {when} in {sched.where}"


def _backup_sync(item: Item, ctx: ProbeContext):
    p = item.probe.params
    d, source = backup_dir_for(p, ctx)
    pattern = p.get("pattern", "*")
    if isinstance(d, str):
        return MANUAL, f"backups go to {d} ({source}), on another host: check its newest file there"
    sched_ok = ""
    if p.get("schedule"):
        problem, sched_ok = _check_schedule(item, ctx, d, pattern)
        if problem:
            return _fail(item, problem)
    if not d.is_dir():
        return _fail(item, f"no backup directory {d}")
    try:
        files = [d / f for f in os.listdir(d) if fnmatch.fnmatch(f, pattern) and (d / f).is_file()]
    except OSError as e:
        return ERROR, f"cannot list {d}: {e.strerror or e}"
    if not files:
        return _fail(item, f"no file matching {pattern} in {d}" + (f" ({sched_ok})" if sched_ok else ""))
    newest = max(files, key=lambda f: f.stat().st_mtime)
    st = newest.stat()
    age = ctx.now - st.st_mtime
    max_h = float(p.get("max_age_hours", 26))
    size = st.st_size
    what = f"{newest.name} in {d}, {_age(age)} old, {size:,} bytes"
    if age > max_h * 3600:
        return _fail(item, f"newest is {what}: older than {max_h:g} h")
    if size == 0:
        return _fail(item, f"newest is {what}: empty")
    if newest.name.endswith(".gz"):
        ok, how = _gzip_ok(newest)
    elif newest.suffix in (".dump", ".backup", ".pgdump"):
        with open(newest, "rb") as f:
            ok = f.read(5) == b"PGDMP"
        how = "pg_dump custom format header ok" if ok else "not a pg_dump custom-format file"
    else:
        ok, how = True, "no integrity test for this format"
    if not ok:
        return _fail(item, f"newest is {what}: {how}")
    return PASS, f"{what}, {how}" + (f"; {sched_ok}" if sched_ok else "")


async def probe_backup_files(conn, item: Item, ctx: ProbeContext):
    return await asyncio.to_thread(_backup_sync, item, ctx)


async def probe_separate_storage(conn, item: Item, ctx: ProbeContext):
    """The backup location against the data directory: another host passes; a local directory passes
    when it is on another filesystem (st_dev) than the data directory."""
    p = item.probe.params
    remote = p.get("remote")
    if remote:
        return PASS, f"backups go to {remote}, on another host (the item's remote)"
    d, source = backup_dir_for(p, ctx)
    if isinstance(d, str):
        return PASS, f"backups go to {d} ({source}), on another host"
    datadir, hidden = None, ""
    try:
        async with conn.transaction():
            datadir = await conn.fetchval("SELECT current_setting('data_directory')")
    except asyncpg.InsufficientPrivilegeError:
        role = await conn.fetchval("SELECT quote_ident(current_user)")
        hidden = (f"data_directory is hidden from role {role}: GRANT pg_read_all_settings TO {role} "
                  f"(or connect as a superuser) to compare the filesystems")
    if datadir is None:
        return MANUAL, hidden or "the server did not say its data directory"
    if not ctx.target_local:
        return MANUAL, (f"the database runs on another host: is its data directory {datadir} on another disk "
                        f"or server than the backups ({d})? A person confirms")
    if not d.is_dir():  # where the dumps go is not known here: a person says (or --backup-dir)
        return MANUAL, (f"no backup directory {d} ({source}) here: give --backup-dir (a directory, or "
                        f"s3://… / host:/path), or a person confirms where the dumps go")

    def mounts():
        return hostfiles.mount_of(d), hostfiles.mount_of(datadir)

    try:
        bm, dm = await asyncio.to_thread(mounts)
    except OSError as e:
        return MANUAL, f"cannot stat {e.filename or datadir} here ({e.strerror or e}): a person compares the disks"
    if bm.st_dev == dm.st_dev:
        return _fail(item, f"same filesystem: backup dir {d} and data directory {datadir} are both on {dm.describe()}")
    volatile = " (memory: gone at reboot)" if bm.fstype == "tmpfs" else ""
    return PASS, f"backup dir {d} on {bm.describe()}{volatile}, data directory {datadir} on {dm.describe()}"


# ----------------------------------------------------------------------------------------- last_run
_FIGURES_FIRST = ["connections", "successes", "failures", "p50_ms", "p95_ms", "tables", "rows", "dump_bytes",
                  "dump_s", "restore_s"]


def _requirement(value: Any) -> tuple[str, Any]:
    if isinstance(value, str):
        m = re.match(r"^\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*$", value)
        if m:
            return m.group(1), m.group(2)
        return "==", value
    return ">=", value


async def probe_last_run(conn, item: Item, ctx: ProbeContext):
    p = item.probe.params
    fix = p["fix"]
    run = ctx.state.fix_run(fix) if ctx.state else None
    if not run:
        return _fail(item, f"never run on this database: run its {fix} fix (pgpreflight fix {item.id})")
    at = parse_iso(run.get("at", ""))
    age = ctx.now - at.timestamp() if at else float("inf")
    figures = run.get("figures") or {}
    first = [*(p.get("require") or {}), *_FIGURES_FIRST]
    keys = sorted(figures, key=lambda k: (first.index(k) if k in first else len(first), k))
    from tui.model.format import figure, when as when_text

    shown = ", ".join(f"{k} {figure(figures[k])}" for k in keys[:5])
    # an absolute time: the detail is shown until the next verify, when an age would have gone stale
    when = f"at {when_text(run.get('at'))}" if at else "at an unknown time"
    by = f" by {run['by']}" if run.get("by") else ""
    if not run.get("ok"):
        d = run.get("detail") or shown
        return _fail(item, f"last run {when}{by} failed" + (f": {d}" if d else ""))
    max_h = float(p.get("max_age_hours", 24))
    if age > max_h * 3600:
        return _fail(item, f"last passed {when}{by} ({_age(age)} before this check): older than {max_h:g} h")
    for key, want in (p.get("require") or {}).items():
        op, value = _requirement(want)
        if key not in figures:
            return _fail(item, f"last run {when} recorded no {key} (needs {_needs(op, value)})")
        if not _compare(figures[key], op, value):
            return _fail(item, f"last run {when}: {key} {figures[key]}, needs {_needs(op, value)}")
    return PASS, f"passed {when}{by}" + (f": {shown}" if shown else "")


# ----------------------------------------------------------------------------------------- log_scan
DEFAULT_LOG_PATTERNS = ["too many connections", "remaining connection slots"]


def _scan_text(text: str, patterns: list[str]) -> tuple[dict[str, int], str | None]:
    counts = {p: 0 for p in patterns}
    last = None
    low = [p.lower() for p in patterns]
    for line in text.splitlines():
        l = line.lower()
        for p, lp in zip(patterns, low):
            if lp in l:
                counts[p] += 1
                last = line
    return counts, last


def _read_tail(path: Path, max_bytes: int) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - max_bytes))
        return f.read().decode("utf-8", errors="replace")


async def _try(conn, sql: str, *args):
    """(value, denied): one read in a savepoint, so a privilege error does not end the probe's transaction."""
    try:
        async with conn.transaction():
            return await conn.fetchval(sql, *args), False
    except (asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedFunctionError):
        return None, True


async def _server_log(conn, ctx: ProbeContext, max_bytes: int) -> tuple[str | None, str | None, str]:
    """(the tail of the server's current log, where it was read, why not). Found with pg_current_logfile()
    (superuser or EXECUTE), else the newest file of pg_ls_logdir() (pg_monitor); read here when the server runs on this host,
    else through pg_read_file (EXECUTE on it, or superuser). Says which grant would let it."""
    role = await conn.fetchval("SELECT quote_ident(current_user)")
    logfile, denied = await _try(conn, "SELECT pg_current_logfile()")
    size = None
    if denied or logfile is None:
        row_denied = False
        try:
            async with conn.transaction():
                row = await conn.fetchrow("SELECT name, size FROM pg_ls_logdir() ORDER BY modification DESC LIMIT 1")
        except (asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedFunctionError):
            row, row_denied = None, True
        except asyncpg.PostgresError:  # no log directory yet
            row = None
        if row is not None:
            logdir = await conn.fetchval("SELECT current_setting('log_directory')")
            logfile, size = f"{logdir.rstrip('/')}/{row['name']}", int(row["size"])
        elif denied and row_denied:
            return None, None, (f"finding it needs GRANT pg_monitor TO {role} (for pg_ls_logdir), or "
                                f"GRANT EXECUTE ON FUNCTION pg_current_logfile() TO {role}")
    if logfile is None:
        collector = await conn.fetchval("SELECT current_setting('logging_collector')")
        return None, None, ("the server logs to stderr (logging_collector is off), outside its knowledge: "
                            "set logging_collector = on, or give the log file as the item's path"
                            if collector == "off" else "the server has no current log file")
    datadir, _ = await _try(conn, "SELECT current_setting('data_directory')")
    why = ""
    if ctx.target_local and (os.path.isabs(logfile) or datadir):
        full = Path(logfile) if os.path.isabs(logfile) else Path(datadir) / logfile
        try:
            return await asyncio.to_thread(_read_tail, full, max_bytes), str(full), ""
        except OSError as e:
            why = f"cannot read {full} here: {e.strerror or e}"
    elif ctx.target_local:
        why = f"the log {logfile} is relative to the hidden data_directory (GRANT pg_read_all_settings TO {role})"
    if size is None:
        size, denied = await _try(conn, "SELECT (pg_stat_file($1)).size", logfile)
    else:
        denied = False
    text = None
    if not denied and size is not None:
        text, denied = await _try(conn, "SELECT pg_read_file($1, $2, $3)", logfile, max(0, int(size) - max_bytes),
                                  max_bytes)
    if text is not None:
        return text, f"{logfile} (read through the server)", ""
    grant = (f"reading {logfile} needs GRANT EXECUTE ON FUNCTION pg_read_file(text,bigint,bigint), "
             f"pg_stat_file(text) TO {role}, or pgpreflight on the database host (outside the data and log "
             f"directories also pg_read_server_files)")
    return None, None, "; ".join(x for x in (why, grant) if x)


async def probe_log_scan(conn, item: Item, ctx: ProbeContext):
    p = item.probe.params
    patterns = list(p.get("patterns") or DEFAULT_LOG_PATTERNS)
    max_bytes = int(p.get("max_bytes", 5 * 1024 * 1024))
    text, where, why_not = None, None, ""
    if p.get("path"):
        path = _app_path(ctx, p["path"])
        try:
            text = await asyncio.to_thread(_read_tail, path, max_bytes)
            where = str(path)
        except OSError as e:
            why_not = f"cannot read {path}: {e.strerror or e}"
    else:
        text, where, why_not = await _server_log(conn, ctx, max_bytes)
    if text is None:
        return MANUAL, f"server log not readable: {why_not}; look for {', '.join(repr(x) for x in patterns)}"
    counts, last = _scan_text(text, patterns)
    total = sum(counts.values())
    if total:
        found = ", ".join(f"{n} × {k!r}" for k, n in counts.items() if n)
        return _fail(item, f"{found} in {where}; last: {_one_line(last or '', 100)}")
    size = len(text.encode("utf-8", errors="replace"))
    return PASS, f"none of {', '.join(repr(x) for x in patterns)} in the last {size:,} bytes of {where}"


# ----------------------------------------------------------------------------------------- connections
_HEADROOM_SQL = """
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
           -- other roles' sessions have no visible backend_type without pg_read_all_stats: count them too
           OR (backend_type IS NULL AND datid IS NOT NULL))::int AS used,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type IS NULL AND datid IS NOT NULL)::int AS unclassified,
       quote_ident(current_user) AS role"""


async def probe_connection_headroom(conn, item: Item, ctx: ProbeContext):
    """Usable connections (max_connections less the reserved slots) against the peak in use: the
    highest count any check saw in the window (kept in the state), or now when higher."""
    p = item.probe.params
    r = await conn.fetchrow(_HEADROOM_SQL)
    reserved = r["superuser_reserved"] + r["reserved"]
    usable = max(r["max_connections"] - reserved, 1)
    used = r["used"]
    peak, since = used, None
    if ctx.state is not None:
        pk = ctx.state.observe_peak("connections", used, window_s=float(p.get("window_hours", 168)) * 3600)
        peak, since = max(int(pk["value"]), used), pk.get("at")
    ratio = peak / usable
    detail = (f"peak {peak} of {usable} usable connections (max_connections {r['max_connections']} less "
              f"{reserved} reserved), {used} in use now, {usable - peak} free at peak")
    if since and peak > used:
        detail += f"; peak seen at {since}"
    if r["unclassified"]:
        detail += (f"; {r['unclassified']} session(s) of other roles counted as clients, their kind hidden "
                   f"(GRANT pg_read_all_stats TO {r['role']})")
    if ratio >= float(p.get("fail_ratio", 0.9)):
        return _fail(item, detail)
    if ratio >= float(p.get("warn_ratio", 0.75)):
        return WARN, detail
    return PASS, detail


# ----------------------------------------------------------------------------------------- registry and run
ProbeFn = Callable[[Any, Item, ProbeContext], Awaitable[tuple[str, str]]]

PROBES: dict[str, ProbeFn] = {
    "sql": probe_sql,
    "table_exists": probe_table_exists,
    "columns": probe_columns,
    "index_exists": probe_index_exists,
    "constraint": probe_constraint,
    "extension": probe_extension,
    "setting": probe_setting,
    "file_pattern": probe_file_pattern,
    "migrations": probe_migrations,
    "explain": probe_explain,
    "backup_files": probe_backup_files,
    "separate_storage": probe_separate_storage,
    "last_run": probe_last_run,
    "log_scan": probe_log_scan,
    "connection_headroom": probe_connection_headroom,
}


def _describe(exc: BaseException, timeout_ms: int) -> tuple[str, str]:
    if isinstance(exc, ProbeFailed):
        return FAIL, str(exc)
    if isinstance(exc, asyncpg.UndefinedTableError):
        return FAIL, _one_line(str(exc))
    if isinstance(exc, asyncpg.QueryCanceledError):
        return ERROR, f"timed out after {timeout_ms} ms (statement_timeout)"
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return ERROR, f"insufficient privilege: {_one_line(str(exc))}"
    if isinstance(exc, asyncpg.PostgresError):
        return ERROR, _one_line(str(exc) or type(exc).__name__)
    if isinstance(exc, (asyncpg.InterfaceError, ConnectionError, OSError)):
        return ERROR, f"connection problem: {_one_line(str(exc) or type(exc).__name__)}"
    return ERROR, f"probe failed: {type(exc).__name__}: {_one_line(str(exc))}"


async def run_probe(conn, item: Item, ctx: ProbeContext) -> ItemResult:
    """One item (not ``items`` rollups: see :func:`run_checklist`)."""
    t0 = time.perf_counter()
    kind = item.probe.kind
    timeout_ms = int(item.probe.params.get("timeout_ms", ctx.statement_timeout_ms))
    try:
        if kind == "manual":
            hint = item.probe.get("hint")
            status, detail = MANUAL, f"needs a person: {hint}" if hint else "needs a person to confirm"
        elif kind in NO_DB_KINDS or conn is None:
            if conn is None and kind not in NO_DB_KINDS:
                status, detail = ERROR, "no database connection"
            else:
                status, detail = await PROBES[kind](conn, item, ctx)
        else:
            async with conn.transaction(readonly=True):
                await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
                status, detail = await PROBES[kind](conn, item, ctx)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every failure of one probe stays in that item
        status, detail = _describe(exc, timeout_ms)
    return ItemResult(item.id, status, _one_line(detail, 240), time.time(), (time.perf_counter() - t0) * 1000)


def _apply_tick(result: ItemResult, ctx: ProbeContext) -> ItemResult:
    if result.status == MANUAL and ctx.state is not None:
        tick = ctx.state.tick(result.item_id)
        if tick:
            from tui.model.format import when

            return ItemResult(result.item_id, PASS, f"ticked by {tick.by} at {when(tick.at)}", result.checked_at,
                              result.duration_ms)
    return result


_WORST = (FAIL, ERROR, WARN, MANUAL, PASS)


def rollup(item: Item, results: dict[str, ItemResult]) -> ItemResult:
    refs = item.probe.params.get("refs", [])
    statuses = {r: results[r].status if r in results else ERROR for r in refs}
    worst = next(s for s in _WORST if s in set(statuses.values()) | {PASS})
    if worst == PASS:
        detail = f"{', '.join(refs)} pass" if len(refs) <= 3 else f"all {len(refs)} items pass"
    else:
        detail = "; ".join(f"{r}: {s}" for r, s in statuses.items() if s != PASS)
    return ItemResult(item.id, worst, detail, time.time(), 0.0)


async def run_checklist(conn, checklist: Checklist, ctx: ProbeContext, *, only: Iterable[str] | None = None,
                        skip_kinds: Iterable[str] = (),
                        on_result: Callable[[ItemResult], None] | None = None,
                        given: dict[str, ItemResult] | None = None,
                        on_probed: Callable[[Item, ItemResult], None] | None = None) -> dict[str, ItemResult]:
    """Run every item (or ``only`` those ids) in checklist order; ``items`` rollups last.
    A ticked item whose probe says ``manual`` passes ("ticked by …"). ``conn`` may be None: then the
    database probes are ``error`` and the file and state probes still run. ``given``: results to use
    instead of running those items' probes (a re-verify's reused ones, as their probe said them: a tick
    still applies). ``on_probed(item, result)``: each probe's own result, before a tick."""
    wanted = set(only) if only is not None else None
    skip = set(skip_kinds)
    given = given or {}
    results: dict[str, ItemResult] = {}
    rollups = []
    for item in checklist.items():
        if wanted is not None and item.id not in wanted:
            continue
        if item.probe.kind in skip:
            continue
        if item.probe.kind == "items":
            rollups.append(item)
            continue
        if item.id in given:
            raw = given[item.id]
        else:
            raw = await run_probe(conn, item, ctx)
            if on_probed:
                on_probed(item, raw)
        r = _apply_tick(raw, ctx)
        results[item.id] = r
        if on_result:
            on_result(r)
    for item in rollups:
        missing = [ref for ref in item.probe.params.get("refs", []) if ref not in results]
        if missing and ctx.state is not None:  # refs not run now: use the last recorded result
            for ref in missing:
                old = ctx.state.results.get(ref)
                if old and old.get("status") in (PASS, FAIL, WARN, MANUAL, ERROR):
                    results.setdefault(ref, ItemResult(ref, old["status"], old.get("detail", "")))
        r = rollup(item, results)
        results[item.id] = r
        if on_result:
            on_result(r)
    order = {iid: n for n, iid in enumerate(checklist.item_ids())}
    return dict(sorted(((k, v) for k, v in results.items() if k in order and (wanted is None or k in wanted)
                        and checklist.item(k).probe.kind not in skip), key=lambda kv: order[kv[0]]))


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
