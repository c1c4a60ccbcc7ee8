"""The one interface every measure ("lens") implements, and the context a run hands to it.

A lens scores turns (``score``: columns aligned to ``corpus.turns``) and summarises them per session
(``summarize``: one row per session). Columns are prefixed with the lens name. Lenses hold no fitted state
beyond what they load in ``__init__``; anything learnt ships as a versioned file that ``describe`` names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from alliance.corpus import SESSION_KEY, Corpus
from alliance.encoders.base import Encoder


class LensContext:
    """What a run shares with its lenses: the encoder, turn embeddings computed once, earlier lenses' columns."""

    def __init__(self, corpus: Corpus, encoder: Encoder | None = None, seed: int = 0,
                 options: dict[str, Any] | None = None):
        self.corpus = corpus
        self._encoder = encoder
        self.seed = seed
        self.options = dict(options or {})
        self.turn_scores = pd.DataFrame(index=corpus.turns.index)
        self._embeddings: np.ndarray | None = None

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            from alliance.encoders import load_encoder

            self._encoder = load_encoder()
        return self._encoder

    def embeddings(self) -> np.ndarray:
        """Unit vectors of every turn's text, aligned to ``corpus.turns`` (encoded once per run chunk)."""
        if self._embeddings is None:
            self._embeddings = self.encoder.encode(self.corpus.turns["text"].tolist())
        return self._embeddings

    def add(self, columns: pd.DataFrame) -> None:
        self.turn_scores = pd.concat([self.turn_scores, columns], axis=1)


@dataclass
class ReportSection:
    """A lens's part of one session's report: a title, HTML, and Vega-Lite specs keyed by element id.

    In ``html``, a chart is placed with ``<div data-spec='SPEC_ID'></div>``; ids must be unique in the page, so
    build them from the ``prefix`` the report passes in.
    """

    title: str
    html: str
    specs: dict[str, Any] = field(default_factory=dict)


class Lens:
    """Base class of all lenses; subclasses set ``name``, ``version``, ``citation`` and implement ``score``."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = ""
    needs_encoder: ClassVar[bool] = False
    #: other lenses whose turn columns this one reads from ``ctx.turn_scores``
    requires: ClassVar[tuple[str, ...]] = ()
    #: other lenses whose columns this one reads when present: they run first if they are in the run
    after: ClassVar[tuple[str, ...]] = ()

    def score(self, corpus: Corpus, ctx: LensContext) -> pd.DataFrame:
        raise NotImplementedError

    def summarize(self, corpus: Corpus, turn_scores: pd.DataFrame, ctx: LensContext) -> pd.DataFrame:
        """Per-session columns, indexed by (course_id, session_id). Default: nothing."""
        return pd.DataFrame(index=session_index(corpus))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "citation": self.citation}

    @classmethod
    def report_section(cls, turns: pd.DataFrame, session: pd.Series, prefix: str) -> ReportSection | None:
        """This lens's block in the HTML report for one session, from its columns alone (no model loaded).

        ``turns`` are the session's rows of turns.parquet, ``session`` its row of sessions.parquet.
        """
        return None


def session_index(corpus: Corpus) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(corpus.sessions[SESSION_KEY])
