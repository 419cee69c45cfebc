"""Pipeline: a chain of transformers ending in an estimator, fitted and used as one.

Why a pipeline: the preprocessing learned on the training rows (means, categories, scales)
travels with the model, so serving applies exactly the transformation training saw, and a
cross-validation refits it on every fold instead of leaking the held-out rows into it.

``fit(X, y)`` runs ``X_{k+1} = step_k.fit_transform(X_k, y)`` for every step but the last,
then ``last.fit(X_n, y)``; ``predict(X)`` runs ``transform`` through the same chain and
ends with ``last.predict``. Parameters are addressed as ``<step>__<param>`` (recursively),
so a grid search can tune ``model__alpha`` or ``model__regressor__alpha``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

from model.base import BaseEstimator, NotFittedError, check_is_fitted
from model.preprocessing import ValidatedTransform, transform_validated

#: A step that does nothing; ``None`` means the same.
PASSTHROUGH = "passthrough"


class NamedEstimatorsMixin(BaseEstimator):
    """``get_params``/``set_params`` for a list of ``(name, estimator, ...)`` items.

    The list lives in the hyperparameter named ``_items_attr``. Its estimators are
    addressed by name (``scale``) and their parameters as ``scale__with_mean``; replacing
    a named estimator rebuilds the list with the new one in place, as scikit-learn does.
    """

    _items_attr = "steps"

    def _items(self) -> list[tuple[Any, ...]]:
        return list(getattr(self, self._items_attr))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        # deep: an own estimator-valued hyperparameter (a stack's final_estimator) lists its
        # nested parameters too, as set_params accepts them
        out = super().get_params(deep=deep)
        if not deep:
            return out
        items = self._items()
        for name, est, *_ in items:
            out[name] = est
        for name, est, *_ in items:
            if hasattr(est, "get_params"):
                for key, value in est.get_params(deep=True).items():
                    out[f"{name}__{key}"] = value
        return out

    def set_params(self, **params: Any) -> Self:
        if self._items_attr in params:
            setattr(self, self._items_attr, params.pop(self._items_attr))
        own = set(self._param_names())
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            names = [item[0] for item in self._items()]
            if sub:
                nested.setdefault(name, {})[sub] = value
            elif name in names:
                items = self._items()
                i = names.index(name)
                items[i] = (name, value, *items[i][2:])
                setattr(self, self._items_attr, items)
            elif name in own:
                setattr(self, name, value)
            else:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; valid: "
                    f"{sorted(own | set(names))}"
                )
        for name, sub_params in nested.items():
            named = {item[0]: item[1] for item in self._items()}
            if name in named and hasattr(named[name], "set_params"):
                named[name].set_params(**sub_params)
            elif name in own and hasattr(getattr(self, name), "set_params"):
                getattr(self, name).set_params(**sub_params)
            else:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}: no estimator "
                    f"of that name; valid: {sorted(named)}"
                )
        return self


def check_names(names: Sequence[str], what: str) -> None:
    """Names must be unique strings without ``__`` (it separates nested parameters)."""
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name or "__" in name:
            raise ValueError(f"{what} name {name!r} must be a non-empty string without '__'")
        if name in seen:
            raise ValueError(f"{what} names must be unique; {name!r} appears twice")
        seen.add(name)


def _is_passthrough(est: Any) -> bool:
    return est is None or (isinstance(est, str) and est == PASSTHROUGH)


class Pipeline(ValidatedTransform, NamedEstimatorsMixin):
    """``steps = [(name, transformer), ..., (name, estimator)]``; fits them in order.

    Steps are fitted in place (``pipeline.named_steps["scale"].mean_`` is the learned
    mean). A step may be ``"passthrough"`` (or ``None``) to switch it off in a grid search.
    """

    _items_attr = "steps"

    def __init__(self, steps: Sequence[tuple[str, Any]]) -> None:
        self.steps = steps

    @property
    def named_steps(self) -> dict[str, Any]:
        return {name: est for name, est in self.steps}

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, key: int | str | slice) -> Any:
        """A step by position or name; a slice is a sub-pipeline sharing the fitted steps."""
        if isinstance(key, slice):
            sub = Pipeline(list(self.steps)[key])
            if hasattr(self, "fitted_steps_"):
                sub.fitted_steps_ = tuple(est for _, est in sub.steps)
            return sub
        return self.named_steps[key] if isinstance(key, str) else self.steps[key][1]

    @property
    def _final_estimator(self) -> Any:
        return self.steps[-1][1]

    @property
    def _estimator_type(self) -> str | None:
        return getattr(self._final_estimator, "_estimator_type", None)

    def _validate_steps(self) -> None:
        steps = list(self.steps)
        if not steps:
            raise ValueError("Pipeline: steps is empty; give at least one (name, estimator)")
        for item in steps:
            if not isinstance(item, tuple) or len(item) != 2:
                raise ValueError(
                    f"Pipeline: each step must be a (name, estimator) pair, got {item!r}"
                )
        check_names([name for name, _ in steps], "Pipeline step")
        for name, est in steps[:-1]:
            if _is_passthrough(est):
                continue
            if not (hasattr(est, "fit") and hasattr(est, "transform")):
                raise ValueError(
                    f"Pipeline: step {name!r} ({type(est).__name__}) must have fit and "
                    f"transform, as every step but the last"
                )
        name, last = steps[-1]
        if not _is_passthrough(last) and not hasattr(last, "fit"):
            raise ValueError(f"Pipeline: final step {name!r} has no fit method")

    def _check_fitted(self) -> None:
        """Fitted, and no step swapped since (a new step would be unfitted)."""
        check_is_fitted(self, "fitted_steps_")
        current = tuple(est for _, est in self.steps)
        if len(current) != len(self.fitted_steps_) or any(
            a is not b for a, b in zip(current, self.fitted_steps_, strict=False)
        ):
            raise NotFittedError("Pipeline: steps were replaced after fit; call 'fit' again")

    def _fit_transforms(self, X: Any, y: Any) -> Any:
        self._validate_steps()
        Xt = X
        for name, est in self.steps[:-1]:
            if _is_passthrough(est):
                continue
            if hasattr(est, "fit_transform"):
                Xt = est.fit_transform(Xt, y)
            else:
                Xt = est.fit(Xt, y).transform(Xt)
            del name
        return Xt

    def _transforms(self, X: Any, steps: Sequence[tuple[str, Any]]) -> Any:
        """Apply fitted transforms; only the first one validates (the outer boundary).

        The output of one of our transformers is already a clean array, so the next step
        skips re-checking it; after a foreign step, its output goes through ``transform``.
        """
        Xt = X
        validated = False  # is Xt the output of one of our own (validating) transformers?
        for _, est in steps:
            if _is_passthrough(est):
                continue
            Xt = transform_validated(est, Xt) if validated else est.transform(Xt)
            validated = isinstance(est, ValidatedTransform)
        return Xt

    def fit(self, X: Any, y: Any = None) -> Self:
        Xt = self._fit_transforms(X, y)
        last = self._final_estimator
        if not _is_passthrough(last):
            last.fit(Xt, y)
        self.fitted_steps_ = tuple(est for _, est in self.steps)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        Xt = self._fit_transforms(X, y)
        last = self._final_estimator
        self.fitted_steps_ = tuple(est for _, est in self.steps)
        if _is_passthrough(last):
            return Xt
        if hasattr(last, "fit_transform"):
            return last.fit_transform(Xt, y)
        return last.fit(Xt, y).transform(Xt)

    def predict(self, X: Any) -> NDArray[Any]:
        self._check_fitted()
        Xt = self._transforms(X, self.steps[:-1])
        return np.asarray(self._final_estimator.predict(Xt))

    def transform(self, X: Any) -> Any:
        self._check_fitted()
        return self._transforms(X, self.steps)

    def _transform(self, X: Any) -> NDArray[Any]:
        """Every step on already validated input (used when nested in a composite)."""
        Xt = X
        for _, est in self.steps:
            if not _is_passthrough(est):
                Xt = transform_validated(est, Xt)
        return np.asarray(Xt)

    def score(self, X: Any, y: Any) -> float:
        """The final estimator's own score on the transformed ``X``."""
        self._check_fitted()
        Xt = self._transforms(X, self.steps[:-1])
        return float(self._final_estimator.score(Xt, y))

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> list[str]:
        """Names through every step that has ``get_feature_names_out``."""
        names = None if input_features is None else list(input_features)
        for name, est in self.steps:
            if _is_passthrough(est):
                continue
            if not hasattr(est, "get_feature_names_out"):
                if est is self._final_estimator:
                    break
                raise ValueError(f"Pipeline: step {name!r} does not provide feature names")
            names = list(est.get_feature_names_out(names))
        if names is None:
            raise ValueError("Pipeline: no step provides feature names")
        return names


def make_pipeline(*steps: Any) -> Pipeline:
    """A :class:`Pipeline` whose step names are the lower-cased class names."""
    names: list[str] = []
    for est in steps:
        base = "passthrough" if _is_passthrough(est) else type(est).__name__.lower()
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}-{k}"
        names.append(name)
    return Pipeline(list(zip(names, steps, strict=True)))
