"""A throwaway PostgreSQL cluster, started from the server binaries.

The demo and the test-suite share this module. It finds initdb/pg_ctl, creates a
cluster in a temporary directory, starts it on a free loopback port and removes it
again. As root (PostgreSQL refuses to run as root) every server command runs as
``nobody`` through ``runuser``, on a directory that nobody owns.

No textual, no asyncpg: importable anywhere.
"""
from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found; install them, "
    "e.g. 'apt-get install postgresql' (Debian/Ubuntu), 'dnf install postgresql-server' (Fedora) "
    "or 'brew install postgresql' (macOS), or put their bin directory on PATH"
)

RUN_AS = "nobody"


class ClusterError(RuntimeError):
    """The throwaway cluster could not be created or started."""


def _version_key(path: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", path)
    return tuple(int(n) for n in nums) or (0,)


def find_bindir() -> Path:
    """Directory holding initdb, pg_ctl and postgres: PATH, pg_config --bindir,
    then /usr/lib/postgresql/*/bin (newest first)."""
    candidates: list[Path] = []
    env_dir = os.environ.get("PGPREFLIGHT_PG_BINDIR")
    if env_dir:
        candidates.append(Path(env_dir))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql*/bin",
                    "/usr/local/opt/postgresql*/bin"):
        candidates.extend(Path(p) for p in sorted(glob.glob(pattern), key=_version_key, reverse=True))
    for c in candidates:
        if all((c / exe).is_file() and os.access(c / exe, os.X_OK) for exe in ("initdb", "pg_ctl", "postgres")):
            return c
    raise ClusterError(INSTALL_HINT)


def server_major(bindir: Path) -> int:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True)
    m = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return int(m.group(1)) if m else 0


def _sharedir(bindir: Path) -> Path | None:
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        try:
            out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0:
                return Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    major = server_major(bindir)
    for p in (Path(f"/usr/share/postgresql/{major}"), bindir.parent / "share" / "postgresql", bindir.parent / "share"):
        if (p / "extension").is_dir():
            return p
    return None


def has_pg_stat_statements(bindir: Path) -> bool:
    share = _sharedir(bindir)
    return bool(share and (share / "extension" / "pg_stat_statements.control").is_file())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass
class Cluster:
    """A running throwaway cluster. Use :func:`start_cluster` to make one."""

    bindir: Path
    base: Path
    port: int
    password: str
    superuser: str = "postgres"
    pg_stat_statements: bool = False
    as_user: str | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base

    @property
    def logfile(self) -> Path:
        return self.base / "server.log"

    def dsn(self, database: str = "postgres", user: str | None = None) -> str:
        """A URI over the Unix socket (trusted locally: no password in it)."""
        user = user or self.superuser
        return f"postgresql://{quote(user, safe='')}@/{quote(database, safe='')}?host={self.socket_dir}&port={self.port}"

    def tcp_dsn(self, database: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        """A URI over TCP on 127.0.0.1, where password authentication applies."""
        user = user or self.superuser
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{quote(database, safe='')}"

    # -- process control -------------------------------------------------------------
    def _cmd(self, args: list[str]) -> list[str]:
        if self.as_user:
            return ["runuser", "-u", self.as_user, "--", *args]
        return args

    def run(self, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self._cmd(args), capture_output=True, text=True, timeout=timeout, cwd=str(self.base))

    def pg_ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args], timeout=timeout)

    def start(self) -> None:
        res = self.pg_ctl("-l", str(self.logfile), "-w", "-t", "30", "start")
        if res.returncode != 0:
            raise ClusterError(f"pg_ctl start failed: {res.stderr.strip() or res.stdout.strip()}; {self.log_tail()}")
        self._stopped = False

    def stop(self, mode: str = "fast") -> None:
        if self.datadir.exists() and self.postmaster_pid() is not None:
            self.pg_ctl("-m", mode, "-w", "-t", "30", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def postmaster_pid(self) -> int | None:
        try:
            first = (self.datadir / "postmaster.pid").read_text().splitlines()[0]
            pid = int(first)
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError):
            return None

    def signal_server(self, sig: int) -> None:
        """Send a signal to the postmaster and all its children (SIGSTOP/SIGCONT for stalls)."""
        pid = self.postmaster_pid()
        if pid is None:
            raise ClusterError("server is not running")
        pids = [pid]
        try:
            out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
            pids += [int(p) for p in out.stdout.split()]
        except OSError:
            pass
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def destroy(self) -> None:
        """Stop the server (immediately) and remove every file."""
        if self._stopped:
            return
        self._stopped = True
        try:
            pid = self.postmaster_pid()
            if pid is not None:
                # a SIGSTOPped server would never stop: wake it first
                try:
                    self.signal_server(signal.SIGCONT)
                except ClusterError:
                    pass
                self.pg_ctl("-m", "immediate", "-w", "-t", "20", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


def start_cluster(
    settings: dict[str, str] | None = None,
    bindir: Path | None = None,
    preload_pg_stat_statements: bool = True,
    base_dir: str | None = None,
    collect_logs: bool = False,
) -> Cluster:
    """initdb + start on a free loopback port. Local socket connections are trusted,
    TCP connections use scram-sha-256 with a random superuser password.

    ``collect_logs``: logging_collector = on, the log in ``<datadir>/log`` (the demo: the server knows
    its log file, so pg_current_logfile() and the log_scan probe find it); else the server logs to
    stderr, which pg_ctl writes to :attr:`Cluster.logfile`."""
    bindir = bindir or find_bindir()
    as_user = RUN_AS if _is_root() else None
    base = Path(tempfile.mkdtemp(prefix="pgpreflight-", dir=base_dir))
    os.chmod(base, 0o755)
    password = secrets.token_urlsafe(18)
    pgss = preload_pg_stat_statements and has_pg_stat_statements(bindir)
    cluster = Cluster(bindir=bindir, base=base, port=0, password=password, pg_stat_statements=pgss, as_user=as_user)
    try:
        pwfile = base / "pwfile"
        pwfile.write_text(password + "\n")
        if as_user:
            shutil.chown(base, user=as_user)
            shutil.chown(pwfile, user=as_user)
        os.chmod(pwfile, 0o600)
        res = cluster.run(
            [str(bindir / "initdb"), "-D", str(cluster.datadir), "-U", "postgres", "-E", "UTF8",
             "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync"],
            timeout=120,
        )
        pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise ClusterError(f"initdb failed: {res.stderr.strip()[-500:]}")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{base}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": "128MB",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
            "track_io_timing": "on",
        }
        if collect_logs:
            conf.update({"logging_collector": "on", "log_directory": "'log'",
                         "log_filename": "'postgresql-%Y-%m-%d_%H%M%S.log'", "log_file_mode": "0640"})
        if pgss:
            conf["shared_preload_libraries"] = "'pg_stat_statements'"
            conf["pg_stat_statements.track"] = "top"
        for k, v in (settings or {}).items():
            conf[k] = v
        with open(cluster.datadir / "postgresql.conf", "a") as fh:
            fh.write("\n# pgpreflight throwaway cluster\n")
            for k, v in conf.items():
                fh.write(f"{k} = {v}\n")
        last_err: Exception | None = None
        for _attempt in range(5):
            cluster.port = free_port()
            with open(cluster.datadir / "postgresql.auto.conf", "a") as fh:
                fh.write(f"port = {cluster.port}\n")
            try:
                cluster.start()
                return cluster
            except ClusterError as e:  # port taken between probe and bind: try another
                last_err = e
                if "in use" not in str(e) and "could not bind" not in str(e):
                    break
        raise last_err or ClusterError("could not start the server")
    except BaseException:
        cluster.destroy()
        raise


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
