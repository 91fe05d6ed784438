"""Alembic environment of the payment database; the URL comes from common.db.migrate."""

from common.db import run_alembic_env
from payment.tables import metadata

run_alembic_env(metadata)
