"""Train the client reaction model: how a real client's next turn moves after a counsellor reply.

Evidence: real conversations nobody on this project labelled: ESConv (Liu et al. 2021; seekers' emotion-intensity
change and empathy rating per dialogue), FailedESConv (seekers' per-turn feedback 1-5) and AnnoMI (Wu et al. 2022;
client change/sustain talk per utterance). Heads on frozen sentence embeddings; folds grouped by dialogue; seeded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance.encoders.base import Encoder
from alliance.simulate.reaction import GENERIC_BANK, GENERIC_DIRECTIONS, generic_basis, pair_features, stock_threshold

MODEL_VERSION = "2.0.0"
#: head -> (kind, what it predicts). Targets are what the real client did next or how they rated the dialogue.
HEADS: dict[str, tuple[str, str]] = {
    "engagement": ("regression", "log words of the client's next turn minus log words of the turn answered"),
    "withdrawal": ("binary", "the client's next turn is 3 words or fewer after a turn of 6 or more"),
    "feedback": ("regression", "FailedESConv seeker's per-turn feedback (1-5) on the next seeker turn"),
    "change_talk": ("binary", "AnnoMI: the client's next turn holds change talk"),
    "sustain_talk": ("binary", "AnnoMI: the client's next turn holds sustain talk"),
    "relief": ("regression", "ESConv: initial minus final emotion intensity (1-5 scale) of the dialogue"),
    "rating": ("regression", "ESConv/FailedESConv: the seeker's empathy rating (1-5) of the dialogue"),
}
RIDGE_ALPHA = 10.0
LOGISTIC_C = 0.5
#: dialogues per corpus the shipped model was fitted on: what the encoder could embed on the shared 2-core build
#: machine within the session (ESConv in file order over train/valid/test; AnnoMI by transcript id; all of
#: FailedESConv). ``alliance train reaction --all`` uses everything.
SHIPPED_LIMITS: dict[str, int | None] = {"esconv": 250, "failed_esconv": None, "annomi": 60}
#: a head needs at least this many labelled pairs (and both classes) to be fitted
MIN_LABELLED = 10


class ReactionDataError(ValueError):
    """A corpus folder or file the reaction trainer cannot use; the message names it and what is missing."""


@dataclass
class ReactionData:
    """One row per (client turn answered, counsellor reply, client's next turn), with the targets known for it."""

    pairs: pd.DataFrame  # source, dialogue, client, reply, next + one column per head (NaN where unknown)


def _blocks(turns: list[tuple[str, str, dict]]) -> list[tuple[str, str, list[dict]]]:
    """Merge consecutive turns by one speaker (chat splits a message over several lines)."""
    out: list[tuple[str, str, list[dict]]] = []
    for speaker, text, meta in turns:
        if out and out[-1][0] == speaker:
            out[-1] = (speaker, f"{out[-1][1]} {text}".strip(), [*out[-1][2], meta])
        else:
            out.append((speaker, text.strip(), [meta]))
    return out


def _pairs(source: str, dialogue: str, turns: list[tuple[str, str, dict]], session: dict[str, float]) -> list[dict]:
    blocks = _blocks(turns)
    rows = []
    for i in range(1, len(blocks) - 1):
        (s0, client, _), (s1, reply, _), (s2, nxt, nmeta) = blocks[i - 1], blocks[i], blocks[i + 1]
        if (s0, s1, s2) != ("client", "counsellor", "client"):
            continue
        n0, n2 = len(client.split()), len(nxt.split())
        fb = [m["feedback"] for m in nmeta if isinstance(m.get("feedback"), (int, float))]
        talk = [m.get("talk") for m in nmeta]
        row = {"source": source, "dialogue": dialogue, "client": client, "reply": reply, "next": nxt,
               "engagement": float(np.log1p(n2) - np.log1p(n0)),
               "withdrawal": float(n2 <= 3) if n0 >= 6 else np.nan,
               "feedback": float(np.mean(fb)) if fb else np.nan,
               "change_talk": float("change" in talk) if source == "annomi" else np.nan,
               "sustain_talk": float("sustain" in talk) if source == "annomi" else np.nan,
               **session}
        rows.append(row)
    return rows


def _esconv_records(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _esconv_session(rec: dict) -> dict[str, float]:
    seeker = (rec.get("survey_score") or {}).get("seeker") or {}

    def num(k: str) -> float:
        try:
            return float(seeker.get(k))
        except (TypeError, ValueError):
            return np.nan

    return {"relief": num("initial_emotion_intensity") - num("final_emotion_intensity"), "rating": num("empathy")}


def load_reaction_data(data_root: str | Path, sources: tuple[str, ...] = ("esconv", "failed_esconv", "annomi"),
                       limit: int | None = None, limits: dict[str, int | None] | None = None) -> ReactionData:
    """Pairs from the corpora under ``data_root`` (the shared data folder). ``limit``: dialogues per source;
    ``limits``: per source (``esconv``, ``failed_esconv``, ``annomi``), overriding ``limit``. ESConv dialogues are
    taken in file order over train, valid and test; AnnoMI sessions in transcript order."""
    root = Path(data_root)
    lim = {s: (limits or {}).get(s, limit) for s in ("esconv", "failed_esconv", "annomi")}
    rows: list[dict] = []
    roles = {"usr": "client", "sys": "counsellor", "speaker": "client", "listener": "counsellor"}
    if "esconv" in sources:
        files = [root / "esconv" / "hf_format" / f"{s}.json" for s in ("train", "valid", "test")]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            raise ReactionDataError(f"ESConv file(s) not found: {missing}")
        recs = [r for f in files for r in _esconv_records(f)][:lim["esconv"]]
        for i, rec in enumerate(recs):
            turns = [(roles.get(t.get("speaker"), "?"), str(t.get("text", "")), {}) for t in rec.get("dialog", [])]
            rows += _pairs("esconv", f"esconv-{i}", turns, _esconv_session(rec))
    if "failed_esconv" in sources:
        f = root / "esconv" / "thu-coai" / "FailedESConv.json"
        if not f.exists():
            raise ReactionDataError(f"{f} not found")
        for i, rec in enumerate(_esconv_records(f)[:lim["failed_esconv"]]):
            turns = []
            for t in rec.get("dialog", []):
                ann = t.get("annotation") or {}
                try:
                    fb = {"feedback": float(ann["feedback"])} if "feedback" in ann else {}
                except (TypeError, ValueError):
                    fb = {}
                turns.append((roles.get(t.get("speaker"), "?"), str(t.get("content", "")), fb))
            rows += _pairs("failed_esconv", f"failed-{i}", turns, _esconv_session(rec))
    if "annomi" in sources:
        f = root / "annomi" / "AnnoMI-simple.csv"
        if not f.exists():
            raise ReactionDataError(f"{f} not found")
        df = pd.read_csv(f)
        for k, (tid, g) in enumerate(df.sort_values(["transcript_id", "utterance_id"]).groupby("transcript_id")):
            if lim["annomi"] is not None and k >= lim["annomi"]:
                break
            turns = [("client" if r.interlocutor == "client" else "counsellor", str(r.utterance_text),
                      {"talk": str(r.client_talk_type)}) for r in g.itertuples(index=False)]
            rows += _pairs("annomi", f"annomi-{tid}", turns, {"relief": np.nan, "rating": np.nan})
    if not rows:
        raise ReactionDataError(f"no (client, reply, next client) triples found under {root}")
    pairs = pd.DataFrame(rows)
    pairs = pairs[(pairs["client"].str.len() > 0) & (pairs["reply"].str.len() > 0)].reset_index(drop=True)
    return ReactionData(pairs)


def encode_pairs(pairs: pd.DataFrame, encoder: Encoder, batch: int = 2048,
                 progress: Callable[[int, int], None] | None = None,
                 basis: np.ndarray | None = None) -> np.ndarray:
    """Features for every pair, encoding in batches (the encoder's cache makes a rerun cheap); ``basis``: the
    generic span to project out of the replies (default: the one of :data:`GENERIC_BANK` under this encoder)."""
    texts = pd.unique(pd.concat([pairs["client"], pairs["reply"]], ignore_index=True)).tolist()
    vecs: dict[str, np.ndarray] = {}
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        for t, v in zip(chunk, encoder.encode(chunk), strict=True):
            vecs[t] = v
        if progress:
            progress(min(start + batch, len(texts)), len(texts))
    c = np.stack([vecs[t] for t in pairs["client"]])
    r = np.stack([vecs[t] for t in pairs["reply"]])
    return pair_features(c, r, bank_basis(encoder) if basis is None else basis)


def bank_basis(encoder: Encoder) -> np.ndarray:
    """The generic-formula span under ``encoder`` (stored in the model file, so the runtime reads the same one)."""
    return generic_basis(encoder.encode(list(GENERIC_BANK)), GENERIC_DIRECTIONS)


def _folds(groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number per row; whole dialogues go to one fold, assigned by a seeded shuffle."""
    uniq = np.unique(groups)
    perm = np.random.default_rng(seed).permutation(len(uniq))
    fold_of = dict(zip(uniq[perm], np.arange(len(uniq)) % k, strict=True))
    return np.array([fold_of[g] for g in groups])


def _model(kind: str, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    if kind == "binary":
        return LogisticRegression(C=LOGISTIC_C, class_weight="balanced", max_iter=2000, random_state=seed)
    return Ridge(alpha=RIDGE_ALPHA)


def _raw(model: Any, kind: str, X: np.ndarray) -> np.ndarray:
    return model.decision_function(X) if kind == "binary" else model.predict(X)


def reply_part(model: Any, X: np.ndarray) -> np.ndarray:
    """The prediction without the client-turn block of the features: what the reply adds to what this client turn
    would lead to anyway (a long turn tends to be followed by a shorter one whatever the reply; that is not the
    reply's doing). Linear heads make the split exact."""
    d = X.shape[1] // 3
    return X[:, d:] @ np.ravel(model.coef_)[d:] + float(np.ravel([model.intercept_])[0])


def _score(kind: str, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    if kind == "binary":
        return {"auc": float(roc_auc_score(y, p)), "n": len(y), "positives": int(y.sum())}
    return {"spearman": float(spearmanr(y, p)[0]), "n": len(y)}


def out_of_fold(X: np.ndarray, pairs: pd.DataFrame, seed: int = 0, folds: int = 5,
                reply_only: bool = False, also: np.ndarray | None = None) -> Any:
    """Out-of-fold raw predictions of every head (NaN where the head's target is unknown), folds by dialogue;
    ``reply_only``: the reply's part of each prediction (:func:`reply_part`, what the simulated client uses), on
    every held-apart pair, as at runtime, where each head reads every reply (an ESConv reply gets a change-talk
    prediction too); a head's own figure is still scored on its labelled pairs only. ``also``: a second feature
    matrix (same rows) predicted by the same fold models; both frames are returned."""
    fold = _folds(pairs["dialogue"].to_numpy(), folds, seed)
    out = pd.DataFrame(np.nan, index=pairs.index, columns=list(HEADS))
    out_also = out.copy()
    for head, (kind, _) in HEADS.items():
        y = pairs[head].to_numpy(dtype=float)
        known = ~np.isnan(y)
        for f in range(folds):
            tr, te = known & (fold != f), (fold == f) & (True if reply_only else known)
            if not te.any() or tr.sum() < MIN_LABELLED or len(np.unique(y[tr])) < 2:
                continue
            m = _model(kind, seed).fit(X[tr], y[tr])
            out.loc[te, head] = reply_part(m, X[te]) if reply_only else _raw(m, kind, X[te])
            if also is not None:
                out_also.loc[te, head] = reply_part(m, also[te]) if reply_only else _raw(m, kind, also[te])
    return out if also is None else (out, out_also)


def cross_validate(X: np.ndarray, pairs: pd.DataFrame, oof: pd.DataFrame) -> dict[str, Any]:
    """Per head: the out-of-fold score per pair, and for dialogue-level targets the score of the dialogue's mean
    prediction against the dialogue's own value (what a session outcome head is for)."""
    from scipy.stats import spearmanr

    res: dict[str, Any] = {}
    for head, (kind, _) in HEADS.items():
        y = pairs[head].to_numpy(dtype=float)
        ok = ~np.isnan(y) & oof[head].notna().to_numpy()
        if ok.sum() < 10:
            continue
        res[head] = _score(kind, y[ok], oof[head].to_numpy()[ok])
        if head in ("relief", "rating"):
            d = pd.DataFrame({"g": pairs["dialogue"][ok], "y": y[ok], "p": oof[head][ok]}).groupby("g").mean()
            res[head]["dialogue_spearman"] = float(spearmanr(d["y"], d["p"])[0])
            res[head]["dialogues"] = len(d)
    return res


def fit_heads(X: np.ndarray, pairs: pd.DataFrame, seed: int = 0) -> dict[str, np.ndarray]:
    """Every head fitted on all its labelled pairs; the spread of its predictions is kept for z-scoring."""
    coef, intercept, mean, sd, kinds, fitted = [], [], [], [], [], []
    for head, (kind, _) in HEADS.items():
        y = pairs[head].to_numpy(dtype=float)
        known = ~np.isnan(y)
        kinds.append(kind)
        if known.sum() < MIN_LABELLED or len(np.unique(y[known])) < 2:
            # too few labels to learn from: the head stays at zero and says so (``fitted``), never guesses
            coef.append(np.zeros(X.shape[1]))
            intercept.append(0.0)
            mean.append(0.0)
            sd.append(1.0)
            fitted.append(False)
            continue
        m = _model(kind, seed).fit(X[known], y[known])
        p = reply_part(m, X)  # the runtime reads the reply's part only; its spread sets the z-score
        coef.append(np.ravel(m.coef_))
        intercept.append(float(np.ravel([m.intercept_])[0]))
        mean.append(float(p.mean()))
        sd.append(float(p.std()) or 1.0)
        fitted.append(True)
    return {"heads": np.array(list(HEADS)), "kinds": np.array(kinds), "coef": np.array(coef, dtype=np.float32),
            "intercept": np.array(intercept, dtype=np.float32), "pred_mean": np.array(mean, dtype=np.float32),
            "pred_sd": np.array(sd, dtype=np.float32), "fitted": np.array(fitted)}


def train_reaction(data_root: str | Path, out: str | Path, encoder: Encoder, seed: int = 0, folds: int = 5,
                   limit: int | None = None, progress: Callable[[int, int], None] | None = None,
                   limits: dict[str, int | None] | None = None) -> dict[str, Any]:
    """Load the corpora, encode, cross-validate, fit and write ``out`` (.npz), its .json record and .md card.
    ``limits``: dialogues per corpus (default :data:`SHIPPED_LIMITS`, what the shipped model used)."""
    import sklearn

    limits = dict(SHIPPED_LIMITS if limits is None and limit is None else (limits or {}))
    data = load_reaction_data(data_root, limit=limit, limits=limits)
    pairs = data.pairs
    bank = np.asarray(encoder.encode(list(GENERIC_BANK)), dtype=np.float32)
    basis = generic_basis(bank, GENERIC_DIRECTIONS)
    X = encode_pairs(pairs, encoder, progress=progress, basis=basis)
    cv = cross_validate(X, pairs, out_of_fold(X, pairs, seed, folds))
    cv_reply = cross_validate(X, pairs, out_of_fold(X, pairs, seed, folds, reply_only=True))
    arrays = fit_heads(X, pairs, seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays, generic_bank=bank, generic_directions=np.array(GENERIC_DIRECTIONS),
                        stock_threshold=np.array(stock_threshold(bank)), model_id=np.array(encoder.model_id),
                        version=np.array(MODEL_VERSION))
    record = {"model": out.name, "fitted": {str(h): bool(f) for h, f in zip(arrays["heads"], arrays["fitted"],
                                                                         strict=True)}, "version": MODEL_VERSION, "encoder": encoder.model_id, "seed": seed, "folds": folds,
              "fold_unit": "dialogue", "limit": limit,
              "limits": {k: limits.get(k, limit) for k in ("esconv", "failed_esconv", "annomi")}, "ridge_alpha": RIDGE_ALPHA, "logistic_c": LOGISTIC_C,
              "features": "[client turn, reply content, client * reply content] (3 x encoder dimension); reply "
                          f"content: the reply's embedding with the top {len(basis)} directions of "
                          f"{len(GENERIC_BANK)} generic formulas (alliance.simulate.reaction.GENERIC_BANK) projected "
                          "out, renormalised",
              "pairs": {str(k): int(v) for k, v in pairs.groupby("source").size().items()},
              "dialogues": int(pairs["dialogue"].nunique()), "heads": {h: d for h, (_, d) in HEADS.items()},
              "cross_validation": cv, "cross_validation_reply_part": cv_reply, "sklearn": sklearn.__version__}
    out.with_suffix(".json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    out.with_suffix(".md").write_text(model_card(record), encoding="utf-8")
    return record


def model_card(record: dict[str, Any]) -> str:
    """The model card, with the cross-validated figures of this very training run."""
    def table(cv: dict[str, Any]) -> str:
        lines = []
        for head, sc in cv.items():
            fig = (f"AUC {sc['auc']:.3f} ({sc['n']} pairs, {sc['positives']} positive)" if "auc" in sc
                   else f"Spearman {sc['spearman']:.3f} ({sc['n']} pairs)")
            if "dialogue_spearman" in sc:
                fig += f"; dialogue mean: Spearman {sc['dialogue_spearman']:.3f} ({sc['dialogues']} dialogues)"
            lines.append(f"| `{head}` | {record['heads'][head]} | {fig} |")
        return "\n".join(lines)

    pairs = ", ".join(f"{k} {v}" for k, v in record["pairs"].items())
    len_bank = len(GENERIC_BANK)
    return f"""# Model card: {record['model']} (alliance client reaction model {record['version']})

**What it is.** Seven linear heads on frozen `{record['encoder']}` embeddings that read a client turn and the
counsellor reply to it, as `{record['features']}`, and predict how the client's next turn moves and how the client
rated the conversation. The simulated client (`alliance.simulate`) and `alliance.rewards` use it for appraisal in
place of the project's own lenses, so a bot cannot score by pleasing the measures that also judge it.

**Reading the reply beyond stock formulas** (new in 2.0.0, against the gaming of issue 17). The reply's embedding
enters with the span of {len_bank} generic counselling formulas (`alliance.simulate.reaction.GENERIC_BANK`: "That
sounds really tough.", "I'm here for you.", "Can you tell me more about that?", ...; its top singular directions)
projected out and renormalised, so what a reply says about this client, not how empathic it sounds, carries the
prediction. At runtime a reply is also appraised without its formula sentences (a sentence as close to the bank as
bank entries are to one another, by embedding cosine, or with fewer than two content words), and the lower of the
two readings counts; a reply that is all formula earns no credit. Appending any formula therefore never raises a
reply, whatever its wording (tested with phrases outside the bank).

**Heads fitted.** {", ".join(h for h, f in record["fitted"].items() if f)}; not fitted (too few labels):
{", ".join(h for h, f in record["fitted"].items() if not f) or "none"}. Subset used: {record["limits"]} dialogues per
corpus (None = all).

**Training data** (labels nobody on this project wrote; pairs: {pairs}; {record['dialogues']} dialogues):
ESConv (Liu et al. 2021, CC BY-NC 4.0; seeker survey per dialogue), FailedESConv (thu-coai, CC BY-NC 4.0; seeker
feedback 1-5 per turn), AnnoMI (Wu et al. 2022, public domain; client change/sustain talk per utterance). No text of
these corpora is stored in the weights file: only linear coefficients over embedding dimensions.

**Licence.** Fitted on CC BY-NC 4.0 data: the weights are for non-commercial research use, with attribution to the
ESConv authors (Liu et al., ACL 2021) and AnnoMI (Wu et al., ICASSP 2022).

**Procedure.** scikit-learn Ridge (alpha {record['ridge_alpha']}) for graded targets and
LogisticRegression (C {record['logistic_c']}, balanced classes) for binary ones, seed {record['seed']}. Figures are
out-of-fold from a {record['folds']}-fold split by {record['fold_unit']} (no dialogue in two folds); the shipped
coefficients are then fitted on all pairs. Reproduce with `alliance train reaction --seed {record['seed']}`.

| head | target | cross-validated, whole model |
|---|---|---|
{table(record['cross_validation'])}

The simulated client reads only **the reply's part** of each head (the client-turn block of the features left out:
what a turn predicts about the next one whatever the reply, such as a long turn being followed by a shorter one, is
not the reply's doing). Its figures, same folds (each head scored on its own labelled pairs):

| head | target | cross-validated, reply's part |
|---|---|---|
{table(record['cross_validation_reply_part'])}

**Intended use.** Appraising counsellor replies inside simulated clients and training rewards; comparing bots
relative to one another. Not a measure of a real client's state, not for clinical decisions.

**Known limits.** Text chat in English (ESConv, FailedESConv) and transcribed MI sessions (AnnoMI); KokoroChat's
client reviews are not used in this version, nor the rest of ESConv (`--all`; the shared build machine could not
embed it within the session). The dialogue-level heads (`relief`, `rating`) learn from one label per
dialogue spread over its replies, so they mostly recognise the kind of conversation, not single replies. Engagement
is measured by length, which rewards replies that invite talk whatever their quality; the simulated client adds the
persona's own reactions (risk, hidden intention, repetition) on top (docs/simulate.md).
"""
