"""tui.model.series.Timeline on synthetic ServerInfo sequences with fake wall times: the three windows,
the buckets' statistics, gaps (disconnected, paused, silent), stats resets, the peaks, bounded memory."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tui.model.events import ConnectionChanged, ServerPolled
from tui.model.series import SERIES, Timeline
from tui.model.snapshot import ConnectionState, ServerInfo

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=timezone.utc)  # 09:00:00, on a 10 s and a 4 min boundary


def info(i: int = 0, *, connections: int = 10, active: int = 3, iix: int = 0, commits_per_s: float | None = 5.0,
         mean_ms: float | None = 1.0, calls_per_s: float | None = 20.0, lock_waiting: int = 0,
         oldest_xact_s: float | None = None, by_state: bool = True, **kw) -> ServerInfo:
    states = (("active", active), ("idle", connections - active - iix), ("idle in transaction", iix),
              ("idle in transaction (aborted)", 0), ("other", 0)) if by_state else ()
    fields = dict(
        version="15.4", version_num=150004, started_at=T0, now=T0, database="db", connections=connections,
        max_connections=100, reserved_connections=3, xacts=i, blks_hit=0, blks_read=0, in_recovery=False,
        polled_at=float(i), database_bytes=1000 + i, database_growth_bps=0.5, tps=commits_per_s,
        cache_hit_ratio=0.99, commits_per_s=commits_per_s, rollbacks_per_s=0.0, by_state=states,
        lock_waiting=lock_waiting, oldest_xact_s=oldest_xact_s, mean_ms=mean_ms, calls_per_s=calls_per_s)
    fields.update(kw)
    return ServerInfo(**fields)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def feed(tl: Timeline, start: float, stop: float, step: float = 2.0, **kw) -> None:
    s = start
    while s < stop:
        tl.take(ServerPolled(info(int(s), **kw)), at=at(s))
        s += step


def values(points):
    return [v for _t, v in points]


def test_raw_window_keeps_the_last_five_minutes():
    tl = Timeline(refresh_s=2.0)
    feed(tl, 0, 600)  # 10 minutes
    pts = tl.series("connections", "5m")
    assert pts[-1][0] == at(598).timestamp()
    assert pts[0][0] >= at(598 - 300).timestamp()
    assert len(pts) == 151 and set(values(pts)) == {10.0}
    assert tl.span("5m") == (at(298).timestamp(), at(598).timestamp())
    assert tl.last_at == at(598)


def test_buckets_give_min_mean_max():
    tl = Timeline(refresh_s=2.0)
    for k, c in enumerate([10, 20, 30, 40, 50]):  # 09:00:00-09:00:08: the first 10 s bucket
        tl.take(ServerPolled(info(connections=c, mean_ms=float(c))), at=at(2 * k))
    tl.take(ServerPolled(info(connections=7, mean_ms=1.0)), at=at(10))  # the next bucket
    assert tl.series("connections", "1h", "max") == [(at(0).timestamp(), 50.0), (at(10).timestamp(), 7.0)]
    assert values(tl.series("connections", "1h", "min")) == [10.0, 7.0]
    assert values(tl.series("mean_ms", "1h", "mean")) == [30.0, 1.0]
    # the defaults: the worst case where peaks matter, the mean elsewhere
    assert values(tl.series("connections", "1h")) == [50.0, 7.0]
    assert values(tl.series("commits_per_s", "1h")) == [5.0, 5.0]
    assert values(tl.series("connections", "24h")) == [50.0]  # one 4 min bucket


def test_states_lock_waits_and_the_oldest_transaction():
    tl = Timeline()
    tl.take(ServerPolled(info(connections=12, active=4, iix=2, lock_waiting=1, oldest_xact_s=75.0)), at=at(0))
    last = tl.latest()
    assert (last["active"], last["idle"], last["idle_in_xact"], last["other_state"]) == (4.0, 6.0, 2.0, 0.0)
    assert last["lock_waiting"] == 1.0 and last["oldest_xact_s"] == 75.0
    assert last["usable_connections"] == 97.0 and set(last) == set(SERIES)
    # no transaction open: the oldest is 0 s old, a figure (not a gap); unpolled (no states): no figure
    tl.take(ServerPolled(info(oldest_xact_s=None)), at=at(2))
    assert tl.latest()["oldest_xact_s"] == 0.0
    tl.take(ServerPolled(info(oldest_xact_s=None, by_state=False)), at=at(4))
    assert tl.latest()["oldest_xact_s"] is None and tl.latest()["active"] is None


def test_a_disconnection_is_a_gap_not_a_line():
    tl = Timeline(refresh_s=2.0)
    feed(tl, 0, 20)
    assert tl.take(ConnectionChanged(ConnectionState("disconnected", "refused", 1.0)), at=at(20))
    assert not tl.take(ConnectionChanged(ConnectionState("connecting")), at=at(21))  # one gap is enough
    assert not tl.take(ConnectionChanged(ConnectionState("connected")), at=at(22))
    feed(tl, 22, 30)
    vals = values(tl.series("connections", "5m"))
    assert vals[:10] == [10.0] * 10 and vals[10] is None and vals[11:] == [10.0] * 4


def test_a_silence_longer_than_the_refresh_is_a_gap():
    """Paused (the monitor yields nothing): the points before and after are not joined."""
    tl = Timeline(refresh_s=2.0)
    feed(tl, 0, 10)
    feed(tl, 60, 70)  # 50 s later
    vals = values(tl.series("connections", "5m"))
    assert vals == [10.0] * 5 + [None] + [10.0] * 5
    # in the 1 h window the empty 10 s buckets are the gap
    b = tl.series("connections", "1h")
    assert [t for t, v in b if v is None] == [at(s).timestamp() for s in (10, 20, 30, 40, 50)]
    # a pause the app says: gap()
    assert tl.gap(at(71)) and not tl.gap(at(72))
    feed(tl, 72, 74)
    assert values(tl.series("connections", "5m"))[-2:] == [None, 10.0]


def test_a_stats_reset_is_no_figure_not_a_dip():
    """The poller gives None for an interval whose counters went back (pg_stat_reset,
    pg_stat_statements_reset); an older recording could hold a negative rate: no figure either."""
    tl = Timeline()
    tl.take(ServerPolled(info(commits_per_s=5.0, mean_ms=2.0, calls_per_s=10.0)), at=at(0))
    tl.take(ServerPolled(info(commits_per_s=None, mean_ms=None, calls_per_s=None)), at=at(2))  # the reset
    tl.take(ServerPolled(info(commits_per_s=-400.0, mean_ms=-3.0, calls_per_s=-50.0)), at=at(4))
    tl.take(ServerPolled(info(commits_per_s=6.0, mean_ms=1.0, calls_per_s=12.0)), at=at(6))
    assert values(tl.series("commits_per_s", "5m")) == [5.0, None, None, 6.0]
    assert values(tl.series("mean_ms", "5m")) == [2.0, None, None, 1.0]
    assert values(tl.series("commits_per_s", "1h")) == [5.5]  # the bucket's mean of its figures
    assert tl.series("connections", "5m")[1][1] == 10.0  # the other series go on
    assert tl.peaks()["mean_ms"].value == 2.0


def test_growth_may_be_negative():
    tl = Timeline()
    tl.take(ServerPolled(info(database_growth_bps=-100.0)), at=at(0))
    assert tl.latest()["database_growth_bps"] == -100.0


def test_peaks_with_their_times():
    tl = Timeline()
    feed(tl, 0, 100)
    tl.take(ServerPolled(info(connections=80, mean_ms=9.5, lock_waiting=3, oldest_xact_s=400.0)), at=at(100))
    feed(tl, 102, 200)
    tl.take(ServerPolled(info(connections=80)), at=at(200))  # as high again later: the first time stays
    p = tl.peaks()
    assert (p["connections"].value, p["connections"].at) == (80.0, at(100))
    assert (p["mean_ms"].value, p["mean_ms"].at) == (9.5, at(100))
    assert (p["lock_waiting"].value, p["oldest_xact_s"].value) == (3.0, 400.0)
    assert Timeline().peaks() == {} and Timeline().latest() == {}


def test_latest_and_the_clock_when_no_time_is_given():
    now = [at(0).timestamp()]
    tl = Timeline(clock=lambda: now[0])
    tl.take(ServerPolled(info(connections=5)))
    now[0] += 2
    tl.take(ServerPolled(info(connections=6)))
    assert tl.latest()["connections"] == 6.0 and tl.last_at == at(2)
    # a wall clock stepped back: the series stays in order
    now[0] -= 100
    tl.take(ServerPolled(info(connections=7)))
    ts = [t for t, _v in tl.series("connections", "5m")]
    assert ts == sorted(ts) and tl.last_at == at(2)


def test_version_moves_only_on_change():
    tl = Timeline()
    v = tl.version
    assert not tl.take(object()) and tl.version == v
    tl.take(ServerPolled(info()), at=at(0))
    assert tl.version == v + 1


def test_memory_is_bounded_over_days():
    tl = Timeline(refresh_s=2.0)
    feed(tl, 0, 86400, step=10.0)  # a day at one point each 10 s (every bucket filled, as at 2 s)
    day = tl.nbytes()
    assert len(tl.series("connections", "24h")) == 360 and len(tl.series("connections", "1h")) == 360
    feed(tl, 86400, 2 * 86400, step=10.0)
    assert tl.nbytes() <= day * 1.05 and day < 1_000_000
    assert len(tl.series("connections", "24h")) == 360


def test_raw_points_are_capped_whatever_the_refresh():
    tl = Timeline(refresh_s=0.01)
    feed(tl, 0, 60, step=0.01)  # 6,000 points in a minute
    assert len(tl.series("connections", "5m")) == Timeline.RAW_CAP


def test_unknown_names_say_what_is_known():
    tl = Timeline()
    with pytest.raises(KeyError, match="known: connections"):
        tl.series("nope")
    with pytest.raises(KeyError, match="known: 5m, 1h, 24h"):
        tl.series("connections", "2h")
    with pytest.raises(KeyError, match="statistic"):
        tl.series("connections", "1h", "median")
    assert Timeline.WINDOWS == ("5m", "1h", "24h")
