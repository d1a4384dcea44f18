"""The chunk loop of :func:`nnmargin.certify`: consecutive query chunks certified in this process or
in a pool of worker processes, each finished chunk optionally kept in a checkpoint folder so an
interrupted run resumes without redoing it.

Why processes: the exact bound spends its time in per-query Python, NNLS and HiGHS calls that hold
the GIL; queries are independent, so worker processes scale where threads would not. Each worker
gets the training set once (pickled as its data, see ``TrainSet.__getstate__``) and then only the
queries of its chunks.

The checkpoint folder holds ``run.json`` (a fingerprint of the data and every option that changes
a result, and the chunk size) and one ``chunk_<first query>.pkl`` per finished chunk, written under
a temporary name and renamed, so an interruption never leaves half a chunk. A folder written by a
different run is refused rather than mixed in. Chunk files are pickles: resume only from folders
you wrote yourself.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import pickle
import tempfile
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
from tqdm.auto import tqdm

from ._errors import InputError

_RUN_FILE = "run.json"
# Worker processes compute with one BLAS / OpenMP thread each: the pool, not the libraries, uses the cores.
_ONE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def fingerprint(arrays, options: dict) -> str:
    """sha256 over the bytes, dtypes and shapes of ``arrays`` and the JSON of ``options``."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    return h.hexdigest()


class Checkpoint:
    """Finished chunks of one run in ``folder`` (created if missing)."""

    def __init__(self, folder, run_id: str, n_queries: int, step: int):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"checkpoint {str(self.folder)!r} exists and is not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {"run": run_id, "n_queries": int(n_queries), "chunk_size": int(step)}
        run_file = self.folder / _RUN_FILE
        if run_file.exists():
            try:
                found = json.loads(run_file.read_text())
            except (OSError, ValueError) as exc:
                raise InputError(f"checkpoint {str(run_file)!r} cannot be read ({exc})") from None
            if found != meta:
                raise InputError(f"checkpoint folder {str(self.folder)!r} belongs to another run (different data, "
                                 f"options or chunk size); give a new folder or delete this one")
        else:
            _write_atomic(run_file, json.dumps(meta).encode())

    def _path(self, begin: int) -> Path:
        return self.folder / f"chunk_{begin:010d}.pkl"

    def load(self, begin: int):
        """The chunk starting at query ``begin`` if it was finished, else None."""
        path = self._path(begin)
        if not path.exists():
            return None
        with open(path, "rb") as f:
            return pickle.load(f)

    def save(self, begin: int, result) -> None:
        _write_atomic(self._path(begin), pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run_chunks(certify_chunk: Callable, request, n: int, step: int, *, progress: bool, processes: int,
               checkpoint: Optional[Checkpoint], worker_threads: int = 1) -> list:
    """Results of ``certify_chunk(request.rows(begin, begin + step))`` for the chunks of n queries,
    in order; finished chunks come from ``checkpoint``, the others are computed here (processes ==
    1) or in ``processes`` worker processes of ``worker_threads`` threads, saved as they finish."""
    begins = list(range(0, max(n, 1), step))
    done = {b: checkpoint.load(b) for b in begins} if checkpoint is not None else {}
    todo = [b for b in begins if done.get(b) is None]
    parts = {b: r for b, r in done.items() if r is not None}
    with tqdm(total=n, desc="certify", unit="query", disable=not progress, leave=False) as bar:
        bar.update(sum(len(r) for r in parts.values()))
        for begin, result in _compute(certify_chunk, request, todo, step, processes, worker_threads):
            if checkpoint is not None:
                checkpoint.save(begin, result)
            parts[begin] = result
            bar.update(len(result))
    return [parts[b] for b in begins]


def _compute(certify_chunk, request, begins, step, processes, worker_threads) -> Iterator:
    """(begin, result) per chunk, in order of ``begins``."""
    if processes <= 1 or len(begins) <= 1:
        for b in begins:
            yield b, certify_chunk(request.rows(b, b + step))
        return
    parts = (request.rows(b, b + step).query_part() for b in begins)
    with _pool(min(processes, len(begins)), certify_chunk, request.without_queries(worker_threads)) as pool:
        yield from zip(begins, pool.map(_work, parts))


@contextlib.contextmanager
def _pool(processes: int, certify_chunk, shared):
    """Worker processes holding ``shared`` (the request without its queries): spawned, not forked,
    so no worker inherits a lock held by a kernel thread; one library thread each (the variables
    are set while the pool lives, for the workers it starts). ``shared`` reaches the workers as a
    temporary file they read once, not through the start-up pipe, which a worker dying while it
    starts would leave blocked."""
    saved = {k: os.environ.get(k) for k in _ONE_THREAD_ENV}
    os.environ.update({k: "1" for k in _ONE_THREAD_ENV})
    with tempfile.TemporaryDirectory(prefix="nnmargin-workers-") as folder:
        shared_file = os.path.join(folder, "request.pkl")
        with open(shared_file, "wb") as f:
            pickle.dump((certify_chunk, shared), f, protocol=pickle.HIGHEST_PROTOCOL)
        pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(shared_file,))
        try:
            _wait_until_started(pool, processes)
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _wait_until_started(pool: ProcessPoolExecutor, processes: int) -> None:
    """Return once every worker answers; raise if one exits first. (A worker that dies while it
    starts, e.g. re-importing an unguarded main script, would otherwise leave the pool waiting forever.)"""
    pings = [pool.submit(os.getpid) for _ in range(processes)]
    try:
        while wait(pings, timeout=0.2).not_done:
            if any(p.exitcode is not None for p in list(getattr(pool, "_processes", {}).values())):
                raise BrokenProcessPool("a worker exited")
        for ping in pings:
            ping.result()
    except BrokenProcessPool as exc:
        raise RuntimeError(
            f"a worker process of certify(processes={processes}) exited while starting (its traceback is printed "
            f"above). Worker processes re-import the main module: run from a script file whose work is under "
            f"'if __name__ == \"__main__\":', or use processes=1") from exc


_WORKER: dict = {}


def _init_worker(shared_file: str) -> None:
    with open(shared_file, "rb") as f:
        _WORKER["certify_chunk"], _WORKER["shared"] = pickle.load(f)


def _work(part):
    return _WORKER["certify_chunk"](_WORKER["shared"].with_queries(part))
