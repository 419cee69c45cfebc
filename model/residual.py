"""A chain of regressors, each fitted to what the ones before it left unexplained.

:class:`ResidualRegressor` predicts ``F(x) = f_1(x) + f_2(x) + … + f_K(x)``, where ``f_1``
is fitted to ``y`` and each ``f_k`` to the residuals ``r_k = y − Σ_{j<k} f_j(x)`` of the
fitted ones before it, on the same training rows. It is one round of boosting with
different kinds of models: a linear model first takes the smooth, global effects (which
trees can only approximate by many steps and cannot extrapolate), then trees model what is
left (interactions, thresholds), starting from the linear model's prediction instead of a
constant, as scikit-learn's GradientBoostingRegressor does with ``init=``.

``X`` goes to every estimator as it is, so the estimators may be pipelines that take a table
and prepare it each their own way (one-hot and scaling for the linear model, native
categories for the trees).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike

from model.base import FloatArray, RegressorMixin, check_array, check_is_fitted, clone
from model.pipeline import NamedEstimatorsMixin, check_names


class ResidualRegressor(RegressorMixin, NamedEstimatorsMixin):
    """``Σ_k f_k(x)``, each ``f_k`` fitted to ``y`` minus the fitted predictions before it.

    ``estimators`` is a list of ``(name, estimator)``, first fitted first; their parameters
    are addressed as ``<name>__<param>``.
    """

    _items_attr = "estimators"

    def __init__(self, estimators: Sequence[tuple[str, Any]]) -> None:
        self.estimators = estimators

    def _check_estimators(self) -> list[tuple[str, Any]]:
        items = self.estimators
        if not isinstance(items, list | tuple) or not items:
            raise ValueError(
                "ResidualRegressor: estimators must be a non-empty list of (name, estimator)"
            )
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2 and hasattr(item[1], "fit")):
                raise ValueError(
                    f"ResidualRegressor: each estimator must be (name, estimator), got {item!r}"
                )
        check_names([name for name, _ in items], "ResidualRegressor estimator")
        return list(items)

    def fit(self, X: Any, y: ArrayLike) -> Self:
        items = self._check_estimators()
        residual = check_array(y, ensure_2d=False, name="y").copy()
        fitted = []
        for _, est in items:
            model = clone(est).fit(X, residual)
            residual -= np.asarray(model.predict(X), dtype=np.float64)
            fitted.append(model)
        self.estimators_ = fitted
        self.named_estimators_ = {name: m for (name, _), m in zip(items, fitted, strict=True)}
        return self

    def predict(self, X: Any) -> FloatArray:
        check_is_fitted(self, "estimators_")
        out = np.asarray(self.estimators_[0].predict(X), dtype=np.float64).copy()
        for model in self.estimators_[1:]:
            out += np.asarray(model.predict(X), dtype=np.float64)
        return out
