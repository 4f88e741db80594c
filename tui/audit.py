"""The audit log: one JSON line per write the tool makes (or refuses) on a database.

<state_dir>/audit.jsonl, fields {time, os_user, target, action, statements, outcome}.
``target`` is the redacted display form: never a password. Pure Python.
"""
from __future__ import annotations

import getpass
import json
import os
from datetime import datetime, timezone
from pathlib import Path

AUDIT_FILE = "audit.jsonl"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def record(state_dir: Path | str, target: str, action: str, statements: list[str], outcome: str,
           **extra) -> dict:
    """Append one entry and return it. ``target`` must already be the redacted display form."""
    entry = {
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "os_user": _os_user(),
        "target": target,
        "action": action,
        "statements": list(statements),
        "outcome": outcome,
    }
    entry.update(extra)
    d = Path(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / AUDIT_FILE
    line = json.dumps(entry, ensure_ascii=False) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return entry


def read(state_dir: Path | str) -> list[dict]:
    path = Path(state_dir) / AUDIT_FILE
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
