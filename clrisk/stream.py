"""Reading a projection frame from a file in batches, in bounded memory.

:func:`open_frame` turns a path (Parquet, Arrow IPC / Feather, CSV) or a
``pyarrow.dataset.Dataset`` into a :class:`FrameSource`: its column names, and
an iterator of ``(row offset, pandas DataFrame)`` batches holding only the
columns asked for. Memory is bounded by the batch size, not the file size:

- Parquet is read row group by row group with ``pre_buffer=False`` (pyarrow
  otherwise buffers whole column chunks of the file ahead), memory-mapped,
  the pages of the row groups already read handed back to the operating
  system (resident memory holds about one row group of the file); text code
  columns (territory, region, text category codes) are read as dictionaries,
  so each distinct code is decoded once per row group and coded once per
  batch, not once per row;
- Arrow IPC files are memory-mapped and read one record batch at a time;
- CSV is read with pandas in chunks; code columns are read as text, so
  territory codes keep their leading zeros.

:func:`read_ahead` reads the next batch in a background thread while the
caller scores the current one (decoding releases the GIL).

A file that cannot be read — truncated, corrupt, or a batch whose column type
differs from the rest — raises :class:`~clrisk.exceptions.DataValidationError`
naming the file and the row range; the caller gets no partial result. A
Parquet or Arrow file must not be rewritten while it is read: it is
memory-mapped, and one cut short in the middle of a batch stops the process
(between batches, a Parquet file cut short is refused with that error).
"""

from __future__ import annotations

import bisect
import itertools
import mmap
import queue
import threading
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from clrisk.csvfmt import (
    LocaleNumbers,
    check_unique,
    drop_extra,
    header_names,
    read_options,
    sniff,
    sniff_file,
)
from clrisk.exceptions import (
    ClriskError,
    ClriskWarning,
    DataValidationError,
    InvalidParameterError,
)

__all__ = ["FrameSource", "is_file_source", "open_frame", "read_ahead"]

PARQUET = (".parquet", ".pq", ".parq")
ARROW = (".arrow", ".feather", ".ipc")
CSV = (".csv", ".txt", ".tsv")


@dataclass(frozen=True)
class FrameSource:
    """A frame on disk, read in batches.

    Attributes
    ----------
    name : str
        The file (or dataset) name, for messages.
    columns : list of str
        All columns of the frame.
    batches : callable
        ``batches(columns, batch_size, text_columns)`` yields ``(row offset,
        DataFrame)``; `text_columns` are read as text where the format does
        not say (CSV), so codes keep their leading zeros.
    """

    name: str
    columns: list[str]
    batches: Callable[
        [Sequence[str], int, Sequence[str]], Iterator[tuple[int, pd.DataFrame]]
    ]


def is_file_source(frame: Any) -> bool:
    """Whether `frame` is a path or a pyarrow dataset (rather than tables)."""
    if isinstance(frame, str | Path):
        return True
    return type(frame).__module__.startswith("pyarrow") and hasattr(frame, "to_batches")


def open_frame(frame: str | Path | Any, *, sep: str | None = None) -> FrameSource:
    """Open a frame file or pyarrow dataset for batch reading.

    Parameters
    ----------
    frame : str, Path, pyarrow.dataset.Dataset or pyarrow.Table
    sep : str, optional
        CSV field separator (detected by default, as are the encoding and a
        decimal comma: see :mod:`clrisk.csvfmt`).

    Returns
    -------
    FrameSource
    """
    if not isinstance(frame, str | Path):
        import pyarrow as pa

        if isinstance(frame, pa.Table):
            return _arrow_table(frame)
        return _dataset(frame, str(getattr(frame, "files", ["dataset"])[:1]))
    path = Path(frame)
    if not path.exists():
        raise InvalidParameterError(f"The frame file '{path}' does not exist.")
    suffix = path.suffix.lower()
    if path.is_dir():
        ds = _pyarrow("dataset", path)
        return _dataset(ds.dataset(str(path), format="parquet"), str(path))
    if suffix in PARQUET:
        return _parquet(path)
    if suffix in ARROW:
        return _arrow(path)
    if suffix in CSV:
        return _csv(path, "\t" if suffix == ".tsv" else sep)
    raise InvalidParameterError(
        f"Cannot tell the format of '{path}' from its extension '{suffix}': use "
        f"one of {', '.join(PARQUET + ARROW + CSV)}."
    )


def read_ahead(batches: Iterator[Any], depth: int = 1) -> Generator[Any, None, None]:
    """The items of `batches`, each read in a background thread while the
    caller works on the one before.

    Reading and decoding (pyarrow, pandas' CSV parser) release the GIL, so
    the next batch is decoded while the current one is coded and scored. At
    most `depth` batches wait, plus one being read, beyond the one in use
    (memory stays bounded). An error raised while reading is raised here, at
    the batch where it happened; when the caller closes this iterator (or
    stops early), the reader stops too.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(("batch", batch)):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            put(("error", exc))
            return
        put(("end", None))

    reader = threading.Thread(target=produce, name="clrisk-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            kind, item = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


# --------------------------------------------------------------------- formats
def _pyarrow(module: str, path: Path | str) -> Any:
    try:
        if module == "parquet":
            import pyarrow.parquet as mod
        elif module == "ipc":
            import pyarrow.ipc as mod
        else:
            import pyarrow.dataset as mod
    except ImportError:  # pragma: no cover - pyarrow is a test dependency
        raise InvalidParameterError(
            f"Reading '{path}' needs pyarrow: pip install \"clrisk[arrow]\"."
        ) from None
    return mod


def _unreadable(path: Path | str, start: int, stop: int | None, exc: Exception) -> Any:
    rows = f"rows {start:,}-{stop:,}" if stop is not None else f"rows from {start:,}"
    return DataValidationError(
        column="(file)",
        problem=f"the file cannot be read ({type(exc).__name__}: "
        f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})",
        n_bad=0,
        fix="The file may be truncated, corrupt or mixed in its column types; "
        "re-export it. No result was produced from it.",
        where=f"'{path}', {rows}",
    )


def _parquet(path: Path) -> FrameSource:
    pq = _pyarrow("parquet", path)
    try:
        meta = pq.ParquetFile(path, pre_buffer=False)
        names = list(meta.schema_arrow.names)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise _unreadable(path, 0, None, exc) from None
    check_unique(names, f"'{path}'")

    def batches(
        columns: Sequence[str], size: int, text_columns: Sequence[str] = ()
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        offset = 0
        schema = meta.schema_arrow
        text = [c for c in text_columns if c in columns and _is_text(schema, c)]
        mapping = _Mapping.open(path)
        source = path if mapping is None else mapping.reader()
        try:  # the file may have changed since it was opened
            reader = pq.ParquetFile(source, pre_buffer=False, read_dictionary=text)
            done = _row_group_starts(reader.metadata)
        except Exception as exc:
            raise _unreadable(path, 0, None, exc) from None
        it = reader.iter_batches(batch_size=size, columns=list(columns))
        while True:
            if mapping is not None:
                mapping.check(path, offset)
            try:
                batch = next(it)
            except StopIteration:
                return
            except Exception as exc:
                raise _unreadable(path, offset, None, exc) from None
            yield offset, _to_pandas(batch)
            offset += batch.num_rows
            if mapping is not None:  # the row groups read: out of memory
                mapping.release(done(offset))

    return FrameSource(str(path), names, batches)


class _Mapping:
    """A file mapped read-only into memory, for pyarrow to read without
    copying it (copying column chunks from the file costs about 15% of a
    Parquet read's CPU time), whose pages already read are handed back so
    that resident memory stays at about one row group, not the file.

    Handing pages back (``madvise(MADV_DONTNEED)`` on a shared file mapping)
    loses nothing: a page touched again is read again from the page cache.
    A file cut short by another program while it is read is refused between
    batches (:meth:`check`); cut short while pyarrow decodes a batch, it
    stops the process, as any memory-mapped read does.
    """

    def __init__(self, data: mmap.mmap) -> None:
        self._map = data

    @classmethod
    def open(cls, path: Path) -> _Mapping | None:
        """The mapped file; None where mapping is not possible (an empty
        file, a platform without ``madvise``): the file is then read."""
        if not hasattr(mmap.mmap, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return None  # pragma: no cover - Windows
        try:
            with open(path, "rb") as fh:
                return cls(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
        except (OSError, ValueError):  # empty file, special file: read it
            return None

    def reader(self) -> Any:
        """The mapped bytes as a pyarrow file (no copy)."""
        import pyarrow as pa

        return pa.BufferReader(pa.py_buffer(self._map))

    def check(self, path: Path, offset: int) -> None:
        """Refuse to read on when the file has been cut short since it was
        mapped (reading a page beyond its end would stop the process)."""
        if self._map.size() < len(self._map):
            raise DataValidationError(
                column="(file)",
                problem="the file was cut short while it was read (another "
                "program rewrote it)",
                n_bad=0,
                fix="Read it again once it is written; no result was produced from it.",
                where=f"'{path}', rows from {offset:,}",
            )

    def release(self, stop: int) -> None:
        """Drop the pages wholly before byte `stop` from resident memory."""
        stop = min(stop, len(self._map))
        stop -= stop % mmap.PAGESIZE
        if stop > 0:
            self._map.madvise(mmap.MADV_DONTNEED, 0, stop)


def _row_group_starts(meta: Any) -> Callable[[int], int]:
    """For a Parquet file's metadata, a function of the number of rows read
    (from the start): the byte offset before which the file holds only row
    groups already read."""
    ends, starts = [], []
    rows = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        rows += group.num_rows
        ends.append(rows)
        chunks = [group.column(j) for j in range(group.num_columns)]
        starts.append(
            min(
                c.dictionary_page_offset
                if c.has_dictionary_page
                else c.data_page_offset
                for c in chunks
            )
            if chunks
            else 0
        )
    # the first byte of any row group not wholly read (a suffix minimum)
    later: list[int] = [*itertools.accumulate(reversed(starts), min)][::-1]
    later.append(2**62)

    def done(read: int) -> int:
        return later[bisect.bisect_right(ends, read)]

    return done


def _is_text(schema: Any, column: str) -> bool:
    import pyarrow as pa

    kind = schema.field(column).type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _to_pandas(batch: Any) -> pd.DataFrame:
    """A record batch as a DataFrame, one block per column (no consolidating
    copy: the coding reads the columns one by one). Dictionary columns become
    pandas categoricals."""
    return batch.to_pandas(split_blocks=True)


def _arrow(path: Path) -> FrameSource:
    ipc = _pyarrow("ipc", path)
    import pyarrow as pa

    with open(path, "rb") as fh:
        legacy = fh.read(4) == b"FEA1"
    if legacy:  # Feather version 1 has no record batches: it is read whole
        from pyarrow import feather

        warnings.warn(
            f"'{path}' is a Feather version 1 file, which cannot be read in "
            "batches: it is read whole into memory. Rewrite it as Feather "
            "version 2 (Arrow IPC) or Parquet to stream it.",
            ClriskWarning,
            stacklevel=4,
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # pyarrow >= 25
                table = feather.read_table(str(path))
        except Exception as exc:
            raise _unreadable(path, 0, None, exc) from None
        return _arrow_table(table, f"'{path}'")

    try:
        source = pa.memory_map(str(path), "r")
        reader = ipc.open_file(source)
    except Exception as exc:
        try:  # an IPC *stream* (not file) is read sequentially
            source = pa.memory_map(str(path), "r")
            stream = ipc.open_stream(source)
        except Exception:
            raise _unreadable(path, 0, None, exc) from None
        names = list(stream.schema.names)
        check_unique(names, f"'{path}'")
        return _arrow_stream(path, names)
    names = list(reader.schema.names)
    check_unique(names, f"'{path}'")

    def batches(
        columns: Sequence[str], size: int, text_columns: Sequence[str] = ()
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        offset = 0
        file = ipc.open_file(pa.memory_map(str(path), "r"))
        for i in range(file.num_record_batches):
            try:
                rb = file.get_batch(i).select(list(columns))
            except Exception as exc:
                raise _unreadable(path, offset, None, exc) from None
            for start in range(0, max(rb.num_rows, 1), size):
                part = rb.slice(start, size)
                yield offset + start, _to_pandas(part)
            offset += rb.num_rows

    return FrameSource(str(path), names, batches)


def _arrow_stream(path: Path, names: list[str]) -> FrameSource:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    def batches(
        columns: Sequence[str], size: int, text_columns: Sequence[str] = ()
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        offset = 0
        reader = ipc.open_stream(pa.memory_map(str(path), "r"))
        while True:
            try:
                rb = reader.read_next_batch()
            except StopIteration:
                return
            except Exception as exc:
                raise _unreadable(path, offset, None, exc) from None
            rb = rb.select(list(columns))
            for start in range(0, max(rb.num_rows, 1), size):
                yield offset + start, _to_pandas(rb.slice(start, size))
            offset += rb.num_rows

    return FrameSource(str(path), names, batches)


def _csv(path: Path, sep: str | None) -> FrameSource:
    """A CSV file in batches, with the detection of :func:`clrisk.io.read_table`
    (separator, encoding, decimal comma: :func:`clrisk.csvfmt.sniff_file`)."""
    where = f"'{path}'"
    try:
        dialect, text = sniff_file(path)
        if sep is not None:  # and the decimal mark that goes with it
            dialect = sniff(text, sep, dialect.encoding, None)
        names = header_names(text, dialect.sep, where)
    except ClriskError:
        raise
    except Exception as exc:
        raise _unreadable(path, 0, None, exc) from None
    comma = dialect.decimal == ","

    options = read_options(text, names, dialect, where)

    def batches(
        columns: Sequence[str], size: int, text_columns: Sequence[str] = ()
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        # codes as text; with decimal commas, numbers too (rewritten below).
        # Every column is read (not usecols, which cuts a line's extra
        # fields silently); the others with their inferred types (numbers
        # are parsed without making a Python string of each value)
        as_text = columns if comma else [c for c in text_columns if c in columns]
        numbers = LocaleNumbers(where, guessed=True)  # from the separator
        offset = 0
        try:
            reader = pd.read_csv(
                path,
                dtype={c: str for c in as_text},
                chunksize=size,
                low_memory=False,  # each batch's types inferred on the whole batch
                **options,
            )
            with reader:
                for chunk in reader:
                    chunk.index = pd.RangeIndex(offset, offset + len(chunk))
                    chunk = drop_extra(chunk, where, dialect.sep)[list(columns)]
                    if comma:
                        numbers(chunk, codes=text_columns)
                    yield offset, chunk
                    offset += len(chunk)
        except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            if isinstance(exc, ClriskError):
                raise
            raise _unreadable(path, offset, offset + size, exc) from None

    return FrameSource(str(path), names, batches)


def _arrow_table(table: Any, name: str = "the Arrow table") -> FrameSource:
    """A pyarrow Table in memory, in batches."""
    names = list(table.schema.names)
    check_unique(names, name)

    def batches(
        columns: Sequence[str], size: int, text_columns: Sequence[str] = ()
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        offset = 0
        for start in range(0, table.num_rows, size):
            part = table.slice(start, size).select(list(columns))
            yield offset, _to_pandas(part)
            offset += part.num_rows

    return FrameSource(name, names, batches)


def _dataset(ds: Any, name: str) -> FrameSource:
    names = list(ds.schema.names)
    check_unique(names, f"'{name}'")

    def batches(
        columns: Sequence[str], size: int, text_columns: Sequence[str] = ()
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        _check_fragment_types(ds, columns, name)
        offset = 0
        it = ds.to_batches(columns=list(columns), batch_size=size)
        while True:
            try:
                rb = next(it)
            except StopIteration:
                return
            except Exception as exc:
                raise _unreadable(name, offset, None, exc) from None
            yield offset, _to_pandas(rb)
            offset += rb.num_rows

    return FrameSource(name, names, batches)


def _check_fragment_types(ds: Any, columns: Sequence[str], name: str) -> None:
    """Refuse a dataset whose files disagree on a column's type.

    pyarrow would cast each file to the first file's schema, turning e.g. an
    integer territory code 5001 into the text "5001" (the leading zero of
    "05001" already lost): better to say which file differs.
    """
    if not hasattr(ds, "get_fragments"):
        return
    expected = {c: ds.schema.field(c).type for c in columns if c in ds.schema.names}
    for fragment in ds.get_fragments():
        schema = fragment.physical_schema
        for column, kind in expected.items():
            if column in schema.names and schema.field(column).type != kind:
                raise DataValidationError(
                    column=column,
                    problem=f"type {schema.field(column).type} in file "
                    f"'{fragment.path}', but {kind} in the first file",
                    n_bad=0,
                    fix="Write every file with the same column types (codes as "
                    "text); no result was produced.",
                    where=f"'{name}'",
                )
