"""Merging many rows into existing customers (a list imported again) with the search
triggers suspended, and every number parsed once per import.

Merges used to flush under the search triggers, re-indexing a customer two or three times
each; now the batch's merges run with the triggers dropped and each touched customer is
re-indexed once by the triggers afterwards. These tests check the index is exactly what a
full rebuild gives, that merged numbers and tags are found, and that the merges' outbox
rows are the ORM hook's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

import agent_desktop.phones as phones_module
from agent_desktop.importing import DuplicateAction, ImportService
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch, rebuild_index
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, Outbox, PhoneNumber, Tag

N = PhoneNormalizer("CN")
COUNT = 120  # above indexing.BULK_THRESHOLD, so the triggers are suspended


def write(tmp_path: Path, name: str, rows: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("姓名,公司,城市,手机号,办公电话,标签,备注\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")
    return path


def first_file(tmp_path: Path) -> Path:
    return write(tmp_path, "first.csv", [f"客户{i},,城市{i % 4},1380013{i:04d},,老客户,"
                                         for i in range(COUNT)])


def second_file(tmp_path: Path) -> Path:
    """The same people again: a company, an office number, a tag and a note each; row 5
    also brings a number and tag that were never stored anywhere."""
    return write(tmp_path, "second.csv", [
        f"客户{i},公司{i},城市{i % 4},1380013{i:04d},010-6{i:07d},VIP,第二次联系{i}"
        for i in range(COUNT)])


def import_file(db: Database, path: Path, batch_size: int = 50) -> tuple[ImportService, object]:
    service = ImportService(db, N, batch_size=batch_size)
    plan = service.scan(service.preview(path))
    plan.set_all(DuplicateAction.MERGE)
    return service, service.run(plan)


def test_bulk_merges_into_existing_customers_index_like_a_rebuild(db: Database,
                                                                  tmp_path: Path) -> None:
    _service, first = import_file(db, first_file(tmp_path))
    assert first.imported == COUNT  # type: ignore[attr-defined]
    with db.engine.connect() as conn:
        top = conn.execute(text("SELECT max(mutation_id) FROM outbox")).scalar()
    _service, second = import_file(db, second_file(tmp_path), batch_size=COUNT)
    assert (second.imported, second.merged) == (0, COUNT)  # type: ignore[attr-defined]
    assert not second.rejected  # type: ignore[attr-defined]
    with db.engine.begin() as conn:
        docs = conn.execute(text("SELECT * FROM customer_search_docs ORDER BY id")).all()
        grams = conn.execute(text("SELECT rowid FROM customer_grams WHERE customer_grams"
                                  " MATCH '公司' ORDER BY rowid")).all()
        triggers = conn.execute(text("SELECT count(*) FROM sqlite_master WHERE"
                                     " type = 'trigger' AND name LIKE '%search%'")).scalar()
        rebuild_index(conn, 0)
        rebuilt = conn.execute(text("SELECT * FROM customer_search_docs ORDER BY id")).all()
        grams_rebuilt = conn.execute(text("SELECT rowid FROM customer_grams WHERE"
                                          " customer_grams MATCH '公司' ORDER BY rowid")).all()
    assert triggers == 9
    assert len(docs) == COUNT and docs == rebuilt
    assert len(grams) == COUNT and grams == grams_rebuilt
    assert "VIP" in docs[5].tags and "0106" in docs[5].phones.replace(" ", "")
    search = CustomerSearch(db, N)
    assert [r.name for r in search.page("公司7", None, 5).rows][:1] == ["客户7"]
    assert [r.name for r in search.page("60000011", None, 5).rows] == ["客户11"]
    found = search.caller_id("010 60000011")
    assert found is not None
    # The merges went through the ORM hook: one outbox row per changed customer (its
    # company) and per added number, tag and note, each naming its customer.
    with db.transaction() as s:
        rows = s.execute(select(Outbox.entity, Outbox.op, Outbox.changed_fields)
                         .where(Outbox.mutation_id > top)).all()
        uuids = set(s.scalars(select(Customer.uuid)))
        assert s.scalar(select(func.count()).select_from(PhoneNumber)) == 2 * COUNT
        assert s.scalar(select(func.count()).select_from(Tag)) == 2 * COUNT
    kinds: dict[str, int] = {}
    for entity, op, fields_json in rows:
        kinds[entity] = kinds.get(entity, 0) + 1
        fields = json.loads(fields_json)
        assert op == "upsert"
        if entity == "customer":
            assert set(fields) >= {"company"} and fields["company"].startswith("公司")
        else:
            assert fields["customer_uuid"] in uuids
    assert kinds == {"customer": COUNT, "phone": COUNT, "tag": COUNT, "note": COUNT}


def test_small_merge_batches_keep_the_triggers(db: Database, tmp_path: Path) -> None:
    """Below the threshold the triggers index each merge themselves: same final index."""
    import_file(db, first_file(tmp_path))
    import_file(db, second_file(tmp_path), batch_size=7)
    with db.engine.begin() as conn:
        docs = conn.execute(text("SELECT * FROM customer_search_docs ORDER BY id")).all()
        rebuild_index(conn, 0)
        assert docs == conn.execute(text("SELECT * FROM customer_search_docs ORDER BY id")
                                    ).all()
    assert all("VIP" in d.tags for d in docs)


def test_each_number_is_parsed_once_per_import(db: Database, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan parses; the run takes every result from the plan's cache; a run of the
    same plan after that (cache freed) parses again and still gets the same numbers."""
    calls: list[str] = []
    real_parse = phones_module.phonenumbers.parse

    def counting_parse(text: str, region: str | None = None,
                       *args: object, **kwargs: object) -> object:
        calls.append(text)
        return real_parse(text, region, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(phones_module.phonenumbers, "parse", counting_parse)
    path = second_file(tmp_path)
    service = ImportService(db, N, batch_size=50)
    plan = service.scan(service.preview(path))
    assert len(calls) == 2 * COUNT
    calls.clear()
    result = service.run(plan)
    assert result.imported == COUNT and calls == []
    assert len(plan.phones) == 0  # freed after the run
    with db.transaction() as s:
        stored = list(s.scalars(select(PhoneNumber.e164)))
    assert len(stored) == 2 * COUNT and all(e and e.startswith("+86") for e in stored)
