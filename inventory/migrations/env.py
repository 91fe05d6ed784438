"""Alembic environment of the inventory database; the URL comes from common.db.migrate."""

from common.db import run_alembic_env
from inventory.tables import metadata

run_alembic_env(metadata)
