"""Benchmark at scale: 1,000 sessions and 20,000 tables (issue 3).

    .venv/bin/python tests/bench/bench_scale.py [--sessions 1000] [--tables 20000] [--rounds 10]

Measures, on a throwaway cluster:
  - the server execution time of each poller's queries per poll (pg_stat_statements, by role), and the
    wall time per poll as the client sees it;
  - the latency of key presses in the real app polling that server (Textual pilot, 80x24 and 200x60):
    the time from the key to the app having handled it.
Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from bench_monitor import Sessions, make_tables  # noqa: E402
from tui.cluster import start_cluster  # noqa: E402
from tui.config import Config, resolve_target  # noqa: E402


async def setup(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("DROP ROLE IF EXISTS bench_scale; CREATE ROLE bench_scale LOGIN; "
                           "GRANT pg_monitor TO bench_scale")
    finally:
        await conn.close()


async def poller_costs(admin_dsn: str, dsn: str, rounds: int) -> dict[str, tuple[float, float]]:
    """{poller: (server ms per poll, wall ms per poll)}"""
    from tui.db.connect import connect
    from tui.db.poller import ConnectionsPoller, ServerPoller, SlowQueriesPoller, TablesPoller

    conn = await connect(resolve_target(dsn), role="bench", statement_timeout_ms=30000)
    admin = await asyncpg.connect(admin_dsn)
    out = {}
    try:
        cases = {
            "header (server info)": (ServerPoller(), lambda p: p.poll(conn)),
            "header + database size": (ServerPoller(), lambda p: p.poll(conn, with_size=True)),
            "connections (non-idle)": (ConnectionsPoller(), lambda p: p.poll(conn)),
            "connections (with idle)": (ConnectionsPoller(), lambda p: p.poll(conn, include_idle=True)),
            "slow queries": (SlowQueriesPoller(), lambda p: p.poll(conn)),
            "tables": (TablesPoller(), lambda p: p.poll(conn)),
        }
        for name, (poller, fn) in cases.items():
            await fn(poller)  # warm: prepared statements, first sample
            await admin.execute("SELECT pg_stat_statements_reset()")
            walls = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                await fn(poller)
                walls.append((time.perf_counter() - t0) * 1000)
            ms = await admin.fetchval("""SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements s
                                          JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'bench_scale'""")
            out[name] = (float(ms) / rounds, statistics.median(walls))
    finally:
        await conn.close()
        await admin.close()
    return out


async def key_latency(dsn: str, size: tuple[int, int], presses: int = 20) -> tuple[float, float]:
    """(median ms, max ms) from a key press to the app having handled it, while it polls the server."""
    import tempfile

    from tui.screens.app import PreflightApp
    from widgets.connections import ConnectionsPane

    with tempfile.TemporaryDirectory() as state:
        cfg = Config(target=resolve_target(dsn), state_dir=Path(state), refresh=1.0, app_root=Path(state))
        app = PreflightApp(cfg)
        lat = []
        async with app.run_test(size=size) as pilot:
            deadline = time.monotonic() + 60
            while app.query_one(ConnectionsPane).snapshot is None:
                assert time.monotonic() < deadline, "no first poll"
                await pilot.pause(0.1)
            pane = app.query_one(ConnectionsPane)
            for i in range(presses):
                before = pane.show_idle
                t0 = time.perf_counter()
                await pilot.press("i")  # returns once the key has been processed
                while pane.show_idle == before:
                    await pilot.pause(0)
                lat.append((time.perf_counter() - t0) * 1000)
                await pilot.pause(0.1)
                if i % 5 == 4:
                    await pilot.press("down", "down")
        return statistics.median(lat), max(lat)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--tables", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    c = start_cluster(settings={"max_connections": str(args.sessions + 100), "shared_buffers": "256MB",
                                "max_locks_per_transaction": "512"})
    sessions = None
    try:
        admin = c.dsn("postgres")
        asyncio.run(setup(admin))
        t = time.monotonic()
        asyncio.run(make_tables(admin, args.tables))
        print(f"bench: {args.tables} tables in {time.monotonic() - t:.1f} s", file=sys.stderr)
        sessions = Sessions(admin, args.sessions - 5, 5)
        sessions.start()
        dsn = c.dsn("postgres", user="bench_scale")
        costs = asyncio.run(poller_costs(admin, dsn, args.rounds))
        k80 = asyncio.run(key_latency(dsn, (80, 24)))
        k200 = asyncio.run(key_latency(dsn, (200, 60)))
    finally:
        if sessions is not None:
            sessions.stop()
        c.destroy()
    print(f"\n{args.sessions:,} sessions ({args.sessions - 5} idle, 5 idle in transaction), {args.tables:,} tables, "
          f"PostgreSQL {c.bindir.parent.name}, {args.rounds} polls each:\n")
    print("| poll | server ms per poll | wall ms per poll | target |")
    print("| --- | ---: | ---: | --- |")
    for name, (srv, wall) in costs.items():
        print(f"| {name} | {srv:.1f} | {wall:.1f} | < 100 ms server |")
    print(f"| key press answered, 80x24 (median / max) | | {k80[0]:.1f} / {k80[1]:.1f} | < 50 ms |")
    print(f"| key press answered, 200x60 (median / max) | | {k200[0]:.1f} / {k200[1]:.1f} | < 50 ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
