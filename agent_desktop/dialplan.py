"""Turn what the agent dials (an E.164 number, a typed number, an extension) into a SIP URI.

Why a dial plan: a PBX wants numbers in its own shape — an outside-line prefix ("0"),
national format instead of +CC for local numbers, a fixed domain. The settings
`dialplan.prefix`, `dialplan.strip_country_code` and `dialplan.domain` describe that shape
once; everything else dials E.164. With a prefix, international numbers are dialled as
prefix + "00" + country code + number (the ITU international access form), because a
"+" after outside-line digits means nothing to a PBX. A number that cannot be dialled is
refused with a sentence saying why, never sent half-formed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat

from agent_desktop.phones import PhoneNormalizer, digits_of
from agent_desktop.settings import Settings

# What a user part may hold after the plan: digits, +, *, # (extensions, feature codes).
_DIALABLE = re.compile(r"^\+?[0-9*#]+$")
# Separators people type inside numbers.
_SEPARATORS = re.compile(r"[\s().\-/]+")
# A SIP URI typed or stored as such: passed through after a sanity check.
_SIP_URI = re.compile(r"^sips?:[^@\s]+@[A-Za-z0-9.\-\[\]:]+(;[^\s]*)?$")
_DOMAIN = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:]+\](:\d{1,5})?$")
# Short numbers (extensions, service codes) are dialled as typed, not parsed as E.164.
MAX_EXTENSION_DIGITS = 6


class DialPlanError(ValueError):
    """The number cannot be dialled; `str()` is a sentence for the agent."""


@dataclass(frozen=True)
class DialTarget:
    """Where a call goes: the SIP URI, the user part dialled and the E.164 form if known."""

    uri: str
    user: str
    e164: str | None


class DialPlan:
    def __init__(self, normalizer: PhoneNormalizer, domain: str, *, prefix: str = "",
                 strip_country_code: bool = False) -> None:
        domain = domain.strip()
        if domain and not _DOMAIN.match(domain):
            raise DialPlanError(f"The dial plan domain '{domain}' is not a host name or "
                                "host:port.")
        if prefix and not re.fullmatch(r"[0-9*#]+", prefix):
            raise DialPlanError(f"The dial plan prefix '{prefix}' may hold only digits, * "
                                "and #.")
        self.normalizer = normalizer
        self.domain = domain
        self.prefix = prefix
        self.strip_country_code = strip_country_code

    @classmethod
    def from_settings(cls, settings: Settings, normalizer: PhoneNormalizer,
                      fallback_domain: str = "") -> DialPlan:
        """`dialplan.*` settings; the domain falls back to the registrar, then to
        `fallback_domain` (the simulated line's host:port in the embedded default)."""
        domain = (settings.get("dialplan.domain") or settings.get("sip.registrar")
                  or fallback_domain)
        return cls(normalizer, domain, prefix=settings.get("dialplan.prefix"),
                   strip_country_code=settings.get("dialplan.strip_country_code"))

    def to_target(self, number: str) -> DialTarget:
        """The SIP URI for `number`; raises DialPlanError with the reason when impossible."""
        text = number.strip()
        if not text:
            raise DialPlanError("Enter a number to dial.")
        if text.lower().startswith(("sip:", "sips:")):
            if not _SIP_URI.match(text):
                raise DialPlanError(f"'{text}' is not a valid SIP address (sip:user@host).")
            return DialTarget(text, text.split(":", 1)[1].split("@", 1)[0], None)
        if not self.domain:
            raise DialPlanError("No SIP domain is configured: set a registrar or "
                                "dialplan.domain in settings.")
        compact = _SEPARATORS.sub("", text)
        if compact.startswith("00"):
            compact = "+" + compact[2:]
        if not _DIALABLE.match(compact):
            bad = next((c for c in compact if not (c.isdigit() or c in "+*#")), "")
            raise DialPlanError(f"'{text}' cannot be dialled: '{bad}' is not a digit.")
        digits = digits_of(compact)
        if not digits:
            raise DialPlanError(f"'{text}' has no digits to dial.")
        if not compact.startswith("+") and (len(digits) <= MAX_EXTENSION_DIGITS
                                            or "*" in compact or "#" in compact):
            return DialTarget(self._uri(self.prefix + compact), self.prefix + compact, None)
        norm = self.normalizer.normalize(compact)
        if norm.e164 is None:
            raise DialPlanError(f"'{text}' cannot be dialled: {norm.problem.lower()}.")
        user = self._user_part(norm.e164)
        return DialTarget(self._uri(user), user, norm.e164)

    def to_uri(self, number: str) -> str:
        return self.to_target(number).uri

    def _user_part(self, e164: str) -> str:
        if self.strip_country_code:
            parsed = phonenumbers.parse(e164)
            region = phonenumbers.region_code_for_number(parsed)
            if region == self.normalizer.default_region:
                national = phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
                return self.prefix + digits_of(national)
        if self.prefix:
            # A prefix (outside line) is followed by the international access form.
            return self.prefix + "00" + e164[1:]
        return e164

    def _uri(self, user: str) -> str:
        return f"sip:{user}@{self.domain}"
