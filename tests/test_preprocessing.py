"""Preprocessing transformers against scikit-learn's on real and random data (to 1e-12)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn import impute as sk_impute
from sklearn import preprocessing as sk_pre
from sklearn.datasets import load_diabetes

from model.base import NotFittedError, clone
from model.preprocessing import (
    AgeFromYear,
    LogTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    SimpleImputer,
    StandardScaler,
    missing_mask,
)

TOL = {"rtol": 1e-12, "atol": 1e-12}


@pytest.fixture(scope="module")
def diabetes() -> NDArray[np.float64]:
    return np.asarray(load_diabetes().data, dtype=np.float64)


@pytest.fixture(scope="module")
def with_nan() -> NDArray[np.float64]:
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[0.0, 10.0, -3.0, 1e4], scale=[1.0, 2.0, 0.1, 5e3], size=(200, 4))
    X[rng.random(X.shape) < 0.15] = np.nan
    X[:, 2] = np.round(X[:, 2], 1)  # repeated values, so most_frequent has ties to break
    return X


@pytest.fixture(scope="module")
def categories() -> NDArray[Any]:
    rng = np.random.default_rng(1)
    a = rng.choice(["NAmes", "CollgCr", "OldTown", "Edwards"], size=150)
    b = rng.choice(["Y", "N"], size=150)
    return np.column_stack([a, b]).astype(object)


# --- SimpleImputer --------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_imputer_matches_sklearn_on_numbers(strategy: str, with_nan: NDArray[np.float64]) -> None:
    ours = SimpleImputer(strategy=strategy).fit(with_nan[:150])  # type: ignore[arg-type]
    ref = sk_impute.SimpleImputer(strategy=strategy, fill_value=0.0).fit(with_nan[:150])
    np.testing.assert_allclose(ours.statistics_.astype(float), ref.statistics_.astype(float), **TOL)
    np.testing.assert_allclose(
        ours.transform(with_nan[150:]).astype(float), ref.transform(with_nan[150:]), **TOL
    )
    assert not np.isnan(ours.transform(with_nan).astype(float)).any()


@pytest.mark.parametrize("strategy", ["most_frequent", "constant"])
def test_imputer_matches_sklearn_on_strings(strategy: str, categories: NDArray[Any]) -> None:
    X = categories.copy()
    X[::7, 0] = np.nan
    X[3::11, 1] = np.nan
    ours = SimpleImputer(strategy=strategy).fit_transform(X)  # type: ignore[arg-type]
    ref = sk_impute.SimpleImputer(strategy=strategy).fit_transform(X)
    assert ours.tolist() == ref.tolist()


def test_imputer_treats_none_as_missing_in_object_columns() -> None:
    X = np.array([["a"], [None], ["b"], ["b"]], dtype=object)
    out = SimpleImputer(strategy="most_frequent").fit_transform(X)
    assert out[:, 0].tolist() == ["a", "b", "b", "b"]
    const = SimpleImputer(strategy="constant", fill_value="none").fit_transform(X)
    assert const[:, 0].tolist() == ["a", "none", "b", "b"]


def test_imputer_most_frequent_breaks_ties_to_smallest() -> None:
    X = np.array([[3.0], [1.0], [3.0], [1.0], [np.nan]])
    assert SimpleImputer(strategy="most_frequent").fit(X).statistics_.tolist() == [1.0]


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent"])
def test_imputer_all_missing_column_is_an_error_naming_it(strategy: str) -> None:
    X = np.array([[1.0, np.nan], [2.0, np.nan]])
    with pytest.raises(ValueError, match=r"column 1 is entirely missing"):
        SimpleImputer(strategy=strategy).fit(X)  # type: ignore[arg-type]


def test_imputer_constant_needs_no_data_and_mean_refuses_strings() -> None:
    X = np.array([[np.nan], [np.nan]])
    assert SimpleImputer(strategy="constant", fill_value=-1).fit_transform(X).tolist() == [
        [-1.0],
        [-1.0],
    ]
    with pytest.raises(ValueError, match=r"column 0 holds a non-numeric value 'a'"):
        SimpleImputer(strategy="mean").fit(np.array([["a"], ["b"]], dtype=object))
    with pytest.raises(ValueError, match="strategy must be"):
        SimpleImputer(strategy="mode").fit(X)  # type: ignore[arg-type]


def test_missing_mask_matches_a_literal_loop() -> None:
    X = np.array([["a", None], [math.nan, "b"], [1.5, float("nan")]], dtype=object)
    expected = [[v is None or (isinstance(v, float) and math.isnan(v)) for v in row] for row in X]
    assert missing_mask(X).tolist() == expected


# --- Scalers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (StandardScaler(), sk_pre.StandardScaler()),
        (StandardScaler(with_mean=False), sk_pre.StandardScaler(with_mean=False)),
        (StandardScaler(with_std=False), sk_pre.StandardScaler(with_std=False)),
        (MinMaxScaler(), sk_pre.MinMaxScaler()),
        (MinMaxScaler(feature_range=(-1.0, 2.0)), sk_pre.MinMaxScaler(feature_range=(-1, 2))),
    ],
    ids=["std", "std-no-mean", "std-no-std", "minmax", "minmax-range"],
)
def test_scalers_match_sklearn(
    ours: Any, ref: Any, diabetes: NDArray[np.float64], with_nan: NDArray[np.float64]
) -> None:
    for X in (diabetes, with_nan):
        a, b = clone(ours).fit(X[:100]), clone(ref).fit(X[:100])
        np.testing.assert_allclose(a.transform(X[100:]), b.transform(X[100:]), **TOL)
        np.testing.assert_allclose(a.fit_transform(X), b.fit_transform(X), **TOL)
    assert np.isnan(ours.fit_transform(with_nan)).sum() == np.isnan(with_nan).sum()


def test_standard_scaler_attributes_are_population_statistics(
    diabetes: NDArray[np.float64],
) -> None:
    s = StandardScaler().fit(diabetes)
    np.testing.assert_allclose(s.mean_, diabetes.mean(axis=0), **TOL)
    np.testing.assert_allclose(s.scale_, diabetes.std(axis=0, ddof=0), **TOL)


def test_constant_columns_scale_like_sklearn() -> None:
    X = np.column_stack([np.full(50, 0.1), np.full(50, 7.0), np.arange(50.0)])
    std = StandardScaler().fit(X)
    assert std.scale_[:2].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(std.transform(X), sk_pre.StandardScaler().fit_transform(X), **TOL)
    mm = MinMaxScaler().fit_transform(X)
    assert (mm[:, :2] == 0.0).all()
    np.testing.assert_allclose(mm, sk_pre.MinMaxScaler().fit_transform(X), **TOL)


def test_scaler_errors() -> None:
    with pytest.raises(ValueError, match="column 1 is entirely missing"):
        StandardScaler().fit(np.array([[1.0, np.nan], [2.0, np.nan]]))
    with pytest.raises(ValueError, match="lo < hi"):
        MinMaxScaler(feature_range=(1.0, 0.0)).fit(np.ones((3, 1)))
    with pytest.raises(ValueError, match="2-D"):
        StandardScaler().fit(np.arange(3.0))
    with pytest.raises(NotFittedError):
        StandardScaler().transform(np.ones((2, 2)))
    s = StandardScaler().fit(np.ones((3, 2)))
    with pytest.raises(ValueError, match="X has 3 columns, but StandardScaler was fitted on 2"):
        s.transform(np.ones((3, 3)))
    with pytest.raises(ValueError, match="column 1 holds infinite"):
        s.transform(np.array([[1.0, np.inf]]))


# --- OneHotEncoder ---------------------------------------------------------------------------


def test_one_hot_matches_sklearn(categories: NDArray[Any]) -> None:
    ours = OneHotEncoder().fit(categories[:100])
    ref = sk_pre.OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(categories[:100])
    for a, b in zip(ours.categories_, ref.categories_, strict=True):
        assert a.tolist() == b.tolist()
    np.testing.assert_array_equal(ours.transform(categories[100:]), ref.transform(categories[100:]))
    names = ["hood", "air"]
    assert ours.get_feature_names_out(names) == ref.get_feature_names_out(names).tolist()
    assert ours.get_feature_names_out() == ref.get_feature_names_out().tolist()


def test_one_hot_unknown_and_missing_encode_as_zeros(categories: NDArray[Any]) -> None:
    enc = OneHotEncoder().fit(categories)
    X = np.array([["Mars", "Y"], [None, None], [math.nan, "N"], ["NAmes", "maybe"]], dtype=object)
    out = enc.transform(X)
    ref = sk_pre.OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(categories)
    expected = ref.transform(np.array([["Mars", "Y"], ["?", "?"], ["?", "N"], ["NAmes", "?"]]))
    np.testing.assert_array_equal(out, expected)
    assert out[1].sum() == 0.0


def test_one_hot_ignores_missing_at_fit_and_takes_numbers() -> None:
    X = np.array([["b"], [None], ["a"]], dtype=object)
    enc = OneHotEncoder().fit(X)
    assert enc.categories_[0].tolist() == ["a", "b"]
    nums = np.array([[3.0], [1.0], [np.nan], [3.0]])
    out = OneHotEncoder().fit_transform(nums)
    assert out.tolist() == [[0, 1], [1, 0], [0, 0], [0, 1]]


def test_one_hot_explicit_categories_and_errors() -> None:
    enc = OneHotEncoder(categories=[["x", "y", "z"]]).fit(np.array([["y"]], dtype=object))
    assert enc.transform(np.array([["z"], ["w"]], dtype=object)).tolist() == [[0, 0, 1], [0, 0, 0]]
    with pytest.raises(ValueError, match="column 0 mixes values"):
        OneHotEncoder().fit(np.array([["a"], [1]], dtype=object))
    with pytest.raises(ValueError, match="2-D"):
        OneHotEncoder().fit(np.array(["a", "b"], dtype=object))


def test_only_one_hot_describes_its_columns_to_the_fold() -> None:
    """An ordinal code is a rank, not an indicator: a linear pipeline over ordinal codes must
    not fold as one-hot (it used to, through inheritance, when a column had one category)."""
    from model.compose import ColumnTransformer
    from model.fold import CannotFoldError, fold
    from model.linear import Ridge
    from model.pipeline import Pipeline

    X = {"x": np.arange(6.0), "c": np.array(["a"] * 6, dtype=object)}
    enc = OrdinalEncoder().fit(np.array([["a"]], dtype=object))
    assert enc.transform(np.array([["a"], ["b"]], dtype=object))[:, 0].tolist()[0] == 0.0
    assert not hasattr(enc, "fold_columns")
    assert OneHotEncoder.from_categories([["a"]]).fold_columns(1) == [{"a": 0}]
    assert isinstance(OrdinalEncoder.from_categories([["a", "b"]]), OrdinalEncoder)
    blocks = [("num", "passthrough", ["x"]), ("cat", OrdinalEncoder(), ["c"])]
    pipe = Pipeline([("ct", ColumnTransformer(blocks)), ("m", Ridge())]).fit(X, np.arange(6.0))
    with pytest.raises(CannotFoldError, match="'cat': OrdinalEncoder does not describe"):
        fold(pipe)


# --- PolynomialFeatures ----------------------------------------------------------------------


@pytest.mark.parametrize("degree", [1, 2, 3])
@pytest.mark.parametrize("interaction_only", [False, True])
@pytest.mark.parametrize("include_bias", [False, True])
def test_polynomial_matches_sklearn(
    degree: int, interaction_only: bool, include_bias: bool, diabetes: NDArray[np.float64]
) -> None:
    X = diabetes[:, :4]
    kw = {"degree": degree, "interaction_only": interaction_only, "include_bias": include_bias}
    ours, ref = PolynomialFeatures(**kw).fit(X), sk_pre.PolynomialFeatures(**kw).fit(X)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), **TOL)
    assert ours.get_feature_names_out() == ref.get_feature_names_out().tolist()
    names = ["a", "b", "c", "d"]
    assert ours.get_feature_names_out(names) == ref.get_feature_names_out(names).tolist()
    np.testing.assert_array_equal(ours.powers_, ref.powers_)


def test_polynomial_refuses_missing_values() -> None:
    with pytest.raises(ValueError, match="column 1 holds missing"):
        PolynomialFeatures().fit(np.array([[1.0, np.nan]]))


# --- LogTransformer, AgeFromYear -------------------------------------------------------------


def test_log_transformer_matches_function_transformer(diabetes: NDArray[np.float64]) -> None:
    X = np.abs(diabetes) * 100
    ref = sk_pre.FunctionTransformer(np.log1p).fit_transform(X)
    np.testing.assert_allclose(LogTransformer().fit_transform(X), ref, **TOL)
    some = LogTransformer(columns=[0, -1]).fit(X)
    out = some.transform(X)
    np.testing.assert_allclose(out[:, [0, -1]], ref[:, [0, -1]], **TOL)
    np.testing.assert_array_equal(out[:, 1:-1], X[:, 1:-1])
    assert some.get_feature_names_out()[:2] == ["log1p(x0)", "x1"]


def test_log_transformer_refuses_values_at_or_below_minus_one() -> None:
    t = LogTransformer(columns=[1]).fit(np.array([[-5.0, 0.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"column 1 holds values <= -1 \(min -1.0\)"):
        t.transform(np.array([[0.0, -1.0]]))
    with pytest.raises(ValueError, match="column 0 holds values <= -1"):
        LogTransformer().fit(np.array([[-3.0]]))
    with pytest.raises(ValueError, match="out of range"):
        LogTransformer(columns=[4]).fit(np.ones((2, 2)))
    out = LogTransformer().fit_transform(np.array([[np.nan], [0.0]]))
    assert np.isnan(out[0, 0]) and out[1, 0] == 0.0


def test_age_from_year() -> None:
    years = np.array([[1960.0, 2005.0], [2008.0, np.nan], [1999.0, 2010.0]])
    fixed = AgeFromYear(reference_year=2010).fit(years)
    expected = [[2010 - y if not np.isnan(y) else np.nan for y in row] for row in years]
    np.testing.assert_array_equal(fixed.transform(years), np.array(expected))
    learned = AgeFromYear().fit(years)
    assert learned.reference_year_ == 2010.0
    assert learned.reference_year is None  # the hyperparameter is left as given
    assert learned.get_feature_names_out(["built", "remod"]) == ["age(built)", "age(remod)"]


def test_hyperparameters_are_stored_unchanged_and_cloneable() -> None:
    for est in (
        SimpleImputer(strategy="median"),
        OneHotEncoder(),
        StandardScaler(with_mean=False),
        MinMaxScaler(feature_range=(0.0, 2.0)),
        PolynomialFeatures(degree=3, include_bias=True),
        LogTransformer(columns=[0]),
        AgeFromYear(reference_year=2000),
    ):
        copy = clone(est)
        assert type(copy) is type(est) and copy.get_params() == est.get_params()


def test_imputer_fitted_on_numbers_names_a_text_column_at_transform() -> None:
    imp = SimpleImputer(strategy="most_frequent").fit(np.array([[1.0, 2.0], [1.0, np.nan]]))
    out = imp.transform(np.array([[3.0, None]], dtype=object))
    assert out.tolist() == [[3.0, 2.0]]
    with pytest.raises(ValueError, match="column 1 holds a non-numeric value 'x'"):
        imp.transform(np.array([[3.0, "x"]], dtype=object))


# --- properties on random tables -------------------------------------------------------------

_cells = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"]))


@settings(max_examples=60, deadline=None)
@given(
    train=st.lists(st.tuples(_cells, _cells), min_size=1, max_size=12),
    test=st.lists(st.tuples(_cells, st.one_of(_cells, st.just("new"))), min_size=1, max_size=6),
)
def test_one_hot_equals_a_literal_loop(
    train: list[tuple[str | None, str | None]], test: list[tuple[str | None, str | None]]
) -> None:
    Xtr, Xte = np.array(train, dtype=object), np.array(test, dtype=object)
    enc = OneHotEncoder().fit(Xtr)
    expected = []
    for row in test:
        out: list[float] = []
        for j, v in enumerate(row):
            seen = sorted({r[j] for r in train if r[j] is not None})
            out.extend(1.0 if v == c else 0.0 for c in seen)
        expected.append(out)
    assert enc.transform(Xte).tolist() == expected


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.just(math.nan), st.floats(-1e6, 1e6, allow_nan=False)),
        min_size=6,
        max_size=30,
    ),
    strategy=st.sampled_from(["mean", "median", "most_frequent"]),
)
def test_imputer_equals_sklearn_on_random_columns(values: list[float], strategy: str) -> None:
    X = np.array(values[: len(values) // 2 * 2]).reshape(-1, 2)
    if np.isnan(X).all(axis=0).any():
        with pytest.raises(ValueError, match="entirely missing"):
            SimpleImputer(strategy=strategy).fit(X)  # type: ignore[arg-type]
        return
    ours = SimpleImputer(strategy=strategy).fit_transform(X)  # type: ignore[arg-type]
    ref = sk_impute.SimpleImputer(strategy=strategy).fit_transform(X)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-9)
