"""The headless commands: ``check``, ``report``, ``checklists`` (tui.cli dispatches to these).

Exit codes: 0 nothing fails, 1 an item fails (or its probe could not run: error), 2 usage, connection
or checklist-file error. Every problem is one line on stderr, never a traceback."""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tui.checklist.spec import ChecklistError, bundled_names, load_checklist

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _out(text: str) -> None:
    """stdout that survives a reader going away (``| head``): the rest is dropped, no traceback."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _err(msg: str) -> None:
    print(f"pgpreflight: error: {msg}", file=sys.stderr)


def _warn(msg: str) -> None:
    print(f"pgpreflight: warning: {msg}", file=sys.stderr)


def _run(cfg):
    """Connect, take the database's checklist (--checklist, else the one remembered for it, ...), check.
    A checklist file that cannot be used raises ChecklistError; a bad target TargetError (tui.cli)."""
    from tui.checklist.runner import check_database

    run = asyncio.run(check_database(cfg, None))
    for w in run.checklist.warnings:
        _warn(w)
    for w in run.state.warnings:
        _warn(w)
    return run


def run_check(cfg, fmt: str = "text") -> int:
    from tui.checklist.report import FORMATS

    try:
        run = _run(cfg)  # TargetError goes up to tui.cli: one line, exit 2
    except ChecklistError as e:
        _err(str(e))
        return EXIT_USAGE
    if fmt == "text":
        color = sys.stdout.isatty() and not cfg.no_color
        out = FORMATS["text"](run, color=color)
    else:
        out = FORMATS[fmt](run)
    _out(out if out.endswith("\n") else out + "\n")
    return EXIT_FAIL if run.failed else EXIT_OK


def run_report(cfg, output: Path | None = None) -> int:
    """The sign-off report. Exit 0 when the database is ready (nothing fails, nothing awaits a person),
    1 when it is not, 2 on a usage, connection or file error."""
    from tui.checklist.report import is_ready, signoff_report, summary_line, write_report

    try:
        run = _run(cfg)
    except ChecklistError as e:
        _err(str(e))
        return EXIT_USAGE
    text = signoff_report(run)
    if output is None or str(output) == "-":
        _out(text)
    else:
        try:
            write_report(output, text)
        except OSError as e:
            _err(f"cannot write {output}: {e.strerror or e}")
            return EXIT_USAGE
        print(f"pgpreflight: report written to {output} ({summary_line(run)})", file=sys.stderr)
    return EXIT_OK if is_ready(run) else EXIT_FAIL


def run_checklists(selected: str | None = None, cfg=None) -> int:
    if selected is None and cfg is not None:
        from tui.checklist.runner import default_checklist_name

        try:
            selected = default_checklist_name(cfg)
        except ChecklistError as e:
            _err(str(e))
            return EXIT_USAGE
    lines: list[str] = []
    for name in bundled_names():
        try:
            c = load_checklist(name)
        except ChecklistError as e:  # pragma: no cover - bundled files are tested
            _err(str(e))
            return EXIT_USAGE
        n_items = len(c.item_ids())
        auto = sum(1 for i in c.items() if not i.manual)
        mark = "*" if name == (selected or "general") else " "
        lines.append(f"{mark} {name:12} {n_items:3} items ({auto} verified automatically)  {c.title}")
    if selected and selected not in bundled_names():
        lines.append(f"* {selected} (a file)")
    lines.append("\nUse --checklist NAME, or --checklist PATH for your own TOML file (* = the one in use).")
    lines.append("A default per database: [checklist.databases] in the config file (PGPREFLIGHT_CONFIG).")
    _out("\n".join(lines) + "\n")
    return EXIT_OK
