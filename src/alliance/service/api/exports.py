"""Exports: the team's scores as the same Parquet tables `alliance analyze` writes (turns and sessions)."""

from __future__ import annotations

import io
from typing import Literal

from fastapi import APIRouter, Response
from sqlalchemy import select

from alliance.service.api.auth import DB, KeyPrincipal
from alliance.service.store.models import Conversation, Turn
from alliance.service.store.queries import as_utc, audit, scoped, sessions_table

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])


def turns_frame(s, who):
    import pandas as pd

    convs = {c.id: c for c in s.execute(scoped(select(Conversation), who)).scalars()}
    rows = []
    for t in s.execute(select(Turn).where(Turn.conversation_id.in_(list(convs) or [-1]))
                       .order_by(Turn.conversation_id, Turn.turn_index)).scalars():
        c = convs[t.conversation_id]
        rows.append({"course_id": c.course_id, "session_id": c.external_id, "session_index": c.session_index,
                     "turn_index": t.turn_index, "speaker": t.speaker, "speaker_id": t.speaker_id,
                     "counsellor_is_ai": c.counsellor_is_ai, "text": t.text, "timestamp": as_utc(t.timestamp),
                     **(t.scores or {})})
    return pd.DataFrame(rows)


@router.get("/{table}.parquet")
def export(table: Literal["turns", "sessions"], who: KeyPrincipal, s: DB) -> Response:
    import pandas as pd

    if table == "turns":
        df = turns_frame(s, who)
        audit(s, who, "export_transcripts", "turns.parquet", who.team_id)
    else:
        df = pd.DataFrame(sessions_table(s.execute(scoped(select(Conversation), who)).scalars()))
        audit(s, who, "export_sessions", "sessions.parquet", who.team_id)
    s.commit()
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return Response(buf.getvalue(), media_type="application/vnd.apache.parquet",
                    headers={"content-disposition": f"attachment; filename={table}.parquet"})
