"""Alembic environment of the shipping database; the URL comes from common.db.migrate."""

from common.db import run_alembic_env
from shipping.tables import metadata

run_alembic_env(metadata)
