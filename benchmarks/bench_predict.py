"""``houseprice predict`` on a 1M-row CSV: throughput (rows/s) and peak memory, against the
whole-file path measured in the same run.

It trains the default model (configs/ames.toml) in a temporary directory (or takes
``--model``), writes a CSV of ``--rows`` houses drawn with replacement from data/ames.csv
(its id columns and the model's features, under the training CSV's own names), then runs,
each as its own process so that its peak RSS (``ru_maxrss`` from ``os.wait4``) is its own:

1. ``floor``: Python, NumPy and the loaded artifact, nothing scored;
2. ``houseprice predict --input big.csv --output out.csv`` (default chunks), and the same on a
   tenth of the rows: a flat peak RSS across the two is what streaming promises;
3. the reference: ``pandas.read_csv`` of the whole file, the pipeline's ``predict`` on the
   whole table, ``DataFrame.to_csv`` of ids and prices: the in-memory way to do the same job,
   with pandas' C parser (no warnings, no checks);
4. ours in memory: :func:`model.workflow.data.load_csv` of the whole file and one ``predict``.

The prices of (2) and (3) are compared row by row. Prints a table of seconds, rows/s and
peak RSS, and the ratios against the reference; asserts nothing.
Run: ``.venv/bin/python benchmarks/bench_predict.py`` (~2 minutes; ``--rows 100000`` for a
quick look).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import describe  # noqa: E402 (benchmarks/, the script's folder)


@dataclass
class Run:
    label: str
    rows: int
    seconds: float
    peak_mb: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 and self.rows else 0.0


def measure(label: str, rows: int, argv: list[str]) -> Run:
    """Wall time and peak RSS of one child process (its own ``ru_maxrss``, via ``wait4``)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{label}: exit code {proc.returncode}: {' '.join(argv)}")
    return Run(label, rows, seconds, usage.ru_maxrss / 1024)  # KiB on Linux


def write_big_csv(path: Path, rows: int, columns: list[str], seed: int = 0) -> None:
    """``rows`` rows of data/ames.csv drawn with replacement, ``columns`` only, in blocks."""
    with open(ROOT / "data" / "ames.csv", newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        source = [row for row in reader]
    idx = [header.index(c) for c in columns]
    table = [[row[j] for j in idx] for row in source]
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for start in range(0, rows, 100_000):
            picks = rng.integers(0, len(table), size=min(100_000, rows - start))
            w.writerows(table[i] for i in picks.tolist())


# --- the children -----------------------------------------------------------------------------


def child_floor(model: str) -> None:
    from model.workflow.artifact import load_artifact

    load_artifact(model)


def child_pandas(model: str, src: str, out: str) -> None:
    import pandas as pd

    from model.workflow.artifact import load_artifact

    art = load_artifact(model)
    feats = art.metadata["features"]
    dtypes = {f["column"]: str for f in feats if f["kind"] == "categorical"}
    df = pd.read_csv(src, dtype=dtypes, keep_default_na=True)
    table = {}
    for f in feats:
        col = df[f["column"]]
        if f["kind"] == "categorical":
            values = col.to_numpy(dtype=object)
            values[col.isna().to_numpy()] = None
            table[f["name"]] = values
        else:
            table[f["name"]] = col.to_numpy(dtype=np.float64)
    prices = np.asarray(art.pipeline.predict(table), dtype=np.float64)
    ids = [c for c in art.metadata["data"].get("id_columns", []) if c in df.columns]
    result = df[ids].copy()
    result["price"] = prices
    result.to_csv(out, index=False, float_format="%.17g")


def child_in_memory(model: str, src: str, out: str) -> None:
    from model.workflow.artifact import load_artifact
    from model.workflow.data import CsvFormat, load_csv

    art = load_artifact(model)
    feats = art.metadata["features"]
    ds = load_csv(src, features=[f["column"] for f in feats], fmt=CsvFormat())
    table = {}
    for f in feats:
        col = ds.columns[f["column"]]
        if f["kind"] == "categorical" and col.dtype != object:
            col = np.array([None if v != v else f"{v:g}" for v in col.tolist()], dtype=object)
        table[f["name"]] = col
    prices = np.asarray(art.pipeline.predict(table), dtype=np.float64)
    np.savetxt(out, prices, fmt="%.17g", header="price", comments="")


# --- the run ----------------------------------------------------------------------------------


def read_prices(path: Path) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return np.array([float(r["price"]) if r["price"] else np.nan for r in reader])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--model", help="an artifact (default: train configs/ames.toml)")
    parser.add_argument("--chunk-rows", type=int, default=None, help="predict's --chunk-rows")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        children: dict[str, Callable[..., None]] = {
            "floor": child_floor,
            "pandas": child_pandas,
            "memory": child_in_memory,
        }
        children[kind](*rest)
        return

    from model.workflow.artifact import load_artifact
    from model.workflow.cli import main as houseprice

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        t = Path(tmp)
        model = args.model
        if model is None:
            model = str(t / "model.joblib")
            runs_dir = str(t / "runs")
            train = ["train", "--config", "configs/ames.toml", "--out", model]
            code = houseprice([*train, "--runs-dir", runs_dir, "--quiet", "--no-plots"])
            if code != 0:
                raise SystemExit(f"training failed ({code})")
        meta = load_artifact(model).metadata
        columns = list(meta["data"].get("id_columns", [])) + [f["column"] for f in meta["features"]]
        big, small = t / "big.csv", t / "small.csv"
        t0 = time.perf_counter()
        write_big_csv(big, args.rows, columns)
        write_big_csv(small, max(args.rows // 10, 1), columns, seed=1)
        made = time.perf_counter() - t0
        size_mb = big.stat().st_size / 1e6

        py = sys.executable
        me = str(Path(__file__).resolve())
        chunk = ["--chunk-rows", str(args.chunk_rows)] if args.chunk_rows else []

        def predict(src: Path, out: Path) -> list[str]:
            io = ["--input", str(src), "--output", str(out), "--quiet", *chunk]
            return [py, "-m", "model.workflow.cli", "predict", "--model", model, *io]

        runs = [
            measure("floor: Python + NumPy + the artifact", 0, [py, me, "--child", "floor", model]),
            measure(
                f"houseprice predict, {args.rows // 10:,} rows",
                args.rows // 10,
                predict(small, t / "small_out.csv"),
            ),
            measure(
                f"houseprice predict, {args.rows:,} rows",
                args.rows,
                predict(big, t / "ours.csv"),
            ),
            measure(
                "reference: pandas.read_csv + predict (whole)",
                args.rows,
                [py, me, "--child", "pandas", model, str(big), str(t / "ref.csv")],
            ),
            measure(
                "ours in memory: load_csv + predict (whole)",
                args.rows,
                [py, me, "--child", "memory", model, str(big), str(t / "mem.csv")],
            ),
        ]
        ours_prices, ref_prices = read_prices(t / "ours.csv"), read_prices(t / "ref.csv")
        mem_prices = read_prices(t / "mem.csv")

    floor, small_run, ours, ref, mem = runs
    print(
        f"houseprice predict on a {args.rows:,}-row CSV ({size_mb:.0f} MB, {len(columns)} columns;"
    )
    print(f"drawn from data/ames.csv in {made:.0f}s), each run its own process")
    print(describe("pandas"))
    print(f"{'run':48} {'seconds':>8} {'rows/s':>10} {'peak RSS MB':>12}")
    for r in runs:
        rate = f"{r.rate:,.0f}" if r.rows else "-"
        print(f"{r.label:48} {r.seconds:8.2f} {rate:>10} {r.peak_mb:12.0f}")
    print()
    print(f"{'measure':48} {'value':>8}")
    print(f"{'ours / reference (rows/s)':48} {ours.rate / ref.rate:8.2f}")
    print(f"{'ours / reference (peak RSS)':48} {ours.peak_mb / ref.peak_mb:8.2f}")
    print(f"{'ours / in memory (rows/s)':48} {ours.rate / mem.rate:8.2f}")
    print(f"{'ours / in memory (peak RSS)':48} {ours.peak_mb / mem.peak_mb:8.2f}")
    grow = (ours.peak_mb - small_run.peak_mb) / max(small_run.peak_mb, 1e-9)
    print(f"{'peak RSS growth, 10x the rows (ours)':48} {grow:8.1%}")
    print(f"{'ours above the floor (MB)':48} {ours.peak_mb - floor.peak_mb:8.0f}")
    same = np.allclose(ours_prices, ref_prices, rtol=1e-9) and ours_prices.size == ref_prices.size
    print(f"{'prices equal to the reference (rtol 1e-9)':48} {same!s:>8}")
    rel = (
        np.max(np.abs(ours_prices / mem_prices - 1))
        if mem_prices.size == ours_prices.size
        else np.inf
    )
    print(f"{'max relative difference to in memory':48} {rel:8.1e}")


if __name__ == "__main__":
    main()
