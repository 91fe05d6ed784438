"""The shipping HTTP app: the only place its parts are wired together."""

from __future__ import annotations

from litestar import Litestar

from common.runner import service_app
from common.settings import Settings
from shipping.activities import ACTIVITIES
from shipping.api import get_shipment


def create_app(settings: Settings) -> Litestar:
    return service_app(settings, "shipping", [get_shipment], ACTIVITIES)
