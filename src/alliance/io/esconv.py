"""ESConv emotional-support conversations (and FailedESConv), in both published schemas.

HF schema (``hf_format/{train,valid,test}.json``): one dialogue per line, turns ``{"speaker": "usr"|"sys", "text",
"strategy"?}``. Original thu-coai schema (``ESConv.json``, ``FailedESConv.json``): a JSON list, turns
``{"speaker": "speaker"|"listener", "content", "annotation": {"strategy"?, "feedback"?}}``, where ``speaker``
is the help-seeker and ``listener`` the supporter. Survey scores become numeric session metadata; the
supporter's strategy and the seeker's per-turn feedback stay on each turn.

Source: Liu et al., "Towards Emotional Support Dialog Systems", ACL 2021 (github.com/thu-coai/Emotional-Support-
Conversation); FailedESConv released there in 2024.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alliance.corpus import SessionInfo, Turn
from alliance.io.base import InputError, Reader, ReadResult, RejectionLog, head_text, normalise_role
from alliance.io.jsonfile import head_json_objects, iter_json_records
from alliance.io.values import checked_text, to_label, to_number

#: In the original schema the role names are the seeker ("speaker") and the supporter ("listener").
ORIGINAL_ROLES = {"speaker": "client", "listener": "counsellor", "seeker": "client", "supporter": "counsellor"}
HF_ROLES = {"usr": "client", "sys": "counsellor"}
#: Free-text dialogue fields copied to session metadata as they are.
TEXT_FIELDS = ("emotion_type", "problem_type", "experience_type", "situation", "seeker_question1",
               "seeker_question2", "supporter_question1", "supporter_question2")


class ESConvReader(Reader):
    name = "esconv"
    description = ("ESConv / FailedESConv emotional-support dialogues (HF JSON lines with usr/sys, or the "
                   "original thu-coai JSON list with speaker/listener)")

    def sniff(self, path: Path) -> float:
        if path.is_dir() or path.suffix.lower() not in (".json", ".jsonl"):
            return 0.0
        # HF files are JSON lines: the first readable ones decide, past a broken or over-long first line.
        for obj in head_json_objects(path, n=3):
            if isinstance(obj, dict) and isinstance(obj.get("dialog"), list):
                return 0.95 if obj.keys() & {"emotion_type", "problem_type", "survey_score", "situation"} else 0.5
        head = head_text(path, 8192)
        if '"dialog"' not in head or '"speaker"' not in head:
            return 0.0
        if any(k in head for k in ('"emotion_type"', '"problem_type"', '"survey_score"', '"situation"')):
            return 0.95
        return 0.5

    def read(self, path: Path, log: RejectionLog, **options: Any) -> ReadResult:
        if path.is_dir():
            raise InputError(str(path), "", "the esconv reader takes a .json file, not a folder; pass the files")
        source = str(path)
        split = path.stem
        failed = "failed" in split.lower()
        turns: list[Turn] = []
        sessions: list[SessionInfo] = []
        for n, loc, record in _records(path, log):
            session_id = f"esconv-{split}-{n:04d}"
            parsed = _dialogue(record, session_id, source, loc, log)
            if parsed is None:
                continue
            dialogue_turns, meta, schema = parsed
            meta.update({"split": split, "schema": schema, "record": n})
            if failed:
                meta["failed"] = True
            turns.extend(dialogue_turns)
            sessions.append(SessionInfo(session_id, session_id, 0, source=source, meta=meta))
        return ReadResult(turns, sessions)


def _records(path: Path, log: RejectionLog) -> Iterator[tuple[int, str, Any]]:
    """``(record number, location, record)``: a JSON list's items, or one dialogue per line."""
    yield from iter_json_records(path, log, "dialogues")


def _dialogue(record: Any, session_id: str, source: str, loc: str,
              log: RejectionLog) -> tuple[list[Turn], dict[str, Any], str] | None:
    if not isinstance(record, dict):
        log.reject(source, loc, f"expected a JSON object, got {type(record).__name__}", None, record)
        return None
    dialog = record.get("dialog")
    if not isinstance(dialog, list):
        log.reject(source, loc, "missing 'dialog' list" if dialog is None else
                   f"'dialog' must be a list, got {type(dialog).__name__}", "dialog", _short(record))
        return None
    if not dialog:
        log.reject(source, loc, "the dialogue has no turns ('dialog' is empty)", "dialog", _short(record))
        return None
    meta: dict[str, Any] = {}
    for key in TEXT_FIELDS:
        value = to_label(record.get(key)) if isinstance(record.get(key), str) else record.get(key)
        if value is not None:
            meta[key] = value
    survey = record.get("survey_score")
    if survey is not None:
        scores = _survey(survey, source, loc, log)
        if scores is None:
            return None
        meta.update(scores)
    original = any(isinstance(t, dict) and ("content" in t or "annotation" in t) for t in dialog)
    schema = "original" if original else "hf"
    roles = ORIGINAL_ROLES if original else HF_ROLES
    turns: list[Turn] = []
    for i, t in enumerate(dialog):
        tloc = f"{loc}, dialog[{i}]"
        if not isinstance(t, dict):
            log.reject(source, tloc, f"expected a JSON object, got {type(t).__name__}", None, t)
            continue
        role = normalise_role(t.get("speaker"), source, tloc, log, mapping=roles)
        if role is None:
            continue
        text = checked_text(t.get("content" if original else "text"), source, tloc, log,
                            field="content" if original else "text")
        if text is None:
            continue
        tmeta = _turn_labels(t, original, source, tloc, log)
        if tmeta is None:
            continue
        turns.append(Turn(course_id=session_id, session_id=session_id, turn_index=i, speaker=role, text=text,
                          counsellor_is_ai=False, meta=tmeta, source=source, location=tloc))
    return turns, meta, schema


def _survey(survey: Any, source: str, loc: str, log: RejectionLog) -> dict[str, Any] | None:
    """Seeker scores keep their names (``empathy``, ``relevance``, ...); the supporter's get ``supporter_``."""
    if not isinstance(survey, dict):
        log.reject(source, loc, f"'survey_score' must be an object, got {type(survey).__name__}", "survey_score",
                   survey)
        return None
    out: dict[str, Any] = {}
    for side, prefix in (("seeker", ""), ("supporter", "supporter_")):
        scores = survey.get(side) or {}
        if not isinstance(scores, dict):
            log.reject(source, loc, f"must be an object, got {type(scores).__name__}", f"survey_score.{side}",
                       scores)
            return None
        for key, value in scores.items():
            try:
                number = to_number(value)
            except ValueError as e:
                log.reject(source, loc, str(e), f"survey_score.{side}.{key}", value)
                return None
            if number is not None:
                out[prefix + key] = number
    return out


def _turn_labels(t: dict, original: bool, source: str, loc: str, log: RejectionLog) -> dict[str, Any] | None:
    labels = t.get("annotation") if original else t
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        log.reject(source, loc, f"'annotation' must be an object, got {type(labels).__name__}", "annotation",
                   labels)
        return None
    out: dict[str, Any] = {}
    strategy = to_label(labels.get("strategy"))
    if strategy is not None:
        out["strategy"] = strategy
    if "feedback" in labels:
        try:
            feedback = to_number(labels["feedback"])
        except ValueError as e:
            log.reject(source, loc, str(e), "annotation.feedback", labels["feedback"])
            return None
        if feedback is not None:
            out["feedback"] = feedback
    return out


def _short(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, default=str)[:500]
