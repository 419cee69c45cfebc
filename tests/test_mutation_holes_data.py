"""model.workflow.data: the rules mutation testing found unchecked (issue 20).

Every refusal is stated whole (the file first, then the line and column, then the problem and
the value), as the person fixing the CSV reads it; the sniffers' rules (encodings, delimiters)
and the Dataset's recorded facts (digest, lines, format) are pinned, and chunks are read the
same way as the whole file.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

import model.workflow.data as data_module
from model.workflow.data import (
    CsvFormat,
    DataError,
    detect_encoding,
    first_non_number,
    iter_chunks,
    load_csv,
    parse_column,
    read_header,
    sniff_delimiter,
    suggest,
)


def write(tmp_path: Path, content: str | bytes, name: str = "t.csv") -> Path:
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content, encoding="utf-8")
    return p


def refused(p: Path, message: str, **kwargs: object) -> None:
    """``load_csv(p)`` raises DataError with exactly ``{p}: message``."""
    with pytest.raises(DataError, match="^" + re.escape(f"{p}: {message}") + "$"):
        load_csv(p, **kwargs)  # type: ignore[arg-type]


# --- messages, whole ------------------------------------------------------------------------


def test_header_refusals(tmp_path: Path) -> None:
    refused(write(tmp_path, "a, ,c\n1,2,3\n"), "line 1: column 2 has an empty name")
    refused(write(tmp_path, "\n\nb,a,b\n1,2,3\n"), "line 3: column 'b' appears twice in the header")
    refused(write(tmp_path, "\n  \n"), "empty file: no header line")
    refused(write(tmp_path, "a,b\n\n"), "no data rows after the header")


def test_blank_lines_before_the_header_and_between_rows_are_skipped(tmp_path: Path) -> None:
    p = write(tmp_path, "\n \n a , b \n1,2\n\n  \n3,4\n")
    d = load_csv(p)
    assert list(d.columns) == ["a", "b"] and d.n_rows == 2
    np.testing.assert_array_equal(d.lines, [4, 7])
    assert d.lines.dtype == np.int64
    np.testing.assert_array_equal(d.columns["b"], [2.0, 4.0])


def test_row_refusals_name_the_line(tmp_path: Path) -> None:
    refused(
        write(tmp_path, "a,b,c\n1,2,3\n4,5,6,7\n"),
        "line 3: expected 3 fields as in the header, got 4",
    )
    refused(
        write(tmp_path, "a,b\n1,2\n3,\x004\n"),
        "line 3: a NUL character: not a text CSV (a binary file, or UTF-16 without a "
        "byte-order mark; save it as UTF-8)",
    )
    refused(
        write(tmp_path, "a\n" + "x" * 140_000 + "\n"),
        "line 2: malformed CSV: field larger than field limit (131072)",
    )


def test_value_refusals_name_line_column_and_value(tmp_path: Path) -> None:
    p = write(tmp_path, "a,b,price\n1,2,3\n2,inf,4\n")
    refused(p, "line 3, column 'b': infinite value 'inf'")
    p = write(tmp_path, "a,price\n1,3\n2, x \n")
    refused(p, "line 3, column 'price': the target is not a number: 'x'", target="price")
    p = write(tmp_path, "a,price\n1,3\n2,NA\n")
    refused(p, "line 3, column 'price': the target is missing", target="price")
    p = write(tmp_path, "a,price\n1,3\n2,nan\n")  # a missing spelling that float() reads
    refused(p, "line 3, column 'price': the target is not finite: 'nan'", target="price")
    p = write(tmp_path, "a,price\n1,-inf\n")
    refused(p, "line 2, column 'price': the target is not finite: '-inf'", target="price")


def test_column_refusals(tmp_path: Path) -> None:
    p = write(tmp_path, "area,e,price\n1,,2\n")
    refused(p, "no target column 'prize'; did you mean: 'price'", target="prize")
    refused(p, "no feature column 'erea'; did you mean: 'area'", features=["erea"])
    refused(
        p,
        "column 'price' is the target; it cannot be a feature",
        target="price",
        features=["area", "price"],
    )
    refused(p, "features list a column twice: ['area', 'area']", features=["area", "area"])
    refused(p, "column 'e' is missing in every one of 1 rows", features=["e"])
    refused(
        write(tmp_path, "area:price\n1:2\n", "colon.csv"),
        "no target column 'price'; did you mean: 'area:price' (the file has one column: "
        "is its delimiter one of , ; tab |?)",
        target="price",
    )
    # a delimiter given in the config: no hint about sniffing
    refused(
        write(tmp_path, "area:price\n1:2\n", "given.csv"),
        "no target column 'price'; did you mean: 'area:price'",
        target="price",
        fmt=CsvFormat(delimiter=";"),
    )


def test_file_refusals(tmp_path: Path) -> None:
    refused(tmp_path / "nope.csv", "no such file")
    refused(tmp_path, "is a directory, not a CSV file")
    refused(tmp_path / ("a" * 300 + ".csv"), "cannot read: File name too long")
    p = write(tmp_path, b"a,b\n1,2\n\xff\xfe\xff,3\n")
    refused(p, "line 3: not valid utf-8 (invalid start byte)", fmt=CsvFormat(encoding="utf-8"))
    refused(p, "unknown encoding 'klingon'", fmt=CsvFormat(encoding="klingon"))


@pytest.mark.parametrize("delimiter", [";;", '"', "\r", "\n"])
def test_a_delimiter_must_be_one_plain_character(tmp_path: Path, delimiter: str) -> None:
    p = write(tmp_path, "a,b\n1,2\n")
    refused(p, f"the delimiter must be one character, got {delimiter!r}", fmt=CsvFormat(delimiter))
    with pytest.raises(DataError, match="^" + re.escape(f"{p}: the delimiter must be")):
        read_header(p, CsvFormat(delimiter))


def test_given_delimiter_and_missing_spellings_are_used(tmp_path: Path) -> None:
    d = load_csv(write(tmp_path, "a|b\n1|n/a\n2|x\n"), fmt=CsvFormat("|", frozenset({"n/a"})))
    assert d.delimiter == "|" and list(d.columns["b"]) == [None, "x"]


# --- what a Dataset records -----------------------------------------------------------------


def test_dataset_records_digest_rows_lines_and_format(tmp_path: Path) -> None:
    raw = "x;y;price\n1;a;10\n\n2;b;20\n3;;30\n".encode("cp1252") + b"4;\xe9;40\n"
    p = write(tmp_path, raw)
    d = load_csv(p, target="price")
    assert d.sha256 == hashlib.sha256(raw).hexdigest()
    assert d.path == str(p) and d.n_rows == 4 and d.target_name == "price"
    assert d.delimiter == ";" and d.encoding == "cp1252"
    np.testing.assert_array_equal(d.lines, [2, 4, 5, 6])
    np.testing.assert_array_equal(d.target, [10.0, 20.0, 30.0, 40.0])  # type: ignore[arg-type]
    assert d.kinds == {"x": "numeric", "y": "categorical"}
    assert d.missing_counts() == {"x": 0, "y": 1}
    assert load_csv(p).target is None and load_csv(p).target_name is None


def test_missing_counts_of_both_kinds(tmp_path: Path) -> None:
    d = load_csv(write(tmp_path, "n,c\n,x\n2,\nNA,NA\n4,y\n"))
    assert d.missing_counts() == {"n": 2, "c": 2}
    assert all(type(v) is int for v in d.missing_counts().values())


# --- the sniffers ---------------------------------------------------------------------------


def test_encodings_detected_in_order() -> None:
    assert detect_encoding(codecs.BOM_UTF16_LE + "a".encode("utf-16-le"), True) == "utf-16"
    assert detect_encoding(codecs.BOM_UTF16_BE + "a".encode("utf-16-be"), True) == "utf-16"
    assert detect_encoding(b"plain ascii", True) == "utf-8-sig"
    cut = "caf\u00e9".encode()[:-1]  # a two-byte character cut at the end of a head
    assert detect_encoding(cut, False) == "utf-8-sig"
    assert detect_encoding(cut, True) == "cp1252"
    assert detect_encoding(b"\x81", True) == "latin-1"  # undefined in Windows-1252


def test_utf16_with_its_byte_order_mark_is_read(tmp_path: Path) -> None:
    p = write(tmp_path, "a,price\n\u00e9,1\n".encode("utf-16"))
    d = load_csv(p, target="price")
    assert d.encoding == "utf-16" and list(d.columns["a"]) == ["\u00e9"]
    assert read_header(p) == (["a", "price"], ",", "utf-16")


def test_delimiter_sniffing_rules() -> None:
    assert sniff_delimiter("a;b,c\n1;2,3\n") == ","  # a tie: the first in DELIMITERS
    assert sniff_delimiter("a,b\n1;2;3;4\n5;6;7;8\n") == ","  # most lines agree: not widest
    assert sniff_delimiter("a;b;c\n1;2;3\n4;5") == ";"  # a cut last line is not counted
    assert sniff_delimiter("a,b;c;d\n1,2;3;4\n5,6") == ";"
    assert sniff_delimiter("a,b;c;d\n1,2;3;4\n5,6\n") == ","  # (3 lines, 2) > (2, 3)
    assert sniff_delimiter("a|b\n1|2|3\n4|5|6\n7|8|9\n") == "|"  # width of the first line
    assert sniff_delimiter("one column\n1\n2\n") == ","
    assert sniff_delimiter("") == ","
    assert sniff_delimiter("\n\n  \n") == ","
    assert sniff_delimiter("a\tb\n1\t2\n") == "\t"
    # only the first 50 lines are looked at: 25 agree on ',', 26 on ';' (51 lines: a tie)
    assert sniff_delimiter("a,b;c\n" + "1,2\n" * 24 + "1;2\n" * 25 + "1,2\n" * 30) == ";"


def test_a_sniffed_delimiter_ignores_a_cut_last_line_of_one_line_samples() -> None:
    assert sniff_delimiter("a;b") == ";"  # one line: kept even without its newline
    assert sniff_delimiter('a;b\n1;"2') == ";"


def test_suggestions() -> None:
    ten = [f"col{i}" for i in range(10)]
    assert suggest("zz", ten) == (
        "available columns: 'col0', 'col1', 'col2', 'col3', 'col4', 'col5', 'col6', 'col7', "
        "... (10 columns)"
    )
    assert suggest("zz", ten[:8]) == (
        "available columns: 'col0', 'col1', 'col2', 'col3', 'col4', 'col5', 'col6', 'col7'"
    )
    assert suggest("zz", ten[:9]).endswith("'col7', ... (9 columns)")
    assert suggest("col11", [f"col{i}" for i in range(20)]) == (
        "did you mean: 'col11', 'col1', 'col19'"
    )
    assert suggest("ares", ["area", "price"]) == "did you mean: 'area'"
    assert suggest("abcd", ["abxy"]) == "available columns: 'abxy'"  # ratio 0.5: too far
    assert suggest("abcde", ["abcxy"]) == "did you mean: 'abcxy'"  # ratio 0.6: close enough


def test_parse_column_and_first_non_number() -> None:
    col, kind = parse_column(["1", "NA", "2.5"], frozenset({"NA"}))
    assert kind == "numeric" and col.dtype == np.float64
    np.testing.assert_array_equal(col, [1.0, np.nan, 2.5])
    col, kind = parse_column(["1", "NA", "x"], frozenset({"NA"}))
    assert kind == "categorical" and col.dtype == object and col.tolist() == ["1", None, "x"]
    col, kind = parse_column([], frozenset())
    assert kind == "numeric" and col.shape == (0,)
    obj = np.array([None, "1e3", "nan", "x", "y"], dtype=object)
    assert first_non_number(obj) == 3
    assert first_non_number(np.array([None, "2"], dtype=object)) is None


# --- chunks ---------------------------------------------------------------------------------


def test_chunks_read_as_the_whole_file(tmp_path: Path) -> None:
    p = write(tmp_path, "\na | b\n x |1\n\ny|2\nz |3\nw|4\n")
    chunks = list(iter_chunks(p, chunk_rows=2))
    assert [h for h, _ in chunks] == [["a", "b"], ["a", "b"]]
    assert [c.lines for _, c in chunks] == [[3, 5], [6, 7]]  # no empty chunk after the last
    first = chunks[0][1].columns
    assert first["a"] == ["x", "y"] and first["b"] == ["1", "2"]
    assert first["a"] is first["a"]  # stripped once, then kept
    assert list(first) == ["a", "b"] and len(first) == 2
    with pytest.raises(KeyError):
        first["c"]
    assert [c.lines for _, c in iter_chunks(p, chunk_rows=1)] == [[3], [5], [6], [7]]
    assert [c.lines for _, c in iter_chunks(p)] == [[3, 5, 6, 7]]


def test_chunk_refusals(tmp_path: Path) -> None:
    p = write(tmp_path, "a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"^chunk_rows must be >= 1, got 0$"):
        next(iter_chunks(p, chunk_rows=0))
    assert len(list(iter_chunks(p, chunk_rows=1))) == 1
    empty = write(tmp_path, "a,b\n\n", "empty.csv")
    with pytest.raises(
        DataError, match="^" + re.escape(f"{empty}: no data rows after the header") + "$"
    ):
        list(iter_chunks(empty))
    nul = write(tmp_path, "a,b\n1,2\n\x00,3\n", "nul.csv")
    with pytest.raises(DataError, match="^" + re.escape(f"{nul}: line 3: a NUL character")):
        list(iter_chunks(nul))
    head = write(tmp_path, "a,\x00b\n1,2\n", "head.csv")
    with pytest.raises(DataError, match="^" + re.escape(f"{head}: line 1: a NUL character")):
        read_header(head)
    big = write(tmp_path, b"a,b\n" + b"1,2\n" * 20_000 + b"\xff,3\n", "late.csv")
    with pytest.raises(DataError) as info:
        list(iter_chunks(big, fmt=CsvFormat(encoding="utf-8")))
    assert re.fullmatch(
        re.escape(f"{big}: after line ")
        + r"\d+"
        + re.escape(
            ": not valid utf-8 (invalid start byte); set the file's encoding "
            "(data.encoding in the config)"
        ),
        str(info.value),
    )
    field = write(tmp_path, "a\n1\n" + "x" * 140_000 + "\n", "field.csv")
    with pytest.raises(DataError, match="^" + re.escape(f"{field}: line 3: malformed CSV: ")):
        list(iter_chunks(field))


def test_a_chunk_multiple_of_the_file_ends_without_an_empty_chunk(tmp_path: Path) -> None:
    p = write(tmp_path, "a\n1\n2\n3\n4\n")
    assert [c.lines for _, c in iter_chunks(p, chunk_rows=2)] == [[2, 3], [4, 5]]


def test_read_header_decides_as_load_csv(tmp_path: Path) -> None:
    p = write(tmp_path, b"\xe9;b\n1;2\n")
    assert read_header(p) == (["\xe9", "b"], ";", "cp1252")
    assert read_header(p, CsvFormat(delimiter=",", encoding="latin-1")) == (
        ["\xe9;b"],
        ",",
        "latin-1",
    )
    # a head cut inside a UTF-8 character (64 KiB read) is still UTF-8
    long = write(tmp_path, ("a,b\n" + "\u00e9,1\n" * 30_000).encode(), "long.csv")
    assert read_header(long) == (["a", "b"], ",", "utf-8-sig")
    with pytest.raises(
        DataError, match="^" + re.escape(f"{tmp_path / 'no.csv'}: no such file") + "$"
    ):
        read_header(tmp_path / "no.csv")
    with pytest.raises(DataError, match=re.escape("empty file: no header line")):
        read_header(write(tmp_path, "", "e.csv"))


def test_the_missing_mask() -> None:
    np.testing.assert_array_equal(
        data_module._missing_mask(np.array([None, "x", None], dtype=object)), [True, False, True]
    )
    np.testing.assert_array_equal(data_module._missing_mask(np.array([1.0, np.nan])), [False, True])


def test_a_header_longer_than_the_sniffed_head_is_read_whole(tmp_path: Path) -> None:
    """Bug found here: the header was parsed from the first 64 KiB only, so a wide file's was
    cut (a cut name could even repeat a real one: 'column_555' of 'column_5551')."""
    names = [f"column_{i}" for i in range(8000)]  # a 95 KB header line
    p = write(tmp_path, ",".join(names) + "\n" + ",".join(map(str, range(8000))) + "\n")
    assert read_header(p) == (names, ",", "utf-8-sig")
    [(header, chunk)] = list(iter_chunks(p))
    assert header == names and chunk.columns["column_7999"] == ["7999"]
    dup = write(tmp_path, ",".join([*names, "column_3"]) + "\n" + "1," * 8000 + "1\n", "dup.csv")
    message = f"{dup}: line 1: column 'column_3' appears twice in the header"
    with pytest.raises(DataError, match="^" + re.escape(message) + "$"):
        read_header(dup)
    with pytest.raises(DataError, match="^" + re.escape(message) + "$"):
        next(iter_chunks(dup))


def test_chunks_default_to_ten_thousand_rows(tmp_path: Path) -> None:
    p = write(tmp_path, "a\n" + "1\n" * 10_001)
    assert [len(c.lines) for _, c in iter_chunks(p)] == [10_000, 1]


def test_chunks_read_with_the_given_format_and_the_sniffed_encoding(tmp_path: Path) -> None:
    p = write(tmp_path, "a;b,c\n1;2,3\n")
    [(header, chunk)] = list(iter_chunks(p, CsvFormat(delimiter=";")))
    assert header == ["a", "b,c"] and chunk.columns["b,c"] == ["2,3"]
    latin = write(tmp_path, b"a,b\n\xe9,1\n", "latin.csv")  # Windows-1252, not UTF-8
    [(_, chunk)] = list(iter_chunks(latin))
    assert chunk.columns["a"] == ["\xe9"]


def test_chunks_keep_a_quoted_line_break_as_the_file_has_it(tmp_path: Path) -> None:
    """newline='' as the csv module asks: a CRLF inside quotes stays CRLF, as in load_csv."""
    p = write(tmp_path, b'a,b\r\n"two\r\nlines",1\r\nx,2\r\n')
    [(_, chunk)] = list(iter_chunks(p))
    assert chunk.columns["a"] == ["two\r\nlines", "x"] and chunk.lines == [3, 4]
    assert list(load_csv(p).columns["a"]) == ["two\r\nlines", "x"]


def test_the_sniffer_drops_only_a_cut_last_line() -> None:
    assert sniff_delimiter("a;b,c,d\n1;2\n3;4\n5") == ";"  # not the first line alone
    assert sniff_delimiter("a;b,c,d\n1;2") == ","  # two lines, the second cut: the first
    assert sniff_delimiter("a;b,c\r1;2\r1,2\r1;2\r") == ";"  # ends with CR: nothing cut


def test_a_file_that_cannot_be_read_names_the_os_reason(tmp_path: Path) -> None:
    mem = Path("/proc/self/mem")  # opens, then every read at offset 0 fails with EIO
    if not mem.exists():
        pytest.skip("no /proc")
    refused(mem, "cannot read: Input/output error")


def test_a_cut_character_at_the_end_of_a_whole_file_is_not_utf8(tmp_path: Path) -> None:
    p = write(tmp_path, b"a\nx\n" + "\u00e9".encode()[:1])
    d = load_csv(p)
    assert d.encoding == "cp1252" and list(d.columns["a"]) == ["x", "\u00c3"]


def test_any_other_one_character_delimiter_is_allowed(tmp_path: Path) -> None:
    d = load_csv(write(tmp_path, "aXb\n1X2\n"), fmt=CsvFormat(delimiter="X"))
    assert list(d.columns) == ["a", "b"] and d.delimiter == "X"
