"""One whole check of a database: connect (or use a session), identify it, load its state, run every
probe, record the results. And the view the tree draws. asyncpg, no textual."""
from __future__ import annotations

import asyncio
import os
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from tui.checklist.probes import ProbeContext, run_checklist
from tui.checklist.spec import Checklist, ChecklistError, Fix, load_checklist
from tui.checklist.state import ChecklistState, DatabaseIdentity, fetch_identity, load_state, update_state
from tui.model.checklist import PENDING, ChecklistView, ItemResult, ItemView, SectionView

DEFAULT_CHECKLIST = "general"


def config_file() -> Path:
    """``PGPREFLIGHT_CONFIG``, else ``<user config dir>/pgpreflight/config.toml``."""
    env = os.environ.get("PGPREFLIGHT_CONFIG")
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs

        return Path(platformdirs.user_config_dir("pgpreflight", appauthor=False)) / "config.toml"
    except ImportError:  # pragma: no cover
        return Path.home() / ".config" / "pgpreflight" / "config.toml"


def default_checklist_name(config) -> str:
    """The checklist for this database when ``--checklist`` names none: the config file's
    ``[checklist.databases]`` entry for the database name (or ``host:port/db``), else ``default``,
    else "general". For example::

        [checklist]
        default = "general"
        [checklist.databases]
        metaextract = "images-mvp"
        "db.internal:5432/metaextract" = "images-mvp"
    """
    path = config_file()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULT_CHECKLIST
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ChecklistError(str(path), None, f"config file unreadable: {e}") from None
    section = data.get("checklist", {}) if isinstance(data.get("checklist"), dict) else {}
    per_db = section.get("databases", {}) if isinstance(section.get("databases"), dict) else {}
    t = config.target
    for key in (f"{t.effective_host}:{t.effective_port}/{t.effective_database}", t.effective_database):
        if isinstance(per_db.get(key), str):
            return per_db[key]
    return section.get("default") if isinstance(section.get("default"), str) else DEFAULT_CHECKLIST


def checklist_for(config) -> Checklist:
    """The checklist ``--checklist`` names, else this database's default from the config file, else general."""
    return load_checklist(getattr(config, "checklist", None) or default_checklist_name(config))


@dataclass
class CheckRun:
    checklist: Checklist
    identity: DatabaseIdentity
    database: str  # Target.display: never a password
    results: dict[str, ItemResult]
    state: ChecklistState
    checked_at: float
    duration_s: float

    def count(self, status: str) -> int:
        return sum(1 for r in self.results.values() if r.status == status)

    @property
    def failed(self) -> bool:
        return any(r.status in ("fail", "error") for r in self.results.values())


async def check_connection(conn, config, checklist: Checklist, *, skip_kinds: Iterable[str] = (),
                           only: Iterable[str] | None = None, save: bool = True,
                           on_result: Callable[[ItemResult], None] | None = None) -> CheckRun:
    """Run ``checklist`` on an open session; record the results in the state file."""
    identity = await fetch_identity(conn)
    state = await asyncio.to_thread(load_state, config.state_dir, identity)
    ctx = ProbeContext(app_root=config.app_root, state=state,
                       statement_timeout_ms=min(int(config.statement_timeout_ms), 2000),
                       target_local=config.target.is_local, backup_dir=getattr(config, "backup_dir", None),
                       crontab_file=getattr(config, "crontab_file", None))
    t0 = time.perf_counter()
    results = await run_checklist(conn, checklist, ctx, only=only, skip_kinds=skip_kinds, on_result=on_result)
    duration = time.perf_counter() - t0
    if save:
        warnings = list(state.warnings)
        peaks = dict(state.peaks)
        try:
            state = await asyncio.to_thread(update_state, config.state_dir, identity,
                                            lambda st: (st.set_results(results), st.merge_peaks(peaks)))
        except OSError as e:  # the check stands; the file already there is left exactly as it was
            state.set_results(results)
            state.warnings = [w for w in warnings if not w.startswith("cannot read")] + [
                f"cannot save checklist state in {config.state_dir}: {e.strerror or e}; this run's results "
                f"were not recorded"]
        else:
            state.warnings = warnings + state.warnings
    return CheckRun(checklist, identity, config.target.display, results, state, time.time(), duration)


async def check_database(config, checklist: Checklist | None = None, **kw) -> CheckRun:
    """Open a session (role "check"), run the checklist, close the session."""
    from tui.db.connect import connect

    checklist = checklist or checklist_for(config)
    conn = await connect(config.target, timeout=config.connect_timeout, role="check",
                         statement_timeout_ms=config.statement_timeout_ms)
    try:
        return await check_connection(conn, config, checklist, **kw)
    finally:
        await conn.close()


def fix_sql(fix: Fix | None) -> str | None:
    """The exact SQL of a fix when the fixes package can say it without a database; else None."""
    if fix is None:
        return None
    try:  # the fixes package is optional here; its API: describe(name, params) -> str | None
        from tui import fixes  # noqa: F401
        describe = getattr(fixes, "describe", None)
        if describe is None:
            return None
        return describe(fix.name, dict(fix.params))
    except Exception:
        return None


def build_view(checklist: Checklist, results: dict[str, ItemResult], state: ChecklistState | None,
               database: str, *, checked_at: float | None = None, running: bool = False,
               error: str | None = None) -> ChecklistView:
    sections = []
    for s in checklist.sections:
        items = []
        for it in s.items:
            r = results.get(it.id)
            items.append(ItemView(
                id=it.id, section=s.id, title=it.title, why=it.why, severity=it.severity, kind=it.probe.kind,
                status=r.status if r else PENDING, detail=r.detail if r else "",
                tick=state.tick(it.id) if state else None,
                notes=state.notes_for(it.id) if state else (),
                fix_name=it.fix.name if it.fix else None,
                fix_params=dict(it.fix.params) if it.fix else {},
                fix_sql=fix_sql(it.fix),
            ))
        sections.append(SectionView(s.id, s.title, tuple(items)))
    return ChecklistView(checklist.name, checklist.title, database, tuple(sections), checked_at, running, error)
