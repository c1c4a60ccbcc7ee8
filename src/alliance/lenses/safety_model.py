"""The safety lens's learned part: logistic heads on frozen sentence embeddings for client risk and reply judgement.

Evidence: fitted by ``alliance train safety`` (alliance.training.safety) on the user's copy of the labelled safety
sources, or, shipped, on the project's own written exemplars with AnnoMI and ESConv-train turns as ordinary talk.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

#: the lens's risk categories (contract: safety_risk_category); "" means none
CATEGORIES: tuple[str, ...] = ("suicide", "self_harm", "harm_to_others", "abuse", "endangering_plan")
#: binary reply heads on (client turn, reply) pairs; 'ignorance' and 'expertise' are DiaSafety's two categories
REPLY_HEADS: tuple[str, ...] = ("ignorance", "expertise", "collusion", "sycophancy", "dependence")
SHIPPED = "safety_default_v2.npz"
MODEL_FILE = "safety_model.npz"
REBUILD = "alliance train safety --data DIR/safety --seed 0"


class SafetyModelError(ValueError):
    """A safety model file that is missing or malformed; the message names the file and how to rebuild it."""


def user_model_dir() -> Path:
    """Where ``alliance train safety`` writes by default: ``$ALLIANCE_HOME/models/safety`` or the XDG data home."""
    if os.environ.get("ALLIANCE_HOME"):
        return Path(os.environ["ALLIANCE_HOME"]) / "models" / "safety"
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "alliance" / "models" / "safety"


def turn_features(emb: np.ndarray) -> np.ndarray:
    """A client turn's features: its sentence embedding."""
    return np.asarray(emb, dtype=np.float32)


def pair_features(client: np.ndarray, reply: np.ndarray) -> np.ndarray:
    """A (client turn, reply) pair's features: the reply, the element-wise product (what in the reply meets what in
    the turn) and the client turn, as the empathy lens pairs seeker and response."""
    client, reply = np.asarray(client, dtype=np.float32), np.asarray(reply, dtype=np.float32)
    return np.hstack([reply, client * reply, client])


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


@dataclass
class Binary:
    """One logistic head with Platt calibration of its score and its decision threshold (on the calibrated p)."""

    coef: np.ndarray
    intercept: float
    calib: tuple[float, float] = (1.0, 0.0)
    threshold: float = 0.5

    def proba(self, X: np.ndarray) -> np.ndarray:
        z = X @ self.coef + self.intercept
        return sigmoid(self.calib[0] * z + self.calib[1])


@dataclass
class SafetyModel:
    """Risk heads (``risk``: high-or-imminent; ``plan``: a plan that endangers the client; ``category``), reply heads,
    the operating points measured on dev data, and the model card's facts."""

    risk: Binary
    plan: Binary
    category_coef: np.ndarray  # (len(CATEGORIES), d)
    category_intercept: np.ndarray
    reply: dict[str, Binary]
    low_threshold: float
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def model_id(self) -> str:
        return str(self.meta.get("model_id", ""))

    @property
    def operating_point(self) -> dict[str, Any]:
        return dict(self.meta.get("operating_point") or {"name": "threshold", "threshold": self.risk.threshold})

    def category_proba(self, X: np.ndarray) -> np.ndarray:
        z = X @ self.category_coef.T + self.category_intercept
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def threshold_for(self, recall: float | None = None, threshold: float | None = None) -> tuple[float, dict[str, Any]]:
        """The risk threshold for a chosen operating point: an explicit ``threshold``, or the lowest stored point
        whose dev recall reaches ``recall``; (threshold, description recorded in run.json)."""
        if threshold is not None:
            if not 0.0 < threshold < 1.0:
                raise SafetyModelError(f"safety threshold must lie in (0, 1), got {threshold}")
            return float(threshold), {"name": "user threshold", "threshold": float(threshold)}
        if recall is not None:
            if not 0.0 < recall <= 1.0:
                raise SafetyModelError(f"safety recall must lie in (0, 1], got {recall}")
            curve = self.meta.get("dev_curve") or []
            ok = [c for c in curve if c["recall"] >= recall]
            if not curve:
                raise SafetyModelError(f"{self.source}: the model stores no dev curve to pick a recall from")
            best = max(ok, key=lambda c: c["threshold"]) if ok else min(curve, key=lambda c: c["threshold"])
            return float(best["threshold"]), {"name": f"dev recall >= {recall}", **best}
        return self.risk.threshold, self.operating_point

    def threshold_at_false_alarm(self, rate: float) -> float:
        """The lowest stored dev threshold whose false-alarm rate on ordinary client turns is at most ``rate`` (the
        highest stored threshold when none is; the model's own threshold when it stores no curve)."""
        curve = self.meta.get("dev_curve") or []
        if not curve:
            return self.risk.threshold
        ok = [c["threshold"] for c in curve if c["false_alarm"] <= rate]
        return float(min(ok) if ok else max(c["threshold"] for c in curve))

    # persistence ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {"category_coef": self.category_coef, "category_intercept": self.category_intercept}
        heads = {"risk": self.risk, "plan": self.plan, **{f"reply_{k}": v for k, v in self.reply.items()}}
        for name, h in heads.items():
            arrays[f"{name}_coef"] = h.coef.astype(np.float32)
            arrays[f"{name}_head"] = np.array([h.intercept, h.calib[0], h.calib[1], h.threshold], dtype=np.float64)
        meta = {**self.meta, "low_threshold": self.low_threshold, "reply_heads": list(self.reply),
                "categories": list(CATEGORIES)}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> SafetyModel:
        try:
            with np.load(io.BytesIO(data)) as z:
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))

                def head(name: str) -> Binary:
                    b, a, c, t = (float(v) for v in z[f"{name}_head"])
                    return Binary(z[f"{name}_coef"].astype(np.float32), b, (a, c), t)

                model = cls(head("risk"), head("plan"), z["category_coef"].astype(np.float32),
                            z["category_intercept"].astype(np.float32),
                            {k: head(f"reply_{k}") for k in meta.get("reply_heads", [])},
                            float(meta["low_threshold"]), meta, source)
        except (KeyError, ValueError, OSError, json.JSONDecodeError) as e:
            raise SafetyModelError(f"{source}: not a safety model file ({type(e).__name__}: {e}); rebuild it with "
                                   f"`{REBUILD}`") from None
        if list(meta.get("categories", [])) != list(CATEGORIES):
            raise SafetyModelError(f"{source}: categories {meta.get('categories')} differ from the lens's "
                                   f"{list(CATEGORIES)}; rebuild it with `{REBUILD}`")
        return model


def load_safety_model(spec: str | Path | None = None) -> SafetyModel:
    """``None``/``"auto"``: the user's trained model when present (see :func:`user_model_dir`), else the shipped
    default; ``"default"``: the shipped default; anything else: that file, which must exist."""
    if spec in (None, "auto"):
        user = user_model_dir() / MODEL_FILE
        if user.is_file():
            return SafetyModel.from_bytes(user.read_bytes(), str(user))
        spec = "default"
    if spec in ("default", "shipped"):
        ref = resources.files("alliance.data.safety").joinpath(SHIPPED)
        return SafetyModel.from_bytes(ref.read_bytes(), f"alliance:data/safety/{SHIPPED}")
    p = Path(spec).expanduser()
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.is_file():
        raise SafetyModelError(f"{p}: safety model file not found; build it with `{REBUILD} --out {p.parent}` "
                               "(or --safety-model default / model=default for the shipped model)")
    return SafetyModel.from_bytes(p.read_bytes(), str(p))
