"""Risk levels: classify territories into k ordered classes (methodology, §5).

Six methods are available (:data:`METHODS`), at national scope or within each
region (``groups=``):

``"jenks"``
    Fisher-Jenks natural breaks, *exact*: dynamic programming over the sorted
    distinct values, weighted by their multiplicity, minimising the total
    within-class sum of squared deviations (SSE). Tied values are never split.
``"dalenius_hodges"``
    The cumulative √f rule: the values are counted in ``bins`` equal-width bins,
    the cumulative sum of √(frequency) is cut into k equal parts and each break is
    the bin edge whose cumulative √f is closest to a cut point.
``"kmeans"``
    One-dimensional k-means (Lloyd iterations from a deterministic start). It
    minimises the same criterion as Jenks, but may stop at a local optimum;
    Jenks is the exact optimum.
``"quantile"``
    Classes of (nearly) equal counts of territories.
``"equal"``
    Equal-width intervals between the minimum and the maximum.
``"fixed"``
    User thresholds.

The class rule
--------------
Every method returns *breaks* ``b[0] < b[1] < ...``, the upper bounds of the
classes below the top one. A value ``v`` belongs to class ``i`` = the number of
breaks strictly less than ``v`` (``np.searchsorted(b, v, side="left")``): a value
equal to a break belongs to the lower class. For every method the breaks,
applied with this rule, reproduce exactly the partition the method found.

Fewer classes than k
--------------------
The data-driven methods (jenks, dalenius_hodges, kmeans, quantile) never return
empty classes: when the data do not support k classes (fewer than k distinct
values, ties spanning a quantile, empty histogram bins) they use fewer, and those
are the *lowest* levels ("low", "medium" for k = 3). k-means may also use fewer
classes on data that support k, when Lloyd's iterations empty a cluster (Jenks
does not). Within regions, a region with fewer than k distinct values thus only
uses the lowest levels whatever its risks, and :func:`classify` warns, naming
those regions. ``"equal"`` and ``"fixed"``
define their intervals independently of how the values spread, so their classes
keep their meaning and may be empty (e.g. values {1, 2} with k = 3 equal
intervals are "low" and "high"); ``"equal"`` on a single distinct value gives one
class.

Missing values
--------------
NaN (a territory without data) gets code -1 and label ``"no data"`` and is
ignored when the breaks are computed. A scope without any data has no breaks and
no rows in the breaks table.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from clrisk.exceptions import ClriskWarning, InvalidParameterError

__all__ = ["METHODS", "Levels", "breaks", "classify"]

METHODS: tuple[str, ...] = (
    "jenks",
    "dalenius_hodges",
    "kmeans",
    "quantile",
    "equal",
    "fixed",
)

NO_DATA = "no data"
_DEFAULT_K = 3
_THREE_LEVELS = ("low", "medium", "high")
_KMEANS_MAX_ITER = 300
_TABLE_COLUMNS = ("group", "level", "level_code", "lower", "upper", "upper_break", "n")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Levels:
    """Risk levels of territories, with the breaks that define them.

    Attributes
    ----------
    codes : ndarray of int64, shape (n_territories,)
        Class of each territory, 0 (lowest) to k-1; -1 where the value is NaN.
    labels : ndarray of object (str), shape (n_territories,)
        ``level_names[code]``, or ``"no data"`` where the code is -1.
    breaks : DataFrame of shape (n_classes_in_all_groups, 7)
        One row per (scope group, class), groups in sorted order, with columns
        ``group`` (str; ``"national"`` at national scope), ``level`` (str label),
        ``level_code`` (int), ``lower`` and ``upper`` (float; observed minimum
        and maximum of the values in the class, NaN when it is empty),
        ``upper_break`` (float; the break that closes the class, +inf for the
        top one) and ``n`` (int; territories in the class).
    method : str
        One of :data:`METHODS`.
    k : int
        Number of levels requested (a group may use fewer, see the module notes).
    scope : str
        ``"national"`` or ``"region"``.
    level_names : tuple of str, length k
        Label of each level, lowest first.
    """

    codes: IntArray = field(repr=False)
    labels: npt.NDArray[np.object_] = field(repr=False)
    breaks: pd.DataFrame = field(repr=False)
    method: str
    k: int
    scope: str
    level_names: tuple[str, ...]


def classify(
    values: npt.ArrayLike,
    *,
    method: str = "jenks",
    k: int | None = None,
    groups: npt.ArrayLike | None = None,
    thresholds: npt.ArrayLike | None = None,
    labels: Sequence[str] | None = None,
    bins: int | None = None,
) -> Levels:
    """Classify territories into risk levels.

    Parameters
    ----------
    values : array-like of float, shape (n_territories,)
        Risk of each territory (e.g. in %); NaN for territories without data.
    method : str, default "jenks"
        One of :data:`METHODS` (see the module docstring).
    k : int, optional
        Number of levels, >= 2. Default 3, or ``len(thresholds) + 1`` with
        ``method="fixed"`` (where a k given must equal that).
    groups : array-like, shape (n_territories,), optional
        Region of each territory; when given, each region is classified on its
        own values (scope ``"region"``). Labels must not be missing and must
        stay distinct as text; the breaks table lists the groups sorted.
    thresholds : array-like of float, shape (k - 1,), optional
        Strictly increasing finite breaks; required by, and only used with,
        ``method="fixed"``.
    labels : sequence of str, length k, optional
        Level names, lowest first. Default ``("low", "medium", "high")`` for
        k = 3, otherwise ``"level 1"`` ... ``"level k"``.
    bins : int, optional
        Number of equal-width bins for ``method="dalenius_hodges"`` only, >= 2.
        Default ``max(10, min(100, n // 2))`` with n the number of non-missing
        values in the scope (group).

    Returns
    -------
    Levels
        Codes, labels and the breaks table.

    Raises
    ------
    InvalidParameterError
        For an invalid argument; the message names it and shows the value.

    Examples
    --------
    >>> lv = classify([1.0, 2.0, 10.0, 11.0, 30.0, float("nan")])
    >>> lv.labels.tolist()
    ['low', 'low', 'medium', 'medium', 'high', 'no data']
    """
    caller = "classify"
    x = _check_values(values, caller=caller)
    k, thr, bins = _check_method_params(method, k, thresholds, bins, caller=caller)
    names = _check_labels(labels, k, caller=caller)
    if groups is None:
        group_index = np.zeros(x.shape[0], dtype=np.int64)
        group_names = ["national"]
    else:
        group_index, group_names = _check_groups(
            groups, x.shape[0], caller=caller, has_data=~np.isnan(x)
        )

    codes = np.full(x.shape[0], -1, dtype=np.int64)
    has_data = ~np.isnan(x)
    blocks: list[dict[str, npt.NDArray[Any]]] = []
    for g, name in enumerate(group_names):
        idx = np.flatnonzero((group_index == g) & has_data)
        if idx.size == 0:
            continue
        xs = np.sort(x[idx])
        b = _breaks_sorted(xs, method, k, thr, bins)
        codes[idx] = np.searchsorted(b, x[idx], side="left")
        blocks.append(_table_block(name, xs, b, names))

    if groups is not None and method not in ("equal", "fixed"):
        _warn_small_groups(x, group_index, group_names, k)
    if method == "fixed":
        _warn_proportions(x, thr)
    label_lookup = np.array([*names, NO_DATA], dtype=object)
    return Levels(
        codes=codes,
        labels=label_lookup[codes],
        breaks=_assemble_table(blocks),
        method=method,
        k=k,
        scope="national" if groups is None else "region",
        level_names=names,
    )


def _warn_small_groups(
    x: FloatArray, group_index: npt.NDArray[np.int64], names: list[str], k: int
) -> None:
    """Warn about regions whose values cannot fill k levels."""
    small = [
        name
        for g, name in enumerate(names)
        if 0 < np.unique(x[(group_index == g) & ~np.isnan(x)]).size < k
    ]
    if small:
        warnings.warn(
            f"{len(small)} region(s) with fewer than {k} territories of distinct "
            f"values (e.g. {small[:5]}): classified among themselves, they only "
            "use the lowest levels, whatever their risks. Levels within regions "
            "are relative to the region; classify nationally to compare across "
            "regions.",
            ClriskWarning,
            stacklevel=3,
        )


def _warn_proportions(x: FloatArray, thresholds: FloatArray | None) -> None:
    """Warn when thresholds look like proportions of values in percent."""
    top = np.nanmax(x) if np.any(~np.isnan(x)) else np.nan
    if (
        thresholds is not None
        and thresholds.size
        and np.all(thresholds <= 1)
        and top > 1
    ):
        warnings.warn(
            f"Every threshold is at most 1 ({thresholds.tolist()}) while the values "
            f"go up to {top:g}: if the values are percentages (as territory risk "
            "is), give the thresholds in percent too (e.g. 5, 10), not as "
            "proportions.",
            ClriskWarning,
            stacklevel=3,
        )


def breaks(
    values: npt.ArrayLike,
    *,
    method: str = "jenks",
    k: int | None = None,
    thresholds: npt.ArrayLike | None = None,
    bins: int | None = None,
) -> FloatArray:
    """The breaks of a national classification (upper bounds of classes 1..k-1).

    Parameters
    ----------
    values : array-like of float, shape (n_territories,)
        NaN values are ignored.
    method, k, thresholds, bins
        As in :func:`classify`.

    Returns
    -------
    ndarray of float64, shape (n_classes - 1,)
        Increasing breaks; at most k - 1 of them (fewer when the data do not
        support k classes, see the module notes); empty when there is no data.
        Value ``v`` is in class ``np.searchsorted(breaks, v, side="left")``.
    """
    caller = "breaks"
    x = _check_values(values, caller=caller)
    k, thr, bins = _check_method_params(method, k, thresholds, bins, caller=caller)
    xs = np.sort(x[~np.isnan(x)])
    if xs.size == 0:
        return np.empty(0, dtype=np.float64)
    return _breaks_sorted(xs, method, k, thr, bins)


# --------------------------------------------------------------------------
# validation (the boundary)


def _check_values(values: npt.ArrayLike, *, caller: str) -> FloatArray:
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"The 'values' parameter of {caller} must be numbers (NaN for no "
            f"data); got values that cannot be read as floats ({exc})."
        ) from exc
    if x.ndim != 1:
        raise InvalidParameterError(
            f"The 'values' parameter of {caller} must be 1-D, one value per "
            f"territory; got shape {x.shape}."
        )
    infinite = np.flatnonzero(np.isinf(x))
    if infinite.size:
        examples = ", ".join(f"{x[i]} at position {i}" for i in infinite[:5])
        raise InvalidParameterError(
            f"The 'values' parameter of {caller} must be finite (NaN marks no "
            f"data); got {infinite.size} infinite value(s), e.g. {examples}."
        )
    return x


def _check_method_params(
    method: Any,
    k: Any,
    thresholds: Any,
    bins: Any,
    *,
    caller: str,
) -> tuple[int, FloatArray, int | None]:
    """Validated (k, thresholds, bins); thresholds empty unless method is fixed."""
    if not isinstance(method, str) or method not in METHODS:
        allowed = ", ".join(repr(m) for m in METHODS)
        raise InvalidParameterError(
            f"The 'method' parameter of {caller} must be one of {allowed}; "
            f"got {method!r}."
        )
    if k is not None and (
        not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 2
    ):
        raise InvalidParameterError(
            f"The 'k' parameter of {caller} must be an int >= 2; got {k!r}."
        )
    if method != "fixed" and thresholds is not None:
        raise InvalidParameterError(
            f"The 'thresholds' parameter of {caller} is only used with "
            f"method='fixed'; got {thresholds!r} with method={method!r}. Drop "
            "thresholds or use method='fixed'."
        )
    if method != "dalenius_hodges" and bins is not None:
        raise InvalidParameterError(
            f"The 'bins' parameter of {caller} is only used with "
            f"method='dalenius_hodges'; got {bins!r} with method={method!r}."
        )
    if bins is not None and (
        not isinstance(bins, numbers.Integral) or isinstance(bins, bool) or bins < 2
    ):
        raise InvalidParameterError(
            f"The 'bins' parameter of {caller} must be an int >= 2; got {bins!r}."
        )
    if method != "fixed":
        return (
            _DEFAULT_K if k is None else int(k),
            np.empty(0, dtype=np.float64),
            None if bins is None else int(bins),
        )
    thr = _check_thresholds(thresholds, caller=caller)
    if k is not None and k != thr.size + 1:
        raise InvalidParameterError(
            f"The 'k' parameter of {caller} must equal len(thresholds) + 1 = "
            f"{thr.size + 1} with method='fixed'; got {k!r}. Leave k out or "
            "give k - 1 thresholds."
        )
    return thr.size + 1, thr, None


def _check_thresholds(thresholds: Any, *, caller: str) -> FloatArray:
    if thresholds is None:
        raise InvalidParameterError(
            f"The 'thresholds' parameter of {caller} is required with "
            "method='fixed' (k - 1 strictly increasing breaks, e.g. "
            "thresholds=[5.0, 10.0]); got None."
        )
    try:
        thr = np.asarray(thresholds, dtype=np.float64)
        readable = True
    except (TypeError, ValueError):
        thr, readable = np.empty(0), False
    if (
        not readable
        or thr.ndim != 1
        or thr.size == 0
        or not np.all(np.isfinite(thr))
        or np.any(np.diff(thr) <= 0)
    ):
        raise InvalidParameterError(
            f"The 'thresholds' parameter of {caller} must be a non-empty 1-D "
            f"sequence of strictly increasing finite numbers; got {thresholds!r}."
        )
    return thr


def _check_labels(
    labels: Sequence[str] | None, k: int, *, caller: str
) -> tuple[str, ...]:
    if labels is None:
        if k == _DEFAULT_K:
            return _THREE_LEVELS
        return tuple(f"level {i}" for i in range(1, k + 1))
    names = tuple(labels) if not isinstance(labels, str) else (labels,)
    if (
        len(names) != k
        or not all(isinstance(s, str) for s in names)
        or len(set(names)) != k
        or NO_DATA in names
    ):
        raise InvalidParameterError(
            f"The 'labels' parameter of {caller} must be {k} distinct strings "
            f"(one per level, lowest first, not {NO_DATA!r}); got {labels!r}."
        )
    return names


def _check_groups(
    groups: npt.ArrayLike, n: int, *, caller: str, has_data: npt.NDArray[np.bool_]
) -> tuple[IntArray, list[str]]:
    """Group index of each value (0..G-1, -1 for a missing group of a value
    without data) and group names, groups sorted."""
    g = np.asarray(groups, dtype=object)
    if g.ndim != 1 or g.shape[0] != n:
        raise InvalidParameterError(
            f"The 'groups' parameter of {caller} must be 1-D with one region "
            f"label per value ({n}); got shape {g.shape}."
        )
    # a territory without data (NaN value) needs no group: it gets no level
    missing = np.flatnonzero(pd.isna(g) & has_data)
    if missing.size:
        raise InvalidParameterError(
            f"The 'groups' parameter of {caller} must not contain missing "
            f"labels; got {missing.size}, e.g. at position(s) "
            f"{missing[:5].tolist()}."
        )
    index, uniques = pd.factorize(g, sort=True)
    names = [str(u) for u in uniques]
    if len(set(names)) != len(names):
        raise InvalidParameterError(
            f"The 'groups' parameter of {caller} must hold labels that stay "
            f"distinct as text (the breaks table names groups by str); got "
            f"{uniques.tolist()!r}."
        )
    return index.astype(np.int64), names


# --------------------------------------------------------------------------
# numerics: each takes sorted finite values (n >= 1) and returns increasing
# breaks whose classes, under the class rule, are the method's partition.


def _breaks_sorted(
    xs: FloatArray,
    method: str,
    k: int,
    thresholds: FloatArray,
    bins: int | None,
) -> FloatArray:
    if method == "fixed":
        return thresholds
    if method == "equal":
        return _equal_breaks(xs, k)
    if method == "quantile":
        return _quantile_breaks(xs, k)
    if method == "dalenius_hodges":
        return _dalenius_hodges_breaks(xs, k, bins)
    u, counts = np.unique(xs, return_counts=True)
    if u.size <= k:  # each distinct value its own class
        return u[:-1]
    w = counts.astype(np.float64)
    if method == "jenks":
        return _jenks_breaks(u, w, k)
    return _kmeans_breaks(xs, u, w, k)


def _nonempty(xs: FloatArray, candidates: FloatArray) -> FloatArray:
    """Drop the breaks that close empty classes (candidates sorted, maybe tied).

    The kept breaks are those closing the non-empty classes below the highest
    non-empty one, so the partition of `xs` is unchanged.
    """
    used = np.unique(np.searchsorted(candidates, xs, side="left"))
    return candidates[used[:-1]]


def _equal_breaks(xs: FloatArray, k: int) -> FloatArray:
    lo, hi = xs[0], xs[-1]
    if lo == hi:
        return np.empty(0, dtype=np.float64)
    breaks: FloatArray = lo + (hi - lo) * np.arange(1, k) / k
    return breaks


def _quantile_breaks(xs: FloatArray, k: int) -> FloatArray:
    """Break c closes the first ceil(c n / k) sorted values (ties kept whole)."""
    n = xs.size
    last = (np.arange(1, k) * n + k - 1) // k - 1
    return _nonempty(xs, xs[last])


def _dalenius_hodges_breaks(xs: FloatArray, k: int, bins: int | None) -> FloatArray:
    """Cumulative √f rule on equal-width bins that are closed on the right.

    Bin j is (e_j, e_{j+1}] (the first also holds the minimum), the same rule as
    the classes, so a value on an edge is counted where it will be classified.
    """
    lo, hi = xs[0], xs[-1]
    if lo == hi:
        return np.empty(0, dtype=np.float64)
    n_bins = max(10, min(100, xs.size // 2)) if bins is None else bins
    inner = np.linspace(lo, hi, n_bins + 1)[1:-1]
    freq = np.bincount(np.searchsorted(inner, xs, side="left"), minlength=n_bins)
    cum = np.cumsum(np.sqrt(freq))
    targets = cum[-1] * np.arange(1, k) / k
    # cum[j] is the cumulative √f at inner edge j; take the closest, the first on
    # ties. No class is empty: edges with no value between them have equal cum,
    # so only the first of them can be chosen.
    nearest = np.argmin(np.abs(cum[:-1][None, :] - targets[:, None]), axis=1)
    return np.unique(inner[nearest])


def _jenks_breaks(u: FloatArray, w: FloatArray, k: int) -> FloatArray:
    """Exact Fisher-Jenks breaks on distinct sorted values `u` with weights `w`.

    Dynamic programming: ``best[c, j]`` is the least SSE of ``u[:j + 1]`` in
    c + 1 classes. For each j the SSE of every last class ``u[i:j + 1]`` is
    computed in one vectorised pass from sums of deviations from ``u[j]`` (local
    to the class, which limits cancellation), giving O(k m²) work for m distinct
    values (requires m > k). Ties in SSE go to the split with the larger last
    class.

    Returns the largest value of each class but the top one, shape (k - 1,).
    """
    m = u.size
    best = np.full((k - 1, m), np.inf)  # classes 1..k-1 (the last is only at m-1)
    start = np.zeros((k, m), dtype=np.int64)  # first index of the last class
    wsum = np.concatenate(([0.0], np.cumsum(w)))
    for j in range(m):
        d = u[: j + 1] - u[j]
        wd = w[: j + 1] * d
        s1 = np.cumsum(wd[::-1])[::-1]
        s2 = np.cumsum((wd * d)[::-1])[::-1]
        sse = np.maximum(s2 - s1 * s1 / (wsum[j + 1] - wsum[: j + 1]), 0.0)
        best[0, j] = sse[0]
        for c in range(1, min(k - 1, j + 1)):
            total = best[c - 1, c - 1 : j] + sse[c : j + 1]
            i = int(np.argmin(total))
            best[c, j] = total[i]
            start[c, j] = c + i
    # the top class, for the whole range only; sse is that of u[i:m]
    total = best[k - 2, k - 2 : m - 1] + sse[k - 1 : m]
    start[k - 1, m - 1] = k - 1 + int(np.argmin(total))

    firsts = np.empty(k - 1, dtype=np.int64)
    j = m - 1
    for c in range(k - 1, 0, -1):
        firsts[c - 1] = start[c, j]
        j = firsts[c - 1] - 1
    return u[firsts - 1]


def _kmeans_breaks(xs: FloatArray, u: FloatArray, w: FloatArray, k: int) -> FloatArray:
    """1-D k-means (Lloyd) on sorted `xs`, i.e. distinct `u` with weights `w`.

    Start: the quantile classes (deterministic). Each iteration sets the centres
    to the weighted class means and reassigns every value to its nearest centre
    (a value halfway between two goes to the lower); clusters left empty are
    dropped. Stops when the assignment no longer changes (or after
    ``_KMEANS_MAX_ITER`` iterations). In one dimension the clusters are
    contiguous, so the breaks are the largest value of each cluster but the top.
    Same criterion as Jenks (least SSE), but Lloyd may stop at a local optimum,
    where :func:`_jenks_breaks` finds the exact one.
    """
    start = _quantile_breaks(xs, k)
    codes = np.searchsorted(start, u, side="left")
    for _ in range(_KMEANS_MAX_ITER):
        centres = np.bincount(codes, weights=w * u) / np.bincount(codes, weights=w)
        nearest = np.searchsorted((centres[:-1] + centres[1:]) / 2, u, side="left")
        new = np.unique(nearest, return_inverse=True)[1]
        if np.array_equal(new, codes):
            break
        codes = new
    return u[np.flatnonzero(np.diff(codes))]


# --------------------------------------------------------------------------
# the breaks table


def _table_block(
    name: str, xs: FloatArray, b: FloatArray, names: tuple[str, ...]
) -> dict[str, npt.NDArray[Any]]:
    """Rows of one scope group: one per class defined by the breaks `b`."""
    n_classes = b.size + 1
    ends = np.concatenate((np.searchsorted(xs, b, side="right"), [xs.size]))
    starts = np.concatenate(([0], ends[:-1]))
    n = ends - starts
    filled = n > 0
    lower = np.full(n_classes, np.nan)
    upper = np.full(n_classes, np.nan)
    lower[filled] = xs[starts[filled]]
    upper[filled] = xs[ends[filled] - 1]
    return {
        "group": np.full(n_classes, name, dtype=object),
        "level": np.array(names[:n_classes], dtype=object),
        "level_code": np.arange(n_classes, dtype=np.int64),
        "lower": lower,
        "upper": upper,
        "upper_break": np.concatenate((b, [np.inf])),
        "n": n.astype(np.int64),
    }


def _assemble_table(blocks: list[dict[str, npt.NDArray[Any]]]) -> pd.DataFrame:
    empty = {
        "group": np.empty(0, dtype=object),
        "level": np.empty(0, dtype=object),
        "level_code": np.empty(0, dtype=np.int64),
        "lower": np.empty(0),
        "upper": np.empty(0),
        "upper_break": np.empty(0),
        "n": np.empty(0, dtype=np.int64),
    }
    columns = {
        col: np.concatenate([empty[col], *(blk[col] for blk in blocks)])
        for col in _TABLE_COLUMNS
    }
    return pd.DataFrame(columns).astype({"group": "str", "level": "str"})
