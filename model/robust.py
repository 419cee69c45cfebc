"""Huber regression: a linear model that a few wild targets cannot drag (Huber 1964; the joint
scale estimate of Owen 2007, as scikit-learn's HuberRegressor).

It minimises, over the coefficients ``w``, the intercept ``b`` and a scale ``σ > 0``::

    L(w, b, σ) = Σ_i [σ + σ·H_ε(r_i / σ)] + α‖w‖²,   r_i = y_i − x_iᵀw − b,
    H_ε(z) = z²  where |z| ≤ ε,   2ε|z| − ε²  beyond.

A residual within ``εσ`` costs its square (least squares); beyond, only its size, so an
outlier pulls with a bounded force. Because ``σ`` is estimated with ``w``, ``ε`` is in units
of the residuals' own spread and the fit does not depend on the target's unit. ``L`` is
jointly convex in ``(w, b, σ)`` (σ·H(r/σ) is a perspective), so Newton's method with a
backtracking line search finds its minimum; the gradient and Hessian are those of the
inlier terms ``σ + r²/σ`` and the outlier terms ``σ + 2ε|r| − ε²σ``.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.typing import ArrayLike

from model.base import (
    BaseEstimator,
    FloatArray,
    RegressorMixin,
    check_int,
    check_real,
    check_X_y,
)
from model.linear import check_predict_input


def huber_objective(
    theta: FloatArray, X: FloatArray, y: FloatArray, epsilon: float, alpha: float
) -> float:
    """``L`` at ``θ = (w, b, σ)`` (see the module docstring)."""
    w, b, sigma = theta[:-2], theta[-2], theta[-1]
    a = np.abs(y - X @ w - b)
    out = a > epsilon * sigma
    inlier = float(np.sum(a[~out] ** 2)) / sigma
    outlier = 2.0 * epsilon * float(a[out].sum()) - sigma * int(out.sum()) * epsilon**2
    return y.size * sigma + inlier + outlier + alpha * float(w @ w)


def _newton_step(
    theta: FloatArray, X: FloatArray, y: FloatArray, epsilon: float, alpha: float, intercept: bool
) -> tuple[FloatArray, FloatArray]:
    """The gradient of ``L`` at ``θ`` and the Newton direction ``−∇²L⁻¹ ∇L``."""
    d = X.shape[1]
    w, b, sigma = theta[:d], theta[d], theta[d + 1]
    r = y - X @ w - b
    inl = np.abs(r) <= epsilon * sigma
    Z = np.column_stack([X, np.ones(y.size)])  # ∂r/∂(w, b) = −Z
    Zi, ri = Z[inl], r[inl]
    s = np.where(inl, 2.0 * r / sigma, 2.0 * epsilon * np.sign(r))  # −∂L/∂r per row
    n_out = y.size - int(inl.sum())
    grad = np.empty(d + 2)
    grad[: d + 1] = -(Z.T @ s)
    grad[:d] += 2.0 * alpha * w
    grad[d + 1] = y.size - float(ri @ ri) / sigma**2 - n_out * epsilon**2
    hess = np.zeros((d + 2, d + 2))
    hess[: d + 1, : d + 1] = 2.0 / sigma * (Zi.T @ Zi)
    hess[:d, :d] += 2.0 * alpha * np.eye(d)
    cross = 2.0 / sigma**2 * (Zi.T @ ri)
    hess[: d + 1, d + 1] = hess[d + 1, : d + 1] = cross
    hess[d + 1, d + 1] = 2.0 * float(ri @ ri) / sigma**3
    if not intercept:  # b stays 0: its row and column drop out
        grad[d] = 0.0
        hess[d, :] = hess[:, d] = 0.0
        hess[d, d] = 1.0
    # a tiny ridge keeps the system solvable when few rows are inliers
    hess[np.diag_indices_from(hess)] += 1e-10 * (1.0 + np.abs(np.diag(hess)))
    try:
        step = -np.linalg.solve(hess, grad)
    except np.linalg.LinAlgError:
        step = -np.linalg.lstsq(hess, grad, rcond=None)[0]
    return grad, step


class HuberRegressor(RegressorMixin, BaseEstimator):
    """Linear regression with the Huber loss and a jointly estimated scale.

    Parameters and fitted attributes are scikit-learn's: ``epsilon`` (≥ 1: the residual, in
    units of ``scale_``, beyond which a row counts as an outlier; 1.35 gives 95 % of least
    squares' efficiency on normal errors), ``alpha`` (the L2 penalty on ``coef_``, weighed
    against the *sum* of the row losses), ``max_iter``, ``fit_intercept``, ``tol`` (on the
    largest gradient entry, relative to the number of rows); ``coef_``, ``intercept_``,
    ``scale_``, ``outliers_`` (the rows whose residual exceeds ``epsilon·scale_``),
    ``n_iter_``. Features should be on comparable scales, as for the ridge.
    """

    def __init__(
        self,
        epsilon: float = 1.35,
        max_iter: int = 100,
        alpha: float = 0.0001,
        fit_intercept: bool = True,
        tol: float = 1e-05,
    ) -> None:
        self.epsilon = epsilon
        self.max_iter = max_iter
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.tol = tol

    def _check_params(self) -> None:
        check_real("epsilon", self.epsilon, 1.0, np.inf, low_open=False, high_open=True)
        check_int("max_iter", self.max_iter, 1)
        check_real("alpha", self.alpha, 0.0, np.inf, low_open=False, high_open=True)
        if not isinstance(self.fit_intercept, bool):
            raise ValueError(f"fit_intercept must be True or False, got {self.fit_intercept!r}")
        check_real("tol", self.tol, 0.0, np.inf, low_open=False, high_open=True)

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Newton's method on ``L`` from ``w = 0``, ``b`` the median, ``σ`` the residuals'
        mean absolute deviation (any start reaches the one minimum; this one is close)."""
        self._check_params()
        Xa, ya = check_X_y(X, y)
        n, d = Xa.shape
        eps, alpha = float(self.epsilon), float(self.alpha)
        b0 = float(np.median(ya)) if self.fit_intercept else 0.0
        theta = np.zeros(d + 2)
        theta[d] = b0
        theta[d + 1] = max(float(np.mean(np.abs(ya - b0))), 1e-3 * (1.0 + abs(b0)))
        obj = huber_objective(theta, Xa, ya, eps, alpha)
        n_iter = 0
        for n_iter in range(1, int(self.max_iter) + 1):  # noqa: B007 - n_iter_ is the count
            grad, step = _newton_step(theta, Xa, ya, eps, alpha, self.fit_intercept)
            if np.max(np.abs(grad)) <= self.tol * n:
                break
            t = 1.0
            while theta[d + 1] + t * step[d + 1] <= 0:  # the scale stays positive
                t *= 0.5
            while True:  # backtracking (Armijo): L is convex, a short enough step decreases it
                new = theta + t * step
                new_obj = huber_objective(new, Xa, ya, eps, alpha)
                if new_obj <= obj + 1e-4 * t * float(grad @ step) or t < 1e-12:
                    break
                t *= 0.5
            converged = obj - new_obj <= 1e-12 * max(1.0, abs(obj))
            theta, obj = new, min(new_obj, obj)
            if converged:
                break
        self.coef_: FloatArray = theta[:d].copy()
        self.intercept_ = float(theta[d])
        self.scale_ = float(theta[d + 1])
        self.outliers_ = np.abs(ya - Xa @ self.coef_ - self.intercept_) > eps * self.scale_
        self.n_iter_ = n_iter
        self.n_features_in_ = d
        return self

    def predict(self, X: ArrayLike) -> FloatArray:
        """``Xw + b``."""
        Xa = check_predict_input(self, X)
        return Xa @ self.coef_ + self.intercept_
