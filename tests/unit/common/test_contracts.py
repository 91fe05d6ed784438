"""The activity contracts are strict: every field's type is checked, recursively, and everything wrong with a
payload is named in one non-retryable error; what fits comes back as the same value it was dumped from."""

from __future__ import annotations

import pytest

from common.contracts import (
    Address,
    ChargeInput,
    Item,
    NonRetryableError,
    NotifyInput,
    NotifyResult,
    PricedItem,
    ReserveInventoryInput,
    SagaRetry,
    ShipInput,
    StepResult,
    UndoInput,
    UndoResult,
    ValidateOrderInput,
    ValidateOrderResult,
)
from orchestrator.domain import OrderSagaInput, OrderStatusUpdate

ADDRESS = Address("Ada", "1 Main St", "London", "N1", "GB")
EXAMPLES = [
    ValidateOrderInput("o-1", [Item("SKU-MUG", 2)]),
    ValidateOrderResult(True, None, [PricedItem("SKU-MUG", 2, 1200)], 2400),
    ReserveInventoryInput("o-1", [Item("SKU-MUG", 2)], "o-1:reserve"),
    ChargeInput("o-1", "c-1", 2400, "tok_visa", "o-1:charge"),
    ShipInput("o-1", ADDRESS, [Item("SKU-MUG", 2)], "o-1:ship"),
    StepResult(False, "card declined", None, False),
    UndoInput("o-1", "o-1:refund"),
    UndoResult("undone", "refunded 2400 cents"),
    NotifyInput("o-1", "ada@example.com", "order_confirmed", None, "o-1:notify"),
    NotifyResult(True),
    SagaRetry(100, 3, 2.0, 1000),
    OrderSagaInput("o-1", "c-1", "ada@example.com", [Item("SKU-MUG", 2)], "tok_visa", ADDRESS, SagaRetry()),
    OrderStatusUpdate("o-1", "COMPENSATED", {"step": "charge", "reason": "card declined"}, 2400, {"steps": []}),
]


@pytest.mark.parametrize("value", EXAMPLES, ids=lambda v: type(v).__name__)
def test_every_contract_comes_back_from_its_own_json_unchanged(value):
    assert type(value).model_validate(value.model_dump()) == value


def test_wrong_types_are_one_non_retryable_error_naming_every_field():
    with pytest.raises(NonRetryableError) as err:
        ChargeInput.model_validate({"amount_cents": "12", "token": []})
    message = str(err.value)
    for problem in (
        "ChargeInput.amount_cents: expected int, got str '12'",
        "ChargeInput.token: expected str, got list []",
        "ChargeInput.order_id: missing",
        "ChargeInput.customer_id: missing",
        "ChargeInput.idempotency_key: missing",
    ):
        assert problem in message


@pytest.mark.parametrize("quantity", [True, "2", 2.0, None])
def test_nothing_is_coerced_into_an_int_and_the_path_names_the_nested_field(quantity):
    payload = ShipInput("o-1", ADDRESS, [Item("SKU-MUG", 2)], "k").model_dump()
    payload["items"][0]["quantity"] = quantity
    with pytest.raises(NonRetryableError, match=r"ShipInput\.items\[0\]\.quantity: expected int"):
        ShipInput.model_validate(payload)


def test_an_unknown_field_and_a_nested_object_of_the_wrong_shape_are_named():
    payload = ShipInput("o-1", ADDRESS, [], "k").model_dump() | {"coupon": "FREE", "address": "1 Main St"}
    with pytest.raises(NonRetryableError) as err:
        ShipInput.model_validate(payload)
    assert "ShipInput.coupon: unknown field" in str(err.value)
    assert "ShipInput.address: expected an object, got str '1 Main St'" in str(err.value)


def test_a_json_number_without_a_fraction_fits_a_float_field():
    assert SagaRetry.model_validate({"backoff": 2}).backoff == 2.0


def test_an_optional_field_takes_null_and_a_default_fills_a_missing_field():
    assert StepResult.model_validate({"ok": True, "reason": None}) == StepResult(ok=True)


def test_a_payload_that_is_not_an_object_is_refused():
    with pytest.raises(NonRetryableError, match="UndoInput: expected an object, got list"):
        UndoInput.model_validate(["o-1", "k"])
