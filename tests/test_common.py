"""The estimator contract, checked on every estimator in ``model/`` (scikit-learn's conventions).

``CASES`` lists each estimator explicitly with data it can fit; ``test_every_estimator_is_listed``
imports every module of the ``model`` package and fails if an estimator class is neither in
``CASES`` nor in ``ABSTRACT`` (with the reason), so a new estimator cannot go unchecked.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pytest
from numpy.typing import NDArray

import model
from model.base import BaseEstimator, NotFittedError, clone
from model.cluster import KMeans
from model.compose import ColumnTransformer, TransformedTargetRegressor
from model.derived import DerivedFeatures
from model.ensemble import (
    HistGradientBoostingRegressor,
    RandomForestRegressor,
    StackingRegressor,
    VotingRegressor,
)
from model.kernel import KernelRidge
from model.linear import ElasticNet, Lasso, LinearRegression, Ridge
from model.logistic import LogisticRegression
from model.pipeline import NamedEstimatorsMixin, Pipeline
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
)
from model.residual import ResidualRegressor
from model.robust import HuberRegressor
from model.selection import GridSearchCV
from model.tree import DecisionTreeClassifier, DecisionTreeRegressor, _BaseTree

# --- data ------------------------------------------------------------------------------------

N = 40
_rng = np.random.default_rng(0)
X_NUM = _rng.uniform(1.0, 10.0, size=(N, 3))
Y_REG = 3.0 + X_NUM @ np.array([1.0, 2.0, -0.5]) + _rng.normal(scale=0.5, size=N)  # > 0
Y_BIN = np.where(X_NUM[:, 0] + _rng.normal(size=N) > 5.5, "yes", "no")
Y_3 = np.digitize(X_NUM[:, 1] + _rng.normal(size=N), [4.0, 7.0])
X_NAN = X_NUM.copy()
X_NAN[::7, 1] = np.nan
X_CAT = (
    np.array(
        [["x", "y", "z", None][i % 4] for i in range(N)] + [["p", "q"][i % 2] for i in range(N)],
        dtype=object,
    )
    .reshape(2, N)
    .T
)
X_YEARS = _rng.integers(1950, 2010, size=(N, 2)).astype(np.float64)
TABLE = {"area": X_NUM[:, 0], "rooms": X_NUM[:, 1], "kind": X_CAT[:, 0]}


def _prep() -> ColumnTransformer:
    return ColumnTransformer(
        [("num", StandardScaler(), ["area", "rooms"]), ("cat", OneHotEncoder(), ["kind"])]
    )


def _hgb(**kw: Any) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(max_iter=10, min_samples_leaf=5, random_state=0, **kw)


def _forest(**kw: Any) -> RandomForestRegressor:
    return RandomForestRegressor(n_estimators=5, oob_score=True, random_state=0, **kw)


def _bases() -> list[tuple[str, Any]]:
    return [("gbdt", _hgb()), ("forest", _forest())]


@dataclass
class Case:
    id: str
    make: Callable[[], Any]
    X: Any
    y: Any  # None for unsupervised estimators
    methods: tuple[str, ...]  # the outputs to check: predict, predict_proba, transform


CASES = [
    Case("LinearRegression-normal", lambda: LinearRegression(), X_NUM, Y_REG, ("predict",)),
    Case(
        "LinearRegression-sgd",
        lambda: LinearRegression(solver="sgd", n_epochs=20, learning_rate=1e-3, random_state=0),
        X_NUM,
        Y_REG,
        ("predict",),
    ),
    Case("Ridge", lambda: Ridge(alpha=1.0), X_NUM, Y_REG, ("predict",)),
    Case("Lasso", lambda: Lasso(alpha=0.1), X_NUM, Y_REG, ("predict",)),
    Case("ElasticNet", lambda: ElasticNet(alpha=0.1, l1_ratio=0.5), X_NUM, Y_REG, ("predict",)),
    Case("HuberRegressor", lambda: HuberRegressor(alpha=0.1), X_NUM, Y_REG, ("predict",)),
    Case(
        "KernelRidge",
        lambda: KernelRidge(alpha=0.5, kernel="polynomial", degree=2),
        X_NUM,
        Y_REG,
        ("predict",),
    ),
    Case(
        "LogisticRegression-binary",
        lambda: LogisticRegression(),
        X_NUM,
        Y_BIN,
        ("predict", "predict_proba"),
    ),
    Case(
        "LogisticRegression-3",
        lambda: LogisticRegression(C=0.5),
        X_NUM,
        Y_3,
        ("predict", "predict_proba"),
    ),
    Case(
        "DecisionTreeRegressor",
        lambda: DecisionTreeRegressor(max_depth=3, random_state=0),
        X_NUM,
        Y_REG,
        ("predict",),
    ),
    Case(
        "DecisionTreeClassifier",
        lambda: DecisionTreeClassifier(max_depth=3, random_state=0),
        X_NUM,
        Y_3,
        ("predict", "predict_proba"),
    ),
    Case(
        "KMeans",
        lambda: KMeans(n_clusters=3, n_init=2, random_state=0),
        X_NUM,
        None,
        ("predict", "transform"),
    ),
    Case("SimpleImputer", lambda: SimpleImputer(strategy="median"), X_NAN, None, ("transform",)),
    Case("StandardScaler", lambda: StandardScaler(), X_NUM, None, ("transform",)),
    Case("MinMaxScaler", lambda: MinMaxScaler(), X_NUM, None, ("transform",)),
    Case("OneHotEncoder", lambda: OneHotEncoder(), X_CAT, None, ("transform",)),
    Case("OrdinalEncoder", lambda: OrdinalEncoder(), X_CAT, None, ("transform",)),
    Case("PolynomialFeatures", lambda: PolynomialFeatures(degree=2), X_NUM, None, ("transform",)),
    Case("LogTransformer", lambda: LogTransformer(columns=[0, 2]), X_NUM, None, ("transform",)),
    Case("AgeFromYear", lambda: AgeFromYear(), X_YEARS, None, ("transform",)),
    Case(
        "DerivedFeatures",
        lambda: DerivedFeatures(["a", "b", "c"], [("s", "a + b"), ("r", "s / (c - 2)")]),
        X_NAN,
        None,
        ("transform",),
    ),
    Case("ColumnTransformer", _prep, TABLE, None, ("transform",)),
    Case(
        "TransformedTargetRegressor",
        lambda: TransformedTargetRegressor(regressor=Ridge(alpha=0.1), func="log"),
        X_NUM,
        Y_REG,
        ("predict",),
    ),
    Case(
        "Pipeline",
        lambda: Pipeline([("prep", _prep()), ("model", Ridge(alpha=0.1))]),
        TABLE,
        Y_REG,
        ("predict",),
    ),
    Case(
        "GridSearchCV",
        lambda: GridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}, scoring="rmse", cv=3),
        X_NUM,
        Y_REG,
        ("predict",),
    ),
    *(
        Case(name, make, X_NUM, Y_REG, ("predict",))
        for name, make in (
            ("HistGradientBoostingRegressor", lambda: _hgb()),
            ("HistGradientBoostingRegressor-huber", lambda: _hgb(loss="huber")),
            ("HistGradientBoostingRegressor-absolute_error", lambda: _hgb(loss="absolute_error")),
            ("RandomForestRegressor", lambda: _forest()),
            ("StackingRegressor", lambda: StackingRegressor(_bases(), cv=3)),
            ("VotingRegressor", lambda: VotingRegressor(_bases(), weights=[1.0, 2.0])),
            ("ResidualRegressor", lambda: ResidualRegressor([("ridge", Ridge()), *_bases()])),
        )
    ),
]

#: Estimator classes that are not meant to be fitted themselves, and why.
ABSTRACT: dict[type, str] = {
    BaseEstimator: "the base class",
    Transformer: "template: subclasses supply _validate/_fit/_transform",
    NamedEstimatorsMixin: "mixin: named-list parameter handling for Pipeline/ColumnTransformer",
    model.ensemble._BaseModels: "mixin: the base-model fit and transform of voting and stacking",
    model.preprocessing._BaseEncoder: "the categories found at fit; its subclasses encode them",
    _BaseTree: "shared growth of the two trees; has no leaf rule of its own",
}

ids = [c.id for c in CASES]


# --- helpers ---------------------------------------------------------------------------------


def snapshot(value: Any) -> Any:
    """A comparable copy of a hyperparameter value; nested estimators by their parameters."""
    if isinstance(value, BaseEstimator):
        return (type(value), {k: snapshot(v) for k, v in value.get_params(deep=False).items()})
    if isinstance(value, list | tuple):
        return (type(value), [snapshot(v) for v in value])
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tolist())
    return value


def estimators_in(value: Any) -> list[BaseEstimator]:
    """The estimator and every estimator nested in its hyperparameters."""
    if isinstance(value, BaseEstimator):
        found = [value]
        for v in value.get_params(deep=False).values():
            found += estimators_in(v)
        return found
    if isinstance(value, list | tuple):
        return [e for v in value for e in estimators_in(v)]
    if isinstance(value, dict):
        return [e for v in value.values() for e in estimators_in(v)]
    return []


def fitted_attributes(est: Any) -> dict[str, list[str]]:
    """Attributes ending in ``_`` (learned state) anywhere in the estimator tree."""
    out: dict[str, list[str]] = {}
    for e in estimators_in(est):
        learned = [k for k in vars(e) if k.endswith("_") and not k.startswith("__")]
        if learned:
            out[type(e).__name__] = learned
    return out


def outputs(est: Any, case: Case) -> dict[str, NDArray[Any]]:
    return {m: np.asarray(getattr(est, m)(case.X)) for m in case.methods}


def fit(est: Any, case: Case) -> Any:
    return est.fit(case.X) if case.y is None else est.fit(case.X, case.y)


# --- the contract ----------------------------------------------------------------------------


def test_every_estimator_is_listed() -> None:
    covered = {type(c.make()) for c in CASES}
    missing = []
    for info in pkgutil.iter_modules(model.__path__):
        module = importlib.import_module(f"model.{info.name}")
        for name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and issubclass(cls, BaseEstimator)
                and cls.__module__ == module.__name__
                and cls not in covered
                and cls not in ABSTRACT
            ):
                missing.append(f"{module.__name__}.{name}")
    assert not missing, f"add these estimators to CASES (or ABSTRACT with a reason): {missing}"


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_get_params_keys_are_init_args(case: Case) -> None:
    est = case.make()
    args = [
        p.name
        for p in inspect.signature(type(est).__init__).parameters.values()
        if p.name != "self"
    ]
    assert list(est.get_params(deep=False)) == args
    for name in args:  # stored unchanged, under the same name
        assert est.get_params(deep=False)[name] is getattr(est, name)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_not_fitted_error_before_fit(case: Case) -> None:
    est = case.make()
    for method in case.methods:
        with pytest.raises(NotFittedError):
            getattr(est, method)(case.X)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_fit_returns_self_and_output_shapes(case: Case) -> None:
    est = case.make()
    assert fit(est, case) is est
    n = N
    out = outputs(est, case)
    if "predict" in out:
        assert out["predict"].shape == (n,)
    if "predict_proba" in out:
        proba = out["predict_proba"]
        assert proba.shape == (n, len(np.unique(case.y)))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        np.testing.assert_array_equal(est.classes_[proba.argmax(axis=1)], out["predict"])
    if "transform" in out:
        assert out["transform"].ndim == 2 and out["transform"].shape[0] == n


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_fit_does_not_mutate_hyperparameters(case: Case) -> None:
    est = case.make()
    before = snapshot(est)
    params_before = est.get_params(deep=False)
    fit(est, case)
    assert snapshot(est) == before
    after = est.get_params(deep=False)
    assert all(after[k] is params_before[k] for k in params_before)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_clone_is_an_unfitted_equal(case: Case) -> None:
    est = fit(case.make(), case)
    copy = clone(est)
    assert type(copy) is type(est) and snapshot(copy) == snapshot(est)
    assert fitted_attributes(copy) == {}
    originals = {id(e) for e in estimators_in(est)}
    assert all(id(e) not in originals for e in estimators_in(copy))  # nothing shared
    for method in case.methods:
        with pytest.raises(NotFittedError):
            getattr(copy, method)(case.X)
    # and the clone, fitted, gives the same outputs (fitting is deterministic given params)
    for method, value in outputs(fit(copy, case), case).items():
        np.testing.assert_array_equal(value, outputs(est, case)[method])


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_joblib_round_trip_gives_identical_outputs(case: Case) -> None:
    est = fit(case.make(), case)
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert snapshot(loaded) == snapshot(est)
    for method, value in outputs(est, case).items():
        np.testing.assert_array_equal(outputs(loaded, case)[method], value)


# --- the tree ensembles on awkward data ---------------------------------------------------------

#: Estimators that take NaN and category codes natively (every base model is a tree ensemble).
NATIVE: dict[str, Callable[..., Any]] = {
    "HistGradientBoostingRegressor": _hgb,
    "RandomForestRegressor": lambda **kw: _forest(**kw),
    "StackingRegressor": lambda **kw: StackingRegressor(
        [("gbdt", _hgb(**kw)), ("forest", _forest(**kw))], cv=3
    ),
    "VotingRegressor": lambda **kw: VotingRegressor(
        [("gbdt", _hgb(**kw)), ("forest", _forest(**kw))]
    ),
    "ResidualRegressor": lambda **kw: ResidualRegressor(
        [("gbdt", _hgb(**kw)), ("forest", _forest(**kw))]
    ),
}


@pytest.mark.parametrize("make", NATIVE.values(), ids=NATIVE.keys())
def test_native_missing_values_predict_finite(make: Callable[..., Any]) -> None:
    est = make().fit(X_NAN, Y_REG)
    rows = np.vstack([X_NAN[:3], np.full((1, 3), np.nan)])
    assert np.isfinite(est.predict(rows)).all()
    X_INF = X_NUM.copy()
    X_INF[0, 2] = np.inf
    with pytest.raises(ValueError, match="column 2 holds infinite values"):
        make().fit(X_INF, Y_REG)


@pytest.mark.parametrize("make", NATIVE.values(), ids=NATIVE.keys())
def test_a_constant_feature_is_never_split_on(make: Callable[..., Any]) -> None:
    X = np.column_stack([np.full(N, 7.0), X_NUM])
    est = make().fit(X, Y_REG)
    for fitted in estimators_in(est) + list(getattr(est, "estimators_", [])):
        if hasattr(fitted, "feature_importances_"):
            assert fitted.feature_importances_[0] == 0.0
    np.testing.assert_allclose(
        est.predict(X), est.predict(np.column_stack([X[:, 1:2] * 0 + 99, X[:, 1:]]))
    )


@pytest.mark.parametrize(
    "make", [_hgb, _forest], ids=["HistGradientBoostingRegressor", "RandomForestRegressor"]
)
def test_one_row_fits_and_predicts_its_target(make: Callable[..., Any]) -> None:
    est = make().fit(X_NUM[:1], Y_REG[:1])
    np.testing.assert_allclose(est.predict(X_NUM[:5]), Y_REG[0])


@pytest.mark.parametrize("make", NATIVE.values(), ids=NATIVE.keys())
def test_one_category_is_no_split_and_unknown_codes_are_missing(make: Callable[..., Any]) -> None:
    X = np.column_stack([X_NUM, np.zeros(N)])  # one category, code 0
    est = make(categorical_features=[3]).fit(X, Y_REG)
    other = X.copy()
    other[:, 3] = np.where(np.arange(N) % 2, np.nan, 5.0)  # missing and never-seen codes
    np.testing.assert_allclose(est.predict(other), est.predict(X))
