"""Persistent storage: SQLAlchemy models, engine, Alembic migrations and repositories."""
