"""The shipped example flows: their own test cases (NAME.tests.yaml), each one a test here,
and the promises of the issue checked on them directly."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from ivr_flows.cases import run_test_file
from ivr_flows.flowset import load_flowset
from ivr_flows.memory import InMemoryCustomers
from ivr_flows.testing import run_call
from ivr_flows.yamlpos import load

FLOWS = Path(__file__).resolve().parent.parent / "ivr_flows" / "flows"
TEST_FILES = sorted(FLOWS.glob("*.tests.yaml"))
MONDAY_10 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)


def cases() -> list[tuple[Path, int, str]]:
    found = []
    for path in TEST_FILES:
        doc, _ = load(path.read_text(), str(path))
        found += [(path, index, case["name"]) for index, case in enumerate(doc.data["cases"])]
    return found


@pytest.fixture(scope="module")
def flow_set():
    loaded, errors = load_flowset(FLOWS)
    assert errors == []
    return loaded


def test_every_example_flow_keeps_test_cases():
    """hotline, vip, after_hours and the ACD's callback offer each have a tests file."""
    assert [p.name for p in TEST_FILES] == ["acd_callback_offer.tests.yaml", "after_hours.tests.yaml",
                                            "hotline.tests.yaml", "vip.tests.yaml"]


@pytest.mark.parametrize("path, index, name", cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_example_case(flow_set, tmp_path, path, index, name):
    """One kept test case of an example flow passes."""
    doc, _ = load(path.read_text(), str(path))
    data = {"customers": doc.data.get("customers", []), "cases": [doc.data["cases"][index]]}
    single = tmp_path / path.name
    single.write_text(yaml.safe_dump(data, allow_unicode=True))
    passed, errors = run_test_file(single, flow_set, now=MONDAY_10)
    assert errors == [] and passed == 1


def test_billing_reads_balance_and_arrears_from_the_crm(flow_set):
    """Menu 1 speaks what the CRM says about the caller, once the CRM verified the PIN they keyed."""
    crm = InMemoryCustomers([{"id": "C1", "ani": "5551001", "balance": "1234.05", "arrears": "99.90",
                              "secret": "1234"}])
    result = run_call(flow_set, "hotline", ani="5551001", digits=["1", "1", "1234", ""], at=MONDAY_10,
                      customers=crm)
    assert [s for s in result.said if s.startswith("currency")] == ["currency 1234.05", "currency 99.90"]


@pytest.mark.parametrize("digits", [["1", "1", ""], ["1", "1", "9999", "9999", "9999"], ["1", "1", "1234"]])
def test_a_forged_caller_id_hears_no_account_data_on_an_untrusted_route(flow_set, digits):
    """Caller ID alone (no PIN, wrong PINs, or a customer without a PIN on file) never reaches the balance or
    the arrears; the same number on a route that vouches for caller ID does."""
    crm = InMemoryCustomers([{"id": "C1", "ani": "5551001", "balance": "1234.05", "arrears": "99.90",
                              "secret": "2468" if digits[-1] != "1234" else None}])
    result = run_call(flow_set, "4000", ani="5551001", digits=digits, at=MONDAY_10, customers=crm)
    assert not any(s.startswith(("currency", "custom/cc-your-")) for s in result.said)
    assert "say_balance" not in result.path
    trusted = run_call(flow_set, "4000", ani="5551001", digits=["1", "1", ""], at=MONDAY_10, customers=crm,
                       trusted_callerid=True)
    assert "currency 1234.05" in trusted.said


def test_vip_priority_comes_from_the_customer_tier(flow_set):
    """The same VIP line: the tier, not the number dialled, gives the top priority."""
    crm = InMemoryCustomers([{"id": "C1", "ani": "1", "tier": "vip"}, {"id": "C2", "ani": "2", "tier": "gold"}])
    vip = run_call(flow_set, "4001", ani="1", digits=[], at=MONDAY_10, customers=crm)
    gold = run_call(flow_set, "4001", ani="2", digits=["1", "0"], at=MONDAY_10, customers=crm)
    assert vip.handoff.priority == 100 and vip.handoff.queue == "vip"
    assert gold.handoff.priority == 50 and gold.handoff.queue == "support"


def test_after_hours_records_a_callback_request(flow_set):
    """The callback offer stores a request with the caller's number and the customer."""
    crm = InMemoryCustomers([{"id": "C1", "ani": "5551001"}])
    at = datetime(2026, 3, 7, 12, 0, tzinfo=timezone.utc)  # Saturday 20:00 in Shanghai
    result = run_call(flow_set, "4000", ani="5551001", digits=["1"], at=at, customers=crm)
    assert result.route.flow == "after_hours" and result.outcome == "done"
    assert crm.callbacks == [{"id": "CB1", "call_id": "offline-test", "customer_id": "C1", "number": "5551001",
                              "flow": "after_hours", "queue": "support", "key": "offline-test:after_hours:record_own"}]
