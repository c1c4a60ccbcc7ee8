"""Fixtures for the service tests: a fresh database on each backend (SQLite file, real PostgreSQL), an app, keys.

PostgreSQL comes from $ALLIANCE_TEST_PG (default: the development machines' server on 127.0.0.1:5432, trust auth);
when it cannot be reached the PostgreSQL tests FAIL with a message saying so, they never pass silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get("ALLIANCE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_admin():
    import psycopg

    url = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL is required for the storage tests and was not reachable at {PG_URL} ({e}). "
                    "Start it (see DEVELOPERS.md) or point ALLIANCE_TEST_PG at one.")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    name = f"alliance_t_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with _pg_admin() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


class HashEncoder:
    """Deterministic unit vectors from a hash of each text: exercises encoder lenses' plumbing without a model."""

    model_id = "hash-encoder"
    dimension = 32

    def encode(self, texts):
        import hashlib

        import numpy as np

        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest(), dtype=np.uint8).astype(np.float32) - 127.5
                for t in texts]
        v = np.stack(rows) if rows else np.zeros((0, self.dimension), dtype=np.float32)
        return (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)).astype(np.float32)


def make_app(db_url: str, data_dir: Path, lenses=("markers",), encoder=None, **settings):
    from alliance.service.admin import bootstrap
    from alliance.service.app import create_app
    from alliance.service.settings import Settings

    app = create_app(Settings(data_dir=data_dir, db_url=db_url, lenses=tuple(lenses), background=False, **settings),
                     encoder=encoder)
    with app.state.db.session() as s:
        boot = bootstrap(s)
    return app, boot
