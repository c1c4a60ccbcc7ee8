"""How a real client would react to a counsellor's reply: the reaction model the simulated client appraises with.

Evidence: linear heads on frozen sentence embeddings fitted to what real clients did next and how they rated the
conversation in ESConv, FailedESConv and AnnoMI (data/models/reaction_v1.md; `alliance train reaction`). None of
the project's lenses is read, so a bot cannot raise its simulated clients by pleasing the measures that judge it.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_MODEL = "reaction_v1.npz"
#: How the z-scored heads combine into one appraisal (signs: which way is better for the client). Set a priori,
#: not tuned on the validation figures: per-turn and per-dialogue ratings count fully, the behavioural signals
#: (talking more, change talk; withdrawing, sustain talk) half.
COMPOSITE: dict[str, float] = {"feedback": 1.0, "rating": 1.0, "relief": 1.0, "engagement": 0.5,
                               "withdrawal": -0.5, "change_talk": 0.5, "sustain_talk": -0.5}


def pair_features(client_vecs: np.ndarray, reply_vecs: np.ndarray) -> np.ndarray:
    """[client, reply, client * reply]: what was said, the answer, and how the answer meets it."""
    return np.hstack([client_vecs, reply_vecs, client_vecs * reply_vecs]).astype(np.float32)


class ReactionModelError(FileNotFoundError):
    """The reaction model file is missing or unreadable; the message names it and the command that rebuilds it."""


class ReactionModel:
    """Loads the shipped (or a given) reaction model and scores (client turn, reply) pairs."""

    def __init__(self, path: str | Path | None = None, encoder: Any = None):
        self.path = path
        try:
            if path is None:
                ref = resources.files("alliance.data.models").joinpath(DEFAULT_MODEL)
                with resources.as_file(ref) as f:
                    z = dict(np.load(f, allow_pickle=False))
            else:
                z = dict(np.load(Path(path), allow_pickle=False))
        except (FileNotFoundError, OSError, ValueError) as e:
            where = path or f"alliance/data/models/{DEFAULT_MODEL}"
            raise ReactionModelError(f"reaction model {where}: cannot read it ({e}); rebuild it with "
                                     "`alliance train reaction --seed 0`") from None
        self.heads = [str(h) for h in z["heads"]]
        self.kinds = [str(k) for k in z["kinds"]]
        self.coef, self.intercept = z["coef"].astype(np.float32), z["intercept"].astype(np.float32)
        self.mean, self.sd = z["pred_mean"].astype(np.float32), z["pred_sd"].astype(np.float32)
        self.model_id, self.version = str(z["model_id"]), str(z["version"])
        # a head fitted on too few labels is zero; leave it out of the composite rather than count a constant
        self.fitted = [bool(f) for f in z["fitted"]] if "fitted" in z else [True] * len(self.heads)
        self._encoder = encoder
        self._cache: dict[tuple[str, str], dict[str, float]] = {}

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from alliance.encoders import load_encoder

            self._encoder = load_encoder()
        if getattr(self._encoder, "model_id", self.model_id) != self.model_id:
            raise ReactionModelError(f"reaction model was fitted on {self.model_id!r} embeddings, but the encoder "
                                     f"is {self._encoder.model_id!r}")
        return self._encoder

    def describe(self) -> dict[str, Any]:
        return {"reaction_model": str(self.path or DEFAULT_MODEL), "version": self.version, "encoder": self.model_id,
                "composite": COMPOSITE}

    def predict(self, client_texts: Sequence[str], replies: Sequence[str]) -> pd.DataFrame:
        """Per pair: each head as a z-score against its spread on the training replies, and ``appraisal`` (the
        weighted composite in units of that spread; positive = a real client would likely be better off)."""
        clients = [c or "..." for c in client_texts]
        vecs = self.encoder.encode([*clients, *replies])
        n = len(clients)
        X = pair_features(vecs[:n], vecs[n:])
        d = X.shape[1] // 3
        # the reply's part only: what the client turn alone predicts (a long turn is followed by a shorter one) is
        # not the reply's doing, so it does not move the simulated state
        z = (X[:, d:] @ self.coef[:, d:].T + self.intercept - self.mean) / self.sd
        out = pd.DataFrame(z, columns=self.heads)
        weights = np.array([COMPOSITE.get(h, 0.0) * f for h, f in zip(self.heads, self.fitted, strict=True)])
        out["appraisal"] = z @ weights / np.abs(weights).sum()
        return out

    def read(self, client_text: str, reply: str) -> dict[str, float]:
        key = (client_text, reply)
        if key not in self._cache:
            self._cache[key] = {k: float(v) for k, v in self.predict([client_text], [reply]).iloc[0].items()}
        return self._cache[key]
