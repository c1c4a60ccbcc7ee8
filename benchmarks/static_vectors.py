"""The shipped compact word vectors against the float16 model they were coded from: does the coordination lens
give the same scores? Prints Spearman per coordination column, per turn and per session, on real sessions.

    python benchmarks/static_vectors.py --float16 DIR [--sessions 40]

DIR is the float16 model2vec folder (rebuild it with
``python -c "from alliance.lenses.word_vectors import distill_static_model; distill_static_model(128, 'DIR')"``).
Sessions: AnnoMI from $ALLIANCE_DATA or ../shared/data (the bundled sample without data).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]


def corpus(n: int):
    from alliance.io import read

    data = Path(os.environ.get("ALLIANCE_DATA") or ROOT.parent / "shared" / "data")
    path = data / "annomi" / "AnnoMI-simple.csv"
    if path.exists():
        c = read(path, format="annomi").corpus
        return c.subset_sessions(c.session_keys()[:n])
    from importlib import resources

    return read(Path(str(resources.files("alliance.data.sample").joinpath("annomi_sample.jsonl"))), format="jsonl").corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--float16", type=Path, required=True)
    ap.add_argument("--sessions", type=int, default=40)
    a = ap.parse_args()
    from alliance.lenses.word_vectors import shipped_model_path
    from alliance.pipeline import analyze

    c = corpus(a.sessions)
    runs = {name: analyze(c, lenses=[__import__("alliance.lenses.coordination", fromlist=["x"]).CoordinationLens(
        word_vectors=path)]) for name, path in (("float16", a.float16), ("shipped", shipped_model_path()))}
    print(f"coordination lens on {len(c.sessions)} AnnoMI sessions, {len(c.turns)} turns: compact vs float16")
    for table in ("turns", "sessions"):
        x, y = getattr(runs["float16"], table), getattr(runs["shipped"], table)
        for col in [k for k in x.columns if k.startswith("coordination_") and pd.api.types.is_float_dtype(x[k])]:
            ok = x[col].notna() & y[col].notna()
            if ok.sum() < 5 or x.loc[ok, col].nunique() < 3:
                continue
            rho = spearmanr(x.loc[ok, col], y.loc[ok, col])[0]
            print(f"  {table:8s} {col:45s} n={int(ok.sum()):5d}  rho={rho:.4f}  "
                  f"max |diff|={np.abs(x.loc[ok, col] - y.loc[ok, col]).max():.4f}")


if __name__ == "__main__":
    main()
