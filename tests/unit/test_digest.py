"""The sign-off's launch timeline (tui.model.digest): peaks with their times, alerts, fixes, a chart."""
from datetime import datetime, timedelta, timezone

import pytest

from tui.model import events as E
from tui.model.digest import CHART_POINTS, TimelineDigest, spark
from tui.model.snapshot import ServerInfo

pytestmark = pytest.mark.unit
T0 = datetime(2026, 12, 2, 14, 0, tzinfo=timezone.utc)


def _info(conns):
    return ServerInfo(version="15", version_num=150000, started_at=T0, now=T0, database="db", connections=conns,
                      max_connections=103, reserved_connections=3, xacts=0, blks_hit=0, blks_read=0,
                      in_recovery=False, polled_at=0.0)


def test_peaks_alerts_fixes_and_a_bounded_chart():
    d = TimelineDigest()
    assert d.markdown() == []
    for n in range(500):
        d.take(E.ServerPolled(_info(10 + (70 if n == 321 else n % 5))), T0 + timedelta(seconds=2 * n))
    start = T0 + timedelta(minutes=3)
    d.take(E.AlertChanged("connections_pct", 80, 80, start, None, "connections at 80.0 % of the usable ones"), start)
    d.take(E.AlertChanged("connections_pct", 20, 80, start, start + timedelta(seconds=30), "back"), start)
    d.take(E.FixRan("indexes.user_email", True, "index built", start), start)
    assert d.connections.value == 80 and d.connections.at == T0 + timedelta(seconds=642)
    assert len(d._conn_chart.points) <= CHART_POINTS
    md = "\n".join(d.markdown())
    assert "## Launch timeline" in md and "| Connections | 80 of 100 usable | 2026-12-02 14:10:42Z |" in md
    assert "Alerts: 1 raised." in md and "connections_pct raised" in md and "connections_pct cleared" in md
    assert "`indexes.user_email`: ok" in md and "█" in md and "max 80" in md


def test_spark_scales_to_the_maximum():
    assert spark([0, 4, 8]) == "▁▅█"
    assert spark([0, 0]) == "▁▁"
