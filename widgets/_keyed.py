"""Keyed row updates for DataTable (Dolphie's habit): rows are keyed by a stable id, only the
cells that changed are updated, and the cursor stays on its row."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable


def _sig(cell) -> tuple:
    if isinstance(cell, Text):
        return (cell.plain, str(cell.style), tuple((s.start, s.end, str(s.style)) for s in cell.spans))
    return (cell,)


def sync_rows(table: DataTable, rows: list[tuple[str, tuple]]) -> int:
    """Make ``table`` show ``rows`` ((key, cells) in order). Returns how many cells were written."""
    state: dict[str, tuple] = table.__dict__.setdefault("_keyed_sigs", {})
    order: list[str] = table.__dict__.setdefault("_keyed_order", [])
    seen: set[str] = set()
    rows = [r for r in rows if not (r[0] in seen or seen.add(r[0]))]  # a repeated id must never crash the table
    want = [k for k, _ in rows]
    want_set = set(want)
    kept = [k for k in order if k in want_set]
    incremental = kept == want[: len(kept)] and len(want_set) == len(want)
    col_keys = [c.key for c in table.ordered_columns]
    written = 0
    if not incremental:
        cursor_key = None
        if table.row_count and 0 <= table.cursor_row < table.row_count:
            cursor_key = order[table.cursor_row] if table.cursor_row < len(order) else None
        table.clear()
        state.clear()
        order.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)
            state[key] = tuple(_sig(c) for c in cells)
            order.append(key)
            written += len(cells)
        if cursor_key in state:
            table.move_cursor(row=order.index(cursor_key), animate=False, scroll=False)
        return written
    gone = [k for k in order if k not in want_set]
    cursor_key = order[table.cursor_row] if gone and 0 <= table.cursor_row < len(order) else None
    for k in gone:
        table.remove_row(k)
        state.pop(k, None)
    order[:] = kept
    if cursor_key in state:  # rows above it went away: keep the cursor on its row, not its index
        table.move_cursor(row=order.index(cursor_key), animate=False, scroll=False)
    for key, cells in rows:
        sigs = tuple(_sig(c) for c in cells)
        old = state.get(key)
        if old is None:
            table.add_row(*cells, key=key)
            order.append(key)
            written += len(cells)
        elif old != sigs:
            for i, (a, b) in enumerate(zip(old, sigs)):
                if a != b:
                    table.update_cell(key, col_keys[i], cells[i])
                    written += 1
        state[key] = sigs
    return written


def row_key_at_cursor(table: DataTable) -> str | None:
    order: list[str] = table.__dict__.get("_keyed_order", [])
    if not table.row_count or not (0 <= table.cursor_row < len(order)):
        return None
    return order[table.cursor_row]
