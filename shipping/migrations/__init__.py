"""Alembic history of the shipping database (a package only so that it ships with the wheel)."""
