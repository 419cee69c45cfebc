"""Kernel ridge regression: the ridge in the feature space of a kernel (scikit-learn's
KernelRidge).

With ``k(x, x')`` a kernel and ``K`` its matrix over the training rows, the fit is::

    f(x) = Σ_i c_i·k(x, x_i),   c = (K + αI)⁻¹ y,

the minimiser of ``‖y − Kc‖² + α·cᵀKc`` (ridge regression on the kernel's features, written
in its dual form; no separate intercept, as in scikit-learn). Kernels::

    linear      k = xᵀx'
    polynomial  k = (γ·xᵀx' + c₀)^degree   (every product of up to ``degree`` features)
    rbf         k = exp(−γ‖x − x'‖²)

``γ`` defaults to 1 / n_features. Fitting costs O(n²d + n³) and holds the n × n matrix;
prediction keeps the training rows (``X_fit_``) and costs O(n) kernel values per row.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Literal, Self

import numpy as np
from numpy.typing import ArrayLike

from model.base import (
    BaseEstimator,
    FloatArray,
    RegressorMixin,
    check_array,
    check_int,
    check_is_fitted,
    check_n_features,
    check_real,
    check_X_y,
)

Kernel = Literal["linear", "polynomial", "rbf"]
KERNELS: tuple[Kernel, ...] = ("linear", "polynomial", "rbf")


def kernel_matrix(
    A: FloatArray, B: FloatArray, kernel: str, gamma: float, degree: int, coef0: float
) -> FloatArray:
    """``k(a_i, b_j)`` for every row of ``A`` and of ``B`` (see the module docstring)."""
    dot = A @ B.T
    if kernel == "linear":
        return dot
    if kernel == "polynomial":
        return (gamma * dot + coef0) ** degree
    sq = np.einsum("ij,ij->i", A, A)[:, None] - 2.0 * dot + np.einsum("ij,ij->i", B, B)[None]
    return np.exp(-gamma * np.maximum(sq, 0.0))


# The kernel block ``KernelRidge.predict`` holds at once: rows x training rows x 8 bytes.
PREDICT_BLOCK_BYTES = 64 * 2**20

# A container's memory limit: cgroup v2, then v1.
CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def memory_bytes(limits: tuple[str, ...] = CGROUP_LIMITS) -> int | None:
    """The memory this process may use: the machine's, or its cgroup's limit if lower (a
    container's); ``None`` where neither can be read."""
    sizes = []
    with contextlib.suppress(AttributeError, OSError, ValueError):  # not POSIX
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    for limit in limits:
        try:
            sizes.append(int(Path(limit).read_text(encoding="ascii").strip()))
        except (OSError, ValueError):  # absent, or "max" (no limit)
            continue
    return min(sizes) if sizes else None


def check_kernel_memory(n_samples: int) -> None:
    """Raise ``MemoryError`` naming ``n_samples`` before a fit that cannot fit in memory: it
    holds the n × n kernel matrix and its Cholesky factor, 2·n²·8 bytes."""
    need = 2 * 8 * n_samples**2
    have = memory_bytes()
    if have is not None and need > have:
        raise MemoryError(
            f"KernelRidge: n_samples={n_samples} needs a {n_samples} x {n_samples} kernel matrix "
            f"and its Cholesky factor, {need / 2**30:.1f} GiB, more than the "
            f"{have / 2**30:.1f} GiB of memory here; fit on a sample of the rows"
        )


class KernelRidge(RegressorMixin, BaseEstimator):
    """Ridge regression on a kernel's features (see the module docstring).

    Parameters and fitted attributes are scikit-learn's (``alpha``, ``kernel``, ``gamma``,
    ``degree``, ``coef0``; ``dual_coef_``, ``X_fit_``), for one target and the three kernels
    above. Features should be standardised: the kernels compare them on one scale.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        kernel: Kernel = "linear",
        gamma: float | None = None,
        degree: int = 3,
        coef0: float = 1.0,
    ) -> None:
        self.alpha = alpha
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0

    def _check_params(self) -> None:
        check_real("alpha", self.alpha, 0.0, np.inf, low_open=False, high_open=True)
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {list(KERNELS)}, got {self.kernel!r}")
        if self.gamma is not None:
            check_real("gamma", self.gamma, 0.0, np.inf, low_open=True, high_open=True)
        check_int("degree", self.degree, 1)
        check_real("coef0", self.coef0, -np.inf, np.inf, low_open=True, high_open=True)

    def _kernel(self, A: FloatArray, B: FloatArray) -> FloatArray:
        gamma = 1.0 / A.shape[1] if self.gamma is None else float(self.gamma)
        return kernel_matrix(A, B, self.kernel, gamma, int(self.degree), float(self.coef0))

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """``c = (K + αI)⁻¹ y`` by Cholesky (least squares if ``K + αI`` is singular)."""
        self._check_params()
        Xa, ya = check_X_y(X, y)
        check_kernel_memory(Xa.shape[0])
        K = self._kernel(Xa, Xa)
        K[np.diag_indices_from(K)] += float(self.alpha)
        try:
            L = np.linalg.cholesky(K)
            self.dual_coef_: FloatArray = np.linalg.solve(L.T, np.linalg.solve(L, ya))
        except np.linalg.LinAlgError:  # α = 0 with a singular kernel matrix
            self.dual_coef_ = np.asarray(np.linalg.lstsq(K, ya, rcond=None)[0], dtype=np.float64)
        self.X_fit_ = Xa
        self.n_features_in_ = Xa.shape[1]
        return self

    def predict(self, X: ArrayLike) -> FloatArray:
        """``Σ_i c_i·k(x, x_i)`` for every row, in blocks of rows so the kernel values held at
        once stay within ``PREDICT_BLOCK_BYTES`` however many rows ``X`` has."""
        check_is_fitted(self, "dual_coef_")
        Xa = check_array(X)
        check_n_features(self, Xa)
        step = max(1, PREDICT_BLOCK_BYTES // (8 * self.X_fit_.shape[0]))
        out = np.empty(Xa.shape[0])
        for start in range(0, Xa.shape[0], step):
            rows = Xa[start : start + step]
            out[start : start + len(rows)] = self._kernel(rows, self.X_fit_) @ self.dual_coef_
        return out
