"""The main screen's compositor (tui/screens/compositor.py) paints a partial update from only the
widgets that cross a dirty region. What reaches the terminal must be what Textual's own
compositor sends for the same dirty regions, byte for byte, but for the cursor moves Textual sends
before a strip cropped to nothing (one at the end of a span that a widget beside it starts at):
this compositor does not render the widgets those would belong to."""
from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from textual.geometry import Region

from tests.ui.test_panes import make_app as make_panes_app
from tui.screens.compositor import DirtyOnlyCompositor, PreflightScreen

pytestmark = pytest.mark.ui


def make_app():
    """The monitor on the rewrite's screen, also under PGPREFLIGHT_STOCK_TEXTUAL=1 (which gives the
    app Textual's Screen): the differential test holds the rewrite either way."""
    app = make_panes_app()
    app.get_default_screen = lambda: PreflightScreen(id="_default")
    return app


_IDLE_MOVE = re.compile(r"\x1b\[\d+;\d+H(?=\x1b\[\d+;\d+H|\n|$)")


def terminal_bytes(update, width: int, height: int) -> str:
    """What the update writes, less cursor moves that are followed by nothing drawn."""
    out = io.StringIO()
    Console(file=out, width=width, height=height, force_terminal=True, color_system="truecolor",
            legacy_windows=False).print(update, end="")
    return _IDLE_MOVE.sub("", out.getvalue())


def both(comp: DirtyOnlyCompositor, regions: list[Region], width: int, height: int) -> tuple[str, str, int]:
    """The update for ``regions`` from this compositor, then from Textual's (same widgets, same
    caches), and how many widgets each rendered."""
    counts = []
    outs = []
    for enabled in (True, False):
        comp.enabled = enabled
        seen = []
        orig = comp._get_renders

        def counting(crop=None):
            for item in orig(crop):
                seen.append(item)
                yield item
        comp._get_renders = counting
        try:
            comp._dirty_regions.update(regions)
            update = comp.render_partial_update()
        finally:
            del comp._get_renders
            comp.enabled = True
        assert update is not None
        outs.append(terminal_bytes(update, width, height))
        counts.append(len(seen))
    return outs[0], outs[1], counts


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
async def test_partial_updates_send_what_textuals_compositor_sends(size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        comp = app.screen._compositor
        assert isinstance(comp, DirtyOnlyCompositor)
        width, height = size
        header = app.query_one("#header").region
        table = app.query_one("#sessions").region
        row = Region(table.x, table.y + 2, table.width, 1)
        cases = [
            [header, row],                                         # a poll round: header and one row
            [row],                                                 # one row
            [Region(0, 0, width, height)],                         # everything (as a partial update)
            [Region(3, 5, 7, 2), Region(width - 4, height - 3, 3, 2)],  # odd corners
            [Region(0, 1, width, height - 1), Region(width // 2, 0, 5, 3)],  # all but the top line
        ]
        for regions in cases:
            ours, textuals, (n_ours, n_textuals) = both(comp, regions, width, height)
            assert ours == textuals, regions
            assert n_ours <= n_textuals
        # the poll round's case is the point of it: fewer widgets asked to render
        _, _, (n_ours, n_textuals) = both(comp, [header, row], width, height)
        assert n_ours < n_textuals
