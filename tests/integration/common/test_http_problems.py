"""What every app does with bad HTTP input: RFC 9457 problem details, nothing stored; the fault endpoints."""

from __future__ import annotations

import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from common.problems import MAX_BODY_BYTES
from common.settings import Settings
from inventory.app import create_app as inventory_app
from notification.app import create_app as notification_app
from payment.app import create_app as payment_app
from shipping.app import create_app as shipping_app

APPS = {
    "payment": (payment_app, "charge"),
    "inventory": (inventory_app, "reserve_inventory"),
    "shipping": (shipping_app, "ship"),
    "notification": (notification_app, "notify"),
}


@pytest_asyncio.fixture(scope="module")
async def urls(database_factory) -> dict[str, str]:
    return {name: await database_factory(name, f"{name}:migrations") for name in APPS}


def client_for(
    urls: dict[str, str], name: str, faults_enabled: bool = True, allow_remote: bool = True
) -> AsyncTestClient:
    # Litestar's in-process client is not on loopback (its address is "testclient"): open the fault API to it.
    create_app, _ = APPS[name]
    settings = Settings(
        app_id=name, database_url=urls[name], faults_enabled=faults_enabled, faults_allow_remote=allow_remote
    )
    return AsyncTestClient(app=create_app(settings))


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


@pytest.mark.parametrize("name", APPS)
async def test_a_fault_can_be_armed_listed_and_cleared(urls, name):
    activity = APPS[name][1]
    async with client_for(urls, name) as client:
        armed = await client.put(f"/faults/{activity}", json={"mode": "transient", "count": 2, "order_id": "o-1"})
        listed = (await client.get("/faults")).json()
        cleared = await client.delete(f"/faults/{activity}")
        after = (await client.get("/faults")).json()
    assert armed.status_code == 200
    assert (armed.json()["mode"], armed.json()["remaining"], armed.json()["order_id"]) == ("transient", 2, "o-1")
    assert [f["activity"] for f in listed] == [activity]
    assert cleared.status_code == 204 and after == []


@pytest.mark.parametrize("name", APPS)
async def test_fault_endpoints_do_not_exist_when_faults_are_disabled(urls, name):
    async with client_for(urls, name, faults_enabled=False) as client:
        assert_problem(await client.get("/faults"), 404)
        assert_problem(await client.put(f"/faults/{APPS[name][1]}", json={"mode": "error"}), 404)


@pytest.mark.parametrize("name", APPS)
async def test_every_app_serves_healthz_and_its_openapi_schema(urls, name):
    async with client_for(urls, name) as client:
        health = await client.get("/healthz")
        schema = await client.get("/schema/openapi.json")
    assert (health.status_code, health.text) == (200, "ok")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == name


@pytest.mark.parametrize(
    ("body", "status", "detail_part"),
    [
        ({"mode": "error", "colour": "red"}, 400, "colour"),  # unknown field
        ({"mode": "explode"}, 400, "mode"),  # bad mode
        ({"mode": "error", "count": "three"}, 400, "count"),  # wrong type
        ({"mode": "transient", "count": 0}, 400, "count"),  # bad count
        ({"mode": "error", "delay_ms": 50}, 400, "delay_ms"),  # delay without mode delay
        ({}, 400, "mode"),  # missing field
    ],
)
async def test_a_bad_fault_request_is_a_problem_and_stores_nothing(urls, body, status, detail_part):
    async with client_for(urls, "payment") as client:
        problem = assert_problem(await client.put("/faults/charge", json=body), status)
        stored = (await client.get("/faults")).json()
    assert detail_part in str(problem)
    assert stored == []


async def test_a_fault_for_an_activity_of_another_app_is_a_404_problem(urls):
    async with client_for(urls, "payment") as client:
        problem = assert_problem(await client.put("/faults/ship", json={"mode": "error"}), 404)
    assert "ship" in problem["detail"]


async def test_a_body_that_is_not_json_is_a_400_problem(urls):
    async with client_for(urls, "inventory") as client:
        response = await client.put(
            "/faults/validate_order", content=b"{mode: error", headers={"content-type": "application/json"}
        )
        assert_problem(response, 400)
        assert (await client.get("/faults")).json() == []


async def test_an_oversized_body_is_a_413_problem(urls):
    async with client_for(urls, "shipping") as client:
        response = await client.put("/faults/ship", json={"mode": "error", "order_id": "x" * (MAX_BODY_BYTES + 1)})
        assert_problem(response, 413)
        assert (await client.get("/faults")).json() == []


async def test_an_unknown_route_is_a_404_problem(urls):
    async with client_for(urls, "notification") as client:
        assert_problem(await client.get("/nowhere"), 404)


@pytest.mark.parametrize("name", list(APPS))
async def test_fault_endpoints_refuse_a_client_that_is_not_on_this_machine(urls, name):
    async with client_for(urls, name, allow_remote=False) as client:  # its client address is "testclient"
        problem = assert_problem(await client.put(f"/faults/{APPS[name][1]}", json={"mode": "error"}), 403)
        assert "FAULTS_ALLOW_REMOTE=true" in problem["detail"]
        assert_problem(await client.get("/faults"), 403)
    async with client_for(urls, name) as client:
        assert (await client.get("/faults")).json() == []  # nothing was armed by the refused request
