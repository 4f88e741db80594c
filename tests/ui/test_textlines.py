"""TextLines (widgets/textlines.py): the header's and the summary's lines drawn straight from Rich
Text, each repainted only when its own text changed, looking as a Static with text-overflow:
ellipsis looks."""
from __future__ import annotations

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import Static

from widgets.textlines import FastTextLines as TextLines  # the rewrite, also under the stock switch

pytestmark = pytest.mark.ui

CSS = "#a, #b { height: 3; padding: 0 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis; }"


def sample(n: int) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append("PG 15.18", style="bold")
    t.append(f"  up {n}s  ")
    t.append("● connected", style="bold green")
    t.append(" dim", style="dim")
    t.append("\nsecond line that is far too long for the widget " + "x" * 60, style="red")
    t.append("\nthird", style="reverse")
    return t


class Two(App):
    CSS = CSS

    def compose(self) -> ComposeResult:
        yield TextLines(id="a")
        yield Static(id="b")


def segments(widget, y):
    """Each segment as the terminal gets it ("green" and "color(2)" are one colour)."""
    from rich.color import ColorSystem
    return [(s.text, s.style.render("x", color_system=ColorSystem.TRUECOLOR) if s.style else "x")
            for s in widget.render_line(y)]


async def test_lines_look_as_a_static_and_repaint_only_what_changed():
    app = Two()
    async with app.run_test(size=(50, 8)) as pilot:
        a, b = app.query_one("#a", TextLines), app.query_one("#b", Static)
        a.update(sample(5))
        b.update(sample(5))
        await pilot.pause()
        for y in range(3):
            assert segments(a, y) == segments(b, y), y
        assert segments(a, 1)[-1][0].endswith("…")
        assert str(a.render()) == sample(5).plain
        a._repaint_regions.clear()
        a.update(sample(6))  # only the first line's text changed
        assert [(r.y, r.height) for r in a._repaint_regions] == [(0, 1)]
        b.update(sample(6))
        await pilot.pause()
        assert segments(a, 0) == segments(b, 0) and "up 6s" in segments(a, 0)[1][0]
        a._repaint_regions.clear()
        a.update(sample(6))  # the same text: nothing to repaint
        assert not a._repaint_regions
