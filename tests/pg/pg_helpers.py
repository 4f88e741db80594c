"""Helpers shared by the pg test modules."""
from __future__ import annotations

import asyncio
import time

import pytest


async def wait_until(fn, timeout: float = 20.0, what: str = "condition", interval: float = 0.02):
    """Await ``fn()`` until it returns a truthy value, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = await fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def own_cluster():
    """A module's own throwaway server (use as a generator fixture that shadows the shared `cluster`):
    index builds, dumps and demo builds must not crowd other modules' pg_stat_statements or settings."""
    from tui.cluster import ClusterError, start_cluster

    try:
        c = start_cluster()
    except ClusterError as e:
        pytest.fail(str(e))
    yield c
    c.destroy()


async def fresh_database(cluster, name: str) -> str:
    """Drop ``name`` if a previous run left it, create it empty, and return its DSN."""
    import asyncpg

    admin = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return cluster.dsn(name)


async def until(pilot, predicate, timeout: float = 10.0, what: str = "the UI"):
    """Pause the pilot until ``predicate()`` is truthy (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


def live_app(dsn, state_dir, **kw):
    """The real app polling ``dsn`` every 0.2 s, its state in ``state_dir``."""
    from tui.config import Config, resolve_target
    from tui.screens.app import PreflightApp

    return PreflightApp(Config(target=resolve_target(dsn, env={}), state_dir=state_dir, refresh=0.2, **kw))
