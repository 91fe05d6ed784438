"""Alembic environment of the notification database; the URL comes from common.db.migrate."""

from common.db import run_alembic_env
from notification.tables import metadata

run_alembic_env(metadata)
