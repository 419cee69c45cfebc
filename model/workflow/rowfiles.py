"""Files of houses for ``houseprice predict``: read in chunks, write as CSV, JSON or JSON lines.

Input, chosen by extension:

- ``.json``: a list of objects, ``{"instances": [...]}`` (the API's batch body) or one object
  (one house). JSON has no way to be read in pieces with the standard library, so the whole
  document is parsed at once; only the scoring then goes chunk by chunk;
- ``.jsonl`` / ``.ndjson``: one object per line, read lazily;
- anything else: a CSV read lazily by :func:`model.workflow.fastcsv.iter_chunks_fast` (the
  delimiter sniffed, the encoding detected, the missing-value spellings given; plain blocks
  split in C, by pyarrow when installed, the others by the standard ``csv`` reader, with the
  same fields and lines).

A chunk keeps the raw values: CSV fields are stripped strings, JSON values are whatever the
document held; :mod:`model.workflow.score` parses them per feature. Each row carries its
position for messages: the file line for CSV and JSON lines, the index in the list for JSON.

Output, chosen by the extension of ``--output``: ``.csv``, ``.json`` (one list of objects,
written as a stream) or ``.jsonl`` / ``.ndjson``; any other extension is refused before any
work (:func:`output_format`). A file is written through :func:`model.workflow.atomic.atomic_open`:
an error midway leaves no partial output and an existing file as it was.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, Literal

from model.workflow.data import CsvFormat, DataError
from model.workflow.fastcsv import iter_chunks_fast

Format = Literal["csv", "json", "jsonl"]
#: Output formats by file extension.
OUTPUT_FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def input_format(path: str | Path) -> Format:
    """``json`` for .json, ``jsonl`` for .jsonl/.ndjson, else ``csv`` (any delimiter)."""
    return OUTPUT_FORMATS.get(Path(path).suffix.lower(), "csv")


def output_format(path: str | Path) -> Format:
    """The format an output file is written in, from its extension; any other is an error."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        shown = repr(suffix) if suffix else "no extension"
        raise DataError(
            f"{path}: cannot write {shown}: the output format follows the extension, one of "
            f"{', '.join(OUTPUT_FORMATS)}"
        )
    return OUTPUT_FORMATS[suffix]


def shown(value: Any, limit: int = 40) -> str:
    """A value as quoted in a message: ``repr`` for text, JSON for the rest, long ones cut."""
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    except (RecursionError, ValueError):
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        size = len(value) if isinstance(value, str | list | dict) else len(text)
        text = f"{text[: limit - 1]}… ({size:,} long)"
    return text


@dataclass(frozen=True)
class RowChunk:
    """Consecutive rows: raw values by input column, and each row's position for messages.

    ``text`` is true for CSV (every value a stripped ``str``) and false for JSON (values as
    parsed: ``None``, numbers, strings, ...; a key absent from a row is ``None``).
    ``where(i)`` names row ``i`` of the chunk: ``line 12`` or ``item [3]``.
    """

    columns: Mapping[str, list[Any]]
    positions: list[int]
    label: str  # a format with one {} for the position
    text: bool

    def __len__(self) -> int:
        return len(self.positions)

    def where(self, i: int) -> str:
        return self.label.format(self.positions[i])


@dataclass
class RowSource:
    """An opened input: its columns (CSV header; for JSON the keys of the first chunk), then
    its chunks, the first already read (so a file that cannot start is refused before any
    output)."""

    path: Path
    columns: list[str]
    chunks: Iterator[RowChunk]
    total: int | None  # rows, when known without reading the file twice


def open_rows(path: str | Path, na_values: frozenset[str], chunk_rows: int) -> RowSource:
    """Open ``path`` in the format of its extension; see the module docstring."""
    p = Path(path)
    kind = input_format(p)
    if kind == "csv":
        return _open_csv(p, na_values, chunk_rows)
    if kind == "jsonl":
        return _first(p, _jsonl_chunks(p, chunk_rows), None)
    rows, label = _json_document(p)
    return _first(p, _json_chunks(rows, label, chunk_rows), len(rows))


def _first(p: Path, chunks: Iterator[RowChunk], total: int | None) -> RowSource:
    first = next(chunks)  # the readers raise on an empty file rather than stop
    keys = list(first.columns)

    def all_chunks() -> Iterator[RowChunk]:
        yield first
        for chunk in chunks:
            yield RowChunk(
                {k: chunk.columns.get(k, [None] * len(chunk)) for k in keys},
                chunk.positions,
                chunk.label,
                chunk.text,
            )

    return RowSource(p, keys, all_chunks(), total)


# --- CSV ------------------------------------------------------------------------------------


def _open_csv(p: Path, na_values: frozenset[str], chunk_rows: int) -> RowSource:
    chunks = iter_chunks_fast(p, CsvFormat(na_values=na_values), chunk_rows)
    header, first = next(chunks)

    def all_chunks() -> Iterator[RowChunk]:
        yield RowChunk(first.columns, first.lines, "line {}", True)
        for _, chunk in chunks:
            yield RowChunk(chunk.columns, chunk.lines, "line {}", True)

    return RowSource(p, header, all_chunks(), None)


def count_lines(path: str | Path) -> int:
    """Newlines in a file, read in blocks: the progress bar's estimate of a CSV's rows."""
    n = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
    return n


# --- JSON -----------------------------------------------------------------------------------


def _parse_json(p: Path, data: bytes, where: str = "") -> Any:
    try:
        return json.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except json.JSONDecodeError as exc:
        at = where or f"line {exc.lineno} column {exc.colno}"
        hint = ""
        if not where and exc.msg == "Extra data":
            hint = " (one object per line is JSON lines: name the file .jsonl)"
        raise DataError(f"{p}: {at}: not valid JSON: {exc.msg}{hint}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: {where or 'JSON'} is not UTF-8 ({exc.reason})") from None
    except RecursionError:
        raise DataError(f"{p}: {where or 'JSON'}: nested too deeply") from None


def _json_document(p: Path) -> tuple[list[Any], str]:
    """The rows of a .json file and how to name one: a list, ``instances`` or one object."""
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{p}: is a directory, not a JSON file") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from None
    doc = _parse_json(p, data)
    label = "item [{}]"
    if isinstance(doc, dict) and "instances" in doc:
        doc, label = doc["instances"], "instances[{}]"
        if not isinstance(doc, list):
            raise DataError(f"{p}: 'instances' must be a list of objects, got {shown(doc)}")
    elif isinstance(doc, dict):
        doc, label = [doc], "the object"
    if not isinstance(doc, list):
        raise DataError(
            f'{p}: expected a list of objects, {{"instances": [...]}} or one object, '
            f"got {shown(doc)}"
        )
    if not doc:
        raise DataError(f"{p}: no rows (an empty list)")
    for i, row in enumerate(doc):
        if not isinstance(row, dict):
            raise DataError(f"{p}: {label.format(i)}: expected an object, got {shown(row)}")
    return doc, label


def _columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    keys = dict.fromkeys(k for row in rows for k in row)
    return {k: [row.get(k) for row in rows] for k in keys}


def _json_chunks(rows: list[Any], label: str, chunk_rows: int) -> Iterator[RowChunk]:
    if label == "the object":
        yield RowChunk(_columns(rows), [0], "the object", False)
        return
    for start in range(0, len(rows), chunk_rows):
        part = rows[start : start + chunk_rows]
        yield RowChunk(_columns(part), list(range(start, start + len(part))), label, False)


def _jsonl_chunks(p: Path, chunk_rows: int) -> Iterator[RowChunk]:
    try:
        fh = open(p, "rb")  # noqa: SIM115 (closed below; the generator may stop early)
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{p}: is a directory, not a JSON lines file") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from None
    with fh:
        rows: list[dict[str, Any]] = []
        lines: list[int] = []
        seen = False
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            row = _parse_json(p, raw, f"line {number}")
            if not isinstance(row, dict):
                raise DataError(f"{p}: line {number}: expected a JSON object, got {shown(row)}")
            rows.append(row)
            lines.append(number)
            if len(rows) == chunk_rows:
                yield RowChunk(_columns(rows), lines, "line {}", False)
                seen, rows, lines = True, [], []
        if rows:
            yield RowChunk(_columns(rows), lines, "line {}", False)
        elif not seen:
            raise DataError(f"{p}: no rows (no JSON object on any line)")


# --- output ---------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """A kept value as CSV text: strings as they were, missing empty, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _out_cell(value: Any) -> str:
    """An output value as CSV text: a number in full, NaN or missing empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def render(
    fmt: Format,
    kept: Mapping[str, list[Any]],
    prices: list[float],
    version: str,
    notes: Mapping[int, list[str]],
    first: bool,
    text: bool,
    extra: Mapping[str, list[Any]] | None = None,
) -> str:
    """One chunk of output as text: the ``kept`` input columns, then each row's price, the
    ``extra`` columns (the interval, an explanation: numbers, NaN where there is none, text,
    or in JSON objects), the model version and its notes (row -> entries; most rows have none).

    ``first`` says whether this is the first chunk (the CSV header, the JSON list's ``[``);
    ``text``, whether the kept values are CSV text (else JSON values). A price that is NaN (a
    row in error) is an empty CSV cell, a JSON ``null``. The notes are joined by ``"; "`` in
    CSV and stay a list in JSON. CSV is built column by column, so that a row costs the
    ``csv`` module's C loop and little else.
    """
    buf = io.StringIO()
    n = len(prices)
    if fmt == "csv":
        w = csv.writer(buf, lineterminator="\n")
        more = extra or {}
        if first:
            w.writerow([*kept, "price", *more, "model_version", "warnings"])
        price_cells = list(map(repr, prices))
        note_cells = [""] * n
        for i, entries in notes.items():
            note_cells[i] = "; ".join(entries)
        for i in [i for i, p in enumerate(prices) if p != p]:  # NaN: a row in error
            price_cells[i] = ""
        cells = [c if text else list(map(_cell, c)) for c in kept.values()]
        more_cells = [[_out_cell(v) for v in c] for c in more.values()]
        w.writerows(
            zip(*cells, price_cells, *more_cells, repeat(version, n), note_cells, strict=False)
        )
        return buf.getvalue()
    sep = "[\n" if first else ",\n"
    none: list[str] = []
    for i, price in enumerate(prices):
        record = {k: c[i] for k, c in kept.items()}
        record["price"] = None if math.isnan(price) else price
        for k, c in (extra or {}).items():
            v = c[i]
            record[k] = None if isinstance(v, float) and math.isnan(v) else v
        record.update(model_version=version, warnings=notes.get(i, none))
        line = json.dumps(record, ensure_ascii=False)
        if fmt == "jsonl":
            buf.write(line + "\n")
        else:
            buf.write(sep + line)
            sep = ",\n"
    return buf.getvalue()


def render_end(fmt: Format) -> str:
    """What closes the output: the JSON list's ``]``."""
    return "\n]\n" if fmt == "json" else ""
