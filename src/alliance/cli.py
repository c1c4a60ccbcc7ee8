"""The ``alliance`` command line: analyse transcripts, run the demo, list formats and lenses.

Heavy libraries (pandas, torch, sentence-transformers) are imported inside commands, so ``--help`` is instant.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="alliance",
    help="Measure the therapeutic relationship in counselling and therapy-chatbot transcripts. "
    "Runs locally; nothing leaves this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out_console = Console()


class OnError(str, Enum):
    fail = "fail"
    skip = "skip"


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]scoring turns"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def _run(inputs: list[Path], out: Path, fmt: str, on_error: OnError, lenses: list[str] | None, model: str | None,
         cache_dir: Path | None, no_cache: bool, context: int, seed: int, resume: bool, probes: Path | None):
    from alliance.encoders import load_encoder
    from alliance.io import InputError, read
    from alliance.pipeline import file_digest, run_analysis

    try:
        loaded = read(inputs, format=fmt, on_error=on_error.value)
    except InputError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    for path, chosen in loaded.formats.items():
        if fmt == "auto":
            console.print(f"read {path} as [bold]{chosen}[/bold] (detected; override with --format)")
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
    inputs_rec = {str(p): f"sha256:{file_digest(p)}" for p in inputs}
    with _progress() as bar:
        task = bar.add_task("turns", total=len(corpus))
        analysis = run_analysis(corpus, out, lenses=lenses, lens_options=lens_options, encoder=encoder, seed=seed,
                                inputs={**inputs_rec, "formats": loaded.formats}, rejected=len(loaded.rejected),
                                resume=resume, progress=lambda done, total: bar.update(task, completed=done))
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
) -> None:
    """Score transcripts: writes turns.parquet, sessions.parquet, run.json and report.html into --out."""
    _run(inputs, out, fmt, on_error, lenses, model, cache_dir, no_cache, context, seed, resume, probes)
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


@app.command()
def formats() -> None:
    """List the input formats that `--format` accepts."""
    from rich.table import Table

    from alliance.registry import readers

    table = Table("format", "description")
    for name in readers.names():
        table.add_row(name, readers.get(name).description)
    out_console.print(table)


@app.command(name="lenses")
def list_lenses() -> None:
    """List the measures (lenses) and their scientific basis."""
    from rich.table import Table

    from alliance.pipeline import DEFAULT_LENSES
    from alliance.registry import lenses as registry

    table = Table("lens", "default", "version", "basis")
    for name in registry.names():
        cls = registry.get(name)
        table.add_row(name, "yes" if name in DEFAULT_LENSES else "", cls.version, cls.citation)
    out_console.print(table)


@app.command()
def version() -> None:
    """Print the version of alliance."""
    from alliance import __version__

    out_console.print(__version__)


train_app = typer.Typer(help="Train the small heads that lenses ship (seeded, reproducible).", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("behaviour")
def train_behaviour(
    annomi: Annotated[Path, typer.Argument(help="AnnoMI-full.csv (utterance annotations).", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Head file to write (.npz); a .json training record is "
                                                          "written beside it.")] = Path("behaviour_head_v1.npz"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    model: Annotated[str | None, typer.Option(help="sentence-transformers model (default all-MiniLM-L6-v2).")] = None,
) -> None:
    """Fit the behaviour lens's MI head on AnnoMI (logistic per code on frozen embeddings; thresholds by grouped CV)."""
    import json

    from alliance.encoders import load_encoder
    from alliance.training.behaviour import train_behaviour as train

    record = train(annomi, out, load_encoder(model), seed=seed)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    console.print(f"[green]wrote[/green] {out} and {out.with_suffix('.json')}")


def main() -> None:  # pragma: no cover - console entry point
    app()
