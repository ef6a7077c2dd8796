"""Demo data: deterministic, realistic (valid numbers per country, mixed names), loaded by the
bulk path without outbox rows and only into an empty database."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import phonenumbers
import pytest
from sqlalchemy import text

from agent_desktop import demo
from agent_desktop.demo import DemoCustomer, ensure_demo_data, generate, load_demo
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, utcnow

NOW = datetime(2026, 11, 22, tzinfo=UTC)



@pytest.fixture(scope="module")
def sample() -> list[DemoCustomer]:
    return list(generate(3000, seed=11, now=NOW))


def count(db: Database, table: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_same_seed_same_data_other_seed_other_data(sample: list[DemoCustomer]) -> None:
    assert list(generate(3000, seed=11, now=NOW)) == sample
    assert list(generate(50, seed=11, now=NOW)) == sample[:50]  # a prefix is stable
    other = list(generate(50, seed=12, now=NOW))
    assert [c.uuid for c in other] != [c.uuid for c in sample[:50]]
    assert [c.name for c in other] != [c.name for c in sample[:50]]


def test_uuids_are_uuid5_stable_and_unique(sample: list[DemoCustomer]) -> None:
    first = sample[0]
    assert first.uuid == str(uuid.uuid5(demo._NAMESPACE, "11:customer:0"))
    assert uuid.UUID(first.uuid).version == 5
    every = [c.uuid for c in sample]
    for c in sample:
        every += [p.uuid for p in c.phones] + [t.uuid for t in c.tags]
        every += [n.uuid for n in c.notes] + [t.uuid for t in c.tasks]
    assert len(every) == len(set(every))


def test_numbers_are_valid_for_their_country_and_unique(sample: list[DemoCustomer]) -> None:
    seen: set[str] = set()
    for c in sample:
        for p in c.phones:
            num = phonenumbers.parse(p.e164)
            assert phonenumbers.is_valid_number(num), p
            assert phonenumbers.region_code_for_number(num) == c.country, p
            # What is displayed is what an agent would type, and parses back to the number.
            typed = phonenumbers.parse(p.raw, c.country)
            assert phonenumbers.format_number(typed, phonenumbers.PhoneNumberFormat.E164) \
                == p.e164, p
            norm = PhoneNormalizer(c.country).normalize(p.raw)
            assert norm.valid and norm.e164 == p.e164
            assert p.e164 not in seen
            seen.add(p.e164)


def test_mix_of_names_countries_statuses_tags_and_tasks(sample: list[DemoCustomer]) -> None:
    countries = Counter(c.country for c in sample)
    assert set(countries) == {"CN", "US", "DE", "GB", "FR", "SG"}
    assert countries["CN"] > 0.4 * len(sample)
    chinese = [c.name for c in sample if all("\u4e00" <= ch <= "\u9fff" for ch in c.name)]
    latin = [c.name for c in sample if c.name.isascii()]
    assert len(chinese) > 1000 and len(latin) > 500
    assert any(len(n) == 2 for n in chinese) and any(len(n) >= 3 for n in chinese)
    assert any(n.startswith("欧阳") for n in chinese)  # compound surnames
    assert len({c.status for c in sample}) >= 5 and len({c.stage for c in sample}) >= 5
    assert sum(1 for c in sample if c.tags) > 1000
    assert sum(1 for c in sample if c.notes) > 300
    assert sum(1 for c in sample if len(c.phones) == 2) > 500
    dues = [datetime.fromisoformat(t.due_at) for c in sample for t in c.tasks]
    today = NOW.date()
    assert any(d.date() < today for d in dues)
    assert any(d.date() == today for d in dues)
    assert any(d.date() > today for d in dues)
    assert all(datetime.fromisoformat(c.created_at) < NOW for c in sample)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        list(generate(-1))
    with pytest.raises(ValueError, match="timezone-aware"):
        list(generate(1, now=datetime(2026, 1, 1)))


def test_load_demo_bulk_path_indexes_everything_and_writes_no_outbox(db: Database) -> None:
    assert load_demo(db, 500, seed=3, now=NOW) == 500
    expected = list(generate(500, seed=3, now=NOW))
    assert count(db, "customers") == 500
    assert count(db, "phone_numbers") == sum(len(c.phones) for c in expected)
    assert count(db, "tags") == sum(len(c.tags) for c in expected)
    assert count(db, "notes") == sum(len(c.notes) for c in expected)
    assert count(db, "tasks") == sum(len(c.tasks) for c in expected)
    assert count(db, "customer_search_docs") == 500
    assert count(db, "outbox") == 0  # seed data never goes to the server from here
    search = CustomerSearch(db, PhoneNormalizer("CN"))
    c = expected[123]
    found = search.page(c.name, None, 500).rows
    assert c.uuid in _uuids(db, [r.id for r in found])
    cid = search.caller_id(c.phones[0].e164)
    assert cid is not None and _uuids(db, [cid]) == [c.uuid]
    # Edits after the bulk load still go through the (re-created) triggers.
    with db.transaction() as s:
        row = s.query(Customer).filter_by(uuid=c.uuid).one()
        row.company = "Renamed Unique Co"
    assert [r.id for r in search.page("renamed unique", None, 10).rows] == [cid]


def _uuids(db: Database, ids: list[int]) -> list[str]:
    with db.engine.connect() as conn:
        return [conn.execute(text("SELECT uuid FROM customers WHERE id = :i"),
                             {"i": i}).scalar_one() for i in ids]


def test_same_seed_twice_is_refused_other_seed_appends(db: Database) -> None:
    load_demo(db, 20, seed=1, now=NOW)
    with pytest.raises(ValueError, match="already in this database"):
        load_demo(db, 20, seed=1, now=NOW)
    assert count(db, "customers") == 20
    load_demo(db, 20, seed=2, now=NOW + timedelta(days=1))
    assert count(db, "customers") == 40


def test_ensure_demo_data_only_fills_an_empty_database(db: Database) -> None:
    assert ensure_demo_data(db, n=30) is True
    assert count(db, "customers") == 30
    assert ensure_demo_data(db, n=30) is False
    assert count(db, "customers") == 30


def test_ensure_demo_data_respects_a_database_with_only_tombstones(db: Database) -> None:
    with db.transaction() as s:
        s.add(Customer(name="Deleted Real Customer", deleted_at=utcnow()))
    assert ensure_demo_data(db, n=30) is False
    assert count(db, "customers") == 1
