"""callcenter db set-secret / db unlock / db seed --customer-secret: phone self-service secrets from the command line."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from crm_core.cli import db
from crm_core.customers import (
    LOCKED, NO_SECRET, VERIFIED, WRONG, NewCustomer, thd_create_customer, thd_verify_secret, thd_verify_status,
)
from crm_core.models import customers
from tests.crm_servers import crm_engine, crm_templates, crm_url  # noqa: F401 (fixtures)


def test_set_secret_asks_twice_without_echo_and_stores_only_a_hash(crm_url, crm_engine):
    """The PIN is prompted for (hidden, confirmed), never printed, stored hashed; --clear removes it."""
    cid = thd_create_customer(crm_engine, NewCustomer("王芳"), "CN")
    result = CliRunner().invoke(db, ["set-secret", "--url", crm_url, str(cid)], input="135790\n135790\n")
    assert result.exit_code == 0, result.output
    assert f"customer {cid}: self-service secret set" in result.output and "135790" not in result.output
    assert thd_verify_secret(crm_engine, cid, "135790") == VERIFIED
    with crm_engine.connect() as conn:
        assert conn.execute(select(customers.c.verify_hash).where(customers.c.id == cid)).scalar() \
            .startswith("scrypt$")
    bad = CliRunner().invoke(db, ["set-secret", "--url", crm_url, str(cid), "--secret", "12ab"])
    assert bad.exit_code == 2 and "expected 4 to 12 digits" in bad.output
    missing = CliRunner().invoke(db, ["set-secret", "--url", crm_url, "999999", "--secret", "1234"])
    assert missing.exit_code == 1 and "no customer 999999" in missing.output
    cleared = CliRunner().invoke(db, ["set-secret", "--url", crm_url, str(cid), "--clear"])
    assert cleared.exit_code == 0 and "removed" in cleared.output
    assert thd_verify_secret(crm_engine, cid, "135790") == NO_SECRET


def test_unlock_lifts_a_self_service_lock(crm_url, crm_engine):
    cid = thd_create_customer(crm_engine, NewCustomer("Jane Doe", secret="2468"), "CN")
    answers = [thd_verify_secret(crm_engine, cid, "0000") for _ in range(5)]
    assert answers == [WRONG] * 4 + [LOCKED]
    result = CliRunner().invoke(db, ["unlock", "--url", crm_url, str(cid)])
    assert result.exit_code == 0 and f"customer {cid}: self-service unlocked" in result.output
    assert thd_verify_status(crm_engine, cid).failures == 0
    assert thd_verify_secret(crm_engine, cid, "2468") == VERIFIED


def test_seed_can_give_every_added_customer_a_demo_secret(crm_url, crm_engine):
    result = CliRunner().invoke(db, ["seed", "--url", crm_url, "--customers", "120", "--contacts", "100",
                                     "--customer-secret", "1234", "--as-of", "2026-01-01"])
    assert result.exit_code == 0, result.output
    with crm_engine.connect() as conn:
        ids = conn.execute(select(customers.c.id).order_by(customers.c.id)).scalars().all()
    assert len(ids) == 120
    assert all(thd_verify_status(crm_engine, cid).has_secret for cid in ids)
    assert thd_verify_secret(crm_engine, ids[0], "1234") == VERIFIED
    assert thd_verify_secret(crm_engine, ids[-1], "4321") == WRONG
    bad = CliRunner().invoke(db, ["seed", "--url", crm_url, "--customers", "1", "--customer-secret", "12"])
    assert bad.exit_code == 2 and "expected 4 to 12 digits" in bad.output
