"""The launch checklist as a tree: sections with their counts (3/5), items with a status mark and
colour, and a progress bar for the whole checklist. Draws a :class:`tui.model.checklist.ChecklistView`;
key presses travel up as messages (the pane decides). textual + rich + tui.model only.

Expanded sections and the cursor survive every refresh, keyed by section and item id: when the
structure is unchanged the labels are updated in place; when it changed, the tree is rebuilt and
the expanded set and the cursor are restored by id.
"""
from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode

from tui.model.checklist import COLOURS, MANUAL, MARKS, PASS, PENDING, ChecklistView, ItemView, SectionView
from widgets.textlines import TextLines

SECTION_PREFIX = "section:"


def _relabel(node: TreeNode, label: Text) -> None:
    if node.label != label:
        node.set_label(label)


def item_label(item: ItemView, width: int = 70) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    colour = COLOURS.get(item.status, "white")
    t.append(f"{MARKS.get(item.status, '?')} ", style=f"bold {colour}")
    title_style = "bold" if item.severity == "critical" and item.status not in (PASS, PENDING) else ""
    t.append(item.title, style=title_style)
    if item.tick is not None:  # who and when are in the detail ("ticked by alice at …")
        t.append("  ☑", style="green")
    if item.notes:
        t.append(f"  ✎{len(item.notes)}", style="cyan")
    if item.detail:
        detail = item.detail if len(item.detail) <= width else item.detail[: width - 1] + "…"
        t.append(f"  {detail}", style=f"dim {colour}" if item.status != PASS else "dim")
    return t


def section_label(section: SectionView) -> Text:
    worst = section.worst
    t = Text(no_wrap=True)
    t.append(f"{MARKS.get(worst, '?')} ", style=f"bold {COLOURS.get(worst, 'white')}")
    t.append(section.title, style="bold")
    t.append(f"  {section.counts}", style=COLOURS.get(PASS if section.passed == len(section.items) else worst, ""))
    return t


class ChecklistTree(Tree[str]):
    """Node data: an item id, or ``section:<id>`` for a section."""

    DEFAULT_CSS = """
    ChecklistTree { height: 1fr; overflow-x: hidden; scrollbar-size-vertical: 1; }
    """  # labels are cut with an ellipsis at the width: no horizontal scrollbar (a lone thumb mid-screen)

    BINDINGS = [
        Binding("space", "tick", "Tick", id="checklist.tick"),
        Binding("n", "note", "Note", id="checklist.note"),
        Binding("enter", "details", "Details", id="checklist.details"),
        Binding("f", "fix", "Fix", id="checklist.fix"),
        Binding("f", "fix_refused", "Fix: off (read-only)", id="checklist.fix.refused"),
        Binding("v", "verify", "Verify now", id="checklist.verify"),
        Binding("F", "fix_all", "Fix all", id="checklist.fix_all"),
        Binding("right_square_bracket", "next_open", "Next open", key_display="]", id="checklist.next_open"),
        Binding("left_square_bracket", "previous_open", "Previous open", key_display="[", show=False,
                id="checklist.previous_open"),
        Binding("S", "signoff", "Sign off", id="checklist.signoff"),
    ]

    class TickToggled(Message):
        """Space on an item a person confirms (the pane records who and when)."""

        def __init__(self, item_id: str, ticked: bool) -> None:
            super().__init__()
            self.item_id = item_id
            self.ticked = ticked

    class NoteRequested(Message):
        def __init__(self, item_id: str) -> None:
            super().__init__()
            self.item_id = item_id

    class DetailsRequested(Message):
        def __init__(self, item_id: str) -> None:
            super().__init__()
            self.item_id = item_id

    class VerifyRequested(Message):
        pass

    class FixRequested(Message):
        """`f` on an item that names a fix: the screen that owns fixes decides and runs it."""

        def __init__(self, item_id: str, fix_name: str | None) -> None:
            super().__init__()
            self.item_id = item_id
            self.fix_name = fix_name

    class FixAllRequested(Message):
        """`F`: one combined plan of every failing item's fix (the screen that owns fixes runs it)."""

    class SignoffRequested(Message):
        """`S`: write the sign-off report."""

    class NotTickable(Message):
        def __init__(self, item_id: str, reason: str) -> None:
            super().__init__()
            self.item_id = item_id
            self.reason = reason

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("checklist", id=id)
        self.show_root = False
        self.guide_depth = 2
        self.checklist_view: ChecklistView | None = None
        self._structure: list[tuple[str, tuple[str, ...]]] | None = None
        self._by_key: dict[str, TreeNode[str]] = {}
        self.fix_disabled_reason: str | None = None  # e.g. "read-only: fixes are off"

    # -- drawing ---------------------------------------------------------------------------
    def show(self, view: ChecklistView) -> None:
        self.checklist_view = view
        structure = [(s.id, tuple(i.id for i in s.items)) for s in view.sections]
        if structure == self._structure:
            for s in view.sections:  # a label is set (and its line repainted) only when it changed
                _relabel(self._by_key[SECTION_PREFIX + s.id], section_label(s))
                for it in s.items:
                    _relabel(self._by_key[it.id], item_label(it))
            return
        first = self._structure is None
        expanded = {k for k, n in self._by_key.items() if n.is_expanded}
        cursor = self.cursor_node.data if self.cursor_node is not None else None
        self.clear()
        self._by_key = {}
        for s in view.sections:
            key = SECTION_PREFIX + s.id
            node = self.root.add(section_label(s), data=key, expand=first or key in expanded)
            self._by_key[key] = node
            for it in s.items:
                self._by_key[it.id] = node.add_leaf(item_label(it), data=it.id)
        self._structure = structure
        if cursor in self._by_key:
            target = self._by_key[cursor]
            self.call_after_refresh(self.move_cursor, target)

    def place_cursor_on_first_open(self) -> None:
        """After the first verification: the cursor goes to the first item still open (not above the tree),
        unless the operator has moved it below the first line already."""
        ids = self.open_items()
        node = self._by_key.get(ids[0]) if ids else None
        if node is None or (self.cursor_node is not None and self.cursor_line > 0):
            return
        if node.parent is not None and not node.parent.is_expanded:
            node.parent.expand()
        self.call_after_refresh(self.move_cursor, node)

    def node_for(self, key: str) -> TreeNode[str] | None:
        """The node of an item id, or of ``section:<id>``."""
        return self._by_key.get(key)

    def expanded_ids(self) -> set[str]:
        return {k for k, n in self._by_key.items() if n.is_expanded}

    @property
    def current_item(self) -> ItemView | None:
        node = self.cursor_node
        if node is None or self.checklist_view is None or node.data is None or node.data.startswith(SECTION_PREFIX):
            return None
        return self.checklist_view.item(node.data)

    def select_item(self, item_id: str) -> None:
        node = self._by_key.get(item_id)
        if node is not None:
            if node.parent is not None and not node.parent.is_expanded:
                node.parent.expand()
            self.call_after_refresh(self.move_cursor, node)

    # -- keys ------------------------------------------------------------------------------
    def _on_section(self) -> bool:
        node = self.cursor_node
        if node is not None and node.data and node.data.startswith(SECTION_PREFIX):
            node.toggle()
            return True
        return False

    def action_tick(self) -> None:
        if self._on_section():
            return
        it = self.current_item
        if it is None:
            return
        if not it.tickable:
            self.post_message(self.NotTickable(it.id, "verified automatically: only items a person confirms are ticked"))
            return
        self.post_message(self.TickToggled(it.id, it.tick is None))

    def action_note(self) -> None:
        it = self.current_item
        if it is not None:
            self.post_message(self.NoteRequested(it.id))

    def action_details(self) -> None:
        if self._on_section():
            return
        it = self.current_item
        if it is not None:
            self.post_message(self.DetailsRequested(it.id))

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """When fixes are off, `f` is the "Fix: off (read-only)" binding: the footer says why."""
        if action == "fix":
            return not self.fix_disabled_reason
        if action == "fix_refused":
            return bool(self.fix_disabled_reason)
        return True

    def action_fix_refused(self) -> None:
        self.notify(self.fix_disabled_reason or "fixes are off", severity="warning", timeout=4)

    def action_fix(self) -> None:
        it = self.current_item
        if it is None:
            return
        if not it.fix_name:
            then = "then ticks it (space)" if it.tickable else "then verifies it again (v)"
            self.notify(f"{it.id} has no automatic fix: a person acts, {then}", timeout=4)
            return
        self.post_message(self.FixRequested(it.id, it.fix_name))

    def action_verify(self) -> None:
        self.post_message(self.VerifyRequested())

    def open_items(self) -> list[str]:
        """Items that still need something, in tree order: failing, erring, or awaiting a person (unticked)."""
        if self.checklist_view is None:
            return []
        out = []
        for s in self.checklist_view.sections:
            for it in s.items:
                if it.status in ("fail", "error") or (it.status == "manual" and it.tick is None):
                    out.append(it.id)
        return out

    def _jump(self, step: int) -> None:
        ids = self.open_items()
        if not ids:
            self.notify("nothing left open: every item passes or is ticked", timeout=3)
            return
        current = self.cursor_node.data if self.cursor_node is not None else None
        order = [k for k in self._by_key if not k.startswith(SECTION_PREFIX)]
        pos = order.index(current) if current in order else -1
        if step > 0:
            after = [i for i in ids if order.index(i) > pos]
            target = after[0] if after else ids[0]
        else:
            before = [i for i in ids if order.index(i) < pos]
            target = before[-1] if before else ids[-1]
        self.select_item(target)

    def action_next_open(self) -> None:
        """`]`: the next item that fails or awaits a person (wraps around)."""
        self._jump(1)

    def action_previous_open(self) -> None:
        self._jump(-1)

    def action_fix_all(self) -> None:
        if self.fix_disabled_reason:
            self.notify(self.fix_disabled_reason, severity="warning", timeout=4)
        self.post_message(self.FixAllRequested())

    def action_signoff(self) -> None:
        self.post_message(self.SignoffRequested())


class ChecklistProgress(TextLines):
    """Two lines: the counts over the whole checklist with a bar of the share that passes, then
    the status (verifying, when it was verified, or what went wrong). Text lines, not a
    ProgressBar and two Statics: a verify repaints the lines that changed, with no relayout and
    no timer of its own."""

    DEFAULT_CSS = """
    ChecklistProgress { height: 2; padding: 0 1; }
    """
    BAR_MIN, BAR_MAX = 10, 30

    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self._view: ChecklistView | None = None
        self._status = Text()

    def show_message(self, message: str) -> None:
        self._status = Text(message, style="dim")
        self._draw()

    def show(self, view: ChecklistView, status: str = "") -> None:
        self._view = view
        line = Text(no_wrap=True, overflow="ellipsis")
        if view.error:
            line.append(view.error, style="bold red")
        elif status:
            line.append(status, style="dim")
        self._status = line
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        view = self._view
        if view is not None:
            t.append(view.title, style="bold")
            t.append(f"  {view.passed}/{view.total} pass", style="green" if view.passed == view.total else "")
            for s in ("fail", "error", "warn", "manual"):
                n = view.count(s)
                if n:
                    t.append(f"  {n} {s}", style=COLOURS[s])
            share = view.passed / view.total if view.total else 0.0
            room = (self.content_region.width if self.is_mounted else 0) - cell_len(t.plain) - 7
            width = min(self.BAR_MAX, room)
            if width >= self.BAR_MIN:  # no room for a bar: the counts say it
                done = round(share * width)
                t.append("  ")
                t.append("━" * done, style="green" if done == width else "yellow")
                t.append("━" * (width - done), style="grey30")
            t.append(f" {share:4.0%}")
        self.update(Text("\n").join([t, self._status]))


class ItemDetailsScreen(ModalScreen[None]):
    """Enter on an item: the why, the evidence, ticks and notes, and the fix (its exact SQL when known)."""

    DEFAULT_CSS = """
    ItemDetailsScreen { align: center middle; }
    ItemDetailsScreen > VerticalScroll {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    """
    BINDINGS = [Binding("escape,enter,q", "dismiss", "Close", id="checklist.details.close")]

    def __init__(self, item: ItemView) -> None:
        super().__init__()
        self.item = item

    def compose(self) -> ComposeResult:
        it = self.item
        t = Text()
        t.append(f"{MARKS.get(it.status, '?')} {it.status.upper()}  ", style=f"bold {COLOURS.get(it.status, '')}")
        t.append(it.title, style="bold")
        t.append(f"\n{it.id} · {it.severity} · {it.kind}\n", style="dim")
        t.append("\nEvidence\n", style="bold underline")
        t.append((it.detail or "not verified yet") + "\n")
        if it.why:
            t.append("\nWhy\n", style="bold underline")
            t.append(it.why + "\n")
        if it.tick:
            t.append(f"\nTicked by {it.tick.by} at {it.tick.at}\n", style="green")
        if it.notes:
            t.append("\nNotes\n", style="bold underline")
            for n in it.notes:
                t.append(f"{n.at} {n.by}: ", style="dim")
                t.append(n.text + "\n")
        t.append("\nFix\n", style="bold underline")
        if it.fix_name:
            t.append(f"{it.fix_name}", style="bold")
            t.append("\n")
            if it.fix_sql:
                t.append(it.fix_sql + "\n", style="cyan")
            elif it.fix_params:  # the fix cannot say its SQL without a database: its parameters then
                for k, v in it.fix_params.items():
                    t.append(f"  {k} = {v}\n", style="dim")
            t.append("press f on the item to run it (a plan is shown first)\n", style="dim")
        else:
            t.append("no automatic fix: a person acts, then ticks or verifies again\n", style="dim")
        with VerticalScroll():
            yield Static(t, id="details-body")

    def action_dismiss(self, result=None) -> None:  # type: ignore[override]
        self.dismiss(None)


class NoteScreen(ModalScreen[str | None]):
    """`n` on an item: one line of text, Enter keeps it, Esc drops it."""

    DEFAULT_CSS = """
    NoteScreen { align: center middle; }
    NoteScreen > Vertical { width: 80%; max-width: 100; height: auto; border: thick $accent;
                            background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="checklist.note.cancel")]

    def __init__(self, item: ItemView) -> None:
        super().__init__()
        self.item = item

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text.assemble(("Note on ", "dim"), (self.item.title, "bold"), (f"  {self.item.id}", "dim")))
            yield Input(placeholder="what was done, by whom, where", id="note-input")
            yield Static(Text("Enter saves · Esc cancels", style="dim"))

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        self.dismiss(text or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


__all__ = ["ChecklistTree", "ChecklistProgress", "ItemDetailsScreen", "NoteScreen", "item_label", "section_label",
           "MANUAL"]
