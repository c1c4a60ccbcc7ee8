"""`alliance train ...`: retrain a model (empathy, behaviour, calibration, reaction, safety), seeded, on CPU.

Each writes a model file with its training record or model card; see the measures' docs for the figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import console, out_console, read_run

train_app = typer.Typer(help="Train a lens's model from labelled data (seeded, on CPU).", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("empathy")
def train_empathy(
    data: Annotated[Path, typer.Option(help="Folder with EPITOME's three Reddit CSV files.")] = Path("../shared/data/epitome"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the model file and its MODEL_CARD.md.")] = Path("empathy-model"),
    seed: Annotated[int, typer.Option(help="Random seed (folds and solver), recorded in the model card.")] = 0,
    folds: Annotated[int, typer.Option(help="Grouped cross-validation folds reported in the card (0 = skip).")] = 5,
    limit: Annotated[int | None, typer.Option(help="Use only the first N seeker posts (quick checks).")] = None,
    model: Annotated[str, typer.Option(help="'linear': heads on frozen sentence vectors (the default lens model); "
                                            "'cross': the cross-encoder, MiniLM's top layer adapted with LoRA "
                                            "(CPU-heavy: about 11 CPU minutes with the 5-fold run).")] = "linear",
    epochs: Annotated[int | None, typer.Option(min=1, help="Cross-encoder: epochs of the final fit (default: the "
                                                           "median early stopping chose in the folds, else 3).")] = None,
) -> None:
    """Train the empathy lens (EPITOME mechanisms); use the file with the lens option model=PATH or
    `alliance analyze --empathy-model PATH`."""
    from alliance.training.empathy import TrainingDataError

    if model not in ("linear", "cross"):
        console.print(f"[red]error:[/red] --model {model!r}: choose 'linear' or 'cross'")
        raise typer.Exit(2)
    try:
        if model == "cross":
            import torch

            from alliance.training.empathy_cross import train_and_save_cross

            torch.set_num_threads(1)  # a shared CPU: one thread wastes least on waiting
            result = train_and_save_cross(data, out, seed=seed, cv_folds=folds, limit=limit, epochs=epochs,
                                          log=console.print)
        else:
            from alliance.encoders import load_encoder
            from alliance.training.empathy import train_and_save

            result = train_and_save(data, out, load_encoder(), seed=seed, cv_folds=folds, limit=limit)
    except TrainingDataError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    for m, s in ((result["meta"].get("cross_validation") or {}).get("scores") or {}).items():
        levels = " / ".join(f"{x:.3f}" for x in s.get("level_f1", []))
        out_console.print(f"{m}: macro-F1 {s['macro_f1']:.3f}  accuracy {s['accuracy']:.3f}"
                          + (f"  level F1 {levels}" if levels else "") + f" ({folds}-fold, grouped by sp_id)")
    console.print(f"[green]model[/green]: {result['model']}  [green]card[/green]: {result['card']}")


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


@train_app.command("calibration")
def train_calibration(
    runs: Annotated[list[Path], typer.Argument(help="Output folders of `alliance analyze` on rated sessions.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (.json.gz).")] = Path(
        "calibration.json.gz"),
    group_key: Annotated[str, typer.Option(help="Session label that identifies the client (folds never split "
                                                "a client).")] = "client_id",
    seed: Annotated[int, typer.Option(help="Random seed, recorded in the model card.")] = 0,
    corpora: Annotated[str, typer.Option(help="Also train on these rated corpora of --data-root, comma-separated "
                                              "(esconv, failedesconv, annomi): each is read and scored with the runs' "
                                              "lenses, and its rating enters as a within-corpus rank on the runs' "
                                              "score scale (docs/calibration.md, Across corpora). Empty: the runs "
                                              "only.")] = "",
    data_root: Annotated[Path, typer.Option(help="Folder holding the corpora named by --corpora.")] = Path(
        "../shared/data"),
) -> None:
    """Fit the client-calibrated alliance model (goal, task, bond, overall) on rated sessions and save it.

    The runs are the reference corpus (client reviews: KokoroChat's items and score, its dropout flag)."""
    import json

    import pandas as pd

    from alliance.calibration import CalibratedAlliance, review_targets, session_features

    parts = [read_run(r) for r in runs]
    turns = pd.concat([p[0] for p in parts], ignore_index=True)
    sessions = pd.concat([p[1] for p in parts], ignore_index=True)
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
    extra = [c.strip() for c in corpora.split(",") if c.strip()]
    X = session_features(turns, sessions)
    groups = [(json.loads(m) if isinstance(m, str) else (m or {})).get(group_key, f"{c}/{s}")
              for m, c, s in zip(sessions["meta"], sessions["course_id"], sessions["session_id"], strict=True)]
    groups = pd.Series(groups, index=pd.MultiIndex.from_frame(sessions[["course_id", "session_id"]])).reindex(X.index)
    card_corpora = None
    if extra:
        from alliance.calibration_multi import MultiCorpusError, multi_corpus_targets

        try:
            tables = _score_corpora(extra, data_root, lenses)
            Y, dropout, _, family = multi_corpus_targets({"kokorochat": sessions,
                                                          **{n: s for n, (_, s) in tables.items()}})
        except MultiCorpusError as e:  # a missing corpus, or runs without the client ratings that set the scale
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
        X = pd.concat([X, *(session_features(t, s) for t, s in tables.values())])
        X = X[~X.index.duplicated()].reindex(Y.index)
        g = pd.Series([f"{c}/{s}" for c, s in Y.index], index=Y.index)
        g[family.eq("kokorochat").to_numpy()] = groups.reindex(Y.index[family.eq("kokorochat").to_numpy()]).astype(
            str).to_numpy()
        card_corpora = {str(k): int(v) for k, v in family.value_counts().items()}
        console.print("sessions with a rating per corpus family: " + ", ".join(f"{k} {v}" for k, v in
                                                                                card_corpora.items()))
        model = CalibratedAlliance(random_state=seed).fit(X, Y, g.to_numpy(), dropout=dropout.to_numpy(),
                                                          corpus=family.to_numpy())
        rated = Y["overall"].notna()
    else:
        Y = review_targets(sessions).reindex(X.index)
        rated = Y.notna().all(axis=1)
        console.print(f"{int(rated.sum())} of {len(Y)} sessions carry all ratings")
        model = CalibratedAlliance(random_state=seed).fit(X, Y, groups.astype(str).to_numpy())
    encoders = sorted({(rec.get("encoder") or {}).get("model_id") for rec in records} - {None})
    card = {"trained_on": [str(r) for r in runs] + [f"{data_root}:{c}" for c in extra], "sessions": int(rated.sum()),
            "clients": int(groups.reindex(rated.index)[rated.to_numpy()].nunique()), "seed": seed,
            "group_key": group_key, "lenses": lenses}
    if card_corpora:
        card["corpora"] = card_corpora
    if len(encoders) == 1:
        card["encoder"] = encoders[0]
    model.save(out, card)
    console.print(f"[green]saved[/green] {out}")


def _score_corpora(names: list[str], root: Path, lenses: list[str]) -> dict:
    """Each named corpus of the data root read and scored with ``lenses`` (in a temporary folder): name ->
    (turns, sessions). A missing corpus raises MultiCorpusError naming the files."""
    import tempfile

    from alliance.calibration_multi import corpus_paths
    from alliance.io import read
    from alliance.pipeline import run_analysis

    out = {}
    for name in names:
        fmt, paths = corpus_paths(root, name)
        loaded = read(paths, format=fmt, on_error="skip")
        if loaded.rejected:  # left out, and said so: one bad record never aborts the rest
            r = loaded.rejected[0]
            console.print(f"{name}: {len(loaded.rejected)} records rejected and left out (first: {r.source}:"
                          f"{r.location}: {r.problem})")
        with tempfile.TemporaryDirectory() as tmp:
            a = run_analysis(loaded.corpus, Path(tmp), lenses=lenses or None, write_report=False)
            out[name] = (a.turns, a.sessions)
        console.print(f"{name}: {len(out[name][1])} sessions scored with {', '.join(lenses) or 'the default lenses'}")
    return out


@train_app.command("reaction")
def train_reaction(
    data: Annotated[Path, typer.Option(help="The shared data folder (ESConv, FailedESConv, AnnoMI).")] = Path(
        "../shared/data"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (.npz); the .json record and the "
                                                          ".md model card are written beside it.")] = Path(
        "reaction_v2.npz"),
    seed: Annotated[int, typer.Option(help="Random seed (folds and solver), recorded in the model card.")] = 0,
    folds: Annotated[int, typer.Option(help="Cross-validation folds, grouped by dialogue.")] = 5,
    limit: Annotated[int | None, typer.Option(help="Use only the first N dialogues of each corpus (quick checks).")]
    = None,
    all_data: Annotated[bool, typer.Option("--all", help="Every dialogue of every corpus (the default uses the "
                                                         "shipped model's subset, recorded in its card).")] = False,
) -> None:
    """Fit the client reaction model the simulated client appraises with (heads on frozen embeddings)."""
    from alliance.encoders import load_encoder
    from alliance.training.reaction import ReactionDataError
    from alliance.training.reaction import train_reaction as train

    try:
        record = train(data, out, load_encoder(), seed=seed, folds=folds, limit=limit,
                       limits={"esconv": None, "failed_esconv": None, "annomi": None} if all_data else None,
                       progress=lambda d, n: console.print(f"encoded {d}/{n}", end="\r"))
    except ReactionDataError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    for head, s in record["cross_validation"].items():
        fig = f"AUC {s['auc']:.3f}" if "auc" in s else f"Spearman {s['spearman']:.3f}"
        extra = f"; dialogue Spearman {s['dialogue_spearman']:.3f}" if "dialogue_spearman" in s else ""
        out_console.print(f"{head}: {fig} (n={s['n']}{extra}; {folds}-fold by dialogue)")
    console.print(f"[green]wrote[/green] {out}, {out.with_suffix('.json')}, {out.with_suffix('.md')}")


@train_app.command("safety")
def train_safety(
    data: Annotated[Path | None, typer.Option(help="Your copy of the safety sources (between_help_and_harm/, "
                                                   "diasafety/, openai_moderation/, xstest/).")] = Path(
        "../shared/data/safety"),
    ordinary: Annotated[Path | None, typer.Option(help="Folder with annomi/, esconv/, kokorochat_en/ (ordinary talk, "
                                                       "the false-alarm set; default: the parent of --data).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Model folder (default: $ALLIANCE_HOME/models/safety "
                                                                 "or ~/.local/share/alliance/models/safety).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (folds and solver), recorded in the model card.")] = 0,
    per_corpus: Annotated[int, typer.Option(help="Ordinary client turns sampled per corpus (seeded).")] = 1500,
    default: Annotated[bool, typer.Option("--default", help="Rebuild the shipped default instead: project exemplars "
                                                            "with AnnoMI and ESConv's train split as ordinary talk (no safety source).")] = False,
) -> None:
    """Train the safety lens's model (risk heads and reply judge on frozen embeddings); the lens then uses it.

    The model is derived from research data under non-commercial or research-only terms: it is written to your own
    model folder, never into the package. Keep it off public repositories."""
    from alliance.encoders import load_encoder
    from alliance.lenses.safety_model import MODEL_FILE, SHIPPED, user_model_dir
    from alliance.training.safety import model_card
    from alliance.training.safety import train_safety as train
    from alliance.training.safety_data import SafetyDataError

    ordinary = ordinary or (data.parent if data else None)
    folder = out or user_model_dir()
    try:
        model = train(None if default else data, ordinary, load_encoder(), seed=seed, per_corpus=per_corpus,
                      kind="default" if default else "trained", progress=lambda m: console.print(m))
    except SafetyDataError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    path = model.save(folder / (SHIPPED if default else MODEL_FILE))
    (folder / "MODEL_CARD.md").write_text(model_card(model), encoding="utf-8")
    op = model.operating_point
    out_console.print(f"operating point: {op.get('name')}: threshold {op.get('threshold')}, dev recall "
                      f"{op.get('dev_recall')}, dev false alarms {op.get('dev_false_alarm')}")
    console.print(f"[green]model[/green]: {path}  [green]card[/green]: {folder / 'MODEL_CARD.md'}")
