"""A terminal driver whose input thread sleeps until there is input.

Textual's LinuxDriver reads keys in a thread that wakes every 0.1 s, input or not, to time out a
lone Escape. On a monitor that sits on screen all day that is ten wake-ups a second, about a fifth
of the process's CPU at rest. This driver's thread waits for input with no timeout, except while
the key parser is part-way through a sequence (a lone Escape): then it waits only until the
parser's own deadline. Stopping the thread (quit, suspend) wakes it through a pipe.
"""
from __future__ import annotations

import os
import selectors
import threading
from codecs import getincrementaldecoder

from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

# Every private name of Textual (8.2.8, pinned) this module relies on, one line each
# (tests/unit/test_fence.py). PGPREFLIGHT_STOCK_TEXTUAL=1: the app uses Textual's LinuxDriver.
TEXTUAL_PRIVATES = {
    "textual._time": "get_time(): the clock the key parser's deadlines are on",
    "textual._xterm_parser": "XTermParser: turns terminal input into key/mouse events, as LinuxDriver does",
    "_timeout_time": "XTermParser._timeout_time: when a lone Escape becomes the Escape key (None: no wait)",
    "_debug": "Driver._debug: whether the parser logs what it reads",
}

FALLBACK_TICK_S = 0.1  # Textual's own interval, used if the parser keeps no deadline


def select_timeout(parser: XTermParser, now: float) -> float | None:
    """How long the input thread may wait: None (until input) when the parser awaits nothing,
    else the time left until its deadline (a lone Escape becomes the Escape key then)."""
    try:
        deadline = parser._timeout_time
    except AttributeError:  # a Textual without the attribute: wake as Textual does
        return FALLBACK_TICK_S
    if deadline is None:
        return None
    return max(0.0, deadline - now)


class _WakingEvent(threading.Event):
    """The driver's exit event; setting it also wakes the input thread's select."""

    def __init__(self, wake_fd: int):
        super().__init__()
        self.wake_fd: int | None = wake_fd  # None once the driver has closed the pipe

    def set(self) -> None:
        super().set()
        if self.wake_fd is None:
            return
        try:
            os.write(self.wake_fd, b"x")
        except OSError:  # the pipe is full: the thread has a wake-up waiting already
            pass


class QuietLinuxDriver(LinuxDriver):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.exit_event = _WakingEvent(self._wake_w)

    def run_input_thread(self) -> None:
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode
        fileno, wake_r = self.fileno, self._wake_r
        with selectors.DefaultSelector() as selector:
            selector.register(fileno, selectors.EVENT_READ)
            selector.register(wake_r, selectors.EVENT_READ)
            while not self.exit_event.is_set():
                for key, _mask in selector.select(select_timeout(parser, get_time())):
                    if key.fd == wake_r:
                        self._drain_wake_pipe()
                        continue
                    data = decode(os.read(fileno, 4096))
                    if not data:  # stdin closed: stop reading it, wait only for the exit
                        selector.unregister(fileno)
                        continue
                    for event in parser.feed(data):
                        self.process_message(event)
                for event in parser.tick():
                    self.process_message(event)
        self._drain_wake_pipe()

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except OSError:  # empty (BlockingIOError) or closed
            pass

    def close(self) -> None:
        super().close()
        self.exit_event.wake_fd = None  # its number may be reused once closed: never write to it
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
