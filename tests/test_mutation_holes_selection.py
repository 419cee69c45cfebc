"""model.selection: what mutation testing found the other tests let through (issue 20)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from model.selection import _ranks


@pytest.mark.parametrize("greater", [True, False])
def test_ranks_are_scipys_min_ranks_with_nan_last(greater: bool) -> None:
    means = np.array([0.3, 0.1, 0.3, np.nan, 0.2, 0.1])
    key = -means if greater else means
    expected = rankdata(np.where(np.isnan(key), np.inf, key), method="min")
    assert _ranks(means, greater).tolist() == expected.tolist()
