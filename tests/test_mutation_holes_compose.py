"""model.compose: what mutation testing found the other tests let through (issue 20).

ColumnTransformer's layout (which output columns come from which input, in what order) is
stated for small tables whose answer can be written by hand, every refusal is worded whole
(anchored), and TransformedTargetRegressor's domain ends are tested on both sides.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from sklearn import linear_model as sk_linear
from sklearn import preprocessing as sk_pre

from model.base import BaseEstimator, NotFittedError, clone
from model.compose import (
    ColumnTransformer,
    TransformedTargetRegressor,
    _as_categories,
    _as_category,
    _rename_columns,
    _source,
)
from model.pipeline import Pipeline
from model.preprocessing import (
    LogTransformer,
    OneHotEncoder,
    PolynomialFeatures,
    SimpleImputer,
    StandardScaler,
)


def whole(message: str) -> str:
    return "^" + re.escape(message) + "$"


def table() -> dict[str, Any]:
    return {
        "a": np.array([1.0, 2.0, 3.0]),
        "b": np.array([10.0, np.nan, 30.0]),
        "c": np.array(["x", "y", "x"], dtype=object),
        "d": np.array([5.0, 6.0, 7.0]),
    }


def test_a_number_given_as_a_category_is_written_as_its_string() -> None:
    assert _as_category(None) is None
    assert _as_category(math.nan) is None
    assert _as_category(60.0) == "60"
    assert _as_category(np.float32(2.0)) == "2"
    assert _as_category(2.5) == "2.5"
    assert _as_category(7) == "7"
    assert _as_category("RL") == "RL"
    out = _as_categories(np.array([20.0, np.nan, 1.5]))
    assert out.dtype == object and out.tolist() == ["20", None, "1.5"]


def test_rename_columns_and_source() -> None:
    names = ["lot", "area"]
    assert _rename_columns("column 1 and column 0, not column 2", names) == (
        "column 'area' and column 'lot', not column 2"
    )
    assert _rename_columns("columns 1; column 12x; xcolumn 1", names) == (
        "columns 1; column 12x; xcolumn 1"
    )
    assert _source("a_b_x", ["a", "a_b"]) == "a_b"
    assert _source("a_b_x", ["a_b", "a"]) == "a_b"
    assert _source("a", ["a", "ab"]) == "a"
    assert _source("ab", ["a"]) == ""
    assert _source("a_", ["a"]) == "a"


# --- the spec --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transformers", "remainder", "message"),
    [
        (
            [("s", StandardScaler())],
            "drop",
            "ColumnTransformer: each transformer must be (name, transformer, [columns]), "
            "got ('s', StandardScaler(with_mean=True, with_std=True))",
        ),
        (
            [["s", "passthrough", ["a"]]],
            "drop",
            "ColumnTransformer: each transformer must be (name, transformer, [columns]), "
            "got ['s', 'passthrough', ['a']]",
        ),
        (
            [("s", "passthrough", "a")],
            "drop",
            "ColumnTransformer: transformer 's' needs a list of column names, got 'a'",
        ),
        (
            [("s", "passthrough", ["a", 1])],
            "drop",
            "ColumnTransformer: transformer 's' needs a list of column names, got ['a', 1]",
        ),
        (
            [("s", "passthrough", ["a"]), ("s", "passthrough", ["d"])],
            "drop",
            "ColumnTransformer transformer names must be unique; 's' appears twice",
        ),
        (
            [("s", "passthrough", ["a"])],
            "keep",
            "remainder must be 'drop' or 'passthrough', got 'keep'",
        ),
        (
            [("s", "passthrough", ["a", "z", "y"])],
            "drop",
            "X: missing required column(s) ['z', 'y']; got ['a', 'b', 'c', 'd']",
        ),
        (
            [("p", "passthrough", ["a", "c"])],
            "drop",
            "ColumnTransformer: 'p' passes through categorical column(s) ['c']; encode them "
            "(e.g. OneHotEncoder) to get numbers",
        ),
        (
            [("p", "passthrough", ["a"])],
            "passthrough",
            "ColumnTransformer: 'remainder' passes through categorical column(s) ['c']; encode "
            "them (e.g. OneHotEncoder) to get numbers",
        ),
        (
            [("g", "drop", ["a"]), ("e", StandardScaler(), [])],
            "drop",
            "ColumnTransformer: every column was dropped; nothing to output",
        ),
        (
            [("s", StandardScaler(), ["a", "b"]), ("m", SimpleImputer(), ["c"])],
            "drop",
            "ColumnTransformer: transformer 'm': X: column 'c' holds a non-numeric value 'x'",
        ),
    ],
)
def test_spec_refusals_are_worded_whole(transformers: Any, remainder: Any, message: str) -> None:
    with pytest.raises(ValueError, match=whole(message)):
        ColumnTransformer(transformers, remainder=remainder).fit(table())


class Shape:
    """A foreign transformer returning a fixed array, whatever it is given."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        return self.out

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"out": self.out}


@pytest.mark.parametrize("out", [np.zeros((2, 1)), np.zeros(3), np.zeros((3, 1, 1))])
def test_a_block_of_the_wrong_shape_is_refused(out: Any) -> None:
    with pytest.raises(
        ValueError,
        match=whole(
            f"ColumnTransformer: transformer 'bad' returned shape {out.shape}; expected a 2-D "
            f"array with one row per input row"
        ),
    ):
        ColumnTransformer([("bad", Shape(out), ["a"])]).fit(table())


def test_fit_returns_self_and_lays_the_blocks_out() -> None:
    ct = ColumnTransformer(
        [
            ("cat", OneHotEncoder(), ["c"]),
            ("gone", "drop", ["b"]),
            ("num", StandardScaler(), ["d", "a"]),
        ],
        remainder="passthrough",
    )
    assert ct.fit(table()) is ct
    assert ct.feature_names_in_ == ["a", "b", "c", "d"]
    assert ct.column_kinds_ == {"c": "categorical", "b": "numeric", "d": "numeric", "a": "numeric"}
    assert [name for name, _, _ in ct.transformers_] == ["cat", "num"]
    assert ct.output_slices_ == [(0, 2), (2, 4)] and ct.n_features_out_ == 4
    assert ct.numeric_blocks_ == [False, True]
    assert ct.required_columns_ == ["c", "d", "a"]
    assert ct.transformers[0][1] is not ct.transformers_[0][1]
    assert not hasattr(ct.transformers[0][1], "categories_")
    out = ct.transform({"a": [2.0], "c": ["y"], "d": [6.0]})
    assert out.tolist() == [[0.0, 1.0, 0.0, 0.0]]
    rest = ColumnTransformer([("n", "passthrough", ["a"])], remainder="passthrough")
    rest.fit({"a": [1.0, 2.0], "d": [3.0, 4.0]})
    assert rest.get_feature_names_out() == ["n__a", "remainder__d"]
    assert rest.transform({"a": [5.0], "d": [6.0]}).tolist() == [[5.0, 6.0]]
    none_left = ColumnTransformer([("n", "passthrough", ["a"])], remainder="passthrough")
    assert none_left.fit_transform({"a": [1.0]}).tolist() == [[1.0]]
    assert [n for n, _, _ in none_left.transformers_] == ["n"]


def test_transform_names_the_block_and_column_it_refuses() -> None:
    ct = ColumnTransformer(
        [("num", StandardScaler(), ["a", "d"]), ("cat", OneHotEncoder(), ["c"])]
    ).fit(table())
    with pytest.raises(
        ValueError, match=whole("X: column 'd' holds infinite values (1 of 1); impute them first")
    ):
        ct.transform({"a": [1.0], "d": [np.inf], "c": ["x"]})
    with pytest.raises(
        ValueError, match=whole("X: missing required column(s) ['c']; got ['a', 'd']")
    ):
        ct.transform({"a": [1.0], "d": [1.0]})
    with pytest.raises(ValueError, match=whole("X: column 'd' holds a non-numeric value 'q'")):
        ct.transform({"a": [1.0], "d": ["q"], "c": ["x"]})
    log = ColumnTransformer([("log", LogTransformer(), ["a", "d"])]).fit(table())
    with pytest.raises(
        ValueError,
        match=whole(
            "ColumnTransformer: transformer 'log': X: column 'd' holds values <= -1 (min -2.0); "
            "log1p is undefined there"
        ),
    ):
        log.transform({"a": [1.0], "d": [-2.0]})
    with pytest.raises(NotFittedError):
        ColumnTransformer([("n", "passthrough", ["a"])]).transform(table())


def test_from_fitted_rebuilds_the_same_transform() -> None:
    scaler = StandardScaler().fit([[1.0], [3.0]])
    enc = OneHotEncoder.from_categories([["x", "y"]])
    ct = ColumnTransformer.from_fitted(
        [("n", scaler, ("a",)), ("c", enc, ["c"])], {"a": "numeric", "c": "categorical"}, [1, 2]
    )
    assert ct.feature_names_in_ == ["a", "c"] and ct.required_columns_ == ["a", "c"]
    assert ct.transformers_[0][2] == ["a"]
    assert ct.transform({"a": [3.0], "c": ["y"]}).tolist() == [[1.0, 0.0, 1.0]]
    assert ct.n_features_out_ == 3 and ct.output_slices_ == [(0, 1), (1, 3)]


# --- describing the blocks ---------------------------------------------------------------------


def fitted_ct() -> ColumnTransformer:
    num = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    return ColumnTransformer(
        [("num", num, ["a", "b"]), ("cat", OneHotEncoder(), ["c"]), ("p", "passthrough", ["d"])]
    ).fit(table())


def test_fold_terms_are_each_input_columns_steps_and_output() -> None:
    ct = fitted_ct()
    scale = ct.transformers_[0][1].named_steps["scale"]
    terms = ct.fold_terms()
    assert [(col, out) for col, _, out, _ in terms] == [("a", 0), ("b", 1), ("c", 2), ("d", 4)]
    assert terms[0][1] == (
        ("fill", 2.0),
        ("sub", float(scale.mean_[0])),
        ("div", float(scale.scale_[0])),
    )
    assert terms[1][1][0] == ("fill", 20.0)
    assert terms[2][1] == {"x": 0, "y": 1} and terms[2][3] is _as_category
    assert terms[3][1] == () and terms[0][3] is None and terms[3][3] is None


class Describe:
    def __init__(self, columns: Any, names: Any = None) -> None:
        self.columns = columns
        self.names = names

    def fold_columns(self, width: int) -> Any:
        return self.columns

    def get_feature_names_out(self, input_features: Any = None) -> Any:
        return self.names


def test_fold_terms_refuse_a_block_that_folds_as_the_other_kind_or_width() -> None:
    ct = ColumnTransformer.from_fitted([("n", Describe([{"x": 0}]), ["a"])], {"a": "numeric"}, [1])
    with pytest.raises(
        ValueError, match=whole("block 'n': numeric column 'a' folds as the other kind")
    ):
        ct.fold_terms()
    ct = ColumnTransformer.from_fitted([("c", Describe([()]), ["a"])], {"a": "categorical"}, [1])
    with pytest.raises(
        ValueError, match=whole("block 'c': categorical column 'a' folds as the other kind")
    ):
        ct.fold_terms()
    ct = ColumnTransformer.from_fitted(
        [("c", Describe([{"x": 0}]), ["a"])], {"a": "categorical"}, [2]
    )
    with pytest.raises(ValueError, match=whole("block 'c': its columns fold to 1 outputs, not 2")):
        ct.fold_terms()
    ct = ColumnTransformer.from_fitted([("n", Describe([()]), ["a"])], {"a": "numeric"}, [2])
    with pytest.raises(ValueError, match=whole("block 'n': its columns fold to 1 outputs, not 2")):
        ct.fold_terms()
    two = ColumnTransformer.from_fitted(
        [("c", Describe([{"x": 0}, {"p": 0, "q": 1}]), ["a", "b"])],
        {"a": "categorical", "b": "categorical"},
        [3],
    )
    assert [(col, out) for col, _, out, _ in two.fold_terms()] == [("a", 0), ("b", 0)]


def test_output_columns_name_each_outputs_input() -> None:
    assert fitted_ct().output_columns() == ["a", "b", "c", "c", "d"]
    two = ColumnTransformer.from_fitted(
        [("c", Describe([{"x": 0}, {"p": 2, "q": 1}]), ["a", "b"])],
        {"a": "categorical", "b": "categorical"},
        [3],
    )
    assert two.output_columns() == ["a", "b", "b"]
    foreign = ColumnTransformer(
        [("o", sk_pre.OneHotEncoder(sparse_output=False), ["c", "c_d"])]
    ).fit({"c": np.array(["1", "2"], dtype=object), "c_d": np.array(["e", "e"], dtype=object)})
    assert foreign.output_columns() == ["c", "c", "c_d"]


def test_output_columns_refuse_outputs_from_no_single_input() -> None:
    poly = ColumnTransformer([("p", PolynomialFeatures(), ["a", "d"])]).fit(table())
    with pytest.raises(
        ValueError,
        match=whole(
            "block 'p' (PolynomialFeatures): its 5 outputs do not each come from one of its "
            "input columns ['a', 'd']"
        ),
    ):
        poly.output_columns()
    mixed = ColumnTransformer.from_fitted(
        [("m", Describe([(), {"x": 1}], names=["a", "b_x", "zz"]), ["a", "b"])],
        {"a": "numeric", "b": "categorical"},
        [3],
    )
    with pytest.raises(
        ValueError,
        match=whole(
            "block 'm' (Describe): its 3 outputs do not each come from one of its input "
            "columns ['a', 'b']"
        ),
    ):
        mixed.output_columns()
    short = ColumnTransformer.from_fitted(
        [("m", Describe([(), {"x": 1}], names=["a", "b_x"]), ["a", "b"])],
        {"a": "numeric", "b": "categorical"},
        [3],
    )
    with pytest.raises(ValueError, match="its 3 outputs do not each come"):
        short.output_columns()
    named = ColumnTransformer.from_fitted(
        [("m", Describe([(), {"x": 1}], names=["a", "b_x", "b_y"]), ["a", "b"])],
        {"a": "numeric", "b": "categorical"},
        [3],
    )
    assert named.output_columns() == ["a", "b", "b"]


def test_feature_names_of_passthrough_and_transformers() -> None:
    assert fitted_ct().get_feature_names_out() == [
        "num__a",
        "num__b",
        "cat__c_x",
        "cat__c_y",
        "p__d",
    ]
    with pytest.raises(NotFittedError):
        ColumnTransformer([("n", "passthrough", ["a"])]).get_feature_names_out()


# --- TransformedTargetRegressor ----------------------------------------------------------------


def test_target_domain_ends() -> None:
    X = np.arange(6.0).reshape(3, 2)
    tiny = TransformedTargetRegressor(sk_linear.LinearRegression(), func="log").fit(
        X, [1e-300, 1.0, 2.0]
    )
    assert tiny.regressor_.coef_.shape == (2,)
    with pytest.raises(
        ValueError,
        match=whole("y: func='log' needs every target > 0; 1 value(s) are not (min 0)"),
    ):
        TransformedTargetRegressor(sk_linear.LinearRegression(), func="log").fit(X, [0.0, 1.0, 2.0])
    with pytest.raises(
        ValueError,
        match=whole("y: func='log1p' needs every target > -1; 2 value(s) are not (min -1.5)"),
    ):
        TransformedTargetRegressor(sk_linear.LinearRegression(), func="log1p").fit(
            X, [-1.0, -1.5, 2.0]
        )
    TransformedTargetRegressor(sk_linear.LinearRegression(), func="log1p").fit(X, [-0.5, 0.0, 1.0])
    with pytest.raises(ValueError, match=whole("func must be 'log', 'log1p' or None, got 'sqrt'")):
        TransformedTargetRegressor(sk_linear.LinearRegression(), func="sqrt").fit(  # type: ignore[arg-type]
            X, [1.0, 2.0, 3.0]
        )


def test_target_is_transformed_and_back() -> None:
    X = np.array([[0.0], [1.0], [2.0]])
    y = np.array([1.0, math.e, math.e**2])
    log = TransformedTargetRegressor(sk_linear.LinearRegression(), func="log").fit(X, y)
    np.testing.assert_allclose(log.regressor_.coef_, [1.0], rtol=1e-12)
    np.testing.assert_allclose(log.predict([[3.0]]), [math.e**3], rtol=1e-12)
    assert log.fold_target() == (log.regressor_, "log")
    y1 = np.expm1(np.array([0.0, 2.0, 4.0]))
    log1p = TransformedTargetRegressor(sk_linear.LinearRegression(), func="log1p").fit(X, y1)
    np.testing.assert_allclose(log1p.predict([[3.0]]), [math.expm1(6.0)], rtol=1e-12)
    plain = TransformedTargetRegressor(sk_linear.LinearRegression()).fit(X, [1.0, 3.0, 5.0])
    pred = plain.predict([[3.0]])
    assert pred.dtype == np.float64
    np.testing.assert_allclose(pred, [7.0])
    with pytest.raises(NotFittedError):
        TransformedTargetRegressor(sk_linear.LinearRegression()).fold_target()
    assert clone(plain).get_params()["func"] is None


@pytest.mark.parametrize(
    ("est", "call"),
    [
        (ColumnTransformer([("n", "passthrough", ["a"])]), lambda e: e.transform({"a": [1.0]})),
        (ColumnTransformer([("n", "passthrough", ["a"])]), lambda e: e.fold_terms()),
        (ColumnTransformer([("n", "passthrough", ["a"])]), lambda e: e.output_columns()),
        (ColumnTransformer([("n", "passthrough", ["a"])]), lambda e: e.get_feature_names_out()),
        (TransformedTargetRegressor(sk_linear.LinearRegression()), lambda e: e.predict([[1.0]])),
        (TransformedTargetRegressor(sk_linear.LinearRegression()), lambda e: e.fold_target()),
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


def test_output_columns_refuse_an_index_that_leaves_an_output_unclaimed() -> None:
    ct = ColumnTransformer.from_fitted(
        [("p", "passthrough", ["z"]), ("c", Describe([{"x": 0}]), ["a"])],
        {"z": "numeric", "a": "categorical"},
        [1, 2],
    )
    with pytest.raises(
        ValueError,
        match=whole(
            "block 'c' (Describe): its 2 outputs do not each come from one of its input "
            "columns ['a']"
        ),
    ):
        ct.output_columns()


@pytest.mark.parametrize(
    "call",
    [
        lambda ct: ct.transform({"a": [1.0], "b": [2.0]}),
        lambda ct: ct.fold_terms(),
        lambda ct: ct.output_columns(),
    ],
)
def test_a_layout_with_fewer_widths_than_blocks_is_refused_not_cut_short(call: Any) -> None:
    ct = ColumnTransformer.from_fitted(
        [("a", "passthrough", ["a"]), ("b", "passthrough", ["b"])],
        {"a": "numeric", "b": "numeric"},
        [1],
    )
    with pytest.raises(ValueError, match=r"^zip\(\) argument 2 is shorter than argument 1$"):
        call(ct)


def test_fold_terms_name_the_block_that_cannot_fold() -> None:
    from model.fold import CannotFoldError

    ct = ColumnTransformer([("n", "passthrough", ["a"]), ("p", PolynomialFeatures(), ["d"])]).fit(
        table()
    )
    with pytest.raises(
        CannotFoldError,
        match=whole(
            "block 'p': PolynomialFeatures does not describe its columns (not elementwise)"
        ),
    ):
        ct.fold_terms()


def test_fold_terms_width_message_counts_the_blocks_own_outputs() -> None:
    ct = ColumnTransformer.from_fitted(
        [("p", "passthrough", ["z"]), ("c", Describe([{"x": 0}]), ["a"])],
        {"z": "numeric", "a": "categorical"},
        [1, 2],
    )
    with pytest.raises(ValueError, match=whole("block 'c': its columns fold to 1 outputs, not 2")):
        ct.fold_terms()


class IntegerModel(BaseEstimator):
    """A regressor whose predictions come back as a list of Python ints."""

    def fit(self, X: Any, y: Any) -> IntegerModel:
        self.fitted_ = True
        return self

    def predict(self, X: Any) -> Any:
        return [1] * len(X)


def test_predictions_are_float64_whatever_the_regressor_returns() -> None:
    pred = TransformedTargetRegressor(IntegerModel()).fit([[0.0]], [1.0]).predict([[0.0], [1.0]])
    assert isinstance(pred, np.ndarray) and pred.dtype == np.float64 and pred.tolist() == [1.0, 1.0]


class RecordsY:
    """A foreign transformer that records the y it was fitted with."""

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        self.y = y
        return np.zeros((len(X), 1))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {}


def test_fit_hands_y_to_each_transformer() -> None:
    ct = ColumnTransformer([("r", RecordsY(), ["a"])])
    assert ct.fit(table(), [7, 8, 9]) is ct
    assert ct.transformers_[0][1].y == [7, 8, 9]


def test_an_object_column_reaches_its_transformer_as_given() -> None:
    mixed = {"c": np.array(["a", 2.5, "a"], dtype=object)}
    with pytest.raises(
        ValueError,
        match=whole(
            "ColumnTransformer: transformer 'e': X: column 'c' mixes values that cannot be "
            "compared (e.g. strings and numbers)"
        ),
    ):
        ColumnTransformer([("e", OneHotEncoder(), ["c"])]).fit(mixed)


def test_numeric_blocks_are_checked_at_the_boundary_at_fit() -> None:
    bad = {"a": np.array([1.0, np.inf]), "c": np.array(["x", "y"], dtype=object)}
    message = whole("X: column 'a' holds infinite values (1 of 2); impute them first")
    with pytest.raises(ValueError, match=message):
        ColumnTransformer([("p", "passthrough", ["a"])]).fit(bad)
    with pytest.raises(ValueError, match=message):
        ColumnTransformer([("n", StandardScaler(), ["a"])]).fit(bad)


def test_an_empty_table_with_nothing_to_do_is_refused_by_name() -> None:
    with pytest.raises(
        ValueError, match=whole("ColumnTransformer: every column was dropped; nothing to output")
    ):
        ColumnTransformer([("e", StandardScaler(), [])]).fit({})


def test_the_output_is_float64_whatever_a_block_returns() -> None:
    ct = ColumnTransformer([("i", Shape(np.ones((3, 1), dtype=int)), ["a"])])
    out = ct.fit_transform(table())
    assert out.dtype == np.float64 and out.tolist() == [[1.0], [1.0], [1.0]]
