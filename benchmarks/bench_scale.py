"""Training past one machine's memory: peak memory and throughput of ``--engine stream``.

A synthetic house-sales CSV of 10 columns (7 numeric features, 2 categorical, the price) is
written to a temporary folder at each size of ``--rows`` (default 1M and 3M rows), with a
config that trains a ridge on it. Each size is trained by ``houseprice train`` in its own
process, whose peak resident memory (``ru_maxrss`` from ``wait4``) and CPU time are read
when it ends (the CSV is written by another child, so this process stays small: Linux counts
a parent's memory at fork in its child's peak):

- ``--engine stream`` (target: < 500 MB at 3M rows, flat as rows grow);
- ``--engine memory``, the reference in the same run, at the sizes ``--memory-max`` allows
  (it holds the file as Python objects: ~20x the file in memory);
- ``--engine dask`` with ``--engines ... dask``: a LocalCluster of 2 worker processes, whose
  CPU time counts in (they are the train process's children); its peak is the largest
  single process's, not the sum.

``stream``, ``dask`` and ``predict`` run once per CSV parser of ``--parsers`` (default
``arrow`` then ``python``: ``--csv-parser``, the same tables), one after the other on the same
file, so their ratio is measured in one run.

Throughput is rows x passes / CPU seconds of the whole run, i.e. per core: parsing and
accumulating, plus the start-up, the solver, the writing of the run and the artifact (small
beside the passes; the stream engine reads the file three times). ``model/`` is
byte-compiled first, as an installed package is.

Then ``houseprice predict`` prices the whole file with the first model trained, into a CSV
(``--predict memory``: the chunked scorer in one process, target < 500 MB at 3M rows;
``--predict dask``: partitions on a 2-worker LocalCluster): its peak memory, rows per CPU
second and rows per wall second. Prints a table; asserts nothing.

Run: ``.venv/bin/python benchmarks/bench_scale.py [--rows 1000000 3000000] [--memory-max N]
[--engines stream dask memory] [--predict memory dask] [--parsers arrow python]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import describe  # noqa: E402

CONFIG = """
[data]
path = "{path}"
target = "price"
[split]
test_size = 0.2
seed = 42
[cv]
folds = 5
[model]
estimator = "ridge"
impute = "mean"
grid = {{ alpha = [1.0, 10.0, 100.0] }}
[[features]]
name = "area"
kind = "numeric"
transform = "log"
[[features]]
name = "lot_area"
kind = "numeric"
required = false
transform = "log"
[[features]]
name = "bedrooms"
kind = "integer"
[[features]]
name = "bathrooms"
kind = "numeric"
[[features]]
name = "year_built"
kind = "integer"
[[features]]
name = "quality"
kind = "integer"
[[features]]
name = "garage_cars"
kind = "integer"
required = false
[[features]]
name = "district"
kind = "categorical"
[[features]]
name = "building_type"
kind = "categorical"
required = false
"""


def write_csv(path: Path, rows: int, seed: int = 0, block: int = 100_000) -> None:
    """``rows`` synthetic sales: log price linear in the features plus noise; ~5 % missing
    lot areas, garages and building types."""
    rng = np.random.default_rng(seed)
    districts = np.array([f"D{i:02d}" for i in range(25)])
    types = np.array(["1Fam", "2FmCon", "Duplex", "TwnhsE", "Twnhs", ""])
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(
            "area,lot_area,bedrooms,bathrooms,year_built,quality,garage_cars,"
            "district,building_type,price\n"
        )
        for start in range(0, rows, block):
            n = min(block, rows - start)
            area = rng.lognormal(7.3, 0.35, n).round()
            lot = rng.lognormal(9.1, 0.5, n).round()
            beds = rng.integers(1, 6, n)
            baths = rng.integers(2, 8, n) / 2
            year = rng.integers(1900, 2011, n)
            qual = rng.integers(1, 11, n)
            cars = rng.integers(0, 4, n)
            dist = rng.integers(0, 25, n)
            btype = rng.choice(5, n, p=[0.7, 0.05, 0.05, 0.1, 0.1])
            logp = (
                10.5
                + 0.6 * np.log(area)
                + 0.1 * np.log(lot)
                + 0.02 * beds
                + 0.05 * baths
                + 0.003 * (year - 1950)
                + 0.08 * qual
                + 0.03 * cars
                + 0.01 * dist
                + rng.normal(0, 0.15, n)
                - 3.5
            )
            price = np.exp(logp).round()
            lot_s = lot.astype(np.int64).astype(str)
            lot_s[rng.random(n) < 0.05] = ""
            cars_s = cars.astype(str)
            cars_s[rng.random(n) < 0.05] = "NA"
            btype = np.where(rng.random(n) < 0.05, 5, btype)
            cols = [
                area.astype(np.int64).astype(str),
                lot_s,
                beds.astype(str),
                baths.astype(str),
                year.astype(str),
                qual.astype(str),
                cars_s,
                districts[dist],
                types[btype],
                price.astype(np.int64).astype(str),
            ]
            lines = np.char.add(cols[0], ",")
            for c in cols[1:-1]:
                lines = np.char.add(np.char.add(lines, c), ",")
            lines = np.char.add(lines, cols[-1])
            fh.write("\n".join(lines.tolist()))
            fh.write("\n")


def run_cli(args: list[str]) -> tuple[float, float, float, int]:
    """``(wall s, CPU s, peak RSS MB, exit code)`` of one ``houseprice`` process (and its
    children: a Dask LocalCluster's workers count in its CPU time)."""
    cmd = [sys.executable, "-m", "model.workflow.cli", *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    _, err = proc.communicate()
    if proc.returncode != 0:
        print(err.decode(errors="replace").strip().splitlines()[-1], file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def run_train(config: Path, out: Path, engine: str, parser: str) -> tuple[float, float, float, int]:
    """One ``houseprice train --engine ENGINE --csv-parser PARSER`` (see :func:`run_cli`)."""
    return run_cli(
        [
            "train",
            "--config",
            str(config),
            "--out",
            str(out / f"{engine}.joblib"),
            "--runs-dir",
            str(out / "runs"),
            "--no-plots",
            "--quiet",
            "--engine",
            engine,
            "--csv-parser",
            parser,
        ]
    )


def run_predict(
    model: Path, csv: Path, out: Path, engine: str, parser: str
) -> tuple[float, float, float, int]:
    """One ``houseprice predict`` of the whole file into a CSV (see :func:`run_cli`)."""
    args = ["predict", "--model", str(model), "--input", str(csv), "--output", str(out)]
    return run_cli([*args, "--quiet", "--keep", "--engine", engine, "--csv-parser", parser])


def compile_package() -> None:
    """Byte-compile ``model/`` once, as ``pip install`` does: with ``PYTHONDONTWRITEBYTECODE``
    set (as in this project's sessions) every run would compile its modules again (~0.2 s of
    CPU, no part of training)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmd = [sys.executable, "-m", "compileall", "-q", str(ROOT / "model")]
    subprocess.run(cmd, check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument(
        "--memory-max", type=int, default=1_000_000, help="largest size trained in memory"
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        default=["stream", "memory"],
        choices=["stream", "dask", "memory"],
        help="engines to run at each size (memory only up to --memory-max)",
    )
    parser.add_argument(
        "--predict",
        nargs="*",
        default=["memory"],
        choices=["memory", "dask"],
        help="then price the whole file with the first model trained, with these predict "
        "engines (default: memory, the chunked scorer; none: skip)",
    )
    parser.add_argument(
        "--parsers",
        nargs="+",
        default=["arrow", "python"],
        choices=["arrow", "python"],
        help="CSV parsers to run stream, dask and predict with, in turn (default: both; the "
        "memory engine's loader is the standard one)",
    )
    args = parser.parse_args()
    compile_package()
    print(describe())
    print()
    head = f"{'rows':>10} {'file MB':>8} {'engine':>14} {'wall s':>7} {'CPU s':>7} "
    head += f"{'peak MB':>8} {'rows/s/core':>12}"
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            folder = Path(tmp) / str(rows)
            folder.mkdir()
            csv = folder / "sales.csv"
            # written by a child process: a child's peak memory counts its parent's at fork
            gen = "import sys; sys.path.insert(0, sys.argv[1]); import bench_scale as b; "
            gen += "b.write_csv(b.Path(sys.argv[2]), int(sys.argv[3]))"
            cmd = [sys.executable, "-c", gen, str(ROOT / "benchmarks"), str(csv), str(rows)]
            subprocess.run(cmd, check=True)
            config = folder / "sales.toml"
            config.write_text(CONFIG.format(path=csv), encoding="utf-8")
            size = csv.stat().st_size / 1e6
            engines = [e for e in args.engines if e != "memory" or rows <= args.memory_max]
            trained = []
            for engine in engines:
                for csv_parser in ["python"] if engine == "memory" else args.parsers:
                    wall, cpu, peak, code = run_train(config, folder, engine, csv_parser)
                    passes = 1 if engine == "memory" else 3
                    rate = f"{rows * passes / cpu:,.0f}" if code == 0 else f"exit {code}"
                    label = engine if engine == "memory" else f"{engine}/{csv_parser}"
                    print(
                        f"{rows:>10,} {size:>8.0f} {label:>14} {wall:>7.1f} {cpu:>7.1f} "
                        f"{peak:>8.0f} {rate:>12}",
                        flush=True,
                    )
                    if code == 0:
                        trained.append(folder / f"{engine}.joblib")
            for engine, csv_parser in [(e, c) for e in args.predict for c in args.parsers]:
                if not trained:
                    break
                out = folder / "prices.csv"
                wall, cpu, peak, code = run_predict(trained[0], csv, out, engine, csv_parser)
                rate = f"{rows / cpu:,.0f}" if code == 0 else f"exit {code}"
                label = f"predict/{engine}/{csv_parser}"
                print(
                    f"{rows:>10,} {size:>8.0f} {label:>14} {wall:>7.1f} {cpu:>7.1f} "
                    f"{peak:>8.0f} {rate:>12}   {rows / wall:,.0f} rows/s wall",
                    flush=True,
                )
                out.unlink(missing_ok=True)
            csv.unlink()


if __name__ == "__main__":
    main()
