"""Apply a :class:`FeatureSpec` to a table: validated, compactly coded arrays.

The output, :class:`CodedFrame`, holds small-integer level codes per categorical
feature and float64 numerics (child-row numerics, then territory indicators
gathered by territory code). It is the input of both the model fit and the
scoring kernel. Nothing downstream looks at the original table again.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd

from clrisk.columns import as_matrix
from clrisk.exceptions import (
    ClriskWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)
from clrisk.quality import DataQuality
from clrisk.spec import INDICATORS, Feature, FeatureSpec

__all__ = [
    "CodedFrame",
    "Workspace",
    "design_matrix",
    "encode",
    "table_name",
    "to_text_codes",
]

Policy = Literal["error", "drop"]
POLICIES: tuple[str, ...] = ("error", "drop")


@dataclass(frozen=True, repr=False)
class CodedFrame:
    """A table coded by a specification.

    The coded features are held column by column (:mod:`clrisk.columns`): a
    column that needs no coding is the input's own array (a read-only view),
    not a copy, so it reflects later changes to the input table.

    Attributes
    ----------
    code_columns : tuple of ndarray of shape (n_rows,), int8 or int16
        Level index (into ``Feature.levels``) of each binary/categorical feature,
        in the order of ``spec.categorical``: int8 when no feature has more
        than 128 levels (half the memory for the kernel to read), else int16.
    numeric_columns : tuple of ndarray of shape (n_rows,), float64
        Child-row numerics (``spec.numeric``), then territory indicators
        (``spec.territory_features``), scaled to the specification's units.
    territory : ndarray of shape (n_rows,), int64, or None
        Index into `territories`, when a territory column was given.
    territories : ndarray of str
        Territory codes (text) present in this table, sorted.
    weight : ndarray of shape (n_rows,), float64, or None
        Row weights, when a weight column was given.
    rows : ndarray of shape (n_rows,), int64
        Positions of the kept rows in the input table.
    quality : DataQuality
        Rows read, used and rejected by reason.
    """

    spec: FeatureSpec
    code_columns: tuple[np.ndarray, ...]
    numeric_columns: tuple[np.ndarray, ...]
    territory: np.ndarray | None
    territories: np.ndarray
    weight: np.ndarray | None
    rows: np.ndarray
    quality: DataQuality

    def __repr__(self) -> str:
        return (
            f"CodedFrame({self.n:,} rows, {len(self.code_columns)} categorical, "
            f"{len(self.numeric_columns)} numeric, "
            f"{len(self.territories)} territories)"
        )

    @cached_property
    def codes(self) -> np.ndarray:
        """`code_columns` as one array of shape (n_rows, n_categorical)
        (made on first use)."""
        return as_matrix(self.code_columns, self.n, _code_type(self.spec))

    @cached_property
    def numerics(self) -> np.ndarray:
        """`numeric_columns` as one array of shape (n_rows, n_numeric)
        (made on first use)."""
        return as_matrix(self.numeric_columns, self.n, np.float64)

    @property
    def n(self) -> int:
        """Number of coded rows."""
        return int(self.rows.shape[0])


class Workspace:
    """Output arrays of :func:`encode`, reused from one table to the next.

    Coding a stream of batches writes as much memory per batch as the batch
    holds; arrays allocated afresh each time make the operating system map and
    zero new pages for every batch (about a third of the coding time of a
    500,000-row batch). With a workspace, the arrays of the returned
    :class:`CodedFrame` that are not the table's own columns are views into
    it: they are valid until the next :func:`encode` with the same workspace,
    so use one only where each coded table is consumed before the next is
    coded, and in one thread at a time.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}
        self._sorted: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def array(self, name: str, shape: tuple[int, int], dtype: Any) -> np.ndarray:
        """An uninitialised Fortran-ordered array of `shape`, reusing the
        memory of the last array of that `name`."""
        size = shape[0] * shape[1]
        buf = self._buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != np.dtype(dtype):
            buf = np.empty(size, dtype=dtype)
            self._buffers[name] = buf
        return buf[:size].reshape(shape, order="F")

    def sorted_text(
        self, name: str, categories: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_sorted_categories` of `categories`, remembered under `name`
        for the next table with the same categories (a Parquet dictionary
        column has one dictionary per row group, the same from one to the
        next: 2,000 territory codes take 2-3 ms to make into sorted text)."""
        last = self._sorted.get(name)
        if last is not None and np.array_equal(last[0], categories):
            return last[1], last[2]
        distinct, rank = _sorted_categories(categories)
        self._sorted[name] = (categories, distinct, rank)
        return distinct, rank


def to_text_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Factorise a column into integer codes and the text form of each value.

    Integer-valued numbers become their integer text (``1.0`` -> ``"1"``), text
    is stripped of surrounding blanks. Missing values get code -1.

    Returns
    -------
    codes : ndarray of shape (n,), int64
    uniques : list of str
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes, uniques = _categorical_codes(values)
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = _texts(np.asarray(uniques, dtype=object))
    codes = np.asarray(codes, dtype=np.int64)
    if len(set(text)) < len(text):  # e.g. "05001" and " 05001", or 1 and "1"
        remap, merged = pd.factorize(np.asarray(text, dtype=object))
        codes = np.where(codes < 0, -1, remap[np.maximum(codes, 0)])
        text = [str(t) for t in merged]
    return codes, text


def _categorical_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """pd.factorize of a categorical column from its integer codes: the
    categories that occur, numbered in category order (no hashing of rows;
    a Parquet dictionary column is read as a categorical)."""
    raw = values.cat.codes.to_numpy()  # -1 for missing: the last slot below
    categories = values.cat.categories.to_numpy(dtype=object)
    present = _present_categories(raw, len(categories))
    number = np.full(len(categories) + 1, -1, dtype=np.int64)
    number[present] = np.arange(len(present))
    return number[raw], categories[present]


def _present_categories(raw: np.ndarray, n_categories: int) -> np.ndarray:
    """The category numbers that occur among the codes `raw` (-1: missing),
    in order; found from the first code of each run of equal codes (few when
    the rows are sorted, as a census by territory)."""
    present = np.zeros(n_categories + 1, dtype=bool)
    present[_run_heads(raw)] = True  # -1 marks the last slot
    return np.flatnonzero(present[:-1])


def _sorted_categories(categories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct text forms of `categories`, sorted, and the position of
    each category's text among them (categories with the same text, such as
    " 05001" and "05001", share one)."""
    text = np.asarray(_texts(categories), dtype=object)
    distinct, rank = np.unique(text, return_inverse=True)
    return distinct, rank.astype(np.int64, copy=False)


def _sorted_text_codes(
    values: pd.Series,
    out: np.ndarray | None = None,
    space: Workspace | None = None,
    name: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`to_text_codes` with the distinct codes in sorted order.

    Parameters
    ----------
    values : Series of shape (n,)
    out : ndarray of shape (n,), int64, optional
        Where to write the index of a categorical column without missing
        values (see :class:`Workspace`).
    space : Workspace, optional
        Remembers the sorted text of a categorical column's categories under
        `name`, for the next table with the same categories.
    name : str
        The name the categories are remembered under (the workspace slot).

    Returns
    -------
    index : ndarray of shape (n,), int64
        Position of each row's code in `distinct` (-1 for a missing value).
    distinct : ndarray of str (object)
        The distinct text codes that occur, sorted.

    A categorical column (a Parquet dictionary column) is coded by one lookup
    over its category codes: each category's text is made once, not per row.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        raw = values.cat.codes.to_numpy()  # -1 for missing: the last slot below
        categories = values.cat.categories.to_numpy(dtype=object)
        if space is None:
            every, every_rank = _sorted_categories(categories)
        else:
            every, every_rank = space.sorted_text(name, categories)
        # the texts of the categories that occur, and their order among them
        used = _present_categories(raw, len(categories))
        seen = np.zeros(len(every), dtype=bool)
        seen[every_rank[used]] = True
        distinct = every[seen]
        lut = np.full(len(categories) + 1, -1, dtype=np.int64)
        lut[used] = (np.cumsum(seen) - 1)[every_rank[used]]
        if len(raw) and raw.min() < 0:  # missing values: -1 picks the last slot
            return lut[raw], distinct
        # every code is a category number, within the table: "clip" changes
        # nothing and, with `out`, spares numpy a buffered copy (500,000
        # rows: 0.4 ms, against 4 ms for np.take(lut, raw), 1 ms for lut[raw])
        return np.take(lut, raw, out=out, mode="clip"), distinct
    codes, uniques = to_text_codes(values)
    order = np.argsort(np.asarray(uniques, dtype=object), kind="stable")
    lut = np.full(len(order) + 1, -1, dtype=np.int64)  # codes of -1 -> -1
    lut[order] = np.arange(len(order))
    return lut[codes], np.asarray(uniques, dtype=object)[order]


def _run_heads(values: np.ndarray) -> np.ndarray:
    """The first value of each run of equal values: every distinct value, in
    few elements when the rows are sorted (a census ordered by territory)."""
    if len(values) == 0:
        return values
    change = np.empty(len(values), dtype=bool)
    change[0] = True
    np.not_equal(values[1:], values[:-1], out=change[1:])
    return values[change]


def _texts(values: np.ndarray) -> list[str]:
    """:func:`_text` of each value; text values (a Parquet dictionary of
    territory codes) skip the per-value type checks (2,000 codes: 0.2 ms
    instead of 3 ms)."""
    if all(type(v) is str for v in values):
        return [_strip(v) for v in values]
    return [_text(v) for v in values]


def _text(v: Any) -> str:
    """The code a value stands for: integer-valued numbers as integers
    (``1.0`` -> ``"1"``), text stripped of blanks and of a zero fraction
    (``"1.0"``, as a CSV holds a float column, -> ``"1"``, as the same column
    read from Parquet), booleans as 0/1."""
    if isinstance(v, bool | np.bool_):
        return str(int(v))
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return _strip(str(v))


_ZERO_FRACTION = re.compile(r"^([-+]?\d+)\.0+$")


def _strip(text: str) -> str:
    text = text.strip()
    if "." in text:
        whole = _ZERO_FRACTION.match(text)
        if whole:
            return whole.group(1)
    return text


def encode(
    spec: FeatureSpec,
    table: pd.DataFrame,
    *,
    source: str,
    territory: str | None = None,
    indicators: pd.DataFrame | None = None,
    weight: str | None = None,
    on_invalid: Policy = "error",
    where: str = "",
    row_offset: int = 0,
    unknown_as: Mapping[str, str] | None = None,
    row_numbers: np.ndarray | None = None,
    workspace: Workspace | None = None,
    indicator_territory: str | None = None,
) -> CodedFrame:
    """Code `table` (a data set of `source`) with `spec`.

    Parameters
    ----------
    spec : FeatureSpec
    table : DataFrame of shape (n_rows, n_columns)
    source : str
        Which source of the specification the table is (e.g. ``"census"``).
    territory : str, optional
        Territory-code column; required when the spec has territory features.
    indicators : DataFrame, optional
        Territory indicator table, keyed by ``spec.territory["indicators"]``.
    weight : str, optional
        Weight column (must be finite and >= 0).
    on_invalid : {"error", "drop"}
        What to do with a row holding a missing value, an unknown code or a
        territory missing from the indicator table: raise a
        :class:`DataValidationError`, or drop the row and count it in
        ``quality.rejected``.
    where : str
        Name of the input for messages (a file name, ``"survey"``).
    row_offset : int
        Row number of the table's first row in the whole input (for messages).
    row_numbers : ndarray of shape (n_rows,), optional
        Row number of each row of `table` in the whole input, for messages,
        when the rows are not consecutive (e.g. after an age filter); by
        default ``row_offset + position``.
    unknown_as : mapping of str to str, optional
        Feature name -> level: codes of that feature missing from its code map
        are coded as that level instead of following `on_invalid`, with a
        :class:`ClriskWarning` and a note in ``quality`` saying how many rows
        and which codes (e.g. ``{"ethnicity": "none"}`` for a new census code).
    workspace : Workspace, optional
        Reuse its memory for the coded arrays (see :class:`Workspace`: the
        result is valid until the next call with it).
    indicator_territory : str, optional
        Column whose codes key the indicator table, when it is not
        `territory`: rows are grouped by `territory` (e.g. census blocks) and
        take the indicators of this coarser unit (e.g. their municipality).

    Returns
    -------
    CodedFrame
    """
    check_policy(on_invalid, "on_invalid", POLICIES)
    where = where or f"the {source} table"
    if indicator_territory == territory:
        indicator_territory = None
    _check_columns(spec, table, source, territory, weight, where, indicator_territory)
    n = len(table)
    # the row number of each row in the whole input, for messages only
    numbering: Sequence[int] | np.ndarray = (
        np.asarray(row_numbers)
        if row_numbers is not None
        else range(row_offset, row_offset + n)
    )
    bad: dict[str, np.ndarray] = {}  # reason -> boolean mask of rejected rows

    examples_of: dict[str, list[str]] = {}  # first examples of each reason

    def reject(
        mask: np.ndarray,
        reason: str,
        column: str,
        problem: str,
        examples: list[Any],
        fix: str,
    ) -> None:
        if not mask.any():
            return
        empty = _empty_rows(table, mask)
        if empty.any():  # blank lines of a spreadsheet export, not missing values
            mask = mask & ~empty
            rows = [f"row {r}" for r in _first_rows(empty, numbering)]
            refuse(
                empty,
                "empty row",
                "(every column)",
                "rows with every column read missing",
                rows,
                "Delete them if they are blank lines (e.g. at the end of a "
                "spreadsheet export), else fill them in; or pass on_invalid='drop' "
                "to reject those rows.",
            )
            if not mask.any():
                return
        refuse(mask, reason, column, problem, examples, fix)

    def refuse(
        mask: np.ndarray,
        reason: str,
        column: str,
        problem: str,
        examples: list[Any],
        fix: str,
    ) -> None:
        if on_invalid == "error":
            raise DataValidationError(
                column=column,
                problem=problem,
                n_bad=int(mask.sum()),
                examples=examples,
                fix=fix,
                where=where,
            )
        bad[reason] = bad.get(reason, np.zeros(n, bool)) | mask
        if reason not in examples_of:
            examples_of[reason] = [str(e) for e in examples[:5]]

    stated = _check_unknown_as(spec, unknown_as)
    notes: list[str] = []
    recoded: dict[str, int] = {}
    space = workspace or Workspace()
    codes = space.array("codes", (n, len(spec.categorical)), _code_type(spec))
    code_columns: list[np.ndarray] = []
    for j, feat in enumerate(spec.categorical):
        src = feat.source(source)
        col = table[src.column]
        fast = _integer_codes(col, feat, src.codes, out=codes[:, j])
        if fast is not None and fast.min(initial=0) >= 0:
            code_columns.append(fast)
            continue  # integer codes, all known: nothing to report
        fcodes, uniques = to_text_codes(col)
        lut = np.array([_level_index(feat, src.codes, u) for u in uniques] + [-2])
        coded = lut[fcodes]  # -1 unknown code, -2 missing
        missing = coded == -2
        reject(
            missing,
            f"missing value in '{src.column}'",
            src.column,
            f"missing values for feature '{feat.name}'",
            [f"row {r}" for r in _first_rows(missing, numbering)],
            "Fill them in, or pass on_invalid='drop' to reject those rows.",
        )
        unknown = coded == -1
        if unknown.any():
            found = np.asarray(uniques, dtype=object)[fcodes[unknown]]
            top = pd.Series(found).value_counts().head(5)
            if feat.name in stated:  # the user said which level they mean
                level = stated[feat.name]
                coded = np.where(unknown, feat.levels.index(level), coded)
                reason = f"unknown code in '{src.column}' coded as '{level}'"
                recoded[reason] = recoded.get(reason, 0) + int(unknown.sum())
                shown = ", ".join(f"{c!r}" for c in top.index)
                notes.append(f"recoded ({reason}), e.g. {shown}")
                warnings.warn(
                    f"{int(unknown.sum()):,} rows of '{src.column}' in {where} have "
                    f"codes not in the code map of '{feat.name}' (e.g. {shown}); "
                    f"coded as '{level}' as asked (unknown_as).",
                    ClriskWarning,
                    stacklevel=2,
                )
                unknown = np.zeros(n, dtype=bool)
        if unknown.any():
            reject(
                unknown,
                f"unknown code in '{src.column}'",
                src.column,
                f"codes not in the code map of feature '{feat.name}'",
                _code_examples(found, np.flatnonzero(unknown), numbering),
                f"Add them to [feature.source.{source}.codes] of '{feat.name}' in the "
                "specification, or pass on_invalid='drop' to reject those rows.",
            )
        codes[:, j] = np.where(coded < 0, 0, coded)
        code_columns.append(codes[:, j])

    n_num = len(spec.numeric) + len(spec.territory_features)
    numerics = space.array("numerics", (n, n_num), np.float64)
    numeric_columns: list[np.ndarray] = []
    for q, feat in enumerate(spec.numeric):
        src = feat.source(source)
        values = _numeric_column(
            table[src.column], src.column, where, reject, numbering
        )
        if src.scale == 1:  # the input's own column where it is float64
            numeric_columns.append(_read_only(values))
        else:
            numeric_columns.append(np.multiply(values, src.scale, out=numerics[:, q]))
    numeric_columns += [numerics[:, q] for q in range(len(spec.numeric), n_num)]

    terr_index: np.ndarray | None = None
    territories = np.array([], dtype=object)
    if territory is not None:

        def code_column(column: str, slot: str, what: str) -> tuple[Any, Any, Any]:
            """Sorted codes of a code column; rows without one rejected."""
            index, codes_ = _sorted_text_codes(
                table[column], space.array(slot, (n, 1), np.int64)[:, 0], space, slot
            )
            absent = index < 0
            reject(
                absent,
                f"missing {what} in '{column}'",
                column,
                f"missing {what} codes",
                [f"row {r}" for r in _first_rows(absent, numbering)],
                f"Every row needs {'an' if what[0] in 'aeiou' else 'a'} {what} "
                "code; or pass on_invalid='drop'.",
            )
            return index, codes_, absent

        terr_index, territories, missing = code_column(
            territory, "territory", "territory"
        )
        join_index, join_codes, join_col = terr_index, territories, territory
        join_missing = missing
        if spec.territory_features and indicator_territory is not None:
            join_col = indicator_territory
            join_index, join_codes, join_missing = code_column(
                join_col, "join", "indicator territory"
            )
            join_missing = join_missing | missing
            _check_nested(
                terr_index, territories, join_index, join_codes, territory, join_col,
                where,
            )  # fmt: skip
        if missing.any():
            terr_index = np.where(missing, 0, terr_index)
        if spec.territory_features:
            _join_indicators(
                spec,
                indicators,
                join_codes,
                join_index,
                join_missing,
                numerics,
                len(spec.numeric),
                join_col,
                where,
                reject,
                numbering,
            )

    w: np.ndarray | None = None
    if weight is not None:
        w = _numeric_column(table[weight], weight, where, reject, numbering)
        bad_weight = w < 0
        reject(
            bad_weight,
            f"negative weight in '{weight}'",
            weight,
            "negative weights",
            [f"row {numbering[i]}: {w[i]:g}" for i in np.flatnonzero(bad_weight)[:5]],
            "Weights are expansion factors and must be >= 0; fix them, or pass "
            "on_invalid='drop' to reject those rows.",
        )

    keep = np.ones(n, dtype=bool)
    for mask in bad.values():
        keep &= ~mask
    rejected = _attribute_rejections(bad, n)
    quality = DataQuality(n, int(keep.sum()), rejected, notes, recoded)
    for reason, examples in examples_of.items():
        quality.notes.append(
            f"rejected ({reason}) in {where}, e.g. {', '.join(examples)}"
        )
    if keep.all():
        rows = _positions(n)
        return CodedFrame(
            spec,
            tuple(code_columns),
            tuple(numeric_columns),
            terr_index,
            territories,
            w,
            rows,
            quality,
        )
    rows = np.flatnonzero(keep)
    return CodedFrame(
        spec,
        tuple(c[keep] for c in code_columns),
        tuple(c[keep] for c in numeric_columns),
        None if terr_index is None else terr_index[keep],
        territories,
        None if w is None else w[keep],
        rows,
        quality,
    )


def design_matrix(coded: CodedFrame, *, block: int = 8192) -> np.ndarray:
    """The model matrix: intercept, then ``spec.columns`` in order.

    Parameters
    ----------
    coded : CodedFrame
    block : int, default 8192
        Rows filled at a time, so that each block stays in cache (filling the
        row-major matrix column by column is several times slower).

    Returns
    -------
    ndarray of shape (n_rows, 1 + len(spec.columns)), float64
    """
    spec = coded.spec
    cat_pos = {f.name: j for j, f in enumerate(spec.categorical)}
    num_pos = {f.name: q for q, f in enumerate(spec.numeric + spec.territory_features)}
    # per feature: (first column, source position, non-reference level codes)
    layout: list[tuple[int, int, np.ndarray | None]] = []
    col = 1
    for feat in spec.features:
        if feat.kind == "numeric":
            layout.append((col, num_pos[feat.name], None))
            col += 1
            continue
        kept = [k for k in range(len(feat.levels)) if k != feat.reference_index]
        layout.append((col, cat_pos[feat.name], np.asarray(kept, dtype=np.int16)))
        col += len(kept)
    X = np.empty((coded.n, col), dtype=np.float64)
    for start in range(0, coded.n, block):
        rows = slice(start, start + block)
        part = X[rows]
        part[:, 0] = 1.0
        for first, pos, keep in layout:
            if keep is None:
                part[:, first] = coded.numeric_columns[pos][rows]
            else:
                part[:, first : first + len(keep)] = (
                    coded.code_columns[pos][rows, None] == keep[None, :]
                )
    return X


# --------------------------------------------------------------------- private
def _code_type(spec: FeatureSpec) -> type[np.integer[Any]]:
    """The narrowest integer type holding every level index of `spec`."""
    most = max((len(f.levels) for f in spec.categorical), default=0)
    return np.int8 if most <= np.iinfo(np.int8).max + 1 else np.int16


def _check_columns(
    spec: FeatureSpec,
    table: pd.DataFrame,
    source: str,
    territory: str | None,
    weight: str | None,
    where: str,
    indicator_territory: str | None = None,
) -> None:
    if not isinstance(table, pd.DataFrame):
        raise InvalidParameterError(
            f"Expected a pandas DataFrame for {where}; got {type(table).__name__}."
        )
    need = spec.required_columns(source)
    extra = (territory, weight, indicator_territory)
    need += [c for c in extra if c is not None and c not in need]
    have = [str(c) for c in table.columns]
    if any(c not in set(have) for c in need):
        raise SchemaError(
            f"{where[0].upper() + where[1:]} lacks columns that the '{source}' source "
            "of the specification needs.",
            expected=need,
            received=have,
        )
    dup = sorted({c for c in need if have.count(c) > 1})
    if dup:
        raise SchemaError(
            f"{where[0].upper() + where[1:]} has several columns named {dup}; "
            "rename or drop the copies so that each is read from one column."
        )
    if spec.territory_features and territory is None:
        raise InvalidParameterError(
            f"The specification has territory features "
            f"{[f.name for f in spec.territory_features]}: pass territory=<column of "
            f"{where} holding the territory code>."
        )


def _read_only(values: np.ndarray) -> np.ndarray:
    """A read-only view of `values` (the caller's own column, in a coded
    frame: nothing may write to it through the frame)."""
    view = values.view()
    view.flags.writeable = False
    return view


def _fits(value: int, dtype: np.dtype[Any]) -> bool:
    """Whether `value` is within the range of the integer type `dtype`."""
    info = np.iinfo(dtype)
    return int(info.min) <= value <= int(info.max)


def _integer_codes(
    col: pd.Series, feat: Feature, codes: Any, out: np.ndarray | None = None
) -> np.ndarray | None:
    """Level index of each row of an integer column, by a table over its range.

    The same result as factorising the column's text form (an integer's text
    is ``str(int)``), without hashing: one subtraction and one lookup per row.
    Unknown codes get -1. None when the column is not integer or its range is
    too wide for a table. Written into `out` when given (int8 or int16, wide
    enough for the level indices; by default int16), unless the column
    already holds the level indices in that type: then it is returned as it is
    (a read-only view, not a copy).
    """
    if not pd.api.types.is_integer_dtype(col.dtype) or len(col) == 0:
        return None
    values: np.ndarray = col.to_numpy()
    if values.dtype.kind not in "iu":  # a nullable integer column with missing
        return None
    vmin, hi = int(values.min()), int(values.max())
    lo = min(vmin, 0)
    if hi - lo > 65_535:
        return None
    if out is None:
        out = np.empty(len(values), dtype=np.int16)
    lut = np.array(
        [_level_index(feat, codes, str(v)) for v in range(lo, hi + 1)], dtype=out.dtype
    )
    seen = lut[vmin - lo :]  # the codes between the smallest and largest value
    shift = int(seen[0]) - vmin
    small = -(2**15) <= min(vmin, shift) and max(hi, shift) < 2**15  # exact in int16
    if (
        small
        and seen.min() >= 0
        and np.array_equal(seen, np.arange(vmin, hi + 1) + shift)
    ):
        # consecutive codes for consecutive levels (0/1, or 1..k for levels
        # 0..k-1): one subtraction, not a gather (50x faster), in int16
        # (exact: the values and the results fit), or in the column's own
        # type when it is that of `out` and holds the shift (no casts)
        if values.dtype == out.dtype and shift == 0:
            return _read_only(values)  # already level indices: the column itself
        if values.dtype == out.dtype and _fits(shift, out.dtype):
            np.add(values, out.dtype.type(shift), out=out)
        else:
            np.add(values, shift, out=out, dtype=np.int16, casting="unsafe")
        return out
    # shift negative codes in a wide type (int8 - lo could overflow); indices
    # are within the table by construction (lo <= value <= hi), so "clip"
    # changes nothing: it only spares numpy a buffered copy of `out`, which
    # the default mode="raise" makes
    index = values.astype(np.int64) - lo if lo < 0 else values
    return np.take(lut, index, out=out, mode="clip")


def _code_examples(
    codes: np.ndarray, rows: np.ndarray, numbering: Sequence[int] | np.ndarray
) -> list[str]:
    """The five most frequent of `codes` (found at positions `rows`), each
    with its count and first row: ``'9' (3 rows, first row 120)``."""
    found = pd.Series(codes)
    first = found.groupby(found, sort=False).head(1)  # index: position in codes
    first_row = {code: numbering[int(rows[i])] for i, code in first.items()}
    return [
        f"{code!r} ({k} {'row' if k == 1 else 'rows'}, first row {first_row[code]})"
        for code, k in found.value_counts().head(5).items()
    ]


def _check_unknown_as(
    spec: FeatureSpec, unknown_as: Mapping[str, str] | None
) -> dict[str, str]:
    """Validate a feature -> level mapping for unknown codes."""
    out = dict(unknown_as or {})
    for name, level in out.items():
        feats = {f.name: f for f in spec.categorical}
        if name not in feats or level not in feats[name].levels:
            raise InvalidParameterError(
                f"unknown_as={{{name!r}: {level!r}}} must name a binary or "
                "categorical feature and one of its levels"
                + (f" {list(feats[name].levels)}" if name in feats else "")
                + "."
            )
    return out


def _level_index(feat: Feature, codes: Any, raw: str) -> int:
    level = raw if codes is None else codes.get(raw)
    if level is None and codes is not None:  # a key written "1.0" means "1"
        level = next((v for k, v in codes.items() if _strip(str(k)) == raw), None)
    if level is None or level not in feat.levels:
        return -1
    return feat.levels.index(level)


_POSITIONS = np.arange(0)
_POSITIONS_KEPT = 4_000_000  # longest 0..n-1 kept for reuse (32 MB)


def _positions(n: int) -> np.ndarray:
    """``np.arange(n)``, read-only, shared between pieces of up to a few
    million rows (allocating and filling it anew for each piece shows in the
    profile of a pass)."""
    global _POSITIONS
    if n > _POSITIONS_KEPT:
        return np.arange(n)
    positions = _POSITIONS  # one read: another thread may replace it
    if len(positions) < n:
        positions = np.arange(min(max(n, 2 * len(positions)), _POSITIONS_KEPT))
        positions.flags.writeable = False
        _POSITIONS = positions
    return positions[:n]


def _first_rows(
    mask: np.ndarray, numbering: Sequence[int] | np.ndarray, k: int = 5
) -> list[int]:
    """Row numbers (in the whole input) of the first `k` rows of `mask`."""
    return [int(numbering[i]) for i in np.flatnonzero(mask)[:k]]


def _numeric_column(
    col: pd.Series,
    name: str,
    where: str,
    reject: Any,
    numbering: Sequence[int] | np.ndarray,
) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col.dtype):
        col = col.astype("float64")
    if pd.api.types.is_numeric_dtype(col.dtype):
        values: np.ndarray = col.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(col, errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        not_number = np.isnan(values) & col.notna().to_numpy()
        if not_number.any():
            examples = [
                f"row {numbering[i]}: {col.iloc[i]!r}"
                for i in np.flatnonzero(not_number)[:5]
            ]
            # a format problem of the column (e.g. decimal commas), not of a
            # few rows: always an error, even with on_invalid="drop"
            raise DataValidationError(
                column=name,
                problem="values that are not numbers",
                n_bad=int(not_number.sum()),
                examples=examples,
                fix="Use '.' as the decimal separator (or read the file with "
                "decimal=','), and remove text from numeric columns.",
                where=where,
            )
    # the usual case, nothing to report: the sum of finite values is finite
    # unless it overflows (then the check below tells), and any NaN or
    # infinity makes it NaN or infinite; one pass, no temporary array
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.add.reduce(values)
    if np.isfinite(total) or np.isfinite(values).all():
        return values
    infinite = np.isinf(values)
    if infinite.any():  # corrupt values, not missing ones: always an error
        raise DataValidationError(
            column=name,
            problem="infinite values",
            n_bad=int(infinite.sum()),
            examples=[f"row {r}" for r in _first_rows(infinite, numbering)],
            fix="Replace them with valid numbers.",
            where=where,
        )
    missing = np.isnan(values)
    reject(
        missing,
        f"missing value in '{name}'",
        name,
        "missing values",
        [f"row {r}" for r in _first_rows(missing, numbering)],
        "Fill them in, or pass on_invalid='drop' to reject those rows.",
    )
    return np.where(missing, 0.0, values)


def _join_indicators(
    spec: FeatureSpec,
    indicators: pd.DataFrame | None,
    territories: np.ndarray,
    terr_index: np.ndarray,
    missing_territory: np.ndarray,
    numerics: np.ndarray,
    first: int,
    territory: str,
    where: str,
    reject: Any,
    numbering: Sequence[int] | np.ndarray,
) -> None:
    if indicators is None:
        raise InvalidParameterError(
            "The specification has territory features "
            f"{[f.name for f in spec.territory_features]}: pass indicators=<the "
            "territory indicator table>."
        )
    table = indicator_values(spec, indicators)
    pos = table.index.get_indexer(pd.Index(territories, dtype=object))
    # terr_index is -1 for a missing code (and every code may be missing)
    row_pos = np.where(terr_index >= 0, np.r_[pos, -1][terr_index], -1)
    absent = (row_pos < 0) & ~missing_territory
    if absent.any():
        hint = ""
        if not pd.api.types.is_string_dtype(indicators[spec.territory[INDICATORS]]):
            hint = " The indicator key is not text: read it with dtype=str."
        reject(
            absent,
            f"territory not in the indicator table ('{territory}')",
            territory,
            "territory codes missing from the indicator table",
            _code_examples(
                territories[terr_index[absent]], np.flatnonzero(absent), numbering
            ),
            "Codes are compared as text: check leading zeros (e.g. '05001', not "
            f"'5001'), or pass on_invalid='drop' to reject those rows.{hint}",
        )
    values = table.to_numpy(dtype=np.float64)
    if len(values) == 0:  # an empty indicator table: every row was rejected above
        numerics[:, first:] = 0.0
        return
    numerics[:, first:] = np.where(
        (row_pos < 0)[:, None], 0.0, values[np.maximum(row_pos, 0)]
    )


def indicator_values(spec: FeatureSpec, indicators: pd.DataFrame) -> pd.DataFrame:
    """The territory features from an indicator table, indexed by code (text).

    Returns
    -------
    DataFrame of shape (n_territories, n_territory_features)
    """
    key = spec.territory[INDICATORS]
    feats = spec.territory_features
    cols = [f.source(INDICATORS).column for f in feats]
    where = table_name(indicators, "the territory indicator table")
    if key not in indicators.columns or any(c not in indicators.columns for c in cols):
        raise SchemaError(
            "The territory indicator table lacks columns the specification needs.",
            expected=[key, *cols],
            received=[str(c) for c in indicators.columns],
        )
    fcodes, uniques = to_text_codes(indicators[key])
    if (fcodes < 0).any():
        missing = fcodes < 0
        raise DataValidationError(
            column=key,
            problem="missing territory codes",
            n_bad=int(missing.sum()),
            examples=[f"row {r}" for r in _first_rows(missing, range(len(missing)))],
            where=where,
            fix="Every indicator row needs a territory code.",
        )
    codes = np.asarray(uniques, dtype=object)[fcodes]
    dup = pd.Series(codes).duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataValidationError(
            column=key,
            problem="repeated territory codes",
            n_bad=int(dup.sum()),
            examples=sorted(set(codes[dup]))[:5],
            where=where,
            fix="Keep one row per territory.",
        )
    strict = _strict_rejecter(where, codes)
    out = {}
    for feat, col in zip(feats, cols, strict=True):
        values = _numeric_column(
            indicators[col], col, where, strict, np.arange(len(indicators))
        )
        out[feat.name] = values * feat.source(INDICATORS).scale
    return pd.DataFrame(out, index=pd.Index(codes, dtype=object, name="territory"))


def table_name(table: pd.DataFrame, default: str) -> str:
    """How messages name `table`: its file (``'survey.csv'``) when it was read
    whole by :func:`clrisk.io.read_table` (its rows are the file's), else
    `default`."""
    path = table.attrs.get("path")
    whole = table.attrs.get("rows") == len(table)  # not filtered since
    if path and whole and table.index.equals(pd.RangeIndex(len(table))):
        return f"'{path}'"
    return default


def _strict_rejecter(where: str, labels: np.ndarray) -> Any:
    """A `reject` callback that raises at once, with territory codes as examples."""

    def reject(
        mask: np.ndarray,
        reason: str,
        column: str,
        problem: str,
        examples: Any,
        fix: str,
    ) -> None:
        if mask.any():
            raise DataValidationError(
                column=column,
                problem=problem,
                n_bad=int(mask.sum()),
                examples=list(labels[mask][:5]),
                where=where,
                fix="Every territory needs a value for each territory feature.",
            )

    return reject


def _check_nested(
    terr_index: np.ndarray,
    territories: np.ndarray,
    join_index: np.ndarray,
    join_codes: np.ndarray,
    territory: str,
    join_col: str,
    where: str,
) -> None:
    """Refuse territories that lie in several units of `join_col` (block
    codes numbered within each municipality, "001" in many): their rows would
    be summed across those units. Always an error: a problem of the codes,
    not of some rows."""
    ok = (terr_index >= 0) & (join_index >= 0)
    k = len(join_codes) + 1
    pairs = np.unique(terr_index[ok].astype(np.int64) * k + join_index[ok])
    t_of = pairs // k
    split = np.unique(t_of[1:][t_of[1:] == t_of[:-1]])
    if len(split) == 0:
        return
    examples = []
    for t in split[:3]:
        units = join_codes[pairs[t_of == t] % k]
        examples.append(f"'{territories[t]}' in {', '.join(map(repr, units[:3]))}")
    raise DataValidationError(
        column=territory,
        problem=f"{len(split):,} territories lie in several units of "
        f"'{join_col}', whose indicators they take (e.g. {'; '.join(examples)})",
        n_bad=0,  # a problem of the codes, not of some rows
        fix=f"Give each territory a code unique in the country (e.g. the "
        f"'{join_col}' code followed by the block number).",
        where=where,
    )


def _empty_rows(table: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """The rows of `mask` whose every column is missing (only those rows are
    looked at: the check costs nothing when no row is rejected)."""
    rows = np.flatnonzero(mask)
    empty = np.zeros(len(mask), dtype=bool)
    if table.shape[1]:
        empty[rows] = table.iloc[rows].isna().all(axis=1).to_numpy()
    return empty


def _attribute_rejections(bad: dict[str, np.ndarray], n: int) -> dict[str, int]:
    """Count each rejected row once, under the first reason that hit it."""
    taken = np.zeros(n, dtype=bool)
    out: dict[str, int] = {}
    for reason, mask in bad.items():
        fresh = mask & ~taken
        if fresh.any():
            out[reason] = int(fresh.sum())
        taken |= mask
    return out


def check_policy(value: str, name: str, allowed: Sequence[str]) -> None:
    """Raise InvalidParameterError unless `value` is one of `allowed`."""
    if value not in allowed:
        raise InvalidParameterError(
            f"The '{name}' parameter must be one of {tuple(allowed)}; got {value!r}."
        )
