"""Who is asking: a team's API key or a signed-in user, and what that lets them see.

Counsellors see their own conversations, supervisors their team's, administrators their organisation's.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES: tuple[str, ...] = ("counsellor", "supervisor", "admin")


@dataclass(frozen=True)
class Principal:
    actor: str
    organisation_id: int
    role: str
    #: teams whose data this principal may read (an API key: its own team; a user: by role)
    team_ids: frozenset[int]
    #: the team new conversations go to (API keys and counsellors/supervisors)
    team_id: int | None = None
    #: counsellors only see conversations whose counsellor_id is this
    counsellor_id: str | None = None
    user_id: int | None = None
    csrf_token: str | None = None
    hide_counsellors: bool = False

    @property
    def is_key(self) -> bool:
        return self.actor.startswith("key:")
