"""Keyed row updates for DataTable (Dolphie's habit): rows are keyed by a stable id, only the
cells that changed are updated, and the cursor stays on its row.

DataTable's own ``update_cell`` bumps the one counter that all its render caches are keyed by and
repaints the whole widget, so each poll re-rendered every visible line and cell of the table.
``KeyedTable`` (still a DataTable) repaints only the row of an updated cell and caches rendered
lines by row version and rendered cells by cell version, so a poll where two ages tick costs
two cells. ``sync_rows`` works on any DataTable."""
from __future__ import annotations

from itertools import count

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual.cache import LRUCache
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable
from textual._two_way_dict import TwoWayDict
from textual.geometry import Region, Size
from textual.widgets._data_table import (
    CellDoesNotExist, CellKey, ColumnKey, RowDoesNotExist, RowKey, default_cell_formatter,
)

from widgets._fence import STOCK_TEXTUAL

# Every private name of Textual (8.2.8, pinned) and Rich this module relies on, one line each;
# tests/unit/test_fence.py holds the list to the code. PGPREFLIGHT_STOCK_TEXTUAL=1 turns it off.
TEXTUAL_PRIVATES = {
    "textual._segment_tools": "line_crop(segments, x1, x2, width): crops a line of segments by cells",
    "textual._two_way_dict": "TwoWayDict: DataTable keeps row key <-> index in one (remove_row rebuilds it)",
    "textual.widgets._data_table": "CellKey, ColumnKey, RowKey, the exceptions and default_cell_formatter",
    "_data": "DataTable._data: row key -> {column key: cell value}, written straight by update_cells",
    "_row_locations": "DataTable._row_locations: row key <-> row index (TwoWayDict)",
    "_column_locations": "DataTable._column_locations: column key <-> column index",
    "_update_count": "DataTable._update_count: the counter every DataTable render cache is keyed by",
    "_updated_cells": "DataTable._updated_cells: cells whose width is measured again at the next idle",
    "_require_update_dimensions": "DataTable._require_update_dimensions: measure new rows at the next idle",
    "_total_row_height": "DataTable._total_row_height: the height of all rows (remove_row's repaint region)",
    "_header_row_key": "DataTable._header_row_key: the key _get_offsets gives the header line",
    "_labelled_row_exists": "DataTable._labelled_row_exists: a row has a label (then DataTable's own path)",
    "_row_label_column_width": "DataTable._row_label_column_width: the width of the label column",
    "_show_hover_cursor": "DataTable._show_hover_cursor: whether the hover row is highlighted",
    "_pseudo_class_state": "Widget._pseudo_class_state: focus/hover/disabled state, part of a line's cache key",
    "_get_offsets": "DataTable._get_offsets(y): (row key, line within the row) of a virtual line",
    "_get_row_style": "DataTable._get_row_style(row index, base): the row's style (zebra, header)",
    "_get_styles_to_render_cell": "DataTable._get_styles_to_render_cell: a cell's cursor/hover component styles",
    "_get_row_region": "DataTable._get_row_region(index): overridden, rows one line high sit at their index",
    "_render_line": "DataTable._render_line(y, x1, x2, base): overridden, cached by row version",
    "_render_cell": "DataTable._render_cell(row, column, style, width, cursor, hover): overridden, by cell version",
    "_refresh_region": "DataTable._refresh_region(region): repaint a region of the table's virtual space",
    "_update_dimensions": "DataTable._update_dimensions(new rows): overridden, skips measuring fixed columns",
    "_update_column_widths": "DataTable._update_column_widths(cells): overridden, new layout version",
    "_clear_caches": "DataTable._clear_caches(): overridden, forgets our caches too",
    "_on_resize": "DataTable._on_resize(event): overridden, new layout version",
    "_scroll_update": "ScrollView._scroll_update(size): the scrollbars for a virtual size set quietly",
    "_spans": "rich Text._spans: a cell without spans takes the string fast path",
}

_EMPTY = Text(no_wrap=True, end="")
_NEWLINE = Text("\n")
_NULL = Style.null()

_versions = count(1)


class KeyedTable(DataTable):
    """A DataTable whose rendered lines are cached per row version, so that a repaint after a
    poll costs only the rows whose cells changed."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self._row_version: dict[RowKey, int] = {}
        self._row_born: dict[RowKey, int] = {}
        self._cell_version: dict[tuple, int] = {}  # (row key, column key): set when the cell changed
        self._strips: LRUCache[tuple, Strip] = LRUCache(4096)
        self._cell_lines: LRUCache[tuple, list] = LRUCache(8192)
        self._extend_styles: LRUCache[tuple, Style] = LRUCache(1024)
        self._pre_post: LRUCache[tuple, tuple] = LRUCache(4096)
        self._row_parts: dict = {}  # row key: (what its line depends on, cell versions, cell segments)
        self._layout_version = next(_versions)

    # -- versions: every way a row's cells change gives it a new version ---------------------
    def touch_cells(self, row_key: RowKey | str, column_keys) -> None:
        """The cells ``column_keys`` of the row changed (written straight into the data)."""
        rk = RowKey(row_key) if isinstance(row_key, str) else row_key
        v = next(_versions)
        self._row_version[rk] = v
        for ck in column_keys:
            self._cell_version[(rk, ColumnKey(ck) if isinstance(ck, str) else ck)] = v

    _taller_rows = False  # set for good once a row is not one line high

    def add_row(self, *cells, height: int | None = 1, key: str | None = None, label=None,
                repaint: bool = True) -> RowKey:
        """DataTable's, and the new row painted (``repaint=False``: the caller repaints, in runs)."""
        if height != 1:
            self._taller_rows = True
        row_key = super().add_row(*cells, height=height, key=key, label=label)
        self._row_version[row_key] = self._row_born[row_key] = next(_versions)
        # DataTable relies on the change of virtual size (a relayout) to paint a new row; a table
        # shorter than its window keeps its virtual size, so paint the row here
        if repaint:
            self.refresh_row(self._row_locations.get(row_key))
        return row_key

    def update_cell(self, row_key, column_key, value, *, update_width: bool = False) -> None:
        """Like DataTable's, but repaints only the cell's row, and only that cell renders again."""
        if update_width:
            super().update_cell(row_key, column_key, value, update_width=True)
            self.touch_cells(row_key, (column_key,))
            self._layout_version = next(_versions)
            return
        self.update_cells(row_key, {column_key: value})

    def update_cells(self, row_key, changes: dict, *, repaint: bool = True) -> None:
        """Several cells of one row at once (column key: value): one touch and one repaint of the row
        (none with ``repaint=False``: the caller repaints with ``refresh_rows``)."""
        rk = RowKey(row_key) if isinstance(row_key, str) else row_key
        if rk not in self._row_locations:
            raise CellDoesNotExist(f"No row exists for row_key={rk!r}.")
        data = self._data[rk]
        keys = []
        for column_key, value in changes.items():
            ck = ColumnKey(column_key) if isinstance(column_key, str) else column_key
            if ck not in self._column_locations:
                raise CellDoesNotExist(f"No cell exists for row_key={rk!r}, column_key={ck!r}.")
            data[ck] = value
            keys.append(ck)
        self._update_count += 1  # DataTable's own caches must not serve the old cells
        self.touch_cells(rk, keys)
        if repaint:
            self.refresh_row(self._row_locations.get(rk))

    def refresh_rows(self, row_keys) -> None:
        """Repaint these rows: one region per run of adjacent rows, not one refresh per row (each
        refresh walks the widget's ancestors for its region)."""
        indices = sorted(i for k in row_keys
                         if (i := self._row_locations.get(RowKey(k) if isinstance(k, str) else k)) is not None)
        if not indices:
            return
        runs = [[indices[0], indices[0]]]
        for i in indices[1:]:
            if i == runs[-1][1] + 1:
                runs[-1][1] = i
            else:
                runs.append([i, i])
        if self._taller_rows:
            for first, last in runs:
                top, bottom = self._get_row_region(first), self._get_row_region(last)
                self._refresh_region(Region(top.x, top.y, top.width, bottom.bottom - top.y))
            return
        width, header = max(self.size.width, self._column_layout()[1]), (self.header_height if self.show_header else 0)
        window = self.window_region
        scroll = -self.scroll_offset
        for first, last in runs:
            region = Region(0, first + header, width, last - first + 1)
            if window.overlaps(region):  # DataTable._refresh_region, without its lookups per row
                self.refresh(region.translate(scroll))

    def _get_row_region(self, row_index: int) -> Region:
        """DataTable's sums the heights of every row above (sorting all rows each time); rows one
        line high, as all of these are, sit at their index."""
        if self._taller_rows or not self.is_valid_row_index(row_index):
            return super()._get_row_region(row_index)
        return Region(0, row_index + (self.header_height if self.show_header else 0),
                      max(self.size.width, self._column_layout()[1]), 1)

    def update_cell_at(self, coordinate, value, *, update_width: bool = False) -> None:
        super().update_cell_at(coordinate, value, update_width=update_width)
        self._layout_version = next(_versions)  # rare: forget every line

    def add_column(self, *args, **kw):
        try:
            return super().add_column(*args, **kw)
        finally:
            self._layout_version = next(_versions)

    def _update_column_widths(self, updated_cells) -> None:
        super()._update_column_widths(updated_cells)
        self._layout_version = next(_versions)  # an auto-width column may have widened

    def remove_column(self, column_key) -> None:
        self._layout_version = next(_versions)
        super().remove_column(column_key)

    def remove_row(self, row_key) -> None:
        """DataTable's, without its relayout of the whole screen: only a change of the virtual
        size (which the rows below the window never make, see validate_virtual_size) needs one."""
        rk = RowKey(row_key) if isinstance(row_key, str) else row_key
        if rk not in self._row_locations:
            raise RowDoesNotExist(f"Row key {rk!r} is not valid.")
        self._require_update_dimensions = True
        self.check_idle()
        gone = self._row_locations.get(rk)
        below = self._get_row_region(gone)  # this row and the ones below it move: repaint them
        header = self.header_height if self.show_header else 0
        below = below._replace(height=max(1, self._total_row_height + header - below.y))
        self._row_locations = TwoWayDict({
            k: (i - 1 if i > gone else i) for k in self._row_locations if (i := self._row_locations.get(k)) != gone
        })
        for ck in self._data.get(rk):
            self._updated_cells.discard(CellKey(rk, ck))
        del self.rows[rk]
        del self._data[rk]
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self._update_count += 1
        self._refresh_region(below)
        self._row_version.pop(rk, None)
        self._row_born.pop(rk, None)
        self._row_parts.pop(rk, None)
        for ck in self.columns:
            self._cell_version.pop((rk, ck), None)

    def _update_dimensions(self, new_rows) -> None:
        """DataTable's measures every cell of every new row (to widen auto-width columns and size
        auto-height rows): ~200 rows of cells when the idle sessions are shown. With fixed-width
        columns, one-line rows and no labels there is nothing to measure: only the virtual size."""
        rows = self.rows
        if (self._taller_rows or any(c.auto_width for c in self.columns.values())
                or any(rows[k].label is not None for k in new_rows if k in rows)):
            super()._update_dimensions(new_rows)
            self._layout_version = next(_versions)  # auto widths may have moved
            return
        header = self.header_height if self.show_header else 0
        self._set_virtual_size(Size(self._column_layout()[1], len(rows) + header))

    def _set_virtual_size(self, size: Size) -> None:
        """Rows coming and going change the table and the thumb of its scrollbar, not the screen:
        the virtual size (a layout reactive) is set without a layout of the whole screen unless
        the width changes or a scrollbar comes or goes (then _scroll_update's own reactives ask
        for one). 200 sessions coming into view cost a ~10 ms layout before."""
        size = self.validate_virtual_size(size)
        old = self.virtual_size
        if size == old:
            return
        if size.width != old.width or not self.is_mounted or not self.container_size:
            self.virtual_size = size
            return
        self.set_reactive(Widget.virtual_size, size)
        self._scroll_update(size)
        self.refresh()

    def validate_virtual_size(self, size: Size) -> Size:
        """A table shorter than its window counts as tall as the window: rows coming and going
        there change nothing outside the table, so they cost no layout of the screen."""
        # the smallest the window can be: with a horizontal scrollbar (never pad past the real window)
        window = self.size.height - self.styles.gutter.height - self.styles.scrollbar_size_horizontal
        return Size(size.width, window) if size.height < window else size

    def _on_resize(self, event) -> None:
        super()._on_resize(event)
        self._layout_version = next(_versions)
        self._require_update_dimensions = True  # the floor of the virtual height moved
        self.check_idle()

    def clear(self, columns: bool = False):
        self._row_version.clear()
        self._row_born.clear()
        self._cell_version.clear()
        self._row_parts.clear()
        return super().clear(columns=columns)

    def sort(self, *args, **kw):
        self._layout_version = next(_versions)
        return super().sort(*args, **kw)

    def _clear_caches(self) -> None:  # columns, styles, header, padding, stripes: forget every line
        super()._clear_caches()
        self._layout_version = next(_versions)
        if hasattr(self, "_strips"):
            self._strips.clear()
            self._cell_lines.clear()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._layout_version = next(_versions)
        self._strips.clear()
        self._cell_lines.clear()

    # -- rendering ----------------------------------------------------------------------------
    _frame_style: Style | None = None
    _frame_width: int | None = None
    _in_frame = False
    _frame_sig: tuple | None = None
    _frame_console: tuple | None = None

    def render_lines(self, crop):
        # once a frame, not once a line: the style walks the ancestors, the size looks up the region
        self._frame_style, self._frame_width = self.rich_style, self.size.width
        self._in_frame, self._frame_sig, self._frame_console = True, None, None
        try:
            return super().render_lines(crop)
        finally:
            self._frame_style, self._frame_width = None, None
            self._in_frame, self._frame_sig, self._frame_console = False, None, None

    def _width(self) -> int:
        width = self._frame_width
        return self.size.width if width is None else width

    def _line_sig(self, base_style: Style) -> tuple:
        """What every line of a frame depends on besides its own row: computed once a frame
        (a dozen reactives and the column widths), not once a line."""
        sig = self._frame_sig
        if sig is None or sig[0] is not base_style:
            sig = (base_style, self._width(), self._layout_version, self._row_label_column_width,
                   self._column_layout()[0], self.cursor_type,
                   self.show_cursor, self._show_hover_cursor, self._pseudo_class_state, self.fixed_rows,
                   self.fixed_columns)
            if self._in_frame:
                self._frame_sig = sig
        return sig

    def render_line(self, y: int) -> Strip:
        if self.fixed_rows:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += scroll_y
        style = self._frame_style if self._frame_style is not None else self.rich_style
        return self._render_line(y, scroll_x, scroll_x + self._width(), style)

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False):
        """A cell is rendered again only when it changed (an age ticking does not re-render its row)."""
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        rk = self._row_locations.get_key(row_index)
        ck = self._column_locations.get_key(column_index)
        born = self._row_born.get(rk)
        if born is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (rk, ck, self._cell_version.get((rk, ck), born), row_index, column_index, base_style, width,
               cursor, hover, self._show_hover_cursor, self.show_cursor, self._pseudo_class_state,
               self._layout_version, self.fixed_rows, self.fixed_columns)
        lines = self._cell_lines.get(key)
        if lines is None:
            lines = self._fast_cell(rk, ck, row_index, column_index, base_style, width, cursor, hover)
            if lines is None:
                lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cell_lines[key] = lines
        return lines

    def _fast_cell(self, rk, ck, row_index: int, column_index: int, base_style: Style, width: int,
                   cursor: bool, hover: bool):
        """DataTable's cell rendering for a one-line row of Text, without the Console pipeline
        (Styled(Padding(Text)) through render_lines costs ~10× this). Same segments and styles;
        tests/ui/test_keyed_render.py holds it to DataTable's own output. None: not this case."""
        if row_index < self.fixed_rows or column_index < self.fixed_columns:
            return None
        row = self.rows.get(rk)
        if row is None or row.height != 1:
            return None
        datum = self._data[rk].get(ck)
        cell = _EMPTY if datum is None else (default_cell_formatter(datum, wrap=False, height=1) or _EMPTY)
        if not isinstance(cell, Text) or cell.no_wrap is False:
            return None
        plain = cell.plain
        if "\n" in plain or "\t" in plain:
            return None
        default_justify, default_overflow = self._console_defaults()
        justify = cell.justify or default_justify or "default"
        overflow = cell.overflow or default_overflow or "fold"
        if justify == "full" or overflow == "ignore":
            return None
        pad = self.cell_padding
        inner = width - 2 * pad
        if inner <= 0:
            return None
        pre, post = self._cell_styles(base_style, row_index, column_index, cursor, hover)
        console = self.app.console
        if not cell._spans and plain and plain.isascii() and plain.isprintable():
            # one style, one cell per character: Text.wrap's justify and truncate as string
            # operations, and the segments Styled(Padding(...)) makes, already simplified
            text = _justified(plain, inner, justify, overflow)
            fill = " " * (inner - len(text) + pad)
            st = cell.style
            outer = pre + post
            inside = (pre + console.get_style(st)) + post if st else outer
            if inside == outer:
                return [[Segment(" " * pad + text + fill, outer)]]
            segs = [Segment(" " * pad, outer)] if pad else []
            segs.append(Segment(text, inside))
            if fill:
                segs.append(Segment(fill, outer))
            return [segs]
        lines = cell.wrap(console, inner, justify=justify, overflow=overflow, no_wrap=True)
        if len(lines) != 1:
            return None
        segs = list(_NEWLINE.join(lines).render(console, end=""))
        length = sum(seg.cell_length for seg in segs)
        if length > inner:
            return None
        if length < inner:
            segs.append(Segment(" " * (inner - length), _NULL))
        if pad:
            segs.insert(0, Segment(" " * pad, _NULL))
            segs.append(Segment(" " * pad, _NULL))
        return [list(Segment.simplify(Segment.apply_style(segs, style=pre, post_style=post)))]

    def _console_defaults(self) -> tuple:
        """The console's justify and overflow (what a cell without its own falls back to), once a frame."""
        memo = self._frame_console
        if memo is None:
            options = self.app.console_options
            memo = (options.justify, options.overflow)
            if self._in_frame:
                self._frame_console = memo
        return memo

    def _cell_styles(self, base_style: Style, row_index: int, column_index: int, cursor: bool,
                     hover: bool) -> tuple[Style, Style]:
        """The pre and post styles DataTable wraps a cell in (base, its row and column as meta for
        the mouse, the cursor's and the hover's component styles): cached."""
        show_cursor, show_hover = self.show_cursor, self._show_hover_cursor
        key = (base_style, row_index, column_index, cursor, hover, show_cursor, show_hover,
               self._pseudo_class_state, self._layout_version)
        styles = self._pre_post.get(key)
        if styles is None:
            component_style, post_style = self._get_styles_to_render_cell(
                False, False, False, hover, cursor, show_cursor, show_hover,
                self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
            pre = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
            styles = self._pre_post[key] = (pre, post_style)
        return styles

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        if row_key is self._header_row_key:
            row_index, version = -1, 0
        else:
            row_index = self._row_locations.get(row_key)
            version = self._row_version.get(row_key)
            if version is None:  # a row added behind our back: no caching for it
                return super()._render_line(y, x1, x2, base_style)
        cursor, hover = self.cursor_coordinate, self.hover_coordinate
        sig = self._line_sig(base_style)
        by_cell = sig[5] in ("column", "cell")
        key = (
            row_key, version, row_index, line_no, y, x1, x2,
            # the cursor and the hover only matter to the line they are on (or to its column)
            cursor if (by_cell or cursor.row == row_index) else None,
            hover if (by_cell or hover.row == row_index) else None,
            sig,
        )
        strip = self._strips.get(key)
        if strip is None:
            strip = None if row_index < 0 else self._fast_line(row_key, row_index, x1, x2, base_style)
            if strip is None:
                strip = super()._render_line(y, x1, x2, base_style)
            self._strips[key] = strip
        return strip

    def _fast_line(self, row_key, row_index: int, x1: int, x2: int, base_style: Style) -> Strip | None:
        """DataTable's _render_line for a one-line body row with a row cursor and no fixed rows,
        fixed columns or row labels. A row keeps its cells' segments with their versions, so a
        row whose ages ticked renders those two cells and reuses the rest. None: not this case."""
        cursor_type = self.cursor_type
        if cursor_type != "row" or self.fixed_rows or self.fixed_columns or (
                self._labelled_row_exists and self.show_row_labels):
            return None  # the other cursor types blend a background colour: DataTable's own path
        row = self.rows.get(row_key)
        if row is None or row.height != 1:
            return None
        columns, table_width = self._column_layout()
        show_cursor, show_hover = self.show_cursor, self._show_hover_cursor
        cursor = self.cursor_coordinate.row == row_index
        hover = self.hover_coordinate.row == row_index
        row_style = self._get_row_style(row_index, base_style)
        sig = (row_index, row_style, cursor, hover, show_cursor, show_hover, self._pseudo_class_state,
               self._layout_version)
        born = self._row_born.get(row_key)
        cell_versions = self._cell_version
        versions = [cell_versions.get((row_key, ck), born) for ck, _ in columns]
        kept = self._row_parts.get(row_key)
        if kept is not None and kept[0] == sig:
            old, parts = kept[1], list(kept[2])
        else:
            old, parts = None, [None] * len(columns)
        for i, (ck, width) in enumerate(columns):
            if old is None or old[i] != versions[i]:
                lines = self._fast_cell(row_key, ck, row_index, i, row_style, width, cursor, hover)
                if lines is None:
                    lines = DataTable._render_cell(self, row_index, i, row_style, width, cursor, hover)
                parts[i] = lines[0]
        self._row_parts[row_key] = (sig, versions, parts)
        segments: list[Segment] = [seg for part in parts for seg in part]
        widget_width = self._width()
        remaining = max(0, widget_width - table_width)
        ext_hover = self.hover_coordinate.row == (row_index or 0)
        ext_key = (row_index, row_style, cursor, ext_hover, show_cursor, show_hover, self._pseudo_class_state,
                   self._layout_version)
        extend_style = self._extend_styles.get(ext_key)
        if extend_style is None:
            extend_style, _ = self._get_styles_to_render_cell(
                False, False, False, ext_hover, cursor, show_cursor, show_hover, False, False)
            extend_style = row_style + extend_style + Style.from_meta(
                {"row": row_index, "column": 0, "out_of_bounds": True})
            self._extend_styles[ext_key] = extend_style
        segments.append(Segment(" " * remaining, extend_style))
        if x1 == 0 and x2 == widget_width:
            # every cell is exactly its column's width: whole cells up to the widget's edge, and
            # the cell across it cropped (not the whole line measured again and truncated)
            if table_width <= widget_width:
                return Strip(Segment.simplify(segments), widget_width)
            return Strip(Segment.simplify(_crop_parts(parts, columns, widget_width)), widget_width)
        return Strip(line_crop(segments, x1, x2, widget_width)).adjust_cell_length(widget_width, base_style).simplify()

    _columns_memo: tuple = (None, (), 0)

    def _column_layout(self) -> tuple[tuple, int]:
        """((column key, render width), ...) in order, and the width of a row: once per layout."""
        version, columns, width = self._columns_memo
        if version != self._layout_version:
            columns = tuple((c.key, c.get_render_width(self)) for c in self.ordered_columns)
            width = sum(w for _, w in columns)
            self._columns_memo = (self._layout_version, columns, width)
        return columns, width + self._row_label_column_width


class StockKeyedTable(DataTable):
    """PGPREFLIGHT_STOCK_TEXTUAL=1: Textual's DataTable, with KeyedTable's extra calls done through
    DataTable's public API (update_cell repaints the table; nothing is cached here)."""

    def touch_cells(self, row_key, column_keys) -> None:
        pass

    def add_row(self, *cells, height: int | None = 1, key: str | None = None, label=None,
                repaint: bool = True) -> RowKey:
        return super().add_row(*cells, height=height, key=key, label=label)

    def update_cells(self, row_key, changes: dict, *, repaint: bool = True) -> None:
        for column_key, value in changes.items():
            self.update_cell(row_key, column_key, value)

    def refresh_rows(self, row_keys) -> None:
        pass  # update_cell and add_row repainted already


FastKeyedTable = KeyedTable  # the rewrite itself, whatever the switch says (the differential tests)
_WITH_KEYED_API = (FastKeyedTable, StockKeyedTable)
if STOCK_TEXTUAL:
    KeyedTable = StockKeyedTable  # noqa: F811  what the panes build


def _crop_parts(parts: list, columns: tuple, width: int) -> list[Segment]:
    """The segments of the first ``width`` cells of a row whose parts are each exactly their
    column's width."""
    out: list[Segment] = []
    pos = 0
    for part, (_key, part_width) in zip(parts, columns):
        if pos + part_width <= width:
            out.extend(part)
            pos += part_width
            continue
        if pos < width:
            out.extend(line_crop(part, 0, width - pos, part_width))
        break
    return out


def _truncate(text: str, width: int, overflow: str) -> str:
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…" if overflow == "ellipsis" else text[:width]


def _justified(text: str, width: int, justify: str, overflow: str) -> str:
    """What Text.wrap(no_wrap=True) makes of one line of printable ASCII (one cell a character)."""
    if justify == "left":
        return _truncate(text, width, overflow).ljust(width)
    if justify == "right":
        return _truncate(text.rstrip(), width, overflow).rjust(width)
    if justify == "center":
        text = _truncate(text.rstrip(), width, overflow)
        text = " " * ((width - len(text)) // 2) + text
        return text.ljust(width)
    return _truncate(text, width, overflow)


def _sig(cell) -> tuple:
    if isinstance(cell, Text):
        return (cell.plain, str(cell.style), cell.justify, tuple((s.start, s.end, str(s.style)) for s in cell.spans))
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
    if incremental and len(order) - len(kept) > max(8, len(kept)):
        # most rows go (idle sessions hidden again): removing them one by one costs a pass over
        # every row each, so draw the table afresh
        incremental = False
    col_keys = [c.key for c in table.ordered_columns]
    written = 0
    if not incremental:
        cursor_key = None
        if table.row_count and 0 <= table.cursor_row < table.row_count:
            cursor_key = order[table.cursor_row] if table.cursor_row < len(order) else None
        table.clear()
        state.clear()
        order.clear()
        last = table.__dict__.setdefault("_keyed_cells", {})
        last.clear()
        quiet = {"repaint": False} if isinstance(table, _WITH_KEYED_API) else {}  # clear() repaints it all
        for key, cells in rows:
            table.add_row(*cells, key=key, **quiet)
            state[key] = tuple(_sig(c) for c in cells)
            last[key] = cells
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
        table.__dict__.get("_keyed_cells", {}).pop(k, None)
    order[:] = kept
    if cursor_key in state:  # rows above it went away: keep the cursor on its row, not its index
        table.move_cursor(row=order.index(cursor_key), animate=False, scroll=False)
    last: dict[str, tuple] = table.__dict__.setdefault("_keyed_cells", {})
    keyed = isinstance(table, _WITH_KEYED_API)
    changed_rows: list[str] = []
    for key, cells in rows:
        if last.get(key) is cells and key in state:
            continue  # the very same cells as last time (the caller reuses unchanged rows)
        last[key] = cells
        sigs = tuple(_sig(c) for c in cells)
        old = state.get(key)
        if old is None:
            if keyed:
                table.add_row(*cells, key=key, repaint=False)  # painted below with the changed rows, in runs
                changed_rows.append(key)
            else:
                table.add_row(*cells, key=key)
            order.append(key)
            written += len(cells)
        elif old != sigs:
            changes = {col_keys[i]: cells[i] for i, (a, b) in enumerate(zip(old, sigs)) if a != b}
            if keyed:
                table.update_cells(key, changes, repaint=False)
                changed_rows.append(key)
            else:
                for ck, value in changes.items():
                    table.update_cell(key, ck, value)
            written += len(changes)
        state[key] = sigs
    if changed_rows:
        table.refresh_rows(changed_rows)
    return written


def row_key_at_cursor(table: DataTable) -> str | None:
    order: list[str] = table.__dict__.get("_keyed_order", [])
    if not table.row_count or not (0 <= table.cursor_row < len(order)):
        return None
    return order[table.cursor_row]
