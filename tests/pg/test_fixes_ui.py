"""The TUI fix flow against the real server: a tiny App with the real FixController. `f` → the plan modal →
Enter → the index is built while the app's own timer keeps ticking (the monitor keeps refreshing) →
FixFinished; and `c` in the progress panel cancels a build halfway, leaving no INVALID index once the
operator picks "drop"."""
from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from tui.checklist.spec import load_checklist
from tui.config import Config, resolve_target
from tui.screens.fix_flow import FixController, FixFinished
from widgets.fix_plan import FixChoiceScreen, FixPlanScreen
from widgets.fix_progress import FixProgressPanel
from pg_helpers import own_cluster as start_own_cluster

pytestmark = [pytest.mark.pg]

DB = "fixes_ui"


@pytest.fixture(scope="module")
def cluster():
    """This module's own throwaway server (it shadows the shared one)."""
    yield from start_own_cluster()


@pytest.fixture(scope="module")
def ui_dsn(cluster):
    from tui.demo.data import build_demo_database

    dsn = asyncio.run(build_demo_database(cluster.dsn("postgres"), DB, replace=True))

    async def extra():
        c = await asyncpg.connect(dsn)
        try:
            await c.execute("CREATE TABLE other (id int)")
        finally:
            await c.close()
    asyncio.run(extra())
    return dsn


class MiniApp(App):
    BINDINGS = [Binding("f", "fix", "Fix")]

    def __init__(self, config: Config, item_id: str):
        super().__init__()
        self.config, self.item_id = config, item_id
        self.checklist = load_checklist("images-mvp")
        self.fixes = FixController(self, config)
        self.finished: list[FixFinished] = []
        self.ticks = 0

    def compose(self) -> ComposeResult:
        yield Static("monitor", id="monitor")

    def on_mount(self) -> None:
        self.set_interval(0.05, self._tick)  # stands in for the monitor's refresh

    def _tick(self) -> None:
        self.ticks += 1

    def action_fix(self) -> None:
        self.fixes.request_fix(self.item_id, self.checklist)

    def on_fix_finished(self, event: FixFinished) -> None:
        self.finished.append(event)


async def until(pilot, cond, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not await cond() if asyncio.iscoroutinefunction(cond) else not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def test_f_enter_builds_the_indexes_while_the_app_keeps_ticking(ui_dsn, tmp_path):
    cfg = Config(target=resolve_target(ui_dsn, env={}), state_dir=tmp_path)
    app = MiniApp(cfg, "indexes.extraction_analytics")
    async with app.run_test() as pilot:
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan")
        assert "idx_extraction_requested_at" in app.screen.plan.title
        ticks_before = app.ticks
        await pilot.press("enter")
        await until(pilot, lambda: app.finished, "FixFinished")
        assert app.ticks > ticks_before  # the app's timer ran while the fix did
        ev = app.finished[0]
        assert ev.result.ok and ev.result.figures["created"] == 3, ev.result
        panel = app.screen.query_one(FixProgressPanel)
        assert panel.result is ev.result and panel.last is not None
    c = await asyncpg.connect(ui_dsn)
    try:
        n = await c.fetchval("SELECT count(*) FROM pg_indexes WHERE tablename = 'extraction_analytics' "
                             "AND indexname LIKE 'idx_extraction_%'")
        assert n == 3
    finally:
        await c.close()


async def test_c_cancels_a_build_halfway_and_the_drop_is_offered(ui_dsn, tmp_path):
    cfg = Config(target=resolve_target(ui_dsn, env={}), state_dir=tmp_path)
    holder = await asyncpg.connect(ui_dsn)
    await holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    await holder.fetchval("SELECT count(*) FROM other")  # an old snapshot: the build waits for it at the end
    watch = await asyncpg.connect(ui_dsn)
    app = MiniApp(cfg, "indexes.trial_usages")
    try:
        async with app.run_test() as pilot:
            await pilot.press("f")
            await until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan")
            await pilot.press("enter")

            async def waiting():
                return await watch.fetchval("SELECT count(*) FROM pg_stat_progress_create_index "
                                            "WHERE phase LIKE '%old snapshots%'")
            await until(pilot, waiting, "the build waiting for old snapshots")
            panel = app.screen.query_one(FixProgressPanel)
            # the panel polls progress from its own session: wait for it to catch up with the server
            await until(pilot, lambda: "old snapshots" in str(panel.query_one("#fix-progress-phase").render()),
                        "the panel to show the phase")
            assert app.focused is panel
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, FixChoiceScreen), "the drop offer", timeout=15)
            assert await watch.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 1
            await pilot.press("d")
            await until(pilot, lambda: app.finished, "FixFinished")
            assert app.finished[0].result.cancelled
    finally:
        await holder.close()
    try:
        assert await watch.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
        assert await watch.fetchval("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_trial_usages_user'") == 0
    finally:
        await watch.close()


async def test_read_only_app_refuses_and_changes_nothing(ui_dsn, tmp_path):
    cfg = Config(target=resolve_target(ui_dsn, env={}), state_dir=tmp_path, read_only=True)
    app = MiniApp(cfg, "indexes.image_mvp_events")
    async with app.run_test() as pilot:
        await pilot.press("f")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, FixPlanScreen) and not app.fixes.running
        assert any("--read-only" in n.message for n in app._notifications)
    c = await asyncpg.connect(ui_dsn)
    try:
        assert await c.fetchval("SELECT count(*) FROM pg_indexes WHERE tablename = 'image_mvp_events' "
                                "AND indexname LIKE 'idx_%'") == 0
    finally:
        await c.close()


async def test_quitting_mid_backup_leaves_no_scratch_database(cluster, ui_dsn, tmp_path):
    from tui.fixes.backup import SCRATCH_PREFIX

    cfg = Config(target=resolve_target(ui_dsn, env={}), state_dir=tmp_path, backup_dir=tmp_path / "b")
    watch = await asyncpg.connect(cluster.dsn("postgres"))

    async def scratch():
        return await watch.fetchval("SELECT count(*) FROM pg_database WHERE datname LIKE $1", SCRATCH_PREFIX + "%")
    app = MiniApp(cfg, "backups.restore_tested")
    try:
        async with app.run_test() as pilot:
            await pilot.press("f")
            await until(pilot, lambda: isinstance(app.screen, FixPlanScreen), "the plan")
            await pilot.press("enter")
            await until(pilot, scratch, "the scratch database")
            assert await app.fixes.shutdown(timeout=30)  # what the app's quit action calls first
            assert app.fixes.last_result.cancelled
            await app.action_quit()
        assert await scratch() == 0
    finally:
        await watch.close()
