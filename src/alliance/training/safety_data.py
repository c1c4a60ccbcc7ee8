"""Readers for the safety sources and the ordinary-talk corpora, as flat tables the safety trainer can fit on.

Evidence: the sources' own labels only (Between Help and Harm silver categories, DiaSafety human Safe/Unsafe, Reddit
C-SSRS clinician levels, OpenAI moderation flags, XSTest contrasts); every mapping onto the lens's scheme is here.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

#: Between Help and Harm label -> (lens category, counts as high-or-imminent risk?) ; None = not a risk category
BHH_MAP: dict[str, tuple[str, bool | None]] = {
    "suicidal_ideation": ("suicide", True),
    "self-harm": ("self_harm", True),
    "violent_thoughts": ("harm_to_others", True),
    # crises the lens files as plans that endanger the client: category kept, but not 'high' on their own
    "substance_abuse_or_withdrawal": ("endangering_plan", None),
    "risk_taking_behaviours": ("endangering_plan", None),
    # an acute panic is a crisis but not a risk of harm: neither a positive nor a clean negative
    "anxiety_crisis": ("", None),
    "no_crisis": ("", False),
}
#: Reddit C-SSRS level -> ordinal (Gaur et al. 2019); compared with the lens's level by Spearman, per user
CSSRS_ORDER: dict[str, int] = {"Supportive": 0, "Indicator": 1, "Ideation": 2, "Behavior": 3, "Attempt": 4}
#: training texts longer than this are cut (the encoder reads 256 word pieces anyway; this keeps encoding cheap)
MAX_CHARS = 1000


class SafetyDataError(ValueError):
    """A safety source that is missing or not in the layout its README describes; the message names the file."""


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _need(path: Path) -> Path:
    if not path.exists():
        raise SafetyDataError(f"{path}: not found (is --data the folder holding the safety sources, e.g. "
                              "../shared/data/safety?)")
    return path


def load_bhh(root: Path, max_messages: int = 8) -> pd.DataFrame:
    """One row per user message: ``item`` (group: same text = same item), ``pos`` in the item, the item's silver
    ``label``, ``category`` and ``risk`` (True/False/NA). Long items keep their first and last messages."""
    folder = _need(root / "between_help_and_harm")
    files = sorted(folder.glob("*.json"))
    if not files:
        raise SafetyDataError(f"{folder}: no .json file")
    try:
        items = json.loads(files[0].read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SafetyDataError(f"{files[0]}: invalid JSON at line {e.lineno}: {e.msg}") from None
    rows = []
    for n, it in enumerate(items):
        msgs = [m for m in (it.get("inputs") or []) if isinstance(m, str) and m.strip()]
        label = it.get("label")
        if label not in BHH_MAP or not msgs:
            continue
        cat, risk = BHH_MAP[label]
        item = _hash("\n".join(msgs))
        keep = list(range(len(msgs)))
        if len(keep) > max_messages:
            half = max_messages // 2
            keep = keep[:half] + keep[-half:]
        for k in keep:
            rows.append({"source": "bhh", "record": n, "item": item, "pos": k, "text": msgs[k][:MAX_CHARS],
                         "label": label, "category": cat, "risk": risk, "dataset_id": it.get("dataset_id", "")})
    return pd.DataFrame(rows)


def load_diasafety(root: Path) -> pd.DataFrame:
    """(context, response) pairs of Risk Ignorance and Unauthorized Expertise with ``unsafe`` and ``split``."""
    rows = []
    for split in ("train", "val"):
        path = _need(root / "diasafety" / f"{split}.json")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise SafetyDataError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
        for n, r in enumerate(doc):
            if r.get("category") not in ("Risk Ignorance", "Unauthorized Expertise") or r.get("label") not in (
                    "Safe", "Unsafe"):
                continue
            ctx, resp = str(r.get("context") or "").strip(), str(r.get("response") or "").strip()
            if not ctx or not resp:
                continue  # two train records have no response: nothing to judge
            rows.append({"split": split, "record": n, "context": ctx[:MAX_CHARS], "response": resp[:MAX_CHARS],
                         "category": r["category"], "unsafe": r["label"] == "Unsafe", "group": _hash(ctx)})
    return pd.DataFrame(rows)


def load_cssrs(root: Path, max_posts: int = 4) -> pd.DataFrame:
    """One row per kept post (a user's first ``max_posts``), with the user's clinician ``label`` and ``order``."""
    path = _need(root / "cssrs_reddit" / "500_Reddit_users_posts_labels.csv")
    csv.field_size_limit(1 << 30)
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        for line, r in enumerate(csv.DictReader(fh), start=2):
            label = (r.get("Label") or "").strip()
            if label not in CSSRS_ORDER:
                continue
            raw = r.get("Post") or ""
            try:
                posts = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                # some cells stop at 32,759 characters (README): keep what parses, a quoted post at a time
                posts = [p for p in raw.strip("[]").split("', '") if p.strip()]
            posts = [str(p).strip(" '\"") for p in posts if str(p).strip()][:max_posts]
            for k, p in enumerate(posts):
                rows.append({"source": "cssrs", "user": r.get("User", f"line{line}"), "pos": k,
                             "text": p[:MAX_CHARS], "label": label, "order": CSSRS_ORDER[label]})
    return pd.DataFrame(rows)


def load_moderation(root: Path) -> pd.DataFrame:
    """Texts with a known self-harm flag: ``sh`` (self-harm content) and ``v`` (violence), humans' labels."""
    path = _need(root / "openai_moderation" / "samples-1680.jsonl")
    rows = []
    for line, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            r = json.loads(raw)
        except json.JSONDecodeError as e:
            raise SafetyDataError(f"{path}:{line}: invalid JSON: {e.msg}") from None
        if r.get("SH") not in (0, 1) or not str(r.get("prompt") or "").strip():
            continue
        text = str(r["prompt"]).strip()
        rows.append({"source": "moderation", "line": line, "text": text[:MAX_CHARS], "sh": bool(r["SH"]),
                     "v": bool(r.get("V") or 0), "group": _hash(text)})
    return pd.DataFrame(rows)


def load_xstest(root: Path) -> pd.DataFrame:
    """XSTest prompts with ``safe`` and a ``group`` that keeps each contrast prompt with its safe twin (id - 25)."""
    path = _need(root / "xstest" / "xstest_prompts.csv")
    df = pd.read_csv(path)
    for c in ("id", "prompt", "type", "label"):
        if c not in df:
            raise SafetyDataError(f"{path}: column {c!r} missing")
    contrast = df["type"].astype(str).str.startswith("contrast_")
    pair = np.where(contrast, df["id"].astype(int) - 25, df["id"].astype(int))
    return pd.DataFrame({"source": "xstest", "text": df["prompt"].astype(str), "safe": df["label"] == "safe",
                         "type": df["type"].astype(str), "group": [f"xstest{p}" for p in pair]})


def load_ordinary(data_root: Path, per_corpus: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Client turns of ordinary counselling talk (AnnoMI, ESConv, KokoroChat English), a seeded sample per corpus,
    with the session as ``group``, the preceding turn's text as ``prev`` and, for AnnoMI, the counsellor's reply as
    ``next`` ("" when none). No risk labels: the false-alarm set, and ordinary replies for the reply heads."""
    frames = []
    annomi = data_root / "annomi" / "AnnoMI-full.csv"
    if annomi.exists():
        df = pd.read_csv(annomi, usecols=["transcript_id", "utterance_id", "interlocutor", "utterance_text",
                                          "annotator_id"])
        first = df.groupby("transcript_id")["annotator_id"].transform("min")
        df = df[df["annotator_id"] == first].sort_values(["transcript_id", "utterance_id"])
        df["prev"] = df.groupby("transcript_id")["utterance_text"].shift(1)
        nxt = df.groupby("transcript_id")["utterance_text"].shift(-1)
        df["next"] = nxt.where(df.groupby("transcript_id")["interlocutor"].shift(-1) == "therapist")
        df = df[df["interlocutor"] == "client"]
        frames.append(pd.DataFrame({"source": "annomi", "group": "annomi-" + df["transcript_id"].astype(str),
                                    "text": df["utterance_text"].fillna("").astype(str),
                                    "prev": df["prev"].fillna("").astype(str),
                                    "next": df["next"].fillna("").astype(str)}))
    esconv = data_root / "esconv" / "hf_format"
    if esconv.is_dir():
        rows = []
        for f in sorted(esconv.glob("*.json")):
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines()):
                if not line.strip():
                    continue
                d = json.loads(line)
                prev = ""
                for t in d.get("dialog", []):
                    if t.get("speaker") == "usr":
                        rows.append({"source": "esconv", "group": f"esconv-{f.stem}-{n}", "text": str(t.get("text", "")),
                                     "prev": prev})
                    prev = str(t.get("text", ""))
        frames.append(pd.DataFrame(rows))
    kokoro = data_root / "kokorochat_en" / "English"
    if kokoro.is_dir():
        rows = []
        for f in sorted(kokoro.glob("*.json")):
            try:
                d = json.loads(f.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                continue
            prev = ""
            for t in d.get("dialogue", []):
                if t.get("role") == "client":
                    rows.append({"source": "kokorochat", "group": f"kokoro-{f.stem}", "text": str(t.get("content", "")),
                                 "prev": prev})
                prev = str(t.get("content", ""))
        frames.append(pd.DataFrame(rows))
    if not frames:
        raise SafetyDataError(f"{data_root}: none of annomi/, esconv/, kokorochat_en/ found (ordinary talk)")
    out = []
    for f in frames:
        f = f[f["text"].str.strip().str.len() > 0]
        # sample whole sessions' turns evenly: a fixed number of turns, seeded
        out.append(f.sample(n=min(per_corpus, len(f)), random_state=seed) if len(f) > per_corpus else f)
    res = pd.concat(out, ignore_index=True)
    res["text"] = res["text"].str.slice(0, MAX_CHARS)
    res["next"] = res.get("next", pd.Series("", index=res.index)).fillna("").astype(str).str.slice(0, MAX_CHARS)
    return res
