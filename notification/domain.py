"""Notification rules with no I/O: what a message needs before it can be sent."""

from __future__ import annotations

from common.contracts import NotifyInput

CHANNEL = "email"


class InvalidNotification(ValueError):
    """The request cannot be sent as given (a caller bug, not a delivery failure)."""


def check(request: NotifyInput) -> None:
    if not request.idempotency_key:
        raise InvalidNotification("notify needs an idempotency_key")
    if "@" not in request.email:
        raise InvalidNotification(f"not an e-mail address: {request.email!r}")
    if not request.kind:
        raise InvalidNotification("notify needs a kind")
