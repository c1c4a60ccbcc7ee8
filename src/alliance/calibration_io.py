"""Saving and loading calibration models: gzipped JSON with the model card inside, versioned, never pickle.

Evidence: none needed (persistence); the format is documented in docs/calibration.md. A file records the fitted
weights, the text channels' vocabularies, the training data's ranges (guard rails) and fingerprints of what trained it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from alliance.calibration_features import KOKOROCHAT_ITEM_MAP, TARGETS

MODEL_FORMAT = "alliance-calibration"
MODEL_VERSION = "1.5.0"
DEFAULT_MODEL = "calibration_v1.json.gz"
#: The model trained across corpora (KokoroChat, ESConv with FailedESConv, AnnoMI; from 1.5.0), shipped as an option
#: beside the default: ``CalibratedAlliance.load("corpora")`` or ``ALLIANCE_CALIBRATION=corpora`` for a run. Not the
#: default because it is not better on KokoroChat (docs/calibration.md, "Across corpora").
ACROSS_CORPORA_MODEL = "calibration_corpora_v1.json.gz"
#: Names ``load`` accepts for the shipped files.
SHIPPED_MODELS = {"default": DEFAULT_MODEL, "corpora": ACROSS_CORPORA_MODEL}
#: Level-2 inputs are clipped to this central part of the training data's range (quantiles), then to +-Z_CLIP SDs,
#: so no single feature, however extreme in a new corpus, moves a prediction further than the training data did.
CLIP_QUANTILES = (0.005, 0.995)
Z_CLIP = 3.0


class CalibrationError(ValueError):
    pass


class ModelFile:
    """Persistence of :class:`alliance.calibration.CalibratedAlliance` (mixed in): ``to_dict``/``save`` and
    ``from_dict``/``load``."""

    def to_dict(self, card: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self._check_fitted()
        chans = {}
        for c, ch in self.channels_.items():
            vec = ch["vec"]
            vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
            chans[c] = {"vocabulary": vocab, "idf": _r(vec.idf_), "coef": [_r(row) for row in ch["coef"]],
                        "intercept": _r(ch["intercept"])}
        return {
            "format": MODEL_FORMAT, "version": MODEL_VERSION, "params": self.get_params(),
            "targets": list(TARGETS), "heads": self._heads(), "item_map": {k: list(v) for k, v in KOKOROCHAT_ITEM_MAP.items()},
            "numeric_columns": self.numeric_columns_, "num_median": _r(self.num_median_),
            "num_mean": _r(self.num_mean_), "num_scale": _r(self.num_scale_),
            "y_mean": _r(self.y_mean_), "y_scale": _r(self.y_scale_), "text_channels": self.text_channels_,
            "ranges": self._ranges_doc(),
            "channels": chans, "level2": {t: {"coef": _r(v["coef"]), "intercept": v["intercept"]}
                                          for t, v in self.level2_.items()},
            "reduced": ({"without": self.reduced_["without"], "drop": [int(k) for k in self.reduced_["drop"]],
                         "level2": {t: {"coef": _r(v["coef"]), "intercept": v["intercept"]}
                                    for t, v in self.reduced_["level2"].items()}}
                        if getattr(self, "reduced_", None) else None),
            "dropout": ({"coef": _r(self.dropout_["coef"]), "intercept": self.dropout_["intercept"]}
                        if getattr(self, "dropout_", None) else None),
            "trained": {"fingerprint": "sha1 of course_id/session_id (sessions) or of the group id, first 12 hex",
                        "sessions": getattr(self, "trained_sessions_", None),
                        "groups": getattr(self, "trained_groups_", None)},
            "corpora": ({"sessions": self.corpora_, "offsets": self.corpus_offsets_}
                        if getattr(self, "corpora_", None) else None),
            "card": dict(card or {}),
        }

    def _ranges_doc(self) -> dict[str, Any] | None:
        if getattr(self, "num_lo_", None) is None:
            return None
        doc: dict[str, Any] = {k: _r(getattr(self, f"num_{k}_")) for k in ("lo", "hi", "min", "max")}
        if getattr(self, "text_lo_", None) is not None:
            doc["text"] = {k: [_r(row) for row in getattr(self, f"text_{k}_")] for k in ("lo", "hi", "min", "max")}
        doc["clip_quantiles"], doc["z_clip"] = list(CLIP_QUANTILES), Z_CLIP
        return doc

    def save(self, path: str | Path, card: Mapping[str, Any] | None = None) -> Path:
        path = Path(path)
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump(self.to_dict(card), f)
        return path

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], source: str = "<dict>") -> Any:
        if doc.get("format") != MODEL_FORMAT:
            raise CalibrationError(f"{source}: not an alliance calibration model (format={doc.get('format')!r})")
        major = str(doc.get("version", "0")).split(".")[0]
        if major != MODEL_VERSION.split(".")[0]:
            raise CalibrationError(f"{source}: model version {doc.get('version')} is not readable by this "
                                   f"alliance (reads {MODEL_VERSION.split('.')[0]}.x)")
        m = cls(**doc["params"])
        m.numeric_columns_ = list(doc["numeric_columns"])
        for k in ("num_median", "num_mean", "num_scale", "y_mean", "y_scale"):
            setattr(m, k + "_", np.asarray(doc[k], dtype=float))
        m.text_channels_ = list(doc["text_channels"])
        m.channels_ = {}
        for c, ch in doc["channels"].items():
            vec = m._vectorizer()
            vec.set_params(vocabulary={t: i for i, t in enumerate(ch["vocabulary"])}, max_features=None)
            vec.fit([" "])  # builds the analyser; idf_ is then replaced by the trained one
            vec.idf_ = np.asarray(ch["idf"], dtype=np.float64)
            m.channels_[c] = {"vec": vec, "coef": np.asarray(ch["coef"], dtype=float),
                              "intercept": np.asarray(ch["intercept"], dtype=float)}
        m.heads_ = list(doc.get("heads", TARGETS))
        m.level2_ = {t: {"coef": np.asarray(v["coef"], dtype=float), "intercept": float(v["intercept"])}
                     for t, v in doc["level2"].items()}
        m.feature_names_ = [*m.numeric_columns_, *m.text_channels_]
        d = doc.get("dropout")
        m.dropout_ = {"coef": np.asarray(d["coef"], dtype=float), "intercept": float(d["intercept"])} if d else None
        r = doc.get("reduced")
        m.reduced_ = {"without": list(r["without"]), "drop": [int(k) for k in r["drop"]],
                      "level2": {t: {"coef": np.asarray(v["coef"], dtype=float), "intercept": float(v["intercept"])}
                                 for t, v in r["level2"].items()}} if r else None
        rg = doc.get("ranges")  # models before 1.4.0 have no ranges: outputs bounded, inputs not, no domain check
        for k in ("lo", "hi", "min", "max"):
            setattr(m, f"num_{k}_", np.asarray(rg[k], dtype=float) if rg else None)
            setattr(m, f"text_{k}_", np.asarray(rg["text"][k], dtype=float) if rg and "text" in rg else None)
        trained = doc.get("trained") or {}
        m.trained_sessions_ = trained.get("sessions")
        m.trained_groups_ = trained.get("groups")
        corpora = doc.get("corpora") or {}  # models from 1.5.0 trained across corpora: sessions and offsets each
        m.corpora_ = corpora.get("sessions")
        m.corpus_offsets_ = corpora.get("offsets")
        m.card_ = dict(doc.get("card", {}))
        return m

    @classmethod
    def load(cls, path: str | Path | None = None) -> Any:
        """Load a saved model; ``None`` loads the one shipped with alliance, ``"corpora"`` the shipped model trained
        across corpora (``SHIPPED_MODELS``)."""
        if path is None or (isinstance(path, str) and path in SHIPPED_MODELS):
            name = SHIPPED_MODELS[path or "default"]
            ref = resources.files("alliance.data.calibration").joinpath(name)
            with ref.open("rb") as fb, gzip.open(fb, "rt", encoding="utf-8") as f:
                return cls.from_dict(json.load(f), f"alliance:data/calibration/{name}")
        path = Path(path)
        if not path.exists():
            raise CalibrationError(f"{path}: no such calibration model file")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as f:
            try:
                doc = json.load(f)
            except json.JSONDecodeError as e:
                raise CalibrationError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
        return cls.from_dict(doc, str(path))



def _r(a: Any) -> list[float]:
    return [float(f"{x:.6g}") for x in np.asarray(a, dtype=float).ravel()]


