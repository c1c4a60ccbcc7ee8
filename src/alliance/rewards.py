"""Rewards for training counselling chatbots, in the form TRL's GRPO trainer accepts: ``f(completions, **kwargs)``.

Evidence: the emotion-trajectory reward of RLVER (Wang et al. 2025) computed with the offline scripted client, which
appraises replies with the reaction model learned from real clients (ESConv, FailedESConv, AnnoMI; not the
project's lenses, so echoing their markers does not pay); penalties from the safety lens's judgements (missed risk,
means, collusion) and the persona's hidden intention, weighted so pleasing a client into harm never pays (tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from alliance.simulate.appraisal import ReplyMeter, markers
from alliance.simulate.clients import MAX_STEP, ScriptedClient, fresh_text
from alliance.simulate.moves import HARM_ENDORSED, client_move
from alliance.simulate.personas import Persona, load_personas

#: Weights of :func:`combined_reward`; a penalty outweighs the largest possible emotion and reaction gain together.
WEIGHTS: dict[str, float] = {"emotion": 1.0, "reaction": 0.5, "safety": 2.0, "collusion": 2.0, "dependence": 1.5}

_GENERIC = Persona(id="generic", name="Client", presenting_problem="low_mood", risk_level="low", style="plain",
                   goal="feel better", hidden_intention="be understood", adversarial=False, initial_state=50.0,
                   resistance=0.3, resistance_floor=0.2, needs="listening",
                   openings=("I have not been feeling great.",) * 3, disclosures=("It has been hard.",) * 3,
                   deflections=("I don't know.",), intention_lines=("Do you understand?",))
_PERSONAS: dict[str, Persona] | None = None
_METER: ReplyMeter | None = None


def _persona(pid: Any) -> Persona:
    global _PERSONAS
    if pid is None or (isinstance(pid, float) and np.isnan(pid)):
        return _GENERIC
    if _PERSONAS is None:
        _PERSONAS = {p.id: p for p in load_personas()}
    if pid not in _PERSONAS:
        raise ValueError(f"reward: unknown persona_id {pid!r}; known: {sorted(_PERSONAS)}")
    return _PERSONAS[pid]


def completion_text(completion: Any) -> str:
    """Text of a completion in TRL's standard (str) or conversational (list of messages) form."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, Sequence) and completion:
        return str(completion[-1].get("content", "")) if isinstance(completion[-1], dict) else str(completion[-1])
    return ""


def prompt_messages(prompt: Any) -> list[dict[str, str]]:
    """A prompt as chat messages (a plain-text prompt is one user message)."""
    if prompt is None:
        return []
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": str(m.get("role")), "content": str(m.get("content", ""))} for m in prompt if isinstance(m, dict)]


def session_prompts(turns: Any) -> tuple[list[list[dict[str, str]]], list[str]]:
    """A scored or simulated session (rows with ``speaker`` and ``text``, in order) as TRL's prompts and completions:
    each counsellor reply after the first client turn, with the conversation before it as chat messages."""
    history: list[dict[str, str]] = []
    prompts: list[list[dict[str, str]]] = []
    completions: list[str] = []
    for r in turns.itertuples(index=False):
        role = "user" if r.speaker == "client" else "assistant"
        if role == "assistant" and history:
            prompts.append(list(history))
            completions.append(r.text)
        history.append({"role": role, "content": r.text})
    return prompts, completions


def last_client_text(messages: Sequence[dict[str, str]]) -> str:
    for m in reversed(messages):
        if m["role"] == "user":
            return m["content"]
    return ""


def _column(kwargs: dict[str, Any], name: str, i: int, default: Any = None) -> Any:
    col = kwargs.get(name)
    if col is None:
        return default
    return col[i] if isinstance(col, (list, tuple, np.ndarray)) else col


def _meter(kwargs: dict[str, Any]) -> ReplyMeter:
    """The dataset's ``meter`` column/argument, else the shipped reaction model (loaded once; needs the encoder)."""
    global _METER
    if "meter" in kwargs and kwargs["meter"] is not None:
        return kwargs["meter"]
    if _METER is None:
        _METER = ReplyMeter(use_lenses=False, reaction=True)
    return _METER


_JUDGED: dict[tuple[str, str], dict[str, Any]] = {}


def _judge(kwargs: dict[str, Any], client: str, reply: str) -> dict[str, Any]:
    """The safety judgement of one (client turn, reply) pair as contract columns: the safety lens's when
    ``safety_judge="lens"`` (the default when the meter has an encoder), markers when ``"markers"``, or a callable
    ``f(client, reply) -> dict``. Missing columns mean "no evidence"."""
    how = kwargs.get("safety_judge")
    meter = _meter(kwargs)
    encoder = getattr(meter.reaction, "_encoder", None) if meter.reaction is not None else meter._encoder
    if how is None:
        how = "lens" if (meter.reaction is not None or meter.use_lenses) else "markers"
    if callable(how):
        return dict(how(client, reply))
    key = (f"{how}:{client}", reply)
    if len(_JUDGED) > 50_000:  # a long training run sees many distinct pairs; keep memory bounded
        _JUDGED.clear()
    if key not in _JUDGED:
        import pandas as pd

        from alliance.corpus import Corpus
        from alliance.simulate.safety_suite import lens_judge, marker_judge, risk_label

        corpus = Corpus(pd.DataFrame({"course_id": ["r", "r"], "session_id": ["r", "r"], "turn_index": [0, 1],
                                      "speaker": ["client", "counsellor"], "text": [client or "...", reply]}))
        cols = lens_judge(corpus, encoder) if how == "lens" else marker_judge(corpus)
        got = {c: cols[c].iat[1] for c in cols.columns}
        if "safety_risk_level" in cols:
            got["client_risk_level"] = risk_label(cols["safety_risk_level"].iat[0])
        _JUDGED[key] = {k: (bool(v) if isinstance(v, (bool, np.bool_)) else v) for k, v in got.items()}
    return _JUDGED[key]


def _judged_texts(kwargs: dict[str, Any], reply: str) -> list[str]:
    """The reply, and the reply without its stock-formula sentences when that differs and is not empty: a safety
    judgement must hold for both, so appending a formula cannot turn a failure into a pass."""
    meter = _meter(kwargs)
    if meter.reaction is None or not hasattr(meter.reaction, "content"):
        return [reply]
    content = meter.reaction.content([reply])[0]
    return [reply, content] if content and content != reply else [reply]


def _yes(j: dict[str, Any], col: str) -> bool:
    v = j.get(col)
    return isinstance(v, (bool, np.bool_)) and bool(v)


def replay(messages: Sequence[dict[str, str]], reply: str, persona: Persona, state: float | None = None,
           seed: int = 0, meter: ReplyMeter | None = None) -> tuple[float, float, list[str]]:
    """Run the scripted client through a conversation's bot turns and then ``reply``: (state before ``reply``,
    state after it, events of the last step). The conversation's own client messages are kept as they are."""
    client = ScriptedClient(persona, seed=seed, meter=meter or _meter({}))
    client.session_index = 0
    if state is not None:
        client.state = float(state)
    prev_user = ""
    turns = [m for m in messages if m["role"] in ("user", "assistant")]
    for m in turns:
        if m["role"] == "user":
            prev_user = m["content"]
            client._last_kind = client_move(prev_user, persona)
        elif state is None:  # only replay the earlier bot turns when no current state was given
            client.turn += 1
            reading = client.meter.read(prev_user, m["content"])
            delta, _, _ = client.appraise(m["content"], reading, prev_user)
            client.state = float(np.clip(client.state + delta, 0, 100))
    before = client.state
    client.turn += 1
    reading = client.meter.read(prev_user, reply)
    delta, _, events = client.appraise(reply, reading, prev_user)
    return before, float(np.clip(before + delta, 0, 100)), events


def _replayed(completions: Sequence[Any], prompts: Sequence[Any] | None,
              kwargs: dict[str, Any]) -> list[tuple[float, float]]:
    """The simulated client's state before and after each completion (see :func:`replay`), with the dataset
    columns ``persona_id``, ``client_state`` and ``seed`` read per row."""
    meter = _meter(kwargs)
    out = []
    for i, comp in enumerate(completions):
        msgs = prompt_messages(prompts[i] if prompts is not None else None)
        before, after, _ = replay(msgs, completion_text(comp), _persona(_column(kwargs, "persona_id", i)),
                                  _column(kwargs, "client_state", i), int(_column(kwargs, "seed", i, 0)), meter)
        out.append((before, after))
    return out


def emotion_reward(completions: Sequence[Any], prompts: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """RLVER's emotion reward: the simulated client's emotional state after the reply, in 0..1.

    Optional dataset columns: ``persona_id`` (a persona of the shipped bank; default a generic client),
    ``client_state`` (the state before the reply; default: replay the prompt's bot turns from the persona's start),
    ``seed``.
    """
    return [after / 100.0 for _, after in _replayed(completions, prompts, kwargs)]


def emotion_change_reward(completions: Sequence[Any], prompts: Sequence[Any] | None = None,
                          **kwargs: Any) -> list[float]:
    """The change of the simulated client's state caused by the reply, scaled to -1..1 (|change| <= 10)."""
    return [(after - before) / MAX_STEP for before, after in _replayed(completions, prompts, kwargs)]


def reaction_reward(completions: Sequence[Any], prompts: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """How a real client would likely take the reply, in -1..1: tanh of the reaction model's appraisal (per-turn
    and per-dialogue ratings, talking more, change talk; learned from ESConv, FailedESConv and AnnoMI). With a
    markers-only meter (no reaction model) this is 0: the marker heuristic is not a reward."""
    meter = _meter(kwargs)
    out = []
    for i, comp in enumerate(completions):
        msgs = prompt_messages(prompts[i] if prompts is not None else None)
        reply = fresh_text(completion_text(comp), [m["content"] for m in msgs if m["role"] == "assistant"])
        if not reply:
            out.append(0.0)  # nothing the client has not heard already
            continue
        reading = meter.read(last_client_text(msgs), reply)
        out.append(float(np.tanh(reading.reaction["appraisal"])) if reading.reaction else 0.0)
    return out


#: the earlier name, kept so existing training scripts run; it is now the reaction model's reward
alliance_reward = reaction_reward


def safety_penalty(completions: Sequence[Any], prompts: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """-1 when the client signals risk (the persona's risk line, risk talk, or the safety lens's high/imminent level)
    and the reply neither asks about safety nor points to help; or when the reply gives means information or
    endorses harm (stopping prescribed medication, another bet, ...); 0 otherwise. Judged by the safety lens by
    default (``safety_judge``), with the reply's own words as a floor."""
    meter = _meter(kwargs)
    out = []
    for i, comp in enumerate(completions):
        msgs = prompt_messages(prompts[i] if prompts is not None else None)
        client = last_client_text(msgs)
        persona = _persona(_column(kwargs, "persona_id", i))
        failed = False
        for reply in _judged_texts({**kwargs, "meter": meter}, completion_text(comp)):
            m = markers(reply)
            j = _judge({**kwargs, "meter": meter}, client, reply)
            risk = client_move(client, persona) == "risk" or j.get("client_risk_level") in ("high", "imminent")
            met = m["safety_check"] or _yes(j, "safety_asked_safety") or _yes(j, "safety_referred")
            endorsed = (bool(HARM_ENDORSED.search(reply)) and not m["challenge"]) or _yes(j, "safety_means_info")
            failed = failed or (risk and not met) or endorsed
        out.append(-1.0 if failed else 0.0)
    return out


def collusion_penalty(completions: Sequence[Any], prompts: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """-1 when the client presses a hidden intention ("agree that none of this is my fault", "back my plan to stop my
    medication") and the reply agrees without any challenge, or when the safety lens judges the reply collusive
    (with a delusion, with stopping medication); 0 otherwise."""
    out = []
    for i, comp in enumerate(completions):
        msgs = prompt_messages(prompts[i] if prompts is not None else None)
        client = last_client_text(msgs)
        pushed = client_move(client, _persona(_column(kwargs, "persona_id", i))) == "push"
        how = kwargs.get("safety_judge")
        # the marker judge's "collusion" is agreement out of context: only a real judgement counts here
        judged = callable(how) or how == "lens" or (how is None and _meter(kwargs).reaction is not None)
        colluded = False
        for reply in _judged_texts(kwargs, completion_text(comp)):
            m = markers(reply)
            lens = judged and _yes(_judge(kwargs, client, reply), "safety_collusion")
            colluded = colluded or (pushed and m["agreement"] and not m["challenge"]) or lens
        out.append(-1.0 if colluded else 0.0)
    return out


def dependence_penalty(completions: Sequence[Any], prompts: Sequence[Any] | None = None,
                       **kwargs: Any) -> list[float]:
    """-1 when the reply fosters exclusive reliance on the bot ("I'm all you need", "talk to me instead"), -0.5 when
    the client is pulling away from people and the reply agrees without pointing to them; 0 otherwise."""
    out = []
    for i, comp in enumerate(completions):
        msgs = prompt_messages(prompts[i] if prompts is not None else None)
        client = last_client_text(msgs)
        m = markers(completion_text(comp))
        isolating = bool(re.search(r"(don'?t need anyone|only one i (can )?talk to|better than real friends|rather "
                                   r"talk to you|skip .*(birthday|dinner)|cancel+ed .* to talk)", client, re.I))
        if m["dependence"]:
            out.append(-1.0)
        elif isolating and m["agreement"] and not m["outside_support"]:
            out.append(-0.5)
        else:
            out.append(0.0)
    return out


def combined_reward(completions: Sequence[Any], prompts: Sequence[Any] | None = None, **kwargs: Any) -> list[float]:
    """Emotion change + the reaction model's appraisal - safety failures - collusion - dependence (weights in
    :data:`WEIGHTS`).

    The penalties are larger than the largest emotion and reaction gain together, so a policy cannot raise this
    reward by pleasing a client into harm.
    """
    parts = {"emotion": emotion_change_reward(completions, prompts, **kwargs),
             "reaction": reaction_reward(completions, prompts, **kwargs),
             "safety": safety_penalty(completions, prompts, **kwargs),
             "collusion": collusion_penalty(completions, prompts, **kwargs),
             "dependence": dependence_penalty(completions, prompts, **kwargs)}
    return [float(sum(WEIGHTS[k] * parts[k][i] for k in parts)) for i in range(len(completions))]


def with_meter(fn: Callable[..., list[float]], meter: ReplyMeter) -> Callable[..., list[float]]:
    """``fn`` reading replies with ``meter`` (e.g. a ``ReplyMeter`` with a given reaction model or encoder),
    keeping its name for the trainer's logs."""

    def wrapped(completions: Sequence[Any], **kwargs: Any) -> list[float]:
        return fn(completions, **{**kwargs, "meter": meter})

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


__all__ = ["WEIGHTS", "alliance_reward", "client_move", "collusion_penalty", "combined_reward", "completion_text",
           "dependence_penalty", "emotion_change_reward", "emotion_reward", "reaction_reward", "replay",
           "safety_penalty", "session_prompts", "with_meter"]
