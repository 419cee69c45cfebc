"""``houseprice init``: a commented starter config written from a CSV, that trains unchanged.

Each decision is made from the data by a rule stated here and in the file it writes, so the
user can read why a column became what it did and change it:

- every column but the target is a feature, except identifiers, constant columns and text
  columns with a different value in most rows (:mod:`model.workflow.infer`), each left out
  with a comment saying why; identifiers are listed in ``data.id_columns`` so that
  ``houseprice predict`` keeps them beside the prices;
- the kind: a column of numbers is ``integer`` when :func:`~model.workflow.infer.is_integer`
  says so, else ``numeric``; anything else is ``categorical``;
- the API name: the column name in snake_case, a valid identifier, unique
  (``1stFlrSF`` -> ``x1st_flr_sf``, ``Lot.Area`` -> ``lot_area``); ``column`` is written only
  where it differs from the name;
- ``required`` only where the column has no missing value; ``bounds`` the observed range
  widened by half its span on each side (not below zero for a column that never is), since a
  bound is a hard limit the service enforces; ``example`` the median or the most frequent value;
- ``transform = "log"`` for a numeric column that is never negative, takes more than
  :data:`MIN_DISTINCT_FOR_LOG` values and has a skewness above :data:`SKEW_FOR_LOG` (sizes);
- a log target when the target is positive and its skewness is above :data:`SKEW_FOR_LOG_TARGET`;
- ridge regression over :data:`ALPHA_GRID`, 20 % held out, seed 42, and the most folds up to
  five that the row count allows (:func:`model.workflow.checks.check_row_count`).
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.workflow.checks import check_row_count
from model.workflow.config import Config, ConfigError
from model.workflow.data import (
    DEFAULT_FORMAT,
    NA_VALUES,
    CsvFormat,
    DataError,
    Dataset,
    load_csv,
    read_header,
)
from model.workflow.infer import identifier_reason, is_constant, is_integer

#: Skewness above which a non-negative numeric feature is log1p-transformed.
SKEW_FOR_LOG = 1.0
#: Fewer distinct values than this (flags, small counts) are never log-transformed.
MIN_DISTINCT_FOR_LOG = 10
#: Skewness above which a positive target is modelled on the log scale.
SKEW_FOR_LOG_TARGET = 0.5
#: A text column with more distinct values than this share of its rows is free text.
MAX_CATEGORY_SHARE = 0.5
#: The ridge penalties tried: wide enough that the best one is rarely at an edge.
ALPHA_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
#: Names that would shadow an attribute of the service's generated request model.
RESERVED_NAMES = frozenset(
    {"json", "dict", "copy", "schema", "validate", "construct", "schema_json", "parse_obj"}
    | {"parse_raw", "parse_file", "from_orm", "update_forward_refs", "fields"}
)
_TARGET_HINT = re.compile(r"price|preis|prix|precio|prezzo|value|amount|cost", re.IGNORECASE)


# --- names ----------------------------------------------------------------------------------


def api_name(column: str) -> str:
    """``column`` as a snake_case identifier: ``1stFlrSF`` -> ``x1st_flr_sf``, ``Lot.Area`` ->
    ``lot_area``, ``Größe (m²)`` -> ``grosse_m2``; ``""`` when nothing usable is left."""
    text = unicodedata.normalize("NFKD", column.replace("ß", "ss"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    s = text.encode("ascii", "ignore").decode()
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)  # camelCase -> camel_Case
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)  # SFArea -> SF_Area
    s = re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_").lower()
    s = re.sub(r"_+", "_", s)
    if s and not s[0].isalpha():
        s = "x" + s
    if s in RESERVED_NAMES or s.startswith("model_"):
        s += "_value"
    return s


def unique_names(columns: Sequence[str]) -> dict[str, str]:
    """API names for ``columns``, made unique with ``_2``, ``_3``; ``column_N`` when empty."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for j, col in enumerate(columns):
        base = api_name(col) or f"column_{j + 1}"
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        out[col] = name
    return out


# --- statistics -----------------------------------------------------------------------------


def skewness(x: NDArray[np.float64]) -> float:
    """Sample skewness ``mean((x - mean)^3) / sd^3`` (0 for a constant column, and for values
    so large that the cubes overflow: no transform is chosen from a number that is not one)."""
    x = x[~np.isnan(x)]
    if x.size < 3:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        d = x - x.mean()
        sd = math.sqrt(float(d @ d) / x.size)
        skew = float(np.mean(d**3)) / sd**3 if sd > 0 else 0.0
    return skew if math.isfinite(skew) else 0.0


def _nice(x: float, up: bool) -> float:
    """``x`` rounded outward to two significant digits (a bound a person would write)."""
    if x == 0 or not math.isfinite(x):
        return 0.0 if x == 0 else x
    step = 10 ** (math.floor(math.log10(abs(x))) - 1)
    return (math.ceil if up else math.floor)(x / step) * step


def bounds_for(col: NDArray[np.float64], integer: bool) -> tuple[float, float]:
    """The observed range widened by half its span each side, outward to round numbers."""
    present = col[~np.isnan(col)]
    lo, hi = float(present.min()), float(present.max())
    margin = (hi - lo) / 2 or max(abs(hi), 1.0)
    a, b = lo - margin, hi + margin
    if lo >= 0:
        a = max(a, 0.0)
    a, b = _nice(a, up=False), _nice(b, up=True)
    if integer:
        a, b = float(math.floor(a)), float(math.ceil(b))
    return min(a, lo), max(b, hi)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a TOML basic string


# --- the decisions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One CSV column and what ``init`` made of it: a feature, or left out with a reason."""

    column: str
    name: str
    kind: str  # numeric | integer | categorical, or "" when left out
    reason: str = ""  # why it is left out
    identifier: bool = False


def guess_target(header: Sequence[str]) -> str:
    """The one column named like a price (``price``, ``SalePrice``, ``value``); else an error."""
    hits = [h for h in header if _TARGET_HINT.search(h)]
    if len(hits) == 1:
        return hits[0]
    listed = ", ".join(repr(h) for h in (hits or header[:8]))
    raise DataError(f"no --target given and {len(hits) or 'no'} columns look like one ({listed})")


def decide(ds: Dataset) -> list[Column]:
    """For each column of ``ds`` (the target apart), a feature or the reason it is left out."""
    names = unique_names(list(ds.columns))
    out = []
    for column, col in ds.columns.items():
        name = names[column]
        why = identifier_reason(column, col)
        if why:
            out.append(Column(column, name, "", f"identifier: {why}", identifier=True))
            continue
        if is_constant(col):
            out.append(Column(column, name, "", "constant: one value (or none) in every row"))
            continue
        if col.dtype == object:
            present = [v for v in col.tolist() if v is not None]
            distinct = len(set(present))
            if distinct > max(20, MAX_CATEGORY_SHARE * len(present)):
                out.append(
                    Column(
                        column,
                        name,
                        "",
                        f"free text: {distinct:,} different values in {len(present):,} rows",
                    )
                )
                continue
            out.append(Column(column, name, "categorical"))
        else:
            out.append(Column(column, name, "integer" if is_integer(col) else "numeric"))
    return out


def choose_folds(cfg_like: Config, n: int, where: str) -> int:
    """The most folds, from five down to two, that ``n`` rows allow; else the row-count error."""
    for folds in (5, 4, 3, 2):
        try:
            check_row_count(replace(cfg_like, folds=folds), n, where)
        except ConfigError:
            continue
        return folds
    check_row_count(replace(cfg_like, folds=2), n, where)
    raise AssertionError("unreachable")  # pragma: no cover


# --- the file -------------------------------------------------------------------------------


def _feature_block(c: Column, col: NDArray[Any]) -> list[str]:
    lines = ["[[features]]", f"name = {_toml_str(c.name)}"]
    if c.column != c.name:
        lines.append(f"column = {_toml_str(c.column)}")
    lines.append(f'kind = "{c.kind}"')
    if c.kind == "categorical":
        present = [v for v in col.tolist() if v is not None]
        values, counts = np.unique(np.array(present, dtype=object).astype(str), return_counts=True)
        missing = col.size - len(present)
        order = np.argsort(-counts, kind="stable")
        shown = ", ".join(f"{values[i]} ({counts[i]})" for i in order[:6])
        more = f", ... {values.size} in all" if values.size > 6 else ""
        lines.append(f"# seen: {shown}{more}; missing in {missing} rows")
        lines.append(f"required = {'true' if missing == 0 else 'false'}")
        lines.append(f"example = {_toml_str(str(values[order[0]]))}")
    else:
        present = col[~np.isnan(col)]
        missing = col.size - present.size
        integer = c.kind == "integer"
        lo, hi = bounds_for(col, integer)
        median = float(np.median(present))
        example = float(round(median)) if integer else float(f"{median:.4g}")
        lines.append(
            f"# seen: {_number(float(present.min()))} to {_number(float(present.max()))}, "
            f"median {_number(median)}; missing in {missing} rows"
        )
        lines.append(f"required = {'true' if missing == 0 else 'false'}")
        lines.append(f"bounds = [{_number(lo)}, {_number(hi)}]")
        lines.append(f"example = {_number(example)}")
        skew = skewness(present)
        distinct = np.unique(present).size
        if present.min() >= 0 and distinct > MIN_DISTINCT_FOR_LOG and skew > SKEW_FOR_LOG:
            lines.append(f'transform = "log"  # skewness {skew:.1f}: log1p before scaling')
    lines += ['# unit = ""          # TODO', '# description = ""   # TODO', ""]
    return lines


def starter_config(
    data: str | Path,
    target: str | None = None,
    fmt: CsvFormat = DEFAULT_FORMAT,
    out: str | Path | None = None,
) -> str:
    """The TOML text of a starter config for ``data`` (see the module docstring).

    ``out`` is where the config will be written: ``data.path`` is written relative to its
    folder (the rule the config loader follows); without it, relative to the current folder.
    """
    data = Path(data)
    if target is None:
        header, _, _ = read_header(data, fmt)
        target = guess_target(header)
    ds = load_csv(data, target=target, fmt=fmt)
    assert ds.target is not None
    if not ds.columns:
        raise DataError(f"{data}: no column besides the target {target!r}")
    probe = Config(data_path=str(data), target=target, features=(), test_size=0.2)
    folds = choose_folds(probe, ds.n_rows, str(data))
    columns = decide(ds)
    features = [c for c in columns if c.kind]
    if not features:
        reasons = "; ".join(f"{c.column}: {c.reason}" for c in columns)
        raise DataError(f"{data}: no usable feature column ({reasons})")

    y = ds.target
    log_target = bool((y > 0).all()) and skewness(y) > SKEW_FOR_LOG_TARGET
    base = os.path.dirname(os.path.abspath(out)) if out is not None else os.getcwd()
    rel = os.path.relpath(os.path.abspath(data), base)
    ids = [c.column for c in columns if c.identifier]
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    dest = out if out is not None else "CONFIG.toml"

    lines = [
        f"# Starter config written by `houseprice init` from {data.name} on {created}.",
        f"# {ds.n_rows:,} rows, {len(ds.columns) + 1} columns; {len(features)} features kept.",
        "# Every decision below was made from the data by a rule (model/workflow/starter.py);",
        "# read the comments, fill in the TODOs, then train:",
        f"#   houseprice train --config {dest}",
        "",
        "[data]",
        f"path = {_toml_str(rel)}  # relative to this file's folder",
        f"target = {_toml_str(target)}",
        f"name = {_toml_str(data.stem)}",
        '# description = ""   # TODO: what the rows are (where, when, which sales)',
        '# source = ""        # TODO: where the file comes from',
        '# citation = ""      # TODO',
        '# license = ""       # TODO: the data\'s licence (the model card states it)',
        f"delimiter = {_toml_str(ds.delimiter)}",
    ]
    if ds.encoding != "utf-8-sig":
        lines.append(f"encoding = {_toml_str(ds.encoding)}  # the file is not UTF-8")
    na = sorted(fmt.na_values) if fmt.na_values != frozenset(NA_VALUES) else list(NA_VALUES)
    lines.append(
        f"na_values = [{', '.join(_toml_str(v) for v in na)}]"
        '  # read as missing; drop "None" if it is a real category'
    )
    if ids:
        lines.append(f"id_columns = [{', '.join(_toml_str(c) for c in ids)}]")
    lines += ["", "[split]", "test_size = 0.2", "seed = 42", "", "[cv]"]
    allow = "" if folds == 5 else f"  # the most that {ds.n_rows} rows allow"
    lines.append(f"folds = {folds}{allow}")
    lines += ['scoring = "rmse_log"' if log_target else 'scoring = "rmse"', "", "[model]"]
    lines.append('estimator = "ridge"')
    if log_target:
        lines.append(
            f'target_transform = "log"  # the target is positive and right-skewed '
            f"(skewness {skewness(y):.1f}): fit log({target})"
        )
    else:
        lines.append('target_transform = "none"')
    lines.append(f"grid = {{ alpha = [{', '.join(_number(a) for a in ALPHA_GRID)}] }}")
    lines.append("")
    left_out = [c for c in columns if not c.kind]
    if left_out:
        lines.append("# Left out:")
        lines += [f"#   {c.column}: {c.reason}" for c in left_out]
        lines.append("")
    for c in features:
        lines += _feature_block(c, ds.columns[c.column])
    return "\n".join(lines).rstrip() + "\n"
