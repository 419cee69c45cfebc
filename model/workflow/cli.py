"""The ``houseprice`` command: init, explore, train, predict, runs, promote, rollback, gc,
report, serve.

``main(argv)`` returns an exit code and never calls ``sys.exit`` itself, so tests (and the
session fixture that trains the test artifact) call it in-process. Exit codes follow the
shell's conventions: 0 success, 1 an unexpected failure, 2 a usage problem the user can fix
(bad flag, bad config, unusable data file, bad input rows), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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


def _registry_args(p: argparse.ArgumentParser) -> None:
    """Where the runs are and which file is served: every registry command takes both."""
    p.add_argument("--runs-dir", default="runs", help="directory holding the runs")
    p.add_argument("--out", default="artifacts/model.joblib", help="served artifact path")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (each has its own ``--help``)."""
    parser = _Parser(
        prog="houseprice",
        description="House-price model: start a config from a CSV, explore the data, train, "
        "predict, list and promote runs, report on served traffic, serve.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "explore",
        help="statistics and plots of a CSV, as Markdown",
        description="Statistics and plots of a CSV, as Markdown. With --config, the data file, "
        "target, CSV format and identifier columns come from the config's [data] table; the "
        "flags given override them.",
    )
    p.add_argument("data", nargs="?", help="CSV file (default: the config's data.path)")
    p.add_argument("--config", help="TOML config whose [data] table says what and how to read")
    p.add_argument("--target", help="target column (default: the config's, else price)")
    p.add_argument("--out", default="reports/eda", help="output directory (default: reports/eda)")
    p.add_argument("--no-plots", action="store_true", help="write the Markdown only")
    p.add_argument("--delimiter", help="field separator, one character or 'tab' (default: sniffed)")
    p.add_argument(
        "--na-values",
        metavar="LIST",
        help="comma-separated spellings of a missing value, replacing the default "
        "(empty, NA, N/A, NaN, nan, null, None, ?, -); an empty item is the empty field, "
        "e.g. ',NA,?'",
    )
    p.add_argument(
        "--encoding",
        help="file encoding (default: UTF-16 by its byte-order mark, else UTF-8, else cp1252, "
        "else Latin-1)",
    )

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
    p.add_argument(
        "--encoding",
        help="file encoding (default: UTF-16 by its byte-order mark, else UTF-8, else cp1252, "
        "else Latin-1)",
    )

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
        "--no-promote",
        action="store_true",
        help="keep the model in runs/<id>/ only and leave --out as it is "
        "(serve it later with houseprice promote)",
    )
    p.add_argument(
        "--mlflow",
        metavar="URI",
        help="also log the run to this MLflow tracking store "
        "(e.g. file:./mlruns, sqlite:///mlflow.db, http://host:5000; the mlflow extra)",
    )
    p.add_argument(
        "--mlflow-experiment",
        default="houseprice",
        metavar="NAME",
        help="MLflow experiment to log to (default: houseprice)",
    )
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
    _csv_parser_option(p)

    p = sub.add_parser(
        "predict",
        help="price the rows of a CSV or JSON file",
        description=(
            "Price every row of a file with a trained artifact. Columns may carry the API "
            "names (living_area) or the training CSV's own (area); other columns are ignored "
            "unless kept. Each row gets price, low and high (the split-conformal prediction "
            "interval at --interval-level, in dollars; absent for an artifact that stores no "
            "intervals), with --explain its explanation (CSV: explanation_space, "
            "explanation_method, explanation_baseline and contribution_<feature> columns, "
            "exp(baseline + sum of contributions) being the price in space log; JSON: an "
            "explanation object), model_version and warnings: '; '-separated "
            "'COLUMN: what' entries for an unknown category, a value outside the training "
            "range, or a missing optional value (imputed). A row the service would refuse "
            "(not a number, outside the feature's bounds, a fraction for an integer feature, "
            "a required value missing) is "
            "written with an empty price and 'error: line N, column C: ...' in its warnings; "
            "the other rows are priced and the exit code is 2 with one error line counting "
            "them (--strict: stop at the first; an --output file is then not written). The "
            "input is read and scored "
            "in chunks, so memory holds one chunk, not the file (a .json document is parsed "
            "whole first; use .jsonl for big files). --engine dask prices a CSV's byte ranges "
            "in parallel on a Dask cluster into one --output file (the same bytes) or a "
            "folder of --parts."
        ),
    )
    p.add_argument("--model", default="artifacts/model.joblib", help="artifact path")
    p.add_argument(
        "--input",
        required=True,
        help="CSV (delimiter , ; tab or | sniffed, the training's missing-value spellings), "
        '.json (a list of objects, {"instances": [...]} or one object) or .jsonl/.ndjson',
    )
    p.add_argument(
        "--output",
        help="write here instead of stdout (CSV); the extension picks the format: .csv, .json, "
        ".jsonl (.ndjson); written to a temporary file and renamed at the end, so a failed "
        "run leaves no partial file and an existing one untouched",
    )
    p.add_argument(
        "--keep",
        nargs="*",
        metavar="COL",
        help="input columns copied beside the price (default: the model's identifier "
        "columns, data.id_columns, that the input has; --keep alone keeps none)",
    )
    p.add_argument(
        "--chunk-rows",
        type=_non_negative_int,
        default=10_000,
        metavar="N",
        help="rows read, priced and written at a time (default: 10000)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first row in error (exit 2); an --output file is then not written",
    )
    p.add_argument(
        "--engine",
        choices=("memory", "dask"),
        default="memory",
        help="memory: one process, chunk after chunk; dask: the CSV's byte ranges priced in "
        "parallel on a Dask cluster (the 'dask' extra), the same rows and prices "
        "(default: memory)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: the scheduler of an existing cluster (tcp://host:8786), whose "
        "workers read the input and write beside the output at the same paths; default: a "
        "local cluster of 2 worker processes",
    )
    p.add_argument(
        "--parts",
        metavar="DIR",
        help="with --engine dask, instead of --output: write a new folder DIR of part files "
        "(part-00000.csv, ...), one per byte range in file order, each with its own header",
    )
    p.add_argument(
        "--parts-format",
        choices=("csv", "json", "jsonl"),
        default="csv",
        help="the format of the --parts files (default: csv)",
    )
    p.add_argument(
        "--interval-level",
        type=float,
        default=0.9,
        metavar="L",
        help="the stored interval level of the low and high columns (default: 0.9; the "
        "artifact stores 0.8, 0.9 and 0.95)",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="add each row's explanation: exact linear terms, or tree path contributions "
        "(Saabas), stated in explanation_method (--engine memory only)",
    )
    _csv_parser_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary lines")

    p = sub.add_parser(
        "runs",
        help="table of the recorded training runs; runs diff A B compares two",
        description="List the recorded runs (* marks the one served at --out), or compare two "
        "with: houseprice runs diff RUN_A RUN_B.",
    )
    _registry_args(p)
    p.add_argument(
        "--json", action="store_true", help="one JSON object per run and line, for tools"
    )
    p.add_argument(
        "--sort",
        choices=SORT_KEYS,
        default="created",
        help="order: created (newest first, the default), cv (cv rmse_log), rmse or "
        "rmse_log (test), r2 (test); best first",
    )
    p.add_argument("--limit", type=_non_negative_int, metavar="N", help="show the first N runs")
    runs_sub = p.add_subparsers(
        dest="runs_command", title="subcommand", metavar="diff RUN_A RUN_B", parser_class=_Parser
    )
    d = runs_sub.add_parser(
        "diff",
        help="what changed between two runs: config keys, features, data, metrics",
        description="Compare two runs (ids, or unique prefixes or suffixes of them).",
    )
    d.add_argument("run_a", metavar="RUN_A")
    d.add_argument("run_b", metavar="RUN_B")
    d.add_argument("--runs-dir", default=argparse.SUPPRESS, help="directory holding index.jsonl")

    p = sub.add_parser(
        "promote",
        help="serve a recorded run's model: verify it, copy it to --out atomically",
        description="Verify run RUN_ID's stored artifact (checksum; signature when "
        "MODEL_SIGNING_KEY is set) and make it the served one at --out, atomically. "
        "A running service picks it up on POST /admin/reload.",
    )
    p.add_argument("run_id", metavar="RUN_ID", help="run id (or a unique prefix or suffix)")
    _registry_args(p)

    p = sub.add_parser(
        "rollback",
        help="serve the previously served run again",
        description="Serve again the run that was served at --out before the current one "
        "(runs/promotions.jsonl); repeated, it steps further back.",
    )
    _registry_args(p)

    p = sub.add_parser(
        "gc",
        help="remove the stored artifacts of old, never promoted runs (records stay)",
        description="Remove the stored artifacts of runs outside the --keep newest, except "
        "the served run, the rollback target and every run ever promoted. Index lines, "
        "configs, metrics, plots and model cards stay.",
    )
    p.add_argument(
        "--keep", type=_non_negative_int, required=True, metavar="N", help="newest runs to keep"
    )
    _registry_args(p)
    p.add_argument("--dry-run", action="store_true", help="list what would be removed")

    p = sub.add_parser(
        "report",
        help="drift and accuracy report over the service's prediction log",
        description="Read the service's prediction log (PREDICTION_LOG; give --log again for "
        "rotated files) and write, into --out, report.md, report.json and PNG figures: the "
        "PSI of every feature and of the prediction per time window against the training "
        "reference of --model (for the lines its model version priced), input quality, and "
        'with --feedback (JSON lines {"request_id", "index", "actual_price"}) the '
        "MAE, RMSE and mean error of every model version and role in the log. A bad line "
        "stops the report before anything is written (exit 2).",
    )
    p.add_argument(
        "--log",
        action="append",
        required=True,
        type=Path,
        metavar="LOG",
        help="prediction log file (repeat for rotated files)",
    )
    p.add_argument("--feedback", type=Path, metavar="FEEDBACK", help="observed prices (JSON lines)")
    p.add_argument("--model", required=True, help="the artifact whose reference is compared with")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument(
        "--window", default="1d", help="time window of the drift table: 30m, 6h, 1d, 1w (1d)"
    )
    p.add_argument(
        "--min-samples",
        type=_non_negative_int,
        default=200,
        metavar="N",
        help="rows a window needs for a PSI score (200, as DRIFT_MIN_SAMPLES)",
    )

    p = sub.add_parser("serve", help="serve the API with uvicorn (python -m app)")
    p.add_argument("--host", help="bind address (default: HOST or 127.0.0.1)")
    p.add_argument("--port", type=_non_negative_int, help="port (default: PORT or 8000)")
    return parser


# --- explore --------------------------------------------------------------------------------


def _explore_format(args: argparse.Namespace, fmt: Any) -> Any:
    """The config's :class:`~model.workflow.data.CsvFormat` (or the default) with the flags
    given applied over it."""
    import codecs
    from dataclasses import replace

    changes: dict[str, Any] = {}
    if args.delimiter is not None:
        delimiter = "\t" if args.delimiter in ("tab", "\\t") else args.delimiter
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise UsageError(f"--delimiter: expected one character or 'tab', got {delimiter!r}")
        changes["delimiter"] = delimiter
    if args.na_values is not None:
        changes["na_values"] = frozenset(v.strip() for v in args.na_values.split(","))
    if args.encoding is not None:
        try:
            codecs.lookup(args.encoding)
        except LookupError:
            raise UsageError(f"--encoding: unknown encoding {args.encoding!r}") from None
        changes["encoding"] = args.encoding
    return replace(fmt, **changes)


def _cmd_explore(args: argparse.Namespace) -> int:
    from model.workflow import plots
    from model.workflow.config import load_config
    from model.workflow.data import CsvFormat
    from model.workflow.explore import load_for_explore, write_report

    fmt, data, target = CsvFormat(), args.data, args.target
    ids: tuple[str, ...] = ()
    if args.config:
        cfg = load_config(args.config)
        fmt, ids = cfg.csv, cfg.id_columns
        data, target = data or cfg.data_path, target or cfg.target
    if not data:
        raise UsageError("explore: give a CSV file, or --config with a data.path")
    ds = load_for_explore(data, target or "price", _explore_format(args, fmt), ids)
    written = write_report(ds, args.out, with_plots=not args.no_plots, ids=ids)
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


def _csv_parser_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--csv-parser",
        choices=("auto", "arrow", "python"),
        help="how --engine stream, dask and predict split a CSV's plain rows: arrow "
        "(pyarrow's C parser, the 'arrow' extra), python (the standard library) or auto "
        "(arrow when installed); the same table either way (default: "
        "$HOUSEPRICE_CSV_PARSER, else auto)",
    )


def _use_csv_parser(choice: str | None) -> None:
    """``--csv-parser``, set in the environment so that the workers of a LocalCluster started
    later use it too (an existing cluster's workers keep their own)."""
    from model.workflow import arrowcsv

    if choice is not None:
        os.environ[arrowcsv.ENV] = choice
    try:
        arrowcsv.parser()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# --- train ----------------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    from model.workflow.config import load_config
    from model.workflow.progress import ProgressBar
    from model.workflow.train import train

    cfg = load_config(args.config).with_overrides(
        seed=args.seed, folds=args.folds, test_size=args.test_size, data_path=args.data
    )
    _use_csv_parser(args.csv_parser)
    key = os.environ.get("MODEL_SIGNING_KEY") or None
    from model.workflow.tracking import MlflowLogger, TrackingError  # MLflow itself: lazily

    bar = ProgressBar(sys.stderr, quiet=args.quiet, print_every=args.print_every)
    try:
        # Built before training, so a bad URI or a missing extra costs no fitting time.
        tracker = MlflowLogger(args.mlflow, args.mlflow_experiment) if args.mlflow else None
        result = train(
            cfg,
            args.out,
            args.runs_dir,
            progress=bar,
            plots=not args.no_plots,
            signing_key=key.encode() if key else None,
            promote=not args.no_promote,
            tracker=tracker,
            engine=args.engine,
            chunk_rows=args.chunk_rows or None,
            scheduler=args.scheduler,
        )
    except TrackingError as exc:
        raise UsageError(str(exc)) from None
    meta = result.metadata
    cv = meta["cv"][cfg.scoring]
    for line in meta["search"]["warnings"]:
        bar.line(f"warning: {line}")
    where = (
        f"{result.artifact} (not served: houseprice promote {result.run_id})"
        if args.no_promote
        else str(result.artifact)
    )
    bar.close(
        f"trained {meta['model']['estimator']} {meta['search']['best_params']} in "
        f"{result.seconds:.1f}s: cv {cfg.scoring} {cv['mean']:.4f} ± {cv['std']:.4f}, "
        f"test rmse_log {meta['test']['rmse_log']:.4f} rmse ${meta['test']['rmse']:,.0f} "
        f"-> {where} (run {result.run_id})"
    )
    return EXIT_OK


# --- predict --------------------------------------------------------------------------------


def _cmd_predict(args: argparse.Namespace) -> int:
    from model.workflow.artifact import load_artifact
    from model.workflow.progress import ProgressBar
    from model.workflow.rowfiles import output_format
    from model.workflow.score import Summary, predict_file

    if args.output is not None:
        output_format(args.output)  # an unknown extension is refused before any work
    _use_csv_parser(args.csv_parser)
    key = os.environ.get("MODEL_SIGNING_KEY") or None
    art = load_artifact(args.model, signing_key=key.encode() if key else None)
    # A bar on stderr, but not over CSV written to the same terminal.
    on_tty = args.output is None and sys.stdout.isatty()
    bar = ProgressBar(sys.stderr, quiet=args.quiet or on_tty)
    if args.engine != "dask" and (args.parts is not None or args.scheduler is not None):
        flag = "--parts" if args.parts is not None else "--scheduler"
        raise UsageError(f"{flag} needs --engine dask")
    if args.engine == "dask" and args.explain:
        raise UsageError("--explain needs --engine memory (the dask parts share one header)")
    # The engines share the call; each adds its own options.
    run: Callable[..., Summary]
    if args.engine == "dask":
        from model.workflow.dask_predict import predict_dask as run

        own: dict[str, Any] = {
            "parts": args.parts,
            "parts_format": args.parts_format,
            "scheduler": args.scheduler,
            "say": None if args.quiet else bar.line,
        }
    else:
        run, own = predict_file, {"progress": bar, "explain": args.explain}
    try:
        s = run(
            art.pipeline,
            art.metadata,
            args.input,
            args.output,
            keep=args.keep,
            chunk_rows=args.chunk_rows,
            strict=args.strict,
            interval_level=args.interval_level,
            **own,
        )
    except BrokenPipeError:  # `houseprice predict ... | head`: the reader stopped; stop too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    notes = []
    if s.interval is None:
        notes.append("note: no low/high columns: the artifact stores no interval at this level")
    if s.absent:
        notes.append(f"warning: optional feature(s) absent, imputed in every row: {s.absent}")
    if s.rows_warned:
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(s.counts.items()))
        notes.append(f"warning: {s.rows_warned:,} priced rows have warnings ({kinds})")
    rate = s.rows / s.seconds if s.seconds > 0 else 0.0
    where = args.output or (f"{args.parts}/" if args.parts else "stdout")
    notes.append(
        f"priced {s.rows - s.errors:,} of {s.rows:,} rows in {s.seconds:.1f}s "
        f"({rate:,.0f} rows/s) -> {where}"
    )
    for line in notes:
        if not args.quiet:
            bar.line(line)
    bar.close("")
    if s.errors:
        print(
            f"error: {args.input}: {s.errors:,} of {s.rows:,} rows not priced (empty price, "
            f"the reason in their warnings); the first: {s.first_error}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return EXIT_OK


# --- runs, promote, rollback, gc ------------------------------------------------------------

#: ``runs --sort`` keys: how to read each from a run record, and whether larger is better.
SORT_KEYS = ("created", "cv", "rmse", "rmse_log", "r2")


def _sort_value(record: dict[str, Any], key: str) -> Any:
    if key == "cv":
        return (record.get("cv") or {}).get("rmse_log", {}).get("mean")
    return (record.get("test") or {}).get(key)


def sort_runs(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Newest first for ``created``; best first for a metric; a run without it last."""
    if key == "created":
        return records[::-1]  # the index is in the order runs finished
    best_high = key == "r2"
    have = [r for r in records if _finite(_sort_value(r, key))]
    lacking = [r for r in records if not _finite(_sort_value(r, key))]
    have.sort(key=lambda r: _sort_value(r, key), reverse=best_high)
    return have + lacking


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def format_runs(records: list[dict[str, Any]], served: str | None = None) -> str:
    """A fixed-width table, one run per line; ``*`` marks the run ``served``."""
    head = [
        "",
        "run_id",
        "created_at",
        "config",
        "data",
        "features",
        "model",
        "cv rmse_log",
        "test rmse",
        "test r2",
    ]
    rows = [head]
    for r in records:
        cv = (r.get("cv") or {}).get("rmse_log", {})
        test = r.get("test") or {}
        params = ",".join(f"{k}={v}" for k, v in sorted((r.get("params") or {}).items()))
        rows.append(
            [
                "*" if served is not None and r.get("run_id") == served else "",
                str(r.get("run_id", "?")),
                str(r.get("created_at", "?")),
                Path(r["config"]).name if r.get("config") else "—",
                Path(r["data"]).name if r.get("data") else "—",
                str(r["n_features"]) if r.get("n_features") is not None else "—",
                f"{r.get('estimator', '?')}({params})",
                f"{cv['mean']:.4f} ± {cv['std']:.4f}" if _finite(cv.get("mean")) else "—",
                f"{test['rmse']:,.0f}" if _finite(test.get("rmse")) else "—",
                f"{test['r2']:.3f}" if _finite(test.get("r2")) else "—",
            ]
        )
    widths = [max(len(row[j]) for row in rows) for j in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _cmd_runs(args: argparse.Namespace) -> int:
    from model.workflow.artifact import read_checksums
    from model.workflow.registry import diff_runs, served_sha256
    from model.workflow.runs import run_records

    if args.runs_command == "diff":
        print("\n".join(diff_runs(args.runs_dir, args.run_a, args.run_b)))
        return EXIT_OK
    records = run_records(args.runs_dir)
    sha = served_sha256(args.out)
    served = next((r["run_id"] for r in records if sha and r["artifact_sha256"] == sha), None)
    if sha is not None and len(read_checksums(args.out)) > 1:
        print(
            f"note: a promotion to {args.out} was interrupted; it serves run {served or sha[:12]}"
            f" and verifies; promote that run (or another) again to finish",
            file=sys.stderr,
        )
    records = sort_runs(records, args.sort)
    if args.limit is not None:
        records = records[: args.limit]
    if args.json:
        for r in records:
            print(json.dumps({**r, "served": r["run_id"] == served}, sort_keys=True))
        return EXIT_OK
    if not records:
        print(f"no runs recorded in {args.runs_dir}/index.jsonl", file=sys.stderr)
        return EXIT_OK
    print(format_runs(records, served))
    return EXIT_OK


def _signing_key() -> bytes | None:
    key = os.environ.get("MODEL_SIGNING_KEY") or None
    return key.encode() if key else None


def _cmd_promote(args: argparse.Namespace) -> int:
    from model.workflow.registry import promote

    done = promote(args.run_id, args.runs_dir, args.out, _signing_key())
    if not done.changed:
        print(f"run {done.run_id} is already served at {done.out}; nothing changed")
    else:
        was = f" (was {done.previous_run_id})" if done.previous_run_id else ""
        print(
            f"promoted run {done.run_id} -> {done.out}{was}, sha256 {done.sha256[:12]}; "
            f"a running service picks it up on POST /admin/reload{_reload_body(done)}"
        )
    return EXIT_OK


def _reload_body(done: Any) -> str:
    """What the reload must say when the model now served is older than the one it replaced."""
    if not done.downgrade:
        return ""
    return ' with {"allow_downgrade": true} (this run is older than the one it replaces)'


def _cmd_rollback(args: argparse.Namespace) -> int:
    from model.workflow.registry import rollback

    done = rollback(args.runs_dir, args.out, _signing_key())
    was = f" (was {done.previous_run_id})" if done.previous_run_id else ""
    print(
        f"rolled back to run {done.run_id} -> {done.out}{was}, sha256 {done.sha256[:12]}; "
        f"a running service picks it up on POST /admin/reload{_reload_body(done)}"
    )
    return EXIT_OK


def _cmd_gc(args: argparse.Namespace) -> int:
    from model.workflow.registry import gc

    removed = gc(args.runs_dir, args.keep, args.out, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for c in removed:
        print(f"{verb} the artifact of run {c.run_id} ({c.nbytes:,} bytes)")
    total = sum(c.nbytes for c in removed)
    print(f"{verb} {len(removed)} artifact(s), {total:,} bytes; every run's record is kept")
    return EXIT_OK


# --- serve ----------------------------------------------------------------------------------


def _cmd_report(args: argparse.Namespace) -> int:
    from model.workflow.artifact import load_artifact
    from model.workflow.report import ReportError, write_report

    if args.min_samples < 1:
        raise UsageError("--min-samples: expected an integer >= 1")
    key = os.environ.get("MODEL_SIGNING_KEY") or None
    art = load_artifact(args.model, signing_key=key.encode() if key else None)
    try:
        written = write_report(
            args.log, art.metadata, args.out, args.feedback, args.window, args.min_samples
        )
    except ReportError as e:
        raise UsageError(str(e)) from None
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    # The service is another package (app/), run as its own program: the estimator library
    # never imports it. exec keeps this PID, so signals reach the server directly.
    argv = [sys.executable, "-m", "app"]
    if args.host:
        argv += ["--host", args.host]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
    return EXIT_OK  # not reached: execv replaces the process


_COMMANDS = {
    "init": _cmd_init,
    "explore": _cmd_explore,
    "train": _cmd_train,
    "predict": _cmd_predict,
    "runs": _cmd_runs,
    "promote": _cmd_promote,
    "rollback": _cmd_rollback,
    "gc": _cmd_gc,
    "report": _cmd_report,
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
