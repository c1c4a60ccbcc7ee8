"""`alliance simulate`: simulated courses of care against chatbots, scored with the default lenses.

Offline by default (scripted clients); a model-driven client or bot needs a configured endpoint.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import console, out_console


class Suite(str, Enum):
    safety = "safety"


class Appraisal(str, Enum):
    reaction = "reaction"
    lenses = "lenses"
    markers = "markers"


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
                                                                      "markers only (no encoder; gameable); with "
                                                                      "--suite safety, replies are also judged by "
                                                                      "markers instead of the safety lens.")] = False,
    appraisal: Annotated[Appraisal | None, typer.Option(
        help="How scripted clients read a reply: 'reaction' (learned from real clients; the default), 'lenses' "
             "(the project's own lenses: gameable, kept for comparison) or 'markers'.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("alliance-sim"),
    suite: Annotated[Suite | None, typer.Option(help="'safety': only the personas that carry risk; each risk "
                                                     "episode scored on detect, ask, refer, no means, no collusion "
                                                     "by the safety lens, with rates, intervals and the "
                                                     "difference of each bot from the first.")] = None,
) -> None:
    """Run simulated courses of care against chatbots, score them with every default lens and report."""
    mode = (appraisal or (Appraisal.markers if markers_only else Appraisal.reaction)).value
    if suite == Suite.safety:
        _safety_suite(bot, personas, persona_id, sessions, exchanges, seed, client, llm_config, markers_only, mode,
                      out)
        return
    from alliance.simulate.personas import PersonaError
    from alliance.simulate.reaction import ReactionModelError
    from alliance.simulate.runner import bot_profiles, profile_table, run_simulation

    llm, bots = _bots(bot, client, llm_config, seed)
    try:
        sim = run_simulation(bots, out, personas=personas, persona_ids=persona_id, sessions=sessions, seed=seed,
                             max_exchanges=exchanges, client=client.value, appraisal=mode, llm=llm)
    except (PersonaError, ValueError, ReactionModelError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    out_console.print(profile_table(bot_profiles(sim.table)))
    console.print(f"[green]done[/green]: {out}/transcripts.jsonl, simulation.parquet, simulation.html, report.html")


def _bots(bot, client, llm_config, seed: int):
    """The configured model client (when a bot or the client needs one) and the bots, 'endpoint' resolved."""
    llm = None
    if client == ClientKind.model or any(b == "endpoint" for b in bot):
        from alliance.llm import LLMClient, LLMConfigError, require_config

        try:
            llm = LLMClient(require_config(llm_config))
        except LLMConfigError as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2) from None
    return llm, [b if b != "endpoint" or llm is None else _endpoint_bot(llm, seed) for b in bot]


def _endpoint_bot(llm, seed: int):
    from alliance.simulate.bots import EndpointBot

    return EndpointBot(llm, seed=seed)


def _safety_suite(bot, personas, persona_id, sessions, exchanges, seed, client, llm_config, markers_only,
                  mode: str, out: Path) -> None:
    from alliance.simulate.personas import PersonaError, load_personas
    from alliance.simulate.reaction import ReactionModelError
    from alliance.simulate.safety_suite import comparison_table, rates_table, run_safety_suite, write_safety_suite

    llm, bots = _bots(bot, client, llm_config, seed)
    from alliance.simulate.appraisal import ReplyMeter

    encoder = None
    if mode != "markers" or not markers_only:
        from alliance.encoders import load_encoder

        encoder = load_encoder()
    try:
        meter = ReplyMeter(use_lenses=mode == "lenses", encoder=encoder, reaction=mode == "reaction")
        res = run_safety_suite(bots, load_personas(personas, persona_id), sessions=sessions,
                               max_exchanges=exchanges, seed=seed, client=client.value, llm=llm,
                               judge="markers" if markers_only else "lens", meter=meter, encoder=encoder,
                               progress=lambda d, n: console.print(f"course {d}/{n}", end="\r"))
    except (PersonaError, ValueError, ReactionModelError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    files = write_safety_suite(res, out)
    out_console.print(rates_table(res["rates"]))
    if len(res["comparison"]):
        out_console.print(comparison_table(res["comparison"]))
    console.print(f"judged by: {res['record']['judge']}")
    console.print(f"[green]done[/green]: {', '.join(f'{out}/{f}' for f in files)}")
