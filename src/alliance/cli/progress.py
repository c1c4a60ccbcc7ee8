"""Progress of a long run on stderr: live bars with an ETA on a terminal, plain timestamped lines in a log file.

Encoding is reported inside each encoder call (texts are fed to the encoder in slices), scoring per chunk of turns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from rich.console import Console

#: Texts per slice when a long encoder call is split to report progress (a multiple of the usual batch of 64).
SLICE = 512


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=int(max(seconds, 0))))


class RunProgress:
    """Reports ``encoded(done, total)`` and ``turns(done, total)``; use as a context manager.

    On a terminal: two rich bars with the time remaining. Otherwise (stderr is a file or a pipe): one line at most
    every ``interval`` seconds per stage, plus the last, each with elapsed time and an estimate of what is left,
    so a log file of a long job shows that it is alive and when it should end.
    """

    def __init__(self, console: Console, total_turns: int, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.console = console
        self.total_turns = total_turns
        self.interval = interval
        self.clock = clock
        self.live = console.is_terminal
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._start: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._printed: set[str] = set()

    def __enter__(self) -> RunProgress:
        self._start["turns"] = self._last["turns"] = self.clock()
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=self.console, transient=False)
            self._bar.__enter__()
            self._tasks["turns"] = self._bar.add_task("scoring turns", total=self.total_turns)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def encoded(self, done: int, total: int) -> None:
        """Within one encoder call: ``done == 0`` starts it."""
        if done == 0:
            self._start["encoding"] = self._last["encoding"] = self.clock()
            self._printed.discard("encoding")
        self._report("encoding", "texts", done, total)

    def turns(self, done: int, total: int) -> None:
        self._report("turns", "turns", done, total, always_last=True)

    def _report(self, stage: str, unit: str, done: int, total: int, always_last: bool = False) -> None:
        now = self.clock()
        if self.live:
            if stage not in self._tasks:
                self._tasks[stage] = self._bar.add_task(stage, total=total)
            if done == 0:
                self._bar.reset(self._tasks[stage], total=total)
            self._bar.update(self._tasks[stage], completed=done, total=total)
            return
        due = now - self._last.get(stage, now) >= self.interval
        last = done >= total and (always_last or stage in self._printed)
        if not done or not (due or last):
            return  # a short encoder call stays silent; a long one reports every interval and at its end
        self._last[stage] = now
        self._printed.add(stage)
        elapsed = now - self._start.get(stage, now)
        eta = f", about {_clock(elapsed / done * (total - done))} left" if done < total else ""
        name = "scoring" if stage == "turns" else stage
        self.console.print(f"{time.strftime('%H:%M:%S')} {name}: {done:,}/{total:,} {unit} "
                           f"({100 * done / max(total, 1):.0f}%), {_clock(elapsed)} elapsed{eta}",
                           highlight=False, soft_wrap=True)


class ProgressEncoder:
    """Wraps an encoder so each long ``encode`` call reports its progress, slice by slice.

    The wrapped encoder still sees every text once, in order; ``model_id``, ``dimension`` and anything else
    (cache counters, tokenizer) are the wrapped encoder's.
    """

    def __init__(self, inner: Any, report: Callable[[int, int], None], slice_size: int = SLICE):
        self.inner = inner
        self.report = report
        self.slice_size = slice_size

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __reduce__(self) -> tuple[Any, ...]:
        # elsewhere (a Dask worker) there is no bar to report to: the wrapped encoder travels alone
        return (_same, (self.inner,))

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        texts = list(texts)
        n = len(texts)
        if n:
            self.report(0, n)
        if n <= self.slice_size:
            out = self.inner.encode(texts)
            if n:
                self.report(n, n)
            return out
        parts = []
        for i in range(0, n, self.slice_size):
            parts.append(self.inner.encode(texts[i:i + self.slice_size]))
            self.report(min(i + self.slice_size, n), n)
        return np.concatenate(parts, axis=0)


def _same(encoder: Any) -> Any:
    return encoder
