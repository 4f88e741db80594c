"""Thresholds (defaults, files, --threshold) and the AlertBook: raised once, started_at kept, cleared."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tui.alerts import NAMES, AlertBook, Figures, Thresholds, parse_duration
from tui.checklist.spec import parse_checklist
from tui.config import UsageError
from tui.model import events as E
from tui.model.snapshot import ServerInfo

pytestmark = pytest.mark.unit
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def test_defaults_are_the_anchors():
    t = Thresholds()
    assert {n: t[n] for n in NAMES} == {
        "long_query_s": 60, "connections_pct": 80, "cache_hit_pct": 99, "idle_in_transaction_s": 300,
        "lock_wait_s": 10, "xid_age": 1.5e9, "sequence_pct": 90, "disk_pct": 85}
    assert t.breached("connections_pct", 80) and not t.breached("connections_pct", 79.9)
    assert t.breached("cache_hit_pct", 98.9) and not t.breached("cache_hit_pct", 99)
    assert not t.breached("long_query_s", 60) and t.breached("long_query_s", 60.1)


def test_precedence_config_then_checklist_then_flag(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[thresholds]\nlong_query_s = 30\nlock_wait_s = 5\nxid_age = 1000000000\n")
    cl = parse_checklist('name = "x"\n[thresholds]\nlock_wait_s = 2\nidle_in_transaction_s = "2m"\n'
                         '[[section]]\nid = "s"\ntitle = "S"\n', "x.toml")
    assert not [w for w in cl.warnings if "thresholds" in w]
    t = Thresholds.resolve(overrides=["long_query_s=90", "disk_pct=95%"], checklist=cl, config_path=cfg)
    assert (t["long_query_s"], t["lock_wait_s"], t["xid_age"], t["idle_in_transaction_s"], t["disk_pct"]) == \
        (90, 2, 1e9, 120, 95)
    assert t.source("xid_age") == f"config file {cfg}" and t.source("lock_wait_s") == "checklist x.toml"
    assert t.source("long_query_s") == "--threshold" and t.source("sequence_pct") == "default"


@pytest.mark.parametrize("table, says", [
    ({"nope": 1}, "unknown threshold 'nope'"),
    ({"xid_age": True}, "must be a number, not true"),
    ({"disk_pct": "lots"}, "must be a number"),
    ({"lock_wait_s": -1}, "0 or more"),
    ({"sequence_pct": float("nan")}, "finite"),
])
def test_bad_tables(table, says):
    with pytest.raises(UsageError, match=says):
        Thresholds().with_table(table, "config file f")


def test_bad_overrides_and_missing_config(tmp_path):
    with pytest.raises(UsageError, match="expected NAME=VALUE"):
        Thresholds().with_overrides(["disk_pct"])
    with pytest.raises(UsageError, match="unknown threshold 'cache'"):
        Thresholds().with_overrides(["cache=1"])
    assert Thresholds.resolve(config_path=tmp_path / "absent.toml") == Thresholds()
    bad = tmp_path / "bad.toml"
    bad.write_text("[thresholds\n")
    with pytest.raises(UsageError, match="unreadable"):
        Thresholds.resolve(config_path=bad)


def test_parse_duration():
    assert [parse_duration(x) for x in ("90", "60s", "5m", "1h", "1.5h", "250ms")] == [90, 60, 300, 3600, 5400, 0.25]
    for bad in ("", "5x", "-1", "0", "m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_alert_raised_once_kept_then_cleared():
    book = AlertBook(Thresholds().with_overrides(["lock_wait_s=10"]))
    assert book.update({"lock_wait_s": (3.0, "pid 7")}, T0) == []
    raised = book.update({"lock_wait_s": (12.0, "pid 7 (app@db)")}, T0 + timedelta(seconds=2))
    assert len(raised) == 1
    a = raised[0]
    assert (a.name, a.value, a.threshold, a.started_at, a.cleared_at) == ("lock_wait_s", 12.0, 10, T0 + timedelta(seconds=2), None)
    assert a.message == "a session waiting on a lock for 12 s (> 10 s): pid 7 (app@db)"
    assert a.line() == "2024-05-01T12:00:02Z ALERT lock_wait_s: " + a.message
    # it stays, with the time it started, and is not raised again
    assert book.update({"lock_wait_s": (20.0, "")}, T0 + timedelta(seconds=4)) == []
    assert book.update({}, T0 + timedelta(seconds=5)) == []  # not measured this round: nothing changes
    assert book.active["lock_wait_s"].started_at == T0 + timedelta(seconds=2)
    assert book.active["lock_wait_s"].value == 20.0
    cleared = book.update({"lock_wait_s": (0.0, "")}, T0 + timedelta(seconds=64))
    assert len(cleared) == 1 and cleared[0].cleared_at == T0 + timedelta(seconds=64)
    assert cleared[0].started_at == T0 + timedelta(seconds=2) and not book.active
    assert cleared[0].line().startswith("2024-05-01T12:01:04Z CLEARED lock_wait_s: ")
    assert cleared[0].line().endswith("(started 2024-05-01T12:00:02Z, lasted 1 min 2 s)")
    assert book.raised_count == 1
    # a new breach is a new alert
    again = book.update({"lock_wait_s": 11.0}, T0 + timedelta(seconds=70))
    assert len(again) == 1 and again[0].started_at == T0 + timedelta(seconds=70) and book.raised_count == 2


def _info(at, hit, read, conns=5):
    return ServerInfo(version="15", version_num=150000, started_at=T0, now=T0, database="db", connections=conns,
                      max_connections=103, reserved_connections=3, xacts=0, blks_hit=hit, blks_read=read,
                      in_recovery=False, polled_at=at)


def test_figures_cache_hit_needs_enough_blocks_in_the_last_minute():
    f = Figures()
    f.take(E.ServerPolled(_info(0, 900, 100)))
    assert f.threshold_figures()["cache_hit_pct"] is None  # one sample: no window yet
    f.take(E.ServerPolled(_info(2, 910, 100)))
    assert f.threshold_figures()["cache_hit_pct"] is None  # 10 blocks: too few to judge
    f.take(E.ServerPolled(_info(4, 2880, 120)))
    assert f.threshold_figures()["cache_hit_pct"] is None  # 2,000 blocks: a catalog read, still too few
    f.take(E.ServerPolled(_info(6, 22_880, 220)))
    assert f.threshold_figures()["cache_hit_pct"][0] == pytest.approx(100 * 21_980 / 22_100)
    assert f.threshold_figures()["connections_pct"] == (5.0, "5 of 100")
    f.take(E.ServerPolled(_info(8, 10, 1)))  # statistics reset: the window starts again
    assert f.threshold_figures()["cache_hit_pct"] is None
