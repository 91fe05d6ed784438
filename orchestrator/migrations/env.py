"""Alembic environment of the order-api database; the URL comes from common.db.migrate."""

from common.db import run_alembic_env
from orchestrator.tables import metadata

run_alembic_env(metadata)
