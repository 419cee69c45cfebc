"""Load a CSV file into a table of columns, with the standard library ``csv`` and NumPy only.

A table is ``dict[str, np.ndarray]`` (:data:`model.base.Columns`): a column whose every present
value parses as a number is float64 with NaN for missing; any other column is categorical, an
object array of ``str`` with ``None`` for missing. The rule is per column, on all its rows, so
one stray word turns a column categorical rather than silently becoming NaN; a config that
declares the column numeric then names the line and the word (:func:`first_non_number`).

How a file is read is a :class:`CsvFormat`, which a config's ``[data]`` table may set:

- the delimiter: ``,`` ``;`` tab or ``|``, sniffed from the first lines when not given;
- the spellings of a missing value (:data:`NA_VALUES` by default: empty, ``NA``, ``N/A``,
  ``NaN``, ``null``, ``None``, ``?``, ``-``); a data set where ``None`` is a real category
  ("no masonry veneer") lists its own;
- the encoding: UTF-16 when the file starts with its byte-order mark; else UTF-8 (a byte-order
  mark allowed) unless the bytes are not UTF-8, then Windows-1252, then Latin-1 (which decodes
  any byte); or the one given. A NUL character is refused: the file is binary, or UTF-16
  without a byte-order mark.

Fields are stripped of surrounding spaces, so ``"WD "`` and ``"WD"`` are one category (exports
have such trailing spaces, and a client of the API would never type them).

Every error is a :class:`DataError` naming the file, and the line and column when there is one,
because the person who reads it has the CSV open in an editor, not a debugger.
:func:`load_csv` reads a whole file (training needs every row at once); :func:`iter_chunks`
reads one in chunks of rows, so a file larger than memory can be scored.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
from numpy.typing import NDArray

from model.base import Columns, FloatArray

Kind = Literal["numeric", "categorical"]

#: Field values read as missing by default (after stripping spaces).
NA_VALUES: tuple[str, ...] = ("", "NA", "N/A", "NaN", "nan", "null", "None", "?", "-")
#: Delimiters the sniffer chooses from, in order of preference on a tie.
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
#: Encodings tried in turn when none is given; the last decodes any byte.
ENCODINGS: tuple[str, ...] = ("utf-8-sig", "cp1252", "latin-1")


class DataError(ValueError):
    """A data file that cannot be used, with the file, line and column that show why."""


@dataclass(frozen=True)
class CsvFormat:
    """How to read a CSV: ``delimiter`` (``None``: sniffed), missing-value spellings, encoding."""

    delimiter: str | None = None
    na_values: frozenset[str] = frozenset(NA_VALUES)
    encoding: str | None = None


#: The format of a file nothing is known about: everything sniffed or defaulted.
DEFAULT_FORMAT = CsvFormat()


@dataclass(frozen=True)
class Dataset:
    """A loaded CSV: feature columns, the target (if asked for) and where they came from.

    ``columns`` holds every column except the target (or only ``features``, in that order);
    ``kinds`` says for each whether it is ``"numeric"`` or ``"categorical"``; ``sha256`` is the
    digest of the file's bytes, so a training run can record exactly which data it saw;
    ``lines`` is the file line on which each row ends; ``delimiter`` and ``encoding`` are the
    ones used (given or sniffed).
    """

    columns: Columns
    target: FloatArray | None
    kinds: dict[str, Kind]
    path: str
    sha256: str
    n_rows: int
    target_name: str | None = None
    lines: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    delimiter: str = ","
    encoding: str = "utf-8-sig"

    def missing_counts(self) -> dict[str, int]:
        """Missing values per column (NaN in numeric columns, ``None`` in categorical ones)."""
        return {name: int(_missing_mask(col).sum()) for name, col in self.columns.items()}


def _missing_mask(col: NDArray[Any]) -> NDArray[np.bool_]:
    if col.dtype == object:
        return np.array([v is None for v in col], dtype=bool)
    return np.isnan(col)


def suggest(name: str, available: Sequence[str]) -> str:
    """``did you mean: 'a'`` for a close name, else the first available names."""
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    shown = close if close else list(available[:8])
    more = "" if close or len(available) <= 8 else f", ... ({len(available)} columns)"
    label = "did you mean" if close else "available columns"
    return f"{label}: {', '.join(repr(c) for c in shown)}{more}"


# --- decoding and sniffing ------------------------------------------------------------------


def detect_encoding(head: bytes, complete: bool) -> str:
    """The first of :data:`ENCODINGS` that decodes ``head`` (the start of the file, or all of it
    when ``complete``): a cut multi-byte character at the end of a partial head is not an error.
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for name in ENCODINGS:
        try:
            codecs.getincrementaldecoder(name)().decode(head, final=complete)
        except UnicodeDecodeError:
            continue
        return name
    return ENCODINGS[-1]  # pragma: no cover  (Latin-1 decodes every byte)


def sniff_delimiter(sample: str) -> str:
    """The delimiter of :data:`DELIMITERS` that splits the first lines of ``sample`` into the
    same number (> 1) of fields on the most lines; a comma when none does (one column)."""
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line of a partial sample may be cut
    best, best_score = ",", (0, 0)
    for delim in DELIMITERS:
        try:
            widths = [len(r) for r in csv.reader(lines, delimiter=delim)]
        except csv.Error:
            continue
        if not widths or widths[0] < 2:
            continue
        score = (sum(w == widths[0] for w in widths), widths[0])
        if score > best_score:
            best, best_score = delim, score
    return best


def _check_delimiter(path: Path, delimiter: str) -> None:
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise DataError(f"{path}: the delimiter must be one character, got {delimiter!r}")


# --- rows -----------------------------------------------------------------------------------


def _header(path: Path, reader: Any) -> list[str]:
    for record in reader:
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank line
        header = [f.strip() for f in record]
        for j, name in enumerate(header):
            if not name:
                raise DataError(f"{path}: line {reader.line_num}: column {j + 1} has an empty name")
        seen: set[str] = set()
        for name in header:
            if name in seen:
                raise DataError(
                    f"{path}: line {reader.line_num}: column {name!r} appears twice in the header"
                )
            seen.add(name)
        return header
    raise DataError(f"{path}: empty file: no header line")


def _records(path: Path, reader: Any, width: int) -> Iterator[tuple[int, list[str]]]:
    """``(line, raw fields)`` of each data row; blank lines skipped, ragged rows refused.

    Fields are stripped later, column by column, and only for the columns that are used.
    """
    for record in reader:
        if len(record) != width:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            raise DataError(
                f"{path}: line {reader.line_num}: expected {width} fields as in the "
                f"header, got {len(record)}"
            )
        yield reader.line_num, record


def _nul_free(path: Path, lines: Iterable[str], first: int = 1) -> Iterator[str]:
    """``lines`` (the first is file line ``first``) as they are, refusing one holding a NUL."""
    for n, line in enumerate(lines, first):
        if "\x00" in line:
            raise DataError(
                f"{path}: line {n}: a NUL character: not a text CSV (a binary file, or UTF-16 "
                "without a byte-order mark; save it as UTF-8)"
            )
        yield line


def _stripped(raw: Iterable[str]) -> list[str]:
    return [v.strip() for v in raw]


@contextmanager
def _reading(path: Path, reader: Any) -> Iterator[None]:
    """csv and decoding errors raised inside turned into a :class:`DataError` naming the line."""
    try:
        yield
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: after line {reader.line_num}: not valid {exc.encoding} ({exc.reason}); "
            "set the file's encoding (data.encoding in the config)"
        ) from None


# --- columns --------------------------------------------------------------------------------


def parse_column(raw: Sequence[str], na_values: frozenset[str]) -> tuple[NDArray[Any], Kind]:
    """float64 with NaN if every present value is a number, else object with ``None``."""
    try:
        values = np.array(["nan" if v in na_values else v for v in raw], dtype=np.float64)
    except ValueError:
        out = np.empty(len(raw), dtype=object)
        out[:] = [None if v in na_values else v for v in raw]
        return out, "categorical"
    return values, "numeric"


def first_non_number(col: NDArray[Any]) -> int | None:
    """Index of the first present value of an object column that is not a number, if any."""
    for i, v in enumerate(col.tolist()):
        if v is None:
            continue
        try:
            float(v)
        except ValueError:
            return i
    return None


def _parse_target(
    path: Path, name: str, raw: Sequence[str], lines: Sequence[int], na: frozenset[str]
) -> FloatArray:
    y = np.empty(len(raw), dtype=np.float64)
    for i, v in enumerate(raw):
        try:
            y[i] = float(v)
        except ValueError:
            shown = "missing" if v in na else f"not a number: {v!r}"
            raise DataError(
                f"{path}: line {lines[i]}, column {name!r}: the target is {shown}"
            ) from None
        if not np.isfinite(y[i]):
            raise DataError(
                f"{path}: line {lines[i]}, column {name!r}: the target is not finite: {v!r}"
            )
    return y


# --- whole files ----------------------------------------------------------------------------


def _read_bytes(p: Path) -> bytes:
    with _open_binary(p) as fh:
        try:
            data: bytes = fh.read()
        except OSError as exc:
            raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from None
    return data


def _decode(p: Path, data: bytes, encoding: str | None) -> tuple[str, str]:
    name = encoding or detect_encoding(data, complete=True)
    try:
        return data.decode(name), name
    except LookupError:
        raise DataError(f"{p}: unknown encoding {name!r}") from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{p}: line {line}: not valid {name} ({exc.reason})") from None


def read_header(path: str | Path, fmt: CsvFormat = DEFAULT_FORMAT) -> tuple[list[str], str, str]:
    """The header of ``path`` with the delimiter and encoding :func:`load_csv` would use."""
    p = Path(path)
    with _open_binary(p) as fh:
        head = fh.read(1 << 16)
        encoding = fmt.encoding or detect_encoding(head, complete=len(head) < 1 << 16)
        delimiter = fmt.delimiter or sniff_delimiter(head.decode(encoding, errors="replace"))
        _check_delimiter(p, delimiter)
        fh.seek(0)  # the header is read whole: a wide file's may be longer than the head
        with io.TextIOWrapper(fh, encoding=encoding, errors="replace", newline="") as text:
            reader = csv.reader(_nul_free(p, text), delimiter=delimiter)
            with _reading(p, reader):
                header = _header(p, reader)
    return header, delimiter, encoding


def load_csv(
    path: str | Path,
    target: str | None = None,
    features: Sequence[str] | None = None,
    fmt: CsvFormat = DEFAULT_FORMAT,
) -> Dataset:
    """Read ``path`` into a :class:`Dataset`; see the module docstring for the parsing rules.

    ``target`` names a numeric column returned apart as ``Dataset.target``: every row must hold
    a finite number there (a model cannot learn from a missing price, and dropping rows
    silently would change the data behind the recorded sha256). ``features`` selects and
    orders the columns to keep; each must exist and hold at least one value, since a feature
    missing in every row can only be imputed from nothing. Numeric columns holding infinities
    are refused for the same reason as the target.
    """
    p = Path(path)
    data = _read_bytes(p)
    sha256 = hashlib.sha256(data).hexdigest()
    text, encoding = _decode(p, data, fmt.encoding)
    delimiter = fmt.delimiter or sniff_delimiter(text[: 1 << 16])
    _check_delimiter(p, delimiter)
    reader = csv.reader(_nul_free(p, io.StringIO(text, newline="")), delimiter=delimiter)
    with _reading(p, reader):
        header = _header(p, reader)
        records = list(_records(p, reader, len(header)))
    if not records:
        raise DataError(f"{p}: no data rows after the header")
    lines = [line for line, _ in records]
    rows = [fields for _, fields in records]
    na = fmt.na_values

    index = {name: j for j, name in enumerate(header)}
    if target is not None and target not in index:
        hint = ""
        if len(header) == 1 and fmt.delimiter is None:
            hint = " (the file has one column: is its delimiter one of , ; tab |?)"
        raise DataError(f"{p}: no target column {target!r}; {suggest(target, header)}{hint}")
    if features is None:
        wanted = [name for name in header if name != target]
    else:
        wanted = list(features)
        for name in wanted:
            if name not in index:
                raise DataError(f"{p}: no feature column {name!r}; {suggest(name, header)}")
            if name == target:
                raise DataError(f"{p}: column {name!r} is the target; it cannot be a feature")
        if len(set(wanted)) != len(wanted):
            raise DataError(f"{p}: features list a column twice: {wanted}")

    by_column = list(zip(*rows, strict=True))
    columns: Columns = {}
    kinds: dict[str, Kind] = {}
    for name in wanted:
        raw = _stripped(by_column[index[name]])
        col, kind = parse_column(raw, na)
        if features is not None and all(v in na for v in raw):
            raise DataError(f"{p}: column {name!r} is missing in every one of {len(raw)} rows")
        if kind == "numeric":
            inf = np.flatnonzero(np.isinf(col))
            if inf.size:
                i = int(inf[0])
                raise DataError(f"{p}: line {lines[i]}, column {name!r}: infinite value {raw[i]!r}")
        columns[name] = col
        kinds[name] = kind

    y = None
    if target is not None:
        y = _parse_target(p, target, _stripped(by_column[index[target]]), lines, na)
    return Dataset(
        columns=columns,
        target=y,
        kinds=kinds,
        path=str(p),
        sha256=sha256,
        n_rows=len(rows),
        target_name=target,
        lines=np.asarray(lines, dtype=np.int64),
        delimiter=delimiter,
        encoding=encoding,
    )


# --- chunks ---------------------------------------------------------------------------------


class ChunkColumns(Mapping[str, list[str]]):
    """A chunk's fields by column name, each column stripped the first time it is read: a
    file is often wider than what is scored from it."""

    def __init__(self, header: list[str], rows: list[list[str]]) -> None:
        self._index = {name: j for j, name in enumerate(header)}
        self._rows = rows
        self._read: dict[str, list[str]] = {}

    def __getitem__(self, name: str) -> list[str]:
        col = self._read.get(name)
        if col is None:
            j = self._index[name]
            col = self._read[name] = [row[j].strip() for row in self._rows]
        return col

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


@dataclass(frozen=True)
class Chunk:
    """Consecutive data rows of a file: stripped fields by column, and their file lines."""

    columns: Mapping[str, list[str]]
    lines: list[int]


def _open_binary(p: Path) -> Any:
    try:
        return open(p, "rb")  # the caller closes it
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{p}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from None


def iter_chunks(
    path: str | Path, fmt: CsvFormat = DEFAULT_FORMAT, chunk_rows: int = 10_000
) -> Iterator[tuple[list[str], Chunk]]:
    """``(header, chunk)`` for each run of ``chunk_rows`` data rows of ``path``, read lazily.

    Memory is one chunk's rows, whatever the file's size. The encoding and the delimiter are
    decided from the first 64 KiB; a byte that does not decode later is a :class:`DataError`
    naming the line, as is any malformed row (after the rows before it were yielded).
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    p = Path(path)
    header, delimiter, encoding = read_header(p, fmt)
    with _open_binary(p) as raw:
        text: TextIO = io.TextIOWrapper(raw, encoding=encoding, newline="")
        reader = csv.reader(_nul_free(p, text), delimiter=delimiter)
        lines: list[int] = []
        rows: list[list[str]] = []
        yielded = False
        with _reading(p, reader):
            _header(p, reader)
            for line, fields in _records(p, reader, len(header)):
                lines.append(line)
                rows.append(fields)
                if len(rows) == chunk_rows:
                    yield header, _chunk(header, rows, lines)
                    yielded = True
                    lines, rows = [], []
        if rows:
            yield header, _chunk(header, rows, lines)
        elif not yielded:
            raise DataError(f"{p}: no data rows after the header")


def _chunk(header: list[str], rows: list[list[str]], lines: list[int]) -> Chunk:
    return Chunk(ChunkColumns(header, rows), lines)
