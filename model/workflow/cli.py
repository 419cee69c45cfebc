"""The ``houseprice`` command: explore, train, predict, runs, serve.

``main(argv)`` returns an exit code and never calls ``sys.exit`` itself, so tests (and the
session fixture that trains the test artifact) call it in-process. Exit codes follow the
shell's conventions: 0 success, 1 an unexpected failure, 2 a usage problem the user can fix
(bad flag, bad config, unusable data file, bad input rows), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand (each has its own ``--help``)."""
    parser = _Parser(
        prog="houseprice",
        description="House-price model: explore the data, train, predict, list runs, serve.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("explore", help="statistics and plots of a CSV, as Markdown")
    p.add_argument("data", help="CSV file (e.g. data/ames.csv)")
    p.add_argument("--target", default="price", help="target column (default: price)")
    p.add_argument("--out", default="reports/eda", help="output directory (default: reports/eda)")
    p.add_argument("--no-plots", action="store_true", help="write the Markdown only")

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

    p = sub.add_parser(
        "predict",
        help="price the rows of a CSV or JSON file",
        description=(
            "Price every row of a file with a trained artifact. Columns may carry the API "
            "names (living_area) or the training CSV's own (area); other columns are ignored "
            "unless kept. Each row gets price, model_version and warnings: '; '-separated "
            "'COLUMN: what' entries for an unknown category, a value outside the training "
            "range, or a missing optional value (imputed). A row the service would refuse "
            "(not a number, outside the feature's bounds, a fraction for an integer feature, "
            "a required value missing) is "
            "written with an empty price and 'error: line N, column C: ...' in its warnings; "
            "the other rows are priced and the exit code is 2 with one error line counting "
            "them (--strict: stop at the first; an --output file is then not written). The "
            "input is read and scored "
            "in chunks, so memory holds one chunk, not the file (a .json document is parsed "
            "whole first; use .jsonl for big files)."
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
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary lines")

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


def _cmd_predict(args: argparse.Namespace) -> int:
    from model.workflow.artifact import load_artifact
    from model.workflow.progress import ProgressBar
    from model.workflow.rowfiles import output_format
    from model.workflow.score import predict_file

    if args.output is not None:
        output_format(args.output)  # an unknown extension is refused before any work
    key = os.environ.get("MODEL_SIGNING_KEY") or None
    art = load_artifact(args.model, signing_key=key.encode() if key else None)
    # A bar on stderr, but not over CSV written to the same terminal.
    on_tty = args.output is None and sys.stdout.isatty()
    bar = ProgressBar(sys.stderr, quiet=args.quiet or on_tty)
    try:
        s = predict_file(
            art.pipeline,
            art.metadata,
            args.input,
            args.output,
            keep=args.keep,
            chunk_rows=args.chunk_rows,
            strict=args.strict,
            progress=bar,
        )
    except BrokenPipeError:  # `houseprice predict ... | head`: the reader stopped; stop too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    notes = []
    if s.absent:
        notes.append(f"warning: optional feature(s) absent, imputed in every row: {s.absent}")
    if s.rows_warned:
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(s.counts.items()))
        notes.append(f"warning: {s.rows_warned:,} priced rows have warnings ({kinds})")
    rate = s.rows / s.seconds if s.seconds > 0 else 0.0
    where = args.output or "stdout"
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
    except KeyboardInterrupt:
        print("interrupted: nothing was replaced", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # full disk, read-only directory: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
