"""Fixtures shared by the unit tests: a fresh local store and a customer to call.

A module that needs a different store (other file name, pre-seeded rows) defines its own
`db` fixture, which takes precedence over this one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, PhoneNumber


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty agent store in the test's own folder."""
    d = Database.open(tmp_path / "agent.sqlite3")
    yield d
    d.close()


@pytest.fixture
def customer_id(db: Database) -> int:
    """A Chinese-named customer with two numbers (mobile first), as agents see most."""
    with db.transaction() as s:
        c = Customer(name="王小明", name_key="王小明")
        c.phones.append(PhoneNumber(raw="138 0013 8000", e164="+8613800138000",
                                    rev_digits="00083100831689", valid=True, label="mobile"))
        c.phones.append(PhoneNumber(raw="010 6552 9988", e164="+861065529988",
                                    rev_digits="889925560168", valid=True, label="office",
                                    position=1))
        s.add(c)
        s.flush()
        return c.id

