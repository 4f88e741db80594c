"""Alerts in the TUI against a real server: a breached threshold raises an alert once (header,
toast, the list on a), and it clears when the figure is back."""
from __future__ import annotations

import asyncio

import asyncpg
import pytest

from pg_helpers import until
from tui.alerts import Thresholds
from tui.config import Config, resolve_target
from tui.screens.app import PreflightApp
from widgets.alerts import AlertsScreen
from widgets.header import ServerHeader

pytestmark = pytest.mark.pg


async def test_a_lock_wait_raises_an_alert_in_the_header_and_the_list_then_clears(cluster, state_dir):
    dsn = cluster.dsn("postgres")
    admin = await asyncpg.connect(dsn)
    await admin.execute("DROP TABLE IF EXISTS alert_t; CREATE TABLE alert_t (id int)")
    holder, waiter = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    thresholds = Thresholds().with_overrides(["lock_wait_s=0.5"])
    app = PreflightApp(Config(target=resolve_target(dsn, env={}), state_dir=state_dir, refresh=0.2),
                       thresholds=thresholds)
    wait = None
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: app.polls["connections"] >= 2, what="sessions polled")
            assert not app.active_alerts
            await holder.execute("BEGIN; LOCK TABLE alert_t IN ACCESS EXCLUSIVE MODE")
            wait = asyncio.ensure_future(waiter.execute("SELECT * FROM alert_t"))
            await until(pilot, lambda: "lock_wait_s" in app.active_alerts, timeout=15, what="the lock-wait alert")
            header = app.query_one(ServerHeader)
            assert "▲ 1 ALERT (lock_wait_s)" in header.render_text().plain
            raised = [a for a in app.alert_log if a.raised]
            assert len(raised) == 1 and "pid" in raised[0].message
            await pilot.pause(1.0)  # more rounds over the threshold: still one alert, not one a round
            assert len([a for a in app.alert_log if a.raised]) == 1
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, AlertsScreen), what="the alerts list")
            text = str(app.screen.query_one("#alerts-text").render())
            assert "lock_wait_s" in text and "since" in text and "0.5 s" in text
            await holder.execute("ROLLBACK")
            await wait
            await until(pilot, lambda: "lock_wait_s" not in app.active_alerts, timeout=15, what="cleared")
            await until(pilot, lambda: "Raised, not cleared (0)" in str(app.screen.query_one("#alerts-text").render()),
                        what="the list redrawn")
            assert app.alert_log[-1].name == "lock_wait_s" and not app.alert_log[-1].raised
            await pilot.press("escape")
            await until(pilot, lambda: "ALERT" not in app.query_one(ServerHeader).render_text().plain,
                        what="the header without the alert")
    finally:
        if wait is not None and not wait.done():
            await holder.execute("ROLLBACK")
            await wait
        for c in (holder, waiter, admin):
            await c.close()


async def test_the_app_records_its_rounds_with_their_alerts_and_fills_the_timeline(cluster, state_dir, tmp_path):
    """The App as a consumer of the monitor: every round into the recorder (an alert kept with the
    round that raised it), and the Timeline's series filled whatever pane is on screen."""
    from tui.model import events as E
    from tui.recorder import Recorder
    from tui.replay import Recording

    dsn = cluster.dsn("postgres")
    path = tmp_path / "app.sqlite"
    rec = Recorder.open(state_dir, "test-app", path=path)
    app = PreflightApp(Config(target=resolve_target(dsn, env={}), state_dir=state_dir, refresh=0.2),
                       thresholds=Thresholds().with_overrides(["connections_pct=0"]), recorder=rec)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: "connections_pct" in app.active_alerts, what="the alert")
            await until(pilot, lambda: app.polls["server"] >= 4, what="four rounds")
            await pilot.press("6")
            await until(pilot, lambda: app.query_one("#body").active == "tab-timeline", what="the Timeline tab")
            assert app.timeline.latest().get("connections", 0) >= 1
            assert len(app.timeline.series("connections", "5m")) >= 4
    finally:
        rec.close()
    with Recording(path) as r:
        rounds = list(r.rounds())
        assert len(rounds) >= 4
        with_alert = [x for x in rounds if any(isinstance(e, E.AlertChanged) for e in x.events)]
        assert with_alert and isinstance(with_alert[0].events[-1], E.RoundEnded)
        assert any(isinstance(e, E.ConnectionsPolled) for x in rounds for e in x.events)
