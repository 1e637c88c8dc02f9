"""The dialect of analysts' CSV exports: detection, and numbers of a locale.

Spreadsheets saved as CSV in Spanish and Portuguese locales use ``;`` as the
separator, ``,`` as the decimal mark and ``.`` to group thousands
(``2.581,5``), in cp1252 or Latin-1 rather than UTF-8; Excel's "Unicode Text"
is UTF-16 and its "CSV (Macintosh)" ends lines with a bare carriage return.
:func:`sniff` and :func:`sniff_file` find the separator, encoding and decimal
mark; :func:`read_options` and :func:`drop_extra` check every line against the
header, so that a line with a field too many (a separator inside an
unquoted value, which shifts the fields after it) is refused rather than
cut;
:class:`LocaleNumbers` turns the numbers of a decimal-comma file into the
``.`` form the rest of clrisk reads, refusing a column where ``.`` could be
either a decimal point or a thousands separator.
"""

from __future__ import annotations

import codecs
import csv
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from clrisk.exceptions import (
    ClriskWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)

__all__ = [
    "EXTRA",
    "Dialect",
    "LocaleNumbers",
    "check_sep",
    "check_unique",
    "decode",
    "drop_extra",
    "header_names",
    "read_options",
    "sniff",
    "sniff_file",
]

ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_SEPS = ",;\t|"
_HEAD_BYTES = 2**20  # the start of a file its dialect is detected on
_SCAN_BYTES = 2**24  # the block by which a whole file is checked to be UTF-8
#: Start of the names of the columns that receive fields beyond the header's.
EXTRA = "\x00clrisk:field beyond the header"
# a number written in a decimal-comma locale: digits, or digits grouped by
# thousands with ".", then an optional ",decimals"
_LOCALE_NUMBER = re.compile(r"^\s*[-+]?(?:\d+|[1-9]\d{0,2}(?:\.\d{3})+)(?:,\d+)?\s*$")
_POINT_NUMBER = re.compile(r"^\s*[-+]?(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$")
_GROUPED = re.compile(r"^\s*[-+]?[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?\s*$")


@dataclass(frozen=True)
class Dialect:
    """Separator, encoding and decimal mark of a CSV file."""

    sep: str
    encoding: str
    decimal: str


def decode(raw: bytes, encoding: str | None) -> tuple[str, str]:
    """`raw` as text, and the encoding used: the one given, else UTF-16 when
    the bytes start with its byte-order mark, else the first of UTF-8 (with
    or without BOM), cp1252 and Latin-1 that decodes them."""
    if encoding is not None:
        return raw.decode(encoding), encoding
    if raw[:2] in _UTF16_BOMS:
        return raw.decode("utf-16"), "utf-16"
    for name in ENCODINGS:
        try:
            return raw.decode(name), name
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def check_sep(sep: str | None) -> str | None:
    """A separator as given by a user: one character (``\\t`` or ``tab`` for a
    tab), or None to detect it."""
    if sep is None:
        return None
    sep = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(sep, sep)
    if not isinstance(sep, str) or len(sep) != 1:
        raise InvalidParameterError(
            f"The CSV separator must be one character (e.g. ';', ',' or '\\t' for "
            f"a tab); got {sep!r}."
        )
    return sep


def sniff(text: str, sep: str | None, encoding: str, decimal: str | None) -> Dialect:
    """The dialect of a file whose first lines are `text` (decoded with
    `encoding`); `sep` and `decimal` as given, else detected (a ``;`` file
    has decimal commas)."""
    sep = check_sep(sep)
    if sep is None:
        lines = text.lstrip("\ufeff").splitlines()
        header = lines[0] if lines else ""
        in_header = [c for c in _SEPS if c in header]
        if len(in_header) == 1:  # names hold no separator: the header's one
            sep = in_header[0]  # (decimal commas in the data cannot mislead)
        else:
            try:
                sniffed = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=_SEPS)
                sep = sniffed.delimiter
            except csv.Error:  # lines of unequal lengths: the header's
                sep = max(_SEPS, key=lambda c: (header.count(c), c == ","))
    if decimal is None:
        decimal = "," if sep == ";" else "."
    return Dialect(sep, encoding, decimal)


def sniff_file(path: Path) -> tuple[Dialect, str]:
    """The dialect of a file (as :func:`sniff`) from its first megabyte, the
    encoding checked on the whole file, and the text of its first lines."""
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
        if head[:2] in _UTF16_BOMS:  # two bytes a character: cut anywhere
            text = head.decode("utf-16", errors="ignore")
            return sniff(text, None, "utf-16", None), text
        if len(head) == _HEAD_BYTES:  # whole lines: no character cut in two
            head = head[: head.rfind(b"\n") + 1] or head
        text, encoding = decode(head, None)
        fh.seek(len(head))  # the rest, from the first byte not decoded
        if encoding == "utf-8-sig" and not _rest_is_utf8(fh):
            encoding = "cp1252"  # a character beyond the head is not UTF-8
            text = head.decode(encoding)
    return sniff(text, None, encoding, None), text


def _rest_is_utf8(fh: Any) -> bool:
    """Whether the rest of an open file decodes as UTF-8 (read in blocks)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while block := fh.read(_SCAN_BYTES):
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def header_names(text: str, sep: str, where: str) -> list[str]:
    """The column names of the header line (an empty one ``Unnamed: i``, as
    pandas names it), refusing a name given twice."""
    first = text.lstrip("\ufeff").splitlines()[:1]
    header = next(csv.reader(first, delimiter=sep), [])
    names = [h if h.strip() else f"Unnamed: {i}" for i, h in enumerate(header)]
    check_unique(names, where)
    return names


def check_unique(names: list[str], where: str) -> None:
    """Refuse a table naming one column twice: readers rename or drop the
    copy, and the wrong one would be used."""
    dup = sorted({str(n) for n in names if names.count(n) > 1})
    if dup:
        raise SchemaError(
            f"{where} has several columns named {dup}; rename the copies."
        )


def read_options(
    text: str, names: list[str], dialect: Dialect, where: str
) -> dict[str, Any]:
    """Options of ``pandas.read_csv`` for a file whose first lines are `text`
    and header `names`: codes as written (missing = empty cell only), every
    line checked against the header.

    pandas refuses a line with more fields than the first data line, but
    cuts the first data line's extra fields with only a warning: that line
    is checked here. When it ends with an empty field (a separator ending
    every line, as some exports write; or two), one column more than the
    header per such field (named from :data:`EXTRA`) takes it, and
    :func:`drop_extra` refuses a line that puts a value there.
    """
    lines = text.lstrip("\ufeff").splitlines()[1:]
    data = [line for line in lines if line.strip()][:1]  # pandas skips blank lines
    first = next(csv.reader(data, delimiter=dialect.sep), [])
    beyond = first[len(names) :]
    if any(field.strip() for field in beyond):
        raise DataValidationError(
            column="(file)",
            problem=f"the first data line has {len(first)} fields, the header "
            f"{len(names)} (a separator inside a value shifts the fields after it)",
            n_bad=1,
            examples=["row 0"],
            fix=f"Quote the values holding the separator {dialect.sep!r}, or check "
            "the separator (pass sep=, CLI: --sep). No result was produced.",
            where=where,
        )
    return {
        "sep": dialect.sep,
        "encoding": dialect.encoding,
        "header": 0,
        "names": [*names, *(f"{EXTRA} {i}" for i in range(len(beyond)))],
        "index_col": False,
        "keep_default_na": False,
        "na_values": [""],
    }


def drop_extra(table: pd.DataFrame, where: str, sep: str) -> pd.DataFrame:
    """`table` without the :data:`EXTRA` columns, refusing lines that hold a
    field there: a separator inside a value has shifted their fields.

    Parameters
    ----------
    table : DataFrame
        Read with :func:`read_options` (unchanged without :data:`EXTRA`
        columns), indexed by row number.
    where : str
        The file, for messages.
    sep : str
        The separator read.
    """
    extras = [c for c in table.columns if str(c).startswith(EXTRA)]
    if not extras:
        return table
    extra = table[extras].notna().any(axis=1).to_numpy()
    if extra.any():
        rows = table.index[extra]
        raise DataValidationError(
            column="(file)",
            problem="lines with more fields than the header (a separator inside "
            "a value shifts the fields after it)",
            n_bad=int(extra.sum()),
            examples=[f"row {r}" for r in rows[:5]],
            fix=f"Quote the values holding the separator {sep!r}, or check the "
            "separator (pass sep=, CLI: --sep). No result was produced.",
            where=where,
        )
    return table.drop(columns=extras)


@dataclass
class LocaleNumbers:
    """Rewrite the numbers of a decimal-comma table (columns of text) as
    ``.``-decimal text: ``2.581,5`` -> ``2581.5``; call it on the batches of
    one file in order.

    A column is read in the locale once a value shows it (a decimal comma,
    or ``.`` grouping thousands: ``1.234``), and with ``.`` as a decimal
    point once a value shows that (``1.5``, ``0.125``); codes without either
    mark (``05001``) are left as they are. The reading is kept for the file,
    so batches of any size give the same result, and a column showing both
    is refused, whatever batch each value is in. Thousands separators
    removed are reported once per column with a :class:`ClriskWarning`.

    With `guessed` (the decimal comma was only inferred from a ``;``
    separator), a column whose only mark is ``.`` before three digits
    (``5.394``) is refused when other columns show ``.`` as a decimal point
    (``13.45``) and none shows a decimal comma: the file may be a
    ``.``-decimal export (pandas' ``to_csv(sep=";")``), and only the user
    knows whether ``5.394`` is 5394 or 5.394.
    """

    where: str
    guessed: bool = False
    #: column -> read in the locale (True) or with "." as decimal point
    locale: dict[str, bool] = field(default_factory=dict)
    #: the file has shown a decimal comma; its first "." decimal point
    #: (column, value); columns whose only mark is "." before three digits
    seen_comma: bool = False
    seen_point: tuple[str, str] | None = None
    grouped_only: dict[str, str] = field(default_factory=dict)
    _warned: set[str] = field(default_factory=set)

    def __call__(self, table: pd.DataFrame, codes: Sequence[str] = ()) -> None:
        """Rewrite `table` (indexed by row number in the file) in place,
        leaving its columns of `codes` (territory codes such as ``11.001``)
        as they are."""
        marks = {}  # what each column shows: gathered before any decision
        for col in table.columns:
            if col in codes:
                continue
            text = table[col]
            if not pd.api.types.is_string_dtype(text.dtype):
                continue
            values = text.dropna()
            if not values.str.contains(r"[.,]").any():
                continue
            number = values.str.match(_LOCALE_NUMBER)
            grouped = values.str.match(_GROUPED)
            comma = number & values.str.contains(",", regex=False)
            # a number with a decimal point (not text such as "s.d.": that
            # is left as it is, for the numeric check to refuse by row)
            point = values.str.match(_POINT_NUMBER) & ~grouped
            marks[str(col)] = (col, values, grouped, comma, point)
            self._evidence(str(col), values, comma, point, grouped)
        self._check_file()
        grouped_now: list[str] = []
        for name, (col, values, grouped, comma, point) in marks.items():
            text = table[col]
            shows_locale = comma | grouped
            before = self.locale.get(name)
            if (point.any() and (shows_locale.any() or before is True)) or (
                shows_locale.any() and before is False
            ):
                self._refuse(name, values, point if point.any() else shows_locale)
            if shows_locale.any():
                self.locale[name] = True
            elif point.any():
                self.locale[name] = False
            if self.locale.get(name):
                match = text.str.match(_LOCALE_NUMBER).fillna(False).astype(bool)
                local = text.str.replace(".", "", regex=False).str.replace(
                    ",", ".", regex=False
                )
                table[col] = local.where(match, text)
                if grouped.any() and name not in self._warned:
                    self._warned.add(name)
                    grouped_now.append(f"'{col}' (e.g. {values[grouped].iloc[0]!r})")
        if grouped_now:
            warnings.warn(
                f"{self.where} has decimal commas, so '.' in "
                f"{', '.join(grouped_now)} was read as a thousands separator "
                "('2.581' = 2581); if it is a decimal point, read the file with "
                "clrisk.io.read_table(path, decimal='.') (CLI: --decimal .).",
                ClriskWarning,
                stacklevel=3,
            )

    def _evidence(
        self,
        col: str,
        values: pd.Series,
        comma: pd.Series,
        point: pd.Series,
        grouped: pd.Series,
    ) -> None:
        """Keep what the file shows of its decimal mark."""
        if comma.any():
            self.seen_comma = True
        decimal_point = point & values.str.match(r"^\s*[-+]?\d*\.\d+\s*$")
        if decimal_point.any() and self.seen_point is None:
            self.seen_point = (col, str(values[decimal_point].iloc[0]))
        if grouped.any() and not comma.any() and not point.any():
            self.grouped_only.setdefault(col, str(values[grouped].iloc[0]))

    def _check_file(self) -> None:
        """Refuse a column read only by '.' before three digits when the rest
        of a file whose mark was guessed shows '.' as a decimal point and no
        decimal comma (judged on every column seen so far)."""
        point_at = self.seen_point
        if not self.guessed or self.seen_comma or point_at is None:
            return
        doubtful = {c: v for c, v in self.grouped_only.items() if c != point_at[0]}
        if doubtful:
            name, example = next(iter(doubtful.items()))
            p_col, p_value = point_at
            others = [c for c in doubtful if c != name]
            also = f" (and in {others})" if others else ""
            raise DataValidationError(
                column=name,
                problem=f"'.' could group thousands here{also} (e.g. {example!r}) "
                f"but is a decimal point in '{p_col}' (e.g. {p_value!r}), and no "
                "value has a decimal comma",
                n_bad=0,  # a question about the whole file, not about rows
                fix="State the decimal mark of the file: clrisk.io.read_table(path, "
                "decimal='.') if '.' is the decimal point (CLI: --decimal .), or "
                "decimal=',' if it groups thousands (CLI: --decimal ,).",
                where=self.where,
            )

    def _refuse(self, col: str, values: pd.Series, bad: pd.Series) -> None:
        rows = [int(i) for i in values.index[bad][:3]]
        raise DataValidationError(
            column=col,
            problem="'.' read both as a thousands separator or beside decimal "
            "commas (e.g. '1.234', '1,5') and as a decimal point (e.g. '1.5'); "
            f"here {values[bad].iloc[0]!r}, rows {rows}",
            n_bad=int(bad.sum()),
            fix="Write the column with one decimal mark: re-export it with ',' "
            "decimals and no thousands separators (or, if '.' is the decimal "
            "point throughout, read the file with clrisk.io.read_table(path, "
            "decimal='.'); CLI: --decimal .).",
            where=self.where,
        )
