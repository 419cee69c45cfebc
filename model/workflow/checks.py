"""The config checked against the data, before any fitting: what a run promises, the rows keep.

A config declares facts the service will enforce: ``bounds`` (a house outside them is refused
with 422) and ``required`` (a house without the field is refused). A model trained on rows
that break those promises would refuse its own training data once served, so each broken
promise is an error here, naming the feature, the rule and how many rows break it, with the
file line of the first. The row count is checked against the split and the folds, so that a
small file ends in a sentence, not in a metric's traceback three functions down.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.base import Columns
from model.workflow.config import Config, ConfigError

#: Rows every CV validation fold and the test part must hold: R² needs two.
MIN_ROWS_PER_PART = 2


def split_sizes(n: int, test_size: float) -> tuple[int, int]:
    """``(train, test)`` row counts of :func:`model.selection.train_test_split` on ``n`` rows."""
    n_test = math.ceil(test_size * n)
    return n - n_test, n_test


def check_row_count(cfg: Config, n: int, where: str) -> None:
    """Enough rows for the held-out part and for every CV fold to score (two rows each)."""
    n_train, n_test = split_sizes(n, cfg.test_size)
    need_train = MIN_ROWS_PER_PART * cfg.folds
    if n_test >= MIN_ROWS_PER_PART and n_train >= need_train:
        return
    # The smallest n for which both parts are large enough.
    need = max(need_train + MIN_ROWS_PER_PART, n + 1)
    while True:
        tr, te = split_sizes(need, cfg.test_size)
        if te >= MIN_ROWS_PER_PART and tr >= need_train:
            break
        need += 1
    fix = "lower cv.folds or add rows" if cfg.folds > 2 else "add rows"
    raise ConfigError(
        f"{where}: {n} row{'' if n == 1 else 's'} are too few for test_size {cfg.test_size:g} "
        f"and {cfg.folds}-fold cross-validation (the test part and every fold need "
        f"{MIN_ROWS_PER_PART} rows): at least {need} rows are needed; {fix}"
    )


def _first_line(mask: NDArray[np.bool_], lines: Sequence[int]) -> int:
    return int(lines[int(np.flatnonzero(mask)[0])])


def plain(x: float) -> str:
    """2100.0 -> "2100", 0.5 -> "0.5" (no thousands separator: years are read too)."""
    return f"{x:.15g}"


def feature_where(cfg: Config, i: int) -> str:
    """How a broken promise names the feature: the config, its entry, the column and the file."""
    f = cfg.features[i]
    return f"{cfg.source}: features[{i}] {f.name!r} (column {f.column!r} of {cfg.data_path})"


def required_error(where: str, missing: int, n: int, line: int) -> ConfigError:
    return ConfigError(
        f"{where}: required = true, but {missing} of {n} rows miss it "
        f"(first at line {line}); set required = false (the "
        "model then imputes it) or filter those rows out"
    )


def bounds_error(
    where: str,
    bounds: tuple[float, float],
    outside: int,
    n: int,
    seen: tuple[float, float],
    first: tuple[int, float],
) -> ConfigError:
    (lo, hi), (line, value) = bounds, first
    return ConfigError(
        f"{where}: bounds [{plain(lo)}, {plain(hi)}] exclude "
        f"{outside} of {n} training rows (seen "
        f"{plain(seen[0])} to {plain(seen[1])}; "
        f"first at line {line}: {plain(value)}); the service would "
        "refuse them: widen the bounds or filter those rows out"
    )


def fraction_error(where: str, count: int, line: int, value: float) -> ConfigError:
    return ConfigError(
        f"{where}: kind = 'integer', but {count} rows hold a "
        f"fraction (first at line {line}: {value!r}); use kind = 'numeric'"
    )


def check_features(cfg: Config, table: Columns, lines: Sequence[int]) -> None:
    """Every declared ``bounds``, ``required`` and ``integer`` kind holds on every row kept.

    ``table`` is keyed by API name; ``lines`` are the file lines of its rows, for the message.
    """
    for i, f in enumerate(cfg.features):
        col: NDArray[Any] = table[f.name]
        where = feature_where(cfg, i)
        missing = (
            np.isnan(col) if f.numeric else np.array([v is None for v in col.tolist()], dtype=bool)
        )
        if f.required and missing.any():
            raise required_error(where, int(missing.sum()), col.size, _first_line(missing, lines))
        if not f.numeric:
            continue
        with np.errstate(invalid="ignore"):
            if f.bounds is not None:
                lo, hi = f.bounds
                outside = (col < lo) | (col > hi)
                if outside.any():
                    k = int(np.flatnonzero(outside)[0])
                    seen = (float(np.nanmin(col)), float(np.nanmax(col)))
                    first = (int(lines[k]), float(col[k]))
                    raise bounds_error(where, f.bounds, int(outside.sum()), col.size, seen, first)
            if f.kind == "integer":
                fractional = ~missing & (col != np.floor(col))
                if fractional.any():
                    k = int(np.flatnonzero(fractional)[0])
                    raise fraction_error(where, int(fractional.sum()), int(lines[k]), float(col[k]))


def grid_edge_warnings(grid: dict[str, list[Any]], best: dict[str, Any]) -> list[str]:
    """One line per numeric grid parameter whose best value is the grid's smallest or largest:
    the optimum may lie beyond it (a grid of fewer than three values has no inside)."""
    out = []
    for name, values in grid.items():
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) < 3 or len(numbers) != len(values) or name not in best:
            continue
        value = best[name]
        lo, hi = min(numbers), max(numbers)
        if value in (lo, hi):
            side = "smallest" if value == lo else "largest"
            out.append(
                f"best {name} = {value:g} is the {side} value of the grid "
                f"[{lo:g} … {hi:g}]: the optimum may lie beyond it; extend model.grid.{name}"
            )
    return out
