"""The check service: the checklist without Textual, in the shape of the monitor service (tui.db.monitor).

It owns the checklist's session (application_name pgpreflight/check: opened on the first run, kept,
dropped when it fails and opened again on the next run), resolves which checklist the database uses,
runs it, re-verifies items and every roll-up that reads them, writes the state file (results, ticks,
notes, the chosen checklist), and announces each run as a ``tui.model.events.ChecklistRan`` to its
listeners (the TUI's pane, a recorder). The pane only draws what the service holds.

Runs never overlap (one session runs them one by one). Two kinds of run:

- ``run(reuse=True)``: the periodic re-verify (every ``checklist_refresh`` s). The results of probes that
  read only the catalogs or the settings are reused until those change (tui.checklist.reuse): a quiet
  database costs one statement of signals and the cheap live probes.
- ``run()`` (reuse=False): asked for (the first run, `v`, after a fix, another checklist): every probe
  named runs again. ``verify_item(id)`` runs one item and the roll-ups that read it (a tick, a note).

Nothing here raises for a bad target or a lost session: ``last_error`` says it in one line and the last
results stay. A state file that cannot be written raises :class:`StateError` with the line to show."""
from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timezone
from typing import Awaitable, Callable, Iterable

from tui.checklist.reuse import ProbeCache
from tui.checklist.runner import CheckRun, DescribeFix, build_view, check_connection, checklist_for, remember_choice
from tui.checklist.spec import Checklist, ChecklistError, load_checklist
from tui.checklist.state import ChecklistState, DatabaseIdentity, fetch_identity, update_state
from tui.config import Config, TargetError
from tui.model.checklist import ChecklistView, ItemResult
from tui.model.events import ChecklistRan

Listener = Callable[[ChecklistRan], None]
Connector = Callable[..., Awaitable]


class StateError(Exception):
    """The checklist state could not be changed: ``message`` is the line to show, ``severity`` how."""

    def __init__(self, message: str, severity: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.severity = severity


def _first_line(e: BaseException) -> str:
    text = str(e)
    return text.splitlines()[0] if text else ""


class CheckService:
    """The checklist of one database: its session, its runs, its results and its state file."""

    def __init__(self, config: Config, *, checklist: Checklist | None = None,
                 canned: tuple[dict[str, ItemResult], ChecklistState] | None = None,
                 describe_fix: DescribeFix | None = None, connect: Connector | None = None,
                 cache: ProbeCache | None = None) -> None:
        self.config = config
        self.checklist: Checklist | None = checklist
        self.source = "--checklist" if config.checklist else ""
        self.describe_fix = describe_fix
        self.load_error: str | None = None
        self.results: dict[str, ItemResult] = {}
        self.state: ChecklistState | None = None
        self.identity: DatabaseIdentity | None = None
        self.running = False
        self.last_error: str | None = None
        self.checked_at: float | None = None
        self.last_duration: float | None = None
        self.last_run: CheckRun | None = None  # the last run that finished (probed, reused)
        self.runs = 0  # runs ended, failed ones included
        self.cache = cache if cache is not None else ProbeCache()
        self.listeners: list[Listener] = []
        self.listener_errors: list[str] = []
        self.canned = canned is not None
        if canned is not None:
            self.results, self.state = dict(canned[0]), canned[1]
            self.identity = self.state.identity
            self.checked_at = max((r.checked_at for r in self.results.values()), default=None)
        self._connect = connect
        self._conn = None
        self._conn_identity: DatabaseIdentity | None = None
        self._lock: asyncio.Lock | None = None

    # -- listeners ---------------------------------------------------------------------------
    def add_listener(self, fn: Listener) -> None:
        """``fn(ChecklistRan)`` after every run that produced results (called in the run's task)."""
        self.listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self.listeners:
            self.listeners.remove(fn)

    def _announce(self) -> None:
        if self.checklist is None:
            return
        order = {iid: n for n, iid in enumerate(self.checklist.item_ids())}
        event = ChecklistRan(self.checklist.name,
                             tuple((i, r.status) for i, r in sorted(self.results.items(),
                                                                     key=lambda kv: order.get(kv[0], len(order)))),
                             datetime.now(timezone.utc))
        for fn in list(self.listeners):
            try:
                fn(event)
            except Exception as e:  # a consumer's bug must not fail the check
                self.listener_errors.append(f"{type(e).__name__}: {_first_line(e)}")

    # -- the checklist -----------------------------------------------------------------------
    def load(self, *, need: bool = False) -> str | None:
        """Load the checklist ``--checklist`` names (or, with ``need``, this database's default from the
        config file) without a session; without either, the first run resolves it (what is remembered
        for the database, its pgpreflight.checklist setting). Returns the error line, if any."""
        if self.checklist is None and (self.config.checklist or need):
            try:
                self.checklist = checklist_for(self.config)
            except ChecklistError as e:
                self.load_error = str(e)
        return self.load_error

    def view(self, *, running: bool | None = None) -> ChecklistView:
        if self.checklist is None:
            return ChecklistView("?", "checklist", self.config.target.display, (), error=self.load_error)
        return build_view(self.checklist, self.results, self.state, self.config.target.display,
                          checked_at=self.checked_at, running=self.running if running is None else running,
                          error=self.last_error, describe_fix=self.describe_fix)

    def affected(self, item_ids: Iterable[str]) -> set[str]:
        """These items and every roll-up that reads one of them, however deep."""
        out = set(item_ids)
        if self.checklist is None:
            return out
        rollups = [i for i in self.checklist.items() if i.probe.kind == "items"]
        grew = True
        while grew:
            grew = False
            for r in rollups:
                if r.id not in out and out & set(r.probe.params.get("refs", [])):
                    out.add(r.id)
                    grew = True
        return out

    # -- runs --------------------------------------------------------------------------------
    async def run(self, only: Iterable[str] | None = None, *, reuse: bool = False) -> CheckRun | None:
        """Verify every item (or ``only`` those ids) now; with ``reuse``, results whose inputs did not
        change are reused. Waits for a run in progress to end first. Returns the run, or None when it
        could not run (``last_error`` / ``load_error`` say why) or there is nothing to run."""
        if self.canned or self.load_error is not None:
            return None
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await self._run(list(only) if only is not None else None, reuse)

    async def verify_item(self, item_id: str) -> CheckRun | None:
        """The item and every roll-up that reads it (after a tick, a note, a fix of that item)."""
        return await self.run(self.affected([item_id]))

    async def _run(self, only: list[str] | None, reuse: bool) -> CheckRun | None:
        if self.checklist is None and only is not None:
            return None
        self.running = True
        run = None
        try:
            conn = await self._session()
            if self.checklist is None:
                from tui.checklist.runner import resolve_checklist

                try:
                    resolved = await resolve_checklist(conn, self.config)
                except ChecklistError as e:
                    self.load_error = str(e)
                    return None
                self.config, self.checklist = resolved.config, resolved.checklist
                self.source = resolved.source
            run = await check_connection(conn, self.config, self.checklist, only=only, cache=self.cache,
                                         reuse=reuse, identity=self._conn_identity)
            if only is None:
                self.results = dict(run.results)
            else:
                self.results.update(run.results)
            self.state, self.identity = run.state, run.identity
            self.last_duration = run.duration_s
            self.checked_at = run.checked_at
            self.last_error = None
            self.last_run = run
            return run
        except asyncio.CancelledError:
            self._drop()  # a statement may be in flight: this session cannot be used again
            raise
        except TargetError as e:
            self.last_error = f"cannot verify: {e.reason}"
            await self.close()
        except Exception as e:  # connection lost mid-run and the like: keep the last results
            self.last_error = f"cannot verify: {type(e).__name__}: {_first_line(e)}"
            await self.close()
        finally:
            self.running = False
            self.runs += 1
            if run is not None:
                self._announce()
        return None

    async def _session(self):
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        if self._connect is None:
            from tui.db.connect import connect as db_connect

            self._connect = db_connect
        cfg = self.config
        self._conn = await self._connect(cfg.target, timeout=cfg.connect_timeout, role="check",
                                         statement_timeout_ms=cfg.statement_timeout_ms)
        # a new session may be another server (a failover, a restore): nothing kept is trusted
        identity = await fetch_identity(self._conn)
        if identity != self._conn_identity:
            self.cache.forget()
        self._conn_identity = identity
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.terminate()
            except Exception:
                pass

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception:
                conn.terminate()

    # -- the state file ------------------------------------------------------------------------
    def change_state(self, change: Callable[[ChecklistState], None]) -> ChecklistState:
        """Apply ``change`` to the state file under its lock (quick: a small JSON file). Raises StateError."""
        if self.identity is None:
            raise StateError("not verified yet: the database identity is not known", "warning")
        try:
            self.state = update_state(self.config.state_dir, self.identity, change)
        except OSError as e:
            raise StateError(f"cannot write the checklist state: {e.strerror or e}") from None
        return self.state

    def set_tick(self, item_id: str, ticked: bool) -> ChecklistState:
        return self.change_state(lambda st: st.set_tick(item_id, ticked))

    def add_note(self, item_id: str, text: str) -> ChecklistState:
        return self.change_state(lambda st: st.add_note(item_id, text))

    def use_checklist(self, name: str) -> Checklist:
        """Switch to checklist ``name``: remembered for this database (with the app root), results
        cleared; the caller runs it. Raises ChecklistError (a bad name) or StateError."""
        checklist = load_checklist(name)
        config = replace(self.config, checklist=name)
        if self.identity is not None:
            self.change_state(lambda st: remember_choice(st, config))
        self.config, self.checklist, self.source = config, checklist, "chosen here"
        self.results = {}
        self.load_error = None
        self.cache.forget()
        return checklist

