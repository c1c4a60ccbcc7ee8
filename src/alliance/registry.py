"""Named, swappable components (readers, encoders, lenses, bots), after spaCy's registry.

Built-ins are registered by dotted path and imported only when first used, so ``alliance --help`` stays fast;
third-party packages add components through the entry-point groups ``alliance.<kind>``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any


class RegistryError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; a registry error is meant to be read
        return str(self.args[0])


class Registry:
    def __init__(self, kind: str, builtins: dict[str, str] | None = None):
        self.kind = kind
        self._paths: dict[str, str] = dict(builtins or {})
        self._objects: dict[str, Any] = {}
        self._entry_points_loaded = False

    def register(self, name: str, obj: Any = None) -> Any:
        """Register ``obj`` under ``name``; usable as a decorator."""

        def deco(o: Any) -> Any:
            self._objects[name] = o
            return o

        return deco(obj) if obj is not None else deco

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=f"alliance.{self.kind}"):
            self._paths.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(set(self._paths) | set(self._objects))

    def path_of(self, name: str) -> str | None:
        """The ``module:attribute`` a name is registered under (None when an object was registered in its place)."""
        self._load_entry_points()
        path = self._paths.get(name)
        obj = self._objects.get(name)
        if obj is not None and path != f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}":
            return None  # get() caches what it imported under the same path; anything else replaced it
        return path

    def get(self, name: str) -> Any:
        if name in self._objects:
            return self._objects[name]
        self._load_entry_points()
        if name not in self._paths:
            raise RegistryError(f"no {self.kind[:-1] if self.kind.endswith('s') else self.kind} named {name!r}; "
                                f"available: {', '.join(self.names())}")
        mod, _, attr = self._paths[name].partition(":")
        obj = getattr(importlib.import_module(mod), attr)
        self._objects[name] = obj
        return obj

    def create(self, name: str, **kwargs: Any) -> Any:
        factory: Callable[..., Any] = self.get(name)
        return factory(**kwargs)


readers = Registry(
    "readers",
    {
        "jsonl": "alliance.io.jsonl:JsonlReader",
        "table": "alliance.io.tabular:TableReader",
        "openai": "alliance.io.openai_chat:OpenAIChatReader",
        "convokit": "alliance.io.convokit:ConvoKitReader",
        "esconv": "alliance.io.esconv:ESConvReader",
        "annomi": "alliance.io.annomi:AnnoMIReader",
        "kokorochat": "alliance.io.kokoro_chat:KokoroChatReader",
        "epitome": "alliance.io.epitome:EpitomeReader",
        "pair": "alliance.io.pair:PairReader",
    },
)

encoders = Registry(
    "encoders",
    {"sentence-transformers": "alliance.encoders.sentence:SentenceTransformerEncoder"},
)

lenses = Registry(
    "lenses",
    {
        "alliance": "alliance.lenses.alliance_probes:AllianceLens",
        "empathy": "alliance.lenses.empathy:EmpathyLens",
        "trajectory": "alliance.lenses.trajectory:TrajectoryLens",
        "markers": "alliance.lenses.markers:MarkersLens",
        "coordination": "alliance.lenses.coordination:CoordinationLens",
        "llm_alliance": "alliance.lenses.llm_rater:LLMAllianceRaterLens",
        "llm_judge": "alliance.lenses.llm_rater:LLMJudgeLens",
        "behaviour": "alliance.lenses.behaviour:BehaviourLens",
        "safety": "alliance.lenses.safety:SafetyLens",
        "ruptures": "alliance.lenses.ruptures:RuptureMarkersLens",
    },
)
