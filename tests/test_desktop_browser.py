"""The agent desktop and the wallboard in a real headless Chromium (Debian's package, driven by Playwright),
against the real daemon routing simulator calls through its ACD.

The attended transfer and its Cancel transfer button are driven from the page too.
Screenshots are saved as test artifacts in ``build/test-artifacts/`` (the desktop mid-call, the wallboard).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_twisted

from callcenter.aio import as_deferred
from callcenter.sim import SHIPPED_FEATUREMAP
from crm_core.acd_config import thd_change_agent, thd_change_queue
from crm_core.customers import NewAccount, NewCustomer, thd_add_account, thd_create_customer
from tests.test_acd_sim import ready_lab, until
from tests.test_acd_sim import lab as sim_lab  # noqa: F401

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"
XSS = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/test.sh installs it)")


@pytest.fixture
def lab(sim_lab):  # noqa: F811
    return sim_lab


async def browser_pages(count):
    from playwright.async_api import async_playwright

    pw = await async_playwright().start()
    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    # bypass_csp lets Playwright evaluate its own wait predicates; the pages themselves never need it
    contexts = [await browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
                for _ in range(count)]
    pages = [await c.new_page() for c in contexts]
    dialogs = []
    for page in pages:
        page.on("dialog", lambda d: dialogs.append(d.message))
    return pw, browser, pages, dialogs


async def sign_in(page, root, login, password, path="/"):
    host, port = root.desktop.address
    await page.goto(f"http://{host}:{port}{path}")
    await page.fill("#login-user", login)
    await page.fill("#login-password", password)
    await page.click("#login-submit")
    await page.wait_for_selector("#app:not([hidden])", timeout=10000)


async def ready_from_the_page(page, root, agent, password):
    """``agent`` signs in, logs in to the ACD and goes ready, each by a click on the page.

    A Twisted coroutine (it awaits ``until``): Playwright's asyncio calls are wrapped in ``as_deferred``.
    """
    await as_deferred(sign_in(page, root, agent, password))
    await as_deferred(page.click("#btn-acd-login"))
    await until(lambda: root.acd.distributor.agent(agent).state.value != "logged-out", 10, f"{agent} in the ACD")
    await as_deferred(page.click("#btn-ready"))
    await until(lambda: root.acd.distributor.agent(agent).state.value == "ready", 10, f"{agent} ready")


async def setup(root):
    def prepare(engine):
        thd_change_agent(engine, "6001", password="pw-6001-secret")
        thd_change_agent(engine, "6002", password="pw-6002-secret")
        thd_change_agent(engine, "6003", password="pw-6003-secret", role="supervisor", groups=("floor",))
        for queue in ("support", "slow", "sales"):  # the supervisor's team: the wallboard shows its queues
            thd_change_queue(engine, queue, groups=("floor",))
        customer = thd_create_customer(engine, NewCustomer("Zoë Müller", tier="vip", phones=("5551001",)), "CN")
        thd_add_account(engine, customer, NewAccount("66001001", balance=120.5, arrears=15))
    await root.crm.pool.run(prepare, root.crm.engine)
    await until(lambda: "floor" in root.acd.distributor.setup.queue("support").groups, 10, "the ACD to load the team")


async def browser_test(lab):
    sim, root = await ready_lab(lab)
    await setup(root)
    return sim, root


@pytest_twisted.ensureDeferred
async def test_a_call_pops_on_the_right_agents_page_and_the_wrap_up_lands_in_the_contact_record(lab):
    """6001 signs in and is ready; a known VIP calls: her view pops on 6001's page only (6002, signed in too,
    sees nothing); 6001 wraps up with a disposition and notes: the contact record has them."""
    sim, root = await browser_test(lab)
    sim.agent("6001", ring=0.5, talk=2)
    pw, browser, (mine, other), dialogs = await as_deferred(browser_pages(2))
    try:
        await as_deferred(sign_in(other, root, "6002", "pw-6002-secret"))
        await ready_from_the_page(mine, root, "6001", "pw-6001-secret")
        call = sim.call("5551001", "Zoë", dnis="4060")
        await as_deferred(mine.wait_for_selector("#pop:not([hidden])", timeout=15000))
        assert await as_deferred(mine.text_content("#pop-name")) == "Zoë Müller"
        await as_deferred(mine.wait_for_function(
            "document.querySelector('#pop-state').textContent.includes('connected')", timeout=15000))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await as_deferred(mine.screenshot(path=str(ARTIFACTS / "desktop-mid-call.png"), full_page=True))
        assert not await as_deferred(other.is_visible("#pop"))
        await as_deferred(mine.wait_for_selector("#wrapup:not([hidden])", timeout=20000))
        await as_deferred(mine.select_option("#wrapup-disposition", "resolved"))
        await as_deferred(mine.fill("#wrapup-notes", "Explained the bill; 已解决"))
        await as_deferred(mine.click("#wrapup-done"))
        await until(lambda: root.acd.distributor.agent("6001").state.value == "ready", 10, "6001 ready again")
        await root.crm.writer.wait_flushed()
        record = await root.crm.store.contact(call.linkedid)
        assert (record.disposition, record.notes, record.agent) == ("resolved", "Explained the bill; 已解决", "6001")
        assert not await as_deferred(other.is_visible("#pop"))
        assert dialogs == []
    finally:
        await as_deferred(browser.close())
        await as_deferred(pw.stop())


@pytest_twisted.ensureDeferred
async def test_a_hostile_caller_name_is_shown_as_text(lab):
    """An unknown caller named <img src=x onerror=alert(1)>: the new-customer form shows the name literally,
    no image element is created and no script runs."""
    sim, root = await browser_test(lab)
    sim.agent("6001", ring=5, talk=2)
    pw, browser, (page,), dialogs = await as_deferred(browser_pages(1))
    try:
        await ready_from_the_page(page, root, "6001", "pw-6001-secret")
        sim.call("5559876", XSS, dnis="4060")
        await as_deferred(page.wait_for_selector("#pop:not([hidden])", timeout=15000))
        assert await as_deferred(page.input_value("#new-customer-name")) == XSS
        assert await as_deferred(page.input_value("#new-customer-phone")) == "5559876"
        assert await as_deferred(page.evaluate("document.querySelectorAll('img').length")) == 0
        assert dialogs == []
    finally:
        await as_deferred(browser.close())
        await as_deferred(pw.stop())


@pytest_twisted.ensureDeferred
async def test_an_attended_transfer_started_and_cancelled_from_the_page(lab):
    """6001, on a call, starts an attended transfer to 6002 from the page: the Cancel transfer button shows
    only while they consult; clicking it brings the caller back (the page says resumed, the button hides)."""
    sim, root = await browser_test(lab)
    sim.featuremap.update(SHIPPED_FEATUREMAP)
    sim.agent("6001", ring=0.3, talk=120)
    sim.agent("6002", ring=0.3, talk=120)
    pw, browser, (page,), dialogs = await as_deferred(browser_pages(1))
    try:
        await ready_from_the_page(page, root, "6001", "pw-6001-secret")
        call = sim.call("5551001", "Zoë", dnis="4060")
        await as_deferred(page.wait_for_selector("#pop-state[data-state='connected']", timeout=15000))
        assert await as_deferred(page.is_hidden("#btn-cancel-transfer"))
        await as_deferred(page.fill("#transfer-target", "6002"))
        await as_deferred(page.select_option("#transfer-kind", "attended"))
        await as_deferred(page.click("#btn-transfer"))
        await as_deferred(page.wait_for_selector("#btn-cancel-transfer:not([hidden])", timeout=15000))
        assert await as_deferred(page.get_attribute("#pop-state", "data-state")) == "consulting"
        assert await as_deferred(page.is_disabled("#btn-transfer"))
        await as_deferred(page.click("#btn-cancel-transfer"))
        await as_deferred(page.wait_for_selector("#pop-state[data-state='resumed']", timeout=15000))
        assert await as_deferred(page.is_hidden("#btn-cancel-transfer"))
        assert await as_deferred(page.is_enabled("#btn-hold"))
        assert not [m for _, m in sim.events if m.name == "AttendedTransfer"]
        assert root.acd.distributor.agent("6001").state.value == "on-call" and not call.hungup
        assert dialogs == []
    finally:
        await as_deferred(browser.close())
        await as_deferred(pw.stop())


@pytest_twisted.ensureDeferred
async def test_the_wallboard_updates_when_calls_queue_and_are_answered(lab):
    """A supervisor's wallboard: the support tile shows a waiting call, then the answered one."""
    sim, root = await browser_test(lab)
    sim.agent("6001", ring=0.5, talk=3)
    pw, browser, (board,), dialogs = await as_deferred(browser_pages(1))
    try:
        await as_deferred(sign_in(board, root, "6003", "pw-6003-secret", path="/wallboard.html"))
        await as_deferred(board.wait_for_selector(".tile[data-queue='support']", timeout=10000))
        sim.call("5551001", "Zoë", dnis="4060")          # nobody ready: the caller waits
        await as_deferred(board.wait_for_function(
            "document.querySelector(\".tile[data-queue='support'] dd.waiting\").textContent.trim() === '1'",
            timeout=15000))
        from acd import inputs as inp

        await as_deferred(root.acd.command(inp.Login("6001", ready=True)))
        await as_deferred(board.wait_for_function(
            "document.querySelector(\".tile[data-queue='support'] dd.waiting\").textContent.trim() === '0' && "
            "document.querySelector(\".tile[data-queue='support'] dd.asa\").textContent.trim() !== '—'",
            timeout=20000))
        await as_deferred(board.wait_for_selector("#agents [data-agent='6001']", timeout=10000))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await as_deferred(board.screenshot(path=str(ARTIFACTS / "wallboard.png"), full_page=True))
        assert dialogs == []
    finally:
        await as_deferred(browser.close())
        await as_deferred(pw.stop())
