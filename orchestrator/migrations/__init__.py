"""Alembic history of the order-api database (a package only so that it ships with the wheel)."""
