"""pyarrow's C parser for the plain blocks of :mod:`model.workflow.fastcsv` (the ``arrow`` extra).

Which parser reads a CSV is :func:`parser`: ``HOUSEPRICE_CSV_PARSER`` = ``arrow``, ``python`` or
``auto`` (the default: ``arrow`` when pyarrow is installed). Both give the same tables: the
arrow parser only ever sees a block :mod:`model.workflow.fastcsv` found plain (no quote, no
NUL, no lone carriage return), reads every field as text, and hands the block back to the
standard reader if its rows are not one per line (a blank, white or ragged line: the standard
reader skips it or names it). A block's fields are then

- as text (:meth:`ArrowColumns.__getitem__`): pyarrow's strings as they are when no field
  starts or ends with white space (:data:`PADDED`: the characters ``str.isspace`` names), else
  ``str.strip`` of each distinct value (the column's dictionary);
- as numbers (:meth:`ArrowColumns.numbers`): the missing spellings matched on the raw field,
  the rest cast to float64 in C when every field is made of the bytes of :data:`DECIMAL`
  numbers only (digits, sign, point, exponent: one ``bytes.translate`` of the column), of
  which the cast reads exactly the :data:`DECIMAL` form, to the correctly rounded double
  Python's ``float`` gives, and refuses the rest; any other column (spaces, ``inf``,
  ``1_000``, a word, ``1e``) is read by ``float`` once per distinct stripped value, as
  :func:`model.workflow.stream.reading.to_numbers` would;
- as categories (:meth:`ArrowColumns.factors`): stripped, ``None`` for a missing spelling,
  once per distinct value, with each row's index among them.

A block is read whole by ``pyarrow.csv.read_csv`` rather than the file by ``open_csv``: the
block's first line is known, so a row's line is exact, and a block pyarrow refuses is handed to
the standard reader alone, which names the row as it always does.

Nothing here imports pyarrow unless the arrow parser was chosen.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from model.base import FloatArray

#: The environment variable that picks the parser (``--csv-parser`` sets it).
ENV = "HOUSEPRICE_CSV_PARSER"
PARSERS = ("auto", "arrow", "python")
#: Numbers the C cast reads exactly as Python's ``float`` does (RE2 syntax).
DECIMAL = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


#: Every character ``str.isspace`` (so ``str.strip``) calls white space; tested equal.
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_CLASS = "".join(f"\\x{{{ord(c):x}}}" for c in SPACES)
#: A field that ``str.strip`` would change (RE2 syntax).
PADDED = f"^[{_CLASS}]|[{_CLASS}]$"


def installed() -> bool:
    """Whether pyarrow can be imported (the ``arrow`` extra), without importing it."""
    return importlib.util.find_spec("pyarrow") is not None


def parser() -> str:
    """``"arrow"`` or ``"python"``: the parser :envvar:`HOUSEPRICE_CSV_PARSER` asks for."""
    choice = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if choice not in PARSERS:
        raise ValueError(f"{ENV}={choice!r}: expected one of {', '.join(PARSERS)}")
    if choice == "auto":
        return "arrow" if installed() else "python"
    if choice == "arrow" and not installed():
        raise ValueError(
            f"{ENV}=arrow needs pyarrow: pip install 'houseprice[arrow]' (or use python)"
        )
    return choice


def read_block(block: bytes, header: list[str], delimiter: str) -> ArrowColumns | None:
    """The fields of a plain UTF-8 ``block`` of whole lines, by column; ``None`` when its rows
    are not exactly its lines (the standard reader then reads it)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    try:
        table = pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(
                column_names=header, use_threads=False, block_size=max(len(block), 1 << 20)
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                quote_char=False,
                escape_char=False,
                double_quote=False,
                newlines_in_values=False,
                ignore_empty_lines=True,  # a blank line: fewer rows than lines
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=False,
            ),
        )
    except pa.ArrowInvalid:
        return None  # a ragged, blank or white line: the standard reader names or skips it
    lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    if table.num_rows != lines:
        return None
    return ArrowColumns(table)


class ArrowColumns(Mapping[str, list[str]]):
    """A block's fields by column, held by pyarrow; each column converted when first read."""

    def __init__(self, table: Any, start: int = 0, stop: int | None = None) -> None:
        self._table = table
        self._start = start
        self._stop = table.num_rows if stop is None else stop
        self._text: dict[str, list[str]] = {}

    @property
    def num_rows(self) -> int:
        return self._stop - self._start

    def slice(self, start: int, stop: int) -> ArrowColumns:
        """Rows ``[start, stop)`` of this block."""
        return ArrowColumns(self._table, self._start + start, self._start + stop)

    def _array(self, name: str) -> Any:
        col = self._table.column(name).slice(self._start, self._stop - self._start)
        return col.combine_chunks()

    def __getitem__(self, name: str) -> list[str]:
        col = self._text.get(name)
        if col is None:
            col = self._text[name] = self._stripped(name)
        return col

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.column_names)

    def __len__(self) -> int:
        return int(self._table.num_columns)

    def _stripped(self, name: str) -> list[str]:
        """The column's stripped ``str``: as they are when no field starts or ends with white
        space (:data:`PADDED`), else ``str.strip`` per distinct value."""
        import pyarrow.compute as pc

        arr = self._array(name)
        if not pc.any(pc.match_substring_regex(arr, PADDED)).as_py():
            return arr.to_pylist()
        encoded = arr.dictionary_encode()
        values = encoded.dictionary.to_pylist()
        distinct = np.empty(len(values), dtype=object)
        distinct[:] = [v.strip() for v in values]
        return distinct[_numpy(encoded.indices, np.int32)].tolist()

    def factors(self, name: str, na: frozenset[str]) -> tuple[NDArray[Any], NDArray[np.int32]]:
        """The column's distinct values, stripped (an object array of ``str``, ``None`` for
        one of the missing spellings ``na``), and each row's index among them."""
        encoded = self._array(name).dictionary_encode()
        values = [v.strip() for v in encoded.dictionary.to_pylist()]
        distinct = np.empty(len(values), dtype=object)
        distinct[:] = [None if v in na else v for v in values]
        return distinct, _numpy(encoded.indices, np.int32)

    def numbers(self, name: str, na: frozenset[str]) -> tuple[FloatArray, int | None]:
        """The column as float64, NaN where the stripped field is one of ``na`` or not a
        number, and the index of the first that is not a number (``None``: none is).

        Cast in C when every raw field is one of ``na`` or made of :data:`DECIMAL_BYTES`
        only: among such fields the C cast reads exactly those of the :data:`DECIMAL` form,
        to Python's ``float`` of them, and refuses the others (tested on every such string
        of up to five bytes), so a refusal sends the column to the slow path. Else Python's
        ``float`` of each distinct stripped field (the column's dictionary).
        """
        import pyarrow as pa

        arr = self._array(name)
        if _only_decimal_bytes(arr):  # the missing spellings of such bytes: "" and "-"
            missing = _spelled(arr, [v for v in na if _only_decimal_bytes(v)])
            present = arr if not missing.any() else arr.filter(_arrow_mask(~missing))
            castable = True
        else:  # letters or spaces: missing spellings, or the slow path
            import pyarrow.compute as pc

            missing = np.zeros(len(arr), dtype=bool)
            if na:
                missing = _mask(pc.is_in(arr, value_set=_strings(tuple(sorted(na)))))
            present = arr if not missing.any() else arr.filter(_arrow_mask(~missing))
            castable = _only_decimal_bytes(present)
        if castable:
            try:  # out of the double's range, float() says inf and the cast fails
                cast = _numpy(present.cast(pa.float64()), np.float64)
            except pa.ArrowInvalid:
                pass
            else:
                if present is arr:
                    return cast.copy(), None  # writable, as NumPy parsed
                out = np.full(len(arr), np.nan)
                out[~missing] = cast
                return out, None
        encoded = arr.dictionary_encode()
        values, bad = _floats([v.strip() for v in encoded.dictionary.to_pylist()], na)
        idx = _numpy(encoded.indices, np.int32)
        first = np.flatnonzero(bad[idx])
        return values[idx], int(first[0]) if first.size else None


#: The bytes a number of the :data:`DECIMAL` form is made of.
DECIMAL_BYTES = b"0123456789+-.eE"


def _only_decimal_bytes(values: Any) -> bool:
    """Whether a ``str`` or every field of a pyarrow string array is made of
    :data:`DECIMAL_BYTES` only (one C-level ``bytes.translate`` of its data buffer)."""
    if isinstance(values, str):
        return not values.encode("utf-8").translate(None, DECIMAL_BYTES)
    offsets, data = _offsets(values), values.buffers()[2]
    if data is None or not len(values):
        return True  # no field, or every field empty
    raw = memoryview(data)[int(offsets[0]) : int(offsets[-1])].tobytes()
    return not raw.translate(None, DECIMAL_BYTES)


def _offsets(arr: Any) -> NDArray[np.int32]:
    """Where each field of a pyarrow string array starts in its data buffer, then its end."""
    size = np.dtype(np.int32).itemsize
    buf = arr.buffers()[1]
    return np.frombuffer(buf, dtype=np.int32, count=len(arr) + 1, offset=arr.offset * size)


def _spelled(arr: Any, spellings: list[str]) -> NDArray[np.bool_]:
    """Which fields of a pyarrow string array are one of ``spellings`` (by their lengths,
    then their bytes)."""
    offsets = _offsets(arr)
    lengths = np.diff(offsets)
    data = np.frombuffer(arr.buffers()[2] or b"", dtype=np.uint8)
    out = np.zeros(len(arr), dtype=bool)
    for spelling in spellings:
        want = spelling.encode("utf-8")
        rows = np.flatnonzero(lengths == len(want))
        starts = offsets[rows]
        for i, byte in enumerate(want):
            same = data[starts + i] == byte
            rows, starts = rows[same], starts[same]
        out[rows] = True
    return out


def _mask(arr: Any) -> NDArray[np.bool_]:
    """A pyarrow boolean array without nulls as a NumPy mask (its bits unpacked)."""
    assert arr.null_count == 0
    bits = np.frombuffer(arr.buffers()[1], dtype=np.uint8)
    unpacked = np.unpackbits(bits, count=arr.offset + len(arr), bitorder="little")
    return unpacked[arr.offset :].view(bool)


def _arrow_mask(mask: NDArray[np.bool_]) -> Any:
    """A NumPy mask as a pyarrow boolean array (its bits packed)."""
    import pyarrow as pa

    bits = np.packbits(mask, bitorder="little")
    return pa.BooleanArray.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(bits)])


def _floats(values: list[str], na: frozenset[str]) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Each of ``values`` as Python's ``float`` reads it (NaN for one of ``na``), and whether
    it is not a number (then NaN too)."""
    out = np.full(len(values), np.nan)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v in na:
            continue
        try:
            out[i] = float(v)
        except ValueError:
            bad[i] = True
    return out, bad


@functools.cache
def _strings(values: tuple[str, ...]) -> Any:
    """A pyarrow string array of ``values``, from its buffers (``pa.array`` of a list would
    import pandas too)."""
    import pyarrow as pa

    raw = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(raw) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(b) for b in raw])
    return pa.StringArray.from_buffers(len(raw), pa.py_buffer(offsets), pa.py_buffer(b"".join(raw)))


def _numpy(arr: Any, dtype: type[np.generic]) -> NDArray[Any]:
    """A pyarrow array of fixed-width values without nulls as a NumPy view of its buffer
    (``to_numpy`` would import pandas when it is installed: seconds, for nothing)."""
    n, size = len(arr), np.dtype(dtype).itemsize
    if n == 0:
        return np.empty(0, dtype=dtype)
    assert arr.null_count == 0
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=n, offset=arr.offset * size)
