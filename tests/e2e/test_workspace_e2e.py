"""End to end: the real app, started like an agent starts it, in a real X window (Xvfb).

The test starts its own Xvfb on a free display (the `xvfb` fixture, tests/e2e/conftest.py),
launches `python -m agent_desktop --data-dir … --demo-rows 2000` with
AGENT_DESKTOP_E2E_SCRIPT pointing at a scenario (ui/scripted_scenario.py drives the real
widgets in-process: QTest key clicks and an input-method commit for Chinese), waits for
the app to quit when the scenario ends (tests/e2e/app_runner.py: nothing the app started
may outlive it), then checks the database the app wrote and keeps screenshots under
artifacts/screenshots/. Everything started here is stopped by PID.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from agent_desktop.demo import generate
from agent_desktop.paths import AppPaths
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, Outbox, Tag
from tests.e2e.app_runner import DEMO_ROWS, SHOTS, run_app

pytestmark = pytest.mark.e2e


def _names() -> tuple[str, str]:
    """A Latin surname and a 2-character Chinese name that the demo set contains."""
    latin = chinese = ""
    for c in generate(DEMO_ROWS):
        if not chinese and c.country == "CN" and len(c.name) == 2:
            chinese = c.name
        if not latin and c.country == "DE" and " " in c.name:
            latin = c.name.split()[-1]
    assert latin and chinese
    return latin, chinese


def test_agent_searches_opens_tags_and_saves(xvfb: str, tmp_path: Path) -> None:
    latin, chinese = _names()
    tag = "e2e-followup"
    steps: list[dict[str, object]] = [
        {"op": "wait_rows", "min": 20},
        {"op": "wait", "ms": 300},
        {"op": "screenshot", "name": "01-start"},
        {"op": "type", "target": "search", "text": latin},
        {"op": "rows", "min": 1},
        {"op": "screenshot", "name": "02-search-latin"},
        {"op": "clear"},
        {"op": "ime", "target": "search", "text": chinese},
        {"op": "rows", "min": 1},
        {"op": "screenshot", "name": "03-search-chinese"},
        {"op": "open_row", "row": 0},
        {"op": "add_tag", "text": tag},
        {"op": "set_field", "field": "city", "text": "Hangzhou"},
        {"op": "save"},
        {"op": "wait", "ms": 300},
        {"op": "screenshot", "name": "04-customer-saved"},
        {"op": "tab", "index": 1},
        {"op": "wait", "ms": 300},
        {"op": "screenshot", "name": "05-today"},
        {"op": "tab", "index": 0},
        {"op": "clear"},
        {"op": "open_row", "row": 5},
        {"op": "wait", "ms": 300},
        {"op": "screenshot", "name": "07-overview"},
        {"op": "screenshot", "name": "08-window", "window": True},
    ]
    # Offline (--no-sync): the edits' outbox rows stay for this test to inspect.
    data = run_app(xvfb, tmp_path, steps, "--no-sync")
    searched = [s for s in data["steps"] if s["op"] == "rows"]
    assert searched[0]["query"] == latin
    assert all(latin in name for name in searched[0]["rows"])
    assert searched[1]["query"] == chinese
    assert chinese in searched[1]["rows"]
    opened = next(s for s in data["steps"] if s["op"] == "open_row")
    assert opened["name"] == chinese

    # What the app wrote is really in the database, with outbox rows for sync.
    db = Database.open(AppPaths.from_root(tmp_path).database)
    try:
        with db.transaction() as s:
            customer = s.get(Customer, opened["customer_id"])
            assert customer is not None and customer.city == "Hangzhou"
            tags = s.scalars(select(Tag).where(Tag.customer_id == customer.id,
                                               Tag.deleted_at.is_(None))).all()
            assert tag in [t.name for t in tags]
            tag_row = next(t for t in tags if t.name == tag)
            entities = {(o.entity, o.entity_uuid) for o in s.scalars(select(Outbox))}
            assert ("tag", tag_row.uuid) in entities
            assert ("customer", customer.uuid) in entities
            count = s.scalar(select(Customer.id).order_by(Customer.id.desc()).limit(1))
            assert count == DEMO_ROWS
    finally:
        db.close()

    for shot in ("01-start", "02-search-latin", "03-search-chinese", "04-customer-saved",
                 "05-today", "07-overview"):
        path = SHOTS / f"{shot}.png"
        assert path.exists() and path.stat().st_size > 10_000
    shots = [s for s in data["steps"] if s["op"] == "screenshot"]
    assert shots[0]["size"] == [1400, 900]  # the whole X screen was grabbed
    assert shots[-1]["size"][0] < 1400  # …or just the window


def test_chinese_ui_screenshot(xvfb: str, tmp_path: Path) -> None:
    """The zh_CN UI renders (no missing glyphs is checked by eye on this screenshot)."""
    steps: list[dict[str, object]] = [
        {"op": "wait_rows", "min": 20},
        {"op": "open_row", "row": 3},
        {"op": "wait", "ms": 300},
        {"op": "screenshot", "name": "06-zh_CN"},
    ]
    data = run_app(xvfb, tmp_path, steps, "--lang", "zh_CN", "--no-sync", "--no-phone")
    assert (SHOTS / "06-zh_CN.png").exists()
    assert data["steps"][1]["name"]


def _answering_customer() -> tuple[str, str]:
    """(name, E.164) of a demo customer whose first number the simulated line answers
    (its last digit picks the line's behaviour: 2 busy, 3 no answer, 4 reject, …)."""
    for c in generate(DEMO_ROWS):
        # A Chinese number: the panel dials the number as typed, parsed in the default
        # region (CN); a foreign national-format number would be refused (reported).
        if c.country == "CN" and c.phones and c.phones[0].e164[-1] in "01789":
            return c.name, c.phones[0].e164
    raise AssertionError("no answering demo customer")


def test_call_wrap_up_from_the_workspace(xvfb: str, tmp_path: Path) -> None:
    """Click-to-dial the selected customer through the real SIP stack and the simulated
    line, hang up, and save the wrap-up that opens at hang-up."""
    name, e164 = _answering_customer()
    steps: list[dict[str, object]] = [
        {"op": "wait_rows", "min": 20},
        {"op": "type", "target": "search", "text": e164[1:]},  # digits find the number
        {"op": "rows", "min": 1},
        {"op": "open_row", "row": 0},
        {"op": "wait_phone", "timeout_s": 60},
        {"op": "dial", "timeout_s": 30},
        {"op": "wait", "ms": 1500},
        {"op": "screenshot", "name": "09-call"},
        {"op": "hangup", "timeout_s": 30},
        {"op": "screenshot", "name": "10-wrapup"},
        {"op": "wrapup", "disposition": 1, "notes": "Wants a quote (e2e)"},
        {"op": "wait", "ms": 300},
        {"op": "screenshot", "name": "11-after-wrapup"},
        {"op": "screenshot", "name": "12-window-call", "window": True},
    ]
    data = run_app(xvfb, tmp_path, steps, "--no-sync")
    opened = next(s for s in data["steps"] if s["op"] == "open_row")
    assert opened["name"] == name
    call_id = next(s for s in data["steps"] if s["op"] == "wrapup")["call_log_id"]
    dialled = next(s for s in data["steps"] if s["op"] == "dial")
    assert dialled["state"] == "Connected"
    assert next(s for s in data["steps"] if s["op"] == "wait_phone")["dialer"]

    from agent_desktop.store.models import CallLog, Recording

    db = Database.open(AppPaths.from_root(tmp_path).database)
    try:
        with db.transaction() as s:
            call = s.get(CallLog, call_id)
            assert call is not None and call.customer_id == opened["customer_id"]
            assert call.outcome == "answered" and call.talk_seconds > 0
            assert call.wrapped_up_at is not None and call.disposition
            assert "Wants a quote (e2e)" in call.wrapup_notes
            recs = s.scalars(select(Recording).where(Recording.call_log_id == call_id)).all()
            assert recs and recs[0].sha256
            entities = {(o.entity, o.entity_uuid) for o in s.scalars(select(Outbox))}
            assert ("call_log", call.uuid) in entities
    finally:
        db.close()


def test_edits_and_calls_reach_the_embedded_sync_server(xvfb: str, tmp_path: Path) -> None:
    """The embedded default syncs: the app starts its loopback server, signs in with the
    keyring-held demo password, and a tag the agent adds and a wrapped-up call are pushed."""
    tag = "synced-e2e"
    _name, e164 = _answering_customer()
    steps: list[dict[str, object]] = [
        {"op": "wait_rows", "min": 20},
        {"op": "wait_sync", "timeout_s": 120},
        {"op": "type", "target": "search", "text": e164[1:]},
        {"op": "rows", "min": 1},
        {"op": "open_row", "row": 0},
        {"op": "add_tag", "text": tag},
        {"op": "wait_phone", "timeout_s": 60},
        {"op": "dial", "timeout_s": 30},
        {"op": "wait", "ms": 800},
        {"op": "hangup", "timeout_s": 30},
        {"op": "wrapup", "disposition": 1, "notes": "synced call"},
        {"op": "wait_sync", "after_previous": True, "timeout_s": 60},
        {"op": "wait", "ms": 1500},
        {"op": "wait_sync", "after_previous": True, "timeout_s": 60},
        {"op": "screenshot", "name": "13-synced"},
        {"op": "clear"},
        {"op": "open_row", "row": 5},
        {"op": "wait", "ms": 500},
        {"op": "screenshot", "name": "14-window-synced", "window": True},
    ]
    data = run_app(xvfb, tmp_path, steps, timeout=300)
    synced = [s for s in data["steps"] if s["op"] == "wait_sync"]
    assert synced[-1]["status"] == "online" and not synced[-1]["error"]
    call_id = next(s for s in data["steps"] if s["op"] == "wrapup")["call_log_id"]

    import sqlite3

    from agent_desktop.store.models import CallLog

    db = Database.open(AppPaths.from_root(tmp_path).database)
    try:
        with db.transaction() as s:
            tag_row = s.scalars(select(Tag).where(Tag.name == tag)).one()
            call = s.get(CallLog, call_id)
            assert call is not None and call.wrapped_up_at is not None
            uuids = {tag_row.uuid, call.uuid}
            pending = s.scalars(select(Outbox).where(Outbox.entity_uuid.in_(uuids))).all()
            assert pending == []  # pushed and acknowledged
    finally:
        db.close()
    server_db = AppPaths.from_root(tmp_path).data_dir / "server" / "server.db"
    with sqlite3.connect(server_db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        text = "\n".join(str(v) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"')
                         for v in row)
    for uuid in uuids:
        assert uuid in text, f"{uuid} is not on the server"
