"""A faster reader of plain CSV blocks, giving exactly the chunks of :func:`data.iter_chunks`.

The standard library's ``csv`` reader costs a Python-level step per row (the row list, the
NUL check, the stripping; docs/PERFORMANCE.md has the figures). Most large exports are *plain*: no
quotes, no blank lines, no stray carriage return, no space around a field. For a block of
such rows, two C-level string operations split every field at once: the block's newlines
become delimiters and one ``str.split`` cuts it, and column ``j`` is the slice
``fields[j::width]``; the delimiters per line are counted on the bytes with NumPy, so a
ragged row is still found with its line. A block that is not plain (a quote, a NUL, a blank
line, a lone ``\\r``, a ragged row) and every block after a quote are read by the standard
path, :func:`model.workflow.data.iter_chunks`'s own ``csv`` reader, so the errors and the
tables are the same; tests compare the two on the same files.

With the arrow parser (:mod:`model.workflow.arrowcsv`: pyarrow installed, the default), a plain
block of :data:`ARROW_BLOCK_BYTES` is split by pyarrow's C reader instead of ``str.split``, and
its chunks hold the fields in pyarrow (:class:`model.workflow.arrowcsv.ArrowColumns`, read as
stripped ``str`` like the others, or as numbers cast in C); a block pyarrow reads as other than
one row per line (a blank, white or ragged line) goes to the standard path like any block that
is not plain.

Only encodings in which every ASCII byte stands for itself (UTF-8, Windows-1252, Latin-1)
take the fast path; UTF-16 files are read by the standard path.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from model.workflow import arrowcsv
from model.workflow.arrowcsv import ArrowColumns
from model.workflow.data import (
    DEFAULT_FORMAT,
    Chunk,
    ChunkColumns,
    CsvFormat,
    DataError,
    _header,
    _nul_free,
    _open_binary,
    _reading,
    _records,
    iter_chunks,
    read_header,
)

#: Encodings in which the delimiter, the quote and the newline are single ASCII bytes that
#: never occur inside another character's encoding.
_ASCII_SAFE = ("utf-8", "utf-8-sig", "utf_8", "cp1252", "windows-1252", "latin-1", "iso-8859-1")
#: Bytes read per block (cut back to the last newline).
BLOCK_BYTES = 1 << 20
#: The same for the arrow parser, whose cost per call is larger and per byte smaller.
ARROW_BLOCK_BYTES = 8 << 20


def _ascii_safe(encoding: str) -> bool:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return name in {codecs.lookup(e).name for e in _ASCII_SAFE}


def iter_chunks_fast(
    path: str | Path, fmt: CsvFormat = DEFAULT_FORMAT, chunk_rows: int = 10_000
) -> Iterator[tuple[list[str], Chunk]]:
    """:func:`model.workflow.data.iter_chunks` with plain blocks split in C (module docstring).

    Chunks hold at most ``chunk_rows`` rows (a block's rows are cut into chunks; a chunk never
    spans two blocks), with the same fields and file lines as the standard path.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    p = Path(path)
    header, delimiter, encoding = read_header(p, fmt)
    if not _ascii_safe(encoding) or len(header) < 2:
        yield from iter_chunks(p, fmt, chunk_rows)
        return
    with _open_binary(p) as raw:
        head = raw.read(1 << 16)
        if head.count(b"\r") != head.count(b"\r\n"):  # old Mac line ends: csv's own counting
            yield from iter_chunks(p, fmt, chunk_rows)
            return
        raw.seek(0)
        offset, line = _after_header(p, raw, delimiter, encoding)
        yield from _blocks(p, raw, offset, line, header, delimiter, encoding, chunk_rows)


def _after_header(p: Path, raw: Any, delimiter: str, encoding: str) -> tuple[int, int]:
    """``(byte offset, lines)`` just past the header line, found by the standard reader."""
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    reader = csv.reader(text, delimiter=delimiter)
    with _reading(p, reader):
        _header(p, reader)
    lines = int(reader.line_num)
    text.detach()
    raw.seek(0)
    pos = found = 0
    while found < lines:
        piece = raw.read(1 << 16)
        if not piece:
            return pos, lines
        k = -1
        while found < lines:
            k = piece.find(b"\n", k + 1)
            if k < 0:
                break
            found += 1
        if found == lines:
            return pos + k + 1, lines
        pos += len(piece)
    return pos, lines


def _blocks(
    p: Path,
    raw: Any,
    offset: int,
    line: int,
    header: list[str],
    delimiter: str,
    encoding: str,
    chunk_rows: int,
    end: int | None = None,
) -> Iterator[tuple[list[str], Chunk]]:
    width = len(header)
    dbyte = delimiter.encode("ascii")[0] if delimiter.isascii() else -1
    name = "utf-8" if codecs.lookup(encoding).name.startswith("utf-8") else encoding
    arrow = dbyte >= 0 and arrowcsv.parser() == "arrow"
    block_bytes = ARROW_BLOCK_BYTES if arrow else BLOCK_BYTES
    raw.seek(offset)
    yielded = False
    rest = b""
    while True:
        pos = offset + len(rest)
        want = block_bytes if end is None else max(0, min(block_bytes, end - pos))
        data = raw.read(want) if want else b""
        buf = rest + data
        if not buf:
            break
        cut = buf.rfind(b"\n") + 1 if data else len(buf)
        if cut == 0:
            rest = buf
            continue
        block, rest = buf[:cut], buf[cut:]
        plain = dbyte >= 0 and b'"' not in block and b"\x00" not in block
        fields: list[str] | None = None
        table: ArrowColumns | None = None
        if plain and arrow:
            table = _arrow_block(p, block, line, header, delimiter, name)
        elif plain:
            fields = _plain_fields(block, _decoded(p, block, line, name), width, dbyte)
        if fields is None and table is None:
            # Not plain: this block and (after a quote, which may open a field spanning the
            # cut) the rest of the file through the standard reader, from this offset.
            whole = b'"' in block
            size = (None if end is None else end - offset) if whole else len(block)
            yield from _standard(
                p, raw, offset, line, header, delimiter, encoding, chunk_rows, size
            )
            yielded = True
            if whole:
                return
            line += block.count(b"\n")
            offset += len(block)
            raw.seek(offset + len(rest))
            continue
        n = table.num_rows if table is not None else len(fields or ()) // width
        lines = range(line + 1, line + 1 + n)
        for start in range(0, n, chunk_rows):
            stop = min(n, start + chunk_rows)
            cols: Mapping[str, list[str]]
            if table is not None:
                cols = table.slice(start, stop)
            else:
                assert fields is not None
                cols = {
                    col: fields[start * width + j : stop * width : width]
                    for j, col in enumerate(header)
                }
            yield header, Chunk(cols, list(lines[start:stop]))
            yielded = True
        line += n
        offset += len(block)
        if not data:
            break
    if not yielded and end is None:
        raise DataError(f"{p}: no data rows after the header")


def data_start(path: str | Path, fmt: CsvFormat = DEFAULT_FORMAT) -> tuple[int, int]:
    """``(byte offset, line)`` where the data rows of ``path`` begin (past the header)."""
    p = Path(path)
    _, delimiter, encoding = read_header(p, fmt)
    with _open_binary(p) as raw:
        return _after_header(p, raw, delimiter, encoding)


def iter_span(
    path: str | Path,
    fmt: CsvFormat,
    chunk_rows: int,
    start: int,
    end: int,
    line: int,
) -> Iterator[Chunk]:
    """The chunks of the rows in bytes ``[start, end)`` of ``path``, both at line starts,
    ``line`` lines coming before ``start``: a partition of a file read in parallel. A quoted
    field holding a newline must not straddle ``start`` (as for any byte-range CSV reader)."""
    p = Path(path)
    header, delimiter, encoding = read_header(p, fmt)
    with _open_binary(p) as raw:
        if not _ascii_safe(encoding):
            raise DataError(f"{p}: a file in {encoding} cannot be read in byte ranges")
        for _, chunk in _blocks(
            p, raw, start, line, header, delimiter, encoding, chunk_rows, end=end
        ):
            yield chunk


def _decoded(p: Path, block: bytes, line: int, name: str) -> str:
    """``block`` decoded; an invalid byte is a :class:`DataError` naming the line before it."""
    try:
        return block.decode(name)
    except UnicodeDecodeError as exc:
        where = line + block[: exc.start].count(b"\n")
        raise DataError(
            f"{p}: after line {where}: not valid {exc.encoding} ({exc.reason}); "
            "set the file's encoding (data.encoding in the config)"
        ) from None


def _arrow_block(
    p: Path, block: bytes, line: int, header: list[str], delimiter: str, name: str
) -> ArrowColumns | None:
    """A plain block's fields read by pyarrow (UTF-8 given to it), or ``None`` when the
    standard reader must read it (a lone carriage return; rows that are not its lines)."""
    if b"\r" in block and block.count(b"\r") != block.count(b"\r\n"):
        return None
    if not block.isascii():
        text = _decoded(p, block, line, name)
        if name != "utf-8":
            block = text.encode("utf-8")
    return arrowcsv.read_block(block, header, delimiter)


def _plain_fields(block: bytes, text: str, width: int, dbyte: int) -> list[str] | None:
    """Every field of a plain block, row after row; ``None`` if the block is not plain."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
        block = block.replace(b"\r\n", b"\n")
    body = text[:-1] if text.endswith("\n") else text
    a = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(a == 10)
    if not block.endswith(b"\n"):
        ends = np.append(ends, a.size)
    delims = np.flatnonzero(a == dbyte)
    # every line holds width - 1 delimiters: the count before each line end says so
    expected = np.arange(1, ends.size + 1) * (width - 1)
    if ends.size == 0 or not np.array_equal(np.searchsorted(delims, ends), expected):
        return None  # a ragged or blank line: the standard reader skips it or names it
    d = chr(dbyte)
    fields = body.replace("\n", d).split(d)
    if _padded(body, d):
        fields = [f.strip() for f in fields]
    return fields


#: What ``str.strip`` removes: a field next to one of these may need stripping.
_SPACES = " \t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    chr(c) for c in range(0x2000, 0x200B)
)


def _padded(body: str, d: str) -> bool:
    """Whether some field of ``body`` starts or ends with white space (C-level searches)."""
    if body[:1].isspace() or body[-1:].isspace():
        return True
    for c in _SPACES:
        if c in body and (c + d in body or d + c in body or c + "\n" in body or "\n" + c in body):
            return True
    return False


def _standard(
    p: Path,
    raw: Any,
    offset: int,
    line: int,
    header: list[str],
    delimiter: str,
    encoding: str,
    chunk_rows: int,
    size: int | None,
) -> Iterator[tuple[list[str], Chunk]]:
    """The standard reader on ``size`` bytes from ``offset`` (to the end when ``None``)."""
    raw.seek(offset)
    source = raw if size is None else io.BytesIO(raw.read(size))
    name = "utf-8" if codecs.lookup(encoding).name.startswith("utf-8") else encoding
    text = io.TextIOWrapper(source, encoding=name, newline="")
    reader = csv.reader(_nul_free(p, text, line + 1), delimiter=delimiter)
    rows: list[list[str]] = []
    lines: list[int] = []

    class _Shifted:
        """The reader with file line numbers: ``line`` lines come before ``offset``."""

        @property
        def line_num(self) -> int:
            return reader.line_num + line

        def __iter__(self) -> Iterator[list[str]]:
            return iter(reader)

    shifted = _Shifted()
    with _reading(p, shifted):
        for num, fields in _records(p, shifted, len(header)):
            rows.append(fields)
            lines.append(num)
            if len(rows) == chunk_rows:
                yield header, _chunk(header, rows, lines)
                rows, lines = [], []
    if rows:
        yield header, _chunk(header, rows, lines)
    text.detach()


def _chunk(header: list[str], rows: list[list[str]], lines: list[int]) -> Chunk:
    return Chunk(ChunkColumns(header, rows), lines)  # the standard reader's fields: unstripped
