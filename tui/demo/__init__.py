"""The images-mvp ("metaextract") demo: database, app files and live workload.

Lazy re-exports (importing ``tui.demo`` does not import asyncpg until a name is used):
build_demo_database, write_app_dir, migration_files, dsn_with_database,
MIGRATIONS_TABLE (tui.demo.data); Workload, start_in_thread (tui.demo.workload).
"""
from __future__ import annotations

_EXPORTS = {
    "build_demo_database": "tui.demo.data",
    "write_app_dir": "tui.demo.data",
    "migration_files": "tui.demo.data",
    "dsn_with_database": "tui.demo.data",
    "MIGRATIONS_TABLE": "tui.demo.data",
    "Workload": "tui.demo.workload",
    "start_in_thread": "tui.demo.workload",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tui.demo' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
