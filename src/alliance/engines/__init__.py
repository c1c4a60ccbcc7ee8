"""Engines: who runs a run's chunks of whole courses (here, or on a Dask cluster); never what a chunk computes.

The pipeline cuts the corpus into chunks and hands an engine the pending ones with the work to do on each; the
engine returns each chunk's tables to the pipeline, which writes and resumes them the same way for every engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from alliance.corpus import Corpus

#: Engines ``alliance analyze --engine`` knows.
ENGINES = ("local", "dask")

#: The scoring of one chunk: its corpus in, its (turns, sessions) tables out; picklable, so it can be shipped.
Work = Callable[[Corpus], tuple[pd.DataFrame, pd.DataFrame]]
#: Called once per finished chunk with its tables (the pipeline writes them to ``.partial/``).
Done = Callable[["ChunkJob", pd.DataFrame, pd.DataFrame], None]


@dataclass
class ChunkJob:
    """One pending chunk: its position in the plan and its sub-corpus of whole courses."""

    index: int
    corpus: Corpus

    def sessions(self, limit: int = 5) -> str:
        """The chunk's sessions as ``course/session``, for error messages (the first ``limit`` and a count)."""
        keys = [f"{c}/{s}" for c, s in zip(self.corpus.sessions["course_id"], self.corpus.sessions["session_id"],
                                            strict=True)]
        more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
        return ", ".join(keys[:limit]) + more


class EngineError(RuntimeError):
    """An engine could not run (no scheduler, dask missing) or some chunks failed; finished chunks are kept."""


class Engine(Protocol):
    name: str

    def run(self, jobs: Iterable[ChunkJob], work: Work, done: Done) -> None:
        """Run ``work`` on every job and call ``done`` with each result as it finishes (in any order)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What run.json records of the engine."""
        ...


class LocalEngine:
    """This process, one chunk after another (the encoder uses the machine's cores within each chunk)."""

    name = "local"

    def run(self, jobs: Iterable[ChunkJob], work: Work, done: Done) -> None:
        for job in jobs:
            turns, sessions = work(job.corpus)
            done(job, turns, sessions)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


def make_engine(name: str = "local", scheduler: str | None = None, workers: int | None = None) -> Engine:
    """The engine called ``name``: ``local``, or ``dask`` on the cluster at ``scheduler`` (an address) or on a
    local cluster of ``workers`` processes. Dask is imported only here, only for ``dask``."""
    if name == "local":
        if scheduler is not None or workers is not None:
            raise EngineError("a scheduler address or a number of workers needs the dask engine (--engine dask)")
        return LocalEngine()
    if name == "dask":
        try:
            from alliance.engines.dask import DaskEngine
        except ImportError as e:
            raise EngineError(f"the dask engine needs dask.distributed ({e}); install it with "
                              "pip install 'alliance[dask]'") from e

        return DaskEngine(scheduler=scheduler, workers=workers)
    raise EngineError(f"engine {name!r} is not one of: {', '.join(ENGINES)}")
