"""CustomerSearch against a real migrated SQLite file: FTS5 trigram + bigram tiers, triggers
that keep the index in step with edits, keyset paging, caller ID, bulk loading."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text

from agent_desktop.demo import load_demo
from agent_desktop.phones import PhoneNormalizer, digits_of
from agent_desktop.search import CustomerSearch, bulk_load, name_key_of, plan_query
from agent_desktop.store.db import Database, alembic_config
from agent_desktop.store.models import Customer, PhoneNumber, Tag, utcnow

NORMALIZER = PhoneNormalizer("CN")
NOW = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.open(tmp_path / "search.sqlite3")
    yield d
    d.close()


@pytest.fixture
def search(db: Database) -> CustomerSearch:
    return CustomerSearch(db, NORMALIZER)


def add(db: Database, name: str, company: str = "", city: str = "",
        phones: Sequence[str] = (), tags: Sequence[str] = ()) -> int:
    """Insert through the ORM, as the app does: the triggers must index it."""
    with db.transaction() as s:
        c = Customer(name=name, company=company, city=city)
        for pos, raw in enumerate(phones):
            n = NORMALIZER.normalize(raw)
            c.phones.append(PhoneNumber(raw=raw, e164=n.e164, rev_digits=n.rev_digits,
                                        valid=n.valid, position=pos))
        for t in tags:
            c.tags.append(Tag(name=t))
        s.add(c)
        s.flush()
        return c.id


def ids(search: CustomerSearch, query: str, limit: int = 1000) -> list[int]:
    return [r.id for r in search.page(query, None, limit).rows]


def all_ids(search: CustomerSearch, query: str, limit: int) -> list[int]:
    """Every row of every page, in order."""
    out: list[int] = []
    after = None
    for _ in range(10_000):
        page = search.page(query, after, limit)
        assert len(page.rows) <= limit
        out += [r.id for r in page.rows]
        if page.next_after is None:
            return out
        assert len(page.rows) == limit  # a key is only handed out after a full page
        after = page.next_after
    raise AssertionError("paging never ended")


# ----------------------------------------------------------------------------- matching
def test_latin_any_part_case_insensitive(db: Database, search: CustomerSearch) -> None:
    mueller = add(db, "Jürgen Müller")
    smith = add(db, "Grace Smith")
    for q in ("müller", "MÜLLER", "ülle", "jürgen", "Jür", "gen mül", "ller"):
        assert ids(search, q) == [mueller], q
    for q in ("smith", "SMI", "ace sm", "grace smith", "race"):
        assert ids(search, q) == [smith], q
    assert ids(search, "smyth") == []


def test_chinese_names_one_two_and_three_characters(db: Database,
                                                    search: CustomerSearch) -> None:
    xm = add(db, "王小明")
    li = add(db, "李娜")
    oy = add(db, "欧阳修")
    wl = add(db, "黄王林")
    assert ids(search, "王") == [xm, wl]  # prefix tier first, then "contains"
    assert ids(search, "小明") == [xm]
    assert ids(search, "明") == [xm]  # last character
    assert ids(search, "王小明") == [xm]
    assert ids(search, "娜") == [li]
    assert ids(search, "李娜") == [li]
    assert ids(search, "阳修") == [oy]
    assert ids(search, "欧阳") == [oy]
    assert ids(search, "小红") == []
    assert ids(search, "张") == []


def test_company_city_and_tags(db: Database, search: CustomerSearch) -> None:
    a = add(db, "Anna Berg", company="Acme Logistics GmbH", city="Berlin", tags=["VIP"])
    b = add(db, "张伟", company="北京华为技术有限公司", city="北京", tags=["价格敏感", "回访"])
    assert ids(search, "acme") == [a]
    assert ids(search, "logist") == [a]
    assert ids(search, "berlin") == [a]
    assert ids(search, "vip") == [a]
    assert ids(search, "VI") == [a]  # 2 characters: the bigram table
    assert ids(search, "华为") == [b]
    assert ids(search, "华为技术") == [b]
    assert ids(search, "北京") == [b]
    assert ids(search, "敏感") == [b]
    assert ids(search, "价格敏感") == [b]
    assert ids(search, "回访") == [b]
    assert ids(search, "anna berlin") == [a]  # terms may sit in different fields
    assert ids(search, "张 北京") == [b]
    assert ids(search, "berg vi") == [a]  # short term beside a long one
    assert ids(search, "berg xx") == []


def test_digits_anywhere_in_a_number(db: Database, search: CustomerSearch) -> None:
    a = add(db, "Wang", phones=["+86 138 0013 8000"])
    b = add(db, "Bauer", phones=["+49 170 1234567"])
    invalid = add(db, "Kept", phones=["12-34"])  # unparsable, still searchable by digits
    for q in ("8000", "138 0013", "0013 8", "13800138000", "+8613800138000", "86138",
              "(138) 0013-8000"):
        assert ids(search, q) == [a], q
    assert ids(search, "1701234") == [b]
    assert ids(search, "+49 170") == [b]
    assert ids(search, "1234") == [b, invalid]
    assert ids(search, "999999") == []
    assert ids(search, "１３８ ００１３") == [a]  # fullwidth digits from a Chinese IME
    assert ids(search, "38") == [a]  # 1-2 digits: too short for trigrams, still found
    assert ids(search, "7") == [b]


def test_tiers_order_prefix_then_name_then_elsewhere(db: Database,
                                                     search: CustomerSearch) -> None:
    other = add(db, "Zed Zulu", company="Annex Trading")
    contains = add(db, "Joanna Smith")
    prefix2 = add(db, "Anna Zimmer")
    prefix1 = add(db, "Anna Berg")
    # >= 3 characters: name prefix (alphabetical), then matches anywhere (id order).
    assert ids(search, "ann") == [prefix1, prefix2, other, contains]
    # Browsing (no query) is alphabetical by name_key.
    assert ids(search, "") == [prefix1, prefix2, contains, other]
    # 1-2 characters: name prefix, then name contains, then other fields.
    bj_company = add(db, "Zhou", company="北京京东")
    bj_name = add(db, "钱北京")
    bj_prefix = add(db, "北京人")
    assert ids(search, "北京") == [bj_prefix, bj_name, bj_company]


def test_name_key_set_by_trigger_matches_python(db: Database) -> None:
    cid = add(db, "ÉLodie DUPONT 王")
    with db.engine.connect() as conn:
        key = conn.execute(text("SELECT name_key FROM customers WHERE id = :i"),
                           {"i": cid}).scalar_one()
    assert key == name_key_of("ÉLodie DUPONT 王") == "Élodie dupont 王"


# ----------------------------------------------------------------------------- triggers
def test_tombstoned_rows_leave_the_index(db: Database, search: CustomerSearch) -> None:
    gone = add(db, "Gone Person", company="Ghost Ltd", phones=["13800138000"], tags=["VIP"])
    stays = add(db, "Gone Fishing")
    with db.transaction() as s:
        c = s.get(Customer, gone)
        assert c is not None
        c.deleted_at = utcnow()
    for q in ("gone", "ghost", "13800138", "vip", "VI", "Go"):
        assert gone not in ids(search, q), q
    assert ids(search, "gone") == [stays]
    assert ids(search, "") == [stays]
    assert search.caller_id("+8613800138000") is None
    # Undelete (a sync can bring it back): indexed again.
    with db.transaction() as s:
        c = s.get(Customer, gone)
        assert c is not None
        c.deleted_at = None
    assert ids(search, "ghost") == [gone]


def test_edits_keep_index_in_step(db: Database, search: CustomerSearch) -> None:
    cid = add(db, "Old Name", company="Old Co", city="Paris", phones=["13800138000"],
              tags=["VIP", "wholesale"])
    with db.transaction() as s:
        c = s.get(Customer, cid)
        assert c is not None
        c.name, c.company, c.city = "新名字", "New Co", "Lyon"
    assert ids(search, "old") == []
    assert ids(search, "新名") == [cid]
    assert ids(search, "新名字") == [cid]
    assert ids(search, "new co") == [cid]
    assert ids(search, "lyon") == [cid]
    assert ids(search, "paris") == []
    assert ids(search, "") == [cid]

    # Tag removed by tombstone, another by hard delete, one added.
    with db.transaction() as s:
        tags = {t.name: t for t in s.scalars(select(Tag).where(Tag.customer_id == cid))}
        tags["VIP"].deleted_at = utcnow()
        s.delete(tags["wholesale"])
        s.add(Tag(customer_id=cid, name="重要客户"))
    assert ids(search, "vip") == []
    assert ids(search, "wholesale") == []
    assert ids(search, "重要") == [cid]

    # Phone number changed: the old digits no longer match, the new ones do.
    with db.transaction() as s:
        p = s.scalars(select(PhoneNumber).where(PhoneNumber.customer_id == cid)).one()
        n = NORMALIZER.normalize("+49 170 7654321")
        p.raw, p.e164, p.rev_digits = n.raw, n.e164, n.rev_digits
    assert ids(search, "0013800") == []
    assert ids(search, "7654321") == [cid]
    assert search.caller_id("13800138000") is None
    assert search.caller_id("+491707654321") == cid

    # A phone moved to another customer re-indexes both.
    other = add(db, "Other")
    with db.transaction() as s:
        p = s.scalars(select(PhoneNumber).where(PhoneNumber.customer_id == cid)).one()
        p.customer_id = other
    assert ids(search, "7654321") == [other]

    # Hard delete of the customer removes it entirely.
    with db.transaction() as s:
        c = s.get(Customer, cid)
        s.delete(c)
    assert ids(search, "lyon") == []
    with db.engine.connect() as conn:
        n_docs = conn.execute(text("SELECT count(*) FROM customer_search_docs")).scalar_one()
        n_fts = conn.execute(text("SELECT count(*) FROM customer_fts")).scalar_one()
    assert n_docs == n_fts == 1


# ----------------------------------------------------------------------------- paging
def _oracle(db: Database, query: str) -> set[int]:
    """Brute force over the live rows, in Python: what an agent expects to be found."""
    q = query.lower()
    plan = plan_query(query)
    digits = digits_of(query) if plan is not None and plan.prefix is None else ""
    found = set()
    with db.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT c.id, c.name, c.company, c.city,"
            " (SELECT group_concat(t.name, ' ') FROM tags t WHERE t.customer_id = c.id"
            "  AND t.deleted_at IS NULL) AS tags,"
            " (SELECT group_concat(p.raw || '|' || coalesce(p.e164, ''), '|')"
            "  FROM phone_numbers p WHERE p.customer_id = c.id AND p.deleted_at IS NULL)"
            " FROM customers c WHERE c.deleted_at IS NULL")).all()
    for cid, name, company, city, tags, phones in rows:
        if digits:
            if any(digits in digits_of(n) for n in (phones or "").split("|")):
                found.add(cid)
            continue
        hay = " | ".join([name, company, city, tags or ""]).lower()
        if all(term in hay for term in q.split()):
            found.add(cid)
    return found


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    d = Database.open(tmp_path_factory.mktemp("demo") / "demo.sqlite3")
    load_demo(d, 3000, seed=7, now=NOW)
    with d.transaction() as s:  # a few tombstones in the mix
        for c in s.scalars(select(Customer).where(Customer.id % 97 == 0)):
            c.deleted_at = utcnow()
    yield d
    d.close()


@pytest.mark.parametrize("query", ["", "王", "小明", "欧阳", "北京", "li", "an", "ing",
                                   "müller", "smith", "vip", "价格敏感", "科技有限", "2001",
                                   "138", "+49 17", "13", "wei ling", "zz-not-there"])
def test_paging_yields_every_match_exactly_once(demo_db: Database, query: str) -> None:
    search = CustomerSearch(demo_db, NORMALIZER)
    paged = all_ids(search, query, limit=37)
    assert len(paged) == len(set(paged))
    assert set(paged) == set(all_ids(search, query, limit=5000))
    if query and query != "an" and query != "li":
        # 1-2 letter Latin terms are matched on bigrams of the first characters only;
        # everything else must equal brute force.
        assert set(paged) == _oracle(demo_db, query)
    else:
        assert set(paged) <= _oracle(demo_db, query)
    if query == "zz-not-there":
        assert paged == []
    else:
        assert paged


def test_page_rows_carry_display_fields(db: Database, search: CustomerSearch) -> None:
    cid = add(db, "Li Na", company="Acme", city="上海", phones=["138 0013 8000", "010 6234 5678"],
              tags=["VIP", "回访"])
    (row,) = search.page("li na", None, 10).rows
    assert (row.id, row.name, row.company, row.city, row.phone) == (
        cid, "Li Na", "Acme", "上海", "138 0013 8000")
    assert set(row.tags.split(", ")) == {"VIP", "回访"}
    assert row.status == "new"


def test_bad_page_arguments_are_refused(search: CustomerSearch) -> None:
    with pytest.raises(ValueError, match="at least one row"):
        search.page("x", None, 0)
    with pytest.raises(ValueError, match="Not a page key"):
        search.page("abc", ("junk",), 10)
    with pytest.raises(ValueError, match="Not a page key"):
        search.page("", (2, 5), 10)


def test_query_syntax_is_never_interpreted(db: Database, search: CustomerSearch) -> None:
    cid = add(db, 'Say "Hi" OR NOT (x*)')
    assert ids(search, '"hi"') == [cid]
    assert ids(search, "or not") == [cid]
    assert ids(search, "(x*)") == [cid]
    for q in ('"', "*", "!!", "NOT", "a AND", "^", "-", "''"):
        search.page(q, None, 10)  # no FTS5 syntax error


# ----------------------------------------------------------------------------- caller ID
def test_caller_id_from_every_presented_form(db: Database, search: CustomerSearch) -> None:
    mobile = add(db, "王小明", phones=["138 0013 8000"])
    land = add(db, "Beijing Office", phones=["010-6234 5678"])
    de = add(db, "Bauer", phones=["+49 170 1234567"])
    for presented in ("+8613800138000", "008613800138000", "13800138000", "138-0013-8000",
                      "+86 138 0013 8000"):
        assert search.caller_id(presented) == mobile, presented
    assert search.caller_id("+861062345678") == land
    assert search.caller_id("01062345678") == land
    assert search.caller_id("62345678") == land  # local number without the area code
    assert search.caller_id("+491701234567") == de
    assert search.caller_id("00491701234567") == de
    assert search.caller_id("+8613900000000") is None
    assert search.caller_id("110") is None  # too short to identify anyone
    assert search.caller_id("") is None
    assert search.caller_id("anonymous") is None


# ----------------------------------------------------------------------------- bulk path
def _triggers(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return {r[0] for r in conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"))}


def test_bulk_load_restores_triggers_and_rolls_back_on_error(db: Database,
                                                              search: CustomerSearch) -> None:
    before = _triggers(db)
    assert len(before) == 9
    with pytest.raises(RuntimeError, match="boom"), bulk_load(db) as conn:
        conn.exec_driver_sql("INSERT INTO customers (id, uuid, server_version, updated_at,"
                             " name, name_key, company, city, country, email, status, stage,"
                             " do_not_call, owner, created_at) VALUES (1, 'u1', 0, '', 'X',"
                             " 'x', '', '', '', '', 'new', 'lead', 0, '', '')")
        raise RuntimeError("boom")
    assert _triggers(db) == before
    assert ids(search, "") == []
    first = add(db, "Existing Person")
    with bulk_load(db) as conn:
        conn.exec_driver_sql("INSERT INTO customers (id, uuid, server_version, updated_at,"
                             " name, name_key, company, city, country, email, status, stage,"
                             " do_not_call, owner, created_at) VALUES (100, 'u100', 0, '',"
                             " 'Bulk Person', '', 'Bulkco', '', '', '', 'new', 'lead', 0, '',"
                             " '')")
    assert _triggers(db) == before
    assert ids(search, "bulkco") == [100]
    assert ids(search, "person") == [first, 100]  # both indexed, in id order (tier 2)
    assert ids(search, "bulk") == [100]  # name_key filled in by the rebuild


def test_migration_indexes_existing_rows_and_downgrades(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = Database.open(path, migrate=False)
    cfg = alembic_config(str(db.engine.url))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO customers (id, uuid, server_version, updated_at,"
                             " name, name_key, company, city, country, email, status, stage,"
                             " do_not_call, owner, created_at) VALUES (1, 'u1', 0, '',"
                             " 'Old Data 老数据', '', 'Legacy', '', '', '', 'new', 'lead', 0,"
                             " '', '')")
    db.migrate()
    search = CustomerSearch(db, NORMALIZER)
    assert ids(search, "legacy") == [1]
    assert ids(search, "老数") == [1]
    assert ids(search, "old") == [1]
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with db.engine.connect() as conn:
        left = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE name LIKE 'customer%' AND name != 'customers'"
            " OR name LIKE '%search%'").all()
    assert left == []
    db.close()


def test_core_inserts_from_a_sync_pull_are_indexed(db: Database, search: CustomerSearch) -> None:
    """Rows applied from the server go through Core, not the ORM: the SQL triggers still
    index them (and no outbox rows are written)."""
    from sqlalchemy import insert

    from agent_desktop.store.models import Outbox

    with db.transaction(applying_remote=True) as s:
        s.execute(insert(Customer), [{"id": 7, "uuid": "c7", "name": "Remote 远程客户",
                                      "company": "Pulled GmbH", "city": "Köln"}])
        s.execute(insert(PhoneNumber), [{"customer_id": 7, "uuid": "p7", "raw": "0221 1234567",
                                         "e164": "+492211234567",
                                         "rev_digits": "765432112294", "valid": True}])
        s.execute(insert(Tag), [{"customer_id": 7, "uuid": "t7", "name": "从服务器"}])
    assert ids(search, "pulled") == [7]
    assert ids(search, "远程") == [7]
    assert ids(search, "服务器") == [7]
    assert ids(search, "2211234") == [7]
    assert ids(search, "remote") == [7]  # name_key filled in by the trigger
    assert search.caller_id("+492211234567") == 7
    with db.engine.connect() as conn:
        assert conn.execute(select(Outbox)).first() is None


def test_long_digit_runs_use_the_rarest_trigrams_and_stay_exact(db: Database) -> None:
    """5+ digits: FTS5 is asked for the two rarest trigrams NEAR each other (a common one
    such as "861" of every +86 1xx number costs a walk of half the index), and LIKE on the
    digit run drops candidates that have both trigrams but not the run."""
    from agent_desktop.search_digits import DigitStats

    common = [add(db, f"Common {i}", phones=[f"+86 138 0000 {i:04d}"]) for i in range(30)]
    hit = add(db, "Hit", phones=["+86 139 4861 3500"])
    near_miss = add(db, "Near miss", phones=["+86 139 1354 8600"])  # 135 … 486, 2 apart
    search = CustomerSearch(db, NORMALIZER)
    with db.engine.connect() as conn:
        share = search._digit_stats.share(conn)
    assert share["861"] > 0.9 and share["486"] < 0.1
    assert DigitStats.narrow("486135", share) == ("486", "135", 2)
    assert DigitStats.narrow("4861", share) is None  # short: the phrase itself
    assert ids(search, "486135") == [hit]
    assert ids(search, "135486") == [near_miss]
    assert ids(search, "8613800000") == common
    assert ids(search, "13800000017") == [common[17]]
    assert ids(search, "86139") == [hit, near_miss]


def test_list_rows_come_from_covering_indexes(db: Database, search: CustomerSearch) -> None:
    """Migration 0003: a page's display columns (name, company, city, status, first live
    number, live tags) are read from indexes alone — no table page per row."""
    from sqlalchemy import event

    add(db, "Anna Berg", company="Acme", phones=["+86 138 0013 8000"], tags=["VIP"])
    seen: list[str] = []

    def capture(statement: str) -> None:
        if statement.lstrip().startswith("SELECT c.id"):
            seen.append(statement)  # with its parameters bound (expanded SQL)

    def trace(dbapi_conn: Any, _record: object, _proxy: object) -> None:
        dbapi_conn.set_trace_callback(capture)

    # Search reads through the pooled sqlite3 handle: trace there, not at SQLAlchemy level.
    event.listen(db.engine, "checkout", trace)
    try:
        assert ids(search, "ann") == ids(search, "") == [1]
        rows = search.page("ann", None, 5).rows
    finally:
        event.remove(db.engine, "checkout", trace)
    assert rows[0].phone == "+86 138 0013 8000" and rows[0].tags == "VIP"
    assert seen
    with db.engine.connect() as conn:
        for statement in seen:
            plan = " | ".join(str(r[3]) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement))
            assert "COVERING INDEX ix_phone_numbers_list" in plan, plan
            assert "COVERING INDEX ix_tags_list" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
            if "FROM customers c WHERE" in statement:  # browse and prefix tiers
                assert "COVERING INDEX ix_customers_list" in plan, plan


def test_long_digit_runs_take_the_cheapest_of_phrase_and_trigram_pairs(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shares measured at 1M: adjacent trigrams (a 4-digit run) leave ~900 candidates to
    check, two trigrams further apart a few dozen; when every trigram is rare enough the
    exact phrase checks none. Either road returns the same rows."""
    from agent_desktop.search_digits import DigitStats

    share = {"827": 0.016, "272": 0.006, "720": 0.013, "205": 0.024}
    assert DigitStats.narrow("827205", share) == ("272", "205", 1)
    assert DigitStats.narrow("75086", {"750": 0.032, "508": 0.014, "086": 0.149}) is None
    hit = add(db, "Hit", phones=["+86 139 8272 0500"])
    add(db, "Both trigrams, not the run", phones=["+86 139 2720 5000", "+1 205 272 0000"])
    search = CustomerSearch(db, NORMALIZER)
    roads = [("272", "205", 1), ("827", "205", 2), None]
    for road in roads:
        monkeypatch.setattr(DigitStats, "narrow", staticmethod(lambda d, s, r=road: r))
        assert ids(search, "827205") == [hit], road


def test_the_digit_sample_reads_a_few_ranges_never_the_whole_table(db: Database) -> None:
    """`SELECT min(id), max(id)` in one select scans every row (~100 ms at 1M, paid by the
    first digit query and every refresh); the sample must descend the b-tree instead."""
    from agent_desktop.search_digits import DigitStats

    for i in range(40):
        add(db, f"Sampled {i}", phones=[f"+86 138 0013 {i:04d}"])
    seen: list[str] = []
    with db.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.set_trace_callback(seen.append)
        try:
            share = DigitStats().share(conn)
        finally:
            driver.set_trace_callback(None)
        assert share["138"] == 1.0 and "999" not in share
        reads = [s for s in seen if "customer_search_docs" in s]
        assert reads
        for statement in reads:
            plan = " | ".join(str(r[3]) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement))
            assert "SCAN customer_search_docs" not in plan, (statement, plan)


def test_prepare_takes_the_digit_sample_once_for_the_first_digit_query(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """prepare() (run off the GUI thread after start-up) takes the sample the first digit
    query would otherwise pay for; that query then samples nothing."""
    from agent_desktop.search_digits import DigitStats

    hit = add(db, "Prepared", phones=["+86 139 4861 3500"])
    search = CustomerSearch(db, NORMALIZER)
    samples: list[int] = []
    real = DigitStats._sample

    def counting(self: DigitStats, conn: Any) -> dict[str, float]:
        samples.append(1)
        return real(self, conn)

    monkeypatch.setattr(DigitStats, "_sample", counting)
    search.prepare()
    assert samples == [1]
    assert ids(search, "4861350") == [hit]
    assert samples == [1]
