"""Linear models: least squares by the normal equations, gradient descent or SGD; Ridge, Lasso
and ElasticNet.

Every model predicts ŷ = Xw + b. They differ in the objective and in how it is minimised:

* ``LinearRegression`` minimises MSE = (1/n)||Xw + b - y||²;
* ``Ridge`` adds α||w||² to the *sum* of squared errors (scikit-learn's scaling), so the
  solution is w = (XcᵀXc + αI)⁻¹ Xcᵀyc on centred data and b = ȳ - x̄ᵀw (b is not penalised);
* ``ElasticNet`` / ``Lasso`` minimise (1/(2n))||y - Xw - b||² + αρ||w||₁ + ½α(1-ρ)||w||²,
  which has no closed form, by cyclic coordinate descent.

Why centred sufficient statistics everywhere: all three objectives see the data only through
G = XcᵀXc, q = Xcᵀyc, ycᵀyc and the means x̄, ȳ (Xc = X - x̄, yc = y - ȳ). One pass over X
computes them, a block of rows at a time, so fitting never holds more than one block of
centred rows next to X (memory ≈ X, not 2X) and every later step costs O(d²), not O(nd).
Centring first also keeps the cost free of the cancellation that yᵀy - 2wᵀXᵀy + ... would
suffer when y has a large mean (house prices do).
"""

from __future__ import annotations

import math
import warnings
from typing import Literal, NamedTuple, Self

import numpy as np
from numpy.typing import ArrayLike

from model.base import (
    BaseEstimator,
    FloatArray,
    RegressorMixin,
    check_array,
    check_is_fitted,
    check_n_features,
    check_X_y,
)

Solver = Literal["normal", "gd", "sgd"]
_SOLVERS = ("normal", "gd", "sgd")
#: Rows per block when centring X: about 8 MB of float64 at a time.
_BLOCK_ELEMENTS = 2**20


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped at its iteration limit before meeting ``tol``."""


class SufficientStats(NamedTuple):
    """What least squares needs from (X, y): n, x̄, ȳ, G = XcᵀXc, q = Xcᵀyc, ycᵀyc."""

    n: int
    x_mean: FloatArray
    y_mean: float
    G: FloatArray
    q: FloatArray
    yy: float


def sufficient_stats(X: FloatArray, y: FloatArray, fit_intercept: bool) -> SufficientStats:
    """One blocked pass over X; without an intercept the "means" are zero (no centring)."""
    n, d = X.shape
    if d == 0:
        raise ValueError(f"X: expected at least one feature, got shape {X.shape}")
    x_mean = X.mean(axis=0) if fit_intercept else np.zeros(d)
    y_mean = float(y.mean()) if fit_intercept else 0.0
    G = np.zeros((d, d))
    q = np.zeros(d)
    rows = max(1, _BLOCK_ELEMENTS // d)
    for start in range(0, n, rows):
        Xc = X[start : start + rows] - x_mean
        G += Xc.T @ Xc
        q += Xc.T @ (y[start : start + rows] - y_mean)
    yc = y - y_mean
    return SufficientStats(n, x_mean, y_mean, G, q, float(yc @ yc))


def _cholesky_solve(L: FloatArray, rhs: FloatArray) -> FloatArray:
    """Solve (LLᵀ)w = rhs by forward then backward substitution (NumPy has no trsv)."""
    d = rhs.shape[0]
    z = np.empty(d)
    for i in range(d):
        z[i] = (rhs[i] - L[i, :i] @ z[:i]) / L[i, i]
    w = np.empty(d)
    for i in range(d - 1, -1, -1):
        w[i] = (z[i] - L[i + 1 :, i] @ w[i + 1 :]) / L[i, i]
    return w


def solve_normal_equations(G: FloatArray, q: FloatArray, alpha: float = 0.0) -> FloatArray:
    """w = (G + αI)⁻¹ q by Cholesky, G + αI being symmetric positive definite when X has
    full column rank or α > 0; half the flops of LU and a built-in rank test.

    When a pivot of the factor is negligible (collinear columns, e.g. a full one-hot block next
    to the intercept) the Cholesky answer would be noise, so we fall back to the minimum-norm
    least-squares solution, which is what scikit-learn's ``LinearRegression`` returns then.
    """
    d = q.shape[0]
    A = G + alpha * np.eye(d)
    scale = float(np.max(np.abs(np.diag(A)), initial=0.0))
    L: FloatArray | None
    try:
        L = np.asarray(np.linalg.cholesky(A), dtype=np.float64)
    except np.linalg.LinAlgError:
        L = None
    if L is not None and scale > 0 and float(np.min(np.diag(L))) ** 2 > d * scale * 1e-13:
        return _cholesky_solve(L, q)
    return np.asarray(np.linalg.lstsq(A, q, rcond=None)[0], dtype=np.float64)


def check_predict_input(est: BaseEstimator, X: ArrayLike) -> FloatArray:
    """X for ``predict``: fitted estimator, finite 2-D floats, as many features as in fit."""
    check_is_fitted(est, "coef_")
    Xa = check_array(X)
    check_n_features(est, Xa)
    return Xa


def _gd_map(s: SufficientStats, alpha: float, eta: float, fit_intercept: bool) -> FloatArray:
    """One epoch of full-batch gradient descent as a matrix M acting on θ = (w, b, 1).

    The article's update is w -= η·∂J/∂w, b -= η·∂J/∂b with ∂J/∂w = -(2/n) Σ xᵢrᵢ + (2α/n)w
    and ∂J/∂b = -(2/n) Σ rᵢ, rᵢ = yᵢ - xᵢᵀw - b. Writing xᵢ = xcᵢ + x̄ and rᵢ = rcᵢ - δ, with
    δ = x̄ᵀw + b - ȳ and Σ rcᵢ = 0, the sums become Σ xᵢrᵢ = q - Gw - n·x̄δ and Σ rᵢ = -nδ:

        w ← w - η[(2/n)(Gw - q) + 2x̄δ + (2α/n)w],     b ← b - 2ηδ,

    which is linear in (w, b, 1). So an epoch is one (d+2)² product instead of a pass over
    the n rows, and its iterates are the per-row loop's up to rounding.
    """
    n, d = s.n, s.q.shape[0]
    M = np.eye(d + 2)
    M[:d, :d] -= eta * (2.0 / n * s.G + 2.0 * np.outer(s.x_mean, s.x_mean))
    M[:d, :d] -= eta * 2.0 * alpha / n * np.eye(d)
    M[:d, d] = -2.0 * eta * s.x_mean
    M[:d, d + 1] = eta * (2.0 / n * s.q + 2.0 * s.y_mean * s.x_mean)
    if fit_intercept:
        M[d, :d] = -2.0 * eta * s.x_mean
        M[d, d] = 1.0 - 2.0 * eta
        M[d, d + 1] = 2.0 * eta * s.y_mean
    return M


def _cost_form(s: SufficientStats, alpha: float) -> tuple[FloatArray, FloatArray]:
    """Q and v such that n·J(θ) = θᵀQθ + n(vᵀθ)² for θ = (w, b, 1).

    Σ rcᵢ² = ycᵀyc - 2wᵀq + wᵀGw for the centred residuals rc = yc - Xcw, and the mean
    residual δ = vᵀθ = x̄ᵀw + b - ȳ adds nδ² (the cross term vanishes because Σ rcᵢ = 0).
    Keeping the means in δ avoids the cancellation of yᵀy against (Xw + b)ᵀy when ȳ is
    large (house prices).
    """
    d = s.q.shape[0]
    Q = np.zeros((d + 2, d + 2))
    Q[:d, :d] = s.G + alpha * np.eye(d)
    Q[:d, d + 1] = Q[d + 1, :d] = -s.q
    Q[d + 1, d + 1] = s.yy
    v = np.concatenate([s.x_mean, [1.0, -s.y_mean]])
    return Q, v


class LinearRegression(RegressorMixin, BaseEstimator):
    """Least squares, ŷ = Xw + b, by one of three solvers.

    * ``"normal"``: the closed form, w = G⁻¹q on centred data (Cholesky), b = ȳ - x̄ᵀw;
    * ``"gd"``: full-batch gradient descent on MSE from w = 0, b = 0 — the article's
      algorithm — with each epoch computed from the sufficient statistics in O(d²);
    * ``"sgd"``: the same gradient on shuffled mini-batches of ``batch_size`` rows.

    The iterative solvers stop early once the cost falls by less than ``tol`` times its
    previous value (relative, so the rule does not depend on the target's unit); ``tol=None``
    runs all ``n_epochs``. They need standardised features to converge at the default rate.
    """

    def __init__(
        self,
        solver: Solver = "normal",
        learning_rate: float = 0.01,
        n_epochs: int = 1000,
        batch_size: int = 32,
        tol: float | None = 1e-10,
        random_state: int | None = None,
        fit_intercept: bool = True,
        verbose: int = 0,
        print_every: int = 100,
    ) -> None:
        self.solver = solver
        self.learning_rate = learning_rate
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.tol = tol
        self.random_state = random_state
        self.fit_intercept = fit_intercept
        self.verbose = verbose
        self.print_every = print_every

    def _penalty(self) -> float:
        """α in the objective SSE + α||w||²; plain least squares has none."""
        return 0.0

    def _check_params(self) -> None:
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        if self._penalty() < 0:
            raise ValueError(f"alpha must be >= 0, got {self._penalty()}")
        if self.solver == "normal":
            return
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if int(self.n_epochs) != self.n_epochs or self.n_epochs < 1:
            raise ValueError(f"n_epochs must be a positive integer, got {self.n_epochs}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size}")
        if self.tol is not None and not self.tol >= 0:
            raise ValueError(f"tol must be >= 0 or None, got {self.tol}")
        if int(self.print_every) != self.print_every or self.print_every < 1:
            raise ValueError(f"print_every must be a positive integer, got {self.print_every}")

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        self._check_params()
        Xa, ya = check_X_y(X, y)
        return self._fit_stats(sufficient_stats(Xa, ya, self.fit_intercept), Xa, ya)

    def fit_stats(self, stats: SufficientStats) -> Self:
        """Fit from the sufficient statistics alone, as :meth:`fit` does after computing them.

        For data that never sits in memory at once (statistics accumulated chunk by chunk);
        ``stats`` must be centred as :func:`sufficient_stats` centres them (zero means
        without an intercept). ``"sgd"`` needs the rows themselves and is refused.
        """
        self._check_params()
        if self.solver == "sgd":
            raise ValueError("solver='sgd' draws mini-batches of rows; it cannot fit from sums")
        return self._fit_stats(stats, None, None)

    def _fit_stats(
        self, stats: SufficientStats, X: FloatArray | None, y: FloatArray | None
    ) -> Self:
        """The one solving step of :meth:`fit` and :meth:`fit_stats`."""
        alpha = self._penalty()
        if self.solver == "normal":
            w = solve_normal_equations(stats.G, stats.q, alpha)
            b = float(stats.y_mean - stats.x_mean @ w) if self.fit_intercept else 0.0
            self.cost_history_: list[float] = []
            self.n_iter_ = 0
        else:
            w, b, self.cost_history_ = self._descend(X, y, stats, alpha)
            self.n_iter_ = len(self.cost_history_)
        self.coef_: FloatArray = w
        self.intercept_ = b
        self.n_features_in_ = stats.q.shape[0]
        return self

    def _descend(
        self, X: FloatArray | None, y: FloatArray | None, s: SufficientStats, alpha: float
    ) -> tuple[FloatArray, float, list[float]]:
        """Gradient descent (full batch or mini-batch) from (w, b) = 0, recording
        J = (1/n)(||y - Xw - b||² + α||w||²) after every epoch.

        The state is θ = (w, b, 1). Full-batch epochs are run a block at a time (one
        (d+2)² product each) and the block's costs are then computed together; the early
        stop, the divergence check and the printing then look at the epochs in order, so
        the result is the same as checking after every epoch.
        """
        n, d = s.n, s.q.shape[0]
        eta = float(self.learning_rate)
        M = _gd_map(s, alpha, eta, self.fit_intercept)
        Q, v = _cost_form(s, alpha)
        rng = np.random.default_rng(self.random_state)
        theta = np.zeros(d + 2)
        theta[-1] = 1.0
        history: list[float] = []
        block = 256 if self.solver == "gd" else 1
        n_epochs = int(self.n_epochs)
        with np.errstate(over="ignore", invalid="ignore"):
            while len(history) < n_epochs:
                T = np.empty((min(block, n_epochs - len(history)), d + 2))
                for i in range(T.shape[0]):
                    if self.solver == "gd":
                        theta = M @ theta
                    else:
                        assert X is not None and y is not None  # sgd is refused by fit_stats
                        theta = self._sgd_epoch(X, y, theta, rng, eta, alpha)
                    T[i] = theta
                delta = T @ v
                costs = (np.einsum("ij,ij->i", T @ Q, T) + n * delta * delta) / n
                stop = self._record(costs, history)
                if stop is not None:
                    theta = T[stop]
                    break
        return theta[:d].copy(), float(theta[d]), history

    def _record(self, costs: FloatArray, history: list[float]) -> int | None:
        """Append a block of epoch costs; the index in the block where descent must stop.

        Stops when the cost fell by at most ``tol`` times its previous value; raises on a
        non-finite cost (the steps overshoot: the learning rate is too large).
        """
        tiny = float(np.finfo(np.float64).tiny)
        for i, cost in enumerate(costs.tolist()):
            epoch = len(history) + 1
            if not math.isfinite(cost):
                raise ValueError(
                    f"{self.solver} diverged at epoch {epoch} (cost {cost}); lower "
                    f"learning_rate (now {self.learning_rate}) or standardise X"
                )
            history.append(cost)
            if self.verbose and epoch % int(self.print_every) == 0:
                print(f"epoch {epoch:>6}  cost {cost:.6g}")
            if self.tol is not None and epoch > 1:
                prev = history[-2]
                if abs(prev - cost) <= self.tol * max(prev, tiny):
                    return i
        return None

    def _sgd_epoch(
        self,
        X: FloatArray,
        y: FloatArray,
        theta: FloatArray,
        rng: np.random.Generator,
        eta: float,
        alpha: float,
    ) -> FloatArray:
        """One pass over shuffled mini-batches B: the full gradient with the sums over all
        rows replaced by (n/|B|) times the sums over B; the penalty's share stays (2α/n)w."""
        n = X.shape[0]
        bs = int(self.batch_size)
        w, b = theta[:-2].copy(), float(theta[-2])
        order = rng.permutation(n)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            Xb = X[idx]
            r = y[idx] - Xb @ w - b
            w = w - eta * (-2.0 / idx.shape[0] * (Xb.T @ r) + 2.0 * alpha / n * w)
            if self.fit_intercept:
                b = b - eta * (-2.0 / idx.shape[0] * float(r.sum()))
        return np.concatenate([w, [b, 1.0]])

    def predict(self, X: ArrayLike) -> FloatArray:
        """ŷ = Xw + b."""
        Xa = check_predict_input(self, X)
        return np.asarray(Xa @ self.coef_ + self.intercept_, dtype=np.float64)


class Ridge(LinearRegression):
    """Least squares with an L2 penalty: minimise ||y - Xw - b||² + α||w||², b unpenalised.

    The penalty is weighed against the *sum* of squared errors, as in scikit-learn, so the
    same α gives the same coefficients; it shrinks w towards 0 and makes XcᵀXc + αI
    invertible even when columns are collinear. The iterative solvers minimise the same
    objective divided by n, whose cost they record.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        solver: Solver = "normal",
        learning_rate: float = 0.01,
        n_epochs: int = 1000,
        batch_size: int = 32,
        tol: float | None = 1e-10,
        random_state: int | None = None,
        fit_intercept: bool = True,
        verbose: int = 0,
        print_every: int = 100,
    ) -> None:
        super().__init__(
            solver=solver,
            learning_rate=learning_rate,
            n_epochs=n_epochs,
            batch_size=batch_size,
            tol=tol,
            random_state=random_state,
            fit_intercept=fit_intercept,
            verbose=verbose,
            print_every=print_every,
        )
        self.alpha = alpha

    def _penalty(self) -> float:
        return float(self.alpha)


def _soft_threshold(rho: float, lam: float) -> float:
    """argmin_w ½(w - rho)² + lam|w|: shrink towards 0 by lam, and stop at 0."""
    if rho > lam:
        return rho - lam
    if rho < -lam:
        return rho + lam
    return 0.0


class ElasticNet(RegressorMixin, BaseEstimator):
    """Minimise (1/(2n))||y - Xw - b||² + αρ||w||₁ + ½α(1-ρ)||w||² (ρ = ``l1_ratio``).

    Cyclic coordinate descent: with the others fixed, the objective in one wⱼ is a parabola
    plus |wⱼ|, whose minimiser is a soft threshold, wⱼ = S(ρⱼ, nαρ) / (Gⱼⱼ + nα(1-ρ)) with
    ρⱼ = qⱼ - (Gw)ⱼ + Gⱼⱼwⱼ. Keeping Gw up to date makes one sweep O(d²) whatever n is.
    The stopping rule is scikit-learn's: when the largest step is below ``tol`` relative to
    the largest weight, the duality gap must also be below ``tol``·ycᵀyc, which certifies
    that the objective is within that much of its minimum.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        l1_ratio: float = 0.5,
        max_iter: int = 1000,
        tol: float = 1e-4,
        fit_intercept: bool = True,
    ) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.tol = tol
        self.fit_intercept = fit_intercept

    def _rho(self) -> float:
        return float(self.l1_ratio)

    def _check_params(self) -> None:
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if not 0.0 <= self._rho() <= 1.0:
            raise ValueError(f"l1_ratio must be in [0, 1], got {self._rho()}")
        if int(self.max_iter) != self.max_iter or self.max_iter < 1:
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0, got {self.tol}")

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        self._check_params()
        Xa, ya = check_X_y(X, y)
        return self.fit_stats(sufficient_stats(Xa, ya, self.fit_intercept))

    def fit_stats(self, s: SufficientStats) -> Self:
        """Fit from the sufficient statistics alone (see :meth:`LinearRegression.fit_stats`)."""
        self._check_params()
        l1 = float(self.alpha) * self._rho() * s.n
        l2 = float(self.alpha) * (1.0 - self._rho()) * s.n
        d = s.q.shape[0]
        if l1 == 0.0:
            # Pure L2: the objective times 2n is ||yc - Xcw||² + nα||w||², a ridge problem with
            # a closed form; the duality gap below would not certify it (its dual point is 0).
            w_ridge = solve_normal_equations(s.G, s.q, l2)
            self.n_iter_ = 0
            self.dual_gap_ = 0.0
            return self._set_fitted(w_ridge, s, d)
        G, q, diag = s.G, s.q, np.diag(s.G).copy()
        w = np.zeros(d)
        Gw = np.zeros(d)
        tol_gap = float(self.tol) * s.yy
        self.dual_gap_ = float("inf")
        for it in range(int(self.max_iter)):
            w_max = dw_max = 0.0
            for j in range(d):
                if diag[j] == 0.0:
                    continue
                old = w[j]
                new = _soft_threshold(q[j] - Gw[j] + diag[j] * old, l1) / (diag[j] + l2)
                if new != old:
                    Gw += G[:, j] * (new - old)
                    w[j] = new
                dw_max = max(dw_max, abs(new - old))
                w_max = max(w_max, abs(new))
            self.n_iter_ = it + 1
            if w_max == 0.0 or dw_max / w_max <= self.tol or it == self.max_iter - 1:
                self.dual_gap_ = _duality_gap(w, Gw, q, s.yy, l1, l2)
                if self.dual_gap_ <= tol_gap:
                    break
        else:
            warnings.warn(
                f"{type(self).__name__} did not converge in {self.max_iter} iterations "
                f"(duality gap {self.dual_gap_:.3g} > {tol_gap:.3g}); raise max_iter or "
                "standardise X",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self._set_fitted(w, s, d)

    def _set_fitted(self, w: FloatArray, s: SufficientStats, n_features: int) -> Self:
        self.coef_: FloatArray = w
        self.intercept_ = float(s.y_mean - s.x_mean @ w) if self.fit_intercept else 0.0
        self.n_features_in_ = n_features
        return self

    def predict(self, X: ArrayLike) -> FloatArray:
        """ŷ = Xw + b."""
        Xa = check_predict_input(self, X)
        return np.asarray(Xa @ self.coef_ + self.intercept_, dtype=np.float64)


def _duality_gap(
    w: FloatArray, Gw: FloatArray, q: FloatArray, yy: float, l1: float, l2: float
) -> float:
    """Primal minus dual objective (both times n) for the elastic net, from G, q and ycᵀyc.

    The dual point is the residual Xcᵀr scaled into the feasible set ||Xcᵀr - l2·w||∞ ≤ l1;
    the formula is the one scikit-learn's Gram-matrix coordinate descent uses.
    """
    qw = float(q @ w)
    XtA = q - Gw - l2 * w
    dual_norm = float(np.max(np.abs(XtA), initial=0.0))
    R_norm2 = yy + float(w @ Gw) - 2.0 * qw
    w_norm2 = float(w @ w)
    if dual_norm > l1:
        const = l1 / dual_norm
        gap = 0.5 * (R_norm2 + R_norm2 * const**2)
    else:
        const = 1.0
        gap = R_norm2
    gap += l1 * float(np.abs(w).sum()) - const * (yy - qw) + 0.5 * l2 * (1 + const**2) * w_norm2
    return gap


class Lasso(ElasticNet):
    """The elastic net with ``l1_ratio = 1``: (1/(2n))||y - Xw - b||² + α||w||₁.

    The L1 penalty sets weak coefficients exactly to zero, so the fit also selects features.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        max_iter: int = 1000,
        tol: float = 1e-4,
        fit_intercept: bool = True,
    ) -> None:
        # Not super().__init__: l1_ratio is fixed here, not a hyperparameter of Lasso.
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.fit_intercept = fit_intercept

    def _rho(self) -> float:
        return 1.0
