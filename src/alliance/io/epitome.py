"""EPITOME empathy annotations of Reddit support (seeker post, response) pairs, each pair a 2-turn session.

The folder holds one CSV per empathy mechanism (``emotional-reactions-reddit.csv``, ``interpretations-reddit.csv``,
``explorations-reddit.csv``) over the same pairs, columns ``sp_id, rp_id, seeker_post, response_post, level,
rationales``. Each mechanism's level (0 none, 1 weak, 2 strong) and its rationale spans (``|``-separated) go on
the response turn's metadata. Pairs that are annotated more than once keep the first annotation as the label and
the others under ``other_annotations``.

Source: Sharma et al., "A Computational Approach to Understanding Empathy Expressed in Text-Based Mental Health
Support", EMNLP 2020.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from alliance.corpus import SessionInfo, Turn
from alliance.io.base import InputError, OptionError, Reader, ReadResult, RejectionLog
from alliance.io.csvfile import csv_header, iter_csv_records
from alliance.io.values import checked_text, to_number

COLUMNS = ("sp_id", "rp_id", "seeker_post", "response_post", "level", "rationales")
MECHANISMS = ("emotional_reactions", "interpretations", "explorations")
TEXT_PREFERENCE = ("interpretations", "explorations", "emotional_reactions")
#: File-name fragments that say which mechanism a CSV annotates.
NAME_HINTS = {"emotional": "emotional_reactions", "interpret": "interpretations", "explor": "explorations"}


class EpitomeReader(Reader):
    name = "epitome"
    description = ("EPITOME empathy pairs: a folder with the three mechanism CSVs (or one of them); each "
                   "(seeker post, response) is a 2-turn session")

    def sniff(self, path: Path) -> float:
        files = _mechanism_files(path) if path.is_dir() else [path]
        if not files:
            return 0.0
        return 0.95 if all(set(COLUMNS) <= set(csv_header(f)) for f in files) else 0.0

    def read(self, path: Path, log: RejectionLog, mechanism: str | None = None, **options: Any) -> ReadResult:
        files = _mechanism_files(path) if path.is_dir() else [path]
        if not files:
            raise InputError(str(path), "", "no EPITOME CSV files (with columns "
                             f"{', '.join(COLUMNS)}) in this folder")
        if mechanism is not None and mechanism not in MECHANISMS:
            raise OptionError(str(path), "", f"unknown mechanism {mechanism!r}; one of {MECHANISMS}", "mechanism")
        # (sp_id, rp_id) -> one entry per time the pair appears in a file, in order of appearance.
        pairs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        order: list[tuple[str, str]] = []
        for f in files:
            mech = mechanism if (mechanism and len(files) == 1) else _mechanism_of(f)
            if mech is None:
                raise InputError(str(f), "", "cannot tell the empathy mechanism from the file name; name it "
                                 "emotional-reactions/interpretations/explorations or pass mechanism=", "mechanism")
            occurrence: dict[tuple[str, str], int] = defaultdict(int)
            for rec in iter_csv_records(f, log, COLUMNS):
                row = _row(rec.fields, str(f), rec.location, log)
                if row is None:
                    continue
                key = (row["sp_id"], row["rp_id"])
                k = occurrence[key]
                occurrence[key] += 1
                entries = pairs[key]
                if not entries:
                    order.append(key)
                if k == len(entries):
                    entries.append({"seeker": row["seeker"], "response": row["response"], "labels": {},
                                    "source": str(f), "location": rec.location})
                entry = entries[k]
                # The ids name the pair. The emotional-reactions file spells some texts slightly differently
                # (whitespace collapsed, the word "Reddit" removed), so its copy is read last and not compared.
                entry["labels"][mech] = row["level"]
                entry["labels"][f"{mech}_rationales"] = row["rationales"]
        turns: list[Turn] = []
        sessions: list[SessionInfo] = []
        for key in order:
            first, *others = pairs[key]
            session_id = f"epitome-{key[0]}-{key[1]}"
            response_meta = dict(first["labels"])
            if others:
                response_meta["other_annotations"] = [o["labels"] for o in others]
            origin = {"source": first["source"], "location": first["location"]}
            turns.append(Turn(course_id=session_id, session_id=session_id, turn_index=0, speaker="client",
                              text=first["seeker"], counsellor_is_ai=False, meta={"post_id": key[0]}, **origin))
            turns.append(Turn(course_id=session_id, session_id=session_id, turn_index=1, speaker="counsellor",
                              text=first["response"], counsellor_is_ai=False,
                              meta={"post_id": key[1], **response_meta}, **origin))
            sessions.append(SessionInfo(session_id, session_id, 0, source=first["source"],
                                        meta={"sp_id": key[0], "rp_id": key[1], "n_annotations": 1 + len(others)}))
        return ReadResult(turns, sessions)


def _mechanism_files(folder: Path) -> list[Path]:
    # The first file holding a pair gives its text: interpretations and explorations keep the posts as
    # published, the emotional-reactions file has them lightly normalised.
    found = [f for f in folder.glob("*.csv") if _mechanism_of(f) is not None]
    return sorted(found, key=lambda f: (TEXT_PREFERENCE.index(_mechanism_of(f) or ""), f.name))


def _mechanism_of(f: Path) -> str | None:
    name = f.name.lower()
    return next((m for hint, m in NAME_HINTS.items() if hint in name), None)


def _row(fields: dict[str, str], source: str, loc: str, log: RejectionLog) -> dict[str, Any] | None:
    sp, rp = fields["sp_id"].strip(), fields["rp_id"].strip()
    for name, value in (("sp_id", sp), ("rp_id", rp)):
        if not value:
            log.reject(source, loc, f"{name} is empty", name, fields)
            return None
    seeker = checked_text(fields["seeker_post"], source, loc, log, field="seeker_post")
    if seeker is None:
        return None
    response = checked_text(fields["response_post"], source, loc, log, field="response_post")
    if response is None:
        return None
    try:
        level = to_number(fields["level"])
        if level not in (0, 1, 2):
            raise ValueError(f"expected 0, 1 or 2, got {fields['level']!r}")
    except ValueError as e:
        log.reject(source, loc, str(e), "level", fields)
        return None
    spans = [s.strip() for s in fields["rationales"].split("|") if s.strip()]
    return {"sp_id": sp, "rp_id": rp, "seeker": seeker, "response": response, "level": level, "rationales": spans}
