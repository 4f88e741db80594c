"""argv -> Config -> the App or a headless command.

Every error a user can cause ends in one line on stderr and exit code 2; never a traceback.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from tui import __version__
from tui.config import (EXIT_FAIL, EXIT_OK, EXIT_USAGE, Config, TargetError, UsageError,  # noqa: F401
                        make_config)

SUBCOMMANDS = ("monitor", "demo", "snapshot", "check", "fix", "report", "checklists", "watch", "replay")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return v


def _non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds, 0 or more")
    return v


def _duration(text: str) -> float:
    from tui.alerts import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_common(p: argparse.ArgumentParser, top: bool) -> None:
    d = {} if top else {"default": argparse.SUPPRESS}
    g = p.add_argument_group("connection and safety")
    g.add_argument("--dsn", help="target database (else DATABASE_URL, else PGHOST/PGPORT/PGUSER/PGDATABASE...)", **d)
    g.add_argument("--read-only", action="store_true", help="refuse every write to the database", **d)
    g.add_argument("--state-dir", type=Path, metavar="DIR",
                   help="checklist state and audit log (env PGPREFLIGHT_STATE_DIR)", **d)
    g.add_argument("--connect-timeout", type=_positive_float, metavar="SECONDS", help="default 5", **d)
    g.add_argument("--no-color", action="store_true", help="no colours (NO_COLOR is respected too)", **d)
    g.add_argument("--checklist", metavar="NAME|PATH", help="bundled checklist name or a TOML file", **d)
    g.add_argument("--app-root", type=Path, metavar="DIR", help="the app's files, for file probes (default .)", **d)
    g.add_argument("--backup-dir", type=Path, metavar="DIR", help="where backups go: backup files, backup tests' dumps (default: the checklist's)", **d)
    g.add_argument("--crontab-file", type=Path, metavar="FILE",
                   help="read and install the backup schedule in this file instead of the user's crontab", **d)


def _add_record(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("flight recorder")
    g.add_argument("--record", type=Path, metavar="FILE",
                   help="record into FILE (default: <state dir>/recordings/<database>/<day>.sqlite, 7 days kept)")
    g.add_argument("--no-record", action="store_true", help="record nothing")
    g.add_argument("--record-queries", choices=("full", "normalized", "none"), default="normalized",
                   help="query texts in the recording: literals as $1 (normalized, the default), as they "
                        "were (full) or none")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="pgpreflight",
        description="Launch-day PostgreSQL monitor with a self-verifying launch checklist.",
        epilog="Without a subcommand, 'monitor' runs. Exit codes: 0 ok, 1 a check failed, 2 usage or connection error.",
    )
    p.add_argument("--version", action="version", version=f"pgpreflight {__version__}")
    _add_common(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    m = sub.add_parser("monitor", help="the live TUI (default)")
    _add_common(m, top=False)
    m.add_argument("--refresh", type=_positive_float, metavar="SECONDS", default=argparse.SUPPRESS,
                   help="live refresh interval (default 2)")
    _add_record(m)

    d = sub.add_parser("demo", help="start a throwaway database with the images-mvp app and watch it")
    _add_common(d, top=False)
    d.add_argument("--no-ui", action="store_true",
                   help="print the DSN as the first line of stdout and keep running until SIGINT/SIGTERM")
    d.add_argument("--refresh", type=_positive_float, metavar="SECONDS", default=argparse.SUPPRESS)
    d.add_argument("--no-workload", action="store_true", help="no background workload")
    d.add_argument("--spike-at", type=_non_negative_float, metavar="SECONDS",
                   help="a launch spike (a burst of connections, slow queries, a lock wait: alerts fire and "
                        "clear, ~22 s) this many seconds after the monitor starts (with --no-ui: after the "
                        "DSN is printed)")
    _add_record(d)

    s = sub.add_parser("snapshot", help="one poll of every pane, printed")
    _add_common(s, top=False)
    s.add_argument("--format", choices=("json", "text"), default="text")

    c = sub.add_parser("check", help="run the checklist headless (exit 1 when an item fails)")
    _add_common(c, top=False)
    c.add_argument("--format", choices=("text", "json", "junit", "markdown"), default="text")

    f = sub.add_parser("fix", help="run the fix of a checklist item, or of every failing item (--all)")
    _add_common(f, top=False)
    f.add_argument("item_id", metavar="ITEM_ID", nargs="?")
    f.add_argument("--all", action="store_true",
                   help="one combined plan of every failing item's fix, run step by step, then verify all")
    f.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    f.add_argument("--yes", action="store_true", help="run without asking (required with no terminal)")
    f.add_argument("--restore-dsn", help="backup_test: restore onto this server instead")
    f.add_argument("--undo", action="store_true", help="slow_query_log: restore the value it replaced")
    f.add_argument("--keep-not-valid", action="store_true",
                   help="add_check_constraint: when rows violate it, keep it NOT VALID instead of dropping it")
    f.add_argument("--lock-timeout", type=_positive_float, metavar="SECONDS",
                   help="lock_timeout for DDL (default 5); for ACCESS EXCLUSIVE DDL the cap of one lock try")
    f.add_argument("--lock-budget", type=_non_negative_float, metavar="SECONDS",
                   help="ACCESS EXCLUSIVE DDL (ADD/DROP CONSTRAINT) tries its lock in short tries "
                        "(lock_timeout 100-400 ms) for up to this long (default 30); 0: one try under --lock-timeout")

    r = sub.add_parser("report", help="write a Markdown sign-off report")
    _add_common(r, top=False)
    r.add_argument("--output", "-o", type=Path, help="file to write (default stdout)")

    w = sub.add_parser("watch", help="headless monitor: alert lines for thresholds, OpenMetrics (exit 1 on an alert)")
    _add_common(w, top=False)
    w.add_argument("--for", dest="for_", type=_duration, metavar="DURATION",
                   help="stop after this long (90, 60s, 5m, 1h); default: until SIGINT or SIGTERM")
    w.add_argument("--threshold", action="append", metavar="NAME=VALUE",
                   help="override a threshold (repeatable): long_query_s, connections_pct, cache_hit_pct, "
                        "idle_in_transaction_s, lock_wait_s, xid_age, sequence_pct, disk_pct")
    w.add_argument("--openmetrics", type=Path, metavar="FILE",
                   help="rewrite FILE atomically every round in the Prometheus text format")
    w.add_argument("--refresh", type=_positive_float, metavar="SECONDS", default=argparse.SUPPRESS,
                   help="poll interval (default 2)")
    _add_record(w)

    rp = sub.add_parser("replay", help="a recording: the TUI on it, or its rounds as JSON lines (--format json)")
    rp.add_argument("file", type=Path, metavar="FILE", help="a recording (<state dir>/recordings/...)")
    rp.add_argument("--format", choices=("tui", "json", "text"), default="tui",
                    help="tui (default): the monitor on the recording; json: one snapshot document per "
                         "round with recorded_at and alerts; text: each round as snapshot prints it")
    rp.add_argument("--from", dest="from_", metavar="TIME",
                    help="from this time: ISO (2026-12-02T14:03:00Z; no offset: UTC) or HH:MM[:SS] "
                         "(UTC, on the recording's first day)")
    rp.add_argument("--to", metavar="TIME", help="to this time (same forms)")
    rp.add_argument("--speed", type=_positive_float, default=1.0, metavar="X", help="tui: replay speed (default 1)")

    cl = sub.add_parser("checklists", help="list the bundled checklists")
    _add_common(cl, top=False)
    return p


async def check_target(cfg: Config) -> dict:
    """Connect once to prove the target is good; return its identity."""
    from tui.db.connect import connect, target_identity

    conn = await connect(cfg.target, timeout=cfg.connect_timeout, role="check",
                         statement_timeout_ms=cfg.statement_timeout_ms)
    try:
        return await target_identity(conn)
    finally:
        await conn.close()


def run_monitor(cfg: Config) -> int:
    from tui.db.first_poll import FirstPoll

    first = FirstPoll(cfg).start()  # connects and polls on its own thread while Textual is imported
    import tui.screens.app  # noqa: F401  (imported while the first poll runs)

    identity, prefetched = first.result()  # a bad target: TargetError, one line and exit 2
    from tui.screens.app import run_app

    return run_app(cfg, identity, prefetched=prefetched)


def run_snapshot(cfg: Config, fmt_name: str) -> int:
    """One poll of every pane, printed as JSON or text."""
    import json

    from tui.db.snapshot import take_snapshot

    async def _take():
        await check_target(cfg)
        return await take_snapshot(cfg)

    try:
        snap = asyncio.run(_take())
    except (TargetError, UsageError):
        raise
    except Exception as e:  # a server error mid-poll: one line, never a traceback
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TargetError(cfg.target.display, f"snapshot failed: {reason}") from None
    if fmt_name == "json":
        sys.stdout.write(json.dumps(snap.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        from tui.model.snapshot_text import render_text

        sys.stdout.write(render_text(snap))
    return EXIT_OK


def _not_yet(name: str) -> int:
    print(f"pgpreflight: '{name}' is not yet available in this version", file=sys.stderr)
    return EXIT_USAGE


def run_replay(args: argparse.Namespace) -> int:
    """``replay FILE``: json/text print the rounds; tui opens the monitor on the recording."""
    from tui import replay

    if args.format in ("json", "text"):
        return replay.run_replay_command(args)
    run_tui = getattr(replay, "run_replay_tui", None)
    if run_tui is None:
        print("pgpreflight: error: the replay TUI is not in this version yet; use replay FILE --format json",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        replay.Recording(args.file).close()  # a missing or foreign file: one line, before the TUI starts
    except replay.RecordingError as e:
        raise UsageError(str(e)) from None
    return run_tui(args.file, args)


def dispatch(args: argparse.Namespace) -> int:
    cmd = args.command or "monitor"
    if cmd == "replay":
        return run_replay(args)
    if cmd == "demo":
        from tui.demo.run import run_demo

        return run_demo(args)
    if cmd == "checklists":
        from tui.checklist.commands import run_checklists

        try:  # only to mark this database's default; a bad DSN does not stop the listing
            listing_cfg = make_config(args)
        except UsageError:
            listing_cfg = None
        return run_checklists(args.checklist, listing_cfg)
    cfg = make_config(args)
    if cmd == "monitor":
        return run_monitor(cfg)
    if cmd == "snapshot":
        return run_snapshot(cfg, args.format)
    if cmd == "check":
        from tui.checklist.commands import run_check

        return run_check(cfg, args.format)
    if cmd == "report":
        from tui.checklist.commands import run_report

        return run_report(cfg, args.output)
    if cmd == "fix":
        if bool(args.item_id) == bool(getattr(args, "all", False)):
            raise UsageError("fix needs an ITEM_ID or --all (not both)")
        from tui.fixes.headless import run_fix_command

        return run_fix_command(cfg, args)
    if cmd == "watch":
        from tui.watch import run_watch

        return run_watch(cfg, args)
    return _not_yet(cmd)


def _normalise_argv(argv: list[str]) -> list[str]:
    """Global flags may come before or after the subcommand; no subcommand means monitor."""
    if not any(a in SUBCOMMANDS for a in argv) and not any(a in ("-h", "--help", "--version") for a in argv):
        return ["monitor", *argv]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(_normalise_argv(argv))
        for key in ("dsn", "read_only", "state_dir", "connect_timeout", "no_color", "checklist", "app_root",
                    "backup_dir", "crontab_file"):
            if not hasattr(args, key):
                setattr(args, key, None)
        return dispatch(args)
    except UsageError as e:
        print(f"pgpreflight: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except TargetError as e:
        print(f"pgpreflight: cannot connect to {e.target}: {e.reason}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("pgpreflight: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
