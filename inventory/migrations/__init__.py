"""Alembic history of the inventory database (a package only so that it ships with the wheel)."""
