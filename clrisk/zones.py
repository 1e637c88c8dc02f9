"""Intervention zones: neighbouring high-risk small areas grouped together.

Phase II of CLRISK (methodology, section 7) repeats the projection at finer
units — localities, census blocks — inside a municipality, and groups the
high-risk small areas into *intervention zones*: a team, a school programme or
a labour inspection covers a stretch of neighbouring blocks, not scattered
ones. :func:`intervention_zones` selects the high-risk units (the top risk
level by default), joins those that touch, and reports each zone's children,
expected child labour and risk::

    risk = clrisk.predict(model, census, territory="block", region="municipality")
    bounds = clrisk.report.read_boundaries("blocks.geojson", "block")
    zones = clrisk.intervention_zones(risk, bounds, within_region=True)
    zones.zones          # one row per zone, largest expected count first
    zones.units          # every unit with its zone (or none)

Which units touch comes from their boundaries (two areas sharing a boundary
point are neighbours, "queen" contiguity; or a boundary segment, "rook": see
:func:`contiguity`) or from a table of neighbour pairs exported from a GIS
(e.g. QGIS or GeoDa). Codes are compared as text, as everywhere in clrisk.

A zone's figures are those of its units added together: children, expected
count, and risk = expected count / children. From a
:class:`~clrisk.territory.TerritoryRisk` the zone's interval is the
delta-method interval of the zone as a whole (its units share the model's
coefficients, so their errors do not cancel), computed from the same one-pass
statistics as the territory and regional intervals.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from clrisk.exceptions import (
    CoverageWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)
from clrisk.features import table_name
from clrisk.prioritise import _REQUIRED, _check_values, _children
from clrisk.report import Boundaries
from clrisk.scoring import TerritoryStats

__all__ = ["InterventionZones", "contiguity", "intervention_zones"]

RULES = ("queen", "rook")


@dataclass(frozen=True, repr=False)
class InterventionZones:
    """Result of :func:`intervention_zones`.

    Attributes
    ----------
    zones : DataFrame of shape (n_zones, n_columns)
        One row per zone, largest expected count first (ties: smallest
        territory code first): ``zone`` (1, 2, ...), ``n_units``, ``region``
        (its units' regions, comma-separated, when the table has regions),
        ``n_children``, ``weighted_children`` (when the input has it),
        ``expected_count``, ``risk`` (%), with ``expected_low``,
        ``expected_high``, ``risk_low`` and ``risk_high`` from a
        TerritoryRisk; ``share`` and ``cumulative_share`` of the national
        expected count; ``territories`` (the unit codes, comma-separated, in
        code order).
    units : DataFrame of shape (n_territories, n_columns)
        Every unit of the input, in its order: ``territory``, ``region`` and
        ``level`` (when present), ``n_children``, ``expected_count``,
        ``risk``, ``selected`` (high-risk and with data), ``zone`` (nullable
        integer; missing for units not selected) and ``n_neighbours`` (units
        it touches, selected or not).
    rule : str
        How units were selected, in words.
    isolated : tuple of str
        Selected units that touch no other unit at all: often a unit missing
        from the boundaries or the neighbour table rather than a true island.
    total_expected : float
        National expected count (all units with data), the base of ``share``.
    """

    zones: pd.DataFrame
    units: pd.DataFrame = field(repr=False)
    rule: str
    isolated: tuple[str, ...]
    total_expected: float

    def __repr__(self) -> str:
        n_sel = int(self.units["selected"].sum())
        return f"InterventionZones({len(self.zones)} zones of {n_sel} units)"

    def summary(self) -> str:
        """A short text report."""
        z = self.zones
        n_sel = int(self.units["selected"].sum())
        if z.empty:
            return f"No unit is selected ({self.rule}): no intervention zone."
        single = int((z["n_units"] == 1).sum())
        top = z.iloc[0]
        held = float(z["expected_count"].sum())
        share = held / self.total_expected if self.total_expected > 0 else np.nan
        lines = [
            f"{n_sel:,} high-risk units ({self.rule}) form {len(z):,} intervention "
            f"zones ({single:,} of a single unit).",
            f"They hold {held:,.0f} of the {self.total_expected:,.0f} children "
            f"expected in child labour ({share:.1%}); the largest zone "
            f"({_units_text(int(top['n_units']))}) holds "
            f"{top['expected_count']:,.0f} ({top['share']:.1%}).",
        ]
        if self.isolated:
            shown = ", ".join(self.isolated[:5])
            more = "" if len(self.isolated) <= 5 else ", ..."
            lines.append(
                f"{len(self.isolated):,} selected units touch no other unit "
                f"({shown}{more}): check that their boundaries or neighbour "
                "pairs are present."
            )
        return "\n".join(lines)


def _units_text(n: int) -> str:
    return f"{n:,} unit" if n == 1 else f"{n:,} units"


def contiguity(
    boundaries: Boundaries, *, rule: str = "queen", snap: float = 0.0
) -> pd.DataFrame:
    """Pairs of neighbouring areas of a set of boundaries.

    Parameters
    ----------
    boundaries : Boundaries
        From :func:`clrisk.report.read_boundaries`.
    rule : {"queen", "rook"}, default "queen"
        Two areas are neighbours when their rings share a vertex ("queen"), or
        a segment between two consecutive shared vertices ("rook") — the
        vertex-based contiguity of GIS tools such as GeoDa. Areas that touch
        without a common vertex (one's vertex in the middle of the other's
        edge, a "T-junction") are not found: boundaries cut from one topology,
        as census cartography is, have none.
    snap : float >= 0, default 0
        Coordinates are rounded to the nearest multiple of `snap` before they
        are compared (in the file's units: degrees or metres); 0 compares them
        exactly. Use a small `snap` for boundaries whose shared vertices
        differ in the last digits; two vertices closer than `snap` but on
        either side of a half-multiple still round apart, so check the
        neighbours of a few areas (``n_neighbours`` of the zones' units).

    Returns
    -------
    DataFrame of shape (n_pairs, 2)
        Columns ``territory`` and ``neighbour``, one row per pair with
        ``territory < neighbour`` (as text), sorted.
    """
    if not isinstance(boundaries, Boundaries):
        raise InvalidParameterError(
            "The 'boundaries' parameter of contiguity must be a Boundaries (from "
            f"clrisk.report.read_boundaries); got {type(boundaries).__name__}."
        )
    if rule not in RULES:
        raise InvalidParameterError(
            f"The 'rule' parameter of contiguity must be one of {list(RULES)}; "
            f"got {rule!r}."
        )
    if (
        not isinstance(snap, int | float)
        or isinstance(snap, bool)
        or not np.isfinite(snap)
        or snap < 0
    ):
        raise InvalidParameterError(
            "The 'snap' parameter of contiguity must be a finite number >= 0; "
            f"got {snap!r}."
        )
    codes = boundaries.codes
    points, owners, starts = [], [], []
    n = 0
    for k, code in enumerate(codes):
        for polygon in boundaries.polygons[code]:
            for ring in polygon:
                xy = ring[:-1]  # rings are closed: the last point is the first
                points.append(xy)
                owners.append(np.full(len(xy), k, dtype=np.int64))
                starts.append(n)
                n += len(xy)
    if not points:
        return _pairs_frame([], [])
    xy = np.concatenate(points)
    owner = np.concatenate(owners)
    if snap > 0:
        xy = np.round(xy / snap)
    xy = xy + 0.0  # -0.0 and 0.0 are the same point
    vertex = _point_ids(xy[:, 0], xy[:, 1])
    if rule == "queen":
        key = vertex
        key_owner = owner
    else:
        # each ring's segments: a point and the next one (the last closes it)
        nxt = np.arange(1, n + 1)
        ends = np.r_[starts[1:], n]
        nxt[ends - 1] = starts
        a, b = vertex, vertex[nxt]
        real = a != b  # a segment whose ends snapped together is no segment
        key = _point_ids(np.minimum(a, b)[real], np.maximum(a, b)[real])
        key_owner = owner[real]
    return _shared(key, key_owner, codes)


def _point_ids(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The same number for equal (x, y) pairs: 0, 1, ... in sorted order."""
    order = np.lexsort((y, x))
    xs, ys = x[order], y[order]
    new = np.r_[True, (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])]
    ids = np.empty(len(x), dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def _shared(key: np.ndarray, owner: np.ndarray, codes: Sequence[str]) -> pd.DataFrame:
    """Pairs of distinct owners of a common key."""
    held = pd.DataFrame({"key": key, "owner": owner}).drop_duplicates()
    both = held.merge(held, on="key", suffixes=("_a", "_b"))
    both = both[both["owner_a"] < both["owner_b"]]
    pairs = both[["owner_a", "owner_b"]].drop_duplicates().to_numpy()
    names = np.asarray(codes, dtype=object)
    return _pairs_frame(names[pairs[:, 0]], names[pairs[:, 1]])


def _pairs_frame(a: Iterable[str], b: Iterable[str]) -> pd.DataFrame:
    """Pairs with the smaller code first, sorted, each once."""
    a, b = np.asarray(list(a), dtype=object), np.asarray(list(b), dtype=object)
    swap = b < a if len(a) else np.zeros(0, dtype=bool)
    first = np.where(swap, b, a)
    second = np.where(swap, a, b)
    out = pd.DataFrame({"territory": first, "neighbour": second}, dtype=object)
    out = out.drop_duplicates().sort_values(["territory", "neighbour"])
    return out.reset_index(drop=True)


def intervention_zones(
    risk: Any,
    neighbours: Boundaries | pd.DataFrame | Mapping[str, Iterable[str]],
    *,
    levels: str | Sequence[str] | None = None,
    min_risk: float | None = None,
    within_region: bool = False,
) -> InterventionZones:
    """Group neighbouring high-risk units into intervention zones.

    Parameters
    ----------
    risk : TerritoryRisk or DataFrame of shape (n_units, n_columns)
        Results at the fine level (one row per unit): the output of
        :func:`clrisk.predict` or its table, with ``territory`` (text codes),
        ``n_children``, ``expected_count`` and ``risk`` (%); ``level``,
        ``region`` and ``weighted_children`` are used when present. Units
        without data (missing risk) are never selected.
    neighbours : Boundaries, DataFrame or mapping
        Which units touch: boundaries (neighbours by :func:`contiguity` with
        the queen rule; call it yourself for another rule or a snap), a table
        of pairs (columns ``territory`` and ``neighbour``, or else its first two
        columns; text codes; each pair in either order, once or twice), or a
        mapping from a code to the codes it touches.
    levels : str or sequence of str, optional
        The risk levels whose units are selected. Default: the highest level
        (the last of the classification's levels for a TerritoryRisk; for a
        table, the level with the highest mean risk).
    min_risk : float, optional
        Select units whose risk (%) is at least this instead of by level.
    within_region : bool, default False
        Keep zones inside regions (e.g. municipalities): units of different
        regions are not joined even where they touch. Needs a ``region``
        column; units without a region count as one more region,
        ``"(no region)"`` (as in :func:`clrisk.reliability.suppress`).

    Returns
    -------
    InterventionZones

    Raises
    ------
    SchemaError
        A required column is missing.
    DataValidationError
        Codes that are missing, not text or repeated; invalid figures; or a
        neighbour table none of whose codes is a unit of `risk`.
    InvalidParameterError
        Both `levels` and `min_risk`, an unknown level, or a bad argument.

    Warns
    -----
    CoverageWarning
        When neighbour codes are not units of `risk` (they are ignored): units
        outside the area scored, or codes that lost their leading zeros.
    """
    table, rollup = _risk_table(risk)
    codes = _check_codes(table["territory"])
    n_children, expected, rate, has_data = _check_values(table, codes)
    children = _children(table, codes, n_children, has_data)
    if not isinstance(within_region, bool):
        raise InvalidParameterError(
            "The 'within_region' parameter of intervention_zones must be True or "
            f"False; got {within_region!r}."
        )
    if within_region and "region" not in table.columns:
        raise SchemaError(
            "intervention_zones(within_region=True) needs a 'region' column; "
            "pass region= to clrisk.predict.",
            expected=[*_REQUIRED, "region"],
            received=[str(c) for c in table.columns],
        )
    selected, rule = _select(risk, table, rate, has_data, levels, min_risk)
    a, b = _links(neighbours, codes)
    n = len(codes)
    n_neighbours = np.bincount(np.r_[a, b], minlength=n)  # a pair counted once
    if within_region:
        region = _region_labels(table)
        same = pd.Series(region[a]).eq(pd.Series(region[b])).to_numpy()
        a, b = a[same], b[same]
    both = selected[a] & selected[b]
    graph = coo_matrix((np.ones(int(both.sum())), (a[both], b[both])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    zone = _number_zones(component, selected, expected, codes)

    units = _units(table, n_children, expected, rate, selected, zone, n_neighbours)
    total = float(expected[has_data].sum())
    zones = _zone_table(table, codes, n_children, children, expected, zone, total)
    if rollup is not None and len(zones):
        zones = _with_intervals(zones, rollup, codes, zone)
    isolated = tuple(
        sorted(
            c
            for c, s, k in zip(codes, selected, n_neighbours, strict=True)
            if s and k == 0
        )
    )
    return InterventionZones(zones, units, rule, isolated, total)


# --------------------------------------------------------------------------- #
# Validation at the boundary
# --------------------------------------------------------------------------- #


def _risk_table(risk: Any) -> tuple[pd.DataFrame, Any]:
    """The results table, and the TerritoryRisk when one was given."""
    if isinstance(risk, pd.DataFrame):
        table, whole = risk, None
    elif isinstance(getattr(risk, "table", None), pd.DataFrame):
        table, whole = risk.table, risk
    else:
        raise InvalidParameterError(
            "The 'risk' parameter of intervention_zones must be a TerritoryRisk "
            f"or a DataFrame; got {type(risk).__name__}."
        )
    columns = [str(c) for c in table.columns]
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise SchemaError(
            "intervention_zones: the risk table lacks required columns; pass the "
            "output of clrisk.predict or its table.",
            expected=list(_REQUIRED),
            received=columns,
        )
    return table.reset_index(drop=True), whole


def _check_codes(territory: pd.Series) -> list[str]:
    values: list[str] = territory.tolist()
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        raise DataValidationError(
            column="territory",
            problem="territory codes that are missing or not text",
            n_bad=len(bad),
            examples=[f"row {i}: {values[i]!r}" for i in bad],
            fix="Codes are text and leading zeros matter ('05001', not 5001): "
            "read the column as text.",
        )
    dup = territory.duplicated(keep=False).to_numpy()
    if dup.any():
        raise DataValidationError(
            column="territory",
            problem="repeated territory codes",
            n_bad=int(dup.sum()),
            examples=list(dict.fromkeys(territory[dup].tolist())),
            fix="intervention_zones needs one row per unit: aggregate the rows first.",
        )
    return values


def _select(
    risk: Any,
    table: pd.DataFrame,
    rate: np.ndarray,
    has_data: np.ndarray,
    levels: str | Sequence[str] | None,
    min_risk: float | None,
) -> tuple[np.ndarray, str]:
    """Which units are high-risk, and the rule in words."""
    if levels is not None and min_risk is not None:
        raise InvalidParameterError(
            "intervention_zones selects by levels= or by min_risk=, not both."
        )
    if min_risk is not None:
        if (
            not isinstance(min_risk, int | float)
            or isinstance(min_risk, bool)
            or not 0 <= min_risk <= 100
        ):
            raise InvalidParameterError(
                "The 'min_risk' parameter of intervention_zones must be a risk "
                f"in % between 0 and 100; got {min_risk!r}."
            )
        return has_data & (rate >= min_risk), f"risk at least {min_risk:g}%"
    if "level" not in table.columns:
        raise SchemaError(
            "intervention_zones selects the units of the highest risk level by "
            "default, and the risk table has no 'level' column; pass min_risk=.",
            expected=[*_REQUIRED, "level"],
            received=[str(c) for c in table.columns],
        )
    label = table["level"].astype(object).to_numpy()
    if levels is None:
        chosen = [_top_level(risk, label, rate, has_data)]
    else:
        chosen = [levels] if isinstance(levels, str) else list(levels)
        known = set(label[has_data].tolist())
        unknown = [x for x in chosen if x not in known]
        if unknown or not chosen:
            raise InvalidParameterError(
                f"The 'levels' parameter of intervention_zones names levels "
                f"{unknown} that no unit has; the levels are "
                f"{sorted(map(str, known))}."
            )
    picked = has_data & pd.Series(label).isin(chosen).to_numpy()
    names = ", ".join(repr(x) for x in chosen)
    return picked, f"level {names}"


def _top_level(
    risk: Any, label: np.ndarray, rate: np.ndarray, has_data: np.ndarray
) -> str:
    names = getattr(getattr(risk, "levels", None), "level_names", None)
    if names:
        return str(names[-1])
    present = pd.Series(rate[has_data]).groupby(label[has_data]).mean()
    if present.empty:
        raise DataValidationError(
            column="level",
            problem="no unit with data has a level",
            n_bad=int(has_data.sum()),
            fix="Classify the units first, or pass min_risk=.",
        )
    return str(present.idxmax())


def _links(neighbours: Any, codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour pairs as positions in `codes` (pairs with unknown codes
    dropped, with a warning)."""
    where = ""
    if isinstance(neighbours, Boundaries):
        pairs = contiguity(neighbours)
        a, b, what = pairs["territory"], pairs["neighbour"], "boundaries"
    elif isinstance(neighbours, pd.DataFrame):
        a, b = _pair_columns(neighbours)
        what = "neighbour table"
        where = table_name(neighbours, "the neighbour table")
        # a unit listed without a neighbour (an island, as GIS tools write it)
        island = _blank(b) & ~_blank(a)
        a, b = a[~island], b[~island]
    elif isinstance(neighbours, Mapping):
        left, right = [], []
        for code, near in neighbours.items():
            if isinstance(near, str) or not isinstance(near, Iterable):
                raise InvalidParameterError(
                    "A neighbour mapping takes each code to a list of codes; "
                    f"{code!r} maps to {near!r}."
                )
            for other in near:
                left.append(code)
                right.append(other)
        a = pd.Series(left, dtype=object)
        b = pd.Series(right, dtype=object)
        what = "neighbour mapping"
    else:
        raise InvalidParameterError(
            "The 'neighbours' parameter of intervention_zones must be Boundaries, "
            "a DataFrame of neighbour pairs or a mapping from code to codes; got "
            f"{type(neighbours).__name__}."
        )
    for side in (a, b):
        text = np.array([isinstance(v, str) and v != "" for v in side.tolist()])
        if len(text) and not text.all():
            rows = side.index[~text]
            raise DataValidationError(
                column=str(side.name) if side.name is not None else "neighbours",
                problem=f"neighbour codes that are missing or not text in the {what}",
                n_bad=int((~text).sum()),
                examples=[f"row {i}: {side[i]!r}" for i in rows[:5]],
                fix="Give every pair two codes as text (leading zeros matter: "
                "'05001', not 5001); a unit without neighbours may be listed "
                "with its neighbour blank.",
                where=where if what == "neighbour table" else "",
            )
    index = pd.Index(codes)
    ia, ib = index.get_indexer(a), index.get_indexer(b)
    unknown = sorted(set(a[ia < 0]) | set(b[ib < 0]))
    known = (ia >= 0) & (ib >= 0)
    if len(a) and not known.any():
        raise DataValidationError(
            column=str(a.name) if a.name is not None else "territory",
            problem=f"no pair of the {what} joins two units of the risk table",
            n_bad=0,  # the codes as a whole do not match, not some rows
            examples=unknown,
            where=where,
            fix="Check that both use the same codes, as text"
            + _zeros_hint(unknown, codes)
            + ".",
        )
    if unknown:
        warnings.warn(
            f"intervention_zones: {len(unknown):,} codes of the {what} are not "
            f"units of the risk table and are ignored (e.g. "
            f"{', '.join(map(repr, unknown[:5]))}){_zeros_hint(unknown, codes)}.",
            CoverageWarning,
            stacklevel=3,
        )
    a_pos, b_pos = ia[known], ib[known]
    distinct = a_pos != b_pos  # a unit is not its own neighbour
    lo = np.minimum(a_pos, b_pos)[distinct].astype(np.int64)
    hi = np.maximum(a_pos, b_pos)[distinct].astype(np.int64)
    # each pair once, whichever order and however often it is listed
    pairs = (
        np.unique(np.stack([lo, hi], axis=1), axis=0)
        if len(lo)
        else np.empty((0, 2), dtype=np.int64)
    )
    return pairs[:, 0], pairs[:, 1]


def _blank(values: pd.Series) -> np.ndarray:
    """Missing or empty-text entries."""
    out: np.ndarray = (values.isna() | values.astype(str).str.strip().eq("")).to_numpy()
    return out


def _pair_columns(pairs: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    if {"territory", "neighbour"} <= set(pairs.columns):
        return pairs["territory"], pairs["neighbour"]
    if pairs.shape[1] < 2:
        raise SchemaError(
            "A neighbour table needs two columns of codes (territory and neighbour).",
            expected=["territory", "neighbour"],
            received=[str(c) for c in pairs.columns],
        )
    return pairs.iloc[:, 0], pairs.iloc[:, 1]


def _zeros_hint(unknown: Sequence[str], codes: Sequence[str]) -> str:
    stripped = {c.lstrip("0") for c in codes}
    if any(u.lstrip("0") in stripped for u in unknown[:1000]):
        return (
            "; some differ from the units' codes only by leading zeros: the "
            "neighbour codes were probably read as numbers"
        )
    return ""


# --------------------------------------------------------------------------- #
# The zones
# --------------------------------------------------------------------------- #


NO_REGION = "(no region)"


def _region_labels(table: pd.DataFrame) -> np.ndarray:
    """Each unit's region as text; units without one share the region
    ``"(no region)"``, as in :func:`clrisk.reliability.suppress`."""
    return np.array(
        [NO_REGION if pd.isna(v) else str(v) for v in table["region"]], dtype=object
    )


def _number_zones(
    component: np.ndarray,
    selected: np.ndarray,
    expected: np.ndarray,
    codes: Sequence[str],
) -> np.ndarray:
    """Zone number of each unit (0 when not selected): 1 for the zone with
    the largest expected count, ties by the zone's smallest code."""
    zone = np.zeros(len(codes), dtype=np.int64)
    if not selected.any():
        return zone
    frame = pd.DataFrame(
        {
            "c": component[selected],
            "e": expected[selected],
            "code": np.asarray(codes, dtype=object)[selected],
        }
    )
    per = frame.groupby("c").agg(e=("e", "sum"), code=("code", "min"))
    per = per.sort_values(["e", "code"], ascending=[False, True])
    number = pd.Series(np.arange(1, len(per) + 1), index=per.index)
    zone[selected] = number.loc[frame["c"]].to_numpy()
    return zone


def _units(
    table: pd.DataFrame,
    n_children: np.ndarray,
    expected: np.ndarray,
    rate: np.ndarray,
    selected: np.ndarray,
    zone: np.ndarray,
    n_neighbours: np.ndarray,
) -> pd.DataFrame:
    out = pd.DataFrame({"territory": table["territory"].astype(object)})
    for col in ("region", "level"):
        if col in table.columns:
            out[col] = table[col].to_numpy()
    out["n_children"] = n_children
    out["expected_count"] = expected
    out["risk"] = rate
    out["selected"] = selected
    out["zone"] = pd.array(np.where(selected, zone, 0), dtype="Int64")
    out.loc[~selected, "zone"] = pd.NA
    out["n_neighbours"] = n_neighbours
    return out


def _zone_table(
    table: pd.DataFrame,
    codes: Sequence[str],
    n_children: np.ndarray,
    children: np.ndarray,
    expected: np.ndarray,
    zone: np.ndarray,
    total: float,
) -> pd.DataFrame:
    inside = zone > 0
    parts: dict[str, Any] = {
        "zone": zone[inside],
        "territory": np.asarray(codes, dtype=object)[inside],
        "n_children": n_children[inside],
        "children": children[inside],
        "expected_count": expected[inside],
    }
    has_region = "region" in table.columns
    if has_region:
        parts["region"] = _region_labels(table)[inside]
    frame = pd.DataFrame(parts)
    g = frame.groupby("zone", sort=True)
    out = pd.DataFrame({"zone": np.arange(1, int(zone.max(initial=0)) + 1)})
    out["n_units"] = g.size().to_numpy()
    if has_region:
        out["region"] = g["region"].agg(lambda s: ", ".join(sorted(set(s)))).to_numpy()
    out["n_children"] = g["n_children"].sum().to_numpy().astype(np.int64)
    if "weighted_children" in table.columns:
        out["weighted_children"] = g["children"].sum().to_numpy()
    out["expected_count"] = g["expected_count"].sum().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["risk"] = 100 * out["expected_count"] / g["children"].sum().to_numpy()
        out["share"] = out["expected_count"] / total if total > 0 else np.nan
    out["cumulative_share"] = out["share"].cumsum()
    out["territories"] = g["territory"].agg(lambda s: ", ".join(sorted(s))).to_numpy()
    return out


def _with_intervals(
    zones: pd.DataFrame, risk: Any, codes: Sequence[str], zone: np.ndarray
) -> pd.DataFrame:
    """The zones' delta-method intervals, from the one-pass statistics."""
    cells = risk.stats.by_territory()
    of_code = pd.Series(zone, index=pd.Index(codes))
    cell_zone = of_code.reindex(cells.keys["territory"].astype(object)).to_numpy()
    keep = np.nan_to_num(cell_zone.astype(float), nan=0.0) > 0
    merged = TerritoryStats.from_cells(
        pd.DataFrame({"zone": cell_zone[keep].astype(np.int64)}),
        cells.sums[keep],
        cells.layout,
    )
    est = risk.view.estimates(merged.sums, risk.alpha)
    est.index = merged.keys["zone"].astype(np.int64).to_numpy()
    est = est.reindex(zones["zone"].to_numpy())
    out = zones.copy()
    at = out.columns.get_loc("expected_count") + 1
    out.insert(at, "expected_low", est["expected_low"].to_numpy())
    out.insert(at + 1, "expected_high", est["expected_high"].to_numpy())
    at = out.columns.get_loc("risk") + 1
    out.insert(at, "risk_low", est["risk_low"].to_numpy())
    out.insert(at + 1, "risk_high", est["risk_high"].to_numpy())
    return out
