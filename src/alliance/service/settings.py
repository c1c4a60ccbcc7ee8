"""Service settings: where data lives, which database, which lenses score, limits, webhooks, retention.

One frozen object built from the command line or the environment (ALLIANCE_SERVE_*), passed to the app factory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Lenses the live scorer runs by default: the per-turn and per-session measures that make sense while a session
#: is under way (coordination and the course stage need whole courses and stay in batch runs).
LIVE_LENSES: tuple[str, ...] = ("alliance", "empathy", "markers", "behaviour", "safety", "ruptures", "trajectory")


def default_data_dir() -> Path:
    env = os.environ.get("ALLIANCE_SERVE_DATA")
    return Path(env) if env else Path.home() / ".local" / "share" / "alliance" / "serve"


@dataclass(frozen=True)
class Settings:
    """Everything the app needs to start; defaults give an embedded SQLite store under ``data_dir``."""

    data_dir: Path = field(default_factory=default_data_dir)
    #: SQLAlchemy URL; None = SQLite file in data_dir. PostgreSQL: postgresql+psycopg://user@host/db
    db_url: str | None = None
    lenses: tuple[str, ...] = LIVE_LENSES
    #: largest request body accepted (bytes); larger answers 413
    max_body_bytes: int = 2_000_000
    #: requests per minute per API key; more answer 429 with Retry-After
    rate_limit_per_minute: int = 600
    #: conversations waiting to be scored before ingestion reports backpressure (scoring still catches up)
    queue_size: int = 1000
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_max_attempts: int = 8
    #: transcripts older than this many days are deleted (0 = keep)
    retention_days: int = 0
    #: secure cookies (set when served over HTTPS, e.g. behind a TLS proxy)
    secure_cookies: bool = False
    #: hide counsellor identities from administrators' organisation aggregates
    hide_counsellors: bool = False
    #: run the background scorer and webhook threads (tests may drive them by hand)
    background: bool = True

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir / 'alliance.db'}"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        if "ALLIANCE_SERVE_DB" in env:
            values["db_url"] = env["ALLIANCE_SERVE_DB"]
        if "ALLIANCE_WEBHOOK_URL" in env:
            values["webhook_url"] = env["ALLIANCE_WEBHOOK_URL"]
        if "ALLIANCE_WEBHOOK_SECRET" in env:
            values["webhook_secret"] = env["ALLIANCE_WEBHOOK_SECRET"]
        if env.get("ALLIANCE_SERVE_LENSES"):
            values["lenses"] = tuple(x.strip() for x in env["ALLIANCE_SERVE_LENSES"].split(",") if x.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
