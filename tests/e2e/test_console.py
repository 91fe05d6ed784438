"""The saga console and the docs pages, against the running system. The browser tests drive a real headless
Chromium (Debian's ``chromium`` and ``chromedriver``, through Selenium), recording every request the page makes and
every message of its console; without Chromium they are skipped and the summary says so. The console does not
depend on the engine, so it runs in the sidecar lane."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from common.contracts import APP_IDS
from tests.support.orders import new_id, terminated_at_ship

# Debian's packages (apt-get install chromium chromium-driver); CHROMIUM / CHROMEDRIVER name others.
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT = 60.0


@pytest.fixture
def sidecar_lane(system):
    if system.engine != "sidecar":
        pytest.skip("the console and the docs pages do not depend on the engine: tested in the sidecar lane")
    return system


class Browser:
    """One headless Chromium page; ``requests()`` and ``errors()`` say what it fetched and complained about."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        options = Options()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",  # root in CI containers
            "--disable-dev-shm-usage",
            "--window-size=1500,1000",
            # Chromium's own background traffic (updates, field trials) is not the page's; keep it out.
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self._requests: list[str] = []
        self._messages: list[dict] = []

    def requests(self) -> list[str]:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self._requests.append(message["params"]["request"]["url"])
        return self._requests

    def errors(self) -> list[dict]:
        self._messages += self.driver.get_log("browser")
        return [m for m in self._messages if m["level"] == "SEVERE"]

    def wait_for(self, condition, what: str, timeout: float = WAIT):
        """``condition()`` once it is truthy. The console redraws the order every second, so an element found a
        moment ago may be gone: that counts as "not yet"."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if value := condition():
                    return value
            except (StaleElementReferenceException, NoSuchElementException):
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; page errors: {self.errors()}")

    def read(self, what: Callable[[], Any]) -> Any:
        """``what()``, read again if the page redrew what it read in the meantime."""
        return self.wait_for(lambda: (what(),), "a read of the page")[0]

    def text(self, by: str, value: str) -> str:
        return str(self.read(lambda: self.driver.find_element(by, value).text))

    def click(self, by: str, value: str) -> None:
        self.read(lambda: self.driver.find_element(by, value).click())

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture
def browser(sidecar_lane) -> Iterator[Browser]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        reason = (
            f"console browser test skipped: no {' and no '.join(missing)} on this machine "
            "(apt-get install chromium chromium-driver; .ci/run does)"
        )
        if os.environ.get("REQUIRE_BROWSER") == "1":  # CI: a skip would hide that the console went untested
            pytest.fail(reason.replace("skipped", "required (REQUIRE_BROWSER=1)"))
        pytest.skip(reason)
    page = Browser()
    try:
        yield page
    finally:
        page.quit()


def _external(urls: list[str], system) -> list[str]:
    local = tuple(system.urls.values())
    return [url for url in urls if not url.startswith(local) and not url.startswith("data:")]


@pytest.mark.browser
def test_the_console_loads_with_no_error_and_no_request_off_the_machine_and_runs_a_scenario(sidecar_lane, browser):
    from selenium.webdriver.common.by import By

    base = sidecar_lane.urls["order-api"]
    browser.driver.get(f"{base}/console")
    buttons = browser.wait_for(
        lambda: [b for b in browser.driver.find_elements(By.CSS_SELECTOR, "button[data-scenario]") if b.is_enabled()],
        "the scenario buttons",
    )
    assert [b.get_attribute("data-scenario") for b in buttons] == [
        "happy",
        "declined",
        "out-of-stock",
        "undeliverable",
        "transient",
        "crash",
        "ship-fails",
        "cancel",
        "review",
        "approval-timeout",
        "risk-reject",
    ]
    next(b for b in buttons if b.get_attribute("data-scenario") == "happy").click()

    # The page opens the new order's own link, and the order appears in the list, live.
    order_id = browser.wait_for(
        lambda: (m := re.search(r"/console/orders/(happy-[0-9a-f]{8})$", browser.driver.current_url)) and m[1],
        "the scenario's order to open",
    )
    browser.wait_for(
        lambda: browser.driver.find_elements(By.CSS_SELECTOR, f'#order-rows tr[data-order-id="{order_id}"]'),
        "the order in the list",
    )
    browser.wait_for(
        lambda: (
            "COMPLETED"
            in browser.driver.find_element(By.CSS_SELECTOR, f'#order-rows tr[data-order-id="{order_id}"]').text
        ),
        "the order to show COMPLETED in the list",
    )
    assert httpx.get(f"{base}/orders/{order_id}", timeout=30).json()["status"] == "COMPLETED"

    assert browser.errors() == []
    requests = browser.requests()
    assert f"{base}/console/static/console.js" in requests
    assert _external(requests, sidecar_lane) == []


@pytest.mark.browser
def test_a_declined_cards_timeline_opened_by_its_link_shows_its_compensations(sidecar_lane, browser):
    from selenium.webdriver.common.by import By

    base = sidecar_lane.urls["order-api"]
    started = httpx.post(f"{base}/console/api/scenarios/declined", timeout=60)
    assert started.status_code == 202, started.text
    order_id = started.json()["order_id"]

    browser.driver.get(f"{base}/console/orders/{order_id}")  # the order's own link, opened directly
    browser.wait_for(
        lambda: "COMPENSATED" in browser.driver.find_element(By.ID, "order-body").text, "the order to finish"
    )
    undo_bars = browser.wait_for(
        lambda: browser.driver.find_elements(By.CSS_SELECTOR, "#timeline .bar.undo"), "the undo bars"
    )
    assert sorted({bar.get_attribute("data-name") for bar in undo_bars}) == ["refund", "release_inventory"]
    charge = browser.read(
        lambda: next(
            text
            for e in browser.driver.find_elements(By.CSS_SELECTOR, "#timeline .lane")
            if " charge" in (text := e.text)
        )
    )
    assert "refused" in charge and "card declined" in charge and "on payment" in charge
    stack = browser.text(By.ID, "stack")
    assert stack.index("refund") < stack.index("release_inventory")  # top of the stack first: the order they ran
    told = browser.wait_for(
        lambda: "order_failed" in (text := browser.driver.find_element(By.ID, "told").text) and text,
        "what the customer was told",
    )
    assert "Your payment was declined" in told  # in words for customers, not the technical reason

    assert browser.errors() == []
    assert _external(browser.requests(), sidecar_lane) == []


def open_review(sidecar_lane, browser) -> str:
    """Start the review scenario from the console's API and open its order: it waits for a person."""
    from selenium.webdriver.common.by import By

    base = sidecar_lane.urls["order-api"]
    started = httpx.post(f"{base}/console/api/scenarios/review", timeout=60)
    assert started.status_code == 202, started.text
    order_id = started.json()["order_id"]
    browser.driver.get(f"{base}/console/orders/{order_id}")
    browser.wait_for(lambda: browser.driver.find_elements(By.ID, "approve-button"), "the approve button")
    return order_id


@pytest.mark.browser
def test_an_order_awaiting_approval_shows_the_child_workflow_its_custody_check_the_wait_and_approve_completes_it(
    sidecar_lane, browser
):
    from selenium.webdriver.common.by import By

    order_id = open_review(sidecar_lane, browser)
    approval = browser.text(By.ID, "approval")
    assert "Awaiting approval" in approval and "total 550.00 is above 500.00" in approval and "s left" in approval
    lane = browser.read(
        lambda: {
            e.get_attribute("data-lane"): e.text.lower()
            for e in browser.driver.find_elements(By.CSS_SELECTOR, "#timeline .lane")
        }
    )
    assert (
        "child workflow" in lane["risk_review"]
        and "on payment" in lane["risk_review"]
        and "review" in lane["risk_review"]
    )
    assert "succeeded" in lane["risk_review/check_custody"] and "succeeded" in lane["risk_review/assess_risk"]
    custody = browser.text(By.ID, "custody")
    assert "holds" in custody and "total 550.00 as validate_order priced it on inventory" in custody
    assert "waiting" in lane["approval"] and "until" in lane["approval"]
    assert "AWAITING_APPROVAL" in browser.text(By.CSS_SELECTOR, f'#order-rows tr[data-order-id="{order_id}"]')

    browser.click(By.ID, "approve-button")
    browser.wait_for(
        lambda: "COMPLETED" in browser.driver.find_element(By.ID, "order-body").text, "the order to complete"
    )
    browser.wait_for(
        lambda: "approved" in browser.driver.find_element(By.ID, "approval").text, "the approval shown as approved"
    )
    assert "by console" in browser.text(By.ID, "approval")
    assert browser.driver.find_elements(By.ID, "approve-button") == []
    assert browser.errors() == []
    assert _external(browser.requests(), sidecar_lane) == []


@pytest.mark.browser
def test_the_reject_button_rejects_an_order_awaiting_approval_and_releases_its_reservation(sidecar_lane, browser):
    from selenium.webdriver.common.by import By

    order_id = open_review(sidecar_lane, browser)
    browser.click(By.ID, "reject-button")
    browser.wait_for(lambda: "REJECTED" in browser.driver.find_element(By.ID, "order-body").text, "the order to end")

    order = httpx.get(f"{sidecar_lane.urls['order-api']}/orders/{order_id}", timeout=30).json()
    assert order["failure"] == {"step": "approval", "reason": "rejected by console"}
    assert [(c["name"], c["outcome"]) for c in order["compensations"]] == [("release_inventory", "undone")]
    assert browser.errors() == []


@pytest.mark.browser
def test_a_workflow_failed_order_shows_it_needs_an_operator_and_its_resolve_button_undoes_it(sidecar_lane, browser):
    from selenium.webdriver.common.by import By

    base = sidecar_lane.urls["order-api"]
    order_id = new_id("console-failed")
    terminated_at_ship(sidecar_lane, order_id)

    browser.driver.get(f"{base}/console/orders/{order_id}")
    browser.wait_for(lambda: browser.driver.find_elements(By.ID, "operator"), "the operator box")
    assert "Needs an operator" in browser.text(By.ID, "operator")
    assert "WORKFLOW_FAILED" in browser.text(By.ID, "order-body")
    browser.click(By.ID, "resolve")
    browser.wait_for(
        lambda: "COMPENSATED" in browser.driver.find_element(By.CSS_SELECTOR, "#order-body h2").text,
        "the resolution to end the order",
    )
    resolved = browser.text(By.ID, "operator")
    for undo in ("cancel_shipment", "refund", "release_inventory"):
        assert undo in resolved
    assert browser.errors() == []
    assert _external(browser.requests(), sidecar_lane) == []


@pytest.mark.browser
def test_a_docs_page_renders_offline(sidecar_lane, browser):
    from selenium.webdriver.common.by import By

    browser.driver.get(f"{sidecar_lane.urls['payment']}/schema/swagger")
    browser.wait_for(lambda: browser.driver.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"), "the operations")
    assert browser.errors() == []
    assert _external(browser.requests(), sidecar_lane) == []


@pytest.mark.parametrize("app", APP_IDS)
def test_every_apps_docs_page_references_only_its_own_assets_and_they_answer(sidecar_lane, app: str):
    base = sidecar_lane.urls[app]
    for page in ("/schema", "/schema/swagger"):
        html = httpx.get(base + page, timeout=30)
        assert html.status_code == 200 and "swagger-ui-bundle.js" in html.text
        refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
        assert refs and all(r.startswith("/") or r.startswith("data:") for r in refs), refs
        for ref in (r for r in refs if r.startswith("/")):
            assert httpx.get(urljoin(base, ref), timeout=30).status_code == 200, ref


def test_the_console_page_answers_at_its_links_and_only_with_local_assets(sidecar_lane):
    base = sidecar_lane.urls["order-api"]
    for path in ("/console", "/console/orders/any-order-id"):
        page = httpx.get(base + path, timeout=30)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        refs = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert all(r.startswith("/") or r.startswith("data:") for r in refs), refs
        for ref in (r for r in refs if r.startswith("/console/static/")):
            assert httpx.get(base + ref, timeout=30).status_code == 200, ref


def test_the_console_sets_lists_and_clears_every_apps_faults(sidecar_lane):
    with httpx.Client(base_url=sidecar_lane.urls["order-api"], timeout=60) as console:
        assert {a["app"] for a in console.get("/console/api/faults").json()} == set(APP_IDS)
        armed = console.put("/console/api/faults/shipping/ship", json={"mode": "delay", "delay_ms": 10, "count": 2})
        assert armed.status_code == 200, armed.text
        # What the app itself says, through its own API.
        assert httpx.get(sidecar_lane.urls["shipping"] + "/faults", timeout=30).json()[0]["activity"] == "ship"
        wrong = console.put("/console/api/faults/payment/ship", json={"mode": "error"})
        assert wrong.status_code == 404 and "no activity 'ship'" in wrong.json()["detail"]
        assert console.put("/console/api/faults/nowhere/ship", json={"mode": "error"}).status_code == 404
        cleared = console.delete("/console/api/faults")
        assert cleared.status_code == 200 and all(a["faults"] == [] for a in cleared.json())


def test_scenarios_started_from_the_console_clear_the_faults_they_armed_and_never_take_anothers(sidecar_lane):
    base = sidecar_lane.urls["order-api"]

    def start(name: str) -> httpx.Response:
        return httpx.post(f"{base}/console/api/scenarios/{name}", timeout=60)

    started = {}
    for name in ("cancel", "ship-fails"):  # a delay on payment's charge, an error on shipping's ship
        response = start(name)
        assert response.status_code == 202, response.text
        started[name] = response.json()["order_id"]
    # The cancel scenario's delay is armed on charge until its order ends: another may not replace it.
    taken = start("transient")
    assert taken.status_code == 409 and "already has a delay fault on charge" in taken.json()["detail"]

    expected = {"cancel": "CANCELLED", "ship-fails": "COMPENSATED"}
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        statuses = {n: httpx.get(f"{base}/orders/{o}", timeout=30).json()["status"] for n, o in started.items()}
        faults = httpx.get(f"{base}/console/api/faults", timeout=30).json()
        if statuses == expected and all(a["faults"] == [] for a in faults):
            break
        time.sleep(0.3)
    assert statuses == expected
    assert [a for a in faults if a["faults"]] == []
    unknown = start("no-such")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")


def test_the_banner_is_printed_once_when_everything_is_up(system):
    base = system.urls["order-api"]
    log = None
    deadline = time.monotonic() + WAIT
    while log is None and time.monotonic() < deadline:
        text = system.log_path.read_text(errors="replace")
        if "Ctrl-C stops everything." in text:
            log = text
        time.sleep(0.2)
    assert log is not None, system.log_tail()
    assert log.count("The shop is up.") == 1
    banner = log[log.index("The shop is up.") : log.index("Ctrl-C stops everything.")]
    assert f"{base}/console" in banner
    for app, url in system.urls.items():
        assert re.search(rf"{app}\s+API {re.escape(url)}\s+docs {re.escape(url)}/schema/swagger", banner), banner
    assert "submit --scenario declined --watch" in banner
