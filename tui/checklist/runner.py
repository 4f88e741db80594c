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
from tui.checklist.reuse import NO_SIGNALS, ProbeCache, read_signals
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
    """The checklist ``--checklist`` names, else this database's default from the config file, else general.
    Without a session: :func:`resolve_checklist` also knows what is remembered for the database."""
    return load_checklist(getattr(config, "checklist", None) or default_checklist_name(config))


@dataclass(frozen=True)
class Resolved:
    """The checklist for one database, and where that choice came from."""

    config: object  # tui.config.Config with app_root/backup_dir from the remembered choice where not given
    checklist: Checklist
    source: str  # "--checklist", "remembered for this database (…)", "the database setting …", …


#: what is remembered with the checklist (the command line's flags of the same names win)
REMEMBERED_PATHS = ("app_root", "backup_dir", "crontab_file")
_DB_SETTINGS_SQL = ("SELECT current_setting('pgpreflight.checklist', true) AS checklist, "
                    + ", ".join(f"current_setting('pgpreflight.{k}', true) AS {k}" for k in REMEMBERED_PATHS))


def _checklist_ref(name: str) -> str:
    """What is remembered: a bundled name as it is, a file as its absolute path."""
    from tui.checklist.spec import bundled_names

    if name in bundled_names():
        return name
    return str(Path(name).expanduser().resolve())


async def resolve_checklist(conn, config, state: ChecklistState | None = None) -> Resolved:
    """The checklist for the database ``conn`` is on, first of:

    1. ``--checklist`` (``config.checklist``);
    2. what is remembered in the state for this database (chosen in the TUI, by ``--checklist``,
       or by the demo), with the app root and backup directory it was chosen with;
    3. the database's own ``pgpreflight.checklist`` setting (``ALTER DATABASE … SET
       pgpreflight.checklist = 'images-mvp'``; ``pgpreflight.app_root`` and ``pgpreflight.backup_dir``
       likewise);
    4. the config file's ``[checklist.databases]``, then ``default``, then "general".

    A remembered app root or backup directory is used only where the command line gave none."""
    from dataclasses import replace

    if config.checklist:
        return Resolved(config, load_checklist(config.checklist), "--checklist")
    if state is None:
        identity = await fetch_identity(conn)
        state = await asyncio.to_thread(load_state, config.state_dir, identity)
    memory = getattr(config, "from_memory", frozenset())
    chosen = state.chosen_checklist
    source = None
    values: dict = {}
    if chosen:
        values = dict(state.choice)
        source = (f"remembered for this database (chosen by {values.get('by', '?')} at {values.get('at', '?')})")
    else:
        try:
            row = await conn.fetchrow(_DB_SETTINGS_SQL)
        except Exception:  # a standby, a role that may not read settings: go on without
            row = None
        if row is not None and row["checklist"]:
            chosen = row["checklist"]
            values = {k: row[k] or None for k in REMEMBERED_PATHS}
            source = "the database setting pgpreflight.checklist"
    if not chosen:
        return Resolved(config, checklist_for(config), "config file or default")
    kw = {k: Path(values[k]) for k in REMEMBERED_PATHS
          if k in memory and isinstance(values.get(k), str) and values[k] and hasattr(config, k)}
    return Resolved(replace(config, **kw) if kw else config, load_checklist(chosen), source)


async def resolve_database_checklist(config) -> Resolved:
    """:func:`resolve_checklist` on a session of its own (role "check"), for commands that have none yet."""
    if config.checklist:
        return Resolved(config, load_checklist(config.checklist), "--checklist")
    from tui.db.connect import connect

    conn = await connect(config.target, timeout=config.connect_timeout, role="check",
                         statement_timeout_ms=config.statement_timeout_ms)
    try:
        return await resolve_checklist(conn, config)
    finally:
        await conn.close()


def remember_choice(st: ChecklistState, config) -> None:
    """Called on each run with ``--checklist``: that checklist (and its app root) is now this database's."""
    if not config.checklist:
        return
    crontab = getattr(config, "crontab_file", None)
    st.set_choice(_checklist_ref(config.checklist), app_root=str(config.app_root),
                  backup_dir=str(config.backup_dir) if config.backup_dir else None,
                  crontab_file=str(crontab) if crontab else None)


@dataclass
class CheckRun:
    checklist: Checklist
    identity: DatabaseIdentity
    database: str  # Target.display: never a password
    results: dict[str, ItemResult]
    state: ChecklistState
    checked_at: float
    duration_s: float
    source: str = ""  # where the checklist choice came from (resolve_checklist)
    probed: tuple[str, ...] = ()  # the items whose probe ran (roll-ups aside)
    reused: tuple[str, ...] = ()  # the items whose last result was reused (tui.checklist.reuse)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results.values() if r.status == status)

    @property
    def failed(self) -> bool:
        return any(r.status in ("fail", "error") for r in self.results.values())


async def check_connection(conn, config, checklist: Checklist, *, skip_kinds: Iterable[str] = (),
                           only: Iterable[str] | None = None, save: bool = True,
                           on_result: Callable[[ItemResult], None] | None = None,
                           cache: ProbeCache | None = None, reuse: bool = False,
                           identity: DatabaseIdentity | None = None) -> CheckRun:
    """Run ``checklist`` on an open session; record the results in the state file.

    ``cache``: each probe's result is kept there with its inputs' change signals (tui.checklist.reuse);
    with ``reuse``, a result whose inputs did not change since is taken from it instead of probing again.
    ``identity``: the session's database identity when the caller knows it already."""
    if identity is None:
        identity = await fetch_identity(conn)
    state = await asyncio.to_thread(load_state, config.state_dir, identity)
    ctx = ProbeContext(app_root=config.app_root, state=state,
                       statement_timeout_ms=min(int(config.statement_timeout_ms), 2000),
                       target_local=config.target.is_local, backup_dir=getattr(config, "backup_dir", None),
                       crontab_file=getattr(config, "crontab_file", None))
    t0 = time.perf_counter()
    signals, given, probed = NO_SIGNALS, {}, []
    if cache is not None:
        signals = await read_signals(conn)
        if reuse:
            wanted = set(only) if only is not None else None
            for item in checklist.items():
                if (wanted is None or item.id in wanted) and item.probe.kind not in skip_kinds:
                    kept = cache.reusable(item, signals)
                    if kept is not None:
                        given[item.id] = kept

    def on_probed(item, result: ItemResult) -> None:
        probed.append(item.id)
        if cache is not None:
            cache.store(item, result, signals)

    results = await run_checklist(conn, checklist, ctx, only=only, skip_kinds=skip_kinds, on_result=on_result,
                                  given=given, on_probed=on_probed)
    duration = time.perf_counter() - t0
    if save:
        warnings = list(state.warnings)
        peaks = dict(state.peaks)
        try:
            state = await asyncio.to_thread(update_state, config.state_dir, identity,
                                            lambda st: (st.set_results(results), st.merge_peaks(peaks),
                                                        remember_choice(st, config)))
        except OSError as e:  # the check stands; the file already there is left exactly as it was
            state.set_results(results)
            state.warnings = [w for w in warnings if not w.startswith("cannot read")] + [
                f"cannot save checklist state in {config.state_dir}: {e.strerror or e}; this run's results "
                f"were not recorded"]
        else:
            state.warnings = warnings + state.warnings
    return CheckRun(checklist, identity, config.target.display, results, state, time.time(), duration,
                    probed=tuple(probed), reused=tuple(i for i in results if i in given))


async def check_database(config, checklist: Checklist | None = None, **kw) -> CheckRun:
    """Open a session (role "check"), run the checklist (None: :func:`resolve_checklist`'s), close it."""
    from tui.db.connect import connect

    conn = await connect(config.target, timeout=config.connect_timeout, role="check",
                         statement_timeout_ms=config.statement_timeout_ms)
    try:
        source = "given"
        if checklist is None:
            resolved = await resolve_checklist(conn, config)
            config, checklist, source = resolved.config, resolved.checklist, resolved.source
        run = await check_connection(conn, config, checklist, **kw)
        run.source = source
        return run
    finally:
        await conn.close()


#: how the view learns a fix's SQL: (fix name, params) -> the exact SQL, or None. The fixes package sits
#: above the checklist (it imports it), so the checklist never imports it: the caller hands in
#: ``tui.fixes.describe`` (the TUI's check service does).
DescribeFix = Callable[[str, dict], "str | None"]


def fix_sql(fix: Fix | None, describe_fix: DescribeFix | None = None) -> str | None:
    """The exact SQL of a fix when ``describe_fix`` can say it without a database; else None."""
    if fix is None or describe_fix is None:
        return None
    try:
        return describe_fix(fix.name, dict(fix.params))
    except Exception:
        return None


def build_view(checklist: Checklist, results: dict[str, ItemResult], state: ChecklistState | None,
               database: str, *, checked_at: float | None = None, running: bool = False,
               error: str | None = None, describe_fix: DescribeFix | None = None) -> ChecklistView:
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
                fix_sql=fix_sql(it.fix, describe_fix),
            ))
        sections.append(SectionView(s.id, s.title, tuple(items)))
    return ChecklistView(checklist.name, checklist.title, database, tuple(sections), checked_at, running, error)
