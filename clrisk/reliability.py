"""Reliability of territory estimates and disclosure control for exports.

Two questions before a territory table leaves the office:

1. **Is each estimate precise enough to publish?** :func:`assess` adds the
   coefficient of variation of the risk estimate, ``risk_cv = 100 · risk_se /
   risk`` (%), and a three-band reliability flag, as national statistical offices
   grade their survey estimates.
2. **Could a published figure expose a handful of children?** :func:`suppress`
   blanks the estimates of territories with fewer than ``min_children``
   children (*primary* suppression) and, where a published total would give a
   blanked value back by subtraction (region total − published territories),
   blanks one more territory (*complementary* or secondary suppression). It
   returns the export table and a :class:`SuppressionRecord` of what was
   withheld and why.

The precision graded here is that of the model-based estimate *given the
model*: ``risk_se`` (see :class:`~clrisk.territory.TerritoryRisk`) reflects the
uncertainty of the coefficients, not the territory's unexplained variation nor
model bias. Model-based CVs are therefore much smaller than those of direct
survey estimates for the same territory; "reliable" here is necessary, not
sufficient, and a weak model (see :func:`clrisk.validation.cross_validate`)
makes every territory's figure doubtful whatever its CV.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clrisk.exceptions import DataValidationError, InvalidParameterError, SchemaError
from clrisk.territory import TerritoryRisk

__all__ = [
    "DEFAULT_CV_THRESHOLDS",
    "DEFAULT_MIN_CHILDREN",
    "RELIABILITY_LABELS",
    "SuppressionRecord",
    "assess",
    "suppress",
    "suppress_breakdown",
]

#: CV (%) cut-offs between "reliable", "use with caution" and "unreliable".
DEFAULT_CV_THRESHOLDS: tuple[float, float] = (15.0, 30.0)

#: Territories with fewer children than this are suppressed in exports.
DEFAULT_MIN_CHILDREN: int = 50

#: The reliability flags, best first, then the flags for rows without a grade.
RELIABILITY_LABELS: tuple[str, ...] = (
    "reliable",
    "use with caution",
    "unreliable",
    "no data",
    "not assessed",
)

#: Key under which the national total appears in ``withheld_totals``.
NATIONAL = "national"

_REQUIRED = ("territory", "n_children", "risk", "risk_se")
_ADDED = ("risk_cv", "reliability", "suppressed")


@dataclass(frozen=True)
class SuppressionRecord:
    """What :func:`suppress` withheld from an export, and why.

    The record names territories and regions only, never their values, so it
    can be published with the table (e.g. as a sheet of the workbook).

    Attributes
    ----------
    min_children : int
        The threshold applied.
    primary : tuple of str
        Territories suppressed for their own sake (fewer than `min_children`
        children, or unreliable when ``suppress_unreliable=True``).
    complementary : tuple of str
        Territories suppressed only so that a primary one cannot be recovered by
        subtraction from a published total.
    protects : dict of str to str
        For each complementary territory, the territory (or withheld region)
        it protects.
    withheld_totals : tuple of str
        Regions (and ``"national"``) whose totals must not be published either,
        because they would equal a suppressed territory (a region with a
        single territory that has children) or give one back by subtraction.
    reasons : dict of str to str
        The reason of every suppressed territory.
    columns_blanked : tuple of str
        Columns blanked in the suppressed rows.
    region : str or None
        The region column used (None: the national total only).
    """

    min_children: int
    primary: tuple[str, ...]
    complementary: tuple[str, ...]
    protects: Mapping[str, str]
    withheld_totals: tuple[str, ...]
    reasons: Mapping[str, str]
    columns_blanked: tuple[str, ...]
    region: str | None = None
    n_territories: int = field(default=0)

    @property
    def suppressed(self) -> tuple[str, ...]:
        """All suppressed territories, primary and complementary, sorted."""
        return tuple(sorted(self.primary + self.complementary))

    def to_frame(self) -> pd.DataFrame:
        """One row per suppressed territory: ``territory``, ``kind``, ``reason``.

        Returns
        -------
        DataFrame of shape (n_suppressed, 3)
        """
        kinds = {t: "primary" for t in self.primary} | {
            t: "complementary" for t in self.complementary
        }
        codes = self.suppressed
        return pd.DataFrame(
            {
                "territory": list(codes),
                "kind": [kinds[t] for t in codes],
                "reason": [self.reasons[t] for t in codes],
            }
        )

    def summary(self) -> str:
        """One line for reports."""
        unreliable = any(r.startswith("unreliable") for r in self.reasons.values())
        line = (
            f"Suppressed {len(self.suppressed)} of {self.n_territories} territories: "
            f"{len(self.primary)} with fewer than {self.min_children} children"
            + (" or unreliable" if unreliable else "")
            + f", {len(self.complementary)} complementary"
        )
        if self.withheld_totals:
            line += f"; totals withheld: {', '.join(self.withheld_totals)}"
        return line + "."


def assess(
    risk: TerritoryRisk | pd.DataFrame,
    *,
    cv_thresholds: Sequence[float] = DEFAULT_CV_THRESHOLDS,
    min_children: int = DEFAULT_MIN_CHILDREN,
) -> pd.DataFrame:
    """Coefficient of variation, reliability flag and suppression flag per territory.

    Parameters
    ----------
    risk : TerritoryRisk or DataFrame of shape (n_territories, n_columns)
        The result of :func:`clrisk.predict`, or its ``table`` (any table with
        ``territory``, ``n_children``, ``risk`` and ``risk_se``, risk in %).
    cv_thresholds : (float, float), default (15, 30)
        CV cut-offs in %: below the first an estimate is ``"reliable"``, from
        the first to the second inclusive ``"use with caution"``, above the
        second ``"unreliable"``. The defaults are a three-band convention of
        the kind statistical offices publish for survey estimates (high
        precision below 15%, moderate 15-30%, low above 30%); offices draw the
        bands differently, so pass the national statistical office's own.
    min_children : int, default 50
        Territories with at least one and fewer than this many children (rows
        of the frame, unweighted) are flagged ``suppressed``. The default is
        deliberately well above the threshold rules of tabular disclosure
        control (which typically ask for a few contributors per published
        cell) because (a) 50 children is
        only about 20 to 25 households, whose circumstances a local reader may
        recognise behind a published risk and expected count, and (b) a rate
        over n children moves by 100/n points per child: 2 points at 50, about
        the gap between adjacent risk levels. Use the office's rule where it
        has one.

    Returns
    -------
    DataFrame of shape (n_territories, n_columns + 3)
        A copy of the table with ``risk_cv`` (%; infinite when the risk is 0 and
        its SE is not), ``reliability`` (one of :data:`RELIABILITY_LABELS`:
        ``"no data"`` where the territory has no children, ``"not assessed"``
        where the CV is undefined) and ``suppressed`` (bool) after ``risk_se``.
        Territories without children are not flagged: they have no estimate to
        withhold.
    """
    table = _territory_table(risk, caller="assess")
    lo, hi = _check_thresholds(cv_thresholds)
    min_children = _check_min_children(min_children)
    out = table.drop(columns=[c for c in _ADDED if c in table.columns]).copy()
    n = _children(out)
    r = out["risk"].to_numpy(dtype=float)
    se = out["risk_se"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = 100.0 * se / r
    cv = np.where((r == 0) & (se > 0), np.inf, cv)
    flag = np.select(
        [n == 0, np.isnan(cv), cv < lo, cv <= hi],
        ["no data", "not assessed", "reliable", "use with caution"],
        default="unreliable",
    ).astype(object)
    at = out.columns.get_loc("risk_se") + 1
    out.insert(at, "risk_cv", cv)
    out.insert(at + 1, "reliability", flag)
    out.insert(at + 2, "suppressed", (n > 0) & (n < min_children))
    return out


def suppress(
    risk: TerritoryRisk | pd.DataFrame,
    *,
    cv_thresholds: Sequence[float] = DEFAULT_CV_THRESHOLDS,
    min_children: int = DEFAULT_MIN_CHILDREN,
    region: str | None = "region",
    suppress_unreliable: bool = False,
    keep: Sequence[str] = (),
) -> tuple[pd.DataFrame, SuppressionRecord]:
    """The export version of a territory table, with small territories withheld.

    Parameters
    ----------
    risk : TerritoryRisk or DataFrame
        As for :func:`assess` (an assessed table is re-assessed with the
        thresholds given here).
    cv_thresholds, min_children
        As for :func:`assess`.
    region : str or None, default "region"
        Column of the region of each territory, when region totals are
        published: complementary suppression then works within each region.
        The default uses ``"region"`` when the table has it (as
        :func:`clrisk.predict` adds with ``region=``) and otherwise protects the
        national total only; None always does the latter. Territories with a
        missing region are grouped together as one more region.
    suppress_unreliable : bool, default False
        Also suppress territories flagged ``"unreliable"`` (by default they are
        published with their flag).
    keep : sequence of str
        Extra identifying columns left as they are in suppressed rows (e.g. a
        territory name). ``territory`` and the region column are always kept.

    Returns
    -------
    table : DataFrame
        The assessed table with every column of the suppressed rows other than
        the identifiers blanked (NaN; integer columns become nullable), their
        ``reliability`` set to ``"suppressed"``, ``suppressed`` True and a
        ``suppression_reason`` column (missing for published rows).
    record : SuppressionRecord

    Notes
    -----
    Additive figures (children, weighted children, expected counts) of a region
    are the sums of its territories', so if exactly one territory of a region
    is blanked, the region total minus the published territories gives it back
    (and region risk, Σ expected / Σ weighted children, gives back its risk).
    Hence the rule, applied until nothing changes:

    - in a region with exactly one suppressed territory, also suppress the
      smallest other territory with children (fewest children; ties by code);
    - a region where there is none (its only territory with children is the
      suppressed one) has its total withheld, since it equals that territory;
      then the national total minus the published region totals gives that
      region back, so a second region total is withheld too, and, unless that
      region already has two suppressed territories, its smallest territory
      is suppressed as well.

    With two or more unknowns in every published equation no blanked value is
    determined by the published ones. (Their *sum* is; with very unequal sizes
    the sum bounds the small one. Choosing the smallest complement keeps that
    bound tight, which is the usual trade-off for information loss.)
    Breakdowns (e.g. territory x sex) need their own suppression.
    """
    assessed = assess(risk, cv_thresholds=cv_thresholds, min_children=min_children)
    min_children = _check_min_children(min_children)
    if region is not None and region not in assessed.columns:
        if region != "region":
            raise SchemaError(
                f"The region column {region!r} named by 'region' is not in the table.",
                expected=[region],
                received=[str(c) for c in assessed.columns],
            )
        region = None
    keep = [keep] if isinstance(keep, str) else list(keep)
    absent = [c for c in keep if c not in assessed.columns]
    if absent:
        raise SchemaError(
            "The columns named by 'keep' are not in the table.",
            expected=keep,
            received=[str(c) for c in assessed.columns],
        )
    if not isinstance(suppress_unreliable, bool | np.bool_):
        raise InvalidParameterError(
            "The 'suppress_unreliable' parameter of suppress must be a bool; got "
            f"{suppress_unreliable!r}."
        )
    codes = assessed["territory"].astype(str).to_numpy(dtype=object)
    n = _children(assessed)
    small = assessed["suppressed"].to_numpy(dtype=bool)
    unreliable = (assessed["reliability"].to_numpy() == "unreliable") & (n > 0)
    primary = small | (unreliable if suppress_unreliable else False)
    reasons: dict[str, str] = {}
    for i in np.flatnonzero(primary):
        reasons[codes[i]] = (
            f"fewer than {min_children} children"
            if small[i]
            else f"unreliable (CV above {_check_thresholds(cv_thresholds)[1]:g}%)"
        )
    if region is None:
        region_of = np.full(len(codes), NATIONAL, dtype=object)
    else:
        region_of = np.array(
            ["(no region)" if pd.isna(v) else str(v) for v in assessed[region]],
            dtype=object,
        )
    # a territory protects another only if it adds to the totals: with frame
    # weights, rows that all weigh 0 add nothing (subtraction still works)
    eligible = n > 0
    if "weighted_children" in assessed.columns:
        weighted = pd.to_numeric(assessed["weighted_children"], errors="coerce")
        eligible &= (weighted > 0).to_numpy()
    sup, protects, withheld = _complementary(
        codes, region_of, n, primary, eligible, national_only=region is None
    )
    for t, target in protects.items():
        reasons[t] = f"complementary: protects {target} from subtraction"

    keep_cols = {"territory", *keep, *([region] if region else [])}
    blank = [
        c
        for c in assessed.columns
        if c not in keep_cols and c not in ("suppressed", "reliability")
    ]
    out = assessed.copy()
    for c in blank:
        col = out[c]
        if pd.api.types.is_bool_dtype(col.dtype):
            col = col.astype("boolean")
        elif pd.api.types.is_integer_dtype(col.dtype):
            col = col.astype("Int64")
        out[c] = col.mask(sup)
    out.loc[sup, "reliability"] = "suppressed"
    out["suppressed"] = sup
    out["suppression_reason"] = pd.Series(
        [reasons.get(t) if s else None for t, s in zip(codes, sup, strict=True)],
        index=out.index,
        dtype=object,
    )
    record = SuppressionRecord(
        min_children=min_children,
        primary=tuple(sorted(codes[primary])),
        complementary=tuple(sorted(protects)),
        protects=dict(sorted(protects.items())),
        withheld_totals=tuple(withheld),
        reasons=dict(sorted((t, reasons[t]) for t in codes[sup])),
        columns_blanked=tuple(blank),
        region=region,
        n_territories=len(codes),
    )
    return out, record


# ---------------------------------------------------------------- private
def _territory_table(risk: Any, *, caller: str) -> pd.DataFrame:
    table = risk.table if isinstance(risk, TerritoryRisk) else risk
    if not isinstance(table, pd.DataFrame):
        raise InvalidParameterError(
            f"The 'risk' parameter of {caller} must be a TerritoryRisk or a "
            f"DataFrame; got {type(risk).__name__}."
        )
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise SchemaError(
            f"{caller} needs a territory table as made by clrisk.predict.",
            expected=list(_REQUIRED),
            received=[str(c) for c in table.columns],
        )
    return table


def _children(table: pd.DataFrame) -> np.ndarray:
    n = pd.to_numeric(table["n_children"], errors="coerce")
    bad = n.isna() | (n < 0)
    if bad.any():
        raise DataValidationError(
            column="n_children",
            problem="missing, non-numeric or negative counts of children",
            n_bad=int(bad.sum()),
            examples=table.loc[bad, "territory"].astype(str).head(5).tolist(),
            fix="Give the number of children (frame rows) of every territory; 0 "
            "for territories without any.",
        )
    counts: np.ndarray = n.to_numpy(dtype=float)
    return counts


def _check_thresholds(cv_thresholds: Any) -> tuple[float, float]:
    ok = (
        isinstance(cv_thresholds, Sequence)
        and not isinstance(cv_thresholds, str)
        and len(cv_thresholds) == 2
        and all(
            isinstance(v, numbers.Real) and np.isfinite(float(v)) and float(v) > 0
            for v in cv_thresholds
        )
        and float(cv_thresholds[0]) <= float(cv_thresholds[1])
    )
    if not ok:
        raise InvalidParameterError(
            "The 'cv_thresholds' parameter must be a pair (low, high) of CV "
            f"percentages with 0 < low <= high, e.g. (15, 30); got {cv_thresholds!r}."
        )
    return float(cv_thresholds[0]), float(cv_thresholds[1])


def _check_min_children(min_children: Any) -> int:
    if (
        not isinstance(min_children, numbers.Integral)
        or isinstance(min_children, bool)
        or min_children < 0
    ):
        raise InvalidParameterError(
            "The 'min_children' parameter must be an int >= 0 (0 suppresses "
            f"nothing); got {min_children!r}."
        )
    return int(min_children)


def _complementary(
    codes: np.ndarray,
    region_of: np.ndarray,
    n: np.ndarray,
    primary: np.ndarray,
    eligible: np.ndarray,
    *,
    national_only: bool,
) -> tuple[np.ndarray, dict[str, str], list[str]]:
    """Primary plus complementary suppression; withheld totals.

    Returns the suppressed mask, {complementary territory: what it protects}
    and the withheld totals (region codes, then ``"national"``). Only
    `eligible` territories (with children that count in the totals) are
    chosen to protect another. With `national_only` all territories share one
    key and its total is the nation's.
    """
    sup = primary.copy()
    protects: dict[str, str] = {}
    withheld: set[str] = set()
    regions = sorted(set(region_of.tolist()))
    members = {r: np.flatnonzero(region_of == r) for r in regions}

    def smallest(idx: np.ndarray) -> int | None:
        cand = idx[eligible[idx] & ~sup[idx]]
        if len(cand) == 0:
            return None
        order = np.lexsort((codes[cand].astype(str), n[cand]))
        return int(cand[order[0]])

    changed = True
    while changed:
        changed = False
        for r in regions:
            idx = members[r]
            hit = idx[sup[idx]]
            if len(hit) != 1 or r in withheld:
                continue
            c = smallest(idx)
            if c is None:
                withheld.add(r)
            else:
                sup[c] = True
                protects[str(codes[c])] = str(codes[hit[0]])
            changed = True
        if national_only or len(withheld) != 1:
            continue
        # national total - published region totals = the one withheld region
        (lone,) = withheld
        others = [r for r in regions if r not in withheld]
        ready = [r for r in others if sup[members[r]].sum() >= 2]
        if ready:  # its unknowns already hide it: withhold its total too
            pick = min(ready, key=lambda r: (n[members[r]].sum(), r))
            withheld.add(pick)
            changed = True
            continue
        options: list[tuple[str, int]] = []
        for r in others:
            c = smallest(members[r])
            if c is not None:
                options.append((r, c))
        if options:
            pick, c = min(options, key=lambda rc: (n[rc[1]], str(codes[rc[1]])))
            withheld.add(pick)
            sup[c] = True
            protects[str(codes[c])] = f"region {lone}"
            changed = True
    if national_only:
        return sup, protects, [NATIONAL] if withheld else []
    # one withheld region left without a partner: the national total gives it back
    tail = [NATIONAL] if len(withheld) == 1 else []
    return sup, protects, sorted(withheld) + tail


def suppress_breakdown(
    risk: TerritoryRisk,
    *,
    cv_thresholds: Sequence[float] = DEFAULT_CV_THRESHOLDS,
    min_children: int = DEFAULT_MIN_CHILDREN,
) -> tuple[pd.DataFrame, SuppressionRecord]:
    """The export version of the territory x group breakdown, cell by cell.

    Each (territory, group) cell of ``risk.breakdown("territory")`` is a unit
    of :func:`suppress`, with its territory as the "region": a cell with fewer
    than `min_children` children is withheld, and complementary suppression
    within the territory ensures that the published territory total minus the
    published cells never gives it back (when a territory's only populated
    cell is withheld, the record says its total must be withheld too).

    Parameters
    ----------
    risk : TerritoryRisk
        From :func:`clrisk.predict` with ``by=[...]``.
    cv_thresholds, min_children
        As for :func:`assess`.

    Returns
    -------
    table : DataFrame
        The breakdown with ``risk_cv``, ``reliability``, ``suppressed`` and
        ``suppression_reason``; withheld cells blanked.
    record : SuppressionRecord
        Cells named ``territory|group``; ``withheld_totals`` lists territories
        (and possibly ``national``) whose totals must not be published.
    """
    table = risk.breakdown("territory")
    by = risk.stats.by
    cell = table["territory"].astype(str)
    for b in by:
        cell = cell + "|" + table[b].astype(str)
    units = table.assign(region=table["territory"], territory=cell)
    out, record = suppress(
        units,
        cv_thresholds=cv_thresholds,
        min_children=min_children,
        region="region",
        keep=by,
    )
    out["territory"] = out.pop("region")
    return out, record
