"""The customer list model: keyset pages from `CustomerSearch`, fetched as the view scrolls.

Why not load everything and filter with QSortFilterProxyModel: at 1M customers that costs
seconds and hundreds of MiB per keystroke (ARCHITECTURE.md §4). Instead the model holds only
the pages the view has asked for (`canFetchMore`/`fetchMore`), and a new query simply resets
it to the first page of that query's results.

The page source can be swapped without a reset (`set_source`): at start-up the first frame
is painted from `agent_desktop.first_page` (plain sqlite3, no SQLAlchemy yet) and the real
search takes over right after, keeping the rows, the selection and the scroll position.
The model depends only on the small protocols below, so it imports no store code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from ui.labels import status_label

log = logging.getLogger(__name__)

ModelIndex = QModelIndex | QPersistentModelIndex
CUSTOMER_ID_ROLE = Qt.ItemDataRole.UserRole + 1
PAGE_ROWS = 100  # rows per keyset page: a screenful or two, ~1 ms to read at 1M

# Roles as plain ints: `data()` runs 42 times per painted row while the list scrolls, and
# comparing an int with a module-level int is the cheapest test Python has (no attribute
# lookups through Qt.ItemDataRole, no enum comparison).
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_CUSTOMER_ID = int(CUSTOMER_ID_ROLE)
_TOOLTIP_COLUMNS = frozenset((0, 1, 5))  # name, company, tags: the ones often cut off

# One loaded row as shown: (name, company, city, phone, status label, tags). A tuple of
# str is untracked by the garbage collector after its first collection, where a row object
# (a frozen dataclass with a __dict__) stays two tracked objects for as long as it is shown.
Texts = tuple[str, str, str, str, str, str]

PageKey = tuple[object, ...]


class ListRow(Protocol):
    """One row as shown (`agent_desktop.search.CustomerRow` or the first-page reader's)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def company(self) -> str: ...
    @property
    def city(self) -> str: ...
    @property
    def phone(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def tags(self) -> str: ...


class ListPage(Protocol):
    @property
    def rows(self) -> Sequence[ListRow]: ...
    @property
    def next_after(self) -> PageKey | None: ...


class PageSource(Protocol):
    """What the model needs from `CustomerSearch` (a fake in unit tests can count calls)."""

    def page(self, query: str, after: PageKey | None, limit: int) -> ListPage: ...


class CustomerListModel(QAbstractTableModel):
    """Columns Name, Company, City, Phone, Status, Tags over lazily fetched pages.

    Why it looks the way it does: while the agent scrolls, the view asks every painted
    cell for seven roles, and each answer is a Python call made with the GIL held — time in
    which the audio threads of a call cannot run (docs/decisions.md, audio, session 3). So
    the per-cell work happens once per page instead: a fetched page is turned into tuples
    of display strings (the status already translated), `data()` answers the
    role that has an answer first and lets the other six fall through, and `flags()` is
    Qt's own (QAbstractTableModel's: enabled, selectable, no children — no Python call).
    A `multiData()` override answering all seven roles in one call was measured and not
    kept: iterating the QModelRoleDataSpan from Python costs as much GIL time as the
    seven calls it replaces (measured with py-spy --gil while the list scrolled).

    Signals:
        query_loaded(str, int): a query's first page is in (query, rows so far).
        load_failed(str): a page could not be read (plain words for the status bar).
    """

    query_loaded = Signal(str, int)
    load_failed = Signal(str)

    COLUMNS = ("name", "company", "city", "phone", "status", "tags")

    def __init__(self, source: PageSource, page_size: int = PAGE_ROWS,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self._source = source
        self._page_size = page_size
        self._texts: list[Texts] = []
        self._ids: list[int] = []
        self._next: PageKey | None = None
        self._exhausted = True
        self._query = ""
        self._row_of: dict[int, int] = {}
        self._fetching = False
        self._failed = False

    # -- loading -----------------------------------------------------------------------

    @property
    def query(self) -> str:
        return self._query

    @property
    def source(self) -> PageSource:
        return self._source

    def set_query(self, query: str) -> None:
        """Show the first page of `query` (empty = all customers, alphabetical)."""
        self.beginResetModel()
        self._query = query
        self._texts, self._ids, self._row_of = [], [], {}
        self._next, self._exhausted = None, False
        page = self._read_page()
        if page is not None:
            self._append(page.rows)
        self.endResetModel()
        self.query_loaded.emit(query, len(self._ids))

    def set_source(self, source: PageSource) -> None:
        """Read further pages from `source`, keeping what is shown (no reset).

        The new source must page the same query in the same order with the same page keys
        (the start-up hand-over from the first-page reader to `CustomerSearch`). A query the
        old source could not answer is run again on the new one.
        """
        self._source = source
        if not self._failed:
            return
        if self._ids:
            self._failed = self._exhausted = False  # the view fetches the next page again
        else:
            self.set_query(self._query)

    def _read_page(self) -> ListPage | None:
        """The next page of the current query, or None after reporting why it failed."""
        try:
            page = self._source.page(self._query, self._next, self._page_size)
        except Exception as exc:
            log.exception("customer page for query %r after %r failed", self._query,
                          self._next)
            self._exhausted = self._failed = True
            self.load_failed.emit(self.tr("Could not read customers: %1").replace("%1", str(exc)))
            return None
        self._failed = False
        self._next = page.next_after
        self._exhausted = page.next_after is None
        return page

    def _append(self, rows: Sequence[ListRow]) -> None:
        """Keep `rows` as display strings: the formatting done once, not per paint."""
        labels: dict[str, str] = {}
        start = len(self._ids)
        for i, r in enumerate(rows, start):
            status = labels.get(r.status)
            if status is None:
                status = labels[r.status] = status_label(r.status)
            self._texts.append((r.name, r.company, r.city, r.phone, status, r.tags))
            self._ids.append(r.id)
            self._row_of[r.id] = i

    def canFetchMore(self, parent: ModelIndex = QModelIndex()) -> bool:  # noqa: B008
        return not self._exhausted and not self._fetching and not parent.isValid()

    def fetchMore(self, parent: ModelIndex = QModelIndex()) -> None:  # noqa: B008
        if self._exhausted or self._fetching or parent.isValid():
            return
        self._fetching = True  # views and testers may re-enter from rowsAboutToBeInserted
        try:
            page = self._read_page()
            if page is None or not page.rows:
                return
            start = len(self._ids)
            self.beginInsertRows(QModelIndex(), start, start + len(page.rows) - 1)
            self._append(page.rows)
            self.endInsertRows()
        finally:
            self._fetching = False

    def refresh_row(self, row_data: ListRow | None, customer_id: int) -> None:
        """Replace one loaded row after an edit (None = deleted: shown until next query)."""
        i = self._row_of.get(customer_id)
        if i is None or row_data is None:
            return
        r = row_data
        self._texts[i] = (r.name, r.company, r.city, r.phone, status_label(r.status), r.tags)
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.COLUMNS) - 1))

    def customer_id(self, row: int) -> int | None:
        return self._ids[row] if 0 <= row < len(self._ids) else None

    def loaded_ids(self) -> list[int]:
        """Ids of the rows fetched so far, in display order (e.g. a dialer's call list)."""
        return list(self._ids)

    def row_of(self, customer_id: int) -> int | None:
        return self._row_of.get(customer_id)

    # -- Qt model API --------------------------------------------------------------------
    # Each of these runs per painted cell (the view's index() asks rowCount and
    # columnCount): the least Python that keeps the contract.

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 6

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != _DISPLAY or not 0 <= section < len(self.COLUMNS):
            return None
        if orientation == Qt.Orientation.Vertical:
            return None
        return (self.tr("Name"), self.tr("Company"), self.tr("City"), self.tr("Phone"),
                self.tr("Status"), self.tr("Tags"))[section]

    def data(self, index: ModelIndex, role: int = _DISPLAY) -> Any:
        # The delegate asks seven roles per painted cell and only DisplayRole has an
        # answer: that one first, the other six fall through three int comparisons.
        # An invalid index has row -1 (never a negative list index here); a stale one
        # past the end answers None, as Qt's default does.
        if role == _DISPLAY:
            row = index.row()
            if row >= 0:
                try:
                    return self._texts[row][index.column()]
                except IndexError:
                    return None
            return None
        if role == _TOOLTIP:
            row, col = index.row(), index.column()
            if 0 <= row < len(self._texts) and col in _TOOLTIP_COLUMNS:
                return self._texts[row][col] or None
            return None
        if role == _CUSTOMER_ID:
            row = index.row()
            return self._ids[row] if 0 <= row < len(self._ids) else None
        return None
