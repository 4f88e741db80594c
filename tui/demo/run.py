"""`pgpreflight demo`: a throwaway cluster holding the images-mvp app, its flaws and a
live workload, watched by the monitor (or, with --no-ui, served until a signal)."""
from __future__ import annotations

import asyncio
import signal
import sys
import threading

from tui.cluster import ClusterError, start_cluster


def _say(msg: str) -> None:
    print(f"pgpreflight demo: {msg}", file=sys.stderr, flush=True)


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
    try:
        _say("starting a throwaway PostgreSQL cluster…")
        try:
            cluster = start_cluster()
        except ClusterError as e:
            _say(str(e))
            return EXIT_USAGE
        _say("creating the images-mvp database and its data…")
        dsn = asyncio.run(build_demo_database(cluster.dsn("postgres"), "metaextract"))
        app_dir = write_app_dir(cluster.base / "app")
        if not getattr(args, "no_workload", False):
            workload = start_in_thread(dsn)
        if args.no_ui:
            print(dsn, flush=True)
            _say(f"ready; the app's files are in {app_dir}; stop with Ctrl+C or SIGTERM")
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

