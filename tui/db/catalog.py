"""Catalog helpers that the checklist's probes and the fixes share: identifier quoting, resolving a table
a checklist file names, a table's indexes as the probes compare them, and CHECK expressions normalised
as the server shows them. One copy, here in the lowest package that needs them: tui.checklist (the
probes) and tui.fixes (which must see a table, an index or a constraint exactly as the probe that judged
it) both import this module. asyncpg connections only; no textual."""
from __future__ import annotations

import re


def quote_ident(name: str) -> str:
    """An SQL identifier, always quoted (as quote_ident does, but always), so no name is pasted raw."""
    name = str(name)
    if "\x00" in name:
        raise ValueError("identifier contains NUL")
    return '"' + name.replace('"', '""') + '"'


def split_name(name: str) -> tuple[str | None, str]:
    """``"schema.t"`` -> ("schema", "t"); ``"t"`` or ``'"a.b"'`` -> (None, name)."""
    if "." in name and not name.startswith('"'):
        schema, _, rel = name.partition(".")
        return schema, rel
    return None, name.strip('"')


async def resolve_table(conn, name: str, schema: str | None = None) -> int | None:
    """The oid of a table named by a file (``t`` or ``schema.t``), through parameters only."""
    s, rel = split_name(name)
    s = s or schema
    if s:
        return await conn.fetchval("SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2))::oid", s, rel)
    return await conn.fetchval("SELECT to_regclass(quote_ident($1))::oid", rel)


# ----------------------------------------------------------------------------------------- indexes
_COL_RE = re.compile(r"^(?P<expr>.*?)(?:\s+(?P<dir>ASC|DESC))?(?:\s+NULLS\s+(?P<nulls>FIRST|LAST))?\s*$", re.I | re.S)


def norm_expr(e: str) -> str:
    """An index column or predicate, compared as text: lower case, no quotes, no blanks, no outer parentheses."""
    e = e.strip().lower().replace('"', "")
    e = re.sub(r"\s+", "", e)
    while e.startswith("(") and e.endswith(")") and _balanced(e[1:-1]):
        e = e[1:-1]
    return e


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return False
    return depth == 0


def parse_index_column(text: str) -> tuple[str, bool, bool]:
    """``"requested_at DESC"`` -> (expr, desc, nulls_first) with PostgreSQL's defaults."""
    m = _COL_RE.match(text)
    expr = m.group("expr") if m else text
    desc = bool(m and (m.group("dir") or "").upper() == "DESC")
    nulls = (m.group("nulls") or "").upper() if m else ""
    nulls_first = desc if not nulls else nulls == "FIRST"
    return norm_expr(expr), desc, nulls_first


def index_label(columns: list[str]) -> str:
    return "(" + ", ".join(columns) + ")"


INDEX_SQL = """
SELECT c.relname AS name, i.indisvalid AS valid, i.indisunique AS unique, am.amname AS method,
       pg_get_expr(i.indpred, i.indrelid) AS pred,
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k) AS cols,
       ARRAY(SELECT i.indoption[k - 1]::int FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k) AS opts
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am am ON am.oid = c.relam
 WHERE i.indrelid = $1
 ORDER BY c.relname"""


async def table_indexes(conn, oid: int) -> list[dict]:
    """The indexes of table ``oid``: {name, valid, unique, method, pred, keys: ((expr, desc, nulls_first), …)}."""
    out = []
    for r in await conn.fetch(INDEX_SQL, oid):
        keys = tuple((norm_expr(c), bool(o & 1), bool(o & 2)) for c, o in zip(r["cols"], r["opts"]))
        out.append({"name": r["name"], "valid": r["valid"], "unique": r["unique"], "method": r["method"],
                    "pred": norm_expr(r["pred"]) if r["pred"] else None, "keys": keys})
    return out


def match_index(want: dict, indexes: list[dict]) -> dict | None:
    """The index that has the wanted columns, order and expressions (and method, predicate, uniqueness
    when the item says them), whatever it is called. Invalid indexes match too: the caller reports them."""
    keys = tuple(parse_index_column(c) for c in want["columns"])
    method = want.get("using", "btree")
    pred = norm_expr(want["where"]) if want.get("where") else None
    best = None
    for ix in indexes:
        if ix["keys"] != keys or ix["method"] != method or ix["pred"] != pred:
            continue
        if want.get("unique") and not ix["unique"]:
            continue
        if ix["valid"]:
            return ix
        best = best or ix
    return best


# ----------------------------------------------------------------------------------------- constraints
def norm_check(expr: str) -> str:
    """A CHECK expression compared as text, as the server shows it: no CHECK, no NOT VALID, no casts the
    server adds to literals (``(total < (1000)::numeric)``), no blanks, parentheses or quotes."""
    e = expr.strip()
    e = re.sub(r"\s+NOT\s+VALID\s*$", "", e, flags=re.I)
    e = re.sub(r"^CHECK\s*", "", e, flags=re.I).lower()
    e = re.sub(r"::\"?[a-z_][a-z0-9_]*\"?(\s+(varying|precision|with(out)?\s+time\s+zone))?(\[\])?", "", e)
    return re.sub(r"[\s()\"]", "", e)
