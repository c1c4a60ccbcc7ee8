"""Shared fixtures: offline settings, the research-data folder (skipped when absent), a temporary cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path | None:
    env = os.environ.get("ALLIANCE_DATA")
    p = Path(env) if env else ROOT.parent / "shared" / "data"
    return p if p.is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    d = data_dir()
    if d is None:
        pytest.skip("research corpora not available (set ALLIANCE_DATA or provide ../shared/data)")
    return d


@pytest.fixture(scope="session")
def encoder(tmp_path_factory):
    """The real default encoder behind a per-session temporary cache."""
    from alliance.encoders import load_encoder

    return load_encoder(cache_dir=tmp_path_factory.mktemp("emb-cache"))


# the service's storage fixture (SQLite and PostgreSQL), shared by the service test modules
from tests.service_fixtures import db_url  # noqa: E402,F401
