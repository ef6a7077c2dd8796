"""Duplicates by E.164, in the file and against existing customers: merge, new, skip."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent_desktop.customers import CustomerService
from agent_desktop.importing import DuplicateAction, ImportService
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, Outbox

N = PhoneNormalizer("CN")


@pytest.fixture
def existing(db: Database) -> int:
    """Zhang Wei, already in the store, with one number, a tag and a company."""
    svc = CustomerService(db, N)
    cid = svc.create_customer({"name": "张伟", "company": "华为"}, phone="13800138000")
    svc.add_tag(cid, "老客户")
    return cid


FILE = ("姓名,公司,城市,手机号,标签,备注\n"
        "张伟,腾讯,深圳,+86 138 0013 8000,VIP,回访过\n"        # 2: matches existing
        "王芳,,上海,13900139000,,\n"                        # 3: same person as line 5
        "Li Na,Acme,Beijing,13700137000,A,\n"               # 4: unique
        "王芳,京东,北京,13900139000；13600136000,新,第二次\n"  # 5: shares with 3 and 6
        "Wang F.,,,13600136000,,\n")                        # 6: joins group via 136…


def detail(db: Database, cid: int) -> Customer:
    with db.transaction() as s:
        c = s.get(Customer, cid)
        assert c is not None
        _ = (c.phones, c.tags, c.notes)
        return c


def scan(db: Database, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "d.csv"
    path.write_text(FILE, encoding="utf-8")
    service = ImportService(db, N, batch_size=2)
    return service, service.scan(service.preview(path))


def test_groups_found_in_file_and_against_store(db: Database, existing: int,
                                                tmp_path: Path) -> None:
    _, plan = scan(db, tmp_path)
    assert [(g.lines, g.numbers) for g in plan.groups] == [
        ([2], ["+8613800138000"]),
        ([3, 5, 6], ["+8613900139000", "+8613600136000"]),
    ]
    assert [m.customer_id for m in plan.groups[0].existing] == [existing]
    assert plan.groups[0].existing[0].name == "张伟"
    assert not plan.groups[1].existing
    assert plan.group_of_line == {2: 0, 3: 1, 5: 1, 6: 1}


def test_merge_fills_empty_fields_unions_tags_phones_appends_note(
        db: Database, existing: int, tmp_path: Path) -> None:
    service, plan = scan(db, tmp_path)
    with db.transaction() as s:
        outbox_before = s.scalar(select(func.count()).select_from(Outbox))
    result = service.run(plan)  # default action: merge
    assert (result.imported, result.merged, result.skipped) == (2, 3, 0)
    z = detail(db, existing)
    assert z.company == "华为"  # kept: never overwrite what is there
    assert z.city == "深圳"  # filled
    assert sorted(t.name for t in z.tags) == ["VIP", "老客户"]
    assert [n.body for n in z.notes] == ["回访过"]
    assert any(p.line == 2 and "company “华为” (file: “腾讯”)" in p.reason
               for p in result.warnings)
    with db.transaction() as s:
        wang = s.scalars(select(Customer).where(Customer.name == "王芳")).one()
        _ = (wang.phones, wang.tags, wang.notes)
        total = s.scalar(select(func.count()).select_from(Customer))
        outbox_after = s.scalar(select(func.count()).select_from(Outbox))
    assert total == 3  # 张伟, 王芳 (3 rows merged), Li Na
    assert [p.e164 for p in wang.phones] == ["+8613900139000", "+8613600136000"]
    assert wang.company == "京东" and wang.city == "上海"
    assert [t.name for t in wang.tags] == ["新"] and [n.body for n in wang.notes] == ["第二次"]
    assert outbox_after is not None and outbox_before is not None
    assert outbox_after > outbox_before  # merges sync too


def test_import_as_new_keeps_every_row(db: Database, existing: int, tmp_path: Path) -> None:
    service, plan = scan(db, tmp_path)
    plan.set_all(DuplicateAction.NEW)
    result = service.run(plan)
    assert (result.imported, result.merged, result.skipped) == (5, 0, 0)
    assert detail(db, existing).city == ""


def test_skip_leaves_existing_alone_and_keeps_first_of_file_group(
        db: Database, existing: int, tmp_path: Path) -> None:
    service, plan = scan(db, tmp_path)
    plan.set_all(DuplicateAction.SKIP)
    result = service.run(plan)
    assert (result.imported, result.merged, result.skipped) == (2, 0, 3)
    with db.transaction() as s:
        names = sorted(s.scalars(select(Customer.name)))
    assert names == sorted(["张伟", "王芳", "Li Na"])
    assert detail(db, existing).city == ""


def test_per_group_choices(db: Database, existing: int, tmp_path: Path) -> None:
    service, plan = scan(db, tmp_path)
    plan.groups[0].action = DuplicateAction.SKIP
    plan.groups[1].action = DuplicateAction.MERGE
    result = service.run(plan)
    assert (result.imported, result.merged, result.skipped) == (2, 2, 1)


def test_merge_target_deleted_between_scan_and_run(db: Database, existing: int,
                                                   tmp_path: Path) -> None:
    service, plan = scan(db, tmp_path)
    with db.transaction() as s:
        c = s.get(Customer, existing)
        assert c is not None
        c.deleted_at = "2026-01-01T00:00:00.000+00:00"
    result = service.run(plan)
    assert any(p.line == 2 and "no longer exists" in p.reason for p in result.warnings)
    assert result.imported == 3


def test_reimporting_an_export_merges_everything(db: Database, existing: int,
                                                 tmp_path: Path) -> None:
    from agent_desktop.exporting import CustomerExporter, ExportFormat

    path = tmp_path / "e.xlsx"
    CustomerExporter(db).export(path, ExportFormat.XLSX)
    service = ImportService(db, N)
    plan = service.scan(service.preview(path))
    assert len(plan.groups) == 1 and plan.groups[0].existing[0].customer_id == existing
    result = service.run(plan)
    assert (result.imported, result.merged) == (0, 1)
    assert not result.warnings
    z = detail(db, existing)
    assert len(z.phones) == 1 and len(z.tags) == 1


def test_merge_between_new_rows_in_one_batch(db: Database, existing: int,
                                             tmp_path: Path) -> None:
    """New rows before and after a merge in the same transaction: every key stays unique
    (the merge's note/phone/tag take keys from the same block as the new rows)."""
    path = tmp_path / "m.csv"
    path.write_text("姓名,手机号,标签,备注\n"
                    "A,13700000001,t1,n1\n"
                    "B,13700000002,t2,n2\n"
                    "张伟,13800138000；13700000009,t9,n9\n"
                    "C,13700000003,t3,n3\n", encoding="utf-8")
    service = ImportService(db, N, batch_size=10)
    result = service.run(service.scan(service.preview(path)))
    assert (result.imported, result.merged) == (3, 1), result.summary()
    z = detail(db, existing)
    assert [n.body for n in z.notes] == ["n9"] and "t9" in {t.name for t in z.tags}
    assert [p.e164 for p in z.phones] == ["+8613800138000", "+8613700000009"]
    with db.transaction() as s:
        notes = dict(s.execute(select(Customer.name, func.count())
                               .join(Customer.notes).group_by(Customer.name)).all())
    assert notes == {"A": 1, "B": 1, "C": 1, "张伟": 1}
