"""Where the target database comes from, and the redacted way it is shown.

First match wins: ``--dsn``, then ``DATABASE_URL``, then the libpq environment
(PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGPASSFILE / ~/.pgpass, PGSSLMODE).
Pure Python: no textual, no asyncpg.
"""
from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit


class UsageError(Exception):
    """Bad input from the user: one line, exit 2."""


class TargetError(Exception):
    """The target database could not be reached or used: one line, exit 2."""

    def __init__(self, target: str, reason: str):
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason


RECORD_QUERIES = ("full", "normalized", "none")  # what a recording keeps of query texts (tui.recorder)

DEFAULT_SOCKET_DIRS = ("/run/postgresql", "/var/run/postgresql", "/tmp")

_KV_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)")
_KNOWN_KEYS = {
    "host", "hostaddr", "port", "user", "password", "dbname", "database", "sslmode", "passfile",
    "connect_timeout", "application_name", "options", "sslrootcert", "sslcert", "sslkey", "target_session_attrs",
}


@dataclass(frozen=True)
class Target:
    """Connection parameters, resolved. ``password`` is never shown: use :attr:`display`."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    database: str | None = None
    password: str | None = field(default=None, repr=False)
    sslmode: str | None = None
    passfile: str | None = None
    source: str = "environment"

    @property
    def effective_host(self) -> str:
        if self.host:
            return self.host
        for d in DEFAULT_SOCKET_DIRS:
            if os.path.isdir(d):
                return d
        return "localhost"

    @property
    def effective_port(self) -> int:
        return self.port or 5432

    @property
    def effective_user(self) -> str:
        if self.user:
            return self.user
        try:
            return getpass.getuser()
        except Exception:  # pragma: no cover - no passwd entry
            return "postgres"

    @property
    def effective_database(self) -> str:
        return self.database or self.effective_user

    @property
    def is_socket(self) -> bool:
        return self.effective_host.startswith("/")

    @property
    def is_local(self) -> bool:
        """True when the server runs on this host (socket, loopback or this host's name)."""
        h = self.effective_host
        if h.startswith("/") or h in ("localhost", "127.0.0.1", "::1") or h.startswith("127."):
            return True
        try:
            import socket

            return h in (socket.gethostname(), socket.getfqdn())
        except OSError:
            return False

    @property
    def display(self) -> str:
        """postgresql://user@host:port/db: never a password."""
        host = self.effective_host
        if host.startswith("/"):
            return f"postgresql://{self.effective_user}@{host}:{self.effective_port}/{self.effective_database}"
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        return f"postgresql://{self.effective_user}@{host}:{self.effective_port}/{self.effective_database}"

    def connect_kwargs(self) -> dict:
        """Keyword arguments for asyncpg.connect (explicit, so the env is read once, here)."""
        kw: dict = {
            "host": self.effective_host,
            "port": self.effective_port,
            "user": self.effective_user,
            "database": self.effective_database,
        }
        if self.password is not None:
            kw["password"] = self.password
        elif self.passfile:
            found = pgpass_lookup(self.passfile, kw["host"], kw["port"], kw["database"], kw["user"])
            if found is not None:
                kw["password"] = found
            else:
                kw["passfile"] = self.passfile
        if self.sslmode:
            kw["ssl"] = self.sslmode
        return kw

    def with_database(self, database: str) -> "Target":
        return replace(self, database=database)


def _pgpass_fields(line: str) -> list[str]:
    """One .pgpass line into its fields, with libpq's escapes (``\\:`` and ``\\\\``) undone."""
    fields, cur, i = [], [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line):
            cur.append(line[i + 1])
            i += 2
            continue
        if ch == ":" and len(fields) == 4:  # libpq: the password ends at an unescaped colon
            break
        if ch == ":":
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    fields.append("".join(cur))
    return fields


def pgpass_lookup(passfile: str, host: str, port: int, database: str, user: str) -> str | None:
    """The password libpq would take from ``passfile`` (asyncpg keeps ``\\:`` escaped, so a password
    with a colon failed). None when there is no match, or the file is missing or readable by others
    (then asyncpg is left to read it and warn, as libpq does)."""
    try:
        st = os.stat(passfile)
        if st.st_mode & 0o077 or not os.path.isfile(passfile):
            return None
        text = Path(passfile).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    h = "localhost" if host.startswith("/") else host
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        f = _pgpass_fields(line)
        if len(f) != 5:
            continue
        ph, pp, pd, pu, pw = f
        if (ph in ("*", h) and pp in ("*", str(port)) and pd in ("*", database) and pu in ("*", user)):
            return pw
    return None


def _redact_input(text: str) -> str:
    """A short, password-free rendering of what the user typed (for error lines)."""
    t = re.sub(r"(://[^:/@?#]*):[^@/?#]*@", r"\1:***@", text)
    t = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", t, flags=re.I)
    return t if len(t) <= 120 else t[:117] + "..."


def _parse_uri(dsn: str) -> dict:
    try:
        parts = urlsplit(dsn)
        port_raw = None
        netloc = parts.netloc
    except ValueError as e:
        raise UsageError(f"not a valid DSN: {_redact_input(dsn)} ({e})") from None
    out: dict = {}
    userinfo, _, hostport = netloc.rpartition("@")
    if userinfo:
        user, has_pw, pw = userinfo.partition(":")
        if user:
            out["user"] = unquote(user)
        if has_pw:
            out["password"] = unquote(pw)
    if hostport:
        if hostport.startswith("["):
            host, _, rest = hostport[1:].partition("]")
            port_raw = rest[1:] if rest.startswith(":") else None
        else:
            if "," in hostport:
                hostport = hostport.split(",")[0]
            host, _, port_raw = hostport.partition(":")
        if host:
            out["host"] = unquote(host)
    if port_raw:
        out["port"] = port_raw
    db = unquote(parts.path.lstrip("/")) if parts.path else ""
    if db:
        out["database"] = db
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        k = k.lower()
        if k == "dbname":
            k = "database"
        if k not in _KNOWN_KEYS and k != "database":
            raise UsageError(f"not a valid DSN: {_redact_input(dsn)} (unknown parameter {k!r})")
        out[k] = v
    return out


def _parse_kv(dsn: str) -> dict:
    out: dict = {}
    pos = 0
    text = dsn.strip()
    while pos < len(text):
        m = _KV_RE.match(text, pos)
        if not m:
            raise UsageError(f"not a valid DSN: {_redact_input(dsn)} (expected key=value at position {pos + 1})")
        k, v = m.group(1).lower(), m.group(2)
        if v.startswith("'"):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        if k not in _KNOWN_KEYS:
            raise UsageError(f"not a valid DSN: {_redact_input(dsn)} (unknown keyword {k!r})")
        out["database" if k == "dbname" else k] = v
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def parse_dsn(dsn: str) -> dict:
    """Parse a postgresql:// URI or a libpq key=value string into parameters."""
    s = dsn.strip()
    if not s:
        raise UsageError("not a valid DSN: the string is empty")
    if re.match(r"^postgres(ql)?://", s, re.I):
        return _parse_uri(s)
    if "=" in s and _KV_RE.match(s):
        return _parse_kv(s)
    raise UsageError(
        f"not a valid DSN: {_redact_input(s)} (expected postgresql://user@host:port/db or 'host=... dbname=...')"
    )


def resolve_target(dsn: str | None = None, env: dict | None = None) -> Target:
    env = dict(os.environ if env is None else env)
    params: dict = {}
    source = "environment"
    if dsn is not None:
        params = parse_dsn(dsn)
        source = "--dsn"
    elif env.get("DATABASE_URL"):
        params = parse_dsn(env["DATABASE_URL"])
        source = "DATABASE_URL"
    # libpq environment fills what the DSN did not say
    fallbacks = {
        "host": env.get("PGHOST"),
        "port": env.get("PGPORT"),
        "user": env.get("PGUSER"),
        "database": env.get("PGDATABASE"),
        "password": env.get("PGPASSWORD"),
        "sslmode": env.get("PGSSLMODE"),
        "passfile": env.get("PGPASSFILE"),
    }
    for k, v in fallbacks.items():
        if params.get(k) in (None, "") and v:
            params[k] = v
    if params.get("hostaddr") and not params.get("host"):
        params["host"] = params["hostaddr"]
    port = params.get("port")
    if port not in (None, ""):
        try:
            port_i = int(str(port).split(",")[0])
            if not 0 < port_i < 65536:
                raise ValueError
        except ValueError:
            raise UsageError(f"not a valid DSN: port {port!r} is not a number from 1 to 65535") from None
    else:
        port_i = None
    host = params.get("host") or None
    if host and "," in host:
        host = host.split(",")[0]
    passfile = params.get("passfile")
    if not passfile:
        default_pass = Path.home() / ".pgpass"
        passfile = str(default_pass) if default_pass.is_file() else None
    sslmode = params.get("sslmode") or None
    if sslmode and sslmode not in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"):
        raise UsageError(f"not a valid DSN: unknown sslmode {sslmode!r}")
    return Target(
        host=host,
        port=port_i,
        user=params.get("user") or None,
        database=params.get("database") or None,
        password=params.get("password") if params.get("password") not in (None, "") else None,
        sslmode=sslmode,
        passfile=passfile,
        source=source,
    )


def default_state_dir() -> Path:
    env = os.environ.get("PGPREFLIGHT_STATE_DIR")
    if env:
        return Path(env)
    try:
        import platformdirs

        return Path(platformdirs.user_state_dir("pgpreflight", appauthor=False))
    except ImportError:  # pragma: no cover
        return Path.home() / ".local" / "state" / "pgpreflight"


@dataclass(frozen=True)
class Config:
    target: Target
    read_only: bool = False
    state_dir: Path = field(default_factory=default_state_dir)
    connect_timeout: float = 5.0
    refresh: float = 2.0
    tables_refresh: float = 30.0
    checklist_refresh: float = 60.0
    statement_timeout_ms: int = 5000
    checklist: str | None = None
    app_root: Path = field(default_factory=Path.cwd)
    backup_dir: Path | None = None  # where backups go (the probes' dir, backup_test's dumps)
    crontab_file: Path | None = None  # the schedule in a file instead of the user's crontab (the demo's own)
    no_color: bool = False
    idle_in_xact_threshold_s: float = 60.0
    #: the throwaway database of ``pgpreflight demo`` (the App offers the launch spike, tui.demo.spike)
    demo: bool = False
    #: settings the command line did not give ("checklist", "app_root", "backup_dir"): they may come
    #: from what is remembered for the database (tui.checklist.runner.resolve_checklist)
    from_memory: frozenset = frozenset()
    #: the flight recorder (tui.recorder): on unless --no-record; --record FILE names the file (else
    #: <state_dir>/recordings/<identity>/<day>.sqlite); --record-queries full|normalized|none
    record: bool = True
    record_path: Path | None = None
    record_queries: str = "normalized"

    def __post_init__(self) -> None:
        if self.record_queries not in RECORD_QUERIES:
            raise UsageError(f"--record-queries must be one of {', '.join(RECORD_QUERIES)}, "
                             f"not {self.record_queries!r}")
        if self.record_path is not None and not self.record:
            raise UsageError("--record FILE and --no-record contradict each other")


#: the exit codes of every command: 0 done (READY, no alert), 1 a failing check, fix or alert, 2 bad input
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def make_config(args, target=None) -> Config:
    """The Config of parsed command-line ``args`` (an argparse.Namespace of tui.cli's parser, or one built
    as it builds them); ``target`` instead of resolving ``args.dsn``. Here, below tui.cli and the commands
    it dispatches to (the demo among them), so that they need not import tui.cli."""
    env_state = os.environ.get("PGPREFLIGHT_STATE_DIR")
    state_dir = args.state_dir or (Path(env_state) if env_state else default_state_dir())
    no_color = bool(args.no_color or os.environ.get("NO_COLOR"))
    kw = {}
    kw["from_memory"] = frozenset(k for k in ("checklist", "app_root", "backup_dir", "crontab_file")
                                  if getattr(args, k, None) is None)
    if getattr(args, "refresh", None):
        kw["refresh"] = args.refresh
    if getattr(args, "record", None) is not None and getattr(args, "no_record", False):
        raise UsageError("--record FILE and --no-record contradict each other")
    kw["record"] = not getattr(args, "no_record", False)
    if getattr(args, "record", None) is not None:
        kw["record_path"] = Path(args.record).expanduser()
    kw["record_queries"] = getattr(args, "record_queries", None) or "normalized"
    return Config(
        target=target if target is not None else resolve_target(args.dsn),
        read_only=bool(args.read_only),
        state_dir=Path(state_dir).expanduser(),
        connect_timeout=args.connect_timeout or 5.0,
        checklist=args.checklist,
        app_root=(args.app_root or Path.cwd()).expanduser(),
        backup_dir=args.backup_dir.expanduser() if args.backup_dir else None,
        crontab_file=args.crontab_file.expanduser() if getattr(args, "crontab_file", None) else None,
        no_color=no_color,
        **kw,
    )
