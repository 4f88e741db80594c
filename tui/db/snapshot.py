"""`pgpreflight snapshot`: one poll of every pane, as a frozen Snapshot. No textual."""
from __future__ import annotations

from datetime import datetime, timezone

import asyncpg

from tui.config import Config
from tui.db import sql
from tui.db.connect import connect
from tui.db.host import HostPoller
from tui.db.poller import ConnectionsPoller, ServerPoller, SlowQueriesPoller, TablesPoller
from tui.model.snapshot import REMOTE_HOST_MESSAGE, Snapshot


LOCK_TIMEOUT_MS = 500  # the size functions must never queue behind a migration for long

PRIVS_SQL = ("-- pgpreflight\nSELECT current_user::text AS role, rolsuper, "
             "pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS stats, "
             "pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') AS settings "
             "FROM pg_roles WHERE rolname = current_user")


async def privilege_notices(conn: asyncpg.Connection) -> tuple[str, ...]:
    """What a role without pg_monitor cannot see, and the GRANT that would show it (issue 6)."""
    from tui.db.poller import quote_ident_py

    r = await conn.fetchrow(PRIVS_SQL)
    if r is None or r["rolsuper"]:
        return ()
    role = quote_ident_py(r["role"])
    out = []
    if not r["stats"]:
        out.append(f"role {role} lacks pg_read_all_stats: other roles' query texts, states and waits are hidden "
                   f"(GRANT pg_read_all_stats TO {role}, or GRANT pg_monitor TO {role})")
    if not r["settings"]:
        out.append(f"role {role} lacks pg_read_all_settings: data_directory and shared_preload_libraries are "
                   f"hidden (GRANT pg_read_all_settings TO {role}, or GRANT pg_monitor TO {role})")
    return tuple(out)


async def data_directory(conn: asyncpg.Connection) -> str | None:
    """SHOW data_directory, or None without the privilege (or on a timeout)."""
    try:
        return await conn.fetchval(sql.get("data_directory"))
    except (asyncpg.InsufficientPrivilegeError, asyncpg.QueryCanceledError):
        return None


async def take_snapshot(cfg: Config, session_limit: int = 200) -> Snapshot:
    conn = await connect(cfg.target, timeout=cfg.connect_timeout, role="snapshot",
                         statement_timeout_ms=cfg.statement_timeout_ms, lock_timeout_ms=LOCK_TIMEOUT_MS)
    try:
        server = await ServerPoller().poll(conn, with_size=True)
        conns_poller = ConnectionsPoller(limit=session_limit)
        conns = await conns_poller.poll(conn, include_idle=True)
        slow_poller = SlowQueriesPoller()
        slow = await slow_poller.poll(conn)
        tables = await TablesPoller().poll(conn)
        host = None
        host_message = REMOTE_HOST_MESSAGE
        if cfg.target.is_local:
            host = HostPoller(await data_directory(conn), cfg.backup_dir).poll(cpu_interval=0.2)
            host_message = ""
        # the connections poller says once what this role cannot see (privilege_notices)
        notices = (*conns_poller.parts.take_notices(), *slow_poller.parts.take_notices())
        return Snapshot(
            target=cfg.target.display, taken_at=datetime.now(timezone.utc), server=server, connections=conns,
            slow_queries=slow, tables=tables, host=host, host_message=host_message, notices=notices,
        )
    finally:
        await conn.close()
