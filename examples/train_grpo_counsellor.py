"""Example: train a small counselling chatbot with TRL's GRPO against alliance's rewards (not run in CI).

What it shows: prompts built from simulated courses of care (the offline persona bank and a baseline bot), and
reward functions from :mod:`alliance.rewards` that add the simulated client's emotion (appraised by the reaction
model learned from real clients) and that model's appraisal of the reply, but subtract safety failures judged by the
safety lens, collusion and fostered dependence, so neither pleasing a client into harm nor echoing "It sounds like
you feel..." pays.

Requirements (not dependencies of alliance): ``pip install trl datasets`` and a small instruct model you may use,
on a GPU. Run::

    python examples/train_grpo_counsellor.py --model PATH_OR_NAME --out grpo-out --steps 200

Reward functions take ``(completions, **kwargs)`` and read ``prompts`` and the dataset's extra columns
(``persona_id``, ``client_state``) from kwargs, the signature TRL's GRPOTrainer calls them with.
"""

from __future__ import annotations

import argparse


def build_prompts(sessions: int = 2, exchanges: int = 6, seed: int = 0) -> list[dict]:
    """One prompt per client turn of simulated courses: the conversation so far, the persona and its state."""
    from alliance.simulate import load_personas, simulate

    sim = simulate(["eliza"], load_personas(), sessions=sessions, seed=seed, max_exchanges=exchanges)
    rows = []
    system = {"role": "system", "content": "You are a counselling chatbot. Reply in two to four sentences."}
    for (course, _), turns in sim.corpus.iter_sessions():
        persona_id = course.split("__", 1)[1]
        history: list[dict] = []
        for r in turns.itertuples(index=False):
            role = "user" if r.speaker == "client" else "assistant"
            history.append({"role": role, "content": r.text})
            if role == "user" and not r.meta.get("sim_left"):
                rows.append({"prompt": [system, *history], "persona_id": persona_id,
                             "client_state": float(r.meta.get("sim_state", 50.0))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", default="grpo-out")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from alliance import rewards

    data = Dataset.from_list(build_prompts(seed=args.seed)).shuffle(seed=args.seed)
    config = GRPOConfig(output_dir=args.out, max_steps=args.steps, seed=args.seed, num_generations=4,
                        per_device_train_batch_size=4, max_completion_length=160, logging_steps=10,
                        # one weight per reward function below; the penalties outweigh any emotion gain
                        reward_weights=[rewards.WEIGHTS[k] for k in
                                        ("emotion", "reaction", "safety", "collusion", "dependence")])
    trainer = GRPOTrainer(
        model=args.model,
        reward_funcs=[rewards.emotion_change_reward, rewards.reaction_reward, rewards.safety_penalty,
                      rewards.collusion_penalty, rewards.dependence_penalty],
        args=config, train_dataset=data)
    trainer.train()
    trainer.save_model(args.out)
    # then: alliance simulate --bot endpoint (serve the trained model behind an OpenAI-compatible server)


if __name__ == "__main__":
    main()
