"""Reading analysts' tables and writing results.

:func:`read_table` reads a whole table (a survey, an indicator table, a risk
table) from CSV, Excel, Parquet, Arrow/Feather or Stata, and reports what it
detected. Every column is read as it is written in the file, as text where the
format leaves it open (CSV, and code columns of Excel), so territory and
household codes keep their leading zeros; numbers in text columns are
converted later by the feature coding, which names any value that is not a
number. CSV detection covers the usual exports of Spanish and Portuguese
locales: separators ``,`` ``;`` tab ``|``, UTF-8 with or without BOM, and
Latin-1/cp1252; a decimal comma (``3,5``) is recognised in ``;``-separated
files and converted where a whole column is numeric that way.
:func:`write_table` writes CSV (UTF-8 with BOM, which Excel opens correctly)
or Parquet.
"""

from __future__ import annotations

import csv
import json
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clrisk.csvfmt import (
    LocaleNumbers,
    check_unique,
    decode,
    drop_extra,
    header_names,
    read_options,
    sniff,
)
from clrisk.exceptions import (
    ClriskError,
    CoverageWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)

__all__ = ["ReadInfo", "read_table", "write_geojson", "write_table"]


@dataclass(frozen=True)
class ReadInfo:
    """What :func:`read_table` detected (for the user to check).

    Attributes
    ----------
    path : str
    format : str
    rows, columns : int
    encoding, separator, decimal : str or None
        CSV settings (None for other formats).
    sheet : str or None
        The Excel sheet read.
    """

    path: str
    format: str
    rows: int
    columns: int
    encoding: str | None = None
    separator: str | None = None
    decimal: str | None = None
    sheet: str | None = None

    def summary(self) -> str:
        """One line for printing."""
        extra = [
            f"{k} {v!r}"
            for k, v in (
                ("encoding", self.encoding),
                ("separator", self.separator),
                ("decimal", self.decimal),
                ("sheet", self.sheet),
            )
            if v is not None
        ]
        return (
            f"read {self.path}: {self.format}, {self.rows:,} rows x {self.columns} "
            f"columns" + (f" ({', '.join(extra)})" if extra else "")
        )


def read_table(
    path: str | Path,
    *,
    sep: str | None = None,
    encoding: str | None = None,
    decimal: str | None = None,
    sheet: str | int | None = None,
    codes: Sequence[str] = (),
) -> tuple[pd.DataFrame, ReadInfo]:
    """Read a whole table, detecting the format's settings.

    Parameters
    ----------
    path : str or Path
    sep, encoding, decimal : str, optional
        CSV settings; detected when not given.
    sheet : str or int, optional
        Excel sheet by name or index (default: the first); a number that is
        the name of a sheet (``2018``) names it.
    codes : sequence of str, optional
        Columns holding codes (territory, category, stratum): in a
        decimal-comma CSV file they are kept exactly as written (``11.001``
        stays ``11.001``), not read as locale numbers — as
        :func:`clrisk.predict` keeps them when it streams a CSV path.

    Returns
    -------
    table : DataFrame
        With ``table.attrs["path"]``: errors found in it later (e.g. by
        :func:`clrisk.predict`) name the file.
    info : ReadInfo
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(f"The file '{path}' does not exist.")
    try:
        table, info = _read(path, sep, encoding, decimal, sheet, codes)
        table.attrs["path"] = str(path)  # for messages naming the file
        table.attrs["rows"] = len(table)  # ... while its rows are the file's
        return table, info
    except ClriskError:  # already clear (and a ValueError: let it through)
        raise
    except ImportError as exc:  # an optional reader (pyarrow, openpyxl) missing
        raise InvalidParameterError(
            f"Reading '{path}' needs a package that is not installed ({exc}): "
            'pip install "clrisk[arrow]" for Parquet/Feather, "clrisk[excel]" for '
            "Excel."
        ) from None
    except _UNREADABLE as exc:  # the readers of pandas, pyarrow, openpyxl
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataValidationError(
            column="(file)",
            problem=f"the file cannot be read as {path.suffix or 'a table'} "
            f"({type(exc).__name__}: {detail})",
            n_bad=0,
            fix="Check that the file is complete and of the type its extension "
            "says; re-export it if needed.",
            where=f"'{path}'",
        ) from None


# what third-party readers raise for a damaged or mislabelled file
_UNREADABLE = (
    csv.Error,
    LookupError,  # an unknown encoding name
    ValueError,
    OSError,
    UnicodeError,
    EOFError,
    KeyError,
    IndexError,
    TypeError,
    zipfile.BadZipFile,
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
)


def _read(
    path: Path,
    sep: str | None,
    encoding: str | None,
    decimal: str | None,
    sheet: str | int | None,
    codes: Sequence[str],
) -> tuple[pd.DataFrame, ReadInfo]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv(path, sep, encoding, decimal, codes)
    if suffix in (".xlsx", ".xlsm"):
        return _read_excel(path, sheet)
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        check_unique(list(pq.read_schema(path).names), f"'{path}'")
        table = pd.read_parquet(path)
        return table, ReadInfo(str(path), "parquet", len(table), table.shape[1])
    if suffix in (".feather", ".arrow"):
        table = pd.read_feather(path)
        return table, ReadInfo(str(path), "arrow", len(table), table.shape[1])
    if suffix == ".dta":
        table = pd.read_stata(path, convert_categoricals=False)
        return table, ReadInfo(str(path), "stata", len(table), table.shape[1])
    raise InvalidParameterError(
        f"Cannot tell the format of '{path}' from its extension '{suffix}': use "
        ".csv, .xlsx, .parquet, .feather or .dta."
    )


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a result table as CSV (UTF-8 with BOM) or Parquet, by extension.

    In CSV, text starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return is prefixed with ``'`` so that a spreadsheet shows it as text and
    never runs it as a formula (numbers are untouched).
    """
    path = writable(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        _text_safe(table).to_csv(path, index=False, encoding="utf-8-sig")
    elif suffix in (".parquet", ".pq"):
        table.to_parquet(path, index=False)
    else:
        raise InvalidParameterError(
            f"Cannot write '{path}': use a .csv or .parquet file name."
        )
    return path


def writable(path: str | Path) -> Path:
    """`path` as a Path, after checking that its folder exists."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InvalidParameterError(
            f"Cannot write '{path}': the folder '{path.parent}' does not exist."
        )
    if path.is_dir():
        raise InvalidParameterError(f"Cannot write '{path}': it is a folder.")
    return path


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would read as formulas, quoted."""
    out = table
    for col in table.columns:
        values = table[col]
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(
            values.dtype
        ):
            continue
        text = values.astype("string")
        risky = text.str.startswith(_FORMULA_START).fillna(False).to_numpy(dtype=bool)
        if risky.any():
            out = out.copy() if out is table else out
            out[col] = values.astype(object).where(~risky, "'" + text)
    return out


def write_geojson(
    table: pd.DataFrame,
    boundaries: str | Path,
    key: str,
    path: str | Path,
    *,
    territory: str = "territory",
) -> Path:
    """Write `boundaries` (GeoJSON) with the rows of `table` joined by code.

    Each feature keeps its geometry and properties and gains the columns of
    the row whose `territory` equals its `key` property (compared as text);
    numbers stay numbers, missing values become null. Features without a row,
    and rows without a feature, are reported with a
    :class:`~clrisk.exceptions.CoverageWarning` — never dropped silently.

    Parameters
    ----------
    table : DataFrame
        E.g. ``TerritoryRisk.table``.
    boundaries : str or Path
        A GeoJSON FeatureCollection.
    key : str
        The feature property holding the territory code.
    path : str or Path
        The GeoJSON file to write.
    territory : str
        The code column of `table`.

    Returns
    -------
    Path
    """
    src = Path(boundaries)
    try:
        data = json.loads(src.read_text(encoding="utf-8-sig"))
        features = data["features"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SchemaError(
            f"'{src}' is not a readable GeoJSON FeatureCollection ({exc})."
        ) from None
    rows = {str(r[territory]): r for r in table.to_dict(orient="records")}
    seen = set()
    for i, feat in enumerate(features):
        props = feat.get("properties") or {}
        if key not in props:
            raise SchemaError(
                f"Feature {i} of '{src}' has no property {key!r}.",
                expected=[key],
                received=sorted(props),
            )
        code = str(props[key])
        seen.add(code)
        row = rows.get(code, {})
        for col in table.columns:
            if col != territory:
                props[str(col)] = _json_value(row.get(col))
        feat["properties"] = props
    unmatched_rows = sorted(set(rows) - seen)
    unmatched_features = sorted(seen - set(rows))
    if unmatched_rows or unmatched_features:
        warnings.warn(
            f"Joining to '{src}': {len(unmatched_rows)} territories have no boundary "
            f"(e.g. {unmatched_rows[:5]}); {len(unmatched_features)} boundaries have "
            f"no row (e.g. {unmatched_features[:5]}), written with null values.",
            CoverageWarning,
            stacklevel=2,
        )
    out = Path(path)
    out.write_text(
        json.dumps(data, ensure_ascii=False, allow_nan=False), encoding="utf-8"
    )
    return out


def _json_value(value: object) -> object:
    """A JSON-ready scalar: numpy scalars to Python, NaN/NA to None."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    item = value.item() if hasattr(value, "item") else value
    if isinstance(item, float) and not np.isfinite(item):
        return None
    return item


# --------------------------------------------------------------------- private
def _read_csv(
    path: Path,
    sep: str | None,
    encoding: str | None,
    decimal: str | None,
    codes: Sequence[str] = (),
) -> tuple[pd.DataFrame, ReadInfo]:
    text, encoding = decode(path.read_bytes(), encoding)
    dialect = sniff(text, sep, encoding, decimal)
    where = f"'{path}'"
    names = header_names(text, dialect.sep, where)
    table = pd.read_csv(path, dtype=str, **read_options(text, names, dialect, where))
    table = drop_extra(table, where, dialect.sep)
    if dialect.decimal == ",":
        LocaleNumbers(where, guessed=decimal is None)(table, codes=codes)
    info = ReadInfo(
        str(path),
        "csv",
        len(table),
        table.shape[1],
        dialect.encoding,
        dialect.sep,
        dialect.decimal,
    )
    return table, info


def _read_excel(path: Path, sheet: str | int | None) -> tuple[pd.DataFrame, ReadInfo]:
    try:
        import openpyxl  # noqa: F401 - pandas' engine for .xlsx
    except ImportError:
        raise InvalidParameterError(
            f"Reading '{path}' needs openpyxl: pip install \"clrisk[excel]\"."
        ) from None
    with pd.ExcelFile(path, engine="openpyxl") as book:
        names = book.sheet_names
        chosen = names[0] if sheet is None else sheet
        if isinstance(chosen, int) and str(chosen) in names:  # a sheet "2018"
            chosen = str(chosen)
        if isinstance(chosen, int):
            if not 0 <= chosen < len(names):
                raise InvalidParameterError(
                    f"'{path}' has {len(names)} sheets; sheet index {chosen} is out "
                    "of range."
                )
            chosen = names[chosen]
        if chosen not in names:
            raise InvalidParameterError(
                f"'{path}' has no sheet {chosen!r}; its sheets are {names}."
            )
        header = pd.read_excel(book, sheet_name=chosen, header=None, nrows=1)
        check_unique(
            [v for v in header.iloc[0].tolist() if pd.notna(v)] if len(header) else [],
            f"'{path}' (sheet {chosen!r})",
        )
        # text such as "NA" or "None" is a code, not a missing value (as in CSV)
        table = pd.read_excel(
            book, sheet_name=chosen, dtype=str, keep_default_na=False, na_values=[""]
        )
    return table, ReadInfo(
        str(path), "excel", len(table), table.shape[1], sheet=str(chosen)
    )
