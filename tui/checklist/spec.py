"""Checklist files: TOML into frozen dataclasses. Pure Python (no textual, no asyncpg).

A checklist file looks like this::

    name = "images-mvp"
    title = "Images MVP launch: database verification"
    include = [{ checklist = "general", exclude = ["health.slow_query_log"] }]   # optional

    [[section]]
    id = "pool"
    title = "Connection & pool"

    [[section.item]]
    id = "pool.max"
    title = "Pool max set to 20+"
    why = "..."
    severity = "critical"            # critical | high | normal (default normal)
    source = "□ Pool max set to 20+ (currently 10 - FIX THIS)"   # optional: the line it reproduces
    fix = { name = "create_index" }  # optional; params default to the probe's params
    [section.item.probe]
    kind = "file_pattern"
    file = "server/db.ts"
    ...

An item without a probe must say ``manual = true`` (or ``probe = { kind = "manual" }``).

``fix.params``: when a fix names no params, it gets the probe's params (without ``kind``), so an
index item lists its indexes once and both the probe and the ``create_index`` fix read them.

Errors (syntax, a missing field, an unknown probe kind, a bad severity, duplicate ids) raise
:class:`ChecklistError` naming the file and line. Unknown keys are kept out and reported in
``Checklist.warnings``.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

SEVERITIES = ("critical", "high", "normal")

# probe kind -> (required params: each entry is a name or a tuple of alternatives, known optional params)
PROBE_KINDS: dict[str, tuple[tuple, tuple[str, ...]]] = {
    "sql": (("query",), ("expect", "op", "value", "on_fail", "limit", "pass_detail", "inputs")),
    "table_exists": ((("table", "tables"),), ("schema", "on_fail")),
    "columns": ((("table", "tables"),), ("columns", "schema", "exact", "on_fail")),
    "index_exists": (("table", "indexes"), ("schema", "on_fail")),
    "constraint": ((("table", "constraints"),), ("type", "columns", "expression", "references", "name",
                                                 "schema", "on_fail")),
    "extension": (("name",), ("preload", "on_fail")),
    "setting": (("name", "op", "value"), ("on_fail", "label")),
    "file_pattern": (("file", "pattern", "op", "value"), ("label", "on_fail", "unit")),
    "migrations": (("dir",), ("pattern", "tracking_table", "version_column", "name_column", "expect_count",
                              "schema", "on_fail")),
    "explain": (("queries",), ("on_fail",)),
    "backup_files": (("dir",), ("pattern", "max_age_hours", "schedule", "on_fail")),
    "separate_storage": ((), ("dir", "remote", "on_fail")),
    "last_run": (("fix",), ("max_age_hours", "require", "on_fail")),
    "log_scan": ((), ("patterns", "path", "max_bytes", "on_fail")),
    "connection_headroom": ((), ("warn_ratio", "fail_ratio", "window_hours")),
    "items": (("refs",), ()),
    "manual": ((), ("hint",)),
}

ITEM_KEYS = {"id", "title", "why", "severity", "probe", "manual", "fix", "source"}
SECTION_KEYS = {"id", "title", "item", "why"}
TOP_KEYS = {"name", "title", "description", "include", "section", "version", "thresholds"}
FIX_KEYS = {"name", "params"}


class ChecklistError(Exception):
    """A checklist file that cannot be used: ``file:line: problem`` (one line, exit 2)."""

    def __init__(self, file: str, line: int | None, problem: str):
        self.file = file
        self.line = line
        self.problem = problem
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Probe:
    kind: str
    params: dict = field(default_factory=dict, hash=False, compare=True)

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)


@dataclass(frozen=True)
class Fix:
    name: str
    params: dict = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class Item:
    id: str
    title: str
    section: str
    why: str = ""
    severity: str = "normal"
    probe: Probe = field(default_factory=lambda: Probe("manual"))
    fix: Fix | None = None
    source: str | None = None  # the line of the original checklist this item reproduces
    line: int | None = None  # where it is defined, for messages
    file: str | None = None

    @property
    def manual(self) -> bool:
        return self.probe.kind == "manual"


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    items: tuple[Item, ...] = ()
    why: str = ""


@dataclass(frozen=True)
class Checklist:
    name: str
    title: str
    sections: tuple[Section, ...]
    description: str = ""
    path: str | None = None  # the file, or "bundled:NAME"
    warnings: tuple[str, ...] = ()
    #: the file's ``[thresholds]`` table as written (name, value): tui.alerts.Thresholds checks it
    thresholds: tuple[tuple[str, Any], ...] = ()

    def items(self) -> Iterator[Item]:
        for s in self.sections:
            yield from s.items

    def item(self, item_id: str) -> Item:
        for it in self.items():
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    def item_ids(self) -> list[str]:
        return [it.id for it in self.items()]


# --------------------------------------------------------------------------------------------- lines
class _Lines:
    """Find where things are in the text, for error messages (tomllib only gives lines for syntax)."""

    _SECTION = re.compile(r"^[ \t]*\[\[\s*section\s*\]\]", re.M)
    _ITEM = re.compile(r"^[ \t]*\[\[\s*section\s*\.\s*item\s*\]\]", re.M)

    def __init__(self, text: str):
        self.text = text
        self.sections = [self._line(m.start()) for m in self._SECTION.finditer(text)]
        self.items = [self._line(m.start()) for m in self._ITEM.finditer(text)]

    def _line(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def find(self, pattern: str, start_line: int = 1) -> int | None:
        lines = self.text.splitlines()
        rx = re.compile(pattern)
        for n in range(max(start_line, 1), len(lines) + 1):
            if rx.search(lines[n - 1]):
                return n
        return None

    def item_line(self, index: int, item_id: Any) -> int | None:
        """The line of the item's ``id =`` (searched from its ``[[section.item]]`` header), else the header."""
        header = self.items[index] if 0 <= index < len(self.items) else None
        if isinstance(item_id, str):
            n = self.find(r"""^\s*id\s*=\s*["']""" + re.escape(item_id) + r"""["']""", header or 1)
            if n:
                return n
        return header

    def key_line(self, key: str, start: int | None) -> int | None:
        """The first line at or after ``start`` that sets ``key`` (``key =`` or ``[...key]``)."""
        if start is None:
            return None
        n = self.find(r"^\s*(" + re.escape(key) + r"\s*=|\[[^\]]*\b" + re.escape(key) + r"\s*\])", start)
        return n or start


# --------------------------------------------------------------------------------------------- loading
def bundled_names() -> list[str]:
    base = resources.files("tui.checklist").joinpath("bundled")
    return sorted(e.name[:-5] for e in base.iterdir() if e.name.endswith(".toml"))


def bundled_text(name: str) -> str:
    return resources.files("tui.checklist").joinpath("bundled", f"{name}.toml").read_text(encoding="utf-8")


def load_checklist(name_or_path: str | None = None, *, default: str = "general") -> Checklist:
    """A bundled name (``general``, ``images-mvp``) or a path to a TOML file."""
    ref = name_or_path or default
    if ref in bundled_names():
        return parse_checklist(bundled_text(ref), f"bundled:{ref}")
    p = Path(ref).expanduser()
    if p.suffix != ".toml" and not p.exists() and "/" not in ref:
        raise ChecklistError(ref, None, f"no bundled checklist or file of that name (bundled: "
                                        f"{', '.join(bundled_names())})")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChecklistError(str(p), None, "no such file") from None
    except IsADirectoryError:
        raise ChecklistError(str(p), None, "is a directory, not a checklist file") from None
    except UnicodeDecodeError as e:
        raise ChecklistError(str(p), None, f"not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise ChecklistError(str(p), None, e.strerror or str(e)) from None
    return parse_checklist(text, str(p), base_dir=p.parent)


def parse_checklist(text: str, file: str = "<checklist>", *, base_dir: Path | None = None,
                    _seen: tuple[str, ...] = ()) -> Checklist:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line = int(m.group(1)) if m else None
        problem = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
        if m:
            problem += f" (column {m.group(2)})"
        raise ChecklistError(file, line, f"not valid TOML: {problem}") from None
    lines = _Lines(text)
    warnings: list[str] = []

    def warn(line: int | None, what: str) -> None:
        warnings.append(f"{file}:{line}: {what}" if line else f"{file}: {what}")

    for k in data:
        if k not in TOP_KEYS:
            warn(lines.find(r"^\s*" + re.escape(k) + r"\s*="), f"unknown key {k!r} ignored")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ChecklistError(file, lines.find(r"^\s*name\s*=") or 1, "missing field 'name' (the checklist's name)")
    for key in ("title", "description"):
        if key in data and not isinstance(data[key], str):
            raise ChecklistError(file, lines.find(r"^\s*" + key + r"\s*=") or 1,
                                 f"{key} must be a string, not {toml_type(data[key])} ({data[key]!r:.40})")
    title = data.get("title") or name
    raw_sections = data.get("section", [])
    if not isinstance(raw_sections, list) or not all(isinstance(s, dict) for s in raw_sections):
        raise ChecklistError(file, lines.find(r"^\s*section\s*="), "'section' must be [[section]] tables")

    sections: list[Section] = []
    seen_ids: dict[str, int | None] = {}
    item_index = 0
    for s_i, rs in enumerate(raw_sections):
        s_line = lines.sections[s_i] if s_i < len(lines.sections) else None
        for k in rs:
            if k not in SECTION_KEYS:
                warn(lines.key_line(k, s_line), f"unknown key {k!r} in section ignored")
        sid = rs.get("id")
        for key in ("id", "title", "why"):
            if key in rs and not isinstance(rs[key], str):
                raise ChecklistError(file, lines.key_line(key, s_line),
                                     f"section {key} must be a string, not {toml_type(rs[key])} ({rs[key]!r:.40})")
        if not isinstance(sid, str) or not sid:
            raise ChecklistError(file, s_line, "missing field 'id' in [[section]]")
        stitle = rs.get("title")
        if not isinstance(stitle, str) or not stitle:
            raise ChecklistError(file, s_line, f"missing field 'title' in section {sid!r}")
        raw_items = rs.get("item", [])
        if not isinstance(raw_items, list):
            raise ChecklistError(file, s_line, f"section {sid!r}: 'item' must be [[section.item]] tables")
        items: list[Item] = []
        for ri in raw_items:
            line = lines.item_line(item_index, ri.get("id") if isinstance(ri, dict) else None)
            item_index += 1
            item = _parse_item(ri, sid, file, line, lines, warn)
            if item.id in seen_ids:
                raise ChecklistError(file, line, f"duplicate item id {item.id!r} (first at line {seen_ids[item.id]})")
            seen_ids[item.id] = line
            items.append(item)
        sections.append(Section(id=sid, title=stitle, items=tuple(items), why=str(rs.get("why", ""))))

    # includes: other checklists' sections appended after this one's
    includes = data.get("include", [])
    if isinstance(includes, (str, dict)):
        includes = [includes]
    inc_line = lines.find(r"^\s*include\s*=") or lines.find(r"^\s*\[\[\s*include\s*\]\]")
    for inc in includes:
        if isinstance(inc, str):
            ref, exclude = inc, []
        elif isinstance(inc, dict) and isinstance(inc.get("checklist"), str):
            ref, exclude = inc["checklist"], inc.get("exclude", [])
            if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
                raise ChecklistError(file, inc_line, f"include {ref!r}: exclude must be an array of item ids, "
                                                     f"not {toml_type(exclude)}")
        else:
            raise ChecklistError(file, inc_line, "include entries are names or { checklist = NAME, exclude = [...] }")
        if ref in _seen or ref == name:
            raise ChecklistError(file, inc_line, f"include {ref!r} is circular")
        try:
            if ref in bundled_names():
                sub = parse_checklist(bundled_text(ref), f"bundled:{ref}", _seen=(*_seen, name))
            else:
                p = Path(ref)
                if not p.is_absolute() and base_dir is not None:
                    p = base_dir / p
                if not p.is_file():
                    raise ChecklistError(file, inc_line, f"include {ref!r}: no bundled checklist or file of that name")
                sub = parse_checklist(p.read_text(encoding="utf-8"), str(p), base_dir=p.parent,
                                      _seen=(*_seen, name))
        except RecursionError:  # pragma: no cover
            raise ChecklistError(file, inc_line, f"include {ref!r} is circular") from None
        warnings.extend(sub.warnings)
        known = {it.id for it in sub.items()}
        for x in exclude:
            if x not in known:
                warn(inc_line, f"include {ref!r}: exclude {x!r} names no item")
        for s in sub.sections:
            kept = tuple(it for it in s.items if it.id not in exclude)
            for it in kept:
                if it.id in seen_ids:
                    raise ChecklistError(file, inc_line, f"include {ref!r}: duplicate item id {it.id!r}")
                seen_ids[it.id] = it.line
            if kept:
                sections.append(Section(id=s.id, title=s.title, items=kept, why=s.why))

    # items probes refer to other items: check the refs exist
    for it in (i for s in sections for i in s.items):
        if it.probe.kind == "items":
            for ref in it.probe.params.get("refs", []):
                if ref not in seen_ids:
                    raise ChecklistError(file, it.line, f"item {it.id!r}: refs names unknown item {ref!r}")
    return Checklist(name=name, title=str(title), sections=tuple(sections), description=str(data.get("description", "")),
                     path=file, warnings=tuple(warnings), thresholds=_raw_thresholds(data, file, lines))


def _raw_thresholds(data: dict, file: str, lines: _Lines) -> tuple[tuple[str, Any], ...]:
    raw = data.get("thresholds", {})
    if not isinstance(raw, dict):
        raise ChecklistError(file, lines.find(r"^\s*thresholds\s*="),
                             f"thresholds must be a table ([thresholds]), not {toml_type(raw)}")
    return tuple(raw.items())


def _parse_item(ri: Any, section: str, file: str, line: int | None, lines: _Lines, warn) -> Item:
    if not isinstance(ri, dict):
        raise ChecklistError(file, line, f"section {section!r}: an item must be a table")
    iid = ri.get("id")
    if "id" in ri and not isinstance(iid, str):
        raise ChecklistError(file, lines.key_line("id", line),
                             f"an item of section {section!r}: id must be a string, not {toml_type(iid)}")
    if not isinstance(iid, str) or not iid:
        raise ChecklistError(file, line, f"missing field 'id' in an item of section {section!r}")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", iid):
        raise ChecklistError(file, line, f"item id {iid!r}: use letters, digits, '.', '_' and '-' only")
    title = ri.get("title")
    for key in ("title", "why", "source", "severity"):
        if key in ri and not isinstance(ri[key], str):
            raise ChecklistError(file, lines.key_line(key, line),
                                 f"item {iid!r}: {key} must be a string, not {toml_type(ri[key])} ({ri[key]!r:.40})")
    if "manual" in ri and not isinstance(ri["manual"], bool):
        raise ChecklistError(file, lines.key_line("manual", line),
                             f"item {iid!r}: manual must be true or false, not {toml_type(ri['manual'])}")
    if not isinstance(title, str) or not title:
        raise ChecklistError(file, line, f"missing field 'title' in item {iid!r}")
    for k in ri:
        if k not in ITEM_KEYS:
            warn(lines.key_line(k, line), f"unknown key {k!r} in item {iid!r} ignored")
    severity = ri.get("severity", "normal")
    if severity not in SEVERITIES:
        raise ChecklistError(file, lines.key_line("severity", line),
                             f"item {iid!r}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    raw_probe = ri.get("probe")
    manual = ri.get("manual", False)
    if raw_probe is None:
        if manual is not True:
            raise ChecklistError(file, line, f"missing field 'probe' in item {iid!r} (or say manual = true)")
        probe = Probe("manual", {})
    else:
        if manual is True:
            raise ChecklistError(file, line, f"item {iid!r} has both a probe and manual = true")
        if not isinstance(raw_probe, dict):
            raise ChecklistError(file, lines.key_line("probe", line), f"item {iid!r}: probe must be a table")
        probe = _parse_probe(raw_probe, iid, file, lines.key_line("probe", line), lines, warn)
    fix = None
    raw_fix = ri.get("fix")
    if raw_fix is not None:
        fline = lines.key_line("fix", line)
        if isinstance(raw_fix, str):
            raw_fix = {"name": raw_fix}
        if not isinstance(raw_fix, dict) or not isinstance(raw_fix.get("name"), str):
            raise ChecklistError(file, fline, f"item {iid!r}: missing field 'name' in fix")
        for k in raw_fix:
            if k not in FIX_KEYS:
                warn(fline, f"unknown key {k!r} in fix of item {iid!r} ignored")
        params = raw_fix.get("params")
        if params is None:
            params = {k: v for k, v in probe.params.items() if k not in ("on_fail",)}
        elif not isinstance(params, dict):
            raise ChecklistError(file, fline, f"item {iid!r}: fix params must be a table")
        fix = Fix(raw_fix["name"], dict(params))
    return Item(id=iid, title=title, section=section, why=_paragraphs(ri.get("why", "")), severity=severity,
                probe=probe, fix=fix, source=ri.get("source"), line=line, file=file)


def _paragraphs(text) -> str:
    """TOML multi-line strings wrap by hand: join wrapped lines, keep blank-line paragraph breaks."""
    t = str(text).strip()
    return re.sub(r"[ \t]*(?<!\n)\n(?!\n)[ \t]*", " ", t)


def _parse_probe(raw: dict, iid: str, file: str, line: int | None, lines: _Lines, warn) -> Probe:
    kind = raw.get("kind")
    if "kind" in raw and not isinstance(kind, str):
        raise ChecklistError(file, lines.key_line("kind", line) if line else line,
                             f"item {iid!r}: probe kind must be a string, not {toml_type(kind)} ({kind!r:.40})")
    if not isinstance(kind, str):
        raise ChecklistError(file, line, f"item {iid!r}: missing field 'kind' in probe")
    if kind not in PROBE_KINDS:
        kline = lines.find(r"""^\s*kind\s*=\s*["']""" + re.escape(kind), line or 1) or line
        raise ChecklistError(file, kline, f"item {iid!r}: unknown probe kind {kind!r} "
                                          f"(known: {', '.join(sorted(PROBE_KINDS))})")
    required, optional = PROBE_KINDS[kind]
    for req in required:
        alts = req if isinstance(req, tuple) else (req,)
        if not any(a in raw for a in alts):
            names = " or ".join(repr(a) for a in alts)
            raise ChecklistError(file, line, f"item {iid!r}: missing field {names} in {kind} probe")
    known = {"kind", "timeout_ms", "on_fail", *optional, *(a for r in required for a in (r if isinstance(r, tuple) else (r,)))}
    params = {}
    for k, v in raw.items():
        if k == "kind":
            continue
        if k not in known:
            warn(lines.key_line(k, line), f"unknown key {k!r} in {kind} probe of item {iid!r} ignored")
            continue
        problem = _param_problem(kind, k, v)
        if problem:
            raise ChecklistError(file, lines.key_line(k, line), f"item {iid!r}: {problem}")
        params[k] = v
    on_fail = params.get("on_fail", "fail")
    if on_fail not in ("fail", "warn"):
        raise ChecklistError(file, lines.key_line("on_fail", line), f"item {iid!r}: on_fail must be 'fail' or 'warn'")
    bad_inputs = [x for x in params.get("inputs", ()) if x not in PROBE_INPUTS]
    if bad_inputs:
        raise ChecklistError(file, lines.key_line("inputs", line),
                             f"item {iid!r}: inputs {bad_inputs[0]!r} is not one of {', '.join(PROBE_INPUTS)}")
    op = params.get("op")
    if op is not None and op not in OPS:
        raise ChecklistError(file, lines.key_line("op", line),
                             f"item {iid!r}: operator {op!r} is not one of {', '.join(OPS)}")
    return Probe(kind, params)


OPS = ("==", "!=", "<", "<=", ">", ">=", "between", "in", "not in")
#: what an ``sql`` probe's result may depend on (its ``inputs``), so that the check service can reuse it
#: until one of them changes: "catalog" (tables, columns, indexes, constraints, extensions, types,
#: privileges: the system catalogs) and "settings" (the server's configuration). A query without
#: ``inputs`` (statistics, sessions, sequence values, table rows, now()) runs on every verify.
PROBE_INPUTS = ("catalog", "settings")


def toml_type(v: Any) -> str:
    """The TOML name of a parsed value's type, for messages."""
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a float"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "a table"
    return f"a {type(v).__name__}"


_STR = "string"
_STRS = "array of strings"
_NUM = "number"
_INT = "integer"
_BOOL = "boolean"
_TABLE = "table"
_TABLES = "array of tables"

# the expected shape of each probe parameter (by kind where the same name means different things)
PARAM_TYPES: dict[str, str] = {
    "query": _STR, "table": _STR, "schema": _STR, "name": _STR, "file": _STR, "pattern": _STR, "label": _STR,
    "unit": _STR, "dir": _STR, "tracking_table": _STR, "version_column": _STR, "name_column": _STR, "fix": _STR,
    "path": _STR, "hint": _STR, "type": _STR, "expression": _STR, "references": _STR, "expect": _STR,
    "on_fail": _STR, "op": _STR,
    "limit": _INT, "expect_count": _INT, "max_bytes": _INT, "timeout_ms": _INT,
    "max_age_hours": _NUM, "warn_ratio": _NUM, "fail_ratio": _NUM, "window_hours": _NUM,
    "preload": _BOOL, "exact": _BOOL,
    "refs": _STRS, "patterns": _STRS, "tables": _STRS, "columns": _STRS, "inputs": _STRS,
    "indexes": _TABLES, "queries": _TABLES, "constraints": _TABLES, "require": _TABLE,
}
PARAM_TYPES_BY_KIND: dict[tuple[str, str], str] = {
    ("columns", "tables"): _TABLES, ("columns", "columns"): _TABLE,
}
# keys inside the tables of an array-of-tables parameter
NESTED_TYPES: dict[str, dict[str, str]] = {
    "indexes": {"name": _STR, "columns": _STRS, "unique": _BOOL, "using": _STR, "where": _STR},
    "queries": {"table": _STR, "sql": _STR},
    "tables": {"table": _STR, "columns": _TABLE, "exact": _BOOL},
    "constraints": {"table": _STR, "type": _STR, "columns": _STRS, "expression": _STR, "references": _STR,
                    "name": _STR},
}
NESTED_REQUIRED: dict[str, tuple[str, ...]] = {
    "indexes": ("columns",), "queries": ("table", "sql"), "tables": ("table",), "constraints": ("table",),
}


def _type_ok(v: Any, want: str) -> bool:
    if want == _STR:
        return isinstance(v, str)
    if want == _INT:
        return isinstance(v, int) and not isinstance(v, bool)
    if want == _NUM:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if want == _BOOL:
        return isinstance(v, bool)
    if want == _STRS:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if want == _TABLE:
        return isinstance(v, dict)
    if want == _TABLES:
        return isinstance(v, list) and all(isinstance(x, dict) for x in v)
    return True


def _param_problem(kind: str, key: str, value: Any) -> str | None:
    """Why ``value`` cannot be the ``key`` parameter of a ``kind`` probe, else None."""
    want = PARAM_TYPES_BY_KIND.get((kind, key), PARAM_TYPES.get(key))
    if want is None:
        return None
    if not _type_ok(value, want):
        return f"{key} must be {'an' if want[0] in 'aeiou' else 'a'} {want}, not {toml_type(value)} ({value!r:.40})"
    nested = NESTED_TYPES.get(key) if want == _TABLES else None
    if nested:
        for n, entry in enumerate(value, 1):
            for req in NESTED_REQUIRED.get(key, ()):
                if req not in entry:
                    return f"{key}[{n}] is missing {req!r}"
            for k, v in entry.items():
                w = nested.get(k)
                if w and not _type_ok(v, w):
                    return f"{key}[{n}].{k} must be {'an' if w[0] in 'aeiou' else 'a'} {w}, not {toml_type(v)} ({v!r:.40})"
    if kind == "columns" and key == "columns":
        bad = [c for c, t in value.items() if not isinstance(t, str)]
        if bad:
            return f"columns.{bad[0]} must be a type name (a string), not {toml_type(value[bad[0]])}"
    return None
