"""The notification HTTP app: the only place its parts are wired together."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from common.db import Database
from common.faults import FaultInjector, fault_router
from common.problems import problem_config
from common.service import healthz
from common.settings import Settings
from notification.activities import ACTIVITIES
from notification.api import get_notifications


def create_app(settings: Settings) -> Litestar:
    if not settings.database_url:
        raise ValueError("settings.database_url is required (run_service resolves it)")
    db = Database(settings.database_url)
    handlers: list = [healthz, get_notifications]
    if settings.faults_enabled:
        handlers.append(fault_router(FaultInjector(db, ACTIVITIES, enabled=True)))
    return Litestar(
        route_handlers=handlers,
        dependencies={"db": Provide(lambda: db, sync_to_thread=False)},
        on_shutdown=[db.dispose],
        openapi_config=OpenAPIConfig(title="notification", version="0.1.0"),
        **problem_config(),
    )
