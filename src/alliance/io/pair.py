"""PAIR counsellor-reflection ratings: each client prompt with 8 graded reflections, each (prompt, reflection) a
2-turn session.

``pair_data.csv`` columns: ``prompt, hq1, hq2, mq1, lq1, ..., lq5`` (2 high-, 1 medium-, 5 low-quality
reflections written for the prompt). Session metadata: ``prompt_id`` (the prompt's 0-based row), ``response_slot``
(``hq1`` ...) and ``quality`` (high/medium/low).

Source: Min et al., "PAIR: Prompt-Aware margIn Ranking for Counselor Reflection Scoring in Motivational
Interviewing", EMNLP 2022.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alliance.corpus import SessionInfo, Turn
from alliance.io.base import InputError, Reader, ReadResult, RejectionLog
from alliance.io.csvfile import csv_header, iter_csv_records
from alliance.io.values import checked_text

QUALITY = {"hq": "high", "mq": "medium", "lq": "low"}
SLOTS = ("hq1", "hq2", "mq1", "lq1", "lq2", "lq3", "lq4", "lq5")


class PairReader(Reader):
    name = "pair"
    description = "PAIR reflections (pair_data.csv: prompt, hq1, hq2, mq1, lq1..lq5); each response a 2-turn session"

    def sniff(self, path: Path) -> float:
        if path.is_dir() or path.suffix.lower() != ".csv":
            return 0.0
        header = csv_header(path)
        return 0.95 if header[:1] == ["prompt"] and {"hq1", "lq1"} <= set(header) else 0.0

    def read(self, path: Path, log: RejectionLog, **options: Any) -> ReadResult:
        source = str(path)
        if path.is_dir():
            raise InputError(source, "", "the pair reader takes pair_data.csv, not a folder")
        header = csv_header(path)
        slots = [c for c in header if c[:2] in QUALITY and c[2:].isdigit()]
        turns: list[Turn] = []
        sessions: list[SessionInfo] = []
        for rec in iter_csv_records(path, log, ("prompt", "hq1")):
            prompt_id = rec.row - 1
            prompt = checked_text(rec.fields["prompt"], source, rec.location, log, field="prompt")
            if prompt is None:
                continue
            for slot in slots:
                response = checked_text(rec.fields[slot], source, rec.location, log, field=slot)
                if response is None:
                    continue
                session_id = f"pair-{prompt_id:03d}-{slot}"
                origin = {"source": source, "location": rec.location}
                turns.append(Turn(course_id=session_id, session_id=session_id, turn_index=0, speaker="client",
                                  text=prompt, counsellor_is_ai=False, **origin))
                turns.append(Turn(course_id=session_id, session_id=session_id, turn_index=1, speaker="counsellor",
                                  text=response, counsellor_is_ai=False, **origin))
                sessions.append(SessionInfo(session_id, session_id, 0, source=source, meta={
                    "prompt_id": prompt_id, "response_slot": slot, "quality": QUALITY[slot[:2]]}))
        return ReadResult(turns, sessions)
