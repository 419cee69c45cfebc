"""Pipeline: same results as scikit-learn's, parameter addressing, clone, joblib round trip."""

from __future__ import annotations

import io
from typing import Any

import joblib
import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import linear_model as sk_linear
from sklearn import pipeline as sk_pipeline
from sklearn import preprocessing as sk_pre
from sklearn.datasets import load_diabetes
from sklearn.metrics import r2_score

from model.base import BaseEstimator, NotFittedError, RegressorMixin, clone
from model.compose import ColumnTransformer, TransformedTargetRegressor
from model.pipeline import Pipeline, make_pipeline
from model.preprocessing import (
    LogTransformer,
    OneHotEncoder,
    PolynomialFeatures,
    SimpleImputer,
    StandardScaler,
)

TOL = {"rtol": 1e-10, "atol": 1e-10}


class LeastSquares(RegressorMixin, BaseEstimator):
    """A tiny closed-form ridge, ``w = (XᵀX + αI)⁻¹Xᵀy`` on a bias-augmented X (test helper)."""

    def __init__(self, alpha: float = 0.0) -> None:
        self.alpha = alpha

    def fit(self, X: Any, y: Any) -> LeastSquares:
        A = np.column_stack([np.ones(len(X)), np.asarray(X, dtype=float)])
        penalty = self.alpha * np.eye(A.shape[1])
        penalty[0, 0] = 0.0
        G, q = A.T @ A + penalty, A.T @ np.asarray(y, dtype=float)
        self.w_ = np.linalg.lstsq(G, q, rcond=None)[0]  # one-hot + bias is rank-deficient
        return self

    def predict(self, X: Any) -> NDArray[np.float64]:
        return np.asarray(self.w_[0] + np.asarray(X, dtype=float) @ self.w_[1:])


@pytest.fixture(scope="module")
def diabetes() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    X, y = load_diabetes(return_X_y=True)
    return np.asarray(X, dtype=float), np.asarray(y, dtype=float)


def ames_like(n: int, seed: int = 0) -> tuple[dict[str, NDArray[Any]], NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    area = rng.uniform(500, 3500, n)
    lot = rng.uniform(2000, 20000, n)
    lot[rng.random(n) < 0.1] = np.nan
    hood = rng.choice(np.array(["A", "B", "C"], dtype=object), n)
    y = 50 * area + 2 * np.nan_to_num(lot, nan=9000) + np.where(hood == "A", 3e4, 0) + 1e4
    return {"area": area, "lot": lot, "hood": hood}, y * rng.lognormal(0, 0.05, n)


def table_pipeline(alpha: float = 1.0) -> Pipeline:
    num = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("log", LogTransformer()),
            ("scale", StandardScaler()),
        ]
    )
    features = ColumnTransformer(
        [("num", num, ["area", "lot"]), ("cat", OneHotEncoder(), ["hood"])]
    )
    model = TransformedTargetRegressor(LeastSquares(alpha=alpha), func="log")
    return Pipeline([("features", features), ("model", model)])


def test_pipeline_matches_sklearn_pipeline(
    diabetes: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> None:
    X, y = diabetes
    ours = Pipeline(
        [("scale", StandardScaler()), ("poly", PolynomialFeatures()), ("lr", sk_linear.Ridge(1.0))]
    ).fit(X[:300], y[:300])
    ref = sk_pipeline.Pipeline(
        [
            ("scale", sk_pre.StandardScaler()),
            ("poly", sk_pre.PolynomialFeatures(include_bias=False)),
            ("lr", sk_linear.Ridge(1.0)),
        ]
    ).fit(X[:300], y[:300])
    np.testing.assert_allclose(ours.predict(X[300:]), ref.predict(X[300:]), **TOL)
    np.testing.assert_allclose(ours.score(X[300:], y[300:]), ref.score(X[300:], y[300:]), **TOL)
    np.testing.assert_allclose(
        ours[:-1].transform(X),
        ref[:-1].transform(X),
        **TOL,
    )


def test_fit_transform_equals_fit_then_transform(
    diabetes: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> None:
    X, _ = diabetes
    a = Pipeline([("scale", StandardScaler()), ("poly", PolynomialFeatures(degree=2))])
    b = clone(a)
    np.testing.assert_array_equal(a.fit_transform(X), b.fit(X).transform(X))
    names = a.get_feature_names_out([f"f{i}" for i in range(X.shape[1])])
    assert names[:2] == ["f0", "f1"] and names[-1] == "f9^2"


def test_pipeline_with_linear_model_from_the_project(
    diabetes: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> None:
    linear = pytest.importorskip("model.linear")
    X, y = diabetes
    ours = Pipeline([("scale", StandardScaler()), ("lr", linear.LinearRegression())]).fit(X, y)
    ref = sk_pipeline.make_pipeline(sk_pre.StandardScaler(), sk_linear.LinearRegression()).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-8)


def test_params_are_addressed_by_step_name() -> None:
    pipe = table_pipeline(alpha=1.0)
    params = pipe.get_params()
    assert params["model__regressor__alpha"] == 1.0
    assert params["features__num__impute__strategy"] == "median"
    assert params["model__func"] == "log"
    assert set(pipe.get_params(deep=False)) == {"steps"}
    pipe.set_params(model__regressor__alpha=7.0, features__num__impute__strategy="mean")
    assert pipe.named_steps["model"].regressor.alpha == 7.0
    assert pipe.named_steps["features"].transformers[0][1].named_steps["impute"].strategy == "mean"
    new_model = LeastSquares(alpha=2.0)
    pipe.set_params(model=new_model)
    assert pipe["model"] is new_model and pipe[1] is new_model and len(pipe) == 2
    with pytest.raises(ValueError, match="invalid parameter 'modle'"):
        pipe.set_params(modle__alpha=1.0)
    with pytest.raises(ValueError, match="invalid parameter 'alpha'"):
        pipe.set_params(alpha=1.0)


def test_grid_search_style_refit_equals_a_directly_built_model() -> None:
    X, y = ames_like(300)
    searched = clone(table_pipeline(alpha=1.0)).set_params(model__regressor__alpha=25.0).fit(X, y)
    direct = table_pipeline(alpha=25.0).fit(X, y)
    np.testing.assert_array_equal(searched.predict(X), direct.predict(X))
    assert not np.allclose(table_pipeline(alpha=0.0).fit(X, y).predict(X), direct.predict(X))


def test_table_pipeline_against_a_hand_built_reference() -> None:
    X, y = ames_like(400)
    pipe = table_pipeline(alpha=0.0).fit(X, y)
    lot = np.where(np.isnan(X["lot"]), np.nanmedian(X["lot"]), X["lot"])
    num = np.log1p(np.column_stack([X["area"], lot]))
    num = (num - num.mean(axis=0)) / num.std(axis=0)
    onehot = (X["hood"][:, None] == np.array(["A", "B", "C"])[None, :]).astype(float)
    A = np.column_stack([np.ones(len(y)), num, onehot])
    w = np.linalg.lstsq(A, np.log(y), rcond=None)[0]
    np.testing.assert_allclose(pipe.predict(X), np.exp(A @ w), rtol=1e-8)
    assert r2_score(y, pipe.predict(X)) > 0.9


def test_clone_is_unfitted_and_independent() -> None:
    X, y = ames_like(100)
    pipe = table_pipeline().fit(X, y)
    copy = clone(pipe)
    assert copy.get_params(deep=True).keys() == pipe.get_params(deep=True).keys()
    assert copy.steps[0][1] is not pipe.steps[0][1]
    with pytest.raises(NotFittedError):
        copy.predict(X)
    copy.set_params(model__regressor__alpha=99.0)
    assert pipe.get_params()["model__regressor__alpha"] == 1.0


def test_joblib_round_trip_gives_identical_predictions() -> None:
    X, y = ames_like(200)
    pipe = table_pipeline().fit(X, y)
    buf = io.BytesIO()
    joblib.dump(pipe, buf)
    buf.seek(0)
    loaded = joblib.load(buf)
    rows = [{"area": 1500.0, "lot": None, "hood": "B"}, {"area": 900.0, "lot": 8000.0, "hood": "Z"}]
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    np.testing.assert_array_equal(loaded.predict(rows), pipe.predict(rows))


def test_single_rows_predict_like_the_batch() -> None:
    X, y = ames_like(200)
    pipe = table_pipeline().fit(X, y)
    rows = [
        {"area": float(a), "lot": None if np.isnan(lot) else float(lot), "hood": h}
        for a, lot, h in zip(X["area"], X["lot"], X["hood"], strict=True)
    ]
    one_by_one = np.array([pipe.predict([r])[0] for r in rows[:50]])
    np.testing.assert_allclose(one_by_one, pipe.predict(X)[:50], rtol=1e-13)


def test_validation_still_happens_at_the_outer_boundary() -> None:
    X, y = ames_like(100)
    pipe = table_pipeline().fit(X, y)
    with pytest.raises(ValueError, match=r"column 'area' holds infinite"):
        pipe.predict({"area": [np.inf], "lot": [1.0], "hood": ["A"]})
    with pytest.raises(ValueError, match=r"column 'area' holds values <= -1"):
        pipe.predict({"area": [-5.0], "lot": [1.0], "hood": ["A"]})
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['hood'\]"):
        pipe.predict({"area": [1.0], "lot": [1.0]})


def test_passthrough_steps_and_make_pipeline(
    diabetes: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> None:
    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), "passthrough", StandardScaler(), LeastSquares())
    assert [n for n, _ in pipe.steps] == [
        "standardscaler",
        "passthrough",
        "standardscaler-2",
        "leastsquares",
    ]
    pipe.fit(X, y)
    ref = Pipeline([("scale", StandardScaler()), ("lr", LeastSquares())]).fit(X, y)
    np.testing.assert_allclose(pipe.predict(X), ref.predict(X), **TOL)
    pipe.set_params(standardscaler=None)
    assert pipe.fit(X, y).steps[0][1] is None


def test_bad_steps_are_refused_with_their_name() -> None:
    X, y = np.ones((3, 1)), np.ones(3)
    with pytest.raises(ValueError, match="'lr' appears twice"):
        Pipeline([("lr", StandardScaler()), ("lr", LeastSquares())]).fit(X, y)
    with pytest.raises(ValueError, match="without '__'"):
        Pipeline([("a__b", StandardScaler()), ("lr", LeastSquares())]).fit(X, y)
    with pytest.raises(
        ValueError, match="step 'lr' \\(LeastSquares\\) must have fit and transform"
    ):
        Pipeline([("lr", LeastSquares()), ("lr2", LeastSquares())]).fit(X, y)
    with pytest.raises(ValueError, match="steps is empty"):
        Pipeline([]).fit(X, y)
    with pytest.raises(NotFittedError):
        Pipeline([("s", StandardScaler()), ("lr", LeastSquares())]).predict(X)


def test_replacing_a_step_after_fit_needs_a_refit(
    diabetes: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> None:
    X, y = diabetes
    pipe = Pipeline([("a", StandardScaler()), ("b", StandardScaler()), ("lr", LeastSquares())])
    pipe.fit(X, y)
    pipe.set_params(b=StandardScaler(with_mean=False))
    with pytest.raises(NotFittedError, match="replaced after fit"):
        pipe.predict(X)
    assert pipe.fit(X, y).predict(X).shape == (len(y),)


def test_foreign_steps_mix_with_ours(
    diabetes: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> None:
    X, y = diabetes
    mixed = Pipeline(
        [
            ("ours", StandardScaler()),
            ("theirs", sk_pre.PolynomialFeatures(2)),
            ("lr", LeastSquares()),
        ]
    ).fit(X, y)
    plain = Pipeline(
        [
            ("ours", StandardScaler()),
            ("poly", PolynomialFeatures(2, include_bias=True)),
            ("lr", LeastSquares()),
        ]
    ).fit(X, y)
    np.testing.assert_allclose(mixed.predict(X), plain.predict(X), rtol=1e-9)
    reversed_ = Pipeline(
        [("theirs", sk_pre.StandardScaler()), ("ours", StandardScaler()), ("lr", LeastSquares())]
    )
    once = Pipeline([("ours", StandardScaler()), ("lr", LeastSquares())]).fit(X, y)
    np.testing.assert_allclose(reversed_.fit(X, y).predict(X), once.predict(X), rtol=1e-9)


def test_nested_steps_do_not_revalidate_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """One check per block at the ColumnTransformer boundary; none in the steps inside."""
    import model.compose
    import model.preprocessing

    X, y = ames_like(100)
    pipe = table_pipeline().fit(X, y)
    calls: dict[str, int] = {"compose": 0, "preprocessing": 0}

    def counting(module: Any, key: str) -> Any:
        real = module.check_array

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[key] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(model.compose, "check_array", counting(model.compose, "compose"))
    monkeypatch.setattr(
        model.preprocessing, "check_array", counting(model.preprocessing, "preprocessing")
    )
    pipe.predict([{"area": 1200.0, "lot": None, "hood": "C"}])
    assert calls == {"compose": 1, "preprocessing": 0}  # one numeric block, one categorical
    pipe.named_steps["features"].transformers_[0][1].transform(np.ones((1, 2)))
    assert calls["preprocessing"] == 1  # the public transform of a step still validates
