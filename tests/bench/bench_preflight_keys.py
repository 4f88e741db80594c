"""Benchmark: the launch loop by keys, as a person does it (issue 12 §3).

    .venv/bin/python tests/bench/bench_preflight_keys.py [--size 120x36] [--runs 1]

Starts `pgpreflight demo` in tmux at 120×36, waits for its first frame, then presses only the keys a
person would: `l` (the checklist), `F` (the combined plan), Enter (run it), and, when a step waits on the
demo's idle-in-transaction session, `t` and the confirmations; then `Esc`, `]`+space on each item that
awaits a person, `S` and Enter (the sign-off). It reads the screen with capture-pane between keys and
counts every key sent. Prints the keys, the seconds from the first frame to the written report, and the
report's verdict and counts. Target: at most 15 keys and 2 minutes.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXE = ROOT / ".venv" / "bin" / "pgpreflight"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session)


def wait_for(session: str, pattern: str, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        text = screen(session)
        if rx.search(text):
            return text
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}; screen:\n{screen(session)}")


def one_run(size: str) -> dict:
    cols, rows = size.split("x")
    session = f"pfk{int(time.time() * 1000) % 100000}"
    state = Path(tempfile.mkdtemp(prefix="pgpreflight-bench-state-"))
    keys: list[str] = []

    def press(key: str) -> None:
        keys.append(key)
        tmux("send-keys", "-t", session, key)

    tmux("new-session", "-d", "-s", session, "-x", cols, "-y", rows,
         f"{EXE} demo --state-dir {state}; sleep 600")
    try:
        wait_for(session, r"● connected", 90, "the first frame with live data")
        t0 = time.monotonic()
        press("l")
        wait_for(session, r"verified \d\d:\d\d:\d\d", 30, "the checklist verified")
        press("F")
        wait_for(session, r"Enter runs \d+ step", 60, "the combined plan")
        press("Enter")
        while True:
            text = wait_for(session, r"preflight: .* verified again|t terminates pid|t cancels pid", 180,
                            "the run to finish or wait on a blocker")
            if "verified again" in text:
                break
            press("t")  # the panel's t: end the root holder
            wait_for(session, r"Stop 1 session", 10, "the confirmation")
            press("t")
            if "terminates" in text:
                wait_for(session, r"Really terminate 1 session", 10, "the second confirmation")
                press("t")
        press("Escape")
        # the items that await a person: ] goes to the next open one, space ticks it
        for _ in range(6):
            time.sleep(0.5)
            press("]")
            time.sleep(0.3)
            text = screen(session)
            if "nothing left open" in text:
                keys.pop()  # that ] found nothing: it was not needed
                break
            press("space")
            time.sleep(1.0)
        press("S")
        wait_for(session, r"Write the sign-off report", 10, "the sign-off dialog")
        press("Enter")
        text = wait_for(session, r"sign-off written to \S+", 60, "the report written")
        elapsed = time.monotonic() - t0
        path = re.search(r"sign-off written to (\S+)", text).group(1)
        report = Path(path).read_text() if Path(path).exists() else ""
        verdict = re.search(r"Verdict: \*\*([A-Z ]+)\*\*", report)
        result = re.search(r"- Result: (.*)", report)
        return {"keys": len(keys), "sequence": " ".join(keys), "seconds": round(elapsed, 1),
                "verdict": verdict.group(1) if verdict else "?", "result": result.group(1) if result else "?"}
    finally:
        tmux("send-keys", "-t", session, "q")
        time.sleep(3)
        tmux("kill-session", "-t", session)
        shutil.rmtree(state, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="120x36")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    if not shutil.which("tmux"):
        print("tmux is needed", file=sys.stderr)
        return 2
    rows = [one_run(args.size) for _ in range(args.runs)]
    print(f"| run | keys | seconds | verdict | result | keys sent |")
    print(f"|---|---:|---:|---|---|---|")
    for n, r in enumerate(rows, start=1):
        print(f"| {n} | {r['keys']} | {r['seconds']} | {r['verdict']} | {r['result']} | `{r['sequence']}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
