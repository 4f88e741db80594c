"""Opening the tool's own sessions: application_name, statement_timeout, and one clear
line for every way a target can be bad. No textual here."""
from __future__ import annotations

import asyncio
import socket
import ssl as _ssl

import asyncpg

from tui.config import Target, TargetError

APP_NAME = "pgpreflight"
# Every statement of the tool's own sessions starts with this comment: pg_stat_statements has no
# application_name, but it keeps a statement's leading comment in the text it stores, so the slow
# queries leave out the tool's polls, probes and fixes by it (statements*.sql: OWN_MARKERS).
OWN_MARKER = "/* pgpreflight */ "
OWN_PREFIXES = ("-- pgpreflight", "/* pgpreflight")  # the .sql files' header comment counts too


def mark_own(query: str) -> str:
    """``query`` with the tool's marker in front (once)."""
    head = query.lstrip()
    return query if head.startswith(OWN_PREFIXES) else OWN_MARKER + query


class OwnConnection(asyncpg.Connection):
    """The tool's sessions: every statement sent through the public methods carries OWN_MARKER,
    and so does asyncpg's own type introspection query (sent the first time a type is decoded)."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        # HACK: asyncpg private `_intro_query` (its type introspection text, sent through private
        # methods): marked so that it is left out of the slow queries like every other own statement;
        # if a later asyncpg drops the name, the introspection shows there again and nothing breaks.
        intro = getattr(self, "_intro_query", None)
        if isinstance(intro, str):
            self._intro_query = mark_own(intro)

    async def execute(self, query: str, *args, timeout=None) -> str:
        return await super().execute(mark_own(query), *args, timeout=timeout)

    async def executemany(self, command: str, args, *, timeout=None):
        return await super().executemany(mark_own(command), args, timeout=timeout)

    async def fetch(self, query, *args, **kw):
        return await super().fetch(mark_own(query), *args, **kw)

    async def fetchrow(self, query, *args, **kw):
        return await super().fetchrow(mark_own(query), *args, **kw)

    async def fetchval(self, query, *args, **kw):
        return await super().fetchval(mark_own(query), *args, **kw)

    async def fetchmany(self, query, args, **kw):
        return await super().fetchmany(mark_own(query), args, **kw)

    async def prepare(self, query, **kw):
        return await super().prepare(mark_own(query), **kw)

    def cursor(self, query, *args, **kw):
        return super().cursor(mark_own(query), *args, **kw)

    async def copy_from_query(self, query, *args, **kw):
        return await super().copy_from_query(mark_own(query), *args, **kw)


def describe_error(exc: BaseException, timeout: float) -> str:
    """The reason part of the one line a user sees; never includes a password."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"timed out after {timeout:g} s (is the server up and reachable?)"
    if isinstance(exc, socket.gaierror):
        return "unknown host (name resolution failed)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on that host and port)"
    if isinstance(exc, FileNotFoundError):
        return "no server socket there (is the server running, and is the socket directory right?)"
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return "authentication failed (wrong user or password)"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "database does not exist"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        msg = str(exc)
        if "not permitted to log in" in msg:
            return "role is not permitted to log in (it needs LOGIN)"
        if "does not exist" in msg:
            return "role does not exist"
        return f"not authorized: {msg.splitlines()[0]}"
    if isinstance(exc, asyncpg.TooManyConnectionsError):
        return "too many connections (the server has no free connection slot)"
    if isinstance(exc, asyncpg.CannotConnectNowError):
        return f"server is not accepting connections now ({str(exc).splitlines()[0]})"
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, _ssl.SSLError):
        return f"SSL error: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing accepts connections there (is the server running, on that port?)"
    if isinstance(exc, ConnectionResetError):
        return "the connection was reset before the server answered"
    if isinstance(exc, ConnectionError):
        why = exc.strerror or (str(exc).splitlines()[0] if str(exc) else "")
        return f"connection failed: {why}" if why else "connection failed: the server or the network closed it"
    if isinstance(exc, OSError):
        return f"connection failed: {exc.strerror or exc}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text


async def connect(
    target: Target,
    *,
    timeout: float = 5.0,
    role: str = "",
    statement_timeout_ms: int | None = 5000,
    lock_timeout_ms: int | None = None,
    extra_settings: dict | None = None,
) -> asyncpg.Connection:
    """One session of the tool. ``role`` suffixes the application_name (pgpreflight/poll)."""
    settings = {"application_name": f"{APP_NAME}/{role}" if role else APP_NAME}
    if statement_timeout_ms is not None:
        settings["statement_timeout"] = str(int(statement_timeout_ms))
    if lock_timeout_ms is not None:
        settings["lock_timeout"] = str(int(lock_timeout_ms))
    if extra_settings:
        settings.update(extra_settings)
    # A stalled server (SIGSTOP, a network partition) never fires its own statement_timeout:
    # a client-side command timeout a little past it keeps every await bounded.
    command_timeout = (statement_timeout_ms / 1000 + 2) if statement_timeout_ms else None
    try:
        return await asyncio.wait_for(
            asyncpg.connect(**target.connect_kwargs(), timeout=timeout, server_settings=settings,
                            command_timeout=command_timeout, connection_class=OwnConnection),
            timeout=timeout + 0.5,
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every way it can fail becomes one clear line
        raise TargetError(target.display, describe_error(exc, timeout)) from None


async def target_identity(conn) -> dict:
    """The server version, database and system identifier: the query that proves a target good."""
    row = await conn.fetchrow(
        "SELECT current_setting('server_version_num')::int AS version_num, current_database() AS database, "
        "(SELECT system_identifier FROM pg_control_system()) AS system_identifier")
    return dict(row)
