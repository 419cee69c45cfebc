"""Reference profiles of the training data and the population stability index (PSI).

Training summarises each feature (and the model's predictions) as a *profile*: a fixed set of
buckets and the share of training rows in each. Serving maps every live value to its bucket
(:func:`bin_index`), keeps only bucket counts per window, and compares the two histograms with

    PSI = Σ_b (a_b − e_b) · ln(a_b / e_b)

where ``e`` are the training shares and ``a`` the live shares. PSI is the symmetrised
Kullback–Leibler divergence KL(a‖e) + KL(e‖a) on the buckets: 0 when the histograms agree,
growing with both a bucket's share change and its relative size.

Buckets. A numeric feature gets ``n_bins`` quantile bins of its training values, so each holds
about 1/n_bins of the training rows and PSI weighs every part of the range alike (equal-width
bins would spend most buckets on empty tails of skewed features such as lot area). The inner
edges are observed values (the ``inverted_cdf`` quantile) and bins are closed on the right,
``(e_{i-1}, e_i]``, so an integer feature (rooms, quality grade) puts each value wholly in one
bin; repeated edges from heavy ties are merged, giving fewer, larger bins. A categorical feature
gets one bucket per training category plus one for *unseen* categories. Both get a last bucket
for *missing* values, so a client that starts omitting a field is drift too.

Profile format (stored in the artifact metadata, see docs/ARCHITECTURE.md "Contract 1"):

* numeric: ``{"kind": "numeric", "edges": [e_1 .. e_k], "shares": [k + 1 bins, missing],
  "count": n}``
* categorical: ``{"kind": "categorical", "categories": [c_1 .. c_m],
  "shares": [m categories, unseen, missing], "count": n}``

Shares are fractions of all ``n`` training rows (missing included) and sum to 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from model.base import FloatArray, check_array

Profile = dict[str, Any]
IntArray = NDArray[np.intp]

#: Smoothing for empty buckets in :func:`psi` (see there).
PSI_EPS = 1e-4
#: Rule-of-thumb PSI levels (Siddiqi, *Credit Risk Scorecards*, Wiley 2006, ch. 8; the
#: convention in credit scoring since): below 0.1 the population is stable, 0.1-0.25 is a
#: moderate shift worth watching, above 0.25 a significant shift. They ignore sample size
#: (Yurdakul, *Statistical Properties of the Population Stability Index*, 2018): with k
#: buckets, n live and N training rows, same-distribution sampling noise alone gives
#: E[PSI] ≈ (k − 1)(1/n + 1/N), about 0.05 for 10 bins and n = 200, safely under 0.1.
PSI_STABLE = 0.1
PSI_SIGNIFICANT = 0.25


def _numeric_values(x: ArrayLike, name: str) -> FloatArray:
    """A 1-D float array with NaN for missing; ``None`` in an object array counts as missing."""
    arr = np.asarray(x)
    if arr.dtype == object:
        arr = np.array([math.nan if v is None else v for v in arr.ravel()], dtype=object)
    return check_array(arr, ensure_2d=False, allow_nan=True, min_samples=0, name=name)


def numeric_profile(x: ArrayLike, n_bins: int = 10) -> Profile:
    """Quantile-bin profile of a numeric column (NaN is missing); see the module docstring."""
    if not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    values = _numeric_values(x, "x")
    if values.size == 0:
        raise ValueError("x: cannot profile an empty column")
    present = values[~np.isnan(values)]
    if present.size and n_bins > 1:
        q = np.arange(1, n_bins) / n_bins
        edges = np.unique(np.quantile(present, q, method="inverted_cdf"))
    else:
        edges = np.empty(0)
    profile: Profile = {"kind": "numeric", "edges": edges.tolist(), "shares": [], "count": 0}
    counts = np.bincount(bin_index(profile, values), minlength=edges.size + 2)
    profile["shares"] = (counts / values.size).tolist()
    profile["count"] = int(values.size)
    return profile


def categorical_profile(x: ArrayLike, categories: Sequence[str] | None = None) -> Profile:
    """Category-share profile (``None`` is missing); ``categories`` default to the sorted
    distinct values of ``x`` and may be given to match an encoder's categories."""
    values = np.asarray(x, dtype=object).ravel()
    if values.size == 0:
        raise ValueError("x: cannot profile an empty column")
    if categories is None:
        cats = sorted({str(v) for v in set(values.tolist()) if not _is_missing(v)})
    else:
        cats = [str(c) for c in categories]
        if len(set(cats)) != len(cats):
            raise ValueError(f"categories must be distinct, got {cats}")
    profile: Profile = {"kind": "categorical", "categories": cats, "shares": [], "count": 0}
    counts = np.bincount(bin_index(profile, values), minlength=len(cats) + 2)
    profile["shares"] = (counts / values.size).tolist()
    profile["count"] = int(values.size)
    return profile


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def n_buckets(profile: Mapping[str, Any]) -> int:
    """Number of buckets of a profile (its bins or categories, then unseen/missing)."""
    if profile.get("kind") == "numeric":
        return len(profile["edges"]) + 2
    if profile.get("kind") == "categorical":
        return len(profile["categories"]) + 2
    raise ValueError(f"unknown profile kind {profile.get('kind')!r}")


def bin_index(profile: Mapping[str, Any], x: ArrayLike) -> IntArray:
    """The bucket of every value of ``x``, an int array in ``[0, n_buckets(profile))``.

    Numeric: ``searchsorted`` on the edges (bins closed on the right), NaN/None to the last
    bucket. Categorical: one dict lookup per value; a category outside the profile goes to
    the "unseen" bucket, ``None``/NaN to "missing". Serving adds ``np.bincount`` of these to
    its window counts, so it never stores raw values.
    """
    k = n_buckets(profile)
    if profile["kind"] == "numeric":
        values = _numeric_values(x, "x")
        edges = np.asarray(profile["edges"], dtype=np.float64)
        idx = np.searchsorted(edges, values, side="left")
        idx[np.isnan(values)] = k - 1
        return idx.astype(np.intp, copy=False)
    unseen, missing = k - 2, k - 1
    lookup: dict[Any, int] = {c: i for i, c in enumerate(profile["categories"])}
    lookup[None] = missing
    items = np.asarray(x, dtype=object).ravel().tolist()
    idx = np.array([lookup.get(v, -1) for v in items], dtype=np.intp)
    for i in np.flatnonzero(idx < 0):  # the rare rest: NaN, non-str values, unseen categories
        v = items[i]
        idx[i] = missing if _is_missing(v) else lookup.get(str(v), unseen)
    return idx


def bin_counts(profile: Mapping[str, Any], x: ArrayLike) -> IntArray:
    """Counts per bucket of ``x`` (length ``n_buckets(profile)``)."""
    return np.bincount(bin_index(profile, x), minlength=n_buckets(profile))


def _shares(h: ArrayLike, name: str) -> FloatArray:
    arr = check_array(h, ensure_2d=False, name=name)
    if (arr < 0).any():
        raise ValueError(f"{name}: shares or counts must be non-negative, got {arr.tolist()}")
    total = arr.sum()
    if total <= 0:
        raise ValueError(f"{name}: the histogram is empty (all zero)")
    return arr / total


def psi(expected: ArrayLike, actual: ArrayLike, eps: float = PSI_EPS) -> float:
    """Population stability index Σ (a − e) ln(a / e) of two histograms over the same buckets.

    Both are normalised to sum to 1 first, so bucket counts may be passed as they are. A
    bucket empty on one side makes ln(a / e) infinite, and that is common, not a corner case:
    the "unseen" and usually the "missing" bucket are empty in training. Shares below ``eps``
    are raised to ``eps`` (1e-4, i.e. one row in 10,000, below anything a training set of a
    few thousand rows can resolve), which turns "infinite" into a finite, size-aware penalty:
    one live row in 200 landing in a training-empty bucket adds (0.005 − 1e-4)·ln(50) ≈ 0.02,
    while 5% of them add 0.05·ln(500) ≈ 0.31, over :data:`PSI_SIGNIFICANT` on its own.
    """
    e = _shares(expected, "expected")
    a = _shares(actual, "actual")
    if e.shape != a.shape:
        raise ValueError(
            f"expected and actual have different numbers of buckets: {e.size} vs {a.size}"
        )
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    e = np.maximum(e, eps)
    a = np.maximum(a, eps)
    return float(np.sum((a - e) * np.log(a / e)))


def profile_psi(profile: Mapping[str, Any], x: ArrayLike, eps: float = PSI_EPS) -> float:
    """PSI of live values ``x`` against a stored profile."""
    return psi(profile["shares"], bin_counts(profile, x), eps=eps)


def psi_level(value: float) -> Literal["stable", "moderate", "significant"]:
    """The rule-of-thumb reading of a PSI value (see :data:`PSI_STABLE`)."""
    if value < PSI_STABLE:
        return "stable"
    if value <= PSI_SIGNIFICANT:
        return "moderate"
    return "significant"


def build_reference(
    columns: Mapping[str, ArrayLike],
    kinds: Mapping[str, str],
    predictions: ArrayLike,
    n_bins: int = 10,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """``{"features": {name: profile}, "prediction": profile}`` for the artifact metadata.

    ``kinds`` says which profile each column gets and selects the columns (every name in it
    must be in ``columns``); ``categories`` optionally fixes a categorical feature's buckets
    to the encoder's categories, so "unseen" means the same thing to the model and the drift
    check.
    """
    features: dict[str, Profile] = {}
    for name, kind in kinds.items():
        if name not in columns:
            raise ValueError(f"column {name!r} is in kinds but not in columns")
        if kind == "numeric":
            features[name] = numeric_profile(columns[name], n_bins=n_bins)
        elif kind == "categorical":
            cats = None if categories is None else categories.get(name)
            features[name] = categorical_profile(columns[name], categories=cats)
        else:
            raise ValueError(f"column {name!r}: unknown kind {kind!r} (numeric or categorical)")
    return {"features": features, "prediction": numeric_profile(predictions, n_bins=n_bins)}
