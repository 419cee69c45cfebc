"""The ``dask`` engine: the stream engine's passes run on a Dask cluster, a task per partition.

The file is cut into byte ranges of about :data:`PARTITION_BYTES` at line starts
(:class:`model.workflow.stream.Span`); a first round of tasks counts each range's lines, so
every row keeps its file line for the error messages. Each pass of
:func:`model.workflow.stream.fit_stream` then maps one function over the ranges on the
workers (``Client.map``) and reduces the partial results on the client: pass 1's counts and
first problems, pass 2's per-fold sums and samples, pass 3's metric sums. Those are the
stream engine's own functions, so the two engines give the same model (sums are added in
another order: equal to rounding).

Without ``scheduler`` a :class:`distributed.LocalCluster` of two worker processes (one
thread each) runs on this machine; with it, the client connects to an existing cluster,
whose workers must import this package (``pip install houseprice``) and read the data file
at the same path. A worker that dies fails the run (``allowed-failures = 0`` on a cluster
started here; an existing cluster's own setting decides whether its tasks are retried),
raised as :class:`EngineError` before anything is written. Dask is imported only here,
only for ``--engine dask`` (the ``dask`` extra).

A quoted field holding a newline must not straddle a range boundary (as with any byte-range
CSV reader, ``dask.dataframe.read_csv`` included).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from model.workflow.data import CsvFormat
from model.workflow.fastcsv import data_start
from model.workflow.stream import Reader, Runner, Span, StreamFit, fit_stream

#: Bytes of the file per task.
PARTITION_BYTES = 32 << 20
#: Workers of the LocalCluster started when no scheduler is given.
LOCAL_WORKERS = 2


class EngineError(RuntimeError):
    """The cluster failed the run (a worker died, the scheduler is unreachable)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _count_lines(path: str, start: int, end: int) -> int:
    """Newlines in bytes ``[start, end)`` of ``path``."""
    count = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            block = fh.read(min(left, 1 << 20))
            if not block:
                break
            count += block.count(b"\n")
            left -= len(block)
    return count


def _line_start(fh: Any, pos: int, size: int) -> int:
    """The first line start at or after byte ``pos``."""
    if pos >= size:
        return size
    fh.seek(pos - 1)
    while True:
        block = fh.read(1 << 16)
        if not block:
            return size
        k = block.find(b"\n")
        if k >= 0:
            return fh.tell() - len(block) + k + 1
        pos += len(block)


class DaskRunner(Runner):
    """Runs each pass's function on the partitions with a ``distributed.Client``."""

    name = "dask"

    def __init__(self, client: Any, partition_bytes: int = PARTITION_BYTES) -> None:
        self.client = client
        self.partition_bytes = partition_bytes

    def spans(self, rd: Reader) -> list[Span | None]:
        return list(self.file_spans(rd.path, rd.cfg.csv))

    def file_spans(self, path: str | Path, fmt: CsvFormat) -> list[Span]:
        """The data rows of ``path`` cut at line starts into ranges of about
        ``partition_bytes``, each with the lines before it (counted by the workers)."""
        start, line = data_start(path, fmt)
        size = os.path.getsize(path)
        parts = max(1, math.ceil((size - start) / self.partition_bytes))
        with open(path, "rb") as fh:
            cuts = [start]
            for i in range(1, parts):
                cuts.append(max(cuts[-1], _line_start(fh, start + i * self.partition_bytes, size)))
            cuts.append(size)
        bounds = [(a, b) for a, b in itertools.pairwise(cuts) if b > a]
        counts = self.map(_count_lines, [(str(path), a, b) for a, b in bounds])
        spans: list[Span] = []
        for (a, b), n in zip(bounds, counts, strict=True):
            spans.append(Span(a, b, line))
            line += n
        return spans or [Span(start, size, line)]

    def keeps_columns(self) -> bool:
        return False  # a partition's passes may run on different workers

    def map(self, fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
        if not args:
            return []
        futures = self.client.map(fn, *zip(*args, strict=True), pure=False)
        try:
            return list(self.client.gather(futures))
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in ("distributed", "dask", "tornado") or (
                isinstance(exc, OSError | TimeoutError)
            ):
                raise EngineError(
                    f"dask: {type(exc).__name__}: {exc}; the run stopped and nothing was written"
                ) from None
            raise  # the pass's own errors (DataError, ConfigError) as they are


@contextlib.contextmanager
def connect(scheduler: str | None, say: Callable[[str], None] | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` of ``scheduler``'s cluster, or of a LocalCluster started here
    (closed on exit); a missing ``dask`` extra or an unreachable scheduler is an
    :class:`EngineError` with the usage exit code."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise EngineError(
            "--engine dask needs dask and distributed: pip install 'houseprice[dask]'", 2
        ) from None
    note = say or (lambda _: None)
    cluster = None
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        if scheduler:
            try:
                client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise EngineError(
                    f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({exc})", 2
                ) from None
        else:
            cluster = LocalCluster(
                n_workers=LOCAL_WORKERS,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = Client(cluster)
    try:
        workers = len(client.scheduler_info()["workers"])
        note(f"dask: {workers} workers at {client.scheduler_info()['address']}")
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def fit_dask(
    cfg: Any,
    grid: dict[str, list[Any]],
    *,
    chunk_rows: int | None = None,
    scheduler: str | None = None,
    say: Callable[[str], None] | None = None,
) -> StreamFit:
    """:func:`model.workflow.stream.fit_stream` with its passes on a Dask cluster."""
    cfg = dataclasses.replace(cfg, data_path=os.path.abspath(cfg.data_path))  # for the workers
    with connect(scheduler, say) as client:
        return fit_stream(cfg, grid, chunk_rows=chunk_rows, say=say, runner=DaskRunner(client))
