"""The flight recorder (issue 14 §2): every poll round, with the alerts raised and cleared, the fixes
run and the checklist results, in a local SQLite file. Pure Python (no textual, no asyncpg).

The recording IS the monitor's event stream (tui.model.events), so that replay (tui.replay) feeds the
same consumers. A consumer hands every event to :meth:`Recorder.take`: the monitor's, and the ones it
makes itself (AlertChanged, FixRan, ChecklistRan). A round is the events since the last RoundEnded;
take the events a round causes (the AlertChanged that its figures raise) *before* its RoundEnded, so
that they are recorded with it. At RoundEnded the round goes to a writer thread: nothing here writes
SQLite on the caller's event loop. ``close()`` (or ``await aclose()``) flushes and waits.

Files and privacy
-----------------
``<state_dir>/recordings/<identity key>/<YYYY-MM-DD>.sqlite``: one per database identity
(tui.checklist.state.DatabaseIdentity.key, never the DSN), rolled at UTC midnight (the first round of
a new file carries the latest state of every pane, so a file stands on its own). The directories are
0700 and the files 0600 (created with os.open and the mode, then fchmod: umask-proof; the -wal and
-shm files too). ``--record FILE`` names one file (no roll). A ``<file>.lock`` (flock) keeps two
processes from writing one file: the second takes ``<day>.2.sqlite``. Retention (files older than
``retention_days``) and a size cap over the whole recordings directory (oldest first) are applied at
open and at each roll; a file that another process is writing is never removed.

Query texts hold customers' data. ``queries`` ("normalized", the default) replaces their literals by
$1, $2 as pg_stat_statements shows them (pglast's normalize); a text pglast cannot parse (pg_stat_activity
cuts long queries at track_activity_query_size) falls back to a tokenizer that blanks string, dollar-
quoted and numeric literals, and an unterminated literal to the end: a text is never stored raw.
"full" keeps the texts, "none" stores none. In every mode a password after PASSWORD, or in a
``password=`` connection string, is blanked. The fields that hold SQL are found by name (``query``,
``*_query``, ``sql``, ``*_sql``), on every dataclass of an event.

Compaction
----------
Each pane's event (and the checklist's results, the connection state, the active alerts and the
notices: the "panes" of :data:`STORE_PANES`) is a *payload*: its JSON (the codec below, floats at
about a millisecond) raw-deflated. A payload equal to the pane's last one is not stored again: the
round refers to the stored one. Otherwise it is compressed with the pane's last keyframe as the
deflate dictionary (``zdict``): a delta against it; every :data:`KEYFRAME_EVERY` payloads of a pane
(and at the start of a file) a keyframe is compressed without one. Reading any payload needs at most
one keyframe and one delta, so a seek costs the same anywhere in a day.

Schema (``meta.format`` = 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)
        format "1", app "pgpreflight", identity, target (redacted: user@host:port/db), queries,
        panes (JSON list: the order of rounds.data's "l"), created_at (ISO UTC)
    payloads(id INTEGER PRIMARY KEY, pane TEXT, kind INTEGER, base INTEGER, data BLOB)
        kind 0: a keyframe, data = raw deflate of the payload's JSON
        kind 1: a delta, data = raw deflate with the JSON of payload ``base`` (a keyframe) as zdict
    rounds(id INTEGER PRIMARY KEY, at REAL, mono REAL, data TEXT)   + index rounds_at(at)
        at: wall time (Unix seconds, UTC) when its RoundEnded was taken; mono: RoundEnded.at
        data: JSON {"e": [[ms, payload id] | [ms, event], ...], "l": [payload id or 0, ...]}
          "e": the round's events in order, ms = their take time less ``at`` (≤ 0); a pane event
               refers to its payload, any other event (RoundEnded, AlertChanged, FixRan,
               PartTurnedOff) is inline. A round without RoundEnded is the flush of a close.
          "l": after this round, the latest payload of each pane of meta.panes: the state to seek to

WAL mode, synchronous=NORMAL, one transaction per round: a killed process loses at most the round
being written (and none that was committed).

The codec
---------
:func:`encode` turns a frozen dataclass event into JSON-able data: a dataclass is a dict tagged with
its class name (``"$"``) holding the fields that differ from their defaults, a datetime
``{"$t": iso}``, a tuple a list, a dict ``{"$m": [[k, v], ...]}``. :func:`decode` reverses it for
every dataclass of tui.model.snapshot and tui.model.events: lists become tuples, a field missing from
the recording takes its default (None when it has none), a field the class no longer has is dropped,
an unknown class stays a dict. Generic over the fields, so ServerInfo can grow without a change here.
"""
from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import functools
import json
import math
import os
import queue
import re
import sqlite3
import threading
import time
import zlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from tui.model import events as E

FORMAT = 1
QUERY_MODES = ("full", "normalized", "none")
KEYFRAME_EVERY = 60  # payloads of a pane between two keyframes
DEFAULT_RETENTION_DAYS = 7
DEFAULT_MAX_BYTES = 200 * 2**20
DEFLATE_LEVEL = 6

#: what a payload row can be: the monitor's panes, then the state kept for a seek
STORE_PANES = ("server", "connections", "slow", "tables", "host", "limits", "checklist", "connection",
               "alerts", "notices")
PANE_OF: dict[type, str] = {
    E.ServerPolled: "server", E.ConnectionsPolled: "connections", E.SlowQueriesPolled: "slow",
    E.TablesPolled: "tables", E.HostPolled: "host", E.LimitsPolled: "limits", E.ChecklistRan: "checklist",
    E.ConnectionChanged: "connection",
}
SUFFIXES = ("", "-wal", "-shm", "-journal")
_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.(\d+))?\.sqlite$")


class RecordingError(Exception):
    """A recording that cannot be opened, written or read: one line naming the file and why."""


# -- the codec ---------------------------------------------------------------------------------------

def _classes() -> dict[str, type]:
    from tui.model import snapshot as S

    out: dict[str, type] = {}
    for mod in (S, E):
        for obj in vars(mod).values():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj):
                out[obj.__name__] = obj
    return out


_TYPES: dict[str, type] = {}
_FIELDS: dict[type, tuple] = {}  # cls -> ((name, default or MISSING, has_default), ...)


def types() -> dict[str, type]:
    if not _TYPES:
        _TYPES.update(_classes())
    return _TYPES


def _fields(cls: type) -> tuple:
    f = _FIELDS.get(cls)
    if f is None:
        out = []
        for fl in dataclasses.fields(cls):
            if fl.default is not dataclasses.MISSING:
                out.append((fl.name, fl.default, True))
            elif fl.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                out.append((fl.name, fl.default_factory(), True))  # type: ignore[misc]
            else:
                out.append((fl.name, None, False))
        f = _FIELDS[cls] = tuple(out)
    return f


def quantize(x: float) -> float:
    """A float at the precision a recording keeps: 3 decimals from 1 up (ages and monotonic times to
    the millisecond, sizes, means), 6 significant digits below 1 (ratios, small means)."""
    if x != x or x in (math.inf, -math.inf) or x == 0:
        return x
    if abs(x) >= 1:
        return round(x, 3)
    return float(f"{x:.6g}")


def _is_sql_field(name: str) -> bool:
    return name == "query" or name == "sql" or name.endswith("_query") or name.endswith("_sql")


_PLANS: dict[type, tuple] = {}  # cls -> (name, ((field, default, has_default, is_sql), ...), has query_hidden)
_PLAIN = frozenset((str, int, bool, type(None)))


def _plan(cls: type) -> tuple:
    plan = _PLANS.get(cls)
    if plan is None:
        fs = tuple((n, d, h, _is_sql_field(n)) for n, d, h in _fields(cls))
        plan = _PLANS[cls] = (cls.__name__, fs, any(f[0] == "query_hidden" for f in fs))
    return plan


def encode(obj: Any, *, queries: str = "full", q: bool = False) -> Any:
    """An event (or any value of one) as JSON-able data. ``queries``: what becomes of SQL texts
    (:func:`scrub_query`); ``q``: floats quantized (:func:`quantize`)."""
    return _enc(obj, queries, q)


def _enc(obj: Any, queries: str, q: bool) -> Any:
    t = type(obj)
    if t in _PLAIN:
        return obj
    if t is float:
        return quantize(obj) if q else obj
    if t is tuple or t is list:
        return [_enc(v, queries, q) for v in obj]
    plan = _PLANS.get(t)
    if plan is None and dataclasses.is_dataclass(t):
        plan = _plan(t)
    if plan is not None:
        name, fs, has_hidden = plan
        out: dict = {"$": name}
        hidden = has_hidden and obj.query_hidden
        for fname, default, has_default, is_sql in fs:
            v = getattr(obj, fname)
            if has_default and v == default and type(v) is type(default):
                continue
            if is_sql and isinstance(v, str) and not hidden:
                out[fname] = scrub_query(str(v), queries)
            elif type(v) in _PLAIN:
                out[fname] = v
            else:
                out[fname] = _enc(v, queries, q)
        return out
    if isinstance(obj, datetime):
        return {"$t": obj.isoformat()}
    if isinstance(obj, date):
        return {"$d": obj.isoformat()}
    if isinstance(obj, (tuple, list, frozenset, set)):
        return [_enc(v, queries, q) for v in obj]
    if isinstance(obj, dict):
        return {"$m": [[_enc(k, queries, q), _enc(v, queries, q)] for k, v in obj.items()]}
    if isinstance(obj, float):
        return quantize(obj) if q else obj
    if isinstance(obj, (int, str)):
        return obj
    return str(obj)


def decode(data: Any) -> Any:
    """The value :func:`encode` made, back (tolerant of fields added or gone, see the module doc)."""
    if isinstance(data, list):
        return tuple(decode(v) for v in data)
    if not isinstance(data, dict):
        return data
    if "$t" in data and len(data) == 1:
        d = datetime.fromisoformat(data["$t"])
        return d
    if "$d" in data and len(data) == 1:
        return date.fromisoformat(data["$d"])
    if "$m" in data and len(data) == 1:
        return {_hashable(decode(k)): decode(v) for k, v in data["$m"]}
    name = data.get("$")
    cls = types().get(name) if isinstance(name, str) else None
    if cls is None:
        return {k: decode(v) for k, v in data.items()}
    kw = {}
    for fname, default, has_default in _fields(cls):
        if fname in data:
            kw[fname] = decode(data[fname])
        elif not has_default:
            kw[fname] = None
    try:
        return cls(**kw)
    except Exception:  # a class whose __post_init__ refuses what an older version wrote
        obj = object.__new__(cls)
        for fname, default, _ in _fields(cls):
            object.__setattr__(obj, fname, kw.get(fname, default))
        return obj


def _hashable(v):
    return tuple(_hashable(x) for x in v) if isinstance(v, (list, tuple)) else v


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def dumps(obj: Any, *, queries: str = "full", q: bool = True) -> bytes:
    """The payload JSON of ``obj`` (compact; floats quantized unless ``q`` is False)."""
    return _JSON.encode(_enc(obj, queries, q)).encode()


def loads(data: bytes | str) -> Any:
    return decode(json.loads(data))


# -- query texts -------------------------------------------------------------------------------------

_PASSWORD = re.compile(
    r"""(\bpassword\b\s*(?:=\s*)?)(?!null\b)('(?:[^']|'')*'?|\$\$.*?(?:\$\$|$)|[^\s',;)]+)""", re.I | re.S)
_TOKEN = re.compile(r"""
    (?P<dq>"(?:[^"]|"")*"?)                                    # a quoted identifier: kept
  | (?P<cm>/\*.*?(?:\*/|$)|--[^\n]*)                           # a comment: kept, its quoted parts blanked
  | (?P<dollar>\$(?P<tag>(?:[^\W\d]\w*)?)\$.*?(?:\$(?P=tag)\$|$))  # a dollar-quoted string
  | (?P<param>\$\d+)                                           # a parameter: kept
  | (?P<estr>[Ee]'(?:[^'\\]|''|\\.)*(?:'|\\?$))                # E'...' (backslash escapes)
  | (?P<str>(?:[BbXxNn]|[Uu]&)?'(?:[^']|'')*(?:'|$))           # a string literal, or one cut short
  | (?P<word>[^\W\d][\w$]*)                                    # a keyword or identifier: kept
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)              # a number
""", re.S | re.X)
_QUOTED_IN_COMMENT = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?")
_PARAM = re.compile(r"\$(\d+)")


def _blank_comments(text: str) -> str:
    """Quoted values inside comments (sqlcommenter tags: /* user='bob@x.com' */) become '…'."""
    if "/*" not in text and "--" not in text:
        return text

    def sub(m: re.Match) -> str:
        if m.group("cm"):
            return _QUOTED_IN_COMMENT.sub("'…'", m.group("cm"))
        return m.group(0)

    return _TOKEN.sub(sub, text)


def blank_literals(text: str) -> str:
    """The fallback for a text pglast cannot parse: every string, dollar-quoted and numeric literal
    becomes $n (an unterminated one to the end of the text); identifiers, keywords and parameters stay."""
    used = [int(m.group(1)) for m in _PARAM.finditer(text)]
    n = [max(used, default=0)]

    def sub(m: re.Match) -> str:
        kind = m.lastgroup if m.lastgroup != "tag" else "dollar"
        if kind in ("dq", "param", "word"):
            return m.group(0)
        if kind == "cm":
            return _QUOTED_IN_COMMENT.sub("'…'", m.group(0))
        n[0] += 1
        return f"${n[0]}"

    return _TOKEN.sub(sub, text)


@functools.lru_cache(maxsize=4096)
def normalize_query(text: str) -> str:
    """Literals as $1, $2 (pg_stat_statements' form), by pglast; the tokenizer when it cannot parse."""
    if not text or not text.strip():
        return text
    try:
        from pglast import parser

        out = parser.normalize(text)
    except Exception:  # a text cut short, a hidden one, not SQL at all: blank what looks like data
        return blank_literals(text)
    return _blank_comments(out)


def scrub_query(text: str, mode: str) -> str:
    """What a recording keeps of a query text: ``mode`` "full", "normalized" or "none"; never a password."""
    if mode == "none":
        return ""
    if mode == "normalized":
        text = normalize_query(text)
    if "assword" not in text and "ASSWORD" not in text:
        return text
    return _PASSWORD.sub(_password_blank, text)


def _password_blank(m: re.Match) -> str:
    v = m.group(2)
    return m.group(1) + ("'…'" if v.startswith("'") else "$$…$$" if v.startswith("$") else "…")


# -- files -------------------------------------------------------------------------------------------

def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def _private_file(path: Path) -> None:
    """Create (or tighten) ``path`` as 0600, whatever the umask."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def recordings_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "recordings"


def file_day(path: Path) -> date | None:
    m = _NAME.match(path.name)
    if not m:
        return None
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        return None


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _try_lock(path: Path) -> int | None:
    """An flock on ``<path>.lock`` (a file beside: an fd of the database itself must not be closed
    under SQLite's own POSIX locks). The fd while held, None when another process holds it."""
    lp = _lock_path(path)
    fd = os.open(lp, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        os.close(fd)
        raise
    return fd


def _in_use(path: Path) -> bool:
    lp = _lock_path(path)
    if not lp.exists():
        return False
    try:
        fd = os.open(lp, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _size(path: Path) -> int:
    """The bytes a recording holds: the file and its WAL (not the -shm, an index in shared memory)."""
    total = 0
    for s in ("", "-wal", "-journal"):
        try:
            total += os.stat(str(path) + s).st_size
        except OSError:
            pass
    return total


def _remove(path: Path) -> None:
    for s in (*SUFFIXES, ".lock"):
        try:
            os.unlink(str(path) + s)
        except FileNotFoundError:
            pass


def prune(root: Path, *, retention_days: int, max_bytes: int, today: date, keep: Iterable[Path] = ()) -> list[Path]:
    """Remove recordings under ``root`` (every identity) older than ``retention_days``, then the
    oldest while all of them together pass ``max_bytes``. Never ``keep`` nor a file another process
    writes. Returns what was removed."""
    keep = {Path(p).resolve() for p in keep}
    files = []
    if not root.is_dir():
        return []
    for d in root.iterdir():
        if not d.is_dir():
            continue
        for f in d.iterdir():
            day = file_day(f)
            if day is not None:
                files.append((day, f.name, f))
    files.sort()
    removed: list[Path] = []
    cutoff = today - timedelta(days=retention_days)
    left = []
    for day, _name, f in files:
        if day < cutoff and f.resolve() not in keep and not _in_use(f):
            _remove(f)
            removed.append(f)
        else:
            left.append((day, f, _size(f)))
    total = sum(s for _d, _f, s in left)
    for day, f, s in left:
        if total <= max_bytes:
            break
        if f.resolve() in keep or _in_use(f):
            continue
        _remove(f)
        removed.append(f)
        total -= s
    return removed


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS payloads (id INTEGER PRIMARY KEY, pane TEXT NOT NULL, kind INTEGER NOT NULL,
                                     base INTEGER, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (id INTEGER PRIMARY KEY, at REAL NOT NULL, mono REAL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rounds_at ON rounds (at);
"""


def deflate(data: bytes, zdict: bytes | None = None) -> bytes:
    c = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15, zdict=zdict) if zdict else \
        zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def inflate(data: bytes, zdict: bytes | None = None) -> bytes:
    d = zlib.decompressobj(-15, zdict=zdict) if zdict else zlib.decompressobj(-15)
    return d.decompress(data) + d.flush()


def payload_bytes(conn: sqlite3.Connection, pid: int, cache: dict | None = None) -> bytes:
    """The JSON of payload ``pid``: a keyframe inflated, or a delta inflated with its keyframe.
    ``cache``: payload id -> JSON bytes, read and filled."""
    if cache is not None and pid in cache:
        return cache[pid]
    row = conn.execute("SELECT kind, base, data FROM payloads WHERE id=?", (pid,)).fetchone()
    if row is None:
        raise RecordingError(f"payload {pid} is missing")
    kind, base, data = row
    if kind == 0:
        out = inflate(data)
    elif kind == 1 and base:
        out = inflate(data, payload_bytes(conn, base, cache))
    else:
        raise RecordingError(f"payload {pid} is of an unknown kind {kind}")
    if cache is not None:
        cache[pid] = out
    return out


class _Pane:
    __slots__ = ("last_id", "last_bytes", "key_id", "key_bytes", "since_key")

    def __init__(self) -> None:
        self.last_id = 0
        self.last_bytes = b""
        self.key_id = 0
        self.key_bytes = b""
        self.since_key = 0


def connect_ro(path: Path) -> sqlite3.Connection:
    """A read-only connection (a URI: the path quoted, so that ? # % in a name stay a name)."""
    from urllib.parse import quote

    return sqlite3.connect(f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True, check_same_thread=False)


def _connect_file(path: Path) -> sqlite3.Connection:
    for s in ("-wal", "-shm"):  # SQLite gives them the database's mode; made first all the same
        p = Path(str(path) + s)
        if p.exists():
            os.chmod(p, 0o600)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class _File:
    """One recording file open for writing (the writer thread's)."""

    def __init__(self, path: Path, meta: dict[str, str]) -> None:
        self.path = path
        self.lock_fd = _try_lock(path)
        if self.lock_fd is None:
            raise RecordingError(f"{path}: another process is recording into it")
        self.conn = None
        try:
            if path.exists() and path.stat().st_size > 0:  # checked before anything touches it
                self._check(path, meta)
            _private_file(path)
            self.conn = _connect_file(path)
            for s in ("-wal", "-shm"):
                p = Path(str(path) + s)
                if p.exists():
                    os.chmod(p, 0o600)
            self.conn.executescript(_SCHEMA)
            with _tx(self.conn):
                for k, v in meta.items():
                    self.conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (k, v))
            panes = json.loads(self.conn.execute("SELECT value FROM meta WHERE key='panes'").fetchone()[0])
            self.panes = list(panes) + [p for p in STORE_PANES if p not in panes]
            if self.panes != panes:
                with _tx(self.conn):
                    self.conn.execute("UPDATE meta SET value=? WHERE key='panes'", (json.dumps(self.panes),))
        except RecordingError:
            self.close()
            raise
        except sqlite3.DatabaseError as e:
            self.close()
            raise RecordingError(f"{path}: not a pgpreflight recording ({e})") from None
        except OSError as e:
            self.close()
            raise RecordingError(f"{path}: {e.strerror or e}") from None

    def _check(self, path: Path, meta: dict[str, str]) -> None:
        try:
            conn = connect_ro(path)
            try:
                rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            raise RecordingError(f"{self.path}: not a pgpreflight recording (it holds other data)") from None
        if rows.get("app") != "pgpreflight":
            raise RecordingError(f"{self.path}: not a pgpreflight recording (it holds other data)")
        if rows.get("format") != str(FORMAT):
            raise RecordingError(f"{self.path}: a recording of format {rows.get('format')}, this version writes {FORMAT}")
        if meta.get("identity") and rows.get("identity") and rows["identity"] != meta["identity"]:
            raise RecordingError(f"{self.path}: records another database ({rows['identity']})")

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass
            self.conn = None
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


class _tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, et, ev, tb):
        self.conn.execute("COMMIT" if et is None else "ROLLBACK")
        return False


# -- the recorder ------------------------------------------------------------------------------------

class Recorder:
    """Records a consumer's events (see the module doc). Open with :meth:`open`."""

    def __init__(self, *, directory: Path | None, path: Path | None, identity_key: str, queries: str,
                 retention_days: int, max_bytes: int, target: str, wall: Callable[[], float]) -> None:
        if queries not in QUERY_MODES:
            raise ValueError(f"queries must be one of {', '.join(QUERY_MODES)}, not {queries!r}")
        self.directory = directory  # None: one named file, no roll
        self.fixed_path = path
        self.identity_key = identity_key
        self.queries = queries
        self.retention_days = retention_days
        self.max_bytes = max_bytes
        self.target = target
        self._wall = wall
        self._pending: list = []
        self._queue: queue.Queue = queue.Queue()
        self._file: _File | None = None
        self._day: date | None = None
        self._panes: dict[str, _Pane] = {}
        self._latest: dict[str, int] = {}
        self._alerts: dict[str, E.AlertChanged] = {}
        self._notices: list[E.PartTurnedOff] = []
        self._error: str | None = None
        self._error_said = False
        self._lock = threading.Lock()
        self.rounds_written = 0
        self.removed: list[Path] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def open(cls, state_dir: Path | str, identity_key: str, *, path: Path | str | None = None,
             queries: str = "normalized", retention_days: int = DEFAULT_RETENTION_DAYS,
             max_bytes: int = DEFAULT_MAX_BYTES, target: str = "",
             wall: Callable[[], float] = time.time) -> "Recorder":
        """Open (create, or append to) today's recording of ``identity_key`` under ``state_dir``, or the
        file ``path``; apply the retention and the cap; start the writer thread. Blocks for the few
        milliseconds the file's creation takes. ``target``: the redacted display form, kept in meta.
        ``wall``: the wall clock (time.time; tests give their own). Raises RecordingError."""
        if not identity_key or "/" in identity_key or identity_key in (".", ".."):
            raise RecordingError(f"not a database identity key: {identity_key!r}")
        directory = None if path is not None else recordings_dir(Path(state_dir)) / identity_key
        rec = cls(directory=directory, path=Path(path).expanduser() if path is not None else None,
                  identity_key=identity_key, queries=queries, retention_days=int(retention_days),
                  max_bytes=int(max_bytes), target=target, wall=wall)
        if rec.fixed_path is not None and not rec.fixed_path.parent.is_dir():
            raise RecordingError(f"{rec.fixed_path}: no such directory {rec.fixed_path.parent}")
        if rec.fixed_path is not None and rec.fixed_path.is_dir():
            raise RecordingError(f"{rec.fixed_path}: is a directory")
        ready: queue.Queue = queue.Queue()
        rec._thread = threading.Thread(target=rec._run, args=(ready,), name="pgpreflight-recorder", daemon=True)
        rec._thread.start()
        err = ready.get(timeout=30)
        if err is not None:
            rec._thread.join(5)
            raise err
        return rec

    # -- the consumer's side (the event loop) -------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The file being written now."""
        f = self._file
        return f.path if f is not None else self.fixed_path

    def take(self, ev) -> None:
        """Every event, as it comes: cheap (the wall time and a list append); at RoundEnded the round
        goes to the writer thread."""
        if self._closed:
            return
        self._pending.append((self._wall(), ev))
        if isinstance(ev, E.RoundEnded):
            self._queue.put(self._pending)
            self._pending = []

    def take_error(self) -> str | None:
        """The writer's failure, said once (then None until another one): "cannot record: …"."""
        with self._lock:
            if self._error is not None and not self._error_said:
                self._error_said = True
                return self._error
            return None

    @property
    def error(self) -> str | None:
        return self._error

    def close(self, timeout: float = 30.0) -> None:
        """Flush what was taken since the last RoundEnded (as a round of its own), wait for the
        writer and close the file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._pending:
            self._queue.put(self._pending)
            self._pending = []
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    async def aclose(self, timeout: float = 30.0) -> None:
        """:meth:`close` off the event loop."""
        await asyncio.to_thread(self.close, timeout)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every round handed over so far is written (tests, benchmarks)."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    # -- the writer thread --------------------------------------------------------------------------
    def _run(self, ready: queue.Queue) -> None:
        try:
            self._roll(datetime.fromtimestamp(self._wall(), timezone.utc).date())
        except RecordingError as e:
            ready.put(e)
            return
        except Exception as e:  # noqa: BLE001 - the caller gets one line
            ready.put(RecordingError(f"{self.path or self.directory}: cannot record: {_reason(e)}"))
            return
        ready.put(None)
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                if isinstance(item, threading.Event):
                    item.set()
                    continue
                try:
                    self._write_round(item)
                    with self._lock:
                        if self._error is not None and self._error_said:
                            self._error, self._error_said = None, False
                except Exception as e:  # noqa: BLE001 - a full disk must not stop the monitor
                    with self._lock:
                        if self._error is None:
                            self._error = f"cannot record into {self.path}: {_reason(e)}"
        finally:
            if self._file is not None:
                self._file.close()

    def _meta(self) -> dict[str, str]:
        from tui import __version__

        return {"format": str(FORMAT), "app": "pgpreflight", "version": __version__,
                "identity": self.identity_key, "target": self.target, "queries": self.queries,
                "panes": json.dumps(list(STORE_PANES)),
                "created_at": datetime.fromtimestamp(self._wall(), timezone.utc).isoformat(timespec="seconds")}

    def _roll(self, day: date) -> None:
        """Open the file of ``day`` (or the named file), carry the latest state into it, prune."""
        old = self._file
        if self.fixed_path is not None:
            if old is not None:
                return
            self._file = _File(self.fixed_path, self._meta())
            self._day = day
            self._resume_state()
            return
        _private_dir(self.directory.parent)
        _private_dir(self.directory)
        n = 1
        while True:
            name = f"{day.isoformat()}.sqlite" if n == 1 else f"{day.isoformat()}.{n}.sqlite"
            try:
                f = _File(self.directory / name, self._meta())
                break
            except RecordingError as e:
                if "another process" not in str(e) and "another database" not in str(e):
                    raise
                n += 1
                if n > 50:
                    raise
        carried = {p: self._panes[p].last_bytes for p in self._latest if p in self._panes}
        if old is not None:
            old.close()
        self._file, self._day = f, day
        self._panes, self._latest = {}, {}
        if carried:
            with _tx(f.conn):
                for pane, data in carried.items():
                    self._latest[pane] = self._store(pane, data)
        else:
            self._resume_state()
        self.removed += prune(self.directory.parent, retention_days=self.retention_days,
                              max_bytes=self.max_bytes, today=day, keep=[f.path])

    def _resume_state(self) -> None:
        """Appending to a file that has rounds: the latest payloads go on from its last round (the
        next payload of each pane is a keyframe; the deltas need the writer's own state)."""
        conn = self._file.conn
        row = conn.execute("SELECT data FROM rounds ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return
        latest = json.loads(row[0]).get("l", [])
        for pane, pid in zip(self._file.panes, latest):
            if pid:
                self._latest[pane] = pid
        for pane in ("alerts", "notices"):
            pid = self._latest.get(pane)
            if pid:
                try:
                    value = loads(payload_bytes(conn, pid))
                except Exception:  # noqa: BLE001 - a damaged payload: start afresh
                    continue
                if pane == "alerts":
                    self._alerts = {a.name: a for a in value if isinstance(a, E.AlertChanged)}
                else:
                    self._notices = [n for n in value if isinstance(n, E.PartTurnedOff)]

    def _store(self, pane: str, data: bytes) -> int:
        ps = self._panes.get(pane)
        if ps is not None and data == ps.last_bytes:
            return ps.last_id
        conn = self._file.conn
        if ps is None or ps.since_key >= KEYFRAME_EVERY - 1:
            blob, kind, base = deflate(data), 0, None
        else:
            blob, kind, base = deflate(data, ps.key_bytes), 1, ps.key_id
        pid = conn.execute("INSERT INTO payloads (pane, kind, base, data) VALUES (?, ?, ?, ?)",
                           (pane, kind, base, blob)).lastrowid
        if ps is None:
            ps = self._panes[pane] = _Pane()
        if kind == 0:
            ps.key_id, ps.key_bytes, ps.since_key = pid, data, 0
        else:
            ps.since_key += 1
        ps.last_id, ps.last_bytes = pid, data
        return pid

    def _write_round(self, items: list) -> None:
        ended = items[-1][1] if isinstance(items[-1][1], E.RoundEnded) else None
        at = items[-1][0]
        day = datetime.fromtimestamp(at, timezone.utc).date()
        if self._day is not None and day != self._day and self.fixed_path is None:
            self._roll(day)
        f = self._file
        q = self.queries
        entries = []
        alerts_changed = notices_changed = False
        with _tx(f.conn):
            for wall, ev in items:
                ms = int(round((wall - at) * 1000))
                pane = PANE_OF.get(type(ev))
                if pane is not None:
                    pid = self._store(pane, dumps(ev, queries=q))
                    self._latest[pane] = pid
                    entries.append([ms, pid])
                    continue
                if not (dataclasses.is_dataclass(ev) and not isinstance(ev, type)):
                    continue
                entries.append([ms, encode(ev, queries=q, q=True)])
                if isinstance(ev, E.AlertChanged):
                    if ev.cleared_at is None:
                        self._alerts[ev.name] = ev
                    else:
                        self._alerts.pop(ev.name, None)
                    alerts_changed = True
                elif isinstance(ev, E.PartTurnedOff):
                    if ev not in self._notices:
                        self._notices.append(ev)
                        notices_changed = True
            if alerts_changed or ("alerts" not in self._latest and self._alerts):
                self._latest["alerts"] = self._store("alerts", dumps(tuple(self._alerts.values()), queries=q))
            if notices_changed:
                self._latest["notices"] = self._store("notices", dumps(tuple(self._notices), queries=q))
            data = {"e": entries, "l": [self._latest.get(p, 0) for p in f.panes]}
            f.conn.execute("INSERT INTO rounds (at, mono, data) VALUES (?, ?, ?)",
                           (at, ended.at if ended is not None else None,
                            _JSON.encode(data)))
        self.rounds_written += 1


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def alert_event(alert) -> E.AlertChanged:
    """tui.alerts.Alert as the event the recorder, the TUI and watch share."""
    return E.AlertChanged(alert.name, float(alert.value), float(alert.threshold), alert.started_at,
                          alert.cleared_at, alert.message)


def checklist_event(run, at: datetime | None = None) -> E.ChecklistRan:
    """A tui.checklist.runner.CheckRun as ChecklistRan: each item's status."""
    name = getattr(run.checklist, "name", "") or ""
    results = tuple((item_id, r.status) for item_id, r in run.results.items())
    return E.ChecklistRan(name, results, at or datetime.now(timezone.utc))


__all__ = ["Recorder", "RecordingError", "encode", "decode", "dumps", "loads", "normalize_query",
           "scrub_query", "blank_literals", "prune", "payload_bytes", "alert_event", "checklist_event", "STORE_PANES", "FORMAT"]
