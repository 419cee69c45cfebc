"""The ``houseprice`` command: init, explore, train, predict, runs, serve.

``main(argv)`` returns an exit code and never calls ``sys.exit`` itself, so tests (and the
session fixture that trains the test artifact) call it in-process. Exit codes follow the
shell's conventions: 0 success, 1 an unexpected failure, 2 a usage problem the user can fix
(bad flag, bad config, unusable data file, bad input rows), 130 interrupted.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A problem with the command line or its inputs; reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so ``main`` can return the code."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        if message:
            sys.stderr.write(message)
        raise _ExitRequest(status)


class _ExitRequest(Exception):  # noqa: N818 (not an error: --help asks to exit)
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (each has its own ``--help``)."""
    parser = _Parser(
        prog="houseprice",
        description="House-price model: start a config from a CSV, explore the data, train, "
        "predict, list runs, serve.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("explore", help="statistics and plots of a CSV, as Markdown")
    p.add_argument("data", help="CSV file (e.g. data/ames.csv)")
    p.add_argument("--target", default="price", help="target column (default: price)")
    p.add_argument("--out", default="reports/eda", help="output directory (default: reports/eda)")
    p.add_argument("--no-plots", action="store_true", help="write the Markdown only")

    p = sub.add_parser(
        "init",
        help="write a starter training config from a CSV",
        description="Read a CSV and write a commented starter config that "
        "`houseprice train --config CONFIG` trains unchanged: every usable column a feature "
        "(identifiers and constant columns left out, with the reason), kinds, API names, "
        "bounds and examples from the data.",
    )
    p.add_argument("data", help="CSV file of past sales, one row per sale")
    p.add_argument(
        "--target", help="the price column (default: the one column named like price or value)"
    )
    p.add_argument("--out", help="config file to write (default: print to standard output)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument("--delimiter", help="field delimiter (default: sniffed: , ; tab |)")
    p.add_argument("--encoding", help="file encoding (default: UTF-8, else cp1252, else Latin-1)")

    p = sub.add_parser(
        "train",
        help="train a model from a TOML config and write the artifact",
        description="Train from a config; flags override the config's values.",
    )
    p.add_argument("--config", required=True, help="TOML config (e.g. configs/ames.toml)")
    p.add_argument("--out", default="artifacts/model.joblib", help="artifact path")
    p.add_argument("--runs-dir", default="runs", help="where runs/<id>/ and index.jsonl go")
    p.add_argument("--data", help="CSV file, instead of the config's data.path")
    p.add_argument("--seed", type=_non_negative_int, help="seed of the split and the folds")
    p.add_argument("--folds", type=_non_negative_int, help="number of CV folds (>= 2)")
    p.add_argument("--test-size", type=float, help="held-out share of the rows, in (0, 1)")
    p.add_argument("--quiet", action="store_true", help="no progress, only the summary line")
    p.add_argument(
        "--print-every",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="print a progress line every N fits instead of the bar (for logs)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument(
        "--engine",
        choices=("memory", "stream", "dask"),
        default="memory",
        help="memory: load the CSV (any estimator); stream: linear models from sums over "
        "chunks, memory for one chunk whatever the file's size; dask: the same sums on a "
        "Dask cluster (the 'dask' extra) (default: memory)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: the scheduler of an existing cluster (tcp://host:8786); "
        "default: a local cluster of 2 worker processes",
    )
    p.add_argument(
        "--chunk-rows",
        type=_non_negative_int,
        metavar="N",
        help="rows per chunk with --engine stream (default: about 64 MB of fields)",
    )

    p = sub.add_parser("predict", help="predict prices for rows in a CSV or JSON file")
    p.add_argument("--model", default="artifacts/model.joblib", help="artifact path")
    p.add_argument(
        "--input", required=True, help="CSV with API column names, or JSON rows (list of objects)"
    )
    p.add_argument("--output", help="write here (.json or .csv) instead of stdout (CSV)")

    p = sub.add_parser("runs", help="table of the recorded training runs")
    p.add_argument("--runs-dir", default="runs", help="directory holding index.jsonl")
    p.add_argument("--json", action="store_true", help="print the raw JSON lines")

    p = sub.add_parser("serve", help="serve the API with uvicorn (app.main:app)")
    p.add_argument("--host", help="bind address (default: HOST or 127.0.0.1)")
    p.add_argument("--port", type=_non_negative_int, help="port (default: PORT or 8000)")
    return parser


# --- explore --------------------------------------------------------------------------------


def _cmd_explore(args: argparse.Namespace) -> int:
    from model.workflow import plots
    from model.workflow.data import load_csv
    from model.workflow.explore import write_report

    ds = load_csv(args.data, target=args.target)
    written = write_report(ds, args.out, with_plots=not args.no_plots)
    if not args.no_plots and not plots.available():
        print(
            "matplotlib is not installed: plots skipped (pip install 'houseprice[plots]')",
            file=sys.stderr,
        )
    for path in written:
        print(path)
    return EXIT_OK


# --- init -----------------------------------------------------------------------------------


def _cmd_init(args: argparse.Namespace) -> int:
    from model.workflow.atomic import atomic_write_text
    from model.workflow.data import CsvFormat
    from model.workflow.starter import starter_config

    if args.out and os.path.exists(args.out) and not args.force:
        raise UsageError(f"{args.out} exists; pass --force to overwrite it")
    if args.delimiter is not None and len(args.delimiter.replace("\\t", "\t")) != 1:
        raise UsageError(f"--delimiter: expected one character, got {args.delimiter!r}")
    fmt = CsvFormat(
        delimiter=args.delimiter.replace("\\t", "\t") if args.delimiter else None,
        encoding=args.encoding,
    )
    text = starter_config(args.data, args.target, fmt, out=args.out)
    if args.out is None:
        sys.stdout.write(text)
        return EXIT_OK
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}; next: houseprice train --config {args.out}", file=sys.stderr)
    return EXIT_OK


# --- train ----------------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    from model.workflow.config import load_config
    from model.workflow.progress import ProgressBar
    from model.workflow.train import train

    cfg = load_config(args.config).with_overrides(
        seed=args.seed, folds=args.folds, test_size=args.test_size, data_path=args.data
    )
    key = os.environ.get("MODEL_SIGNING_KEY") or None
    bar = ProgressBar(sys.stderr, quiet=args.quiet, print_every=args.print_every)
    result = train(
        cfg,
        args.out,
        args.runs_dir,
        progress=bar,
        plots=not args.no_plots,
        signing_key=key.encode() if key else None,
        engine=args.engine,
        chunk_rows=args.chunk_rows or None,
        scheduler=args.scheduler,
    )
    meta = result.metadata
    cv = meta["cv"][cfg.scoring]
    for line in meta["search"]["warnings"]:
        bar.line(f"warning: {line}")
    bar.close(
        f"trained {meta['model']['estimator']} {meta['search']['best_params']} in "
        f"{result.seconds:.1f}s: cv {cfg.scoring} {cv['mean']:.4f} ± {cv['std']:.4f}, "
        f"test rmse_log {meta['test']['rmse_log']:.4f} rmse ${meta['test']['rmse']:,.0f} "
        f"-> {result.artifact} (run {result.run_id})"
    )
    return EXIT_OK


# --- predict --------------------------------------------------------------------------------


def read_rows(path: str, features: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Rows of a CSV (API column names) or JSON file as a table of the model's features.

    Kinds come from the artifact's metadata, not from guessing: a categorical code written
    as a number (``"20"``) stays a category. A required feature absent from the file is an
    error; an optional one is filled as missing, which the pipeline imputes. A number outside
    the feature's hard ``bounds`` is refused, as the API refuses it.
    """
    from model.base import as_columns
    from model.workflow.data import load_csv

    p = Path(path)
    if p.suffix.lower() == ".json":
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"{p}: no such file") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"{p}: not valid JSON: {exc}") from None
        rows = [doc] if isinstance(doc, dict) else doc
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise UsageError(f"{p}: expected a JSON object or a non-empty list of objects")
        names = {k for r in rows for k in r}
        rows = [{k: r.get(k) for k in names} for r in rows]
        try:
            table = as_columns(rows)
        except ValueError as exc:
            raise UsageError(f"{p}: {exc}") from None
    else:
        table = dict(load_csv(p).columns)
    n = len(next(iter(table.values())))
    out: dict[str, np.ndarray] = {}
    for f in features:
        name = f["name"]
        if name not in table:
            if f["required"]:
                raise UsageError(f"{p}: required feature {name!r} is missing")
            col = np.full(n, math.nan) if f["kind"] == "numeric" else np.full(n, None, dtype=object)
        else:
            col = table[name]
            if f["kind"] == "categorical" and col.dtype != object:
                col = np.array(
                    [None if math.isnan(v) else f"{v:g}" for v in col.tolist()], dtype=object
                )
            elif f["kind"] == "numeric" and col.dtype == object:
                bad = next(v for v in col if v is not None)
                raise UsageError(f"{p}: feature {name!r} must be a number, got {bad!r}")
            if f["kind"] == "numeric" and f.get("bounds"):
                lo, hi = f["bounds"]
                with np.errstate(invalid="ignore"):
                    outside = np.flatnonzero((col < lo) | (col > hi))
                if outside.size:  # the API's rule: a value outside the hard bounds is refused
                    i = int(outside[0])
                    raise UsageError(
                        f"{p}: row {i + 1}: {name}={col[i]:g} is outside [{lo:g}, {hi:g}]"
                    )
        out[name] = col
    return out


def _cmd_predict(args: argparse.Namespace) -> int:
    from model.workflow.artifact import load_artifact

    key = os.environ.get("MODEL_SIGNING_KEY") or None
    art = load_artifact(args.model, signing_key=key.encode() if key else None)
    table = read_rows(args.input, art.metadata["features"])
    prices = np.asarray(art.pipeline.predict(table), dtype=np.float64)
    if args.output and args.output.lower().endswith(".json"):
        text = json.dumps([{"price": float(v)} for v in prices], indent=2) + "\n"
    else:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["price"])
        w.writerows([[f"{v:.2f}"] for v in prices])
        text = buf.getvalue()
    if args.output:
        from model.workflow.atomic import atomic_write_text

        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


# --- runs -----------------------------------------------------------------------------------


def format_runs(records: list[dict[str, Any]]) -> str:
    """A fixed-width table: id, time, data hash, params, CV and test metrics."""
    head = ["run_id", "created_at", "data", "params", "cv rmse_log", "test rmse_log", "test rmse"]
    rows = [head]
    for r in records:
        cv = r.get("cv", {}).get("rmse_log", {})
        test = r.get("test", {})
        params = ",".join(f"{k}={v}" for k, v in sorted(r.get("params", {}).items()))
        rows.append(
            [
                str(r.get("run_id", "?")),
                str(r.get("created_at", "?")),
                str(r.get("data_sha256", ""))[:12],
                f"{r.get('estimator', '?')}({params})",
                f"{cv['mean']:.4f}±{cv['std']:.4f}" if cv else "—",
                f"{test['rmse_log']:.4f}" if "rmse_log" in test else "—",
                f"{test['rmse']:,.0f}" if "rmse" in test else "—",
            ]
        )
    widths = [max(len(row[j]) for row in rows) for j in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _cmd_runs(args: argparse.Namespace) -> int:
    from model.workflow.runs import read_index

    records = read_index(args.runs_dir)
    if args.json:
        for r in records:
            print(json.dumps(r, sort_keys=True))
        return EXIT_OK
    if not records:
        print(f"no runs recorded in {args.runs_dir}/index.jsonl", file=sys.stderr)
        return EXIT_OK
    print(format_runs(records))
    return EXIT_OK


# --- serve ----------------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.settings import Settings

    settings = Settings.from_env()
    # One worker: the drift window and the metrics live in this process (ARCHITECTURE.md).
    uvicorn.run(
        "app.main:app",
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        log_level=settings.log_level,
        workers=1,
    )
    return EXIT_OK


_COMMANDS = {
    "init": _cmd_init,
    "explore": _cmd_explore,
    "train": _cmd_train,
    "predict": _cmd_predict,
    "runs": _cmd_runs,
    "serve": _cmd_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``houseprice`` command with ``argv`` (default ``sys.argv[1:]``); return the code."""
    from model.workflow.artifact import ArtifactError
    from model.workflow.config import ConfigError
    from model.workflow.dask_engine import EngineError
    from model.workflow.data import DataError

    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
        return _COMMANDS[args.command](args)
    except _ExitRequest as exc:  # --help
        return exc.status
    except (UsageError, ConfigError, DataError, ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EngineError as exc:  # a cluster's failure: nothing was written
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: nothing was replaced", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # full disk, read-only directory: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
