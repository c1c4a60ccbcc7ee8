"""The Dask engine: a run's chunks of whole courses scored on dask.distributed workers, the same tables as local.

The client holds the corpus and ships each pending chunk to a worker; the scoring (lenses and encoder) travels once
per worker in a worker plugin and is built there once; finished tables come back and the pipeline writes them to
``.partial/``, so workers need no shared filesystem and a rerun resumes from the chunks already finished.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import cloudpickle
import dask
from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker
from distributed.scheduler import KilledWorker

from alliance.corpus import Corpus
from alliance.engines import ChunkJob, Done, EngineError, Work

#: Per worker process: (run token, worker address) -> the shipped scoring and its copies built so far, one per
#: worker thread (a CachedEncoder's SQLite connection and the lenses' buffers belong to one thread).
_STATE: dict[tuple[str, str], dict[str, Any]] = {}
_LOCK = threading.Lock()

#: Housekeeping of a local cluster's processes at a calmer pace than dask's defaults (event-loop health checks every
#: 20 ms, host monitor every 0.5 s, memory monitor every 0.1 s): measured idle, two workers and the scheduler spent
#: 0.11 CPU-s per second on them, a tenth of a 2-core machine, against 0.03 with these (benchmarks/engines.py).
QUIET = {"distributed.admin.tick.interval": "1s", "distributed.admin.system-monitor.interval": "2s",
         "distributed.worker.memory.monitor-interval": "1s", "distributed.worker.profile.enabled": False}


def local_cluster(workers: int | None = None, processes: bool = True) -> LocalCluster:
    """A cluster on this machine for the engine: ``workers`` processes (default one per core), one thread each,
    no dashboard, housekeeping at :data:`QUIET`'s pace."""
    with dask.config.set(QUIET):
        return LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=processes,
                            dashboard_address=None, silence_logs=logging.ERROR)


class WorkSetup(WorkerPlugin):
    """Carries a run's pickled scoring to each worker (and to workers that join later); dropped after the run."""

    def __init__(self, token: str, payload: bytes):
        self.token = token
        self.payload = payload

    def setup(self, worker: Any) -> None:
        with _LOCK:
            _STATE[(self.token, worker.address)] = {"payload": self.payload, "built": {}}

    def teardown(self, worker: Any) -> None:
        with _LOCK:
            _STATE.pop((self.token, worker.address), None)


def _score(token: str, corpus: Corpus) -> tuple[Any, Any]:
    """On a worker: score one chunk with this worker thread's copy of the run's lenses and encoder (built from the
    plugin's payload on the first chunk, reused for the rest)."""
    key = (token, get_worker().address)
    with _LOCK:
        state = _STATE.get(key)
        if state is None:
            raise RuntimeError("this worker has no alliance scoring set up (the worker plugin did not run)")
        work = state["built"].get(threading.get_ident())
        if work is None:
            work = state["built"][threading.get_ident()] = cloudpickle.loads(state["payload"])
    return work(corpus)


class DaskEngine:
    """Chunks on a Dask cluster: the scheduler at ``scheduler`` (``tcp://host:8786``), an existing ``client``, or
    a local cluster of ``workers`` processes (default: one per CPU core) with one thread each.

    At most ``in_flight`` chunks (default twice the cluster's threads) are shipped at a time, so the client's memory
    holds a few chunks, not the corpus twice. A chunk that fails (an error, or its worker dying) is reported by
    number and sessions once the others are done; those others are kept.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, client: Client | None = None,
                 processes: bool = True, timeout: float = 10.0, in_flight: int | None = None):
        if sum(x is not None for x in (scheduler, workers, client)) > 1:
            raise EngineError("give the Dask engine a scheduler address, a number of workers or a client, not several")
        if workers is not None and workers < 1:
            raise EngineError(f"--workers must be at least 1, got {workers}")
        self.scheduler = scheduler
        self.workers = workers
        self.client = client
        self.processes = processes
        self.timeout = timeout
        self.in_flight = in_flight
        self._info: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        where = self.scheduler or ("client" if self.client is not None else "local cluster")
        return {"name": self.name, "scheduler": where, **self._info, "distributed": version("distributed")}

    def _connect(self) -> tuple[Client, list[Any]]:
        """The client, and what to close after the run (nothing when the caller owns the client)."""
        if self.client is not None:
            return self.client, []
        if self.scheduler is not None:
            try:
                _reachable(self.scheduler, self.timeout)
                client = Client(self.scheduler, timeout=self.timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as e:
                raise EngineError(
                    f"cannot reach the Dask scheduler at {self.scheduler!r} within {self.timeout:g} s "
                    f"({type(e).__name__}: {e}); check the address (e.g. tcp://HOST:8786) and that "
                    "`dask scheduler` runs there") from e
            return client, [client]
        cluster = local_cluster(self.workers, self.processes)
        with dask.config.set(QUIET):
            client = Client(cluster, set_as_default=False)
        return client, [client, cluster]

    def run(self, jobs: Iterable[ChunkJob], work: Work, done: Done) -> None:
        client, owned = self._connect()
        token = uuid.uuid4().hex[:12]
        name = f"alliance-{token}"
        try:
            threads = sum(client.nthreads().values())
            if threads == 0:
                raise EngineError(f"the Dask cluster at {self.scheduler or 'the client'} has no workers")
            self._info = {"workers": len(client.nthreads()), "threads": threads}
            client.register_plugin(WorkSetup(token, cloudpickle.dumps(work)), name=name)
            try:
                self._run(client, token, iter(jobs), done, self.in_flight or 2 * threads)
            finally:
                with contextlib.suppress(Exception):  # a lost cluster must not hide the run's own error
                    client.unregister_worker_plugin(name)
        finally:
            for thing in owned:
                thing.close()

    def _run(self, client: Client, token: str, jobs: Iterator[ChunkJob], done: Done, limit: int) -> None:
        running: dict[Any, ChunkJob] = {}
        pending = as_completed(loop=client.loop)

        def submit() -> None:
            job = next(jobs, None)
            if job is not None:
                fut = client.submit(_score, token, job.corpus, key=f"alliance-chunk-{job.index:05d}-{token}")
                running[fut] = job
                pending.add(fut)

        failed: list[tuple[ChunkJob, BaseException]] = []
        finished = 0
        try:
            for _ in range(limit):
                submit()
            for fut in pending:
                job = running.pop(fut)
                try:
                    turns, sessions = fut.result()
                except Exception as e:  # any worker error is reported with its chunk below
                    failed.append((job, e))
                else:
                    done(job, turns, sessions)  # written at once: a later failure keeps it
                    finished += 1
                    del turns, sessions
                fut.release()
                submit()
        except BaseException:
            # the client stopped (Ctrl-C, disk full while writing): nothing more runs for this run
            for fut in running:
                fut.cancel()
            raise
        if failed:
            lines = [f"  chunk {job.index} (sessions {job.sessions()}): {_why(e)}" for job, e in failed]
            raise EngineError(f"{len(failed)} chunk(s) failed on the Dask workers; the {finished} finished in this "
                              "run are kept and a rerun resumes from them:\n" + "\n".join(lines))


def _reachable(address: str, timeout: float) -> None:
    """A plain connection to a tcp/tls scheduler first: an unreachable one then fails before a Client exists (a
    half-made Client complains again at exit, after the error has been reported)."""
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    scheme, loc = parse_address(address)
    get_backend(scheme)  # ValueError naming the known schemes
    if scheme in ("tcp", "tls"):
        host, port = parse_host_port(loc)
        socket.create_connection((host, port), timeout=timeout).close()


def _why(e: BaseException) -> str:
    if isinstance(e, KilledWorker):
        last = getattr(e.last_worker, "address", e.last_worker)
        return (f"the workers running it died {e.allowed_failures + 1} times (out of memory, or killed; the last "
                f"was {last}); more than distributed.scheduler.allowed-failures allows")
    return f"{type(e).__name__}: {e}"

