"""Alembic history of the notification database (a package only so that it ships with the wheel)."""
