"""Set-up of organisations, teams, users and API keys (first start, the `alliance serve` admin options, tests).

Secrets are returned once to the caller and stored only as hashes.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from alliance.service.principal import ROLES
from alliance.service.security import hash_password, hash_token, new_api_key
from alliance.service.store.models import ApiKey, Organisation, Team, User


@dataclass(frozen=True)
class Bootstrap:
    organisation_id: int
    team_id: int
    admin_user: str
    admin_password: str
    api_key: str


def get_or_create_team(s: Session, organisation: str, team: str) -> Team:
    org = s.execute(select(Organisation).where(Organisation.name == organisation)).scalar_one_or_none()
    if org is None:
        org = Organisation(name=organisation)
        s.add(org)
        s.flush()
    t = s.execute(select(Team).where(Team.organisation_id == org.id, Team.name == team)).scalar_one_or_none()
    if t is None:
        t = Team(organisation_id=org.id, name=team)
        s.add(t)
        s.flush()
    return t


def create_user(s: Session, team: Team, username: str, password: str, role: str,
                counsellor_id: str | None = None) -> User:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if len(password) < 10:
        raise ValueError("a password needs at least 10 characters")
    u = User(organisation_id=team.organisation_id, team_id=team.id, username=username,
             password_hash=hash_password(password), role=role, counsellor_id=counsellor_id)
    s.add(u)
    s.flush()
    return u


def create_api_key(s: Session, team: Team, name: str = "") -> str:
    key = new_api_key()
    s.add(ApiKey(team_id=team.id, prefix=key[:10], key_hash=hash_token(key), name=name))
    s.flush()
    return key


def bootstrap(s: Session) -> Bootstrap | None:
    """On an empty database: a default organisation and team, an admin user and an API key (shown once)."""
    if s.execute(select(User.id).limit(1)).first() is not None:
        return None
    team = get_or_create_team(s, "default", "default")
    password = secrets.token_urlsafe(12)
    create_user(s, team, "admin", password, "admin")
    key = create_api_key(s, team, "first key")
    return Bootstrap(team.organisation_id, team.id, "admin", password, key)
