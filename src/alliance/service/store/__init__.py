"""Persistence for the service: SQLAlchemy models, the engine and session factory, team-scoped queries.

SQLite by default, PostgreSQL by URL; the schema is created and upgraded by Alembic migrations (store/migrations).
"""
