"""model.explain: explanations add up to the price, and Saabas equals a brute-force path walk.

Every estimator the workflow serves (linear, CART, boosting, forest, voting, stacking) is
fitted on a synthetic table with missing numbers and missing and never-seen categories, then
explained on fresh rows: ``f⁻¹(baseline + Σ contributions)`` must equal ``predict`` to 1e-9
relative. For the trees, the contributions must equal a walk of each row down each tree
written out node by node in plain Python, independent of the vectorised one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from test_fold import VARIANTS, table, target  # tests/test_fold.py

from model.base import Columns
from model.compose import ColumnTransformer, TransformedTargetRegressor
from model.ensemble import (
    HistGradientBoostingRegressor,
    RandomForestRegressor,
    StackingRegressor,
    VotingRegressor,
)
from model.explain import CannotExplainError, explain, folded_records
from model.fold import fold
from model.linear import Lasso, Ridge
from model.pipeline import Pipeline
from model.preprocessing import (
    LogTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    SimpleImputer,
    StandardScaler,
)
from model.residual import ResidualRegressor
from model.tree import LEAF, DecisionTreeRegressor

NUMBERS = ["area", "lot", "year", "rooms"]
CATEGORIES = ["hood", "kitchen"]


def linear_features() -> ColumnTransformer:
    return ColumnTransformer(
        [
            (
                "numeric",
                Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]),
                ["area", "year", "rooms"],
            ),
            (
                "log",
                Pipeline(
                    [
                        ("impute", SimpleImputer()),
                        ("log", LogTransformer()),
                        ("scale", StandardScaler()),
                    ]
                ),
                ["lot"],
            ),
            ("categorical", OneHotEncoder(), CATEGORIES),
        ]
    )


def native_features() -> ColumnTransformer:
    return ColumnTransformer(
        [("numeric", "passthrough", NUMBERS), ("categorical", OrdinalEncoder(), CATEGORIES)]
    )


CATS = [4, 5]  # the ordinal columns of native_features


def dense_features() -> ColumnTransformer:
    """For CART, which takes no NaN: imputed numbers, one-hot categories."""
    return ColumnTransformer(
        [
            ("numeric", SimpleImputer(), NUMBERS),
            ("categorical", OneHotEncoder(), CATEGORIES),
        ]
    )


def hgb() -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        max_iter=15, max_leaf_nodes=8, categorical_features=CATS, random_state=0
    )


def forest() -> RandomForestRegressor:
    return RandomForestRegressor(
        n_estimators=8, max_depth=6, categorical_features=CATS, random_state=0
    )


def model(name: str) -> Pipeline:
    """The pipeline shapes of ``model/workflow/train.py``, with a log target."""
    if name == "ridge":
        est: Any = Ridge(alpha=1.0)
        features: Any = linear_features()
    elif name == "lasso":
        est, features = Lasso(alpha=0.001), linear_features()
    elif name == "tree":
        est, features = DecisionTreeRegressor(max_depth=6, random_state=0), dense_features()
    elif name == "gbdt":
        est, features = hgb(), native_features()
    elif name == "forest":
        est, features = forest(), native_features()
    else:
        bases = [
            ("ridge", Pipeline([("features", linear_features()), ("model", Ridge())])),
            ("gbdt", Pipeline([("features", native_features()), ("model", hgb())])),
            ("forest", Pipeline([("features", native_features()), ("model", forest())])),
        ]
        if name == "voting":
            est = VotingRegressor(bases, weights=[2, 1, 1])
        elif name == "residual":  # the trees fitted to the ridge's residuals
            est = ResidualRegressor(bases[:2])
        else:
            est = StackingRegressor(bases)
        features = "passthrough"
    return Pipeline(
        [("features", features), ("regressor", TransformedTargetRegressor(est, func="log"))]
    )


@pytest.fixture(scope="module")
def data() -> tuple[Columns, np.ndarray, Columns]:
    rng = np.random.default_rng(7)
    train = table(300, rng)
    new = table(60, rng)
    new["hood"][:3] = ["Z", None, "A"]  # never seen, missing, known
    return train, target(train, rng), new


ALL = ["ridge", "lasso", "tree", "gbdt", "forest", "voting", "residual", "stacking"]
_FITTED: dict[str, Pipeline] = {}


def fitted(name: str, data: Any) -> Pipeline:
    """``model(name)`` fitted on the module's table, once."""
    if name not in _FITTED:
        train, y, _ = data
        _FITTED[name] = model(name).fit(train, y)
    return _FITTED[name]


@pytest.mark.parametrize("name", ALL)
def test_contributions_add_up_to_the_price(name: str, data: Any) -> None:
    pipe, new = fitted(name, data), data[2]
    e = explain(pipe, new)
    assert e.space == "log"
    assert e.method == ("exact-linear" if name in ("ridge", "lasso") else "saabas")
    assert sorted(e.names) == sorted(NUMBERS + CATEGORIES)
    np.testing.assert_allclose(e.prices(), pipe.predict(new), rtol=1e-9, atol=0)
    for rec, price in zip(e.records(), pipe.predict(new), strict=True):
        total = rec["baseline"] + sum(rec["contributions"].values())
        assert math.isclose(math.exp(total), price, rel_tol=1e-9)


def test_a_price_space_model_adds_up_in_dollars(data: Any) -> None:
    train, y, new = data
    pipe = Pipeline(
        [("features", native_features()), ("regressor", TransformedTargetRegressor(hgb()))]
    ).fit(train, y)
    e = explain(pipe, new)
    assert e.space == "price"
    np.testing.assert_allclose(
        e.baseline + e.contributions.sum(axis=1), pipe.predict(new), rtol=1e-9
    )


def test_linear_contributions_are_weight_times_column_and_categories_sum(data: Any) -> None:
    pipe, new = fitted("ridge", data), data[2]
    e = explain(pipe, new)
    ct, reg = pipe.steps[0][1], pipe.steps[1][1].regressor_
    z = ct.transform(new) * reg.coef_
    source = ct.output_columns()
    for j, name in enumerate(e.names):
        cols = [k for k, s in enumerate(source) if s == name]
        np.testing.assert_allclose(e.contributions[:, j], z[:, cols].sum(axis=1), rtol=1e-12)
    # a never-seen and a missing category add nothing: all-zero one-hot rows
    hood = e.names.index("hood")
    assert e.contributions[0, hood] == 0.0 and e.contributions[1, hood] == 0.0
    assert np.all(e.baseline == reg.intercept_)


def test_folded_terms_explain_as_the_general_path(data: Any) -> None:
    pipe, new = fitted("ridge", data), data[2]
    folded = fold(pipe)
    rows = {k: v.tolist() for k, v in new.items()}
    fast = folded_records(folded, rows)
    assert fast is not None
    for a, b, price in zip(fast, explain(pipe, new).records(), pipe.predict(new), strict=True):
        assert a["space"] == b["space"] == "log" and a["method"] == b["method"] == "exact-linear"
        assert math.isclose(a["baseline"], b["baseline"], rel_tol=1e-12)
        assert a["contributions"].keys() == b["contributions"].keys()
        for k, v in a["contributions"].items():
            assert math.isclose(v, b["contributions"][k], rel_tol=1e-9, abs_tol=1e-12), k
        total = a["baseline"] + sum(a["contributions"].values())
        assert math.isclose(math.exp(total), price, rel_tol=1e-9)
    assert folded_records(folded, {**rows, "area": [math.inf] * len(rows["area"])}) is None


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_folded_contributions_and_prices_read_the_steps_one_way(variant: str) -> None:
    """The compiled contributions add up, in the same order, to exactly the compiled sums the
    prices come from, and are handed back (``None``) exactly where the prices are."""
    rng = np.random.default_rng(3)
    train = table(300, rng)
    folded = fold(VARIANTS[variant]().fit(train, target(train, rng)))
    rows = {k: v.tolist() for k, v in table(200, rng, missing=0.25).items()}
    rows["hood"][::7] = ["Nowhere"] * len(rows["hood"][::7])  # never seen in training
    names = [t.name for t in folded.numeric] + [t.name for t in folded.categorical]
    sums = folded.sums(*(rows[name] for name in names))
    terms = folded.contributions(rows)
    assert terms is not None and len(terms) == len(sums) == 200
    for t, s in zip(terms, sums, strict=True):
        assert list(t) == names
        assert folded.b + sum(t.values()) == s  # bit for bit: the same terms, the same order
    for odd in (math.inf, -math.inf, "a string", -2.0):
        for name in ("area", "lot"):
            bad = {**rows, name: [*rows[name][:3], odd]}
            one = {k: v[:4] for k, v in bad.items()}
            assert (folded.contributions(one) is None) == (folded.predict(one) is None), (odd, name)


# --- Saabas against a brute-force walk --------------------------------------------------------


def walk_cart(tree: DecisionTreeRegressor, x: np.ndarray) -> tuple[float, np.ndarray]:
    c = np.zeros(x.size)
    node = 0
    while tree.feature_[node] != LEAF:
        j = int(tree.feature_[node])
        go = (
            tree.children_left_[node]
            if x[j] <= tree.threshold_[node]
            else tree.children_right_[node]
        )
        c[j] += tree.value_[go, 0] - tree.value_[node, 0]
        node = int(go)
    return float(tree.value_[0, 0]), c


def walk_hist(est: Any, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Each tree node by node from its own fields: a categorical split looks the row's
    category bin up in its left set, a numeric one sends a missing value its learned way and
    compares the others with the threshold."""
    seen = est.forest_.seen
    b_total, c = 0.0, np.zeros(x.size)
    for t in est.trees_:
        node = 0
        while t.left[node] != node:
            j = int(t.feature[node])
            if t.cat_row[node] >= 0:
                code = x[j]
                known = code == code and 0 <= code < seen.shape[1] - 1 and seen[j, int(code)]
                b = int(code) if known else seen.shape[1] - 1
                go_left = bool(t.cat_left[t.cat_row[node], b])
            elif math.isnan(x[j]):
                go_left = bool(t.missing_left[node])
            else:
                go_left = bool(x[j] <= t.threshold[node])
            child = int(t.left[node]) + (0 if go_left else 1)
            c[j] += t.value[child] - t.value[node]
            node = child
        b_total += float(t.value[0])
    scale = 1.0 if isinstance(est, HistGradientBoostingRegressor) else 1.0 / len(est.trees_)
    return est.baseline_ + b_total * scale, c * scale


@pytest.mark.parametrize("name", ["tree", "gbdt", "forest"])
def test_saabas_equals_a_brute_force_path_walk(name: str, data: Any) -> None:
    pipe, new = fitted(name, data), data[2]
    ct, est = pipe.steps[0][1], pipe.steps[1][1].regressor_
    X = ct.transform(new)
    source = ct.output_columns()
    e = explain(pipe, new)
    walk = walk_cart if name == "tree" else walk_hist
    for i in range(X.shape[0]):
        b, c = walk(est, X[i])
        assert math.isclose(e.baseline[i], b, rel_tol=1e-12, abs_tol=1e-12)
        for j, feature in enumerate(e.names):
            expected = sum(c[k] for k, s in enumerate(source) if s == feature)
            assert math.isclose(e.contributions[i, j], expected, rel_tol=1e-9, abs_tol=1e-12)
    assert np.abs(e.contributions).sum() > 0  # the trees split on something


def test_what_cannot_be_explained_says_which_part(data: Any) -> None:
    train, y, new = data
    ridge = Pipeline([("features", linear_features()), ("model", Ridge())])
    est = StackingRegressor([("ridge", ridge)], DecisionTreeRegressor(max_depth=2), cv=2)
    stack = Pipeline([("features", "passthrough"), ("regressor", est)]).fit(train, y)
    with pytest.raises(CannotExplainError, match="final estimator DecisionTreeRegressor"):
        explain(stack, new)
    poly = Pipeline(
        [
            (
                "features",
                ColumnTransformer([("poly", PolynomialFeatures(), ["area", "year"])]),
            ),
            ("regressor", Ridge()),
        ]
    )
    cols = {k: np.nan_to_num(v) for k, v in train.items() if k in ("area", "year")}
    poly.fit(cols, y)
    with pytest.raises(CannotExplainError, match=r"'features'.*'poly'"):
        explain(poly, cols)
