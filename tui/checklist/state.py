"""Checklist state per database identity: ticks, notes, last results and fix runs.

One JSON file per database identity (the cluster's system identifier plus the database name,
never the DSN) in ``<state_dir>/checklist/``. Writes are atomic (temp file, fsync, os.replace)
and read-modify-write goes through :func:`update_state`, which holds an flock so the TUI and a
headless ``pgpreflight fix`` do not lose each other's changes. A file that cannot be read is moved
aside (``*.corrupt-<time>``) with a warning, never silently overwritten. Nothing secret is stored:
no DSN, no password, only who (the OS user), when, and what was found.

File shape (version 1)::

    {"version": 1,
     "database": {"system_identifier": "7301…", "name": "metaextract"},
     "ticks":   {"backups.separate_storage": {"by": "alice", "at": "2026-01-05T10:00:00+00:00"}},
     "notes":   {"pool.max": [{"by": "alice", "at": "…", "text": "PR #123 raises it to 20"}]},
     "results": {"pool.max": {"status": "fail", "detail": "max: 10 in server/db.ts line 28, needs ≥ 20",
                              "at": "…"}},
     "fix_runs": {"backup_test": {"at": "…", "ok": true, "by": "alice", "item": "backups.restore_tested",
                                  "figures": {"dump_bytes": 123, "tables": 6}}},
     "choice": {"checklist": "images-mvp", "app_root": "/srv/metaextract", "by": "alice", "at": "…"}}
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from tui.model.checklist import ItemResult, Note, Tick

STATE_VERSION = 1


@dataclass(frozen=True)
class DatabaseIdentity:
    system_identifier: str
    database: str

    @property
    def key(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]", lambda m: f"%{ord(m.group()):02x}", self.database)
        return f"{self.system_identifier}-{safe}"


async def fetch_identity(conn) -> DatabaseIdentity:
    """The identity of the database an asyncpg connection is on."""
    row = await conn.fetchrow(
        "SELECT (SELECT system_identifier FROM pg_control_system())::text AS sysid, current_database() AS db"
    )
    return DatabaseIdentity(str(row["sysid"]), row["db"])


def os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime | None:
    try:
        d = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


@dataclass
class ChecklistState:
    identity: DatabaseIdentity
    ticks: dict[str, dict] = field(default_factory=dict)
    notes: dict[str, list[dict]] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)
    fix_runs: dict[str, dict] = field(default_factory=dict)
    peaks: dict[str, dict] = field(default_factory=dict)  # e.g. connections: {value, at}, seen by checks
    #: the checklist chosen for this database, remembered: {checklist, app_root?, backup_dir?, by, at}
    choice: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # not saved: e.g. "corrupt file moved aside"
    unsaveable: bool = False  # a corrupt file that could not be moved aside: never overwrite it

    # -- reading ----------------------------------------------------------------------------
    def tick(self, item_id: str) -> Tick | None:
        t = self.ticks.get(item_id)
        return Tick(by=str(t.get("by", "?")), at=str(t.get("at", ""))) if isinstance(t, dict) else None

    def notes_for(self, item_id: str) -> tuple[Note, ...]:
        return tuple(Note(by=str(n.get("by", "?")), at=str(n.get("at", "")), text=str(n.get("text", "")))
                     for n in self.notes.get(item_id, []) if isinstance(n, dict))

    def fix_run(self, fix_name: str) -> dict | None:
        r = self.fix_runs.get(fix_name)
        return r if isinstance(r, dict) else None

    # -- changing (in memory; save with save_state or use update_state) ----------------------
    def set_tick(self, item_id: str, ticked: bool = True, by: str | None = None, at: str | None = None) -> None:
        if ticked:
            self.ticks[item_id] = {"by": by or os_user(), "at": at or now_iso()}
        else:
            self.ticks.pop(item_id, None)

    def add_note(self, item_id: str, text: str, by: str | None = None, at: str | None = None) -> None:
        text = " ".join(text.split())
        if text:
            self.notes.setdefault(item_id, []).append({"by": by or os_user(), "at": at or now_iso(), "text": text})

    def set_results(self, results: dict[str, ItemResult] | list[ItemResult]) -> None:
        values = results.values() if isinstance(results, dict) else results
        for r in values:
            at = datetime.fromtimestamp(r.checked_at or time.time(), timezone.utc).isoformat(timespec="seconds")
            self.results[r.item_id] = {"status": r.status, "detail": r.detail, "at": at}

    def set_fix_run(self, fix_name: str, ok: bool, figures: dict | None = None, *, item_id: str | None = None,
                    at: str | None = None, by: str | None = None, detail: str | None = None) -> None:
        run: dict[str, Any] = {"at": at or now_iso(), "ok": bool(ok), "by": by or os_user(),
                               "figures": dict(figures or {})}
        if item_id:
            run["item"] = item_id
        if detail:
            run["detail"] = detail
        self.fix_runs[fix_name] = run

    def set_choice(self, checklist: str, *, app_root: str | None = None, backup_dir: str | None = None,
                   crontab_file: str | None = None, by: str | None = None, at: str | None = None) -> None:
        """Remember the checklist chosen for this database (and the app root and backup directory it was
        checked with), so that check, report and fix without --checklist use it."""
        old = self.choice if isinstance(self.choice, dict) else {}
        new: dict[str, Any] = {"checklist": str(checklist), "by": by or os_user(), "at": at or now_iso()}
        same = old.get("checklist") == new["checklist"]
        for key, value in (("app_root", app_root), ("backup_dir", backup_dir), ("crontab_file", crontab_file)):
            if value is not None:
                new[key] = str(value)
            elif same and isinstance(old.get(key), str):
                new[key] = old[key]
        self.choice = new

    @property
    def chosen_checklist(self) -> str | None:
        c = self.choice.get("checklist") if isinstance(self.choice, dict) else None
        return c if isinstance(c, str) and c else None

    def observe_peak(self, name: str, value: float, *, window_s: float = 7 * 86400, at: str | None = None) -> dict:
        """Keep the highest value seen in the last ``window_s`` (an older peak is replaced)."""
        old = self.peaks.get(name)
        now = at or now_iso()
        old_at = parse_iso(old.get("at", "")) if isinstance(old, dict) else None
        stale = old_at is None or (parse_iso(now) - old_at).total_seconds() > window_s
        if stale or value >= old.get("value", 0):
            self.peaks[name] = {"value": value, "at": now}
        return self.peaks[name]

    def merge_peaks(self, peaks: dict[str, dict], *, window_s: float = 7 * 86400) -> None:
        """Fold in peaks observed elsewhere (another writer may have saved in between)."""
        now = datetime.now(timezone.utc)
        for name, p in peaks.items():
            mine = self.peaks.get(name)
            mine_at = parse_iso(mine.get("at", "")) if isinstance(mine, dict) else None
            stale = mine_at is None or (now - mine_at).total_seconds() > window_s
            if stale or p.get("value", 0) >= mine.get("value", 0):
                self.peaks[name] = dict(p)

    def to_json(self) -> dict:
        return {
            "version": STATE_VERSION,
            "database": {"system_identifier": self.identity.system_identifier, "name": self.identity.database},
            "ticks": self.ticks,
            "notes": self.notes,
            "results": self.results,
            "fix_runs": self.fix_runs,
            "peaks": self.peaks,
            "choice": self.choice,
        }


def state_path(state_dir: Path | str, identity: DatabaseIdentity) -> Path:
    return Path(state_dir) / "checklist" / f"{identity.key}.json"


def load_state(state_dir: Path | str, identity: DatabaseIdentity) -> ChecklistState:
    """The state of one database; empty when there is none. A corrupt file is moved aside with a warning."""
    path = state_path(state_dir, identity)
    st = ChecklistState(identity)
    try:
        raw_bytes = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # none yet (a path that cannot exist: saving says so)
        return st
    except OSError as e:
        st.warnings.append(f"cannot read checklist state {path}: {e.strerror or e}")
        return st
    try:
        data = json.loads(raw_bytes.decode("utf-8"))  # UnicodeDecodeError is a ValueError: corrupt too
        if not isinstance(data, dict) or not isinstance(data.get("version"), int):
            raise ValueError("not a pgpreflight state file")
        if data["version"] > STATE_VERSION:
            raise ValueError(f"state version {data['version']} is newer than this pgpreflight")
        for key in ("ticks", "notes", "results", "fix_runs", "peaks"):
            if not isinstance(data.get(key, {}), dict):
                raise ValueError(f"'{key}' is not an object")
            entry_type = list if key == "notes" else dict
            for k, v in data.get(key, {}).items():
                if not isinstance(v, entry_type):
                    raise ValueError(f"'{key}.{k}' is not {'an array' if entry_type is list else 'an object'}")
    except ValueError as e:
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        n = 1
        while aside.exists():
            aside = aside.with_name(f"{aside.name.split('~')[0]}~{n}")
            n += 1
        try:
            os.replace(path, aside)
        except OSError as oe:  # cannot move it: leave it alone and work on an empty state in memory
            st.warnings.append(f"checklist state {path} is corrupt ({reason}) and cannot be moved aside "
                               f"({oe.strerror or oe}); starting empty")
            st.unsaveable = True
            return st
        st.warnings.append(f"checklist state {path} was corrupt ({reason}); moved aside to {aside.name}, "
                           f"starting empty")
        return st
    st.ticks = dict(data.get("ticks", {}))
    st.notes = dict(data.get("notes", {}))
    st.results = dict(data.get("results", {}))
    st.fix_runs = dict(data.get("fix_runs", {}))
    st.peaks = dict(data.get("peaks", {}))
    choice = data.get("choice", {})
    st.choice = dict(choice) if isinstance(choice, dict) else {}
    return st


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half of it:
    a temp file in the same directory, fsync, chmod ``mode``, os.replace, fsync of the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(str(path.parent), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def save_state(state_dir: Path | str, state: ChecklistState) -> Path:
    path = state_path(state_dir, state.identity)
    write_atomic(path, json.dumps(state.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


@contextlib.contextmanager
def _locked(state_dir: Path | str, identity: DatabaseIdentity) -> Iterator[None]:
    path = state_path(state_dir, identity)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lf:
        fcntl.flock(lf.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lf.fileno(), fcntl.LOCK_UN)


def update_state(state_dir: Path | str, identity: DatabaseIdentity,
                 change: Callable[[ChecklistState], None]) -> ChecklistState:
    """Load, apply ``change``, save: under a lock, so concurrent writers do not lose updates."""
    with _locked(state_dir, identity):
        st = load_state(state_dir, identity)
        change(st)
        if st.unsaveable:
            raise OSError(errno.EIO, "the corrupt state file there could not be moved aside")
        save_state(state_dir, st)
    return st


def record_fix_run(state_dir: Path | str, identity: DatabaseIdentity, fix_name: str, ok: bool,
                   figures: dict | None = None, *, item_id: str | None = None, detail: str | None = None,
                   at: str | None = None) -> ChecklistState:
    """Record the outcome of a fix (the fixes package calls this). ``last_run`` probes read it:
    ``fix_runs[fix_name] = {at, ok, by, figures, item?, detail?}``; figures are plain JSON numbers and
    strings (e.g. connection_test: connections, successes, failures, p50_ms, p95_ms; backup_test:
    dump_bytes, dump_s, restore_s, tables, rows)."""
    return update_state(state_dir, identity,
                        lambda st: st.set_fix_run(fix_name, ok, figures, item_id=item_id, detail=detail, at=at))
