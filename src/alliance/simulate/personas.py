"""The persona bank: invented clients with a presenting problem, risk level, style, goal and hidden intention.

Evidence: persona design after SAGE (Zhang et al. 2025) and RLVER (Wang et al. 2025), which give each simulated
user a profile, a goal and a hidden intention; risk levels and adversarial intentions added so that a chatbot that
pleases a client into harm (colluding, fostering dependence, missing risk) shows up. All text is our own invention.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from alliance.data import load_json_data

PROBLEMS = ("low_mood", "anxiety", "grief", "relationship", "substance_use", "ocd", "psychotic_like", "manic_beliefs")
RISK_LEVELS = ("none", "low", "high", "imminent")
STYLES = ("plain", "reserved", "verbose", "tangential", "upset", "pleasing")
NEEDS = ("listening", "practical")
DEFAULT_BANK = "personas_v1.json"


class PersonaError(ValueError):
    pass


@dataclass(frozen=True)
class Persona:
    """One simulated client; lines are the scripted client's material, the profile the model client's brief."""

    id: str
    name: str
    presenting_problem: str
    risk_level: str
    style: str
    goal: str
    hidden_intention: str
    adversarial: bool
    initial_state: float
    resistance: float
    resistance_floor: float
    needs: str
    openings: tuple[str, ...]
    disclosures: tuple[str, ...]
    deflections: tuple[str, ...]
    intention_lines: tuple[str, ...]
    risk_lines: tuple[str, ...] = ()

    @property
    def at_risk(self) -> bool:
        return self.risk_level in ("high", "imminent")

    def profile(self) -> dict[str, Any]:
        """What a run records about the persona (not its lines)."""
        return {"persona_id": self.id, "presenting_problem": self.presenting_problem, "risk_level": self.risk_level,
                "style": self.style, "adversarial": self.adversarial, "hidden_intention": self.hidden_intention}


def _persona(obj: Any, i: int, source: str) -> Persona:
    where = f"{source}: persona {i}"
    if not isinstance(obj, dict):
        raise PersonaError(f"{where}: expected an object")
    where = f"{source}: persona {obj.get('id', i)!r}"
    for f in ("id", "name", "goal", "hidden_intention"):
        if not isinstance(obj.get(f), str) or not obj[f].strip():
            raise PersonaError(f"{where}: field {f!r} missing or empty")
    for f, allowed in (("presenting_problem", PROBLEMS), ("risk_level", RISK_LEVELS), ("style", STYLES),
                       ("needs", NEEDS)):
        if obj.get(f) not in allowed:
            raise PersonaError(f"{where}: {f} = {obj.get(f)!r}; expected one of {allowed}")
    for f in ("initial_state",):
        if not isinstance(obj.get(f), (int, float)) or not 0 <= obj[f] <= 100:
            raise PersonaError(f"{where}: {f} must be a number in 0..100")
    for f in ("resistance", "resistance_floor"):
        if not isinstance(obj.get(f), (int, float)) or not 0 <= obj[f] <= 1:
            raise PersonaError(f"{where}: {f} must be a number in 0..1")
    if obj["resistance_floor"] > obj["resistance"]:
        raise PersonaError(f"{where}: resistance_floor exceeds resistance")
    lists = {}
    for f, min_n in (("openings", 3), ("disclosures", 3), ("deflections", 1), ("intention_lines", 1),
                     ("risk_lines", 0)):
        v = obj.get(f, [])
        if not isinstance(v, list) or len(v) < min_n or not all(isinstance(x, str) and x.strip() for x in v):
            raise PersonaError(f"{where}: {f} must be a list of at least {min_n} non-empty strings")
        lists[f] = tuple(x.strip() for x in v)
    if obj["risk_level"] in ("high", "imminent") and not lists["risk_lines"]:
        raise PersonaError(f"{where}: a {obj['risk_level']}-risk persona needs risk_lines")
    return Persona(id=obj["id"], name=obj["name"], presenting_problem=obj["presenting_problem"],
                   risk_level=obj["risk_level"], style=obj["style"], goal=obj["goal"],
                   hidden_intention=obj["hidden_intention"], adversarial=bool(obj.get("adversarial", False)),
                   initial_state=float(obj["initial_state"]), resistance=float(obj["resistance"]),
                   resistance_floor=float(obj["resistance_floor"]), needs=obj["needs"], **lists)


def load_personas(path: str | Path | None = None, ids: Sequence[str] | None = None) -> list[Persona]:
    """The shipped bank (``path=None`` or ``"all"``) or a JSON file of the same shape; optionally only ``ids``."""
    doc, source = load_json_data(None if path is None or str(path) == "all" else path, "personas", DEFAULT_BANK,
                                 PersonaError, "persona file")
    raw = doc.get("personas") if isinstance(doc, dict) else doc
    if not isinstance(raw, list) or not raw:
        raise PersonaError(f"{source}: expected a list of personas (or an object with 'personas')")
    personas = [_persona(o, i, source) for i, o in enumerate(raw)]
    seen: set[str] = set()
    for p in personas:
        if p.id in seen:
            raise PersonaError(f"{source}: persona id {p.id!r} appears twice")
        seen.add(p.id)
    if ids:
        by_id = {p.id: p for p in personas}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise PersonaError(f"{source}: no persona(s) {missing}; available: {sorted(by_id)}")
        personas = [by_id[i] for i in ids]
    return personas


def bank_version(path: str | Path | None = None) -> str:
    if path is None or str(path) == "all":
        doc = json.loads(resources.files("alliance.data.personas").joinpath(DEFAULT_BANK).read_text(encoding="utf-8"))
        return f"{doc.get('name', 'personas')} {doc.get('version', '?')}"
    return str(path)
