"""The payment HTTP app: the only place its parts are wired together."""

from __future__ import annotations

from litestar import Litestar

from common.runner import service_app
from common.settings import Settings
from payment.activities import ACTIVITIES
from payment.api import get_payment, get_review


def create_app(settings: Settings) -> Litestar:
    return service_app(settings, "payment", [get_payment, get_review], ACTIVITIES)
