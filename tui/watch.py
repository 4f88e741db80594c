"""``pgpreflight watch``: the monitor service, headless, for cron, CI and systemd (issue 14 §5).

It polls every pane (tui.db.monitor), evaluates the thresholds (tui.alerts) after each round, prints
one line on stdout for each alert raised or cleared, and with ``--openmetrics FILE`` rewrites FILE
atomically every round in the Prometheus text format (prometheus_client). Runs until SIGINT or
SIGTERM, or for ``--for DURATION``. Exit 0: no alert was raised; 1: one was; 2: bad input.

It records (tui.recorder) unless ``--no-record``: every event of the monitor, the alerts raised and
cleared (with the round that raised them) and a ChecklistRan after each checklist run."""
from __future__ import annotations

import asyncio
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tui.alerts import NAMES, SPECS, AlertBook, Figures, Thresholds
from tui.config import Config

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _say(line: str, stream=None) -> None:
    stream = stream or sys.stdout
    try:
        stream.write(line + "\n")
        stream.flush()
    except BrokenPipeError:
        pass


class Metrics:
    """The OpenMetrics file: a registry of our own, rewritten whole (write_to_textfile is atomic)."""

    def __init__(self, path: Path, target: str) -> None:
        from prometheus_client import CollectorRegistry, Gauge

        self.path = path
        r = self.registry = CollectorRegistry()

        def g(name, doc, labels=()):
            return Gauge(name, doc, labelnames=labels, registry=r)

        self.info = g("pgpreflight_target_info", "The watched database: user@host:port/db", ("target",))
        self.info.labels(target=target).set(1)
        self.up = g("pgpreflight_up", "1 while the poll session is connected")
        self.last_round = g("pgpreflight_last_round_timestamp_seconds", "When the last poll round ended")
        self.connections = g("pgpreflight_connections", "Client connections to the server")
        self.connections_usable = g("pgpreflight_connections_usable",
                                    "max_connections less the reserved ones")
        self.tps = g("pgpreflight_transactions_per_second", "Commits and rollbacks per second, last interval")
        self.cache = g("pgpreflight_cache_hit_ratio", "Buffer cache hit ratio over the last minute")
        self.latency = g("pgpreflight_statement_latency_seconds",
                         "Mean latency of the statements pg_stat_statements lists, last interval")
        self.lock_waiting = g("pgpreflight_lock_waiting_sessions", "Sessions waiting on a lock")
        self.lock_wait = g("pgpreflight_lock_wait_longest_seconds", "The longest lock wait")
        self.oldest_xact = g("pgpreflight_oldest_transaction_seconds", "Age of the oldest open transaction")
        self.db_size = g("pgpreflight_database_size_bytes", "Size of the database")
        self.table_size = g("pgpreflight_table_size_bytes", "Size of the largest tables", ("table",))
        self.checklist_failing = g("pgpreflight_checklist_items_failing",
                                   "Checklist items failing (fail or error) at the last check")
        self.figure = g("pgpreflight_threshold_figure", "The figure each threshold is held against",
                        ("threshold",))
        self.limit = g("pgpreflight_threshold", "The threshold in force", ("threshold",))
        self.alert = g("pgpreflight_alert", "1 while the threshold's alert is raised", ("threshold",))
        self.alert_since = g("pgpreflight_alert_started_timestamp_seconds",
                             "When the raised alert started (0 when none)", ("threshold",))

    def write(self, fig: Figures, book: AlertBook, failing: int | None) -> None:
        from prometheus_client import write_to_textfile

        self.up.set(1 if fig.connected else 0)
        self.last_round.set(time.time())
        info = fig.info
        if info is not None:
            self.connections.set(info.connections)
            self.connections_usable.set(info.usable_connections)
            _set(self.tps, info.tps)
            _set(self.db_size, info.database_bytes)
        _set(self.cache, fig.cache_hit_pct / 100 if fig.cache_hit_pct is not None else None)
        _set(self.latency, fig.latency_s())
        if fig.connections is not None:
            self.lock_waiting.set(len(fig.lock_waiting()))
            self.lock_wait.set((fig.longest(lambda s: s.wait_event_type == "Lock", lambda s: s.query_age_s)
                                or (0.0,))[0])
            self.oldest_xact.set(fig.oldest_transaction_s() or 0.0)
        if fig.tables is not None:
            self.table_size.clear()
            for t in fig.tables.tables:
                if t.total_bytes is not None:
                    self.table_size.labels(table=t.qualified_name).set(t.total_bytes)
        _set(self.checklist_failing, failing)
        figures = fig.threshold_figures()
        for name in NAMES:
            f = figures.get(name)
            if f is not None:
                self.figure.labels(threshold=name).set(f[0])
            self.limit.labels(threshold=name).set(book.thresholds[name])
            a = book.active.get(name)
            self.alert.labels(threshold=name).set(1 if a else 0)
            self.alert_since.labels(threshold=name).set(a.started_at.timestamp() if a else 0)
        write_to_textfile(str(self.path), self.registry)


def _set(gauge, value) -> None:
    if value is not None:
        gauge.set(value)


class Watch:
    def __init__(self, cfg: Config, thresholds: Thresholds, checklist, openmetrics: Path | None,
                 duration_s: float | None, recorder=None) -> None:
        self.cfg = cfg
        self.recorder = recorder  # tui.recorder.Recorder, or None
        self.book = AlertBook(thresholds)
        self.figures = Figures()
        self.checklist = checklist
        self.metrics = Metrics(openmetrics, cfg.target.display) if openmetrics else None
        self.duration_s = duration_s
        self.failing: int | None = None
        self.stop = asyncio.Event()
        self._down_said = False

    async def run(self) -> int:
        from tui.db.monitor import Monitor

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
                pass
        wanted = {"server", "connections", "slow", "tables", "limits"} | ({"host"} if self.cfg.target.is_local else set())
        monitor = Monitor(self.cfg, wanted=wanted)
        tasks = [asyncio.ensure_future(self._consume(monitor)), asyncio.ensure_future(self._checklist_loop()),
                 asyncio.ensure_future(self.stop.wait())]
        try:
            await asyncio.wait(tasks, timeout=self.duration_s, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks[:2]:
                if t.done() and t.exception() is not None:
                    raise t.exception()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await monitor.close()
            if self.recorder is not None:
                await self.recorder.aclose()
                self._recorder_error()
        return EXIT_FAIL if self.book.raised_count else EXIT_OK

    async def _consume(self, monitor) -> None:
        from tui.model import events as E

        gen = monitor.events()
        try:
            async for ev in gen:
                rec = self.recorder
                if rec is not None and not isinstance(ev, E.RoundEnded):
                    rec.take(ev)  # every event, as it comes; a round's alerts go in before its end
                self.figures.take(ev)
                if isinstance(ev, E.ConnectionChanged):
                    self._connection(ev.state)
                elif isinstance(ev, E.PartTurnedOff):
                    _say(f"pgpreflight: warning: {ev.notice}", sys.stderr)
                elif isinstance(ev, E.RoundEnded):
                    self._round_ended()
                    if rec is not None:
                        rec.take(ev)
                        self._recorder_error()
        finally:
            await gen.aclose()

    def _connection(self, state) -> None:
        """Connection changes go to stderr, once each way: stdout carries only the alert lines."""
        if state.status == "disconnected" and not self._down_said:
            self._down_said = True
            _say(f"pgpreflight: warning: {self.cfg.target.display}: disconnected: {state.message} "
                 f"(retrying)", sys.stderr)
        elif state.status == "connected" and self._down_said:
            self._down_said = False
            _say(f"pgpreflight: {self.cfg.target.display}: connected again", sys.stderr)
        if self.metrics is not None and state.status != "connecting":
            self.metrics.up.set(1 if state.status == "connected" else 0)

    def _round_ended(self) -> None:
        now = datetime.now(timezone.utc)
        for alert in self.book.update(self.figures.threshold_figures(), now):
            _say(alert.line())
            if self.recorder is not None:
                from tui.recorder import alert_event

                self.recorder.take(alert_event(alert))
        if self.metrics is not None:
            try:
                self.metrics.write(self.figures, self.book, self.failing)
            except OSError as e:
                _say(f"pgpreflight: warning: cannot write {self.metrics.path}: {e.strerror or e}", sys.stderr)

    def _recorder_error(self) -> None:
        err = self.recorder.take_error() if self.recorder is not None else None
        if err:
            _say(f"pgpreflight: warning: {err} (the monitor goes on)", sys.stderr)

    async def _checklist_loop(self) -> None:
        """The database's checklist at start and every checklist_refresh s: how many items fail."""
        from tui.checklist.runner import check_database

        while True:
            try:
                run = await check_database(self.cfg, self.checklist)
                self.failing = run.count("fail") + run.count("error")
                if self.recorder is not None:
                    from tui.recorder import checklist_event

                    self.recorder.take(checklist_event(run))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the monitor goes on; the count is left out until a check works
                self.failing = None
                reason = getattr(e, "reason", None) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
                _say(f"pgpreflight: warning: checklist not checked: {reason}", sys.stderr)
            await asyncio.sleep(self.cfg.checklist_refresh)


def open_recorder(cfg: Config, ident: dict):
    """The recorder of ``cfg`` for the database of ``ident`` (tui.db.connect.target_identity), or None
    (--no-record, or the state directory cannot hold one: a warning, the monitor goes on), or
    EXIT_USAGE when the file that --record names cannot be recorded into."""
    if not cfg.record:
        return None
    from tui.checklist.state import DatabaseIdentity
    from tui.recorder import Recorder, RecordingError

    key = DatabaseIdentity(str(ident["system_identifier"]), str(ident["database"])).key
    try:
        return Recorder.open(cfg.state_dir, key, path=cfg.record_path, queries=cfg.record_queries,
                             target=cfg.target.display)
    except RecordingError as e:
        if cfg.record_path is not None:
            _say(f"pgpreflight: error: --record {e}", sys.stderr)
            return EXIT_USAGE
        _say(f"pgpreflight: warning: not recording: {e}", sys.stderr)
        return None


def run_watch(cfg: Config, args) -> int:
    """``watch``: resolve the checklist (its [thresholds]) and the thresholds, then run."""
    from tui.checklist.runner import resolve_database_checklist
    from tui.checklist.spec import ChecklistError

    duration = getattr(args, "for_", None)
    out = Path(args.openmetrics).expanduser() if getattr(args, "openmetrics", None) else None
    if out is not None and not out.parent.is_dir():
        from tui.config import UsageError

        raise UsageError(f"--openmetrics {out}: no such directory {out.parent}")
    overrides = list(getattr(args, "threshold", None) or [])
    Thresholds.resolve(overrides=overrides)  # bad names or values: one line, exit 2, before connecting

    async def _main() -> int:
        from tui.db.connect import connect, target_identity

        conn = await connect(cfg.target, timeout=cfg.connect_timeout, role="check",
                             statement_timeout_ms=cfg.statement_timeout_ms)  # a bad target: one line, exit 2
        try:
            ident = await target_identity(conn)
        finally:
            await conn.close()
        try:
            resolved = await resolve_database_checklist(cfg)
        except ChecklistError as e:
            _say(f"pgpreflight: error: {e}", sys.stderr)
            return EXIT_USAGE
        for w in resolved.checklist.warnings:
            _say(f"pgpreflight: warning: {w}", sys.stderr)
        thresholds = Thresholds.resolve(overrides=overrides, checklist=resolved.checklist)
        recorder = await asyncio.to_thread(open_recorder, cfg, ident)
        if isinstance(recorder, int):
            return recorder
        return await Watch(resolved.config, thresholds, resolved.checklist, out, duration, recorder).run()

    return asyncio.run(_main())


__all__ = ["run_watch", "Watch", "Metrics", "SPECS"]
