"""Maps, charts and regional fact sheets (the optional extra ``clrisk[report]``).

Boundaries are read from GeoJSON with the standard :mod:`json` module (no
geopandas); drawing uses matplotlib's object API on the non-interactive Agg
canvas, so nothing here opens a window, touches pyplot's global state or needs
``plt.close``::

    bounds = read_boundaries("municipios.geojson", "cod_mun")
    fig = level_map(risk, bounds)                # choropleth of the risk levels
    fig = count_map(risk, bounds)                # circles sized by expected count
    fig = targeting_curve(plan)                  # from clrisk.prioritise
    fig = factor_bars(risk, "05001")             # why risk is high (or low) there
    paths = fact_sheets(risk, bounds, "sheets/", plan=plan)

Matching risk rows to boundaries
--------------------------------
Territory codes are text on both sides ("05001" is not "5001"). Nothing is
dropped silently: territories of the risk table without a boundary and
boundaries without a risk row are listed by :meth:`Boundaries.match` and
reported with a :class:`~clrisk.exceptions.CoverageWarning` by the maps; the
boundaries without a risk row are drawn in grey as "no data", and each fact
sheet lists the territories it could not draw.

Only :func:`read_boundaries` and :meth:`Boundaries.match` work without
matplotlib; the drawing functions raise an :class:`ImportError` naming the
extra to install.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
import textwrap
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from clrisk.exceptions import (
    CoverageWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "Boundaries",
    "BoundaryMatch",
    "count_map",
    "fact_sheets",
    "factor_bars",
    "level_map",
    "read_boundaries",
    "targeting_curve",
]

Ring = NDArray[np.float64]  # shape (n_positions, 2), closed (first == last)
Polygon = tuple[Ring, ...]  # outer ring (counter-clockwise) then holes (clockwise)

NO_DATA = "no data"
NO_DATA_COLOUR = "#bdbdbd"
_BASE_COLOUR = "#f2f2f2"  # territories under the circles of the count map
_EDGE_COLOUR = "#ffffff"
_RISK_COLOUR = "#d7301f"
_PROTECTIVE_COLOUR = "#2b8cbe"
_NEUTRAL_COLOUR = "#969696"
_CIRCLE_COLOUR = "#c2185b"
_MAX_CIRCLE_AREA = 900.0  # points², the largest expected count (30 pt across)
_REQUIRED = ("territory", "risk", "risk_low", "risk_high", "expected_count", "level")


# --------------------------------------------------------------------------- #
# Boundaries
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, repr=False)
class Boundaries:
    """Territory polygons read from GeoJSON, keyed by text code.

    Attributes
    ----------
    polygons : dict of str to tuple of Polygon
        For each code, its polygons; a polygon is a tuple of rings, each an
        ndarray of shape (n_positions, 2), closed, the outer ring first and
        counter-clockwise, holes after it and clockwise.
    names : dict of str to str
        Display name of each code (empty when no ``name`` property was given).
    key : str
        The property that holds the codes.
    source : str
        File name the boundaries were read from (no directory).
    geographic : bool
        True for longitude/latitude coordinates (maps then correct the aspect
        for latitude); False for projected coordinates.
    """

    polygons: dict[str, tuple[Polygon, ...]]
    names: dict[str, str]
    key: str
    source: str
    geographic: bool

    def __repr__(self) -> str:
        return (
            f"Boundaries({len(self.polygons):,} areas keyed by {self.key!r} "
            f"from {self.source!r})"
        )

    def __len__(self) -> int:
        return len(self.polygons)

    @property
    def codes(self) -> list[str]:
        """The codes, sorted as text."""
        return sorted(self.polygons)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of all the polygons."""
        return _bounds(self.polygons.values())

    def match(self, risk: Any) -> BoundaryMatch:
        """Compare the territory codes of `risk` with these boundaries.

        Parameters
        ----------
        risk : TerritoryRisk, DataFrame or iterable of str
            Results with a ``territory`` column, or the codes themselves.

        Returns
        -------
        BoundaryMatch
        """
        if hasattr(risk, "table"):
            risk = risk.table
        if isinstance(risk, pd.DataFrame):
            codes = [str(c) for c in risk["territory"].tolist()]
        else:
            codes = [str(c) for c in risk]
        present = set(codes)
        return BoundaryMatch(
            matched=tuple(sorted(c for c in present if c in self.polygons)),
            no_boundary=tuple(sorted(c for c in present if c not in self.polygons)),
            no_risk_row=tuple(sorted(c for c in self.polygons if c not in present)),
        )


@dataclass(frozen=True)
class BoundaryMatch:
    """How the territories of a risk table match a set of boundaries.

    Attributes
    ----------
    matched : tuple of str
        Codes with both a risk row and a boundary.
    no_boundary : tuple of str
        Codes of the risk table without a boundary (they cannot be drawn).
    no_risk_row : tuple of str
        Boundary codes without a row in the risk table (the national maps draw
        them as "no data"; the fact sheets leave them out).
    """

    matched: tuple[str, ...]
    no_boundary: tuple[str, ...]
    no_risk_row: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """True when every territory has a boundary and every boundary a row."""
        return not self.no_boundary and not self.no_risk_row

    def message(self) -> str:
        """A description of the mismatch, with a hint at the likely cause."""
        parts = []
        if self.no_boundary:
            parts.append(
                f"{len(self.no_boundary)} territories of the risk table have no "
                f"boundary and are not drawn: {_listing(self.no_boundary)}"
            )
        if self.no_risk_row:
            parts.append(
                f"{len(self.no_risk_row)} boundaries have no row in the risk table: "
                f"{_listing(self.no_risk_row)}"
            )
        text = "; ".join(parts) + "." if parts else "All codes match."
        stripped = {c.lstrip("0") for c in self.no_risk_row}
        if any(c.lstrip("0") in stripped for c in self.no_boundary):
            text += (
                " Some codes differ only by leading zeros (e.g. '05001' and '5001'):"
                " the GeoJSON probably stores them as numbers; store them as text."
            )
        return text


def read_boundaries(
    path: str | os.PathLike[str],
    key: str,
    *,
    name: str | None = None,
    merge_duplicates: bool = False,
) -> Boundaries:
    """Read territory boundaries from a GeoJSON FeatureCollection.

    Parameters
    ----------
    path : str or path-like
        A GeoJSON file (UTF-8, with or without BOM) holding a FeatureCollection
        of Polygon or MultiPolygon features; holes are kept.
    key : str
        The feature property holding the territory code. Codes are text: a
        number (e.g. ``5001``) becomes ``"5001"``, so codes with leading zeros
        must be stored as text in the file.
    name : str, optional
        A property holding a display name (shown in the fact sheets).
    merge_duplicates : bool, default False
        Features sharing a code are an error unless this is True, in which case
        their polygons are merged into one territory (e.g. islands stored as
        separate features).

    Returns
    -------
    Boundaries

    Raises
    ------
    SchemaError
        The file is not a GeoJSON FeatureCollection, or no feature has the
        property `key` (the message lists the properties present).
    DataValidationError
        Features without a code, duplicated codes, or invalid geometry (not a
        Polygon/MultiPolygon, rings that are not closed, have fewer than four
        positions, zero area or non-finite coordinates); the message names up
        to five features and the problem.
    """
    caller = "read_boundaries"
    if not isinstance(key, str) or not key:
        raise InvalidParameterError(
            f"The 'key' parameter of {caller} must be the name of a feature "
            f"property (a non-empty str); got {key!r}."
        )
    if name is not None and (not isinstance(name, str) or not name):
        raise InvalidParameterError(
            f"The 'name' parameter of {caller} must be a property name (a "
            f"non-empty str) or None; got {name!r}."
        )
    source = Path(path)
    try:
        with source.open(encoding="utf-8-sig") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise SchemaError(
            f"{source.name!r} is not valid JSON ({exc}); {caller} reads GeoJSON "
            "FeatureCollections."
        ) from exc
    except UnicodeDecodeError as exc:
        raise SchemaError(
            f"{source.name!r} is not UTF-8 text ({exc}); GeoJSON files are UTF-8 "
            "(RFC 7946). Re-save the file as UTF-8."
        ) from exc
    return _parse_collection(
        data,
        key=key,
        name=name,
        merge_duplicates=bool(merge_duplicates),
        source=source.name,
    )


class _InvalidGeometry(Exception):
    """Why one feature's geometry was rejected (internal)."""


def _parse_collection(
    data: Any, *, key: str, name: str | None, merge_duplicates: bool, source: str
) -> Boundaries:
    features = data.get("features") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("type") != "FeatureCollection"
        or not isinstance(features, list)
    ):
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise SchemaError(
            f"{source!r} is not a GeoJSON FeatureCollection (its type is "
            f'{kind!r}); read_boundaries needs an object with "type": '
            '"FeatureCollection" and a "features" list.'
        )
    if not features:
        raise SchemaError(f"{source!r} holds no features: there is nothing to map.")

    seen_props: set[str] = set()
    no_code: list[str] = []
    bad_code: list[str] = []
    bad_geometry: list[str] = []
    parsed: list[tuple[str, str, tuple[Polygon, ...]]] = []
    for i, feature in enumerate(features):
        props = feature.get("properties") if isinstance(feature, dict) else None
        props = props if isinstance(props, dict) else {}
        seen_props.update(str(p) for p in props)
        raw = props.get(key)
        if raw is None:
            no_code.append(f"feature {i}")
            continue
        code = _code_text(raw)
        if code is None:
            bad_code.append(f"feature {i}: {raw!r}")
            continue
        label = f"{code} (feature {i})"
        try:
            geometry = feature.get("geometry")
            shapes = _parse_geometry(geometry)
        except _InvalidGeometry as exc:
            bad_geometry.append(f"{label}: {exc}")
            continue
        shown = props.get(name) if name is not None else None
        parsed.append((code, "" if shown is None else str(shown), shapes))

    if len(no_code) == len(features):
        raise SchemaError(
            f"No feature of {source!r} has the property {key!r} given as 'key'. "
            "Pick the property that holds the territory code.",
            expected=[key],
            received=sorted(seen_props),
        )
    fix = f"Fix the features in {source!r} or choose another 'key'."
    if no_code:
        raise DataValidationError(
            column=key,
            problem="no territory code (property missing or null)",
            n_bad=len(no_code),
            examples=no_code,
            fix=fix,
            where=source,
        )
    if bad_code:
        raise DataValidationError(
            column=key,
            problem="codes must be text or whole numbers",
            n_bad=len(bad_code),
            examples=bad_code,
            fix=fix,
            where=source,
        )
    if bad_geometry:
        raise DataValidationError(
            column="geometry",
            problem="invalid geometry",
            n_bad=len(bad_geometry),
            examples=bad_geometry,
            fix="Boundaries must be Polygon or MultiPolygon features with closed "
            "rings of at least 4 finite [x, y] positions (RFC 7946); repair the "
            "file in a GIS (e.g. 'Fix geometries' in QGIS).",
            where=source,
        )

    polygons: dict[str, list[Polygon]] = {}
    names: dict[str, str] = {}
    for code, shown, polys in parsed:
        polygons.setdefault(code, []).extend(polys)
        names.setdefault(code, shown)
    if not merge_duplicates:
        counts = pd.Series([code for code, _, _ in parsed]).value_counts()
        dup = sorted(counts.index[counts > 1].tolist())
        if dup:
            raise DataValidationError(
                column=key,
                problem="the same code on several features",
                n_bad=len(dup),
                examples=dup,
                fix="Choose a property that is unique per feature as 'key', or "
                "pass merge_duplicates=True to merge the features of each code.",
                where=source,
            )
    frozen = {code: tuple(polygons[code]) for code in sorted(polygons)}
    return Boundaries(
        polygons=frozen,
        names={code: names[code] for code in frozen},
        key=key,
        source=source,
        geographic=_is_geographic(data, _bounds(frozen.values())),
    )


def _code_text(raw: Any) -> str | None:
    """A property value as a text code; None when it cannot be one."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        return raw.strip() or None
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        return str(int(raw))
    return None


def _parse_geometry(geometry: Any) -> tuple[Polygon, ...]:
    if not isinstance(geometry, dict):
        raise _InvalidGeometry("no geometry")
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        return (_parse_polygon(coords, ""),)
    if kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise _InvalidGeometry("a MultiPolygon needs a non-empty list of polygons")
        return tuple(
            _parse_polygon(p, f"polygon {j}: " if len(coords) > 1 else "")
            for j, p in enumerate(coords)
        )
    raise _InvalidGeometry(
        f"geometry type {kind!r} is not supported (Polygon or MultiPolygon)"
    )


def _parse_polygon(rings: Any, where: str) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise _InvalidGeometry(f"{where}a polygon needs at least one ring")
    out = []
    for j, ring in enumerate(rings):
        what = f"{where}{'outer ring' if j == 0 else f'hole {j}'}"
        arr = _ring_array(ring, what)
        area = _signed_area(arr)
        if area == 0:
            raise _InvalidGeometry(f"{what} has zero area")
        # outer rings counter-clockwise, holes clockwise: filled correctly by
        # both the non-zero and the even-odd rule, whatever the file's order
        if (j == 0) != (area > 0):
            arr = arr[::-1].copy()
        out.append(arr)
    return tuple(out)


def _ring_array(ring: Any, what: str) -> Ring:
    if not isinstance(ring, list) or len(ring) < 4:
        n = len(ring) if isinstance(ring, list) else 0
        raise _InvalidGeometry(
            f"{what} has {n} positions; a closed ring needs at least 4"
        )
    try:
        arr = np.asarray(ring)
    except ValueError:  # positions of different lengths (2-D and 3-D mixed)
        arr = np.asarray([p[:2] if isinstance(p, list) else p for p in ring])
    if arr.ndim != 2 or arr.shape[1] < 2 or arr.dtype.kind not in "iuf":
        raise _InvalidGeometry(f"{what} holds positions that are not [x, y] numbers")
    xy = np.ascontiguousarray(arr[:, :2], dtype=np.float64)
    if not np.isfinite(xy).all():
        raise _InvalidGeometry(f"{what} has non-finite coordinates")
    if not np.array_equal(xy[0], xy[-1]):
        raise _InvalidGeometry(
            f"{what} is not closed (first position {xy[0].tolist()}, last "
            f"{xy[-1].tolist()})"
        )
    return xy


def _signed_area(ring: Ring) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


def _bounds(groups: Iterable[tuple[Polygon, ...]]) -> tuple[float, float, float, float]:
    rings = [poly[0] for polys in groups for poly in polys]
    if not rings:
        return (0.0, 0.0, 1.0, 1.0)
    xy = np.concatenate(rings)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def _is_geographic(data: dict[str, Any], bounds: tuple[float, ...]) -> bool:
    crs = data.get("crs")
    if crs is not None:  # pre-RFC 7946 files may name a projected CRS
        text = json.dumps(crs).upper()
        if not any(tag in text for tag in ("CRS84", "4326", "4258", "4269")):
            return False
    xmin, ymin, xmax, ymax = bounds
    return -180 <= xmin and xmax <= 180 and -90 <= ymin and ymax <= 90


# --------------------------------------------------------------------------- #
# Validation of the results (the boundary)
# --------------------------------------------------------------------------- #


def _check_risk(risk: Any, caller: str) -> pd.DataFrame:
    table = getattr(risk, "table", None)
    if not isinstance(table, pd.DataFrame) or not hasattr(risk, "levels"):
        raise InvalidParameterError(
            f"The 'risk' parameter of {caller} must be a TerritoryRisk (the output "
            f"of clrisk.predict); got {type(risk).__name__}."
        )
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise SchemaError(
            f"The risk table given to {caller} lacks columns.",
            expected=list(_REQUIRED),
            received=[str(c) for c in table.columns],
        )
    out = table.reset_index(drop=True).copy()
    out["territory"] = out["territory"].astype(str)
    return out


def _check_boundaries(boundaries: Any, caller: str) -> Boundaries:
    if not isinstance(boundaries, Boundaries):
        raise InvalidParameterError(
            f"The 'boundaries' parameter of {caller} must be a Boundaries object "
            f"from clrisk.report.read_boundaries(path, key); got "
            f"{type(boundaries).__name__}."
        )
    return boundaries


def _check_territories(
    territories: Any, table: pd.DataFrame, caller: str
) -> list[str] | None:
    if territories is None:
        return None
    if isinstance(territories, str | bytes) or not isinstance(territories, Iterable):
        raise InvalidParameterError(
            f"The 'territories' parameter of {caller} must be a collection of "
            f"territory codes, e.g. ['05001']; got {territories!r}."
        )
    codes = list(dict.fromkeys(territories))
    known = set(table["territory"].tolist())
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise InvalidParameterError(
            f"The 'territories' parameter of {caller} lists codes that are not in "
            f"the risk table: {_listing(unknown)}. Codes are text and leading "
            "zeros matter ('05001', not 5001)."
        )
    return [str(c) for c in codes]


def _check_territory(territory: Any, codes: Sequence[str], caller: str) -> str:
    if isinstance(territory, str) and territory in set(codes):
        return territory
    hint = ""
    if not isinstance(territory, str):
        hint = " Codes are text: pass e.g. '05001', not 5001."
    else:
        near = [c for c in codes if c.lstrip("0") == territory.lstrip("0")]
        if near:
            hint = f" Did you mean {near[0]!r}? Leading zeros matter."
    raise InvalidParameterError(
        f"The 'territory' parameter of {caller} must be a code of the risk table; "
        f"got {territory!r}.{hint}"
    )


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "Maps, charts and fact sheets need matplotlib: install the extra with "
            "pip install 'clrisk[report]'."
        ) from exc


def _map_size(
    bounds: Boundaries, codes: Iterable[str], width: float = 5.5, legend: float = 2.6
) -> tuple[float, float]:
    """Figure size (inches) that fits the drawn area plus a legend on the right."""
    drawn = [bounds.polygons[c] for c in codes if c in bounds.polygons]
    xmin, ymin, xmax, ymax = _bounds(drawn) if drawn else bounds.bounds
    ratio = (ymax - ymin) / (xmax - xmin) if xmax > xmin else 1.0
    if bounds.geographic:
        ratio /= math.cos(math.radians((ymin + ymax) / 2))
    height = min(max(width * ratio, 2.5), 8.0) + 0.7  # + title
    return (width + legend, height)


def _new_figure(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if ax is not None:
        fig: Any = ax.figure
        while not isinstance(fig, Figure):  # a SubFigure: up to the root
            fig = fig.figure
        return fig, ax
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)  # the non-interactive canvas; no pyplot involved
    return fig, fig.add_subplot()


# --------------------------------------------------------------------------- #
# Maps
# --------------------------------------------------------------------------- #


def level_map(
    risk: Any,
    boundaries: Boundaries,
    ax: Axes | None = None,
    *,
    territories: Iterable[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Choropleth of the risk levels, with the breaks in the legend.

    Parameters
    ----------
    risk : TerritoryRisk
        Output of :func:`clrisk.predict` (its ``table`` and ``levels``).
    boundaries : Boundaries
        From :func:`read_boundaries`.
    ax : matplotlib Axes, optional
        Where to draw; by default a new Figure (Agg canvas).
    territories : iterable of str, optional
        Draw only these territories (e.g. one region); by default every
        territory and every boundary.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        One patch per territory (its ``gid`` is the code), filled with the
        colour of its level; "no data" in grey.

    Warns
    -----
    CoverageWarning
        When territories have no boundary or (without `territories`) boundaries
        have no risk row; see :meth:`Boundaries.match`.
    """
    caller = "level_map"
    table = _check_risk(risk, caller)
    bounds = _check_boundaries(boundaries, caller)
    subset = _check_territories(territories, table, caller)
    codes = bounds.codes if subset is None else subset
    fig, ax = _new_figure(ax, _map_size(bounds, codes))
    missing = _draw_level_map(ax, risk, table, bounds, subset)
    _warn_unmatched(bounds, table, subset, missing, caller)
    ax.set_title(title if title is not None else "Risk of child labour by territory")
    return fig


def count_map(
    risk: Any,
    boundaries: Boundaries,
    ax: Axes | None = None,
    *,
    territories: Iterable[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Expected number of children in child labour: graduated circles.

    A count is mapped with circles whose *area* is proportional to the
    expected count, over the territories in light grey ("no data" darker).
    A choropleth of counts would make large territories look worse than they
    are.

    Parameters
    ----------
    risk, boundaries, ax, territories, title
        As in :func:`level_map`.

    Returns
    -------
    matplotlib.figure.Figure
        The circles are one scatter collection (``gid`` ``"expected_count"``),
        one circle per territory with data and a boundary, in code order; the
        legend shows reference sizes.

    Warns
    -----
    CoverageWarning
        As in :func:`level_map`.
    """
    caller = "count_map"
    table = _check_risk(risk, caller)
    bounds = _check_boundaries(boundaries, caller)
    subset = _check_territories(territories, table, caller)
    codes = bounds.codes if subset is None else subset
    fig, ax = _new_figure(ax, _map_size(bounds, codes))
    missing = _draw_count_map(ax, table, bounds, subset)
    _warn_unmatched(bounds, table, subset, missing, caller)
    ax.set_title(
        title
        if title is not None
        else "Expected children in child labour (circle area)"
    )
    return fig


def _warn_unmatched(
    bounds: Boundaries,
    table: pd.DataFrame,
    subset: list[str] | None,
    missing: list[str],
    caller: str,
) -> None:
    if subset is None:
        match = bounds.match(table)
    else:
        match = BoundaryMatch(matched=(), no_boundary=tuple(missing), no_risk_row=())
    if not match.complete:
        drawn = (
            f" Those without a row are drawn as {NO_DATA!r}."
            if match.no_risk_row
            else ""
        )
        warnings.warn(
            f"{caller}: {match.message()}{drawn}", CoverageWarning, stacklevel=3
        )


def _draw_level_map(
    ax: Axes,
    risk: Any,
    table: pd.DataFrame,
    bounds: Boundaries,
    subset: list[str] | None,
    group: str | None = None,
) -> list[str]:
    """Draw; return the codes that have no boundary."""
    from matplotlib.patches import Patch

    rows = table if subset is None else table[table["territory"].isin(subset)]
    level_of = dict(zip(rows["territory"], rows["level"].astype(str), strict=True))
    names = tuple(risk.levels.level_names)
    palette = _level_palette(names)
    colours = {code: palette.get(lv, NO_DATA_COLOUR) for code, lv in level_of.items()}
    if subset is None:
        colours |= {c: NO_DATA_COLOUR for c in bounds.polygons if c not in colours}
    drawn = _draw_polygons(ax, bounds, colours)
    shown = {level_of.get(code, NO_DATA) for code in drawn}
    shown = {lv if lv in palette else NO_DATA for lv in shown}

    breaks = risk.levels.breaks
    groups = [group] if group is not None else sorted(set(breaks["group"].astype(str)))
    groups = groups or ["national"]  # no territory has data: no breaks at all
    labels = _legend_labels(breaks, groups)
    handles = []
    for lv in reversed(names):  # highest level on top
        if lv in labels or lv in shown:
            n = sum(1 for code in drawn if level_of.get(code) == lv)
            text = f"{lv}: {labels[lv]}" if lv in labels else lv
            handles.append(Patch(facecolor=palette[lv], label=f"{text} ({n})"))
    if NO_DATA in shown:
        n = sum(1 for code in drawn if colours[code] == NO_DATA_COLOUR)
        handles.append(Patch(facecolor=NO_DATA_COLOUR, label=f"{NO_DATA} ({n})"))
    if len(groups) > 1:
        scope = "within each region"
    elif groups[0] == "national":
        scope = "national"
    else:
        scope = f"within region {groups[0]}"
    ax.legend(
        handles=handles,
        title=f"Risk level ({risk.levels.method}, {scope})",
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
        fontsize="small",
        title_fontsize="small",
    )
    return [code for code in level_of if code not in bounds.polygons]


def _draw_count_map(
    ax: Axes, table: pd.DataFrame, bounds: Boundaries, subset: list[str] | None
) -> list[str]:
    """Draw; return the codes that have no boundary."""
    from matplotlib.lines import Line2D

    rows = table if subset is None else table[table["territory"].isin(subset)]
    rows = rows.sort_values("territory", kind="stable")
    expected = pd.to_numeric(rows["expected_count"], errors="coerce").to_numpy(float)
    rate = pd.to_numeric(rows["risk"], errors="coerce").to_numpy(float)
    has_data = np.isfinite(expected) & np.isfinite(rate)
    codes = rows["territory"].tolist()
    colours = {
        c: _BASE_COLOUR if ok else NO_DATA_COLOUR
        for c, ok in zip(codes, has_data.tolist(), strict=True)
    }
    if subset is None:
        colours |= {c: NO_DATA_COLOUR for c in bounds.polygons if c not in colours}
    drawn = _draw_polygons(ax, bounds, colours, edge="#9e9e9e")

    on_map = np.array([c in bounds.polygons for c in codes], dtype=bool)
    keep = has_data & on_map
    top = float(expected[keep].max()) if keep.any() else 0.0
    points = np.array(
        [
            _label_point(bounds.polygons[c])
            for c, k in zip(codes, keep, strict=True)
            if k
        ]
    ).reshape(-1, 2)
    sizes = _circle_areas(expected[keep], top)
    ax.scatter(
        points[:, 0],
        points[:, 1],
        s=sizes,
        color=_CIRCLE_COLOUR,
        alpha=0.7,
        edgecolors="white",
        linewidths=0.6,
        zorder=3,
        gid="expected_count",
    )
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=math.sqrt(float(_circle_areas(np.array([v]), top)[0])),
            markerfacecolor=_CIRCLE_COLOUR,
            markeredgecolor="white",
            alpha=0.7,
            label=f"{v:,.0f}" if v >= 10 else f"{v:g}",
        )
        for v in _reference_values(top)
    ]
    if any(colours[c] == NO_DATA_COLOUR for c in drawn):
        handles.append(_no_data_handle())
    ax.legend(
        handles=handles,
        title="Expected children\nin child labour",
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        frameon=False,
        fontsize="small",
        title_fontsize="small",
        labelspacing=1.5,
        borderpad=1.0,
    )
    return [c for c in codes if c not in bounds.polygons]


def _no_data_handle() -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=NO_DATA_COLOUR, label=NO_DATA)


def _circle_areas(values: NDArray[np.float64], top: float) -> NDArray[np.float64]:
    if top <= 0:
        return np.zeros_like(values)
    return _MAX_CIRCLE_AREA * np.clip(values, 0, None) / top


def _reference_values(top: float) -> list[float]:
    """Up to three round legend values at or below `top`."""
    if not top > 0:
        return []
    magnitude = 10 ** math.floor(math.log10(top))
    first = math.floor(top / magnitude) * magnitude
    values = [first, first / 2, first / 4]
    return [v for v in dict.fromkeys(values) if v > 0]


def _draw_polygons(
    ax: Axes, bounds: Boundaries, colours: Mapping[str, str], edge: str = _EDGE_COLOUR
) -> list[str]:
    """One PathPatch per code of `colours` that has a boundary; set the view."""
    from matplotlib.patches import PathPatch

    drawn = [code for code in sorted(colours) if code in bounds.polygons]
    for code in drawn:
        patch = PathPatch(
            _territory_path(bounds.polygons[code]),
            facecolor=colours[code],
            edgecolor=edge,
            linewidth=0.5,
            gid=code,
        )
        ax.add_patch(patch)
    if drawn:
        xmin, ymin, xmax, ymax = _bounds(bounds.polygons[c] for c in drawn)
    else:
        xmin, ymin, xmax, ymax = bounds.bounds
    dx, dy = (xmax - xmin) * 0.02 or 1.0, (ymax - ymin) * 0.02 or 1.0
    ax.set_xlim(xmin - dx, xmax + dx)
    ax.set_ylim(ymin - dy, ymax + dy)
    if bounds.geographic:
        ax.set_aspect(1 / math.cos(math.radians((ymin + ymax) / 2)))
    else:
        ax.set_aspect("equal")
    ax.set_axis_off()
    return drawn


def _territory_path(polygons: tuple[Polygon, ...]) -> Any:
    from matplotlib.path import Path as MplPath

    verts = []
    codes = []
    for poly in polygons:
        for ring in poly:
            c = np.full(len(ring), MplPath.LINETO, dtype=MplPath.code_type)
            c[0], c[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
            verts.append(ring)
            codes.append(c)
    return MplPath(np.concatenate(verts), np.concatenate(codes))


def _label_point(polygons: tuple[Polygon, ...]) -> tuple[float, float]:
    """A point inside the largest polygon: the middle of the widest interior
    segment of the horizontal line through its centroid."""
    poly = max(polygons, key=lambda p: sum(_signed_area(r) for r in p))
    outer = poly[0]
    x, y = outer[:, 0], outer[:, 1]
    cross = x[:-1] * y[1:] - x[1:] * y[:-1]
    area = cross.sum() / 2
    cy = float(((y[:-1] + y[1:]) * cross).sum() / (6 * area))
    span = float(y.max() - y.min())
    cy += span * 1e-6  # off any vertex
    xs: list[float] = []
    for ring in poly:
        x0, y0, x1, y1 = ring[:-1, 0], ring[:-1, 1], ring[1:, 0], ring[1:, 1]
        hit = (y0 <= cy) != (y1 <= cy)
        t = (cy - y0[hit]) / (y1[hit] - y0[hit])
        xs.extend((x0[hit] + t * (x1[hit] - x0[hit])).tolist())
    xs.sort()
    if len(xs) < 2:
        return float(x.mean()), float(y.mean())
    pairs = [(xs[i], xs[i + 1]) for i in range(0, len(xs) - 1, 2)]
    a, b = max(pairs, key=lambda p: p[1] - p[0])
    return (a + b) / 2, cy


def _level_palette(names: Sequence[str]) -> dict[str, str]:
    """A sequential colour per level (lowest light, highest dark)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["YlOrRd"]
    spots = np.linspace(0.2, 0.9, len(names)) if len(names) > 1 else [0.6]
    return {lv: to_hex(cmap(float(s))) for lv, s in zip(names, spots, strict=True)}


def _legend_labels(breaks: pd.DataFrame, groups: Sequence[str]) -> dict[str, str]:
    """Level -> its risk interval(s) from the breaks, e.g. "4.0–8.2%"."""
    per_group = {g: _intervals(breaks, g) for g in groups}
    out: dict[str, str] = {}
    for g, intervals in per_group.items():
        for lv, text in intervals.items():
            part = text if len(groups) == 1 else f"{g} {text}"
            out[lv] = part if lv not in out else f"{out[lv]}; {part}"
    return out


def _intervals(breaks: pd.DataFrame, group: str) -> dict[str, str]:
    rows = breaks[breaks["group"].astype(str) == str(group)].sort_values("level_code")
    ub = rows["upper_break"].to_numpy(float)
    d = _digits(ub[np.isfinite(ub)])
    out: dict[str, str] = {}
    prev: float | None = None
    for lv, b in zip(rows["level"].astype(str), ub, strict=True):
        if prev is None:
            out[lv] = "all values" if math.isinf(b) else f"≤ {b:.{d}f}%"
        elif math.isinf(b):
            out[lv] = f"> {prev:.{d}f}%"
        else:
            out[lv] = f"{prev:.{d}f}–{b:.{d}f}%"
        prev = float(b)
    return out


def _digits(values: NDArray[np.float64]) -> int:
    """Decimals (1 to 4) that keep the breaks apart."""
    for d in range(1, 5):
        if len({f"{v:.{d}f}" for v in values}) == len(values):
            return d
    return 4


# --------------------------------------------------------------------------- #
# Charts
# --------------------------------------------------------------------------- #


def targeting_curve(
    plan: Any, ax: Axes | None = None, *, title: str | None = None
) -> Figure:
    """The targeting curve of a ranking: how much child labour the first
    territories hold.

    Parameters
    ----------
    plan : Priorities
        Output of :func:`clrisk.prioritise` (its ``curve`` and, when a rule
        selected territories, ``selection`` and ``covered_share``).
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Lines (``gid``) ``"share_expected"`` and ``"share_children"`` (% against
        % of territories ranked), the diagonal ``"no_targeting"`` and, when there
        is a selection, the point ``"selection"``.
    """
    caller = "targeting_curve"
    curve = getattr(plan, "curve", None)
    needed = ["k", "share_territories", "share_children", "share_expected"]
    if not isinstance(curve, pd.DataFrame):
        raise InvalidParameterError(
            f"The 'plan' parameter of {caller} must be a Priorities (the output of "
            f"clrisk.prioritise); got {type(plan).__name__}."
        )
    if any(c not in curve.columns for c in needed):
        raise SchemaError(
            f"The targeting curve given to {caller} lacks columns.",
            expected=needed,
            received=[str(c) for c in curve.columns],
        )
    fig, ax = _new_figure(ax, (6.0, 4.5))
    x = 100 * curve["share_territories"].to_numpy(float)
    ax.plot([0, 100], [0, 100], ":", color=_NEUTRAL_COLOUR, gid="no_targeting")
    ax.plot(
        x,
        100 * curve["share_expected"].to_numpy(float),
        "-",
        color=_RISK_COLOUR,
        marker="o" if len(curve) <= 40 else None,
        markersize=3,
        label="expected children in child labour",
        gid="share_expected",
    )
    ax.plot(
        x,
        100 * curve["share_children"].to_numpy(float),
        "--",
        color=_PROTECTIVE_COLOUR,
        label="all children",
        gid="share_children",
    )
    ax.plot([], [], ":", color=_NEUTRAL_COLOUR, label="no targeting")
    selection = getattr(plan, "selection", None)
    covered = getattr(plan, "covered_share", math.nan)
    m = int(curve["k"].max()) if len(curve) else 0
    if isinstance(selection, pd.DataFrame) and len(selection) and m > 0:
        n_sel = len(selection)
        sx, sy = 100 * n_sel / m, 100 * float(covered)
        ax.plot([sx], [sy], "o", color="black", markersize=7, zorder=4, gid="selection")
        ax.annotate(
            f"selected: {n_sel:,} territories ({sx:.0f}%)\nhold {sy:.0f}% of "
            "expected child labour",
            (sx, sy),
            xytext=(12, -28),
            textcoords="offset points",
            fontsize="small",
        )
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 102)
    ax.set_xlabel("Territories ranked first (%)")
    ax.set_ylabel("Share covered (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small", frameon=False)
    ax.set_title(title if title is not None else "Targeting curve")
    return fig


def factor_bars(
    risk: Any,
    territory: str,
    ax: Axes | None = None,
    *,
    n: int | None = None,
    title: str | None = None,
) -> Figure:
    """The factors that raise or lower risk in one territory.

    Bars are the gap decomposition ``d_tj`` (log-odds, territory against the
    national mean; see :mod:`clrisk.factors`): red for risk factors (> 0), blue
    for protective ones (< 0), grey for none.

    Parameters
    ----------
    risk : TerritoryRisk
    territory : str
        Territory code (text; leading zeros matter).
    ax : matplotlib Axes, optional
    n : int, optional
        Show the `n` factors with the largest absolute gap; default all.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One bar per factor (its ``gid`` is the feature name), largest risk
        factor on top.
    """
    caller = "factor_bars"
    table = _check_risk(risk, caller)
    code = _check_territory(territory, table["territory"].tolist(), caller)
    n = _check_n(n, caller)
    gaps = risk.factors.gaps
    if code not in gaps.index or not np.isfinite(gaps.loc[code].to_numpy(float)).all():
        raise InvalidParameterError(
            f"Territory {code!r} has no factor weights: no child of the frame was "
            "scored there (level 'no data')."
        )
    shown = gaps.shape[1] if n is None else min(n, gaps.shape[1])
    fig, ax = _new_figure(ax, (8.5, 1.2 + 0.4 * shown))
    row = table.loc[table["territory"] == code].iloc[0]
    _draw_bars(ax, gaps.loc[code].astype(float), risk, n)
    ax.set_title(
        title
        if title is not None
        else f"{code}: risk {_pct(row['risk'])} "
        f"[{_pct(row['risk_low'])}, {_pct(row['risk_high'])}]"
    )
    return fig


def _check_n(n: Any, caller: str) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InvalidParameterError(
            f"The 'n' parameter of {caller} must be an int >= 1 or None; got {n!r}."
        )
    return int(n)


def _draw_bars(ax: Axes, gaps: pd.Series, risk: Any, n: int | None) -> None:
    from matplotlib.patches import Patch

    order = gaps.abs().sort_values(ascending=False, kind="stable").index
    shown = gaps.loc[order[:n] if n is not None else order].sort_values(kind="stable")
    labels = _feature_labels(risk)
    areas = risk.factors.policy_areas
    values = shown.to_numpy(float)
    colours = [_sign_colour(v) for v in values]
    bars = ax.barh(np.arange(len(values)), values, color=colours, height=0.7)
    for bar, feature in zip(bars, shown.index, strict=True):
        bar.set_gid(str(feature))
    ticks = [
        textwrap.fill(f"{labels.get(f, f)} ({areas.get(f) or 'unassigned'})", 42)
        for f in shown.index
    ]
    ax.set_yticks(np.arange(len(values)), ticks, fontsize="small")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("Gap from the national level (log-odds)")
    kinds = [
        ("risk factor", _RISK_COLOUR, (values > 0).any()),
        ("protective factor", _PROTECTIVE_COLOUR, (values < 0).any()),
        ("no effect", _NEUTRAL_COLOUR, (values == 0).any()),
    ]
    ax.legend(
        handles=[Patch(facecolor=c, label=lab) for lab, c, present in kinds if present],
        loc="lower right",
        fontsize="small",
        frameon=False,
    )
    ax.grid(axis="x", alpha=0.3)


def _sign_colour(value: float) -> str:
    if value > 0:
        return _RISK_COLOUR
    if value < 0:
        return _PROTECTIVE_COLOUR
    return _NEUTRAL_COLOUR


def _feature_labels(risk: Any) -> dict[str, str]:
    spec = getattr(getattr(risk, "view", None), "spec", None)
    features = getattr(spec, "features", ())
    return {f.name: (f.label or f.name) for f in features}


# --------------------------------------------------------------------------- #
# Fact sheets
# --------------------------------------------------------------------------- #

_UNKNOWN_REGION = "region not known"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;
max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;
padding-bottom:.2rem;margin-top:2rem}h3{margin-bottom:.3rem}
.sub{color:#555;margin-top:0}table{border-collapse:collapse;margin:.5rem 0 1rem}
th,td{padding:.25rem .6rem;border-bottom:1px solid #e3e3e3;text-align:left;
vertical-align:top}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:.9em;height:.9em;border:1px solid #888;
margin-right:.4em;vertical-align:-.1em}img{max-width:100%;height:auto}
.figs{display:flex;flex-wrap:wrap;gap:1rem}.figs figure{margin:0;flex:1 1 24rem}
figcaption{font-size:.85rem;color:#555}.note{color:#8a4b00}
footer{margin-top:2rem;font-size:.8rem;color:#666}
@media print{body{margin:0}h2{break-after:avoid}}
""".strip()


def fact_sheets(
    risk: Any,
    boundaries: Boundaries | None,
    out_dir: str | os.PathLike[str],
    *,
    plan: Any = None,
    title: str = "Child labour risk",
    n_factors: int = 5,
    dpi: int = 110,
) -> list[Path]:
    """Write one self-contained HTML fact sheet per region.

    Each page holds: the context (children, expected children in child labour
    and risk, with their intervals, against the national figures), the map of
    the region's risk levels and expected counts, the territories listed by
    level with the level's risk range and each territory's interval, the main
    risk and protective factors grouped by policy area, the priorities (when
    `plan` is given) and the data sources. Images are embedded as base64 PNG;
    there are no scripts and no external links, so a page can be e-mailed or
    printed as is. All text is HTML-escaped.

    Parameters
    ----------
    risk : TerritoryRisk
        Output of :func:`clrisk.predict`, with ``region=`` for one sheet per
        region (otherwise one sheet for all territories). Territories without
        a region get a sheet of their own (``"region not known"``).
    boundaries : Boundaries or None
        From :func:`read_boundaries`; None leaves the maps out.
    out_dir : str or path-like
        Folder for the pages (created if needed); files are named
        ``region_<region>.html`` (``region_unknown.html``, or
        ``all_territories.html`` without regions).
    plan : Priorities, optional
        Output of :func:`clrisk.prioritise`: adds each territory's rank, the
        selected territories and the targeting curve.
    title : str, default "Child labour risk"
        Page heading, followed by the region.
    n_factors : int, default 5
        Policy areas (and factors in the chart) shown on each side.
    dpi : int, default 110
        Resolution of the images.

    Returns
    -------
    list of Path
        The pages written, in region order.

    Warns
    -----
    CoverageWarning
        Once, when territories and boundaries do not all match (each sheet also
        lists its territories that are not on the map).
    """
    caller = "fact_sheets"
    table = _check_risk(risk, caller)
    bounds = None if boundaries is None else _check_boundaries(boundaries, caller)
    n_factors = _check_n(n_factors, caller) or 5
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 30 <= dpi <= 600:
        raise InvalidParameterError(
            f"The 'dpi' parameter of {caller} must be an int in [30, 600]; got {dpi!r}."
        )
    if plan is not None and not isinstance(
        getattr(plan, "ranking", None), pd.DataFrame
    ):
        raise InvalidParameterError(
            f"The 'plan' parameter of {caller} must be a Priorities (the output of "
            f"clrisk.prioritise) or None; got {type(plan).__name__}."
        )
    _require_matplotlib()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if bounds is not None:
        match = bounds.match(table)
        if not match.complete:
            left_out = (
                " Those without a row are in no fact sheet."
                if match.no_risk_row
                else ""
            )
            warnings.warn(
                f"{caller}: {match.message()}{left_out}", CoverageWarning, stacklevel=2
            )

    curve_png = None
    if plan is not None:
        curve_png = _png(targeting_curve(plan), dpi)

    paths: list[Path] = []
    used: set[str] = set()
    for region, rows in _regions(table):
        stem = _file_stem(region, used)
        page = _sheet(risk, table, rows, region, bounds, plan, title, n_factors, dpi)
        if curve_png is not None:
            page = page.replace("<!--curve-->", _figure(curve_png, "Targeting curve"))
        path = out / f"{stem}.html"
        path.write_text(page, encoding="utf-8")
        paths.append(path)
    return paths


def _regions(table: pd.DataFrame) -> list[tuple[str | None, pd.DataFrame]]:
    """(region, its rows) in region order; None for "all territories"."""
    if "region" not in table.columns or table["region"].isna().all():
        return [(None, table)]
    region = table["region"].map(lambda v: None if pd.isna(v) else str(v))
    groups: list[tuple[str | None, pd.DataFrame]] = [
        (r, table[region == r]) for r in sorted(set(region.dropna()))
    ]
    unknown = table[region.isna()]
    if len(unknown):
        groups.append((_UNKNOWN_REGION, unknown))
    return groups


def _file_stem(region: str | None, used: set[str]) -> str:
    if region is None:
        base = "all_territories"
    elif region == _UNKNOWN_REGION:
        base = "region_unknown"
    else:
        base = f"region_{region}"
    base = re.sub(r"[^\w.-]+", "_", base).strip("._") or "region"
    stem, i = base, 2
    while stem.lower() in used:
        stem, i = f"{base}_{i}", i + 1
    used.add(stem.lower())
    return stem


def _sheet(
    risk: Any,
    table: pd.DataFrame,
    rows: pd.DataFrame,
    region: str | None,
    bounds: Boundaries | None,
    plan: Any,
    title: str,
    n_factors: int,
    dpi: int,
) -> str:
    e = _esc
    place = "All territories" if region is None else f"Region {region}"
    if region == _UNKNOWN_REGION:
        place = "Territories whose region is not known"
    codes = rows["territory"].tolist()
    names = bounds.names if bounds is not None else {}
    levels = risk.levels
    group = "national"
    if levels.scope == "region" and region not in (None, _UNKNOWN_REGION):
        group = str(region)
    palette = _level_palette(tuple(levels.level_names))
    intervals = _intervals(levels.breaks, group)

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}: {e(place)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1><p class='sub'>{e(place)} · {len(codes):,} "
        f"{'territory' if len(codes) == 1 else 'territories'}</p>",
        "<h2>Context</h2>",
        _context(risk, rows, region),
    ]

    # maps
    parts.append("<h2>Map</h2>")
    if bounds is None:
        parts.append("<p>No boundaries were given, so there is no map.</p>")
    else:
        on_map = [c for c in codes if c in bounds.polygons]
        missing = [c for c in codes if c not in bounds.polygons]
        if on_map:
            figs = []
            size = _map_size(bounds, on_map, width=3.6, legend=2.4)
            fig, ax = _new_figure(None, size)
            _draw_level_map(ax, risk, table, bounds, on_map, group=group)
            ax.set_title("Risk level")
            figs.append(_figure(_png(fig, dpi), f"Risk level in {place}"))
            fig, ax = _new_figure(None, size)
            _draw_count_map(ax, table, bounds, on_map)
            ax.set_title("Expected children in child labour")
            figs.append(
                _figure(_png(fig, dpi), f"Expected children in child labour, {place}")
            )
            parts.append("<div class='figs'>" + "".join(figs) + "</div>")
        if missing:
            parts.append(
                f"<p class='note'>Not on the map (no boundary in "
                f"{e(bounds.source)}, property {e(bounds.key)}): "
                f"{e(', '.join(missing))}.</p>"
            )

    # territories by level
    parts.append("<h2>Territories by risk level</h2>")
    where = "within the region" if group != "national" else "nationally"
    parts.append(
        f"<p>Levels: {e(levels.method)} breaks computed {where}. Each territory's "
        f"risk is shown with its {_confidence(risk)} interval.</p>"
    )
    ranks = _plan_ranks(plan)
    order = [*reversed(levels.level_names), NO_DATA]
    level_col = rows["level"].astype(str)
    for lv in order:
        members = rows[level_col == lv].sort_values(
            ["risk", "territory"], ascending=[False, True], na_position="last"
        )
        if members.empty:
            continue
        colour = palette.get(lv, NO_DATA_COLOUR)
        rng = intervals.get(lv)
        head = f"{lv} — risk {rng}" if rng else lv
        parts.append(
            f"<h3><span class='swatch' style='background:{colour}'></span>"
            f"{e(head)} ({len(members):,})</h3>"
        )
        parts.append(_territory_table(members, names, ranks))
    other = rows[~level_col.isin(order)]
    if len(other):
        parts.append("<h3>Other levels</h3>")
        parts.append(_territory_table(other, names, ranks))

    # factors
    parts.append("<h2>Main risk and protective factors</h2>")
    parts.append(_factors_section(risk, rows, place, n_factors, dpi))

    if plan is not None:
        parts.append("<h2>Priorities</h2>")
        parts.append(_priorities_section(plan, codes, names))

    parts.append("<h2>Data sources</h2>")
    parts.append(_sources(risk, bounds))
    parts.append(f"<footer>{e(_generated_by())}</footer></body></html>")
    return "\n".join(parts) + "\n"


def _context(risk: Any, rows: pd.DataFrame, region: str | None) -> str:
    e = _esc
    conf = _confidence(risk)
    nat = risk.national().iloc[0]
    est: Any = None
    if region is None:
        est = nat
    elif region != _UNKNOWN_REGION and getattr(risk, "regions", None) is not None:
        roll = risk.rollup()
        hit = roll[roll["region"].astype(str) == region]
        est = hit.iloc[0] if len(hit) else None
    has_data = rows["risk"].notna()
    lines = [
        (label, f"{pd.to_numeric(rows[col], errors='coerce').sum():,.0f}")
        for label, col in (
            ("Children in the frame", "n_children"),
            ("Children (weighted)", "weighted_children"),
        )
        if col in rows.columns
    ]
    if est is not None:
        lines += [
            (
                "Expected children in child labour",
                f"{est['expected_count']:,.0f} [{est['expected_low']:,.0f}, "
                f"{est['expected_high']:,.0f}]",
            ),
            (
                "Risk of child labour",
                f"{_pct(est['risk'])} [{_pct(est['risk_low'])}, "
                f"{_pct(est['risk_high'])}]",
            ),
        ]
    else:
        total = pd.to_numeric(rows["expected_count"], errors="coerce").sum()
        lines.append(("Expected children in child labour", f"{total:,.0f}"))
    if region is not None:
        lines.append(
            (
                "National risk (for comparison)",
                f"{_pct(nat['risk'])} [{_pct(nat['risk_low'])}, "
                f"{_pct(nat['risk_high'])}]",
            )
        )
    lines.append(("Territories with data", f"{int(has_data.sum()):,} of {len(rows):,}"))
    body = "".join(
        f"<tr><th>{e(k)}</th><td class='n'>{e(v)}</td></tr>" for k, v in lines
    )
    return (
        f"<table>{body}</table><p>Intervals in brackets are {conf} intervals; "
        "expected counts are the children the model expects in child labour.</p>"
    )


def _territory_table(
    rows: pd.DataFrame, names: Mapping[str, str], ranks: Mapping[str, Any]
) -> str:
    e = _esc
    with_names = any(names.get(c) for c in rows["territory"])
    head = ["Territory"] + (["Name"] if with_names else [])
    head += ["Risk [interval]", "Expected children [interval]", "Lead policy area"]
    if ranks:
        head.append("Priority rank")
    out = ["<table><thead><tr>"]
    out += [f"<th>{e(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for r in rows.itertuples(index=False):
        rec = r._asdict()
        code = str(rec["territory"])
        risk_text = (
            f"{_pct(rec['risk'])} [{_pct(rec['risk_low'])}, {_pct(rec['risk_high'])}]"
            if pd.notna(rec["risk"])
            else "no data"
        )
        lo, hi = rec.get("expected_low"), rec.get("expected_high")
        exp_text = (
            f"{rec['expected_count']:,.1f} [{lo:,.1f}, {hi:,.1f}]"
            if pd.notna(rec["risk"]) and pd.notna(lo) and pd.notna(hi)
            else "–"
        )
        lead = rec.get("lead_policy_area")
        lead_text = (
            str(lead) if isinstance(lead, str) and lead else "none above national"
        )
        if pd.isna(rec["risk"]):
            lead_text = "–"
        cells = [code] + ([names.get(code, "")] if with_names else [])
        cells += [risk_text, exp_text, lead_text]
        if ranks:
            rank, selected = ranks.get(code, ("–", False))
            cells.append(f"{rank}{' (selected)' if selected else ''}")
        out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _factors_section(
    risk: Any, rows: pd.DataFrame, place: str, n_factors: int, dpi: int
) -> str:
    e = _esc
    gaps = risk.factors.gaps
    codes = [c for c in rows["territory"] if c in gaps.index]
    sub = gaps.loc[codes].astype(float)
    weights = (
        pd.to_numeric(rows.set_index("territory")["weighted_children"], errors="coerce")
        .reindex(codes)
        .to_numpy(float)
        if "weighted_children" in rows.columns
        else np.ones(len(codes))
    )
    ok = np.isfinite(sub.to_numpy()).all(axis=1) & np.isfinite(weights) & (weights > 0)
    if not ok.any():
        return "<p>No territory of this page has data, so there are no factors.</p>"
    # The gaps are linear in the territory means, so the weighted mean of the
    # territories' gaps is exactly the gap of the whole region.
    w = weights[ok] / weights[ok].sum()
    region_gap = pd.Series(w @ sub.to_numpy()[ok], index=sub.columns)
    areas = risk.factors.policy_areas
    labels = _feature_labels(risk)
    area_of = region_gap.index.map(lambda f: areas.get(f) or "unassigned")
    by_area = region_gap.groupby(area_of.to_numpy()).sum()
    lead = rows["lead_policy_area"] if "lead_policy_area" in rows.columns else None

    def area_rows(selected: pd.Series) -> str:
        out = []
        for area, value in selected.items():
            feats = region_gap[area_of == area]
            feats = feats[np.sign(feats) == np.sign(value)]
            feats = feats.reindex(feats.abs().sort_values(ascending=False).index)
            listed = ", ".join(labels.get(f, f) for f in feats.index[:3])
            n_lead = int((lead == area).sum()) if lead is not None else 0
            out.append(
                f"<tr><td>{e(area)}</td><td class='n'>{value:+.3f}</td>"
                f"<td>{e(listed)}</td><td class='n'>{n_lead}</td></tr>"
            )
        return "".join(out)

    head = (
        "<table><thead><tr><th>Policy area</th><th class='n'>Gap (log-odds)</th>"
        "<th>Main factors</th><th class='n'>Lead area in territories</th></tr>"
        "</thead><tbody>"
    )
    risk_areas = by_area[by_area > 0].sort_values(ascending=False).head(n_factors)
    prot_areas = by_area[by_area < 0].sort_values().head(n_factors)
    parts = [
        "<p>Each factor's gap compares the region with the national level on the "
        "log-odds scale (weighted by children); positive gaps raise risk, "
        "negative ones lower it. Factors are grouped by the policy area that can "
        "act on them.</p>",
        "<h3>Risk factors</h3>",
        head + area_rows(risk_areas) + "</tbody></table>"
        if len(risk_areas)
        else "<p>No policy area raises risk above the national level.</p>",
        "<h3>Protective factors</h3>",
        head + area_rows(prot_areas) + "</tbody></table>"
        if len(prot_areas)
        else "<p>No policy area lowers risk below the national level.</p>",
    ]
    ups = region_gap[region_gap > 0].sort_values(ascending=False).head(n_factors)
    downs = region_gap[region_gap < 0].sort_values().head(n_factors)
    main = pd.concat([ups, downs])
    if main.empty:
        return "".join(parts)
    fig, ax = _new_figure(None, (8.5, 1.2 + 0.4 * len(main)))
    _draw_bars(ax, main, risk, None)
    ax.set_title("Against the national level")
    parts.append(_figure(_png(fig, dpi), f"Main factors in {place}"))
    return "".join(parts)


def _plan_ranks(plan: Any) -> dict[str, tuple[Any, bool]]:
    if plan is None:
        return {}
    rk = plan.ranking
    return {
        str(c): (int(r), bool(s))
        for c, r, s in zip(rk["territory"], rk["rank"], rk["selected"], strict=True)
    }


def _priorities_section(
    plan: Any, codes: Sequence[str], names: Mapping[str, str]
) -> str:
    e = _esc
    sel = plan.selection
    mine = sel[sel["territory"].astype(str).isin(set(codes))]
    parts = [f"<pre>{e(plan.summary())}</pre>"]
    if len(mine):
        listed = ", ".join(
            f"{c}{' ' + names[c] if names.get(c) else ''} (rank {r})"
            for c, r in zip(mine["territory"].astype(str), mine["rank"], strict=True)
        )
        parts.append(
            f"<p>Selected here: {len(mine):,} of {len(codes):,} territories: "
            f"{e(listed)}.</p>"
        )
    else:
        parts.append("<p>No territory of this page is in the selection.</p>")
    parts.append("<!--curve-->")
    return "".join(parts)


def _sources(risk: Any, bounds: Boundaries | None) -> str:
    e = _esc
    spec = getattr(getattr(risk, "view", None), "spec", None)
    q = risk.quality
    items = []
    if spec is not None:
        model = spec.name or "unnamed specification"
        if spec.description:
            model += f" — {spec.description}"
        items.append(f"Model: {model.rstrip('.')}.")
        items.append(
            f"Fitted on the '{spec.train_source}' data and projected onto the "
            f"'{spec.frame_source}' data ({len(spec.features)} factors)."
        )
    items.append(
        f"Rows read: {q.rows_read:,}; children scored: {q.rows_used:,}; rows "
        f"rejected: {q.rows_rejected:,}"
        + (
            " (" + "; ".join(f"{k}: {v:,}" for k, v in q.rejected.items()) + ")"
            if q.rejected
            else ""
        )
        + "."
    )
    items += [f"Note: {n}" for n in q.notes]
    if bounds is not None:
        items.append(
            f"Boundaries: {bounds.source} (territory code in property "
            f"'{bounds.key}', {len(bounds):,} areas)."
        )
    lv = risk.levels
    items.append(
        f"Risk levels: {lv.method}, {lv.scope} scope, {len(lv.level_names)} levels."
    )
    items.append(
        f"Intervals: {_confidence(risk)} delta-method intervals. Factors: gap "
        "decomposition of the model's log-odds."
    )
    return "<ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>"


def _generated_by() -> str:
    import clrisk

    return f"Generated by clrisk {clrisk.__version__}."


def _confidence(risk: Any) -> str:
    alpha = float(getattr(risk, "alpha", 0.05))
    return f"{100 * (1 - alpha):g}%"


def _png(fig: Figure, dpi: int) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _figure(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    c = _esc(caption)
    return (
        f"<figure><img alt='{c}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{c}</figcaption></figure>"
    )


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{v:.1f}%" if math.isfinite(v) else "–"


def _listing(items: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    more = len(items) - limit
    return shown + (f" and {more} more" if more > 0 else "")
