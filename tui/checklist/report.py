"""Headless output of a check: text, JSON, JUnit XML, Markdown; and the Markdown sign-off report.
Pure Python. Only the redacted database display (Target.display) ever appears: never a password."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from xml.sax.saxutils import escape, quoteattr

from tui.checklist.runner import CheckRun
from tui.model.checklist import ERROR, FAIL, MANUAL, MARKS, PASS, STATUSES, WARN


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _rows(run: CheckRun):
    for s in run.checklist.sections:
        for it in s.items:
            r = run.results.get(it.id)
            if r is not None:
                yield s, it, r


def summary_line(run: CheckRun) -> str:
    counts = ", ".join(f"{run.count(s)} {s}" for s in STATUSES if run.count(s))
    return f"{run.checklist.name} on {run.database}: {counts} ({run.duration_s:.2f} s)"


def to_json(run: CheckRun) -> str:
    doc = {
        "checklist": run.checklist.name,
        "database": run.database,
        "checked_at": _iso(run.checked_at),
        "items": [
            {"id": it.id, "section": s.id, "title": it.title, "status": r.status, "detail": r.detail,
             "severity": it.severity, "fix": it.fix.name if it.fix else None}
            for s, it, r in _rows(run)
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def to_text(run: CheckRun, color: bool = False) -> str:
    colours = {PASS: "32", FAIL: "31", WARN: "33", MANUAL: "36", ERROR: "35"}
    out = [f"{run.checklist.title} — {run.database}"]
    for s in run.checklist.sections:
        rows = [(it, run.results[it.id]) for it in s.items if it.id in run.results]
        if not rows:
            continue
        passed = sum(1 for _, r in rows if r.status == PASS)
        out.append("")
        out.append(f"{s.title} ({passed}/{len(rows)})")
        for it, r in rows:
            mark = f"{MARKS[r.status]} {r.status.upper():6}"
            if color:
                mark = f"\x1b[{colours[r.status]}m{mark}\x1b[0m"
            out.append(f"  {mark} {it.id:34} {it.title}")
            out.append(f"  {'':8} {'':34} {r.detail}")
    out.append("")
    out.append(summary_line(run))
    return "\n".join(out)


def to_junit(run: CheckRun) -> str:
    fails = run.count(FAIL)
    errors = run.count(ERROR)
    skipped = run.count(MANUAL)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuites name={quoteattr("pgpreflight")} tests="{len(run.results)}" failures="{fails}" '
             f'errors="{errors}" skipped="{skipped}" time="{run.duration_s:.3f}">',
             f'  <testsuite name={quoteattr(run.checklist.name)} tests="{len(run.results)}" failures="{fails}" '
             f'errors="{errors}" skipped="{skipped}" time="{run.duration_s:.3f}" timestamp="{_iso(run.checked_at)}" '
             f'hostname={quoteattr(run.database)}>']
    for s, it, r in _rows(run):
        head = (f'    <testcase classname={quoteattr(run.checklist.name + "." + s.id)} name={quoteattr(it.id)} '
                f'time="{r.duration_ms / 1000:.3f}"')
        msg = quoteattr(r.detail)
        body = escape(f"{it.title}\n{r.detail}")
        if r.status == PASS:
            lines.append(head + ">")
            lines.append(f"      <system-out>{escape(r.detail)}</system-out>")
            lines.append("    </testcase>")
        elif r.status == FAIL:
            lines += [head + ">", f'      <failure message={msg} type="{it.severity}">{body}</failure>', "    </testcase>"]
        elif r.status == ERROR:
            lines += [head + ">", f'      <error message={msg} type="probe">{body}</error>', "    </testcase>"]
        elif r.status == MANUAL:
            lines += [head + ">", f"      <skipped message={msg}/>", "    </testcase>"]
        else:  # warn: passes, with the warning in the output
            lines += [head + ">", f"      <system-out>{escape('WARNING: ' + r.detail)}</system-out>", "    </testcase>"]
    lines += ["  </testsuite>", "</testsuites>"]
    return "\n".join(lines)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(run: CheckRun) -> str:
    out = [f"# {run.checklist.title}", "", f"Database: `{run.database}`  ", f"Checked: {_iso(run.checked_at)}  ",
           f"Result: {summary_line(run).split(': ', 1)[1]}", ""]
    for s in run.checklist.sections:
        rows = [(it, run.results[it.id]) for it in s.items if it.id in run.results]
        if not rows:
            continue
        passed = sum(1 for _, r in rows if r.status == PASS)
        out += [f"## {s.title} ({passed}/{len(rows)})", "", "| | Item | Status | Evidence |", "|---|---|---|---|"]
        for it, r in rows:
            out.append(f"| {MARKS[r.status]} | {_md(it.title)} (`{it.id}`) | {r.status} | {_md(r.detail)} |")
        out.append("")
    return "\n".join(out)


def _figures(run_: dict | None) -> str:
    if not run_:
        return "never run on this database"
    from tui.model.format import figure

    figs = ", ".join(f"{k} {figure(v)}" for k, v in (run_.get("figures") or {}).items())
    status = "passed" if run_.get("ok") else "FAILED"
    out = f"{status} at {run_.get('at', '?')}"
    if run_.get("by"):
        out += f" by {run_['by']}"
    if figs:
        out += f": {figs}"
    if run_.get("detail"):
        out += f" ({run_['detail']})"
    return out


def is_ready(run: CheckRun) -> bool:
    """Ready for launch: nothing fails or errs, and nothing still awaits a person."""
    return not any(r.status in (FAIL, ERROR) for r in run.results.values()) and not run.count(MANUAL)


def _fix_runs(st) -> list[str]:
    out = []
    for name in sorted(st.fix_runs):
        if name in ("backup_test", "connection_test"):  # their own lines above
            continue
        r = st.fix_run(name)
        if r is not None:
            item = f" for `{r['item']}`" if r.get("item") else ""
            out.append(f"- `{name}`{item}: {_figures(r)}")
    return out


def signoff_report(run: CheckRun, *, signed_by: str | None = None, signed_at: str | None = None,
                   timeline: list[str] | None = None) -> str:
    """The Markdown sign-off: the checklist used and why, every item with status and evidence, who ticked it
    and when, the notes, and every fix that ran with its figures. ``signed_by``: the person who signed off
    from the TUI (headless, a line is left to sign)."""
    st = run.state
    fails = [(it, r) for _, it, r in _rows(run) if r.status in (FAIL, ERROR)]
    ready = is_ready(run)
    used = f"`{run.checklist.name}` ({run.checklist.title})"
    if run.source and run.source != "given":
        used += f", {run.source}"
    out = [f"# Launch sign-off: {run.checklist.title}", "",
           f"- Database: `{run.database}` (system identifier {run.identity.system_identifier}, "
           f"database {run.identity.database})",
           f"- Checklist: {used}",
           f"- Checked: {_iso(run.checked_at)} in {run.duration_s:.2f} s",
           f"- Result: {', '.join(f'{run.count(s)} {s}' for s in STATUSES if run.count(s))}",
           f"- Verdict: **{'READY' if ready else 'NOT READY'}**"
           + ("" if ready else f" ({len(fails)} failing, {run.count(MANUAL)} awaiting a person)")]
    if signed_by:
        out.append(f"- Signed off by: {signed_by} at {signed_at or _iso(run.checked_at)}")
    out += ["", "## Tests run by pgpreflight", "",
            f"- Backup test (dump, restore, row counts): {_figures(st.fix_run('backup_test'))}",
            f"- Connection test: {_figures(st.fix_run('connection_test'))}", ""]
    if timeline:  # tui.model.digest.TimelineDigest.markdown(): peaks, alerts, fixes, a chart
        out += [*timeline]
    runs = _fix_runs(st)
    if runs:
        out += ["## Fixes run on this database (the last run of each)", "", *runs, ""]
    if fails:
        out += ["## Blocking items", ""]
        for it, r in fails:
            fix = f" — fix: `pgpreflight fix {it.id}`" if it.fix else ""
            out.append(f"- **{it.id}** ({it.severity}) {it.title}: {r.detail}{fix}")
        out.append("")
    for s in run.checklist.sections:
        rows = [(it, run.results[it.id]) for it in s.items if it.id in run.results]
        if not rows:
            continue
        passed = sum(1 for _, r in rows if r.status == PASS)
        out += [f"## {s.title} ({passed}/{len(rows)})", "",
                "| | Item | Severity | Status | Evidence | Ticked |", "|---|---|---|---|---|---|"]
        notes = []
        for it, r in rows:
            t = st.tick(it.id)
            ticked = f"{t.by} at {t.at}" if t else ""
            out.append(f"| {MARKS[r.status]} | {_md(it.title)} (`{it.id}`) | {it.severity} | {r.status} | "
                       f"{_md(r.detail)} | {_md(ticked)} |")
            for n in st.notes_for(it.id):
                notes.append(f"- `{it.id}` — {n.by} at {n.at}: {n.text}")
        out.append("")
        if notes:
            out += ["Notes:", "", *notes, ""]
    if signed_by:
        out += ["---", "", f"Signed off by: {signed_by}  Date: {signed_at or _iso(run.checked_at)}", ""]
    else:
        out += ["---", "", "Signed off by: ____________________  Date: ____________", ""]
    return "\n".join(out)


def write_report(path, text: str) -> None:
    """Write a report atomically (a reader never sees half of it); the parent directory is created."""
    from tui.checklist.state import write_atomic

    write_atomic(path, text, mode=0o644)


def default_report_path(state_dir, database: str, at: float | None = None):
    """<state dir>/reports/signoff-<database>-<UTC time>.md"""
    import re
    import time
    from pathlib import Path

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(at))
    db = re.sub(r"[^A-Za-z0-9_.-]", "_", database) or "database"
    return Path(state_dir) / "reports" / f"signoff-{db}-{stamp}.md"


FORMATS = {"text": to_text, "json": to_json, "junit": to_junit, "markdown": to_markdown}
