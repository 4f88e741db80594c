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
    from widgets.header import ServerHeader

    written = []
    for w, h in SIZES:
        app = PreflightApp(cfg)
        async with app.run_test(size=(w, h)) as pilot:
            await _wait(pilot, lambda: app.query_one(ServerHeader).info is not None
                        and app.query_one(ServerHeader).info.tps is not None)
            tabs = app.query_one(TabbedContent)
            pane_ids = [p.id for p in tabs.query("TabPane")]
            for pane_id in pane_ids:
                tabs.active = pane_id
                ready = getattr(app, "pane_ready", None)
                if ready is not None:
                    await _wait(pilot, lambda: ready(pane_id))
                await pilot.pause(0.5)
                name = f"{pane_id.removeprefix('tab-')}-{w}x{h}.svg"
                app.save_screenshot(filename=name, path=str(OUT))
                written.append(OUT / name)
    return written


def main() -> int:
    cluster = start_cluster()
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
