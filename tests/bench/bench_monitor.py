"""Benchmark: pgpreflight side by side with pg_activity on one loaded server.

    .venv/bin/pip install -q 'pg_activity[psycopg]==3.6.2'     # the comparison, not a dependency
    .venv/bin/python tests/bench/bench_monitor.py [--seconds 60] [--big]

Workload (issue 3): 2,000 tables, 200 idle and 5 idle-in-transaction sessions, pgbench at 50 tps.
Both monitors run in tmux at 1 s refresh, at the same time, each as its own role so that
pg_stat_statements attributes server time to each. The window opens 10 s after both first frames
(ours loads and verifies the checklist after its first frame); the CPU until then is reported
apart as start-up. Measured over the window:
  - CPU seconds per minute of each monitor's process (psutil user+system);
  - server-side execution time per minute of each monitor's queries (pg_stat_statements by role),
    both over the window and counted from each monitor's start to the window's end (which counts the
    checklist's first run and its re-verify checklist_refresh = 60 s later);
  - peak RSS (sampled every 0.25 s, from the first frames on);
  - time to first full frame (spawn until the screen shows live data, polled with capture-pane),
    for each monitor started on its own (median of 3) and for both started at once.
With --big: 1,000 sessions and 20,000 tables; server time of each poll, and the latency of a key press.
Also: the whole images-mvp check on the demo database.
Prints a Markdown table (paste it into the README).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tui.cluster import start_cluster  # noqa: E402

VENV_BIN = Path(sys.executable).parent


class Sessions:
    """Idle and idle-in-transaction client sessions held open in a background loop."""

    def __init__(self, dsn: str, idle: int, idle_in_xact: int):
        self.dsn, self.idle, self.iix = dsn, idle, idle_in_xact
        self.loop = asyncio.new_event_loop()
        self.conns: list = []
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._open())
        self.ready.set()
        self.loop.run_forever()

    async def _open(self):
        sem = asyncio.Semaphore(20)

        async def one(i):
            async with sem:
                c = await asyncpg.connect(self.dsn, server_settings={"application_name": f"app-{i % 7}"})
                if i < self.iix:
                    await c.execute("BEGIN; SELECT 1")
                return c

        self.conns = await asyncio.gather(*(one(i) for i in range(self.idle + self.iix)))

    def start(self):
        self.thread.start()
        self.ready.wait(300)

    def stop(self):
        """Close the sessions and stop the loop; never raises (it runs in the benchmarks' finally)."""
        async def close():
            await asyncio.gather(*(c.close() for c in self.conns), return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(60)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)


async def make_tables(dsn: str, n: int):
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"""
            DO $$ BEGIN
              FOR i IN 1..{n} LOOP
                EXECUTE format('CREATE TABLE IF NOT EXISTS bench_t%s (id int PRIMARY KEY, v text, at timestamptz)', i);
              END LOOP;
            END $$""")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def setup_roles(dsn: str):
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for r in ("bench_pgpf", "bench_pga"):
            await conn.execute(f"DROP ROLE IF EXISTS {r}; CREATE ROLE {r} LOGIN; GRANT pg_monitor TO {r}")
    finally:
        await conn.close()


async def server_ms_by_role(dsn: str) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("""SELECT r.rolname, sum(s.total_exec_time)::float8 AS ms, sum(s.calls)::int8 AS calls
                                     FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
                                    WHERE r.rolname IN ('bench_pgpf', 'bench_pga') GROUP BY r.rolname""")
        return {r["rolname"]: (r["ms"], r["calls"]) for r in rows}
    finally:
        await conn.close()


async def top_statements(dsn: str, role: str, n: int = 12) -> list[tuple[float, int, str]]:
    """The role's statements that took the most server time since the last reset (ms, calls, text)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("""SELECT s.total_exec_time::float8 AS ms, s.calls, s.query
                                     FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
                                    WHERE r.rolname = $1 ORDER BY s.total_exec_time DESC LIMIT $2""", role, n)
        return [(r["ms"], r["calls"], " ".join(r["query"].split())[:90]) for r in rows]
    finally:
        await conn.close()


async def reset_stats(dsn: str):
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


def tmux(*args) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout


def pane_pid(session: str) -> int:
    return int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())


def spawn(session: str, cmd: str, width=200, height=50) -> tuple[float, psutil.Process]:
    tmux("kill-session", "-t", session)
    t0 = time.monotonic()
    tmux("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), f"exec {cmd}")
    pid = pane_pid(session)
    return t0, psutil.Process(pid)


def first_frames(started: dict[str, tuple[float, object]], timeout: float = 30) -> dict[str, float]:
    """Seconds from each spawn to its first full frame: every screen is polled in one loop (one
    after the other would charge the second monitor with the first one's wait)."""
    done: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(started):
        for session, (t0, ready) in started.items():
            if session not in done and ready(tmux("capture-pane", "-p", "-t", session)):
                done[session] = time.monotonic() - t0
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for the first frame of "
                               + ", ".join(s for s in started if s not in done))
        time.sleep(0.01)
    return done


def pgpreflight_ready(screen: str) -> bool:
    """Our header is connected with its figures, and the session table lists the workload (the
    idle-in-transaction sessions always, pgbench's when a poll catches one running)."""
    return "● connected" in screen and "tps" in screen and ("BEGIN" in screen or "pgbench" in screen)


def pg_activity_ready(screen: str) -> bool:
    """pg_activity's process list is on screen: its header line (PID ...) and a row under it that
    starts with a pid. Its rows need not show the word pgbench (the query column may be cut)."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if line.split()[:1] == ["PID"]:
            return any(re.match(r"\s*\d+\s", row) for row in lines[i + 1:])
    return False


WARMUP_S = 10.0


def measure(procs: dict[str, psutil.Process], seconds: float, warmup: float = WARMUP_S,
            at_start=lambda: None) -> dict[str, dict]:
    """CPU over a window of ``seconds`` that opens ``warmup`` seconds after the first frames, and
    the CPU each process spent until then (its start-up: ours loads and verifies the checklist
    after its first frame, pg_activity has nothing of the kind). Peak RSS over both. ``at_start``
    runs as the window opens (the server's statistics are reset there)."""
    peak = {k: 0 for k in procs}

    def sample_until(end_at: float) -> None:
        while time.monotonic() < end_at:
            for k, p in procs.items():
                try:
                    peak[k] = max(peak[k], p.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.25)

    sample_until(time.monotonic() + warmup)
    at_start()
    start = {k: p.cpu_times() for k, p in procs.items()}
    sample_until(time.monotonic() + seconds)
    out = {}
    for k, p in procs.items():
        end = p.cpu_times()
        cpu = (end.user - start[k].user) + (end.system - start[k].system)
        out[k] = {"cpu_s_per_min": cpu * 60 / seconds, "peak_rss_mib": peak[k] / 2**20,
                  "startup_cpu_s": start[k].user + start[k].system}
    return out


def compile_project() -> None:
    """Byte-compile the project's modules as an installed package has them: pip compiles a wheel's
    modules when it installs them, but an editable install's are compiled on first import, and not
    kept where PYTHONDONTWRITEBYTECODE is set (as on this machine), which would charge the first
    frame ~0.3 s of compiling. pg_activity, installed from a wheel, is compiled."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "tui"), str(ROOT / "widgets")],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def first_frame_alone(cmd: str, ready, runs: int = 3) -> float:
    """Median seconds to the first full frame of a monitor started on its own."""
    times = []
    for _ in range(runs):
        t0, _proc = spawn("bench_ff", cmd)
        times.append(first_frames({"bench_ff": (t0, ready)})["bench_ff"])
        tmux("kill-session", "-t", "bench_ff")
        time.sleep(0.5)
    return sorted(times)[len(times) // 2]


def run_side_by_side(c, seconds: float) -> dict:
    dsn = c.dsn("bench")
    sock, port = c.socket_dir, c.port
    pgpf_cmd = (f"env TERM=xterm-256color {VENV_BIN / 'pgpreflight'} --state-dir {c.base / 'state'} "
                f"--dsn 'postgresql://bench_pgpf@/bench?host={sock}&port={port}' monitor --refresh 1")
    pga_cmd = (f"env TERM=xterm-256color {VENV_BIN / 'pg_activity'} --refresh 1 -h {sock} -p {port} "
               f"-U bench_pga -d bench")
    compile_project()
    alone_pf = first_frame_alone(pgpf_cmd, pgpreflight_ready)
    alone_pa = first_frame_alone(pga_cmd, pg_activity_ready)
    asyncio.run(reset_stats(dsn))
    t_pf, p_pf = spawn("bench_pgpf", pgpf_cmd)
    t_pa, p_pa = spawn("bench_pga", pga_cmd)
    ff = first_frames({"bench_pgpf": (t_pf, pgpreflight_ready), "bench_pga": (t_pa, pg_activity_ready)})
    ff_pf, ff_pa = ff["bench_pgpf"], ff["bench_pga"]
    at_window: dict = {}
    res = measure({"pgpreflight": p_pf, "pg_activity": p_pa}, seconds,
                  at_start=lambda: at_window.update(asyncio.run(server_ms_by_role(dsn))))
    srv = asyncio.run(server_ms_by_role(dsn))
    t_end = time.monotonic()
    res["top_statements"] = asyncio.run(top_statements(dsn, "bench_pgpf"))
    for name, role, t0 in (("pgpreflight", "bench_pgpf", t_pf), ("pg_activity", "bench_pga", t_pa)):
        ms, calls = srv.get(role, (0.0, 0))
        ms0, calls0 = at_window.get(role, (0.0, 0))
        # counted over the window (from 10 s after the first frames), and from the spawn on: that
        # counts the checklist's first run and its re-verify after checklist_refresh (60 s)
        res[name]["server_ms_per_min"] = (ms - ms0) * 60 / seconds
        res[name]["queries_per_min"] = (calls - calls0) * 60 / seconds
        res[name]["server_ms_per_min_from_start"] = ms * 60 / (t_end - t0)
        res[name]["queries_per_min_from_start"] = calls * 60 / (t_end - t0)
        res[name]["counted_from_start_s"] = t_end - t0
    res["pgpreflight"]["first_frame_s"] = ff_pf
    res["pg_activity"]["first_frame_s"] = ff_pa
    res["pgpreflight"]["first_frame_alone_s"] = alone_pf
    res["pg_activity"]["first_frame_alone_s"] = alone_pa
    for s in ("bench_pgpf", "bench_pga"):
        tmux("kill-session", "-t", s)
    return res


async def poll_server_ms(dsn: str, rounds: int = 5) -> dict[str, float]:
    """Server time of each of our pollers' queries on the current database (pg_stat_statements)."""
    from tui.config import resolve_target
    from tui.db import poller as poller_mod
    from tui.db.connect import connect

    conn = await connect(resolve_target(dsn), role="bench", statement_timeout_ms=30000)
    admin = await asyncpg.connect(dsn)
    try:
        out = {}
        poll_fn = getattr(poller_mod, "poll_all", None)
        await admin.execute("SELECT pg_stat_statements_reset()")
        t0 = time.perf_counter()
        for _ in range(rounds):
            if poll_fn is not None:
                await poll_fn(conn)
            else:
                await poller_mod.ServerPoller().poll(conn, with_size=True)
        wall = (time.perf_counter() - t0) / rounds
        ms = await admin.fetchval("""SELECT sum(total_exec_time) FROM pg_stat_statements s
                                      JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = current_user
                                       AND s.query NOT ILIKE '%pg_stat_statements_reset%'""")
        out["server_ms_per_poll"] = float(ms or 0) / rounds
        out["wall_ms_per_poll"] = wall * 1000
        return out
    finally:
        await conn.close()
        await admin.close()


async def checklist_seconds(cluster) -> float | None:
    try:
        from tui.checklist import runner  # noqa: F401
    except ImportError:
        return None
    from tui.demo.data import build_demo_database, write_app_dir

    dsn = await build_demo_database(cluster.dsn("postgres"), "metaextract")
    app_dir = write_app_dir(cluster.base / "app")
    t0 = time.perf_counter()
    res = subprocess.run([str(VENV_BIN / "pgpreflight"), "check", "--dsn", dsn, "--checklist", "images-mvp",
                          "--app-root", str(app_dir), "--state-dir", str(cluster.base / "state"), "--format", "json"],
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    del res
    return wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--big", action="store_true", help="also 1,000 sessions and 20,000 tables")
    args = ap.parse_args()
    if not shutil.which("tmux"):
        print("bench: tmux is needed", file=sys.stderr)
        return 2
    if not (VENV_BIN / "pg_activity").exists():
        print("bench: install the comparison first: .venv/bin/pip install 'pg_activity[psycopg]==3.6.2'",
              file=sys.stderr)
        return 2
    c = start_cluster(settings={"max_connections": "1200", "shared_buffers": "256MB",
                                "max_locks_per_transaction": "256"})
    sessions = pgbench = None
    rows = []
    top: list = []
    try:
        admin = c.dsn("postgres")
        subprocess.run([str(c.bindir.parent / "bin" / "psql") if (c.bindir / "psql").exists() else "psql",
                        admin, "-qc", "CREATE DATABASE bench"], check=True, capture_output=True)
        dsn = c.dsn("bench")
        asyncio.run(setup_roles(dsn))
        t = time.monotonic()
        asyncio.run(make_tables(dsn, 2000))
        print(f"bench: 2,000 tables in {time.monotonic() - t:.1f} s", file=sys.stderr)
        pgb = shutil.which("pgbench") or str(c.bindir / "pgbench")
        subprocess.run([pgb, "-i", "-q", "-s", "1", "-h", str(c.socket_dir), "-p", str(c.port), "-U", "postgres",
                        "bench"], check=True, capture_output=True)
        pgbench = subprocess.Popen([pgb, "-R", "50", "-T", str(int(args.seconds) + 120), "-c", "2", "-n",
                                    "-h", str(c.socket_dir), "-p", str(c.port), "-U", "postgres", "bench"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sessions = Sessions(dsn, 200, 5)
        sessions.start()
        res = run_side_by_side(c, args.seconds)
        pf, pa = res["pgpreflight"], res["pg_activity"]
        top = res.get("top_statements", [])
        rows += [
            ("CPU s/min of the monitor process", f"{pf['cpu_s_per_min']:.2f}", f"{pa['cpu_s_per_min']:.2f}",
             "≤ pg_activity"),
            (f"CPU s from start to {WARMUP_S:.0f} s after the first frame (start-up)", f"{pf['startup_cpu_s']:.2f}",
             f"{pa['startup_cpu_s']:.2f}", ""),
            (f"server execution ms/min of its queries, counted from start ({pf['counted_from_start_s']:.0f} s: "
             f"the checklist's first run and its re-verify included)", f"{pf['server_ms_per_min_from_start']:.0f}",
             f"{pa['server_ms_per_min_from_start']:.0f}",
             f"≤ 1/10 of pg_activity ({pf['server_ms_per_min_from_start'] / max(pa['server_ms_per_min_from_start'], 1e-9):.2f}×)"),
            (f"server execution ms/min of its queries, counted from {WARMUP_S:.0f} s after the first frames",
             f"{pf['server_ms_per_min']:.0f}", f"{pa['server_ms_per_min']:.0f}",
             f"≤ 1/10 of pg_activity ({pf['server_ms_per_min'] / max(pa['server_ms_per_min'], 1e-9):.2f}×)"),
            ("queries/min, counted from start", f"{pf['queries_per_min_from_start']:.0f}",
             f"{pa['queries_per_min_from_start']:.0f}", ""),
            ("queries/min", f"{pf['queries_per_min']:.0f}", f"{pa['queries_per_min']:.0f}", ""),
            ("peak RSS MiB", f"{pf['peak_rss_mib']:.1f}", f"{pa['peak_rss_mib']:.1f}", "≤ 1.2× pg_activity"),
            ("first full frame s, started alone (median of 3)", f"{pf['first_frame_alone_s']:.2f}",
             f"{pa['first_frame_alone_s']:.2f}", "≤ 1 s"),
            ("first full frame s, both started at once", f"{pf['first_frame_s']:.2f}",
             f"{pa['first_frame_s']:.2f}", ""),
        ]
        if args.big:
            sessions.stop()
            sessions = Sessions(dsn, 1000, 5)
            sessions.start()
            asyncio.run(make_tables(dsn, 20000))
            big = asyncio.run(poll_server_ms(c.dsn("bench")))
            rows.append(("1,000 sessions, 20,000 tables: server ms per poll", f"{big['server_ms_per_poll']:.1f}", "",
                         "< 100 ms"))
            rows.append(("1,000 sessions, 20,000 tables: wall ms per poll", f"{big['wall_ms_per_poll']:.1f}", "", ""))
        ck = asyncio.run(checklist_seconds(c))
        if ck is not None:
            rows.append(("images-mvp check on the demo db, whole command s", f"{ck:.2f}", "", "≤ 2 s"))
    finally:
        if pgbench is not None:
            pgbench.terminate()
        if sessions is not None:
            sessions.stop()
        c.destroy()
    print(f"\nMeasured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, {args.seconds:.0f} s window, "
          f"1 s refresh, PostgreSQL {c.bindir.parent.name}:\n")
    print("| figure | pgpreflight | pg_activity 3.6.2 | target |")
    print("| --- | ---: | ---: | --- |")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    if top:
        print("\npgpreflight's statements by server time, counted from start:\n")
        print("| server ms | calls | statement |")
        print("| ---: | ---: | --- |")
        for ms, calls, text in top:
            print(f"| {ms:.1f} | {calls} | `{text.replace('|', '/')}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
