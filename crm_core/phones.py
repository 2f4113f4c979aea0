"""Caller numbers in any format, reduced to E.164 and a lookup key.

Asterisk hands us whatever the trunk sent: national (``13800138000``,
``0755 8888 1234``), international (``+86...``, ``0086...``, ``011 86...``),
country code without the plus (``8613800138000``), carrier-select prefixes
(``17951``, ``12593``), ``tel:``/``sip:`` URIs, or ``<unknown>`` from Local
channels.  ``parse_number`` turns each into a ``PhoneNumber``: E.164 when the
number is valid, and always, when there are digits, a lookup key (the
national significant number) that customer phones are indexed by.  A number
that cannot be parsed keeps its raw text and says so (``valid=False``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException

#: What Asterisk and trunks show for a caller who withheld or has no number.
WITHHELD = frozenset({"", "unknown", "<unknown>", "anonymous", "restricted", "private", "unavailable",
                      "withheld", "<anonymous>", "no caller id"})

#: Carrier-select (IP dialling) prefixes that phonenumbers does not strip before an area code.
CARRIER_PREFIXES = {"CN": ("17951", "17911", "17909", "17908", "12593", "10193", "11808")}

_URI = re.compile(r"^(?:sips?|tel):([^@;]*)", re.IGNORECASE)
_NON_DIGIT = re.compile(r"\D")


@dataclass(frozen=True)
class PhoneNumber:
    raw: str
    #: ``+8613800138000`` when the number is valid, else None.
    e164: str | None
    #: National significant number (``13800138000``); the digits when unparseable; None without digits.
    key: str | None
    valid: bool
    withheld: bool = False


def is_withheld(raw: str) -> bool:
    return raw.strip().lower() in WITHHELD


def _attempts(text: str, region: str) -> list[str]:
    attempts = [text]
    digits = _NON_DIGIT.sub("", text)
    for prefix in CARRIER_PREFIXES.get(region, ()):
        if digits.startswith(prefix) and len(digits) > len(prefix) + 6:
            attempts.append(digits[len(prefix):])
    if not text.lstrip().startswith("+") and not digits.startswith("0") and len(digits) >= 8:
        attempts.append("+" + digits)  # a country code that lost its plus: 447911123456
    return attempts


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def parse_number(raw: str, region: str) -> PhoneNumber:
    """Normalise ``raw`` as dialled in ``region`` (ISO 3166, e.g. ``CN``)."""
    text = raw.strip()
    if text.lower() in WITHHELD:
        return PhoneNumber(raw, None, None, False, withheld=True)
    uri = _URI.match(text)
    if uri:
        text = uri.group(1)
    first = None
    for attempt in _attempts(text, region):
        number = _parse(attempt, region)
        if number is None:
            continue
        first = first or number
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            return PhoneNumber(raw, e164, phonenumbers.national_significant_number(number), True)
    if first is not None:
        return PhoneNumber(raw, None, phonenumbers.national_significant_number(first), False)
    digits = _NON_DIGIT.sub("", text)
    return PhoneNumber(raw, None, digits or None, False)


def kind_of(number: PhoneNumber, region: str) -> str:
    """``mobile``, ``landline`` or ``other`` (for display and seeding)."""
    if not number.valid or number.e164 is None:
        return "other"
    kind = phonenumbers.number_type(phonenumbers.parse(number.e164, region))
    if kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return "mobile"
    if kind == phonenumbers.PhoneNumberType.FIXED_LINE:
        return "landline"
    return "other"
