"""Terminals (issue 6): the monitor starts, shows it is connected and quits cleanly on 'q' in tmux at
80x24 with TERM=xterm-256color, screen, tmux-256color and xterm (16 colours; as over SSH), survives a resize, and honours
--no-color and NO_COLOR. Each run uses a tmux server of its own (-L), killed at the end."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

pytestmark = [pytest.mark.faults, pytest.mark.pg]


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_no_color_headless(cluster, tmp_path, how):
    extra = {"NO_COLOR": "1"} if how == "env" else {}
    flag = ["--no-color"] if how == "flag" else []
    for args in (["check", "--checklist", "general"], ["snapshot", "--format", "text"], ["checklists"]):
        res = run_cli(*flag, *args, "--dsn", cluster.dsn("postgres"), "--state-dir", str(tmp_path),
                      env_extra=extra)
        assert res.returncode in (0, 1), (args, res.stderr)
        assert b"\x1b" not in res.stdout and b"\x1b" not in res.stderr
    # after the subcommand too
    res = run_cli("check", "--no-color", "--dsn", cluster.dsn("postgres"), "--state-dir", str(tmp_path))
    assert res.returncode in (0, 1) and b"Traceback" not in res.stderr


class Tmux:
    def __init__(self, tmp_path):
        self.sock = f"pgpf-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp_path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
        env.setdefault("TERM", "xterm-256color")
        return subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", *args], capture_output=True,
                              text=True, timeout=20, check=check, env=env)

    def capture(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", name, check=False).stdout

    def wait_for(self, name: str, predicate, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.capture(name)
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; screen:\n{screen}")
            time.sleep(0.2)

    def kill(self) -> None:
        self("kill-server", check=False)


@pytest.fixture
def tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux): the terminal tests drive the real TUI in it")
    t = Tmux(tmp_path)
    yield t
    t.kill()


@pytest.mark.parametrize("term, extra", [
    ("xterm-256color", []),
    ("screen", []),
    ("tmux-256color", []),
    ("xterm", []),  # a 16-colour terminal
    ("xterm-256color", ["--no-color"]),
    ("screen", ["NO_COLOR=1"]),
])
def test_monitor_in_tmux(cluster, tmp_path, tmux, term, extra):
    name = "mon"
    env_assign = [e for e in extra if "=" in e and not e.startswith("-")]
    flags = [e for e in extra if e.startswith("-")]
    inner = " ".join(shlex.quote(x) for x in [
        "env", "-u", "PGHOST", "-u", "PGPORT", "-u", "PGUSER", "-u", "PGDATABASE", "-u", "PGPASSWORD",
        "-u", "DATABASE_URL", f"TERM={term}", *env_assign,
        sys.executable, "-m", "tui", *flags, "--dsn", cluster.dsn("postgres"),
        "--state-dir", str(tmp_path / "state"), "--app-root", str(tmp_path), "--refresh", "1"])
    # the shell prints the exit status when the app ends and keeps the pane to be read
    tmux("new-session", "-d", "-s", name, "-x", "80", "-y", "24", f"{inner}; echo PGPF_EXIT=$?; sleep 60")
    screen = tmux.wait_for(name, lambda s: "● connected" in s or "PGPF_EXIT=" in s, 40,
                           "the header to show '● connected'")
    assert "PGPF_EXIT=" not in screen, f"the monitor ended before connecting:\n{screen}"
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(ln) <= 80 for ln in lines), "drawn inside 80x24"
    assert "Traceback" not in screen
    if term == "xterm-256color" and not extra:  # resized while running, then back
        tmux("resize-window", "-t", name, "-x", "120", "-y", "40")
        tmux.wait_for(name, lambda s: "● connected" in s and len(s.splitlines()) > 24, 15, "the resized screen")
        tmux("resize-window", "-t", name, "-x", "80", "-y", "24")
        tmux.wait_for(name, lambda s: "● connected" in s and len(s.splitlines()) <= 24, 15, "back to 80x24")
    tmux("send-keys", "-t", name, "q")
    screen = tmux.wait_for(name, lambda s: "PGPF_EXIT=" in s, 20, "the monitor to exit after 'q'")
    assert "PGPF_EXIT=0" in screen, screen
    assert "Traceback" not in screen
    # the app is gone: only the shell's sleep is left in the pane
    procs = tmux("list-panes", "-t", name, "-F", "#{pane_pid}").stdout.split()
    assert procs
    out = subprocess.run(["pgrep", "-f", "-P", procs[0], "tui"], capture_output=True, text=True)
    assert out.stdout.strip() == "", f"the monitor is still running: {out.stdout}"
