"""Alembic environment of the notification database; the URL comes from common.migrate.migrate."""

from common.migrate import run_alembic_env
from notification.tables import metadata

run_alembic_env(metadata)
