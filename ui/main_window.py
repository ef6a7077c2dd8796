"""The main window: a thin frame that arranges the panels and wires them to each other.

It builds no services and opens no database: `agent_desktop.app` constructs the panels with
their services and hands them in. Later features (softphone, sync, import) plug in through
`add_dock`, `add_status_widget` and the File-menu actions, which the composition root
connects (the actions exist from the start so menus never reshuffle).

Two steps, for the first paint: the window is built with the customer list alone (stand-ins
where the detail pane and the Today list go, looking as the empty panes do), shown, and
`attach_workspace` puts the real panes in right after the first frame. Nothing that needs the
workspace can run in between: its actions are disabled until then, and a customer opened
early (Enter on a row) is opened once the detail pane is there.

Signals:
    import_requested(), export_requested(), settings_requested(): File-menu actions whose
    dialogs belong to other features; the composition root connects them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence

# Only what the first frame shows is imported here (each PySide6 class costs its type
# set-up on first import); dialogs and docks are imported where they are made.
from PySide6.QtWidgets import QLabel, QMainWindow, QSplitter, QTabWidget, QWidget

from agent_desktop import __version__
from ui.customer_list_panel import CustomerListPanel
from ui.ui_state import UiState

if TYPE_CHECKING:
    from PySide6.QtWidgets import QDockWidget, QMessageBox

    from agent_desktop.customers import CustomerService
    from ui.detail_pane import DetailPane
    from ui.dialogs import CustomerDialog
    from ui.today_view import TodayView

log = logging.getLogger(__name__)

SELECTION_SETTLE_MS = 40


class MainWindow(QMainWindow):
    import_requested = Signal()
    export_requested = Signal()
    settings_requested = Signal()

    # Set by attach_workspace(), right after the first frame.
    service: CustomerService
    detail: DetailPane
    today: TodayView

    def __init__(self, customer_list: CustomerListPanel, ui_state: UiState,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle(self.tr("Agent Desktop"))
        self.resize(1280, 800)
        self.customer_list = customer_list
        self._ui_state = ui_state
        self._opening: int | None = None
        self._attached = False
        self._pending_open: int | None = None
        self._early_open: tuple[int, bool] | None = None
        self._reserved: dict[str, QDockWidget] = {}

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("leftTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(customer_list, self.tr("Customers"))
        self.tabs.addTab(QWidget(self.tabs), self.tr("Today"))
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("workspaceSplitter")
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(self._detail_stand_in())
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([760, 520])
        self.setCentralWidget(self.splitter)

        self.rows_label = QLabel(self)
        self.rows_label.setContentsMargins(0, 0, 12, 0)
        self.statusBar().addPermanentWidget(self.rows_label)
        self._reserve_status_bar_height()
        self._build_menus()
        self._wire_list()

    def _reserve_status_bar_height(self) -> None:
        """The status bar as tall from the first frame as with the buttons added after it
        (sync state, pending wrap-ups): otherwise the whole window shifts up by a few
        pixels when they arrive. Measured with throwaway buttons, as the style draws them."""
        from PySide6.QtWidgets import QPushButton, QToolButton

        bar = self.statusBar()
        height = bar.sizeHint().height()
        for probe in (QPushButton("Ag", bar), QToolButton(bar)):
            if isinstance(probe, QPushButton):
                probe.setFlat(True)
            else:
                probe.setText("Ag")
            bar.addPermanentWidget(probe)
            height = max(height, bar.sizeHint().height())
            bar.removeWidget(probe)
            probe.deleteLater()
        bar.setMinimumHeight(height)

    def _detail_stand_in(self) -> QLabel:
        """What the empty detail pane shows, until the real one is attached."""
        # The detail pane's own text and translation context: the frame does not change
        # when the real pane replaces this label.
        label = QLabel(QCoreApplication.translate(
            "DetailPane", "Select a customer on the left to see their details.\n"
            "Ctrl+F searches, the arrow keys move, Enter opens."), self)
        label.setObjectName("detailStandIn")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setWordWrap(True)
        label.setEnabled(False)
        return label

    def attach_workspace(self, service: CustomerService, detail: DetailPane,
                         today: TodayView) -> None:
        """Put the detail pane and the Today list in place of their stand-ins (once)."""
        if self._attached:
            raise RuntimeError("The workspace is already attached to this window.")
        self.service, self.detail, self.today = service, detail, today
        # Keep the divider where it is: on screen, to the pixel; not laid out yet, the
        # sizes restored from the UI state.
        shown = self.splitter.isVisible()
        sizes, state = self.splitter.sizes(), self.splitter.saveState()
        old = self.splitter.replaceWidget(1, detail)
        if old is not None:
            old.deleteLater()
        if shown:
            self.splitter.setSizes(sizes)
        else:
            self.splitter.restoreState(state)
        current = self.tabs.currentIndex()
        stand_in = self.tabs.widget(1)
        self.tabs.removeTab(1)
        if stand_in is not None:
            stand_in.deleteLater()
        self.tabs.insertTab(1, today, self.tr("Today"))
        self.tabs.setCurrentIndex(current)
        self._ui_state.restore_header("today", today.table.horizontalHeader())
        self._attached = True
        self._wire_workspace()
        for action in self._workspace_actions:
            action.setEnabled(True)
        self._update_today_tab()
        if self._early_open is not None:
            (cid, focus), self._early_open = self._early_open, None
            self.open_customer(cid, focus=focus)

    @property
    def attached(self) -> bool:
        return self._attached

    # -- menus -------------------------------------------------------------------------

    def _action(self, text: str, shortcut: QKeySequence | QKeySequence.StandardKey | str | None,
                slot: object) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        return action

    def _build_menus(self) -> None:
        # Ctrl+D (dial) and Ctrl+E (hang up) belong to the softphone panel: not used here.
        bar = self.menuBar()
        file_menu = bar.addMenu(self.tr("&File"))
        self.action_new = self._action(self.tr("&New customer…"), QKeySequence.StandardKey.New,
                                       lambda: self.new_customer())
        self.action_import = self._action(self.tr("&Import…"), "Ctrl+I",
                                          self.import_requested.emit)
        self.action_export = self._action(self.tr("&Export…"), "Ctrl+Shift+E",
                                          self.export_requested.emit)
        self.action_settings = self._action(self.tr("&Settings…"),
                                            QKeySequence.StandardKey.Preferences,
                                            self.settings_requested.emit)
        self.action_quit = self._action(self.tr("&Quit"), QKeySequence.StandardKey.Quit,
                                        self.close)
        # Usable once the workspace is attached (their handlers need the services).
        self._workspace_actions: list[QAction] = [
            self.action_new, self.action_import, self.action_export, self.action_settings]
        for action in self._workspace_actions:
            action.setEnabled(False)
        for a in (self.action_new, None, self.action_import, self.action_export, None,
                  self.action_settings, None, self.action_quit):
            if a is None:
                file_menu.addSeparator()
            else:
                file_menu.addAction(a)
        self.file_menu = file_menu

        customer_menu = bar.addMenu(self.tr("&Customer"))
        self.action_edit = self._action(self.tr("&Edit customer…"), "F2",
                                        self.edit_customer)
        self.action_edit.setEnabled(False)
        self._workspace_actions.append(self.action_edit)
        customer_menu.addAction(self.action_edit)
        self.customer_menu = customer_menu

        view = bar.addMenu(self.tr("&View"))
        # Ctrl+F itself belongs to the list panel's shortcut (two owners = ambiguous = none).
        view.addAction(self._action(self.tr("Find customer (Ctrl+F)"), None, self.show_search))
        view.addAction(self._action(self.tr("&Customers"), "Ctrl+1",
                                    lambda: self.tabs.setCurrentIndex(0)))
        view.addAction(self._action(self.tr("&Today's follow-ups"), "Ctrl+2",
                                    lambda: self.tabs.setCurrentIndex(1)))
        self.view_menu = view

        help_menu = bar.addMenu(self.tr("&Help"))
        help_menu.addAction(self._action(self.tr("&About Agent Desktop"), None, self.show_about))

    # -- wiring ------------------------------------------------------------------------

    def _wire_list(self) -> None:
        lst = self.customer_list
        # Arrowing through the list coalesces detail loads (a held Down key must not queue
        # a load per row); Enter, double-click and Today open at once.
        self._open_timer = QTimer(self)
        self._open_timer.setSingleShot(True)
        self._open_timer.setInterval(SELECTION_SETTLE_MS)
        self._open_timer.timeout.connect(self.open_pending)
        lst.current_customer_changed.connect(self._selection_moved)
        lst.customer_activated.connect(lambda cid: self.open_customer(cid, focus=True))
        lst.model.query_loaded.connect(self._rows_loaded)
        lst.model.rowsInserted.connect(lambda *_: self._rows_loaded(
            lst.model.query, lst.model.rowCount()))
        lst.model.load_failed.connect(lambda text: self.statusBar().showMessage(text))

    def _wire_workspace(self) -> None:
        svc, detail = self.service, self.detail
        self.today.customer_activated.connect(lambda cid: self.open_customer(cid, focus=True))
        svc.customer_changed.connect(self.refresh_customer)
        svc.tasks_changed.connect(lambda: self.today.model.refresh())
        self.today.model.modelReset.connect(self._update_today_tab)
        detail.message.connect(lambda text: self.statusBar().showMessage(text, 6000))

    def _selection_moved(self, customer_id: int) -> None:
        if self._opening == customer_id:
            return  # the list followed an open_customer() call
        self._pending_open = customer_id
        self._open_timer.start()

    def open_pending(self) -> None:
        """Open the customer the list selection settled on (now, if a load is pending)."""
        self._open_timer.stop()
        cid, self._pending_open = self._pending_open, None
        if cid is not None:
            self.open_customer(cid)

    def open_customer(self, customer_id: int, focus: bool = False) -> None:
        """Show a customer in the detail pane (from the list, Today, or caller ID)."""
        if self._opening == customer_id:
            return  # re-entered through the list's selection signal
        if not self._attached:
            self._early_open = (customer_id, focus)  # opened by attach_workspace()
            return
        self._open_timer.stop()
        self._pending_open = None
        self._opening = customer_id
        try:
            previous = self.detail.detail
            if not self.detail.show_customer(customer_id):
                # Unsaved, invalid edits: keep the list on the customer being edited.
                if previous is not None and self.detail.detail is not None:
                    self.customer_list.select_customer(previous.id)
                return
            self.customer_list.select_customer(customer_id)
            if focus:
                self.detail.focus_first_field()
        finally:
            self._opening = None

    def refresh_customer(self, customer_id: int) -> None:
        """A customer changed (here, in a wrap-up, or by sync): refresh its row and detail."""
        self.customer_list.model.refresh_row(self.service.list_row(customer_id), customer_id)
        self.detail.reload_if_shown(customer_id)

    def _rows_loaded(self, query: str, rows: int) -> None:
        # The total is never counted (that would scan 1M rows): "100+" means "more below".
        n = str(rows) + ("+" if self.customer_list.model.canFetchMore() else "")
        if query:
            text = self.tr("1 match") if n == "1" else self.tr("%1 matches").replace("%1", n)
        else:
            text = (self.tr("1 customer") if n == "1"
                    else self.tr("%1 customers").replace("%1", n))
        self.rows_label.setText(text)

    def _update_today_tab(self) -> None:
        n = self.today.model.rowCount()
        label = self.tr("Today") if n == 0 else self.tr("Today (%1)").replace("%1", str(n))
        self.tabs.setTabText(1, label)

    def new_customer(self, phone: str = "") -> CustomerDialog:
        """New-customer dialog; `phone` prefilled e.g. from an unknown caller's number."""
        from ui.dialogs import CustomerDialog

        dialog = CustomerDialog(self.service, None, self)
        if phone and dialog.phone is not None:
            dialog.phone.setText(phone)
        dialog.setObjectName("newCustomerDialog")
        dialog.accepted.connect(lambda: self._customer_created(dialog))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def _customer_created(self, dialog: CustomerDialog) -> None:
        if dialog.saved_id is None:
            return
        self.refresh_list()
        self.open_customer(dialog.saved_id, focus=True)
        self.statusBar().showMessage(self.tr("Customer created"), 6000)

    def edit_customer(self) -> CustomerDialog | None:
        if not self._attached or self.detail.detail is None:
            self.statusBar().showMessage(self.tr("Select a customer first."), 6000)
            return None
        from ui.dialogs import CustomerDialog

        dialog = CustomerDialog(self.service, self.detail.detail, self)
        dialog.setObjectName("editCustomerDialog")
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def show_search(self) -> None:
        self.tabs.setCurrentIndex(0)
        self.customer_list.focus_search()

    def show_about(self) -> QMessageBox:
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(QMessageBox.Icon.Information, self.tr("About Agent Desktop"),
                          self.tr("Agent Desktop — a softphone and customer workspace for "
                                  "telesales agents.") + f"\n\n{__version__}",
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("aboutBox")
        box.open()
        return box

    # -- extension points ----------------------------------------------------------------

    def add_dock(self, widget: QWidget, title: str,
                 area: Qt.DockWidgetArea = Qt.DockWidgetArea.BottomDockWidgetArea) -> QDockWidget:
        """Add a panel (e.g. the softphone) as a dock; its visibility toggles from View."""
        from PySide6.QtWidgets import QDockWidget

        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{widget.objectName() or title}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def reserve_dock(self, name: str, title: str, waiting_text: str,
                     area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea, *,
                     tabify_with: QDockWidget | None = None,
                     width: int | None = None) -> QDockWidget:
        """A dock that a panel built later (the softphone: it needs the SIP stack) fills
        with `fill_dock(name, panel)`. Reserved before the first frame, so that frame has
        the finished window's layout and nothing shifts when the panel arrives. Call it
        after `restore_ui_state`: a dock the saved state knows goes back where the agent
        left it (`restoreDockWidget`); otherwise it is added to `area`, tabbed with
        `tabify_with`, and `width` wide."""
        from PySide6.QtWidgets import QDockWidget

        stand_in = QLabel(waiting_text)
        stand_in.setObjectName(f"{name}StandIn")
        stand_in.setAlignment(Qt.AlignmentFlag.AlignCenter)
        stand_in.setWordWrap(True)
        stand_in.setEnabled(False)
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(stand_in)
        # Where the agent left it last time (saved UI state), else the default place.
        if not self.restoreDockWidget(dock):
            self.addDockWidget(area, dock)
            if tabify_with is not None:
                self.tabifyDockWidget(tabify_with, dock)
                tabify_with.raise_()  # the first dock of a group stays the one shown
            if width is not None:
                self.resizeDocks([dock], [width], Qt.Orientation.Horizontal)
        self.view_menu.addAction(dock.toggleViewAction())
        self._reserved[name] = dock
        return dock

    def fill_dock(self, name: str, panel: QWidget, title: str) -> QDockWidget:
        """Put `panel` in the dock reserved as `name`, in place: same size, same tab, same
        visibility. Without a reservation (a window built by tests or with the dock never
        reserved) the panel gets a new dock on the right."""
        dock = self._reserved.pop(name, None)
        if dock is None:
            return self.add_dock(panel, title, Qt.DockWidgetArea.RightDockWidgetArea)
        stand_in = dock.widget()
        dock.setWidget(panel)
        if stand_in is not None:
            stand_in.deleteLater()
        return dock

    def reserved_dock_message(self, name: str, text: str) -> None:
        """Say in a reserved dock why its panel will not come (e.g. the phone failed)."""
        dock = self._reserved.get(name)
        if dock is not None and isinstance(label := dock.widget(), QLabel):
            label.setText(text)

    def refresh_list(self) -> None:
        """Re-run the current search (after an import or a sync brought new rows)."""
        self.customer_list.model.set_query(self.customer_list.model.query)

    def current_customer_id(self) -> int | None:
        if not self._attached or self.detail.detail is None:
            return None
        return self.detail.detail.id

    def add_status_widget(self, widget: QWidget) -> None:
        """A permanent status-bar widget (call state, sync state)."""
        self.statusBar().addPermanentWidget(widget)

    # -- state -------------------------------------------------------------------------

    def restore_ui_state(self) -> None:
        if not self._ui_state.restore_window(self):
            self._fit_to_screen()
        self._ui_state.restore_splitter("workspace", self.splitter)
        self._ui_state.restore_header("customers", self.customer_list.table.horizontalHeader())
        if self._attached:
            self._ui_state.restore_header("today", self.today.table.horizontalHeader())

    def _fit_to_screen(self) -> None:
        """First start: most of the screen, centred (agents work in this window all day)."""
        screen = self.screen()
        if screen is None:
            return
        avail = screen.availableGeometry()
        w = min(1440, int(avail.width() * 0.94))
        h = min(960, int(avail.height() * 0.94))
        self.setGeometry(avail.x() + (avail.width() - w) // 2,
                         avail.y() + (avail.height() - h) // 2, w, h)
        self.splitter.setSizes([int(w * 0.58), int(w * 0.42)])

    def save_ui_state(self) -> None:
        self._ui_state.save_window(self)
        self._ui_state.save_splitter("workspace", self.splitter)
        self._ui_state.save_header("customers", self.customer_list.table.horizontalHeader())
        if self._attached:
            self._ui_state.save_header("today", self.today.table.horizontalHeader())
        self._ui_state.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if (self._attached and self.detail.is_dirty() and self.detail.detail is not None
                and not self.detail.save_fields()):
            from PySide6.QtWidgets import QMessageBox

            box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Unsaved changes"),
                              self.tr("The changes to this customer could not be saved. "
                                      "Fix them or press Revert, then close again."),
                              QMessageBox.StandardButton.Ok, self)
            box.open()
            event.ignore()
            return
        self.save_ui_state()
        event.accept()
