"""Choose the territories to act in first (methodology, section 7).

:func:`prioritise` ranks territories by where child labour is expected, selects a
set to act in (the first ``top``, as many as a ``budget`` pays for, or the
smallest set reaching a ``coverage`` target), honours exclusions and quotas per
region, and reports the targeting curve: the share of expected child labour that
the first *k* territories of the ranking hold.

Definitions used throughout
---------------------------
* A territory **has data** when both ``expected_count`` and ``risk`` are finite.
  The others get no score, are ranked last (by code), are never selected and
  carry the reason ``"no data"``.
* The **national total** of expected child labour is the sum of
  ``expected_count`` over the territories with data, excluded ones included, so
  shares read "of the whole country". It is summed in rank order, so the
  targeting curve ends at exactly 1.
* **Ties** in score are broken by territory code, ascending in string order
  (``"10" < "9"``), so the result does not depend on the row order of the input.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from clrisk.exceptions import (
    ClriskWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)

__all__ = ["Priorities", "prioritise"]

_REQUIRED = ("territory", "n_children", "expected_count", "risk")
_CARRIED = ("region", "level", "lead_policy_area")
_BY = ("expected_count", "risk", "blend")

_NO_DATA = "no data"
_EXCLUDED = "excluded"
_REGION_QUOTA = "region quota"
_OVER_BUDGET = "over budget"

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class Priorities:
    """Ranked territories, the selection and the targeting curve.

    Attributes
    ----------
    ranking : DataFrame of shape (n_territories, n_columns)
        Every territory in rank order. Columns: ``rank`` (1..n), ``territory``,
        ``region``, ``level``, ``lead_policy_area`` (each when the input has it),
        ``n_children``, ``weighted_children`` (when the input has it),
        ``expected_count``, ``risk``, ``score``, ``cost`` (when a cost was
        given), ``selected`` (bool) and ``reason`` (why a territory is not
        selected: ``"no data"``, ``"excluded"``, ``"region quota"``,
        ``"over budget"``; ``""`` for selected territories and for those the
        selection did not reach).
    selection : DataFrame of shape (n_selected, n_columns)
        The selected rows of `ranking` in rank order, without ``selected`` and
        ``reason``, plus ``cumulative_expected``, ``cumulative_share`` (of the
        national total), ``cumulative_children`` (weighted children when the
        table has ``weighted_children``, else ``n_children``) and
        ``cumulative_cost`` (when a cost was given).
    curve : DataFrame of shape (n_with_data + 1, 4)
        The targeting curve of the whole ranking (territories with data only,
        exclusions and quotas ignored): ``k`` (territories taken, 0..n_with_data),
        ``share_territories``, ``share_children`` (of weighted children when the
        table has them) and ``share_expected``; the
        first row is all zeros, the last all ones.
    by : str
        The ranking criterion.
    blend : float or None
        Weight of the expected count in the blended score; None unless
        ``by="blend"``.
    top, budget, coverage : int, float, float or None
        The selection rule that was used (at most one is not None).
    total_expected : float
        National total of expected child labour (territories with data).
    covered_share : float
        Share of `total_expected` in the selection (NaN when the total is 0).
    """

    ranking: pd.DataFrame = field(repr=False)
    selection: pd.DataFrame = field(repr=False)
    curve: pd.DataFrame = field(repr=False)
    by: str
    blend: float | None
    top: int | None
    budget: float | None
    coverage: float | None
    total_expected: float
    covered_share: float

    def summary(self) -> str:
        """A few lines for printing: the ranking, the rule, what was covered."""
        ranking = self.ranking
        n_no_data = int((ranking["reason"] == _NO_DATA).sum())
        lines = [
            f"Ranked {len(ranking):,} territories by {self.by}"
            + (f" (blend {self.blend:g})" if self.blend is not None else "")
            + (f"; {n_no_data:,} without data ranked last." if n_no_data else ".")
        ]
        n_sel = len(self.selection)
        if self.top is not None:
            rule = f"top {self.top:,}"
        elif self.budget is not None:
            if "cost" in ranking.columns:
                cumulative = self.selection["cumulative_cost"]
                spent = float(cumulative.iloc[-1]) if n_sel else 0.0
                rule = f"budget {self.budget:,.2f}, spent {spent:,.2f}"
            else:
                rule = f"budget of {self.budget:,.0f} territories"
        elif self.coverage is not None:
            reached = self.covered_share >= self.coverage
            rule = f"coverage target {self.coverage:.1%}, " + (
                "reached" if reached else "NOT reached"
            )
        else:
            lines.append("No selection rule given: ranking only.")
            return "\n".join(lines)
        children = (
            float(self.selection["cumulative_children"].iloc[-1]) if n_sel else 0.0
        )
        lines.append(
            f"Selected {n_sel:,} {'territory' if n_sel == 1 else 'territories'} "
            f"({rule}): {self.covered_share:.1%} of "
            f"the {self.total_expected:,.0f} children expected in child labour, "
            f"among {children:,.0f} children."
        )
        counts = ranking["reason"].value_counts()
        skipped = [
            f"{int(counts[r]):,} {r}"
            for r in (_EXCLUDED, _REGION_QUOTA, _OVER_BUDGET)
            if r in counts.index
        ]
        if skipped:
            lines.append("Passed over: " + ", ".join(skipped) + ".")
        return "\n".join(lines)


def prioritise(
    risk: Any,
    *,
    by: str = "expected_count",
    blend: float = 0.5,
    top: int | None = None,
    budget: float | None = None,
    cost: str | Mapping[str, float] | pd.Series | None = None,
    coverage: float | None = None,
    max_per_region: int | Mapping[Any, int] | None = None,
    exclude: Iterable[str] | None = None,
) -> Priorities:
    """Choose the territories to act in first.

    Parameters
    ----------
    risk : TerritoryRisk or DataFrame of shape (n_territories, n_columns)
        Territory results: an object with a ``.table`` DataFrame (the output of
        ``RiskModel.predict``) or the DataFrame itself. Needs one row per
        territory and the columns ``territory`` (str codes; leading zeros
        matter), ``n_children``, ``expected_count`` and ``risk`` (percent,
        0-100). ``region``, ``level`` and ``lead_policy_area`` are carried when
        present. NaN in ``expected_count`` or ``risk`` marks a territory without
        data.
    by : {"expected_count", "risk", "blend"}, default "expected_count"
        Ranking criterion: where most children are expected in child labour,
        the risk rate, or ``blend * E / max(E) + (1 - blend) * r / max(r)``
        (a term whose maximum is 0 counts as 0). Higher first; ties by code.
    blend : float in [0, 1], default 0.5
        Weight of the expected count when ``by="blend"``.
    top : int >= 0, optional
        Select the first `top` eligible territories.
    budget : float >= 0, optional
        Without `cost`, a whole number of territories (same as `top`). With
        `cost`, the money available: walking the ranking, each territory whose
        cost still fits in what is left is taken, the others are skipped
        (``"over budget"``). The selected costs never add up to more than
        `budget` (checked in exact arithmetic).
    cost : str, mapping or Series, optional
        A column of the table, or a mapping/Series from territory code to cost.
        Every territory that can be selected needs a finite cost >= 0 (those
        without data or excluded may lack one); codes in a mapping that are
        not in the table are ignored. Shown as the ``cost`` column. Costs and
        budget are added as the decimal numbers they print as, so costs of
        0.1 and 0.2 fill a budget of 0.3. A budget computed in floating point
        (e.g. the float sum of the costs, or costs stored as 32-bit floats)
        may fall a hair short of that decimal sum: round it to the cent.
    coverage : float in (0, 1], optional
        Select the shortest run of eligible territories, in rank order, holding
        at least this share of the national total. With the default ranking
        this is the smallest such set. If exclusions or quotas make the target
        unreachable, every eligible territory is taken and a ``ClriskWarning``
        is issued.
    max_per_region : int >= 0 or mapping of region to int >= 0, optional
        Most territories selected per region (needs a ``region`` column and a
        selection rule). Regions missing from a mapping have no cap. A
        territory whose region is full is skipped (``"region quota"``).
    exclude : iterable of str, optional
        Territory codes never selected (``"excluded"``); they keep their rank
        and count in the national total.

    Returns
    -------
    Priorities
        See :class:`Priorities`. Without `top`, `budget` or `coverage` nothing
        is selected: the result is the ranking and the targeting curve.

    Raises
    ------
    SchemaError
        Required columns missing, or `cost` / `max_per_region` needing a column
        the table lacks.
    DataValidationError
        Duplicate or non-string territory codes, non-numeric, infinite,
        negative or out-of-range values, missing or invalid costs, or no
        territory with data.
    InvalidParameterError
        An argument out of its range, more than one selection rule, unknown
        codes in `exclude` or unknown regions in `max_per_region`.
    """
    table = _get_table(risk)
    _check_columns(table)
    by, blend_used = _check_by(by, blend)
    top, budget, coverage = _check_rule(top, budget, coverage, cost)
    codes = _check_codes(table["territory"])
    n_children, expected, rate, has_data = _check_values(table, codes)
    children = _children(table, codes, n_children, has_data)
    excluded = _check_exclude(exclude, table["territory"])
    costs = (
        None
        if cost is None
        else _check_cost(cost, table, codes, needed=has_data & ~excluded)
    )
    region, quota = _check_quota(max_per_region, table, codes, top, budget, coverage)

    score = _score(expected, rate, has_data, by, blend)
    order = _rank_order(score, np.asarray(codes, dtype=str))

    ranking, selection, curve, total, covered = _prioritise(
        table,
        order=order,
        n_children=n_children,
        children=children,
        expected=expected,
        rate=rate,
        score=score,
        costs=costs,
        region=region,
        quota=quota,
        excluded=excluded,
        top=top,
        budget=budget,
        coverage=coverage,
    )
    if coverage is not None and total > 0 and not covered >= coverage:
        warnings.warn(
            f"prioritise: the coverage target {coverage:.1%} cannot be reached; "
            f"exclusions and region quotas leave {covered:.1%} of the national "
            "total selectable, and all of it was selected.",
            ClriskWarning,
            stacklevel=2,
        )
    return Priorities(
        ranking=ranking,
        selection=selection,
        curve=curve,
        by=by,
        blend=blend_used,
        top=top,
        budget=budget,
        coverage=coverage,
        total_expected=total,
        covered_share=covered,
    )


# --------------------------------------------------------------------------- #
# Validation at the boundary
# --------------------------------------------------------------------------- #


def _get_table(risk: Any) -> pd.DataFrame:
    if isinstance(risk, pd.DataFrame):
        return risk
    table = getattr(risk, "table", None)
    if not isinstance(table, pd.DataFrame):
        raise InvalidParameterError(
            "The 'risk' parameter of prioritise must be a TerritoryRisk (with a "
            "'.table' DataFrame) or a DataFrame. Got "
            f"{type(risk).__name__} instead."
        )
    return table


def _check_columns(table: pd.DataFrame) -> None:
    columns = [str(c) for c in table.columns]
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise SchemaError(
            "prioritise: the risk table lacks required columns; rename them or "
            "pass the output of RiskModel.predict.",
            expected=[*_REQUIRED, *_present(table, _CARRIED)],
            received=columns,
        )
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise SchemaError(
            f"prioritise: the risk table has duplicated column names {duplicated}; "
            "keep one of each."
        )


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_by(by: Any, blend: Any) -> tuple[str, float | None]:
    if not isinstance(by, str) or by not in _BY:
        raise InvalidParameterError(
            "The 'by' parameter of prioritise must be one of "
            f"{', '.join(repr(b) for b in _BY)}. Got {by!r} instead."
        )
    if not _is_real(blend) or not 0.0 <= float(blend) <= 1.0:
        raise InvalidParameterError(
            "The 'blend' parameter of prioritise must be a float in the range "
            f"[0, 1]. Got {blend!r} instead."
        )
    return by, (float(blend) if by == "blend" else None)


def _check_rule(
    top: Any, budget: Any, coverage: Any, cost: Any
) -> tuple[int | None, float | None, float | None]:
    rules = (("top", top), ("budget", budget), ("coverage", coverage))
    given = {name: value for name, value in rules if value is not None}
    if len(given) > 1:
        shown = " and ".join(f"{k}={v!r}" for k, v in given.items())
        raise InvalidParameterError(
            "prioritise takes at most one of 'top', 'budget' and 'coverage'. "
            f"Got {shown}; keep one."
        )
    if top is not None:
        if not _is_int(top) or top < 0:
            raise InvalidParameterError(
                "The 'top' parameter of prioritise must be an int in the range "
                f"[0, inf). Got {top!r} instead."
            )
        return int(top), None, None
    if budget is not None:
        if not _is_real(budget) or not math.isfinite(budget) or budget < 0:
            raise InvalidParameterError(
                "The 'budget' parameter of prioritise must be a finite number in "
                f"the range [0, inf). Got {budget!r} instead."
            )
        if cost is None:
            if float(budget) != math.floor(budget):
                raise InvalidParameterError(
                    "The 'budget' parameter of prioritise counts territories when "
                    "'cost' is not given, so it must be a whole number. Got "
                    f"{budget!r} instead; to spend money, give cost= too."
                )
            return None, float(int(budget)), None
        return None, float(budget), None
    if coverage is not None:
        if not _is_real(coverage) or not 0.0 < float(coverage) <= 1.0:
            raise InvalidParameterError(
                "The 'coverage' parameter of prioritise must be a float in the "
                f"range (0, 1]. Got {coverage!r} instead."
            )
        return None, None, float(coverage)
    return None, None, None


def _check_codes(territory: pd.Series) -> list[str]:
    rows = np.flatnonzero(territory.isna().to_numpy())
    if rows.size:
        raise DataValidationError(
            column="territory",
            problem="missing territory code",
            n_bad=rows.size,
            examples=[f"row {i}" for i in rows],
            fix="Every row needs the code of its territory.",
        )
    values: list[str] = territory.tolist()
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise DataValidationError(
            column="territory",
            problem=f"codes must be strings, got {type(bad[0]).__name__} values",
            n_bad=len(bad),
            examples=bad,
            fix="Codes are text and leading zeros matter ('05001', not 5001): "
            "read the column as text, e.g. pd.read_csv(..., dtype={'territory': "
            "str}).",
        )
    dup = territory.duplicated(keep=False).to_numpy()
    if dup.any():
        examples = list(dict.fromkeys(territory[dup].tolist()))
        raise DataValidationError(
            column="territory",
            problem="duplicated territory codes",
            n_bad=int(dup.sum()),
            examples=examples,
            fix="prioritise needs one row per territory; aggregate the rows first.",
        )
    return values


def _as_float(
    values: pd.Series, *, column: str, codes: Sequence[str], where: str = ""
) -> FloatArray:
    """Numeric values as float64 (NaN for missing); error for anything else."""
    if pd.api.types.is_bool_dtype(values) or not (
        pd.api.types.is_numeric_dtype(values) or pd.api.types.is_object_dtype(values)
    ):
        bad = np.flatnonzero(values.notna().to_numpy())
        raise DataValidationError(
            column=column,
            problem=f"values must be numbers, the column has dtype {values.dtype}",
            n_bad=bad.size,
            examples=[f"{codes[i]}: {values.iloc[i]!r}" for i in bad[:5]],
            fix="Convert it with pd.to_numeric.",
            where=where,
        )
    if pd.api.types.is_object_dtype(values):
        numeric = pd.to_numeric(values, errors="coerce")
        bad = np.flatnonzero((values.notna() & numeric.isna()).to_numpy())
        if bad.size:
            raise DataValidationError(
                column=column,
                problem="values are not numbers",
                n_bad=bad.size,
                examples=[f"{codes[i]}: {values.iloc[i]!r}" for i in bad[:5]],
                fix="Convert it with pd.to_numeric.",
                where=where,
            )
        values = numeric
    out: FloatArray = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _bad_values(
    bad: BoolArray,
    values: FloatArray,
    codes: Sequence[str],
    *,
    column: str,
    problem: str,
    fix: str,
    where: str = "",
) -> None:
    rows = np.flatnonzero(bad)
    if rows.size:
        raise DataValidationError(
            column=column,
            problem=problem,
            n_bad=rows.size,
            examples=[
                codes[i]
                if math.isnan(values[i])
                else f"{codes[i]}: {float(values[i])!r}"
                for i in rows[:5].tolist()
            ],
            fix=fix,
            where=where,
        )


def _check_values(
    table: pd.DataFrame, codes: Sequence[str]
) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    n_children = _as_float(table["n_children"], column="n_children", codes=codes)
    expected = _as_float(table["expected_count"], column="expected_count", codes=codes)
    rate = _as_float(table["risk"], column="risk", codes=codes)
    fix = "Check how the table was produced."
    for name, x in (("n_children", n_children), ("expected_count", expected)):
        _bad_values(
            np.isinf(x), x, codes, column=name, problem="infinite values", fix=fix
        )
        _bad_values(x < 0, x, codes, column=name, problem="negative values", fix=fix)
    _bad_values(
        np.isinf(rate) | (rate < 0) | (rate > 100),
        rate,
        codes,
        column="risk",
        problem="values outside [0, 100]",
        fix="risk is a percentage; multiply proportions by 100.",
    )
    has_data = np.isfinite(expected) & np.isfinite(rate)
    _bad_values(
        has_data & np.isnan(n_children),
        n_children,
        codes,
        column="n_children",
        problem="missing for territories with expected_count and risk",
        fix=fix,
    )
    if not has_data.any():
        raise DataValidationError(
            column="expected_count",
            problem="no territory has both expected_count and risk",
            n_bad=len(codes),
            examples=codes,
            fix="There is nothing to rank; check the projection step.",
        )
    return n_children, expected, rate, has_data


def _children(
    table: pd.DataFrame,
    codes: Sequence[str],
    n_children: FloatArray,
    has_data: BoolArray,
) -> FloatArray:
    """Children each territory holds: ``weighted_children`` when the table has
    it (a weighted frame's rows are a sample), else ``n_children``."""
    if "weighted_children" not in table.columns:
        return n_children
    w = _as_float(table["weighted_children"], column="weighted_children", codes=codes)
    fix = "Check how the table was produced."
    _bad_values(
        np.isinf(w) | (w < 0),
        w,
        codes,
        column="weighted_children",
        problem="infinite or negative values",
        fix=fix,
    )
    _bad_values(
        has_data & np.isnan(w),
        w,
        codes,
        column="weighted_children",
        problem="missing for territories with expected_count and risk",
        fix=fix,
    )
    return w


def _check_cost(
    cost: Any, table: pd.DataFrame, codes: Sequence[str], *, needed: BoolArray
) -> FloatArray:
    """Cost of each territory; those that can never be selected (no data,
    excluded) may lack one."""
    fix = "Give every territory a finite cost >= 0."
    if isinstance(cost, str):
        if cost not in table.columns:
            raise SchemaError(
                f"The 'cost' parameter of prioritise names the column {cost!r}, "
                "which the risk table does not have.",
                expected=[*_REQUIRED, *_present(table, _CARRIED), cost],
                received=[str(c) for c in table.columns],
            )
        column, where = cost, ""
        values = table[cost].reset_index(drop=True)
    elif isinstance(cost, Mapping | pd.Series):
        series = cost if isinstance(cost, pd.Series) else pd.Series(dict(cost))
        if not series.index.is_unique:
            dup = series.index[series.index.duplicated()].unique().tolist()
            raise InvalidParameterError(
                "The 'cost' parameter of prioritise has duplicated territory codes "
                f"{dup[:5]!r}; give one cost per territory."
            )
        column, where = "cost", "the 'cost' mapping"
        values = series.reindex(pd.Index(codes, dtype=object)).reset_index(drop=True)
        fix += (
            " A cost Series or mapping must be keyed by territory code (text such "
            "as '05001'), not by row number."
        )
    else:
        raise InvalidParameterError(
            "The 'cost' parameter of prioritise must be a column name, a mapping "
            "or a Series from territory code to cost. Got "
            f"{type(cost).__name__} instead."
        )
    x = _as_float(values, column=column, codes=codes, where=where)
    for bad, problem in (
        (np.isnan(x) & needed, "no cost for these territories"),
        (np.isinf(x), "infinite costs"),
        (x < 0, "negative costs"),
    ):
        _bad_values(bad, x, codes, column=column, problem=problem, fix=fix, where=where)
    return x


def _check_quota(
    max_per_region: Any,
    table: pd.DataFrame,
    codes: Sequence[str],
    top: int | None,
    budget: float | None,
    coverage: float | None,
) -> tuple[IntArray | None, IntArray | None]:
    """Region index of each territory and the quota of each region."""
    if max_per_region is None:
        return None, None
    if top is None and budget is None and coverage is None:
        raise InvalidParameterError(
            "The 'max_per_region' parameter of prioritise limits a selection; give "
            "top, budget or coverage too."
        )
    if "region" not in table.columns:
        raise SchemaError(
            f"The 'max_per_region' parameter of prioritise (got {max_per_region!r}) "
            "needs a 'region' column in the risk table.",
            expected=[*_REQUIRED, "region", *_present(table, _CARRIED[1:])],
            received=[str(c) for c in table.columns],
        )
    regions = table["region"]
    # territories without data are never selected: their region is not needed
    no_data = table["expected_count"].isna() | table["risk"].isna()
    regions = regions.where(~(regions.isna() & no_data), "(no data)")
    rows = np.flatnonzero(regions.isna().to_numpy())
    if rows.size:
        raise DataValidationError(
            column="region",
            problem="missing region, so max_per_region cannot apply",
            n_bad=rows.size,
            examples=[codes[i] for i in rows.tolist()],
            fix="Fill in the region of every territory.",
        )
    index, uniques = pd.factorize(regions)
    n = len(codes)
    if _is_int(max_per_region):
        if max_per_region < 0:
            raise InvalidParameterError(
                "The 'max_per_region' parameter of prioritise must be an int in the "
                f"range [0, inf). Got {max_per_region!r} instead."
            )
        quota = np.full(len(uniques), min(int(max_per_region), n), dtype=np.intp)
    elif isinstance(max_per_region, Mapping):
        known = set(uniques.tolist())
        unknown = [r for r in max_per_region if r not in known]
        if unknown:
            raise InvalidParameterError(
                "The 'max_per_region' parameter of prioritise names regions that "
                f"are not in the 'region' column: {_listing(unknown)}."
            )
        bad = {r: q for r, q in max_per_region.items() if not _is_int(q) or q < 0}
        if bad:
            raise InvalidParameterError(
                "The 'max_per_region' parameter of prioritise needs an int >= 0 per "
                f"region. Got {bad!r}."
            )
        quota = np.array(
            [min(int(max_per_region.get(r, n)), n) for r in uniques.tolist()],
            dtype=np.intp,
        )
    else:
        raise InvalidParameterError(
            "The 'max_per_region' parameter of prioritise must be an int or a "
            f"mapping from region to int. Got {type(max_per_region).__name__} "
            "instead."
        )
    return np.asarray(index, dtype=np.intp), quota


def _check_exclude(exclude: Any, territory: pd.Series) -> BoolArray:
    if exclude is None:
        return np.zeros(len(territory), dtype=bool)
    if isinstance(exclude, str | bytes) or not isinstance(exclude, Iterable):
        raise InvalidParameterError(
            "The 'exclude' parameter of prioritise must be a collection of "
            f"territory codes, e.g. ['05001']. Got {exclude!r} instead."
        )
    items = list(exclude)
    known = set(territory.tolist())
    unknown = list(dict.fromkeys(c for c in items if c not in known))
    if unknown:
        raise InvalidParameterError(
            "The 'exclude' parameter of prioritise lists codes that are not in the "
            f"risk table: {_listing(unknown)}. Codes are text and leading zeros "
            "matter ('05001', not 5001)."
        )
    mask: BoolArray = territory.isin(items).to_numpy(dtype=bool)
    return mask


def _present(table: pd.DataFrame, names: Iterable[str]) -> list[str]:
    return [name for name in names if name in table.columns]


def _listing(items: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    more = len(items) - limit
    return shown + (f" and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------- #
# Computation: trusts its inputs
# --------------------------------------------------------------------------- #


def _score(
    expected: FloatArray, rate: FloatArray, has_data: BoolArray, by: str, blend: float
) -> FloatArray:
    """Score of each territory, NaN without data. Shape (n_territories,)."""
    score = np.full(expected.shape, np.nan)
    if by == "expected_count":
        score[has_data] = expected[has_data]
    elif by == "risk":
        score[has_data] = rate[has_data]
    else:
        score[has_data] = blend * _scaled(expected[has_data]) + (1 - blend) * _scaled(
            rate[has_data]
        )
    return score


def _scaled(x: FloatArray) -> FloatArray:
    top = x.max()
    return x / top if top > 0 else np.zeros_like(x)


def _rank_order(score: FloatArray, codes: NDArray[np.str_]) -> IntArray:
    """Row indices in rank order: score descending, NaN last, ties by code."""
    return np.lexsort((codes, -score)).astype(np.intp)


def _within_quota(eligible: BoolArray, region: IntArray, quota: IntArray) -> BoolArray:
    """True where fewer than the quota of eligible territories of the same region
    come earlier (arrays in rank order). For a selection that takes every
    eligible territory until it stops, this is exactly "region not yet full"."""
    ok = np.ones(eligible.shape, dtype=bool)
    idx = np.flatnonzero(eligible)
    if idx.size == 0:
        return ok
    reg = region[idx]
    order = np.argsort(reg, kind="stable")
    sorted_reg = reg[order]
    pos = np.arange(idx.size)
    starts = np.r_[True, sorted_reg[1:] != sorted_reg[:-1]]
    seen = np.empty(idx.size, dtype=np.intp)
    seen[order] = pos - np.maximum.accumulate(np.where(starts, pos, 0))
    ok[idx] = seen < quota[reg]
    return ok


def _take_prefix(
    eligible: BoolArray,
    expected: FloatArray,
    total: float,
    region: IntArray | None,
    quota: IntArray | None,
    top: int | None,
    coverage: float | None,
    reason: NDArray[np.object_],
) -> BoolArray:
    """`top` or `coverage`: every eligible territory within quota, in rank order,
    until the rule stops. Arrays in rank order; fills `reason` in place."""
    n = eligible.size
    ok = (
        np.ones(n, dtype=bool)
        if region is None or quota is None
        else _within_quota(eligible, region, quota)
    )
    candidate = eligible & ok
    if top is not None:
        taken = np.cumsum(candidate)
        stop = int(np.searchsorted(taken, top)) if top > 0 else -1
    elif coverage is not None and total > 0:
        # Same sequential sums and division as the reported cumulative_share.
        share = np.cumsum(np.where(candidate, expected, 0.0)) / total
        hit = candidate & (share >= coverage)
        stop = int(np.argmax(hit)) if hit.any() else n - 1
    else:
        stop = -1
    reached = np.arange(n) <= stop
    reason[eligible & ~ok & reached] = _REGION_QUOTA
    return candidate & reached


def _spend(
    eligible: BoolArray,
    costs: FloatArray | None,
    budget: float,
    region: IntArray | None,
    quota: IntArray | None,
    reason: NDArray[np.object_],
) -> BoolArray:
    """Greedy walk down the ranking: take each territory whose cost still fits,
    skip the others. Exact arithmetic, so the total never exceeds `budget`.
    Without costs each territory costs 1. Arrays in rank order."""
    n = eligible.size
    selected = np.zeros(n, dtype=bool)
    left: Fraction | int
    if costs is None:
        price: list[Fraction] | list[int] = [1] * n
        left = int(budget)
    else:
        # the decimal numbers as written (0.1 is 1/10, not the nearest binary
        # fraction), so costs that fill a budget exactly in decimal fit
        price = [_decimal(c) for c in costs.tolist()]
        left = _decimal(budget)
    used = np.zeros(0 if quota is None else quota.size, dtype=np.intp)
    region_of = None if region is None else region.tolist()
    for i in np.flatnonzero(eligible).tolist():
        if region_of is not None and quota is not None:
            r = region_of[i]
            if used[r] >= quota[r]:
                reason[i] = _REGION_QUOTA
                continue
        if price[i] <= left:
            left -= price[i]
            selected[i] = True
            if region_of is not None:
                used[region_of[i]] += 1
        else:
            reason[i] = _OVER_BUDGET
    return selected


def _decimal(x: float) -> Fraction:
    """`x` as the shortest decimal that reads back as it, exactly: what the user
    typed (0.1 -> 1/10). NaN (a cost never needed) is never compared."""
    return Fraction(repr(float(x))) if math.isfinite(x) else Fraction(0)


def _exact_cumsum(values: FloatArray) -> FloatArray:
    """Running totals, each exactly summed and then rounded once."""
    out = np.empty(values.size)
    running = Fraction(0)
    for i, v in enumerate(values.tolist()):
        running += _decimal(v)
        out[i] = float(running)
    return out


def _prioritise(
    table: pd.DataFrame,
    *,
    order: IntArray,
    n_children: FloatArray,
    children: FloatArray,
    expected: FloatArray,
    rate: FloatArray,
    score: FloatArray,
    costs: FloatArray | None,
    region: IntArray | None,
    quota: IntArray | None,
    excluded: BoolArray,
    top: int | None,
    budget: float | None,
    coverage: float | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, float, float]:
    n = order.size
    has_data = np.isfinite(score)[order]
    m = int(has_data.sum())  # data rows come first in rank order
    e_r, n_r, c_r = expected[order], n_children[order], children[order]
    ex_r = excluded[order]
    eligible = has_data & ~ex_r
    reg_r = None if region is None else region[order]

    # Targeting curve and national total, summed in rank order.
    cum_e = np.concatenate([[0.0], np.cumsum(e_r[:m])])
    cum_n = np.concatenate([[0.0], np.cumsum(c_r[:m])])
    total = float(cum_e[-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        curve = pd.DataFrame(
            {
                "k": np.arange(m + 1),
                "share_territories": np.arange(m + 1) / m,
                "share_children": cum_n / cum_n[-1],
                "share_expected": cum_e / total,
            }
        )

    reason = np.full(n, "", dtype=object)
    reason[ex_r] = _EXCLUDED
    reason[~has_data] = _NO_DATA
    if budget is not None:
        cost_r = None if costs is None else costs[order]
        selected = _spend(eligible, cost_r, budget, reg_r, quota, reason)
    elif top is not None or coverage is not None:
        selected = _take_prefix(
            eligible, e_r, total, reg_r, quota, top, coverage, reason
        )
    else:
        selected = np.zeros(n, dtype=bool)

    columns: dict[str, Any] = {
        "rank": np.arange(1, n + 1),
        "territory": table["territory"].iloc[order].reset_index(drop=True),
    }
    for name in _CARRIED:
        if name in table.columns:
            columns[name] = table[name].iloc[order].reset_index(drop=True)
    columns["n_children"] = n_r
    if "weighted_children" in table.columns:
        columns["weighted_children"] = c_r
    columns |= {
        "expected_count": e_r,
        "risk": rate[order],
        "score": score[order],
    }
    if costs is not None:
        columns["cost"] = costs[order]
    columns["selected"] = selected
    columns["reason"] = pd.array(reason.tolist(), dtype="str")
    ranking = pd.DataFrame(columns)

    selection = (
        ranking.loc[selected]
        .drop(columns=["selected", "reason"])
        .reset_index(drop=True)
    )
    cum_sel = np.cumsum(e_r[selected])
    with np.errstate(divide="ignore", invalid="ignore"):
        selection["cumulative_expected"] = cum_sel
        selection["cumulative_share"] = cum_sel / total
    selection["cumulative_children"] = np.cumsum(c_r[selected])
    if costs is not None:
        selection["cumulative_cost"] = _exact_cumsum(costs[order][selected])

    if total <= 0:
        covered = math.nan
    elif cum_sel.size:
        covered = float(cum_sel[-1] / total)
    else:
        covered = 0.0
    return ranking, selection, curve, total, covered
