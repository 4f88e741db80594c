"""ChecklistPane stand-alone in a tiny App, against the real images-mvp demo database:
it verifies in a worker, on `v`, and a tick on a manual item turns it (and its criterion) to pass."""
from __future__ import annotations

import asyncio
import time

import pytest
from textual.app import App, ComposeResult

from tui.config import Config, resolve_target
from tui.screens.checklist_pane import ChecklistChecked, ChecklistPane
from widgets.checklist_tree import ChecklistTree

pytestmark = [pytest.mark.ui, pytest.mark.pg]


class StandaloneApp(App):
    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.checked: list = []

    def compose(self) -> ComposeResult:
        yield ChecklistPane(self.config)

    def on_mount(self) -> None:
        self.query_one(ChecklistTree).focus()

    def on_checklist_checked(self, event: ChecklistChecked) -> None:
        self.checked.append(event.view)


async def wait_for(pilot, cond, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


@pytest.fixture
def pane_config(demo_dsn, demo_app_dir, state_dir, pg_env):
    return Config(target=resolve_target(demo_dsn), state_dir=state_dir, checklist="images-mvp",
                  app_root=demo_app_dir, checklist_refresh=60.0)


async def test_pane_verifies_in_a_worker_and_on_v(pane_config):
    app = StandaloneApp(pane_config)
    async with app.run_test(size=(120, 50)) as pilot:
        pane = app.query_one(ChecklistPane)
        await wait_for(pilot, lambda: pane.runs >= 1, what="the first run")
        assert pane.last_error is None
        view = pane.view
        assert view.item("pool.max").status == "fail"
        assert view.item("indexes.extraction_analytics").status == "fail"
        assert view.item("integrity.balance_check").status == "fail"
        assert view.item("migrations.tables").status == "pass"
        assert view.item("integrity.foreign_keys").status == "pass"
        await wait_for(pilot, lambda: app.checked, what="ChecklistChecked")
        assert app.checked[-1].passed == view.passed
        await pilot.press("v")
        await wait_for(pilot, lambda: pane.runs >= 2, what="the run after v")
        await wait_for(pilot, lambda: len(app.checked) >= 2, what="ChecklistChecked after v")
        assert pane.service.last_run.reused == ()  # v: every probe again
        # the periodic re-verify reuses what reads only the catalogs and settings (none changed)
        pane.refresh_results()
        await wait_for(pilot, lambda: pane.runs >= 3 and not pane.running, what="the periodic re-verify")
        reused = set(pane.service.last_run.reused)
        assert {"indexes.extraction_analytics", "integrity.balance_check", "performance.slow_query_log"} <= reused
        assert "pool.max" not in reused and "pool.max" in pane.service.last_run.probed  # files: always
        assert pane.view.item("indexes.extraction_analytics").status == "fail"


async def test_tick_on_a_real_manual_item_passes_it_and_its_criterion(pane_config):
    app = StandaloneApp(pane_config)
    async with app.run_test(size=(120, 50)) as pilot:
        pane = app.query_one(ChecklistPane)
        tree = app.query_one(ChecklistTree)
        await wait_for(pilot, lambda: pane.runs >= 1, what="the first run")
        assert pane.view.item("pool.errors").status == "manual"  # the test cluster logs to stderr
        assert pane.view.item("success.no_pool_errors").status == "manual"
        tree.select_item("pool.errors")
        await wait_for(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data == "pool.errors")
        await pilot.press("space")
        await wait_for(pilot, lambda: pane.runs >= 2 and not pane.running, what="the re-verify after the tick")
        assert pane.view.item("pool.errors").status == "pass"
        assert pane.view.item("pool.errors").detail.startswith("ticked by ")
        assert pane.view.item("success.no_pool_errors").status == "pass"
        # the other results were kept, not forgotten by the partial run
        assert pane.view.item("pool.max").status == "fail"


async def test_pane_shows_a_lost_target_in_one_line(state_dir, pg_env, cluster):
    cfg = Config(target=resolve_target(cluster.dsn("no_such_database")), state_dir=state_dir,
                 checklist="general", connect_timeout=2.0)
    app = StandaloneApp(cfg)
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ChecklistPane)
        await wait_for(pilot, lambda: pane.runs >= 1)
        assert pane.last_error == "cannot verify: database does not exist"
        assert "\n" not in pane.last_error
