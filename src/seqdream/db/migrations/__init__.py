"""Alembic migrations of the service's tables; `seqdream.db.migrate` applies them."""
