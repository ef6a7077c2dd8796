"""PhoneNormalizer: E.164 round trips, caller-ID keys, and bad input kept with a reason."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from agent_desktop.phones import PhoneNormalizer, digits_of, reverse_digits

REGIONS = ["CN", "US", "DE", "GB", "FR", "SG", "JP", "HK", "AU", "IN"]
FORMATS = [PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL,
           PhoneNumberFormat.NATIONAL]
TYPES = [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE]


def _example(region: str, kind: int) -> phonenumbers.PhoneNumber:
    num = phonenumbers.example_number_for_type(region, kind)
    assert num is not None, (region, kind)
    return num


@settings(max_examples=200, deadline=None)
@given(region=st.sampled_from(REGIONS), kind=st.sampled_from(TYPES),
       fmt=st.sampled_from(FORMATS), noise=st.sampled_from(["", " ", "  \t"]))
def test_valid_numbers_round_trip_in_any_written_form(region: str, kind: int, fmt: int,
                                                      noise: str) -> None:
    num = _example(region, kind)
    e164 = phonenumbers.format_number(num, PhoneNumberFormat.E164)
    written = noise + phonenumbers.format_number(num, fmt) + noise
    n = PhoneNormalizer(region).normalize(written)
    assert n.valid and n.problem == ""
    assert n.e164 == e164
    assert n.raw == written  # what was typed is kept verbatim
    assert n.rev_digits == e164[1:][::-1]
    assert n.region == region
    # Normalising the stored E.164 again gives the same number from any default region.
    again = PhoneNormalizer("US").normalize(e164)
    assert again.e164 == e164


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40), region=st.sampled_from(REGIONS))
def test_never_raises_and_never_drops_input(text: str, region: str) -> None:
    n = PhoneNormalizer(region).normalize(text)
    assert n.raw == text
    if n.valid:
        assert n.e164 is not None and n.e164.startswith("+")
        assert n.rev_digits == n.e164[1:][::-1]
    else:
        assert n.e164 is None
        assert n.problem  # a plain-words reason for the UI
        # Only digits are kept (phones.digits_of keeps any Unicode decimal digit; see
        # test_fullwidth_digits_from_chinese_ime for the common non-ASCII case).
        assert all(ch.isdecimal() for ch in n.rev_digits)


@settings(max_examples=200, deadline=None)
@given(digits=st.text(alphabet="0123456789", min_size=1, max_size=3))
def test_too_short_numbers_are_kept_with_a_reason(digits: str) -> None:
    n = PhoneNormalizer("CN").normalize(digits)
    assert not n.valid and n.e164 is None
    assert n.problem
    assert n.rev_digits in (digits[::-1], reverse_digits(digits))


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet="0123456789 -()+./", max_size=30))
def test_digits_helpers(text: str) -> None:
    assert digits_of(text) == "".join(ch for ch in text if ch.isdigit())
    assert reverse_digits(text) == digits_of(text)[::-1]


def test_unparsable_and_invalid_have_specific_reasons() -> None:
    norm = PhoneNormalizer("CN")
    assert norm.normalize("call me").problem == "No digits in the number"
    assert norm.normalize("").problem == "No digits in the number"
    short = norm.normalize("12")
    assert not short.valid and short.problem
    invalid = norm.normalize("+86 100 0000 0000")
    assert not invalid.valid and invalid.e164 is None and invalid.problem
    assert invalid.rev_digits  # still findable by its digits


@pytest.mark.parametrize("presented", ["+8613800138000", "008613800138000", "13800138000",
                                       "138 0013 8000", "+86 (138) 0013-8000"])
def test_lookup_key_agrees_across_presented_forms(presented: str) -> None:
    assert PhoneNormalizer("CN").lookup_key(presented) == "0008310083168"


def test_fullwidth_digits_from_chinese_ime() -> None:
    n = PhoneNormalizer("CN").normalize("１３８ ００１３ ８０００")
    assert n.valid and n.e164 == "+8613800138000"
    assert n.rev_digits == "0008310083168"


def test_default_region_decides_national_numbers() -> None:
    assert PhoneNormalizer("US").normalize("(415) 555-2671").e164 == "+14155552671"
    assert PhoneNormalizer("de").normalize("030 12345678").e164 == "+493012345678"
    assert PhoneNormalizer("CN").normalize("(415) 555-2671").e164 != "+14155552671"


def test_display_is_international_for_valid_and_unchanged_otherwise() -> None:
    norm = PhoneNormalizer("CN")
    assert norm.display("+8613800138000") == "+86 138 0013 8000"
    assert norm.display("12-34") == "12-34"
    assert norm.display("not a number") == "not a number"


def test_rev_digits_are_ascii_for_any_script() -> None:
    assert digits_of("+86 １３８-٣ ꧰x") == "8613830"
    n = PhoneNormalizer("CN").normalize("꧰꧰꧰٣")
    assert n.rev_digits.isascii() and n.rev_digits == "3000"
