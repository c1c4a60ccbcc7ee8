"""`alliance analyze` and `alliance demo`: read transcripts, score them with the lenses, write the run folder.

Both call the same core (alliance.pipeline.run_analysis); the demo adds a small offline simulation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import OnError, console, out_console, pairs, progress


def _run(inputs: list[Path], out: Path, fmt: str, on_error: OnError, lenses: list[str] | None, model: str | None,
         cache_dir: Path | None, no_cache: bool, context: int, seed: int, resume: bool, probes: Path | None,
         reader_options: dict | None = None, safety_options: dict | None = None):
    from alliance.encoders import load_encoder
    from alliance.io import InputError, read
    from alliance.pipeline import file_digest, run_analysis

    try:
        loaded = read(inputs, format=fmt, on_error=on_error.value, **(reader_options or {}))
    except InputError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    for path, chosen in loaded.formats.items():
        if fmt == "auto":
            console.print(f"read {path} as [bold]{chosen}[/bold] (detected; override with --format)")
        ignored = [o for o, readers_using in (("--map", ("table",)), ("--role", ("table", "convokit")))
                   if (reader_options or {}).get("columns" if o == "--map" else "roles") and chosen not in readers_using]
        if ignored:
            console.print(f"[yellow]note:[/yellow] {' and '.join(ignored)} do not apply to the {chosen} format of {path}")
    out.mkdir(parents=True, exist_ok=True)
    rejected_path = out / "rejected.jsonl"
    if loaded.rejected:
        from alliance.io.base import RejectionLog

        RejectionLog("skip", loaded.rejected).write(rejected_path)
        console.print(f"[yellow]skipped {len(loaded.rejected)} bad record(s)[/yellow]; each is in {rejected_path} "
                      "with its reason")
    elif rejected_path.exists():
        rejected_path.unlink()
    corpus = loaded.corpus
    if len(corpus) == 0:
        console.print("[red]error:[/red] no turns left to analyse")
        raise typer.Exit(2)
    console.print(f"{corpus!r}")
    encoder = load_encoder(model, cache_dir=cache_dir, use_cache=not no_cache)
    lens_options = {"alliance": {"context": context, "probes": probes}}
    if safety_options:
        lens_options["safety"] = safety_options
    inputs_rec = {str(p): f"sha256:{file_digest(p)}" for p in inputs}
    from alliance.lenses.safety_model import SafetyModelError

    with progress() as bar:
        task = bar.add_task("turns", total=len(corpus))
        try:
            analysis = run_analysis(corpus, out, lenses=lenses, lens_options=lens_options, encoder=encoder,
                                    seed=seed, inputs={**inputs_rec, "formats": loaded.formats},
                                    rejected=len(loaded.rejected), resume=resume,
                                    progress=lambda done, total: bar.update(task, completed=done))
        except SafetyModelError as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
    if analysis.run["counts"]["chunks_resumed"]:
        console.print(f"resumed: {analysis.run['counts']['chunks_resumed']} of {analysis.run['counts']['chunks']} "
                      "chunks were already done")
    return analysis


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
    resume: Annotated[bool, typer.Option(help="Resume an interrupted run in the same --out folder.")] = True,
    column_map: Annotated[list[str] | None, typer.Option("--map", help="Table column for a field, FIELD=COLUMN "
                                                         "(repeatable), e.g. --map text=utterance --map "
                                                         "session_id=conv.")] = None,
    role_map: Annotated[list[str] | None, typer.Option("--role", help="Speaker code for a role, CODE=ROLE "
                                                       "(repeatable), e.g. --role T=counsellor --role C=client.")] = None,
    safety_model: Annotated[str | None, typer.Option(help="Safety model file, or 'default' for the shipped one "
                                                     "(default: yours from `alliance train safety` if present).")] = None,
    safety_threshold: Annotated[float | None, typer.Option(help="Safety operating point: flag high risk at this "
                                                           "calibrated probability.")] = None,
    safety_recall: Annotated[float | None, typer.Option(help="Safety operating point: the threshold whose dev "
                                                        "recall reaches this (see docs/safety.md).")] = None,
) -> None:
    """Score transcripts: writes turns.parquet, sessions.parquet, run.json and report.html into --out."""
    reader_options: dict = {}
    if column_map:
        reader_options["columns"] = pairs(column_map, "--map")
    if role_map:
        reader_options["roles"] = pairs(role_map, "--role")
    safety = {k: v for k, v in (("model", safety_model), ("threshold", safety_threshold),
                                ("recall", safety_recall)) if v is not None}
    _run(inputs, out, fmt, on_error, lenses, model, cache_dir, no_cache, context, seed, resume, probes,
         reader_options, safety)
    console.print(f"[green]done[/green]: {out}/turns.parquet, sessions.parquet, run.json, report.html")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("alliance-demo"),
) -> None:
    """Analyse the bundled sample (two public-domain AnnoMI sessions, high- and low-quality MI) and summarise."""
    from importlib import resources

    sample = Path(str(resources.files("alliance.data.sample").joinpath("annomi_sample.jsonl")))
    analysis = _run([sample], out, "jsonl", OnError.fail, None, None, None, False, 0, 0, True, None)
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
