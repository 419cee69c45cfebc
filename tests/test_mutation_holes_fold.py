"""model.fold: what mutation testing found the other tests let through (issue 20).

Consecutive subtract-then-divide steps are fused into one standardisation and nothing else
is; a one-hot encoding is only accepted as the last step of a block's chain.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

from model.compose import ColumnTransformer
from model.fold import CannotFoldError, FoldedLinear, NumericTerm, _chain, _fuse, fold, fold_block
from model.linear import LinearRegression
from model.pipeline import Pipeline
from model.preprocessing import OneHotEncoder, PolynomialFeatures, SimpleImputer, StandardScaler
from model.tree import DecisionTreeRegressor


def test_only_a_sub_then_div_is_fused() -> None:
    steps = (("sub", 1.0), ("div", 2.0), ("div", 3.0), ("mul", 4.0), ("sub", 5.0))
    assert _fuse(steps) == (("standardize", 1.0, 2.0), ("div", 3.0), ("mul", 4.0), ("sub", 5.0))
    assert _fuse((("div", 2.0), ("sub", 1.0))) == (("div", 2.0), ("sub", 1.0))
    assert _fuse(()) == ()


def test_a_one_hot_encoding_must_be_the_last_step() -> None:
    assert _chain((("log1p",),), (("sub", 1.0),), "b") == (("log1p",), ("sub", 1.0))
    assert _chain((), {"x": 0}, "b") == {"x": 0}
    with pytest.raises(CannotFoldError, match=r"^block 'b/s': a one-hot encoding must be the"):
        _chain((("log1p",),), {"x": 0}, "b/s")
    with pytest.raises(CannotFoldError, match=r"^block 'b': a one-hot encoding must be the last"):
        _chain({"x": 0}, (("log1p",),), "b")


def one_column_pipeline() -> Pipeline:
    rng = np.random.default_rng(0)
    area = rng.uniform(300, 4000, 50)
    pipe = Pipeline(
        [
            ("features", ColumnTransformer([("n", StandardScaler(), ["area"])])),
            ("model", LinearRegression()),
        ]
    )
    return pipe.fit({"area": area}, 100.0 * area + rng.normal(size=50))


def test_a_pipeline_of_one_input_column_folds() -> None:
    pipe = one_column_pipeline()
    folded = fold(pipe)
    values = [500.0, 1234.5, 3999.0]
    general = pipe.predict({"area": np.array(values)})
    prices = folded.predict({"area": values})
    assert prices is not None
    np.testing.assert_allclose(prices, general, rtol=1e-12, atol=0.0)
    terms = folded.contributions({"area": values})
    assert terms is not None and [list(t) for t in terms] == [["area"]] * 3
    for t, price in zip(terms, general, strict=True):
        assert folded.b + t["area"] == pytest.approx(price, rel=1e-12)


def test_contributions_whose_sum_overflows_are_handed_back_as_the_prices_are() -> None:
    """Each term finite, their sum with the intercept past the largest float: both the
    prices and the contributions hand the row back."""
    folded = FoldedLinear((NumericTerm("a", (), 1.0),), (), 1e308, None)
    assert folded.predict({"a": [1e308]}) is None
    assert folded.contributions({"a": [1e308]}) is None
    assert folded.predict({"a": [-1e308]}) == [0.0]
    assert folded.contributions({"a": [-1e308]}) == [{"a": -1e308}]


def test_a_pipeline_of_categories_only_folds() -> None:
    rng = np.random.default_rng(1)
    hood = np.array(rng.choice(["A", "B", "C"], 60), dtype=object)
    y = np.array([{"A": 1.0, "B": 2.0, "C": 4.0}[h] for h in hood]) + rng.normal(size=60)
    pipe = Pipeline(
        [
            ("features", ColumnTransformer([("c", OneHotEncoder(), ["hood"])])),
            ("model", LinearRegression()),
        ]
    ).fit({"hood": hood}, y)
    folded = fold(pipe)
    values = ["A", "C", "never seen", None]
    general = pipe.predict({"hood": np.array(values, dtype=object)})
    prices = folded.predict({"hood": values})
    assert prices is not None
    np.testing.assert_allclose(prices, general, rtol=1e-12, atol=0.0)


def test_the_compiled_code_is_named_for_what_it_computes() -> None:
    """Tracebacks and profiles name the compiled functions' source ``<folded ...>``."""
    folded = fold(one_column_pipeline())
    assert folded.sums.__code__.co_filename == "<folded terms>"
    assert folded.terms.__code__.co_filename == "<folded contributions>"


@pytest.mark.parametrize("inf", [math.inf, -math.inf])
def test_an_infinite_value_is_handed_back_even_where_a_later_fill_would_hide_it(
    inf: float,
) -> None:
    """A step may turn an infinite value into NaN (x * 0), which a later fill would replace
    with a number; the general path refuses the infinite value, so the fold hands it back."""
    steps = (("mul", 0.0), ("fill", 5.0))
    folded = FoldedLinear((NumericTerm("a", steps, 2.0),), (), 1.0, None)
    assert folded.predict({"a": [1.0, None]}) == [1.0, 11.0]
    assert folded.predict({"a": [1.0, inf]}) is None
    assert folded.contributions({"a": [inf]}) is None


def mixed_table(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    area = rng.uniform(1.0, 5.0, n)
    hood = np.array(rng.choice(["A", "B", None], n), dtype=object)
    return {"hood": hood, "area": area, "area2": 2.0 * area + rng.normal(size=n)}


def fitted(blocks: list[Any]) -> Pipeline:
    train = mixed_table(60, seed=1)
    pipe = Pipeline([("features", ColumnTransformer(blocks)), ("model", LinearRegression())])
    return pipe.fit(train, train["area"] + train["area2"])


def test_passthrough_blocks_and_switched_off_steps_fold_as_the_identity() -> None:
    pipe = fitted(
        [
            ("p", "passthrough", ["area"]),
            (
                "n",
                Pipeline([("off", None), ("skip", "passthrough"), ("s", StandardScaler())]),
                ["area2"],
            ),
        ]
    )
    folded = fold(pipe)
    assert [t.steps for t in folded.numeric] == [(), (("standardize", *_scaler(pipe)),)]
    rows = mixed_table(20, seed=2)
    prices = folded.predict({k: v.tolist() for k, v in rows.items()})
    assert prices is not None
    np.testing.assert_allclose(prices, pipe.predict(rows), rtol=1e-12, atol=0.0)


def _scaler(pipe: Pipeline) -> tuple[float, float]:
    s = pipe.steps[0][1].transformers_[1][1].steps[2][1]
    return float(s.mean_[0]), float(s.scale_[0])


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        (
            [("c", Pipeline([("onehot", OneHotEncoder()), ("scale", StandardScaler())]), ["hood"])],
            "block 'c/scale': a one-hot encoding must be the last step",
        ),
        (
            [
                (
                    "c",
                    Pipeline(
                        [
                            ("impute", SimpleImputer(strategy="constant", fill_value="none")),
                            ("onehot", OneHotEncoder()),
                        ]
                    ),
                    ["hood"],
                )
            ],
            "block 'c/impute': SimpleImputer(strategy='constant') holds no number per column",
        ),
        (
            [("n", Pipeline([("poly", PolynomialFeatures())]), ["area", "area2"])],
            "block 'n/poly': PolynomialFeatures does not describe its columns (not elementwise)",
        ),
    ],
)
def test_a_step_that_cannot_fold_is_named_by_its_block_and_step(
    blocks: list[Any], message: str
) -> None:
    with pytest.raises(CannotFoldError, match=f"^{re.escape(message)}$"):
        fold(fitted(blocks))


class _Describes:
    def __init__(self, columns: list[Any]) -> None:
        self.columns = columns

    def fold_columns(self, width: int) -> list[Any]:
        return self.columns


def test_fold_block_refuses_what_it_does_not_know() -> None:
    with pytest.raises(CannotFoldError, match=r"^block 'b': str does not describe its columns"):
        fold_block("drop", 1, "b")
    assert fold_block("passthrough", 2, "b") == [(), ()]
    message = "block 'b': 1 column folds for 2 inputs"
    with pytest.raises(CannotFoldError, match=f"^{re.escape(message)}$"):
        fold_block(_Describes([()]), 2, "b")
    with pytest.raises(CannotFoldError, match=r"^block 'b': unknown elementwise step \('exp',\)$"):
        fold_block(_Describes([(("exp",),)]), 1, "b")


def test_the_compiled_functions_are_named_sums_and_terms() -> None:
    folded = fold(one_column_pipeline())
    assert folded.sums.__name__ == "sums" and folded.terms.__name__ == "terms"
    assert (folded.terms.__doc__ or "").startswith("def terms(c0):")


class _OwnPredict(LinearRegression):
    def predict(self, X: Any) -> Any:
        return super().predict(X) + 1.0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Pipeline([("s", StandardScaler()), ("m", LinearRegression())]),
            "first step is StandardScaler, not a ColumnTransformer",
        ),
        (
            lambda: Pipeline(
                [("f", ColumnTransformer([("n", "passthrough", ["area"])])), ("m", _OwnPredict())]
            ),
            "final estimator _OwnPredict is not a linear model",
        ),
        (
            lambda: Pipeline(
                [
                    ("f", ColumnTransformer([("n", "passthrough", ["area"])])),
                    ("m", DecisionTreeRegressor(max_depth=1)),
                ]
            ),
            "final estimator DecisionTreeRegressor is not a linear model",
        ),
    ],
)
def test_fold_refuses_other_shapes_saying_why(build: Any, message: str) -> None:
    train = mixed_table(60, seed=3)
    X: Any = {"area": train["area"]}
    pipe = build()
    if not isinstance(pipe.steps[0][1], ColumnTransformer):
        X = train["area"][:, None]
    pipe.fit(X, train["area2"])
    with pytest.raises(CannotFoldError, match=f"^{re.escape(message)}$"):
        fold(pipe)


class _Features:
    def __init__(self, terms: list[Any]) -> None:
        self.terms = terms

    def fold_terms(self) -> list[Any]:
        return self.terms


class _Target:
    def __init__(self, reg: Any, func: Any) -> None:
        self.reg, self.func = reg, func

    def fold_target(self) -> tuple[Any, Any]:
        return self.reg, self.func


def assembled(features: Any, last: Any) -> Pipeline:
    """A fitted two-step Pipeline whose steps are ``features`` and ``last``, as fold reads it."""
    pipe = fitted([("n", "passthrough", ["area"])])
    pipe.steps = [("f", features), ("m", last)]
    pipe.fitted_steps_ = (features, last)
    return pipe


def two_column_linear() -> LinearRegression:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 2))
    return LinearRegression().fit(X, X @ [1.0, 2.0])


@pytest.mark.parametrize(
    ("features", "last", "message"),
    [
        (
            _Features([("a", (), 0, None), ("b", (), 1, None)]),
            _Target(two_column_linear(), "sqrt"),
            "target transform 'sqrt' has no known inverse",
        ),
        (
            _Features([("a", (), 0, None)]),
            _Target(LinearRegression(), None),
            "LinearRegression is not fitted",
        ),
        (
            _Features([]),
            _Target(two_column_linear(), "log"),
            "the ColumnTransformer passes no input column on",
        ),
        (
            _Features([("a", (), 0, None)]),
            _Target(two_column_linear(), None),
            "coef_ has shape (2,), the column terms 1 outputs",
        ),
    ],
)
def test_fold_refuses_what_its_parts_report_saying_why(
    features: Any, last: Any, message: str
) -> None:
    with pytest.raises(CannotFoldError, match=f"^{re.escape(message)}$"):
        fold(assembled(features, last))
