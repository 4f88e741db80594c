"""Reading a recording back (issue 14 §6, the part without Textual). Pure Python.

- :class:`Recording`: one file of tui.recorder, read-only (a file still being written can be read:
  :meth:`Recording.refresh` picks up the rounds written since). ``span()``, ``times()``,
  ``rounds(from_, to)`` in order, ``state_at(t)``: the latest event of every pane at or before ``t``,
  the connection state, the alerts active then, the notices and the last checklist results.
- :class:`Replayer`: an event source of the Monitor's shape (tui.db.monitor) for the TUI: ``events()``
  yields the recorded rounds paced by the recorded intervals (scaled by ``speed``); ``pause()``,
  ``resume()``, ``step(n)``, ``jump(seconds)``, ``goto(datetime)`` move it, ``span()`` and ``position``
  say where; ``poll_now()``, ``wanted`` and ``show_idle`` are accepted and do nothing (it has no
  ``set_every``: the App tells it from the Monitor by that).
- :func:`run_replay_command`: ``pgpreflight replay FILE --format json|text [--from T] [--to T]``.

Times are UTC datetimes (a recording stamps wall time at take, in UTC)."""
from __future__ import annotations

import asyncio
import bisect
import json
import re
import sqlite3
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Iterator

from tui.model import events as E
from tui.model.wake import sleep_or_wake
from tui.model.snapshot import Snapshot
from tui.recorder import FORMAT, RecordingError, connect_ro, decode, loads, payload_bytes

MONITOR_PANES = ("server", "connections", "slow", "tables", "host", "limits")
_MONO_FIELDS = ("polled_at", "last_ok_at")


def _utc(t: datetime | float | int) -> float:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return t.timestamp()
    return float(t)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


@dataclass(frozen=True)
class Round:
    """One recorded round: its events in order, each with the wall time it was taken."""

    index: int
    id: int
    at: datetime  # when its RoundEnded was taken
    mono: float | None  # RoundEnded.at (the recording process's monotonic clock)
    events: tuple
    stamps: tuple[datetime, ...]

    @property
    def partial(self) -> bool:
        """The flush of a close: the events taken after the last RoundEnded."""
        return not (self.events and isinstance(self.events[-1], E.RoundEnded))


@dataclass(frozen=True)
class State:
    """What was live after round ``index``: the latest event of every pane, and the rest."""

    index: int
    at: datetime
    mono: float | None
    panes: dict = field(default_factory=dict)  # "server" -> ServerPolled, "connections" -> ConnectionsPolled, …
    connection: E.ConnectionChanged | None = None
    alerts: tuple = ()  # AlertChanged, raised and not cleared then
    notices: tuple = ()  # PartTurnedOff, every one said so far
    checklist: E.ChecklistRan | None = None

    def events(self) -> list:
        """The state as the events a consumer takes: connection, the panes in the monitor's order,
        the notices, the active alerts, the checklist, and a RoundEnded."""
        out: list = []
        if self.connection is not None:
            out.append(self.connection)
        polled = [p for p in MONITOR_PANES if p in self.panes]
        out.extend(self.panes[p] for p in polled)
        out.extend(self.notices)
        out.extend(self.alerts)
        if self.checklist is not None:
            out.append(self.checklist)
        out.append(E.RoundEnded(self.mono or 0.0, tuple(polled)))
        return out

    def snapshot(self, target: str = "") -> Snapshot:
        p = self.panes
        host = p.get("host")
        return Snapshot(
            target=target, taken_at=self.at,
            server=p["server"].info if "server" in p else None,
            connections=p["connections"].snap if "connections" in p else None,
            slow_queries=p["slow"].snap if "slow" in p else None,
            tables=p["tables"].snap if "tables" in p else None,
            host=host.snap if host is not None else None,
            host_message=host.message if host is not None else "",
            notices=tuple(n.notice for n in self.notices),
        )

    def to_dict(self, target: str = "") -> dict:
        """``snapshot --format json``'s document, with ``recorded_at`` and the active ``alerts``."""
        d = self.snapshot(target).to_dict()
        d["recorded_at"] = self.at.isoformat()
        d["alerts"] = [{"name": a.name, "value": a.value, "threshold": a.threshold,
                        "started_at": a.started_at.isoformat() if a.started_at else None, "message": a.message}
                       for a in self.alerts]
        return d


class _LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get(self, key, default=None):
        if key in self:
            self.move_to_end(key)
            return self[key]
        return default

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class _BytesCache(_LRU):
    """payload_bytes' cache: ``in`` and ``[]`` read it, ``[]=`` fills it (bounded)."""

    def __setitem__(self, key, value) -> None:
        OrderedDict.__setitem__(self, key, value)
        if len(self) > self.size:
            self.popitem(last=False)


class Recording:
    """A recording file, read-only. Raises RecordingError (one line) for a missing, corrupt or
    foreign file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise RecordingError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise RecordingError(f"{self.path}: is a directory, not a recording")
        try:
            self.conn = connect_ro(self.path)
            self.meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as e:
            raise RecordingError(f"{self.path}: not a pgpreflight recording ({e})") from None
        if self.meta.get("app") != "pgpreflight":
            raise RecordingError(f"{self.path}: not a pgpreflight recording")
        if self.meta.get("format") != str(FORMAT):
            raise RecordingError(f"{self.path}: a recording of format {self.meta.get('format')}; "
                                 f"this version reads format {FORMAT}")
        try:
            self.panes = list(json.loads(self.meta.get("panes", "[]")))
        except ValueError:
            raise RecordingError(f"{self.path}: a damaged recording (its pane list)") from None
        self.target = self.meta.get("target", "")
        self.ids: list[int] = []
        self.ats: list[float] = []  # wall time (Unix seconds) of each round
        self.monos: list[float | None] = []
        self._bytes = _BytesCache(512)
        self._objs = _LRU(256)
        self.refresh()

    def refresh(self) -> int:
        """Read the index of the rounds written since (a file still being recorded); their count."""
        last = self.ids[-1] if self.ids else 0
        try:
            rows = self.conn.execute("SELECT id, at, mono FROM rounds WHERE id > ? ORDER BY id", (last,)).fetchall()
        except sqlite3.DatabaseError as e:
            raise RecordingError(f"{self.path}: a damaged recording ({e})") from None
        for rid, at, mono in rows:
            self.ids.append(rid)
            self.ats.append(at)
            self.monos.append(mono)
        return len(rows)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self.ids)

    # -- time ------------------------------------------------------------------------------------
    def span(self) -> tuple[datetime, datetime] | None:
        """(first, last) round's time; None for a recording without rounds."""
        return (_dt(self.ats[0]), _dt(self.ats[-1])) if self.ats else None

    def times(self) -> list[datetime]:
        return [_dt(a) for a in self.ats]

    def time(self, index: int) -> datetime:
        return _dt(self.ats[index])

    def index_at(self, t: datetime | float) -> int:
        """The last round at or before ``t`` (the first round when ``t`` is before it)."""
        if not self.ats:
            raise RecordingError(f"{self.path}: no rounds recorded")
        i = bisect.bisect_right(self.ats, _utc(t)) - 1
        return min(max(i, 0), len(self.ats) - 1)

    def mono(self, index: int) -> float | None:
        """The round's monotonic time; for a close's flush, estimated from the round before."""
        m = self.monos[index]
        if m is None and index > 0 and self.monos[index - 1] is not None:
            m = self.monos[index - 1] + (self.ats[index] - self.ats[index - 1])
        return m

    # -- reading ---------------------------------------------------------------------------------
    def _payload(self, pid: int) -> Any:
        obj = self._objs.get(pid)
        if obj is None:
            try:
                obj = loads(payload_bytes(self.conn, pid, self._bytes))
            except (sqlite3.DatabaseError, ValueError, OSError) as e:
                raise RecordingError(f"{self.path}: a damaged recording (payload {pid}: {e})") from None
            self._objs.put(pid, obj)
        return obj

    def _data(self, index: int) -> dict:
        row = self.conn.execute("SELECT data FROM rounds WHERE id = ?", (self.ids[index],)).fetchone()
        try:
            return json.loads(row[0])
        except (TypeError, ValueError):
            raise RecordingError(f"{self.path}: a damaged recording (round {self.ids[index]})") from None

    def _round(self, index: int, data: dict) -> Round:
        at = self.ats[index]
        evs, stamps = [], []
        for entry in data.get("e", ()):
            if not isinstance(entry, list) or len(entry) != 2:
                continue
            ms, body = entry
            ev = self._payload(body) if isinstance(body, int) else decode(body)
            if ev is None or isinstance(ev, dict):  # an event this version does not know
                continue
            evs.append(ev)
            stamps.append(_dt(at + ms / 1000.0))
        return Round(index, self.ids[index], _dt(at), self.monos[index], tuple(evs), tuple(stamps))

    def round(self, index: int) -> Round:
        return self._round(index, self._data(index))

    def rounds(self, from_: datetime | float | None = None, to: datetime | float | None = None) -> Iterator[Round]:
        """The rounds from ``from_`` to ``to`` (both included), in order."""
        lo = 0 if from_ is None else bisect.bisect_left(self.ats, _utc(from_))
        hi = len(self.ats) if to is None else bisect.bisect_right(self.ats, _utc(to))
        for i in range(lo, hi):
            yield self.round(i)

    def state(self, index: int) -> State:
        """What was live after round ``index``."""
        data = self._data(index)
        panes: dict = {}
        kw: dict = {}
        for name, pid in zip(self.panes, data.get("l", ())):
            if not pid:
                continue
            v = self._payload(pid)
            if name in MONITOR_PANES:
                panes[name] = v
            elif name == "connection":
                kw["connection"] = v
            elif name == "alerts":
                kw["alerts"] = tuple(a for a in v if isinstance(a, E.AlertChanged))
            elif name == "notices":
                kw["notices"] = tuple(n for n in v if isinstance(n, E.PartTurnedOff))
            elif name == "checklist":
                kw["checklist"] = v
        return State(index, _dt(self.ats[index]), self.mono(index), panes, **kw)

    def state_at(self, t: datetime | float) -> State:
        """The latest of each pane at or before ``t``, the alerts active then (see :class:`State`)."""
        return self.state(self.index_at(t))

    def events_at(self, t: datetime | float) -> list:
        """:meth:`state_at` as events, ending with a RoundEnded."""
        return self.state_at(t).events()

    def payloads(self) -> Iterator[tuple[str, bytes]]:
        """Every payload's JSON, inflated (scripts, and the tests that look for a literal)."""
        cache: dict = {}
        for pid, pane in self.conn.execute("SELECT id, pane FROM payloads ORDER BY id").fetchall():
            yield pane, payload_bytes(self.conn, pid, cache)


def rebase(ev, shift: float):
    """``ev`` with its monotonic times (RoundEnded.at, a snapshot's polled_at, last_ok_at) moved by
    ``shift``: a replayed round reads as polled just now, ages as they were then."""
    if not shift:
        return ev
    if isinstance(ev, E.RoundEnded):
        return replace(ev, at=ev.at + shift)
    if not is_dataclass(ev):
        return ev
    changes = {}
    for f in fields(ev):
        v = getattr(ev, f.name)
        if is_dataclass(v) and not isinstance(v, type):
            sub = {}
            for n in _MONO_FIELDS:
                x = getattr(v, n, None)
                if isinstance(x, float) and x:
                    sub[n] = x + shift
            if sub:
                changes[f.name] = replace(v, **sub)
    return replace(ev, **changes) if changes else ev


class Replayer:
    """A recording as an event source of the Monitor's shape (see the module doc).

    ``events()`` first yields the full state at ``start`` (the first round by default), then each
    following round, waiting the recorded interval between rounds divided by ``speed`` (a gap longer
    than ``max_gap_s``, when nothing was recorded, is cut to it). After a seek (``step``, ``jump``,
    ``goto``) it yields the full state at the new position (the latest event of every pane, the
    active alerts, ending with a RoundEnded); ``in_seek`` is True while those come. At the end it waits
    (``at_end``) for a
    seek, or returns when ``stop_at_end``. An alert it yielded as raised that is not active at the new
    position comes cleared (at that position, "not active at HH:MM:SS (replay)") with the state, so that
    a consumer that keeps the raised alerts needs nothing more. With ``rebase`` (the default) the monotonic times of the
    events are moved to this process's clock. ``position`` is the recorded time of the current round."""

    END_POLL_S = 1.0
    replaying = True

    def __init__(self, recording: Recording | Path | str, *, speed: float = 1.0,
                 start: datetime | float | None = None, paused: bool = False, rebase: bool = True,
                 stop_at_end: bool = False, max_gap_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Any] | None = None) -> None:
        self.recording = recording if isinstance(recording, Recording) else Recording(recording)
        if not len(self.recording):
            raise RecordingError(f"{self.recording.path}: no rounds recorded")
        if not speed > 0:
            raise ValueError("speed must be greater than 0")
        self.speed = float(speed)
        self.rebase = rebase
        self.stop_at_end = stop_at_end
        self.max_gap_s = max_gap_s
        self._clock = clock
        self._sleep_fn = sleep
        self._i = self.recording.index_at(start) if start is not None else 0
        self._seek: int | None = self._i
        self._paused = bool(paused)
        self._wake = asyncio.Event()
        self._wanted = frozenset(MONITOR_PANES)
        self._show_idle = False
        self.in_seek = False
        self.seeks = 0
        self.at_end = False
        self._active: dict[str, E.AlertChanged] = {}  # the alerts yielded as raised and not cleared

    # -- the Monitor's inputs: accepted, nothing to poll ---------------------------------------------
    @property
    def wanted(self) -> frozenset[str]:
        return self._wanted

    @wanted.setter
    def wanted(self, panes: Iterable[str]) -> None:
        self._wanted = frozenset(panes)

    @property
    def show_idle(self) -> bool:
        return self._show_idle

    @show_idle.setter
    def show_idle(self, value: bool) -> None:
        self._show_idle = bool(value)

    def poll_now(self, panes: Iterable[str] = ("all",)) -> None:
        """Nothing to poll in a recording."""

    # no set_every: the App tells a Replayer from the Monitor by it (tui/screens/app.py)

    async def close(self) -> None:
        """The Monitor's close: nothing is open but the file, which the caller may reuse."""

    # -- moving ------------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        self._paused = True
        self._wake.set()

    def resume(self) -> None:
        self._paused = False
        self._wake.set()

    def span(self) -> tuple[datetime, datetime]:
        """The first and the last round's recorded time."""
        return self.recording.span()

    @property
    def index(self) -> int:
        """The current round's index (a pending seek's target once asked)."""
        return self._seek if self._seek is not None else self._i

    @property
    def position(self) -> datetime:
        """The recorded time of the current round."""
        return self.recording.time(self.index)

    def step(self, n: int = 1) -> None:
        """``n`` rounds on (negative: back), then the full state there."""
        self._seek_to(self.index + int(n))

    def jump(self, seconds: float) -> None:
        """``seconds`` of recorded time on (negative: back)."""
        self.goto(self.position + timedelta(seconds=seconds))

    def goto(self, when: datetime | float) -> None:
        """The last round at or before ``when`` (the first when before the recording)."""
        self._seek_to(self.recording.index_at(when))

    def _seek_to(self, i: int) -> None:
        self._seek = min(max(i, 0), len(self.recording) - 1)
        self._wake.set()

    # -- the stream --------------------------------------------------------------------------------
    def _shift(self, mono: float | None) -> float:
        return self._clock() - mono if self.rebase and mono is not None else 0.0

    async def events(self) -> AsyncIterator:
        rec = self.recording
        while True:
            self._wake.clear()
            if self._seek is not None:
                i, self._seek = self._seek, None
                self._i = i
                self.at_end = i >= len(rec) - 1
                st = rec.state(i)
                shift = self._shift(st.mono)
                self.seeks += 1
                self.in_seek = True
                try:
                    evs = st.events()
                    now_active = {a.name for a in st.alerts}
                    settle = [replace(a, cleared_at=st.at, message=f"not active at {st.at:%H:%M:%S} (replay)")
                              for name, a in self._active.items() if name not in now_active]
                    for ev in evs[:-1] + settle + evs[-1:]:
                        self._note(ev)
                        yield rebase(ev, shift)
                finally:
                    self.in_seek = False
                continue
            if self._paused:
                await self._wait(None)
                continue
            nxt = self._i + 1
            if nxt >= len(rec):
                rec.refresh()  # a file still being recorded may have grown
                if nxt >= len(rec):
                    self.at_end = True
                    if self.stop_at_end:
                        return
                    await self._wait(self.END_POLL_S)
                    continue
            self.at_end = False
            gap = max(0.0, min(self.max_gap_s, rec.ats[nxt] - rec.ats[self._i])) / self.speed
            if gap > 0 and await self._wait(gap):
                continue  # an input came: decide again (a seek, a pause; after resume the gap again)
            self._i = nxt
            self.at_end = nxt >= len(rec) - 1
            r = rec.round(nxt)
            mono = rec.mono(nxt)
            shift = self._shift(mono)
            for ev in r.events:
                self._note(ev)
                yield rebase(ev, shift)
            if r.partial:
                yield rebase(E.RoundEnded(mono or 0.0, ()), shift)

    def _note(self, ev) -> None:
        if isinstance(ev, E.AlertChanged):
            if ev.cleared_at is None:
                self._active[ev.name] = ev
            else:
                self._active.pop(ev.name, None)

    async def _wait(self, seconds: float | None) -> bool:
        """Until ``seconds`` have passed (None: forever) or an input came; True when one came."""
        if seconds is None:
            await self._wake.wait()
            return True
        return await sleep_or_wake(self._wake, seconds, self._sleep_fn)


# -- the command -----------------------------------------------------------------------------------

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?$")


def parse_time(text: str, day: date) -> datetime:
    """``--from``/``--to``: an ISO datetime (no offset: UTC) or HH:MM[:SS] on ``day`` (UTC).
    ValueError with the reason."""
    s = str(text).strip()
    m = _HHMM.match(s)
    if m:
        h, mi, sec = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        frac = m.group(4)
        try:
            t = dtime(h, mi, sec, int((frac or "0").ljust(6, "0")[:6]))
        except ValueError:
            raise ValueError(f"{text!r} is not a time of day") from None
        return datetime.combine(day, t, timezone.utc)
    try:
        d = datetime.fromisoformat(s.replace("z", "Z").replace("Z", "+00:00") if s.endswith(("Z", "z")) else s)
    except ValueError:
        raise ValueError(f"{text!r} is not a time (an ISO datetime like 2026-12-02T14:03:00Z, or HH:MM[:SS])") from None
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def run_replay_command(args) -> int:
    """``replay FILE --format json|text [--from TIME] [--to TIME]``: one line per round (json), or
    the snapshot text of each round. Exit 0; a bad file or time: UsageError (one line, exit 2)."""
    from tui.config import UsageError

    try:
        rec = Recording(args.file)
    except RecordingError as e:
        raise UsageError(str(e)) from None
    with rec:
        if not len(rec):
            raise UsageError(f"{rec.path}: no rounds recorded")
        day = rec.span()[0].date()
        bounds = []
        for flag, raw in (("--from", getattr(args, "from_", None)), ("--to", getattr(args, "to", None))):
            try:
                bounds.append(parse_time(raw, day) if raw else None)
            except ValueError as e:
                raise UsageError(f"{flag}: {e}") from None
        lo, hi = bounds
        if lo is not None and hi is not None and hi < lo:
            raise UsageError(f"--to {args.to} is before --from {args.from_}")
        start = 0 if lo is None else bisect.bisect_left(rec.ats, _utc(lo))
        stop = len(rec) if hi is None else bisect.bisect_right(rec.ats, _utc(hi))
        out = sys.stdout
        try:
            for i in range(start, stop):
                st = rec.state(i)
                if args.format == "json":
                    out.write(json.dumps(st.to_dict(rec.target), ensure_ascii=False, separators=(",", ":")) + "\n")
                else:
                    from tui.model.snapshot_text import render_text

                    alerts = "; ".join(f"{a.name}: {a.message}" for a in st.alerts) or "none"
                    out.write(f"== recorded {st.at.isoformat(timespec='seconds')}  alerts: {alerts}\n")
                    out.write(render_text(st.snapshot(rec.target)))
                    out.write("\n")
        except RecordingError as e:
            raise UsageError(str(e)) from None
        except BrokenPipeError:
            return 0
        out.flush()
    return 0


__all__ = ["Recording", "Replayer", "Round", "State", "rebase", "parse_time", "run_replay_command"]


def run_replay_tui(path, args) -> int:
    """``replay FILE``: the same TUI on a recording. Every pane shows what was live then, the graphs
    cover the recording, the header says REPLAY and the recorded time; nothing connects to a server
    and nothing writes (read-only; the checklist is not run)."""
    from dataclasses import replace

    from tui.config import Config, make_config, resolve_target

    try:
        cfg = make_config(args, target=resolve_target("postgresql://replay@localhost/replay", env={}))
    except Exception:
        cfg = Config(target=resolve_target("postgresql://replay@localhost/replay", env={}))
    cfg = replace(cfg, read_only=True, record=False)
    rec = Recording(path)
    replayer = Replayer(rec, speed=float(getattr(args, "speed", None) or 1.0))
    from tui.screens.app import PreflightApp

    app = PreflightApp(cfg, source=replayer, poll=True)
    app.target_display = f"{rec.target or rec.path.name} (recorded)"
    try:
        app.run()
    finally:
        rec.close()
    return 0
