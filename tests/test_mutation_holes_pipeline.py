"""model.pipeline: what mutation testing found the other tests let through (issue 20)."""

from __future__ import annotations

import re

import pytest

from model.pipeline import check_names


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["a", ""], "step name '' must be a non-empty string without '__'"),
        (["a__b"], "step name 'a__b' must be a non-empty string without '__'"),
        ([3], "step name 3 must be a non-empty string without '__'"),
        (["a", "b", "a"], "step names must be unique; 'a' appears twice"),
    ],
)
def test_check_names_refusals_are_worded_whole(names: list[object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        check_names(names, "step")  # type: ignore[arg-type]


def test_check_names_accepts_single_underscores() -> None:
    check_names(["a_b", "_c", "d_"], "step")
