"""Cross-service contracts: activity names, app IDs, and one input and one result type per activity.

These are the only types the orchestrator and the services share. They travel as plain JSON objects:
each class implements the Dapr SDK's model protocol (``model_dump`` / ``model_validate``), so an activity
annotated with one of them receives an instance, and a returned instance is sent as a plain JSON object.
The saga (which gets results back as dicts) turns them into instances with ``Cls.model_validate(d)``.
``model_validate`` checks every field's type, recursively, against the class's annotations; a payload that
does not fit raises ``NonRetryableError`` naming each wrong field (sending it again cannot fix it).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Union

T = TypeVar("T", bound="Contract")

# App IDs (Dapr app IDs; also the names of the service packages' databases).
ORDER_API = "order-api"
INVENTORY = "inventory"
PAYMENT = "payment"
SHIPPING = "shipping"
NOTIFICATION = "notification"
APP_IDS = (ORDER_API, PAYMENT, INVENTORY, SHIPPING, NOTIFICATION)  # in the order of dapr.yaml

# The saga's registered workflow name.
ORDER_SAGA = "order_saga"
# Child workflows the saga starts in another app, each registered by the app that hosts it.
RISK_REVIEW = "risk_review"  # payment: may payment charge this order? (approve, reject, or a person decides)
WORKFLOW_APP = {RISK_REVIEW: PAYMENT}

# Activity names, registered by the app that hosts them.
VALIDATE_ORDER = "validate_order"  # inventory
RESERVE_INVENTORY = "reserve_inventory"  # inventory
RELEASE_INVENTORY = "release_inventory"  # inventory (undo of reserve_inventory)
CHARGE = "charge"  # payment
REFUND = "refund"  # payment (undo of charge)
SHIP = "ship"  # shipping
CANCEL_SHIPMENT = "cancel_shipment"  # shipping (undo of ship)
NOTIFY = "notify"  # notification
ASSESS_RISK = "assess_risk"  # payment, called by its own risk_review workflow (not by the saga)
# On the app of a child workflow: raise WAKE_EVENT to one of its workflows still PENDING (``common.wake``). Called by
# the order-api's wake_child workflow, which its reconcile sweep starts for a saga whose child has gone quiet.
WAKE_WORKFLOW = "wake_workflow"  # payment (the one app hosting a child workflow)
# Raised to a workflow the engine created but never ran (``common.wake``); no workflow waits for it.
WAKE_EVENT = "wake"

ACTIVITY_APP = {
    VALIDATE_ORDER: INVENTORY,
    RESERVE_INVENTORY: INVENTORY,
    RELEASE_INVENTORY: INVENTORY,
    CHARGE: PAYMENT,
    REFUND: PAYMENT,
    SHIP: SHIPPING,
    CANCEL_SHIPMENT: SHIPPING,
    NOTIFY: NOTIFICATION,
    WAKE_WORKFLOW: PAYMENT,
}
# Each forward step that changes the world, and its undo, in the order the saga takes the steps.
UNDO_OF = {RESERVE_INVENTORY: RELEASE_INVENTORY, CHARGE: REFUND, SHIP: CANCEL_SHIPMENT}


def idempotency_key(instance_id: str, step: str) -> str:
    """The key that makes an activity's effect happen once: derived from the workflow, never random."""
    return f"{instance_id}:{step}"


class NonRetryableError(Exception):
    """An error that retrying cannot fix. The workflow SDK never retries an activity error whose class is named
    ``NonRetryableError``, so the saga sees the failure after one attempt."""


class Contract:
    """Dataclass mixin implementing the SDK's model protocol with strict, recursive validation: unknown and
    missing fields and wrong types are refused, all of them named in one ``NonRetryableError``. JSON has one kind
    of number, so a float field takes an int; nothing else is coerced (``"12"`` is not an int, ``true`` is not
    1)."""

    if TYPE_CHECKING:  # every contract is a dataclass: this tells the type checker so
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def model_dump(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def model_validate(cls: type[T], data: Any) -> T:
        if isinstance(data, cls):
            return data
        problems: list[str] = []
        value: T = _build(cls, data, cls.__name__, problems)
        if problems:
            raise NonRetryableError(f"{cls.__name__} does not fit its contract: " + "; ".join(problems))
        return value


@functools.cache
def _fields(cls: type) -> dict[str, tuple[Any, bool]]:
    """Each field's type (annotations resolved) and whether it is required."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: (hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        for f in dataclasses.fields(cls)
    }


def _build(cls: type, data: Any, path: str, problems: list[str]) -> Any:
    """An instance of contract ``cls`` from ``data``, or None with what is wrong appended to ``problems``."""
    found = len(problems)
    if isinstance(data, SimpleNamespace):  # the SDK's decoder may hand objects over as namespaces
        data = vars(data)
    if not isinstance(data, dict):
        problems.append(f"{path}: expected an object, got {_shown(data)}")
        return None
    fields = _fields(cls)
    for name in sorted(set(data) - set(fields)):
        problems.append(f"{path}.{name}: unknown field")
    values = {}
    for name, (annotation, required) in fields.items():
        if name in data:
            values[name] = _check(data[name], annotation, f"{path}.{name}", problems)
        elif required:
            problems.append(f"{path}.{name}: missing")
    return cls(**values) if len(problems) == found else None


def _check(value: Any, annotation: Any, path: str, problems: list[str]) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]  # contracts use only X | None
        return _check(value, inner, path, problems)
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {_shown(value)}")
            return None
        return [_check(v, args[0], f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            problems.append(f"{path}: expected an object, got {_shown(value)}")
            return None
        return {k: _check(v, args[1], f"{path}.{k}", problems) for k, v in value.items()}
    if isinstance(annotation, type) and issubclass(annotation, Contract):
        return value if isinstance(value, annotation) else _build(annotation, value, path, problems)
    expected = _SCALARS.get(annotation)
    if expected is None:
        raise TypeError(f"{path}: contracts cannot hold {annotation!r}")  # a bug in a contract, not in a payload
    if isinstance(value, bool) != (annotation is bool) or not isinstance(value, expected):
        problems.append(f"{path}: expected {annotation.__name__}, got {_shown(value)}")
        return None
    return float(value) if annotation is float and isinstance(value, int | float) else value


_SCALARS: dict[Any, type | tuple[type, ...]] = {str: str, int: int, bool: bool, float: (int, float)}


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


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


@dataclass(frozen=True)
class ValidateOrderResult(Contract):
    """ok=False is a business rejection (unknown SKU, quantity over the per-order limit)."""

    ok: bool
    reason: str | None = None
    items: list[PricedItem] = field(default_factory=list)
    total_cents: int = 0


@dataclass(frozen=True)
class ReserveInventoryInput(Contract):
    order_id: str
    items: list[Item]
    idempotency_key: str


# --- payment -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeInput(Contract):
    order_id: str
    customer_id: str
    amount_cents: int
    token: str
    idempotency_key: str


# --- payment: the risk review (a child workflow of the saga, hosted by payment) ---------------------------

# The decisions of a risk review. REVIEW: a person must approve the order before it is charged.
APPROVE, REJECT, REVIEW = "approve", "reject", "review"


@dataclass(frozen=True)
class RiskReviewInput(Contract):
    """What the saga asks payment's risk review: may ``amount_cents`` be charged to ``customer_id`` for this order?
    The review checks the amount against the saga's own history, which the engine hands it (history propagation,
    ``LINEAGE``), so a caller cannot ask it to approve a total other than the one inventory priced."""

    order_id: str
    customer_id: str
    amount_cents: int
    idempotency_key: str
    retry: SagaRetry = SagaRetry()


@dataclass(frozen=True)
class CustodyCheck(Contract):
    """The chain-of-custody check of a risk review: what the propagated history showed (``checks``, one sentence
    each), and why it does not hold (``reason``) when ``ok`` is False."""

    ok: bool
    checks: list[str] = field(default_factory=list)
    reason: str | None = None


@dataclass(frozen=True)
class AssessRiskInput(Contract):
    order_id: str
    customer_id: str
    amount_cents: int
    custody: CustodyCheck
    idempotency_key: str


@dataclass(frozen=True)
class RiskAssessment(Contract):
    """payment's decision (APPROVE, REJECT or REVIEW), why, and the facts of the customer's payment history it
    weighed (e.g. ``first_order``, ``declined_payments``)."""

    decision: str
    reason: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RiskDecision(Contract):
    """The result of the risk review workflow: its assessment, the custody check, and its own steps (name,
    outcome, times), which the saga keeps with its own so the console can show the child as a lane of its own.
    ``ok`` is False only for REJECT: the saga unwinds, the order ends REJECTED with ``reason``."""

    decision: str
    reason: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    custody: CustodyCheck = CustodyCheck(ok=False)
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.decision != REJECT


# --- shipping ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipInput(Contract):
    order_id: str
    address: Address
    items: list[Item]
    idempotency_key: str


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

    @classmethod
    def done(cls, reference: str | None) -> StepResult:
        """The step happened (now or before); ``reference`` is its handle."""
        return cls(ok=True, reference=reference)

    @classmethod
    def refused(cls, reason: str | None) -> StepResult:
        """A business "no": out of stock, declined, undeliverable."""
        return cls(ok=False, reason=reason)

    @classmethod
    def undone_first(cls, reason: str) -> StepResult:
        """The step found its undo's tombstone: the undo ran first, so the step did nothing."""
        return cls(ok=False, cancelled=True, reason=reason)


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


# --- any app hosting a child workflow: waking one the engine created but never ran ----------------------------


@dataclass(frozen=True)
class WakeInput(Contract):
    order_id: str
    instance_id: str  # a workflow of the app that hosts the activity


@dataclass(frozen=True)
class WakeResult(Contract):
    """What the engine said of the workflow (its runtime status, None when it has no such instance) and whether an
    event was raised to it (only to a PENDING one)."""

    runtime_status: str | None
    woken: bool
