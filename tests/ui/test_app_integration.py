"""The whole monitor on canned data: the checklist beside or instead of the panes, `?` help,
and the command palette reaching the actions and the checklist's fixes."""
from __future__ import annotations

import time

import pytest
from textual.command import CommandPalette
from textual.widgets import TabbedContent

from tui.checklist.state import ChecklistState
from tui.config import Config
from tui.screens.app import PreflightApp
from widgets.checklist_tree import ChecklistTree

from test_checklist_tree import IDENTITY, canned_results, make_config as checklist_config
from test_panes import canned

pytestmark = pytest.mark.ui


def make_app(tmp_path, read_only=False) -> PreflightApp:
    base = checklist_config(tmp_path, read_only)
    cfg = Config(target=base.target, read_only=read_only, state_dir=tmp_path, checklist="images-mvp",
                 app_root=tmp_path, connect_timeout=1.0)
    return PreflightApp(cfg, snapshot=canned(), canned_checklist=(canned_results(), ChecklistState(IDENTITY)))


async def until(pilot, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def test_key_5_shows_checklist_and_1_goes_back(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        checklist = app.query_one("#checklist")
        assert not checklist.display or checklist.region.width == 0
        await pilot.press("5")
        await until(pilot, lambda: app.screen.has_class("-checklist"))
        await until(pilot, lambda: isinstance(app.focused, ChecklistTree))
        assert app.query_one("#checklist").region.width == 80
        assert not app.query_one(TabbedContent).display
        await pilot.press("1")
        await until(pilot, lambda: not app.screen.has_class("-checklist"))
        assert app.query_one(TabbedContent).active == "tab-connections"
        assert app.query_one(TabbedContent).display


async def test_wide_terminal_shows_both(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(200, 60)) as pilot:
        await until(pilot, lambda: app.screen.has_class("-wide"))
        panes, checklist = app.query_one(TabbedContent), app.query_one("#checklist")
        await until(pilot, lambda: checklist.region.width > 0)
        assert panes.region.width > 0 and panes.region.right <= checklist.region.x


async def test_question_mark_opens_help_listing_bindings(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        from widgets.help import HelpScreen

        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Pause / resume polling" in app.screen.text().plain
        await pilot.press("question_mark")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def _palette_titles(app, pilot, query: str) -> list[str]:
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette))
    await pilot.press(*query)
    await pilot.pause(0.5)
    from textual.command import CommandList
    options = app.screen.query_one(CommandList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def test_palette_reaches_actions_and_fixes(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        titles = await _palette_titles(app, pilot, "app: show the checklist")
        assert any("app: show the checklist" in t for t in titles), titles
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.has_class("-checklist"))
        titles = await _palette_titles(app, pilot, "fix: create missing indexes")
        assert any("extraction_analytics" in t for t in titles), titles
        await pilot.press("escape")


async def test_read_only_f_runs_nothing(tmp_path):
    app = make_app(tmp_path, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.focused, ChecklistTree))
        app.query_one(ChecklistTree).select_item("indexes.extraction_analytics")
        await pilot.press("f")
        await pilot.pause(0.3)
        assert type(app.screen).__name__ != "FixPlanScreen"
        assert app.fixes is not None and not app.fixes.running
        assert not (tmp_path / "audit.jsonl").exists() or "create_index" not in (tmp_path / "audit.jsonl").read_text()
