"""Alembic environment of the shipping database; the URL comes from common.migrate.migrate."""

from common.migrate import run_alembic_env
from shipping.tables import metadata

run_alembic_env(metadata)
