"""Orders as the end-to-end tests send them: a valid body (``order_body``) and an order ID of a test's own
(``new_id``)."""

from __future__ import annotations

import uuid
from typing import Any


def order_body(order_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    body = {
        "customer_id": "cust-1",
        "email": "ada@example.com",
        "items": [{"sku": "SKU-MUG", "quantity": 1}],
        "payment": {"method": "card", "token": "tok_visa"},
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "1 Main St",
            "city": "London",
            "postal_code": "N1 9GU",
            "country": "GB",
        },
    }
    if order_id:
        body["order_id"] = order_id
    body.update(overrides)
    return body


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
