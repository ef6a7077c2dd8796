"""Dial plan: E.164 → SIP URI with prefix, national format and domain; bad input refused."""

from __future__ import annotations

import pytest

from agent_desktop.dialplan import DialPlan, DialPlanError
from agent_desktop.phones import PhoneNormalizer


def plan(**kw: object) -> DialPlan:
    return DialPlan(PhoneNormalizer("CN"), kw.pop("domain", "pbx.example.com"), **kw)  # type: ignore[arg-type]


def test_e164_goes_out_as_is() -> None:
    t = plan().to_target("+86 138 0013 8000")
    assert t.uri == "sip:+8613800138000@pbx.example.com"
    assert t.e164 == "+8613800138000"


def test_national_number_uses_default_region() -> None:
    assert plan().to_uri("010-6552 9988") == "sip:+861065529988@pbx.example.com"


def test_strip_country_code_for_home_region_only() -> None:
    p = plan(strip_country_code=True)
    assert p.to_uri("+86 10 6552 9988") == "sip:01065529988@pbx.example.com"
    assert p.to_uri("+8613800138000") == "sip:13800138000@pbx.example.com"
    # a German number keeps its international form
    assert p.to_uri("+49 30 901820") == "sip:+4930901820@pbx.example.com"


def test_prefix_uses_international_access_form() -> None:
    p = plan(prefix="9")
    assert p.to_uri("+4930901820") == "sip:9004930901820@pbx.example.com"
    p2 = plan(prefix="0", strip_country_code=True)
    assert p2.to_uri("+8613800138000") == "sip:013800138000@pbx.example.com"


def test_double_zero_is_international() -> None:
    assert plan().to_uri("0049 30 901820") == "sip:+4930901820@pbx.example.com"


def test_extensions_and_codes_pass_through() -> None:
    assert plan().to_uri("1001") == "sip:1001@pbx.example.com"
    assert plan().to_uri("*72#") == "sip:*72#@pbx.example.com"
    assert plan(prefix="9").to_uri("1001") == "sip:91001@pbx.example.com"


def test_sip_uri_passes_through() -> None:
    t = plan().to_target("sip:busy@127.0.0.1:5080")
    assert t.uri == "sip:busy@127.0.0.1:5080"
    assert t.user == "busy"


def test_domain_with_port() -> None:
    assert plan(domain="127.0.0.1:5099").to_uri("1234") == "sip:1234@127.0.0.1:5099"


@pytest.mark.parametrize(
    ("number", "fragment"),
    [
        ("", "Enter a number"),
        ("   ", "Enter a number"),
        ("12ab34", "'a' is not a digit"),
        ("+86 1", "too short"),
        ("+999 12345678", "cannot be dialled"),
        ("sip:nohost", "not a valid SIP address"),
    ],
)
def test_bad_numbers_are_refused_with_a_reason(number: str, fragment: str) -> None:
    with pytest.raises(DialPlanError) as exc:
        plan().to_uri(number)
    assert fragment.lower() in str(exc.value).lower()


def test_no_domain_is_a_clear_error() -> None:
    with pytest.raises(DialPlanError, match="No SIP domain"):
        plan(domain="").to_uri("+8613800138000")


@pytest.mark.parametrize("domain", ["bad domain", "a@b", "host:port"])
def test_bad_domain_refused(domain: str) -> None:
    with pytest.raises(DialPlanError, match="not a host name"):
        plan(domain=domain)


def test_bad_prefix_refused() -> None:
    with pytest.raises(DialPlanError, match="only digits"):
        plan(prefix="9a")


def test_from_settings_falls_back_to_registrar_then_given_domain(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent_desktop.settings import Settings

    s = Settings.load(tmp_path / "s.toml")
    norm = PhoneNormalizer("CN")
    assert DialPlan.from_settings(s, norm, "127.0.0.1:5070").domain == "127.0.0.1:5070"
    s.set("sip.registrar", "pbx.local")
    assert DialPlan.from_settings(s, norm, "127.0.0.1:5070").domain == "pbx.local"
    s.set("dialplan.domain", "calls.example.com")
    s.set("dialplan.prefix", "0")
    p = DialPlan.from_settings(s, norm)
    assert p.to_uri("1001") == "sip:01001@calls.example.com"
