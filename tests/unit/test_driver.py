"""The terminal driver's input thread (tui.screens.driver): it waits for input without waking on a
timer, still turns a lone Escape into the Escape key, and stops at once when asked. Run on a real
pseudo-terminal."""
from __future__ import annotations

import os
import pty
import queue
import threading
import tty
import time

import pytest
from textual import events
from textual._xterm_parser import XTermParser

from tui.screens.driver import QuietLinuxDriver, select_timeout

pytestmark = pytest.mark.unit


class _Recorder(QuietLinuxDriver):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: queue.Queue = queue.Queue()

    def process_message(self, message) -> None:
        self.received.put(message)


def next_key(driver: _Recorder, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        msg = driver.received.get(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(msg, events.Key):
            return msg.key


@pytest.fixture
async def driver():
    master, slave = pty.openpty()
    tty.setraw(slave)  # as the app sets its terminal: bytes arrive as typed, not by the line
    d = _Recorder(object())
    d.fileno = slave
    thread = threading.Thread(target=d.run_input_thread, daemon=True)
    thread.start()
    yield d, master, thread
    d.exit_event.set()
    thread.join(5)
    d.close()
    for fd in (master, slave):
        os.close(fd)


def test_idle_parser_waits_for_input():
    parser = XTermParser()
    assert select_timeout(parser, time.monotonic()) is None
    list(parser.feed("\x1b"))  # part-way through a sequence: wake at its deadline, no later
    left = select_timeout(parser, time.monotonic())
    assert left is not None and 0 <= left <= 0.2
    assert select_timeout(parser, time.monotonic() + 10) == 0


async def test_keys_and_lone_escape(driver):
    d, master, _thread = driver
    os.write(master, b"q")
    assert next_key(d) == "q"
    os.write(master, b"\x1b")  # nothing follows it: the thread must wake on its own to send Escape
    assert next_key(d) == "escape"
    os.write(master, b"\x1b[A")
    assert next_key(d) == "up"


async def test_stop_wakes_the_waiting_thread(driver):
    d, _master, thread = driver
    assert thread.is_alive()
    d.exit_event.set()
    thread.join(5)
    assert not thread.is_alive()  # woken by the pipe: its select has no timeout while idle


async def test_a_closed_driver_never_writes_to_its_old_pipe():
    d = _Recorder(object())
    d.close()
    r, w = os.pipe()  # may take the numbers the driver's pipe had
    try:
        d.exit_event.set()
        os.set_blocking(r, False)
        with pytest.raises(BlockingIOError):
            os.read(r, 1)
    finally:
        os.close(r)
        os.close(w)


async def test_closed_input_is_dropped_not_polled_again(monkeypatch):
    """At end of input (stdin closed) the thread stops watching it, rather than waking on it at
    once again and again, and still stops when asked."""
    import selectors

    import tui.screens.driver as driver_mod

    made = []

    class Recorded(selectors.DefaultSelector):
        def __init__(self):
            super().__init__()
            made.append(self)

    monkeypatch.setattr(driver_mod.selectors, "DefaultSelector", Recorded)
    r, w = os.pipe()
    d = _Recorder(object())
    d.fileno = r
    thread = threading.Thread(target=d.run_input_thread, daemon=True)
    thread.start()
    try:
        os.close(w)  # end of input
        deadline = time.monotonic() + 5
        while not (made and r not in made[0].get_map()):
            assert time.monotonic() < deadline, "the closed input is still watched"
            thread.join(0.01)
        assert thread.is_alive()
    finally:
        d.exit_event.set()
        thread.join(5)
        d.close()
        os.close(r)
    assert not thread.is_alive()
