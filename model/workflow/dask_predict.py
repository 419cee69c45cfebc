"""``houseprice predict --engine dask``: a CSV's partitions priced in parallel on a Dask cluster.

The file is cut into byte ranges at line starts, as for training
(:meth:`model.workflow.dask_engine.DaskRunner.file_spans`: every row keeps its file line for
the messages). Each task reads its range (:func:`model.workflow.fastcsv.iter_span`), scores
it chunk by chunk with the memory scorer's own code (:func:`model.workflow.score.score_chunks`:
the same parsing, checks, warnings and prices) and writes its rows to a file of its own in a
staging folder beside the output. The client then

- with ``--output FILE``: writes FILE (CSV, JSON or JSON lines, by its extension) as the
  header, the parts in file order and the closing, through
  :func:`model.workflow.atomic.atomic_open`: the same bytes as ``--engine memory``;
- with ``--parts DIR``: renames the staging folder to DIR, which then holds
  ``part-00000.csv``, ``part-00001.csv``, ... (the extension of ``--parts-format``), each a
  whole file with its own header, in file order; DIR must not exist yet.

The workers must read the input and write beside the output at the same paths (one machine, or
a shared file system). A worker dying, a scheduler lost, a row in error with ``strict``: the
run fails, the staging folder is removed, and an existing output is left as it was. The input
must be a CSV (JSON is not cut in byte ranges; use ``--engine memory``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from model.workflow.atomic import atomic_open
from model.workflow.dask_engine import DaskRunner, connect
from model.workflow.data import CsvFormat, DataError, read_header
from model.workflow.fastcsv import iter_span
from model.workflow.rowfiles import (
    OUTPUT_FORMATS,
    Format,
    RowChunk,
    input_format,
    output_format,
    render,
    render_end,
)
from model.workflow.score import (
    Scorer,
    Summary,
    check_keep,
    default_keep,
    resolve_columns,
    score_chunks,
)


def _opening(fmt: Format, kept: Sequence[str], interval: bool) -> str:
    """What comes before the rows: the CSV header (with ``low`` and ``high`` when the rows
    carry an interval), the JSON list's ``[``."""
    if fmt == "csv":
        extra: dict[str, list[Any]] = {"low": [], "high": []} if interval else {}
        return render("csv", {k: [] for k in kept}, [], "", {}, True, True, extra)
    return "[" if fmt == "json" else ""


def _append(dst: Any, body: Path, fmt: Format, first: bool) -> bool:
    """Copy a part's rows (each JSON record led by ``,``) to ``dst``; ``first``: no record
    written yet, so a JSON part's leading comma is dropped. Whether a record was written."""
    with open(body, "rb") as src:
        head = src.read(1)
        if not head:
            return False
        if not (fmt == "json" and first and head == b","):
            dst.write(head)
        shutil.copyfileobj(src, dst, 1 << 20)
    return True


def _score_part(
    pipeline: Any,
    metadata: Mapping[str, Any],
    source: str,
    span: Any,
    columns: Mapping[str, str | None],
    kept: list[str],
    fmt: Format,
    chunk_rows: int,
    body: str,
    part: str | None,
    interval_level: float | None,
) -> Summary:
    """On a worker: price one range of ``source`` into ``body`` (its rows only, each JSON
    record led by ``,``); with ``part``, then write that part as a whole file."""
    scorer = Scorer(pipeline, metadata, interval_level)
    fmt_in = CsvFormat(na_values=scorer.na_values)
    chunks = (
        RowChunk(c.columns, c.lines, "line {}", True)
        for c in iter_span(source, fmt_in, chunk_rows, span.start, span.end, span.line)
    )
    summary = Summary(kept=kept)
    with open(body, "wb") as fh:

        def write(text: str) -> None:
            fh.write(text.encode("utf-8"))

        score_chunks(scorer, chunks, columns, fmt, write, summary, False, source, "", False)
    if part is not None:
        with open(part, "wb") as out:
            out.write(_opening(fmt, kept, scorer.interval is not None).encode("utf-8"))
            _append(out, Path(body), fmt, True)
            out.write(render_end(fmt).encode("utf-8"))
        os.unlink(body)
    return summary


def predict_dask(
    pipeline: Any,
    metadata: Mapping[str, Any],
    source: str | Path,
    output: str | Path | None = None,
    *,
    parts: str | Path | None = None,
    parts_format: str = "csv",
    keep: Sequence[str] | None = None,
    chunk_rows: int = 10_000,
    strict: bool = False,
    scheduler: str | None = None,
    say: Callable[[str], None] | None = None,
    runner: DaskRunner | None = None,
    interval_level: float | None = 0.9,
) -> Summary:
    """Price ``source`` on a Dask cluster into ``output`` (one file) or ``parts`` (a folder of
    part files); see the module docstring. Raises as
    :func:`model.workflow.score.predict_file` does, and
    :class:`model.workflow.dask_engine.EngineError` when the cluster fails the run."""
    t0 = time.perf_counter()
    if (output is None) == (parts is None):
        raise DataError("--engine dask writes to --output FILE or to --parts DIR (one of them)")
    fmt: Format
    if output is not None:
        fmt = output_format(output)
    else:
        if parts_format not in OUTPUT_FORMATS.values():
            raise DataError(f"--parts-format {parts_format}: expected csv, json or jsonl")
        fmt = OUTPUT_FORMATS[f".{parts_format}"]
    if chunk_rows < 1:
        raise DataError(f"--chunk-rows must be >= 1, got {chunk_rows}")
    src = Path(source).absolute()
    if input_format(src) != "csv":
        raise DataError(
            f"{source}: --engine dask cuts a CSV into byte ranges; a JSON file is read whole "
            "(use --engine memory)"
        )
    named = output if output is not None else parts
    assert named is not None
    target = Path(named).absolute()
    if src.exists() and target.resolve() == src.resolve():
        raise DataError(f"{target}: the output would replace the input file")
    if parts is not None and target.exists():
        raise DataError(f"--parts {parts}: already exists; name a new folder")
    scorer = Scorer(pipeline, metadata, interval_level)
    header, _, _ = read_header(src, CsvFormat(na_values=scorer.na_values))
    columns = resolve_columns(scorer.features, header, str(source))
    kept = list(keep) if keep is not None else default_keep(metadata, header)
    check_keep(kept, header, str(source))
    absent = [f.name for f in scorer.features if columns[f.name] is None]
    if not target.parent.is_dir():
        raise DataError(f"{target.parent}: no such folder")

    def run(dask: DaskRunner) -> Summary:
        spans = dask.file_spans(src, CsvFormat(na_values=scorer.na_values))
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.parts-", dir=target.parent))
        renamed = False
        try:
            ext = next(e for e, f in OUTPUT_FORMATS.items() if f == fmt)
            args = [
                (
                    pipeline,
                    metadata,
                    str(src),
                    span,
                    columns,
                    kept,
                    fmt,
                    chunk_rows,
                    str(stage / f".body-{i:05d}"),
                    None if parts is None else str(stage / f"part-{i:05d}{ext}"),
                    interval_level,
                )
                for i, span in enumerate(spans)
            ]
            results = dask.map(_score_part, args)
            summary = Summary(absent=absent, kept=kept)
            for part_summary in results:  # in file order: the first error is the file's
                if part_summary.errors and strict:
                    done = f"{output if output is not None else parts} not written"
                    raise DataError(f"{source}: {part_summary.first_error} (--strict: {done})")
                if part_summary.errors and not summary.errors:
                    summary.first_error = part_summary.first_error
                summary.errors += part_summary.errors
                summary.rows += part_summary.rows
                summary.rows_warned += part_summary.rows_warned
                summary.counts.update(part_summary.counts)
            if summary.rows == 0:
                raise DataError(f"{source}: no data rows after the header")
            if parts is None:
                with atomic_open(target) as out:
                    out.write(_opening(fmt, kept, scorer.interval is not None).encode("utf-8"))
                    first = True
                    for a in args:
                        first = not _append(out, Path(a[8]), fmt, first) and first
                    out.write(render_end(fmt).encode("utf-8"))
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(stage, 0o777 & ~umask)  # mkdtemp's folder is private
                os.rename(stage, target)
                renamed = True
        finally:
            if not renamed:
                shutil.rmtree(stage, ignore_errors=True)
        summary.seconds = time.perf_counter() - t0
        return summary

    if runner is not None:
        return run(runner)
    with connect(scheduler, say) as client:
        return run(DaskRunner(client))
