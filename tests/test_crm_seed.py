"""Seed data: realistic, consistent with the store's own rules, and usable by every query."""

from __future__ import annotations

from sqlalchemy import func, select

from crm_core.customers import NewCustomer, thd_create_customer
from crm_core.lookup import thd_lookup_by_ani, thd_search_customers
from crm_core.models import contacts, customer_phones, customers, tickets
from crm_core.phones import parse_number
from crm_core.seed import SeedPlan, thd_seed
from crm_core.views import thd_customer_view
from tests.crm_servers import crm_engine, crm_templates, crm_url  # noqa: F401 (fixtures)

AS_OF = 1767225600  # 2026-01-01


def test_seeded_data_obeys_the_stores_own_rules(crm_engine):
    """Every seeded phone and ANI normalises to what was stored; lookups and views find the customers."""
    report = thd_seed(crm_engine, SeedPlan(customers=400, contacts_per_customer=4, seed=3, anchor=AS_OF,
                                           batch=150, agents=12))
    assert report.customers == 400 and report.contacts > 800
    with crm_engine.connect() as conn:
        phones = conn.execute(select(customer_phones.c.raw, customer_phones.c.e164, customer_phones.c.lookup_key,
                                     customer_phones.c.customer_id)).all()
        anis = conn.execute(select(contacts.c.ani, contacts.c.ani_e164)).all()
        tiers = dict(conn.execute(select(customers.c.tier, func.count()).group_by(customers.c.tier)).all())
        open_tickets = conn.execute(select(func.count()).select_from(tickets)).scalar()
        latest = conn.execute(select(func.max(contacts.c.started_at))).scalar()
    for raw, e164, key, _ in phones:
        assert (parse_number(raw, "CN").e164, parse_number(raw, "CN").key) == (e164, key), raw
    for ani, e164 in anis:
        assert parse_number(ani, "CN").e164 == e164, ani
    assert set(tiers) >= {"vip", "normal"} and open_tickets > 0
    assert latest.timestamp() <= AS_OF
    for raw, e164, _, owner in phones[:50]:
        assert owner in [c.id for c in thd_lookup_by_ani(crm_engine, e164, "CN", limit=50)]
        assert owner in [c.id for c in thd_lookup_by_ani(crm_engine, raw, "CN", limit=50)]
    view = thd_customer_view(crm_engine, phones[0][3])
    assert view.profile.phones and view.accounts


def test_seeding_again_appends_and_keeps_ids_usable(crm_engine):
    """A second seed run adds to the first; later inserts get fresh ids (sequences follow)."""
    thd_seed(crm_engine, SeedPlan(customers=100, seed=1, anchor=AS_OF, agents=5))
    thd_seed(crm_engine, SeedPlan(customers=50, seed=2, anchor=AS_OF, agents=5))
    with crm_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(customers)).scalar() == 150
    new_id = thd_create_customer(crm_engine, NewCustomer("新客户", phones=("13700137000",)), "CN")
    assert new_id == 151
    assert [c.name for c in thd_search_customers(crm_engine, "新客户", "CN")] == ["新客户"]
