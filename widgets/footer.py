"""The key bar: one line that always fits, redrawn only when what it shows changes.

Textual's Footer lays out one widget per key and lets the row overflow: at 80 columns the
Connections pane showed "c Cancel query K Termina▏^p palette" and never q or ?. This bar is one
line of Rich Text drawn by the widget itself (public API only): the keys of the screen's active
bindings, in the order of ``KEYS`` (binding id → priority, short label), as many as fit whole in
the width. q and ? always show; the palette hint (^p) only if it fits after the last key. The
line is padded to the width, so nothing is cut mid-word and nothing is left after it.

It recomputes what it would show whenever the screen says its bindings may have changed (each
move of the focus, each screen resume, each refresh_bindings) and repaints only on a change (a
measured CPU win over recomposing a dozen key widgets five times in the first second).
Under ``PGPREFLIGHT_STOCK_TEXTUAL=1`` it repaints on every signal, as Textual's Footer does.
"""
from __future__ import annotations

from typing import NamedTuple

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget

from widgets._fence import STOCK_TEXTUAL

ALWAYS = 1  # priorities up to this one always show (q and ?)
DEFAULT_PRIORITY = 60  # a binding with an id that KEYS does not name: after the listed ones

# binding id → (priority, short label). Lower first. 0–1: always; 2–9: a modal's own main keys;
# 10–29: the main keys of the pane in view; 40s: the app's other keys; 50s: the rest.
KEYS: dict[str, tuple[int, str]] = {
    "quit": (0, "Quit"),
    "help": (1, "Help"),
    "modal.quit": (0, "Quit"),
    "modal.help": (1, "Help"),
    # modal screens: the fix plan, the choice, the progress, the combined plan, the sign-off
    "fix_plan.run": (2, "Run"),
    "fix_plan.abort": (3, "Abort"),
    "fix_choice.drop": (2, "Drop"),
    "fix_choice.keep_key": (3, "Keep"),
    "fix_choice.keep": (4, "Leave"),
    "fix_progress.cancel": (2, "Cancel fix"),
    "fix_progress.end_blocker": (3, "End holder"),
    "preflight.run": (2, "Run"),
    "preflight.toggle": (3, "Out/in"),
    "preflight.abort": (4, "Abort"),
    "preflight_panel.end_blocker": (2, "End blocker"),
    "preflight_panel.skip": (3, "Skip"),
    "preflight_panel.cancel": (4, "Cancel"),
    "preflight_panel.close": (5, "Close"),
    "signoff.abort": (2, "Abort"),
    "alerts.confirm": (2, "Confirm thresholds"),
    "alerts.close": (3, "Close"),
    "alerts.close_a": (4, "Close"),
    "confirm.cancel": (2, "Cancel query"),
    "confirm.terminate": (3, "Terminate"),
    "confirm.back": (4, "Back"),
    # Connections
    "connections.cancel": (10, "Cancel"),
    "connections.terminate": (11, "Kill"),
    "connections.tag": (12, "Tag"),
    "connections.idle": (13, "Idle"),
    "connections.filter": (14, "Filter"),
    "connections.sort": (15, "Sort"),
    "connections.chains": (16, "Chains"),
    # Slow queries
    "slow.order": (10, "Mean/total"),
    "slow.detail_d": (11, "Query"),
    # Checklist
    "checklist.tick": (10, "Tick"),
    "checklist.fix": (11, "Fix"),
    "checklist.fix.refused": (11, "Fix off"),
    "checklist.details": (12, "Details"),
    "checklist.note": (13, "Note"),
    "checklist.next_open": (14, "Next open"),
    "checklist.fix_all": (15, "Fix all"),
    "checklist.signoff": (16, "Sign off"),
    "checklist.verify": (17, "Verify"),
    # the app's keys
    "pause": (40, "Pause"),
    "refresh": (41, "Refresh"),
    "checklist": (42, "Checklist"),
    "alerts": (43, "Alerts"),
    "timeline": (44, "Graphs"),
    "demo.spike": (45, "Spike"),
    "timeline.window": (10, "Window"),
    "replay.next": (20, "Next"),
    "replay.previous": (21, "Prev"),
    "replay.forward": (22, "+1m"),
    "replay.back": (23, "-1m"),
    "replay.goto": (24, "Go to"),
}

# Textual's modal screens cut the app's bindings off (Screen._modal_binding_chain): a modal that
# wants q and ? to work (and show) lists these among its own BINDINGS.
MODAL_APP_BINDINGS = [
    Binding("q", "app.quit", "Quit", id="modal.quit"),
    Binding("question_mark", "app.toggle_help", "Help: keys and legend", key_display="?", id="modal.help"),
]

GAP = " "  # between two keys
_DIM = Style(dim=True)
PALETTE_GAP = 2  # at least this much room before the palette hint


class Shown(NamedTuple):
    key: str  # what a click presses
    display: str  # what the bar shows for the key
    label: str
    enabled: bool
    priority: int


def priority_and_label(binding: Binding) -> tuple[int, str]:
    return KEYS.get(binding.id or "", (DEFAULT_PRIORITY, binding.description))


def fit(items: list[Shown], width: int, palette: Shown | None = None) -> tuple[list[Shown], Shown | None]:
    """The keys that fit whole in ``width``, in priority order (always those up to ALWAYS), and
    the palette hint if there is room for it after them."""
    ordered = sorted(items, key=lambda s: s.priority)
    must = [s for s in ordered if s.priority <= ALWAYS]
    used = sum(_width(s) for s in must) + len(GAP) * max(0, len(must) - 1) + 1  # a leading space
    chosen = set(id(s) for s in must)
    for s in ordered:
        if id(s) in chosen:
            continue
        w = len(GAP) + _width(s)
        if used + w <= width:
            used += w
            chosen.add(id(s))
    shown = [s for s in ordered if id(s) in chosen]
    if palette is not None and used + PALETTE_GAP + _width(palette) + 1 <= width:
        return shown, palette
    return shown, None


def _width(s: Shown) -> int:
    return cell_len(s.display) + 1 + cell_len(s.label)


class KeyFooter(Widget, can_focus=False):
    COMPONENT_CLASSES = {"key-footer--key", "key-footer--description"}
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        width: 1fr;
        background: $footer-background;
        color: $footer-description-foreground;
        .key-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .key-footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self, *, compact: bool = True, show_command_palette: bool = True, **kw) -> None:
        super().__init__(**kw)
        self.compact = compact  # kept for the callers; the bar is always one compact line
        self.show_command_palette = show_command_palette
        self._shown: tuple | None = None  # (items, palette) as last drawn
        self._spans: list[tuple[int, int, str]] = []  # (x1, x2, key) of what is drawn, for clicks
        self.rebuilds = 0  # how many times what it shows was recomputed into a repaint

    # -- what it shows ------------------------------------------------------------------------
    def _what_it_shows(self) -> tuple:
        bindings = self.screen.active_bindings
        items: list[Shown] = []
        seen_actions: set[str] = set()
        for _node, b, enabled, _tooltip in sorted(bindings.values(), key=lambda a: priority_and_label(a[1])[0]):
            if not b.show or b.action in seen_actions or b.key == self.app.COMMAND_PALETTE_BINDING:
                continue
            seen_actions.add(b.action)
            prio, label = priority_and_label(b)
            items.append(Shown(b.key, self.app.get_key_display(b), label, enabled, prio))
        palette = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            active = bindings.get(self.app.COMMAND_PALETTE_BINDING)
            if active is not None:
                _node, b, enabled, _tooltip = active
                palette = Shown(b.key, self.app.get_key_display(b), b.description.lower() or "palette",
                                enabled, 99)
        return tuple(items), palette

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self._update()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen: Screen) -> None:
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._update)

    def _update(self) -> None:
        if not self.is_attached:
            return
        shown = self._what_it_shows()
        if shown == self._shown and not STOCK_TEXTUAL:
            return
        self._shown = shown
        self.rebuilds += 1
        self.refresh()

    # -- drawing --------------------------------------------------------------------------------
    def line(self, width: int | None = None) -> Text:
        """The bar as it is drawn at ``width`` (the widget's own by default): exactly that wide."""
        width = self.size.width if width is None else width
        if self._shown is None:
            self._shown = self._what_it_shows()
        items, palette = self._shown
        keys, hint = fit(list(items), width, palette)
        key_style = self.get_component_rich_style("key-footer--key")
        label_style = self.get_component_rich_style("key-footer--description")
        text = Text(" ", no_wrap=True, overflow="crop", end="")
        spans: list[tuple[int, int, str]] = []
        for i, s in enumerate(keys):
            if i:
                text.append(GAP)
            x1 = text.cell_len
            text.append(s.display, key_style if s.enabled else key_style + _DIM)
            text.append(" " + s.label, label_style if s.enabled else label_style + _DIM)
            spans.append((x1, text.cell_len, s.key))
        if hint is not None:
            x1 = width - _width(hint) - 1
            text.append(" " * (x1 - text.cell_len))
            text.append(hint.display, key_style)
            text.append(" " + hint.label, label_style)
            spans.append((x1, text.cell_len, hint.key))
        if text.cell_len > width:  # narrower than q and ? together: cut at a key's end
            while spans and spans[-1][1] > width:
                spans.pop()
            text = text[: spans[-1][1]] if spans else Text("", end="")
        text.append(" " * (width - text.cell_len))
        self._spans = spans
        return text

    @property
    def plain(self) -> str:
        """What the bar shows, as plain text (tests, screen readers)."""
        return self.line().plain

    def render(self) -> Text:
        return self.line(self.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        for x1, x2, key in self._spans:
            if x1 <= event.x < x2:
                self.app.simulate_key(key)
                return

