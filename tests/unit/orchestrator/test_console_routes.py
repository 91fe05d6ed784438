"""The console's routes without the system: what a client may do depends on FAULTS_ENABLED and where it is (the
apps' fault APIs behind it are a MockTransport: the transport is httpx's test seam)."""

from __future__ import annotations

from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from devtools.banner import App, apps_of, banner
from orchestrator.console import console_router
from orchestrator.console.demo import Demo, self_url

URLS = {"order-api": "http://127.0.0.1:8000", "payment": "http://127.0.0.1:8001"}


def _fault_apis(request: httpx.Request) -> httpx.Response:
    if request.url.port == 8001 and request.url.path == "/faults":
        return httpx.Response(200, json=[{"activity": "charge", "mode": "error", "remaining": None}])
    return httpx.Response(404, json={"status": 404, "title": "Not Found", "detail": "off"})


def _client(*, faults_enabled: bool, allow_remote: bool = False) -> TestClient[Litestar]:
    demo = Demo(orders=Any, urls=URLS, transport=httpx.MockTransport(_fault_apis))  # type: ignore[arg-type]
    router = console_router(demo, faults_enabled=faults_enabled, allow_remote=allow_remote)
    return TestClient(Litestar(route_handlers=[router]))


def test_without_faults_enabled_the_page_reads_but_scenarios_and_faults_are_not_there():
    with _client(faults_enabled=False) as client:
        assert client.get("/console").status_code == 200
        assert client.get("/console/orders/some-order").text == client.get("/console").text
        config = client.get("/console/api/config").json()
        assert config["controls"] is False and "FAULTS_ENABLED" in config["why_not"]
        assert client.post("/console/api/scenarios/happy").status_code == 404
        assert client.get("/console/api/faults").status_code == 404


def test_a_client_off_the_machine_may_not_run_scenarios_or_touch_faults():
    with _client(faults_enabled=True) as client:  # the test client is not a loopback address
        assert client.get("/console/api/config").json()["controls"] is False
        assert client.post("/console/api/scenarios/happy").status_code == 403
        assert client.put("/console/api/faults/payment/charge", json={"mode": "error"}).status_code == 403
        assert client.delete("/console/api/faults").status_code == 403


def test_with_faults_allow_remote_the_faults_of_every_app_are_listed():
    with _client(faults_enabled=True, allow_remote=True) as client:
        assert client.get("/console/api/config").json()["controls"] is True
        listed = client.get("/console/api/faults").json()
    assert listed == [
        {"app": "order-api", "enabled": False, "faults": [], "error": "fault endpoints are off"},
        {
            "app": "payment",
            "enabled": True,
            "faults": [{"activity": "charge", "mode": "error", "remaining": None}],
            "error": None,
        },
    ]


def test_the_order_api_reaches_itself_on_loopback_when_it_listens_on_every_address():
    assert self_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert self_url("10.0.0.5", 8000) == "http://10.0.0.5:8000"
    assert self_url("::1", 8000) == "http://[::1]:8000"


def test_the_banner_names_the_console_and_each_apps_api_and_docs(tmp_path):
    template = tmp_path / "dapr.yaml"
    template.write_text(
        "version: 1\napps:\n- appID: order-api\n  appPort: 9000\n- appID: payment\n  appPort: 9001\n"
        "  env: {APP_HOST: 0.0.0.0}\n"
    )
    apps = apps_of(template)
    assert apps == [App("order-api", "http://127.0.0.1:9000"), App("payment", "http://127.0.0.1:9001")]
    text = banner(apps, shop=".venv/bin/shop")
    assert "console    http://127.0.0.1:9000/console" in text
    assert "payment    API http://127.0.0.1:9001" in text and "docs http://127.0.0.1:9001/schema/swagger" in text
    assert ".venv/bin/shop submit --scenario declined --watch" in text
