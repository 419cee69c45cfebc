"""Ensembles: histogram gradient boosting, a random forest, stacking and voting.

**Gradient boosting** (Friedman 2001) fits ``F_M(x) = F_0 + Σ_m η·f_m(x)`` stage by stage:
``F_0`` is the mean of ``y``; tree ``f_m`` is grown on the gradients ``g_i = F_{m−1}(x_i) −
y_i`` and hessians ``h_i = 1`` of the squared error ``½(y − F)²``, its leaves set to the
Newton step ``−G/(H + λ)`` and scaled by the learning rate ``η``. Two robust losses keep a
few wild targets from steering the trees (the leaves are then re-set after each tree is
grown, from the residuals ``r = y − F`` of the leaf's rows, as scikit-learn does):

- ``absolute_error`` ``|y − F|``: ``g = sign(F − y)``, ``F_0`` and every leaf the median of
  ``r`` (scikit-learn's HistGradientBoostingRegressor);
- ``huber`` ``½r²`` where ``|r| ≤ δ``, ``δ(|r| − ½δ)`` beyond: ``g = −clip(r, −δ, δ)``, with
  ``δ`` the ``alpha`` quantile of ``|r|`` at each iteration; ``F_0`` the median of ``y``,
  every leaf ``median(r) + mean(clip(r − median(r), −δ, δ))`` (one step of Huber's
  M-estimate of location: scikit-learn's GradientBoostingRegressor).

The trees are histogram trees (:mod:`model.hist`, where the split gain and the categorical
and missing-value rules are stated). With ``subsample < 1`` each tree sees a random share of
the rows, with ``max_features < 1`` each split a random share of the features. With early
stopping a ``validation_fraction`` of the rows is held out and boosting stops when its loss
has not improved by ``tol`` over ``n_iter_no_change`` iterations (scikit-learn's rule).

**Random forest** (Breiman 2001): trees grown to purity on bootstrap samples, each split
among a random ``max_features`` share of the features, averaged. Grown by the same histogram
core with ``g = −w·y``, ``h = w`` (``w`` the bootstrap counts) and λ = 0, for which the gain is
the decrease in squared error and ``−G/H`` the mean of ``y`` in the leaf.

**Stacking** (Wolpert 1992): the base models' out-of-fold predictions (``cv`` folds) are the
features of ``final_estimator``; the base models are then refitted on all rows.
**Voting**: the (weighted) mean of the base models' predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, Self

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
    clone,
)
from model.hist import (
    BinMapper,
    Forest,
    SplitParams,
    Tree,
    TreeGrower,
    check_categorical_features,
)
from model.pipeline import NamedEstimatorsMixin

# --- progress -----------------------------------------------------------------------------

#: Called as ``(trees done, trees planned)`` after each tree of a fit (see ``report_trees``).
TreeCallback = Callable[[int, int], None]
_tree_callback: ContextVar[TreeCallback | None] = ContextVar("tree_callback", default=None)


@contextmanager
def report_trees(callback: TreeCallback | None) -> Iterator[None]:
    """Within the block, every boosting and forest fit calls ``callback(done, planned)``
    after each tree it grows (a progress bar's hook; fits nested in stacking or in a search
    report too). Not a hyperparameter: it changes nothing that is fitted."""
    token = _tree_callback.set(callback)
    try:
        yield
    finally:
        _tree_callback.reset(token)


def _importances(trees: list[Tree], d: int) -> FloatArray:
    """Σ of the split gains per feature over all trees, normalised to sum to one."""
    total = np.zeros(d)
    for t in trees:
        inner = ~t.is_leaf
        np.add.at(total, t.feature[inner], t.gain[inner])
    s = total.sum()
    return total / s if s > 0 else total


# --- gradient boosting ----------------------------------------------------------------------

#: The boosting losses (scikit-learn's names).
LOSSES = ("squared_error", "absolute_error", "huber")


def huber_delta(r: FloatArray, alpha: float) -> float:
    """Huber's ``δ``: the ``alpha`` quantile of the absolute residuals."""
    return float(np.percentile(np.abs(r), 100.0 * alpha))


def location(loss: str, r: FloatArray, delta: float) -> float:
    """A robust loss's leaf value before shrinkage, from the leaf's residuals ``r``: their
    median, or Huber's one-step estimate ``median(r) + mean(clip(r − median(r), −δ, δ))``."""
    m = float(np.median(r))
    if loss == "absolute_error":
        return m
    return m + float(np.clip(r - m, -delta, delta).mean())


def negative_loss(loss: str, r: FloatArray, delta: float) -> float:
    """Minus the mean loss of the residuals ``r`` (the early-stopping score)."""
    if loss == "squared_error":
        return -0.5 * float(np.mean(r**2))
    a = np.abs(r)
    if loss == "absolute_error":
        return -float(a.mean())
    return -float(np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta)).mean())


def gradient(loss: str, r: FloatArray, delta: float) -> FloatArray:
    """``∂loss/∂F`` at the residuals ``r = y − F`` (the hessian is 1 for all three)."""
    if loss == "squared_error":
        return -r
    if loss == "absolute_error":
        return -np.sign(r)
    return -np.clip(r, -delta, delta)


class HistGradientBoostingRegressor(RegressorMixin, BaseEstimator):
    """Gradient-boosted histogram trees (see the module docstring for the losses).

    Parameters follow scikit-learn's estimator of the same name; ``alpha`` (Huber's quantile,
    used by ``loss="huber"`` only) is scikit-learn's GradientBoostingRegressor's, as is that
    loss; ``subsample`` (rows per tree, without replacement) is LightGBM's bagging. The robust
    losses' leaves ignore ``l2_regularization`` (a median has no Newton step to shrink).
    ``categorical_features`` lists the columns (indices or a boolean mask) that hold integer
    category codes; NaN is missing.
    """

    def __init__(
        self,
        loss: Literal["squared_error", "absolute_error", "huber"] = "squared_error",
        learning_rate: float = 0.1,
        max_iter: int = 100,
        max_leaf_nodes: int | None = 31,
        max_depth: int | None = None,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        max_features: float = 1.0,
        subsample: float = 1.0,
        max_bins: int = 255,
        categorical_features: Any = None,
        early_stopping: Literal["auto"] | bool = "auto",
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-7,
        alpha: float = 0.9,
        random_state: int | None = None,
    ) -> None:
        self.loss = loss
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_features = max_features
        self.subsample = subsample
        self.max_bins = max_bins
        self.categorical_features = categorical_features
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.alpha = alpha
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        check_real("alpha", self.alpha, 0.0, 1.0, low_open=True, high_open=True)
        check_real("learning_rate", self.learning_rate, 0.0, np.inf, low_open=True, high_open=True)
        check_int("max_iter", self.max_iter, 1)
        check_int("max_leaf_nodes", self.max_leaf_nodes, 2, none=True)
        check_int("max_depth", self.max_depth, 1, none=True)
        check_int("min_samples_leaf", self.min_samples_leaf, 1)
        check_real(
            "l2_regularization", self.l2_regularization, 0.0, np.inf, low_open=False, high_open=True
        )
        check_real("max_features", self.max_features, 0.0, 1.0, low_open=True, high_open=False)
        check_real("subsample", self.subsample, 0.0, 1.0, low_open=True, high_open=False)
        check_int("max_bins", self.max_bins, 2, 255)
        # not ``in ("auto", True, False)``: 1, 0 and 1.0 compare equal to True and False
        if not (isinstance(self.early_stopping, bool) or self.early_stopping == "auto"):
            raise ValueError(
                f"early_stopping must be 'auto', True or False, got {self.early_stopping!r}"
            )
        check_real(
            "validation_fraction", self.validation_fraction, 0.0, 1.0, low_open=True, high_open=True
        )
        check_int("n_iter_no_change", self.n_iter_no_change, 1)
        check_real("tol", self.tol, 0.0, np.inf, low_open=False, high_open=True)
        if self.random_state is not None:
            check_int("random_state", self.random_state, 0)

    def _split_params(self) -> SplitParams:
        return SplitParams(
            max_leaf_nodes=self.max_leaf_nodes,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=float(self.l2_regularization),
            max_features=float(self.max_features),
            shrinkage=float(self.learning_rate),
        )

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Boost up to ``max_iter`` trees (fewer when early stopping ends it)."""
        self._check_params()
        Xa, ya = check_X_y(X, y, allow_nan=True)
        n, d = Xa.shape
        categorical = check_categorical_features(self.categorical_features, d)
        rng = np.random.default_rng(self.random_state)
        stop_early = self.early_stopping is True or (self.early_stopping == "auto" and n > 10_000)
        train = np.arange(n)
        valid = np.zeros(0, dtype=np.intp)
        if stop_early:
            n_valid = int(np.ceil(self.validation_fraction * n))
            if n_valid >= n:  # at least one row is held out: the fraction is above 0
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} leaves no rows to "
                    f"fit on with {n} sample(s)"
                )
            perm = rng.permutation(n)
            valid, train = np.sort(perm[:n_valid]), np.sort(perm[n_valid:])
        mapper = BinMapper(self.max_bins, categorical).fit(Xa[train])
        Xb = mapper.transform(Xa)
        grower = TreeGrower(Xb[train], mapper)
        y_tr, y_va = ya[train], ya[valid]
        loss, alpha = self.loss, float(self.alpha)
        baseline = float(y_tr.mean() if loss == "squared_error" else np.median(y_tr))
        delta = huber_delta(y_tr - baseline, alpha)
        raw = np.full(train.size, baseline)
        raw_va = np.full(valid.size, baseline)
        Xb_va = Xb[valid]
        params = self._split_params()
        trees: list[Tree] = []
        scores = [negative_loss(loss, y_va - raw_va, delta)] if stop_early else []
        n_sub = max(1, round(self.subsample * train.size))
        report = _tree_callback.get()
        for _ in range(self.max_iter):
            r = y_tr - raw
            if loss == "huber":
                delta = huber_delta(r, alpha)
            rows = (
                np.arange(train.size)
                if n_sub >= train.size
                else np.sort(rng.choice(train.size, n_sub, replace=False))
            )
            tree, leaves = grower.grow(rows, gradient(loss, r, delta), None, params, rng)
            if loss != "squared_error":  # the robust losses' leaves: their residuals' location
                for node, lr in leaves:
                    tree.value[node] = params.shrinkage * location(loss, r[lr], delta)
            trees.append(tree)
            if report is not None:
                report(len(trees), self.max_iter)
            if n_sub >= train.size:
                for node, r in leaves:
                    raw[r] += tree.value[node]
            else:
                raw += tree.value[tree.apply_binned(grower.Xb, mapper.missing_bin)]
            if stop_early:
                raw_va += tree.value[tree.apply_binned(Xb_va, mapper.missing_bin)]
                scores.append(negative_loss(loss, y_va - raw_va, delta))
                if self._should_stop(scores):
                    break
        self.baseline_ = baseline
        self.trees_ = trees
        self.n_iter_ = len(trees)
        self.validation_score_ = np.asarray(scores)
        self.n_features_in_ = d
        self.is_categorical_ = categorical
        self.bin_mapper_ = mapper
        self.feature_importances_ = _importances(trees, d)
        self.forest_ = Forest.build(trees, mapper)
        return self

    def _should_stop(self, scores: list[float]) -> bool:
        """No score of the last ``n_iter_no_change`` beats the one before them by ``tol``."""
        k = self.n_iter_no_change
        if len(scores) <= k:
            return False
        reference = scores[-k - 1] + self.tol
        return not any(s > reference for s in scores[-k:])

    def predict(self, X: ArrayLike) -> FloatArray:
        """``F_0 + Σ_m η·f_m(x)``, all trees at once (:class:`model.hist.Forest`)."""
        check_is_fitted(self, "forest_")
        Xa = check_array(X, allow_nan=True)
        check_n_features(self, Xa)
        return self.baseline_ + self.forest_.predict_sum(Xa)


# --- random forest --------------------------------------------------------------------------


class RandomForestRegressor(RegressorMixin, BaseEstimator):
    """The mean of ``n_estimators`` histogram trees, each grown on a bootstrap sample (with
    ``bootstrap``) and splitting among a random ``max_features`` share of the features.

    ``oob_score`` computes each row's prediction from the trees whose sample left it out,
    ``oob_prediction_``, and its R², ``oob_score_``. Missing values and
    ``categorical_features`` are handled natively, as in the boosting model.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_depth: int | None = None,
        min_samples_leaf: int = 1,
        max_features: float = 1.0,
        max_leaf_nodes: int | None = None,
        bootstrap: bool = True,
        oob_score: bool = False,
        max_bins: int = 255,
        categorical_features: Any = None,
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_leaf_nodes = max_leaf_nodes
        self.bootstrap = bootstrap
        self.oob_score = oob_score
        self.max_bins = max_bins
        self.categorical_features = categorical_features
        self.random_state = random_state

    def _check_params(self) -> None:
        check_int("n_estimators", self.n_estimators, 1)
        check_int("max_depth", self.max_depth, 1, none=True)
        check_int("min_samples_leaf", self.min_samples_leaf, 1)
        check_real("max_features", self.max_features, 0.0, 1.0, low_open=True, high_open=False)
        check_int("max_leaf_nodes", self.max_leaf_nodes, 2, none=True)
        for name in ("bootstrap", "oob_score"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.oob_score and not self.bootstrap:
            raise ValueError("oob_score=True needs bootstrap=True (no row is left out otherwise)")
        check_int("max_bins", self.max_bins, 2, 255)
        if self.random_state is not None:
            check_int("random_state", self.random_state, 0)

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        self._check_params()
        Xa, ya = check_X_y(X, y, allow_nan=True)
        n, d = Xa.shape
        categorical = check_categorical_features(self.categorical_features, d)
        rng = np.random.default_rng(self.random_state)
        mapper = BinMapper(self.max_bins, categorical).fit(Xa)
        grower = TreeGrower(mapper.transform(Xa), mapper)
        baseline = float(ya.mean())
        yc = ya - baseline  # centred: the gains are then differences of small numbers
        params = SplitParams(
            max_leaf_nodes=self.max_leaf_nodes,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=0.0,
            max_features=float(self.max_features),
            shrinkage=1.0,
        )
        trees: list[Tree] = []
        oob_sum, oob_count = np.zeros(n), np.zeros(n)
        report = _tree_callback.get()
        for _ in range(self.n_estimators):
            if self.bootstrap:
                w = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
            else:
                w = np.ones(n)
            rows = np.flatnonzero(w > 0)
            tree, _ = grower.grow(rows, -w * yc, w, params, rng)
            trees.append(tree)
            if report is not None:
                report(len(trees), self.n_estimators)
            if self.oob_score:
                out = np.flatnonzero(w == 0)
                oob_sum[out] += tree.value[tree.apply_binned(grower.Xb[out], mapper.missing_bin)]
                oob_count[out] += 1
        self.baseline_ = baseline
        self.trees_ = trees
        self.n_features_in_ = d
        self.is_categorical_ = categorical
        self.feature_importances_ = _importances(trees, d)
        self.forest_ = Forest.build(trees, mapper)
        if self.oob_score:
            # a row in every bootstrap sample has no out-of-bag prediction (NaN); with fewer
            # than two rows that have one, R² is undefined and the score is NaN
            seen = oob_count > 0
            with np.errstate(invalid="ignore", divide="ignore"):
                self.oob_prediction_ = baseline + oob_sum / oob_count
            from model.metrics import r2_score

            self.oob_score_ = (
                float(r2_score(ya[seen], self.oob_prediction_[seen]))
                if seen.sum() >= 2 and np.ptp(ya[seen]) > 0
                else float("nan")
            )
        return self

    def predict(self, X: ArrayLike) -> FloatArray:
        """The mean of the trees' predictions, all trees at once."""
        check_is_fitted(self, "forest_")
        Xa = check_array(X, allow_nan=True)
        check_n_features(self, Xa)
        return self.baseline_ + self.forest_.predict_sum(Xa) / len(self.trees_)


# --- combining models -----------------------------------------------------------------------


def _check_estimators(owner: str, estimators: Any) -> list[tuple[str, Any]]:
    from model.pipeline import check_names

    if not isinstance(estimators, list | tuple) or not estimators:
        raise ValueError(f"{owner}: estimators must be a non-empty list of (name, estimator)")
    for item in estimators:
        if not (isinstance(item, tuple) and len(item) == 2 and hasattr(item[1], "fit")):
            raise ValueError(f"{owner}: each estimator must be (name, estimator), got {item!r}")
    check_names([name for name, _ in estimators], f"{owner} estimator")
    return list(estimators)


class _BaseModels(NamedEstimatorsMixin):
    """What voting and stacking share: every base estimator fitted on all rows, and their
    predictions side by side."""

    def _fit_bases(self, items: list[tuple[str, Any]], X: Any, y: FloatArray) -> None:
        self.estimators_ = [clone(est).fit(X, y) for _, est in items]
        self.named_estimators_ = {
            name: est for (name, _), est in zip(items, self.estimators_, strict=True)
        }

    def transform(self, X: Any) -> FloatArray:
        """The base estimators' predictions, ``(n, n_estimators)``."""
        check_is_fitted(self, "estimators_")
        return np.column_stack(
            [np.asarray(e.predict(X), dtype=np.float64) for e in self.estimators_]
        )


class VotingRegressor(RegressorMixin, _BaseModels):
    """``Σ_k w_k·f_k(x) / Σ_k w_k`` over the fitted ``estimators`` (equal weights by default).

    ``X`` goes to every estimator as it is, so the estimators may be pipelines that take a
    table and prepare it each their own way.
    """

    _items_attr = "estimators"

    def __init__(self, estimators: Sequence[tuple[str, Any]], weights: Any = None) -> None:
        self.estimators = estimators
        self.weights = weights

    def _weights(self, k: int) -> FloatArray:
        if self.weights is None:
            return np.full(k, 1.0 / k)
        w = np.asarray(self.weights, dtype=np.float64)
        if w.shape != (k,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError(
                f"weights must be {k} non-negative numbers (one per estimator) with a positive "
                f"sum, got {self.weights!r}"
            )
        return w / w.sum()

    def fit(self, X: Any, y: ArrayLike) -> Self:
        items = _check_estimators("VotingRegressor", self.estimators)
        self.weights_ = self._weights(len(items))
        self._fit_bases(items, X, check_array(y, ensure_2d=False, name="y"))
        return self

    def predict(self, X: Any) -> FloatArray:
        return self.transform(X) @ self.weights_


class StackingRegressor(RegressorMixin, _BaseModels):
    """``final_estimator`` fitted on the ``estimators``' out-of-fold predictions.

    ``cv`` is a number of folds (consecutive, as scikit-learn's default) or a splitter with a
    ``split`` method (e.g. :class:`model.selection.KFold`). Each base estimator predicts every
    row from a model that did not see it, so the final estimator learns how far to trust each
    one on new data; the base estimators are then refitted on all rows for prediction. The
    default ``final_estimator`` is a ridge regression (scikit-learn uses a ridge with its own
    cross-validated penalty). ``X`` goes to every estimator as it is (tables allowed).
    """

    _items_attr = "estimators"

    def __init__(
        self,
        estimators: Sequence[tuple[str, Any]],
        final_estimator: Any = None,
        cv: Any = 5,
    ) -> None:
        self.estimators = estimators
        self.final_estimator = final_estimator
        self.cv = cv

    def _splits(self, X: Any) -> list[tuple[Any, Any]]:
        from model.selection import KFold

        if hasattr(self.cv, "split"):
            return list(self.cv.split(X))
        check_int("cv", self.cv, 2)
        return list(KFold(int(self.cv)).split(X))

    def fit(self, X: Any, y: ArrayLike) -> Self:
        from model.linear import Ridge
        from model.selection import cross_val_predict

        items = _check_estimators("StackingRegressor", self.estimators)
        ya = check_array(y, ensure_2d=False, name="y")
        splits = self._splits(X)  # the same folds for every base estimator
        oof = np.column_stack([cross_val_predict(est, X, ya, cv=splits) for _, est in items])
        final = Ridge(alpha=1.0) if self.final_estimator is None else self.final_estimator
        self._fit_bases(items, X, ya)
        self.final_estimator_ = clone(final).fit(oof, ya)
        return self

    def predict(self, X: Any) -> FloatArray:
        base = self.transform(X)  # first: it checks that the model is fitted
        return np.asarray(self.final_estimator_.predict(base), dtype=np.float64)
