"""Schemathesis hooks for tests/e2e/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

``filter_body``: the two body rules of these APIs that JSON Schema cannot say, and that the operations'
descriptions state instead; generated bodies that break them are dropped, so "schema-valid but rejected" means a
real disagreement between a document and its app. ``refused_orders_store_nothing``: a check that a refused
POST /orders left no order behind (``before_call`` notes whether its order_id existed before the call).
"""

from __future__ import annotations

import re

import httpx
import schemathesis


@schemathesis.hook
def filter_body(ctx, body) -> bool:
    if not isinstance(body, dict):
        return True
    items = body.get("items")
    if isinstance(items, list):  # POST /orders: each sku once
        skus = [i.get("sku") for i in items if isinstance(i, dict)]
        if len(skus) != len(set(skus)):
            return False
    # PUT /faults/{activity}: a delay only with mode "delay"
    return not ("mode" in body and body.get("delay_ms") is not None and body["mode"] != "delay")


_EXISTED: dict[int, bool] = {}  # id(case) -> whether its order_id was an order before the call


def _order_url(case) -> str | None:
    if case.method.upper() != "POST" or case.path != "/orders" or not isinstance(case.body, dict):
        return None
    order_id = case.body.get("order_id")
    # Only IDs an order can have: a refused body with another one cannot have stored it under that ID.
    if not isinstance(order_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", order_id):
        return None
    return f"{case.operation.base_url}/orders/{order_id}"


@schemathesis.hook
def before_call(ctx, case, **kwargs) -> None:
    url = _order_url(case)
    if url is not None:
        _EXISTED[id(case)] = httpx.get(url, timeout=30).status_code == 200


@schemathesis.check
def refused_orders_store_nothing(ctx, response, case) -> None:
    """A POST /orders refused with a 4xx leaves no order behind that was not there before the call."""
    url = _order_url(case)
    if url is None or not 400 <= response.status_code < 500 or _EXISTED.pop(id(case), True):
        return
    stored = httpx.get(url, timeout=30)
    if stored.status_code != 404:
        raise AssertionError(f"a refused order ({response.status_code}) was stored: {stored.text[:200]}")
