"""Load a CSV file into a table of columns, with the standard library ``csv`` and NumPy only.

A table is ``dict[str, np.ndarray]`` (:data:`model.base.Columns`): a column whose every present
value parses as a number is float64 with NaN for missing; any other column is categorical, an
object array of ``str`` with ``None`` for missing. The rule is per column, on all its rows, so
one stray word turns a column categorical rather than silently becoming NaN.

Missing is spelled ``""``, ``"NA"``, ``"NaN"`` or ``"nan"`` (:data:`MISSING`). The list is
deliberately shorter than pandas' (which also reads ``"None"``, ``"NULL"``...): ``"None"`` is a
real category in housing data ("no masonry veneer"), and guessing more would hide it.
Fields are stripped of surrounding spaces, so ``"WD "`` and ``"WD"`` are one category (the Ames
export has such trailing spaces, and a client of the API would never type them).

Every error is a :class:`DataError` naming the file, and the line and column when there is one,
because the person who reads it has the CSV open in an editor, not a debugger.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from model.base import Columns, FloatArray

Kind = Literal["numeric", "categorical"]

#: Field values read as missing (after stripping spaces).
MISSING: frozenset[str] = frozenset({"", "NA", "NaN", "nan"})


class DataError(ValueError):
    """A data file that cannot be used, with the file, line and column that show why."""


@dataclass(frozen=True)
class Dataset:
    """A loaded CSV: feature columns, the target (if asked for) and where they came from.

    ``columns`` holds every column except the target (or only ``features``, in that order);
    ``kinds`` says for each whether it is ``"numeric"`` or ``"categorical"``; ``sha256`` is the
    digest of the file's bytes, so a training run can record exactly which data it saw.
    """

    columns: Columns
    target: FloatArray | None
    kinds: dict[str, Kind]
    path: str
    sha256: str
    n_rows: int
    target_name: str | None = None
    lines: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def missing_counts(self) -> dict[str, int]:
        """Missing values per column (NaN in numeric columns, ``None`` in categorical ones)."""
        return {name: int(_missing_mask(col).sum()) for name, col in self.columns.items()}


def _missing_mask(col: NDArray[Any]) -> NDArray[np.bool_]:
    if col.dtype == object:
        return np.array([v is None for v in col], dtype=bool)
    return np.isnan(col)


def _suggest(name: str, available: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    shown = close if close else list(available[:8])
    more = "" if close or len(available) <= 8 else f", ... ({len(available)} columns)"
    label = "did you mean" if close else "available columns"
    return f"{label}: {', '.join(repr(c) for c in shown)}{more}"


def _read_rows(path: Path, text: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows (stripped fields) and the file line on which each row ends."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            fields = [f.strip() for f in record]
            if header is None:
                header = fields
                continue
            if len(fields) != len(header):
                raise DataError(
                    f"{path}: line {reader.line_num}: expected {len(header)} fields as in the "
                    f"header, got {len(fields)}"
                )
            rows.append(fields)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV: {exc}") from None
    if header is None:
        raise DataError(f"{path}: empty file: no header line")
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    for j, name in enumerate(header):
        if not name:
            raise DataError(f"{path}: line 1: column {j + 1} has an empty name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path}: line 1: column {name!r} appears twice in the header")
        seen.add(name)
    return header, rows, lines


def _parse_column(raw: list[str]) -> tuple[NDArray[Any], Kind]:
    """float64 with NaN if every present value is a number, else object with ``None``."""
    try:
        values = np.array(["nan" if v in MISSING else v for v in raw], dtype=np.float64)
    except ValueError:
        out = np.empty(len(raw), dtype=object)
        out[:] = [None if v in MISSING else v for v in raw]
        return out, "categorical"
    return values, "numeric"


def _parse_target(path: Path, name: str, raw: list[str], lines: list[int]) -> FloatArray:
    y = np.empty(len(raw), dtype=np.float64)
    for i, v in enumerate(raw):
        try:
            y[i] = float(v)
        except ValueError:
            shown = "missing" if v in MISSING else f"not a number: {v!r}"
            raise DataError(
                f"{path}: line {lines[i]}, column {name!r}: the target is {shown}"
            ) from None
        if not np.isfinite(y[i]):
            raise DataError(
                f"{path}: line {lines[i]}, column {name!r}: the target is not finite: {v!r}"
            )
    return y


def load_csv(
    path: str | Path, target: str | None = None, features: Sequence[str] | None = None
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
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from None
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{p}: line {line}: not valid UTF-8 ({exc.reason})") from None

    header, rows, lines = _read_rows(p, text)
    index = {name: j for j, name in enumerate(header)}
    if target is not None and target not in index:
        raise DataError(f"{p}: no target column {target!r}; {_suggest(target, header)}")
    if features is None:
        wanted = [name for name in header if name != target]
    else:
        wanted = list(features)
        for name in wanted:
            if name not in index:
                raise DataError(f"{p}: no feature column {name!r}; {_suggest(name, header)}")
            if name == target:
                raise DataError(f"{p}: column {name!r} is the target; it cannot be a feature")
        if len(set(wanted)) != len(wanted):
            raise DataError(f"{p}: features list a column twice: {wanted}")

    by_column = list(zip(*rows, strict=True))
    columns: Columns = {}
    kinds: dict[str, Kind] = {}
    for name in wanted:
        raw = list(by_column[index[name]])
        col, kind = _parse_column(raw)
        if features is not None and all(v in MISSING for v in raw):
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
        y = _parse_target(p, target, list(by_column[index[target]]), lines)
    return Dataset(
        columns=columns,
        target=y,
        kinds=kinds,
        path=str(p),
        sha256=sha256,
        n_rows=len(rows),
        target_name=target,
        lines=np.asarray(lines, dtype=np.int64),
    )
