"""model.workflow.data.load_csv: the Ames file against pandas, each error on a small bad file."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.workflow.data import CsvFormat, DataError, first_non_number, iter_chunks, load_csv

AMES = Path(__file__).resolve().parent.parent / "data" / "ames.csv"


@pytest.fixture(scope="module")
def ames() -> pd.DataFrame:
    return pd.read_csv(AMES)


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_ames_shape_kinds_target_and_digest(ames: pd.DataFrame) -> None:
    d = load_csv(AMES, target="price")
    assert d.n_rows == 2930 == len(ames)
    assert len(d.columns) == 81 and "price" not in d.columns
    assert d.target is not None
    np.testing.assert_array_equal(d.target, ames["price"].to_numpy(dtype=float))
    for name in ["area", "Lot.Frontage", "Year.Built", "Garage.Yr.Blt", "Overall.Qual"]:
        assert d.kinds[name] == "numeric", name
        assert d.columns[name].dtype == np.float64
    for name in ["Neighborhood", "MS.Zoning", "Alley", "Pool.QC", "Central.Air"]:
        assert d.kinds[name] == "categorical", name
        assert d.columns[name].dtype == object
    assert d.sha256 == hashlib.sha256(AMES.read_bytes()).hexdigest()
    assert d.path == str(AMES)


def test_ames_every_column_matches_pandas(ames: pd.DataFrame) -> None:
    d = load_csv(AMES, target="price")
    missing = d.missing_counts()
    assert missing["Lot.Frontage"] == int(ames["Lot.Frontage"].isna().sum()) == 490
    for name, col in d.columns.items():
        ref = ames[name]
        assert missing[name] == int(ref.isna().sum()), name
        assert (d.kinds[name] == "numeric") == (ref.dtype.kind in "if"), name
        if d.kinds[name] == "numeric":
            np.testing.assert_array_equal(col, ref.to_numpy(dtype=float), err_msg=name)
        else:
            # pandas keeps surrounding spaces ("WD "); the loader strips them on purpose.
            expected = [None if pd.isna(v) else str(v).strip() for v in ref]
            assert list(col) == expected, name


def test_features_select_and_order(tmp_path: Path) -> None:
    p = write(tmp_path, "a,b,c,y\n1,x,,10\n2,NA,3.5,20\n")
    d = load_csv(p, target="y", features=["c", "b"])
    assert list(d.columns) == ["c", "b"]
    assert d.kinds == {"c": "numeric", "b": "categorical"}
    np.testing.assert_array_equal(d.columns["c"], [math.nan, 3.5])
    assert list(d.columns["b"]) == ["x", None]
    assert d.target is not None and list(d.target) == [10.0, 20.0]


def test_missing_spellings_and_mixed_column(tmp_path: Path) -> None:
    p = write(tmp_path, 'n,m,q\n1,1,"a, b"\nNaN,x,\nnan,2,NA\n,3, c \n')
    d = load_csv(p)
    np.testing.assert_array_equal(d.columns["n"], [1.0, math.nan, math.nan, math.nan])
    assert d.kinds["m"] == "categorical"  # one word makes the whole column categorical
    assert list(d.columns["m"]) == ["1", "x", "2", "3"]
    assert list(d.columns["q"]) == ["a, b", None, None, "c"]
    assert d.target is None


def test_quoted_newline_keeps_line_numbers_of_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, 'a,b\n1,"two\nlines"\n3\n')
    with pytest.raises(DataError, match=r"t\.csv: line 4: expected 2 fields.*got 1"):
        load_csv(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: no such file"):
        load_csv(tmp_path / "nope.csv")


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(DataError, match=r"t\.csv: empty file"):
        load_csv(write(tmp_path, text))


def test_header_without_rows(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"t\.csv: no data rows"):
        load_csv(write(tmp_path, "a,b,price\n"))


def test_ragged_row_names_line(tmp_path: Path) -> None:
    p = write(tmp_path, "a,b,price\n1,2,3\n4,5,6\n7,8\n")
    with pytest.raises(DataError, match=r"t\.csv: line 4: expected 3 fields.*got 2"):
        load_csv(p)


def test_duplicate_header(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"line 1: column 'a' appears twice"):
        load_csv(write(tmp_path, "a,b,a\n1,2,3\n"))


def test_missing_target_lists_names(tmp_path: Path) -> None:
    p = write(tmp_path, "area,Price,rooms\n1,2,3\n")
    with pytest.raises(DataError, match=r"t\.csv: no target column 'price'; did you mean: 'Price'"):
        load_csv(p, target="price")
    with pytest.raises(DataError, match=r"no target column 'zzz'; available columns: 'area'"):
        load_csv(p, target="zzz")


@pytest.mark.parametrize(
    ("value", "what"),
    [("abc", "not a number: 'abc'"), ("", "missing"), ("NA", "missing"), ("inf", "not finite")],
)
def test_bad_target_names_line_column_value(tmp_path: Path, value: str, what: str) -> None:
    p = write(tmp_path, f"a,price\n1,100\n2,{value}\n")
    with pytest.raises(DataError) as info:
        load_csv(p, target="price")
    msg = str(info.value)
    assert "t.csv: line 3, column 'price'" in msg and what in msg


def test_unknown_feature(tmp_path: Path) -> None:
    p = write(tmp_path, "area,price\n1,2\n")
    with pytest.raises(DataError, match=r"no feature column 'areaa'; did you mean: 'area'"):
        load_csv(p, target="price", features=["areaa"])
    with pytest.raises(DataError, match=r"'price' is the target"):
        load_csv(p, target="price", features=["price"])


def test_feature_missing_in_every_row_only_when_asked(tmp_path: Path) -> None:
    p = write(tmp_path, "a,empty,price\n1,,2\n3,NA,4\n")
    d = load_csv(p, target="price")  # not asked for: kept, all NaN
    assert np.isnan(d.columns["empty"]).all()
    with pytest.raises(DataError, match=r"t\.csv: column 'empty' is missing in every one of 2"):
        load_csv(p, target="price", features=["a", "empty"])


def test_infinite_feature_names_line(tmp_path: Path) -> None:
    p = write(tmp_path, "a,price\n1,2\n-inf,3\n")
    with pytest.raises(DataError, match=r"line 3, column 'a': infinite value '-inf'"):
        load_csv(p, target="price")


def test_bom_and_encodings(tmp_path: Path) -> None:
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbfa,price\n1,2\n")
    d = load_csv(p, target="price")
    assert list(d.columns) == ["a"] and d.encoding == "utf-8-sig"
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"a,price\nx,1\n\xe9,2\n")  # not UTF-8: Windows-1252 is tried next
    d = load_csv(latin)
    assert list(d.columns["a"]) == ["x", "\u00e9"] and d.encoding == "cp1252"
    with pytest.raises(DataError, match=r"latin\.csv: line 3: not valid utf-8"):
        load_csv(latin, fmt=CsvFormat(encoding="utf-8"))
    with pytest.raises(DataError, match=r"unknown encoding 'klingon'"):
        load_csv(latin, fmt=CsvFormat(encoding="klingon"))


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path: Path, delim: str) -> None:
    rows = [["area", "town", "price"], ["1,5" if delim != "," else "1.5", "a b", "10"]]
    rows.append(["2", "c", "20"])
    p = write(tmp_path, "\n".join(delim.join(r) for r in rows) + "\n")
    d = load_csv(p, target="price")
    assert d.delimiter == delim and list(d.columns) == ["area", "town"]
    assert list(d.target) == [10.0, 20.0]  # type: ignore[arg-type]


def test_one_column_file_hints_at_the_delimiter(tmp_path: Path) -> None:
    p = write(tmp_path, "area:price\n1:2\n")
    with pytest.raises(DataError, match=r"no target column 'price'.*one column.*delimiter"):
        load_csv(p, target="price")


def test_default_missing_spellings_and_a_config_of_its_own(tmp_path: Path) -> None:
    p = write(tmp_path, "n,c\nN/A,None\n?,x\n-,null\n4,y\n")
    d = load_csv(p)
    np.testing.assert_array_equal(d.columns["n"], [math.nan, math.nan, math.nan, 4.0])
    assert list(d.columns["c"]) == [None, "x", None, "y"]
    d = load_csv(p, fmt=CsvFormat(na_values=frozenset({"", "N/A", "?", "-"})))
    assert list(d.columns["c"]) == ["None", "x", "null", "y"]  # None kept as a category


def test_first_non_number_names_the_word(tmp_path: Path) -> None:
    d = load_csv(write(tmp_path, "beds\n3\n\n4\nthree\n5\n"))
    col = d.columns["beds"]
    i = first_non_number(col)
    assert i == 2 and col[i] == "three" and d.lines[i] == 5


def test_chunks_equal_the_whole_file_and_fail_late_with_the_line(tmp_path: Path) -> None:
    lines = ["a;b;price"] + [f"{i};{'x' if i % 3 else 'y'};{i * 10}" for i in range(25)]
    p = write(tmp_path, "\n".join(lines) + "\n")
    chunks = list(iter_chunks(p, chunk_rows=10))
    assert [len(c.lines) for _, c in chunks] == [10, 10, 5]
    assert chunks[0][0] == ["a", "b", "price"]
    assert [v for _, c in chunks for v in c.columns["a"]] == [str(i) for i in range(25)]
    assert chunks[2][1].lines[-1] == 26
    bad = write(tmp_path, "\n".join([*lines, "1;2"]) + "\n", "bad.csv")
    seen = 0
    with pytest.raises(DataError, match=r"bad\.csv: line 27: expected 3 fields"):
        for _, c in iter_chunks(bad, chunk_rows=10):
            seen += len(c.lines)
    assert seen == 20  # the rows before the bad one's chunk were read, one chunk in memory
