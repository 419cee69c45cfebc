"""The two CSV parsers (pyarrow's, the standard library's) give the same tables.

Every file is read three ways: :func:`model.workflow.data.iter_chunks` (the ``csv`` module row by
row: the reference), and :func:`model.workflow.fastcsv.iter_chunks_fast` with
``HOUSEPRICE_CSV_PARSER`` = ``python`` and ``arrow``, in small blocks so that files cross many
block boundaries. The fields, the file lines and the errors (file, line, column) must be equal,
and so must the columns the stream engine parses from them (numbers with their first
non-number, categories with their missing values). Without pyarrow importable (a subprocess
that blocks it) training and scoring still run, and ``--csv-parser arrow`` says what is
missing.
"""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.workflow import arrowcsv, fastcsv
from model.workflow import data as data_mod
from model.workflow.data import NA_VALUES, DataError
from model.workflow.stream.reading import column_numbers, column_text, to_numbers

pa = pytest.importorskip("pyarrow")  # the arrow extra, in dev

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from csv_cases import CSV_FILES  # noqa: E402  (tests/csv_cases.py)
from test_stream import _synth, write_sales  # noqa: E402

NA = frozenset(NA_VALUES)


def _read(path: Path, parser: str | None, chunk_rows: int = 3) -> Any:
    """``("ok", fields by column, lines, parsed)`` or ``("error", message)``; ``parsed`` holds
    each column as numbers (every row's float, the file's first non-number) and as text."""
    cols: dict[str, list[str]] = {}
    lines: list[int] = []
    numbers: dict[str, list[str]] = {}
    first_bad: dict[str, int] = {}
    text: dict[str, list[Any]] = {}
    chunks = (
        data_mod.iter_chunks(path, chunk_rows=chunk_rows)
        if parser is None
        else fastcsv.iter_chunks_fast(path, chunk_rows=chunk_rows)
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _, chunk in chunks:
                for k in chunk.columns:
                    x, bad = column_numbers(chunk.columns, k, NA)
                    if bad is not None and k not in first_bad:
                        first_bad[k] = len(lines) + bad
                    numbers.setdefault(k, []).extend(map(repr, x.tolist()))
                    t, miss = column_text(chunk.columns, k, NA)
                    assert [v is None for v in t.tolist()] == miss.tolist()
                    text.setdefault(k, []).extend(t.tolist())
                    cols.setdefault(k, []).extend(chunk.columns[k])
                lines.extend(chunk.lines)
    except DataError as exc:
        return ("error", str(exc))
    return ("ok", cols, lines, numbers, first_bad, text)


def _same_three_ways(path: Path, monkeypatch: pytest.MonkeyPatch, block: int) -> Any:
    monkeypatch.setattr(fastcsv, "BLOCK_BYTES", block)
    monkeypatch.setattr(fastcsv, "ARROW_BLOCK_BYTES", block)
    standard = _read(path, None)
    for parser in ("python", "arrow"):
        monkeypatch.setenv(arrowcsv.ENV, parser)
        assert _read(path, parser) == standard, parser
    return standard


@pytest.mark.parametrize("content", CSV_FILES)
@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_both_parsers_give_the_standard_tables(
    tmp_path: Path, content: bytes, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    _same_three_ways(path, monkeypatch, block)


# --- many generated files -------------------------------------------------------------------

#: Field values with every rule in play: numbers in Python's spellings and others, the missing
#: spellings, spaces (ASCII and not), words, accents, numeric codes, quotes, an empty field.
TOKENS = [
    "1",
    "-2.5",
    "+3",
    "1e5",
    "1E-3",
    ".5",
    "5.",
    "0",
    "-0",
    "007",
    "123456789012345678901",
    "0.1000000000000000055511151231257827",
    "1e999",
    "1e-400",
    "inf",
    "-Infinity",
    "nan",
    "NaN",
    "1_000",
    "0x10",
    "\uff11",
    "NA",
    "N/A",
    "null",
    "None",
    "?",
    "-",
    "",
    " ",
    " 7 ",
    "\t8",
    "NA ",
    "\u00a0x",
    "D1",
    "Rare",
    "caf\u00e9",
    "20",
    "020",
    "e5",
    ".",
    "1.2.3",
]


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    width = draw(st.integers(2, 5))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    header = delimiter.join(f"c{j}" for j in range(width))
    kinds = [draw(st.sampled_from(["numbers", "mixed", "text"])) for _ in range(width)]
    numbers = [*TOKENS[:21], "NA", ""]
    rows = []
    for _ in range(draw(st.integers(1, 40))):
        fields = []
        for k in kinds:
            pool = numbers if k == "numbers" else TOKENS if k == "mixed" else TOKENS[21:]
            fields.append(draw(st.sampled_from(pool)))
        rows.append(delimiter.join(fields))
    # now and then a row the readers must skip or name
    extra = draw(st.sampled_from(["none", "none", "blank", "white", "ragged", "quoted", "nul"]))
    at = draw(st.integers(0, len(rows)))
    if extra == "blank":
        rows.insert(at, "")
    elif extra == "white":
        rows.insert(at, "   ")
    elif extra == "ragged":
        rows.insert(at, delimiter.join(["1"] * (width + draw(st.sampled_from([-1, 1])))))
    elif extra == "quoted":
        rows.insert(at, delimiter.join(['"a' + delimiter + 'b"'] + ["2"] * (width - 1)))
    elif extra == "nul":
        rows.insert(at, delimiter.join(["1\x00"] * width))
    bom = "\ufeff" if draw(st.booleans()) else ""
    end = newline if draw(st.booleans()) else ""
    return (bom + header + newline + newline.join(rows) + end).encode("utf-8")


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(content=csv_files(), block=st.sampled_from([16, 100, 1 << 20]))
def test_generated_files_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, block: int
) -> None:
    path = tmp_path / "g.csv"
    path.write_bytes(content)
    _same_three_ways(path, monkeypatch, block)


# --- the numbers the C cast accepts ---------------------------------------------------------


def _no_fallback(values: Any, na: Any) -> Any:
    raise AssertionError("the C cast was expected to read every value")


def test_the_cast_reads_exactly_what_float_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every value the C cast reads is Python's ``float`` of it, bit for bit."""
    rng = np.random.default_rng(0)
    values = [repr(v) for v in rng.normal(0, 1e6, 2000).tolist()]
    values += [f"{v:.17g}" for v in rng.lognormal(0, 20, 2000).tolist()]
    values += [f"{v:e}" for v in rng.normal(0, 1e-300, 200).tolist()]
    values += ["1e308", "2e308", "-1e999", "4.9e-324", "2e-324", "1e-400", "0.5", "5."]
    values += [".5", "+0", "-0.0"]
    values += ["9007199254740993", "123456789012345678901234567890", "NA", ""]
    table = pa.table({"v": pa.array(values, type=pa.string())})
    monkeypatch.setattr(arrowcsv, "_floats", _no_fallback)
    x, bad = arrowcsv.ArrowColumns(table).numbers("v", NA)
    expected, expected_bad = to_numbers(values, NA)
    assert bad is None and expected_bad is None
    assert x.tobytes() == expected.tobytes()


def _decimal_byte_strings() -> list[str]:
    """Every string of up to three of :data:`arrowcsv.DECIMAL_BYTES`, and of up to five of
    them with two digits standing for all (the form does not tell digits apart)."""
    out = {""}
    for alphabet, longest in ((arrowcsv.DECIMAL_BYTES.decode(), 3), ("07+-.eE", 5)):
        for size in range(1, longest + 1):
            out.update(map("".join, itertools.product(alphabet, repeat=size)))
    return sorted(out)


def test_the_cast_reads_only_the_decimal_form_among_such_bytes() -> None:
    """Why a column of :data:`arrowcsv.DECIMAL_BYTES` only may skip the regular expression:
    the C cast refuses every such string that is not of the :data:`arrowcsv.DECIMAL` form,
    and reads the others as Python's ``float`` does."""
    decimal = re.compile(arrowcsv.DECIMAL)
    accepted = 0
    for value in _decimal_byte_strings():
        try:
            got = pa.array([value], type=pa.string()).cast(pa.float64())[0].as_py()
        except pa.ArrowInvalid:
            continue
        accepted += 1
        assert decimal.match(value), value
        assert repr(got) == repr(float(value)), value
    assert accepted > 1000


def test_a_column_of_decimal_bytes_the_cast_refuses_is_read_by_float() -> None:
    values = ["1", "-", "2", "1e", "", "+", "3"]
    table = pa.table({"v": pa.array(values, type=pa.string())})
    x, bad = arrowcsv.ArrowColumns(table).numbers("v", NA)
    expected, expected_bad = to_numbers(values, NA)
    assert (x.tobytes(), bad) == (expected.tobytes(), expected_bad) and bad == 3


@pytest.mark.parametrize(
    "value",
    ["1_000", "inf", "NAN", " 1", "1 ", "\uff11", "0x1", "1e", ".", "e1", "1,5", "NA ", "x"],
)
def test_values_outside_the_decimal_form_are_read_by_float(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = ["1", "NA", value, "2", value]
    table = pa.table({"v": pa.array(values, type=pa.string())})
    x, bad = arrowcsv.ArrowColumns(table).numbers("v", NA)
    expected, expected_bad = to_numbers([v.strip() for v in values], NA)
    assert (x.tobytes(), bad) == (expected.tobytes(), expected_bad)
    monkeypatch.setattr(arrowcsv, "_floats", _no_fallback)
    with pytest.raises(AssertionError, match="expected to read every value"):
        arrowcsv.ArrowColumns(table).numbers("v", NA)


def test_the_arrow_parser_is_used_on_plain_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sales.csv"
    write_sales(path, 3000)
    monkeypatch.setenv(arrowcsv.ENV, "arrow")
    chunks = [c for _, c in fastcsv.iter_chunks_fast(path, chunk_rows=500)]
    assert {type(c.columns).__name__ for c in chunks} == {"ArrowColumns"}
    for c in chunks:  # the numbers cast in C: "NA" and "" missing
        assert isinstance(c.columns, arrowcsv.ArrowColumns)
        lot, bad = c.columns.numbers("lot", NA)
        assert bad is None and np.isnan(lot).any()
        np.testing.assert_array_equal(lot, to_numbers(c.columns["lot"], NA)[0])
    monkeypatch.setenv(arrowcsv.ENV, "python")
    kinds = {type(c.columns).__name__ for _, c in fastcsv.iter_chunks_fast(path, chunk_rows=500)}
    assert kinds == {"dict"}


def test_a_bad_row_deep_in_a_big_file_is_named_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "sales.csv"
    write_sales(path, 200_000, bad={150_000: "1500,3,1990"})
    messages = set()
    for parser in ("python", "arrow"):
        monkeypatch.setenv(arrowcsv.ENV, parser)
        with pytest.raises(DataError) as err:
            for _ in fastcsv.iter_chunks_fast(path, chunk_rows=10_000):
                pass
        messages.add(str(err.value))
    assert messages == {f"{path}: line 150002: expected 8 fields as in the header, got 3"}


def test_the_white_space_is_str_strip_s() -> None:
    assert set(arrowcsv.SPACES) == {chr(c) for c in range(0x110000) if chr(c).isspace()}
    padded = [f"{c}x" for c in arrowcsv.SPACES] + [f"x{c}" for c in arrowcsv.SPACES]
    table = pa.table({"v": pa.array(["x", *padded, "x y"], type=pa.string())})
    assert arrowcsv.ArrowColumns(table)["v"] == ["x"] * (1 + len(padded)) + ["x y"]
    table = pa.table({"v": pa.array(["x", "x y", ""], type=pa.string())})
    assert arrowcsv.ArrowColumns(table)["v"] == ["x", "x y", ""]


def test_an_unknown_parser_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(arrowcsv.ENV, "rust")
    with pytest.raises(ValueError, match=r"HOUSEPRICE_CSV_PARSER='rust': expected one of"):
        arrowcsv.parser()


# --- without pyarrow ------------------------------------------------------------------------

#: Runs the CLI with pyarrow unimportable, then checks that nothing imported it.
BLOCKED = """
import sys
sys.modules["pyarrow"] = None
from model.workflow.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m, v in sys.modules.items() if m.startswith("pyarrow") and v is not None)
assert not loaded, loaded
sys.exit(code)
"""


def _blocked(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items() if k != arrowcsv.ENV} | (env or {})
    return subprocess.run(
        [sys.executable, "-c", BLOCKED, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=full,
    )


def test_without_pyarrow_training_and_scoring_still_run(tmp_path: Path) -> None:
    cfg = _synth(tmp_path, n=2000)
    out = tmp_path / "m.joblib"
    run = _blocked(
        "train", "--config", str(cfg), "--out", str(out), "--runs-dir", str(tmp_path / "runs"),
        "--engine", "stream", "--chunk-rows", "300", "--quiet", "--no-plots",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    prices = tmp_path / "p.csv"
    run = _blocked(
        "predict", "--model", str(out), "--input", str(tmp_path / "sales.csv"),
        "--output", str(prices), "--quiet",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert len(prices.read_text().splitlines()) == 2001


def test_the_arrow_parser_without_pyarrow_is_a_usage_error(tmp_path: Path) -> None:
    cfg = _synth(tmp_path, n=100)
    run = _blocked(
        "train", "--config", str(cfg), "--out", str(tmp_path / "m.joblib"),
        "--engine", "stream", "--csv-parser", "arrow", "--quiet",
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == (
        "error: HOUSEPRICE_CSV_PARSER=arrow needs pyarrow: pip install 'houseprice[arrow]' "
        "(or use python)"
    )
    assert not (tmp_path / "m.joblib").exists()


def test_both_parsers_train_the_same_model(tmp_path: Path) -> None:
    from model.workflow.artifact import load_artifact

    cfg = _synth(tmp_path, n=3000)
    coefs = []
    for parser in ("python", "arrow"):
        out = tmp_path / f"{parser}.joblib"
        argv = ["train", "--config", str(cfg), "--out", str(out), "--runs-dir", str(tmp_path)]
        argv += ["--engine", "stream", "--chunk-rows", "400", "--quiet", "--no-plots"]
        run = subprocess.run(
            [sys.executable, "-m", "model.workflow.cli", *argv, "--csv-parser", parser],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
        est = load_artifact(out).pipeline.named_steps["regressor"].regressor_
        coefs.append(np.append(est.coef_, est.intercept_))
    assert coefs[0].tobytes() == coefs[1].tobytes()
    assert not any(math.isnan(v) for v in coefs[0])


def test_both_parsers_price_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from model.workflow.artifact import load_artifact
    from model.workflow.config import load_config
    from model.workflow.score import predict_file
    from model.workflow.train import train

    cfg = load_config(_synth(tmp_path, n=1500))
    train(cfg, tmp_path / "m.joblib", tmp_path / "runs", plots=False)
    art = load_artifact(tmp_path / "m.joblib")
    bad = {
        3: "inf,3,1990,5000,D1,20,Normal,1",
        9: "abc,3,1990,5000,D1,20,Normal,1",
        12: " 1500 ,3,1990,NA,D1 ,20,Normal,1",
        30: "1e999,3,1990,5000,D1,20,Normal,1",
    }
    data = tmp_path / "score.csv"
    write_sales(data, 3000, seed=1, bad=bad)
    outputs = []
    for parser in ("python", "arrow"):
        monkeypatch.setenv(arrowcsv.ENV, parser)
        out = tmp_path / f"{parser}.csv"
        s = predict_file(art.pipeline, art.metadata, data, out, chunk_rows=700, keep=["area"])
        outputs.append((out.read_text(), s.rows, s.errors, s.first_error))
    assert outputs[0] == outputs[1]
    assert outputs[0][2] == 3 and "not a finite number: 'inf'" in outputs[0][0]
