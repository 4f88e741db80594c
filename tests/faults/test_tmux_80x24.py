"""The operator's screen at 80×24, as a person sees it over SSH: the real `pgpreflight` in tmux against a
real server, read with capture-pane. State flags in full (PAUSED, STALE, DISCONNECTED), q and ? in the
footer on every pane with nothing after them, the session detail with a 4,000-character query, and the
help of the pane in view on its first screen."""
from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

pytestmark = [pytest.mark.faults, pytest.mark.pg,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_cluster():
    from tui.cluster import start_cluster

    # a 4,000-character query is kept whole only when the server keeps that much of it (default 1,024)
    c = start_cluster(settings={"track_activity_query_size": "8192"})
    yield c
    c.destroy()


class Tmux:
    def __init__(self, name: str, cols: int = 80, rows: int = 24):
        self.name, self.cols, self.rows = name, cols, rows

    def start(self, command: str) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(self.cols), "-y", str(self.rows),
                        command], check=True)

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True,
                              text=True).stdout

    def lines(self) -> list[str]:
        return self.screen().splitlines()

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            value = predicate(text)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; screen:\n{text}")
            time.sleep(0.1)

    def stop(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def tmux():
    t = Tmux(f"pgpf{int(time.time() * 1000) % 1000000}")
    yield t
    t.keys("q")
    time.sleep(0.5)
    t.stop()


def monitor_command(dsn: str, state: Path, *extra: str) -> str:
    import shlex

    return " ".join(shlex.quote(x) for x in (sys.executable, "-m", "tui", "monitor", "--dsn", dsn, "--state-dir",
                                              str(state), "--refresh", "0.5", "--connect-timeout", "1", *extra))


def test_state_flags_are_whole_at_80_columns(own_cluster, tmux, tmp_path):
    tmux.start(monitor_command(own_cluster.dsn("postgres"), tmp_path / "state"))
    tmux.wait(lambda s: "● connected" in s, 30, "the first frame")
    tmux.keys("p")
    line = tmux.wait(lambda s: next((ln for ln in s.splitlines()[:2] if "PAUSED" in ln), None), 10, "PAUSED")
    assert line.lstrip().startswith("PAUSED"), line  # first on its line: nothing can cut it
    tmux.keys("p")
    tmux.wait(lambda s: "PAUSED" not in s, 10, "PAUSED gone")
    own_cluster.stop("fast")
    line = tmux.wait(lambda s: next((ln for ln in s.splitlines()[:2]
                                     if "DISCONNECTED" in ln and "STALE" in ln), None), 30, "DISCONNECTED and STALE")
    assert re.match(r"\s*✖ DISCONNECTED retry \d+s STALE \d+s", line), line
    own_cluster.start()
    tmux.wait(lambda s: "● connected" in s and "STALE" not in s, 40, "reconnected")


def test_footer_help_and_session_detail_at_80_columns(own_cluster, tmux, tmp_path):
    """q and ? lead the footer on every pane with nothing cut after the last key; ? shows the keys of the
    pane in view on its first screen; Enter on a session with a 4,000-character query shows it whole."""
    head, tail = "SELECT 1 /* ", " tail-marker */, pg_sleep(60)"
    long_query = head + "x" * (4000 - len(head) - len(tail)) + tail
    assert len(long_query) == 4000

    async def hold():
        c = await asyncpg.connect(own_cluster.dsn("postgres"), server_settings={"application_name": "long-q"})
        task = asyncio.ensure_future(c.execute(long_query))
        return c, task

    loop = asyncio.new_event_loop()
    conn, task = loop.run_until_complete(hold())
    try:
        tmux.start(monitor_command(own_cluster.dsn("postgres"), tmp_path / "state"))
        tmux.wait(lambda s: "long-q" in s or "SELECT 1 /*" in s, 30, "the long query listed")
        for key in ("1", "2", "3", "4", "5"):
            tmux.keys(key)
            footer = tmux.wait(lambda s: (s.splitlines() or [""])[-1] if (s.splitlines() or [""])[-1]
                               .lstrip().startswith("q Quit ? Help") else None, 10, f"the footer of pane {key}")
            assert len(footer) <= 80, footer
            last = footer.rstrip().split("  ")[-1].split(" ")[-1] if footer.strip() else ""
            assert "…" not in footer and "▏" not in footer, footer
            assert last and last[-1].isalpha() or last.endswith("palette"), footer
        tmux.keys("1")
        tmux.wait(lambda s: "SELECT 1 /*" in s and "c Cancel" in s.splitlines()[-1], 10,
                  "connections again, its table focused")
        tmux.keys("?")
        help_text = tmux.wait(lambda s: s if "Everywhere" in s else None, 10, "the help")
        # the pane in view comes first: its keys are above the global ones, on the first screen
        first = help_text.split("Everywhere")[0]
        assert re.search(r"\bc\b.*cancel", first, re.I) and re.search(r"\bK\b", first), help_text
        tmux.keys("Escape")
        tmux.wait(lambda s: "q Quit ? Help" in s, 10, "the help closed")
        # the long query's row: move to it (the only active session but the monitor's own are not listed)
        tmux.keys("Enter")
        tmux.wait(lambda s: "session " in s and "xxxxxxxxxx" in s and "esc closes" not in s, 10,
                  "the session detail of the long query, its end below the fold")

        def scrolled(s):  # scroll until the end of the wrapped query shows
            if "tail-marker" in s and "esc closes" in s:
                return True
            tmux.keys("PageDown")
            return False

        tmux.wait(scrolled, 15, "the whole query, to its last characters, then the locks and keys")
        tmux.keys("Escape")
    finally:
        task.cancel()
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        loop.run_until_complete(conn.close())
        loop.close()
