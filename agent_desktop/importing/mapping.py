"""Column mapping and row validation: from a file row to a customer draft, or a reason.

The header guesser knows the English and Chinese words telesales spreadsheets use
(姓名, 手机号, 公司 …) so that most files need no manual mapping. Validation rejects only
what would make a wrong customer (no name, unknown country, bad do-not-call value); a phone
number that cannot be parsed is kept as typed and flagged, because the agent can still read
and fix it, and a lead lost to a typo is worse than a flagged one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

import phonenumbers

from agent_desktop.customers import MAX_NAME, MAX_NOTE, MAX_TAG, STAGES, STATUSES, name_key
from agent_desktop.importing.phone_cache import PhoneCache
from agent_desktop.phones import NormalizedPhone, PhoneNormalizer


class Field(StrEnum):
    """Where a column's values go; IGNORE leaves the column out."""

    IGNORE = "ignore"
    NAME = "name"
    COMPANY = "company"
    CITY = "city"
    COUNTRY = "country"
    EMAIL = "email"
    PHONE = "phone"
    TAGS = "tags"
    NOTE = "note"
    STATUS = "status"
    STAGE = "stage"
    OWNER = "owner"
    DO_NOT_CALL = "do_not_call"


# Columns that may appear several times (each phone column adds a number, and so on).
MULTI_FIELDS = frozenset({Field.IGNORE, Field.PHONE, Field.TAGS, Field.NOTE})
TEXT_FIELDS = (Field.COMPANY, Field.CITY, Field.EMAIL, Field.OWNER)

_SYNONYMS: dict[Field, tuple[str, ...]] = {
    Field.NAME: ("name", "fullname", "customer", "customername", "contact", "contactname",
                 "姓名", "名字", "客户", "客户名", "客户名称", "客户姓名", "联系人", "名称"),
    Field.COMPANY: ("company", "organisation", "organization", "org", "employer", "firm",
                    "公司", "公司名称", "单位", "企业", "企业名称", "工作单位"),
    Field.CITY: ("city", "town", "城市", "所在城市", "市", "地区"),
    Field.COUNTRY: ("country", "countrycode", "nation", "国家", "国家地区", "国家代码"),
    Field.EMAIL: ("email", "e-mail", "mail", "emailaddress", "邮箱", "电子邮件", "电子邮箱",
                  "邮件"),
    Field.TAGS: ("tags", "tag", "labels", "标签", "客户标签"),
    Field.NOTE: ("note", "notes", "comment", "comments", "remark", "remarks", "memo",
                 "备注", "说明", "附注"),
    Field.STATUS: ("status", "state", "状态", "客户状态"),
    Field.STAGE: ("stage", "pipeline", "阶段", "销售阶段"),
    Field.OWNER: ("owner", "agent", "salesrep", "assignedto", "负责人", "销售", "归属",
                  "所属销售"),
    Field.DO_NOT_CALL: ("donotcall", "dnc", "nocall", "勿扰", "免打扰", "禁止呼叫", "不要致电"),
}
_PHONE_WORDS = ("phone", "mobile", "tel", "cell", "number", "电话", "手机", "号码", "座机")
_LABEL_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fax", ("fax", "传真")),
    ("home", ("home", "家", "住宅")),
    ("work", ("work", "office", "business", "办公", "公司电话", "单位电话", "座机")),
    ("mobile", ("mobile", "cell", "手机", "移动")),
    ("other", ("other", "其他", "其它")),
)
_STATUS_WORDS: dict[str, str] = {
    "新": "new", "新客户": "new", "新建": "new", "已联系": "contacted", "联系过": "contacted",
    "有意向": "interested", "意向": "interested", "意向客户": "interested",
    "成交": "customer", "成交客户": "customer", "已成交": "customer", "客户": "customer",
    "无意向": "not_interested", "不感兴趣": "not_interested", "勿扰": "do_not_call",
    "not interested": "not_interested", "do not call": "do_not_call",
}
_STAGE_WORDS: dict[str, str] = {
    "线索": "lead", "潜在": "lead", "合格": "qualified", "已确认": "qualified",
    "方案": "proposal", "报价": "proposal", "谈判": "negotiation", "商务谈判": "negotiation",
    "赢单": "won", "成交": "won", "输单": "lost", "丢单": "lost",
}
_COUNTRY_NAMES: dict[str, str] = {
    "china": "CN", "中国": "CN", "中国大陆": "CN", "prc": "CN", "peoplesrepublicofchina": "CN",
    "hongkong": "HK", "香港": "HK", "中国香港": "HK", "macau": "MO", "macao": "MO",
    "澳门": "MO", "taiwan": "TW", "台湾": "TW", "中国台湾": "TW",
    "unitedstates": "US", "usa": "US", "america": "US", "美国": "US",
    "unitedkingdom": "GB", "uk": "GB", "greatbritain": "GB", "england": "GB", "英国": "GB",
    "germany": "DE", "deutschland": "DE", "德国": "DE", "france": "FR", "法国": "FR",
    "japan": "JP", "日本": "JP", "korea": "KR", "southkorea": "KR", "韩国": "KR",
    "singapore": "SG", "新加坡": "SG", "malaysia": "MY", "马来西亚": "MY",
    "australia": "AU", "澳大利亚": "AU", "canada": "CA", "加拿大": "CA",
    "india": "IN", "印度": "IN", "italy": "IT", "意大利": "IT", "spain": "ES", "西班牙": "ES",
    "netherlands": "NL", "荷兰": "NL", "russia": "RU", "俄罗斯": "RU", "brazil": "BR",
    "巴西": "BR", "thailand": "TH", "泰国": "TH", "vietnam": "VN", "越南": "VN",
    "indonesia": "ID", "印度尼西亚": "ID", "印尼": "ID", "philippines": "PH", "菲律宾": "PH",
    "newzealand": "NZ", "新西兰": "NZ", "switzerland": "CH", "瑞士": "CH",
}
_YES = {"yes", "y", "true", "1", "x", "是", "对", "真", "√", "✓"}
_NO = {"no", "n", "false", "0", "否", "不", "假", ""}
TAG_SPLIT = re.compile(r"[,;、，；]")
PHONE_SPLIT = re.compile(r"[,;、，；\n]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_KEY_JUNK = re.compile(r"[\s_\-./:：()（）#*]+")
MAX_STATUS = 32
MAX_FIELD = 500


def _header_key(header: str) -> str:
    return _KEY_JUNK.sub("", header.casefold())


def guess_field(header: str) -> Field:
    """Best guess for one header; IGNORE when nothing fits."""
    key = _header_key(header)
    if not key:
        return Field.IGNORE
    for target, words in _SYNONYMS.items():
        if key in words:
            return target
    # Numbered or qualified phone columns: "Phone 2", "手机号码", "办公电话", "Mobile (work)".
    if any(w in key for w in _PHONE_WORDS) and "email" not in key:
        return Field.PHONE
    for target, words in _SYNONYMS.items():
        if any(len(w) >= 4 and key.startswith(w) for w in words):
            return target
    return Field.IGNORE


def guess_mapping(headers: list[str]) -> list[Field]:
    """Guess every column; a single-valued field goes to its first matching column only."""
    out: list[Field] = []
    taken: set[Field] = set()
    for h in headers:
        f = guess_field(h)
        if f not in MULTI_FIELDS and f in taken:
            f = Field.IGNORE
        taken.add(f)
        out.append(f)
    return out


def phone_label(header: str) -> str:
    key = _header_key(header)
    for label, words in _LABEL_WORDS:
        if any(w in key for w in words):
            return label
    return "mobile"


def check_mapping(mapping: list[Field], headers: list[str]) -> None:
    """Raise MappingError naming the problem when the mapping cannot produce customers."""
    if Field.NAME not in mapping:
        raise MappingError("No column is mapped to “Name”. Choose which column holds the "
                           "customer's name.")
    for f in set(mapping) - MULTI_FIELDS:
        cols = [column_label(i, headers) for i, m in enumerate(mapping) if m == f]
        if len(cols) > 1:
            raise MappingError(f"Several columns are mapped to “{f.value}” ({', '.join(cols)}); "
                               "map only one of them.")


def column_label(index: int, headers: list[str]) -> str:
    """“C (城市)”: spreadsheet letter plus header, how the agent finds a column."""
    letters = ""
    n = index + 1
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(65 + r) + letters
    head = headers[index] if index < len(headers) and headers[index] else ""
    return f"{letters} ({head})" if head else letters


class MappingError(ValueError):
    """The chosen mapping cannot be used; `str()` says why in plain words."""


@dataclass
class PhoneDraft:
    raw: str
    label: str
    normalized: NormalizedPhone


@dataclass
class CustomerDraft:
    """A validated row, ready to become (or merge into) a customer."""

    line: int
    name: str
    fields: dict[str, object]  # company, city, country, email, status, stage, owner, dnc
    phones: list[PhoneDraft] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    # One note per note column, in column order: an exported customer's "Note 1…N" come
    # back as the same separate notes (joining them made a round trip lossy).
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def name_key(self) -> str:
        return name_key(self.name)

    @property
    def e164s(self) -> list[str]:
        return [p.normalized.e164 for p in self.phones if p.normalized.e164]


class RowRejected(ValueError):
    """This row cannot become a customer; `str()` is the reason for the report."""


def country_code(text: str) -> str:
    """ISO 3166 alpha-2 for a code or a common English/Chinese name; '' if unknown."""
    t = text.strip()
    if len(t) == 2 and t.isascii() and t.upper() in phonenumbers.SUPPORTED_REGIONS:
        return t.upper()
    return _COUNTRY_NAMES.get(_header_key(t), "")


def split_tags(text: str) -> list[str]:
    return [t.strip() for t in TAG_SPLIT.split(text) if t.strip()]


class RowConverter:
    """Turns the values of one row into a CustomerDraft under a fixed mapping."""

    def __init__(self, mapping: list[Field], headers: list[str],
                 normalizer: PhoneNormalizer, *, pad_short: bool = False,
                 phones: PhoneCache | None = None) -> None:
        """`pad_short`: a spreadsheet row simply ends at its last filled cell, so short
        rows are normal there; in CSV a short row means a lost separator. `phones`: the
        import's parsed numbers, shared by its scan and its run."""
        check_mapping(mapping, headers)
        self._phones = phones if phones is not None else PhoneCache()
        self.mapping = mapping
        self.headers = headers
        self._default = normalizer
        self._by_region: dict[str, PhoneNormalizer] = {normalizer.default_region: normalizer}
        self._labels = [phone_label(h) for h in headers]
        self._width = len(headers)
        self._pad = pad_short

    def _normalizer(self, region: str) -> PhoneNormalizer:
        if not region:
            return self._default
        n = self._by_region.get(region)
        if n is None:
            n = self._by_region[region] = PhoneNormalizer(region)
        return n

    def convert(self, line: int, values: tuple[str, ...]) -> CustomerDraft:
        if self._pad and len(values) < self._width:
            values = values + ("",) * (self._width - len(values))
        if len(values) < self._width:
            raise RowRejected(f"missing columns: expected {self._width} values, found "
                              f"{len(values)}")
        if len(values) > self._width and any(values[self._width:]):
            raise RowRejected(f"extra values: expected {self._width} values, found "
                              f"{len(values)}")
        single: dict[Field, str] = {}
        phones: list[tuple[str, str]] = []
        tags: list[str] = []
        notes: list[str] = []
        for i, target in enumerate(self.mapping):
            value = values[i]
            if target is Field.IGNORE or not value:
                continue
            if target is Field.PHONE:
                phones += [(p.strip(), self._labels[i]) for p in PHONE_SPLIT.split(value)
                           if p.strip()]
            elif target is Field.TAGS:
                tags += split_tags(value)
            elif target is Field.NOTE:
                notes.append(value)
            else:
                single[target] = value
        name = single.get(Field.NAME, "")
        if not name:
            raise RowRejected("missing name")
        if len(name) > MAX_NAME:
            raise RowRejected(f"the name is longer than {MAX_NAME} characters")
        draft = CustomerDraft(line, name, {})
        for f in TEXT_FIELDS:
            text = single.get(f, "")
            if len(text) > MAX_FIELD:
                raise RowRejected(f"{f.value} is longer than {MAX_FIELD} characters")
            if text:
                draft.fields[f.value] = text
        email = single.get(Field.EMAIL, "")
        if email and not _EMAIL.match(email):
            draft.warnings.append(f"e-mail “{email}” does not look like an address; kept as "
                                  "typed")
        if len(single.get(Field.OWNER, "")) > 64:
            raise RowRejected("owner is longer than 64 characters")
        country = single.get(Field.COUNTRY, "")
        if country:
            code = country_code(country)
            if not code:
                raise RowRejected(f"unknown country “{country}” (use a two-letter code such "
                                  "as CN, US or DE)")
            draft.fields["country"] = code
        for f, known, words in ((Field.STATUS, STATUSES, _STATUS_WORDS),
                                (Field.STAGE, STAGES, _STAGE_WORDS)):
            text = single.get(f, "")
            if not text:
                continue
            canon = text.casefold().replace(" ", "_")
            value = canon if canon in known else words.get(text.casefold(), text)
            if len(value) > MAX_STATUS:
                raise RowRejected(f"{f.value} “{text[:40]}” is longer than {MAX_STATUS} "
                                  "characters")
            draft.fields[f.value] = value
        dnc = single.get(Field.DO_NOT_CALL, "")
        if dnc:
            key = dnc.strip().casefold()
            if key in _YES:
                draft.fields["do_not_call"] = True
            elif key in _NO:
                draft.fields["do_not_call"] = False
            else:
                raise RowRejected(f"do-not-call must be yes or no, not “{dnc}”")
        seen_tags: set[str] = set()
        for t in tags:
            if len(t) > MAX_TAG:
                raise RowRejected(f"tag “{t[:20]}…” is longer than {MAX_TAG} characters")
            if t.casefold() not in seen_tags:
                seen_tags.add(t.casefold())
                draft.tags.append(t)
        for body in notes:
            if len(body) > MAX_NOTE:
                raise RowRejected(f"a note is longer than {MAX_NOTE} characters")
            draft.notes.append(body)
        normalizer = self._normalizer(str(draft.fields.get("country", "")))
        seen_phones: set[str] = set()
        for raw, label in phones:
            if len(raw) > 40:
                raise RowRejected(f"phone “{raw[:20]}…” is longer than 40 characters")
            n = self._phones.normalize(normalizer, raw)
            key = n.e164 or n.rev_digits or raw
            if key in seen_phones:
                continue
            seen_phones.add(key)
            if not n.valid:
                draft.warnings.append(f"phone “{raw}” kept as typed but flagged: {n.problem}")
            draft.phones.append(PhoneDraft(raw, label, n))
        return draft
