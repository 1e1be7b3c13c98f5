"""A table that renders only the rows on screen, for millions of rows.

The built-in DataTable keeps every row as Python objects; at Ego4D scale (7.6M windows) that
is minutes and gigabytes. Here the table only knows how many rows there are and a `fetch(i)`
callable that returns the cells of row `i`; it asks for the rows it is about to draw (a few
dozen), through a small cache. The usual source is a numpy array of row ids plus a function
that describes one id.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from engine.textsafe import visible
from nlq_tui.bindings import TABLE_BINDINGS

Fetch = Callable[[int], Sequence[str]]
FetchBlock = Callable[[int, int], Sequence[Sequence[str]]]
BLOCK = 64  # rows fetched together when the source can describe many rows at once


@dataclass(frozen=True)
class Column:
    label: str
    width: int | None = None  # None: takes the width left over (at least `min_width`)
    align: str = "left"  # "left" | "right"
    min_width: int = 8
    style: str = ""  # a Rich style for the column's cells, e.g. "italic"
    hide_below: int = 0  # hidden when the table is narrower than this (least useful columns first)


def _fit(text: str, width: int, align: str) -> str:
    """`text` cut or padded to exactly `width` cells, its control characters made visible (cells
    are data: Segment text goes to the terminal as it is)."""
    text = visible(text, 2 * width + 16)  # a few characters past the width, wide or zero-width ones
    if cell_len(text) > width:
        return set_cell_size(text, max(width - 1, 0)) + "…" if width > 0 else ""
    pad = width - cell_len(text)
    return " " * pad + text if align == "right" else text + " " * pad


class VirtualTable(ScrollView, can_focus=True):
    """A scrollable table over `n_rows` rows drawn on demand from `fetch(i)`."""

    BINDINGS = TABLE_BINDINGS
    COMPONENT_CLASSES = {
        "vtable--header",
        "vtable--cursor",
        "vtable--empty",
    }
    DEFAULT_CSS = """
    VirtualTable { height: 1fr; }
    """

    cursor_row: reactive[int] = reactive(0, always_update=True, init=False)

    class _RowMessage(Message):
        def __init__(self, table: VirtualTable, row: int) -> None:
            super().__init__()
            self.table = table
            self.row = row

        @property
        def control(self) -> VirtualTable:
            return self.table

    class RowHighlighted(_RowMessage):
        """The cursor moved to `row`."""

    class RowSelected(_RowMessage):
        """Enter (or a click) on `row`."""

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        empty_text: str = "no rows",
        cache_size: int = 2048,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns = list(columns)
        self.empty_text = empty_text
        self.n_rows = 0
        self._fetch: Fetch = lambda i: ()
        self._fetch_block: FetchBlock | None = None
        self._cache: OrderedDict[int, Sequence[str]] = OrderedDict()
        self._cache_size = cache_size
        self._widths: list[int] = []

    # data -------------------------------------------------------------------------------------
    def set_source(
        self,
        n_rows: int,
        fetch: Fetch | None = None,
        *,
        fetch_block: FetchBlock | None = None,
        keep_cursor: bool = False,
        empty_text: str | None = None,
    ) -> None:
        """Show `n_rows` rows. `fetch(i)` gives the cells of row i (one string per column);
        or `fetch_block(start, stop)` gives rows start..stop-1 at once, for sources where one
        call for many rows is much cheaper than many calls."""
        if fetch is None and fetch_block is None:
            raise ValueError("set_source needs fetch or fetch_block")
        self.n_rows = int(n_rows)
        self._fetch = fetch or (lambda i: fetch_block(i, i + 1)[0])
        self._fetch_block = fetch_block
        self._cache.clear()
        if empty_text is not None:
            self.empty_text = empty_text
        self.virtual_size = Size(self.size.width, self.n_rows + 1)
        row = min(self.cursor_row, max(self.n_rows - 1, 0)) if keep_cursor else 0
        if not keep_cursor:
            self.scroll_to(y=0, animate=False, immediate=True)
        self.cursor_row = row
        self.refresh()

    def row_cells(self, i: int) -> Sequence[str]:
        cells = self._cache.get(i)
        if cells is not None:
            self._cache.move_to_end(i)
            return cells
        if self._fetch_block is not None:
            start = i - i % BLOCK
            stop = min(start + BLOCK, self.n_rows)
            for j, row in enumerate(self._fetch_block(start, stop), start=start):
                self._cache[j] = row
            cells = self._cache[i]
        else:
            cells = self._fetch(i)
            self._cache[i] = cells
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return cells

    # geometry -----------------------------------------------------------------------------------
    @property
    def page_rows(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _column_widths(self, width: int) -> list[int]:
        """Cell width of each column; 0 for a column hidden at this table width."""
        shown = [c.hide_below <= width for c in self.columns]
        fixed = sum(c.width for c, on in zip(self.columns, shown) if on and c.width is not None)
        gaps = sum(shown) - 1
        flex = [c for c, on in zip(self.columns, shown) if on and c.width is None]
        left = max(width - fixed - gaps, 0)
        per_flex = max(left // len(flex), min(c.min_width for c in flex)) if flex else 0
        return [0 if not on else (c.width if c.width is not None else per_flex) for c, on in zip(self.columns, shown)]

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self.n_rows + 1)

    # drawing ------------------------------------------------------------------------------------
    def _line(self, cells: Sequence[str], widths: list[int], base: Style, with_column_styles: bool) -> list[Segment]:
        segments: list[Segment] = []
        for n, (col, w) in enumerate(zip(self.columns, widths)):
            if w == 0:
                continue
            if segments:
                segments.append(Segment(" ", base))
            text = _fit(str(cells[n]) if n < len(cells) else "", w, col.align)
            style = base + Style.parse(col.style) if (with_column_styles and col.style) else base
            segments.append(Segment(text, style))
        return segments

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        widths = self._column_widths(width)
        base = self.rich_style
        if y == 0:
            header = self.get_component_rich_style("vtable--header")
            segs = self._line([c.label for c in self.columns], widths, header, False)
            return Strip(segs).adjust_cell_length(width, header)
        if self.n_rows == 0:
            if y == 1:
                style = self.get_component_rich_style("vtable--empty")
                return Strip([Segment(_fit(self.empty_text, width, "left"), style)]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        row = int(self.scroll_offset.y) + y - 1
        if row >= self.n_rows:
            return Strip.blank(width, base)
        if row == self.cursor_row:
            style = (
                self.get_component_rich_style("vtable--cursor")
                if self.has_focus
                else base + Style(reverse=True, dim=True)
            )
            segs = self._line(self.row_cells(row), widths, style, False)
            return Strip(segs).adjust_cell_length(width, style)
        segs = self._line(self.row_cells(row), widths, base, True)
        return Strip(segs).adjust_cell_length(width, base)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # cursor -------------------------------------------------------------------------------------
    def validate_cursor_row(self, row: int) -> int:
        return max(0, min(int(row), max(self.n_rows - 1, 0)))

    def watch_cursor_row(self, old: int, new: int) -> None:
        top = int(self.scroll_offset.y)
        if new < top:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= top + self.page_rows:
            self.scroll_to(y=new - self.page_rows + 1, animate=False, immediate=True)
        self.refresh()
        if self.n_rows:
            self.post_message(self.RowHighlighted(self, new))

    def action_cursor_up(self) -> None:
        self.cursor_row -= 1

    def action_cursor_down(self) -> None:
        self.cursor_row += 1

    def action_page_up(self) -> None:
        self.cursor_row -= self.page_rows

    def action_page_down(self) -> None:
        self.cursor_row += self.page_rows

    def action_first(self) -> None:
        self.cursor_row = 0

    def action_last(self) -> None:
        self.cursor_row = self.n_rows - 1

    def action_select_cursor(self) -> None:
        if self.n_rows:
            self.post_message(self.RowSelected(self, self.cursor_row))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1 or not self.n_rows:
            return
        row = int(self.scroll_offset.y) + offset.y - 1
        if row >= self.n_rows:
            return
        if row == self.cursor_row or event.chain >= 2:
            self.cursor_row = row
            self.action_select_cursor()
        else:
            self.cursor_row = row
