"""Alembic history of the payment database (a package only so that it ships with the wheel)."""
