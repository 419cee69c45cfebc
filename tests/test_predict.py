"""``houseprice predict``: every input format and naming, kept columns, warnings, row errors,
atomic output, and prices equal to the artifact's own pipeline.

Every input file is made in the test from the first rows of data/ames.csv; the model is the
session artifact (tests/conftest.py), trained once on configs/ames.toml.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model.workflow.artifact import load_artifact
from model.workflow.cli import main
from model.workflow.data import DataError, load_csv
from model.workflow.progress import ProgressBar
from model.workflow.score import predict_file

ROOT = Path(__file__).resolve().parents[1]
N_ROWS = 40


@pytest.fixture(scope="module")
def meta(artifact_path: str) -> dict[str, Any]:
    return load_artifact(artifact_path).metadata


@pytest.fixture(scope="module")
def ames_rows() -> list[dict[str, str]]:
    """The first rows of data/ames.csv as dicts of text, the training CSV's own names."""
    with open(ROOT / "data" / "ames.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return [row for _, row in zip(range(N_ROWS), reader, strict=False)]


@pytest.fixture(scope="module")
def expected(artifact_path: str, meta: dict[str, Any]) -> np.ndarray:
    """The pipeline's prices for the same rows, from a table built as training builds it."""
    ds = load_csv(ROOT / "data" / "ames.csv", features=[f["column"] for f in meta["features"]])
    table: dict[str, np.ndarray] = {}
    for f in meta["features"]:
        col = ds.columns[f["column"]][:N_ROWS]
        if f["kind"] == "categorical" and col.dtype != object:
            col = np.array([None if math.isnan(v) else f"{v:g}" for v in col], dtype=object)
        table[f["name"]] = col
    return np.asarray(load_artifact(artifact_path).pipeline.predict(table), dtype=np.float64)


def api_rows(rows: list[dict[str, str]], meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows with API names only, numbers as JSON numbers, missing as null."""
    out = []
    for row in rows:
        rec: dict[str, Any] = {}
        for f in meta["features"]:
            v = row[f["column"]]
            if v in ("", "NA"):
                rec[f["name"]] = None
            elif f["kind"] == "categorical":
                rec[f["name"]] = v
            else:
                rec[f["name"]] = float(v)
        out.append(rec)
    return out


def write_csv(
    path: Path, rows: list[dict[str, Any]], delimiter: str = ",", enc: str = "utf-8"
) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator="\n")
    w.writeheader()
    w.writerows([{k: "" if v is None else v for k, v in r.items()} for r in rows])
    path.write_bytes(buf.getvalue().encode(enc))
    return path


def run(artifact: str, src: Path, *extra: str) -> int:
    return main(["predict", "--model", artifact, "--input", str(src), "--quiet", *extra])


def read_output(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if path.suffix == ".json":
        return list(json.loads(path.read_text()))
    return [json.loads(line) for line in path.read_text().splitlines()]


def prices(records: list[dict[str, Any]]) -> np.ndarray:
    return np.array([math.nan if r["price"] in ("", None) else float(r["price"]) for r in records])


# --- the same prices from every naming and format --------------------------------------------


def test_training_csv_names_give_the_pipelines_prices(
    artifact_path: str, ames_rows: list[dict[str, str]], expected: np.ndarray, tmp_path: Path
) -> None:
    src = write_csv(tmp_path / "train_names.csv", ames_rows)
    out = tmp_path / "out.csv"
    assert run(artifact_path, src, "--output", str(out)) == 0
    got = read_output(out)
    np.testing.assert_allclose(prices(got), expected, rtol=1e-9)
    assert list(got[0]) == ["Order", "PID", "price", "low", "high", "model_version", "warnings"]
    assert [r["PID"] for r in got] == [r["PID"] for r in ames_rows]


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl"])
def test_api_names_in_every_input_format(
    suffix: str,
    artifact_path: str,
    meta: dict[str, Any],
    ames_rows: list[dict[str, str]],
    expected: np.ndarray,
    tmp_path: Path,
) -> None:
    rows = api_rows(ames_rows, meta)
    src = tmp_path / f"api{suffix}"
    if suffix == ".csv":
        write_csv(src, rows)
    elif suffix == ".json":
        src.write_text(json.dumps(rows))
    else:
        src.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")  # a blank line at the end
    out = tmp_path / "out.json"
    assert run(artifact_path, src, "--output", str(out), "--chunk-rows", "7") == 0
    got = read_output(out)
    np.testing.assert_allclose(prices(got), expected, rtol=1e-9)
    assert {r["model_version"] for r in got} == {meta["model_version"]}
    assert list(got[0]) == ["price", "low", "high", "model_version", "warnings"]  # no id column


def test_instances_and_one_object(
    artifact_path: str,
    meta: dict[str, Any],
    ames_rows: list[dict[str, str]],
    expected: np.ndarray,
    tmp_path: Path,
) -> None:
    rows = api_rows(ames_rows, meta)
    src = tmp_path / "batch.json"
    src.write_text(json.dumps({"instances": rows}))
    out = tmp_path / "out.jsonl"
    assert run(artifact_path, src, "--output", str(out)) == 0
    np.testing.assert_allclose(prices(read_output(out)), expected, rtol=1e-9)
    src.write_text(json.dumps(rows[3]))
    assert run(artifact_path, src, "--output", str(out)) == 0
    np.testing.assert_allclose(prices(read_output(out)), expected[3:4], rtol=1e-9)


def test_semicolons_latin1_and_na_markers(
    artifact_path: str,
    ames_rows: list[dict[str, str]],
    expected: np.ndarray,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A Latin-1, semicolon-separated export with N/A for missing values: same prices, the
    Latin-1 id kept intact, N/A read as missing exactly like an empty field."""
    rows = [dict(r) for r in ames_rows]
    rows[0]["PID"] = "maison-été"
    rows[1]["Lot.Area"] = "N/A"
    rows[2] = {**rows[1], "Lot.Area": ""}  # the same house, missing spelled otherwise
    src = write_csv(tmp_path / "export.csv", rows, delimiter=";", enc="latin-1")
    assert run(artifact_path, src) == 0
    got = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert got[0]["PID"] == "maison-été"
    assert got[1]["warnings"] == got[2]["warnings"] == "Lot.Area: missing, imputed"
    assert float(got[1]["price"]) == pytest.approx(float(got[2]["price"]), rel=1e-12)
    np.testing.assert_allclose(prices(got)[3:], expected[3:], rtol=1e-9)


# --- columns kept and columns named ----------------------------------------------------------


def test_keep(artifact_path: str, ames_rows: list[dict[str, str]], tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in.csv", ames_rows)
    out = tmp_path / "out.csv"
    assert run(artifact_path, src, "--output", str(out), "--keep", "PID", "Neighborhood") == 0
    got = read_output(out)
    assert list(got[0])[:2] == ["PID", "Neighborhood"]
    assert [r["Neighborhood"] for r in got] == [r["Neighborhood"] for r in ames_rows]
    assert run(artifact_path, src, "--output", str(out), "--keep") == 0
    assert list(read_output(out)[0]) == ["price", "low", "high", "model_version", "warnings"]


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        (["Neighbourhood"], "--keep Neighbourhood: no such column; did you mean: 'Neighborhood'"),
        (["price"], "--keep price: the output has its own column 'price'"),
        (["PID", "PID"], "--keep lists a column twice"),
    ],
)
def test_keep_refused(
    keep: list[str],
    message: str,
    artifact_path: str,
    ames_rows: list[dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = write_csv(tmp_path / "in.csv", ames_rows)
    assert run(artifact_path, src, "--keep", *keep) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_both_spellings_of_a_feature_refused(
    artifact_path: str, ames_rows: list[dict[str, str]], tmp_path: Path, capsys: Any
) -> None:
    rows = [{**r, "living_area": r["area"]} for r in ames_rows]
    assert run(artifact_path, write_csv(tmp_path / "in.csv", rows)) == 2
    err = capsys.readouterr().err
    assert "columns 'living_area' (the API name) and 'area' (the training column)" in err


def test_required_column_absent(
    artifact_path: str, ames_rows: list[dict[str, str]], tmp_path: Path, capsys: Any
) -> None:
    rows = [
        {("Bedrooms.AbvGr" if k == "Bedroom.AbvGr" else k): v for k, v in r.items()}
        for r in ames_rows
    ]
    assert run(artifact_path, write_csv(tmp_path / "in.csv", rows)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert (
        "required feature 'bedrooms' is missing: no column 'bedrooms' or 'Bedroom.AbvGr'" in err[0]
    )
    assert "did you mean: 'Bedrooms.AbvGr'" in err[0]


def test_absent_optional_feature_is_said_once(
    artifact_path: str, ames_rows: list[dict[str, str]], tmp_path: Path, capsys: Any
) -> None:
    rows = [{k: v for k, v in r.items() if k != "Fireplaces"} for r in ames_rows[:3]]
    out = tmp_path / "out.csv"
    assert (
        main(
            [
                "predict",
                "--model",
                artifact_path,
                "--input",
                str(write_csv(tmp_path / "i.csv", rows)),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert [r["warnings"] for r in read_output(out)] == ["", "", ""]
    assert (
        "optional feature(s) absent, imputed in every row: ['fireplaces']"
        in capsys.readouterr().err
    )


# --- warnings and row errors -----------------------------------------------------------------


def house(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "living_area": 1500,
        "bedrooms": 3,
        "neighborhood": "NAmes",
        "overall_quality": 6,
        "year_built": 1975,
        "lot_area": 9500,
    }
    row.update(changes)
    return row


def test_warnings_say_what_and_where(artifact_path: str, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    rows = [
        house(),
        house(neighborhood="Xyz"),
        house(living_area=9000, lot_area=None),
        house(neighborhood="Xyz", living_area=100),
    ]
    src.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "out.csv"
    assert run(artifact_path, src, "--output", str(out)) == 0
    got = read_output(out)
    assert got[0]["warnings"] == ""  # optional features absent from the file: said once, on stderr
    assert got[1]["warnings"] == "neighborhood: unknown category 'Xyz'"
    assert got[2]["warnings"] == (
        "living_area: 9000 above the training maximum 3820; lot_area: missing, imputed"
    )
    assert got[3]["warnings"] == (
        "living_area: 100 below the training minimum 334; neighborhood: unknown category 'Xyz'"
    )
    assert all(r["price"] for r in got)


def test_unknown_category_is_priced_as_the_baseline(artifact_path: str, tmp_path: Path) -> None:
    """An unknown category and a missing optional one are both encoded as all zeros."""
    src = tmp_path / "in.json"
    src.write_text(json.dumps([house(kitchen_quality="Superb"), house(kitchen_quality=None)]))
    out = tmp_path / "out.json"
    assert run(artifact_path, src, "--output", str(out)) == 0
    a, b = read_output(out)
    assert a["price"] == pytest.approx(b["price"], rel=1e-12)
    assert a["warnings"] == ["kitchen_quality: unknown category 'Superb'"]
    assert b["warnings"] == ["kitchen_quality: missing, imputed"]


def test_numeric_codes_match_training_categories(tmp_path: Path) -> None:
    """A category trained from numbers (``"20"``) is found from ``20``, ``"20.0"`` or ``"020"``."""
    from model.workflow.score import parse_categories

    col, bad = parse_categories(
        ["20.0", "020", "20", "NA", "x"], frozenset({"NA"}), True, frozenset({"20"})
    )
    assert col.tolist() == ["20", "20", "20", None, "x"] and not bad
    col, bad = parse_categories(
        [20, 20.0, None, True, [1], 10**400], frozenset(), False, frozenset({"20"})
    )
    assert col.tolist() == ["20", "20", None, None, None, None] and sorted(bad) == [3, 4, 5]
    assert bad[5].startswith("not a category (text or a number): 1000") and "long)" in bad[5]


def test_bad_rows_deep_in_a_file(
    artifact_path: str, ames_rows: list[dict[str, str]], tmp_path: Path, capsys: Any
) -> None:
    """Rows the API would refuse are written with an empty price and the reason; the others
    are priced; exit 2 with one error line naming the file, the line, the column and the
    value. Chunks of 7 rows: the errors are in the fifth chunk, not the first."""
    rows = [dict(r) for r in ames_rows]
    rows[30]["Bedroom.AbvGr"] = "three"
    rows[32]["area"] = "0"
    rows[33]["Neighborhood"] = "NA"
    rows[34]["Lot.Area"] = "inf"
    src = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    assert run(artifact_path, src, "--output", str(out), "--chunk-rows", "7") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {src}: 4 of {N_ROWS} rows not priced (empty price, the reason in their "
        "warnings); the first: line 32, column 'Bedroom.AbvGr': not a number: 'three'"
    ]
    got = read_output(out)
    assert len(got) == N_ROWS
    assert [i for i, r in enumerate(got) if not r["price"]] == [30, 32, 33, 34]
    assert got[30]["warnings"] == "error: line 32, column 'Bedroom.AbvGr': not a number: 'three'"
    assert got[32]["warnings"] == (
        "error: line 34, column 'area': 0 outside the bounds [1, 20000] of 'living_area'"
    )
    assert got[33]["warnings"] == (
        "error: line 35, column 'Neighborhood': missing, but 'neighborhood' is required"
    )
    assert got[34]["warnings"] == "error: line 36, column 'Lot.Area': not a finite number: 'inf'"


def test_strict_stops_and_writes_nothing(
    artifact_path: str, ames_rows: list[dict[str, str]], tmp_path: Path, capsys: Any
) -> None:
    rows = [dict(r) for r in ames_rows]
    rows[30]["Bedroom.AbvGr"] = "three"
    src = write_csv(tmp_path / "in.csv", rows)
    out = tmp_path / "out.json"
    out.write_text("previous")
    assert run(artifact_path, src, "--output", str(out), "--chunk-rows", "7", "--strict") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {src}: line 32, column 'Bedroom.AbvGr': not a number: 'three' "
        f"(--strict: {out} not written)"
    ]
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.json"]


def test_json_row_errors_name_the_item(artifact_path: str, tmp_path: Path, capsys: Any) -> None:
    src = tmp_path / "in.json"
    src.write_text(
        json.dumps(
            {
                "instances": [
                    house(),
                    house(bedrooms="3"),
                    house(bedrooms=True),
                    house(bedrooms=None),
                ]
            }
        )
    )
    out = tmp_path / "out.json"
    assert run(artifact_path, src, "--output", str(out)) == 2
    got = read_output(out)
    assert got[1]["price"] is not None  # text that reads as a number is a number, as in a CSV
    assert got[2]["price"] is None and got[3]["price"] is None
    assert got[2]["warnings"] == ["error: instances[2], column 'bedrooms': not a number: true"]
    assert (
        got[3]["warnings"][0]
        == "error: instances[3], column 'bedrooms': missing, but 'bedrooms' is required"
    )


def test_a_row_the_model_cannot_price(
    artifact_path: str, meta: dict[str, Any], tmp_path: Path
) -> None:
    """Without bounds, a size of -5 reaches log1p, which refuses it: that row is in error,
    the rest of its chunk is priced."""
    unbounded = {**meta, "features": [{**f, "bounds": None} for f in meta["features"]]}
    src = tmp_path / "in.json"
    src.write_text(json.dumps([house(), house(living_area=-5), house()]))
    out = tmp_path / "out.json"
    pipeline = load_artifact(artifact_path).pipeline
    s = predict_file(pipeline, unbounded, src, out)
    got = read_output(out)
    assert s.errors == 1 and s.rows == 3
    assert got[1]["price"] is None and got[0]["price"] == pytest.approx(got[2]["price"])
    assert got[1]["warnings"][0].startswith("error: item [1]: the model cannot price it: ")


# --- files: output formats, atomicity, junk ---------------------------------------------------


def test_unknown_output_extension_refused_before_any_work(tmp_path: Path, capsys: Any) -> None:
    src = tmp_path / "in.csv"
    src.write_text("a\n1\n")
    out = tmp_path / "out.parquet"
    missing_model = str(tmp_path / "no-model.joblib")
    assert (
        main(["predict", "--model", missing_model, "--input", str(src), "--output", str(out)]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write '.parquet'" in err[0] and ".csv, .json, .jsonl" in err[0]
    assert not out.exists()


def test_output_is_atomic(
    artifact_path: str, ames_rows: list[dict[str, str]], tmp_path: Path, capsys: Any
) -> None:
    """A malformed line after the first chunks were written: the old output is untouched and
    no temporary file is left."""
    src = write_csv(tmp_path / "in.csv", ames_rows)
    with open(src, "a", encoding="utf-8") as f:
        f.write("1,2,3\n")  # a ragged row at the end
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    assert run(artifact_path, src, "--output", str(out), "--chunk-rows", "5") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"line {N_ROWS + 2}: expected" in err[0]
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_output_may_not_replace_the_input(
    artifact_path: str, ames_rows: list[dict[str, str]], tmp_path: Path, capsys: Any
) -> None:
    src = write_csv(tmp_path / "in.csv", ames_rows)
    before = src.read_bytes()
    assert run(artifact_path, src, "--output", str(src)) == 2
    assert "would replace the input" in capsys.readouterr().err
    assert src.read_bytes() == before


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "empty file"),
        ("header.csv", b"area,Neighborhood\n", "no data rows"),
        ("junk.csv", bytes(range(256)) * 50, "error: "),
        ("huge.csv", b"area\n" + b"9" * 2_000_000 + b"\n", "error: "),
        ("bad.json", b'[{"a": 1},', "not valid JSON"),
        ("lines.json", b'{"a": 1}\n{"a": 2}\n', "name the file .jsonl"),
        ("scalar.json", b"3", "expected a list of objects"),
        ("empty.json", b"[]", "no rows"),
        ("mixed.json", b'[{"a": 1}, 2]', "item [1]: expected an object"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "error: "),
        ("bad.jsonl", b'{"a": 1}\nnope\n', "line 2: not valid JSON"),
        ("latin1.jsonl", b'{"a": "\xe9"}\n', "not UTF-8"),
        ("nothing.jsonl", b"\n\n", "no rows"),
        ("missing.csv", None, "no such file"),
    ],
)
def test_no_traceback_for_junk(
    name: str, content: bytes | None, message: str, artifact_path: str, tmp_path: Path, capsys: Any
) -> None:
    src = tmp_path / name
    if content is not None:
        src.write_bytes(content)
    out = tmp_path / "out.csv"
    assert run(artifact_path, src, "--output", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists()


def test_progress_bar_on_a_terminal(
    artifact_path: str, ames_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    src = write_csv(tmp_path / "in.csv", ames_rows)
    pipeline = load_artifact(artifact_path).pipeline
    meta = load_artifact(artifact_path).metadata
    s = predict_file(
        pipeline, meta, src, tmp_path / "o.csv", chunk_rows=10, progress=ProgressBar(stream)
    )
    assert s.rows == N_ROWS
    text = stream.getvalue()
    assert text.count("\r[") == 4 and f"[{'#' * 30}] {N_ROWS:,} rows" in text
    quiet = Tty()
    predict_file(pipeline, meta, src, tmp_path / "o.csv", progress=ProgressBar(quiet, quiet=True))
    assert quiet.getvalue() == ""


def test_json_output_streams_in_chunks(
    artifact_path: str, ames_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    src = write_csv(tmp_path / "in.csv", ames_rows)
    for suffix in (".json", ".jsonl", ".ndjson"):
        out = tmp_path / f"out{suffix}"
        assert run(artifact_path, src, "--output", str(out), "--chunk-rows", "3") == 0
        text = out.read_text()
        records = (
            json.loads(text) if suffix == ".json" else [json.loads(x) for x in text.splitlines()]
        )
        assert len(records) == N_ROWS and records[0]["PID"] == ames_rows[0]["PID"]


def test_resolve_columns_refuses_a_column_for_two_features() -> None:
    from model.workflow.score import FeatureInput, resolve_columns

    common: dict[str, Any] = dict(
        numeric=True, required=False, integer=False, bounds=None, lo=None, hi=None
    )
    a = FeatureInput("area", "living", categories=frozenset(), **common)
    b = FeatureInput("living_area", "area", categories=frozenset(), **common)
    with pytest.raises(DataError, match="column 'area' names two features"):
        resolve_columns([a, b], ["area"], "f.csv")


def test_a_reader_that_stops_early_gets_no_traceback(
    artifact_path: str, ames_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    """``houseprice predict ... | head -2``: when the reader closes the pipe, predict stops
    quietly (exit 1, nothing on stderr) instead of printing a BrokenPipeError."""
    import subprocess
    import sys

    src = write_csv(tmp_path / "in.csv", ames_rows * 100)  # ~400 kB of output: more than a pipe
    cmd = [sys.executable, "-m", "model.workflow.cli", "predict", "--model", artifact_path]
    proc = subprocess.Popen(
        [*cmd, "--input", str(src), "--chunk-rows", "100"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"Order,PID,price,low,high,model_version,warnings")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert err == ""


def test_a_fraction_for_an_integer_feature_is_an_error(
    artifact_path: str, meta: dict[str, Any], tmp_path: Path
) -> None:
    """As the service refuses ``bedrooms: 2.5`` when the feature's kind is ``integer``."""
    integer = {
        **meta,
        "features": [
            {**f, "kind": "integer"} if f["name"] == "bedrooms" else f for f in meta["features"]
        ],
    }
    src = tmp_path / "in.json"
    src.write_text(json.dumps([house(bedrooms=2.5), house(bedrooms=2.0), house(bedrooms=None)]))
    out = tmp_path / "out.json"
    s = predict_file(load_artifact(artifact_path).pipeline, integer, src, out)
    got = read_output(out)
    assert s.errors == 2 and got[1]["price"] is not None
    assert got[0]["warnings"] == [
        "error: item [0], column 'bedrooms': 2.5 is not a whole number ('bedrooms' is an integer)"
    ]
    assert got[2]["warnings"] == [
        "error: item [2], column 'bedrooms': missing, but 'bedrooms' is required"
    ]
