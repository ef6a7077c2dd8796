"""The import's Core fast path writes what the ORM path would: the same rows, the same outbox
fields in the same order, and the search index in the batch's own transaction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from agent_desktop.importing import DuplicateAction, ImportService
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, Note, Outbox, PhoneNumber, Tag

N = PhoneNormalizer("CN")
_SKIP = {"id", "uuid", "created_at", "updated_at"}


def run_import(db: Database, path: Path, batch_size: int = 1000) -> Any:
    service = ImportService(db, N, batch_size=batch_size)
    plan = service.scan(service.preview(path))
    plan.set_all(DuplicateAction.MERGE)
    return service.run(plan)


def outbox_payloads(db: Database, after: int = 0) -> list[tuple[str, str, dict[str, Any]]]:
    """(entity, op, fields) with identities and clock values replaced by placeholders."""
    with db.transaction() as s:
        rows = s.execute(select(Outbox.entity, Outbox.op, Outbox.changed_fields,
                                Outbox.base_version, Outbox.schema_version)
                         .where(Outbox.mutation_id > after)
                         .order_by(Outbox.mutation_id)).all()
    out = []
    for entity, op, fields_json, base, schema in rows:
        fields = json.loads(fields_json)
        fields.pop("created_at", None)
        for key in ("customer_uuid",):
            if fields.get(key):
                fields[key] = "<parent>"
        fields["_base_schema"] = (base, schema)
        out.append((entity, op, fields))
    return out


def test_outbox_rows_equal_what_the_orm_hook_writes(db: Database, tmp_path: Path) -> None:
    body = ("姓名,公司,城市,国家,邮箱,状态,手机,办公电话,标签,备注\n"
            "张伟,华为,深圳,CN,zw@example.com,contacted,13800138000,010-60000000,VIP;重点,"
            "第一次联系\n"
            "Anna Schmidt,,Berlin,DE,,,+49 151 23456789,12,,\n")
    path = tmp_path / "a.csv"
    path.write_text(body, encoding="utf-8")
    result = run_import(db, path)
    assert result.imported == 2 and not result.rejected
    imported = outbox_payloads(db)
    with db.transaction() as s:
        top = s.scalar(select(Outbox.mutation_id).order_by(Outbox.mutation_id.desc()))
        assert top is not None
        # The ORM twin: copy every column of the imported rows into new ORM objects.
        originals = list(s.scalars(select(Customer).order_by(Customer.id)))
        twins = []
        for c in originals:
            twin = Customer(**{k: getattr(c, k) for k in _cols(Customer)})
            s.add(twin)
            twins.append((c, twin))
        s.flush()
        for c, twin in twins:
            for model in (PhoneNumber, Tag, Note):
                for child in s.scalars(select(model).where(model.customer_id == c.id)
                                       .order_by(model.id)):
                    values = {k: getattr(child, k) for k in _cols(model)}
                    values["customer_id"] = twin.id
                    s.add(model(**values))
    via_orm = outbox_payloads(db, after=top)
    assert [e for e, _op, _f in imported] == ["customer", "customer", "phone", "phone",
                                              "phone", "phone", "tag", "tag", "note"]
    assert sorted(map(repr, imported)) == sorted(map(repr, via_orm))
    # Booleans and nulls travel as JSON, not as SQLite's 0/1 text.
    first_phone = next(f for e, _o, f in imported if e == "phone")
    assert first_phone["valid"] is True and first_phone["e164"] == "+8613800138000"
    bad_phone = [f for e, _o, f in imported if e == "phone"][-1]
    assert bad_phone["valid"] is False and bad_phone["e164"] is None


def _cols(model: type) -> list[str]:
    return [c.key for c in model.__table__.columns if c.key not in _SKIP]  # type: ignore[attr-defined]


def test_bulk_batch_and_its_index_commit_or_roll_back_together(db: Database,
                                                                tmp_path: Path) -> None:
    """Batch 1 (60 rows, triggers suspended) commits with its index; batch 2 fails at its
    last insert (notes): its customers, index rows and outbox rows all vanish, the search
    triggers are back, and later edits are indexed by them again."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER boom BEFORE INSERT ON notes WHEN NEW.body = 'BOOM'"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    lines = [f"客户{i},1390013{i:04d},{'BOOM' if i == 100 else 'ok'}" for i in range(120)]
    path = tmp_path / "b.csv"
    path.write_text("姓名,手机,备注\n" + "\n".join(lines) + "\n", encoding="utf-8")
    result = run_import(db, path, batch_size=60)
    assert result.imported == 60 and result.committed_through == 61
    assert "disk full" in result.failure
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM customers")).scalar() == 60
        assert conn.execute(text("SELECT count(*) FROM customer_search_docs")).scalar() == 60
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE entity = 'customer'")
                            ).scalar() == 60
        assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
                                 " AND name LIKE '%search%'")).scalar() == 9
    search = CustomerSearch(db, N)
    assert [r.name for r in search.page("客户59", None, 5).rows] == ["客户59"]
    assert search.page("客户61", None, 5).rows == []
    with db.transaction() as s:
        c = s.scalars(select(Customer).where(Customer.name == "客户7")).one()
        c.city = "杭州市"
    assert [r.name for r in search.page("杭州市", None, 5).rows] == ["客户7"]


def test_core_rows_get_distinct_random_uuids_like_the_orm(db: Database, tmp_path: Path) -> None:
    import uuid

    path = tmp_path / "u.csv"
    path.write_text("姓名,手机,标签\n" + "".join(f"客户{i},1390013{i:04d},t{i}\n"
                                             for i in range(80)), encoding="utf-8")
    assert run_import(db, path).imported == 80
    with db.engine.connect() as conn:
        uuids = [r[0] for t in ("customers", "phone_numbers", "tags")
                 for r in conn.execute(text(f"SELECT uuid FROM {t}"))]
        outbox = {r[0] for r in conn.execute(text("SELECT entity_uuid FROM outbox"))}
    assert len(uuids) == 240 == len(set(uuids))
    assert all(uuid.UUID(u).version == 4 and str(uuid.UUID(u)) == u for u in uuids)
    assert outbox == set(uuids)
