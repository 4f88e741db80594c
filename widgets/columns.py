"""Columns of the panes' tables laid out by the widgets themselves, on DataTable's public API:
a column set (with the sort indicator in the sorted column's label, and the query column's width
taken from what is left) is applied by rebuilding the columns only when it changed; the rows are
then synced again by the pane and the cursor goes back to its row."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from widgets._keyed import row_key_at_cursor

DOWN, UP = "▼", "▲"


def sorted_label(label: str, key: str, sort_key: str | None, arrow: str = DOWN) -> str:
    """``label`` with the sort arrow when ``key`` is the sorted column ("xact ▼")."""
    return f"{label} {arrow}" if key == sort_key else label


def set_columns(table: DataTable, specs) -> tuple[bool, str | None]:
    """Give ``table`` the columns ``specs`` ((key, label, width), ...). Returns (rebuilt, the row key
    the cursor was on): when rebuilt the table has no rows; the caller syncs them and calls
    restore_cursor."""
    current = tuple((c.key.value, c.label.plain, c.width) for c in table.ordered_columns)
    want = tuple((k, str(label), int(w)) for k, label, w in specs)
    if current == want:
        return False, None
    cursor_key = row_key_at_cursor(table)
    table.clear(columns=True)
    for name in ("_keyed_sigs", "_keyed_order", "_keyed_cells"):  # sync_rows' memory of the old rows
        table.__dict__.pop(name, None)
    for key, label, width in want:
        table.add_column(Text(label), key=key, width=width)
    return True, cursor_key


def restore_cursor(table: DataTable, row_key: str | None) -> None:
    if row_key is None:
        return
    try:
        index = table.get_row_index(row_key)
    except Exception:  # the row is gone
        return
    table.move_cursor(row=index, animate=False, scroll=True)
