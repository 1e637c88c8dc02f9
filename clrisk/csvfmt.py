"""The dialect of analysts' CSV exports: detection, and numbers of a locale.

Spreadsheets saved as CSV in Spanish and Portuguese locales use ``;`` as the
separator, ``,`` as the decimal mark and ``.`` to group thousands
(``2.581,5``), in cp1252 or Latin-1 rather than UTF-8; Excel's "Unicode Text"
is UTF-16 and its "CSV (Macintosh)" ends lines with a bare carriage return.
:func:`sniff` finds the separator, encoding and decimal mark;
:func:`locale_numbers` turns the numbers of a decimal-comma file into the
``.`` form the rest of clrisk reads, refusing a column where ``.`` could be
either a decimal point or a thousands separator.
"""

from __future__ import annotations

import codecs
import csv
import re
import warnings
from dataclasses import dataclass

import pandas as pd

from clrisk.exceptions import ClriskWarning, DataValidationError, SchemaError

__all__ = [
    "Dialect",
    "check_header",
    "check_unique",
    "decode",
    "locale_numbers",
    "sniff",
]

ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_SEPS = ",;\t|"
# a number written in a decimal-comma locale: digits, or digits grouped by
# thousands with ".", then an optional ",decimals"
_LOCALE_NUMBER = re.compile(r"^\s*[-+]?(?:\d+|[1-9]\d{0,2}(?:\.\d{3})+)(?:,\d+)?\s*$")
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


def sniff(text: str, sep: str | None, encoding: str, decimal: str | None) -> Dialect:
    """The dialect of a file whose first lines are `text` (decoded with
    `encoding`); `sep` and `decimal` as given, else detected (a ``;`` file
    has decimal commas)."""
    if sep is None:
        lines = text.splitlines()
        try:
            sep = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=_SEPS).delimiter
        except csv.Error:  # lines of unequal lengths: the header's separator
            header = lines[0] if lines else ""
            sep = max(_SEPS, key=lambda c: (header.count(c), c == ","))
    if decimal is None:
        decimal = "," if sep == ";" else "."
    return Dialect(sep, encoding, decimal)


def check_header(text: str, sep: str, where: str) -> None:
    """Refuse a header naming one column twice (see :func:`check_unique`),
    and a first data line with more (non-empty) fields than the header.

    pandas reads a separator ending every data line as an empty last field
    (``index_col=False``), cuts a first line's extra fields with only a
    warning, and refuses extra fields on any later line.
    """
    rows = csv.reader(text.lstrip("\ufeff").splitlines()[:50], delimiter=sep)
    header = next(rows, [])
    check_unique(header, where)
    first = next(rows, [])
    if any(field.strip() for field in first[len(header) :]):
        raise DataValidationError(
            column="(file)",
            problem=f"the first data line has {len(first)} fields, the header "
            f"{len(header)}",
            n_bad=1,
            examples=["row 0"],
            fix=f"Check the separator (read as {sep!r}; pass sep=, CLI: --sep) and "
            "the quoting of values holding it.",
            where=where,
        )


def check_unique(names: list[str], where: str) -> None:
    """Refuse a table naming one column twice: readers rename or drop the
    copy, and the wrong one would be used."""
    dup = sorted({str(n) for n in names if names.count(n) > 1})
    if dup:
        raise SchemaError(
            f"{where} has several columns named {dup}; rename the copies."
        )


def locale_numbers(table: pd.DataFrame, where: str) -> None:
    """Rewrite in place the numbers of a decimal-comma table (columns of
    text) as ``.``-decimal text: ``2.581,5`` -> ``2581.5``.

    A column is rewritten when every value is such a number and one has a
    ``,`` or a thousands ``.``; codes without either (``05001``) are left as
    they are. Thousands separators removed are reported with a
    :class:`ClriskWarning`. A column holding both grouped values
    (``1.234``) and other values with a ``.`` (``1.5``) is refused: its
    ``.`` means two things.

    Parameters
    ----------
    table : DataFrame of text columns
        Indexed by row number in the file (for messages).
    where : str
        The file, for messages.
    """
    grouped_columns: list[str] = []
    for col in table.columns:
        values = table[col]
        if not pd.api.types.is_string_dtype(values.dtype):
            continue
        values = values.dropna()
        marked = values.str.contains(r"[.,]", regex=True)
        if not len(values) or not marked.any():
            continue
        number = values.str.match(_LOCALE_NUMBER)
        grouped = values.str.match(_GROUPED)
        if number.all():
            table[col] = (
                table[col]
                .str.replace(".", "", regex=False)
                .str.replace(",", ".", regex=False)
            )
            if grouped.any():
                grouped_columns.append(f"'{col}' (e.g. {values[grouped].iloc[0]!r})")
            continue
        other = values.str.contains(".", regex=False) & ~grouped
        if grouped.any() and other.any():
            rows = [int(i) for i in values.index[other][:3]]
            raise DataValidationError(
                column=str(col),
                problem="values with '.' as thousands separator (e.g. "
                f"{values[grouped].iloc[0]!r}) and others where '.' cannot be "
                f"one (e.g. {values[other].iloc[0]!r}, rows {rows})",
                n_bad=int(other.sum()),
                fix="Write the column with one decimal mark: re-export it with "
                "',' decimals and no thousands separators (or, if '.' is the "
                "decimal point throughout, read the file with "
                "clrisk.read_table(path, decimal='.'); CLI: --decimal .).",
                where=where,
            )
    if grouped_columns:
        warnings.warn(
            f"{where} has decimal commas, so '.' in {', '.join(grouped_columns)} "
            "was read as a thousands separator ('2.581' = 2581); if it is a "
            "decimal point, read the file with clrisk.read_table(path, "
            "decimal='.') (CLI: --decimal .).",
            ClriskWarning,
            stacklevel=3,
        )
