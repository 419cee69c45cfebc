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
import os
import stat
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

import numpy as np
from pydantic import BaseModel, ValidationError

from app.body import KeyGuard
from app.metrics import DriftRows, Metrics
from app.monitor import DriftMonitor
from app.schemas import FeatureSpec, RequestSchema, build_request_schema
from app.settings import Settings
from app.traffic import Traffic
from model.base import Columns
from model.fold import CannotFoldError, FoldedLinear, fold
from model.workflow.artifact import ArtifactError, load_artifact
from model.workflow.intervals import IntervalRule

log = logging.getLogger("houseprice")

_SIDECAR_BYTES = 4096  # a checksum or signature line

#: The largest table the folded terms price: their Python loop beats the pipeline's NumPy
#: calls on a few rows, and loses on many.
FOLD_MAX_ROWS = 32


class PredictionError(Exception):
    """The model raised or returned a non-finite price: a server fault, never the client's."""


class ModelLoadError(Exception):
    """The artifact was verified but cannot serve (bad schema, warm-up failed)."""


#: A request's houses as columns: feature name -> one value per house (``None`` = missing),
#: every feature of the model, validated.
Table = dict[str, Sequence[Any]]


class InputQuality:
    """What validation let through but monitoring should count, per feature."""

    __slots__ = ("missing", "out_of_range", "unknown")

    def __init__(self) -> None:
        self.missing: dict[str, int] = {}
        self.out_of_range: dict[str, int] = {}
        self.unknown: list[tuple[int, str, str]] = []  # (row, feature, value)


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
    folded: FoldedLinear | None = field(init=False, default=None)
    price_path: str = field(init=False, default="")
    answer_examples: dict[str, Any] = field(init=False, default_factory=dict)  # OpenAPI 200s
    interval: IntervalRule | None = field(init=False, default=None)  # INTERVAL_LEVEL's rule
    key_guard: KeyGuard = field(init=False, repr=False)
    names: list[str] = field(init=False, repr=False)  # the features, in the schema's order
    required: frozenset[str] = field(init=False, repr=False)  # the features a house must give
    _values: Callable[[dict[str, Any]], tuple[Any, ...]] = field(init=False, repr=False)
    _names: list[str] = field(init=False, repr=False)
    _ranges: list[tuple[str, float, float]] = field(init=False, repr=False)
    _categories: list[tuple[str, frozenset[str]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = self.names = self._names = [s.name for s in self.features]
        self.required = frozenset(s.name for s in self.features if s.required)
        self.key_guard = KeyGuard(names, extra=["instances"])
        self._ranges = [(s.name, s.lo, s.hi) for s in self.features if s.kind != "categorical"]
        self._categories = [
            (s.name, s.categories) for s in self.features if s.kind == "categorical"
        ]
        self._values = itemgetter(*names) if len(names) > 1 else lambda r: (r[names[0]],)
        try:
            self.folded = fold(self.pipeline)
            self.price_path = "folded linear terms"
        except CannotFoldError as e:
            self.price_path = f"general pipeline ({e})"

    def table(self, houses: list[BaseModel]) -> Table:
        """Validated houses -> their columns, transposed in C (one ``itemgetter`` per row)."""
        return self.tabulate(houses)[0]

    def tabulate(self, houses: list[BaseModel]) -> tuple[Table, list[tuple[Any, ...]]]:
        """:meth:`table`, and the rows it was transposed from (each house's values in the
        model's order), which the drift window takes as they are."""
        rows = list(map(self._values, map(vars, houses)))
        return dict(zip(self._names, zip(*rows, strict=True), strict=True)), rows

    def quality(self, table: Table) -> InputQuality:
        """Missing values, values outside the training range and unknown categories."""
        q = InputQuality()
        for name, lo, hi in self._ranges:
            missing = outside = 0
            for v in table[name]:
                if v is None:
                    missing += 1
                elif v < lo or v > hi:
                    outside += 1
            if missing:
                q.missing[name] = missing
            if outside:
                q.out_of_range[name] = outside
        for name, cats in self._categories:
            missing = 0
            for i, v in enumerate(table[name]):
                if v is None:
                    missing += 1
                elif cats and v not in cats:
                    q.unknown.append((i, name, v))
            if missing:
                q.missing[name] = missing
        return q

    def predict(self, table: Table) -> list[float]:
        """Prices of the table's rows: by the folded terms when the model folds and the table
        is small, else (or for a table the fold hands back) by the pipeline's NumPy."""
        n = len(table[self._names[0]])
        if self.folded is not None and n <= FOLD_MAX_ROWS:
            prices = self.folded.predict(table)
            if prices is not None:
                return prices
        cols: Columns = {
            s.name: np.array(table[s.name], dtype=object if s.kind == "categorical" else np.float64)
            for s in self.features
        }
        y = np.asarray(self.pipeline.predict(cols), dtype=np.float64).reshape(-1)
        if y.shape[0] != n:
            raise ModelLoadError(f"the pipeline returned {y.shape[0]} prices for {n} rows")
        out: list[float] = y.tolist()
        return out


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
                order=[s.name for s in features],
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
    model.interval = served_interval(metadata, settings.interval_level, path)
    warm(model)
    return model


def served_interval(metadata: dict[str, Any], level: float, path: str) -> IntervalRule | None:
    """The interval rule of ``INTERVAL_LEVEL``; ``None`` for an artifact that stores no
    intervals (or too few residuals for that level), whose answers then carry none."""
    record = metadata.get("intervals")
    if not record:
        return None
    try:
        rule = IntervalRule.from_record(record, level)
    except ValueError as e:
        raise ModelLoadError(f"{path}: INTERVAL_LEVEL={level:g}: {e}") from None
    except (KeyError, TypeError) as e:
        raise ModelLoadError(f"{path}: unusable intervals record: {e!r}") from None
    if rule is None:
        log.warning("no interval at INTERVAL_LEVEL=%g: too few residuals in %s", level, path)
    return rule


def warm(model: LoadedModel) -> None:
    """One prediction of the schema's example row, through the request path.

    It proves the pipeline runs on this NumPy before the model takes traffic, pays the
    first-call costs outside any request's latency, and checks that the folded terms price
    the example as the pipeline does (else the fold is switched off).
    """
    try:
        row = model.schema.house.model_validate(model.schema.example)
    except ValidationError as e:
        raise ModelLoadError(
            f"{model.path}: the schema's example row is not valid: {e.errors()[0]['msg']} "
            f"at {e.errors()[0]['loc']}"
        ) from None
    table = model.table([row])
    folded, model.folded = model.folded, None
    try:
        y = model.predict(table)
        fast = folded.predict(table) if folded is not None else None
    except Exception as e:
        raise ModelLoadError(f"{model.path}: warm-up prediction failed: {e}") from e
    if not all(map(math.isfinite, y)):
        raise ModelLoadError(f"{model.path}: warm-up prediction is not finite: {y}")
    answer = {"model_version": model.version, "request_id": "4f1c0e2a9b7d4c3e8a6f5b2d1e0c9a8b"}
    house: dict[str, Any] = {"price": y[0]}
    batch: dict[str, Any] = {"prices": [y[0], y[0]]}
    if model.interval is not None:
        house["interval"] = model.interval.around(y)[0]
        batch["intervals"] = model.interval.around([y[0], y[0]])
    model.answer_examples = {
        "house": {"value": {**house, **answer, "unknown_categories": {}}},
        "batch": {"value": {**batch, **answer, "unknown_categories": []}},
    }
    if folded is None:
        return
    if fast is None or not math.isclose(fast[0], y[0], rel_tol=1e-9, abs_tol=0.0):
        model.price_path = "general pipeline (the folded terms disagreed at warm-up)"
        log.warning("folded terms disabled: %s vs %s", fast, y)
    else:
        model.folded = folded


def preflight(path: str, settings: Settings) -> None:
    """Refuse, before a byte is read, an artifact or sidecar that is not a regular file (a
    FIFO or a device would block or never end), an artifact over ``MAX_ARTIFACT_BYTES`` and a
    sidecar over a few KiB. Each is opened non-blocking and checked with ``fstat``."""
    files = [(path, settings.max_artifact_bytes), (path + ".sha256", _SIDECAR_BYTES)]
    if settings.model_signing_key:
        files.append((path + ".sig", _SIDECAR_BYTES))
    for name, limit in files:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            continue  # load_artifact names what is missing
        except OSError as e:
            raise ArtifactError(f"{name}: cannot open: {e.strerror or e}") from None
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ArtifactError(f"{name}: refused: not a regular file")
        if st.st_size > limit:
            raise ArtifactError(f"{name}: refused: {st.st_size} bytes is over the limit of {limit}")


def load_model(path: str, settings: Settings) -> LoadedModel:
    """Check the files, verify (sha256, and HMAC with a key) before unpickling, then build and
    warm."""
    preflight(path, settings)
    key = settings.model_signing_key.encode() if settings.model_signing_key else None
    art = load_artifact(path, signing_key=key)
    return build_model(art.pipeline, art.metadata, art.sha256, art.path, settings)


class ReloadRefusedError(Exception):
    """A reload request that must not be attempted (path outside the model directory)."""


class ReloadConflictError(Exception):
    """A reload that cannot go ahead now or would roll back (409), the old model serving."""


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


class NotReadyError(Exception):
    """No verified model is serving, or the process is shutting down (503)."""


class Service:
    """Settings, metrics and the model holder of one app instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.body_timeout)
        self.holder = ModelHolder()
        self.monitoring = settings.monitoring_enabled
        self.model_dir = Path(settings.model_path).resolve().parent
        self.metrics.requests.read_drift_from(self._drift_rows)
        self._overrun: asyncio.Future[LoadedModel] | None = None
        self.metrics.drift_threshold.set(settings.drift_psi_threshold)
        self.traffic = Traffic(settings, self.metrics.registry)
        self.metrics.requests.read_shadow_from(
            lambda: self.traffic.shadow.series() if self.traffic.shadow is not None else None
        )

    def ready_model(self) -> LoadedModel:
        """The serving model; :class:`NotReadyError` with the reason when there is none."""
        model = self.holder.current
        if model is None or self.holder.shutting_down:
            raise NotReadyError(self.holder.not_ready_reason())
        return model

    def begin_shutdown(self) -> None:
        """Readiness turns 503 now; in-flight requests finish."""
        self.holder.shutting_down = True
        self.metrics.model_ready.set(0)

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
                "price_path": model.price_path,
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

    async def reload(
        self, path: str, allow_downgrade: bool = False
    ) -> tuple[LoadedModel, LoadedModel | None]:
        """Load, verify and warm ``path`` beside the serving model, then swap one reference.

        The CPU-bound part runs in a worker thread so the event loop keeps answering
        ``/predict`` with the old model meanwhile; the lock serialises concurrent reloads,
        and a load has ``RELOAD_TIMEOUT`` seconds (a thread cannot be stopped: until one that
        overran ends, reloads are refused). An artifact created before the serving one is
        refused unless ``allow_downgrade``: an old signed artifact must not be replayable. A
        failure raises and leaves the old model serving.
        """
        async with self.holder.lock:
            if self._overrun is not None and not self._overrun.done():
                raise ReloadConflictError("the previous reload overran its deadline and still runs")
            work = asyncio.ensure_future(asyncio.to_thread(load_model, path, self.settings))
            try:
                model = await asyncio.wait_for(
                    asyncio.shield(work), timeout=self.settings.reload_timeout
                )
                previous = self.holder.current
                self._refuse_downgrade(model, previous, allow_downgrade)
            except TimeoutError:
                self._overrun = work
                self._refused(
                    ReloadConflictError(
                        f"{path}: not loaded within RELOAD_TIMEOUT "
                        f"({self.settings.reload_timeout:g} s)"
                    )
                )
            except (ArtifactError, ModelLoadError, ReloadConflictError) as e:
                self._refused(e)
            self.install(model, previous)
            return model, previous

    def _refuse_downgrade(
        self, model: LoadedModel, previous: LoadedModel | None, allowed: bool
    ) -> None:
        new, old = (
            model.metadata.get("created_at"),
            previous and previous.metadata.get("created_at"),
        )
        if not (isinstance(new, str) and isinstance(old, str) and new < old):
            return
        if not allowed:
            raise ReloadConflictError(
                f"{model.path} (version {model.version}, created {new}) is older than the "
                f"serving model (version {previous.version if previous else None}, created {old}); "
                "send allow_downgrade: true to roll back"
            )
        log.warning(
            "downgrade allowed",
            extra={"model_version": model.version, "created_at": new, "serving_created_at": old},
        )

    def _refused(self, e: Exception) -> NoReturn:
        self.metrics.model_loads.labels("failure").inc()
        log.warning("reload refused, the previous model keeps serving: %s", e)
        raise e

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
        self,
        model: LoadedModel,
        table: Table,
        rid: str,
        rows: Sequence[tuple[Any, ...]],
    ) -> Priced:
        """Price a table of validated houses with ``model`` and record them for monitoring.

        The one prediction path of ``/predict`` and the V2 ``infer`` route: the table, and the
        same houses as rows in the model's order (``LoadedModel.tabulate``'s), which the drift
        window takes as they are. A failure of the model is counted, logged with the request id
        and raised as :class:`PredictionError`; a failure of the monitoring is logged and never
        fails the prediction.
        """
        try:
            prices = model.predict(table)
        except Exception as e:
            self.metrics.requests.count_error("model_error")
            log.exception("prediction failed", extra={"request_id": rid})
            raise PredictionError("prediction failed") from e
        if not all(map(math.isfinite, prices)):
            self.metrics.requests.count_error("non_finite")
            log.error("non-finite prediction", extra={"request_id": rid})
            raise PredictionError("the model returned a non-finite price")
        quality = model.quality(table)
        if self.monitoring:
            try:
                self.metrics.requests.observe_prediction(
                    model.version,
                    prices,
                    quality.missing,
                    quality.out_of_range,
                    Counter(name for _, name, _ in quality.unknown) if quality.unknown else {},
                )
                monitor = model.monitor
                if monitor is not None:
                    monitor.add_rows(rows, prices)
            except Exception:
                log.exception("recording the prediction failed", extra={"request_id": rid})
        return Priced(prices, quality, table, rows)


class Priced(NamedTuple):
    """The prices of a request's houses, in order, what their inputs' quality counted, and
    the validated table and rows they were priced from (they must not change afterwards)."""

    prices: list[float]
    quality: InputQuality
    table: Table
    rows: Sequence[tuple[Any, ...]]
