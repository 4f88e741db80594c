"""Formatting helpers shared by widgets, text output and reports. Pure Python."""
from __future__ import annotations

import re

import humanize

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def size(n: int | float | None) -> str:
    if n is None:
        return "—"
    return humanize.naturalsize(n, binary=True, format="%.1f")


def duration(seconds: float | None) -> str:
    """Compact age: 45s, 12m03s, 3h04m, 2d05h."""
    if seconds is None:
        return "—"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def figure(value) -> str:
    """A fix's figure as a person reads it: yes/no for booleans, "none" for a missing value, never a
    Python repr (True, None)."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def when(iso: str | None) -> str:
    """An ISO time from the state as "2026-12-01 21:30 UTC" (whole, never cut mid-way)."""
    from datetime import datetime, timezone

    if not iso:
        return "?"
    try:
        d = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def ratio(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def clean_text(text: str | None, limit: int = 10_000) -> str:
    """Make text from the database safe for a terminal: no ANSI escapes, no control
    characters (newlines and tabs folded to spaces), and at most ``limit`` characters."""
    if not text:
        return ""
    if len(text) > limit * 4:
        text = text[: limit * 4]
    text = _ANSI.sub("", text)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    text = _CONTROL.sub("\ufffd", text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values, maximum: float | None = None, width: int = 30) -> str:
    """The last ``width`` values as bars scaled against ``maximum`` (e.g. max_connections)."""
    vals = list(values)[-width:]
    if not vals:
        return ""
    top = maximum if maximum and maximum > 0 else max(max(vals), 1)
    out = []
    for v in vals:
        frac = min(1.0, max(0.0, v / top))
        out.append(_BARS[min(len(_BARS) - 1, int(frac * (len(_BARS) - 1) + 0.5))])
    return "".join(out)


def ms(x: float | None) -> str:
    """Milliseconds, compact: 0.42, 12.3, 4,567, 1.2m(s)."""
    if x is None:
        return "—"
    if x < 10:
        return f"{x:.2f}"
    if x < 100_000:
        return f"{x:,.1f}" if x < 1000 else f"{x:,.0f}"
    return duration(x / 1000)


def count(n: int | None) -> str:
    if n is None:
        return "—"
    if abs(n) < 100_000:
        return f"{n:,}"
    for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.1f}{unit}" if abs(v) < 100 else f"{v:.0f}{unit}"
    return str(n)
