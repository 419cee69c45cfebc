"""ColumnTransformer and TransformedTargetRegressor against scikit-learn on the Ames data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import compose as sk_compose
from sklearn import impute as sk_impute
from sklearn import linear_model as sk_linear
from sklearn import pipeline as sk_pipeline
from sklearn import preprocessing as sk_pre

from model.base import NotFittedError, clone
from model.compose import ColumnTransformer, TransformedTargetRegressor
from model.pipeline import Pipeline
from model.preprocessing import OneHotEncoder, SimpleImputer, StandardScaler

TOL = {"rtol": 1e-12, "atol": 1e-12}
NUM = ["area", "Lot.Area", "Lot.Frontage", "Year.Built", "Garage.Cars"]
CAT = ["Neighborhood", "MS.Zoning", "Central.Air", "Garage.Type", "Bsmt.Qual"]


@pytest.fixture(scope="module")
def ames() -> pd.DataFrame:
    df = pd.read_csv("data/ames.csv", usecols=[*NUM, *CAT, "price"])
    df[NUM] = df[NUM].astype(np.float64)
    assert df[["Lot.Frontage", "Garage.Type", "Bsmt.Qual"]].isna().any().all()
    return df


def as_table(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The project's table: float64 numeric columns, object columns with None for missing."""
    out: dict[str, np.ndarray] = {}
    for c in df.columns:
        if c in NUM or c == "price":
            out[c] = df[c].to_numpy(np.float64)
        else:
            col = df[c].to_numpy(object)
            out[c] = np.array([None if pd.isna(v) else v for v in col], dtype=object)
    return out


def ours_ct(remainder: str = "drop") -> ColumnTransformer:
    num = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    return ColumnTransformer(
        [("num", num, NUM), ("cat", OneHotEncoder(), CAT)],
        remainder=remainder,  # type: ignore[arg-type]
    )


def sklearn_ct(df: pd.DataFrame, remainder: str = "drop") -> sk_compose.ColumnTransformer:
    """The same with scikit-learn; missing categories -> an unknown marker -> all zeros."""
    num = sk_pipeline.Pipeline(
        [("impute", sk_impute.SimpleImputer(strategy="median")), ("scale", sk_pre.StandardScaler())]
    )
    cats = [sorted(df[c].dropna().unique()) for c in CAT]
    cat = sk_pipeline.Pipeline(
        [
            ("fill", sk_impute.SimpleImputer(strategy="constant", fill_value="<missing>")),
            (
                "onehot",
                sk_pre.OneHotEncoder(categories=cats, handle_unknown="ignore", sparse_output=False),
            ),
        ]
    )
    return sk_compose.ColumnTransformer([("num", num, NUM), ("cat", cat, CAT)], remainder=remainder)


def test_column_transformer_matches_sklearn_on_ames(ames: pd.DataFrame) -> None:
    train, test = ames.iloc[:2000], ames.iloc[2000:]
    ours = ours_ct().fit(as_table(train[NUM + CAT]))
    ref = sklearn_ct(train).fit(train[NUM + CAT])
    np.testing.assert_allclose(
        ours.transform(as_table(test[NUM + CAT])), ref.transform(test[NUM + CAT]), **TOL
    )
    assert ours.get_feature_names_out() == ref.get_feature_names_out().tolist()
    out = ours.transform(as_table(test[NUM + CAT]))
    assert out.dtype == np.float64 and out.shape == (len(test), ours.n_features_out_)


def test_remainder_passthrough_matches_sklearn(ames: pd.DataFrame) -> None:
    df = ames[[*NUM, *CAT, "price"]]
    ours = ours_ct(remainder="passthrough").fit(as_table(df))
    ref = sklearn_ct(df, remainder="passthrough").fit(df)
    np.testing.assert_allclose(ours.transform(as_table(df)), ref.transform(df), **TOL)
    assert ours.get_feature_names_out()[-1] == "remainder__price"
    assert ref.get_feature_names_out()[-1] == "remainder__price"


def test_rows_and_columns_give_the_same_matrix(ames: pd.DataFrame) -> None:
    df = ames[NUM + CAT]
    ct = ours_ct().fit(as_table(df))
    rows = [
        {k: (None if pd.isna(v) else v) for k, v in r.items()}
        for r in df.iloc[:40].to_dict("records")
    ]
    by_rows = ct.transform(rows)
    np.testing.assert_array_equal(by_rows, ct.transform(as_table(df.iloc[:40])))
    one_at_a_time = np.vstack([ct.transform([r]) for r in rows])
    np.testing.assert_array_equal(one_at_a_time, by_rows)


def test_serving_row_with_missing_category_still_encodes_as_category(ames: pd.DataFrame) -> None:
    ct = ours_ct().fit(as_table(ames[NUM + CAT]))
    row = {c: float(ames[c].iloc[0]) for c in NUM}
    row.update({c: None for c in CAT})  # every category missing: as_columns sees NaN numbers
    out = ct.transform([row])
    n_num = len(NUM)
    assert out[0, n_num:].sum() == 0.0
    unknown = dict(row, **{c: "never-seen" for c in CAT})
    np.testing.assert_array_equal(ct.transform([unknown]), out)


def test_numeric_codes_given_to_a_categorical_column_match_strings() -> None:
    table = {"sub": np.array(["20", "60", "60"], dtype=object), "x": np.array([1.0, 2.0, 3.0])}
    ct = ColumnTransformer([("c", OneHotEncoder(), ["sub"]), ("n", "passthrough", ["x"])]).fit(
        table
    )
    out = ct.transform({"sub": [60], "x": [5.0]})
    assert out.tolist() == [[0.0, 1.0, 5.0]]
    assert ct.get_feature_names_out() == ["c__sub_20", "c__sub_60", "n__x"]


def test_missing_columns_are_named() -> None:
    ct = ours_ct()
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['Bsmt.Qual'\]"):
        ct.fit({c: [1.0] for c in NUM} | {c: ["a"] for c in CAT[:-1]})
    table = {c: [1.0, 2.0] for c in NUM} | {c: ["a", "b"] for c in CAT}
    ct.fit(table)
    short = {k: v for k, v in table.items() if k not in ("area", "Central.Air")}
    with pytest.raises(ValueError, match=r"\['area', 'Central.Air'\]"):
        ct.transform(short)


def test_bad_values_are_reported_with_the_column_name() -> None:
    table = {"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0], "c": ["x", "y", "x"]}
    ct = ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["c"])])
    ct.fit(table)
    with pytest.raises(ValueError, match=r"column 'b' holds a non-numeric value 'lots'"):
        ct.transform({"a": [1.0], "b": ["lots"], "c": ["x"]})
    with pytest.raises(ValueError, match=r"column 'a' holds infinite"):
        ct.transform({"a": [np.inf], "b": [1.0], "c": ["x"]})
    with pytest.raises(ValueError, match=r"transformer 'num': X: column 'b' is entirely missing"):
        clone(ct).fit({"a": [1.0, 2.0], "b": [None, None], "c": ["x", "y"]})
    with pytest.raises(ValueError, match=r"'num' passes through categorical column\(s\) \['c'\]"):
        ColumnTransformer([("num", "passthrough", ["a", "c"])]).fit(table)
    with pytest.raises(ValueError, match="list of column names"):
        ColumnTransformer([("num", StandardScaler(), "a")]).fit(table)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unique"):
        ColumnTransformer([("t", StandardScaler(), ["a"]), ("t", StandardScaler(), ["b"])]).fit(
            table
        )
    with pytest.raises(NotFittedError):
        ColumnTransformer([("num", StandardScaler(), ["a"])]).transform(table)


def test_drop_and_passthrough_transformers() -> None:
    table = {"a": [1.0, 2.0], "b": [3.0, np.nan], "c": ["x", "y"]}
    ct = ColumnTransformer(
        [("keep", "passthrough", ["b", "a"]), ("gone", "drop", ["c"])], remainder="drop"
    )
    out = ct.fit_transform(table)
    np.testing.assert_array_equal(out, np.array([[3.0, 1.0], [np.nan, 2.0]]))
    assert ct.get_feature_names_out() == ["keep__b", "keep__a"]
    with pytest.raises(ValueError, match="every column was dropped"):
        ColumnTransformer([("gone", "drop", ["a"])]).fit(table)


def test_column_transformer_params_are_addressable_and_clone_fits_fresh() -> None:
    ct = ours_ct()
    params = ct.get_params()
    assert params["num__impute__strategy"] == "median"
    assert isinstance(params["cat"], OneHotEncoder)
    ct.set_params(num__impute__strategy="mean", remainder="passthrough")
    assert ct.transformers[0][1].steps[0][1].strategy == "mean"
    assert ct.remainder == "passthrough"
    scaler = StandardScaler(with_mean=False)
    ct.set_params(cat=scaler)
    assert ct.transformers[1] == ("cat", scaler, CAT)
    copy = clone(ct)
    assert copy.get_params()["num__impute__strategy"] == "mean"
    assert copy.transformers[1][1] is not scaler
    with pytest.raises(ValueError, match="invalid parameter 'nope'"):
        ct.set_params(nope=1)


# --- TransformedTargetRegressor --------------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "f", "finv"),
    [("log", np.log, np.exp), ("log1p", np.log1p, np.expm1), (None, None, None)],
)
def test_transformed_target_matches_sklearn(
    func: Any, f: Any, finv: Any, ames: pd.DataFrame
) -> None:
    X = ames[["area", "Garage.Cars"]].fillna(0.0).to_numpy()
    y = ames["price"].to_numpy(np.float64)
    ours = TransformedTargetRegressor(sk_linear.LinearRegression(), func=func).fit(X, y)
    ref = sk_compose.TransformedTargetRegressor(
        sk_linear.LinearRegression(), func=f, inverse_func=finv, check_inverse=False
    ).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), **TOL)
    if func == "log":
        np.testing.assert_allclose(
            ours.regressor_.coef_, sk_linear.LinearRegression().fit(X, np.log(y)).coef_, **TOL
        )


def test_transformed_target_domain_and_errors() -> None:
    X = np.arange(6.0).reshape(3, 2)
    with pytest.raises(
        ValueError, match=r"func='log' needs every target > 0; 2 value\(s\) are not \(min -1\)"
    ):
        TransformedTargetRegressor(sk_linear.LinearRegression(), func="log").fit(
            X, [1.0, 0.0, -1.0]
        )
    with pytest.raises(ValueError, match=r"func='log1p' needs every target > -1"):
        TransformedTargetRegressor(sk_linear.LinearRegression(), func="log1p").fit(
            X, [1.0, -1.0, 0.0]
        )
    with pytest.raises(ValueError, match="func must be"):
        TransformedTargetRegressor(sk_linear.LinearRegression(), func="sqrt").fit(
            X, [1.0, 2.0, 3.0]
        )  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="y: holds"):
        TransformedTargetRegressor(sk_linear.LinearRegression(), func="log").fit(
            X, [1.0, np.nan, 3.0]
        )
    with pytest.raises(NotFittedError):
        TransformedTargetRegressor(sk_linear.LinearRegression()).predict(X)
    reg = sk_linear.LinearRegression()
    ttr = TransformedTargetRegressor(reg, func="log").fit(X, [1.0, 2.0, 3.0])
    assert ttr.regressor is reg and not hasattr(reg, "coef_")  # the given regressor is cloned
