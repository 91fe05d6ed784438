"""The inventory HTTP app: the only place its parts are wired together."""

from __future__ import annotations

from litestar import Litestar

from common.runner import service_app
from common.settings import Settings
from inventory.activities import ACTIVITIES
from inventory.api import get_products, get_reservation


def create_app(settings: Settings) -> Litestar:
    return service_app(settings, "inventory", [get_products, get_reservation], ACTIVITIES)
