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


def _say(msg: str) -> None:
    print(f"pgpreflight demo: {msg}", file=sys.stderr, flush=True)


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


def run_demo(args) -> int:
    from tui.cli import EXIT_OK, EXIT_USAGE, make_config
    from tui.config import resolve_target
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
        if not getattr(args, "no_workload", False):
            workload = start_in_thread(dsn)
        if args.no_ui:
            print(dsn, flush=True)
            _say(f"ready; the app's files are in {app_dir}; check it with: --app-root {app_dir} "
                 f"--backup-dir {args.backup_dir} --crontab-file {args.crontab_file}; stop with Ctrl+C or SIGTERM")
            while not stop.wait(0.5):
                pass
            return EXIT_OK
        if args.app_root is None:
            args.app_root = app_dir
        if args.checklist is None:
            args.checklist = "images-mvp"
        if args.state_dir is None:
            args.state_dir = cluster.base / "state"
        cfg = make_config(args, target=resolve_target(dsn))
        from tui.screens.app import PreflightApp

        app = PreflightApp(cfg)
        app_box.append(app)
        if not stop.is_set():
            app.run()
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if workload is not None:
            workload.stop_and_join(10)
        if cluster is not None:
            cluster.destroy()
            _say("stopped the server and removed its files")
        if backup_outside and backup_dir is not None:
            shutil.rmtree(backup_dir, ignore_errors=True)

