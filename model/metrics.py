"""Regression, classification and clustering metrics, written to agree with scikit-learn.

Every function validates its inputs once (same length, non-empty, finite numbers where
numbers are expected) and raises a ``ValueError`` that says which argument is wrong, so a
metric never quietly averages over a broadcast or a NaN.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from model.base import FloatArray, check_array

Average = Literal["binary", "macro", "micro", "weighted"]


# --------------------------------------------------------------------------- validation


def _check_regression(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[FloatArray, FloatArray]:
    t = check_array(y_true, ensure_2d=False, name="y_true")
    p = check_array(y_pred, ensure_2d=False, name="y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred have different lengths: {t.shape[0]} vs {p.shape[0]}")
    return t, p


def _check_labels(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    for name, a in (("y_true", t), ("y_pred", p)):
        if a.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D array of labels, got shape {a.shape}")
        if a.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one label, got none")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ValueError(f"{name}: holds missing or infinite labels")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred have different lengths: {t.shape[0]} vs {p.shape[0]}")
    return t, p


# --------------------------------------------------------------------------- regression


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """MSE = (1/n) Σ (yᵢ - ŷᵢ)², the loss the linear models minimise."""
    t, p = _check_regression(y_true, y_pred)
    return float(np.mean((t - p) ** 2))


def root_mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """RMSE = √MSE: the typical error in the target's own unit (dollars)."""
    return float(np.sqrt(mean_squared_error(y_true, y_pred)))


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """MAE = (1/n) Σ |yᵢ - ŷᵢ|: less swayed by a few large misses than RMSE."""
    t, p = _check_regression(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def r2_score(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """R² = 1 - Σ(yᵢ - ŷᵢ)² / Σ(yᵢ - ȳ)²: the share of the target's variance explained.

    For a constant ``y_true`` the ratio is undefined; like scikit-learn we return 1.0 for a
    perfect prediction and 0.0 otherwise, so the score stays finite. With one sample the
    variance is undefined and scikit-learn returns NaN; we refuse instead.
    """
    t, p = _check_regression(y_true, y_pred)
    if t.shape[0] < 2:
        raise ValueError("r2_score needs at least two samples, got 1")
    ss_res = float(np.sum((t - p) ** 2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def mean_absolute_percentage_error(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """MAPE = (1/n) Σ |yᵢ - ŷᵢ| / max(|yᵢ|, ε), a fraction (0.1 is 10 %), not a percentage.

    ε is float64's machine epsilon, as in scikit-learn: a zero target gives a huge but finite
    term instead of a division by zero.
    """
    t, p = _check_regression(y_true, y_pred)
    eps = np.finfo(np.float64).eps
    return float(np.mean(np.abs(t - p) / np.maximum(np.abs(t), eps)))


# --------------------------------------------------------------------------- classification


def accuracy_score(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """The share of labels predicted exactly."""
    t, p = _check_labels(y_true, y_pred)
    return float(np.mean(t == p))


def _sorted_union(t: NDArray[Any], p: NDArray[Any]) -> NDArray[Any]:
    try:
        return np.unique(np.concatenate([t, p]))
    except TypeError as exc:  # e.g. str mixed with int in an object array
        raise ValueError(f"labels cannot be compared with each other: {exc}") from None


def confusion_matrix(
    y_true: ArrayLike, y_pred: ArrayLike, labels: ArrayLike | None = None
) -> NDArray[np.int64]:
    """C[i, j] = number of samples whose true label is ``labels[i]`` and prediction ``labels[j]``.

    ``labels`` defaults to the sorted union of both arrays; pairs whose labels are not listed
    are left out, as in scikit-learn.
    """
    t, p = _check_labels(y_true, y_pred)
    labs = _sorted_union(t, p) if labels is None else np.asarray(labels)
    if labs.ndim != 1 or labs.shape[0] == 0:
        raise ValueError("labels: expected a non-empty 1-D list of labels")
    index = {lab: i for i, lab in enumerate(labs.tolist())}
    if len(index) != labs.shape[0]:
        raise ValueError("labels: holds duplicates")
    k = labs.shape[0]
    ti = np.array([index.get(v, -1) for v in t.tolist()], dtype=np.int64)
    pi = np.array([index.get(v, -1) for v in p.tolist()], dtype=np.int64)
    keep = (ti >= 0) & (pi >= 0)
    flat = np.bincount(ti[keep] * k + pi[keep], minlength=k * k)
    return flat.reshape(k, k).astype(np.int64)


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """num / den with 0 where den is 0 (scikit-learn's zero_division=0 result)."""
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _prf(
    y_true: ArrayLike, y_pred: ArrayLike, average: Average, pos_label: Any
) -> tuple[float, float, float]:
    """Precision tp/(tp+fp), recall tp/(tp+fn), F1 2tp/(2tp+fp+fn), averaged as asked.

    * binary: the scores of ``pos_label`` alone;
    * macro: the unweighted mean over labels (every class counts the same);
    * micro: tp, fp, fn summed over labels first (equals accuracy for single-label data);
    * weighted: the mean over labels weighted by support (the true count of each label).

    An undefined ratio (nothing predicted or nothing true for a label) counts as 0, which is
    scikit-learn's default result (it also warns).
    """
    t, p = _check_labels(y_true, y_pred)
    present = _sorted_union(t, p)
    if average == "binary":
        if present.shape[0] > 2:
            raise ValueError(
                f"average='binary' needs at most two labels, got {present.shape[0]}: "
                f"{present.tolist()}; choose average='macro', 'micro' or 'weighted'"
            )
        if present.shape[0] == 2 and pos_label not in present.tolist():
            raise ValueError(f"pos_label={pos_label!r} is not a label: {present.tolist()}")
    elif average not in ("macro", "micro", "weighted"):
        raise ValueError(
            f"average must be 'binary', 'macro', 'micro' or 'weighted', got {average!r}"
        )
    cm = confusion_matrix(t, p, labels=present).astype(np.float64)
    tp, pred, true = np.diag(cm).copy(), cm.sum(axis=0), cm.sum(axis=1)  # per label
    if average == "binary":
        keep = [i for i, lab in enumerate(present.tolist()) if lab == pos_label]
        tp, pred, true = tp[keep], pred[keep], true[keep]
        if not keep:  # pos_label never occurs: every ratio is 0/0
            return 0.0, 0.0, 0.0
    if average == "micro":
        tp, pred, true = tp.sum(keepdims=True), pred.sum(keepdims=True), true.sum(keepdims=True)
    precision = _ratio(tp, pred)
    recall = _ratio(tp, true)
    f1 = _ratio(2 * tp, pred + true)
    if average == "weighted":
        total = true.sum()
        if total == 0:
            return 0.0, 0.0, 0.0
        w = true / total
        return float(precision @ w), float(recall @ w), float(f1 @ w)
    return float(precision.mean()), float(recall.mean()), float(f1.mean())


def precision_score(
    y_true: ArrayLike, y_pred: ArrayLike, *, average: Average = "binary", pos_label: Any = 1
) -> float:
    """Precision = tp / (tp + fp): of the samples called positive, the share that are."""
    return _prf(y_true, y_pred, average, pos_label)[0]


def recall_score(
    y_true: ArrayLike, y_pred: ArrayLike, *, average: Average = "binary", pos_label: Any = 1
) -> float:
    """Recall = tp / (tp + fn): of the positive samples, the share that were found."""
    return _prf(y_true, y_pred, average, pos_label)[1]


def f1_score(
    y_true: ArrayLike, y_pred: ArrayLike, *, average: Average = "binary", pos_label: Any = 1
) -> float:
    """F1 = 2tp / (2tp + fp + fn), the harmonic mean of precision and recall."""
    return _prf(y_true, y_pred, average, pos_label)[2]


def _average_ranks(x: FloatArray) -> FloatArray:
    """Ranks 1..n of ``x``; tied values share the mean of the ranks they span."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # Start index of each run of equal values, and the run's average 1-based rank.
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.shape[0]]
    run_rank = (starts + 1 + ends) / 2.0  # mean of starts+1 .. ends
    ranks = np.empty_like(x)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def roc_auc_score(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve of a binary problem, by the Mann–Whitney rank formula.

    AUC = (Σ ranks of positives - n₊(n₊+1)/2) / (n₊ n₋) is the probability that a random
    positive scores above a random negative; a tie counts one half, which is exactly what the
    average ranks give and what the trapezoids of scikit-learn's curve integrate to. The
    positive class is the larger of the two labels, as in scikit-learn.
    """
    t = np.asarray(y_true)
    s = check_array(y_score, ensure_2d=False, name="y_score")
    if t.ndim != 1:
        raise ValueError(f"y_true: expected a 1-D array of labels, got shape {t.shape}")
    if t.shape[0] != s.shape[0]:
        raise ValueError(f"y_true and y_score have different lengths: {t.shape[0]} vs {s.shape[0]}")
    if t.dtype.kind == "f" and not np.isfinite(t).all():
        raise ValueError("y_true: holds missing or infinite labels")
    classes = np.unique(t)
    if classes.shape[0] != 2:
        raise ValueError(
            f"roc_auc_score needs exactly two classes in y_true, got {classes.shape[0]}: "
            f"{classes.tolist()} (the AUC is undefined otherwise)"
        )
    pos = t == classes[1]
    n_pos = float(pos.sum())
    n_neg = float(t.shape[0] - n_pos)
    ranks = _average_ranks(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


# --------------------------------------------------------------------------- clustering


def _check_clustering(X: ArrayLike, labels: ArrayLike) -> tuple[FloatArray, NDArray[Any]]:
    Xa = check_array(X)
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"labels: expected a 1-D array, got shape {lab.shape}")
    if lab.shape[0] != Xa.shape[0]:
        raise ValueError(
            f"X and labels have different numbers of samples: {Xa.shape[0]} vs {lab.shape[0]}"
        )
    return Xa, lab


def inertia(X: ArrayLike, labels: ArrayLike, centers: ArrayLike) -> float:
    """Σᵢ ||xᵢ - c_{labelᵢ}||²: the within-cluster sum of squares k-means minimises."""
    Xa, lab = _check_clustering(X, labels)
    C = check_array(centers, name="centers")
    if C.shape[1] != Xa.shape[1]:
        raise ValueError(f"centers have {C.shape[1]} features but X has {Xa.shape[1]}")
    idx = lab.astype(np.int64, copy=False)
    if (idx != lab).any() or idx.min() < 0 or idx.max() >= C.shape[0]:
        raise ValueError(
            f"labels must be integers in [0, {C.shape[0]}) indexing the rows of centers"
        )
    return float(np.sum((Xa - C[idx]) ** 2))


def silhouette_score(X: ArrayLike, labels: ArrayLike) -> float:
    """Mean over samples of s = (b - a) / max(a, b), with Euclidean distances.

    a is the mean distance to the other members of the sample's own cluster, b the smallest
    mean distance to the members of another cluster; s is 0 for a sample alone in its
    cluster (scikit-learn's convention). Distances are computed from differences, a block of
    rows at a time, so memory stays O(block · n) and no cancellation creeps in.
    """
    Xa, lab = _check_clustering(X, labels)
    n = Xa.shape[0]
    classes, code = np.unique(lab, return_inverse=True)
    k = classes.shape[0]
    if not 2 <= k <= n - 1:
        raise ValueError(
            f"silhouette_score needs 2 <= number of labels <= n_samples - 1, "
            f"got {k} labels for {n} samples"
        )
    onehot = np.zeros((n, k))
    onehot[np.arange(n), code] = 1.0
    sizes = onehot.sum(axis=0)
    block = max(1, 2**22 // max(1, n * Xa.shape[1]))
    s = np.empty(n)
    for start in range(0, n, block):
        rows = slice(start, min(n, start + block))
        diff = Xa[rows, None, :] - Xa[None, :, :]
        D = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        sums = D @ onehot  # sum of distances from each row to each cluster
        own = code[rows]
        r = np.arange(sums.shape[0])
        own_size = sizes[own]
        with np.errstate(invalid="ignore", divide="ignore"):
            a = np.divide(sums[r, own], own_size - 1, out=np.zeros(r.shape[0]), where=own_size > 1)
            mean_other = sums / sizes
            mean_other[r, own] = np.inf
            b = mean_other.min(axis=1)
            sb = np.where(own_size > 1, (b - a) / np.maximum(a, b), 0.0)
        s[rows] = np.nan_to_num(sb)
    return float(np.mean(s))
