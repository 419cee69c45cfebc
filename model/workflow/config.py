"""The training configuration: a TOML file read with ``tomllib`` and checked before any work.

A run is reproducible only if everything that shaped the model is written down, so the
config holds the data file and how to read it, the rows kept, the features (source column,
API name, unit, description, bounds), the split, the folds and the search grid; command-line
flags may override a few of them and the effective values are recorded with the run.
``houseprice init DATA.csv`` writes a starting config from the data itself.

Every mistake is a :class:`ConfigError` naming the file and the key path
(``features[3].kind``), raised at load time: a typo found after five minutes of training, or
worse silently ignored (an unknown key is an error, with a suggestion), costs more than the
strictness. A relative ``data.path`` is relative to the config file's folder, so a config and
its data can move together. The file looks like::

    [data]
    path = "../data/houses.csv" # relative to this file's folder
    target = "price"
    name = "Houses"             # the rest of [data] is optional: name, description, source,
    license = "CC0-1.0"         # citation and license describe the data in the model card
    delimiter = ","             # sniffed when absent: , ; tab |
    na_values = ["", "NA"]      # missing-value spellings (default: data.NA_VALUES)
    encoding = "utf-8"          # default: UTF-8, else Windows-1252, else Latin-1
    id_columns = ["pid"]        # identifiers: not features, kept beside predictions
    [[data.filters]]            # rows kept: column op value (op: < <= > >= == != in not_in)
    column = "area"
    op = "<="
    value = 4000
    [split]
    test_size = 0.2
    seed = 42
    [cv]
    folds = 5
    scoring = "rmse_log"        # what the grid search minimises
    [model]
    estimator = "ridge"         # linear | ridge | lasso | elasticnet | huber | kernelridge | tree
                                # | gbdt | forest | stack | voting (these two combine the
                                # models in `base`, e.g. base = ["ridge", "gbdt"];
                                # params ridge__alpha = 10; a base "huber+gbdt" is the
                                # Huber regression plus boosting fitted to its residuals,
                                # params "huber+gbdt__gbdt__max_iter" = 800)
    target_transform = "log"    # fit on log(price), predict exp(.)
    impute = "median"           # missing numeric values: the training median (or mean)
    params = { alpha = 10.0 }
    grid = { alpha = [1.0, 10.0] }
    [[features]]
    name = "living_area"        # the API name (snake_case)
    column = "area"             # the CSV column (default: the name)
    kind = "numeric"            # numeric | integer | categorical
    unit = "sq ft"
    description = "Above-grade living area"
    required = true             # the API refuses a house without it; no training row may miss it
    bounds = [1, 20000]         # hard limits the API enforces; every training row must be inside
    example = 1500
    transform = "log"           # optional: log1p before scaling (skewed, positive sizes)
    # a categorical feature may declare its categories as a scale, lowest first:
    # order = ["Po", "Fa", "TA", "Gd", "Ex"]  (the linear models then also get its rank)
    [[derived]]                 # optional: a numeric model input computed from the features
    name = "total_area"         # snake_case, distinct from the features' names
    expr = "basement_area + first_floor_area + second_floor_area"
    description = "Basement and both floors"
    unit = "sq ft"
    transform = "log"           # optional, as for a feature

A derived feature (:mod:`model.derived`) is arithmetic (``+ - * /``, numbers, parentheses)
over the numeric features' API names and the derived features above it. Clients never send
it: the fitted pipeline computes it from the features they send, so the API is unchanged.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from model.workflow.data import NA_VALUES, CsvFormat

Kind = Literal["numeric", "integer", "categorical"]
#: Feature kinds: ``integer`` is a numeric feature whose values are whole (counts, years).
KINDS: tuple[Kind, ...] = ("numeric", "integer", "categorical")

#: Comparison operators a row filter may use.
FILTER_OPS = ("<", "<=", ">", ">=", "==", "!=", "in", "not_in")
#: Estimators a config may name.
ESTIMATORS = (
    "linear",
    "ridge",
    "lasso",
    "elasticnet",
    "huber",
    "kernelridge",
    "tree",
    "gbdt",
    "forest",
    "stack",
    "voting",
)
#: The ones that combine the base models named in ``model.base``.
COMBINERS = ("stack", "voting")
Impute = Literal["median", "mean"]
#: How missing numeric values are filled: the training rows' median or mean.
IMPUTE: tuple[Impute, ...] = ("median", "mean")
#: Metrics the grid search may select on (lower is better for all of them).
SCORINGS = ("rmse_log", "rmse", "mae", "mse")
_SNAKE = re.compile(r"[a-z][a-z0-9_]*")


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class RowFilter:
    """Keep the rows where ``column op value`` holds (missing values never match)."""

    column: str
    op: str
    value: Any
    reason: str = ""


@dataclass(frozen=True)
class Feature:
    """One model input: its API name, where it comes from, and what the API accepts."""

    name: str
    column: str
    kind: Kind
    unit: str = ""
    description: str = ""
    required: bool = True
    bounds: tuple[float, float] | None = None
    example: Any = None
    transform: str | None = None
    #: A categorical feature's categories from lowest to highest, when they are a scale
    order: tuple[str, ...] | None = None

    @property
    def numeric(self) -> bool:
        """Numbers (``numeric`` or ``integer``), as opposed to categories."""
        return self.kind != "categorical"


@dataclass(frozen=True)
class Derived:
    """A numeric model input computed by the pipeline from the features (``[[derived]]``)."""

    name: str
    expr: str
    description: str = ""
    unit: str = ""
    transform: str | None = None


@dataclass(frozen=True)
class DataInfo:
    """What the ``[data]`` table says about the data set, for the model card (all optional)."""

    name: str = ""
    description: str = ""
    source: str = ""
    citation: str = ""
    license: str = ""


@dataclass(frozen=True)
class Config:
    """A validated training configuration (see the module docstring for the file format)."""

    data_path: str
    target: str
    features: tuple[Feature, ...]
    derived: tuple[Derived, ...] = ()
    filters: tuple[RowFilter, ...] = ()
    test_size: float = 0.2
    seed: int = 42
    folds: int = 5
    scoring: str = "rmse_log"
    estimator: str = "ridge"
    target_transform: str | None = "log"
    impute: Impute = "median"
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    base: tuple[str, ...] = ()
    source: str = "<memory>"
    text: str = ""
    info: DataInfo = field(default_factory=DataInfo)
    csv: CsvFormat = field(default_factory=CsvFormat)
    id_columns: tuple[str, ...] = ()

    def with_overrides(self, **changes: Any) -> Config:
        """A copy with the given fields replaced, the ``None`` ones ignored (unset CLI flags)."""
        given = {k: v for k, v in changes.items() if v is not None}
        updated = replace(self, **given)
        _check_ranges(updated, updated.source)
        return updated


# --- validation helpers -----------------------------------------------------------------


def _unknown_keys(where: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")


def _get(
    where: str,
    table: Mapping[str, Any],
    key: str,
    types: type | tuple[type, ...],
    default: Any = ...,
) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}: missing required key {key!r}")
        return default
    value = table[key]
    # bool is an int in Python, but `folds = true` is a mistake, not 1.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ConfigError(f"{where}.{key}: expected {_type_name(types)}, got a boolean")
    if not isinstance(value, types):
        raise ConfigError(
            f"{where}.{key}: expected {_type_name(types)}, got {type(value).__name__} {value!r}"
        )
    return value


def _type_name(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names.update({list: "an array", dict: "a table"})
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in ts))


def _table(where: str, doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table, got {type(value).__name__}")
    return value


# --- sections -----------------------------------------------------------------------------


def _parse_filter(where: str, raw: Any) -> RowFilter:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table, got {type(raw).__name__}")
    _unknown_keys(where, raw, ("column", "op", "value", "reason"))
    column = _get(where, raw, "column", str)
    op = _get(where, raw, "op", str)
    if op not in FILTER_OPS:
        raise ConfigError(f"{where}.op: expected one of {', '.join(FILTER_OPS)}, got {op!r}")
    value = _get(where, raw, "value", (int, float, str, list))
    if op in ("in", "not_in") and not isinstance(value, list):
        raise ConfigError(f"{where}.value: {op!r} needs an array of values, got {value!r}")
    if op in ("<", "<=", ">", ">=") and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        raise ConfigError(f"{where}.value: {op!r} needs a number, got {value!r}")
    return RowFilter(column, op, value, _get(where, raw, "reason", str, ""))


def _parse_feature(where: str, raw: Any) -> Feature:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table, got {type(raw).__name__}")
    allowed = ("name", "column", "kind", "unit", "description", "required", "bounds")
    _unknown_keys(where, raw, (*allowed, "example", "transform", "order"))
    name = _get(where, raw, "name", str)
    if not _SNAKE.fullmatch(name):
        raise ConfigError(f"{where}.name: API names are snake_case ([a-z][a-z0-9_]*), got {name!r}")
    kind = _get(where, raw, "kind", str)
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    numeric = kind != "categorical"
    bounds_raw = _get(where, raw, "bounds", list, None)
    bounds: tuple[float, float] | None = None
    if bounds_raw is not None:
        if not numeric:
            raise ConfigError(f"{where}.bounds: only numeric features have bounds")
        if (
            len(bounds_raw) != 2
            or any(isinstance(b, bool) or not isinstance(b, int | float) for b in bounds_raw)
            or not bounds_raw[0] < bounds_raw[1]
        ):
            raise ConfigError(f"{where}.bounds: expected [lo, hi] numbers with lo < hi")
        bounds = (float(bounds_raw[0]), float(bounds_raw[1]))
    transform = _get(where, raw, "transform", str, None)
    if transform is not None and (not numeric or transform != "log"):
        raise ConfigError(f"{where}.transform: only 'log' on a numeric feature, got {transform!r}")
    order_raw = _get(where, raw, "order", list, None)
    order: tuple[str, ...] | None = None
    if order_raw is not None:
        if numeric:
            raise ConfigError(f"{where}.order: only a categorical feature has an order")
        if (
            len(order_raw) < 2
            or any(not isinstance(c, str) for c in order_raw)
            or len(set(order_raw)) != len(order_raw)
        ):
            raise ConfigError(
                f"{where}.order: expected two or more distinct category strings, lowest "
                f"first, got {order_raw!r}"
            )
        order = tuple(order_raw)
    example = _get(where, raw, "example", (int, float, str), None)
    if example is not None:
        if numeric and not isinstance(example, int | float):
            raise ConfigError(f"{where}.example: a numeric feature needs a number")
        if kind == "integer" and not float(example).is_integer():
            raise ConfigError(f"{where}.example: an integer feature needs a whole number")
        if not numeric and not isinstance(example, str):
            raise ConfigError(f"{where}.example: a categorical feature needs a string")
        if bounds is not None and not bounds[0] <= example <= bounds[1]:
            raise ConfigError(f"{where}.example: {example!r} is outside bounds {list(bounds)}")
    return Feature(
        name=name,
        column=_get(where, raw, "column", str, name),
        kind=kind,
        unit=_get(where, raw, "unit", str, ""),
        description=_get(where, raw, "description", str, ""),
        required=_get(where, raw, "required", bool, True),
        bounds=bounds,
        example=example,
        transform=transform,
        order=order,
    )


#: ``[data]`` keys that describe the data set (the model card's "training data").
INFO_KEYS = ("name", "description", "source", "citation", "license")
#: Every ``[data]`` key: where the file is, how to read it, what it is.
DATA_KEYS: tuple[str, ...] = ("path", "target", "filters", "delimiter", "na_values", "encoding")
DATA_KEYS += ("id_columns", *INFO_KEYS)


def resolve_path(path: str, source: str) -> str:
    """``path`` as written when absolute or when the config is not a file, else joined to the
    config file's folder (normalised: ``configs/../data/x.csv`` reads ``data/x.csv``)."""
    if os.path.isabs(path) or source.startswith("<"):
        return path
    return os.path.normpath(os.path.join(os.path.dirname(source), path))


def _parse_csv_format(where: str, data: Mapping[str, Any]) -> CsvFormat:
    delimiter = _get(where, data, "delimiter", str, None)
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise ConfigError(f"{where}.delimiter: expected one character, got {delimiter!r}")
    na = _get(where, data, "na_values", list, list(NA_VALUES))
    if not all(isinstance(v, str) for v in na):
        raise ConfigError(f"{where}.na_values: expected an array of strings, got {na!r}")
    encoding = _get(where, data, "encoding", str, None)
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ConfigError(f"{where}.encoding: unknown encoding {encoding!r}") from None
    return CsvFormat(delimiter, frozenset(v.strip() for v in na), encoding)


def _parse_id_columns(
    where: str, data: Mapping[str, Any], features: tuple[Feature, ...], target: str
) -> tuple[str, ...]:
    ids = _get(where, data, "id_columns", list, [])
    if not all(isinstance(v, str) and v for v in ids) or len(set(ids)) != len(ids):
        raise ConfigError(f"{where}.id_columns: expected distinct column names, got {ids!r}")
    used = {f.column for f in features} | {target}
    for name in ids:
        if name in used:
            raise ConfigError(
                f"{where}.id_columns: {name!r} is a feature or the target, not an identifier"
            )
    return tuple(ids)


def _parse_base(where: str, model: Mapping[str, Any], estimator: str) -> tuple[str, ...]:
    """``model.base``: the models a "stack" or "voting" estimator combines, by name.

    A name may chain models with ``+`` (``"huber+gbdt"``): the first fitted to the target,
    each next one to the residuals of those before it, their predictions summed
    (:class:`model.residual.ResidualRegressor`); each model at most once in a chain.
    """
    if estimator not in COMBINERS:
        if "base" in model:
            raise ConfigError(f"{where}.base: only 'stack' and 'voting' combine base models")
        return ()
    names = _get(where, model, "base", list)
    allowed = [e for e in ESTIMATORS if e not in COMBINERS]
    if len(names) < 2:
        raise ConfigError(f"{where}.base: {estimator!r} needs at least two base models")
    for name in names:
        parts = name.split("+") if isinstance(name, str) else [name]
        for part in parts:
            if part not in allowed:
                raise ConfigError(
                    f"{where}.base: expected names from {', '.join(allowed)} (or several "
                    f"joined by '+'), got {name!r}"
                )
        if len(set(parts)) != len(parts):
            raise ConfigError(f"{where}.base: {name!r} names a model twice in one chain")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}.base: each base model may appear once, got {names}")
    return tuple(names)


def _parse_derived(src: str, raw: Any, features: tuple[Feature, ...]) -> tuple[Derived, ...]:
    """``[[derived]]``: each expression checked against the numeric features and the derived
    features before it, so a typo is a config error naming the entry, not a failed fit."""
    from model.derived import ExpressionError, expression_names

    if not isinstance(raw, list):
        raise ConfigError(f"{src}: [[derived]] must be an array of tables")
    kinds = {f.name: f.kind for f in features}
    out: list[Derived] = []
    for i, item in enumerate(raw):
        where = f"{src}: derived[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a table, got {type(item).__name__}")
        _unknown_keys(where, item, ("name", "expr", "description", "unit", "transform"))
        name = _get(where, item, "name", str)
        if not _SNAKE.fullmatch(name):
            raise ConfigError(f"{where}.name: names are snake_case ([a-z][a-z0-9_]*), got {name!r}")
        if name in kinds:
            raise ConfigError(f"{where}.name: {name!r} is already a feature or a derived feature")
        expr = _get(where, item, "expr", str)
        try:
            used = expression_names(expr)
        except ExpressionError as exc:
            raise ConfigError(f"{where}.expr: {exc}") from None
        if not used:
            raise ConfigError(f"{where}.expr: {expr!r} reads no feature (a constant says nothing)")
        for col in used:
            if col not in kinds:
                close = difflib.get_close_matches(col, list(kinds), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{where}.expr: {col!r} is not a feature defined above{hint}")
            if kinds[col] == "categorical":
                raise ConfigError(f"{where}.expr: {col!r} is categorical; arithmetic needs numbers")
        transform = _get(where, item, "transform", str, None)
        if transform not in (None, "log"):
            raise ConfigError(f"{where}.transform: only 'log', got {transform!r}")
        kinds[name] = "numeric"
        out.append(
            Derived(
                name,
                expr,
                _get(where, item, "description", str, ""),
                _get(where, item, "unit", str, ""),
                transform,
            )
        )
    return tuple(out)


def _check_ranges(cfg: Config, src: str) -> None:
    """Value checks shared by the file and the command-line overrides."""
    if not 0.0 < cfg.test_size < 1.0:
        raise ConfigError(f"{src}: split.test_size must be in (0, 1), got {cfg.test_size}")
    if cfg.folds < 2:
        raise ConfigError(f"{src}: cv.folds must be at least 2, got {cfg.folds}")
    if cfg.seed < 0:
        raise ConfigError(f"{src}: split.seed must be >= 0, got {cfg.seed}")


def parse_config(doc: Mapping[str, Any], source: str = "<memory>", text: str = "") -> Config:
    """Validate a parsed TOML document; raise :class:`ConfigError` on the first problem."""
    src = source
    _unknown_keys(src, doc, ("data", "split", "cv", "model", "features", "derived"))
    data = _table(src, doc, "data")
    _unknown_keys(f"{src}: data", data, DATA_KEYS)
    filters_raw = _get(f"{src}: data", data, "filters", list, [])
    filters = tuple(
        _parse_filter(f"{src}: data.filters[{i}]", f) for i, f in enumerate(filters_raw)
    )

    split = _table(src, doc, "split")
    _unknown_keys(f"{src}: split", split, ("test_size", "seed"))
    cv = _table(src, doc, "cv")
    _unknown_keys(f"{src}: cv", cv, ("folds", "scoring"))
    scoring = _get(f"{src}: cv", cv, "scoring", str, "rmse_log")
    if scoring not in SCORINGS:
        raise ConfigError(f"{src}: cv.scoring: expected one of {', '.join(SCORINGS)}")

    model = _table(src, doc, "model")
    _unknown_keys(
        f"{src}: model",
        model,
        ("estimator", "target_transform", "params", "grid", "base", "impute"),
    )
    estimator = _get(f"{src}: model", model, "estimator", str, "ridge")
    if estimator not in ESTIMATORS:
        raise ConfigError(
            f"{src}: model.estimator: expected one of {', '.join(ESTIMATORS)}, got {estimator!r}"
        )
    transform = _get(f"{src}: model", model, "target_transform", str, "log")
    if transform not in ("log", "none"):
        raise ConfigError(f"{src}: model.target_transform: expected 'log' or 'none'")
    impute = _get(f"{src}: model", model, "impute", str, "median")
    if impute not in IMPUTE:
        raise ConfigError(
            f"{src}: model.impute: expected one of {', '.join(IMPUTE)}, got {impute!r}"
        )
    params = _get(f"{src}: model", model, "params", dict, {})
    grid = _get(f"{src}: model", model, "grid", dict, {})
    base = _parse_base(f"{src}: model", model, estimator)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{src}: model.grid.{key}: expected a non-empty array of values")

    features_raw = doc.get("features")
    if not isinstance(features_raw, list) or not features_raw:
        raise ConfigError(f"{src}: at least one [[features]] table is required")
    features = tuple(_parse_feature(f"{src}: features[{i}]", f) for i, f in enumerate(features_raw))
    for attr in ("name", "column"):
        seen: set[str] = set()
        for i, feat in enumerate(features):
            value = getattr(feat, attr)
            if value in seen:
                raise ConfigError(f"{src}: features[{i}].{attr}: {value!r} is used twice")
            seen.add(value)

    derived = _parse_derived(src, doc.get("derived", []), features)

    target = _get(f"{src}: data", data, "target", str)
    if any(f.column == target for f in features):
        raise ConfigError(f"{src}: the target column {target!r} cannot also be a feature")
    ids = _parse_id_columns(f"{src}: data", data, features, target)
    path = _get(f"{src}: data", data, "path", str)
    if not path:
        raise ConfigError(f"{src}: data.path: expected a file name, got an empty string")
    cfg = Config(
        data_path=resolve_path(path, source),
        target=target,
        features=features,
        derived=derived,
        filters=filters,
        test_size=float(_get(f"{src}: split", split, "test_size", (int, float), 0.2)),
        seed=_get(f"{src}: split", split, "seed", int, 42),
        folds=_get(f"{src}: cv", cv, "folds", int, 5),
        scoring=scoring,
        estimator=estimator,
        target_transform=None if transform == "none" else transform,
        impute="mean" if impute == "mean" else "median",
        params=dict(params),
        grid={k: list(v) for k, v in grid.items()},
        base=base,
        source=source,
        text=text,
        info=DataInfo(**{k: _get(f"{src}: data", data, k, str, "") for k in INFO_KEYS}),
        csv=_parse_csv_format(f"{src}: data", data),
        id_columns=ids,
    )
    _check_ranges(cfg, src)
    return cfg


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    return parse_config(doc, source=str(p), text=text)
