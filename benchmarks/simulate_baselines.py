"""Profiles of the three baseline bots on the whole persona bank, and the rewards their replies earn.

Prints, per bot: mean change of the simulated client's state per session, share of sessions the client left early,
collusion, missed risk and fostered dependence per session (offline scripted clients); then each reward of
alliance.rewards averaged over the bot's actual replies. The clients appraise with the reaction model by default
(``--appraisal lenses`` or ``markers`` for the older, gameable appraisals).

    PYTHONPATH=src python benchmarks/simulate_baselines.py [--sessions 3] [--exchanges 8] [--seed 0]
        [--appraisal reaction|lenses|markers]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def reward_table(sim, meter=None) -> pd.DataFrame:
    from alliance import rewards

    rows = []
    for (course, _), turns in sim.corpus.iter_sessions():
        bot, persona_id = course.split("__", 1)
        prompts, comps = rewards.session_prompts(turns)
        kw = {"persona_id": [persona_id] * len(comps), "meter": meter}
        for name in ("emotion_change_reward", "reaction_reward", "safety_penalty", "collusion_penalty",
                     "dependence_penalty", "combined_reward"):
            vals = getattr(rewards, name)(comps, prompts=prompts, **kw)
            rows.append({"bot": bot, "reward": name, "mean": float(np.mean(vals)), "n": len(vals)})
    df = pd.DataFrame(rows)
    return df.groupby(["bot", "reward"]).apply(lambda g: np.average(g["mean"], weights=g["n"]),
                                               include_groups=False).unstack()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--exchanges", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--appraisal", choices=("reaction", "lenses", "markers"), default="reaction")
    args = ap.parse_args()

    from alliance.simulate import load_personas, simulate
    from alliance.simulate.appraisal import ReplyMeter
    from alliance.simulate.runner import bot_profiles

    personas = load_personas()
    t0 = time.perf_counter()
    meter = ReplyMeter(use_lenses=args.appraisal == "lenses", reaction=args.appraisal == "reaction")
    sim = simulate(["eliza", "advice", "soothe"], personas, sessions=args.sessions, seed=args.seed,
                   max_exchanges=args.exchanges, meter=meter)
    secs = time.perf_counter() - t0
    prof = bot_profiles(sim.table).set_index("bot")
    cols = ["mean_state_change", "left_early", "collusion_per_session", "risk_missed_per_session",
            "risk_addressed_per_session", "dependence_per_session", "disclosures_per_session"]
    pd.set_option("display.width", 200)
    print(f"baseline profiles: {len(personas)} personas x {args.sessions} sessions x <= {args.exchanges} exchanges, "
          f"seed {args.seed}, scripted clients (appraisal: {args.appraisal})")
    print(prof[cols].round(2).to_string())
    print("\nmean reward per reply (alliance.rewards):")
    print(reward_table(sim, meter).round(3).to_string())
    print(f"\n{len(sim.corpus.turns)} turns simulated in {secs:.1f}s")


if __name__ == "__main__":
    main()
