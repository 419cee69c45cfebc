"""The stream engine against the memory engine: same split, same model, same metadata.

Each test trains both engines on the same file (Ames, or a small CSV written here) and
compares what they wrote; the stream engine reads in small chunks so every pass crosses
many chunk boundaries. Also: the pieces it is built from (the solver from sums, transformers
from statistics, the split from row indices, the bottom-k sample, the fast CSV reader) and
its refusals and errors.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from csv_cases import CSV_FILES  # tests/csv_cases.py

from model.fold import fold
from model.linear import ElasticNet, Lasso, LinearRegression, Ridge, sufficient_stats
from model.preprocessing import OneHotEncoder, SimpleImputer, StandardScaler
from model.selection import KFold, train_test_split
from model.workflow import data as data_mod
from model.workflow import fastcsv
from model.workflow.artifact import load_artifact
from model.workflow.cli import main
from model.workflow.config import Config, ConfigError, load_config
from model.workflow.data import DataError
from model.workflow.stream import Sample, assign_parts, fit_stream, row_hash
from model.workflow.train import prepare_data, search_grid, train

ROOT = Path(__file__).resolve().parents[1]
AMES_CONFIG = ROOT / "configs" / "ames.toml"


# --- helpers --------------------------------------------------------------------------------


def _both(cfg: Config, tmp: Path, chunk_rows: int = 333) -> tuple[Any, Any]:
    a = train(cfg, tmp / "memory.joblib", tmp / "runs", plots=False)
    b = train(
        cfg,
        tmp / "stream.joblib",
        tmp / "runs",
        plots=False,
        engine="stream",
        chunk_rows=chunk_rows,
    )
    return a, b


def _coef(path: Path) -> tuple[np.ndarray, float, Any]:
    pipe = load_artifact(path).pipeline
    est = pipe.named_steps["regressor"].regressor_
    return np.asarray(est.coef_), float(est.intercept_), pipe


def _close(x: Any, y: Any, rel: float, where: str = "") -> None:
    """Equal structures, floats to ``rel`` relative (absolute near zero)."""
    if isinstance(x, dict):
        assert set(x) == set(y), where
        for k in x:
            _close(x[k], y[k], rel, f"{where}/{k}")
    elif isinstance(x, list | tuple):
        assert len(x) == len(y), where
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            _close(u, v, rel, f"{where}[{i}]")
    elif isinstance(x, float) and isinstance(y, float):
        if math.isnan(x):
            assert math.isnan(y), where
        else:
            assert abs(x - y) <= rel * max(1.0, abs(x)), f"{where}: {x!r} != {y!r}"
    else:
        assert x == y, f"{where}: {x!r} != {y!r}"


def _same_metadata(a: dict[str, Any], b: dict[str, Any], rel: float = 1e-9) -> None:
    # Everything, the card's target range and per-segment test errors included (the files
    # here are smaller than the sample, so its medians and quintile edges are exact).
    skip = {"run_id", "created_at", "model_version", "versions", "engine"}
    _close(
        {k: v for k, v in a.items() if k not in skip},
        {k: v for k, v in b.items() if k not in skip},
        rel,
    )


def _ames(tmp: Path, **changes: Any) -> Config:
    return dataclasses.replace(load_config(AMES_CONFIG), **changes)


SYNTH = """
[data]
path = "{data}"
target = "price"
[[data.filters]]
column = "area"
op = "<="
value = 4000
[[data.filters]]
column = "sale"
op = "!="
value = "Partial"
[[data.filters]]
column = "klass"
op = "!="
value = 190
[[data.filters]]
column = "district"
op = "not_in"
value = ["D5"]
[split]
test_size = 0.25
seed = 3
[cv]
folds = 4
[model]
estimator = "{estimator}"
impute = "mean"
params = {params}
grid = {grid}
[[features]]
name = "area"
kind = "numeric"
transform = "log"
bounds = [1, 20000]
[[features]]
name = "rooms"
kind = "integer"
required = false
[[features]]
name = "year"
kind = "integer"
[[features]]
name = "lot"
kind = "numeric"
required = false
transform = "log"
[[features]]
name = "district"
kind = "categorical"
[[features]]
name = "klass"
kind = "categorical"
required = false
"""


def write_sales(path: Path, n: int, seed: int = 0, bad: dict[int, str] | None = None) -> None:
    """``n`` sales with missing values, a rare category, numeric category codes written two
    ways ("020", "20"), a filter column; ``bad`` replaces whole data lines by index."""
    rng = np.random.default_rng(seed)
    rows = ["area,rooms,year,lot,district,klass,sale,price"]
    for i in range(n):
        area = int(rng.integers(500, 4500))
        rooms = "" if rng.random() < 0.1 else str(int(rng.integers(2, 9)))
        year = int(rng.integers(1900, 2010))
        lot = "NA" if rng.random() < 0.15 else str(int(rng.integers(1000, 20000)))
        district = "Rare" if i == 17 else f"D{int(rng.integers(0, 6))}"
        klass = ["020", "20", "60", "190", ""][int(rng.integers(0, 5))]
        sale = "Partial" if rng.random() < 0.05 else "Normal"
        price = math.exp(9 + 0.5 * math.log(area) + 0.002 * (year - 1900) + rng.normal(0, 0.1)) + (
            5000 if klass == "60" else 0
        )
        rows.append(f"{area},{rooms},{year},{lot},{district},{klass},{sale},{price:.0f}")
    for i, line in (bad or {}).items():
        rows[i + 1] = line
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def _synth(
    tmp: Path,
    n: int = 1200,
    estimator: str = "ridge",
    params: str = "{}",
    grid: str = "{ alpha = [0.1, 1.0, 10.0] }",
    **kw: Any,
) -> Path:
    data = tmp / "sales.csv"
    write_sales(data, n, **kw)
    cfg = tmp / "sales.toml"
    cfg.write_text(
        SYNTH.format(data=data, estimator=estimator, params=params, grid=grid), encoding="utf-8"
    )
    return cfg


# --- the pieces -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "est",
    [
        LinearRegression(),
        Ridge(alpha=3.0),
        Ridge(alpha=1.0, solver="gd", learning_rate=0.05, n_epochs=300),
        Ridge(alpha=1.0, fit_intercept=False),
        Lasso(alpha=0.01),
        ElasticNet(alpha=0.02, l1_ratio=0.3),
    ],
    ids=repr,
)
def test_fit_stats_is_fit(est: Any) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = X @ [1.0, -2.0, 0.5, 0.0, 3.0] + 10 + rng.normal(0, 0.1, 300)
    a = est.fit(X, y)
    coef, b = a.coef_.copy(), a.intercept_
    s = sufficient_stats(X, y, est.fit_intercept)
    fitted = type(est)(**est.get_params()).fit_stats(s)
    np.testing.assert_array_equal(fitted.coef_, coef)
    assert fitted.intercept_ == b
    assert fitted.n_features_in_ == 5


def test_fit_stats_refuses_sgd() -> None:
    s = sufficient_stats(np.eye(3), np.ones(3), True)
    with pytest.raises(ValueError, match="sgd"):
        Ridge(solver="sgd").fit_stats(s)


def test_transformers_from_statistics_equal_fitted_ones() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(5, 2, size=(50, 3))
    X[[1, 7], 0] = np.nan
    imp = SimpleImputer(strategy="mean").fit(X)
    built = SimpleImputer.from_statistics(imp.statistics_, "mean")
    np.testing.assert_array_equal(built.transform(X), imp.transform(X))
    Z = imp.transform(X)
    sc = StandardScaler().fit(Z)
    made = StandardScaler.from_moments(50, Z.mean(axis=0), Z.var(axis=0))
    np.testing.assert_allclose(made.transform(Z), sc.transform(Z), rtol=1e-12)
    np.testing.assert_array_equal(made.n_samples_seen_, sc.n_samples_seen_)
    const = StandardScaler.from_moments(4, [3.0], [1e-40])
    assert const.scale_.tolist() == [1.0]  # the near-constant rule of fit
    C = np.array([["a", "b"], ["c", None], ["a", "b"]], dtype=object)
    enc = OneHotEncoder().fit(C)
    made_enc = OneHotEncoder.from_categories([["a", "c"], ["b"]])
    np.testing.assert_array_equal(made_enc.transform(C), enc.transform(C))
    assert made_enc.get_feature_names_out(["x", "z"]) == enc.get_feature_names_out(["x", "z"])


@pytest.mark.parametrize("n", [10, 11, 97, 1000, 2925])
def test_parts_are_the_memory_engines_split_and_folds(n: int) -> None:
    rows = np.arange(n)
    train_rows, test_rows = train_test_split(rows, test_size=0.2, random_state=42)
    parts = assign_parts(n, 0.2, 5, 42)
    assert set(np.flatnonzero(parts == 5)) == set(test_rows.tolist())
    for k, (_, valid) in enumerate(KFold(5, shuffle=True, random_state=42).split(train_rows)):
        assert set(np.flatnonzero(parts == k)) == set(train_rows[valid].tolist())


def test_bottom_k_sample_merges_exactly() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(size=(5000, 2))
    keys = row_hash(np.arange(5000), 42)
    whole = Sample(300, 2)
    whole.add(keys, values)
    parts = [Sample(300, 2) for _ in range(3)]
    for i, chunk in enumerate(np.array_split(np.arange(5000), 7)):
        parts[i % 3].add(keys[chunk], values[chunk])
    merged = Sample.merge(parts)
    assert sorted(merged.keys.tolist()) == sorted(whole.keys.tolist())
    # a uniform sample: its median is within the stated rank error of the true one
    rank = float((values[:, 0] <= np.median(merged.values[:, 0])).mean())
    assert abs(rank - 0.5) < math.sqrt(math.log(2 / 1e-3) / (2 * 300))


def test_bottom_k_sample_is_the_k_smallest_keys_whatever_the_chunking() -> None:
    """Many small chunks (the sample is cut to ``k`` only once it holds ``2k``) keep exactly
    the rows of the ``k`` smallest keys, sorted by key, with their own values."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=(20_000, 3))
    keys = row_hash(np.arange(20_000), 7)
    smallest = np.argsort(keys)[:500]
    for sizes in (1, 37, 999, 20_000):
        sample = Sample(500, 3)
        order = rng.permutation(20_000)
        for start in range(0, 20_000, sizes):
            rows = order[start : start + sizes]
            sample.add(keys[rows], values[rows])
        np.testing.assert_array_equal(sample.keys, keys[smallest])
        np.testing.assert_array_equal(sample.values, values[smallest])
    few = Sample(500, 3)
    few.add(keys[:10], values[:10])
    np.testing.assert_array_equal(few.keys, np.sort(keys[:10]))
    assert Sample(5, 2).values.shape == (0, 2)


# --- equality with the memory engine --------------------------------------------------------


def test_ames_mean_imputation_equals_memory_engine(tmp_path: Path) -> None:
    cfg = _ames(tmp_path, impute="mean")
    a, b = _both(cfg, tmp_path)
    wa, ba, pa = _coef(tmp_path / "memory.joblib")
    wb, bb, pb = _coef(tmp_path / "stream.joblib")
    np.testing.assert_allclose(wb, wa, rtol=0, atol=1e-9)
    assert abs(bb - ba) < 1e-9
    _same_metadata(a.metadata, b.metadata)  # CV and test metrics, features, drift reference
    assert b.metadata["engine"]["name"] == "stream" and a.metadata["engine"]["name"] == "memory"
    # the artifact serves as the memory engine's: same predictions, same folded fast path
    data = prepare_data(cfg)
    rows = {k: v[:200] for k, v in data.table.items()}
    np.testing.assert_allclose(pb.predict(rows), pa.predict(rows), rtol=1e-12)
    one = {k: [v[0].item() if hasattr(v[0], "item") else v[0]] for k, v in rows.items()}
    folded = fold(pb).predict(one)
    assert folded is not None and folded[0] == pytest.approx(float(pa.predict(rows)[0]), rel=1e-12)


def test_ames_median_imputation_equals_memory_engine(tmp_path: Path) -> None:
    # Ames' parts hold fewer rows than the sample: the sketch is exact, so is everything
    a, b = _both(_ames(tmp_path), tmp_path, chunk_rows=1000)
    wa, _, _ = _coef(tmp_path / "memory.joblib")
    wb, _, _ = _coef(tmp_path / "stream.joblib")
    np.testing.assert_allclose(wb, wa, rtol=0, atol=1e-9)
    _same_metadata(a.metadata, b.metadata)


def test_streamed_card_has_the_memory_engines_sections(tmp_path: Path) -> None:
    """The target's range and the per-segment test errors come from the streamed sums: the
    card's sections match the memory engine's, category by category and band by band."""
    a, b = _both(_ames(tmp_path, impute="mean"), tmp_path, chunk_rows=500)
    seg = b.metadata["segments"]
    assert seg["by_category"] is not None and len(seg["by_price"]) == 5
    assert sum(g["rows"] for g in seg["by_price"]) == b.metadata["data"]["rows_test"]
    assert b.metadata["target"]["min"] is not None

    def sections(card: str) -> list[str]:
        keep = ("In training, `", "### Test errors by", "| Q", "The cheapest fifth")
        return [line for line in card.splitlines() if line.startswith(keep)]

    card_a = (a.run_dir / "MODEL_CARD.md").read_text(encoding="utf-8")
    card_b = (b.run_dir / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert len(sections(card_b)) >= 8
    assert sections(card_b) == sections(card_a)
    rows_a = [line for line in card_a.splitlines() if line.startswith("| ") and "|--" not in line]
    rows_b = [line for line in card_b.splitlines() if line.startswith("| ") and "|--" not in line]
    assert len(rows_b) == len(rows_a)


def test_ames_median_from_a_small_sketch_is_within_1e4(tmp_path: Path) -> None:
    cfg = _ames(tmp_path)
    grid = search_grid(cfg)
    exact = fit_stream(cfg, grid, chunk_rows=700)
    sketched = fit_stream(cfg, grid, chunk_rows=700, sample_rows=512)
    a = exact.search.cv_results_["mean_test_rmse_log"]
    b = sketched.search.cv_results_["mean_test_rmse_log"]
    assert np.max(np.abs(b / a - 1)) < 1e-4
    fills = sketched.best.named_steps["features"].transformers_[0][1].named_steps["impute"]
    assert fills.statistics_.shape == (len(fills.statistics_),)


@pytest.mark.parametrize(
    ("estimator", "params", "grid"),
    [
        ("ridge", "{}", "{ alpha = [0.1, 1.0, 10.0] }"),
        ("linear", "{}", "{}"),
        ("ridge", '{ solver = "gd", learning_rate = 0.05, n_epochs = 400 }', "{ alpha = [1.0] }"),
        ("lasso", "{}", "{ alpha = [0.0005, 0.002] }"),
        ("elasticnet", "{ l1_ratio = 0.5 }", "{ alpha = [0.001] }"),
    ],
)
def test_synthetic_file_equals_memory_engine(
    tmp_path: Path, estimator: str, params: str, grid: str
) -> None:
    cfg = load_config(_synth(tmp_path, estimator=estimator, params=params, grid=grid))
    a, b = _both(cfg, tmp_path, chunk_rows=97)
    wa, ba, _ = _coef(tmp_path / "memory.joblib")
    wb, bb, _ = _coef(tmp_path / "stream.joblib")
    np.testing.assert_allclose(wb, wa, rtol=0, atol=1e-9)
    assert abs(bb - ba) < 1e-9
    _same_metadata(a.metadata, b.metadata, rel=1e-8)
    # "020" and "20" are one category, as the memory engine reads a numeric column
    klass = next(f for f in b.metadata["features"] if f["name"] == "klass")
    assert klass["categories"] == ["20", "60"]  # and 190 filtered out, compared as a number


# --- refusals and errors --------------------------------------------------------------------


def test_a_tree_refuses_the_stream_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _synth(tmp_path, estimator="tree", grid="{ max_depth = [3] }")
    code = main(
        [
            "train",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "m.joblib"),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--engine",
            "stream",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "'tree' cannot train with --engine stream" in err[0]
    assert "--engine memory" in err[0]
    assert not (tmp_path / "m.joblib").exists()


def test_sgd_refuses_the_stream_engine(tmp_path: Path) -> None:
    cfg = load_config(_synth(tmp_path, params='{ solver = "sgd" }', grid="{ alpha = [1.0] }"))
    with pytest.raises(ConfigError, match="sgd"):
        train(cfg, tmp_path / "m.joblib", tmp_path / "runs", engine="stream")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1500,3,1990,5000,D1,20,Normal", "expected 8 fields as in the header, got 7"),
        ("1500,3,1990,5000,D1,20,Normal,12x", "the target is not a number: '12x'"),
        ("1500,3,199O,5000,D1,20,Normal,100000", "'199O' is not a number"),
        ("1500,3,1990.5,5000,D1,20,Normal,100000", "kind = 'integer', but 1 rows hold"),
        ("25000,3,1990,5000,D1,20,Normal,100000", None),  # filtered out (area <= 4000)
        ("3000,3,,5000,D1,20,Normal,100000", "required = true, but 1 of"),
    ],
)
def test_a_bad_row_deep_in_the_file_fails_as_in_memory(
    tmp_path: Path, line: str, expected: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same error as the memory engine, naming the file and line, and no artifact."""
    cfg = _synth(tmp_path, n=3000, bad={2500: line})
    out = tmp_path / "m.joblib"
    args = ["train", "--config", str(cfg), "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    code_m = main([*args, "--out", str(out)])
    err_m = capsys.readouterr().err.strip().splitlines()
    if expected is None:
        assert code_m == 0
        out.unlink()
    code_s = main([*args, "--out", str(out), "--engine", "stream", "--chunk-rows", "500"])
    err_s = capsys.readouterr().err.strip().splitlines()
    if expected is None:
        assert code_s == 0
        return
    assert code_m == code_s == 2
    assert len(err_s) == 1 and err_s == err_m
    assert expected in err_s[0]
    assert "line 2502" in err_s[0] and str(tmp_path / "sales") in err_s[0]
    assert not out.exists()


def test_a_ragged_row_fails_after_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(_synth(tmp_path, n=2000, bad={1900: "1,2,3"}))
    reads = []
    real = fastcsv.iter_chunks_fast

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("model.workflow.stream.reading.iter_chunks_fast", counting)
    with pytest.raises(DataError, match=r"sales.csv: line 1902: expected 8 fields"):
        train(cfg, tmp_path / "m.joblib", tmp_path / "runs", engine="stream", chunk_rows=100)
    assert len(reads) == 1
    assert not (tmp_path / "m.joblib").exists()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads: list[int] = []
    real = fastcsv.iter_chunks_fast

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("model.workflow.stream.reading.iter_chunks_fast", counting)
    return reads


def test_later_passes_read_pass_1s_columns_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is parsed once; the column cache is deleted at the end, also after an error."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    cfg = load_config(_synth(tmp_path, n=900))
    reads = _count_reads(monkeypatch)
    fit = fit_stream(cfg, search_grid(cfg), chunk_rows=100)
    assert len(reads) == 2  # the look at the text filter column 'sale', then pass 1
    assert fit.rows_read == 900 and not any((tmp_path / "tmp").iterdir())
    bad = load_config(_synth(tmp_path, n=900, bad={800: "1500,3,199O,5000,D1,20,Normal,1"}))
    with pytest.raises(ConfigError, match="line 802"):
        fit_stream(bad, search_grid(bad), chunk_rows=100)
    assert not any((tmp_path / "tmp").iterdir())


def test_a_full_disk_drops_the_cache_and_parses_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.workflow.stream import cache

    cfg = load_config(_synth(tmp_path, n=900))
    expected = fit_stream(cfg, search_grid(cfg), chunk_rows=100)
    written = []

    class FullDisk:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def write(self, data: bytes) -> int:
            written.append(len(data))
            if len(written) > 4:
                raise OSError(28, "No space left on device")
            return int(self.fh.write(data))

        def close(self) -> None:
            self.fh.close()

    real_open = open

    def opening(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = real_open(path, mode, *args, **kwargs)
        return FullDisk(fh) if mode == "wb" else fh

    monkeypatch.setattr(cache, "open", opening, raising=False)
    reads = _count_reads(monkeypatch)
    got = fit_stream(cfg, search_grid(cfg), chunk_rows=100)
    assert len(written) > 4 and len(reads) == 4  # the look, pass 1, and passes 2 and 3 again
    np.testing.assert_allclose(
        got.best.named_steps["regressor"].regressor_.coef_,
        expected.best.named_steps["regressor"].regressor_.coef_,
        rtol=0,
        atol=1e-12,
    )


def test_cli_stream_engine_trains_and_records_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _synth(tmp_path, n=600)
    out = tmp_path / "m.joblib"
    code = main(
        [
            "train",
            "--config",
            str(cfg),
            "--out",
            str(out),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--engine",
            "stream",
            "--chunk-rows",
            "50",
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    meta = load_artifact(out).metadata
    assert meta["engine"] == {"name": "stream", "chunk_rows": 50, "passes": 3, "sample_rows": 65536}
    assert meta["data"]["rows_read"] == 600


# --- the fast CSV reader against the standard one -------------------------------------------


def _table(chunks: Any) -> tuple[dict[str, list[str]], list[int]]:
    cols: dict[str, list[str]] = {}
    lines: list[int] = []
    for _, c in chunks:
        for k, v in c.columns.items():
            cols.setdefault(k, []).extend(v)
        lines.extend(c.lines)
    return cols, lines


def _outcome(fn: Any) -> Any:
    try:
        return ("ok", _table(fn()))
    except DataError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("content", CSV_FILES)
@pytest.mark.parametrize("block", [7, 1 << 20])
def test_fast_reader_gives_the_standard_tables(
    tmp_path: Path, content: bytes, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    monkeypatch.setattr(fastcsv, "BLOCK_BYTES", block)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        standard = _outcome(lambda: data_mod.iter_chunks(path, chunk_rows=2))
        fast = _outcome(lambda: fastcsv.iter_chunks_fast(path, chunk_rows=2))
    assert fast == standard


def test_fast_reader_on_ames(monkeypatch: pytest.MonkeyPatch) -> None:
    path = ROOT / "data" / "ames.csv"
    monkeypatch.setattr(fastcsv, "BLOCK_BYTES", 50_000)
    assert _table(fastcsv.iter_chunks_fast(path, chunk_rows=300)) == _table(
        data_mod.iter_chunks(path, chunk_rows=300)
    )


def test_impute_is_checked_in_the_config(tmp_path: Path) -> None:
    path = _synth(tmp_path)
    path.write_text(
        path.read_text(encoding="utf-8").replace('impute = "mean"', 'impute = "mode"'),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"model.impute: expected one of median, mean"):
        load_config(path)


@pytest.mark.parametrize("n", [1, 2, 97, 123_457])
def test_int32_permutation_is_the_generators(n: int) -> None:
    from model.workflow.stream import permutation

    np.testing.assert_array_equal(permutation(n, 42), np.random.default_rng(42).permutation(n))


def test_the_stream_engine_holds_blas_to_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from model.workflow.stream.blas import THREAD_VARIABLES, one_blas_thread

    def blas_threads() -> list[int]:
        return [
            p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"
        ]

    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    before = blas_threads()
    assert before, "NumPy's BLAS is not seen by threadpoolctl"
    with one_blas_thread():
        assert blas_threads() == [1] * len(before)
    assert blas_threads() == before
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")  # the user's choice is left alone
    with one_blas_thread():
        assert blas_threads() == before
