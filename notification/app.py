"""The notification HTTP app: the only place its parts are wired together."""

from __future__ import annotations

from litestar import Litestar

from common.runner import service_app
from common.settings import Settings
from notification.activities import ACTIVITIES
from notification.api import get_notifications


def create_app(settings: Settings) -> Litestar:
    return service_app(settings, "notification", [get_notifications], ACTIVITIES)
