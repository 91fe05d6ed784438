"""Cross-service contracts: activity names, app IDs, and one input and one result type per activity.

These are the only types the orchestrator and the services share. They travel as plain JSON objects:
each class implements the Dapr SDK's model protocol (``model_dump`` / ``model_validate``), so an activity
annotated with one of them receives an instance, and a returned instance is sent as a plain JSON object.
The saga (which gets results back as dicts) turns them into instances with ``Cls.model_validate(d)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="Contract")

# App IDs (Dapr app IDs; also the names of the service packages' databases).
ORDER_API = "order-api"
INVENTORY = "inventory"
PAYMENT = "payment"
SHIPPING = "shipping"
NOTIFICATION = "notification"

# The saga's registered workflow name.
ORDER_SAGA = "order_saga"

# Activity names, registered by the app that hosts them.
VALIDATE_ORDER = "validate_order"  # inventory
RESERVE_INVENTORY = "reserve_inventory"  # inventory
RELEASE_INVENTORY = "release_inventory"  # inventory (undo of reserve_inventory)
CHARGE = "charge"  # payment
REFUND = "refund"  # payment (undo of charge)
SHIP = "ship"  # shipping
CANCEL_SHIPMENT = "cancel_shipment"  # shipping (undo of ship)
NOTIFY = "notify"  # notification

ACTIVITY_APP = {
    VALIDATE_ORDER: INVENTORY,
    RESERVE_INVENTORY: INVENTORY,
    RELEASE_INVENTORY: INVENTORY,
    CHARGE: PAYMENT,
    REFUND: PAYMENT,
    SHIP: SHIPPING,
    CANCEL_SHIPMENT: SHIPPING,
    NOTIFY: NOTIFICATION,
}


def idempotency_key(instance_id: str, step: str) -> str:
    """The key that makes an activity's effect happen once: derived from the workflow, never random."""
    return f"{instance_id}:{step}"


class Contract:
    """Dataclass mixin implementing the SDK's model protocol: unknown fields are refused and nested contracts are
    built recursively. Field types are not checked here (yet): the services' domain rules check what they use."""

    _nested: ClassVar[dict[str, type]] = {}

    def model_dump(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def model_validate(cls: type[T], data: Any) -> T:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__} expects a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - names
        if unknown:
            raise TypeError(f"{cls.__name__} got unknown fields: {sorted(unknown)}")
        values = dict(data)
        for name, nested in cls._nested.items():
            if name in values and values[name] is not None:
                v = values[name]
                values[name] = [nested.model_validate(x) for x in v] if isinstance(v, list) else nested.model_validate(v)
        return cls(**values)


@dataclass(frozen=True)
class Item(Contract):
    sku: str
    quantity: int


@dataclass(frozen=True)
class PricedItem(Contract):
    sku: str
    quantity: int
    price_cents: int


@dataclass(frozen=True)
class Address(Contract):
    name: str
    line1: str
    city: str
    postal_code: str
    country: str


@dataclass(frozen=True)
class SagaRetry(Contract):
    """The retry policy of every saga step and undo, as plain data: read from SAGA_RETRY_* into the settings,
    fixed in the saga's input when an order is accepted (the saga reads no env), and turned into the SDK's
    policy by ``common.saga.retry_policy``."""

    first_interval_ms: int = 500
    max_attempts: int = 5
    backoff: float = 2.0
    max_interval_ms: int = 10_000


# --- inventory ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidateOrderInput(Contract):
    order_id: str
    items: list[Item]
    _nested: ClassVar[dict[str, type]] = {"items": Item}


@dataclass(frozen=True)
class ValidateOrderResult(Contract):
    """ok=False is a business rejection (unknown SKU, quantity over the per-order limit)."""

    ok: bool
    reason: str | None = None
    items: list[PricedItem] = field(default_factory=list)
    total_cents: int = 0
    _nested: ClassVar[dict[str, type]] = {"items": PricedItem}


@dataclass(frozen=True)
class ReserveInventoryInput(Contract):
    order_id: str
    items: list[Item]
    idempotency_key: str
    _nested: ClassVar[dict[str, type]] = {"items": Item}


# --- payment -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeInput(Contract):
    order_id: str
    customer_id: str
    amount_cents: int
    token: str
    idempotency_key: str


# --- shipping ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipInput(Contract):
    order_id: str
    address: Address
    items: list[Item]
    idempotency_key: str
    _nested: ClassVar[dict[str, type]] = {"address": Address, "items": Item}


# --- every forward step and every undo ---------------------------------------------------------------


@dataclass(frozen=True)
class StepResult(Contract):
    """Result of a forward step. ok=False is a business outcome (out of stock, declined, undeliverable),
    never a technical error: those raise and are retried. ``cancelled`` is True when the step found the
    tombstone of its undo (the undo ran first, so the step did nothing). ``reference`` is the step's
    handle for people: a payment id, a tracking number."""

    ok: bool
    reason: str | None = None
    reference: str | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class UndoInput(Contract):
    order_id: str
    idempotency_key: str


@dataclass(frozen=True)
class UndoResult(Contract):
    """outcome: 'undone' (there was an effect and it is now reversed), 'nothing_to_undo' (no effect was
    found; a tombstone now stops a late forward call)."""

    outcome: str
    detail: str | None = None


# --- notification ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotifyInput(Contract):
    order_id: str
    email: str
    kind: str  # "order_confirmed" | "order_failed"
    detail: str | None = None
    idempotency_key: str = ""


@dataclass(frozen=True)
class NotifyResult(Contract):
    sent: bool
    channel: str = "email"
    detail: str | None = None
