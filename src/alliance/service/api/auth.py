"""Dependencies every route uses: the database session, the API-key principal, the signed-in user, CSRF, rate limits.

A key or user of one team never sees another team's rows: the principal carries the teams it may read and every
query in store/queries.py filters by them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from alliance.service.principal import Principal
from alliance.service.security import hash_token
from alliance.service.store.models import ApiKey, Team, User, WebSession, utcnow
from alliance.service.store.queries import as_utc

COOKIE = "alliance_session"
SESSION_HOURS = 12


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.db.session() as s:
        yield s


DB = Annotated[Session, Depends(get_db)]


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests, refilled continuously; over it -> 429 with Retry-After."""

    def __init__(self, per_minute: int):
        self.rate = per_minute / 60.0
        self.capacity = float(max(per_minute, 1))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> float:
        """0 when allowed, else seconds until a request would be."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate if self.rate > 0 else 60.0


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def key_principal(request: Request, s: DB) -> Principal:
    """The team behind an API key (Authorization: Bearer KEY, or X-API-Key); 401 otherwise, 429 over the limit."""
    key = _bearer(request)
    if not key:
        raise HTTPException(401, "missing API key (Authorization: Bearer KEY)", headers={"WWW-Authenticate": "Bearer"})
    row = s.execute(select(ApiKey).where(ApiKey.key_hash == hash_token(key), ApiKey.revoked.is_(False))).scalar_one_or_none()
    if row is None:
        raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    wait = request.app.state.limiter.check(f"key:{row.id}")
    if wait > 0:
        raise HTTPException(429, "rate limit exceeded for this key", headers={"Retry-After": str(math.ceil(wait))})
    team = s.get(Team, row.team_id)
    return Principal(actor=f"key:{row.prefix}", organisation_id=team.organisation_id, role="supervisor",
                     team_ids=frozenset({row.team_id}), team_id=row.team_id)


KeyPrincipal = Annotated[Principal, Depends(key_principal)]


class LoginRequired(Exception):
    """Raised for a browser without a valid session; the app answers with a redirect to /login."""


def user_principal_or_none(request: Request, s: Session) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    ws = s.execute(select(WebSession).where(WebSession.token_hash == hash_token(token))).scalar_one_or_none()
    if ws is None or as_utc(ws.expires_at) < utcnow():
        return None
    user = s.get(User, ws.user_id)
    if user is None:
        return None
    settings = request.app.state.settings
    if user.role == "admin":
        teams = frozenset(t for (t,) in s.execute(select(Team.id).where(Team.organisation_id == user.organisation_id)))
    else:
        teams = frozenset({user.team_id}) if user.team_id is not None else frozenset()
    return Principal(actor=f"user:{user.username}", organisation_id=user.organisation_id, role=user.role,
                     team_ids=teams, team_id=user.team_id, counsellor_id=user.counsellor_id, user_id=user.id,
                     csrf_token=ws.csrf_token, hide_counsellors=settings.hide_counsellors and user.role == "admin")


def user_principal(request: Request, s: DB) -> Principal:
    p = user_principal_or_none(request, s)
    if p is None:
        raise LoginRequired()
    return p


UserPrincipal = Annotated[Principal, Depends(user_principal)]


def require_csrf(user: UserPrincipal, csrf: Annotated[str, Form()] = "") -> Principal:
    """Every form post from the dashboard carries the session's CSRF token."""
    import hmac

    if not csrf or not user.csrf_token or not hmac.compare_digest(csrf, user.csrf_token):
        raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")
    return user


CsrfUser = Annotated[Principal, Depends(require_csrf)]


def session_expiry():
    return utcnow() + timedelta(hours=SESSION_HOURS)
