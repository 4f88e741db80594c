"""A compositor that paints a partial update from the widgets it touches.

Textual's compositor paints a partial update by asking every widget that crosses the bounding box
of all the dirty regions for all of its lines. A poll round dirties the header (the whole width of
the top two rows) and a few table rows lower down, so that box was the whole width of the top of
the screen, and each frame re-rendered some thirty widgets (tabs, the checklist side, every
container) whole: about 0.15 ms a widget, most of a frame's cost. Only what lies in a dirty
region reaches the terminal, so this one asks only the widgets that still have something to paint
in a dirty region (not the containers behind the widgets that changed), and only for those rows.
Full updates (a resize, a new screen) are Textual's own.

``PreflightScreen`` is the app's default screen with it; tests/ui/test_compositor.py holds its
output to Textual's for the same updates.
"""
from __future__ import annotations

from textual._compositor import Compositor
from textual.geometry import Region
from textual.screen import Screen

# Every private name of Textual (8.2.8, pinned) this module relies on, one line each
# (tests/unit/test_fence.py). PGPREFLIGHT_STOCK_TEXTUAL=1: the app uses Textual's Screen instead.
TEXTUAL_PRIVATES = {
    "textual._compositor": "Compositor: the class that turns a screen's widgets into terminal updates",
    "_dirty_regions": "Compositor._dirty_regions: the regions a partial update repaints",
    "_get_renders": "Compositor._get_renders(crop): overridden, yields (region, clip, lines) front first",
    "_regions_to_spans": "Compositor._regions_to_spans(regions): (y, x1, x2) spans of the dirty regions",
    "_compositor": "Screen._compositor: the screen's compositor, replaced with ours at construction",
}


class DirtyOnlyCompositor(Compositor):
    enabled = True

    def __init__(self) -> None:
        super().__init__()
        self._update_regions: list[Region] | None = None

    def render_partial_update(self):
        self._update_regions = list(self._dirty_regions) if self.enabled else None
        try:
            return super().render_partial_update()
        finally:
            self._update_regions = None

    def _get_renders(self, crop: Region | None = None):
        regions = self._update_regions
        if crop is None or not regions:
            yield from super()._get_renders(crop)
            return
        # What is left to paint on each dirty line, as (x1, x2) spans. The widgets come front
        # first and the first strip painted at a place wins, so a widget whose part of the dirty
        # spans is already covered by widgets in front of it (a container behind its children)
        # would be rendered for nothing: it is skipped.
        left: dict[int, list[tuple[int, int]]] = {}
        for y, x1, x2 in self._regions_to_spans(regions):
            left.setdefault(y, []).append((x1, x2))
        for widget, (region, clip) in self.visible_widgets.items():
            if not left:
                return
            visible = region.intersection(clip)
            x1, x2, top, bottom = visible.x, visible.right, visible.y, visible.bottom
            rows = [y for y in left if top <= y < bottom and any(a < x2 and b > x1 for a, b in left[y])]
            if not rows:
                continue
            first, last = min(rows), max(rows)
            for y in range(first, last + 1):  # what this widget paints is covered from now on
                spans = left.get(y)
                if spans is not None:
                    spans = [piece for a, b in spans for piece in ((a, min(b, x1)), (max(a, x2), b)) if piece[0] < piece[1]]
                    if spans:
                        left[y] = spans
                    else:
                        del left[y]
            rows_region = Region(x1, first, visible.width, last - first + 1)
            # the clip handed on is ``rows_region``: the compositor places the strips at region ∩ clip
            yield region, rows_region, widget.render_lines(
                Region(x1 - region.x, first - region.y, visible.width, last - first + 1))


class PreflightScreen(Screen):
    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self._compositor = DirtyOnlyCompositor()
