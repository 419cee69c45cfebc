"""Prediction intervals by split conformal prediction on out-of-fold residuals.

For each training row, the model fitted on the CV folds without it predicts ``p̂ᵢ``; its
residual, on the scale the model is fitted on (log for a log target, dollars otherwise), is
``rᵢ = |f(yᵢ) − f(p̂ᵢ)|``. For a level ``1 − α``, the half-width ``q`` is the
``⌈(n + 1)(1 − α)⌉``-th smallest of the ``n`` residuals, and the interval of a new house is

    [f⁻¹(f(p̂) − q), f⁻¹(f(p̂) + q)]

(Vovk et al. 2005; Lei et al. 2018): if the new house is exchangeable with the training rows,
it falls inside with probability at least ``1 − α``. The residuals come from models fitted on
80 % of the training rows (5 folds) while the served model saw all of them, so the intervals
lean slightly wide; the coverage measured on the held-out test part says how much.
On the log scale the interval is a fixed *ratio* around the price (±q in log is ×e^±q), which
is how house-price errors behave.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np

from model.base import FloatArray

#: The levels stored in every artifact; the service serves one of them (its setting).
LEVELS: tuple[float, ...] = (0.8, 0.9, 0.95)
METHOD = "split-conformal, absolute out-of-fold CV residuals"

Space = Literal["log", "price"]


def _to_space(values: FloatArray, space: Space) -> FloatArray:
    return np.log(values) if space == "log" else values


def conformal_halfwidth(residuals: FloatArray, level: float) -> float:
    """The ``⌈(n + 1)·level⌉``-th smallest absolute residual (``inf`` when n is too small)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    r = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    k = math.ceil((r.size + 1) * level)
    return float(r[k - 1]) if k <= r.size else math.inf


def bounds(prices: FloatArray, halfwidth: float, space: Space) -> tuple[FloatArray, FloatArray]:
    """``(low, high)`` in dollars around predicted ``prices``."""
    p = np.asarray(prices, dtype=np.float64)
    if space == "log":
        return p * math.exp(-halfwidth), p * math.exp(halfwidth)
    return p - halfwidth, p + halfwidth


def coverage(y: FloatArray, prices: FloatArray, halfwidth: float, space: Space) -> float:
    """The share of ``y`` inside its interval."""
    low, high = bounds(prices, halfwidth, space)
    return float(np.mean((y >= low) & (y <= high)))


def calibrate(
    y_train: FloatArray,
    oof: FloatArray,
    y_test: FloatArray,
    p_test: FloatArray,
    space: Space,
    levels: Sequence[float] = LEVELS,
) -> dict[str, Any]:
    """Contract 1's ``intervals`` record: half-width and test coverage for each level
    (``null`` both where the residuals are too few: fewer than ``1 / (1 − level) − 1``)."""
    residuals = _to_space(y_train, space) - _to_space(oof, space)
    return {
        "method": METHOD,
        "space": space,
        "residuals": int(residuals.size),
        "levels": [_level(residuals, level, y_test, p_test, space) for level in levels],
    }


def _level(
    residuals: FloatArray, level: float, y_test: FloatArray, p_test: FloatArray, space: Space
) -> dict[str, Any]:
    """One level's record; with too few residuals for it, ``null`` half-width and coverage
    (no finite interval is valid, and JSON has no infinity)."""
    q = conformal_halfwidth(residuals, level)
    if not math.isfinite(q):
        return {"level": level, "halfwidth": None, "coverage_test": None}
    return {"level": level, "halfwidth": q, "coverage_test": coverage(y_test, p_test, q, space)}


@dataclass(frozen=True)
class IntervalRule:
    """The interval one stored level gives a served price, in plain floats (a few per house):
    ``[p·e^−q, p·e^q]`` on the log scale, ``[p − q, p + q]`` in dollars."""

    level: float
    halfwidth: float
    space: Space

    @classmethod
    def from_record(cls, record: Mapping[str, Any], level: float) -> IntervalRule | None:
        """The rule of ``level`` in an artifact's ``intervals`` record; ``None`` when that
        level had too few residuals for a finite interval. A level the record does not hold
        raises ``ValueError`` listing the ones it does."""
        entries = {float(e["level"]): e for e in record["levels"]}
        found = next((e for lv, e in entries.items() if math.isclose(lv, level)), None)
        if found is None:
            stored = ", ".join(f"{lv:g}" for lv in sorted(entries))
            raise ValueError(f"level {level:g} is not stored; the artifact's levels: {stored}")
        if found["halfwidth"] is None:
            return None
        space = record["space"]
        if space not in ("log", "price"):
            raise ValueError(f"unknown interval space {space!r}")
        return cls(float(found["level"]), float(found["halfwidth"]), space)

    @cached_property
    def factors(self) -> tuple[Callable[[float], float], Callable[[float], float]]:
        """``(low, high)``: a price's bounds, as two functions of it (made once per rule, not
        per request)."""
        q = self.halfwidth
        if self.space == "log":
            lo, hi = math.exp(-q), math.exp(q)
            return (lambda p: p * lo), (lambda p: p * hi)
        return (lambda p: p - q), (lambda p: p + q)

    def around(self, prices: Sequence[float]) -> list[dict[str, float]]:
        """``{"level", "low", "high"}`` in dollars around each price."""
        low, high, level = *self.factors, self.level
        return [{"level": level, "low": low(p), "high": high(p)} for p in prices]

    def of(self, price: float) -> dict[str, float]:
        """``{"level", "low", "high"}`` in dollars around one price (``around`` of one)."""
        low, high = self.factors
        return {"level": self.level, "low": low(price), "high": high(price)}
