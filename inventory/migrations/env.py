"""Alembic environment of the inventory database; the URL comes from common.migrate.migrate."""

from common.migrate import run_alembic_env
from inventory.tables import metadata

run_alembic_env(metadata)
