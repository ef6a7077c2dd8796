"""Too little free disk for the copy kept before an upgrade: the agent is told how much is
needed and where, and chooses to update without a copy or to quit.

Here the free space is reported short by replacing `Database.backup_space` (the decision
logic and the window); tests/integration/test_upgrade_disk_space.py runs the real app on
a real, small tmpfs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from agent_desktop.store.db import Database, StoreError
from agent_desktop.store.space import SpaceCheck, check_room, format_size
from agent_desktop.store_upgrade import Outcome, StoreUpgrade
from tests.unit.test_app_store_upgrade import LIST_INDEXES, ROWS, make_old_database, state
from ui.migration_window import MigrationWindow

GB = 1000**3


def short(folder: Path) -> SpaceCheck:
    return SpaceCheck(folder, needed=int(2.5 * GB), free=int(1.2 * GB))


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    path = tmp_path / "agent.sqlite3"
    make_old_database(path)
    return path


@pytest.fixture
def no_room(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Database, "backup_space", lambda _self, target: short(target.parent))


def test_sizes_read_as_words() -> None:
    assert [format_size(n) for n in (512, 48_000, 7_340_032, 2_500_000_000)] == [
        "512 bytes", "48 kB", "7.3 MB", "2.5 GB"]


def test_room_is_the_copy_plus_a_margin(tmp_path: Path) -> None:
    small = check_room(tmp_path, 1_000_000)
    assert small.needed == 1_000_000 + 16 * 1024 * 1024  # at least 16 MiB of margin
    big = check_room(tmp_path, 2 * GB)
    assert big.needed == 2 * GB + 2 * GB // 10
    assert big.free == small.free > 0 and big.folder == tmp_path
    assert SpaceCheck(tmp_path, 10, 9).short and not SpaceCheck(tmp_path, 10, 10).short


def box_of(window: MigrationWindow) -> QMessageBox:
    box = window.findChild(QMessageBox, "backupSpaceBox")
    assert box is not None and box.isVisible()
    return box


def button(box: QMessageBox, text: str) -> QPushButton:
    return next(b for b in box.findChildren(QPushButton) if b.text() == text)


def test_the_window_says_how_much_and_where_then_quit_stops(qtbot: QtBot) -> None:
    window = MigrationWindow()
    qtbot.addWidget(window)
    window.show()
    window.ask_about_space("/home/agent/.local/share/agent-desktop/data", int(2.5 * GB),
                           int(1.2 * GB))
    box = box_of(window)
    text = box.text()
    assert "needs 2.5 GB in /home/agent/.local/share/agent-desktop/data" in text
    assert "only 1.2 GB is free" in text
    assert box.defaultButton() is button(box, "Quit")  # the safe answer is the default
    shots = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    assert box.grab().save(str(shots / "migration-low-disk.png"))  # to look at
    skipped: list[int] = []
    window.skip_backup_requested.connect(lambda: skipped.append(1))
    with qtbot.waitSignal(window.stop_requested, timeout=5000):
        button(box, "Quit").click()
    assert skipped == [] and window.step_label.text() == "Stopping safely…"
    window.done()


def test_the_window_can_update_without_a_copy(qtbot: QtBot) -> None:
    window = MigrationWindow()
    qtbot.addWidget(window)
    window.show()
    window.ask_about_space("/data", 300_000_000, 12_000_000)
    stops: list[int] = []
    window.stop_requested.connect(lambda: stops.append(1))
    with qtbot.waitSignal(window.skip_backup_requested, timeout=5000):
        button(box_of(window), "Update without a copy").click()
    assert stops == [] and window.step_label.text() == "Updating without a copy…"
    window.done()


def run(qtbot: QtBot, upgrade: StoreUpgrade) -> tuple[Any, str]:
    with qtbot.waitSignal(upgrade.finished, timeout=60_000) as done:
        upgrade.start()
    assert upgrade.wait(10)
    return done.args[0], done.args[1]


@pytest.mark.usefixtures("no_room")
def test_updating_without_a_copy(old_db: Path, qtbot: QtBot,
                                 caplog: pytest.LogCaptureFixture) -> None:
    upgrade = StoreUpgrade(old_db)
    asked: list[SpaceCheck] = []
    steps: list[str] = []
    upgrade.step.connect(lambda text, *_a: steps.append(text))

    def answer(space: SpaceCheck) -> None:
        asked.append(space)
        upgrade.skip_backup()

    upgrade.space_short.connect(answer)
    with caplog.at_level(logging.WARNING, "agent_desktop.store_upgrade"):
        db, error = run(qtbot, upgrade)
    assert error == "" and isinstance(db, Database) and upgrade.outcome is Outcome.DONE
    db.close()
    assert len(asked) == 1 and asked[0].folder == old_db.parent
    assert [s.split(":")[0] for s in steps] == ["Updating"]  # no copy step
    assert state(old_db) == ("0003", LIST_INDEXES, ROWS)
    assert not old_db.with_name(old_db.name + ".before-0003").exists()
    assert "the agent chose to update without a backup (1.2 GB free, 2.5 GB needed)" \
        in caplog.text


@pytest.mark.usefixtures("no_room")
def test_quitting_at_the_question_leaves_the_file_alone(old_db: Path, qtbot: QtBot) -> None:
    upgrade = StoreUpgrade(old_db)
    upgrade.space_short.connect(lambda _space: upgrade.stop())
    db, error = run(qtbot, upgrade)
    assert db is None and error == StoreUpgrade.STOPPED and upgrade.outcome is Outcome.STOPPED
    assert upgrade.stop_reason == "quit when the disk was too full for the backup"
    assert state(old_db) == ("0002", set(), ROWS)
    assert list(old_db.parent.glob("*.before-*")) == []


@pytest.mark.usefixtures("no_room")
def test_with_nobody_to_ask_it_does_not_migrate(old_db: Path, qtbot: QtBot) -> None:
    upgrade = StoreUpgrade(old_db)
    db, error = run(qtbot, upgrade)
    assert error == StoreUpgrade.STOPPED
    assert db is None and upgrade.outcome is Outcome.STOPPED
    assert "nobody to ask" in upgrade.stop_reason
    assert state(old_db) == ("0002", set(), ROWS)


@pytest.mark.usefixtures("no_room")
def test_database_migrate_refuses_in_plain_words(old_db: Path) -> None:
    with pytest.raises(StoreError) as refused:
        Database.open(old_db)
    text = str(refused.value)
    assert text.startswith("Not enough free disk space to keep a copy of the database")
    assert f"2.5 GB is needed in {old_db.parent}, 1.2 GB is free" in text
    assert state(old_db) == ("0002", set(), ROWS)
