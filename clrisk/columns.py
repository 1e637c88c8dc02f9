"""Row arrays held column by column.

The coded features of a table (:class:`clrisk.features.CodedFrame`) are kept
as one 1-D array per feature, not one 2-D array: a column that needs no
coding (integer codes that already are level indices, float64 numerics) is
the input's own array, read by the scoring kernel where it lies instead of
being copied first (copying them took about a seventh of a 50M-row pass
over a Parquet file). The functions that take coded rows accept either form:
a 2-D array of shape (n_rows, n_columns), or a sequence of its columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np

from clrisk.exceptions import InvalidParameterError

__all__ = ["Columns", "as_matrix", "check_columns", "column_list"]

Columns: TypeAlias = np.ndarray | Sequence[np.ndarray]


def column_list(data: Columns) -> list[np.ndarray]:
    """The columns of `data` (views of a 2-D array's columns, not copies)."""
    if isinstance(data, np.ndarray):
        if data.ndim != 2:
            raise InvalidParameterError(
                f"Rows must be a 2-D array or a sequence of columns; got an "
                f"array of {data.ndim} dimensions."
            )
        return [data[:, j] for j in range(data.shape[1])]
    return [np.asarray(c) for c in data]


def as_matrix(data: Columns, n_rows: int, dtype: Any = None) -> np.ndarray:
    """`data` as a 2-D array of shape (n_rows, n_columns), Fortran-ordered
    (each column contiguous); a 2-D array is returned as it is (converted
    to `dtype` when given)."""
    if isinstance(data, np.ndarray):
        return data if dtype is None else data.astype(dtype, copy=False)
    cols = column_list(data)
    kind = dtype if dtype is not None else (cols[0].dtype if cols else np.float64)
    out = np.empty((n_rows, len(cols)), dtype=kind, order="F")
    for j, col in enumerate(cols):
        if col.shape != (n_rows,):
            raise InvalidParameterError(
                f"Column {j} has shape {col.shape}; expected ({n_rows},)."
            )
        out[:, j] = col
    return out


def check_columns(
    codes: Sequence[np.ndarray],
    numerics: Sequence[np.ndarray],
    sizes: Sequence[int],
    n_numeric: int,
    checked: bool = False,
) -> None:
    """Refuse columns that do not fit a model with `sizes` levels per
    categorical feature and `n_numeric` numeric features: another number of
    columns of codes or numerics, or (unless `checked`: codes made by
    :func:`clrisk.features.encode` are) a code outside ``0..L-1``, which
    would give wrong sums (the compiled kernel stops at one beyond its
    group's joint codes, rather than read or write out of bounds), or codes
    that are not integers."""
    if len(codes) != len(sizes):
        raise InvalidParameterError(
            f"The codes have {len(codes)} columns; the model has {len(sizes)} "
            "categorical features."
        )
    if len(numerics) != n_numeric:
        raise InvalidParameterError(
            f"The numerics have {len(numerics)} columns; the model has "
            f"{n_numeric} numeric features."
        )
    for j, col in enumerate(codes):
        if col.dtype.kind not in "iub":
            raise InvalidParameterError(
                f"Codes must be integers; column {j} has type {col.dtype}."
            )
    if checked:
        return
    for j, (col, size) in enumerate(zip(codes, sizes, strict=True)):
        if len(col) == 0:
            continue
        lo, hi = int(col.min()), int(col.max())
        if lo < 0 or hi >= size:
            raise InvalidParameterError(
                f"Codes of categorical feature {j} must be in 0..{size - 1} (its "
                f"levels); got {lo}..{hi}."
            )
