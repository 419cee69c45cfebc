"""No CSV makes ``init``, ``explore``, ``train`` or ``predict`` end in a traceback.

Hypothesis writes files a user might really hand the tool (random separators, ragged rows,
quotes, odd encodings, an empty file, one row, a huge field, binary junk, a good file with one
bad cell) and each command must answer exit 0, or exit 2 with exactly one ``error:`` line on
standard error. ``main`` is called in-process: an exception it does not turn into an exit code
escapes and fails the test with the traceback a user would have seen.
"""

from __future__ import annotations

import contextlib
import io
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from model.workflow.cli import main

SEPARATORS = [",", ";", "\t", "|", " ", ":"]
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]
CELLS = st.one_of(
    st.sampled_from(["", "NA", "N/A", "?", "-", "None", "nan", "inf", "-inf", "1e400", '"', "''"]),
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(string.ascii_letters + " éü€,;\t|\"'\n\r", max_size=12),
)
HEADER_NAMES = st.sampled_from(["price", "area", "rooms", "town", "Price", "id", "", "a b", "é"])


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    """A CSV-ish file: mostly well-formed, with one of many ways of being wrong."""
    kind = draw(st.sampled_from(["good", "good", "table", "table", "junk", "empty", "huge"]))
    if kind == "good":
        return draw(good_table())
    if kind == "junk":
        return draw(st.binary(max_size=300))
    if kind == "empty":
        return draw(st.sampled_from([b"", b"\n", b"\r\n\r\n", b"\xef\xbb\xbf", b" "]))
    sep = draw(st.sampled_from(SEPARATORS))
    header = draw(st.lists(HEADER_NAMES, min_size=1, max_size=5))
    if draw(st.booleans()):
        header = ["price", "area", "town", *header][: max(3, len(header))]
    n_rows = draw(st.integers(0, 12))
    lines = [sep.join(header)]
    for _ in range(n_rows):
        width = len(header) if draw(st.integers(0, 4)) else draw(st.integers(0, 7))
        lines.append(sep.join(draw(st.lists(CELLS, min_size=width, max_size=width))))
    if kind == "huge":
        lines.append(sep.join(["1"] * (len(header) - 1) + ["x" * 300_000]))
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    encoding = draw(st.sampled_from(ENCODINGS))
    return text.encode(encoding, errors="replace")


@st.composite
def good_table(draw: st.DrawFn) -> bytes:
    """A table that trains, in any separator and encoding, perhaps with one cell spoiled."""
    sep = draw(st.sampled_from(SEPARATORS[:4]))
    n = draw(st.integers(8, 40))
    lines = [sep.join(["price", "area", "town", "rooms"])]
    for i in range(n):
        town = draw(st.sampled_from(["Nord", "Süd", "Ost", "N/A", ""]))
        rooms = draw(st.sampled_from(["1", "2", "3", "?", "4"]))
        lines.append(sep.join([str(1000 + 37 * i), str(50 + 3 * i), town, rooms]))
    if draw(st.booleans()):
        row = draw(st.integers(1, n))
        cells = lines[row].split(sep)
        cells[draw(st.integers(0, 3))] = draw(CELLS).replace(sep, "")
        lines[row] = sep.join(cells)
    encoding = draw(st.sampled_from(ENCODINGS))
    return ("\n".join(lines) + "\n").encode(encoding, errors="replace")


def run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def check(code: int, err: str) -> None:
    event(f"exit {code}")  # --hypothesis-show-statistics: how many files each command took
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err, err
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1, err


TRAIN_CONFIG = """
[data]
path = "{data}"
target = "price"
[cv]
folds = 2
[model]
grid = {{ alpha = [1.0] }}
[[features]]
name = "area"
kind = "numeric"
required = false
[[features]]
name = "town"
kind = "categorical"
required = false
"""

SETTINGS = settings(
    max_examples=int(os.environ.get("MALFORMED_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(content=csv_bytes(), with_target=st.booleans())
def test_init(tmp_path: Path, content: bytes, with_target: bool) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes(content)
    argv = ["init", str(data), "--out", str(tmp_path / "c.toml"), "--force"]
    check(*run(argv + (["--target", "price"] if with_target else [])))


@SETTINGS
@given(content=csv_bytes())
def test_explore(tmp_path: Path, content: bytes) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes(content)
    check(*run(["explore", str(data), "--out", str(tmp_path / "eda"), "--no-plots"]))


@SETTINGS
@given(content=csv_bytes())
def test_train(tmp_path: Path, content: bytes) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes(content)
    cfg = tmp_path / "c.toml"
    cfg.write_text(TRAIN_CONFIG.format(data=data.as_posix()))
    out = tmp_path / "m.joblib"
    argv = ["train", "--config", str(cfg), "--out", str(out), "--runs-dir", str(tmp_path / "r")]
    check(*run([*argv, "--quiet", "--no-plots"]))


@pytest.fixture(scope="module")
def served(artifact_path: str) -> str:
    return artifact_path


@SETTINGS
@given(content=csv_bytes())
def test_predict(tmp_path: Path, served: str, content: bytes) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes(content)
    out = tmp_path / "out.csv"
    check(*run(["predict", "--model", served, "--input", str(data), "--output", str(out)]))
