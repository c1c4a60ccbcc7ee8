"""Alembic environment: runs against the connection the service hands in (no alembic.ini needed)."""

from __future__ import annotations

from alembic import context

from alliance.service.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - `alembic` run by hand needs sqlalchemy.url in its own config
    from sqlalchemy import create_engine

    connection = create_engine(context.config.get_main_option("sqlalchemy.url")).connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
