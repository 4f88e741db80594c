"""Files on this host that the checklist looks at and the file fixes write: the backup schedule (a
crontab file or the user's crontab), where a directory is mounted, and the atomic write with a backup
copy. No asyncpg, no textual: the probes (tui.checklist.probes) and the fixes (tui.fixes.files) share it.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: The comment that marks the schedule line the backup_schedule fix installs (one per database).
CRON_MARK = "# pgpreflight backup"

_REMOTE_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[A-Za-z0-9_.@-]+:(?!//)\S)")


def is_remote(location: str) -> bool:
    """``s3://bucket/x``, ``ssh://h/x``, ``host:/path`` or ``user@host:path``: a target on another host."""
    loc = str(location).strip()
    if not loc or loc.startswith(("/", "./", "../", "~")):
        return False
    return bool(_REMOTE_RE.match(loc))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------ atomic writes
def backup_copy_path(path: Path, stamp: str | None = None) -> Path:
    """``db.ts.pgpreflight-20260105T020000.bak`` beside the file (a suffix when that exists already)."""
    stamp = stamp or time.strftime("%Y%m%dT%H%M%S")
    cand = path.with_name(f"{path.name}.pgpreflight-{stamp}.bak")
    n = 1
    while cand.exists():
        cand = path.with_name(f"{path.name}.pgpreflight-{stamp}-{n}.bak")
        n += 1
    return cand


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None, keep_backup: bool = True) -> Path | None:
    """Write ``path`` all at once: a temp file in the same directory, fsync, the old file's mode (and owner
    when we may), ``os.replace``, fsync of the directory. With ``keep_backup`` and an existing file, a copy
    of the old content is kept beside it first; its path is returned."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    old = None
    with contextlib.suppress(FileNotFoundError):
        old = os.stat(path)
    backup = None
    if old is not None and keep_backup:
        backup = backup_copy_path(path)
        shutil.copy2(path, backup)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".pgpreflight-tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else (old.st_mode & 0o7777 if old else 0o644))
        if old is not None:
            with contextlib.suppress(OSError):
                os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(str(path.parent), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return backup


# ------------------------------------------------------------------------------------------ mounts
@dataclass(frozen=True)
class Mount:
    device: str  # /dev/vda, tmpfs, server:/export
    mountpoint: str
    fstype: str
    st_dev: int

    def describe(self) -> str:
        """"tmpfs at /dev/shm" or "/dev/vda (ext4) at /"."""
        if self.device in (self.fstype, "?", "none", ""):
            return f"{self.fstype} at {self.mountpoint}"
        return f"{self.device} ({self.fstype}) at {self.mountpoint}"


def _mount_table() -> list[tuple[str, str, str]]:
    rows = []
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    unesc = [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), p) for p in parts[:3]]
                    rows.append((unesc[0], unesc[1], unesc[2]))
    except OSError:
        try:
            import psutil

            rows = [(p.device, p.mountpoint, p.fstype) for p in psutil.disk_partitions(all=True)]
        except Exception:
            rows = []
    return rows


def mount_of(path: str | os.PathLike) -> Mount:
    """The filesystem ``path`` lives on: its st_dev, mount point (the deepest parent on the same device
    that is a mount point) and, from the mount table, the device and type. Raises OSError."""
    p = Path(os.path.realpath(path))
    dev = os.stat(p).st_dev
    mp = p
    while mp != mp.parent:
        try:
            if os.stat(mp.parent).st_dev != dev:
                break
        except OSError:
            break
        mp = mp.parent
    device, fstype = "?", "?"
    for d, m, t in _mount_table():  # the last entry for a mount point wins (mounted over)
        if m == str(mp):
            device, fstype = d, t
    return Mount(device, str(mp), fstype, dev)


# ------------------------------------------------------------------------------------------ schedule
@dataclass(frozen=True)
class Schedule:
    where: str  # "/path/ops/crontab" or "crontab -l (user root)"
    text: str | None  # None: not readable (why says why)
    why: str = ""


def read_schedule(crontab_file: Path | None) -> Schedule:
    """The schedule: ``crontab_file`` when given (the demo's own), else the user's crontab (``crontab -l``)."""
    if crontab_file is not None:
        try:
            return Schedule(str(crontab_file), Path(crontab_file).read_text(encoding="utf-8", errors="replace"))
        except FileNotFoundError:
            return Schedule(str(crontab_file), "", f"{crontab_file} does not exist")
        except OSError as e:
            return Schedule(str(crontab_file), None, f"cannot read {crontab_file}: {e.strerror or e}")
    who = _user()
    where = f"crontab -l (user {who})"
    exe = shutil.which("crontab")
    if not exe:
        return Schedule(where, None, "no crontab command on this host (install cron, or point --crontab-file "
                                     "at the file your scheduler reads)")
    try:
        r = subprocess.run([exe, "-l"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return Schedule(where, None, f"crontab -l failed: {e}")
    if r.returncode != 0:
        if "no crontab" in (r.stderr or "").lower():
            return Schedule(where, "", f"user {who} has no crontab")
        return Schedule(where, None, f"crontab -l failed: {(r.stderr or '').strip()[:120]}")
    return Schedule(where, r.stdout)


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def cron_lines(text: str) -> list[str]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*=", line):  # VAR=value
            continue
        out.append(line)
    return out


def split_cron(line: str) -> tuple[str, str] | None:
    """(schedule, command) of a crontab line: five fields or an @keyword; None when it is not one."""
    if line.startswith("@"):
        kw, _, cmd = line.partition(" ")
        return (kw, cmd.strip()) if cmd.strip() else None
    parts = line.split(None, 5)
    if len(parts) < 6:
        return None
    return " ".join(parts[:5]), parts[5]


def is_daily(schedule: str) -> bool:
    """At least once a day: @daily/@midnight/@hourly, or day-of-month, month and weekday all ``*``."""
    if schedule.startswith("@"):
        return schedule in ("@daily", "@midnight", "@hourly")
    f = schedule.split()
    return len(f) == 5 and f[2] == "*" and f[3] == "*" and f[4] in ("*", "0-6", "0-7", "1-7")


def find_backup_line(text: str, needles: list[str]) -> tuple[str, str, str] | None:
    """The first crontab entry whose command (or, for a script, the script's text) mentions one of
    ``needles`` (pg_dump, the backup directory, the file prefix): (line, schedule, command)."""
    best = None
    for line in cron_lines(text):
        sc = split_cron(line)
        if sc is None:
            continue
        sched, cmd = sc
        hay = cmd
        first = cmd.split()[0] if cmd.split() else ""
        if first.startswith("/") and os.path.isfile(first):
            with contextlib.suppress(OSError):
                hay += "\n" + Path(first).read_text(encoding="utf-8", errors="replace")[:20000]
        if any(n and n in hay for n in needles):
            if is_daily(sched):
                return line, sched, cmd
            best = best or (line, sched, cmd)
    return best
