"""Import against a real migrated SQLite file: readers, mapping, validation, report."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select, text

from agent_desktop.importing import (
    DuplicateAction,
    Field,
    ImportFileError,
    ImportResult,
    ImportService,
    MappingError,
    ReadOptions,
    guess_mapping,
)
from agent_desktop.phones import PhoneNormalizer
from agent_desktop.search import CustomerSearch
from agent_desktop.store.db import Database
from agent_desktop.store.models import Customer, Outbox, PhoneNumber, Tag

DATA = Path(__file__).parent.parent / "data" / "import"


@pytest.fixture
def service(db: Database) -> ImportService:
    return ImportService(db, PhoneNormalizer("CN"), batch_size=3)


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def customers(db: Database) -> list[Customer]:
    with db.transaction() as s:
        rows = list(s.scalars(select(Customer).order_by(Customer.id)))
        for c in rows:
            _ = (c.phones, c.tags, c.notes)
        return rows


def import_all(service: ImportService, path: Path, options: ReadOptions | None = None,
               mapping: list[Field] | None = None,
               action: DuplicateAction = DuplicateAction.MERGE) -> ImportResult:
    preview = service.preview(path, options)
    plan = service.scan(preview, mapping)
    plan.set_all(action)
    return service.run(plan)


def test_guess_mapping_english_and_chinese() -> None:
    headers = ["姓名", "公司", "城市", "手机号", "办公电话", "标签", "邮箱", "备注", "状态",
               "国家", "Phone 2", "E-mail", "whatever", "名字"]
    assert guess_mapping(headers) == [
        Field.NAME, Field.COMPANY, Field.CITY, Field.PHONE, Field.PHONE, Field.TAGS,
        Field.EMAIL, Field.NOTE, Field.STATUS, Field.COUNTRY, Field.PHONE, Field.IGNORE,
        Field.IGNORE, Field.IGNORE]


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig"])
def test_chinese_csv_in_each_excel_encoding(service: ImportService, db: Database,
                                            tmp_path: Path, encoding: str) -> None:
    body = ("姓名,公司,城市,手机号,标签\r\n"
            "张伟,北京华为,北京,138 0013 8000,\"VIP、新客户\"\r\n"
            "李娜,上海银行,上海,13900139000,老客户；重点\r\n")
    path = write(tmp_path, "c.csv", body, encoding)
    preview = service.preview(path)
    assert preview.format.encoding == ("gb18030" if encoding.startswith("gb") else "utf-8-sig")
    assert preview.headers[0] == "姓名"
    result = import_all(service, path)
    assert result.complete and result.imported == 2 and not result.rejected
    rows = customers(db)
    assert [c.name for c in rows] == ["张伟", "李娜"]
    assert rows[0].company == "北京华为"
    assert rows[0].phones[0].e164 == "+8613800138000"
    assert sorted(t.name for t in rows[0].tags) == ["VIP", "新客户"]
    assert sorted(t.name for t in rows[1].tags) == sorted(["重点", "老客户"])


def test_committed_fixture_files(service: ImportService, db: Database) -> None:
    """Files as Excel writes them: GBK with CRLF, and UTF-8 with a BOM and semicolons."""
    gbk = import_all(service, DATA / "excel_gbk.csv")
    assert gbk.complete and gbk.imported == 3, gbk.summary()
    semi = service.preview(DATA / "utf8_bom_semicolon.csv")
    assert semi.format.delimiter == ";" and semi.headers[:2] == ["Name", "Company"]
    res = import_all(service, DATA / "utf8_bom_semicolon.csv")
    assert res.imported == 2 and not res.rejected
    assert "Zoë Müller" in {c.name for c in customers(db)}


def test_every_bad_row_reported_with_its_line_while_good_rows_import(
        service: ImportService, db: Database, tmp_path: Path) -> None:
    body = ("name,company,phone\n"                 # 1
            "Alice,Acme,+1 415 555 0100\n"         # 2 ok
            ",NoName Inc,+1 415 555 0101\n"        # 3 missing name
            "Bob,Bobco\n"                          # 4 missing column
            "Carol,C,+1 415 555 0102,extra\n"      # 5 extra value
            "\"Dan \"the man\",D,+1 415 555 0103\n"  # 6 broken quotes
            "Eve,\"Multi\nline\",+1 415 555 0104\n"  # 7-8 ok, quoted newline
            "Frank,F,not a number\n"               # 9 ok, flagged phone
            "\n"                                   # 10 blank, ignored
            "Grace,G,+1 415 555 0105,,\n")         # 11 ok, empty trailing values
    path = write(tmp_path, "bad.csv", body)
    result = import_all(service, path)
    assert result.complete
    assert result.imported == 4
    got = {(p.line, p.reason.split(":")[0]) for p in result.rejected}
    assert got == {(3, "missing name"), (4, "missing columns"), (5, "extra values"),
                   (6, "broken quotes")}
    assert any(p.line == 9 and "not a number" in p.reason for p in result.warnings)
    names = [c.name for c in customers(db)]
    assert names == ["Alice", "Eve", "Frank", "Grace"]
    frank = customers(db)[2]
    assert frank.phones[0].raw == "not a number" and frank.phones[0].valid is False
    assert customers(db)[1].company == "Multi\nline"


def test_unclosed_quote_rejects_one_line_and_resumes(service: ImportService,
                                                     db: Database, tmp_path: Path) -> None:
    lines = ["name,city"] + ['"Broken,Paris'] + [f"Person {i},City {i}" for i in range(80)]
    path = write(tmp_path, "q.csv", "\n".join(lines) + "\n")
    result = import_all(service, path)
    assert [(p.line, p.reason) for p in result.rejected] == [
        (2, "broken quotes: a quoted value is never closed")]
    assert result.imported == 80


def test_undecodable_bytes_are_reported_per_line(service: ImportService, tmp_path: Path) -> None:
    good = "姓名,城市\n张伟,北京\n".encode()
    path = tmp_path / "mixed.csv"
    path.write_bytes(good + b"Li,\xff\xfe\xfd\n" + "王芳,上海\n".encode())
    preview = service.preview(path)
    assert preview.format.notes and "neither valid UTF-8" in preview.format.notes[0]
    result = import_all(service, path)
    assert result.imported == 2
    assert len(result.rejected) == 1
    assert result.rejected[0].line == 3
    assert "undecodable bytes at column 2 (byte 0xFF)" in result.rejected[0].reason


def test_wrong_encoding_override_rejects_rows_plainly(service: ImportService,
                                                      tmp_path: Path) -> None:
    path = write(tmp_path, "gbk.csv", "姓名,城市\n张伟,北京\nBob,Boston\n", "gbk")
    with pytest.raises(ImportFileError, match=r"header \(line 1\) cannot be read: undecodable"
                       r" bytes at column 1 \(byte 0xD0\).*Choose the file's encoding"):
        service.preview(path, ReadOptions(encoding="utf-8"))
    path = write(tmp_path, "gbk.csv", "name,city\n张伟,北京\nBob,Boston\n", "gbk")
    preview = service.preview(path, ReadOptions(encoding="utf-8"))
    plan = service.scan(preview, [Field.NAME, Field.CITY])
    assert [p.line for p in plan.rejected] == [2]
    assert "not valid UTF-8" in plan.rejected[0].reason
    assert any("probably in another encoding" in n for n in plan.format.notes)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "The file is empty."),
    (b"\n\n  \n", "no header line"),
    (b"name,city\n", "only a header"),
    (b"name,city\n\n,\n", "only a header"),
    (b'"name,city\n', "header (line 1) cannot be read"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old", ".xls workbook"),
    (b"PK\x03\x04broken zip", "not a readable Excel workbook"),
])
def test_file_level_problems_say_what_is_wrong(service: ImportService, tmp_path: Path,
                                               content: bytes, message: str) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match=message.replace(".", r"\.")
                       .replace("(", r"\(").replace(")", r"\)")):
        service.preview(path)


def test_missing_file_and_bad_mapping(service: ImportService, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="does not exist"):
        service.preview(tmp_path / "nope.csv")
    path = write(tmp_path, "m.csv", "Spalte1,Spalte2\nAcme,Berlin\n")
    preview = service.preview(path)
    assert preview.mapping == [Field.IGNORE, Field.IGNORE]
    with pytest.raises(MappingError, match="No column is mapped to “Name”"):
        service.scan(preview)
    with pytest.raises(MappingError, match=r"Several columns are mapped to “name” \(A \(Spalte1\)"):
        service.scan(preview, [Field.NAME, Field.NAME])


def test_field_validation_and_country_region(service: ImportService, db: Database,
                                             tmp_path: Path) -> None:
    body = ("name,country,phone,status,do not call,email\n"
            "Hans,Germany,030 1234567,意向客户,否,hans@example.de\n"
            "Zed,Atlantis,1,new,no,\n"
            "Kim,KR,010-1234-5678,contacted,maybe,\n"
            "Li,中国,13800138000,成交,是,not-an-email\n")
    result = import_all(service, write(tmp_path, "v.csv", body))
    reasons = {p.line: p.reason for p in result.rejected}
    assert reasons[3].startswith("unknown country “Atlantis”")
    assert reasons[4] == "do-not-call must be yes or no, not “maybe”"
    assert any(p.line == 5 and "e-mail" in p.reason for p in result.warnings)
    hans, li = customers(db)
    assert hans.country == "DE" and hans.status == "interested" and not hans.do_not_call
    assert hans.phones[0].e164 == "+49301234567"  # parsed with the row's own country
    assert li.country == "CN" and li.status == "customer" and li.do_not_call


def test_import_writes_outbox_rows_and_is_searchable(service: ImportService, db: Database,
                                                     tmp_path: Path) -> None:
    body = "姓名,手机\n" + "".join(f"王小明{i},1380013{i:04d}\n" for i in range(60))
    result = import_all(service, write(tmp_path, "s.csv", body))
    assert result.imported == 60
    with db.transaction() as s:
        entities = {e: n for e, n in s.execute(
            select(Outbox.entity, func.count()).group_by(Outbox.entity)).all()}
        first_phone = s.scalars(select(Outbox).where(Outbox.entity == "phone")).first()
        assert first_phone is not None
        cust_uuid = json.loads(first_phone.changed_fields)["customer_uuid"]
        assert s.scalar(select(func.count()).where(Customer.uuid == cust_uuid)) == 1
    assert entities == {"customer": 60, "phone": 60}
    search = CustomerSearch(db, PhoneNormalizer("CN"))
    assert [r.name for r in search.page("王小明7", None, 50).rows][:1] == ["王小明7"]
    assert search.caller_id("+86 138 0013 0042") is not None


def test_import_index_matches_rebuild(db: Database, tmp_path: Path) -> None:
    """Bulk blocks (triggers suspended) index exactly what the search triggers would."""
    from agent_desktop.search import rebuild_index

    service = ImportService(db, PhoneNormalizer("CN"), batch_size=500)
    body = "name,company,city,phone,tags\n" + "".join(
        f"Name{i} 张{i},Co {i % 7},城市{i % 5},1390013{i:04d},t{i % 3};x\n" for i in range(120))
    import_all(service, write(tmp_path, "b.csv", body))
    with db.engine.begin() as conn:
        before = conn.execute(text("SELECT * FROM customer_search_docs ORDER BY id")).all()
        keys = conn.execute(text("SELECT id, name_key FROM customers ORDER BY id")).all()
        rebuild_index(conn, 0)
        after = conn.execute(text("SELECT * FROM customer_search_docs ORDER BY id")).all()
        assert conn.execute(text("SELECT id, name_key FROM customers ORDER BY id")).all() == keys
        trig = conn.execute(text("SELECT count(*) FROM sqlite_master WHERE type='trigger'"
                                 " AND name LIKE '%search%'")).scalar()
    assert len(before) == 120 and before == after
    assert trig == 9  # the triggers are back


def test_xlsx_import_first_and_chosen_sheet(service: ImportService, db: Database,
                                            tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "客户"
    ws.append(["姓名", "手机号", "城市", "备注"])
    ws.append(["张伟", 13800138000, "北京", None])
    ws.append([None, 13900139000, "上海", "no name"])
    ws.append(["李娜", "139 0013 9001", None, "=not a formula"])
    ws["D4"].data_type = "s"  # text that starts with "=", as Excel stores '=...
    other = wb.create_sheet("Other")
    other.append(["Name", "Phone"])
    other.append(["Zed", "+1 415 555 0199"])
    path = tmp_path / "c.xlsx"
    wb.save(path)
    preview = service.preview(path)
    assert preview.format.kind == "xlsx" and preview.format.sheets == ["客户", "Other"]
    assert preview.rows[0] == (2, ("张伟", "13800138000", "北京"))
    result = import_all(service, path)
    assert result.imported == 2
    assert [(p.line, p.reason) for p in result.rejected] == [(3, "missing name")]
    zhang, li = customers(db)
    assert zhang.phones[0].e164 == "+8613800138000"
    assert li.notes[0].body == "=not a formula"
    res2 = import_all(service, path, ReadOptions(sheet="Other"))
    assert res2.imported == 1
    with pytest.raises(ImportFileError, match="no sheet named “Nope”"):
        service.preview(path, ReadOptions(sheet="Nope"))


def test_file_changed_after_scan_is_refused(service: ImportService, tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", "name\nA\n")
    plan = service.scan(service.preview(path))
    path.write_text("name\nA\nB\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="changed after it was checked"):
        service.run(plan)


def test_failing_batch_is_reported_with_committed_lines(service: ImportService,
                                                        db: Database, tmp_path: Path) -> None:
    """A real database error in the third batch: batches 1-2 stay, the result says so."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER boom BEFORE INSERT ON customers WHEN NEW.name = 'BOOM'"
            " BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END")
    names = ["A", "B", "C", "D", "E", "F", "G", "BOOM", "H", "I"]
    path = write(tmp_path, "f.csv", "name\n" + "\n".join(names) + "\n")
    result = import_all(service, path)
    assert not result.complete
    assert result.imported == 6
    assert result.committed_through == 7  # lines 2-7 (A-F) are in
    assert "saving lines 8–10 failed" in result.failure
    assert "disk quota exceeded" in result.failure
    assert "STOPPED" in result.summary() and "line 7" in result.summary()
    assert [c.name for c in customers(db)] == ["A", "B", "C", "D", "E", "F"]


def test_cancel_stops_between_batches(service: ImportService, db: Database,
                                      tmp_path: Path) -> None:
    import threading

    path = write(tmp_path, "c.csv", "name\n" + "\n".join(f"P{i}" for i in range(20)) + "\n")
    plan = service.scan(service.preview(path))
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= 6:
            cancel.set()

    result = service.run(plan, progress, cancel)
    assert result.cancelled and not result.complete
    assert result.imported == 6 and result.committed_through == 7
    assert len(customers(db)) == 6 and seen[-1] == 6


def test_report_csv_and_text(service: ImportService, tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", "姓名,城市\n,北京\n王芳,上海\n")
    result = import_all(service, path)
    out = tmp_path / "report.csv"
    result.write_report(out)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert "2,rejected,missing name, | 北京" in raw.decode("utf-8-sig")
    assert "2\trejected\tmissing name" in result.report_text()


def test_tags_and_phones_from_several_columns(service: ImportService, db: Database,
                                              tmp_path: Path) -> None:
    body = "姓名,手机,办公电话,标签,Tags\n赵六,13800138000；13900139000,010-62345678,A，B,b;C\n"
    result = import_all(service, write(tmp_path, "t.csv", body))
    assert result.imported == 1
    (c,) = customers(db)
    assert [(p.e164, p.label) for p in c.phones] == [
        ("+8613800138000", "mobile"), ("+8613900139000", "mobile"), ("+861062345678", "work")]
    assert sorted(t.name for t in c.tags) == ["A", "B", "C"]
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(PhoneNumber)) == 3
        assert s.scalar(select(func.count()).select_from(Tag)) == 3


def test_bom_with_plain_utf8_override_still_maps_the_first_column(service: ImportService,
                                                                  tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", "姓名,城市\n张伟,北京\n", "utf-8-sig")
    preview = service.preview(path, ReadOptions(encoding="utf-8"))
    assert preview.headers == ["姓名", "城市"] and preview.mapping[0] is Field.NAME
