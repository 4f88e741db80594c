"""The key bar, rebuilt only when what it shows changes.

Textual's Footer recomposes all of its keys (a dozen widgets, each styled afresh) whenever the
screen says its bindings may have changed: each move of the focus, each screen resume, each
refresh_bindings. At start-up that was five rebuilds in the first second, most of them showing the
same keys. This one compares what it would show with what it shows and rebuilds only on a change.
"""
from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeyFooter(Footer):
    _shown: tuple | None = None

    def _what_it_shows(self) -> tuple:
        bindings = self.screen.active_bindings
        shown = tuple((b.key, b.action, b.description, b.group, enabled, tooltip)
                      for _node, b, enabled, tooltip in bindings.values() if b.show)
        palette = bindings.get(self.app.COMMAND_PALETTE_BINDING) if (
            self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE) else None
        if palette is not None:
            _node, b, enabled, _tooltip = palette
            shown += (("palette", b.key, b.description, enabled, b.tooltip),)
        return shown

    def compose(self):
        self._shown = self._what_it_shows() if self._bindings_ready else None
        yield from super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if not self.is_attached or self._what_it_shows() == self._shown:
            return
        await self.recompose()
