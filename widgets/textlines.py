"""A Static for a few one-line texts that change every poll (the header, the connections summary).

Static.update re-renders all of its content through Textual's Content pipeline (visualize, wrap,
format) and repaints the whole widget: the header and the summary did that every second for a
few changed characters. TextLines keeps its text as lines of Rich Text, draws each line straight
to segments (cut with an ellipsis at the widget's width, as ``text-overflow: ellipsis`` does),
caches each drawn line, and repaints only the lines whose text changed.

It uses public API only (render_lines/render_line, Strip, Segment), but draws its lines itself:
PGPREFLIGHT_STOCK_TEXTUAL=1 makes ``TextLines`` a plain Static (StockTextLines) with the same
calls; tests/ui/test_textlines.py holds FastTextLines to Static's output either way."""
from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import Static

from widgets._fence import STOCK_TEXTUAL

_JOIN = Text("\n")


def _line_sig(line: Text) -> tuple:
    return (line.plain, str(line.style), tuple((s.start, s.end, str(s.style)) for s in line.spans))


class TextLines(Static):
    def __init__(self, content: str | Text = "", **kw) -> None:
        super().__init__("", **kw)
        self._text = Text()
        self._lines: list[Text] = []
        self._sigs: list[tuple] = []
        self._line_strips: dict[tuple, Strip] = {}
        self.update(content)

    @property
    def text(self) -> Text:
        return self._text

    def render(self) -> Text:  # what the widget shows, for whoever asks (tests, screenshots of text)
        return self._text

    def update(self, content: str | Text = "", *, layout: bool = False) -> None:
        """Show ``content`` (a str is plain text, never markup): repaint the lines that changed."""
        text = content if isinstance(content, Text) else Text(str(content))
        lines = list(text.split("\n", allow_blank=True)) if text.plain else [Text()]
        sigs = [_line_sig(line) for line in lines]
        old = self._sigs
        self._text, self._lines, self._sigs = text, lines, sigs
        if not self.is_mounted:
            return
        if layout or len(sigs) != len(old):
            self._line_strips.clear()
            self.refresh(layout=layout)
            return
        top, width = self.styles.padding.top, self.size.width
        for y, (a, b) in enumerate(zip(old, sigs)):
            if a != b:
                self.refresh(Region(0, top + y, width, 1))

    _frame: tuple[int, Style] | None = None

    def render_lines(self, crop):
        # the width and the style once a frame, not once a line (each walks the ancestors)
        self._frame = (self.content_region.width, self.rich_style)
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def render_line(self, y: int) -> Strip:
        width, base = self._frame or (self.content_region.width, self.rich_style)
        if not (0 <= y < len(self._lines)) or width <= 0:
            return Strip.blank(max(0, width), base)
        key = (y, self._sigs[y], width, base)
        strip = self._line_strips.get(key)
        if strip is None:
            line = self._lines[y].copy()
            if cell_len(line.plain) > width:
                line.truncate(width, overflow="ellipsis")
            segments = Segment.apply_style(_JOIN.join([line]).render(self.app.console), base)
            strip = Strip([s for s in segments if s.text])
            if len(self._line_strips) > 64:
                self._line_strips.clear()
            self._line_strips[key] = strip
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._line_strips.clear()



class StockTextLines(Static):
    """PGPREFLIGHT_STOCK_TEXTUAL=1: a Static that keeps TextLines' calls (``text``, ``update``);
    every update goes through Static.update (Textual's Content pipeline, a whole repaint)."""

    DEFAULT_CSS = """
    StockTextLines { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, content: str | Text = "", **kw) -> None:
        super().__init__("", **kw)
        self._text = Text()
        self.update(content)

    @property
    def text(self) -> Text:
        return self._text

    def update(self, content: str | Text = "", *, layout: bool = False) -> None:
        self._text = content if isinstance(content, Text) else Text(str(content))
        super().update(self._text, layout=layout)


FastTextLines = TextLines  # the rewrite itself, whatever the switch says (the differential tests)
if STOCK_TEXTUAL:
    TextLines = StockTextLines  # noqa: F811  what the header and the summaries build on
