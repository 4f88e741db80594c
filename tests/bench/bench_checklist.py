"""Benchmark: the server time of each checklist probe, and of the check service's runs.

    .venv/bin/python tests/bench/bench_checklist.py [--rounds 3]

Two databases on one throwaway cluster: the monitor bench's (2,000 tables, general checklist) and the
demo's (images-mvp). Each probe runs ``--rounds`` times as a pg_monitor role, with pg_stat_statements
reset before each; the figure is that role's summed total_exec_time per run (the probe's BEGIN, SET
LOCAL and COMMIT included). Then the check service (tui.checklist.service): its first run, and a
re-verify with nothing changed (what the 60 s refresh costs), and a re-verify forced (`v`).
Prints Markdown tables.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tui.cluster import start_cluster  # noqa: E402

ROLE = "bench_check"


async def _server_ms(admin) -> tuple[float, int]:
    row = await admin.fetchrow(
        "SELECT coalesce(sum(s.total_exec_time), 0)::float8 AS ms, coalesce(sum(s.calls), 0)::int8 AS calls "
        "FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = $1", ROLE)
    return row["ms"], row["calls"]


async def per_probe(dsn: str, admin_dsn: str, checklist_name: str, app_root: Path, state_dir: Path,
                    rounds: int) -> list[tuple[str, str, float, float, int]]:
    from tui.checklist.probes import ProbeContext, run_probe
    from tui.checklist.spec import load_checklist
    from tui.checklist.state import ChecklistState, fetch_identity

    checklist = load_checklist(checklist_name)
    conn = await asyncpg.connect(dsn)
    admin = await asyncpg.connect(admin_dsn)
    try:
        ident = await fetch_identity(conn)
        ctx = ProbeContext(app_root=app_root, state=ChecklistState(ident), target_local=True)
        out = []
        for item in checklist.items():
            if item.probe.kind in ("items", "manual"):
                continue
            ms = calls = wall = 0.0
            for _ in range(rounds):
                await admin.execute("SELECT pg_stat_statements_reset()")
                t0 = time.perf_counter()
                await run_probe(conn, item, ctx)
                wall += time.perf_counter() - t0
                m, c = await _server_ms(admin)
                ms, calls = ms + m, calls + c
            out.append((item.id, item.probe.kind, ms / rounds, wall * 1000 / rounds, int(calls / rounds)))
        return out
    finally:
        await conn.close()
        await admin.close()


async def service_runs(dsn: str, admin_dsn: str, checklist_name: str, app_root: Path, state_dir: Path,
                       rounds: int) -> dict[str, float]:
    from tui.checklist.service import CheckService
    from tui.config import Config, resolve_target

    cfg = Config(target=resolve_target(dsn), state_dir=state_dir, checklist=checklist_name, app_root=app_root)
    admin = await asyncpg.connect(admin_dsn)
    svc = CheckService(cfg)
    out = {}
    try:
        await admin.execute("SELECT pg_stat_statements_reset()")
        await svc.run()
        out["first run"] = (await _server_ms(admin))[0]
        ms = 0.0
        for _ in range(rounds):
            await admin.execute("SELECT pg_stat_statements_reset()")
            await svc.run(reuse=True)
            ms += (await _server_ms(admin))[0]
        out["re-verify every checklist_refresh, nothing changed"] = ms / rounds
        ms = 0.0
        for _ in range(rounds):
            await admin.execute("SELECT pg_stat_statements_reset()")
            await svc.run()
            ms += (await _server_ms(admin))[0]
        out["re-verify asked for (v, a fix)"] = ms / rounds
    finally:
        await svc.close()
        await admin.close()
    return out


async def setup(c) -> None:
    from tui.demo.data import build_demo_database

    admin = await asyncpg.connect(c.dsn("postgres"))
    try:
        await admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")  # read from here
        await admin.execute("CREATE DATABASE bench")
        await admin.execute(f"CREATE ROLE {ROLE} LOGIN; GRANT pg_monitor TO {ROLE}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(c.dsn("bench"))
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("""
            DO $$ BEGIN
              FOR i IN 1..2000 LOOP
                EXECUTE format('CREATE TABLE IF NOT EXISTS bench_t%s (id int PRIMARY KEY, v text, at timestamptz)', i);
              END LOOP;
            END $$""")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    await build_demo_database(c.dsn("postgres"), "metaextract")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from tui.demo.data import write_app_dir

    c = start_cluster()
    try:
        asyncio.run(setup(c))
        app_dir = write_app_dir(c.base / "app")
        dbs = (("general", "bench"), ("images-mvp", "metaextract"))
        rows = []
        for name, db in dbs:
            rows.append((name, asyncio.run(per_probe(c.dsn(db, user=ROLE), c.dsn("postgres"), name, app_dir,
                                                     c.base / "state", args.rounds))))
        svc_rows = []
        for name, db in dbs:
            try:
                svc_rows.append((name, asyncio.run(service_runs(c.dsn(db, user=ROLE), c.dsn("postgres"), name, app_dir,
                                                                c.base / f"state-{name}", args.rounds))))
            except ImportError:
                break
    finally:
        c.destroy()
    print(f"\nMeasured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, PostgreSQL {c.bindir.parent.name}, "
          f"mean of {args.rounds} runs:\n")
    for name, probes in rows:
        total = sum(r[2] for r in probes)
        print(f"\n{name} ({'2,000 tables' if name == 'general' else 'the demo database'}): "
              f"{total:.1f} server ms in all\n")
        print("| item | kind | server ms | wall ms | statements |")
        print("| --- | --- | ---: | ---: | ---: |")
        for iid, kind, ms, wall, calls in sorted(probes, key=lambda r: -r[2]):
            print(f"| {iid} | {kind} | {ms:.2f} | {wall:.1f} | {calls} |")
    for name, figs in svc_rows:
        print(f"\nthe check service, {name}:\n")
        print("| run | server ms |")
        print("| --- | ---: |")
        for k, v in figs.items():
            print(f"| {k} | {v:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
