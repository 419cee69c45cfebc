"""model.preprocessing: what mutation testing found the other tests let through (issue 20).

Each transformer's refusals are worded whole (anchored), its fitted attributes are held to
scikit-learn's where it has the same estimator (near-constant columns included) and to the
rule the docstring states where it does not.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from sklearn import preprocessing as sk_pre

from model.base import NotFittedError
from model.preprocessing import (
    AgeFromYear,
    LogTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    SimpleImputer,
    StandardScaler,
    Transformer,
    ValidatedTransform,
    check_object_array,
    default_feature_names,
    missing_mask,
    transform_validated,
)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (
            ["a", "b"],
            "X: expected a 2-D array, got shape (2,) "
            "(reshape a single feature with x.reshape(-1, 1))",
        ),
        ([[["a"]]], "X: expected a 2-D array, got shape (1, 1, 1)"),
        (
            np.empty((0, 2), dtype=object),
            "X: expected at least one sample and one feature, got (0, 2)",
        ),
        (
            np.empty((2, 0), dtype=object),
            "X: expected at least one sample and one feature, got (2, 0)",
        ),
    ],
)
def test_check_object_array_refusals_are_worded_whole(X: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        check_object_array(X)


def whole(message: str) -> str:
    return "^" + re.escape(message) + "$"


def test_check_object_array_numbers_become_float64_and_text_objects() -> None:
    for given in (
        np.array([[True, False]]),
        np.array([[1, 2]]),
        np.array([[1, 2]], dtype=np.uint8),
    ):
        out = check_object_array(given)
        assert out.dtype == np.float64 and out.tolist() == given.astype(float).tolist()
    text = check_object_array(np.array([["a", "b"]]))
    assert text.dtype == object and text.tolist() == [["a", "b"]]
    mixed = check_object_array([["a", None]])
    assert mixed.dtype == object and mixed[0, 1] is None
    with pytest.raises(
        ValueError,
        match=whole(
            "Z: expected a 2-D array, got shape (0,) "
            "(reshape a single feature with x.reshape(-1, 1))"
        ),
    ):
        check_object_array([], name="Z")


def test_missing_mask_on_numbers_is_isnan() -> None:
    X = np.array([[1.0, np.nan], [np.inf, 0.0]])
    assert missing_mask(X).tolist() == [[False, True], [False, False]]
    obj = np.array([[None, "a", np.nan, 0.0]], dtype=object)
    mask = missing_mask(obj)
    assert mask.dtype == np.bool_ and mask.tolist() == [[True, False, True, False]]


def test_default_feature_names() -> None:
    assert default_feature_names(3, None) == ["x0", "x1", "x2"]
    assert default_feature_names(2, ("a", 5)) == ["a", "5"]  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=whole("input_features has 1 names, but the fit saw 2 columns")
    ):
        default_feature_names(2, ["a"])


class Spy(ValidatedTransform):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def _transform(self, X: Any) -> Any:
        self.calls.append("fast")
        return np.asarray(X) + 1

    def transform(self, X: Any) -> Any:
        self.calls.append("public")
        return (np.asarray(X) + 2).tolist()


class Foreign:
    def transform(self, X: Any) -> Any:
        return [[9.0]]


def test_transform_validated_takes_the_fast_path_only_for_ours_on_2d_arrays() -> None:
    spy = Spy()
    assert transform_validated(spy, np.array([[1.0]])).tolist() == [[2.0]]
    out = transform_validated(spy, [[1.0]])
    assert isinstance(out, np.ndarray) and out.tolist() == [[3.0]]
    assert transform_validated(spy, np.array([1.0])).tolist() == [3.0]
    assert spy.calls == ["fast", "public", "public"]
    out = transform_validated(Foreign(), np.array([[1.0]]))
    assert isinstance(out, np.ndarray) and out.tolist() == [[9.0]]
    with pytest.raises(NotImplementedError):
        ValidatedTransform()._transform(np.zeros((1, 1)))


def test_the_template_records_the_width_and_refuses_another() -> None:
    s = StandardScaler()
    out = s.fit_transform([[1.0, 2.0], [3.0, 6.0]])
    assert s.n_features_in_ == 2 and out.tolist() == [[-1.0, -1.0], [1.0, 1.0]]
    assert StandardScaler().fit([[1.0, 2.0, 3.0]]).n_features_in_ == 3
    with pytest.raises(
        ValueError, match=whole("X has 1 columns, but StandardScaler was fitted on 2")
    ):
        s.transform([[1.0]])
    assert s.get_feature_names_out() == ["x0", "x1"]
    assert s.get_feature_names_out(["a", "b"]) == ["a", "b"]
    with pytest.raises(NotImplementedError):
        Transformer().fit([[1.0]])


# --- SimpleImputer ----------------------------------------------------------------------------


def test_imputer_refusals_are_worded_whole() -> None:
    with pytest.raises(
        ValueError,
        match=whole("strategy must be 'mean', 'median', 'most_frequent' or 'constant', got 'mode'"),
    ):
        SimpleImputer(strategy="mode").fit([[1.0]])  # type: ignore[arg-type]
    for strategy in ("mean", "median", "most_frequent"):
        with pytest.raises(
            ValueError,
            match=whole(
                f"X: column 1 is entirely missing at fit; strategy={strategy!r} "
                "cannot learn from it"
            ),
        ):
            SimpleImputer(strategy=strategy).fit([[1.0, np.nan, np.nan]])
    with pytest.raises(
        ValueError, match=whole("fill_value='a' is not a number but the columns are numeric")
    ):
        SimpleImputer(strategy="constant", fill_value="a").fit([[1.0]])
    with pytest.raises(ValueError, match=whole("X: column 1 mixes values that cannot be compared")):
        SimpleImputer(strategy="most_frequent").fit(np.array([["a", "a"], ["b", 1]], dtype=object))


def test_imputer_median_and_mean_read_numbers_only() -> None:
    X = [[1.0, 10.0], [np.nan, 20.0], [5.0, np.nan], [6.0, 60.0]]
    assert SimpleImputer(strategy="median").fit(X).statistics_.tolist() == [5.0, 20.0]
    assert SimpleImputer(strategy="mean").fit(X).statistics_.tolist() == [4.0, 30.0]
    with pytest.raises(ValueError, match=whole("X: column 0 holds a non-numeric value 'a'")):
        SimpleImputer(strategy="median").fit(np.array([["a"]], dtype=object))


def test_imputer_constant_fills_by_kind() -> None:
    num = SimpleImputer(strategy="constant").fit(np.array([[np.nan], [1.0]]))
    assert num.statistics_.dtype == np.float64 and num.statistics_.tolist() == [0.0]
    assert num.transform([[np.nan]]).tolist() == [[0.0]]
    text = SimpleImputer(strategy="constant").fit(np.array([[None], ["a"]], dtype=object))
    assert text.statistics_.tolist() == ["missing_value"]
    assert SimpleImputer(strategy="constant", fill_value=np.float32(2)).fit(
        [[1.0]]
    ).statistics_.tolist() == [2.0]
    assert SimpleImputer(strategy="constant", fill_value=3).fit([[1.0]]).statistics_.tolist() == [
        3.0
    ]
    every = SimpleImputer(strategy="constant", fill_value="z").fit(
        np.array([[None, None]], dtype=object)
    )
    assert every.transform(np.array([[None, "q"]], dtype=object)).tolist() == [["z", "q"]]


def test_imputer_transform_copies_and_converts() -> None:
    imp = SimpleImputer().fit([[1.0], [3.0]])
    X = np.array([[5.0]])
    out = imp.transform(X)
    assert out is not X and out.tolist() == [[5.0]]
    out[0, 0] = 0.0
    assert X[0, 0] == 5.0
    assert imp._transform(np.array([[np.nan], [1.0]])).tolist() == [[2.0], [1.0]]
    assert imp._transform(np.array([[None]], dtype=object)).tolist() == [[2.0]]
    cat = SimpleImputer(strategy="most_frequent").fit(np.array([["a"], ["a"], ["b"]], dtype=object))
    converted = cat._transform(np.array([[np.nan], [1.0]]))
    assert converted.tolist() == [["a"], [1.0]]


def test_imputer_fold_columns_and_from_statistics() -> None:
    imp = SimpleImputer(strategy="median").fit([[1.0, 4.0], [3.0, 8.0]])
    assert imp.fold_columns(2) == [(("fill", 2.0),), (("fill", 6.0),)]
    for bad_width in (1, 3):
        with pytest.raises(
            ValueError, match=whole("SimpleImputer(strategy='median') holds no number per column")
        ):
            imp.fold_columns(bad_width)
    cat = SimpleImputer(strategy="most_frequent").fit(np.array([["a"]], dtype=object))
    with pytest.raises(
        ValueError,
        match=whole("SimpleImputer(strategy='most_frequent') holds no number per column"),
    ):
        cat.fold_columns(1)
    built = SimpleImputer.from_statistics([1.5, 2.5], "mean")
    assert built.strategy == "mean" and built.n_features_in_ == 2
    assert isinstance(built.statistics_, np.ndarray)
    assert built.transform([[np.nan, 1.0]]).tolist() == [[1.5, 1.0]]
    with pytest.raises(Exception, match="not fitted"):
        SimpleImputer().fold_columns(1)


# --- scalers ----------------------------------------------------------------------------------


def test_standard_scaler_near_constant_columns_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    columns = []
    for mean in (0.0, 1.0, 1e4, 1e8, -1e12):
        for spread in (0.0, 1e-14, 1e-12, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-4, 1.0):
            columns.append(mean + spread * rng.normal(size=30))
    X = np.column_stack(columns)
    ours, ref = StandardScaler().fit(X), sk_pre.StandardScaler().fit(X)
    # the same columns are taken as constant; the others' scales agree to the rounding of
    # two variance algorithms on columns whose spread is a few ulps of their mean
    np.testing.assert_array_equal(ours.scale_ == 1.0, ref.scale_ == 1.0)
    assert 0 < (ours.scale_ == 1.0).sum() < X.shape[1] - 10
    np.testing.assert_allclose(ours.scale_, ref.scale_, rtol=1e-3)
    assert ours.n_samples_seen_.tolist() == [30] * X.shape[1]


def test_standard_scaler_fold_columns_and_from_moments() -> None:
    X = np.array([[1.0, 10.0], [3.0, np.nan], [5.0, 30.0]])
    s = StandardScaler().fit(X)
    assert s.n_samples_seen_.tolist() == [3, 2]
    mean, scale = s.mean_.tolist(), s.scale_.tolist()
    assert s.fold_columns(2) == [
        (("sub", mean[0]), ("div", scale[0])),
        (("sub", mean[1]), ("div", scale[1])),
    ]
    assert StandardScaler(with_mean=False).fit(X).fold_columns(1) == [(("div", scale[0]),)]
    assert StandardScaler(with_std=False).fit(X).fold_columns(1) == [(("sub", mean[0]),)]
    assert StandardScaler(with_mean=False, with_std=False).fit(X).fold_columns(2) == [(), ()]
    built = StandardScaler.from_moments(3, [3.0, 1.0], [8.0 / 3.0, 0.0])
    assert built.n_features_in_ == 2 and built.n_samples_seen_.tolist() == [3, 3]
    assert built.var_.dtype == np.float64 and built.mean_.dtype == np.float64
    assert built.scale_.tolist() == [math.sqrt(8.0 / 3.0), 1.0]
    np.testing.assert_allclose(built.transform([[3.0, 2.0]]), [[0.0, 1.0]])
    counts = np.array([3, 3])
    again = StandardScaler.from_moments(counts, [3, 1], [1, 1])
    again.n_samples_seen_[0] = 7
    assert counts.tolist() == [3, 3]
    assert again.mean_.dtype == np.float64 and again.var_.dtype == np.float64


def test_standard_scaler_without_mean_copies() -> None:
    s = StandardScaler(with_mean=False, with_std=False).fit([[1.0], [3.0]])
    X = np.array([[5.0]])
    out = s.transform(X)
    out[0, 0] = 0.0
    assert X[0, 0] == 5.0 and out.dtype == np.float64


def test_min_max_scaler_range_rule_and_fold() -> None:
    with pytest.raises(
        ValueError, match=whole("feature_range must be (lo, hi) with lo < hi, got (1.0, 1.0)")
    ):
        MinMaxScaler(feature_range=(1.0, 1.0)).fit([[1.0]])
    with pytest.raises(
        ValueError,
        match=whole("X: column 0 is entirely missing at fit; MinMaxScaler cannot learn from it"),
    ):
        MinMaxScaler().fit([[np.nan], [np.nan]])
    X = np.array([[1.0, 5.0], [3.0, 5.0 + 1e-16], [2.0, np.nan]])
    m = MinMaxScaler(feature_range=(-1.0, 1.0)).fit(X)
    ref = sk_pre.MinMaxScaler(feature_range=(-1.0, 1.0)).fit(X)
    np.testing.assert_allclose(m.scale_, ref.scale_, rtol=1e-12)
    np.testing.assert_allclose(m.min_, ref.min_, rtol=1e-12)
    assert m.data_range_.tolist() == [2.0, 0.0] or m.data_range_[1] < 1e-15
    assert m.fold_columns(2) == [
        (("mul", float(m.scale_[0])), ("add", float(m.min_[0]))),
        (("mul", float(m.scale_[1])), ("add", float(m.min_[1]))),
    ]
    assert m.transform([[2.0, 5.0]]).dtype == np.float64
    edge = MinMaxScaler().fit(np.array([[0.0], [10 * np.finfo(np.float64).eps]]))
    assert edge.scale_[0] == 1.0 / (10 * np.finfo(np.float64).eps)


def test_standard_scaler_refuses_an_all_missing_column_by_name() -> None:
    with pytest.raises(
        ValueError,
        match=whole("X: column 0 is entirely missing at fit; StandardScaler cannot learn from it"),
    ):
        StandardScaler().fit([[np.nan, 1.0], [np.nan, 2.0]])


# --- encoders ---------------------------------------------------------------------------------


def test_encoder_refusals_are_worded_whole() -> None:
    with pytest.raises(
        ValueError,
        match=whole("X: column 1 mixes values that cannot be compared (e.g. strings and numbers)"),
    ):
        OneHotEncoder().fit(np.array([["a", "a"], ["b", 1]], dtype=object))
    with pytest.raises(ValueError, match=whole("categories has 1 lists for 2 columns")):
        OneHotEncoder(categories=[["a"]]).fit(np.array([["a", "b"]], dtype=object))


def test_encoders_lay_out_offsets_and_indexes() -> None:
    X = np.array([["b", "y"], ["a", "x"], ["c", "x"]], dtype=object)
    enc = OneHotEncoder().fit(X)
    assert enc.offsets_.tolist() == [0, 3, 5] and enc.offsets_.dtype == np.intp
    assert enc.category_index_ == [{"a": 0, "b": 1, "c": 2}, {"x": 3, "y": 4}]
    index = enc.fold_columns(2)
    index[0]["zz"] = 9
    assert "zz" not in enc.category_index_[0]
    built = OneHotEncoder.from_categories([["a", "b"], ["x"]])
    assert built.n_features_in_ == 2 and built.offsets_.tolist() == [0, 2, 3]
    assert built.categories_[0].dtype == object
    assert built.transform(np.array([["b", "x"]], dtype=object)).tolist() == [[0.0, 1.0, 1.0]]
    nums = OneHotEncoder(categories=[[1.0, 2.0]]).fit(np.array([[1.0]]))
    assert nums.categories_[0].dtype == np.float64


def test_ordinal_encoder_matches_sklearn_on_several_columns() -> None:
    train = np.array([["b", "y"], ["a", "x"], ["c", "x"], ["a", "z"]], dtype=object)
    test = np.array([["c", "z"], ["q", "x"], [None, "y"], ["a", None]], dtype=object)
    ours = OrdinalEncoder().fit(train)
    ref = sk_pre.OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan).fit(train)
    got = ours.transform(test)
    expected = ref.transform(np.where(test == None, "?", test))  # noqa: E711
    np.testing.assert_array_equal(got, expected)
    assert got.shape == (4, 2) and got.dtype == np.float64
    assert ours.get_feature_names_out() == ["x0", "x1"]
    assert ours.get_feature_names_out(["h", "k"]) == ["h", "k"]


# --- polynomial, log, age ---------------------------------------------------------------------


def test_polynomial_degree_rule() -> None:
    for bad in (-1, 2.0, "2"):
        with pytest.raises(
            ValueError, match=whole(f"degree must be a non-negative integer, got {bad!r}")
        ):
            PolynomialFeatures(degree=bad).fit([[1.0, 2.0]])  # type: ignore[arg-type]
    zero = PolynomialFeatures(degree=0, include_bias=True).fit([[1.0, 2.0]])
    assert zero.transform([[3.0, 4.0]]).tolist() == [[1.0]] and zero.n_output_features_ == 1
    assert zero.get_feature_names_out() == ["1"]
    big = PolynomialFeatures(degree=np.int64(2)).fit([[2.0, 3.0]])  # type: ignore[arg-type]
    assert big.transform([[2.0, 3.0]]).tolist() == [[2.0, 3.0, 4.0, 6.0, 9.0]]
    assert big.terms_ == [(0,), (1,), (0, 0), (0, 1), (1, 1)]
    assert big.get_feature_names_out(["a", "b"]) == ["a", "b", "a^2", "a b", "b^2"]
    with pytest.raises(
        ValueError,
        match=whole("X: column 0 holds missing or infinite values (1 of 1); impute them first"),
    ):
        PolynomialFeatures().fit([[np.nan]])


def test_log_transformer_columns_rule() -> None:
    X = np.array([[0.0, 1.0], [3.0, 7.0]])
    for bad in ([2], [-3], [0, 5]):
        with pytest.raises(
            ValueError,
            match=whole(
                f"columns {[c for c in bad if not -2 <= c < 2]} out of range for X with 2 columns"
            ),
        ):
            LogTransformer(columns=bad).fit(X)
    t = LogTransformer(columns=[-2, 0, 1.0]).fit(X)  # type: ignore[list-item]
    assert t.columns_.tolist() == [0, 1] and t.columns_.dtype == np.intp
    last = LogTransformer(columns=[-1]).fit(X)
    assert last.columns_.tolist() == [1]
    assert last.fold_columns(2) == [(), (("log1p",),)]
    assert LogTransformer().fit(X).fold_columns(2) == [(("log1p",),), (("log1p",),)]
    assert last.get_feature_names_out(["a", "b"]) == ["a", "log1p(b)"]
    out = last.transform(X)
    assert out.tolist() == [[0.0, math.log1p(1.0)], [3.0, math.log1p(7.0)]]


def test_log_transformer_domain_message_names_the_logged_column_and_its_min() -> None:
    X = np.array([[-5.0, 0.0, 1.0], [1.0, 2.0, 1.0]])
    t = LogTransformer(columns=[1, 2]).fit(X)
    with pytest.raises(
        ValueError,
        match=whole("X: column 2 holds values <= -1 (min -3.0); log1p is undefined there"),
    ):
        t.transform(np.array([[-9.0, 0.0, -1.0], [-9.0, np.nan, -3.0]]))
    with pytest.raises(
        ValueError,
        match=whole("X: column 1 holds values <= -1 (min -2.0); log1p is undefined there"),
    ):
        LogTransformer().fit(np.array([[0.0, -2.0, 0.0], [0.0, 0.0, -4.0]]))
    near = LogTransformer().fit_transform(np.array([[-0.5]]))
    assert near.tolist() == [[math.log1p(-0.5)]]


def test_age_from_year_rules() -> None:
    with pytest.raises(
        ValueError,
        match=whole(
            "X: column 1 is entirely missing at fit; AgeFromYear(reference_year=None) cannot "
            "learn from it"
        ),
    ):
        AgeFromYear().fit([[2000.0, np.nan]])
    given = AgeFromYear(reference_year=2010).fit([[np.nan, np.nan]])
    assert isinstance(given.reference_year_, float) and given.reference_year_ == 2010.0
    assert given.fold_columns(2) == [(("rsub", 2010.0),), (("rsub", 2010.0),)]
    learned = AgeFromYear().fit([[1990.0, np.nan], [2001.0, 1995.0]])
    assert learned.reference_year_ == 2001.0
    assert learned.transform([[2001.0, 1950.0]]).tolist() == [[0.0, 51.0]]
    assert learned.get_feature_names_out() == ["age(x0)", "age(x1)"]


# --- fitted state -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("est", "call"),
    [
        (StandardScaler(), lambda e: e.transform([[1.0]])),
        (StandardScaler(), lambda e: e.get_feature_names_out()),
        (StandardScaler(), lambda e: e.fold_columns(1)),
        (MinMaxScaler(), lambda e: e.fold_columns(1)),
        (SimpleImputer(), lambda e: e.fold_columns(1)),
        (OneHotEncoder(), lambda e: e.fold_columns(1)),
        (OneHotEncoder(), lambda e: e.get_feature_names_out()),
        (OrdinalEncoder(), lambda e: e.get_feature_names_out()),
        (PolynomialFeatures(), lambda e: e.get_feature_names_out()),
        (LogTransformer(), lambda e: e.fold_columns(1)),
        (LogTransformer(), lambda e: e.get_feature_names_out()),
        (AgeFromYear(), lambda e: e.fold_columns(1)),
        (AgeFromYear(), lambda e: e.get_feature_names_out()),
    ],
)
def test_each_method_asks_for_the_attribute_it_reads(est: Any, call: Any) -> None:
    """An attribute ending in '_' that is not the one a method reads does not make it fitted."""
    est.other_ = 1
    with pytest.raises(
        NotFittedError,
        match=whole(f"this {type(est).__name__} instance is not fitted yet; call 'fit' first"),
    ):
        call(est)


@pytest.mark.parametrize(
    "est",
    [
        AgeFromYear(reference_year=2000),
        MinMaxScaler(),
        StandardScaler(with_mean=False, with_std=False),
    ],
)
def test_the_validated_path_returns_float64_even_from_an_object_array(est: Any) -> None:
    """A composite hands _transform a block it has checked; numbers held as objects (a foreign
    step's output) still come out as float64."""
    est.fit([[1990.0], [2000.0]])
    out = est._transform(np.array([[1995.0]], dtype=object))
    assert out.dtype == np.float64 and out.tolist() == est.transform([[1995.0]]).tolist()


def test_log_transformer_with_no_columns_logs_nothing() -> None:
    t = LogTransformer(columns=[]).fit([[-5.0, 2.0]])
    assert t.columns_.dtype == np.intp and t.columns_.size == 0
    assert t.transform([[-7.0, 3.0]]).tolist() == [[-7.0, 3.0]]
    assert t.get_feature_names_out() == ["x0", "x1"]


def test_log_transformer_on_some_columns_leaves_the_callers_array_alone() -> None:
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = LogTransformer(columns=[0]).fit(X)
    out = t.transform(X)
    assert X.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert out.tolist() == [[math.log1p(1.0), 2.0], [math.log1p(3.0), 4.0]]
    ints = t._transform(np.array([[1, 2]]))  # a foreign step's integers, on the validated path
    assert ints.dtype == np.float64 and ints.tolist() == [[math.log1p(1.0), 2.0]]


@pytest.mark.parametrize(
    ("n", "mean", "var"), [(2**52, 0.0, 4.0), (2**52, 0.0, 0.0), (3, 0.0, 0.0)]
)
def test_a_variance_on_the_rounding_bound_counts_as_constant(
    n: int, mean: float, var: float
) -> None:
    """At n = 2**52, n·eps = 1, so the bound n·eps·var + (n·mean·eps)² equals var itself."""
    from sklearn.preprocessing._data import _is_constant_feature

    s = StandardScaler.from_moments(n, [mean], [var])
    assert (s.scale_[0] == 1.0) == bool(
        _is_constant_feature(np.array([var]), np.array([mean]), n)[0]
    )
    assert s.scale_.tolist() == [1.0]


def test_a_std_below_ten_eps_counts_as_zero() -> None:
    """scikit-learn's _handle_zeros_in_scale: a scale under 10·eps (2.22e-16·10) becomes 1."""
    kept = StandardScaler.from_moments(3, [0.0], [2.3e-15**2])
    assert kept.scale_[0] == pytest.approx(2.3e-15, rel=1e-12)
    assert StandardScaler.from_moments(3, [0.0], [2.1e-15**2]).scale_.tolist() == [1.0]


def test_an_imputer_fitted_on_text_keeps_numbers_as_objects() -> None:
    imp = SimpleImputer(strategy="most_frequent").fit(np.array([["a"], ["b"], ["a"]], dtype=object))
    out = imp.transform(np.array([[1.5], [2.0]]))
    assert out.dtype == object and out.tolist() == [[1.5], [2.0]]
    filled = imp.transform(np.array([[np.nan], [2.0]]))
    assert filled.dtype == object and filled.tolist() == [["a"], [2.0]]


def test_polynomial_defaults_are_degree_two_without_bias() -> None:
    poly = PolynomialFeatures()
    assert (poly.degree, poly.interaction_only, poly.include_bias) == (2, False, False)
    assert poly.fit([[1.0, 2.0]]).n_output_features_ == 5


def test_given_categories_take_the_columns_dtype() -> None:
    enc = OneHotEncoder(categories=[[1, 2]]).fit(np.array([[1.0]]))
    assert enc.categories_[0].dtype == np.float64
    assert enc.get_feature_names_out() == ["x0_1.0", "x0_2.0"]
    text = OneHotEncoder(categories=[["a", "b"]]).fit(np.array([["a"]], dtype=object))
    assert text.categories_[0].dtype == object
