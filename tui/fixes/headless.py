"""``pgpreflight fix ITEM_ID [--checklist X] [--dry-run] [--yes]``: the headless fix.

Prints the plan; --dry-run stops there and changes nothing. Without --yes it asks y/N on a terminal
and refuses (exit 2) when there is none. --read-only refuses every write (exit 2). Progress lines go
to stdout while it runs; SIGINT/SIGTERM cancel it cleanly (a second Ctrl+C is not needed for cleanup).
After the fix the item is verified again. Exit: 0 the fix succeeded, 1 it failed, 2 usage/connection/refusal.
"""
from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
import sys
import time

import asyncpg

from tui.checklist.spec import Checklist, ChecklistError, bundled_names, load_checklist
from tui.config import Config, TargetError, UsageError
from tui.fixes.base import FixError, FixRefused, PlanChanged, params_for_item, plan_fix, run_fix
from tui.model.fixes import FixResult, Progress

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _err(msg: str) -> None:
    print(f"pgpreflight: error: {msg}", file=sys.stderr)


def find_item(item_id: str, checklist_ref: str | None, cfg: Config | None = None, first: Checklist | None = None):
    """(checklist, item): the named checklist; else ``first`` (the one resolved for this database: remembered,
    or its pgpreflight.checklist setting), else this database's default checklist (config file), then the
    bundled ones (images-mvp first), the first that has the item."""
    if first is not None and not checklist_ref:
        try:
            return first, first.item(item_id)
        except KeyError:
            pass
    if checklist_ref:
        refs = [checklist_ref]
    else:
        refs = []
        if cfg is not None:
            try:
                from tui.checklist.runner import default_checklist_name

                refs.append(default_checklist_name(cfg))
            except (ImportError, ChecklistError):
                pass
        for n in ["images-mvp", *bundled_names()]:
            if n in bundled_names() and n not in refs:
                refs.append(n)
    for ref in refs:
        cl = load_checklist(ref)
        try:
            return cl, cl.item(item_id)
        except KeyError:
            continue
    where = f"checklist {checklist_ref!r}" if checklist_ref else f"the bundled checklists ({', '.join(refs)})"
    raise UsageError(f"no item {item_id!r} in {where}")


def _ask(prompt: str) -> bool:
    try:
        answer = input(prompt)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


class _ProgressPrinter:
    def __init__(self, out=sys.stdout, every: float = 1.0):
        self.out, self.every = out, every
        self.last_phase, self.last_t = None, 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if p.phase != self.last_phase or now - self.last_t >= self.every:
            self.last_phase, self.last_t = p.phase, now
            print(f"  … {p.line()}", file=self.out, flush=True)


async def _undo_params(cfg: Config) -> dict:
    from tui.checklist.state import fetch_identity, load_state
    from tui.db.connect import connect

    conn = await connect(cfg.target, timeout=cfg.connect_timeout, role="fix", statement_timeout_ms=5000)
    try:
        identity = await fetch_identity(conn)
    finally:
        await conn.close()
    run = load_state(cfg.state_dir, identity).fix_run("slow_query_log") or {}
    figures = run.get("figures") or {}
    if not run.get("ok") or "previous_auto" not in figures:
        raise FixError("nothing to undo: no successful slow_query_log run is recorded for this database")
    return {"previous_auto": figures["previous_auto"], "previous_ms": figures.get("previous_ms")}


def _redacted_dsn(target) -> str:
    """A DSN that reaches the same server and never carries a password (the display form, which for a Unix
    socket is spelt as a URI with host= so that it can be pasted)."""
    from urllib.parse import quote

    if target.is_socket:
        return (f"postgresql://{quote(target.effective_user, safe='')}@/{quote(target.effective_database, safe='')}"
                f"?host={quote(target.effective_host, safe='/')}&port={target.effective_port}")
    return target.display


def rerun_command(cfg: Config, args, item_id: str) -> str:
    """The exact command to run the fix again: the same item and choices, ``--yes``, never a password."""
    parts = ["pgpreflight", "fix", item_id]
    if getattr(args, "dsn", None):
        parts += ["--dsn", _redacted_dsn(cfg.target)]
    if getattr(args, "checklist", None):
        parts += ["--checklist", str(args.checklist)]
    if getattr(args, "state_dir", None):
        parts += ["--state-dir", str(args.state_dir)]
    if getattr(args, "lock_budget", None) is not None:
        parts += ["--lock-budget", f"{args.lock_budget:g}"]
    if getattr(args, "lock_timeout", None):
        parts += ["--lock-timeout", f"{args.lock_timeout:g}"]
    if getattr(args, "keep_not_valid", False):
        parts.append("--keep-not-valid")
    parts.append("--yes")
    return " ".join(shlex.quote(p) for p in parts)


def blocker_advice(res: FixResult, cfg: Config, args, item_id: str) -> str:
    """What the operator can do when the lock could not be had: the exact call that ends the root holder and
    the exact command to run the fix again. pgpreflight itself never ends a session on its own."""
    if not res.blocker:
        return ""
    b = res.blocker
    what = ("cancel its running query" if b.get("action") == "cancel" else
            "terminate it: it is idle in transaction, so only ending the session releases its locks "
            "(its open transaction rolls back)")
    return (f"pgpreflight did not end pid {b['pid']}; to {what}, run:\n"
            f"  {res.blocker_call()}\n"
            f"then run the fix again:\n"
            f"  {rerun_command(cfg, args, item_id)}\n")


async def _reverify(cfg: Config, checklist: Checklist, item_id: str) -> str | None:
    try:
        from tui.checklist.runner import check_database

        run = await check_database(cfg, checklist, only=[item_id])
        r = run.results.get(item_id)
        return f"{r.status}: {r.detail}" if r else None
    except Exception as e:  # verifying again is best effort; the fix result stands
        return f"could not verify again: {str(e).splitlines()[0] if str(e) else type(e).__name__}"


async def database_checklist(cfg: Config):
    """(config, checklist or None): the checklist of this database when --checklist names none (remembered
    for it, or its pgpreflight.checklist setting), with the app root and backup directory it goes with."""
    if cfg.checklist:
        return cfg, None
    from tui.checklist.runner import resolve_database_checklist

    resolved = await resolve_database_checklist(cfg)
    return resolved.config, resolved.checklist


async def _main(cfg: Config, args) -> int:
    cfg, first = await database_checklist(cfg)
    checklist, item = find_item(args.item_id, cfg.checklist, cfg, first)
    for w in checklist.warnings:  # unknown keys: warned, and the fix still runs (as check and report do)
        print(f"pgpreflight: warning: {w}", file=sys.stderr)
    fix_name, params = params_for_item(item)
    if getattr(args, "undo", False):
        if fix_name != "slow_query_log":
            raise FixError(f"--undo is only for slow_query_log items ({item.id} runs {fix_name})")
        fix_name, params = "slow_query_log_undo", await _undo_params(cfg)
    options = _cli_options(args)

    from tui.fixes.base import get_fix_class

    writes = get_fix_class(fix_name).writes
    if cfg.read_only and writes and not args.dry_run:
        await run_fix(cfg, fix_name, params, item_id=item.id, options=options)  # refuses and audits it
    plan = await plan_fix(cfg, fix_name, params, item_id=item.id, options=options)
    sys.stdout.write(plan.text())
    sys.stdout.flush()
    if args.dry_run:
        print("dry run: nothing was changed")
        if plan.blocked:
            _err("cannot run: " + "; ".join(f"{p.name}: {p.detail}" for p in plan.blockers))
            return EXIT_USAGE
        return EXIT_OK
    if plan.blocked:
        _err("cannot run: " + "; ".join(f"{p.name}: {p.detail}" for p in plan.blockers))
        return EXIT_USAGE
    if plan.nothing_to_do:
        confirmations = plan.confirmations
    elif args.yes:
        confirmations = plan.confirmations
    elif sys.stdin is not None and sys.stdin.isatty():
        confirmations = 0
        if _ask("Run this fix? [y/N] "):
            confirmations = 1
            if plan.confirmations > 1 and _ask("This cannot be undone. Really? [y/N] "):
                confirmations = 2
        if confirmations < plan.confirmations:
            print("not confirmed: nothing was changed")
            return EXIT_USAGE
    else:
        _err("refusing to run without confirmation: there is no terminal to ask on; pass --yes "
             "(or --dry-run to see the plan only)")
        return EXIT_USAGE

    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []

    def on_signal(signame: str) -> None:
        if not cancel.is_set():
            print(f"pgpreflight: {signame}: cancelling the fix and cleaning up… (again: stop waiting for the "
                  f"cleanup)", file=sys.stderr, flush=True)
            cancel.set()
            return
        # a second signal: give the default handlers back, so a third one interrupts for real
        print("pgpreflight: still cleaning up; one more Ctrl+C abandons the cleanup (the result may then "
              "leave things behind)", file=sys.stderr, flush=True)
        for s in list(installed):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(s)
            installed.remove(s)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)
    try:
        # the plan printed above is what must run: planned again inside, refused when it differs
        res = await run_fix(cfg, fix_name, params, item_id=item.id, confirmations=confirmations,
                            progress_cb=_ProgressPrinter(), cancel_event=cancel, options=options,
                            confirmed_plan=plan)
    except PlanChanged as e:
        sys.stdout.write("The plan changed since it was printed; nothing ran. The new plan:\n")
        if e.plan is not None:
            sys.stdout.write(e.plan.text())
        sys.stdout.flush()
        raise
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    sys.stdout.write(res.text())
    advice = blocker_advice(res, cfg, args, item.id)
    if advice:
        sys.stdout.write(advice)
    if not plan.nothing_to_do and item.probe.kind != "manual":
        verdict = await _reverify(cfg, checklist, item.id)
        if verdict:
            print(f"verify {item.id}: {verdict}")
    if res.cancelled:
        return 130 if cancel.is_set() else EXIT_FAIL
    return EXIT_OK if res.ok else EXIT_FAIL


def _cli_options(args) -> dict:
    options = {"on_invalid": "drop", "on_violation": "keep" if getattr(args, "keep_not_valid", False) else "drop"}
    if getattr(args, "restore_dsn", None):
        options["restore_dsn"] = args.restore_dsn
    if getattr(args, "lock_timeout", None):
        options["lock_timeout_ms"] = int(args.lock_timeout * 1000)
    if getattr(args, "lock_budget", None) is not None:
        options["lock_budget_s"] = float(args.lock_budget)
    return options


async def _main_all(cfg: Config, args) -> int:
    """fix --all: check, one combined plan, confirm once, run step by step, verify everything again."""
    from tui.checklist.runner import check_database
    from tui.fixes import preflight

    cfg, first = await database_checklist(cfg)
    checklist = first if first is not None else find_checklist(cfg)
    for w in checklist.warnings:
        print(f"pgpreflight: warning: {w}", file=sys.stderr)
    before = await check_database(cfg, checklist)
    options = _cli_options(args)
    combined = await preflight.plan_all(cfg, checklist, before.results, options=options)
    sys.stdout.write(combined.text())
    if not combined.steps:
        print("nothing to fix: no failing item has an automatic fix")
        return EXIT_OK if not before.failed else EXIT_FAIL
    if args.dry_run:
        print(f"dry run: nothing was changed ({len(combined.runnable)} of {len(combined.steps)} step(s) can run)")
        return EXIT_OK
    if cfg.read_only:
        from tui.fixes.base import get_fix_class

        if any(get_fix_class(s.fix_name).writes for s in combined.runnable):
            for s in combined.runnable:  # each refusal is audited, as a single fix's is
                if get_fix_class(s.fix_name).writes:
                    with contextlib.suppress(FixRefused):
                        await run_fix(cfg, s.fix_name, dict(s.params), item_id=s.item_id, options=options)
            raise FixRefused("read-only: refusing to run the combined plan (started with --read-only; nothing "
                             "was changed)")
    if not combined.runnable:
        _err("no step can run: " + "; ".join(f"step {s.n}: {s.status_line}" for s in combined.steps))
        return EXIT_USAGE
    tty = sys.stdin is not None and sys.stdin.isatty()
    if not args.yes:
        if not tty:
            _err("refusing to run without confirmation: there is no terminal to ask on; pass --yes "
                 "(or --dry-run to see the plan only)")
            return EXIT_USAGE
        if not _ask(f"Run these {len(combined.runnable)} step(s)? [y/N] "):
            print("not confirmed: nothing was changed")
            return EXIT_USAGE

    async def confirm_more(step) -> bool:
        if args.yes:
            return True
        return tty and _ask(f"Step {step.n} ({step.item_id}) cannot be undone. Really? [y/N] ")

    def on_start(step) -> None:
        print(f"\n== step {step.n}/{len(combined.steps)}: {step.item_id} ({step.fix_name})", flush=True)

    def on_outcome(outcome) -> None:
        if outcome.result is not None:
            sys.stdout.write(outcome.result.text())
            advice = blocker_advice(outcome.result, cfg, args, outcome.step.item_id)
            if advice:
                sys.stdout.write(advice)
        else:
            print(f"  {outcome.status}: {outcome.reason}")
        sys.stdout.flush()

    cancel = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, cancel.set)
            installed.append(sig)
    try:
        outcomes = await preflight.run_all(cfg, combined, confirm_more=confirm_more, on_start=on_start,
                                           on_outcome=on_outcome, progress_cb=_ProgressPrinter(),
                                           cancel_event=cancel, options=options)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    after = await check_database(cfg, checklist)
    print("\n== verified again")
    for o in outcomes:
        if o.status not in ("ok",):
            print(f"  {o.line()}")
    still = [item for item in preflight.failing_items(checklist, after.results)]
    from tui.checklist.report import summary_line

    print(f"steps: {preflight.summary(outcomes)}")
    print(summary_line(after))
    for item in still:
        print(f"  still failing: {item.id}: {after.results[item.id].detail}")
    if cancel.is_set():
        return 130
    return EXIT_OK if all(o.status in ("ok", "left out") for o in outcomes) else EXIT_FAIL


def find_checklist(cfg: Config) -> Checklist:
    from tui.checklist.runner import checklist_for

    return checklist_for(cfg)


def run_fix_command(cfg: Config, args) -> int:
    try:
        if getattr(args, "all", False):
            return asyncio.run(_main_all(cfg, args))
        return asyncio.run(_main(cfg, args))
    except FixRefused as e:
        _err(e.reason)
        return EXIT_USAGE
    except (FixError, ChecklistError) as e:
        _err(str(e))
        return EXIT_USAGE
    except (TargetError, UsageError):
        raise
    except asyncpg.InsufficientPrivilegeError as e:  # e.g. planning reads a setting the role may not see
        _err(f"insufficient privilege: {str(e).splitlines()[0]} (the fix did not run)")
        return EXIT_USAGE
    except asyncpg.PostgresError as e:
        _err(f"the server refused: {str(e).splitlines()[0] if str(e) else type(e).__name__} (the fix did not run)")
        return EXIT_USAGE
    except OSError as e:
        _err(f"{e.strerror or e}" + (f": {e.filename}" if getattr(e, "filename", None) else ""))
        return EXIT_USAGE
