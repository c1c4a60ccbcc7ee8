"""Run courses of care between chatbots and simulated clients, score them with every lens, and report.

Writes transcripts in the corpus format, the lens tables and report of :func:`alliance.pipeline.run_analysis`, and a
simulation table: per bot, persona and session, the client's emotional trajectory beside alliance, safety events
(risk missed or addressed), collusion with a hidden intention and fostered dependence. Deterministic given the seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliance.corpus import Corpus, SessionInfo, Turn
from alliance.simulate.appraisal import ReplyMeter
from alliance.simulate.bots import load_bot
from alliance.simulate.clients import ModelClient, ScriptedClient
from alliance.simulate.personas import Persona, bank_version, load_personas

EVENT_KINDS = ("collusion", "dependence_fostered", "risk_missed", "risk_addressed", "held_boundary", "disclosure",
               "push", "risk", "deflection", "disengaged", "leave")


@dataclass
class Simulation:
    corpus: Corpus
    table: pd.DataFrame
    trajectory: pd.DataFrame
    record: dict[str, Any] = field(default_factory=dict)


def simulate(bots: Sequence[Any], personas: Sequence[Persona], sessions: int = 3, seed: int = 0,
             max_exchanges: int = 8, client: str = "scripted", meter: ReplyMeter | None = None,
             llm: Any = None, temperature: float = 0.7,
             progress: Callable[[int, int], None] | None = None) -> Simulation:
    """Every bot meets every persona for a course of ``sessions`` sessions of up to ``max_exchanges`` exchanges."""
    if sessions < 1 or max_exchanges < 1:
        raise ValueError("sessions and max_exchanges must be >= 1")
    if client not in ("scripted", "model"):
        raise ValueError(f"client must be 'scripted' or 'model', got {client!r}")
    built = [load_bot(b, seed=seed) for b in bots]
    names = [b.name for b in built]
    if len(set(names)) != len(names):
        raise ValueError(f"two bots share a name: {names}")
    meter = meter if meter is not None else ReplyMeter(use_lenses=False)
    turns: list[Turn] = []
    infos: list[SessionInfo] = []
    traj: list[dict[str, Any]] = []
    total, done = len(built) * len(personas), 0
    client_desc: dict[str, Any] = {}
    for bot in built:
        for persona in personas:
            sim = (ModelClient(persona, llm, seed=seed, temperature=temperature, meter=meter) if client == "model"
                   else ScriptedClient(persona, seed=seed, meter=meter))
            client_desc = sim.describe()
            course = f"{bot.name}__{persona.id}"
            step = 0
            for k in range(sessions):
                sid = f"{course}__s{k + 1}"
                start_state = sim.state
                opening = sim.open_session(k)
                history = [{"role": "user", "content": opening.text}]
                rows = [(opening.text, "client", opening.as_meta())]
                traj.append({"bot": bot.name, "persona_id": persona.id, "session": k + 1, "exchange": 0,
                             "step": step, "state": opening.state, "delta": 0, "kind": "opening"})
                events: dict[str, int] = dict.fromkeys(EVENT_KINDS, 0)
                left = False
                for x in range(1, max_exchanges + 1):
                    reply = bot(list(history))
                    if not isinstance(reply, str) or not reply.strip():
                        raise ValueError(f"bot {bot.name!r} returned an empty reply in {sid}, exchange {x}")
                    reply = reply.strip()
                    history.append({"role": "assistant", "content": reply})
                    ans = sim.respond(reply, history[-2]["content"])
                    reading = (sim.meter.read(history[-2]["content"], reply)
                               if sim.meter.use_lenses or sim.meter.reaction is not None else None)
                    rows.append((reply, "counsellor", {"sim_reading": reading.as_meta()} if reading else {}))
                    rows.append((ans.text, "client", {**ans.as_meta(), "sim_reasons": ans.reasons}))
                    history.append({"role": "user", "content": ans.text})
                    step += 1
                    for e in ans.events:
                        if e in events:
                            events[e] += 1
                    traj.append({"bot": bot.name, "persona_id": persona.id, "session": k + 1, "exchange": x,
                                 "step": step, "state": ans.state, "delta": ans.delta, "kind": ans.kind})
                    if ans.left:
                        left = True
                        break
                if not left:
                    closing = sim.close_session()
                    rows.append((bot(list(history)).strip() or "(no reply)", "counsellor", {}))
                    rows.append((closing.text, "client", closing.as_meta()))
                for i, (text, speaker, meta) in enumerate(rows):
                    turns.append(Turn(course_id=course, session_id=sid, turn_index=i, speaker=speaker, text=text,
                                      session_index=k, counsellor_is_ai=True, meta=meta))
                infos.append(SessionInfo(course, sid, k, source="alliance.simulate", meta={
                    **persona.profile(), "bot": bot.name, "sim_seed": seed, "sim_client": client,
                    "sim_start_state": start_state, "sim_end_state": sim.state, "sim_left": left,
                    "sim_exchanges": sum(1 for r in rows if r[1] == "counsellor"),
                    **{f"sim_n_{e}": n for e, n in events.items()}}))
            done += 1
            if progress:
                progress(done, total)
    corpus = Corpus.from_turns(turns, infos)
    record = {"bots": [getattr(b, "describe", lambda b=b: {"bot": b.name})() for b in built],
              "personas": [p.id for p in personas], "sessions": sessions, "max_exchanges": max_exchanges,
              "seed": seed, "client": client_desc, "meter": meter.describe()}
    return Simulation(corpus, session_table(corpus), pd.DataFrame(traj), record)


def session_table(corpus: Corpus) -> pd.DataFrame:
    """One row per simulated session from the session metadata."""
    rows = []
    for r in corpus.sessions.itertuples(index=False):
        m = dict(r.meta)
        rows.append({"course_id": r.course_id, "session_id": r.session_id, "session": int(r.session_index) + 1,
                     **{k: v for k, v in m.items() if not isinstance(v, (dict, list))}})
    t = pd.DataFrame(rows)
    t["sim_state_change"] = t["sim_end_state"] - t["sim_start_state"]
    return t


#: Columns of the scored sessions table carried into the simulation table when present.
ALLIANCE_COLUMNS = ("alliance_client_goal_mean", "alliance_client_task_mean", "alliance_client_bond_mean",
                    "alliance_counsellor_bond_mean", "alliance_client_bond_slope")


def bot_profiles(table: pd.DataFrame) -> pd.DataFrame:
    """Per bot: mean state change, share of sessions left early, rates of collusion, missed risk, dependence."""
    agg: dict[str, tuple[str, str]] = {
        "sessions": ("session_id", "count"), "mean_state_change": ("sim_state_change", "mean"),
        "mean_end_state": ("sim_end_state", "mean"), "left_early": ("sim_left", "mean"),
        "collusion_per_session": ("sim_n_collusion", "mean"), "risk_missed_per_session": ("sim_n_risk_missed", "mean"),
        "risk_addressed_per_session": ("sim_n_risk_addressed", "mean"),
        "dependence_per_session": ("sim_n_dependence_fostered", "mean"),
        "disclosures_per_session": ("sim_n_disclosure", "mean")}
    for c in ALLIANCE_COLUMNS:
        if c in table:
            agg[c] = (c, "mean")
    extra = [c for c in table.columns if c.startswith("safety_") and pd.api.types.is_numeric_dtype(table[c])]
    for c in extra[:6]:
        agg[c] = (c, "mean")
    out = table.groupby("bot", sort=True).agg(**agg)
    out["left_early"] = out["left_early"].astype(float)
    return out.reset_index()


def run_simulation(bots: Sequence[Any], out_dir: str | Path, personas: str | Path | None = "all",
                   persona_ids: Sequence[str] | None = None, sessions: int = 3, seed: int = 0,
                   max_exchanges: int = 8, client: str = "scripted", use_lenses: bool = True,
                   lenses: Sequence[str] | None = None, encoder: Any = None, llm: Any = None,
                   temperature: float = 0.7, score: bool = True, progress: Callable[[int, int], None] | None = None,
                   appraisal: str | None = None) -> Simulation:
    """Simulate, write ``transcripts.jsonl``, score with every default lens (turns/sessions parquet, run.json,
    report.html), and write ``simulation.parquet``, ``trajectory.parquet``, ``simulation.json`` and
    ``simulation.html``.

    ``appraisal``: how scripted clients read a reply: ``reaction`` (the model learned from real clients; the
    default), ``lenses`` (the project's lenses and markers: gameable, kept for comparison) or ``markers`` (surface
    markers only, no encoder). ``use_lenses=False`` without ``appraisal`` means ``markers`` (older callers)."""
    from alliance.io.jsonl import write_jsonl

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plist = load_personas(personas, persona_ids)
    appraisal = appraisal or ("reaction" if use_lenses else "markers")
    if appraisal not in ("reaction", "lenses", "markers"):
        raise ValueError(f"appraisal must be 'reaction', 'lenses' or 'markers', got {appraisal!r}")
    if (appraisal != "markers" or score) and encoder is None:
        from alliance.encoders import load_encoder

        encoder = load_encoder()
    meter = ReplyMeter(use_lenses=appraisal == "lenses", encoder=encoder, reaction=appraisal == "reaction")
    sim = simulate(bots, plist, sessions=sessions, seed=seed, max_exchanges=max_exchanges, client=client,
                   meter=meter, llm=llm, temperature=temperature, progress=progress)
    write_jsonl(sim.corpus, out / "transcripts.jsonl")
    table = sim.table
    if score:
        from alliance.pipeline import run_analysis

        analysis = run_analysis(sim.corpus, out, lenses=lenses, encoder=encoder, seed=seed,
                                inputs={"simulation": "transcripts.jsonl"}, resume=False)
        sess = analysis.sessions
        keep = ["course_id", "session_id"] + [c for c in sess.columns if c.startswith(("alliance_", "safety_",
                                                                                     "empathy_"))
                                               and pd.api.types.is_numeric_dtype(sess[c])]
        table = table.merge(sess[keep], on=["course_id", "session_id"], how="left")
        sim.record["lenses"] = [d.get("name") for d in analysis.run.get("lenses", [])]
    sim.table = table
    sim.record["persona_bank"] = bank_version(personas)
    if llm is not None:
        sim.record["llm"] = llm.describe()
    table.to_parquet(out / "simulation.parquet", index=False)
    sim.trajectory.to_parquet(out / "trajectory.parquet", index=False)
    profiles = bot_profiles(table)
    profiles.to_parquet(out / "bot_profiles.parquet", index=False)
    (out / "simulation.json").write_text(json.dumps(sim.record, indent=2, sort_keys=True, default=str),
                                         encoding="utf-8")
    from alliance.simulate.report import write_simulation_html

    write_simulation_html(table, sim.trajectory, profiles, sim.record, out / "simulation.html")
    return sim


def profile_table(profiles: pd.DataFrame) -> Any:
    """The bot profiles as a rich table for the terminal (short column names)."""
    from rich.table import Table

    short = {"mean_state_change": "mood change", "left_early": "left", "collusion_per_session": "collude",
             "risk_missed_per_session": "risk missed", "risk_addressed_per_session": "risk met",
             "dependence_per_session": "depend", "alliance_client_bond_mean": "bond z"}
    cols = [c for c in short if c in profiles]
    table = Table("bot", *(short[c] for c in cols), title="per session, mean over personas")
    for r in profiles.itertuples(index=False):
        table.add_row(str(r.bot), *(f"{v:.2f}" if np.isfinite(v) else "-" for v in (getattr(r, c) for c in cols)))
    return table
