"""The FastAPI app factory: settings, database, scorer and webhook threads, routers, dashboard and static assets.

`create_app(Settings(...))` is what `alliance serve` runs and what the tests drive; nothing here scores text itself.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from alliance.owner_only import private_dir, private_file
from alliance.service.alerts import WebhookSender, raise_alerts
from alliance.service.api import alerts as alerts_api
from alliance.service.api import conversations, exports, ingest_formats
from alliance.service.api.auth import LoginRequired, RateLimiter
from alliance.service.scoring import Scorer
from alliance.service.settings import Settings
from alliance.service.store.db import Database

log = logging.getLogger("alliance.service")


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes with 413, by header or while streaming (chunked)."""

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._too_large(send)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return msg

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._too_large(send)

    async def _too_large(self, send: Any) -> None:
        body = f'{{"detail":"request body larger than {self.limit} bytes"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(settings: Settings | None = None, *, encoder: Any = None) -> FastAPI:
    """Build the service. ``encoder`` overrides the default (cached MiniLM) encoder, e.g. in tests."""
    settings = settings or Settings.from_env()
    private_dir(settings.data_dir)  # health data: the owner only
    if settings.database_url.startswith("sqlite:///"):
        private_file(settings.database_url[len("sqlite:///"):])  # 0600 before SQLite first writes it
    db = Database(settings.database_url)
    db.upgrade()

    def encoder_factory() -> Any:
        from alliance.encoders import load_encoder

        return load_encoder(cache_dir=settings.data_dir / "cache")

    def on_scored(s: Any, conv_id: int, turns: Any, session_row: Any) -> None:
        raise_alerts(s, conv_id, turns, session_row, settings.webhook_url)

    scorer = Scorer(db, settings.lenses, queue_size=settings.queue_size, encoder=encoder,
                    encoder_factory=encoder_factory, on_scored=on_scored)
    sender = WebhookSender(db, settings.webhook_secret, settings.webhook_max_attempts)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.background:
            purge_expired(app)
            scorer.start()
            if settings.webhook_url:
                sender.start()
        yield
        scorer.stop()
        sender.stop()
        db.dispose()

    app = FastAPI(title="alliance service", version=_version(), lifespan=lifespan,
                  description="Conversations scored as they happen: per-reply empathy, alliance per side, markers, "
                              "behaviours and safety kept apart; alerts when a risk disclosure goes unanswered.")
    app.state.settings = settings
    app.state.db = db
    app.state.scorer = scorer
    app.state.webhooks = sender
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.forget_texts = lambda texts: _forget(settings, texts)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # one line per problem naming the field, e.g. "body.turns.0.speaker: unknown speaker 'bot'"
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
                    for e in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/api/v1/health", tags=["service"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "scoring_backlog": scorer.backlog(), "scored": scorer.scored,
                "deferred": scorer.deferred, "errors": scorer.errors}

    @app.get("/static/vega.js", include_in_schema=False)
    def vega() -> Response:
        from alliance.report.html import vega_bundle

        return PlainTextResponse(vega_bundle(), media_type="application/javascript",
                                 headers={"cache-control": "max-age=86400"})

    from pathlib import Path

    from alliance.service.web import pages

    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "web" / "static")), name="static")
    for r in (conversations.router, ingest_formats.router, alerts_api.router, exports.router, pages.router):
        app.include_router(r)
    return app


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory alliance.service.app:app_from_env``: settings from ALLIANCE_SERVE_* variables."""
    return create_app(Settings.from_env())


def purge_expired(app: FastAPI) -> int:
    """Delete transcripts past the retention period (with their scores, alerts and cached vectors)."""
    from alliance.service.store.queries import audit, delete_conversation, expired_conversations

    settings: Settings = app.state.settings
    n = 0
    with app.state.db.session() as s:
        for conv in expired_conversations(s, settings.retention_days):
            texts = delete_conversation(s, conv)
            audit(s, "retention", "delete", f"conversation:{conv.id}", conv.team_id)
            app.state.forget_texts(texts)
            n += 1
    return n


def _forget(settings: Settings, texts: list[str]) -> int:
    """Purge a deleted transcript's vectors from the service's embedding cache (no model needs loading)."""
    from alliance.encoders.cache import forget_texts

    return forget_texts(settings.data_dir / "cache", texts)


def _version() -> str:
    from alliance import __version__

    return __version__
