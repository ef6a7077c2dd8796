"""Left panel: the search box over the lazily loaded customer table.

Search is debounced (150 ms) so a fast typist triggers one query, not one per key; an input
method's commit string (Chinese) arrives as one text change and is handled the same way.

Signals:
    current_customer_changed(int): the selected row changed (detail pane follows).
    customer_activated(int): Enter or double-click: open this customer (focus to detail).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QLineEdit,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ui.customer_list_model import CUSTOMER_ID_ROLE, CustomerListModel

DEBOUNCE_MS = 150


class CustomerTable(QTableView):
    """Table that turns Enter into `activated_current` (QTableView does not by default)."""

    activated_current = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.activated_current.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class CustomerListPanel(QWidget):
    current_customer_changed = Signal(int)
    customer_activated = Signal(int)

    def __init__(self, model: CustomerListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("customerListPanel")
        self.model = model

        self.search = QLineEdit(self)
        self.search.setObjectName("customerSearch")
        self.search.setClearButtonEnabled(True)
        self.search.setPlaceholderText(
            self.tr("Search name, company, city, tag or phone digits  (Ctrl+F)"))
        self.search.setAccessibleName(self.tr("Search customers"))
        self.search.installEventFilter(self)

        self.table = CustomerTable(self)
        self.table.setObjectName("customerTable")
        self.table.setAccessibleName(self.tr("Customers"))
        self.table.setModel(model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        # Fixed row heights let the view skip measuring rows (cheap at any row count).
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(
            self.table.fontMetrics().height() + 10)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        for col, width in enumerate((140, 170, 100, 125, 90)):
            header.resizeSection(col, width)

        self.empty = QLabel(self)
        self.empty.setObjectName("customerListEmpty")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setMargin(24)

        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.table)
        self.stack.addWidget(self.empty)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        layout.setSpacing(6)
        layout.addWidget(self.search)
        layout.addWidget(self.stack, 1)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._run_search)
        self.search.textChanged.connect(self._debounce.start)
        self.search.returnPressed.connect(self._search_return)

        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.table.doubleClicked.connect(self._activate_index)
        self.table.activated_current.connect(
            lambda: self._activate_index(self.table.currentIndex()))
        model.query_loaded.connect(self._query_loaded)
        model.modelReset.connect(self._reconnect_selection)

        # Window-wide: Ctrl+F works from the detail pane or the Today tab too.
        find = QShortcut(QKeySequence.StandardKey.Find, self)
        find.setContext(Qt.ShortcutContext.WindowShortcut)
        find.activated.connect(self.focus_search)
        self._find_shortcut = find

    # -- behaviour ----------------------------------------------------------------------

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def load(self) -> None:
        """Show the first page of the current query (called once at start-up)."""
        self.model.set_query(self.search.text().strip())

    def select_customer(self, customer_id: int) -> bool:
        """Make a loaded customer current (True), e.g. after it was opened from Today."""
        row = self.model.row_of(customer_id)
        if row is None:
            return False
        if self.table.currentIndex().row() != row:
            self.table.setCurrentIndex(self.model.index(row, 0))
        return True

    def _run_search(self) -> None:
        query = self.search.text().strip()
        if query != self.model.query:
            self.model.set_query(query)

    def _search_return(self) -> None:
        """Enter in the search box: search now, then move into the results."""
        self._debounce.stop()
        self._run_search()
        if self.model.rowCount() > 0:
            self.table.setFocus(Qt.FocusReason.OtherFocusReason)
            if not self.table.currentIndex().isValid():
                self.table.setCurrentIndex(self.model.index(0, 0))

    def _query_loaded(self, query: str, rows: int) -> None:
        if rows == 0:
            if query:
                self.empty.setText(self.tr(
                    "No customer matches “%1”.\nCheck the spelling, try fewer letters or a "
                    "few digits of the phone number, or press Esc to clear the search."
                ).replace("%1", query))
            else:
                self.empty.setText(self.tr(
                    "No customers yet.\nUse File → New customer… or File → Import… to add "
                    "some."))
            self.stack.setCurrentWidget(self.empty)
        else:
            self.stack.setCurrentWidget(self.table)

    def _reconnect_selection(self) -> None:
        # A reset keeps the same selection model; nothing is current any more.
        self.table.scrollToTop()

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        cid = current.data(CUSTOMER_ID_ROLE) if current.isValid() else None
        if cid is not None:
            self.current_customer_changed.emit(int(cid))

    def _activate_index(self, index: QModelIndex) -> None:
        cid = index.data(CUSTOMER_ID_ROLE) if index.isValid() else None
        if cid is not None:
            self.customer_activated.emit(int(cid))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.search and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.key() == Qt.Key.Key_Escape and self.search.text():
                self.search.clear()
                self._debounce.stop()
                self._run_search()
                return True
            if event.key() == Qt.Key.Key_Down and self.model.rowCount() > 0:
                self.table.setFocus(Qt.FocusReason.OtherFocusReason)
                if not self.table.currentIndex().isValid():
                    self.table.setCurrentIndex(self.model.index(0, 0))
                return True
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Esc anywhere in the panel clears the search and returns to it."""
        if event.key() == Qt.Key.Key_Escape:
            if self.search.text():
                self.search.clear()
                self._debounce.stop()
                self._run_search()
            self.focus_search()
            event.accept()
            return
        super().keyPressEvent(event)
