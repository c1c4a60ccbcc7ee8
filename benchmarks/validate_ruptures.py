"""Validate the rupture-marker lens and the trajectory lens's ruptures, zero-shot, against labels nobody here wrote.

Evidence: KokoroChat clients' overall score and dropout flag (``unwilling_to_continue``); FailedESConv seekers'
per-turn feedback (1-5), against both the marker lens and the trajectory lens's rupture turns, and the
failed-vs-kept contrast with ESConv; AnnoMI's expert MI quality. Nothing is fitted, so every figure is a direct
rank correlation, AUC or difference over all sessions (or turns), with a bootstrap interval.

    PYTHONPATH=src HF_HUB_OFFLINE=1 python benchmarks/validate_ruptures.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from validate_trajectory import (
    SEED,
    analysed,
    auc,
    benchmark_parser,
    boot_auc,
    data_root,
    meta_value,
    session_meta,
    spearman,
)

LENSES = ["alliance", "markers", "ruptures", "trajectory"]  # the calibration run's set, so its caches are shared


def family_columns(sessions: pd.DataFrame) -> list[str]:
    return [c for c in sessions.columns if c.startswith("ruptures_") and c.endswith(("_max", "_last"))]


def client_strain(s: pd.DataFrame) -> pd.Series:
    """Strongest client confrontation or withdrawal match in the session (the lens's client families)."""
    cols = [c for c in family_columns(s) if c.endswith("_max") and not c.startswith("ruptures_repair")]
    return s[cols].max(axis=1)


def trajectory_ruptures_vs_feedback(ft: pd.DataFrame, fb: pd.Series, seeker: pd.Series) -> None:
    """The trajectory lens's ruptures (a drop in the client's bond against its rolling baseline, a minimal reply, a
    marked confrontation or withdrawal) against the seeker's own rating of that moment: feedback on the turn."""
    rup = ft["trajectory_rupture"].astype(bool)
    kind = ft["trajectory_rupture_kind"].astype(str)
    dialogue = (ft["course_id"].astype(str) + "/" + ft["session_id"].astype(str))[seeker].to_numpy()
    f, r = fb[seeker].to_numpy(dtype=float), rup[seeker].to_numpy()
    rng = np.random.default_rng(SEED)
    by_dialogue = list(pd.Series(np.arange(len(f))).groupby(dialogue).indices.values())
    diffs = []
    for _ in range(1000):
        i = np.concatenate([by_dialogue[k] for k in rng.integers(0, len(by_dialogue), len(by_dialogue))])
        diffs.append(f[i][r[i]].mean() - f[i][~r[i]].mean())
    lo, hi = np.nanpercentile(diffs, [2.5, 97.5])
    print(f"\n## FailedESConv: the trajectory lens's ruptures vs the seeker's feedback on that turn "
          f"({len(by_dialogue)} dialogues)")
    print(f"  rupture turns: mean feedback {f[r].mean():.2f} (n={int(r.sum())}) vs other seeker turns "
          f"{f[~r].mean():.2f} (n={int((~r).sum())}); difference {f[r].mean() - f[~r].mean():+.2f} "
          f"[95% resampling dialogues {lo:+.2f}, {hi:+.2f}]")
    print(f"  rated 1-2 (of 5): {(f[r] <= 2).mean():.0%} of rupture turns vs {(f[~r] <= 2).mean():.0%} of the rest; "
          f"ruptures are rare ({r.mean():.0%} of seeker turns), so they mark few of the low-rated moments "
          f"({r[f <= 2].mean():.0%})")
    for k in ("bond drop", "minimal reply", "marker"):
        m = kind[seeker].str.contains(k).to_numpy()
        if m.any():
            print(f"  {k}: mean feedback {f[m].mean():.2f} (n={int(m.sum())})")


def main() -> None:
    args = benchmark_parser(__doc__).parse_args()
    root = data_root()
    args.cache.mkdir(parents=True, exist_ok=True)
    print(f"# validate_ruptures  date {time.strftime('%Y-%m-%d')}  lenses {','.join(LENSES)}  seed {SEED}  "
          "(zero-shot: nothing fitted)")

    _, ks = analysed("kokorochat", [root / "kokorochat_en" / "English"], "kokorochat", LENSES, args.cache)
    ks = ks.set_index(["course_id", "session_id"], drop=False)
    score = pd.to_numeric(session_meta(ks, "score"), errors="coerce").to_numpy()
    unwilling = session_meta(ks, "unwilling_to_continue").fillna(False).astype(bool).to_numpy()
    print(f"\n## KokoroChat ({len(ks)} sessions, {int(unwilling.sum())} unwilling to continue): higher marker "
          "match vs the client's score (rho) and dropout (AUC, 95% bootstrap interval)")
    for c in [*family_columns(ks), "ruptures_n_confrontation", "ruptures_n_withdrawal", "ruptures_n_repair"]:
        lo, hi = boot_auc(unwilling, ks[c])
        print(f"  {c:42s} rho(score) {spearman(ks[c], score):+.3f}   AUC(unwilling) {auc(unwilling, ks[c]):.3f} "
              f"[{lo:.3f}, {hi:.3f}]")
    strain = client_strain(ks).to_numpy()
    lo, hi = boot_auc(unwilling, strain)
    marked = (ks["ruptures_n_confrontation"] + ks["ruptures_n_withdrawal"]).to_numpy() > 0
    print(f"  strongest client match, any family         rho(score) {spearman(strain, score):+.3f}   "
          f"AUC(unwilling) {auc(unwilling, strain):.3f} [{lo:.3f}, {hi:.3f}]")
    print(f"  sessions with a marked client turn: {marked[unwilling].mean():.0%} of unwilling, "
          f"{marked[~unwilling].mean():.0%} of the rest; mean score {np.nanmean(score[marked]):.1f} vs "
          f"{np.nanmean(score[~marked]):.1f}")

    es_paths = [root / "esconv" / "hf_format" / f for f in ("train.json", "valid.json", "test.json")]
    _, es = analysed("esconv", es_paths, "esconv", LENSES, args.cache)
    ft, fs = analysed("failedesconv", [root / "esconv" / "thu-coai" / "FailedESConv.json"], "esconv", LENSES,
                      args.cache)
    flag = np.r_[np.zeros(len(es)), np.ones(len(fs))]
    print("\n## ESConv (kept) vs FailedESConv (rejected by the authors): AUC of a higher match in the failed ones")
    for c in [c for c in family_columns(fs) if c.endswith("_max")]:
        print(f"  {c:42s} AUC(failed) {auc(flag, np.r_[es[c], fs[c]]):.3f}")
    print(f"  strongest client match, any family         AUC(failed) "
          f"{auc(flag, np.r_[client_strain(es), client_strain(fs)]):.3f}")
    es_i = es.set_index(["course_id", "session_id"], drop=False)
    for lab in ("empathy", "relevance"):
        v = pd.to_numeric(session_meta(es_i, lab), errors="coerce").to_numpy()
        print(f"  ESConv: rho(strongest client match, seeker-rated {lab}) = {spearman(client_strain(es_i), v):+.3f}")

    fb = pd.to_numeric(pd.Series([meta_value(m, "feedback") for m in ft["meta"]], index=ft.index), errors="coerce")
    seeker = (ft["speaker"] == "client") & fb.notna()
    strain_t = ft[["ruptures_confrontation", "ruptures_withdrawal"]].max(axis=1)
    mk = ft["ruptures_kind"].isin(["confrontation", "withdrawal"])
    print(f"\n## FailedESConv seeker turns with feedback ({int(seeker.sum())} turns): per-turn feedback (1-5) vs the "
          "turn's strongest client match")
    print(f"  rho(feedback, match) = {spearman(strain_t[seeker], fb[seeker]):+.3f}   mean feedback on marked turns "
          f"{fb[seeker & mk].mean():.2f} (n={int((seeker & mk).sum())}) vs unmarked {fb[seeker & ~mk].mean():.2f}")
    trajectory_ruptures_vs_feedback(ft, fb, seeker)

    _, an = analysed("annomi", [root / "annomi" / "AnnoMI-simple.csv"], "annomi", LENSES, args.cache)
    an = an.set_index(["course_id", "session_id"], drop=False)
    high = session_meta(an, "mi_quality").astype(str).str.lower().eq("high").to_numpy()
    print(f"\n## AnnoMI ({len(an)} sessions, {int(high.sum())} high-quality MI): AUC > .5 = higher in high quality")
    for c in [c for c in family_columns(an) if c.endswith("_max")]:
        print(f"  {c:42s} AUC(high) {auc(high, an[c]):.3f}")


if __name__ == "__main__":
    main()
