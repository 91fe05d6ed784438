"""Alembic environment of the payment database; the URL comes from common.migrate.migrate."""

from common.migrate import run_alembic_env
from payment.tables import metadata

run_alembic_env(metadata)
