"""model.drift: PSI by hand, profiles on synthetic data, bucket indices against a literal loop."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.drift import (
    PSI_SIGNIFICANT,
    PSI_STABLE,
    bin_counts,
    bin_index,
    build_reference,
    categorical_profile,
    n_buckets,
    numeric_profile,
    profile_psi,
    psi,
    psi_level,
)


def test_psi_by_hand() -> None:
    e = [0.2, 0.3, 0.5]
    a = [0.25, 0.25, 0.5]
    by_hand = (0.25 - 0.2) * math.log(0.25 / 0.2) + (0.25 - 0.3) * math.log(0.25 / 0.3) + 0.0
    assert psi(e, a) == pytest.approx(by_hand, rel=1e-12)
    assert psi(e, a) == pytest.approx(0.0202733, abs=1e-7)
    # counts are normalised: 20/30/50 rows vs 50/50/100 rows is the same comparison
    assert psi([20, 30, 50], [50, 50, 100]) == pytest.approx(by_hand, rel=1e-12)
    assert psi(e, e) == 0.0
    assert psi(e, a) == pytest.approx(psi(a, e), rel=1e-12)  # symmetric


def test_psi_empty_bucket_is_smoothed_by_eps() -> None:
    e = [0.5, 0.5, 0.0]
    a = [0.45, 0.45, 0.1]
    eps = 1e-4
    by_hand = 2 * (0.45 - 0.5) * math.log(0.45 / 0.5) + (0.1 - eps) * math.log(0.1 / eps)
    assert psi(e, a) == pytest.approx(by_hand, rel=1e-12)
    assert psi(e, a, eps=1e-3) < psi(e, a)  # a larger eps forgives more
    assert math.isfinite(psi([1.0, 0.0], [0.0, 1.0]))


def test_psi_rejects_bad_histograms() -> None:
    with pytest.raises(ValueError, match="different numbers of buckets: 2 vs 3"):
        psi([0.5, 0.5], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="non-negative"):
        psi([0.5, 0.5], [1.5, -0.5])
    with pytest.raises(ValueError, match="empty"):
        psi([0.5, 0.5], [0, 0])
    with pytest.raises(ValueError, match="non-finite"):
        psi([0.5, math.nan], [0.5, 0.5])


def test_levels_follow_thresholds() -> None:
    assert (PSI_STABLE, PSI_SIGNIFICANT) == (0.1, 0.25)
    assert psi_level(0.05) == "stable"
    assert psi_level(0.1) == "moderate"
    assert psi_level(0.25) == "moderate"
    assert psi_level(0.3) == "significant"


def test_uniform_sample_gives_equal_shares() -> None:
    x = np.random.default_rng(0).uniform(0, 100, 10_000)
    p = numeric_profile(x)
    assert p["kind"] == "numeric" and p["count"] == 10_000
    assert len(p["edges"]) == 9 and len(p["shares"]) == 11
    np.testing.assert_allclose(p["shares"][:-1], 0.1, atol=1e-3)
    assert p["shares"][-1] == 0.0
    np.testing.assert_allclose(p["edges"], np.arange(10, 100, 10), atol=2.0)
    assert sum(p["shares"]) == pytest.approx(1.0)


def test_missing_bucket_and_shares_against_literal_loop() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=500)
    x[rng.choice(500, 50, replace=False)] = np.nan
    p = numeric_profile(x, n_bins=4)
    assert p["shares"][-1] == pytest.approx(0.1)
    # a literal loop over the right-closed bins (-inf, e1], (e1, e2], ..., (ek, inf), missing
    edges = p["edges"]
    counts = [0] * (len(edges) + 2)
    for v in x:
        if math.isnan(v):
            counts[-1] += 1
            continue
        i = 0
        while i < len(edges) and v > edges[i]:
            i += 1
        counts[i] += 1
    assert p["shares"] == [c / 500 for c in counts]
    assert list(bin_counts(p, x)) == counts


def test_integer_ties_fall_in_one_bin_and_edges_dedup() -> None:
    x = np.array([1] * 60 + [2] * 30 + [3] * 10, dtype=float)
    p = numeric_profile(x)
    # the 9 quantile edges collapse onto 1 (q <= 0.6) and 2 (q = 0.7 .. 0.9): three bins
    assert p["edges"] == [1.0, 2.0]
    assert p["shares"] == [0.6, 0.3, 0.1, 0.0]
    constant = numeric_profile(np.full(20, 7.0))
    assert constant["edges"] == [7.0] and constant["shares"] == [1.0, 0.0, 0.0]
    assert profile_psi(constant, np.full(20, 8.0)) > PSI_SIGNIFICANT


def test_shifted_sample_large_psi_same_distribution_small() -> None:
    rng = np.random.default_rng(2)
    train = rng.lognormal(11.5, 0.4, 2930)
    p = numeric_profile(train)
    same = [profile_psi(p, rng.lognormal(11.5, 0.4, 200)) for _ in range(200)]
    # sampling noise alone: E[PSI] ≈ (k - 1)(1/n + 1/N) = 9 (1/200 + 1/2930) ≈ 0.048
    assert np.mean(same) == pytest.approx(9 * (1 / 200 + 1 / 2930), rel=0.2)
    assert np.quantile(same, 0.95) < PSI_STABLE
    shifted = profile_psi(p, rng.lognormal(11.5 + 0.3, 0.4, 200))
    assert shifted > PSI_SIGNIFICANT
    assert psi_level(shifted) == "significant"


def test_categorical_profile_unseen_and_missing() -> None:
    x = np.array(["b", "a", "b", None, "c", "b", "a", "a", "a", "b"], dtype=object)
    p = categorical_profile(x)
    assert p == {
        "kind": "categorical",
        "categories": ["a", "b", "c"],
        "shares": [0.4, 0.4, 0.1, 0.0, 0.1],
        "count": 10,
    }
    q = categorical_profile(x, categories=["b", "a"])  # the encoder's categories
    assert q["shares"] == [0.4, 0.4, 0.1, 0.1]  # "c" is unseen
    live = np.array(["a", "zzz", None, math.nan, "c"], dtype=object)
    assert list(bin_index(p, live)) == [0, 3, 4, 4, 2]
    assert n_buckets(p) == 5
    with pytest.raises(ValueError, match="distinct"):
        categorical_profile(x, categories=["a", "a"])


def test_categorical_drift() -> None:
    rng = np.random.default_rng(3)
    cats = np.array(["NAmes", "CollgCr", "OldTown", "Edwards"], dtype=object)
    train = rng.choice(cats, 3000, p=[0.4, 0.3, 0.2, 0.1])
    p = categorical_profile(train)
    assert profile_psi(p, rng.choice(cats, 1000, p=[0.4, 0.3, 0.2, 0.1])) < PSI_STABLE
    assert profile_psi(p, rng.choice(cats, 1000, p=[0.1, 0.2, 0.3, 0.4])) > PSI_SIGNIFICANT


def test_bin_index_numeric_accepts_none_and_matches_searchsorted() -> None:
    p = {"kind": "numeric", "edges": [1.0, 2.0], "shares": [0.25, 0.25, 0.5, 0.0], "count": 4}
    live = np.array([0.5, 1.0, 1.5, 2.0, 9.0, None], dtype=object)
    assert list(bin_index(p, live)) == [0, 0, 1, 1, 2, 3]
    with pytest.raises(ValueError, match="unknown profile kind"):
        bin_index({"kind": "text"}, live)


def test_profile_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        numeric_profile(np.array([]))
    with pytest.raises(ValueError, match="n_bins"):
        numeric_profile([1.0, 2.0], n_bins=0)
    with pytest.raises(ValueError, match=r"non-finite|infinite"):
        numeric_profile([1.0, math.inf])
    all_missing = numeric_profile([math.nan, math.nan])
    assert all_missing["edges"] == [] and all_missing["shares"] == [0.0, 1.0]


def test_build_reference_is_json_and_follows_kinds() -> None:
    rng = np.random.default_rng(4)
    columns = {
        "area": rng.uniform(500, 3000, 300),
        "neighborhood": rng.choice(np.array(["A", "B"], dtype=object), 300),
        "ignored": np.zeros(300),
    }
    kinds = {"area": "numeric", "neighborhood": "categorical"}
    ref = build_reference(
        columns, kinds, rng.lognormal(12, 0.3, 300), categories={"neighborhood": ["A", "B", "C"]}
    )
    assert set(ref) == {"features", "prediction"}
    assert list(ref["features"]) == ["area", "neighborhood"]
    assert ref["features"]["area"] == numeric_profile(columns["area"])
    assert ref["features"]["neighborhood"]["categories"] == ["A", "B", "C"]
    assert ref["prediction"]["kind"] == "numeric" and ref["prediction"]["count"] == 300
    assert json.loads(json.dumps(ref, allow_nan=False)) == ref  # plain JSON, no NumPy types
    with pytest.raises(ValueError, match="'nope' is in kinds but not in columns"):
        build_reference(columns, {"nope": "numeric"}, np.ones(3))
    with pytest.raises(ValueError, match="unknown kind 'text'"):
        build_reference(columns, {"area": "text"}, np.ones(3))


finite = st.floats(-1e9, 1e9, allow_nan=False)
maybe_missing = st.one_of(finite, st.just(math.nan))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(maybe_missing, min_size=1, max_size=60),
    st.lists(maybe_missing, min_size=1, max_size=60),
    st.integers(1, 12),
)
def test_numeric_profile_properties(train: list[float], live: list[float], n_bins: int) -> None:
    p = numeric_profile(np.array(train), n_bins=n_bins)
    assert len(p["shares"]) == len(p["edges"]) + 2 <= n_bins + 1
    assert p["edges"] == sorted(set(p["edges"]))
    assert sum(p["shares"]) == pytest.approx(1.0)
    idx = bin_index(p, np.array(live))
    assert ((idx >= 0) & (idx < n_buckets(p))).all()
    # every value lies in its right-closed bin (e[i-1], e[i]]
    e = [-math.inf, *p["edges"], math.inf]
    for v, i in zip(live, idx.tolist(), strict=True):
        assert (i == len(e) - 1) if math.isnan(v) else e[i] < v <= e[i + 1]
    value = profile_psi(p, np.array(live))
    assert value >= 0.0 and math.isfinite(value)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=8).filter(
        lambda h: sum(h) > 0
    ),
    st.data(),
)
def test_psi_non_negative_and_zero_only_on_equal(h: list[float], data: st.DataObject) -> None:
    other = data.draw(
        st.lists(st.floats(0, 1e6, allow_nan=False), min_size=len(h), max_size=len(h)).filter(
            lambda g: sum(g) > 0
        )
    )
    assert psi(h, other) >= 0.0
    assert psi(h, h) == 0.0


# --------------------------------------------------------------------------- mutation holes


def test_build_reference_uses_its_n_bins() -> None:
    x = np.arange(1000, dtype=float)
    for n_bins in (4, 10, 20):
        ref = build_reference({"x": x}, {"x": "numeric"}, x, n_bins=n_bins)
        assert len(ref["features"]["x"]["edges"]) == n_bins - 1
        assert len(ref["prediction"]["edges"]) == n_bins - 1


@pytest.mark.parametrize("eps", [0.0, -1e-4, math.nan])
def test_psi_refuses_a_non_positive_eps(eps: float) -> None:
    with pytest.raises(ValueError, match="eps must be positive"):
        psi([0.5, 0.5], [0.5, 0.5], eps=eps)


def test_categorical_profile_with_none_and_integer_categories() -> None:
    col = np.array(["a", None, "b", "a", None], dtype=object)
    p = categorical_profile(col)
    assert p["categories"] == ["a", "b"]
    assert p["shares"] == pytest.approx([0.4, 0.2, 0.0, 0.4])  # a, b, unseen, missing
    codes = np.array([20, 60, 20, 20], dtype=object)  # codes read as numbers
    q = categorical_profile(codes, categories=["20", "60"])
    assert q["shares"] == pytest.approx([0.75, 0.25, 0.0, 0.0])
    assert bin_index(q, np.array(["20", 70, None], dtype=object)).tolist() == [0, 2, 3]
