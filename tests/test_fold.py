"""model.fold: the folded one-row prediction equals the general Pipeline.predict.

Every variant is fitted on a synthetic table, then priced on many random rows — missing
numbers, missing and never-seen categories included — by both paths, which must agree to
1e-12 relative. Shapes that cannot be folded are refused with the reason, and rows the general
path refuses are handed back to it (``None``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from model.base import Columns
from model.compose import ColumnTransformer, TransformedTargetRegressor
from model.fold import CannotFoldError, FoldedLinear, fold
from model.linear import Lasso, LinearRegression, Ridge
from model.pipeline import Pipeline
from model.preprocessing import (
    AgeFromYear,
    LogTransformer,
    MinMaxScaler,
    OneHotEncoder,
    PolynomialFeatures,
    SimpleImputer,
    StandardScaler,
)
from model.tree import DecisionTreeRegressor

CATS = {"hood": ["A", "B", "C", "D"], "kitchen": ["Ex", "Gd", "TA"]}


def table(n: int, rng: np.random.Generator, missing: float = 0.1) -> Columns:
    cols: Columns = {
        "area": rng.uniform(300, 4000, n),
        "lot": rng.lognormal(9, 0.6, n),
        "year": rng.integers(1880, 2010, n).astype(np.float64),
        "rooms": rng.integers(0, 8, n).astype(np.float64),
    }
    for name in ("area", "lot", "rooms"):
        cols[name][rng.random(n) < missing] = np.nan
    for name, cats in CATS.items():
        values = np.empty(n, dtype=object)
        values[:] = [str(v) for v in rng.choice(cats, n)]
        values[rng.random(n) < missing] = None
        cols[name] = values
    return cols


def target(cols: Columns, rng: np.random.Generator) -> np.ndarray:
    area = np.nan_to_num(cols["area"], nan=1500.0)
    bump = np.array([{"A": 0.2, "B": -0.1}.get(v, 0.0) for v in cols["hood"]])
    return np.exp(11 + 0.0004 * area + 0.002 * (cols["year"] - 1950) + bump) * rng.lognormal(
        0, 0.1, len(area)
    )


def price_one(folded: FoldedLinear, row: dict[str, Any]) -> float | None:
    """The fold's price of a table of one row, or ``None`` (handed back)."""
    prices = folded.predict({k: [v] for k, v in row.items()})
    return None if prices is None else prices[0]


def numeric_block() -> Pipeline:
    return Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])


def log_block() -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="mean")),
            ("log", LogTransformer()),
            ("scale", StandardScaler()),
        ]
    )


def served_shape(regressor: Any, func: Any = "log", **ct: Any) -> Pipeline:
    blocks = [
        ("numeric", numeric_block(), ["year", "rooms"]),
        ("log_numeric", log_block(), ["area", "lot"]),
        ("categorical", OneHotEncoder(), ["hood", "kitchen"]),
    ]
    return Pipeline(
        [
            ("features", ColumnTransformer(blocks, **ct)),
            ("regressor", TransformedTargetRegressor(regressor, func=func)),
        ]
    )


VARIANTS: dict[str, Any] = {
    "served (ridge, log target)": lambda: served_shape(Ridge(alpha=0.3)),
    "log1p target, lasso": lambda: served_shape(Lasso(alpha=1e-4), func="log1p"),
    "no target transform": lambda: served_shape(LinearRegression(), func=None),
    "bare linear model, mixed steps": lambda: Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        (
                            "n",
                            Pipeline(
                                [
                                    ("fill", SimpleImputer(strategy="constant", fill_value=7.0)),
                                    ("log", LogTransformer(columns=[1])),
                                    ("off", "passthrough"),
                                    ("scale", StandardScaler(with_mean=False)),
                                ]
                            ),
                            ["rooms", "lot", "area"],
                        ),
                        ("scale_only", StandardScaler(with_std=False), ["year"]),
                        ("hood", OneHotEncoder(), ["hood"]),
                        ("gone", "drop", ["kitchen"]),
                    ]
                ),
            ),
            ("model", Ridge(alpha=1.0)),
        ]
    ),
    "min-max and age steps": lambda: Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        (
                            "age",
                            Pipeline(
                                [
                                    ("fill", SimpleImputer(strategy="median")),
                                    ("age", AgeFromYear()),
                                    ("range", MinMaxScaler()),
                                ]
                            ),
                            ["year", "rooms"],
                        ),
                        ("area", log_block(), ["area", "lot"]),
                        ("hood", OneHotEncoder(), ["hood", "kitchen"]),
                    ]
                ),
            ),
            ("model", TransformedTargetRegressor(Ridge(alpha=0.5), func="log")),
        ]
    ),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_folded_equals_general_on_random_rows(variant: str) -> None:
    rng = np.random.default_rng(0)
    train = table(400, rng)
    pipe = VARIANTS[variant]().fit(train, target(train, rng))
    folded = fold(pipe)

    rows = table(500, rng, missing=0.25)
    rows["hood"][rng.random(500) < 0.15] = "Nowhere"  # never seen in training
    rows["kitchen"][rng.random(500) < 0.15] = "Po"
    general = pipe.predict(rows)
    whole = folded.predict({k: v.tolist() for k, v in rows.items()})  # the table at once
    assert whole is not None
    np.testing.assert_allclose(whole, general, rtol=1e-12, atol=0.0)
    for i in range(0, 500, 5):
        one = {k: v[i : i + 1] for k, v in rows.items()}
        fast = price_one(folded, {k: v[0] for k, v in one.items()})
        assert fast is not None
        assert fast == pytest.approx(general[i], rel=1e-12, abs=0.0), (variant, i)
        assert fast == pytest.approx(float(pipe.predict(one)[0]), rel=1e-12, abs=0.0)


def test_numeric_category_column_is_converted_as_the_column_transformer_does() -> None:
    rng = np.random.default_rng(1)
    train = table(300, rng)
    train["hood"] = np.array([None if v is None else str(ord(v)) for v in train["hood"]], object)
    pipe = served_shape(Ridge()).fit(train, target(table(300, rng), rng))
    one = {k: v[:1].copy() for k, v in train.items()}
    for value in (65.0, 66.0, 99.0, math.nan):  # a float column in a categorical block
        one["hood"] = np.array([value])
        row = {k: v[0] for k, v in one.items()}
        assert price_one(fold(pipe), row) == pytest.approx(
            float(pipe.predict(one)[0]), rel=1e-12, abs=0.0
        )


@pytest.mark.parametrize(
    ("column", "value"),
    [("area", math.inf), ("lot", -1.0), ("lot", -5.0), ("area", "not a number")],
)
def test_rows_the_general_path_refuses_are_handed_back(column: str, value: Any) -> None:
    rng = np.random.default_rng(2)
    train = table(200, rng)
    pipe = served_shape(Ridge()).fit(train, target(train, rng))
    one: Columns = {k: v[:1].copy() for k, v in train.items()}
    one[column] = np.array([value], dtype=object if isinstance(value, str) else np.float64)
    assert price_one(fold(pipe), {k: v[0] for k, v in one.items()}) is None
    with pytest.raises(ValueError, match=column if column == "area" else "log1p"):
        pipe.predict(one)


def test_an_unfilled_missing_value_is_handed_back() -> None:
    rng = np.random.default_rng(3)
    train = table(200, rng, missing=0.0)
    pipe = Pipeline(
        [
            ("features", ColumnTransformer([("n", StandardScaler(), ["area", "year"])])),
            ("model", LinearRegression()),
        ]
    ).fit(train, target(train, rng))
    one = {"area": np.array([np.nan]), "year": np.array([1990.0])}
    assert price_one(fold(pipe), {"area": None, "year": 1990.0}) is None
    with pytest.raises(ValueError):
        pipe.predict(one)


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (
            lambda: Pipeline(
                [
                    ("f", ColumnTransformer([("n", numeric_block(), ["area", "year"])])),
                    ("tree", DecisionTreeRegressor(max_depth=3)),
                ]
            ),
            "not a linear model",
        ),
        (
            lambda: Pipeline(
                [
                    ("f", ColumnTransformer([("n", numeric_block(), ["area", "year"])])),
                    ("poly", PolynomialFeatures()),
                    ("model", Ridge()),
                ]
            ),
            "two-step",
        ),
        (
            lambda: Pipeline(
                [
                    (
                        "f",
                        ColumnTransformer(
                            [("n", Pipeline([("p", PolynomialFeatures())]), ["year", "rooms"])]
                        ),
                    ),
                    ("model", Ridge()),
                ]
            ),
            "PolynomialFeatures",
        ),
        (
            lambda: Pipeline(
                [
                    (
                        "f",
                        ColumnTransformer([("k", OneHotEncoder(), ["rooms"])]),
                    ),
                    ("model", Ridge()),
                ]
            ),
            "block 'k': numeric column 'rooms' folds as the other kind",
        ),
    ],
)
def test_shapes_it_cannot_reproduce_are_refused_with_the_reason(build: Any, reason: str) -> None:
    rng = np.random.default_rng(4)
    train = table(200, rng, missing=0.0)
    pipe = build().fit(train, target(train, rng))
    with pytest.raises(CannotFoldError, match=reason):
        fold(pipe)


def test_an_unfitted_pipeline_is_not_folded() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        fold(served_shape(Ridge()))


def test_the_served_model_prices_through_the_fold(artifact_path: str) -> None:
    """The default artifact folds; LoadedModel.predict equals the pipeline on random houses,
    one at a time and as a table."""
    from app.settings import Settings
    from app.state import FOLD_MAX_ROWS, load_model

    model = load_model(artifact_path, Settings.from_env({}))
    assert model.folded is not None, model.price_path
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(300):
        house: dict[str, Any] = {}
        for spec in model.features:
            if not spec.required and rng.random() < 0.3:
                house[spec.name] = None
            elif spec.kind != "categorical":
                house[spec.name] = float(rng.uniform(spec.lo, min(spec.hi, spec.lo + 5000)))
            else:
                known = list(spec.categories or ["x"])
                house[spec.name] = str(rng.choice([*known, "never-seen"]))
        rows.append(model.schema.house.model_validate(house))
    folded = model.folded
    general = model.pipeline.predict(
        {k: np.array(v, dtype=object if v and isinstance(v[0], str) else None)
         for k, v in model.table(rows).items()}
    )  # fmt: skip
    for i in range(0, 300, 3):
        assert model.predict(model.table([rows[i]])) == [pytest.approx(general[i], rel=1e-12)]
    small = model.table(rows[:FOLD_MAX_ROWS])
    assert folded.predict(small) == pytest.approx(general[:FOLD_MAX_ROWS], rel=1e-12)
    np.testing.assert_allclose(model.predict(model.table(rows)), general, rtol=1e-12)


def test_a_pipeline_that_does_not_fold_is_served_by_the_general_path(artifact_path: str) -> None:
    from app.settings import Settings
    from app.state import build_model
    from model.workflow.artifact import load_artifact

    class OtherPipeline(Pipeline):  # not the exact shape fold() knows
        pass

    art = load_artifact(artifact_path)
    other = OtherPipeline(art.pipeline.steps)
    other.fitted_steps_ = art.pipeline.fitted_steps_
    model = build_model(other, art.metadata, art.sha256, artifact_path, Settings.from_env({}))
    assert model.folded is None
    assert model.price_path.startswith("general pipeline (not a two-step Pipeline")
    row = model.schema.house.model_validate(model.schema.example)
    table = model.table([row])
    expected = art.pipeline.predict({k: np.array(v) for k, v in table.items()})
    assert model.predict(table) == [float(expected[0])]


def test_a_fold_that_disagrees_at_warm_up_is_switched_off(
    artifact_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.settings import Settings
    from app.state import build_model
    from model.workflow.artifact import load_artifact

    monkeypatch.setattr(FoldedLinear, "predict", lambda self, table: [1.0])
    art = load_artifact(artifact_path)
    model = build_model(
        art.pipeline, art.metadata, art.sha256, artifact_path, Settings.from_env({})
    )
    assert model.folded is None
    assert "disagreed" in model.price_path


def test_a_fill_after_another_step_is_compiled_in_order() -> None:
    """Scale then fill: a missing value stays NaN through the scaling and is filled after it
    (the fill's statistic is a scaled one); an infinite value is handed back, as the general
    path refuses it."""
    rng = np.random.default_rng(6)
    train = table(300, rng, missing=0.0)
    block = Pipeline([("range", MinMaxScaler()), ("fill", SimpleImputer(strategy="median"))])
    pipe = Pipeline(
        [
            ("features", ColumnTransformer([("n", block, ["area", "year"])])),
            ("model", Ridge(alpha=0.1)),
        ]
    ).fit(train, target(train, rng))
    folded = fold(pipe)
    rows = table(200, rng, missing=0.3)
    general = pipe.predict({"area": rows["area"], "year": rows["year"]})
    whole = folded.predict({"area": rows["area"].tolist(), "year": rows["year"].tolist()})
    assert whole is not None
    np.testing.assert_allclose(whole, general, rtol=1e-12, atol=0.0)
    assert price_one(folded, {"area": math.inf, "year": 1990.0}) is None
    with pytest.raises(ValueError, match="area"):
        pipe.predict({"area": np.array([math.inf]), "year": np.array([1990.0])})


def test_the_compiled_terms_keep_their_source() -> None:
    rng = np.random.default_rng(7)
    train = table(200, rng)
    folded = fold(served_shape(Ridge()).fit(train, target(train, rng)))
    source = folded.sums.__doc__ or ""
    assert source.startswith("def sums(c0, c1, c2, c3, c4, c5):")
    assert source.count("log1p(x)") == 2 and source.count(".get(") == 2
