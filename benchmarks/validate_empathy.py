"""Validate the empathy lens: EPITOME grouped cross-validation, PAIR reflection ranking, and scoring speed.

Evidence: EPITOME dev split (Sharma et al. 2020) and PAIR (Min et al. 2022) from ../shared/data (or $ALLIANCE_DATA).

Usage::

    PYTHONPATH=src python benchmarks/validate_empathy.py [--data DIR] [--seed 0] [--compare] [--cross]
        [--speed-turns 200] [--only epitome|pair|speed]

1. EPITOME: macro-F1 and accuracy per mechanism, 5-fold cross-validation grouped by seeker post (sp_id), with the
   default model recipe (``alliance.training.empathy.DEFAULT_VARIANT``), scored by the lens's own inference path
   (long replies pooled over sentence windows). ``--compare`` also prints the variants the recipe was chosen from
   (the chosen one's figure is then slightly optimistic: it was picked on these folds).
2. PAIR (a test set, never used to train or tune): the shipped model scores each of the 8 replies with its prompt
   as the client's words. The per-reply score was fixed before PAIR was looked at:
   primary = expected level summed over the three mechanisms (0-6, ``PairScores.total``; PARTNER's sum of levels);
   secondary = expected interpretation level alone (a reflection is an interpretation in EPITOME's terms);
   and, for comparison, the behaviour lens's MITI reflection level (2 P(complex) + P(simple)), the construct PAIR
   grades, trained on AnnoMI only.
   Per prompt: share of the 10 (high, low) pairs ordered correctly (ties count one half), averaged over prompts;
   and the share of prompts with mean(high) > medium > mean(low).
3. Speed: counsellor turns scored per second by the whole lens (encoding, context, windows, rationales by
   occlusion), against the encoder's own throughput on the same turn texts, both without the embedding cache.

``--cross`` adds the cross-encoder (``EmpathyLens(model="cross")``): in 1, its 5-fold cross-validation on the same
folds (lower layers cached once, LoRA on the top layer trained per fold, early stopping on an inner split of the
training fold), with each level's F1 beside the linear heads'; in 3, its counsellor turns per CPU second with and
without rationales against the encoder's texts per CPU second on the same texts in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def data_dir(arg: str | None) -> Path:
    d = Path(arg or os.environ.get("ALLIANCE_DATA") or ROOT.parent / "shared" / "data")
    if not d.is_dir():
        sys.exit(f"research data not found at {d}; pass --data or set ALLIANCE_DATA")
    return d


def epitome(d: Path, seed: int, compare: bool, cross: bool = False) -> None:
    from alliance.encoders import load_encoder
    from alliance.training.empathy import (
        COMPARED_VARIANTS,
        DEFAULT_VARIANT,
        EncodedPairs,
        cross_validate,
        load_epitome,
    )
    from alliance.training.empathy_cross import level_scores

    df = load_epitome(d / "epitome")
    data = EncodedPairs.from_frame(df, load_encoder())
    print(f"EPITOME dev split: {len(df)} pairs, {df['sp_id'].nunique()} seeker posts; 5-fold CV grouped by sp_id, "
          f"seed {seed}")
    variants = [*COMPARED_VARIANTS] if compare else [DEFAULT_VARIANT]
    for v in variants:
        res = cross_validate(data, v, 5, seed)
        mark = "*" if v == DEFAULT_VARIANT else " "
        cells = "  ".join(f"{m.upper()} macro-F1 {s['macro_f1']:.3f} acc {s['accuracy']:.3f}"
                          for m, s in res["scores"].items())
        print(f"{mark} {v.name:<44} {cells}", flush=True)
        if v == DEFAULT_VARIANT:
            print_levels("linear heads (frozen MiniLM vectors + words)", level_scores(data.labels, res["oof"]))
    if cross:
        epitome_cross(df, seed)


def print_levels(label: str, scores: dict) -> None:
    print(f"  {label}: macro-F1 and F1 of levels 0 / 1 / 2 (none / weak / strong)")
    for m, s in scores.items():
        lv = " / ".join(f"{x:.3f}" for x in s["level_f1"])
        print(f"    {m.upper()}  macro-F1 {s['macro_f1']:.3f}  levels {lv}  acc {s['accuracy']:.3f}", flush=True)


def epitome_cross(df: pd.DataFrame, seed: int) -> None:
    """The cross-encoder (MiniLM, LoRA on the top layer) on the same folds, early stopping inside each fold."""
    import torch

    from alliance.lenses.empathy_cross import CrossConfig, load_base
    from alliance.training.empathy_cross import TrainSettings, cache_epitome
    from alliance.training.empathy_cross import cross_validate as cross_cv

    torch.set_num_threads(1)
    cfg, settings = CrossConfig(), TrainSettings()
    base = load_base()
    data = cache_epitome(df, base, cfg)
    print(f"cross-encoder: {cfg.to_dict()}; {settings.to_dict()}; lower layers cached once for "
          f"{len(data.states)} (post, reply window) pairs in {data.seconds:.0f} CPU s", flush=True)
    t0 = time.process_time()
    res = cross_cv(base[1], data, settings, 5, seed, log=lambda s: print("   ", s, flush=True))
    print(f"  cross-encoder CV: {time.process_time() - t0:.0f} CPU s for 5 folds (machine shared); epochs chosen "
          f"by early stopping: {[f['best_epoch'] for f in res['folds']]}")
    print_levels("cross-encoder (seeker + reply read together, LoRA)", res["scores"])


def pair(d: Path, cross: bool = False, cross_model: str | None = None) -> None:
    from alliance.encoders import load_encoder
    from alliance.lenses.empathy import EmpathyModel, embed_whole, score_pairs

    df = pd.read_csv(d / "pair" / "pair_data.csv")
    cols = ["hq1", "hq2", "mq1", "lq1", "lq2", "lq3", "lq4", "lq5"]
    enc = load_encoder()
    model = EmpathyModel.load()
    prompts = df["prompt"].astype(str).str.strip().tolist()
    seeker = embed_whole(prompts, enc)
    replies = [str(df[c].iat[i]).strip() for i in range(len(df)) for c in cols]
    scores = score_pairs(model, np.repeat(seeker, len(cols), axis=0), replies, enc)
    print(f"PAIR: {len(df)} prompts x {len(cols)} replies (2 high, 1 medium, 5 low); shipped model")
    rows = [("primary: expected total (sum of 3 mechanisms)", scores.total()),
            ("secondary: expected interpretation level", scores.expected("ip")),
            ("behaviour lens: MITI reflection level", miti_reflection_level(prompts, replies, len(cols), enc))]
    for label, s in rows:
        print_pair(label, s, len(df), len(cols))
    if cross:
        import torch

        from alliance.lenses.empathy_cross import CrossEmpathyModel, score_cross

        torch.set_num_threads(1)
        cs = score_cross(CrossEmpathyModel.load(cross_model), [p for p in prompts for _ in cols], replies)
        rows += [("cross-encoder: expected total", cs.total()),
                 ("cross-encoder: expected interpretation level", cs.expected("ip"))]
    for label, s in rows[3:]:
        print_pair(label, s, len(df), len(cols))
    # diagnosis, not tuning: what each mechanism gives each quality tier
    for m in ("er", "ip", "ex"):
        e = scores.expected(m).reshape(len(df), len(cols))
        print(f"  mean expected {m.upper()} level: high {e[:, :2].mean():.2f}  medium {e[:, 2].mean():.2f}  "
              f"low {e[:, 3:].mean():.2f}")


def print_pair(label: str, s: np.ndarray, n: int, k: int) -> None:
    s = s.reshape(n, k)
    high, mid, low = s[:, :2], s[:, 2], s[:, 3:]
    diff = high[:, :, None] - low[:, None, :]
    pair_share = ((diff > 0) + 0.5 * (diff == 0)).reshape(n, -1).mean(axis=1)
    ordered = (high.mean(axis=1) > mid) & (mid > low.mean(axis=1))
    print(f"  {label:<48} (high, low) pairs ordered: {pair_share.mean():.3f}   "
          f"prompts high > medium > low: {ordered.mean():.3f}", flush=True)


def miti_reflection_level(prompts: list[str], replies: list[str], per_prompt: int, enc) -> np.ndarray:
    """2 x P(complex reflection) + P(simple reflection) from the behaviour lens's AnnoMI-trained head.

    PAIR grades replies by MI reflection quality (complex > simple > not a reflection; Min et al. 2022, after
    MITI 4.2), so the behaviour lens's reflection codes are the construct-matched score; defined from MITI before it
    was computed on PAIR, and trained on AnnoMI only.
    """
    from alliance.corpus import Corpus, Turn
    from alliance.pipeline import analyze

    turns = []
    for i, reply in enumerate(replies):
        sid = f"pair-{i}"
        turns += [Turn(sid, sid, 0, "client", prompts[i // per_prompt]), Turn(sid, sid, 1, "counsellor", reply)]
    res = analyze(Corpus.from_turns(turns), ["behaviour"], encoder=enc).turns
    res = res[res["speaker"] == "counsellor"].set_index("session_id")
    res = res.loc[[f"pair-{i}" for i in range(len(replies))]]
    return (2 * res["behaviour_reflection_complex_p"] + res["behaviour_reflection_simple_p"]).to_numpy(float)


def speed(d: Path, n_turns: int, cross: bool = False, cross_model: str | None = None) -> None:
    from alliance.corpus import Corpus
    from alliance.encoders.sentence import SentenceTransformerEncoder
    from alliance.lenses.base import LensContext
    from alliance.lenses.empathy import EmpathyLens

    df = pd.read_csv(d / "pair" / "pair_data.csv")
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n_turns):
        i = k % len(df)
        reply = df[rng.choice(["hq1", "hq2", "mq1", "lq1", "lq2", "lq3", "lq4", "lq5"])].iat[i]
        sid = f"s{k // 10}"
        rows += [{"course_id": sid, "session_id": sid, "turn_index": 2 * (k % 10), "speaker": "client",
                  "text": str(df["prompt"].iat[i]).strip()},
                 {"course_id": sid, "session_id": sid, "turn_index": 2 * (k % 10) + 1, "speaker": "counsellor",
                  "text": str(reply).strip()}]
    corpus = Corpus(pd.DataFrame(rows))
    texts = corpus.turns["text"].tolist()
    encoder = SentenceTransformerEncoder()
    encoder.encode(texts[:8])  # load the model outside the timings
    lens = EmpathyLens(rationales=True)  # the speed figure includes the opt-in occlusion rationales
    t0 = time.perf_counter()
    encoder.encode(texts)
    enc_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lens.score(corpus, LensContext(corpus, encoder))
    lens_s = time.perf_counter() - t0
    enc_rate, lens_rate = len(texts) / enc_s, n_turns / lens_s
    print(f"speed ({n_turns} counsellor turns + {n_turns} client turns, no cache, {os.cpu_count()} CPU cores): "
          f"encoder {enc_rate:.1f} texts/s; lens {lens_rate:.1f} counsellor turns/s, rationales included; "
          f"ratio lens/encoder {lens_rate / enc_rate:.2f}", flush=True)
    if cross:
        # the cross-encoder reads (client words, reply) pairs with MiniLM itself: its cost is on top of the run's
        # encoding of every turn (which the other lenses need), so it is timed alone, in CPU seconds, same run
        import torch

        torch.set_num_threads(1)
        cross_lens = EmpathyLens(model=cross_model or "cross")
        cross_lens.cross.loaded()  # load MiniLM outside the timings
        c0 = time.process_time()
        encoder.encode(texts)
        enc_cpu = time.process_time() - c0
        for rationales in (False, True):
            cross_lens.rationales = rationales
            c0 = time.process_time()
            cross_lens.score(corpus, LensContext(corpus, encoder))
            cpu = time.process_time() - c0
            print(f"  cross-encoder lens{' with rationales' if rationales else ''}: {n_turns / cpu:.1f} counsellor "
                  f"turns per CPU s vs encoder {len(texts) / enc_cpu:.1f} texts per CPU s (same texts, same run; "
                  f"ratio {(n_turns / cpu) / (len(texts) / enc_cpu):.2f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="research data folder (default ../shared/data or $ALLIANCE_DATA)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare", action="store_true", help="also print the variants the recipe was chosen from")
    ap.add_argument("--speed-turns", type=int, default=200)
    ap.add_argument("--cross", action="store_true",
                    help="also cross-validate the cross-encoder (CPU-heavy: about 10 CPU minutes) and time it")
    ap.add_argument("--cross-model", help="cross-encoder adapter file for the PAIR and speed parts (default: shipped)")
    ap.add_argument("--only", choices=["epitome", "pair", "speed"], help="run one part")
    args = ap.parse_args()
    d = data_dir(args.data)
    with tempfile.TemporaryDirectory():
        if args.only in (None, "epitome"):
            epitome(d, args.seed, args.compare, args.cross)
        if args.only in (None, "pair"):
            pair(d, args.cross, args.cross_model)
        if args.only in (None, "speed"):
            speed(d, args.speed_turns, args.cross, args.cross_model)


if __name__ == "__main__":
    main()
