"""model.kernel: what mutation testing found the other tests let through (issue 20).

The kernels equal scikit-learn's pairwise kernels (with its default gamma, 1 / n_features),
each hyperparameter is refused with an error naming it and its range, and a fit whose kernel
matrix cannot fit in memory is refused before it is allocated, naming n_samples and the memory
it would need (NumPy's own MemoryError names neither).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import kernel_ridge as sk_kernel
from sklearn.metrics.pairwise import pairwise_kernels

import model.kernel
from model.base import NotFittedError
from model.kernel import KernelRidge, kernel_matrix, memory_bytes


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.sin(X[:, 0]) + X[:, 1] * X[:, 2]


@pytest.mark.parametrize(
    ("kernel", "params"),
    [
        ("linear", {}),
        ("polynomial", {"gamma": 0.4, "degree": 2, "coef0": -0.5}),
        ("polynomial", {"gamma": 1.5, "degree": 3, "coef0": 2.0}),
        ("rbf", {"gamma": 0.7}),
    ],
)
def test_kernel_matrix_is_sklearns(kernel: str, params: dict[str, Any]) -> None:
    A, _ = data(30, seed=0)
    B, _ = data(20, seed=1)
    full = {"gamma": 1.0, "degree": 1, "coef0": 0.0, **params}
    ours = kernel_matrix(A, B, kernel, full["gamma"], full["degree"], full["coef0"])
    np.testing.assert_allclose(ours, pairwise_kernels(A, B, metric=kernel, **params), rtol=1e-12)


@pytest.mark.parametrize("kernel", ["polynomial", "rbf"])
def test_default_gamma_is_one_over_the_features(kernel: str) -> None:
    X, y = data(60, seed=2)
    Xn, _ = data(10, seed=3)
    ours = KernelRidge(kernel=kernel, alpha=0.3).fit(X, y)  # type: ignore[arg-type]
    ref = sk_kernel.KernelRidge(kernel=kernel, alpha=0.3).fit(X, y)
    np.testing.assert_allclose(ours.predict(Xn), ref.predict(Xn), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"alpha": -1e-12}, "alpha must be a number in [0, inf), got -1e-12"),
        ({"alpha": float("nan")}, "alpha must be a number in [0, inf), got nan"),
        (
            {"kernel": "sigmoid"},
            "kernel must be one of ['linear', 'polynomial', 'rbf'], got 'sigmoid'",
        ),
        ({"gamma": 0.0}, "gamma must be a number in (0, inf), got 0.0"),
        ({"gamma": float("inf")}, "gamma must be a number in (0, inf), got inf"),
        ({"degree": 0}, "degree must be an integer in [1, inf), got 0"),
        ({"degree": 2.0}, "degree must be an integer in [1, inf), got 2.0"),
        ({"coef0": float("-inf")}, "coef0 must be a number in (-inf, inf), got -inf"),
        ({"coef0": None}, "coef0 must be a number in (-inf, inf), got None"),
    ],
)
def test_each_hyperparameter_is_refused_by_name(params: dict[str, Any], message: str) -> None:
    X, y = data(10, seed=4)
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        KernelRidge(**params).fit(X, y)


def test_the_ends_of_each_range_are_accepted() -> None:
    X, y = data(10, seed=5)
    for params in ({"alpha": 0.0}, {"degree": 1, "kernel": "polynomial"}, {"coef0": -1e300}):
        assert KernelRidge(**params).fit(X, y).dual_coef_.shape == (10,)


def test_a_kernel_matrix_too_big_for_memory_is_refused_before_it_is_allocated() -> None:
    n = 1_000_000  # X is 8 MB; its kernel matrix would be 8 TB
    message = (
        f"KernelRidge: n_samples={n} needs a {n} x {n} kernel matrix and its Cholesky factor, "
        "14901.2 GiB, more than the "
    )
    with pytest.raises(MemoryError, match="^" + re.escape(message) + r"\d+\.\d GiB of memory here"):
        KernelRidge().fit(np.zeros((n, 1)), np.zeros(n))


def test_the_memory_limit_is_two_float64_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = data(50, seed=6)
    need = 2 * 8 * 50 * 50
    monkeypatch.setattr(model.kernel, "memory_bytes", lambda: need)
    assert KernelRidge().fit(X, y).dual_coef_.shape == (50,)
    monkeypatch.setattr(model.kernel, "memory_bytes", lambda: need - 1)
    with pytest.raises(MemoryError, match=r"n_samples=50 needs a 50 x 50 kernel matrix"):
        KernelRidge().fit(X, y)
    monkeypatch.setattr(model.kernel, "memory_bytes", lambda: None)  # unknown: not refused
    assert KernelRidge().fit(X, y).dual_coef_.shape == (50,)


def test_memory_is_the_machines_or_a_lower_container_limit(tmp_path: Path) -> None:
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_bytes(()) == machine  # Linux: the machine's memory is known
    assert 0 < memory_bytes() <= machine  # type: ignore[operator]
    unlimited, low, high = tmp_path / "unlimited", tmp_path / "low", tmp_path / "high"
    unlimited.write_text("max\n")
    low.write_text("1048576\n")
    high.write_text(f"{10 * machine}\n")
    missing = str(tmp_path / "missing")
    assert memory_bytes((missing, str(unlimited))) == machine
    assert memory_bytes((str(high),)) == machine
    assert memory_bytes((str(unlimited), str(high), str(low), missing)) == 1048576


def test_a_singular_kernel_matrix_falls_back_to_least_squares() -> None:
    X, y = data(30, seed=7)  # linear kernel, alpha 0: K = XXᵀ has rank 3 < 30
    Xn, _ = data(10, seed=8)
    with pytest.warns(Warning):  # sklearn warns that it falls back to least squares
        ref = sk_kernel.KernelRidge(alpha=0.0).fit(X, y)
    ours = KernelRidge(alpha=0.0).fit(X, y)
    np.testing.assert_allclose(ours.predict(Xn), ref.predict(Xn), rtol=1e-6, atol=1e-8)
    w = np.linalg.lstsq(X, y, rcond=None)[0]  # least squares without intercept
    np.testing.assert_allclose(ours.predict(Xn), Xn @ w, rtol=1e-6, atol=1e-8)
    assert ours.dual_coef_.dtype == np.float64


@pytest.mark.parametrize("error", [AttributeError, OSError, ValueError])
def test_memory_without_sysconf_is_the_container_limit_or_unknown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: type[Exception]
) -> None:
    def unavailable(name: str) -> int:  # no sysconf (Windows), or it cannot answer
        raise error(name)

    monkeypatch.setattr(os, "sysconf", unavailable)
    assert memory_bytes(()) is None
    limit = tmp_path / "memory.max"
    limit.write_text("2147483648\n")
    assert memory_bytes((str(limit),)) == 2147483648
    X, y = data(20, seed=9)
    assert KernelRidge().fit(X, y).dual_coef_.shape == (20,)  # memory unknown: not refused


def test_fitted_means_the_dual_coefficients_exist() -> None:
    model = KernelRidge()
    model.feature_names_in_ = np.array(["a", "b", "c"])  # type: ignore[attr-defined]  # a wrapper's
    with pytest.raises(NotFittedError, match=r"^this KernelRidge instance is not fitted yet"):
        model.predict(data(3, seed=10)[0])


def test_the_refusal_names_the_memory_there_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model.kernel, "memory_bytes", lambda: 3 * 2**30 + 2**28)  # 3.25 GiB
    X, y = data(20_000, seed=11)  # 6.0 GiB for the matrix and its factor
    message = (
        "KernelRidge: n_samples=20000 needs a 20000 x 20000 kernel matrix and its Cholesky "
        "factor, 6.0 GiB, more than the 3.2 GiB of memory here; fit on a sample of the rows"
    )
    with pytest.raises(MemoryError, match="^" + re.escape(message) + "$"):
        KernelRidge().fit(X, y)


def test_defaults_are_sklearns() -> None:
    ours = KernelRidge().get_params()
    ref = sk_kernel.KernelRidge().get_params()
    assert ours == {name: ref[name] for name in ours}
    assert set(ours) == {"alpha", "kernel", "gamma", "degree", "coef0"}


def test_least_squares_is_not_used_when_cholesky_works(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = data(30, seed=12)
    expected = KernelRidge(alpha=0.5, kernel="rbf").fit(X, y).dual_coef_

    def unused(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("lstsq called on a positive definite K + alpha I")

    monkeypatch.setattr(np.linalg, "lstsq", unused)
    got = KernelRidge(alpha=0.5, kernel="rbf").fit(X, y).dual_coef_
    np.testing.assert_array_equal(got, expected)
