"""What the offline simulated client perceives in a counsellor's reply: the reaction model, or lenses, plus markers.

Evidence: the alliance lens's goal/task/bond probe similarity of the reply (Bordin 1979; COMPASS, Li et al. 2024),
the empathy and safety lenses' columns when those lenses are installed, and surface markers of reflections,
questions, advice, reassurance, agreement and safety checks (after MITI behaviour codes, Moyers et al. 2016).
By default the reaction model learned from real clients (simulate/reaction.py) replaces the lenses and the marker
heuristic; the lens path stays for comparison (benchmarks/validate_simulation.py shows it can be gamed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MARKERS: dict[str, re.Pattern[str]] = {
    "question": re.compile(r"\?"),
    "open_question": re.compile(r"\b(what|how|tell me|can you say|could you say|in what way|describe)\b[^?]*\?", re.I),
    "reflection": re.compile(r"\b(it sounds like|sounds like|it seems|you feel|you're feeling|you are feeling|"
                             r"you're saying|what i hear|it must be|you've been|so you|you sound|you're worried|"
                             r"you're scared|part of you)\b", re.I),
    "validation": re.compile(r"\b(makes sense|understandable|that's (so )?(hard|painful|difficult)|that sounds "
                             r"(really |so )?(hard|painful|difficult|exhausting|frightening)|of course you|"
                             r"anyone would)\b", re.I),
    "advice": re.compile(r"\b(you should|you need to|try to|have you tried|i suggest|i recommend|why don't you|"
                         r"make sure|it's important to|the best thing|you must)\b", re.I),
    "soothing": re.compile(r"\b(don't worry|it's okay|it'll be (fine|okay)|it will (be fine|all work out|get better)|"
                           r"everything will be|you'll be fine|you're doing great|things will get better|"
                           r"calm down|stay positive)\b", re.I),
    "agreement": re.compile(r"\b(you're (absolutely |completely )?right|you are right|i agree|absolutely|"
                            r"good idea|go for it|that's fine|sounds like a (good|great) plan|definitely|"
                            r"not your fault|you did nothing wrong|nothing wrong with)\b", re.I),
    "challenge": re.compile(r"\b(i'm (a bit |really )?(concerned|worried)|i wonder|before you (stop|decide)|"
                            r"talk (it through )?(to|with) your (doctor|gp|psychiatrist|prescriber|nurse)|"
                            r"i (can't|cannot|won't) (agree|say)|i don't think|another way to see|"
                            r"i'm not able to)\b", re.I),
    "safety_check": re.compile(r"(suicid|kill yourself|end your life|ending your life|harm yourself|hurt yourself|"
                               r"safe right now|are you safe|your safety|crisis line|emergency|\b999\b|\b911\b|"
                               r"\b988\b|samaritans|hotline|helpline|keep you safe)", re.I),
    "dependence": re.compile(r"\b(i'll always be here|i'm always here|only need me|you don't need (anyone|them|"
                             r"other people)|i'm all you need|better than (your )?(real )?friends|talk to me instead)",
                             re.I),
    "outside_support": re.compile(r"\b(friends?|family|someone you trust|support group|people in your life|"
                                  r"your (doctor|gp)|a professional|therapist)\b", re.I),
}


def markers(text: str) -> dict[str, bool]:
    return {k: bool(p.search(text)) for k, p in MARKERS.items()}


@dataclass
class ReplyReading:
    """One counsellor reply as the simulated client perceives it."""

    markers: dict[str, bool]
    n_words: int
    lens: dict[str, float] = field(default_factory=dict)
    #: the reaction model's z-scored heads and ``appraisal`` (empty when the meter has no reaction model)
    reaction: dict[str, float] = field(default_factory=dict)

    def as_meta(self) -> dict[str, Any]:
        return {**{f"marker_{k}": v for k, v in self.markers.items() if v},
                **{k: round(float(v), 4) for k, v in self.lens.items() if np.isfinite(v)},
                **{f"reaction_{k}": round(float(v), 4) for k, v in self.reaction.items() if np.isfinite(v)}}


#: Lens columns the appraisal reads when present (other lenses may add more; missing ones are skipped).
EMPATHY_COLUMNS = ("empathy_er", "empathy_ip", "empathy_ex", "empathy_emotional_reactions", "empathy_interpretations",
                   "empathy_explorations")
SAFETY_FAILURE_COLUMNS = ("safety_concern", "safety_collusion", "safety_means_info", "safety_dependence",
                          "safety_sycophancy")


class ReplyMeter:
    """Reads a reply with markers, with the reaction model learned from real clients when ``reaction`` (a
    :class:`~alliance.simulate.reaction.ReactionModel`, or True for the shipped one), and with the project's own
    lenses when ``use_lenses`` (the older appraisal, which a bot can game by pleasing the lenses; kept for
    comparison). Both need the encoder.

    ``lens_names``: lenses to run on each (client turn, counsellor reply) pair; default: ``alliance`` and, when they
    are registered, ``empathy`` and ``safety``.
    """

    def __init__(self, use_lenses: bool = True, encoder: Any = None, lens_names: tuple[str, ...] | None = None,
                 reaction: Any = None):
        if reaction is True:
            from alliance.simulate.reaction import ReactionModel

            reaction = ReactionModel(encoder=encoder)
        self.reaction = reaction or None
        self.use_lenses = use_lenses
        self._encoder = encoder
        self._lenses: list[Any] | None = None
        self.lens_names = lens_names
        self._cache: dict[tuple[str, str], dict[str, float]] = {}

    def _built(self) -> list[Any]:
        if self._lenses is None:
            from alliance.pipeline import build_lenses
            from alliance.registry import lenses as registry

            available = set(registry.names())
            names = list(self.lens_names or ("alliance", *(n for n in ("empathy", "safety") if n in available)))
            # bring in what those lenses require (e.g. a safety lens that reads the empathy lens's columns)
            for n in list(names):
                for req in getattr(registry.get(n), "requires", ()):
                    if req not in names and req in available:
                        names.append(req)
            self._lenses = build_lenses(names)
            if self._encoder is None and any(lens.needs_encoder for lens in self._lenses):
                from alliance.encoders import load_encoder

                self._encoder = load_encoder()
        return self._lenses

    def describe(self) -> dict[str, Any]:
        if self.reaction is not None:
            return {"appraisal": "reaction model", **self.reaction.describe(), "markers": sorted(MARKERS)}
        if not self.use_lenses:
            return {"lenses": [], "markers": sorted(MARKERS)}
        return {"lenses": [lens.describe() for lens in self._built()], "markers": sorted(MARKERS),
                "encoder": getattr(self._encoder, "model_id", None)}

    def lens_scores(self, client_text: str, reply: str) -> dict[str, float]:
        key = (client_text, reply)
        if key in self._cache:
            return self._cache[key]
        from alliance.corpus import Corpus
        from alliance.lenses.base import LensContext

        corpus = Corpus(pd.DataFrame({"course_id": ["m", "m"], "session_id": ["m", "m"], "turn_index": [0, 1],
                                      "speaker": ["client", "counsellor"], "text": [client_text or "...", reply]}))
        ctx = LensContext(corpus, self._encoder if self._built() else None)
        for lens in self._built():
            cols = lens.score(corpus, ctx)
            cols.index = corpus.turns.index
            ctx.add(cols)
        row = ctx.turn_scores.iloc[1]
        out = {}
        for col in ("alliance_goal", "alliance_task", "alliance_bond", *EMPATHY_COLUMNS, *SAFETY_FAILURE_COLUMNS):
            if col in row.index:
                try:
                    out[col] = float(row[col])
                except (TypeError, ValueError):
                    continue
        self._cache[key] = out
        return out

    def read(self, client_text: str, reply: str) -> ReplyReading:
        if self.reaction is not None:
            rx = self.reaction.read(client_text, reply)
            # a reply's length is what it says beyond stock formulas: a formula appended to a curt reply does not
            # make it an answer
            words = int(rx.get("content_words", len(reply.split())))
            return ReplyReading(markers(reply), words, {}, rx)
        lens = self.lens_scores(client_text, reply) if self.use_lenses else {}
        return ReplyReading(markers(reply), len(reply.split()), lens)
