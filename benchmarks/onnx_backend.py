"""The ONNX Runtime encoder against the torch encoder, in the same run: speed per text and agreement of every lens.

Exports the shipped model once (set-up, timed apart) into $ALLIANCE_CACHE/validation/onnx, quantises an int8 copy
(dynamic, per channel, MatMul only), then (1) encodes the same N KokoroChat turns with each backend in fresh
subprocesses (CPU time, all threads; medians over rounds) and (2) scores K sessions with the default lenses on each
backend (no embedding cache) and reports the Spearman correlation of every numeric turn and session column with
the torch run's. Issue #15's bar for an option: faster on CPU and Spearman >= 0.99 in every column.

    python benchmarks/onnx_backend.py [--turns 600] [--rounds 2] [--sessions 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import ROOT, run, sample_corpus

ENCODE = """
import json, sys, time
t0 = time.perf_counter()
from alliance.encoders import load_encoder
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")][:int(sys.argv[2])]
enc = load_encoder(sys.argv[4] or None, backend=sys.argv[3], use_cache=False)
enc.encode(texts[:2])  # loading the runtime and model is set-up
t1, c1 = time.perf_counter(), time.process_time()  # process_time: every thread of this process
enc.encode(texts)
print(json.dumps({"setup_s": t1 - t0, "setup_cpu_s": c1, "encode_s": time.perf_counter() - t1,
                  "encode_cpu_s": time.process_time() - c1}))
"""


def spearman_by_column(a, b) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    out = {}
    for c in a.columns:
        if c not in b.columns or not pd.api.types.is_numeric_dtype(a[c]) or pd.api.types.is_bool_dtype(a[c]):
            continue
        x, y = a[c].to_numpy(dtype=float), b[c].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 3 or np.nanstd(x[ok]) == 0:
            continue
        out[c] = float(pd.Series(x[ok]).corr(pd.Series(y[ok]), method="spearman"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sessions", type=int, default=4, help="sessions scored with every default lens per backend")
    args = ap.parse_args()
    from alliance.encoders import default_cache_dir, load_encoder
    from alliance.encoders.onnx import export_onnx

    folder = default_cache_dir() / "validation" / "onnx"
    fp32, int8 = folder / "fp32", folder / "int8"
    t0 = time.perf_counter()
    if not (fp32 / "alliance_onnx.json").exists():
        export_onnx(path=fp32)
    export_s = time.perf_counter() - t0
    if not (int8 / "alliance_onnx.json").exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8.mkdir(parents=True, exist_ok=True)
        quantize_dynamic(str(fp32 / "model.onnx"), str(int8 / "model.onnx"), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["MatMul"])
        for f in ("tokenizer.json", "alliance_onnx.json"):
            shutil.copy(fp32 / f, int8 / f)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        corpus_file = Path(tmp) / "corpus.jsonl"
        sample_corpus(max(args.sessions, args.turns // 80 + 1), corpus_file)
        speed: dict[str, list[dict]] = {"torch": [], "onnx fp32": [], "onnx int8": []}
        for _ in range(args.rounds):
            for label, backend, path in (("torch", "torch", ""), ("onnx fp32", "onnx", str(fp32)),
                                         ("onnx int8", "onnx", str(int8))):
                speed[label].append(run(ENCODE, [str(corpus_file), str(args.turns), backend, path], env))
        from alliance.io import read
        from alliance.pipeline import analyze

        corpus = read(corpus_file, format="jsonl").corpus
        corpus = corpus.subset_sessions(list(corpus.sessions[["course_id", "session_id"]].head(args.sessions)
                                             .itertuples(index=False, name=None)))
        runs = {label: analyze(corpus, encoder=load_encoder(path or None, backend=backend, use_cache=False))
                for label, backend, path in (("torch", "torch", ""), ("onnx fp32", "onnx", str(fp32)),
                                             ("onnx int8", "onnx", str(int8)))}
    import statistics

    print(f"export (one-time set-up, torch + onnx): {export_s:.0f} s (0 if already exported)")
    def m(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    base, base_enc = m(speed["torch"], "cpu_s"), m(speed["torch"], "encode_cpu_s")
    for label, rows in speed.items():
        print(f"{label:10s} {args.turns} texts: encode CPU {m(rows, 'encode_cpu_s'):5.1f} s "
              f"({base_enc / m(rows, 'encode_cpu_s'):.2f}x torch), set-up CPU {m(rows, 'setup_cpu_s'):5.1f} s, "
              f"whole process CPU {m(rows, 'cpu_s'):5.1f} s ({base / m(rows, 'cpu_s'):.2f}x); wall: encode "
              f"{m(rows, 'encode_s'):5.1f} s, set-up {m(rows, 'setup_s'):5.1f} s")
    ref = runs["torch"]
    for label in ("onnx fp32", "onnx int8"):
        rho = {**spearman_by_column(ref.turns, runs[label].turns),
               **{f"session:{k}": v for k, v in spearman_by_column(ref.sessions, runs[label].sessions).items()}}
        low = sorted((v, k) for k, v in rho.items() if v < 0.99)
        print(f"{label}: {len(corpus.turns)} turns, {len(rho)} numeric columns, Spearman vs torch min "
              f"{min(rho.values()):.4f}; below 0.99: {len(low)}" + (f" (worst: {', '.join(f'{k} {v:.3f}' for v, k in low[:5])})" if low else ""))
    print(json.dumps({"sessions": args.sessions, "turns": args.turns}))


if __name__ == "__main__":
    main()
