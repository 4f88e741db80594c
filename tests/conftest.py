"""Shared fixtures: one real throwaway PostgreSQL cluster per test session, started by
the same code as `pgpreflight demo` (tui.cluster). Works as root (server runs as nobody)
and as a normal user."""
from __future__ import annotations

import asyncio
import os
import shutil

import pytest



@pytest.fixture(scope="session")
def cluster():
    from tests.pg.pg_helpers import own_cluster

    yield from own_cluster()


@pytest.fixture(scope="session")
def demo_dsn(cluster):
    """The images-mvp demo database (built once per session, as the demo builds it)."""
    from tui.demo.data import build_demo_database

    return asyncio.run(build_demo_database(cluster.dsn("postgres"), "metaextract"))


@pytest.fixture(scope="session")
def demo_app_dir(tmp_path_factory):
    from tui.demo.data import write_app_dir

    return write_app_dir(tmp_path_factory.mktemp("app"))


@pytest.fixture
def state_dir(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    return d


@pytest.fixture
def pg_env(monkeypatch):
    """A clean environment: no PG* or DATABASE_URL from the machine running the tests."""
    for k in list(os.environ):
        if k.startswith("PG") or k == "DATABASE_URL":
            monkeypatch.delenv(k, raising=False)
    return monkeypatch


def pytest_report_header(config):
    return f"pg server binaries: {shutil.which('initdb') or 'via tui.cluster.find_bindir()'}"
