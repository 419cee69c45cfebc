"""Logistic regression, binary (sigmoid) or multinomial (softmax), with scikit-learn's L2 penalty.

The model is P(class k | x) = softmax(xᵀW + b)ₖ (for two classes, σ(xᵀw + b) for the second
class). We minimise scikit-learn's objective divided by C·n, so that the learning rate and
``tol`` do not depend on the number of rows:

    J(W, b) = (1/n) Σᵢ [logsumexp(zᵢ) - zᵢ,yᵢ] + ||W||² / (2Cn),     zᵢ = xᵢᵀW + b,

which has the same minimiser as C·Σ loss + ½||W||² (b is not penalised). Its gradient is the
familiar Xᵀ(P - Y)/n + W/(Cn), the same expression for sigmoid and softmax.

Two solvers: ``"gd"`` is plain gradient descent; ``"newton"`` (the default) takes Newton
steps with a backtracking line search, because on real data the loss is badly conditioned
and plain GD needs thousands of epochs to reach scikit-learn's optimum, while Newton gets
there in about ten steps. Its Hessian has (d+1)K rows, so it suits the modest d of tabular
data; for very wide data use ``"gd"``.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from model.base import BaseEstimator, ClassifierMixin, FloatArray, check_array, check_target
from model.linear import ConvergenceWarning, check_predict_input

LogisticSolver = Literal["newton", "gd"]


def _sigmoid(z: FloatArray) -> FloatArray:
    """σ(z) = 1/(1 + e⁻ᶻ), written with e^{-|z|} so that it never overflows."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softmax(Z: FloatArray) -> FloatArray:
    """softmax(z)ₖ = e^{zₖ - max z} / Σⱼ e^{zⱼ - max z}: shifted so exp cannot overflow."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return np.asarray(E / E.sum(axis=1, keepdims=True), dtype=np.float64)


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """L2-regularised logistic regression; ``C`` is the inverse penalty strength.

    ``multi_class="auto"`` uses one sigmoid for two classes and a softmax for more;
    ``"multinomial"`` uses the softmax even for two. Training stops when the largest gradient
    component of J falls to ``tol``. Labels may be of any sortable dtype; ``classes_`` holds
    them sorted and ``predict`` returns them.
    """

    def __init__(
        self,
        C: float = 1.0,
        solver: LogisticSolver = "newton",
        learning_rate: float = 0.1,
        max_iter: int = 1000,
        tol: float = 1e-6,
        fit_intercept: bool = True,
        multi_class: Literal["auto", "multinomial"] = "auto",
    ) -> None:
        self.C = C
        self.solver = solver
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.multi_class = multi_class

    def _check_params(self) -> None:
        if not self.C > 0:
            raise ValueError(f"C must be > 0, got {self.C}")
        if self.solver not in ("newton", "gd"):
            raise ValueError(f"solver must be 'newton' or 'gd', got {self.solver!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if int(self.max_iter) != self.max_iter or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0, got {self.tol}")
        if self.multi_class not in ("auto", "multinomial"):
            raise ValueError(
                f"multi_class must be 'auto' or 'multinomial', got {self.multi_class!r}"
            )

    # -- the objective ------------------------------------------------------------------

    def _design(self, X: FloatArray) -> FloatArray:
        """X with a column of ones appended, so that b is the last row of Θ."""
        return np.column_stack([X, np.ones(X.shape[0])]) if self.fit_intercept else X

    def _proba(self, Z: FloatArray) -> FloatArray:
        return _sigmoid(Z) if Z.shape[1] == 1 else _softmax(Z)

    def _objective(
        self, theta: FloatArray, X1: FloatArray, Y: FloatArray, mask: FloatArray
    ) -> tuple[float, FloatArray, FloatArray]:
        """J(Θ), ∇J(Θ) = X̃ᵀ(P - Y)/n + mask·Θ/(Cn), and P."""
        n = X1.shape[0]
        Z = X1 @ theta
        if Z.shape[1] == 1:  # binary: loss = log(1 + eᶻ) - y·z
            data = float(np.sum(np.logaddexp(0.0, Z) - Y * Z))
        else:  # multinomial: loss = logsumexp(z) - z_y
            zmax = Z.max(axis=1, keepdims=True)
            lse = np.log(np.exp(Z - zmax).sum(axis=1)) + zmax[:, 0]
            data = float(np.sum(lse) - np.sum(Z * Y))
        P = self._proba(Z)
        reg = mask * theta / (self.C * n)
        J = data / n + 0.5 * float(np.sum(reg * theta))
        return J, X1.T @ (P - Y) / n + reg, P

    def _hessian(self, X1: FloatArray, P: FloatArray, mask: FloatArray) -> FloatArray:
        """∇²J over vec(Θ): blocks (1/n) X̃ᵀ diag(Pₖ(δₖₘ - Pₘ)) X̃, plus the penalty diagonal.

        With an intercept and a softmax, adding the same constant to every bₖ changes
        nothing, so the Hessian is singular along u = (0…0, 1…1) for the b row. The gradient
        is orthogonal to u, so adding uuᵀ/|u|² removes the null space without changing the
        Newton step within the other directions (and keeps Σₖ bₖ where it is).
        """
        n, p = X1.shape
        K = P.shape[1]
        H = np.zeros((p, K, p, K))
        for k in range(K):
            for m in range(k, K):
                # ∂Pₖ/∂zₘ; for one sigmoid column (K = 1) this is σ'(z) = p(1 - p).
                s = P[:, k] * (float(k == m) - P[:, m])
                block = (X1 * s[:, None]).T @ X1 / n
                H[:, k, :, m] = block
                H[:, m, :, k] = block.T
        H2 = H.reshape(p * K, p * K)
        H2[np.diag_indices_from(H2)] += mask.reshape(-1) / (self.C * n)
        if K > 1 and self.fit_intercept:
            u = np.zeros((p, K))
            u[-1, :] = 1.0
            H2 += np.outer(u, u) / K  # |u|² = K
        return H2

    # -- fitting ------------------------------------------------------------------------

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        self._check_params()
        Xa = check_array(X)
        ya = check_target(y, Xa.shape[0])
        try:
            self.classes_, code = np.unique(ya, return_inverse=True)
        except TypeError as exc:
            raise ValueError(f"y: labels cannot be sorted: {exc}") from None
        K = self.classes_.shape[0]
        if K < 2:
            raise ValueError(
                f"y: needs samples of at least 2 classes, got only {self.classes_.tolist()}"
            )
        n, d = Xa.shape
        X1 = self._design(Xa)
        Y: FloatArray
        if K == 2 and self.multi_class == "auto":
            Y = (code == 1).astype(np.float64)[:, None]
        else:
            Y = np.zeros((n, K))
            Y[np.arange(n), code] = 1.0
        theta = np.zeros((X1.shape[1], Y.shape[1]))
        mask = np.ones_like(theta)
        if self.fit_intercept:
            mask[-1, :] = 0.0
        step = self._newton if self.solver == "newton" else self._gd
        theta = step(theta, X1, Y, mask)
        self.coef_: FloatArray = np.ascontiguousarray(theta[:d].T)
        self.intercept_: FloatArray = (
            theta[d].copy() if self.fit_intercept else np.zeros(theta.shape[1])
        )
        self.n_features_in_ = d
        return self

    def _converged(self, g: FloatArray) -> bool:
        return float(np.max(np.abs(g))) <= self.tol

    def _newton(
        self, theta: FloatArray, X1: FloatArray, Y: FloatArray, mask: FloatArray
    ) -> FloatArray:
        """Θ ← Θ + t·δ with H δ = -∇J, t halved until J falls enough (Armijo's rule)."""
        J, g, P = self._objective(theta, X1, Y, mask)
        self.cost_history_: list[float] = [J]
        self.n_iter_ = 0
        while not self._converged(g):
            if self.n_iter_ == self.max_iter:
                self._warn(g)
                break
            H = self._hessian(X1, P, mask)
            try:
                delta = np.linalg.solve(H, -g.reshape(-1)).reshape(theta.shape)
            except np.linalg.LinAlgError:
                delta = np.linalg.lstsq(H, -g.reshape(-1), rcond=None)[0].reshape(theta.shape)
            slope = float(np.sum(g * delta))
            t = 1.0
            for _ in range(50):
                J_new, g_new, P_new = self._objective(theta + t * delta, X1, Y, mask)
                if J_new <= J + 1e-4 * t * slope:
                    break
                t *= 0.5
            else:  # no decrease possible in floating point: we are at the optimum
                break
            stalled = J - J_new <= 1e-15 * abs(J)  # J moved by rounding only: done
            theta = theta + t * delta
            J, g, P = J_new, g_new, P_new
            self.cost_history_.append(J)
            self.n_iter_ += 1
            if stalled:
                break
        return theta

    def _gd(self, theta: FloatArray, X1: FloatArray, Y: FloatArray, mask: FloatArray) -> FloatArray:
        """Θ ← Θ - η∇J, the article's update applied to the logistic loss."""
        J, g, _ = self._objective(theta, X1, Y, mask)
        self.cost_history_ = [J]
        self.n_iter_ = 0
        while not self._converged(g):
            if self.n_iter_ == self.max_iter:
                self._warn(g)
                break
            # A diverging step overflows on its way to the error below, which says what to do.
            with np.errstate(over="ignore", invalid="ignore"):
                theta = theta - self.learning_rate * g
                J, g, _ = self._objective(theta, X1, Y, mask)
            if not np.isfinite(J):
                raise ValueError(
                    f"gd diverged at iteration {self.n_iter_ + 1}; lower learning_rate "
                    f"(now {self.learning_rate}) or standardise X"
                )
            self.cost_history_.append(J)
            self.n_iter_ += 1
        return theta

    def _warn(self, g: FloatArray) -> None:
        warnings.warn(
            f"LogisticRegression ({self.solver}) did not converge in {self.max_iter} "
            f"iterations (max gradient {np.max(np.abs(g)):.3g} > tol {self.tol}); raise "
            "max_iter or standardise X",
            ConvergenceWarning,
            stacklevel=4,
        )

    # -- prediction ---------------------------------------------------------------------

    def decision_function(self, X: ArrayLike) -> FloatArray:
        """z = Xwᵀ + b: one column per class for softmax, a vector for the sigmoid."""
        Xa = check_predict_input(self, X)
        Z = Xa @ self.coef_.T + self.intercept_
        return np.asarray(Z[:, 0] if Z.shape[1] == 1 else Z, dtype=np.float64)

    def predict_proba(self, X: ArrayLike) -> FloatArray:
        """P(class | x), one column per entry of ``classes_``; rows sum to 1."""
        Z = self.decision_function(X)
        if Z.ndim == 1:
            p = _sigmoid(Z)
            return np.column_stack([1.0 - p, p])
        return _softmax(Z)

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """The most probable class label for each row."""
        best = np.argmax(self.predict_proba(X), axis=1)
        return np.asarray(self.classes_[best])
