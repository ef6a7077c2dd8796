"""The cheaper phone code gives exactly what the plain phonenumbers code gave, for any input.

`phones.digits_of` has an ASCII fast path and `PhoneNormalizer.normalize` extracts the
digits once; the import reuses each number's result through `PhoneCache`. The reference
below is the code as it was before (per-character Unicode lookups, digits extracted for
every use, every call parsed), so any difference in any field fails here.
"""

from __future__ import annotations

import unicodedata

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from agent_desktop.importing.phone_cache import PhoneCache
from agent_desktop.phones import NormalizedPhone, PhoneNormalizer, digits_of

REGIONS = ["CN", "US", "DE", "GB", "FR", "JP", "HK", "IN", "SG", "AU", "BR", "IT"]
FORMATS = [PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL,
           PhoneNumberFormat.NATIONAL, PhoneNumberFormat.RFC3966]
TYPES = [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.TOLL_FREE]
FULLWIDTH = str.maketrans("0123456789+-() ", "０１２３４５６７８９＋－（）\u3000")
# What Chinese spreadsheets put around numbers: full-width and CJK punctuation.
CJK_PUNCT = ["（", "）", "－", "—", "、", "，", "。", "；", "：", "\u3000", "·", "转", "分机"]
EXTENSIONS = [" ext. 123", " x12", "#45", " ext 9", ";ext=77", " 转 801", " 分机 12",
              ",,123", " extension 4"]


def reference_digits(text: str) -> str:
    return "".join(str(unicodedata.digit(ch)) for ch in text
                   if ch.isdigit() and unicodedata.digit(ch, None) is not None)


def reference_normalize(raw: str, region: str) -> NormalizedPhone:
    """`PhoneNormalizer.normalize` before the fast path, line for line."""
    text = raw.strip()
    if not reference_digits(text):
        return NormalizedPhone(raw, None, "", False, "No digits in the number")
    try:
        num = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return NormalizedPhone(raw, None, reference_digits(text)[::-1], False,
                               f"Not a phone number ({exc._msg})")
    if not phonenumbers.is_possible_number(num):
        return NormalizedPhone(raw, None, reference_digits(text)[::-1], False,
                               "Too short or too long for its country")
    e164 = phonenumbers.format_number(num, PhoneNumberFormat.E164)
    valid = phonenumbers.is_valid_number(num)
    return NormalizedPhone(raw, e164 if valid else None, reference_digits(e164)[::-1],
                           valid, "" if valid else "Not a valid number in its country")


@st.composite
def written_numbers(draw: st.DrawFn) -> str:
    """Real numbers of several countries in the ways people type them, then disturbed."""
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from(TYPES))
    num = phonenumbers.example_number_for_type(region, kind)
    if num is None:
        num = phonenumbers.example_number(region)
    assert num is not None
    if draw(st.booleans()):  # another number of the same shape
        digits = str(num.national_number)
        tail = draw(st.text("0123456789", min_size=len(digits) // 2,
                            max_size=len(digits) // 2))
        num.national_number = int(digits[:len(digits) - len(tail)] + tail)
    text = phonenumbers.format_number(num, draw(st.sampled_from(FORMATS)))
    if draw(st.booleans()):
        text = text.translate(FULLWIDTH)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(CJK_PUNCT)) + text[at:]
    if draw(st.booleans()):
        text += draw(st.sampled_from(EXTENSIONS))
    if draw(st.integers(0, 4)) == 0:  # cut or garbled
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=4))
    return draw(st.sampled_from(["", " ", "\t"])) + text + draw(st.sampled_from(["", " "]))


def digit_runs() -> st.SearchStrategy[str]:
    """Bare digit strings with the prefixes of each dialling habit (+, 00, 0, none)."""
    return st.builds(lambda p, d: p + d, st.sampled_from(["", "+", "00", "0", "+0", "１"]),
                     st.text("0123456789", max_size=20))


ANY_TEXT = st.one_of(written_numbers(), digit_runs(), st.text(max_size=30),
                     st.text("0123456789٠١٢٣٤٥٦٧٨٩０１２３４５６７８９²³+-() x#",
                             max_size=25))


@settings(max_examples=1500, deadline=None)
@given(text=ANY_TEXT, region=st.sampled_from(REGIONS))
@example(text="+86 138 0013 8000", region="CN")
@example(text="１３８００１３８０００", region="CN")
@example(text="010-6000 0000 转 801", region="CN")
@example(text="+1 (650) 253-0000 ext. 123", region="US")
@example(text="²³⁴５", region="DE")
@example(text="٠١٢٣٤٥٦٧٨٩", region="IN")
@example(text="   ", region="CN")
@example(text="+800 1234 5678", region="GB")
def test_normalize_equals_the_plain_phonenumbers_code(text: str, region: str) -> None:
    expected = reference_normalize(text, region)
    assert PhoneNormalizer(region).normalize(text) == expected
    # The import's cache: the first call parses, the second is rebuilt from the cache.
    cache = PhoneCache()
    normalizer = PhoneNormalizer(region)
    assert cache.normalize(normalizer, text) == expected
    assert cache.normalize(normalizer, text) == expected
    assert (cache.misses, cache.hits) == (1, 1)


@settings(max_examples=1500, deadline=None)
@given(text=st.one_of(st.text(max_size=40), ANY_TEXT))
def test_digits_of_equals_the_unicode_lookup(text: str) -> None:
    assert digits_of(text) == reference_digits(text)
    assert digits_of(text).isascii()


@pytest.mark.parametrize("text", ["13800138000", "+86 (10) 6000-0000", "tel:+1-650",
                                  "", "abc", "1\x002\x7f3", "０１２", "１2３"])
def test_digits_of_examples(text: str) -> None:
    assert digits_of(text) == reference_digits(text)


def test_cache_is_per_region_and_bounded() -> None:
    cache = PhoneCache(limit=2)
    cn, us = PhoneNormalizer("CN"), PhoneNormalizer("US")
    # The same national digits mean different numbers in different regions.
    assert cache.normalize(cn, "6502530000") == cn.normalize("6502530000")
    assert cache.normalize(us, "6502530000").e164 == "+16502530000"
    assert len(cache) == 2
    # Over the limit: still the right answer, parsed again each time, nothing stored.
    assert cache.normalize(cn, "13800138000").e164 == "+8613800138000"
    assert cache.normalize(cn, "13800138000").e164 == "+8613800138000"
    assert len(cache) == 2 and cache.misses == 4
    # An invalid number is cached whole: its reason and its digits come back unchanged.
    small = PhoneCache()
    first = small.normalize(cn, "12")
    assert small.normalize(cn, "12") == first == cn.normalize("12")
    assert not first.valid and first.problem and first.rev_digits == "21"
    small.clear()
    assert len(small) == 0
