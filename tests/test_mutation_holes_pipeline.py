"""model.pipeline: what mutation testing found the other tests let through (issue 20).

Which path each step takes (fit_transform or fit then transform; the public transform, which
validates, or the fast one on input already validated), what each accessor returns, and every
refusal worded whole (anchored).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from model.base import BaseEstimator, NotFittedError, RegressorMixin
from model.compose import ColumnTransformer
from model.pipeline import (
    NamedEstimatorsMixin,
    Pipeline,
    _is_passthrough,
    check_names,
    make_pipeline,
)
from model.preprocessing import OneHotEncoder, StandardScaler, ValidatedTransform


def whole(message: str) -> str:
    return "^" + re.escape(message) + "$"


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
    with pytest.raises(ValueError, match=whole(message)):
        check_names(names, "step")  # type: ignore[arg-type]


def test_check_names_accepts_single_underscores() -> None:
    check_names(["a_b", "_c", "d_"], "step")


def test_passthrough_is_none_or_that_one_string() -> None:
    assert _is_passthrough(None) and _is_passthrough("passthrough")
    assert not _is_passthrough("drop") and not _is_passthrough("Passthrough")
    assert not _is_passthrough(StandardScaler())


class Mean(RegressorMixin, BaseEstimator):
    """Predicts the mean of y; records what it was fitted on."""

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift

    def fit(self, X: Any, y: Any) -> Mean:
        self.X_, self.y_ = np.asarray(X), np.asarray(y, dtype=float)
        return self

    def predict(self, X: Any) -> Any:
        return [float(self.y_.mean()) + self.shift] * len(X)


class Plain:
    """A foreign transformer with fit and transform but no fit_transform; records calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def fit(self, X: Any, y: Any = None) -> Plain:
        self.calls.append(f"fit y={None if y is None else list(y)}")
        return self

    def transform(self, X: Any) -> Any:
        self.calls.append("transform")
        return np.asarray(X, dtype=float) * 2

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {}


class Spy(ValidatedTransform):
    """One of ours (a ValidatedTransform): records which path a composite took."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def fit(self, X: Any, y: Any = None) -> Spy:
        return self

    def transform(self, X: Any) -> Any:
        self.calls.append("public")
        return np.asarray(X, dtype=float) + 1

    def _transform(self, X: Any) -> Any:
        self.calls.append("fast")
        return np.asarray(X, dtype=float) + 1


def test_fit_uses_fit_then_transform_when_there_is_no_fit_transform_and_passes_y() -> None:
    plain = Plain()
    model = Mean()
    pipe = Pipeline([("p", plain), ("m", model)])
    assert pipe.fit([[1.0], [2.0]], [3.0, 5.0]) is pipe
    assert plain.calls == ["fit y=[3.0, 5.0]", "transform"]
    assert model.X_.tolist() == [[2.0], [4.0]] and model.y_.tolist() == [3.0, 5.0]
    plain.calls.clear()
    out = Pipeline([("p", plain), ("q", Plain())]).fit_transform([[1.0]], [7.0])
    assert out.tolist() == [[4.0]] and plain.calls == ["fit y=[7.0]", "transform"]


def test_the_first_step_validates_and_ours_after_ours_do_not() -> None:
    first, second, third = Spy(), Spy(), Spy()
    pipe = Pipeline([("a", first), ("p", Plain()), ("b", second), ("c", third), ("m", Mean())])
    pipe.fit(np.ones((2, 1)), [1.0, 2.0])
    for spy in (first, second, third):
        spy.calls.clear()
    pipe.predict(np.ones((1, 1)))
    assert (first.calls, second.calls, third.calls) == (["public"], ["public"], ["fast"])
    with pytest.raises(
        ValueError,
        match=whole("X: column 0 holds infinite values (1 of 1); impute them first"),
    ):
        Pipeline([("s", StandardScaler()), ("m", Mean())]).fit([[1.0], [2.0]], [1, 2]).predict(
            np.array([[np.inf]])
        )


def test_transform_runs_every_step_and_nested_runs_the_fast_path() -> None:
    spy = Spy()
    pipe = Pipeline([("a", spy), ("skip", None), ("b", Spy())]).fit(np.zeros((1, 1)))
    assert pipe.transform(np.zeros((1, 1))).tolist() == [[2.0]]
    assert pipe._transform(np.zeros((1, 1))).tolist() == [[2.0]]
    assert spy.calls == ["public", "public", "fast"]  # fit, transform, _transform
    ct = ColumnTransformer(
        [("n", Pipeline([("s", StandardScaler()), ("p", "passthrough")]), ["a"])]
    )
    assert ct.fit_transform({"a": [1.0, 3.0]}).tolist() == [[-1.0], [1.0]]
    assert ct.transform({"a": [5.0]}).tolist() == [[3.0]]


def test_fit_and_fit_transform_with_a_passthrough_last_step() -> None:
    pipe = Pipeline([("s", StandardScaler()), ("end", "passthrough")])
    assert pipe.fit_transform([[1.0], [3.0]]).tolist() == [[-1.0], [1.0]]
    assert pipe.fitted_steps_[1] == "passthrough"
    assert pipe.fit([[1.0], [5.0]]).transform([[3.0]]).tolist() == [[0.0]]
    assert pipe._estimator_type is None
    last = Plain()
    out = Pipeline([("s", StandardScaler()), ("p", last)]).fit_transform([[1.0], [3.0]], [0, 1])
    assert out.tolist() == [[-2.0], [2.0]] and last.calls == ["fit y=[0, 1]", "transform"]


def test_predict_score_and_accessors() -> None:
    scaler, model = StandardScaler(), Mean(shift=1.0)
    pipe = Pipeline([("s", scaler), ("m", model)])
    assert pipe._estimator_type == "regressor" and len(pipe) == 2
    assert pipe.named_steps == {"s": scaler, "m": model}
    assert pipe[0] is scaler and pipe["m"] is model and pipe[-1] is model
    head = pipe[:1]
    assert isinstance(head, Pipeline) and head.steps == [("s", scaler)]
    assert not hasattr(head, "fitted_steps_")
    pipe.fit([[1.0], [3.0]], [2.0, 4.0])
    pred = pipe.predict([[0.0], [9.0]])
    assert isinstance(pred, np.ndarray) and pred.tolist() == [4.0, 4.0]
    assert model.X_.tolist() == [[-1.0], [1.0]]
    score = pipe.score([[1.0], [3.0]], [3.0, 5.0])
    assert type(score) is float and score == 1.0 - 2.0 / 2.0
    head = pipe[:1]
    assert head.fitted_steps_ == (scaler,)
    assert head.transform([[3.0]]).tolist() == [[1.0]]


def test_a_step_added_or_replaced_after_fit_needs_a_refit() -> None:
    pipe = Pipeline([("s", StandardScaler()), ("m", Mean())]).fit([[1.0], [3.0]], [1.0, 2.0])
    message = whole("Pipeline: steps were replaced after fit; call 'fit' again")
    pipe.steps = [("s", pipe.steps[0][1]), ("t", StandardScaler()), ("m", pipe.steps[1][1])]
    with pytest.raises(NotFittedError, match=message):
        pipe.predict([[1.0]])
    pipe.steps = [pipe.steps[0], pipe.steps[2]]
    assert pipe.predict([[1.0]]).tolist() == [1.5]
    pipe.steps = [pipe.steps[0], ("m", Mean())]
    with pytest.raises(NotFittedError, match=message):
        pipe.transform([[1.0]])
    with pytest.raises(NotFittedError, match=message):
        pipe.score([[1.0]], [1.0])
    with pytest.raises(NotFittedError, match="this Pipeline instance is not fitted yet"):
        Pipeline([("m", Mean())]).transform([[1.0]])


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "Pipeline: steps is empty; give at least one (name, estimator)"),
        (
            [["s", StandardScaler()]],
            "Pipeline: each step must be a (name, estimator) pair, got "
            "['s', StandardScaler(with_mean=True, with_std=True)]",
        ),
        (
            [("s", StandardScaler(), 1)],
            "Pipeline: each step must be a (name, estimator) pair, got "
            "('s', StandardScaler(with_mean=True, with_std=True), 1)",
        ),
        (
            [("m", Mean()), ("n", Mean())],
            "Pipeline: step 'm' (Mean) must have fit and transform, as every step but the last",
        ),
        (
            [("t", ValidatedTransform()), ("n", Mean())],
            "Pipeline: step 't' (ValidatedTransform) must have fit and transform, as every "
            "step but the last",
        ),
        ([("s", StandardScaler()), ("x", 3)], "Pipeline: final step 'x' has no fit method"),
        (
            [("s", StandardScaler()), ("s", Mean())],
            "Pipeline step names must be unique; 's' appears twice",
        ),
    ],
)
def test_bad_steps_are_refused_whole(steps: Any, message: str) -> None:
    with pytest.raises(ValueError, match=whole(message)):
        Pipeline(steps).fit([[1.0], [2.0]], [1.0, 2.0])


def test_passthrough_steps_are_skipped_when_checked() -> None:
    Pipeline([("a", None), ("b", "passthrough"), ("m", Mean())]).fit([[1.0]], [1.0])
    Pipeline([("a", StandardScaler()), ("m", None)]).fit([[1.0]])


def test_feature_names_through_the_steps() -> None:
    from model.preprocessing import PolynomialFeatures

    pipe = Pipeline(
        [("s", StandardScaler()), ("skip", None), ("p", PolynomialFeatures()), ("m", Mean())]
    )
    pipe.fit([[1.0, 2.0], [3.0, 5.0]], [1.0, 2.0])
    assert pipe.get_feature_names_out(["a", "b"]) == ["a", "b", "a^2", "a b", "b^2"]
    assert pipe.get_feature_names_out() == ["x0", "x1", "x0^2", "x0 x1", "x1^2"]
    middle = Pipeline([("p", Plain()), ("s", StandardScaler())])
    with pytest.raises(
        ValueError, match=whole("Pipeline: step 'p' does not provide feature names")
    ):
        middle.get_feature_names_out(["a"])
    with pytest.raises(ValueError, match=whole("Pipeline: no step provides feature names")):
        Pipeline([("a", None), ("m", Mean())]).get_feature_names_out()
    assert Pipeline([("a", None), ("m", Mean())]).get_feature_names_out(("q",)) == ["q"]
    enc = Pipeline([("o", OneHotEncoder())]).fit(np.array([["x"], ["y"]], dtype=object))
    assert enc.get_feature_names_out(["c"]) == ["c_x", "c_y"]


def test_make_pipeline_names_repeat_with_a_count() -> None:
    pipe = make_pipeline(
        StandardScaler(), None, StandardScaler(), StandardScaler(), "passthrough", Mean()
    )
    assert [n for n, _ in pipe.steps] == [
        "standardscaler",
        "passthrough",
        "standardscaler-2",
        "standardscaler-3",
        "passthrough-2",
        "mean",
    ]


# --- parameters by name ------------------------------------------------------------------------


def test_get_params_names_each_item_and_goes_inside_only_when_deep() -> None:
    scaler = StandardScaler()
    pipe = Pipeline([("s", scaler), ("p", "passthrough"), ("m", Mean())])
    shallow = pipe.get_params(deep=False)
    assert set(shallow) == {"steps"} and shallow["steps"] is pipe.steps
    deep = pipe.get_params()
    assert deep["s"] is scaler and deep["p"] == "passthrough"
    assert deep["s__with_mean"] is True and deep["m__shift"] == 0.0
    assert set(deep) == {"steps", "s", "p", "m", "s__with_mean", "s__with_std", "m__shift"}


def test_set_params_replaces_items_in_place_and_sets_nested_ones() -> None:
    pipe = Pipeline([("s", StandardScaler()), ("m", Mean())])
    new = Mean(shift=3.0)
    assert pipe.set_params(m=new, s__with_mean=False) is pipe
    assert pipe.steps[1] == ("m", new) and pipe.steps[0][1].with_mean is False
    assert isinstance(pipe.steps, list)
    other = [("a", StandardScaler()), ("b", Mean())]
    pipe.set_params(steps=other, b__shift=5.0)
    assert pipe.steps is other and other[1][1].shift == 5.0  # type: ignore[attr-defined]
    ct = ColumnTransformer([("n", StandardScaler(), ["a"])])
    ct.set_params(remainder="passthrough", n=Mean())
    assert ct.remainder == "passthrough" and ct.transformers[0][2] == ["a"]


class Holder(NamedEstimatorsMixin):
    """Its own estimator-valued parameter next to a list of named ones."""

    _items_attr = "items"

    def __init__(self, items: Any, helper: Any = None) -> None:
        self.items = items
        self.helper = helper


def test_set_params_reaches_an_own_estimator_parameter() -> None:
    holder = Holder([("s", StandardScaler())], helper=Mean())
    holder.set_params(helper__shift=2.0, s__with_std=False)
    assert holder.helper.shift == 2.0 and holder.items[0][1].with_std is False
    with pytest.raises(
        ValueError,
        match=whole(
            "invalid parameter 'items2' for Holder: no estimator of that name; valid: ['s']"
        ),
    ):
        holder.set_params(items2__x=1)


def test_set_params_refusals_are_worded_whole() -> None:
    pipe = Pipeline([("s", StandardScaler()), ("p", "passthrough"), ("m", Mean())])
    with pytest.raises(
        ValueError,
        match=whole("invalid parameter 'x' for Pipeline; valid: ['m', 'p', 's', 'steps']"),
    ):
        pipe.set_params(x=1)
    with pytest.raises(
        ValueError,
        match=whole(
            "invalid parameter 'p' for Pipeline: no estimator of that name; valid: ['m', 'p', 's']"
        ),
    ):
        pipe.set_params(p__x=1)
    with pytest.raises(
        ValueError,
        match=whole(
            "invalid parameter 'q' for Pipeline: no estimator of that name; valid: ['m', 'p', 's']"
        ),
    ):
        pipe.set_params(q__x=1)
    with pytest.raises(
        ValueError,
        match=whole(
            "invalid parameter 'steps' for Pipeline: no estimator of that name; "
            "valid: ['m', 'p', 's']"
        ),
    ):
        pipe.set_params(steps__x=1)


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.predict([[1.0]]),
        lambda p: p.transform([[1.0]]),
        lambda p: p.score([[1.0]], [1.0]),
    ],
)
def test_each_method_asks_for_the_fitted_steps(call: Any) -> None:
    """An attribute ending in '_' that is not fitted_steps_ does not make a pipeline fitted."""
    pipe = Pipeline([("s", StandardScaler()), ("m", Mean())])
    pipe.other_ = 1  # type: ignore[attr-defined]
    with pytest.raises(
        NotFittedError, match=whole("this Pipeline instance is not fitted yet; call 'fit' first")
    ):
        call(pipe)


class OwnFitTransform:
    """A last step whose fit_transform is not fit then transform (as t-SNE's is not)."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def fit(self, X: Any, y: Any = None) -> OwnFitTransform:
        self.calls.append("fit")
        return self

    def transform(self, X: Any) -> Any:
        self.calls.append("transform")
        return np.asarray(X)

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        self.calls.append(("fit_transform", None if y is None else list(y)))
        return np.asarray(X) * 10


def test_fit_transform_uses_the_last_steps_own_fit_transform_with_y() -> None:
    last = OwnFitTransform()
    out = Pipeline([("s", StandardScaler()), ("o", last)]).fit_transform([[1.0], [3.0]], [4, 5])
    assert out.tolist() == [[-10.0], [10.0]]
    assert last.calls == [("fit_transform", [4, 5])]


def test_deep_params_list_an_own_estimators_parameters_as_set_params_takes_them() -> None:
    holder = Holder([("s", StandardScaler())], helper=Mean(shift=1.0))
    deep = holder.get_params()
    assert deep["helper__shift"] == 1.0 and deep["s__with_mean"] is True
    assert set(holder.get_params(deep=False)) == {"items", "helper"}
    assert "helper__shift" not in holder.get_params(deep=False)


def test_a_search_can_tune_a_stacks_final_estimator() -> None:
    """Found by a surviving mutant: the deep parameters left out final_estimator__alpha, so a
    grid search refused a name that set_params accepts."""
    from model.ensemble import StackingRegressor
    from model.linear import Ridge
    from model.selection import GridSearchCV

    stack = StackingRegressor([("a", Ridge()), ("b", Ridge(alpha=10.0))], final_estimator=Ridge())
    assert stack.get_params()["final_estimator__alpha"] == 1.0
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = X @ np.array([1.0, -2.0]) + rng.normal(scale=0.1, size=40)
    search = GridSearchCV(stack, {"final_estimator__alpha": [0.1, 100.0]}, cv=2).fit(X, y)
    assert search.best_params_ == {"final_estimator__alpha": 0.1}
    assert search.best_estimator_.final_estimator.alpha == 0.1


class RecordsX:
    """A last step without fit_transform that records what it was fitted on."""

    def fit(self, X: Any, y: Any = None) -> RecordsX:
        self.X_ = np.asarray(X)
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) + self.X_.sum()


def test_fit_transform_fits_a_last_step_without_one_on_the_transformed_rows() -> None:
    last = RecordsX()
    out = Pipeline([("s", StandardScaler()), ("r", last)]).fit_transform([[1.0], [3.0]])
    assert last.X_.tolist() == [[-1.0], [1.0]] and out.tolist() == [[-1.0], [1.0]]


def test_every_step_but_the_last_is_checked_and_a_single_estimator_is_a_pipeline() -> None:
    assert Pipeline([("m", Mean())]).fit([[1.0]], [2.0]).predict([[0.0]]).tolist() == [2.0]
    message = "Pipeline: step '{}' (Mean) must have fit and transform, as every step but the last"
    with pytest.raises(ValueError, match=whole(message.format("b"))):
        Pipeline([("a", StandardScaler()), ("b", Mean()), ("m", Mean())]).fit([[1.0]], [1.0])
    with pytest.raises(ValueError, match=whole(message.format("b"))):
        Pipeline([("a", None), ("b", Mean()), ("m", Mean())]).fit([[1.0]], [1.0])


def test_fit_uses_each_middle_steps_own_fit_transform_with_y() -> None:
    middle = OwnFitTransform()
    last = Mean()
    Pipeline([("o", middle), ("m", last)]).fit([[1.0], [2.0]], [3.0, 4.0])
    assert middle.calls == [("fit_transform", [3.0, 4.0])]
    assert last.X_.tolist() == [[10.0], [20.0]]


def test_a_middle_step_without_fit_transform_is_fitted_on_its_input() -> None:
    middle = RecordsX()
    Pipeline([("r", middle), ("m", Mean())]).fit([[1.0], [2.0]], [0.0, 1.0])
    assert middle.X_.tolist() == [[1.0], [2.0]]
