"""CustomerService against a real migrated SQLite file: edits, outbox rows, bad input."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from agent_desktop.customers import (
    CustomerService,
    NotFoundError,
    ValidationError,
)
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, Outbox, Tag


@pytest.fixture
def service(db: Database) -> CustomerService:
    return CustomerService(db, PhoneNormalizer("CN"))


def outbox(db: Database) -> list[Outbox]:
    with db.transaction() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.mutation_id)))


def test_create_writes_customer_phone_and_outbox(service: CustomerService, db: Database) -> None:
    cid = service.create_customer({"name": "  Zhang Wei ", "company": "Acme", "city": "上海"},
                                  phone="138 0013 8000")
    d = service.load(cid)
    assert d.name == "Zhang Wei"
    assert d.company == "Acme" and d.city == "上海"
    assert len(d.phones) == 1 and d.phones[0].valid and d.phones[0].e164 == "+8613800138000"
    rows = outbox(db)
    assert [(r.entity, r.op) for r in rows] == [("customer", "upsert"), ("phone", "upsert")]
    assert json.loads(rows[1].changed_fields)["customer_uuid"] == d.uuid
    with db.transaction() as s:
        assert s.get(Customer, cid).name_key == "zhang wei"  # type: ignore[union-attr]


def test_update_only_changed_fields_and_name_key(service: CustomerService,
                                                 db: Database) -> None:
    cid = service.create_customer({"name": "Anna", "city": "Berlin"})
    before = len(outbox(db))
    d = service.update_fields(cid, {"name": "ANNA Schmidt", "city": "Berlin", "status": "customer"})
    assert d.name == "ANNA Schmidt" and d.status == "customer"
    rows = outbox(db)[before:]
    assert len(rows) == 1
    changed = json.loads(rows[0].changed_fields)
    assert changed == {"name": "ANNA Schmidt", "status": "customer"}
    with db.transaction() as s:
        assert s.get(Customer, cid).name_key == "anna schmidt"  # type: ignore[union-attr]
    # Nothing changed → no outbox row at all.
    service.update_fields(cid, {"city": "Berlin"})
    assert len(outbox(db)) == before + 1


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"name": "   "}, "name", "needs a name"),
    ({"status": "angry"}, "status", "Unknown status"),
    ({"stage": "done"}, "stage", "Unknown stage"),
    ({"email": "not-an-address"}, "email", "not an e-mail"),
    ({"country": "China"}, "country", "two-letter"),
    ({"do_not_call": "yes"}, "do_not_call", "yes or no"),
    ({"uuid": "x"}, "uuid", "not a customer field"),
    ({"name": "x" * 201}, "name", "at most 200"),
])
def test_invalid_fields_rejected_with_reason(service: CustomerService, db: Database,
                                             changes: dict[str, object], field: str,
                                             words: str) -> None:
    cid = service.create_customer({"name": "Li Na"})
    before = len(outbox(db))
    with pytest.raises(ValidationError) as err:
        service.update_fields(cid, changes)
    assert err.value.field == field
    assert words in str(err.value)
    assert len(outbox(db)) == before
    assert service.load(cid).name == "Li Na"


def test_create_requires_name(service: CustomerService) -> None:
    with pytest.raises(ValidationError, match="needs a name"):
        service.create_customer({"company": "Acme"})


def test_tags_add_remove_tombstone(service: CustomerService, db: Database) -> None:
    cid = service.create_customer({"name": "王芳"})
    d = service.add_tag(cid, " vip ")
    assert d.tags == ("vip",)
    with pytest.raises(ValidationError, match="already has the tag"):
        service.add_tag(cid, "VIP")
    with pytest.raises(ValidationError, match="empty"):
        service.add_tag(cid, "  ")
    with pytest.raises(ValidationError, match="comma"):
        service.add_tag(cid, "a,b")
    d = service.remove_tag(cid, "vip")
    assert d.tags == ()
    with db.transaction() as s:
        tag = s.scalars(select(Tag)).one()
        assert tag.deleted_at is not None  # a tombstone, not a DELETE
    last = outbox(db)[-1]
    assert (last.entity, last.op) == ("tag", "delete")
    with pytest.raises(NotFoundError):
        service.remove_tag(cid, "vip")
    assert service.add_tag(cid, "vip").tags == ("vip",)
    assert service.tag_names() == ["vip"]


def test_notes_newest_first(service: CustomerService, db: Database) -> None:
    cid = service.create_customer({"name": "Bob"})
    service.add_note(cid, "first")
    d = service.add_note(cid, "second")
    assert {n.body for n in d.notes} == {"first", "second"}
    with pytest.raises(ValidationError, match="empty"):
        service.add_note(cid, "   ")
    assert outbox(db)[-1].entity == "note"


def test_tasks_today_and_complete(service: CustomerService) -> None:
    cid = service.create_customer({"name": "Carla"})
    now = datetime.now().astimezone()
    service.add_task(cid, "overdue call", now - timedelta(days=2))
    service.add_task(cid, "later today", now.replace(hour=23, minute=59, second=0,
                                                    microsecond=0))
    service.add_task(cid, "next week", now + timedelta(days=7))
    today = service.today_tasks(now)
    assert [t.title for t in today] == ["overdue call", "later today"]
    assert today[0].overdue(now) and today[0].customer_name == "Carla"
    d = service.complete_task(today[0].id)
    assert any(t.done_at is not None for t in d.tasks)
    assert [t.title for t in service.today_tasks(now)] == ["later today"]
    with pytest.raises(ValidationError, match="already done"):
        service.complete_task(today[0].id)
    with pytest.raises(ValidationError, match="title is empty"):
        service.add_task(cid, " ", now)
    with pytest.raises(ValidationError, match="time zone"):
        service.add_task(cid, "x", datetime(2030, 1, 1))


def test_invalid_phone_kept_and_flagged(service: CustomerService) -> None:
    cid = service.create_customer({"name": "Dora"})
    d = service.add_phone(cid, "12-34", "work")
    assert d.phones[0].raw == "12-34"
    assert not d.phones[0].valid and d.phones[0].problem
    d = service.add_phone(cid, "+49 30 901820", "home")
    assert d.phones[1].valid and d.phones[1].display.startswith("+49")
    with pytest.raises(ValidationError, match="Type a phone"):
        service.add_phone(cid, "  ")
    with pytest.raises(ValidationError, match="label"):
        service.add_phone(cid, "13800138000", "pager")
    d = service.update_phone(d.phones[0].id, "13800138000", "mobile")
    assert d.phones[0].valid and d.phones[0].label == "mobile"
    d = service.remove_phone(d.phones[0].id)
    assert len(d.phones) == 1
    row = service.list_row(cid)
    assert row is not None and row.phone == "+49 30 901820"


def test_missing_customer(service: CustomerService) -> None:
    with pytest.raises(NotFoundError, match="no longer exists"):
        service.load(999)
    with pytest.raises(NotFoundError):
        service.add_tag(999, "x")
    assert service.list_row(999) is None


def test_signals(service: CustomerService, qtbot) -> None:  # type: ignore[no-untyped-def]
    cid = service.create_customer({"name": "Eve"})
    with qtbot.waitSignal(service.customer_changed) as sig:
        service.add_tag(cid, "hot")
    assert sig.args == [cid]
    with qtbot.waitSignal(service.tasks_changed):
        service.add_task(cid, "call", datetime.now(UTC))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")),
                    min_size=1, max_size=40).filter(
                        lambda s: any(unicodedata.category(c).startswith("L") for c in s)))
def test_any_name_round_trips_and_is_found(service: CustomerService, db: Database,
                                           name: str) -> None:
    """Whatever an agent types as a name (with at least one letter: an all-digit query is
    a phone search) is stored as typed (trimmed), gets the same name_key search uses, and
    the new customer is found by searching for that name."""
    from agent_desktop.search import CustomerSearch, name_key_of

    cid = service.create_customer({"name": name})
    assert service.load(cid).name == name.strip()
    with db.transaction() as s:
        assert s.get(Customer, cid).name_key == name_key_of(name.strip())  # type: ignore[union-attr]
    page = CustomerSearch(db, PhoneNormalizer("CN")).page(name.strip(), None, 500)
    assert cid in [r.id for r in page.rows], ascii(name)
