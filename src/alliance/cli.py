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


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``["text=utterance", ...]`` -> ``{"text": "utterance"}``; a value without ``=`` is a usage error."""
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, value = v.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {v!r}", param_hint=option)
        out[key.strip()] = value.strip()
    return out


def _run(inputs: list[Path], out: Path, fmt: str, on_error: OnError, lenses: list[str] | None, model: str | None,
         cache_dir: Path | None, no_cache: bool, context: int, seed: int, resume: bool, probes: Path | None,
         reader_options: dict | None = None):
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
    column_map: Annotated[list[str] | None, typer.Option("--map", help="Table column for a field, FIELD=COLUMN "
                                                         "(repeatable), e.g. --map text=utterance --map "
                                                         "session_id=conv.")] = None,
    role_map: Annotated[list[str] | None, typer.Option("--role", help="Speaker code for a role, CODE=ROLE "
                                                       "(repeatable), e.g. --role T=counsellor --role C=client.")] = None,
) -> None:
    """Score transcripts: writes turns.parquet, sessions.parquet, run.json and report.html into --out."""
    reader_options: dict = {}
    if column_map:
        reader_options["columns"] = _pairs(column_map, "--map")
    if role_map:
        reader_options["roles"] = _pairs(role_map, "--role")
    _run(inputs, out, fmt, on_error, lenses, model, cache_dir, no_cache, context, seed, resume, probes,
         reader_options)
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


class ClientKind(str, Enum):
    scripted = "scripted"
    model = "model"


@app.command()
def simulate(
    bot: Annotated[list[str], typer.Option("--bot", "-b", help="Bot under test (repeatable): eliza, advice, soothe, "
                                                               "module:callable, 'endpoint' (the configured LLM) "
                                                               "or an OpenAI-compatible base URL.")],
    personas: Annotated[str, typer.Option(help="'all' (the shipped bank) or a persona JSON file.")] = "all",
    persona_id: Annotated[list[str] | None, typer.Option("--persona-id", help="Only these persona ids "
                                                                             "(repeatable).")] = None,
    sessions: Annotated[int, typer.Option(help="Sessions per course of care.")] = 3,
    exchanges: Annotated[int, typer.Option(help="Maximum exchanges per session.")] = 8,
    seed: Annotated[int, typer.Option(help="Random seed (recorded; a rerun with it reproduces the run).")] = 0,
    client: Annotated[ClientKind, typer.Option(help="'scripted' (offline heuristic) or 'model' (needs a "
                                                    "configured endpoint).")] = ClientKind.scripted,
    llm_config: Annotated[Path | None, typer.Option(help="LLM config file (TOML); default "
                                                         "~/.config/alliance/llm.toml or $ALLIANCE_LLM_*.")] = None,
    markers_only: Annotated[bool, typer.Option("--markers-only", help="Scripted clients read replies by surface "
                                                                      "markers only (no encoder).")] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("alliance-sim"),
) -> None:
    """Run simulated courses of care against chatbots, score them with every default lens and report."""
    from alliance.simulate.personas import PersonaError
    from alliance.simulate.runner import bot_profiles, profile_table, run_simulation

    llm = None
    if client == ClientKind.model or any(b == "endpoint" for b in bot):
        from alliance.llm import LLMClient, LLMConfigError, require_config

        try:
            llm = LLMClient(require_config(llm_config))
        except LLMConfigError as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
    bots = [b if b != "endpoint" or llm is None else _endpoint_bot(llm, seed) for b in bot]
    try:
        sim = run_simulation(bots, out, personas=personas, persona_ids=persona_id, sessions=sessions, seed=seed,
                             max_exchanges=exchanges, client=client.value, use_lenses=not markers_only, llm=llm)
    except (PersonaError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    out_console.print(profile_table(bot_profiles(sim.table)))
    console.print(f"[green]done[/green]: {out}/transcripts.jsonl, simulation.parquet, simulation.html, report.html")


def _endpoint_bot(llm, seed: int):
    from alliance.simulate.bots import EndpointBot

    return EndpointBot(llm, seed=seed)


@app.command()
def redact(
    file: Annotated[Path, typer.Argument(help="Transcript file (any readable format).", exists=True)],
    preview: Annotated[bool, typer.Option("--preview", help="Show what would be sent (the default action).")] = True,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Input format, or 'auto'.")] = "auto",
    name: Annotated[list[str] | None, typer.Option("--name", help="Extra name to redact (repeatable).")] = None,
    all_turns: Annotated[bool, typer.Option("--all", help="Show every turn, not only those that change.")] = False,
) -> None:
    """Preview redaction: each turn as it would leave this machine, with names, e-mails, phones, addresses and
    dates replaced. Nothing is sent."""
    from rich.table import Table

    from alliance.io import InputError, read
    from alliance.llm.redact import Redactor

    try:
        corpus = read([file], format=fmt).corpus
    except InputError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    red = Redactor(name or ())
    table = Table("session", "#", "speaker", "as it would be sent", "replaced")
    counts: dict[str, int] = {}
    changed = 0
    for r in corpus.turns.itertuples(index=False):
        res = red.redact(str(r.text))
        for s in res.spans:
            counts[s.kind] = counts.get(s.kind, 0) + 1
        changed += res.changed
        if res.changed or all_turns:
            table.add_row(str(r.session_id), str(r.turn_index), str(r.speaker), res.text,
                          ", ".join(f"{s.kind}: {s.text}" for s in res.spans))
    out_console.print(table)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"
    out_console.print(f"{changed} of {len(corpus.turns)} turns change; replaced: {summary}. "
                      "Pattern-based: check the rest by eye (see docs/llm.md).")


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


train_app = typer.Typer(help="Train a lens's model from labelled data (seeded, on CPU).", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("empathy")
def train_empathy(
    data: Annotated[Path, typer.Option(help="Folder with EPITOME's three Reddit CSV files.")] = Path("../shared/data/epitome"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the model file and its MODEL_CARD.md.")] = Path("empathy-model"),
    seed: Annotated[int, typer.Option(help="Random seed (folds and solver), recorded in the model card.")] = 0,
    folds: Annotated[int, typer.Option(help="Grouped cross-validation folds reported in the card (0 = skip).")] = 5,
    limit: Annotated[int | None, typer.Option(help="Use only the first N seeker posts (quick checks).")] = None,
) -> None:
    """Train the empathy lens (EPITOME mechanisms) on frozen sentence embeddings; use it with the lens option
    model=PATH."""
    from alliance.encoders import load_encoder
    from alliance.training.empathy import TrainingDataError, train_and_save

    try:
        result = train_and_save(data, out, load_encoder(), seed=seed, cv_folds=folds, limit=limit)
    except TrainingDataError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    for m, s in ((result["meta"].get("cross_validation") or {}).get("scores") or {}).items():
        out_console.print(f"{m}: macro-F1 {s['macro_f1']:.3f}  accuracy {s['accuracy']:.3f} ({folds}-fold, grouped by sp_id)")
    console.print(f"[green]model[/green]: {result['model']}  [green]card[/green]: {result['card']}")


@app.command()
def version() -> None:
    """Print the version of alliance."""
    from alliance import __version__

    out_console.print(__version__)




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


def _read_run(folder: Path):
    import pandas as pd

    for f in ("turns.parquet", "sessions.parquet"):
        if not (folder / f).exists():
            console.print(f"[red]error:[/red] {folder / f}: missing; run `alliance analyze ... --out {folder}` first")
            raise typer.Exit(2)
    return pd.read_parquet(folder / "turns.parquet"), pd.read_parquet(folder / "sessions.parquet")


@train_app.command("calibration")
def train_calibration(
    runs: Annotated[list[Path], typer.Argument(help="Output folders of `alliance analyze` on rated sessions.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (.json.gz).")] = Path(
        "calibration.json.gz"),
    group_key: Annotated[str, typer.Option(help="Session label that identifies the client (folds never split "
                                                "a client).")] = "client_id",
    seed: Annotated[int, typer.Option(help="Random seed, recorded in the model card.")] = 0,
) -> None:
    """Fit the client-calibrated alliance model (goal, task, bond, overall) on rated sessions and save it."""
    import json

    import pandas as pd

    from alliance.calibration import CalibratedAlliance, review_targets, session_features

    parts = [_read_run(r) for r in runs]
    turns = pd.concat([p[0] for p in parts], ignore_index=True)
    sessions = pd.concat([p[1] for p in parts], ignore_index=True)
    X = session_features(turns, sessions)
    Y = review_targets(sessions).reindex(X.index)
    groups = [(json.loads(m) if isinstance(m, str) else (m or {})).get(group_key, f"{c}/{s}")
              for m, c, s in zip(sessions["meta"], sessions["course_id"], sessions["session_id"], strict=True)]
    groups = pd.Series(groups, index=pd.MultiIndex.from_frame(sessions[["course_id", "session_id"]])).reindex(X.index)
    rated = Y.notna().all(axis=1)
    console.print(f"{int(rated.sum())} of {len(Y)} sessions carry all ratings")
    model = CalibratedAlliance(random_state=seed).fit(X, Y, groups.astype(str).to_numpy())
    # record the runs' lenses and encoder: held-out scoring (validate_trajectory --holdout) rebuilds features from them
    records = []
    for r in runs:
        if (r / "run.json").exists():
            try:
                records.append(json.loads((r / "run.json").read_text(encoding="utf-8")))
            except json.JSONDecodeError as e:
                console.print(f"[red]error:[/red] {r / 'run.json'}: invalid JSON at line {e.lineno}: {e.msg}")
                raise typer.Exit(2) from None
    lenses = sorted({lens["name"] for rec in records for lens in rec.get("lenses", [])})
    encoders = sorted({(rec.get("encoder") or {}).get("model_id") for rec in records} - {None})
    card = {"trained_on": [str(r) for r in runs], "sessions": int(rated.sum()),
            "clients": int(groups[rated].nunique()), "seed": seed, "group_key": group_key, "lenses": lenses}
    if len(encoders) == 1:
        card["encoder"] = encoders[0]
    model.save(out, card)
    console.print(f"[green]saved[/green] {out}")


@app.command()
def gap(
    run: Annotated[Path, typer.Argument(help="Output folder of `alliance analyze`.")],
    limit: Annotated[int, typer.Option(help="Show at most this many sessions.")] = 50,
    outcome: Annotated[str | None, typer.Option(
        help="A session label holding a rating (e.g. score, empathy, unwilling_to_continue): also print, across "
             "the corpus, how much of it per-reply empathy explains and what each other measure adds "
             "(cross-validated, no text).")] = None,
    group_key: Annotated[str, typer.Option(help="With --outcome: the session label naming the client, so no "
                                                "client is in two folds (shuffled folds when absent).")] = "client_id",
    seed: Annotated[int, typer.Option(help="With --outcome: seed of the shuffled folds.")] = 0,
) -> None:
    """The empathy-alliance gap per session: mean per-reply empathy beside the alliance trajectory and the
    client's own rating where known; with --outcome, the corpus-level analysis (docs/findings.md)."""
    import json

    import numpy as np
    from rich.table import Table

    t, s = _read_run(run)

    def f(v):
        return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else (
            f"{v:+.2f}" if isinstance(v, float) else str(v))

    emp_col = next((c for c in ("empathy_total_mean", "trajectory_empathy_level") if c in s), None)
    table = Table(title="empathy per reply vs the alliance's course (probe z units; calibrated = predicted client "
                        "rating)")
    for c in ("session", "empathy", "client bond first→last", "bond change", "ruptures (repaired)",
              "cal. goal / task / bond", "cal. overall", "client's rating"):
        table.add_column(c, overflow="fold")
    for _, r in s.head(limit).iterrows():
        meta = r.get("meta")
        meta = json.loads(meta) if isinstance(meta, str) and meta else (meta or {})
        rating = ", ".join(f"{k}={meta[k]}" for k in ("score", "empathy", "relevance", "mi_quality") if k in meta)
        seen = r.get("calibration_in_training")
        if rating and isinstance(seen, (bool, np.bool_)) and seen:
            rating += " (trained the calibration: no test of it)"
        table.add_row(
            str(r["session_id"]), f(r.get(emp_col)) if emp_col else "–",
            f"{f(r.get('trajectory_client_bond_first'))}→{f(r.get('trajectory_client_bond_last'))}",
            str(r.get("trajectory_client_bond_class", "–")),
            f"{r.get('trajectory_n_ruptures', '–')} ({r.get('trajectory_n_repaired', '–')})",
            " / ".join(f(r.get(f"calibrated_{a}")) for a in ("goal", "task", "bond")),
            f(r.get("calibrated_overall")), rating or "–")
    out_console.print(table)
    if emp_col is None:
        console.print("no per-reply empathy columns in this run (add --lens empathy)")
    if outcome:
        _gap_analysis(run, t, s, outcome, group_key, seed)


def _gap_analysis(run: Path, turns, sessions, outcome: str, group_key: str, seed: int) -> None:
    """Print the incremental, cross-validated gap analysis of one session label (alliance.gap)."""
    import json

    import numpy as np
    import pandas as pd
    from rich.table import Table

    from alliance.calibration import session_features
    from alliance.gap import GapError, incremental_gap

    metas = [json.loads(m) if isinstance(m, str) and m else (m or {}) for m in sessions["meta"]]
    if not any(outcome in m for m in metas):
        rated = sorted({k for m in metas for k, v in m.items() if isinstance(v, (int, float, bool))})
        console.print(f"[red]error:[/red] {run / 'sessions.parquet'}: no session has the label {outcome!r}; "
                      f"numeric labels here: {', '.join(rated) or 'none'}")
        raise typer.Exit(2)

    def number(v):  # a flag (True/False) counts as 1/0; text or a missing label as not rated
        try:
            return float(v)
        except (TypeError, ValueError):
            return np.nan

    keys = list(zip(sessions["course_id"], sessions["session_id"], strict=True))
    X = session_features(turns, sessions)
    y = pd.Series({k: number(m.get(outcome)) for k, m in zip(keys, metas, strict=True)}).reindex(X.index)
    groups = pd.Series({k: m.get(group_key) for k, m in zip(keys, metas, strict=True)}).reindex(X.index)
    groups = groups.astype(str).to_numpy() if groups.notna().all() else None
    try:
        res = incremental_gap(X, y, groups=groups, seed=seed)
    except GapError as e:
        console.print(f"[red]error:[/red] {run}: --outcome {outcome}: {e}")
        raise typer.Exit(2) from None
    metric = res["metric"].iloc[0]
    table = Table(title=f"what explains {outcome!r} ({res['n'].iloc[0]} rated sessions; out-of-fold "
                        f"{'AUC' if metric == 'auc' else 'Spearman rho'}, "
                        f"{'folds by ' + group_key if groups is not None else 'shuffled folds'}, no text)")
    for c in ("step: + measure", "columns", metric, "gain"):
        table.add_column(c)
    for r in res.itertuples():
        table.add_row(f"+ {r.added}" if r.Index else r.added, str(r.n_features), f"{r.value:.3f}",
                      "–" if not np.isfinite(r.gain) else f"{r.gain:+.3f}")
    out_console.print(table)


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="Output folder of `alliance analyze`.")],
    export: Annotated[str, typer.Option(help="Also write the overview's figures: 'png', 'svg' or 'png,svg'.")] = "",
) -> None:
    """Rewrite the HTML report of a run (report.html + report_files/), optionally exporting figures."""
    import json

    import pandas as pd

    from alliance.report.site import export_figures, write_site

    turns, sessions = _read_run(run)
    run_rec = json.loads((run / "run.json").read_text()) if (run / "run.json").exists() else {}
    courses = pd.read_parquet(run / "courses.parquet") if (run / "courses.parquet").exists() else None
    path = write_site(turns, sessions, run_rec, run, courses)
    console.print(f"[green]report[/green]: {path}")
    if export:
        for p in export_figures(sessions, run / "figures", tuple(x.strip() for x in export.split(",") if x.strip())):
            console.print(f"figure: {p}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m alliance.cli`
    app()
