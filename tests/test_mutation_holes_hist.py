"""model.hist: what mutation testing found the other tests let through (issue 20).

Small data and few trees, compared exactly: the boosted trees against scikit-learn's
HistGradientBoostingRegressor (the same binning, gain, leaf values and missing-value rules),
the split search against a brute-force search over every bin edge, the binning against the
rule the module docstring states.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import ensemble as sk_ensemble

from model.ensemble import HistGradientBoostingRegressor
from model.hist import (
    BinMapper,
    Forest,
    SplitParams,
    TreeGrower,
    category_bins,
    check_categorical_features,
)


def small(n: int = 300, seed: int = 0) -> tuple[NDArray[Any], NDArray[Any]]:
    """Numeric columns with ties and missing values and a categorical column (3) of codes
    whose effect is not monotone in the code."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).round(1)
    X[:, 3] = rng.integers(0, 6, size=n)
    y = X[:, 0] * X[:, 1] + np.sin(3 * X[:, 2]) + np.sin(1.7 * X[:, 3]) + 0.1 * rng.normal(size=n)
    X[rng.random(n) < 0.15, 2] = np.nan
    return X, y


@pytest.mark.parametrize(
    "kw",
    [
        {"max_leaf_nodes": 6},
        {"max_depth": 2, "max_leaf_nodes": None},
        {"l2_regularization": 3.0, "min_samples_leaf": 7},
        {"max_leaf_nodes": 3, "learning_rate": 0.5, "max_bins": 9},
    ],
    ids=["leaves", "depth", "l2", "few-bins"],
)
@pytest.mark.parametrize("cat", [None, [3]], ids=["numeric", "categorical"])
def test_boosted_trees_equal_sklearns(kw: dict[str, Any], cat: list[int] | None) -> None:
    X, y = small()
    params = {"max_iter": 4, "early_stopping": False, "categorical_features": cat, **kw}
    params.setdefault("min_samples_leaf", 15)
    ours = HistGradientBoostingRegressor(**params).fit(X, y)
    ref = sk_ensemble.HistGradientBoostingRegressor(**params).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=0, atol=1e-7)
    ref_leaves = [int(p[0].get_n_leaf_nodes()) for p in ref._predictors]
    assert [int(t.is_leaf.sum()) for t in ours.trees_] == ref_leaves


# --- binning -------------------------------------------------------------------------------


def test_numeric_cuts_are_midpoints_or_quantiles_and_bins_count_the_cuts_below() -> None:
    X = np.array(
        [[1.0, 0.0], [2.0, 1.0], [2.0, 2.0], [4.0, 3.0], [np.nan, 4.0], [1.0, 5.0], [7.0, 6.0]]
    )
    mapper = BinMapper(5, np.zeros(2, dtype=bool)).fit(X)
    np.testing.assert_array_equal(mapper.cuts[0], [1.5, 3.0, 5.5])  # 4 distinct values
    q = np.linspace(0.0, 100.0, 6)[1:-1]  # 7 distinct values > 5 bins: 4 quantiles
    expected = np.unique(np.percentile(X[:, 1], q, method="averaged_inverted_cdf"))
    np.testing.assert_array_equal(mapper.cuts[1], expected)
    np.testing.assert_array_equal(mapper.n_bins, [4, expected.size + 1])
    assert mapper.missing_bin == 5
    assert mapper.seen.shape == (2, 6) and mapper.seen[:, 5].all() and not mapper.seen[:, :5].any()
    new = np.array([[1.5, -9.0], [1.4, 9.0], [3.0, np.nan], [3.1, 2.0], [100.0, 0.0]])
    Xb = mapper.transform(new)
    assert Xb.dtype == np.uint8
    # a value on a cut goes to the bin below it: x <= cut[b] in bin b
    np.testing.assert_array_equal(Xb[:, 0], [0, 0, 1, 2, 3])
    known = [0, 1, 3, 4]
    np.testing.assert_array_equal(Xb[known, 1], np.searchsorted(expected, new[known, 1]))
    assert Xb[2, 1] == 5


def test_categorical_bins_are_the_codes_and_unseen_codes_are_missing() -> None:
    X = np.array([[0.0, 2.0], [3.0, np.nan], [3.0, 2.0], [np.nan, 2.0]])
    categorical = np.array([True, True])
    mapper = BinMapper(6, categorical).fit(X)
    np.testing.assert_array_equal(mapper.n_bins, [4, 3])
    assert [c.size for c in mapper.cuts] == [0, 0]
    np.testing.assert_array_equal(mapper.seen[0], [1, 0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(mapper.seen[1], [0, 0, 1, 0, 0, 0, 1])
    new = np.array([[0.0, 2.0], [1.0, 0.0], [3.0, 2.5], [np.nan, -1.0], [5.0, 6.0], [-0.5, 2.0]])
    np.testing.assert_array_equal(
        mapper.transform(new), [[0, 2], [6, 6], [3, 6], [6, 6], [6, 6], [6, 2]]
    )
    empty = BinMapper(4, np.array([True])).fit(np.array([[np.nan], [np.nan]]))
    np.testing.assert_array_equal(empty.n_bins, [0])


def test_category_bins_of_one_column_and_of_several() -> None:
    seen = np.array([True, False, True, True])  # codes 0 and 2 seen; 3 is the missing bin
    codes = np.array([0.0, 1.0, 2.0, 3.0, -1.0, 2.5, np.nan, 1e9])
    np.testing.assert_array_equal(category_bins(codes, seen), [0, 3, 2, 3, 3, 3, 3, 3])
    seen2 = np.array([[True, False, True], [False, True, True]])
    codes2 = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [np.nan, -0.0]])
    np.testing.assert_array_equal(category_bins(codes2, seen2), [[0, 2], [2, 1], [2, 2], [2, 2]])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            np.array([True, False]),
            "categorical_features: a boolean mask needs 3 entries (one per feature), got 2",
        ),
        (
            np.ones((3, 1), dtype=bool),
            "categorical_features: a boolean mask needs 3 entries (one per feature), got (3, 1)",
        ),
        (
            [0.0, 1.0],
            "categorical_features: expected None, a list of column indices or a boolean mask",
        ),
        (
            [[0, 1]],
            "categorical_features: expected None, a list of column indices or a boolean mask",
        ),
        ([3], "categorical_features: column index 3 is out of range [0, 2]"),
        ([1, -1], "categorical_features: column index -1 is out of range [0, 2]"),
    ],
)
def test_categorical_features_refusals(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        check_categorical_features(spec, 3)


def test_categorical_features_forms() -> None:
    np.testing.assert_array_equal(check_categorical_features(None, 3), [False] * 3)
    np.testing.assert_array_equal(check_categorical_features([], 3), [False] * 3)
    np.testing.assert_array_equal(check_categorical_features([2, 0], 3), [True, False, True])
    np.testing.assert_array_equal(check_categorical_features(np.array([0]), 1), [True])
    spec = np.array([False, True, False])
    mask = check_categorical_features(spec, 3, name="cats")
    np.testing.assert_array_equal(mask, spec)
    mask[0] = True
    assert not spec[0]  # a copy, not the caller's array
    with pytest.raises(ValueError, match=r"^cats: column index 5 "):
        check_categorical_features([5], 3, name="cats")


@pytest.mark.parametrize(
    ("code", "shown"),
    [(1.5, "np.float64(1.5)"), (-1.0, "np.float64(-1.0)"), (4.0, "np.float64(4.0)")],
)
def test_bad_category_code_is_named_whole(code: float, shown: str) -> None:
    X = np.array([[0.0, 1.0], [1.0, code], [2.0, 3.0]])
    with pytest.raises(ValueError) as err:
        BinMapper(4, np.array([False, True])).fit(X)
    assert str(err.value) == (
        f"X: categorical column 1 must hold integer codes in [0, 3] (max_bins - 1) or NaN, "
        f"got {shown}"
    )
    BinMapper(4, np.array([False, True])).fit(np.array([[0.0, 3.0], [1.0, 0.0]]))  # the limits


# --- the split search against brute force --------------------------------------------------


def brute_force_split(
    Xb: NDArray[Any],
    rows: NDArray[Any],
    g: NDArray[Any],
    lam: float,
    msl: float,
    allowed: NDArray[Any] | None,
    n_bins: NDArray[Any],
    missing_bin: int,
) -> tuple[float, int, int, bool] | None:
    """The best numeric split of a node by trying every bin edge of every allowed feature,
    with the node's missing values right, then left (features that had missing values at fit,
    and only when some are at this node); ties: the first found."""
    gn, xb = g[rows], Xb[rows]
    G, H = gn.sum(), float(rows.size)
    parent = G * G / (H + lam)
    best: tuple[float, int, int, bool] | None = None
    best_score = -np.inf
    had_missing = (Xb == missing_bin).any(axis=0)
    for direction in (0, 1):
        for j in range(Xb.shape[1]):
            if allowed is not None and not allowed[j]:
                continue
            col = xb[:, j]
            miss = col == missing_bin
            if direction == 1 and not (had_missing[j] and miss.any()):
                continue
            for b in range(n_bins[j]):
                left = (col <= b) & ~miss
                if direction == 1:
                    left |= miss
                hl, hr = float(left.sum()), float((~left).sum())
                if hl < msl or hr < msl:
                    continue
                gl = gn[left].sum()
                score = gl * gl / (hl + lam) + (G - gl) ** 2 / (hr + lam)
                if score > best_score:
                    best_score = score
                    if miss.any():
                        missing_left = bool(direction)
                    else:
                        missing_left = bool(((col <= b) & ~miss).sum() >= H / 2)
                    best = (score - parent, j, b, missing_left)
    if best is None or not best[0] > 1e-12 * max(parent, 1e-300):
        return None
    return best


@pytest.mark.parametrize("lam", [0.0, 1.5])
@pytest.mark.parametrize("msl", [1, 9])
@pytest.mark.parametrize("missing", ["some", "all"], ids=["some-missing", "all-missing"])
def test_numeric_split_search_equals_brute_force(lam: float, msl: int, missing: str) -> None:
    rng = np.random.default_rng(1)
    n = 160
    X = rng.integers(0, 7, size=(n, 4)).astype(np.float64)
    y = X[:, 0] * np.where(rng.random(n) < 0.2, 4.0, X[:, 1]) + rng.normal(size=n)
    X[rng.random(n) < 0.2, 1] = np.nan
    X[rng.random(n) < 0.05, 3] = np.nan
    if missing == "all":  # every numeric feature had missing values at fit
        X[rng.random(n) < 0.1, 0] = np.nan
        X[rng.random(n) < 0.03, 2] = np.nan
    mapper = BinMapper(255, np.zeros(4, dtype=bool)).fit(X)
    Xb = mapper.transform(X)
    grower = TreeGrower(Xb, mapper)
    g = y.mean() - y
    p = SplitParams(None, None, msl, lam, 1.0, 1.0)
    checked = 0
    for trial in range(12):
        size = int(rng.integers(10, n + 1))
        rows = np.sort(rng.choice(n, size, replace=False))
        allowed = None if trial % 3 == 0 else rng.random(4) < 0.6
        G, H = grower.histogram(rows, g, None)
        found = grower.best_split(G, H, p, allowed)
        want = brute_force_split(Xb, rows, g, lam, msl, allowed, mapper.n_bins, 255)
        if want is None:
            assert found is None
            continue
        assert found is not None and found.left_bins is None
        assert (found.feature, found.bin, found.missing_left) == want[1:]
        assert found.gain == pytest.approx(want[0], rel=1e-9)
        checked += 1
    assert checked >= 8


def test_histogram_sums_gradients_and_hessians_per_slot() -> None:
    X, _ = small(120)
    categorical = np.array([False, False, False, True])
    mapper = BinMapper(255, categorical).fit(X)
    Xb = mapper.transform(X)
    grower = TreeGrower(Xb, mapper)
    rng = np.random.default_rng(2)
    g, h = rng.normal(size=120), rng.uniform(0.5, 2.0, size=120)
    for rows in (np.arange(120), np.sort(rng.choice(120, 50, replace=False)), np.arange(120)):
        for hh in (None, h):
            G, H = grower.histogram(rows, g, hh)
            hv = np.ones(120) if hh is None else hh
            for j in range(4):
                for b in [*range(mapper.n_bins[j]), 255]:
                    sel = rows[Xb[rows, j] == b]
                    slot = (
                        grower.offset[j] + b
                        if b < 255 and (categorical[j] or b < mapper.n_bins[j])
                        else (
                            grower.offset[j] + mapper.n_bins[j]
                            if categorical[j]
                            else grower.num_size + j
                        )
                    )
                    assert G[slot] == pytest.approx(g[sel].sum(), abs=1e-12)
                    assert H[slot] == pytest.approx(hv[sel].sum(), abs=1e-12)
            gt, ht = grower.totals(G, H)
            assert gt == pytest.approx(g[rows].sum()) and ht == pytest.approx(hv[rows].sum())
    assert grower.size == int(mapper.n_bins.sum()) + 4  # a missing slot each


# --- the grown tree -----------------------------------------------------------------------


def brute_force_categorical(
    Xb: NDArray[Any],
    rows: NDArray[Any],
    g: NDArray[Any],
    lam: float,
    msl: float,
    allowed: NDArray[Any] | None,
    categorical: NDArray[Any],
    n_bins: NDArray[Any],
    missing_bin: int,
) -> tuple[float, int, list[int], bool] | None:
    """The best categorical split by the module docstring's rule, spelled out: per feature,
    the categories (missing one of them) with at least 10 rows ordered by G/(H + 10), each
    way; every prefix of at most half of them (and 32), never all; the first best wins
    (order +ratio before -ratio, then feature, then prefix length). Returns the score before
    the parent's term is taken off."""
    gn, xb = g[rows], Xb[rows]
    G, H = gn.sum(), float(rows.size)
    best: tuple[float, int, list[int], bool] | None = None
    best_score = -np.inf
    for sign in (1.0, -1.0):
        for j in np.flatnonzero(categorical):
            if allowed is not None and not allowed[j]:
                continue
            cats = [*range(n_bins[j]), missing_bin]
            stats = {c: (gn[xb[:, j] == c].sum(), float((xb[:, j] == c).sum())) for c in cats}
            sup = [c for c in cats if stats[c][1] >= 10]
            keys = [sign * stats[c][0] / (stats[c][1] + 10) for c in sup]
            order = [sup[i] for i in np.argsort(keys, kind="stable")]
            longest = min(32, (len(sup) + 1) // 2, len(sup) - 1)
            for size in range(1, longest + 1):
                left = order[:size]
                gl = sum(stats[c][0] for c in left)
                hl = sum(stats[c][1] for c in left)
                hr = H - hl
                if hl < msl or hr < msl:
                    continue
                score = gl * gl / (hl + lam) + (G - gl) ** 2 / (hr + lam)
                if score > best_score:
                    best_score = score
                    missing_left = missing_bin in left
                    if stats[missing_bin][1] == 0:
                        missing_left = hl >= hr
                    bins = sorted(c for c in left if c != missing_bin)
                    best = (score, int(j), bins, missing_left)
    return best


@pytest.mark.parametrize("lam", [0.0, 4.0])
@pytest.mark.parametrize("msl", [1, 25])
def test_categorical_split_search_equals_brute_force(lam: float, msl: int) -> None:
    rng = np.random.default_rng(5)
    n = 500
    X = np.column_stack(
        [
            rng.choice(12, size=n, p=0.75 ** np.arange(12) / (0.75 ** np.arange(12)).sum()),
            rng.normal(size=n).round(1),  # numeric
            rng.choice(4, size=n, p=[0.45, 0.45, 0.07, 0.03]),  # categorical, rare codes
        ]
    ).astype(np.float64)
    X[rng.random(n) < 0.06, 0] = np.nan
    X[rng.random(n) < 0.1, 2] = np.nan
    effect = np.sin(1.3 * np.arange(12))
    y = (
        effect[np.nan_to_num(X[:, 0], nan=3).astype(int)]
        + 0.3 * X[:, 1]
        + np.nan_to_num(X[:, 2], nan=1.0) % 2
    )
    y = y + 0.2 * rng.normal(size=n)
    categorical = np.array([True, False, True])
    mapper = BinMapper(255, categorical).fit(X)
    Xb = mapper.transform(X)
    grower = TreeGrower(Xb, mapper)
    g = y.mean() - y
    p = SplitParams(None, None, msl, lam, 1.0, 1.0)
    kinds: set[str] = set()
    batch: list[tuple[Any, Any, Any, Any]] = []
    for trial in range(14):
        size = int(rng.integers(40, n + 1))
        rows = np.sort(rng.choice(n, size, replace=False))
        allowed = None if trial % 4 == 0 else rng.random(3) < 0.7
        Gh, Hh = grower.histogram(rows, g, None)
        found = grower.best_split(Gh, Hh, p, allowed)
        batch.append((Gh, Hh, allowed, found))
        numeric = ~categorical if allowed is None else allowed & ~categorical
        num = brute_force_split(Xb, rows, g, lam, msl, numeric, mapper.n_bins, 255)
        cat = brute_force_categorical(
            Xb, rows, g, lam, msl, allowed, categorical, mapper.n_bins, 255
        )
        Gt, Ht = g[rows].sum(), float(rows.size)
        parent = Gt * Gt / (Ht + lam)
        cat_gain = None if cat is None else cat[0] - parent
        if cat_gain is not None and not cat_gain > 1e-12 * max(parent, 1e-300):
            cat_gain = None
        if cat is not None and cat_gain is not None and (num is None or cat_gain > num[0]):
            assert found is not None and found.left_bins is not None
            assert found.feature == cat[1] and found.bin == -1
            assert found.missing_left == bool(found.left_bins[255])
            assert found.gain == pytest.approx(cat_gain, rel=1e-9)
            if np.flatnonzero(found.left_bins[:255]).tolist() == cat[2]:
                assert found.missing_left == cat[3]
            else:  # the same partition reached from the other end of the order (a tie)
                assert_categorical_rule(Xb[rows, found.feature], g[rows], found, lam)
            kinds.add("categorical")
        elif num is not None:
            assert found is not None and found.left_bins is None
            assert (found.feature, found.bin, found.missing_left) == num[1:]
            assert found.gain == pytest.approx(num[0], rel=1e-9)
            kinds.add("numeric")
        else:
            assert found is None
            kinds.add("none")
    assert "categorical" in kinds, kinds
    # all the nodes in one search, each with its own features: the same splits
    together = grower.best_splits(
        np.stack([b[0] for b in batch]), np.stack([b[1] for b in batch]), p, [b[2] for b in batch]
    )
    assert [_fields(s) for s in together] == [_fields(b[3]) for b in batch]


def assert_categorical_rule(col: NDArray[Any], g: NDArray[Any], s: Any, lam: float) -> None:
    """``s`` sends left a prefix of the supported categories ordered by G/(H + 10), taken
    from one end, of at most half of them, the others right; its gain is that partition's."""
    cats = [c for c in [*range(255), 255] if (col == c).any()]
    stats = {c: (g[col == c].sum(), float((col == c).sum())) for c in cats}
    sup = [c for c in cats if stats[c][1] >= 10]
    order = sorted(sup, key=lambda c: stats[c][0] / (stats[c][1] + 10))
    left = {c for c in sup if s.left_bins[c]}
    assert not any(s.left_bins[c] for c in cats if c not in sup)
    size = len(left)
    assert 1 <= size <= min(32, (len(sup) + 1) // 2) and size < len(sup)
    assert left in (set(order[:size]), set(order[::-1][:size]))
    go = s.left_bins[col]
    gl, hl, gr, hr = g[go].sum(), go.sum(), g[~go].sum(), (~go).sum()
    gain = gl**2 / (hl + lam) + gr**2 / (hr + lam) - g.sum() ** 2 / (col.size + lam)
    assert s.gain == pytest.approx(gain, rel=1e-9)


def _fields(s: Any) -> tuple[Any, ...] | None:
    if s is None:
        return None
    bins = None if s.left_bins is None else np.flatnonzero(s.left_bins).tolist()
    return (s.gain, s.feature, s.bin, s.missing_left, bins)


@pytest.mark.parametrize(
    ("max_features", "n_pick"), [(0.1, 1), (0.3, 1), (0.5, 2), (0.625, 2), (0.7, 3), (1.0, 4)]
)
def test_each_node_splits_on_its_drawn_share_of_the_features(
    max_features: float, n_pick: int
) -> None:
    """``max(1, round(max_features * d))`` features drawn per node, from the grower's rng:
    the stump's root split is the best among the drawn ones, and nothing is drawn when all
    features are allowed."""
    X, y = small(200, seed=4)
    mapper = BinMapper(255, np.zeros(4, dtype=bool)).fit(X)
    grower = TreeGrower(mapper.transform(X), mapper)
    g = y.mean() - y
    p = SplitParams(2, None, 5, 0.0, max_features, 1.0)
    for seed in range(4):
        tree, _ = grower.grow(np.arange(200), g, None, p, rng := np.random.default_rng(seed))
        replay = np.random.default_rng(seed)
        mask = None
        if n_pick < 4:
            mask = np.zeros(4, dtype=bool)
            mask[np.argsort(replay.random(4))[:n_pick]] = True  # the n_pick smallest draws
        G, H = grower.histogram(np.arange(200), g, None)
        want = grower.best_split(G, H, p, mask)
        assert want is not None
        assert (tree.feature[0], tree.gain[0]) == (want.feature, want.gain)
        assert rng.random() == replay.random()  # the same number of draws


@pytest.mark.parametrize("weighted", [False, True], ids=["h=1", "weights"])
@pytest.mark.parametrize(
    ("leaves", "depth", "msl", "n"),
    [
        (5, None, 10, 200),
        (None, 2, 10, 200),
        (None, None, 40, 200),
        (6, 3, 1, 200),
        (4, None, 10, 2500),  # nodes of more than 1000 rows, split another way
    ],
)
def test_grown_tree_nodes_hold_their_own_statistics(
    weighted: bool, leaves: int | None, depth: int | None, msl: int, n: int
) -> None:
    X, y = small(n, seed=3)
    mapper = BinMapper(255, np.array([False, False, False, True])).fit(X)
    Xb = mapper.transform(X)
    grower = TreeGrower(Xb, mapper)
    rng = np.random.default_rng(7)
    h = rng.integers(0, 3, size=n).astype(np.float64) if weighted else None
    hv = np.ones(n) if h is None else h
    g = (y.mean() - y) * hv
    lam = 2.0
    rows = np.arange(n) if h is None else np.flatnonzero(hv > 0)
    p = SplitParams(leaves, depth, msl, lam, 1.0, 0.3)
    tree, grown = grower.grow(rows, g, h, p, np.random.default_rng(0))
    assert len(grown) == int(tree.is_leaf.sum())
    if leaves is not None:
        assert tree.is_leaf.sum() == leaves
    # every node's rows, by walking down from the root with the split rules
    rows_of = {0: rows}
    node_depth = {0: 0}
    for node in range(tree.left.size):
        r = rows_of[node]
        G, H = g[r].sum(), hv[r].sum()
        assert tree.hessian[node] == H
        assert tree.value[node] == pytest.approx(-G / (H + lam) * 0.3, rel=1e-12, abs=1e-15)
        if tree.is_leaf[node]:
            assert tree.feature[node] == 0 and tree.threshold[node] == np.inf
            assert tree.bin_threshold[node] == 256 and tree.missing_left[node]
            assert tree.gain[node] == 0.0 and tree.cat_row[node] == -1
            # a leaf that could split by the limits has no split of positive gain left
            if (depth is None or node_depth[node] < depth) and 2 * msl <= H:
                Gh, Hh = grower.histogram(r, g, h)
                if leaves is None:
                    assert grower.best_split(Gh, Hh, p, None) is None
            continue
        assert depth is None or node_depth[node] < depth
        b = Xb[r, tree.feature[node]]
        if tree.cat_row[node] >= 0:
            go = tree.cat_left[tree.cat_row[node]][b]
            assert np.isnan(tree.threshold[node])
        else:
            go = np.where(b == 255, tree.missing_left[node], b <= tree.bin_threshold[node])
            cuts = mapper.cuts[tree.feature[node]]
            bt = tree.bin_threshold[node]
            assert tree.threshold[node] == (cuts[bt] if bt < cuts.size else np.inf)
        kids = tree.left[node], tree.left[node] + 1
        rows_of[kids[0]], rows_of[kids[1]] = r[go], r[~go]
        node_depth[kids[0]] = node_depth[kids[1]] = node_depth[node] + 1
        gl, gr, hl, hr = g[r[go]].sum(), g[r[~go]].sum(), hv[r[go]].sum(), hv[r[~go]].sum()
        assert hl >= msl and hr >= msl
        gain = gl**2 / (hl + lam) + gr**2 / (hr + lam) - G**2 / (H + lam)
        assert tree.gain[node] == pytest.approx(gain, rel=1e-9)
    assert {node: r.tolist() for node, r in grown} == {
        node: r.tolist() for node, r in rows_of.items() if tree.is_leaf[node]
    }
    leaf_of = tree.apply_binned(Xb, 255)
    for node, r in grown:
        assert (leaf_of[r] == node).all()
    assert tree.depth == max(node_depth.values())
    # best-first: a split is never taken before one of higher gain that was available
    inner = np.flatnonzero(~tree.is_leaf)
    assert tree.gain[inner[0]] == tree.gain[inner].max()


# --- the forest ---------------------------------------------------------------------------


def test_forest_of_no_trees_and_of_mixed_sizes_sums_the_leaves() -> None:
    X, y = small(200, seed=9)
    cat = [3]
    big = HistGradientBoostingRegressor(
        max_iter=2, max_leaf_nodes=70, min_samples_leaf=1, categorical_features=cat
    ).fit(X, y)
    little = HistGradientBoostingRegressor(
        max_iter=2, max_leaf_nodes=3, categorical_features=cat
    ).fit(X, y)
    mapper = big.bin_mapper_
    assert [int(t.is_leaf.sum()) for t in big.trees_] == [70, 70]
    trees = [little.trees_[0], big.trees_[0], little.trees_[1], big.trees_[1]]
    forest = Forest.build(trees, mapper)
    assert "_parts_cache" not in forest.__getstate__()  # pickled before any prediction
    rows = X.copy()
    rows[::3, 2] = np.nan
    rows[::4, 3] = 9.0  # a category never seen
    rows[::5, 0] = 1e9
    Xb = mapper.transform(rows)
    want = np.sum([t.value[t.apply_binned(Xb, mapper.missing_bin)] for t in trees], axis=0)
    np.testing.assert_allclose(forest.predict_sum(rows), want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(forest.predict_sum_levelwise(rows), want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(forest.predict_sum(rows[:1]), want[:1], rtol=1e-12, atol=1e-15)
    leaves = forest.leaves(rows)
    assert leaves.shape == (200, 4)
    np.testing.assert_array_equal(
        leaves[:, 1] - forest.roots[1], big.trees_[0].apply_binned(Xb, 255)
    )
    assert forest.depth == max(t.depth for t in trees) and forest.n_features == 4
    bits, rest = forest._parts()
    assert bits is not None and rest is not None and rest.roots.tolist() == [0, 139]
    state = forest.__getstate__()
    assert "_parts_cache" not in state and "_parts_cache" in forest.__dict__
    assert set(state) == {
        "col",
        "threshold",
        "left",
        "value",
        "cat_row",
        "cat_left",
        "roots",
        "depth",
        "n_features",
        "categorical",
        "seen",
    }
    only_big = Forest.build(big.trees_, mapper)
    assert only_big._parts()[0] is None
    np.testing.assert_allclose(
        only_big.predict_sum(rows), big.predict(rows) - big.baseline_, rtol=1e-12, atol=1e-12
    )
    empty = Forest.build([], mapper)
    assert empty.roots.size == 0 and empty.depth == 0 and empty._parts() == (None, None)
    np.testing.assert_array_equal(empty.predict_sum(rows), np.zeros(200))
    np.testing.assert_array_equal(empty.predict_sum_levelwise(rows), np.zeros(200))


def test_forest_with_a_single_categorical_split_walks_it_as_one() -> None:
    rng = np.random.default_rng(11)
    X = np.column_stack([rng.integers(0, 5, size=300), rng.normal(size=300)]).astype(float)
    y = np.where(np.isin(X[:, 0], [1, 3]), 5.0, 0.0) + 0.1 * X[:, 1]
    model = HistGradientBoostingRegressor(
        max_iter=1, max_leaf_nodes=2, categorical_features=[0], learning_rate=1.0
    ).fit(X, y)
    forest = model.forest_
    assert forest.cat_left.shape[0] == 1  # one categorical split in the whole forest
    Xb = model.bin_mapper_.transform(X)
    tree = model.trees_[0]
    want = tree.value[tree.apply_binned(Xb, 255)]
    np.testing.assert_allclose(forest.predict_sum_levelwise(X), want, rtol=1e-12)
    np.testing.assert_allclose(forest.predict_sum(X), want, rtol=1e-12)


def test_a_single_supported_category_is_never_split_off() -> None:
    """Categories with fewer than 10 rows at the node are not ordered and go right; a left
    set is a proper subset of the supported ones, so with one supported category there is
    no categorical split, however different the rare ones are."""
    codes = np.array([0.0] * 30 + [1.0] * 6 + [2.0] * 6 + [np.nan] * 3)
    y = np.where(codes == 0, 0.0, 10.0)
    mapper = BinMapper(255, np.array([True])).fit(codes[:, None])
    grower = TreeGrower(mapper.transform(codes[:, None]), mapper)
    G, H = grower.histogram(np.arange(codes.size), y.mean() - y, None)
    p = SplitParams(None, None, 1, 0.0, 1.0, 1.0)
    assert grower.best_split(G, H, p, None) is None
    codes[30:36] = 2.0  # now two supported categories: code 0 (30 rows) and code 2 (12)
    mapper = BinMapper(255, np.array([True])).fit(codes[:, None])
    grower = TreeGrower(mapper.transform(codes[:, None]), mapper)
    G, H = grower.histogram(np.arange(codes.size), y.mean() - y, None)
    split = grower.best_split(G, H, p, None)
    assert split is not None and split.left_bins is not None
    assert np.flatnonzero(split.left_bins).tolist() in ([0], [2, 255])


def _two_category_split(n0: int, g0: float, n1: int, g1: float, msl: int) -> Any:
    codes = np.array([0.0] * n0 + [1.0] * n1)
    g = np.array([g0] * n0 + [g1] * n1)  # whole numbers: every sum is exact
    mapper = BinMapper(255, np.array([True])).fit(codes[:, None])
    grower = TreeGrower(mapper.transform(codes[:, None]), mapper)
    G, H = grower.histogram(np.arange(codes.size), g, None)
    return grower.best_split(G, H, SplitParams(None, None, msl, 0.0, 1.0, 1.0), None)


@pytest.mark.parametrize(
    ("n0", "g0", "n1", "g1", "left", "missing_left"),
    [
        # the two orders reach the same partition with the same score: +ratio's wins
        (12, -3.0, 40, 1.0, [0], False),
        (12, 3.0, 40, -1.0, [1, 255], True),  # right holds min_samples_leaf rows exactly
        (20, 2.0, 20, -1.0, [1, 255], True),  # equal children: missing goes left
        (20, -2.0, 20, 1.0, [0, 255], True),
    ],
)
def test_categorical_split_at_the_limits(
    n0: int, g0: float, n1: int, g1: float, left: list[int], missing_left: bool
) -> None:
    """min_samples_leaf rows on a side are enough; with no missing value at the node the
    missing bin follows the larger child (the left one on a tie), in ``left_bins`` too."""
    split = _two_category_split(n0, g0, n1, g1, msl=min(n0, n1))
    assert split is not None and split.left_bins is not None
    assert np.flatnonzero(split.left_bins).tolist() == left
    assert split.missing_left is missing_left
    assert _two_category_split(n0, g0, n1, g1, msl=min(n0, n1) + 1) is None


def test_forest_parts_are_built_once_and_64_leaves_fit_a_word() -> None:
    X, y = small(300, seed=12)
    model = HistGradientBoostingRegressor(
        max_iter=1, max_leaf_nodes=64, min_samples_leaf=1, early_stopping=False
    ).fit(X, y)
    assert int(model.trees_[0].is_leaf.sum()) == 64
    forest = model.forest_
    parts = forest._parts()
    assert forest._parts() is parts  # derived once, then reused
    assert parts[0] is not None and parts[1] is None  # 64 leaves: scored by bit vectors


def test_a_tree_that_does_not_split_is_one_plain_leaf() -> None:
    X, _ = small(60, seed=14)
    mapper = BinMapper(255, np.zeros(4, dtype=bool)).fit(X)
    grower = TreeGrower(mapper.transform(X), mapper)
    p = SplitParams(None, None, 5, 0.0, 1.0, 1.0)
    tree, leaves = grower.grow(np.arange(60), np.zeros(60), None, p, np.random.default_rng(0))
    assert tree.left.tolist() == [0] and tree.feature.tolist() == [0]
    assert tree.missing_left.tolist() == [True] and tree.cat_row.tolist() == [-1]
    assert tree.gain.tolist() == [0.0] and tree.threshold.tolist() == [np.inf]
    assert tree.bin_threshold.tolist() == [256] and tree.depth == 0
    assert [(node, r.size) for node, r in leaves] == [(0, 60)]


@pytest.mark.parametrize(("cut", "smaller"), [(10, "left"), (30, "right"), (20, "left")])
def test_a_split_builds_the_histogram_of_its_smaller_child_the_left_one_at_a_tie(
    cut: int, smaller: str
) -> None:
    # one feature 0..39 and a step at `cut`: the root splits there, into cut and 40 - cut
    # rows; with three leaves allowed both children are searched, so the grower builds one
    # child's histogram (the smaller, the left one when they are equal) and subtracts
    X = np.arange(40, dtype=np.float64)[:, None]
    y = np.where(X[:, 0] < cut, 0.0, 10.0)
    mapper = BinMapper(255, np.zeros(1, dtype=bool)).fit(X)
    grower = TreeGrower(mapper.transform(X), mapper)
    built: list[list[int]] = []
    histogram = grower.histogram

    def spy(rows: Any, g: Any, h: Any) -> Any:
        built.append(sorted(np.asarray(rows).tolist()))
        return histogram(rows, g, h)

    grower.histogram = spy  # type: ignore[method-assign]
    tree, _ = grower.grow(
        np.arange(40),
        y.mean() - y,
        None,
        SplitParams(3, None, 2, 0.0, 1.0, 1.0),
        np.random.default_rng(0),
    )
    assert tree.threshold[0] == pytest.approx(cut - 0.5)
    child = list(range(cut)) if smaller == "left" else list(range(cut, 40))
    assert built[:2] == [list(range(40)), child]


def test_a_left_set_holds_at_most_half_of_the_supported_categories() -> None:
    # four supported categories (20 rows each) and one unsupported (5 rows, always right):
    # the perfect split {0, 1, 2} | {3, 4} needs a left set of three, more than half of four,
    # so the rule's best is {3} left (the unsupported 4 staying right with 0, 1 and 2)
    codes = np.repeat([0.0, 1.0, 2.0, 3.0, 4.0], [20, 20, 20, 20, 5])
    y = np.array([0.0, 0.1, 0.2, 10.0, 10.0])[codes.astype(int)]
    X = codes[:, None]
    categorical = np.array([True])
    mapper = BinMapper(255, categorical).fit(X)
    Xb = mapper.transform(X)
    grower = TreeGrower(Xb, mapper)
    g = y.mean() - y
    rows = np.arange(codes.size)
    G, H = grower.histogram(rows, g, None)
    found = grower.best_split(G, H, SplitParams(None, None, 1, 0.0, 1.0, 1.0), None)
    want = brute_force_categorical(Xb, rows, g, 0.0, 1, None, categorical, mapper.n_bins, 255)
    assert found is not None and found.left_bins is not None and want is not None
    assert np.flatnonzero(found.left_bins[:255]).tolist() == want[2] == [3]
