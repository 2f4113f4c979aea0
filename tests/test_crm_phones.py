"""Caller numbers in every format Asterisk hands us reach the same customer."""

from __future__ import annotations

import pytest

from crm_core.customers import NewCustomer, thd_create_customer
from crm_core.lookup import thd_lookup_by_ani
from crm_core.phones import parse_number
from tests.crm_servers import crm_engine, crm_templates, crm_url  # noqa: F401 (fixtures)

MOBILE = "+8613800138000"
SHENZHEN = "+8675588881234"
BEIJING = "+861065123456"
SAN_FRANCISCO = "+14155552671"
LONDON = "+442079460958"

#: (as presented, default region, E.164 expected or None)
FORMATS = [
    ("13800138000", "CN", MOBILE),                     # national mobile
    ("138 0013 8000", "CN", MOBILE),                   # with spaces
    ("138-0013-8000", "CN", MOBILE),                   # with dashes
    ("  13800138000 ", "CN", MOBILE),                  # padded
    ("+8613800138000", "CN", MOBILE),                  # E.164
    ("+86 138 0013 8000", "CN", MOBILE),               # international, spaced
    ("008613800138000", "CN", MOBILE),                 # 00 international prefix
    ("8613800138000", "CN", MOBILE),                   # country code without +
    ("013800138000", "CN", MOBILE),                    # trunk 0 before a mobile
    ("+86 (0) 138 0013 8000", "CN", MOBILE),           # (0) trunk in an international number
    ("17951 13800138000", "CN", MOBILE),               # carrier-select (IP dialling) prefix
    ("12593 13800138000", "CN", MOBILE),
    ("tel:+86-138-0013-8000", "CN", MOBILE),           # tel: URI
    ("sip:+8613800138000@10.0.0.1", "CN", MOBILE),     # SIP URI user part
    ("011 86 138 0013 8000", "US", MOBILE),            # US international prefix
    ("075588881234", "CN", SHENZHEN),                  # landline with trunk 0 and area code
    ("0755-8888 1234", "CN", SHENZHEN),
    ("(0755) 8888-1234", "CN", SHENZHEN),
    ("+86 755 8888 1234", "CN", SHENZHEN),
    ("0086 755 88881234", "CN", SHENZHEN),
    ("86075588881234", "CN", SHENZHEN),                # country code, then trunk 0
    ("17911 0755 88881234", "CN", SHENZHEN),           # carrier prefix before the area code
    ("010 6512 3456", "CN", BEIJING),
    ("+1 415 555 2671", "CN", SAN_FRANCISCO),
    ("0014155552671", "CN", SAN_FRANCISCO),
    ("14155552671", "CN", SAN_FRANCISCO),              # North American number without +
    ("(415) 555-2671", "US", SAN_FRANCISCO),
    ("+44 20 7946 0958", "CN", LONDON),
    ("00442079460958", "CN", LONDON),
    ("442079460958", "CN", LONDON),
]

#: Numbers that are not a valid caller number: (as presented, withheld?, lookup key)
ODD = [
    ("<unknown>", True, None),        # Local channels
    ("unknown", True, None),
    ("Anonymous", True, None),
    ("", True, None),
    ("   ", True, None),
    ("1001", False, "1001"),           # an internal extension
    ("95588", False, "95588"),         # a short service number
    ("abc", False, None),              # no digits at all
    ("+86138", False, "138"),          # too short
]


@pytest.mark.parametrize(("raw", "region", "e164"), FORMATS)
def test_every_format_normalises_to_e164(raw, region, e164):
    """Each presented format gives the same E.164 number and a valid flag."""
    number = parse_number(raw, region)
    assert (number.e164, number.valid, number.raw) == (e164, True, raw)


@pytest.mark.parametrize(("raw", "withheld", "key"), ODD)
def test_odd_numbers_keep_their_raw_text_and_say_so(raw, withheld, key):
    """Unparseable or withheld numbers are not invented: no E.164, valid=False, raw kept."""
    number = parse_number(raw, "CN")
    assert (number.e164, number.valid, number.withheld, number.key, number.raw) == (None, False, withheld, key, raw)


@pytest.fixture
def known_customers(crm_engine):
    ids = {}
    for name, phones in [("张伟", ("138 0013 8000", "0755-8888-1234")), ("王芳", ("010-6512-3456",)),
                         ("John Smith", ("+1 415 555 2671",)), ("Emma Brown", ("+44 20 7946 0958",)),
                         ("Bank Hotline", ("95588",))]:
        ids[name] = thd_create_customer(crm_engine, NewCustomer(name, phones=phones), "CN")
    return ids


OWNER = {MOBILE: "张伟", SHENZHEN: "张伟", BEIJING: "王芳", SAN_FRANCISCO: "John Smith", LONDON: "Emma Brown"}


@pytest.mark.parametrize(("raw", "region", "e164"), FORMATS)
def test_any_format_reaches_the_customer(crm_engine, known_customers, raw, region, e164):
    """The ANI lookup finds the customer whatever the format, matched on E.164."""
    found = thd_lookup_by_ani(crm_engine, raw, region)
    assert [(c.id, c.matched_number) for c in found] == [(known_customers[OWNER[e164]], e164)]


def test_withheld_and_unknown_callers_match_nobody(crm_engine, known_customers):
    """<unknown> and friends return no customer rather than a wrong one."""
    for raw in ("<unknown>", "unknown", "anonymous", "", "abc"):
        assert thd_lookup_by_ani(crm_engine, raw, "CN") == ()


def test_a_number_that_is_not_valid_is_found_by_its_digits(crm_engine, known_customers):
    """A stored short number (kept raw) is found when the same digits call."""
    found = thd_lookup_by_ani(crm_engine, "95588", "CN")
    assert [(c.name, c.matched_number) for c in found] == [("Bank Hotline", "95588")]


def test_same_digits_in_another_country_are_not_a_match(crm_engine, known_customers):
    """A German +49 4155 552671 is not the US +1 415 555 2671: same digits, another number."""
    assert parse_number("+49 4155 552671", "CN").key == parse_number("+1 415 555 2671", "CN").key
    assert thd_lookup_by_ani(crm_engine, "+49 4155 552671", "CN") == ()
    assert thd_lookup_by_ani(crm_engine, "+43 13800138000", "CN") == ()


def test_shared_number_returns_every_owner_vip_first(crm_engine):
    """A family landline shared by two customers returns both, the VIP first."""
    normal = thd_create_customer(crm_engine, NewCustomer("李强", phones=("0755 2222 3333",)), "CN")
    vip = thd_create_customer(crm_engine, NewCustomer("李娜", tier="vip", phones=("+86 755 2222 3333",)), "CN")
    assert [c.id for c in thd_lookup_by_ani(crm_engine, "075522223333", "CN")] == [vip, normal]
