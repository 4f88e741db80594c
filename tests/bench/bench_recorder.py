"""Benchmark: the flight recorder (tui.recorder) on the demo workload at a 2 s refresh.

    .venv/bin/python tests/bench/bench_recorder.py [--seconds 180] [--refresh 2]

1. Three ``pgpreflight watch`` processes side by side on the demo database (images-mvp data and its
   workload, as ``pgpreflight demo`` starts them), two ``--no-record`` (their difference is the noise) and one ``--record FILE``:
   CPU seconds per minute of each over a window that opens 10 s after start, and the size of the
   recording, extrapolated to an hour.
2. The recorder's own cost: the real rounds of that recording taken again by a Recorder in this
   process, CPU ms per round (the consumer's thread and the writer's together).
3. A 24-hour recording made from those real rounds (43,200 rounds at 2 s, repeated with their
   monotonic times moved on): its size per hour, and the time to seek (``Recording.state_at`` at
   random times with cold caches, and a Replayer's ``goto`` until the state's RoundEnded).
Targets (issue 14 §2): ≤ 5 MB per hour, ≤ +10 % CPU over the recorder off, a seek ≤ 100 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tui.cluster import start_cluster  # noqa: E402

WARMUP_S = 10.0
DAY_S = 24 * 3600


def run_watches(dsn: str, base: Path, seconds: float, refresh: float) -> tuple[dict, Path]:
    rec_file = base / "bench-recording.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env["PGPREFLIGHT_CONFIG"] = str(base / "no-config.toml")
    common = [sys.executable, "-m", "tui", "watch", "--dsn", dsn, "--checklist", "general",
              "--refresh", str(refresh), "--for", f"{seconds + WARMUP_S + 5:.0f}s"]
    def spawn(state: str, *flags: str) -> subprocess.Popen:
        return subprocess.Popen([*common, "--state-dir", str(base / state), *flags], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # two with the recorder off: how far apart two identical processes are is the noise of the figure
    procs = {"recorder off": spawn("s-off", "--no-record"), "recorder off (2)": spawn("s-off2", "--no-record"),
             "recorder on": spawn("s-on", "--record", str(rec_file))}
    ps = {k: psutil.Process(p.pid) for k, p in procs.items()}
    time.sleep(WARMUP_S)
    start = {k: p.cpu_times() for k, p in ps.items()}
    size0 = rec_file.stat().st_size if rec_file.exists() else 0
    time.sleep(seconds)
    out = {}
    for k, p in ps.items():
        end = p.cpu_times()
        out[k] = ((end.user - start[k].user) + (end.system - start[k].system)) * 60 / seconds
    for p in procs.values():
        p.wait(60)
    out["size0"] = size0
    return out, rec_file


def recorder_cpu_per_round(src: Path, base: Path) -> tuple[float, int]:
    from tui.recorder import Recorder
    from tui.replay import Recording

    with Recording(src) as r:
        rounds = [x.events for x in r.rounds()]
    from tui.recorder import normalize_query

    normalize_query("SELECT 1")  # pglast imported, as in a process that has recorded a round
    rec = Recorder.open(base, "bench-cpu", path=base / "cpu.sqlite")
    t0 = time.process_time()
    for evs in rounds:
        for ev in evs:
            rec.take(ev)
        rec.flush()  # round by round, as at 2 s: the writer is idle between rounds
    cpu = time.process_time() - t0
    rec.close()
    return cpu * 1000 / max(1, len(rounds)), len(rounds)


def synthetic_day(src: Path, out: Path, refresh: float) -> tuple[float, int]:
    """43,200 rounds (24 h at 2 s) from the real rounds of ``src``, written as a recorder writes them."""
    from tui.model import events as E
    from tui.recorder import Recorder
    from tui.replay import Recording, rebase

    with Recording(src) as r:
        rounds = [x.events for x in r.rounds() if not x.partial]
        t_start = r.ats[0]
    mono_span = (rounds[-1][-1].at - rounds[0][-1].at) + refresh
    clock = [t_start]
    rec = Recorder.open(out.parent, "bench-day", path=out, wall=lambda: clock[0])
    n = int(DAY_S / refresh)
    t0 = time.perf_counter()
    for i in range(n):
        cycle, j = divmod(i, len(rounds))
        shift = cycle * mono_span
        for ev in rounds[j]:
            rec.take(rebase(ev, shift) if shift else ev)
            if isinstance(ev, E.RoundEnded):
                clock[0] += refresh
        if i % 2000 == 0:
            rec.flush()
    rec.close()
    return time.perf_counter() - t0, n


def seek_times(path: Path, samples: int = 60) -> dict:
    from tui.replay import Recording, Replayer, _BytesCache, _LRU

    t0 = time.perf_counter()
    r = Recording(path)
    open_s = time.perf_counter() - t0
    first, last = r.span()
    rnd = random.Random(14)
    cold = []
    for _ in range(samples):
        t = first + timedelta(seconds=rnd.uniform(0, (last - first).total_seconds()))
        r._bytes, r._objs = _BytesCache(512), _LRU(256)  # cold: nothing decoded yet
        t1 = time.perf_counter()
        st = r.state_at(t)
        cold.append(time.perf_counter() - t1)
        assert "server" in st.panes

    async def replayer_gotos() -> list[float]:
        from tui.model import events as E

        rp = Replayer(r, paused=True)
        gen = rp.events()
        times = []
        async def to_round_end():
            async for ev in gen:
                if isinstance(ev, E.RoundEnded):
                    return
        await to_round_end()
        for _ in range(samples // 2):
            t = first + timedelta(seconds=rnd.uniform(0, (last - first).total_seconds()))
            t1 = time.perf_counter()
            rp.goto(t)
            await to_round_end()
            times.append(time.perf_counter() - t1)
        await gen.aclose()
        return times

    gotos = asyncio.run(replayer_gotos())
    n = len(r)
    r.close()
    return {"open_s": open_s, "rounds": n, "cold_p50_ms": statistics.median(cold) * 1000,
            "cold_max_ms": max(cold) * 1000, "goto_p50_ms": statistics.median(gotos) * 1000,
            "goto_max_ms": max(gotos) * 1000}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180, help="the measured window of the two watches")
    ap.add_argument("--refresh", type=float, default=2.0)
    ap.add_argument("--keep", type=Path, metavar="FILE", help="copy the real recording to FILE")
    args = ap.parse_args()
    from tui.demo.data import build_demo_database
    from tui.demo.workload import start_in_thread

    c = start_cluster()
    workload = None
    try:
        dsn = asyncio.run(build_demo_database(c.dsn("postgres"), "metaextract"))
        workload = start_in_thread(dsn)
        base = c.base / "bench"
        base.mkdir()
        print(f"bench: two watches for {args.seconds:.0f} s (+{WARMUP_S:.0f} s warm-up) at {args.refresh} s",
              file=sys.stderr)
        cpu, rec_file = run_watches(dsn, base, args.seconds, args.refresh)
        size = sum(os.stat(str(rec_file) + s).st_size for s in ("", "-wal") if os.path.exists(str(rec_file) + s))
        from tui.replay import Recording

        with Recording(rec_file) as r:
            real_rounds = len(r)
            real_span = (r.ats[-1] - r.ats[0]) + args.refresh
        mb_h_real = size / 2**20 * 3600 / real_span
        if args.keep:
            import shutil

            shutil.copyfile(rec_file, args.keep)
        per_round_ms, n_rounds = recorder_cpu_per_round(rec_file, base)
        print("bench: writing a 24-hour recording from the real rounds", file=sys.stderr)
        day = base / "day.sqlite"
        write_s, day_rounds = synthetic_day(rec_file, day, args.refresh)
        day_size = day.stat().st_size
        seeks = seek_times(day)
    finally:
        if workload is not None:
            workload.stop_and_join(10)
        c.destroy()
    off, off2, on = cpu["recorder off"], cpu["recorder off (2)"], cpu["recorder on"]
    off_mean = (off + off2) / 2
    rows = [
        ("recording of the real rounds, MB per hour", f"{mb_h_real:.2f}",
         f"{real_rounds} rounds in {real_span:.0f} s, {size / 1024:.0f} KiB", "≤ 5"),
        ("24-hour recording from those rounds, MB per hour", f"{day_size / 2**20 / 24:.2f}",
         f"{day_rounds} rounds, {day_size / 2**20:.1f} MiB, written in {write_s:.0f} s", "≤ 5"),
        ("watch CPU s/min, recorder off (two processes)", f"{off:.3f} / {off2:.3f}",
         f"apart by {abs(off - off2) / off_mean * 100:.1f} % (the noise)" if off_mean else "", ""),
        ("watch CPU s/min, recorder on", f"{on:.3f}", f"{(on / off_mean - 1) * 100:+.1f} % over their mean"
         if off_mean else "", "≤ +10 %"),
        ("recorder CPU ms per round (take + encode + write)", f"{per_round_ms:.2f}",
         f"{n_rounds} rounds; {per_round_ms / 1000 / args.refresh * 100:.2f} % of a core at {args.refresh} s", ""),
        ("24-hour recording: open (index of every round)", f"{seeks['open_s'] * 1000:.0f} ms", "", ""),
        ("24-hour recording: state_at, cold, p50 / max", f"{seeks['cold_p50_ms']:.1f} / {seeks['cold_max_ms']:.1f} ms",
         "60 random times", "≤ 100 ms"),
        ("24-hour recording: Replayer goto to its RoundEnded, p50 / max",
         f"{seeks['goto_p50_ms']:.1f} / {seeks['goto_max_ms']:.1f} ms", "30 random times", "≤ 100 ms"),
    ]
    print(f"\nMeasured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, demo workload, "
          f"{args.refresh:g} s refresh, {args.seconds:.0f} s window:\n")
    print("| figure | value | detail | target |")
    print("| --- | ---: | --- | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
