"""AnnoMI motivational-interviewing transcripts (``AnnoMI-simple.csv`` and ``AnnoMI-full.csv``), one row per utterance.

Session labels (``mi_quality`` high/low, topic, video) become session metadata; the expert utterance codes (main
therapist behaviour, client talk type, and in the full file reflection/question/input subtypes) become turn
metadata. The full file annotates 7 sessions by several annotators (one row per annotator and utterance): the
row of the lowest ``annotator_id`` is the turn's label, the others are kept in ``other_annotations``.

Source: Wu et al., "Anno-MI: A Dataset of Expert-Annotated Counselling Dialogues", ICASSP 2022; Wu et al.,
"Creation, Analysis and Evaluation of AnnoMI", Future Internet 15(3) 110, 2023.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from alliance.corpus import SessionInfo, Turn
from alliance.io.base import InputError, Reader, ReadResult, RejectionLog, check_index, normalise_role
from alliance.io.csvfile import CsvRecord, csv_header, iter_csv_records
from alliance.io.values import checked_text, to_bool, to_label, to_number

REQUIRED = ("transcript_id", "utterance_id", "interlocutor", "utterance_text")
SESSION_FIELDS = ("mi_quality", "topic", "video_title", "video_url")
#: Utterance codes of both files (labels), and the full file's extra ones; "n/a" means "not applicable".
LABELS = ("main_therapist_behaviour", "client_talk_type", "therapist_input_subtype", "reflection_subtype",
          "question_subtype")
FLAGS = ("therapist_input_exists", "reflection_exists", "question_exists")
ROLES = {"therapist": "counsellor", "client": "client"}


class AnnoMIReader(Reader):
    name = "annomi"
    description = "AnnoMI CSV (AnnoMI-simple.csv or AnnoMI-full.csv): MI transcripts with utterance codes"

    def sniff(self, path: Path) -> float:
        if path.is_dir() or path.suffix.lower() != ".csv":
            return 0.0
        header = set(csv_header(path))
        if set(REQUIRED) <= header and "mi_quality" in header:
            return 0.95
        return 0.0

    def read(self, path: Path, log: RejectionLog, **options: Any) -> ReadResult:
        if path.is_dir():
            raise InputError(str(path), "", "the annomi reader takes a .csv file, not a folder")
        source = str(path)
        # Collect every annotation of an utterance first: in the full file they are separate rows.
        rows: dict[tuple[str, int], list[tuple[CsvRecord, dict[str, Any]]]] = defaultdict(list)
        sessions: dict[str, dict[str, Any]] = {}
        for rec in iter_csv_records(path, log, REQUIRED):
            parsed = _row(rec, source, log)
            if parsed is None:
                continue
            tid, uid, row = parsed
            rows[(tid, uid)].append((rec, row))
            if tid not in sessions:
                sessions[tid] = {"transcript_id": _maybe_int(tid), **{
                    k: v for k in SESSION_FIELDS if (v := to_label(rec.fields.get(k))) is not None}}
        turns: list[Turn] = []
        for (tid, uid), rows_of_utterance in rows.items():
            # The lowest annotator id is the reference annotation, the rest stay alongside it.
            rows_of_utterance.sort(key=lambda a: (a[1]["labels"].get("annotator_id", -1), a[0].row))
            rec, first = rows_of_utterance[0]
            others = []
            for other_rec, other in rows_of_utterance[1:]:
                if other["text"] != first["text"] or other["speaker"] != first["speaker"]:
                    log.reject(source, other_rec.location, f"utterance {uid} of transcript {tid} appears again with "
                               f"a different text or speaker than on {rec.location}", "utterance_text",
                               other_rec.fields)
                    continue
                if "annotator_id" not in other["labels"]:
                    log.reject(source, other_rec.location, f"utterance {uid} of transcript {tid} appears twice "
                               "(duplicate turn key) and there is no annotator_id to tell the rows apart",
                               "utterance_id", other_rec.fields)
                    continue
                # Timing belongs to the utterance, not to the annotator; keep only the labels.
                others.append({k: v for k, v in other["labels"].items() if k not in ("video_timestamp", "offset_s")})
            meta = dict(first["labels"])
            if others:
                meta["other_annotations"] = others
            session_id = f"annomi-{tid}"
            turns.append(Turn(course_id=session_id, session_id=session_id, turn_index=uid,
                              speaker=first["speaker"], text=first["text"], counsellor_is_ai=False, meta=meta,
                              source=source, location=rec.location))
        infos = [SessionInfo(f"annomi-{tid}", f"annomi-{tid}", 0, source=source, meta=m) for tid, m in sessions.items()]
        return ReadResult(turns, infos)


def _row(rec: CsvRecord, source: str, log: RejectionLog) -> tuple[str, int, dict[str, Any]] | None:
    f, loc = rec.fields, rec.location
    tid = f["transcript_id"].strip()
    if not tid:
        log.reject(source, loc, "transcript_id is empty", "transcript_id", f)
        return None
    uid = check_index(f["utterance_id"], source, loc, log, "utterance_id")
    if uid is None:
        return None
    speaker = normalise_role(f["interlocutor"], source, loc, log, mapping=ROLES, field="interlocutor")
    if speaker is None:
        return None
    text = checked_text(f["utterance_text"], source, loc, log, field="utterance_text")
    if text is None:
        return None
    labels: dict[str, Any] = {}
    for key in LABELS:
        if key in f and (v := to_label(f[key])) is not None:
            labels[key] = v
    for key in (*FLAGS, "annotator_id"):
        if key not in f:
            continue
        try:
            value = to_bool(f[key]) if key in FLAGS else to_number(f[key])
        except ValueError as e:
            log.reject(source, loc, str(e), key, f)
            return None
        if value is not None:
            labels[key] = value
    if "timestamp" in f and (stamp := to_label(f["timestamp"])) is not None:
        labels["video_timestamp"] = stamp
        offset = _offset_seconds(stamp)
        if offset is None:
            log.reject(source, loc, f"unreadable timestamp {stamp!r}; expected hh:mm:ss", "timestamp", f)
            return None
        labels["offset_s"] = offset
    return tid, uid, {"speaker": speaker, "text": text, "labels": labels}


def _offset_seconds(stamp: str) -> int | None:
    """``hh:mm:ss`` (or ``mm:ss``) into the video, as seconds. Tolerates a zero-padded extra digit (``00:09:025``)
    since the value is still unambiguous."""
    parts = stamp.split(":")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p)
    return seconds


def _maybe_int(value: str) -> int | str:
    return int(value) if value.isdigit() else value
