"""model.kernel.KernelRidge against scikit-learn's and against the ridge it generalises."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import kernel_ridge as sk_kernel

from model.kernel import KernelRidge
from model.linear import Ridge


def curved(n: int, seed: int) -> tuple[NDArray[Any], NDArray[Any]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = X[:, 0] * X[:, 1] + X[:, 2] ** 2 - X[:, 3] + 0.1 * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize(
    "params",
    [
        {"kernel": "linear", "alpha": 0.5},
        {"kernel": "polynomial", "alpha": 0.6, "degree": 2, "coef0": 2.5},
        {"kernel": "polynomial", "alpha": 1.0, "degree": 3, "gamma": 0.1},
        {"kernel": "rbf", "alpha": 0.1, "gamma": 0.3},
        {"kernel": "rbf", "alpha": 0.0, "gamma": 0.3},
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
def test_matches_sklearn(params: dict[str, Any]) -> None:
    X, y = curved(200, seed=0)
    Xn = curved(50, seed=1)[0]
    ours = KernelRidge(**params).fit(X, y)
    ref = sk_kernel.KernelRidge(**params).fit(X, y)
    np.testing.assert_allclose(ours.dual_coef_, ref.dual_coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.predict(Xn), ref.predict(Xn), rtol=1e-8, atol=1e-8)


def test_linear_kernel_is_the_ridge_without_intercept() -> None:
    X, y = curved(100, seed=2)
    kr = KernelRidge(alpha=3.0).fit(X, y)
    ridge = Ridge(alpha=3.0, fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(kr.predict(X), ridge.predict(X), rtol=1e-8, atol=1e-10)


def test_a_quadratic_kernel_learns_the_interaction_a_ridge_cannot() -> None:
    X, y = curved(400, seed=3)
    Xt, yt = curved(200, seed=4)
    poly = KernelRidge(alpha=0.1, kernel="polynomial", degree=2, coef0=1.0).fit(X, y)
    ridge = Ridge(alpha=0.1).fit(X, y)
    assert np.sqrt(np.mean((poly.predict(Xt) - yt) ** 2)) < 0.2
    assert np.sqrt(np.mean((ridge.predict(Xt) - yt) ** 2)) > 1.0


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("alpha", -1.0, r"alpha must be a number in \[0, inf\)"),
        ("kernel", "sigmoid", r"kernel must be one of \['linear', 'polynomial', 'rbf'\]"),
        ("gamma", 0.0, r"gamma must be a number in \(0, inf\)"),
        ("degree", 0, r"degree must be an integer in \[1, inf\)"),
        ("coef0", float("inf"), "coef0 must be a number"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(param: str, value: Any, message: str) -> None:
    X, y = curved(20, seed=5)
    with pytest.raises(ValueError, match=message):
        KernelRidge(**{param: value}).fit(X, y)


@pytest.mark.parametrize(
    ("block_bytes", "blocks"),
    [(8 * 60 * 5, [5, 5, 5, 5, 3]), (8 * 60 - 1, [1] * 23), (1, [1] * 23)],
)
def test_predict_works_in_blocks_of_rows_with_the_same_answer(
    monkeypatch: pytest.MonkeyPatch, block_bytes: int, blocks: list[int]
) -> None:
    """Many rows are priced a block at a time (the kernel block held at once stays bounded),
    with the answer of one block, including a last block that is shorter; a budget smaller
    than one row's kernel values still prices one row at a time."""
    import model.kernel as kernel

    X, y = curved(60, 5)
    model = KernelRidge(kernel="rbf", alpha=0.2, gamma=0.4).fit(X, y)
    Xq = curved(23, 6)[0]
    whole = model.predict(Xq)
    seen: list[int] = []
    real = kernel.kernel_matrix

    def counted(A: Any, B: Any, *args: Any) -> Any:
        seen.append(A.shape[0])
        return real(A, B, *args)

    monkeypatch.setattr(kernel, "kernel_matrix", counted)
    monkeypatch.setattr(kernel, "PREDICT_BLOCK_BYTES", block_bytes)
    np.testing.assert_allclose(model.predict(Xq), whole, rtol=1e-12, atol=1e-12)
    assert seen == blocks
