"""Benchmark: how long the app's writes stall while a fix waits for its ACCESS EXCLUSIVE lock (issue 12 §1).

    .venv/bin/python tests/bench/bench_lock_stall.py [--budget 10] [--old-timeout 5] [--writers 1]

On a throwaway cluster with the demo database (tui.demo.data.build_demo_database), a session touches
credit_balances in a transaction and stays idle in transaction: it holds ACCESS SHARE, so the
add_check_constraint fix of integrity.balance_check cannot take ACCESS EXCLUSIVE. Meanwhile the app (one
or more writers) UPDATEs credit_balances in a loop and times each UPDATE. Three runs, each over the time
the fix runs:
  - baseline: no fix, the writer alone (the same length as the retries run);
  - old: one try under lock_timeout --old-timeout s (options lock_budget_s=0, lock_timeout_ms=5000),
    which is what the fix did before: every write queues behind the waiting ALTER;
  - retries: with_lock_retries (lock_timeout 100 -> 400 ms, pauses 0.5-1 s) for --budget s.
Prints a Markdown table: the writer's UPDATE count, p50, p99 and worst wait, and how the fix ended.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tui.checklist.spec import load_checklist  # noqa: E402
from tui.cluster import start_cluster  # noqa: E402
from tui.config import Config, resolve_target  # noqa: E402
from tui.fixes import params_for_item, run_fix  # noqa: E402

ITEM = "integrity.balance_check"


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[max(0, min(len(v) - 1, int(-(-q * len(v) // 100)) - 1))]


class Writers:
    """The app: each writer UPDATEs one credit_balances row after another and times each statement."""

    def __init__(self, dsn: str, user_ids: list[str], n: int):
        self.dsn, self.user_ids, self.n = dsn, user_ids, n
        self.waits: list[float] = []
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def _one(self, k: int) -> None:
        c = await asyncpg.connect(self.dsn, server_settings={"application_name": f"bench-writer-{k}"})
        rnd = random.Random(k)
        try:
            while not self.stop.is_set():
                uid = rnd.choice(self.user_ids)
                t0 = time.perf_counter()
                await c.execute("UPDATE credit_balances SET balance = balance, updated_at = now() WHERE user_id = $1",
                                uid)
                self.waits.append(time.perf_counter() - t0)
                await asyncio.sleep(0.005)  # the app's pace: about 150 writes a second per writer
        finally:
            await c.close()

    async def __aenter__(self):
        self.tasks = [asyncio.create_task(self._one(k)) for k in range(self.n)]
        while len(self.waits) < 20 * self.n:  # running
            await asyncio.sleep(0.01)
        self.waits.clear()
        return self

    async def __aexit__(self, *exc):
        self.stop.set()
        await asyncio.gather(*self.tasks)


async def holder_session(dsn: str) -> asyncpg.Connection:
    h = await asyncpg.connect(dsn, server_settings={"application_name": "bench-idle-in-transaction"})
    await h.execute("BEGIN")
    await h.fetchval("SELECT balance FROM credit_balances LIMIT 1")
    return h


async def bench(args) -> list[tuple]:
    cluster = start_cluster()
    try:
        from tui.demo.data import build_demo_database

        t0 = time.monotonic()
        dsn = await build_demo_database(cluster.dsn("postgres"), "metaextract")
        print(f"demo database built in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        c = await asyncpg.connect(dsn)
        try:
            user_ids = [r["user_id"] for r in await c.fetch("SELECT user_id FROM credit_balances LIMIT 2000")]
            rows = await c.fetchval("SELECT count(*) FROM credit_balances")
        finally:
            await c.close()
        cfg = Config(target=resolve_target(dsn, env={}), state_dir=Path(tempfile.mkdtemp(prefix="bench-locks-")))
        fix_name, params = params_for_item(load_checklist("images-mvp").item(ITEM))
        out = []
        runs = [("old: one try, lock_timeout %g s" % args.old_timeout,
                 {"lock_budget_s": 0, "lock_timeout_ms": int(args.old_timeout * 1000)}),
                (f"retries: 100→300 ms tries, budget {args.budget:g} s", {"lock_budget_s": args.budget})]
        # baseline: the writers alone, as long as the retries run will take
        async with Writers(dsn, user_ids, args.writers) as w:
            await asyncio.sleep(args.budget)
        out.append(("baseline: no fix", len(w.waits), pct(w.waits, 50), pct(w.waits, 99), max(w.waits),
                    args.budget, "-", "-"))
        for label, options in runs:
            holder = await holder_session(dsn)
            try:
                async with Writers(dsn, user_ids, args.writers) as w:
                    t1 = time.monotonic()
                    res = await run_fix(cfg, fix_name, params, item_id=ITEM, confirmations=1, options=options)
                    took = time.monotonic() - t1
            finally:
                await holder.close()
            b = res.blocker or {}
            how = ("ok" if res.ok else "lock not taken") + (f"; root holder pid {b['pid']} ({b['state']}, "
                                                           f"action {b['action']})" if b else "")
            out.append((label, len(w.waits), pct(w.waits, 50), pct(w.waits, 99), max(w.waits), took,
                        res.figures.get("lock_tries", "-"), how))
        print(f"credit_balances: {rows:,} rows; {args.writers} writer(s)", file=sys.stderr)
        return out
    finally:
        cluster.destroy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=10.0, help="lock budget of the retries run (s)")
    ap.add_argument("--old-timeout", type=float, default=5.0, help="lock_timeout of the old single try (s)")
    ap.add_argument("--writers", type=int, default=1)
    args = ap.parse_args()
    rows = asyncio.run(bench(args))
    print("| run | UPDATEs | p50 ms | p99 ms | worst ms | fix ran s | lock tries | fix result |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, n, p50, p99, worst, took, tries, how in rows:
        print(f"| {label} | {n:,} | {p50 * 1000:.1f} | {p99 * 1000:.1f} | {worst * 1000:.1f} | {took:.1f} | {tries} | {how} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
