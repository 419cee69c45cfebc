"""The stream engine's orchestration: the passes, the reductions between them, the model picked
and the records the artifact's metadata holds."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray, clone
from model.selection import parameter_grid
from model.workflow.config import Config, ConfigError, Feature
from model.workflow.data import _open_binary
from model.workflow.stream.blas import one_blas_thread
from model.workflow.stream.cache import ColumnCache
from model.workflow.stream.evaluation import pass3
from model.workflow.stream.reading import Reader, Runner
from model.workflow.stream.sample import SAMPLE_ROWS, Sample
from model.workflow.stream.segments import SegmentPlan, TargetGroups, price_edges
from model.workflow.stream.segments import record as segment_record
from model.workflow.stream.solve import FoldFit, fit_from_sums, pipeline_from_fit
from model.workflow.stream.statistics import category_name, kinds_pass, pass1, raise_pass1
from model.workflow.stream.sums import Layout, Plan, assign_parts, pass2

#: Engines: the rows in memory; sums over chunks; the same sums on a Dask cluster.
ENGINES = ("memory", "stream", "dask")
#: The estimators that fit from sums.
_STREAMABLE = ("linear", "ridge", "lasso", "elasticnet")


def check_engine(cfg: Config, engine: str) -> None:
    """Refuse an engine the estimator cannot train with, naming the ones it can."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine != "memory" and cfg.estimator not in _STREAMABLE:
        raise ConfigError(
            f"{cfg.source}: model.estimator {cfg.estimator!r} cannot train with --engine "
            f"{engine}: it needs every row at once (supported: --engine memory); the linear "
            f"estimators ({', '.join(_STREAMABLE)}) train with {', '.join(ENGINES)}"
        )
    if engine != "memory" and cfg.derived:
        raise ConfigError(
            f"{cfg.source}: [[derived]] features cannot train with --engine {engine}: its "
            "sums are accumulated over the declared features only (supported: --engine memory)"
        )
    ordered = [f.name for f in cfg.features if f.order is not None]
    if engine != "memory" and ordered:
        raise ConfigError(
            f"{cfg.source}: features with an order ({', '.join(ordered)}) cannot train with "
            f"--engine {engine}: its sums are accumulated over one-hot categories only "
            "(supported: --engine memory)"
        )
    solvers = [cfg.params.get("solver"), *cfg.grid.get("solver", [])]
    if engine != "memory" and "sgd" in solvers:
        raise ConfigError(
            f"{cfg.source}: solver 'sgd' draws mini-batches of rows and cannot train with "
            f"--engine {engine} (supported: --engine memory); 'normal' and 'gd' can"
        )


@dataclass
class StreamSearch:
    """The parts of :class:`model.selection.GridSearchCV` that the metadata reads."""

    cv_results_: dict[str, Any]
    best_index_: int
    best_params_: dict[str, Any]
    best_estimator_: Any
    n_splits_: int


@dataclass
class StreamFit:
    """What the stream engine hands back to :func:`model.workflow.train.train`."""

    search: StreamSearch
    best: Any
    test: dict[str, float]
    y_test: FloatArray  # a sample of the test rows, for the plots
    p_test: FloatArray
    features: list[dict[str, Any]]
    reference: dict[str, Any]
    rows: int
    rows_read: int
    rows_train: int
    dropped: dict[str, int]
    sha256: str
    delimiter: str
    encoding: str
    chunk_rows: int
    passes: int = 3
    engine: str = "stream"
    intervals: dict[str, Any] = field(default_factory=dict)  # from samples (module docstring)
    target: dict[str, float] = field(default_factory=dict)  # min, median (sample), max
    segments: dict[str, Any] = field(default_factory=dict)  # Contract 1's, from sums


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with _open_binary(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fit_stream(
    cfg: Config,
    grid: dict[str, list[Any]],
    *,
    chunk_rows: int | None = None,
    say: Callable[[str], None] | None = None,
    sample_rows: int = SAMPLE_ROWS,
    runner: Runner | None = None,
) -> StreamFit:
    """Train ``cfg`` in three passes over its file (see the module docstring); ``runner``
    runs each pass on the file's partitions (default: the whole file, in this process, with
    pass 1's parsed columns kept on disk for the others: :mod:`model.workflow.stream.cache`)."""
    run = runner or Runner()
    rd = Reader(cfg, chunk_rows)
    numeric, categorical = _feature_order(cfg)
    cache = None
    if run.keeps_columns():
        try:
            cache = ColumnCache(numeric, categorical)
        except OSError:  # no writable temporary folder: every pass parses the file
            cache = None
    try:
        with one_blas_thread():
            return _fit_passes(cfg, grid, rd, run, cache, say, sample_rows)
    finally:
        if cache is not None:
            cache.close()


def _feature_order(cfg: Config) -> tuple[tuple[Feature, ...], tuple[Feature, ...]]:
    """The numeric features in the pipeline's order (plain, then logged), the categorical."""
    plain = [f for f in cfg.features if f.numeric and f.transform is None]
    logged_f = [f for f in cfg.features if f.numeric and f.transform == "log"]
    return tuple(plain + logged_f), tuple(f for f in cfg.features if f.kind == "categorical")


def _fit_passes(
    cfg: Config,
    grid: dict[str, list[Any]],
    rd: Reader,
    run: Runner,
    cache: ColumnCache | None,
    say: Callable[[str], None] | None,
    sample_rows: int,
) -> StreamFit:
    from model.drift import numeric_profile
    from model.workflow.train import METRICS, PARAM_PREFIX, build_pipeline

    spans = run.spans(rd)
    note = say or (lambda _: None)
    # A filter column that is neither a numeric feature nor the target is read as numbers
    # only if every present value is one, as load_csv decides: a look at those columns first.
    ambiguous = list(
        dict.fromkeys(r.column for r in cfg.filters if r.column not in rd.numeric_columns)
    )
    numeric_filters: dict[str, bool] = {}
    if ambiguous:
        for kinds in run.map(kinds_pass, [(rd, sp, ambiguous) for sp in spans]):
            for name, b in kinds.items():
                numeric_filters[name] = numeric_filters.get(name, True) and b

    note(f"pass 1/3: statistics of {rd.path}")
    partials = run.map(pass1, [(rd, sp, numeric_filters, cache) for sp in spans])
    p1 = partials[0]
    for later in partials[1:]:
        p1.merge(later)
    raise_pass1(cfg, rd, p1)
    n = p1.kept
    starts = np.concatenate([[0], np.cumsum([q.kept for q in partials])]).astype(int).tolist()
    sha256 = _sha256(rd.path)

    numeric, categorical = _feature_order(cfg)
    cat_names: list[tuple[str, ...]] = []
    cat_maps: list[dict[str, int]] = []
    for f in categorical:
        numeric_col = p1.all_numbers.get(f.column, True)
        spellings = p1.categories.get(f.name, Counter())
        names = tuple(sorted({category_name(v, numeric_col) for v in spellings}))
        cat_names.append(names)
        pos = {name: i for i, name in enumerate(names)}
        cat_maps.append({v: pos[category_name(v, numeric_col)] for v in spellings})
    lay = Layout(
        numeric=numeric,
        categorical=categorical,
        categories=tuple(cat_names),
        shift=np.array([p1.t_sum[f.name] / max(p1.count[f.name], 1) for f in numeric]),
        raw_shift=np.array([p1.raw_sum[f.name] / max(p1.count[f.name], 1) for f in numeric]),
        y_shift=p1.y_sum / n,
        log_target=cfg.target_transform == "log",
    )
    K = cfg.folds
    parts = assign_parts(n, cfg.test_size, K, cfg.seed)
    plan = Plan(lay, cat_maps, numeric_filters, K, cfg.seed, sample_rows, cache)

    def slices() -> list[tuple[NDArray[np.int8], int]]:
        return [(parts[a:b], a) for a, b in itertools.pairwise(starts)]

    note("pass 2/3: sums per fold")
    S = np.zeros((K + 1, lay.width, lay.width))
    m = lay.n_num  # the samples' and ranges' last column is the target
    lo = np.full((K + 1, m + 1), math.inf)
    hi = np.full((K + 1, m + 1), -math.inf)
    samples: list[list[Sample]] = [[] for _ in range(K + 1)]
    train_groups = TargetGroups([len(c) + 1 for c in lay.categories])
    args2 = [(rd, sp, plan, pp, i0) for sp, (pp, i0) in zip(spans, slices(), strict=True)]
    for S_p, lo_p, hi_p, smp, groups in run.map(pass2, args2):
        S += S_p
        lo, hi = np.fmin(lo, lo_p), np.fmax(hi, hi_p)
        for k in range(K + 1):
            samples[k].append(smp[k])
        for g in groups[:K]:
            train_groups.merge(g)
    part_samples = [Sample.merge(s) for s in samples]
    signals = train_groups.signals([f.name for f in categorical])
    strongest = max(signals, key=lambda k: signals[k]) if signals else None
    segment_plan = SegmentPlan(
        None if strongest is None else [f.name for f in categorical].index(strongest),
        price_edges(part_samples[K].values[:, m]),
    )

    estimator = build_pipeline(cfg).named_steps["regressor"].regressor
    candidates = parameter_grid(grid)

    def with_params(params: dict[str, Any]) -> Any:
        short = {k.removeprefix(PARAM_PREFIX): v for k, v in params.items()}
        return clone(estimator).set_params(**short)

    median = cfg.impute == "median"
    fold_fits: list[list[FoldFit]] = []
    for params in candidates:
        est = with_params(params)
        row = []
        for k in range(K):
            others = [j for j in range(K) if j != k]
            smp = Sample.merge([part_samples[j] for j in others]) if median else None
            row.append(fit_from_sums(cfg, lay, S[others].sum(axis=0), smp, est))
        fold_fits.append(row)
    S_train = S[:K].sum(axis=0)
    train_sample = Sample.merge(part_samples[:K])
    n_c = len(candidates)
    B = np.column_stack([fold_fits[c][k].beta for c in range(n_c) for k in range(K)])
    # Every candidate's final model too: the CV picks one after pass 3 (its metrics in
    # dollars need the rows), and the test metrics of the one picked come from that pass.
    finals = [
        fit_from_sums(cfg, lay, S_train, train_sample if median else None, with_params(p))
        for p in candidates
    ]
    edges = {f.name: numeric_profile(train_sample.values[:, j]) for j, f in enumerate(numeric)}
    y_center = math.exp(lay.y_shift) if lay.log_target else lay.y_shift

    note("pass 3/3: predictions and metrics")
    finals_B = np.column_stack([f.beta for f in finals])
    args3 = [
        (rd, sp, plan, pp, i0, B, finals_B, edges, y_center, segment_plan)
        for sp, (pp, i0) in zip(spans, slices(), strict=True)
    ]
    results3 = run.map(pass3, args3)
    p3 = results3[0]
    for other in results3[1:]:
        p3.merge(other)
    table = {
        m_: np.array([[p3.cv[c][k].values()[m_] for k in range(K)] for c in range(n_c)])
        for m_ in METRICS
    }
    means = table[cfg.scoring].mean(axis=1)
    key = np.where(np.isnan(means), np.inf, means)
    best_index = int(np.flatnonzero(key == key.min())[0])  # GridSearchCV's rank 1
    best_params = dict(candidates[best_index])
    best = pipeline_from_fit(cfg, lay, finals[best_index], best_params)
    n_train = int(S_train[lay.one, lay.one])
    features_ref: dict[str, Any] = {}
    for f in cfg.features:
        if f.numeric:
            prof = dict(edges[f.name])
            prof["shares"] = (p3.bins[f.name] / n_train).tolist()
            prof["count"] = n_train
            features_ref[f.name] = prof
        else:
            ci = categorical.index(f)
            off = lay.cat_offsets()[ci]
            counts = np.array([S_train[off + i, lay.one] for i in range(len(cat_names[ci]))])
            seen = counts > 0
            cats = [c for c, s_ in zip(cat_names[ci], seen.tolist(), strict=True) if s_]
            missing = n_train - float(counts.sum())
            features_ref[f.name] = {
                "kind": "categorical",
                "categories": cats,
                "shares": [*(counts[seen] / n_train).tolist(), 0.0, missing / n_train],
                "count": n_train,
            }
    reference = {
        "features": features_ref,
        "prediction": numeric_profile(p3.pred_sample.values[:, best_index]),
    }
    records = _feature_records(
        cfg, lay, S_train, lo[:K].min(axis=0), hi[:K].max(axis=0), train_sample
    )
    train_counts = [
        S_train[off : off + len(names), lay.one]
        for off, names in zip(lay.cat_offsets(), lay.categories, strict=True)
    ]
    segments = segment_record(
        lay, segment_plan, signals, train_counts, n_train, p3.by_category, p3.by_price, best_index
    )
    y_train = train_sample.values[:, m]
    target = {
        "min": float(lo[:K, m].min()),
        "median": float(np.median(y_train)),
        "max": float(hi[:K, m].max()),
    }
    scoring = [cfg.scoring, *[x for x in METRICS if x != cfg.scoring]]
    results: dict[str, Any] = {"params": candidates}
    for key_ in sorted({k for p in candidates for k in p}):
        column = np.empty(n_c, dtype=object)
        column[:] = [p.get(key_) for p in candidates]
        results[f"param_{key_}"] = column
    for name in scoring:
        t = table[name]
        for k in range(K):
            results[f"split{k}_test_{name}"] = t[:, k].copy()
        results[f"mean_test_{name}"] = t.mean(axis=1)
        results[f"std_test_{name}"] = t.std(axis=1)
    from model.workflow.intervals import calibrate

    order = np.argsort(p3.test_sample.keys)
    oof = p3.oof_sample.values
    intervals = calibrate(
        oof[:, 0],
        oof[:, 1 + best_index],
        p3.test_sample.values[:, 0],
        p3.test_sample.values[:, 1 + best_index],
        "log" if lay.log_target else "price",
    )
    return StreamFit(
        search=StreamSearch(results, best_index, best_params, best, K),
        best=best,
        test=p3.test[best_index].values(),
        y_test=p3.test_sample.values[order, 0],
        p_test=p3.test_sample.values[order, 1 + best_index],
        features=records,
        reference=reference,
        rows=n,
        rows_read=p1.rows_read,
        rows_train=n_train,
        dropped=p1.dropped,
        sha256=sha256,
        delimiter=rd.delimiter,
        encoding=rd.encoding,
        chunk_rows=rd.chunk_rows,
        engine=run.name,
        intervals=intervals,
        target=target,
        segments=segments,
    )


def _feature_records(
    cfg: Config,
    lay: Layout,
    S: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    sample: Sample,
) -> list[dict[str, Any]]:
    """:func:`model.workflow.train.feature_records` from the training sums and sample."""
    from model.workflow.train import declared_record  # train imports this module lazily too

    out = []
    for f in cfg.features:
        rec = declared_record(f)
        if f.numeric:
            j = lay.numeric.index(f)
            present = math.isfinite(lo[j])
            rec["min"] = float(lo[j]) if present else None
            rec["max"] = float(hi[j]) if present else None
            col = sample.values[:, j]
            col = col[~np.isnan(col)]
            if rec["example"] is None and col.size:
                rec["example"] = float(np.median(col))
        else:
            ci = lay.categorical.index(f)
            off = lay.cat_offsets()[ci]
            names = lay.categories[ci]
            counts = np.array([S[off + i, lay.one] for i in range(len(names))])
            cats = [c for c, k in zip(names, counts.tolist(), strict=True) if k > 0]
            rec["categories"] = cats
            if rec["example"] is None and cats:
                rec["example"] = str(names[int(np.argmax(counts))])
        out.append(rec)
    return out


def engine_metadata(fit: StreamFit) -> dict[str, Any]:
    """The metadata's record of how the stream engine ran."""
    return {
        "name": fit.engine,
        "chunk_rows": fit.chunk_rows,
        "passes": fit.passes,
        "sample_rows": SAMPLE_ROWS,
    }
