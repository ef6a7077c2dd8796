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
        self._rows: list[ListRow] = []
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
        self._rows, self._row_of = [], {}
        self._next, self._exhausted = None, False
        self._load_page()
        self.endResetModel()
        self.query_loaded.emit(query, len(self._rows))

    def set_source(self, source: PageSource) -> None:
        """Read further pages from `source`, keeping what is shown (no reset).

        The new source must page the same query in the same order with the same page keys
        (the start-up hand-over from the first-page reader to `CustomerSearch`). A query the
        old source could not answer is run again on the new one.
        """
        self._source = source
        if not self._failed:
            return
        if self._rows:
            self._failed = self._exhausted = False  # the view fetches the next page again
        else:
            self.set_query(self._query)

    def _load_page(self) -> Sequence[ListRow]:
        self._failed = False
        try:
            page = self._source.page(self._query, self._next, self._page_size)
        except Exception as exc:
            log.exception("customer page for query %r failed", self._query)
            self._exhausted = self._failed = True
            self.load_failed.emit(self.tr("Could not read customers: %1").replace("%1", str(exc)))
            return []
        start = len(self._rows)
        self._rows.extend(page.rows)
        for i, r in enumerate(page.rows, start):
            self._row_of[r.id] = i
        self._next = page.next_after
        self._exhausted = page.next_after is None
        return page.rows

    def canFetchMore(self, parent: ModelIndex = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and not self._exhausted and not self._fetching

    def fetchMore(self, parent: ModelIndex = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid() or self._exhausted or self._fetching:
            return
        self._fetching = True  # views and testers may re-enter from rowsAboutToBeInserted
        try:
            self._fetch_next()
        finally:
            self._fetching = False

    def _fetch_next(self) -> None:
        try:
            page = self._source.page(self._query, self._next, self._page_size)
        except Exception as exc:
            log.exception("next customer page for %r failed", self._query)
            self._exhausted = self._failed = True
            self.load_failed.emit(self.tr("Could not read customers: %1").replace("%1", str(exc)))
            return
        self._failed = False
        self._next = page.next_after
        self._exhausted = page.next_after is None
        if not page.rows:
            return
        start = len(self._rows)
        self.beginInsertRows(QModelIndex(), start, start + len(page.rows) - 1)
        self._rows.extend(page.rows)
        for i, r in enumerate(page.rows, start):
            self._row_of[r.id] = i
        self.endInsertRows()

    def refresh_row(self, row_data: ListRow | None, customer_id: int) -> None:
        """Replace one loaded row after an edit (None = deleted: shown until next query)."""
        i = self._row_of.get(customer_id)
        if i is None or row_data is None:
            return
        self._rows[i] = row_data
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.COLUMNS) - 1))

    def customer_id(self, row: int) -> int | None:
        return self._rows[row].id if 0 <= row < len(self._rows) else None

    def loaded_ids(self) -> list[int]:
        """Ids of the rows fetched so far, in display order (e.g. a dialer's call list)."""
        return [r.id for r in self._rows]

    def row_of(self, customer_id: int) -> int | None:
        return self._row_of.get(customer_id)

    # -- Qt model API --------------------------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or not 0 <= section < len(self.COLUMNS):
            return None
        if orientation == Qt.Orientation.Vertical:
            return None
        return (self.tr("Name"), self.tr("Company"), self.tr("City"), self.tr("Phone"),
                self.tr("Status"), self.tr("Tags"))[section]

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        r = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 4:
                return status_label(r.status)
            return getattr(r, self.COLUMNS[col])
        if role == Qt.ItemDataRole.ToolTipRole and col in (0, 1, 5):
            return getattr(r, self.COLUMNS[col]) or None
        if role == CUSTOMER_ID_ROLE:
            return r.id
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

