"""Regenerate screenshots/*.svg from the real app on the real demo database.

    .venv/bin/python screenshots/make_screenshots.py

It starts the same throwaway cluster as `pgpreflight demo`, builds the images-mvp
database, runs the workload, opens the monitor headless at 80x24 and 160x48, waits
until every tab shows live data, and saves one SVG per tab and size.
"""
from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tui.cluster import start_cluster  # noqa: E402
from tui.config import Config, resolve_target  # noqa: E402
from tui.demo.data import build_demo_database, write_app_dir  # noqa: E402
from tui.demo.workload import start_in_thread  # noqa: E402

OUT = ROOT / "screenshots"
SIZES = [(80, 24), (160, 48)]


async def _wait(pilot, predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not show live data in time")
        await pilot.pause(0.2)


async def shoot(cfg: Config) -> list[Path]:
    from textual.widgets import TabbedContent

    from tui.screens.app import PreflightApp
    from tui.screens.checklist_pane import ChecklistPane
    from widgets.header import ServerHeader

    written = []

    def save(app, name):
        app.save_screenshot(filename=name, path=str(OUT))
        written.append(OUT / name)

    def checked(app):
        return app.query_one(ChecklistPane).checked_at is not None

    for w, h in SIZES:
        app = PreflightApp(cfg)
        async with app.run_test(size=(w, h)) as pilot:
            await _wait(pilot, lambda: app.query_one(ServerHeader).info is not None
                        and app.query_one(ServerHeader).info.tps is not None)
            tabs = app.query_one(TabbedContent)
            pane_ids = [p.id for p in tabs.query("TabPane")]
            for pane_id in pane_ids:
                tabs.active = pane_id
                await _wait(pilot, lambda: app.pane_ready(pane_id))
                await pilot.pause(0.5)
                save(app, f"{pane_id.removeprefix('tab-')}-{w}x{h}.svg")
            # the launch checklist (key 5), then the plan of a fix (f on an index item)
            await pilot.press("5")
            await _wait(pilot, lambda: checked(app))
            await pilot.pause(0.5)
            save(app, f"checklist-{w}x{h}.svg")
            if (w, h) == (80, 24):
                from widgets.checklist_tree import ChecklistTree

                app.query_one(ChecklistTree).select_item("indexes.extraction_analytics")
                await pilot.pause(0.2)
                await pilot.press("f")
                await _wait(pilot, lambda: type(app.screen).__name__ == "FixPlanScreen")
                await pilot.pause(0.5)
                save(app, f"fix-plan-{w}x{h}.svg")
                await pilot.press("escape")
                # the combined plan of every failing item (F), then the help of the checklist (?)
                await _wait(pilot, lambda: type(app.screen).__name__ != "FixPlanScreen")
                await pilot.pause(0.5)
                await pilot.press("F")
                await _wait(pilot, lambda: type(app.screen).__name__ == "PreflightPlanScreen")
                await pilot.pause(0.5)
                save(app, f"preflight-plan-{w}x{h}.svg")
                await pilot.press("escape")
                await _wait(pilot, lambda: type(app.screen).__name__ != "PreflightPlanScreen")
                await pilot.pause(0.3)
                await pilot.press("question_mark")
                await _wait(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
                await pilot.pause(0.5)
                save(app, f"help-{w}x{h}.svg")
                await pilot.press("escape")
            if (w, h) == (80, 24):
                # the session detail (Enter on the idle-in-transaction session)
                tabs.active = "tab-connections"
                await _wait(pilot, lambda: app.pane_ready("tab-connections"))
                await pilot.pause(0.5)
                app.query_one("#sessions").focus()
                await pilot.press("enter")
                await _wait(pilot, lambda: type(app.screen).__name__ == "SessionDetailScreen")
                await pilot.pause(1.0)
                save(app, f"session-detail-{w}x{h}.svg")
                await pilot.press("escape")
    # 200x60: the checklist beside the live panes
    app = PreflightApp(cfg)
    async with app.run_test(size=(200, 60)) as pilot:
        await _wait(pilot, lambda: app.pane_ready("tab-connections") and checked(app))
        await pilot.pause(1.0)
        save(app, "monitor-200x60.svg")
    return written


def main() -> int:
    cluster = start_cluster(collect_logs=True)
    workload = None
    try:
        dsn = asyncio.run(build_demo_database(cluster.dsn("postgres"), "metaextract"))
        app_dir = write_app_dir(cluster.base / "app")
        workload = start_in_thread(dsn)
        time.sleep(3)  # let the workload produce a few intervals of activity before the first frame
        with tempfile.TemporaryDirectory() as state:
            cfg = Config(target=resolve_target(dsn), state_dir=Path(state), app_root=app_dir,
                         checklist="images-mvp", refresh=1.0)
            for p in asyncio.run(shoot(cfg)):
                print(p.relative_to(ROOT))
        return 0
    finally:
        if workload is not None:
            workload.stop_and_join(5)
        cluster.destroy()


if __name__ == "__main__":
    sys.exit(main())
