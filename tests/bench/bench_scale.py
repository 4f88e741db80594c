"""Benchmark at scale: 1,000 sessions and 20,000 tables (issue 3).

    .venv/bin/python tests/bench/bench_scale.py [--sessions 1000] [--tables 20000] [--rounds 10]

Measures, on a throwaway cluster:
  - the server execution time of each poller's queries per poll (pg_stat_statements, by role), and the
    wall time per poll as the client sees it;
  - the latency of a key press in the real app polling that server (Textual pilot, 80x24 and 200x60),
    timed by the frames the app paints: to the first frame after the key, and to the first frame
    with the rows of the poll the key asked for.
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


async def key_latency(dsn: str, size: tuple[int, int], presses: int = 20) -> dict[str, tuple[float, float]]:
    """Show and hide the idle sessions (``i``) while the app polls the server, timed by the frames
    it paints: (median ms, max ms) from the key to the first frame after it ("answered": the table
    redrawn from what it has, its mode in the summary) and to the first frame with the rows of the
    poll the key asked for (the idle sessions listed or gone)."""
    import tempfile

    from tui.screens.app import PreflightApp
    from widgets.connections import ConnectionsPane

    with tempfile.TemporaryDirectory() as state:
        cfg = Config(target=resolve_target(dsn), state_dir=Path(state), refresh=1.0, app_root=Path(state))
        app = PreflightApp(cfg)
        frames: list[float] = []
        shown: list[float] = []
        display = app._display

        def timed_display(screen, update):  # a frame: the compositor has rendered it
            frames.append(time.perf_counter())
            return display(screen, update)
        app._display = timed_display
        answered, listed = [], []
        async with app.run_test(size=size) as pilot:
            pane = app.query_one(ConnectionsPane)
            deadline = time.monotonic() + 60
            while pane.snapshot is None:
                assert time.monotonic() < deadline, "no first poll"
                await pilot.pause(0.1)
            show = pane.show_snapshot

            def timed_show(snap):
                shown.append(time.perf_counter())
                return show(snap)
            pane.show_snapshot = timed_show
            await pilot.pause(2)  # past the checklist's first run
            for i in range(presses):
                t0, n_frames, n_shown = time.perf_counter(), len(frames), len(shown)
                await pilot.press("i")
                deadline = time.monotonic() + 10
                while not (len(shown) > n_shown and frames[-1] > shown[n_shown]):
                    assert time.monotonic() < deadline, "the key's poll never reached the screen"
                    await pilot.pause(0.005)
                answered.append((frames[n_frames] - t0) * 1000)
                listed.append((next(f for f in frames if f > shown[n_shown]) - t0) * 1000)
                await pilot.pause(0.3)
                if i % 5 == 4:
                    await pilot.press("down", "down")
        return {"answered": (statistics.median(answered), max(answered)),
                "listed": (statistics.median(listed), max(listed))}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--tables", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--pollers-only", action="store_true", help="skip the key latency in the app")
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
        k80 = k200 = None
        if not args.pollers_only:
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
    for label, k in (("80x24", k80), ("200x60", k200)):
        if k is None:
            continue
        a, b = k["answered"], k["listed"]
        print(f"| `i` answered (first frame after the key), {label} (median / max) | | {a[0]:.1f} / {a[1]:.1f} | < 50 ms |")
        print(f"| `i` with the rows of its poll on screen, {label} (median / max) | | {b[0]:.1f} / {b[1]:.1f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
