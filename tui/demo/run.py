"""`pgpreflight demo`: a throwaway cluster holding the images-mvp app, its flaws and a
live workload, watched by the monitor (or, with --no-ui, served until a signal)."""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from tui.cluster import ClusterError, start_cluster

DEMO_CHECKLIST = "images-mvp"
CARRY_FILE = "demo-last.json"  # in the state dir: the identity of the last demo database


def _say(msg: str) -> None:
    print(f"pgpreflight demo: {msg}", file=sys.stderr, flush=True)


def demo_state_dir(args, throwaway: Path) -> tuple[Path, bool]:
    """(state dir, kept): --state-dir, else PGPREFLIGHT_STATE_DIR (kept across demo runs), else the
    demo's throwaway directory, removed with the cluster."""
    import os

    if getattr(args, "state_dir", None):
        return Path(args.state_dir).expanduser(), True
    env = os.environ.get("PGPREFLIGHT_STATE_DIR")
    if env:
        return Path(env).expanduser(), True
    return throwaway, False


async def prepare_demo_state(dsn: str, state_dir: Path, app_dir: Path, backup_dir: Path | None = None,
                             *, carry: bool = True, crontab_file: Path | None = None) -> None:
    """Make the demo database's checklist images-mvp wherever it is checked from: remembered in the state
    (with the app root), and as the database's own pgpreflight.* settings. With a kept state dir, the
    ticks and notes of the previous demo database are carried over to this one (each demo is a new
    cluster, so a new identity); its results and fix runs are not: they were about another database."""
    import json

    import asyncpg

    from tui.checklist.state import fetch_identity, load_state, update_state, write_atomic

    conn = await asyncpg.connect(dsn)
    try:
        db = await conn.fetchval("SELECT current_database()")
        for key, value in (("checklist", DEMO_CHECKLIST), ("app_root", str(app_dir)),
                           ("backup_dir", str(backup_dir) if backup_dir else None),
                           ("crontab_file", str(crontab_file) if crontab_file else None)):
            if value is not None:
                await conn.execute(f"ALTER DATABASE \"{db}\" SET pgpreflight.{key} = "
                                   + "'" + value.replace("'", "''") + "'")
        identity = await fetch_identity(conn)
    finally:
        await conn.close()
    previous = None
    marker = Path(state_dir) / CARRY_FILE
    if carry:
        try:
            prev = json.loads(marker.read_text(encoding="utf-8"))
            from tui.checklist.state import DatabaseIdentity

            previous = DatabaseIdentity(str(prev["system_identifier"]), str(prev["database"]))
        except (OSError, ValueError, KeyError, TypeError):
            previous = None
    old = load_state(state_dir, previous) if previous is not None and previous != identity else None

    def change(st):
        if old is not None:
            for item_id, tick in old.ticks.items():
                st.ticks.setdefault(item_id, tick)
            for item_id, notes in old.notes.items():
                st.notes.setdefault(item_id, list(notes))
        st.set_choice(DEMO_CHECKLIST, app_root=str(app_dir), backup_dir=str(backup_dir) if backup_dir else None,
                      crontab_file=str(crontab_file) if crontab_file else None)

    update_state(state_dir, identity, change)
    write_atomic(marker, json.dumps({"system_identifier": identity.system_identifier,
                                     "database": identity.database}) + "\n")


def next_steps(dsn: str, state_dir: Path) -> list[str]:
    """The headless commands to run against the demo (stderr of --no-ui). --state-dir is named unless
    PGPREFLIGHT_STATE_DIR already points there."""
    import os
    import shlex

    env = os.environ.get("PGPREFLIGHT_STATE_DIR")
    same = env and Path(env).expanduser().resolve() == Path(state_dir).resolve()
    base = f"--dsn {shlex.quote(dsn)}" + ("" if same else f" --state-dir {shlex.quote(str(state_dir))}")
    return [f"pgpreflight check {base}",
            f"pgpreflight report {base}",
            f"pgpreflight fix --all --dry-run {base}",
            f"pgpreflight fix --all --yes {base}"]


def demo_backup_dir(base: Path) -> tuple[Path, bool]:
    """(the demo's backup directory, whether it lives outside ``base`` and needs removing). A backup on
    the data directory's disk fails backups.separate_storage honestly, so the demo puts its backups on
    another filesystem when this host has one it may write: /dev/shm (a tmpfs, another st_dev than the
    cluster's directory). Else ``<base>/backup``, and that item fails ("same filesystem"), as it should."""
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(base).st_dev:
            return Path(tempfile.mkdtemp(prefix="pgpreflight-demo-backup-", dir=str(shm))), True
    except OSError:
        pass
    d = base / "backup"
    d.mkdir(exist_ok=True)
    return d, False


def start_demo_spike(dsn: str, delay_s: float, *, say=_say, wait_for=None, **spike_kw):
    """``--spike-at``: the launch spike ``delay_s`` seconds from now (from when ``wait_for()`` is true,
    when given), in a thread of its own; ``say`` gets one line when it starts and one when it ends
    (or why it could not run)."""
    from tui.demo.spike import SpikeThread

    def progress(line: str) -> None:
        if line.startswith("launch spike: opening"):
            say(line.replace("launch spike: opening", "launch spike started: opening", 1))

    return SpikeThread(dsn, delay_s, progress, wait_for=wait_for, on_end=lambda r: say(r.line()),
                       on_error=say, **spike_kw).start()


async def _identity(cfg) -> dict:
    from tui.db.connect import connect, target_identity

    conn = await connect(cfg.target, timeout=cfg.connect_timeout, role="check")
    try:
        return await target_identity(conn)
    finally:
        await conn.close()


def _spike_for(cfg):
    """The App's key L: one launch spike on the demo database, its summary line as the result."""
    from tui.demo.spike import Spike

    async def spike(progress) -> str:
        return (await Spike(cfg).run(progress=progress)).line()

    return spike


def run_demo(args) -> int:
    from tui.config import EXIT_OK, EXIT_USAGE, make_config, resolve_target
    from tui.demo.data import build_demo_database, write_app_dir
    from tui.demo.workload import start_in_thread

    stop = threading.Event()
    app_box: list = []

    def _on_signal(signum, _frame):
        # SIGINT, SIGTERM, and SIGHUP (an SSH session that drops): stop, then clean up below
        stop.set()
        if app_box:
            app_box[0].exit()
        elif not args.no_ui:
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    cluster = None
    workload = None
    spike = None
    spike_at = getattr(args, "spike_at", None)
    backup_dir, backup_outside = None, False
    try:
        _say("starting a throwaway PostgreSQL cluster…")
        try:
            cluster = start_cluster(collect_logs=True)  # the server knows its log: pool.errors can read it
        except ClusterError as e:
            _say(str(e))
            return EXIT_USAGE
        _say("creating the images-mvp database and its data…")
        dsn = asyncio.run(build_demo_database(cluster.dsn("postgres"), "metaextract"))
        app_dir = write_app_dir(cluster.base / "app")
        from tui.demo.data import DEMO_CRONTAB

        # the demo's own backup directory and schedule: nothing outside the demo's directories changes
        if getattr(args, "backup_dir", None) is None:
            backup_dir, backup_outside = demo_backup_dir(cluster.base)
            args.backup_dir = backup_dir
        if getattr(args, "crontab_file", None) is None:
            args.crontab_file = app_dir / DEMO_CRONTAB
        state_dir, kept = demo_state_dir(args, cluster.base / "state")
        asyncio.run(prepare_demo_state(dsn, state_dir, app_dir, args.backup_dir, carry=kept,
                                       crontab_file=args.crontab_file))
        if not getattr(args, "no_workload", False):
            workload = start_in_thread(dsn)
        if args.no_ui:
            if spike_at is not None:
                spike = start_demo_spike(dsn, spike_at)
            print(dsn, flush=True)
            _say(f"ready; the app's files are in {app_dir}; remembered for this database with images-mvp: "
                 f"--app-root {app_dir} --backup-dir {args.backup_dir} --crontab-file {args.crontab_file}; "
                 f"checklist state in {state_dir}{'' if kept else ' (removed on exit)'}; stop with Ctrl+C or SIGTERM")
            _say("check it, write the sign-off, fix it (images-mvp is remembered for this database):")
            for line in next_steps(dsn, state_dir):
                print(f"  {line}", file=sys.stderr, flush=True)
            while not stop.wait(0.5):
                pass
            return EXIT_OK
        if args.app_root is None:
            args.app_root = app_dir
        if args.checklist is None:
            args.checklist = DEMO_CHECKLIST
        args.state_dir = state_dir
        from dataclasses import replace

        cfg = replace(make_config(args, target=resolve_target(dsn)), demo=True)  # the App offers the spike
        from tui.screens.app import PreflightApp

        app = PreflightApp(cfg)
        app.spike = _spike_for(cfg)
        app_box.append(app)
        if spike_at is not None:  # counted from when the App (and so its monitor) runs; said as toasts
            def toast(line: str) -> None:
                try:
                    app.call_from_thread(app.notify, line, title="launch spike", markup=False)
                except Exception:  # the App has ended
                    pass

            spike = start_demo_spike(dsn, spike_at, say=toast, wait_for=lambda: bool(app.is_running))
        if not stop.is_set():
            from tui.screens.app import run_app

            return run_app(cfg, asyncio.run(_identity(cfg)), app=app)
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if spike is not None:
            spike.stop_and_join(10)  # its connections closed, its lock released
        if workload is not None:
            workload.stop_and_join(10)
        if cluster is not None:
            cluster.destroy()
            _say("stopped the server and removed its files")
        if backup_outside and backup_dir is not None:
            shutil.rmtree(backup_dir, ignore_errors=True)

