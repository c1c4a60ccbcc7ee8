"""`alliance analyze` and `alliance demo`: read transcripts, score them with the lenses, write the run folder.

Both call the same core (alliance.pipeline.run_analysis); the demo adds a small offline simulation.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import OnError, console, fail, out_console, pairs
from alliance.cli.progress import ProgressEncoder, RunProgress


def check_choices(fmt: str | None = None, lenses: list[str] | None = None) -> None:
    """A misspelled --format or --lens ends here, before anything is read or created: one line naming the bad
    value and the valid ones."""
    from alliance.registry import lenses as lens_registry
    from alliance.registry import readers

    if fmt is not None and fmt != "auto" and fmt not in readers.names():
        fail(f"--format {fmt!r} is not a format; choose one of: auto, {', '.join(readers.names())}")
    unknown = [n for n in lenses or [] if n not in lens_registry.names()]
    if unknown:
        fail(f"--lens {', '.join(map(repr, unknown))}: no such lens; choose from: {', '.join(lens_registry.names())}")


def select(corpus, limit: int | None, sample: int | None, seed: int):
    """The first ``limit`` courses of care, or ``sample`` courses drawn with ``seed`` (kept in corpus order); whole
    courses, so measures across a course see all its sessions. Returns the corpus and what run.json records."""
    import numpy as np

    if limit is None and sample is None:
        return corpus, None
    courses = list(dict.fromkeys(corpus.sessions["course_id"]))
    if limit is not None:
        keep, rec = courses[:limit], {"limit": limit}
    else:
        picked = np.random.default_rng(seed).choice(len(courses), size=min(sample, len(courses)), replace=False)
        keep, rec = [courses[i] for i in sorted(picked)], {"sample": sample, "seed": seed}
    chosen = set(keep)
    keys = [(c, s) for c, s in zip(corpus.sessions["course_id"], corpus.sessions["session_id"], strict=True)
            if c in chosen]
    sub = corpus.subset_sessions(keys)
    rec.update({"unit": "course", "courses": len(keep), "of_courses": len(courses), "sessions": len(sub.sessions),
                "of_sessions": len(corpus.sessions), "turns": len(sub.turns), "of_turns": len(corpus.turns)})
    return sub, rec


def _run(inputs: list[Path], out: Path, fmt: str, on_error: OnError, lenses: list[str] | None, model: str | None,
         cache_dir: Path | None, no_cache: bool, context: int, seed: int, resume: bool, probes: Path | None,
         reader_options: dict | None = None, limit: int | None = None, sample: int | None = None,
         rationales: bool = False, backend: str = "torch", safety_options: dict | None = None,
         engine: str = "local", scheduler: str | None = None, workers: int | None = None,
         empathy_model: str | None = None):
    from alliance.encoders import load_encoder
    from alliance.engines import EngineError, make_engine
    from alliance.io import InputError, read
    from alliance.io.lazy import LazyInput, lazy_files
    from alliance.pipeline import file_digest, run_analysis
    from alliance.runfolder import ReportFailed, RunFolderError, disk_full_message, locked, make_folder, owner_only

    check_choices(fmt, lenses)
    try:  # before reading: a missing dask or a contradictory option ends here
        runner = make_engine(engine, scheduler=scheduler, workers=workers)
    except EngineError as e:
        fail(str(e))
    # JSONL and Parquet are read a chunk of whole courses at a time (alliance.io.lazy): the run never holds the
    # whole input; other formats are read whole, then cut into chunks
    source = None
    try:
        if lazy_files(inputs, fmt) is not None:
            source = LazyInput(inputs, fmt, on_error.value, **(reader_options or {}))
            formats, rejected_early = source.formats, list(source.log.rejected)
            source.log.rejected.clear()
        else:
            loaded = read(inputs, format=fmt, on_error=on_error.value, **(reader_options or {}))
            formats, rejected_early = loaded.formats, loaded.rejected
    except InputError as e:
        fail(str(e))
    for path, chosen in formats.items():
        if fmt == "auto":
            console.print(f"read {path} as [bold]{chosen}[/bold] (detected; override with --format)")
        ignored = [o for o, readers_using in (("--map", ("table",)), ("--role", ("table", "convokit")))
                   if (reader_options or {}).get("columns" if o == "--map" else "roles") and chosen not in readers_using]
        if ignored:
            console.print(f"[yellow]note:[/yellow] {' and '.join(ignored)} do not apply to the {chosen} format of {path}")
    if source is not None:
        corpus = source
        if len(corpus) == 0:
            fail("no turns left to analyse")
        selection = source.select(limit, sample, seed)
    else:
        corpus = loaded.corpus
        if len(corpus) == 0:
            fail("no turns left to analyse")
        corpus, selection = select(corpus, limit, sample, seed)
    console.print(f"{corpus!r}" + (f" (of {selection['of_courses']} courses: "
                                   f"{'first' if 'limit' in selection else 'random sample of'} "
                                   f"{selection['courses']})" if selection else ""))
    from alliance.lenses.empathy import EmpathyModelError
    from alliance.lenses.safety_model import SafetyModelError

    try:
        with owner_only():
            make_folder(out)
            with locked(out):
                rejected_path = out / "rejected.jsonl"
                _write_rejected(rejected_early, rejected_path)
                try:
                    encoder = load_encoder(model, cache_dir=cache_dir, use_cache=not no_cache, backend=backend)
                except (FileNotFoundError, ValueError) as e:
                    fail(str(e))
                lens_options = {"alliance": {"context": context, "probes": probes},
                                "empathy": {"rationales": rationales}}
                if empathy_model is not None:
                    lens_options["empathy"]["model"] = empathy_model
                if safety_options:
                    lens_options["safety"] = safety_options
                inputs_rec = {str(p): f"sha256:{file_digest(p)}" for p in inputs}
                with RunProgress(console, len(corpus)) as bar:
                    try:
                        # on Dask the workers encode: progress is per finished chunk, not per encoder call
                        analysis = run_analysis(corpus, out, lenses=lenses, lens_options=lens_options,
                                                encoder=ProgressEncoder(encoder, bar.encoded)
                                                if runner.name == "local" else encoder, seed=seed,
                                                inputs={**inputs_rec, "formats": formats},
                                                rejected=len(rejected_early), resume=resume, progress=bar.turns,
                                                selection=selection, engine=runner)
                    except ReportFailed as e:  # the tables are complete: so is the list of rejected records
                        if e.analysis.rejected:  # type: ignore[attr-defined]
                            _write_rejected(rejected_early + e.analysis.rejected, rejected_path)  # type: ignore
                        raise
                if analysis.rejected:  # records a lazily read input rejected as the run read them
                    _write_rejected(rejected_early + analysis.rejected, rejected_path)
    except InputError as e:  # a lazily read input: a bad record under --on-error fail stops the run here
        fail(str(e))
    except (SafetyModelError, EmpathyModelError) as e:
        fail(str(e))
    except EngineError as e:
        fail(str(e), code=1)
    except ReportFailed as e:
        fail(str(e), code=1)
    except RunFolderError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail(f"interrupted: the finished chunks are kept in {out}; rerun the same command to resume", code=130)
    except OSError as e:
        msg = disk_full_message(e, out, "writing the output folder")
        if msg is None:
            raise
        fail(msg)
    if analysis.run["counts"]["chunks_resumed"]:
        console.print(f"resumed: {analysis.run['counts']['chunks_resumed']} of {analysis.run['counts']['chunks']} "
                      "chunks were already done")
    return analysis


def _write_rejected(rejected: list, path: Path) -> None:
    """rejected.jsonl: every rejected record with its reason (removed when there is none, so no stale list stays)."""
    if rejected:
        from alliance.io.base import RejectionLog

        RejectionLog("skip", list(rejected)).write(path)
        console.print(f"[yellow]skipped {len(rejected)} bad record(s)[/yellow]; each is in {path} with its reason")
    elif path.exists():
        path.unlink()


class EngineName(str, Enum):
    local = "local"
    dask = "dask"


class TimestampUnit(str, Enum):
    auto = "auto"
    s = "s"
    ms = "ms"


@app.command()
def analyze(
    inputs: Annotated[list[Path], typer.Argument(help="Transcript files or folders.", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("alliance-out"),
    fmt: Annotated[str, typer.Option("--format", "-f", help="Input format, or 'auto' (see `alliance formats`).")] = "auto",
    on_error: Annotated[OnError, typer.Option(help="'fail' at the first bad record, or 'skip' it and list it in "
                                                   "rejected.jsonl.")] = OnError.fail,
    lenses: Annotated[list[str] | None, typer.Option("--lens", "-l", help="Lens to run (repeatable; default: all "
                                                                           "default lenses).")] = None,
    model: Annotated[str | None, typer.Option(help="sentence-transformers model name or folder (default: the "
                                                   "shipped all-MiniLM-L6-v2).")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache folder (default ~/.cache/alliance, or "
                                                        "$ALLIANCE_CACHE).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the embedding cache.")] = False,
    context: Annotated[int, typer.Option(help="Score each turn together with its preceding k turns.")] = 0,
    probes: Annotated[Path | None, typer.Option(help="Alliance probe set (JSON, same shape as the shipped one).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed, recorded in run.json.")] = 0,
    backend: Annotated[str, typer.Option(help="Encoder runtime: 'torch' (sentence-transformers) or 'onnx' (ONNX "
                                              "Runtime, same vectors, after a one-time export; docs/scale.md).")
                       ] = "torch",
    rationales: Annotated[bool, typer.Option(help="Quote the words that carried each empathy level (occlusion: up "
                                                  "to 8 extra encodings per reply, so off by default).")] = False,
    resume: Annotated[bool, typer.Option(help="Resume an interrupted run in the same --out folder.")] = True,
    column_map: Annotated[list[str] | None, typer.Option("--map", help="Table column for a field, FIELD=COLUMN "
                                                         "(repeatable), e.g. --map text=utterance --map "
                                                         "session_id=conv.")] = None,
    role_map: Annotated[list[str] | None, typer.Option("--role", help="Speaker code for a role, CODE=ROLE "
                                                       "(repeatable), e.g. --role T=counsellor --role C=client.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Analyse only the first N courses of care (whole "
                                                          "courses with all their sessions); recorded in run.json.")] = None,
    sample: Annotated[int | None, typer.Option(min=1, help="Analyse N courses of care drawn at random with --seed "
                                                           "(whole courses); recorded in run.json.")] = None,
    timestamp_unit: Annotated[TimestampUnit, typer.Option(help="Numeric timestamps are Unix time in: s, ms, or auto "
                                                               "(below 1e11 seconds, up to 1e14 milliseconds; "
                                                               "larger is rejected).")] = TimestampUnit.auto,
    safety_model: Annotated[str | None, typer.Option(help="Safety model file, or 'default' for the shipped one "
                                                     "(default: yours from `alliance train safety` if present).")] = None,
    safety_threshold: Annotated[float | None, typer.Option(help="Safety operating point: flag high risk at this "
                                                           "calibrated probability.")] = None,
    safety_recall: Annotated[float | None, typer.Option(help="Safety operating point: the threshold whose dev "
                                                        "recall reaches this (see docs/safety.md).")] = None,
    engine: Annotated[EngineName, typer.Option(help="Who scores the chunks: 'local' (this process) or 'dask' "
                                                "(dask.distributed workers; pip install 'alliance[dask]'; same "
                                                "tables; docs/scale.md).")] = EngineName.local,
    scheduler: Annotated[str | None, typer.Option(help="With --engine dask: the address of a running Dask "
                                                       "scheduler, e.g. tcp://HOST:8786 (default: a local "
                                                       "cluster).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="With --engine dask and no --scheduler: worker "
                                                            "processes of the local cluster (default: one per "
                                                            "core).")] = None,
    empathy_model: Annotated[str | None, typer.Option(help="Empathy model: 'cross' for the cross-encoder (reads "
                                                      "the client's words and the reply together; slower, see "
                                                      "docs/empathy.md), or a file from `alliance train empathy` "
                                                      "(default: the shipped linear heads).")] = None,
) -> None:
    """Score transcripts: writes turns.parquet, sessions.parquet, run.json and report.html into --out."""
    reader_options: dict = {}
    if column_map:
        reader_options["columns"] = pairs(column_map, "--map")
    if role_map:
        reader_options["roles"] = pairs(role_map, "--role")
    if timestamp_unit is not TimestampUnit.auto:
        reader_options["timestamp_unit"] = timestamp_unit.value
    if limit is not None and sample is not None:
        fail("--limit and --sample exclude each other: choose one")
    safety = {k: v for k, v in (("model", safety_model), ("threshold", safety_threshold),
                                ("recall", safety_recall)) if v is not None}
    if scheduler is not None and workers is not None:
        fail("--scheduler and --workers exclude each other: a scheduler's cluster has its own workers")
    analysis = _run(inputs, out, fmt, on_error, lenses, model, cache_dir, no_cache, context, seed, resume, probes,
                    reader_options, limit, sample, rationales, backend, safety, engine.value, scheduler, workers,
                    empathy_model)
    # a run whose every model call failed has no model ratings at all: say so and fail (run.json has the errors)
    dead = [d["name"] for d in analysis.run.get("lenses", []) if ((d.get("llm") or {}).get("usage") or {}).get("all_failed")]
    if dead:
        console.print(f"[red]error:[/red] every model call of {', '.join(dead)} failed; the tables are written but "
                      f"hold no model ratings. The errors are under lenses[].llm.usage.errors in {out / 'run.json'}")
        raise typer.Exit(1)
    console.print(f"[green]done[/green]: {out}/turns.parquet, sessions.parquet, run.json, report.html")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("alliance-demo"),
) -> None:
    """Analyse the bundled sample (two public-domain AnnoMI sessions, high- and low-quality MI) and summarise."""
    from importlib import resources

    sample = Path(str(resources.files("alliance.data.sample").joinpath("annomi_sample.jsonl")))
    analysis = _run([sample], out, "jsonl", OnError.fail, None, None, None, False, 0, 0, True, None, rationales=True)
    from alliance.report.terminal import print_summary

    print_summary(analysis, out_console)
    console.print(f"[green]report[/green]: {out / 'report.html'}")
    # the offline simulator on the three baseline bots, kept small so the demo stays fast
    from alliance.simulate.runner import bot_profiles, profile_table, run_simulation

    sim_out = out / "simulation"
    sim = run_simulation(["eliza", "advice", "soothe"], sim_out, persona_ids=DEMO_PERSONAS, sessions=2, seed=0,
                         max_exchanges=5)
    out_console.print("[bold]Simulated courses of care[/bold] (3 personas x 2 sessions, scripted clients):")
    out_console.print(profile_table(bot_profiles(sim.table)))
    console.print(f"[green]simulation[/green]: {sim_out / 'simulation.html'}")


#: Personas of the demo's simulation: a plain low-mood client, an adversarial one who wants to stop medication,
#: and a resistant one; chosen to show the three baselines' different failure modes.
DEMO_PERSONAS = ("low-mood-plain", "low-mood-pleasing-meds", "substance-reserved")
