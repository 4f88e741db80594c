"""Which probe results a re-verify may reuse, and until when. asyncpg, no textual.

Most of a checklist's server time goes to probes that read the system catalogs (every index, constraint
or table of the database) or the server's settings, and those change only when someone changes the
schema or the configuration. The check service (tui.checklist.service) keeps each such result with the
change signals of its inputs, reads the signals again (one cheap statement) on every periodic re-verify,
and runs again only the probes whose signals moved. Everything else runs every time.

The inputs of a probe:

- ``catalog``: ``table_exists``, ``columns``, ``index_exists``, ``constraint``, ``extension``, and ``sql``
  probes that say ``inputs = ["catalog"]``. The signal is the number of rows inserted, updated and
  deleted in the catalogs they read (pg_class, pg_attribute, pg_index, pg_constraint, pg_namespace,
  pg_extension, pg_type and pg_auth_members), from the server's cumulative statistics, with the time they
  were last reset. Every DDL statement, GRANT and CREATE EXTENSION writes these rows; VACUUM and ANALYZE
  change pg_class in place and do not count (nor change what the probes read). Reading the counters costs
  a few function calls, where hashing the catalogs' rows (xmin) would scan tens of thousands of
  pg_attribute rows. Used from PostgreSQL 15 on, where statistics live in shared memory and are never
  dropped: a backend publishes its counts at most about a second after its transaction ends (up to 10 s
  under contention), so a change made just before a re-verify may be seen one re-verify later. Before 15
  (the statistics collector may drop counts under load), or with ``track_counts`` off, there is no
  catalog signal and these probes run every time.
- ``settings``: ``setting`` and ``extension`` (shared_preload_libraries), and ``sql`` probes that say
  ``inputs = ["settings"]``. The signal is ``pg_conf_load_time()`` and ``pg_postmaster_start_time()``:
  a setting changes only by a reload (which also sets pending_restart) or a restart, and this session
  sees the new value exactly when its reload time moves.
- none: everything else (statistics, sessions, sequences, rows of tables, files, the log, now()): every
  verify runs it.

Limits, on purpose: a result is reused at most ``max_age_s`` (10 minutes) after it was probed, so that
anything no signal covers (an extension's files installed on the server, a change the statistics missed)
is seen within that time; a verify asked for (``v``, a fix, a tick) reuses nothing."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from tui.checklist.spec import Item, Probe
from tui.model.checklist import ERROR, ItemResult

CATALOG, SETTINGS = "catalog", "settings"
#: the inputs of each probe kind whose result depends on nothing else
KIND_INPUTS: dict[str, frozenset[str]] = {
    "table_exists": frozenset({CATALOG}),
    "columns": frozenset({CATALOG}),
    "index_exists": frozenset({CATALOG}),
    "constraint": frozenset({CATALOG}),
    "extension": frozenset({CATALOG, SETTINGS}),
    "setting": frozenset({SETTINGS}),
}
MAX_AGE_S = 600.0
#: the catalogs the probes read; any DDL, GRANT or CREATE EXTENSION writes rows of some of them
CATALOGS = ("pg_class", "pg_attribute", "pg_index", "pg_constraint", "pg_namespace", "pg_extension", "pg_type",
            "pg_auth_members")

SIGNALS_SQL = f"""
SELECT current_setting('server_version_num')::int AS version,
       current_setting('track_counts')::bool AS track_counts,
       pg_conf_load_time()::text AS conf_loaded,
       pg_postmaster_start_time()::text AS started,
       pg_stat_get_db_stat_reset_time((SELECT oid FROM pg_database WHERE datname = current_database()))::text
           AS stats_reset,
       (SELECT sum(pg_stat_get_tuples_inserted(c) + pg_stat_get_tuples_updated(c) + pg_stat_get_tuples_deleted(c))
          FROM unnest('{{{",".join(CATALOGS)}}}'::regclass[]) AS c)::text AS catalog_writes"""


def inputs_of(item: Item) -> frozenset[str] | None:
    """What the item's result depends on, or None: it must run every time."""
    kind = item.probe.kind
    if kind == "sql":
        declared = item.probe.get("inputs")
        return frozenset(declared) if declared else None
    return KIND_INPUTS.get(kind)


@dataclass(frozen=True)
class Signals:
    """The change signal of each input, as read now (None: this input has no trustworthy signal)."""

    catalog: tuple | None
    settings: tuple | None

    def of(self, inputs: frozenset[str]) -> tuple | None:
        parts = []
        for name in sorted(inputs):
            value = getattr(self, name)
            if value is None:
                return None
            parts.append((name, value))
        return tuple(parts)


NO_SIGNALS = Signals(None, None)


def signals_from_row(row) -> Signals:
    settings = (row["conf_loaded"], row["started"])
    catalog = None
    if row["version"] >= 150000 and row["track_counts"] and row["catalog_writes"] is not None:
        catalog = (row["started"], row["stats_reset"], row["catalog_writes"])
    return Signals(catalog, settings)


async def read_signals(conn) -> Signals:
    """One statement, in a read-only transaction. Any failure: no signals (nothing is reused)."""
    try:
        async with conn.transaction(readonly=True):
            return signals_from_row(await conn.fetchrow(SIGNALS_SQL))
    except Exception:
        return NO_SIGNALS


@dataclass(frozen=True)
class _Entry:
    probe: Probe
    result: ItemResult  # as the probe said it, before a tick turns "manual" into "pass"
    signal: tuple
    at: float  # the cache's clock when probed


class ProbeCache:
    """The last result of each probe with inputs, with their signals when it ran."""

    def __init__(self, *, max_age_s: float = MAX_AGE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def reusable(self, item: Item, signals: Signals) -> ItemResult | None:
        """The result kept for ``item`` if its probe is the same and none of its inputs changed since."""
        entry = self._entries.get(item.id)
        inputs = inputs_of(item)
        if entry is None or inputs is None or entry.probe != item.probe:
            return None
        if self.clock() - entry.at > self.max_age_s:
            return None
        signal = signals.of(inputs)
        return entry.result if signal is not None and signal == entry.signal else None

    def store(self, item: Item, result: ItemResult, signals: Signals) -> None:
        """Keep ``result`` (just probed) when its inputs have a signal; else forget the item's old one."""
        inputs = inputs_of(item)
        signal = signals.of(inputs) if inputs is not None else None
        if signal is None or result.status == ERROR:  # an error (a timeout, a lost session) is never kept
            self._entries.pop(item.id, None)
            return
        self._entries[item.id] = _Entry(item.probe, result, signal, self.clock())

    def forget(self, ids=None) -> None:
        """Forget these items' results (None: all)."""
        if ids is None:
            self._entries.clear()
        else:
            for i in ids:
                self._entries.pop(i, None)
