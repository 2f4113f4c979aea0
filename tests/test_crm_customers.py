"""Customers: the unified view in one call, search, history, and bad input refused or kept exactly."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crm_core.acd_config import NewAgent, thd_save_agent
from crm_core.contacts import thd_log_contacts
from crm_core.customers import (
    LOCKED,
    MAX_FAILURES,
    NO_SECRET,
    VERIFIED,
    WRONG,
    NewAccount,
    NewAddress,
    NewAgreement,
    NewCustomer,
    VerifyStatus,
    name_keys,
    rfm_value,
    thd_add_account,
    thd_add_phone,
    thd_create_customer,
    thd_set_verify_secret,
    thd_unlock_verify,
    thd_update_customer,
    thd_verify_secret,
    thd_verify_status,
)
from crm_core.errors import InvalidInput, NotFound
from crm_core.lookup import thd_lookup_by_ani, thd_search_customers
from crm_core.models import customers
from crm_core.records import ContactRecord
from crm_core.tickets import NewTicket, thd_change_ticket, thd_open_ticket
from crm_core.views import thd_customer_history, thd_customer_view
from tests.crm_servers import crm_engine, crm_engines, crm_templates, crm_url  # noqa: F401 (fixtures)

T0 = datetime(2026, 4, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def zhang(crm_engine):
    thd_save_agent(crm_engine, NewAgent("1001", "李娜"))
    cid = thd_create_customer(crm_engine, NewCustomer(
        "张伟", tier="vip", phones=("138 0013 8000", "0755-8888-1234"), emails=("zhang.wei@qq.com",),
        addresses=(NewAddress("南山区科技园路88号", city="深圳市", region="广东省", postcode="518057"),),
        notes="VIP客户，优先处理", rfm=(5, 4, 5), satisfaction=4.6, preferred_agent="1001"), "CN")
    thd_add_account(crm_engine, cid, NewAccount(
        "AC-001", balance=Decimal("-35.20"), arrears=Decimal("199.00"), arrears_since=date(2026, 2, 1),
        agreements=(NewAgreement("AG-001", "5G畅享套餐 199元", date(2025, 1, 1), date(2027, 1, 1),
                                 Decimal("199.00")),)))
    thd_add_account(crm_engine, cid, NewAccount("AC-002", balance=Decimal("100.00")))
    return cid


def test_the_unified_view_has_everything_in_one_call(crm_engine, zhang):
    """Profile, tier, value, balance and arrears, agreements, last 10 contacts, open tickets."""
    calls = [ContactRecord(f"v.{i}", T0 + timedelta(days=i), customer_id=zhang, queue="billing", revision=1)
             for i in range(12)]
    thd_log_contacts(crm_engine, calls, "CN")
    open_ = thd_open_ticket(crm_engine, NewTicket("complaint", "网络信号差", "1001", customer_id=zhang))
    done = thd_open_ticket(crm_engine, NewTicket("consultation", "套餐咨询", "1001", customer_id=zhang))
    thd_change_ticket(crm_engine, done.id, "1001", status="resolved")
    view = thd_customer_view(crm_engine, zhang)
    p = view.profile
    assert (p.name, p.tier, p.rfm, p.value_score, p.satisfaction, p.preferred_agent, p.notes) == (
        "张伟", "vip", (5, 4, 5), rfm_value(5, 4, 5), 4.6, "1001", "VIP客户，优先处理")
    assert [(ph.e164, ph.is_primary) for ph in p.phones] == [("+8613800138000", True), ("+8675588881234", False)]
    assert [e.address for e in p.emails] == ["zhang.wei@qq.com"]
    assert p.addresses[0].city == "深圳市"
    assert (view.balance, view.arrears, view.arrears_since) == (Decimal("64.80"), Decimal("199.00"), date(2026, 2, 1))
    assert view.accounts[0].agreements[0].service_plan == "5G畅享套餐 199元"
    assert [c.linkedid for c in view.recent_contacts] == [f"v.{i}" for i in range(11, 1, -1)]
    assert [t.id for t in view.open_tickets] == [open_.id]


def test_view_of_an_unknown_customer_is_none(crm_engine):
    assert thd_customer_view(crm_engine, 424242) is None


def test_history_pages_through_every_contact_and_lists_tickets(crm_engine, zhang):
    thd_log_contacts(crm_engine, [ContactRecord(f"h.{i}", T0 + timedelta(hours=i), customer_id=zhang, revision=1)
                                  for i in range(25)], "CN")
    thd_open_ticket(crm_engine, NewTicket("fault", "宽带无法上网", "1001", customer_id=zhang))
    seen, before = [], None
    while True:
        page = thd_customer_history(crm_engine, zhang, before=before, limit=10)
        seen += [c.linkedid for c in page.contacts]
        if before is None:
            assert [t.subject for t in page.tickets] == ["宽带无法上网"]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == [f"h.{i}" for i in range(24, -1, -1)]


@pytest.mark.parametrize(("query", "expected"), [
    ("张伟", ["张伟"]), ("张", ["张伟"]), ("smith", ["John Smith"]), ("JOHN", ["John Smith"]),
    ("ｊｏｈｎ", ["John Smith"]),  # full-width letters, NFKC
    ("o'brien", ["Seán O'Brien"]), ("sean", []), ("seán", ["Seán O'Brien"]),
    ("138 0013 8000", ["张伟"]), ("+8613800138000", ["张伟"]), ("zhang.wei@QQ.com", ["张伟"]),
    ("%", []), ("_", []), ("'; DROP TABLE customers; --", []), ("", []),
])
def test_search_by_name_phone_and_email(crm_engine, zhang, query, expected):
    """Name prefix (whole name or a word), phone in any format, email; wildcards are just text."""
    thd_create_customer(crm_engine, NewCustomer("John Smith", language="en", phones=("+1 415 555 2671",)), "CN")
    thd_create_customer(crm_engine, NewCustomer("Seán O'Brien", language="en"), "CN")
    assert [c.name for c in thd_search_customers(crm_engine, query, "CN")] == expected


def test_search_by_ticket_id(crm_engine, zhang):
    ticket = thd_open_ticket(crm_engine, NewTicket("fault", "no signal", "1001", customer_id=zhang))
    for query in (f"#{ticket.id}", f"T-{ticket.id}", f"ticket {ticket.id}"):
        assert [c.id for c in thd_search_customers(crm_engine, query, "CN")] == [zhang]
    assert thd_search_customers(crm_engine, "#999999", "CN") == ()


def test_renaming_updates_search_keys(crm_engine, zhang):
    thd_update_customer(crm_engine, zhang, name="张伟明", tier="key_account", blacklisted=True)
    assert [c.name for c in thd_search_customers(crm_engine, "张伟明", "CN")] == ["张伟明"]
    brief = thd_lookup_by_ani(crm_engine, "13800138000", "CN")[0]
    assert (brief.tier, brief.blacklisted) == ("key_account", True)


def test_adding_a_phone_that_is_not_valid_keeps_it_raw_and_says_so(crm_engine, zhang):
    number = thd_add_phone(crm_engine, zhang, "95588", "CN")
    assert (number.valid, number.e164, number.raw) == (False, None, "95588")
    assert [p.raw for p in thd_customer_view(crm_engine, zhang).profile.phones if not p.valid] == ["95588"]
    with pytest.raises(NotFound):
        thd_add_phone(crm_engine, 999999, "13800138000", "CN")


REFUSED = [
    (dict(name=""), "name: must not be empty"),
    (dict(name="x" * 201), "name: 201 characters, at most 200"),
    (dict(name="张\x00伟"), "name: NUL (U+0000) at position 1"),
    (dict(name="bell\x07"), "name: control character U+0007 (bell) at position 4"),
    (dict(name="two\nlines"), "name: control character U+000A (line feed)"),
    (dict(name="\udc80"), "name: lone surrogate U+DC80"),
    (dict(name="x", tier="gold"), "tier: expected one of vip, key_account, normal, low, got 'gold'"),
    (dict(name="x", phones=("not a number",)), "phones[0]: 'not a number' is not a phone number"),
    (dict(name="x", phones=("<unknown>",)), "phones[0]: '<unknown>' is not a phone number"),
    (dict(name="x", phones=("1" * 65,)), "phones[0]: 65 characters, at most 64"),
    (dict(name="x", emails=("no-at-sign",)), "emails[0]: 'no-at-sign' is not an email address"),
    (dict(name="x", language="Chinese"), "language: expected a language tag"),
    (dict(name="x", rfm=(0, 3, 3)), "rfm recency: expected 1 to 5, got 0"),
    (dict(name="x", satisfaction=7), "satisfaction: expected 1 to 5, got 7"),
    (dict(name="x", preferred_agent="nobody"), "preferred_agent: no agent with login 'nobody'"),
    (dict(name="x", addresses=(NewAddress("x", country="China"),)), "addresses[0].country: expected a two-letter"),
]


@pytest.mark.parametrize(("fields", "message"), REFUSED)
def test_bad_customers_are_refused_with_the_field_named(crm_engine, fields, message):
    with pytest.raises(InvalidInput) as info:
        thd_create_customer(crm_engine, NewCustomer(**fields), "CN")
    assert str(info.value).startswith(message)
    assert thd_search_customers(crm_engine, "x", "CN") == ()


KEPT = ["O'Brien; DROP TABLE customers;--", "100% _x_", "\u202eevil\u202c", "\u200fمحمد\u200e", "😀 王", "x" * 200,
        "Ｆｕｌｌ　Ｗｉｄｔｈ", "Zoë  double  space "]


@pytest.mark.parametrize("name", KEPT)
def test_odd_but_storable_names_are_kept_exactly(crm_engine, name):
    cid = thd_create_customer(crm_engine, NewCustomer(name, notes=f"{name}\nline two\ttab"), "CN")
    profile = thd_customer_view(crm_engine, cid).profile
    assert (profile.name, profile.notes) == (name, f"{name}\nline two\ttab")


def test_money_is_exact_or_refused(crm_engine, zhang):
    with pytest.raises(InvalidInput, match="balance: expected an amount with at most two decimals"):
        thd_add_account(crm_engine, zhang, NewAccount("AC-9", balance=Decimal("0.001")))
    with pytest.raises(InvalidInput, match="arrears: must not be negative"):
        thd_add_account(crm_engine, zhang, NewAccount("AC-9", arrears=Decimal("-1")))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_any_name_is_stored_exactly_or_refused(crm_engines, backend):
    """Arbitrary Unicode names: the database gives back the same text, or InvalidInput said why."""
    engine = crm_engines(backend)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(name=st.text(min_size=1, max_size=210))
    def roundtrip(name):
        try:
            cid = thd_create_customer(engine, NewCustomer(name), "CN")
        except InvalidInput:
            return
        assert thd_customer_view(engine, cid).profile.name == name

    roundtrip()


def test_name_keys_cover_the_whole_name_and_its_words():
    assert name_keys("John  Smith") == {"john smith", "john", "smith"}
    assert name_keys("张伟") == {"张伟"}
    assert name_keys("ＡＢＣ") == {"abc"}


# -- phone self-service verification -----------------------------------------------------------------


def test_the_secret_is_stored_as_a_salted_hash_and_checked_without_being_handed_out(crm_engine):
    """A customer's PIN is kept as scrypt$... only; the check answers verified or wrong, never the secret."""
    cid = thd_create_customer(crm_engine, NewCustomer("王芳", phones=("13900139000",), secret="1234"), "CN")
    other = thd_create_customer(crm_engine, NewCustomer("李娜"), "CN")
    thd_set_verify_secret(crm_engine, other, "1234")
    with crm_engine.connect() as conn:
        hashes = conn.execute(select(customers.c.verify_hash).order_by(customers.c.id)).scalars().all()
    assert all(h.startswith("scrypt$") and "1234" not in h for h in hashes) and hashes[0] != hashes[1]
    assert thd_verify_secret(crm_engine, cid, "1234") == VERIFIED
    assert thd_verify_secret(crm_engine, cid, "4321") == WRONG
    assert thd_verify_secret(crm_engine, other, "1234") == VERIFIED
    assert thd_verify_secret(crm_engine, thd_create_customer(crm_engine, NewCustomer("No PIN"), "CN"),
                             "1234") == NO_SECRET
    with pytest.raises(NotFound):
        thd_verify_secret(crm_engine, 999999, "1234")
    for bad in ("123", "12345678901234", "12a4", "", 1234):
        with pytest.raises(InvalidInput, match="secret: expected 4 to 12 digits"):
            thd_set_verify_secret(crm_engine, cid, bad)
    thd_set_verify_secret(crm_engine, cid, None)
    assert thd_verify_secret(crm_engine, cid, "1234") == NO_SECRET


def test_five_wrong_tries_within_a_day_lock_self_service_for_a_day(crm_engine):
    """Failures count across calls: the fifth within 24 h of the one before answers locked, and while locked even
    the right secret answers locked; after 24 h it works again.  A right secret clears the count; an agent can
    unlock; setting a new secret unlocks too."""
    cid = thd_create_customer(crm_engine, NewCustomer("Jane Doe", secret="2468"), "CN")
    t = T0
    assert [thd_verify_secret(crm_engine, cid, "0000", now=t + timedelta(hours=5 * i)) for i in range(4)] == \
        [WRONG] * 4
    assert thd_verify_status(crm_engine, cid) == VerifyStatus(True, 4, None)
    t += timedelta(hours=15)
    assert thd_verify_secret(crm_engine, cid, "1111", now=t + timedelta(hours=5)) == LOCKED
    assert thd_verify_secret(crm_engine, cid, "2468", now=t + timedelta(hours=6)) == LOCKED
    assert thd_verify_status(crm_engine, cid).locked_until == t + timedelta(hours=29)
    assert thd_verify_secret(crm_engine, cid, "2468", now=t + timedelta(hours=28, minutes=59)) == LOCKED
    assert thd_verify_secret(crm_engine, cid, "0000", now=t + timedelta(hours=29)) == WRONG  # a fresh count
    assert thd_verify_secret(crm_engine, cid, "2468", now=t + timedelta(hours=30)) == VERIFIED
    assert thd_verify_status(crm_engine, cid) == VerifyStatus(True, 0, None)
    later = t + timedelta(days=3)
    for day in range(6):  # one wrong try a day, more than 24 h apart: never locked
        assert thd_verify_secret(crm_engine, cid, "0000", now=later + timedelta(hours=25 * day)) == WRONG
    for _ in range(5):
        thd_verify_secret(crm_engine, cid, "0000", now=later + timedelta(days=9))
    assert thd_verify_secret(crm_engine, cid, "2468", now=later + timedelta(days=9)) == LOCKED
    thd_unlock_verify(crm_engine, cid)
    assert thd_verify_secret(crm_engine, cid, "2468", now=later + timedelta(days=9)) == VERIFIED
    for _ in range(5):
        thd_verify_secret(crm_engine, cid, "0000", now=later + timedelta(days=10))
    thd_set_verify_secret(crm_engine, cid, "97531")
    assert thd_verify_secret(crm_engine, cid, "97531", now=later + timedelta(days=10)) == VERIFIED


def test_guesses_racing_on_many_threads_get_no_more_answers_than_the_limit(crm_engine):
    """Twenty wrong guesses at once (several daemons, one customer): at most four come back wrong, every other
    one locked, and the right secret is locked out too."""
    cid = thd_create_customer(crm_engine, NewCustomer("Target", secret="8642"), "CN")
    start = threading.Barrier(20)
    answers, errors = [], []

    def guess(n):
        start.wait()
        try:
            answers.append(thd_verify_secret(crm_engine, cid, f"{n:04d}", now=T0))
        except Exception as exc:  # noqa: BLE001 (collected for the assertion)
            errors.append(exc)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(answers) == 20
    assert answers.count(WRONG) == MAX_FAILURES - 1 and answers.count(LOCKED) == 20 - (MAX_FAILURES - 1)
    assert thd_verify_secret(crm_engine, cid, "8642", now=T0) == LOCKED
