"""One wait shared by the event sources (tui.db.monitor.Monitor, tui.replay.Replayer): sleep until
``seconds`` have passed or ``wake`` is set, with the source's own sleep when a test gives one."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable


async def sleep_or_wake(wake: asyncio.Event, seconds: float,
                        sleep_fn: Callable[[float], Awaitable[None]] | None = None) -> bool:
    """True when ``wake`` was set (an input came), False when the time ran out."""
    if wake.is_set():
        return True
    if sleep_fn is None:
        try:
            await asyncio.wait_for(wake.wait(), timeout=seconds)
            return True
        except asyncio.TimeoutError:
            return False
    sleeper = asyncio.ensure_future(sleep_fn(seconds))
    waker = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (sleeper, waker):
            t.cancel()
        await asyncio.gather(sleeper, waker, return_exceptions=True)
    return wake.is_set()
