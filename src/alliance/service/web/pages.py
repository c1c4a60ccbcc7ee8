"""Dashboard routes: sign-in, the alert queue, session review with notes, trends and version comparison.

Charts are the report's own Vega-Lite specs (alliance.report.charts); the Vega runtime is served from /static.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from alliance.service.api.alerts import transition
from alliance.service.api.auth import COOKIE, DB, CsrfUser, UserPrincipal, session_expiry
from alliance.service.security import hash_token, new_token, verify_password
from alliance.service.store.models import Conversation, Note, User, WebSession
from alliance.service.store.queries import (
    alerts_for,
    audit,
    get_alert,
    get_conversation,
    list_conversations,
    notes_of,
    scoped,
    sessions_table,
    turns_of,
)
from alliance.service.web.views import axes_rows, calibrated_rows, flag_rows, flags, fmt, session_specs, trend_specs

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
templates.env.globals.update(fmt=fmt, flags=flags)


def page(request: Request, name: str, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("specs", {})
    return templates.TemplateResponse(request, name, ctx)


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/alerts", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return page(request, "login.html", user=None)


@router.post("/login")
def login(request: Request, s: DB, username: Annotated[str, Form()], password: Annotated[str, Form()]) -> Response:
    user = s.execute(select(User).where(User.username == username)).scalar_one_or_none()
    # verify against a dummy hash when the user is unknown, so timing does not reveal which names exist
    ok = verify_password(password, user.password_hash if user else
                         "scrypt$16384$8$1$00$00") and user is not None
    if not ok:
        audit(s, f"login:{username[:100]}", "login_failed", "dashboard")
        s.commit()
        return page(request, "login.html", user=None, error="Wrong user name or password.")
    token = new_token()
    s.add(WebSession(token_hash=hash_token(token), user_id=user.id, csrf_token=new_token(), expires_at=session_expiry()))
    audit(s, f"user:{user.username}", "login", "dashboard", user.team_id)
    s.commit()
    resp = RedirectResponse("/alerts", status_code=303)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.app.state.settings.secure_cookies,
                    max_age=12 * 3600)
    return resp


@router.post("/logout")
def logout(request: Request, s: DB, user: CsrfUser) -> Response:
    token = request.cookies.get(COOKIE, "")
    ws = s.execute(select(WebSession).where(WebSession.token_hash == hash_token(token))).scalar_one_or_none()
    if ws is not None:
        s.delete(ws)
        s.commit()
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


@router.get("/alerts", response_class=HTMLResponse)
def alert_queue(request: Request, s: DB, user: UserPrincipal, status: str | None = None) -> HTMLResponse:
    items = alerts_for(s, user, status=status) if status else [
        a for a in alerts_for(s, user) if a.status != "resolved"]
    names = {c.id: c.external_id for c in s.execute(
        select(Conversation).where(Conversation.id.in_([a.conversation_id for a in items] or [-1]))).scalars()}
    audit(s, user, "read_alerts", f"alerts:{status or 'active'}")
    s.commit()
    return page(request, "alerts.html", user=user, alerts=items, conv_names=names)


@router.post("/alerts/{alert_id}")
def alert_action(alert_id: int, s: DB, user: CsrfUser, action: Annotated[str, Form()]) -> Response:
    if action not in ("acknowledge", "resolve"):
        raise HTTPException(422, f"unknown action {action!r}; use acknowledge or resolve")
    a = get_alert(s, user, alert_id)
    if a is None:
        raise HTTPException(404, f"no alert {alert_id}")
    transition(a, action, user.actor)  # type: ignore[arg-type]
    audit(s, user, action, f"alert:{alert_id}", a.team_id)
    s.commit()
    return RedirectResponse(f"/alerts#alert-{alert_id}", status_code=303)


@router.get("/conversations", response_class=HTMLResponse)
def conversations(request: Request, s: DB, user: UserPrincipal) -> HTMLResponse:
    convs = list_conversations(s, user, limit=500)
    return page(request, "conversations.html", user=user, convs=convs, hide=user.hide_counsellors)


@router.get("/conversations/{conv_id}", response_class=HTMLResponse)
def review(conv_id: int, request: Request, s: DB, user: UserPrincipal) -> HTMLResponse:
    conv = get_conversation(s, user, conv_id)
    if conv is None:
        raise HTTPException(404, f"no conversation {conv_id}")
    turns = turns_of(s, conv)
    audit(s, user, "read_transcript", f"conversation:{conv.id}", conv.team_id)
    s.commit()
    from alliance.service.store.models import Alert
    from alliance.service.web.views import turn_rows

    alerts = list(s.execute(select(Alert).where(Alert.conversation_id == conv.id)).scalars())
    return page(request, "session.html", user=user, conv=conv, turns=turn_rows(turns, alerts), notes=notes_of(s, conv), alerts=alerts,
                flag_rows=flag_rows(conv.session_scores), calibrated=calibrated_rows(conv.session_scores),
                axes=axes_rows(conv.session_scores), specs=session_specs(turns), hide=user.hide_counsellors)


@router.post("/conversations/{conv_id}/notes")
def add_note(conv_id: int, s: DB, user: CsrfUser, text: Annotated[str, Form(max_length=5000)]) -> Response:
    conv = get_conversation(s, user, conv_id)
    if conv is None:
        raise HTTPException(404, f"no conversation {conv_id}")
    if not text.strip():
        raise HTTPException(422, "a note needs text")
    s.add(Note(team_id=conv.team_id, conversation_id=conv.id, author=user.actor, text=text.strip()))
    audit(s, user, "note", f"conversation:{conv.id}", conv.team_id)
    s.commit()
    return RedirectResponse(f"/conversations/{conv_id}", status_code=303)


def _session_frame(s, user):
    import pandas as pd

    from alliance.service.store.models import Team

    convs = list(s.execute(scoped(select(Conversation), user)).scalars())
    df = pd.DataFrame(sessions_table(convs))
    if len(df):
        teams = {t.id: t.name for t in s.execute(select(Team)).scalars()}
        df["team"] = [teams.get(c.team_id, str(c.team_id)) for c in convs]
    return df


@router.get("/trends", response_class=HTMLResponse)
def trends(request: Request, s: DB, user: UserPrincipal, by: str = "bot_version") -> HTMLResponse:
    if by not in ("bot_version", "counsellor_id", "team"):
        raise HTTPException(422, "by must be bot_version, counsellor_id or team")
    if by == "counsellor_id" and user.hide_counsellors:
        by = "team"
    df = _session_frame(s, user)
    return page(request, "trends.html", user=user, by=by, specs=trend_specs(df, by) if len(df) else {})


@router.get("/compare", response_class=HTMLResponse)
def compare(request: Request, s: DB, user: UserPrincipal, a: str | None = None, b: str | None = None
            ) -> HTMLResponse:
    from alliance.compare import compare_runs

    df = _session_frame(s, user)
    versions = sorted({str(v) for v in df["bot_version"].dropna()}) if len(df) else []
    rows = []
    if a and b and len(df):
        da, db_ = df[df["bot_version"] == a], df[df["bot_version"] == b]
        rows = compare_runs(da, db_, pair_on=["session_id"]) if len(da) and len(db_) else []
    return page(request, "compare.html", user=user, versions=versions, a=a, b=b, rows=rows)
