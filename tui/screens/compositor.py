"""A compositor that paints a partial update from the widgets it touches.

Textual's compositor paints a partial update by asking every widget that crosses the bounding box
of all the dirty regions for all of its lines. A poll round dirties the header (the whole width of
the top two rows) and a few table rows lower down, so that box was the whole width of the top of
the screen, and each frame re-rendered some thirty widgets (tabs, the checklist side, every
container) whole: about 0.15 ms a widget, most of a frame's cost. Only what lies in a dirty
region reaches the terminal, so this one asks only the widgets that cross a dirty region, and
only for the rows of the box. Full updates (a resize, a new screen) are Textual's own.

``PreflightScreen`` is the app's default screen with it; tests/ui/test_compositor.py holds its
output to Textual's for the same updates.
"""
from __future__ import annotations

from textual._compositor import Compositor
from textual.geometry import Region
from textual.screen import Screen


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
        top, height = crop.y, crop.height
        for widget, (region, clip) in self.visible_widgets.items():
            visible = region.intersection(clip)
            if not any(visible.overlaps(r) for r in regions):
                continue  # nothing of it reaches the terminal in this update
            rows = visible.intersection(Region(visible.x, top, visible.width, height))
            if not rows.area:
                continue
            # the clip handed on is ``rows``: the compositor places the strips at region ∩ clip
            yield region, rows, widget.render_lines(
                Region(rows.x - region.x, rows.y - region.y, rows.width, rows.height))


class PreflightScreen(Screen):
    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self._compositor = DirtyOnlyCompositor()
