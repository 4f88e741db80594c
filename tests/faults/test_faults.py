"""Fault injection against a real server (issue 6): the app stays alive, says the truth,
and loses no checklist state. Each test scripts the fault on its own throwaway cluster,
because the faults (stop, SIGSTOP) would disturb the shared one."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import asyncpg
import pytest

from tui.cluster import start_cluster
from tui.config import Config, resolve_target

pytestmark = [pytest.mark.faults, pytest.mark.pg]


@pytest.fixture
def own_cluster():
    c = start_cluster()
    yield c
    c.destroy()


async def wait_until(pilot, predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.1)


def header_of(app):
    from widgets.header import ServerHeader

    return app.query_one(ServerHeader)


def header_text(app) -> str:
    return header_of(app).render_text().plain


def make_app(cluster, tmp_path, refresh: float = 0.5):
    from tui.screens.app import PreflightApp

    cfg = Config(target=resolve_target(cluster.dsn("postgres")), state_dir=tmp_path / "state",
                 refresh=refresh, statement_timeout_ms=1000, connect_timeout=1.0, app_root=tmp_path)
    return PreflightApp(cfg)


async def test_server_stop_and_start(own_cluster, tmp_path):
    app = make_app(own_cluster, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: header_of(app).state.status == "connected" and header_of(app).info,
                         15, "first connection")
        await asyncio.to_thread(own_cluster.stop, "fast")
        await wait_until(pilot, lambda: "DISCONNECTED retry" in header_text(app), 15, "disconnected notice")
        text = header_text(app)
        assert "✖ DISCONNECTED retry" in text and "STALE" in text.splitlines()[1][:60], text  # flags first, whole at 80
        assert "STALE" in text, "the last data stays, marked stale"
        assert header_of(app).info is not None
        await asyncio.to_thread(own_cluster.start)
        # backoff is capped near 20 s: it must come back by itself within that
        await wait_until(pilot, lambda: header_of(app).state.status == "connected", 30, "reconnection")
        assert "STALE" not in header_text(app)


async def test_own_sessions_terminated(own_cluster, tmp_path):
    app = make_app(own_cluster, tmp_path, refresh=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: header_of(app).state.status == "connected", 15, "first connection")
        admin = await asyncpg.connect(own_cluster.dsn())
        poll_sessions = ("SELECT array_agg(pid ORDER BY pid) FROM pg_stat_activity "
                         "WHERE application_name = 'pgpreflight/poll'")
        try:
            before = await admin.fetchval(poll_sessions)
            assert before, "the monitor's poll session is there"
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name LIKE 'pgpreflight%' AND pid <> pg_backend_pid()")
            assert killed >= 1
            started = time.monotonic()
            after = None
            deadline = started + 15
            # recovered: a new poll session (not one of the killed ones), and the header connected again
            while time.monotonic() < deadline:
                after = await admin.fetchval(poll_sessions)
                if after and not set(after) & set(before) and header_of(app).state.status == "connected" \
                        and header_of(app).state.last_ok_at and header_of(app).state.last_ok_at > started:
                    break
                await pilot.pause(0.1)
            else:
                raise AssertionError(f"no recovery: poll sessions before {before}, after {after}, "
                                     f"header {header_of(app).state}")
            # one or two refresh intervals plus the first backoff step, with room for a loaded CI machine
            assert time.monotonic() - started < 8
            assert "STALE" not in header_text(app)
        finally:
            await admin.close()


async def test_stalled_server_keeps_ui_responsive(own_cluster, tmp_path):
    app = make_app(own_cluster, tmp_path, refresh=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: header_of(app).state.status == "connected", 15, "first connection")
        own_cluster.signal_server(signal.SIGSTOP)
        try:
            await wait_until(pilot, lambda: header_of(app).state.status == "disconnected", 10,
                             "the stall to be noticed (client-side timeout)")
            # keys are still answered while the server is stalled
            before = app.paused
            t0 = time.monotonic()
            await pilot.press("p")
            assert app.paused is not before
            assert time.monotonic() - t0 < 1.0
            await pilot.press("p")
        finally:
            own_cluster.signal_server(signal.SIGCONT)
        await wait_until(pilot, lambda: header_of(app).state.status == "connected", 30, "recovery after SIGCONT")


def test_monitor_exits_cleanly_on_bad_target_while_server_is_down(own_cluster):
    own_cluster.stop("fast")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    res = subprocess.run([sys.executable, "-m", "tui", "--dsn", own_cluster.dsn("postgres"), "--connect-timeout", "2"],
                         capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    own_cluster.start()

