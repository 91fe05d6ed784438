"""Alembic environment of the order-api database; the URL comes from common.migrate.migrate."""

from common.migrate import run_alembic_env
from orchestrator.tables import metadata

run_alembic_env(metadata)
