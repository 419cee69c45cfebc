import numpy as np
import pytest

from model.base import (
    BaseEstimator,
    NotFittedError,
    as_columns,
    check_array,
    check_is_fitted,
    check_X_y,
    clone,
)


class Toy(BaseEstimator):
    def __init__(self, alpha: float = 1.0, inner: BaseEstimator | None = None) -> None:
        self.alpha = alpha
        self.inner = inner


def test_params_roundtrip_and_nested_set() -> None:
    t = Toy(alpha=2.0, inner=Toy(alpha=3.0))
    assert t.get_params()["inner__alpha"] == 3.0
    t.set_params(alpha=5.0, inner__alpha=7.0)
    assert t.alpha == 5.0 and t.inner is not None and t.inner.alpha == 7.0
    with pytest.raises(ValueError, match="invalid parameter 'beta'"):
        t.set_params(beta=1)


def test_clone_is_unfitted_copy() -> None:
    t = Toy(alpha=2.0, inner=Toy())
    t.coef_ = 1  # type: ignore[attr-defined]
    c = clone(t)
    assert c.alpha == 2.0 and c.inner is not t.inner and not hasattr(c, "coef_")


def test_check_is_fitted() -> None:
    with pytest.raises(NotFittedError, match="Toy instance is not fitted"):
        check_is_fitted(Toy())


def test_check_array_names_column_and_shape() -> None:
    with pytest.raises(ValueError, match=r"2-D array, got shape \(3,\)"):
        check_array([1, 2, 3])
    with pytest.raises(ValueError, match="column 'b' holds missing"):
        check_array([[1.0, np.nan]], feature_names=["a", "b"])
    with pytest.raises(ValueError, match="column 1 holds a non-numeric value 'x'"):
        check_array([[1, "x"]])
    with pytest.raises(ValueError, match="at least 1 sample"):
        check_array(np.empty((0, 2)))
    with pytest.raises(ValueError, match="different numbers of samples"):
        check_X_y([[1.0], [2.0]], [1.0])
    with pytest.raises(ValueError, match="y: holds 1 non-finite"):
        check_X_y([[1.0], [2.0]], [1.0, np.inf])


def test_as_columns_rows_and_mapping() -> None:
    cols = as_columns([{"a": 1, "b": "x"}, {"a": None, "b": None}])
    assert cols["a"].dtype == np.float64 and np.isnan(cols["a"][1])
    assert cols["b"].dtype == object and cols["b"][1] is None
    with pytest.raises(ValueError, match="row 1 has columns"):
        as_columns([{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match="different lengths"):
        as_columns({"a": [1, 2], "b": [1]})
