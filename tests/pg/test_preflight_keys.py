"""Issue 12 §3 as a person does it, in a pilot at 120×36 on the demo (its database, files, backup
directory, crontab file, and its live workload with the idle-in-transaction session that blocks the
CHECK constraint): from the first frame to a signed-off report with every automatic item passing, the
keys are counted (target: at most 15) and the seconds measured (target: at most 120)."""
from __future__ import annotations

import asyncio
import shutil
import time
from argparse import Namespace

import pytest
from pg_helpers import until

pytestmark = [pytest.mark.pg]


@pytest.fixture(scope="module")
def cluster():
    from tui.cluster import start_cluster

    c = start_cluster(collect_logs=True)
    yield c
    c.destroy()


@pytest.fixture
def demo(cluster, tmp_path):
    from tui.demo.data import DEMO_CRONTAB, build_demo_database, write_app_dir
    from tui.demo.run import demo_backup_dir, prepare_demo_state
    from tui.demo.workload import start_in_thread

    dsn = asyncio.run(build_demo_database(cluster.dsn("postgres"), "metaextract_keys", replace=True))
    app_dir = write_app_dir(tmp_path / "app")
    backup, outside = demo_backup_dir(tmp_path)
    state = tmp_path / "state"
    crontab = app_dir / DEMO_CRONTAB
    asyncio.run(prepare_demo_state(dsn, state, app_dir, backup, carry=False, crontab_file=crontab))
    workload = start_in_thread(dsn)
    yield {"dsn": dsn, "app": app_dir, "backup": backup, "state": state, "crontab": crontab, "workload": workload}
    workload.stop_and_join(10)
    if outside:
        shutil.rmtree(backup, ignore_errors=True)


async def test_launch_loop_by_keys_on_the_demo(demo):
    from tui.cli import make_config
    from tui.config import resolve_target
    from tui.screens.app import PreflightApp
    from tui.screens.checklist_pane import ChecklistPane
    from widgets.checklist_tree import ChecklistTree
    from widgets.confirm import ConfirmSignalScreen
    from widgets.preflight import PreflightPanel, PreflightPlanScreen, SignoffScreen

    args = Namespace(dsn=None, read_only=False, state_dir=demo["state"], connect_timeout=None, no_color=False,
                     checklist="images-mvp", app_root=demo["app"], backup_dir=demo["backup"],
                     crontab_file=demo["crontab"], refresh=None)
    cfg = make_config(args, target=resolve_target(demo["dsn"]))
    app = PreflightApp(cfg)
    keys: list[str] = []

    async def press(pilot, key: str) -> None:
        keys.append(key)
        await pilot.press(key)

    async with app.run_test(size=(120, 36)) as pilot:
        pane = app.query_one(ChecklistPane)
        await until(pilot, lambda: app.query_one("ServerHeader").state.status == "connected", 30, "the first frame")
        t0 = time.monotonic()
        await press(pilot, "l")
        await until(pilot, lambda: pane.runs >= 1 and not pane.running, 30, "the checklist verified")
        await press(pilot, "F")
        await until(pilot, lambda: isinstance(app.screen, PreflightPlanScreen), 60, "the combined plan")
        plan = app.screen.combined
        assert {"pool.max", "backups.daily", "integrity.balance_check"} <= {s.item_id for s in plan.steps}
        await press(pilot, "enter")
        blocked_seen = False
        while True:
            panel = await until(pilot, lambda: app.query(PreflightPanel).first() if app.query(PreflightPanel) else None,
                                10, "the panel")
            state = await until(pilot, lambda: ("blocked" if panel.blocked is not None else
                                                "done" if not panel.running else None), 150,
                                "the run to end or wait on a lock holder")
            if state == "done":
                break
            blocked_seen = True
            assert panel.blocked.result.blocker["state"] == "idle in transaction"
            await press(pilot, "t")
            await until(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen), 10, "the confirmation")
            await press(pilot, "t")
            await until(pilot, lambda: isinstance(app.screen, ConfirmSignalScreen) and app.screen.second, 10,
                        "the second confirmation")
            await press(pilot, "t")
        outcomes = {o.step.item_id: o.status for o in app.preflight.last_outcomes}
        assert set(outcomes.values()) == {"ok"}, outcomes
        await press(pilot, "escape")
        tree = app.query_one(ChecklistTree)
        await until(pilot, lambda: app.focused is tree and not pane.running, 30, "the tree focused, verified")
        auto_failing = [i for i in tree.open_items() if tree.checklist_view.item(i).status != "manual"]
        assert not auto_failing, auto_failing
        for _ in range(5):
            if not tree.open_items():
                break
            await press(pilot, "]")
            await pilot.pause()
            target = tree.current_item
            assert target is not None and target.status == "manual", target
            await press(pilot, "space")
            await until(pilot, lambda: not pane.running and pane.view.item(target.id).tick is not None, 30,
                        f"{target.id} ticked and verified")
        assert not tree.open_items()
        await press(pilot, "S")
        await until(pilot, lambda: isinstance(app.screen, SignoffScreen), 10, "the sign-off dialog")
        await press(pilot, "enter")
        await until(pilot, lambda: pane.signoff_line, 60, "the report written")
        elapsed = time.monotonic() - t0
        path = app.preflight.signoff_path
        report = open(path, encoding="utf-8").read()
        assert "Verdict: **READY**" in report and "Signed off by: " in report, report[:800]
        assert "sign-off written to" in pane.signoff_line and "READY" in pane.signoff_line
        print(f"keys {len(keys)}: {' '.join(keys)}; {elapsed:.1f} s; blocker ended: {blocked_seen}")
        assert len(keys) <= 15, keys
        assert elapsed <= 120, elapsed
