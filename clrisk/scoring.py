"""One-pass scoring: the kernel and the mergeable per-territory statistics.

A fitted model on coded features is an intercept, one lookup table per
categorical feature and a dot product with the numerics (:class:`Scorer`). One
pass over the rows accumulates, per cell (territory, or territory x group):

- ``n``, ``Σw``, ``Σw·p`` and ``Σw·f`` (f = dp/dη);
- ``Σw·x`` for every level of every categorical and every numeric (the
  territory means the factor decomposition needs);
- ``Σw·f·x`` for the same columns (the gradient of the risk with respect to the
  coefficients, for delta-method intervals).

Statistics of two chunks add (:meth:`TerritoryStats.__add__`), so in-memory,
chunked and distributed scoring are the same code with a different loop.

The kernel trusts its inputs: no pandas, no I/O. :func:`accumulate_reference`
is the plain-numpy reference (no loop over rows); :func:`accumulate` uses the
compiled kernel of :mod:`clrisk.kernel` when numba is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clrisk import kernel as compiled
from clrisk.columns import Columns, check_columns, column_list
from clrisk.exceptions import InvalidParameterError
from clrisk.link import Link, cdf, pdf
from clrisk.spec import FeatureSpec

__all__ = [
    "KERNELS",
    "PassTotals",
    "Scorer",
    "StatsLayout",
    "TerritoryStats",
    "accumulate",
    "accumulate_reference",
    "shifted_risk",
]

KERNELS: tuple[str, ...] = ("auto", "compiled", "numpy")


@dataclass(frozen=True)
class StatsLayout:
    """Column layout of the statistics array.

    Columns: ``n, w, wp, wf``, then ``Σw·x`` for all categorical levels and all
    numerics ("x block"), then ``Σw·f·x`` for the same ("g block").
    """

    level_sizes: tuple[int, ...]
    n_numeric: int

    @property
    def n_x(self) -> int:
        """Width of the x block (all levels, then numerics)."""
        return sum(self.level_sizes) + self.n_numeric

    @property
    def width(self) -> int:
        """Total number of statistics per cell."""
        return 4 + 2 * self.n_x

    @property
    def x(self) -> slice:
        """The Σw·x block."""
        return slice(4, 4 + self.n_x)

    @property
    def g(self) -> slice:
        """The Σw·f·x block."""
        return slice(4 + self.n_x, 4 + 2 * self.n_x)

    @property
    def level_offsets(self) -> np.ndarray:
        """Start of each categorical feature within the x (or g) block."""
        offsets: np.ndarray = np.r_[0, np.cumsum(self.level_sizes)[:-1]]
        return offsets.astype(np.int64)

    @classmethod
    def for_spec(cls, spec: FeatureSpec) -> StatsLayout:
        """The layout of a specification's coded features."""
        return cls(
            tuple(len(f.levels) for f in spec.categorical),
            len(spec.numeric) + len(spec.territory_features),
        )


@dataclass(frozen=True)
class Scorer:
    """A fitted binary model as lookup tables over coded features.

    Attributes
    ----------
    intercept : float
    luts : tuple of ndarray
        One table per categorical feature: the coefficient of each level (0 for
        the reference level), in ``spec.categorical`` order.
    beta_numeric : ndarray of shape (n_numeric,)
        Coefficients of the numerics (child-row numerics, then territory ones).
    link : {"logit", "probit"}
    """

    intercept: float
    luts: tuple[np.ndarray, ...]
    beta_numeric: np.ndarray
    link: Link

    @classmethod
    def from_params(cls, spec: FeatureSpec, params: np.ndarray, link: Link) -> Scorer:
        """Build from the coefficient vector of ``spec`` (intercept first)."""
        coef = dict(zip(spec.columns, params[1:], strict=True))
        luts = []
        for f in spec.categorical:
            cols = iter(f.columns)
            luts.append(
                np.array(
                    [0.0 if lv == f.reference else coef[next(cols)] for lv in f.levels]
                )
            )
        beta_num = np.array(
            [coef[f.name] for f in spec.numeric + spec.territory_features]
        )
        return cls(float(params[0]), tuple(luts), beta_num, link)

    @property
    def beta_x(self) -> np.ndarray:
        """Coefficients aligned with the x block of :class:`StatsLayout`."""
        return np.concatenate([*self.luts, self.beta_numeric])

    def linear_predictor(
        self,
        codes: Columns,
        numerics: Columns,
        n_rows: int | None = None,
        *,
        codes_checked: bool = False,
    ) -> np.ndarray:
        """η for each row: intercept + table lookups + numerics @ beta.

        Parameters
        ----------
        codes : ndarray of shape (n_rows, n_categorical), integer, or its columns
        numerics : ndarray of shape (n_rows, n_numeric), float, or its columns
        n_rows : int, optional
            Number of rows; by default that of `codes` or `numerics` (needed
            only when the model has neither categorical nor numeric features
            and they are given as empty sequences).
        codes_checked : bool, default False
            Whether every code is known to be a level index (as
            :func:`clrisk.features.encode` makes them): skips checking it.
        """
        cols, nums = column_list(codes), column_list(numerics)
        sizes = [len(lut) for lut in self.luts]
        check_columns(cols, nums, sizes, len(self.beta_numeric), codes_checked)
        if n_rows is None:
            n_rows = _n_rows(codes, cols)
        if n_rows is None:
            n_rows = _n_rows(numerics, nums)
        if n_rows is None:
            raise InvalidParameterError("Give n_rows: no column tells it.")
        if any(len(c) != n_rows for c in cols + nums):
            raise InvalidParameterError(
                f"Every column of codes and numerics must have {n_rows} rows; got "
                f"{sorted({len(c) for c in cols + nums})}."
            )
        eta = np.full(n_rows, self.intercept)
        for lut, col in zip(self.luts, cols, strict=True):
            eta += lut[np.asarray(col, dtype=np.intp)]  # (booleans: 0/1, not a mask)
        for b, col in zip(self.beta_numeric, nums, strict=True):
            eta += b * col
        return eta


def _n_rows(data: Columns, cols: list[np.ndarray]) -> int | None:
    """Rows of a 2-D array or of its first column (None without either)."""
    if isinstance(data, np.ndarray):
        return int(data.shape[0])
    return len(cols[0]) if cols else None


def accumulate(
    scorer: Scorer,
    codes: Columns,
    numerics: Columns,
    cell: np.ndarray,
    n_cells: int,
    weight: np.ndarray | None,
    layout: StatsLayout,
    *,
    kernel: str = "auto",
    codes_checked: bool = False,
) -> np.ndarray:
    """The statistics of each cell in one pass, with the kernel chosen.

    Parameters are those of :func:`accumulate_reference`, plus `kernel`:
    ``"compiled"`` (numba, :mod:`clrisk.kernel`), ``"numpy"`` (the reference)
    or ``"auto"`` (compiled when numba is installed). Both give the same sums
    to rounding (tested to 1e-12 relative).
    """
    _check_kernel(kernel)
    if kernel == "numpy" or not compiled.available():
        return accumulate_reference(
            scorer, codes, numerics, cell, n_cells, weight, layout,
            codes_checked=codes_checked,
        )  # fmt: skip
    return compiled.accumulate_compiled(
        scorer, codes, numerics, cell.astype(np.int64, copy=False), n_cells, weight,
        layout, codes_checked=codes_checked,
    )  # fmt: skip


def accumulate_reference(
    scorer: Scorer,
    codes: Columns,
    numerics: Columns,
    cell: np.ndarray,
    n_cells: int,
    weight: np.ndarray | None,
    layout: StatsLayout,
    *,
    codes_checked: bool = False,
) -> np.ndarray:
    """The statistics of each cell in one pass (plain-numpy reference kernel).

    Parameters
    ----------
    scorer : Scorer
    codes : ndarray of shape (n_rows, n_categorical), integer, or its columns
    numerics : ndarray of shape (n_rows, n_numeric), float64, or its columns
    cell : ndarray of shape (n_rows,), int64
        Cell of each row, in ``0..n_cells-1``.
    n_cells : int
    weight : ndarray of shape (n_rows,), optional
        Row weights (1 when None).
    layout : StatsLayout
    codes_checked : bool, default False
        Whether every code is known to be a level index (as
        :func:`clrisk.features.encode` makes them): skips checking it.

    Returns
    -------
    ndarray of shape (n_cells, layout.width), float64
    """
    compiled.check_layout(scorer, layout)
    n = len(cell)
    w = np.ones(n) if weight is None else weight
    eta = scorer.linear_predictor(codes, numerics, n, codes_checked=codes_checked)
    p = cdf(eta, scorer.link)
    wf = w * pdf(eta, scorer.link, p)
    out = np.zeros((n_cells, layout.width))
    out[:, 0] = np.bincount(cell, minlength=n_cells)
    out[:, 1] = np.bincount(cell, weights=w, minlength=n_cells)
    out[:, 2] = np.bincount(cell, weights=w * p, minlength=n_cells)
    out[:, 3] = np.bincount(cell, weights=wf, minlength=n_cells)
    xs, gs = layout.x.start, layout.g.start
    offsets = layout.level_offsets
    for j, (L, col) in enumerate(
        zip(layout.level_sizes, column_list(codes), strict=True)
    ):
        idx = cell * L + col
        size = n_cells * L
        a, b = xs + offsets[j], gs + offsets[j]
        out[:, a : a + L] = np.bincount(idx, weights=w, minlength=size).reshape(-1, L)
        out[:, b : b + L] = np.bincount(idx, weights=wf, minlength=size).reshape(-1, L)
    base = sum(layout.level_sizes)
    for q, xq in enumerate(column_list(numerics)):
        out[:, xs + base + q] = np.bincount(cell, weights=w * xq, minlength=n_cells)
        out[:, gs + base + q] = np.bincount(cell, weights=wf * xq, minlength=n_cells)
    return out


def shifted_risk(
    scorer: Scorer,
    codes: Columns,
    numerics: Columns,
    cell: np.ndarray,
    shifts: np.ndarray,
    weight: np.ndarray | None,
    *,
    kernel: str = "auto",
    codes_checked: bool = False,
) -> np.ndarray:
    """Σ w·F(η - shift) per cell for each column of `shifts`.

    Parameters
    ----------
    shifts : ndarray of shape (n_cells, n_shifts)
        Shift of the linear predictor of every row in a cell.
    kernel : {"auto", "compiled", "numpy"}, default "auto"
        As in :func:`accumulate`: the compiled pass
        (:func:`clrisk.kernel.shifted_risk_compiled`) or this plain-numpy
        reference; the same sums to rounding.
    codes_checked : bool, default False
        Whether every code is known to be a level index (as
        :func:`clrisk.features.encode` makes them): skips checking it.

    Returns
    -------
    ndarray of shape (n_cells, n_shifts)
    """
    _check_kernel(kernel)
    if kernel != "numpy" and compiled.available():
        return compiled.shifted_risk_compiled(
            scorer, codes, numerics, cell, shifts, weight, codes_checked=codes_checked
        )
    n_cells, k = shifts.shape
    w = np.ones(len(cell)) if weight is None else weight
    eta = scorer.linear_predictor(
        codes, numerics, len(cell), codes_checked=codes_checked
    )
    out = np.empty((n_cells, k))
    for j in range(k):
        p = cdf(eta - shifts[cell, j], scorer.link)
        out[:, j] = np.bincount(cell, weights=w * p, minlength=n_cells)
    return out


@dataclass(frozen=True)
class TerritoryStats:
    """Mergeable one-pass statistics per cell (territory, or territory x group).

    Attributes
    ----------
    keys : DataFrame of shape (n_cells, 1 + n_by)
        ``territory`` then one text column per breakdown variable; sorted.
    sums : ndarray of shape (n_cells, layout.width)
    layout : StatsLayout
    """

    keys: pd.DataFrame = field(repr=False)
    sums: np.ndarray = field(repr=False)
    layout: StatsLayout

    def __add__(self, other: TerritoryStats) -> TerritoryStats:
        if other.layout != self.layout or list(other.keys.columns) != list(
            self.keys.columns
        ):
            raise ValueError("Cannot add statistics of different layouts.")
        return TerritoryStats.combine([self, other])

    def to_frame(self) -> pd.DataFrame:
        """Keys and sums as one flat table (``s0``, ``s1``, ... for the sums).

        For shipping the statistics through an engine that moves tables (Spark
        ``mapInPandas``, a database): rows with equal keys may be summed there,
        and :meth:`from_frame` reads the result back.
        """
        sums = pd.DataFrame(
            self.sums, columns=[f"s{i}" for i in range(self.sums.shape[1])]
        )
        return pd.concat([self.keys.reset_index(drop=True), sums], axis=1)

    @staticmethod
    def from_frame(frame: pd.DataFrame, layout: StatsLayout) -> TerritoryStats:
        """Statistics from :meth:`to_frame` tables (one or several concatenated).

        Parameters
        ----------
        frame : DataFrame
            Key columns (``territory`` first, then breakdown columns) and the
            sum columns ``s0`` ... ``s{width-1}``.
        layout : StatsLayout
            The layout of the model (``StatsLayout.for_spec(model.spec_)``).
        """
        sums = [f"s{i}" for i in range(layout.width)]
        missing = [c for c in ["territory", *sums] if c not in frame.columns]
        if missing:
            raise InvalidParameterError(
                f"The statistics table lacks columns {missing[:5]}: it does not "
                "come from TerritoryStats.to_frame() of this model."
            )
        keys = [c for c in frame.columns if c not in set(sums)]
        if keys[0] != "territory":
            keys = ["territory", *[k for k in keys if k != "territory"]]
        return TerritoryStats.from_cells(
            frame[keys].astype(object), frame[sums].to_numpy(np.float64), layout
        )

    @staticmethod
    def combine(parts: list[TerritoryStats]) -> TerritoryStats:
        """Add several statistics (cells with equal keys are summed)."""
        keys = pd.concat([p.keys for p in parts], ignore_index=True)
        sums = np.concatenate([p.sums for p in parts])
        return TerritoryStats.from_cells(keys, sums, parts[0].layout)

    @staticmethod
    def from_cells(
        keys: pd.DataFrame, sums: np.ndarray, layout: StatsLayout
    ) -> TerritoryStats:
        """Sum rows of `sums` with equal keys and sort by key."""
        # the cell of each row: its keys column by column, in sorted order
        # (the lexicographic order of the key tuples)
        idx = np.zeros(len(keys), dtype=np.int64)
        first = np.zeros(0, dtype=np.int64)
        for col in keys.columns:
            # a missing key is a key of its own (sorted last), never -1
            values = keys[col].to_numpy(dtype=object)
            c, _ = pd.factorize(values, sort=True, use_na_sentinel=False)
            idx, first = _factorize_sorted(idx * (int(c.max(initial=-1)) + 1) + c)
        # sum the rows of each cell in row order (as np.add.at would, faster)
        order = np.argsort(idx, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(idx[order]) != 0])
        out = (
            np.add.reduceat(sums[order], starts, axis=0)
            if len(idx)
            else np.zeros((0, sums.shape[1]))
        )
        ukeys = keys.iloc[first].reset_index(drop=True).astype(object)
        return TerritoryStats(ukeys, out, layout)

    def by_territory(self) -> TerritoryStats:
        """Collapse the breakdown: one cell per territory."""
        return TerritoryStats.from_cells(
            self.keys[["territory"]], self.sums, self.layout
        )

    def total(self, by: list[str] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
        """Sums over all territories (optionally kept apart by key columns)."""
        if not by:
            return pd.DataFrame(index=[0]), self.sums.sum(axis=0, keepdims=True)
        merged = TerritoryStats.from_cells(self.keys[by], self.sums, self.layout)
        return merged.keys, merged.sums

    @property
    def by(self) -> list[str]:
        """Breakdown variables."""
        return [c for c in self.keys.columns if c != "territory"]


class PassTotals:
    """The statistics of a pass over a frame, added piece by piece.

    Cells (territory, or territory x group) are numbered for the whole pass
    as they first appear; each piece's rows are added to their cell's sums.
    With the compiled kernel the per-thread sums live for the whole pass
    (:class:`clrisk.kernel.Accumulator`), so a piece costs its rows only, not
    a merge of its cells; memory follows the number of cells, not of pieces
    (beyond ``clrisk.kernel.ACC_BYTES`` of per-thread sums, pieces are summed
    on their own and added, as with the numpy kernel).
    The result equals :meth:`TerritoryStats.combine` of per-piece statistics
    to rounding.

    Parameters
    ----------
    scorer : Scorer
    layout : StatsLayout
    kernel : {"auto", "compiled", "numpy"}
    """

    def __init__(self, scorer: Scorer, layout: StatsLayout, kernel: str = "auto"):
        _check_kernel(kernel)
        compiled.check_layout(scorer, layout)
        self.scorer = scorer
        self.layout = layout
        self._row: dict[Any, int] = {}
        self._columns: list[str] | None = None
        use_compiled = kernel == "compiled" or (
            kernel == "auto" and compiled.available()
        )
        self._acc = compiled.Accumulator(scorer, layout) if use_compiled else None
        self._sums = np.zeros((0, layout.width))
        # the keys of the last piece and their numbers (_ids)
        self._last_keys: tuple[list[np.ndarray], np.ndarray] | None = None

    def add(
        self,
        keys: pd.DataFrame,
        cell: np.ndarray,
        codes: Columns,
        numerics: Columns,
        weight: np.ndarray | None,
        *,
        codes_checked: bool = False,
    ) -> None:
        """Add the rows of one piece.

        Parameters
        ----------
        keys : DataFrame of shape (n_piece_cells, 1 + n_by)
            Distinct keys of the piece's cells (``territory`` first).
        cell : ndarray of shape (n_rows,)
            Row of `keys` of each row.
        codes, numerics, weight, codes_checked
            As in :func:`accumulate`.
        """
        ids = self._ids(keys)
        if self._acc is not None and self._acc.fits(len(self._row)):
            cells = ids[cell] if len(cell) else np.zeros(0, dtype=np.int64)
            self._acc.add(
                codes, numerics, cells, len(self._row), weight,
                codes_checked=codes_checked,
            )  # fmt: skip
            return
        # the numpy kernel, or more cells than the pass-wide sums may hold:
        # the piece's own cells, added to their rows
        if self._acc is not None:
            sums = compiled.accumulate_compiled(
                self.scorer, codes, numerics, cell, len(keys), weight, self.layout,
                codes_checked=codes_checked,
            )  # fmt: skip
        else:
            sums = accumulate_reference(
                self.scorer, codes, numerics, cell, len(keys), weight, self.layout,
                codes_checked=codes_checked,
            )  # fmt: skip
        if len(self._row) > len(self._sums):
            grown = np.zeros((max(2 * len(self._sums), len(self._row)), sums.shape[1]))
            grown[: len(self._sums)] = self._sums
            self._sums = grown
        np.add.at(self._sums, ids, sums)  # two keys of a piece may be one cell

    def __len__(self) -> int:
        return len(self._row)

    def stats(self) -> TerritoryStats:
        """The statistics of the cells with rows, sorted by key."""
        columns = self._columns or ["territory"]
        n = len(self._row)
        keys = list(self._row)
        table = (
            pd.DataFrame({columns[0]: pd.Series(keys, dtype=object)})
            if len(columns) == 1
            else pd.DataFrame(keys, columns=columns, dtype=object)
        )
        sums = np.zeros((n, self.layout.width))
        sums[: min(n, len(self._sums))] += self._sums[:n]
        if self._acc is not None:
            sums += self._acc.result(n)
        used = sums[:, 0] > 0
        return TerritoryStats.from_cells(
            table[used].reset_index(drop=True), sums[used], self.layout
        )

    def _ids(self, keys: pd.DataFrame) -> np.ndarray:
        """The pass-wide number of each key (new keys numbered as they come)."""
        columns = list(keys.columns)
        if self._columns is None:
            self._columns = columns
        if columns != self._columns:
            raise ValueError("Cannot add pieces with different key columns.")
        values = [keys[c].to_numpy(dtype=object) for c in columns]
        last = self._last_keys
        if (
            last is not None
            and len(last[0]) == len(values)
            and all(np.array_equal(a, b) for a, b in zip(last[0], values, strict=True))
        ):  # the keys of the piece before (a file's batches: its territories)
            return last[1]
        rows = values[0] if len(values) == 1 else list(zip(*values, strict=True))
        row = self._row
        # a new key gets the next number (len(row) is read before insertion)
        ids = np.fromiter(
            (row.setdefault(k, len(row)) for k in rows), dtype=np.int64, count=len(rows)
        )
        self._last_keys = (values, ids)
        return ids


def _factorize_sorted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each value among the sorted distinct values, and the position of
    the first occurrence of each distinct value."""
    _, first, rank = np.unique(values, return_index=True, return_inverse=True)
    return rank.astype(np.int64, copy=False), first


def _check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise InvalidParameterError(
            f"The 'kernel' parameter must be one of {KERNELS}; got {kernel!r}."
        )
    if kernel == "compiled" and not compiled.available():
        raise InvalidParameterError(
            "kernel='compiled' needs numba: pip install \"clrisk[fast]\"."
        )
