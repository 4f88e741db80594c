"""The demo's launch spike against the real demo database, watched by the real Monitor and AlertBook at
the default thresholds: connections_pct and lock_wait_s raised during it and cleared after it, its
sessions gone afterwards; cancelled mid-spike, it cleans up; a second spike is refused; and
``demo --spike-at`` refuses bad values."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import pytest
from pg_helpers import fresh_database, wait_until

from tui.alerts import AlertBook, Figures, Thresholds
from tui.config import Config, resolve_target
from tui.db.monitor import Monitor
from tui.demo.spike import ADVISORY_KEY, SPIKE_APP, Spike, SpikeBusy, launch_spike
from tui.model import events as E

pytestmark = pytest.mark.pg
ROOT = Path(__file__).resolve().parents[2]

# Shorter than the demo's (hold 20 s, lock 15 s) to keep the suite fast; the thresholds are the defaults
# (lock_wait_s 10 s: a 12 s lock wait is over it for ~2 s, four rounds at a 0.5 s refresh).
HOLD_S, LOCK_S = 13.0, 12.0


@pytest.fixture
def workload(demo_dsn):
    """The demo's own traffic beside the spike (its idle transaction holds a credit_balances row), with
    its first burst of 15 connections (held 3-5 s) soon after it starts."""
    from tui.demo.workload import start_in_thread

    w = start_in_thread(demo_dsn, first_burst_after=(0.5, 1.0), seed=14)
    yield w
    w.stop_and_join(10)


async def spike_sessions(conn) -> list:
    return await conn.fetch("SELECT pid, state, wait_event_type FROM pg_stat_activity WHERE application_name = $1",
                            SPIKE_APP)


async def test_spike_raises_and_clears_connections_and_lock_wait(demo_dsn, workload, tmp_path):
    cfg = Config(target=resolve_target(demo_dsn, env={}), state_dir=tmp_path, refresh=0.5)
    thresholds = Thresholds()  # the defaults
    assert thresholds["connections_pct"] == 80 and thresholds["lock_wait_s"] == 10
    book, figures = AlertBook(thresholds), Figures()
    timeline: list[tuple[float, str, str]] = []  # (s from the spike's start, "raised"/"cleared", name)
    t0 = time.monotonic()

    async def consume():
        gen = Monitor(cfg, wanted={"server", "connections"}).events()
        try:
            async for ev in gen:
                figures.take(ev)
                if isinstance(ev, E.RoundEnded):
                    for a in book.update(figures.threshold_figures(), datetime.now(timezone.utc)):
                        timeline.append((time.monotonic() - t0, "raised" if a.active else "cleared", a.name))
        finally:
            await gen.aclose()

    def seen(kind, name):
        return [t for t, k, n in timeline if k == kind and n == name]

    watcher = asyncio.ensure_future(consume())
    steps: list[str] = []
    try:
        await wait_until(lambda: _true(figures.info is not None), 10, "the monitor's first round")
        assert "connections_pct" not in book.active and "lock_wait_s" not in book.active
        # the spike starts during a burst of the app's: when the burst ends, connections stay over 80 %
        probe = await asyncpg.connect(demo_dsn)
        try:
            await wait_until(lambda: _at_least(probe.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'images-mvp-api'"), 15),
                10, "the workload's burst")
        finally:
            await probe.close()
        t0 = time.monotonic()
        result = await launch_spike(demo_dsn, hold_s=HOLD_S, lock_s=LOCK_S, progress=steps.append)
        spike_s = time.monotonic() - t0
        for name in ("connections_pct", "lock_wait_s"):
            await wait_until(lambda: _true(seen("cleared", name)), 5, f"{name} cleared after the spike")
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    print(f"\nspike {spike_s:.1f} s, {result.line()}", *steps, sep="\n  ")
    for t, k, n in timeline:
        print(f"  {t:5.1f} s {k:8} {n}")
    for name in ("connections_pct", "lock_wait_s"):
        assert len(seen("raised", name)) == 1, timeline  # raised once, not every round
        assert seen("raised", name)[0] < seen("cleared", name)[0] <= spike_s + 5
    # the lock wait crossed 10 s before the lock was released, the connections came at once
    assert 10 < seen("raised", "lock_wait_s")[0] < LOCK_S + 2
    assert seen("raised", "connections_pct")[0] < 5
    assert result.peak_connections >= 0.8 * result.usable_connections
    assert result.peak_connections <= result.usable_connections
    assert LOCK_S - 0.5 < result.lock_wait_s < LOCK_S + 2 and result.slow_queries >= 4
    assert not result.stopped and result.duration_s < HOLD_S + 5
    # it started during the app's burst and topped up when the burst ended (no second connections_pct)
    first_opened = int(steps[0].split()[3])
    assert steps[0].startswith("launch spike: opening") and result.extra_connections > first_opened and "waits for a credit_balances row" in " ".join(steps)
    conn = await asyncpg.connect(demo_dsn)
    try:
        await wait_until(lambda: _none(spike_sessions(conn)), 5, "the spike's sessions gone")
        # the workload, held up by nothing, still runs: its idle transaction was skipped, not waited on
        assert workload.running and workload.ready.is_set()
    finally:
        await conn.close()


async def test_cancel_mid_spike_closes_every_connection_and_releases_the_lock(demo_dsn):
    conn = await asyncpg.connect(demo_dsn)
    try:
        task = asyncio.ensure_future(launch_spike(demo_dsn))

        async def waiting_and_sleeping():
            rows = await spike_sessions(conn)
            busy = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'SELECT pg_sleep%'"
                " AND state = 'active'", SPIKE_APP)
            return any(r["wait_event_type"] == "Lock" for r in rows) and busy > 0 and len(rows) > 10
        await wait_until(waiting_and_sleeping, 15, "the spike's lock wait and slow queries")
        assert Spike.busy()
        t = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        print(f"\ncancel cleanup {time.monotonic() - t:.2f} s")
        assert not Spike.busy()
        await wait_until(lambda: _none(spike_sessions(conn)), 5, "the spike's sessions gone")
        # the lock is free: this session takes every credit row at once, without waiting
        await conn.execute("SET lock_timeout = '1s'")
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM credit_balances FOR UPDATE")
        assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_KEY)  # and its advisory lock
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_KEY)
    finally:
        await conn.close()


async def test_a_second_spike_is_refused_and_stop_ends_it_early(cluster):
    """On a database without the demo's tables: its lock wait is on an advisory lock."""
    dsn = await fresh_database(cluster, "spike_plain")
    conn = await asyncpg.connect(dsn)
    try:
        first = Spike(dsn)
        task = asyncio.ensure_future(first.run())

        async def advisory_wait():
            return await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'advisory'",
                SPIKE_APP)
        await wait_until(advisory_wait, 10, "the spike's lock wait on an advisory lock")
        with pytest.raises(SpikeBusy, match="already running"):
            await launch_spike(dsn)
        assert first.running
        first.stop()
        result = await asyncio.wait_for(task, 10)
        assert result.stopped and result.duration_s < 10
        await wait_until(lambda: _none(spike_sessions(conn)), 5, "the spike's sessions gone")
        # another process's spike on this database (its advisory lock): refused, nothing left behind
        assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_KEY)
        with pytest.raises(SpikeBusy, match="another process"):
            await launch_spike(dsn)
        await wait_until(lambda: _none(spike_sessions(conn)), 5, "the refused spike's session gone")
    finally:
        await conn.close()


@pytest.mark.parametrize("value, says", [("x", "'x' is not a number"), ("-3", "'-3' must be a number of seconds"),
                                         ("nan", "'nan' must be")])
def test_demo_spike_at_bad_value_is_one_line_and_exit_2(value, says):
    r = subprocess.run([sys.executable, "-m", "tui", "demo", "--no-ui", "--spike-at", value],
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pgpreflight: error: argument --spike-at: ") and says in lines[0]
    assert "starting a throwaway" not in r.stderr  # refused before any cluster


async def _true(v):
    return v


async def _none(coro):
    return not await coro


async def _longer(coro, n):
    return len(await coro) > n


async def _at_least(coro, n):
    return await coro >= n


def test_demo_no_ui_spike_at_says_when_it_starts_and_ends(tmp_path):
    """``demo --no-ui --spike-at 0``: one stderr line when the spike starts; SIGTERM mid-spike ends it
    early, with one line, before the server is removed."""
    import os
    import signal

    env = {k: v for k, v in os.environ.items() if k != "PGPREFLIGHT_STATE_DIR"}
    proc = subprocess.Popen([sys.executable, "-m", "tui", "demo", "--no-ui", "--no-workload", "--spike-at", "0",
                             "--state-dir", str(tmp_path / "st")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert proc.stdout.readline().startswith("postgresql://")
        lines = []
        while not any("launch spike started" in line for line in lines):
            line = proc.stderr.readline()
            assert line, "stderr closed before the spike started: " + "".join(lines)
            lines.append(line)
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    started = [ln for ln in lines if "launch spike" in ln]
    assert len(started) == 1 and "target 81" in started[0], lines
    ended = [ln for ln in rest.splitlines() if "launch spike" in ln]
    assert len(ended) == 1 and ended[0].startswith("pgpreflight demo: launch spike done in ") \
        and ended[0].endswith("(stopped early)"), rest
    assert "Traceback" not in rest and rest.rstrip().endswith("stopped the server and removed its files")


async def test_unreachable_database_is_one_line_and_the_app_knows_the_demo(tmp_path):
    from tui.demo.spike import SpikeError

    with pytest.raises(SpikeError, match=r"^launch spike: cannot connect: ") as e:
        await launch_spike("postgresql://postgres@127.0.0.1:1/nothing", connect_timeout=2)
    assert "\n" not in str(e.value) and not Spike.busy()
    cfg = Config(target=resolve_target("postgresql://u@h/db", env={}), state_dir=tmp_path)
    assert not Spike.available(cfg)
    from dataclasses import replace

    assert Spike.available(replace(cfg, demo=True))
