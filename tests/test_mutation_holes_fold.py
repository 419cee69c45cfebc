"""model.fold: what mutation testing found the other tests let through (issue 20).

Consecutive subtract-then-divide steps are fused into one standardisation and nothing else
is; a one-hot encoding is only accepted as the last step of a block's chain.
"""

from __future__ import annotations

import pytest

from model.fold import CannotFoldError, _chain, _fuse


def test_only_a_sub_then_div_is_fused() -> None:
    steps = (("sub", 1.0), ("div", 2.0), ("div", 3.0), ("mul", 4.0), ("sub", 5.0))
    assert _fuse(steps) == (("standardize", 1.0, 2.0), ("div", 3.0), ("mul", 4.0), ("sub", 5.0))
    assert _fuse((("div", 2.0), ("sub", 1.0))) == (("div", 2.0), ("sub", 1.0))
    assert _fuse(()) == ()


def test_a_one_hot_encoding_must_be_the_last_step() -> None:
    assert _chain((("log1p",),), (("sub", 1.0),), "b") == (("log1p",), ("sub", 1.0))
    assert _chain((), {"x": 0}, "b") == {"x": 0}
    with pytest.raises(CannotFoldError, match=r"^block 'b/s': a one-hot encoding must be the"):
        _chain((("log1p",),), {"x": 0}, "b/s")
    with pytest.raises(CannotFoldError, match=r"^block 'b': a one-hot encoding must be the last"):
        _chain({"x": 0}, (("log1p",),), "b")
