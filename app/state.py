"""The serving model and the process-wide service state.

``LoadedModel`` is everything one artifact needs at request time, built once at load: the
verified pipeline, its metadata, the request validators generated from its feature schema and
its drift monitor. Requests read ``ModelHolder.current`` once and use that object to the end,
so a hot reload — which builds the new ``LoadedModel`` beside the old one and then rebinds one
reference — can never mix two models within one request.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError

from app.metrics import DriftRows, Metrics
from app.monitor import DriftMonitor, values_getter
from app.schemas import FeatureSpec, RequestSchema, build_request_schema
from app.settings import Settings
from model.base import Columns
from model.fold import CannotFoldError, FoldedLinear, fold
from model.workflow.artifact import ArtifactError, load_artifact

log = logging.getLogger("houseprice")


class PredictionError(Exception):
    """The model raised or returned a non-finite price: a server fault, never the client's."""


class ModelLoadError(Exception):
    """The artifact was verified but cannot serve (bad schema, warm-up failed)."""


@dataclass
class InputQuality:
    """What validation let through but monitoring should count, per feature."""

    missing: dict[str, int] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)
    unknown: list[tuple[int, str, str]] = field(default_factory=list)  # (row, feature, value)


@dataclass(eq=False)
class LoadedModel:
    pipeline: Any
    metadata: dict[str, Any]
    version: str
    sha256: str
    path: str
    features: tuple[FeatureSpec, ...]
    schema: RequestSchema
    monitor: DriftMonitor | None
    loaded_at: float
    test_rmse: float | None
    numeric: tuple[FeatureSpec, ...] = field(init=False)
    categorical: tuple[FeatureSpec, ...] = field(init=False)
    folded: FoldedLinear | None = field(init=False, default=None)  # one-row fast path
    single_row_path: str = field(init=False, default="")
    _row_values: Callable[[dict[str, Any]], tuple[Any, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._row_values = values_getter([s.name for s in self.features])
        self.numeric = tuple(s for s in self.features if s.kind == "numeric")
        self.categorical = tuple(s for s in self.features if s.kind == "categorical")
        try:
            self.folded = fold(self.pipeline)
            self.single_row_path = "folded linear terms"
        except CannotFoldError as e:
            self.single_row_path = f"general pipeline ({e})"

    def table(self, rows: list[BaseModel]) -> tuple[Columns, InputQuality]:
        """Validated houses -> the pipeline's table (feature name -> 1-D column).

        Numeric columns are float64 with NaN for a missing value, categorical ones object
        arrays with ``None``: the representation the training pipeline was fitted on.
        """
        q = InputQuality()
        n = len(rows)
        cols: Columns = {}
        # Transposed in C: one itemgetter call per row, then zip(*) into one tuple per feature.
        by_feature = zip(*map(self._row_values, map(vars, rows)), strict=True)
        for spec, values in zip(self.features, by_feature, strict=True):
            if spec.kind == "numeric":
                col = np.array(values, dtype=np.float64)  # None -> NaN, as NumPy converts it
                missing = int(np.count_nonzero(np.isnan(col)))  # validation refuses NaN
                outside = int(np.count_nonzero((col < spec.lo) | (col > spec.hi)))
                if outside:
                    q.out_of_range[spec.name] = outside
            else:
                col = np.empty(n, dtype=object)
                col[:] = values
                present = set(values)  # a few distinct values: set maths, not a loop per row
                missing = values.count(None) if None in present else 0
                cats = spec.categories
                if cats and present - cats - {None}:
                    q.unknown.extend(
                        (i, spec.name, v)
                        for i, v in enumerate(values)
                        if v is not None and v not in cats
                    )
            if missing:
                q.missing[spec.name] = missing
            cols[spec.name] = col
        return cols, q

    def quality_one(self, row: dict[str, Any]) -> InputQuality:
        """What ``table`` would report for this one house, in plain Python."""
        q = InputQuality()
        for spec in self.numeric:
            v = row[spec.name]
            if v is None:
                q.missing[spec.name] = 1
            elif v < spec.lo or v > spec.hi:
                q.out_of_range[spec.name] = 1
        for spec in self.categorical:
            v = row[spec.name]
            if v is None:
                q.missing[spec.name] = 1
            elif spec.categories and v not in spec.categories:
                q.unknown.append((0, spec.name, v))
        return q

    def price_one(self, row: dict[str, Any]) -> float | None:
        """One validated house priced by the folded terms (``model/fold.py``), or ``None``.

        The same price as the pipeline to rounding, in a few microseconds: no table, none of
        the dozen NumPy calls that make a one-row ``Pipeline.predict`` cost ~20 times more.
        ``None`` when the pipeline does not fold, or for a row the fold hands back.
        """
        folded = self.folded
        return None if folded is None else folded.predict_row(row)

    def predict(self, cols: Columns) -> NDArray[np.float64]:
        """Prices of the table's rows, by the pipeline."""
        y = np.asarray(self.pipeline.predict(cols), dtype=np.float64).reshape(-1)
        n = len(next(iter(cols.values()))) if cols else 0
        if y.shape[0] != n:
            raise ModelLoadError(f"the pipeline returned {y.shape[0]} prices for {n} rows")
        return y


def build_model(
    pipeline: Any,
    metadata: dict[str, Any],
    sha256: str,
    path: str,
    settings: Settings,
) -> LoadedModel:
    """Wrap a verified pipeline: schema, validators, monitor; then warm it with the example."""
    try:
        features = tuple(FeatureSpec.from_metadata(e) for e in metadata["features"])
        version = str(metadata["model_version"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelLoadError(f"{path}: metadata has no usable feature schema: {e}") from None
    if not features:
        raise ModelLoadError(f"{path}: metadata lists no features")
    schema = build_request_schema(features, settings.max_batch_size)
    test_rmse = (metadata.get("test") or {}).get("rmse")
    monitor = None
    reference = metadata.get("reference")
    if reference:
        try:
            monitor = DriftMonitor(
                reference,
                version,
                window=settings.drift_window,
                min_samples=min(settings.drift_min_samples, settings.drift_window),
                threshold=settings.drift_psi_threshold,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ModelLoadError(f"{path}: unusable drift reference: {e}") from None
    model = LoadedModel(
        pipeline=pipeline,
        metadata=metadata,
        version=version,
        sha256=sha256,
        path=path,
        features=features,
        schema=schema,
        monitor=monitor,
        loaded_at=time.time(),
        test_rmse=float(test_rmse) if isinstance(test_rmse, int | float) else None,
    )
    warm(model)
    return model


def warm(model: LoadedModel) -> None:
    """One prediction of the schema's example row, through the request path.

    It proves the pipeline runs on this NumPy before the model takes traffic, and pays the
    first-call costs (imports, caches) outside any request's latency.
    """
    try:
        row = model.schema.house.model_validate(model.schema.example)
    except ValidationError as e:
        raise ModelLoadError(
            f"{model.path}: the schema's example row is not valid: {e.errors()[0]['msg']} "
            f"at {e.errors()[0]['loc']}"
        ) from None
    cols, _ = model.table([row])
    try:
        y = model.predict(cols)
        fast = model.price_one(row.__dict__)
    except Exception as e:
        raise ModelLoadError(f"{model.path}: warm-up prediction failed: {e}") from e
    if not np.isfinite(y).all():
        raise ModelLoadError(f"{model.path}: warm-up prediction is not finite: {y.tolist()}")
    # belt and braces: the fast path must price as the pipeline
    if model.folded is not None and (
        fast is None or not math.isclose(fast, float(y[0]), rel_tol=1e-9, abs_tol=0.0)
    ):
        model.folded = None
        model.single_row_path = "general pipeline (the folded terms disagreed at warm-up)"
        log.warning("folded one-row path disabled: %s vs %s", fast, y.tolist())


def load_model(path: str, settings: Settings) -> LoadedModel:
    """Verify (sha256, and HMAC with a key) before unpickling, then build and warm."""
    key = settings.model_signing_key.encode() if settings.model_signing_key else None
    art = load_artifact(path, signing_key=key)
    return build_model(art.pipeline, art.metadata, art.sha256, art.path, settings)


class ReloadRefusedError(Exception):
    """A reload request that must not be attempted (path outside the model directory)."""


class ModelHolder:
    """The one mutable reference to the serving model, plus readiness."""

    def __init__(self) -> None:
        self.current: LoadedModel | None = None
        self.error: str | None = "not loaded yet"
        self.shutting_down = False
        self.versions: set[str] = set()  # every version served by this process
        self.lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return self.current is not None and not self.shutting_down

    def not_ready_reason(self) -> str:
        if self.shutting_down:
            return "shutting down"
        return self.error or "no model loaded"


class Service:
    """Settings, metrics and the model holder of one app instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.holder = ModelHolder()
        self.monitoring = settings.monitoring_enabled
        self.model_dir = Path(settings.model_path).resolve().parent
        self.metrics.add_drift_source(self._drift_rows)

    def _drift_rows(self) -> tuple[str, DriftRows] | None:
        m = self.holder.current
        if m is None or m.monitor is None or not self.monitoring:
            return None
        return m.version, m.monitor.gauges()

    def install(self, model: LoadedModel, previous: LoadedModel | None = None) -> None:
        self.holder.current = model
        self.holder.error = None
        self.holder.versions.add(model.version)
        self.metrics.set_model(model.version, model.sha256, model.test_rmse, model.loaded_at)
        log.info(
            "model loaded",
            extra={
                "model_version": model.version,
                "sha256": model.sha256,
                "path": model.path,
                "previous_version": previous.version if previous else None,
                "single_row_path": model.single_row_path,
            },
        )

    def load_initial(self) -> None:
        """Start-up load; a failure leaves the app up but not ready, with one log line."""
        path = self.settings.model_path
        try:
            model = load_model(path, self.settings)
        except (ArtifactError, ModelLoadError) as e:
            self.holder.error = f"model not loaded: {e}"
            self.metrics.model_loads.labels("failure").inc()
            self.metrics.model_ready.set(0)
            log.error("model not loaded, serving 503 until a reload succeeds: %s", e)
            return
        self.install(model)

    def resolve_reload_path(self, requested: str | None) -> str:
        """The artifact path of a reload request, refused outside the model directory."""
        if requested is None:
            return str(Path(self.settings.model_path).resolve())
        candidate = (self.model_dir / requested).resolve()
        if not candidate.is_relative_to(self.model_dir):
            raise ReloadRefusedError(
                f"path {requested!r} is outside the model directory {str(self.model_dir)!r}"
            )
        return str(candidate)

    async def reload(self, path: str) -> tuple[LoadedModel, LoadedModel | None]:
        """Load, verify and warm ``path`` beside the serving model, then swap one reference.

        The CPU-bound part runs in a worker thread so the event loop keeps answering
        ``/predict`` with the old model meanwhile; the lock serialises concurrent reloads.
        A failure raises and leaves the old model serving.
        """
        async with self.holder.lock:
            try:
                model = await asyncio.to_thread(load_model, path, self.settings)
            except (ArtifactError, ModelLoadError) as e:
                self.metrics.model_loads.labels("failure").inc()
                log.warning("reload refused, the previous model keeps serving: %s", e)
                raise
            previous = self.holder.current
            self.install(model, previous)
            return model, previous

    def check_admin(self, authorization: str | None) -> int | None:
        """``None`` when allowed, else the HTTP status: 401 no/malformed, 403 wrong/disabled."""
        token = self.settings.admin_token
        if authorization is None:
            return 401
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return 401
        if token is None:
            return 403
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            return 403
        return None

    def price(
        self, model: LoadedModel, rows: list[BaseModel], rid: str
    ) -> tuple[NDArray[np.float64], InputQuality]:
        """Price validated houses with ``model`` and record them for monitoring.

        The one prediction path of ``/predict`` and the V2 ``infer`` route. One house takes
        the folded terms straight from the validated fields when the model folds; a batch, or
        a row the fold hands back, goes through the table and the pipeline. A failure of the
        model is counted, logged with the request id and raised as :class:`PredictionError`;
        a failure of the monitoring is logged and never fails the prediction.
        """
        row = rows[0].__dict__ if len(rows) == 1 else None
        cols: Columns | None = None
        try:
            price = None if row is None else model.price_one(row)
            if price is not None and row is not None:  # finite, by predict_row's contract
                y, quality = np.array([price]), model.quality_one(row)
            else:
                cols, quality = model.table(rows)
                y = model.predict(cols)
        except Exception as e:
            self.metrics.prediction_errors.labels("model_error").inc()
            log.exception("prediction failed", extra={"request_id": rid})
            raise PredictionError("prediction failed") from e
        if cols is not None and not np.isfinite(y).all():
            self.metrics.prediction_errors.labels("non_finite").inc()
            log.error("non-finite prediction", extra={"request_id": rid})
            raise PredictionError("the model returned a non-finite price")
        if self.monitoring:
            try:
                self.record_prediction(model, y, quality, cols=cols, row=row)
            except Exception:
                log.exception("recording the prediction failed")
        return y, quality

    def record_prediction(
        self,
        model: LoadedModel,
        y: NDArray[np.float64],
        q: InputQuality,
        *,
        cols: Columns | None = None,
        row: dict[str, Any] | None = None,
    ) -> None:
        """Counters, histograms and the drift window for one served request.

        The drift window takes the request's table (``cols``) or, for one house priced
        without a table, its validated fields (``row``).
        """
        mt = self.metrics
        mt.prediction.observe(model.version, y)
        for name, count in q.missing.items():
            mt.input_missing.labels(name).inc(count)
        for name, count in q.out_of_range.items():
            mt.input_out_of_range.labels(name).inc(count)
        if q.unknown:  # one locked increment per feature, not one per row
            for name, count in Counter(name for _, name, _ in q.unknown).items():
                mt.input_unknown_category.labels(name).inc(count)
        monitor = model.monitor
        if monitor is None:
            return
        if cols is not None:
            monitor.update(cols, y)
        elif row is not None:
            monitor.update_row(row, float(y[0]))
