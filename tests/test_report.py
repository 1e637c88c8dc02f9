"""Maps, charts and fact sheets (clrisk.report): checked for content."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clrisk
from clrisk.exceptions import (
    CoverageWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)

pytest.importorskip("matplotlib", reason="maps need the extra clrisk[report]")

from matplotlib.colors import to_hex, to_rgb
from matplotlib.image import imread

from clrisk import report

AUSTRIA = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "refdata"
    / "emdi"
    / "austria_districts.geojson"
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOLED = 5  # grid position of the territory whose square has a hole (a lake)
ISLAND = 0  # grid position of the territory with a second polygon (an island)
NASTY = 2  # grid position of the territory whose name tries to inject HTML


# --------------------------------------------------------------------------- #
# Fixtures: a small country and a synthetic GeoJSON grid of its territories
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def country():
    return clrisk.make_country(
        random_state=0,
        n_territories=16,
        n_regions=2,
        children_per_territory=150,
        survey_children=3000,
    )


@pytest.fixture(scope="module")
def model(country):
    return clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)


@pytest.fixture(scope="module")
def risk(country, model):
    return clrisk.predict(model, country.census, **country.predict_kwargs)


@pytest.fixture(scope="module")
def risk_no_data(country, model):
    """Territory 05004 has no children in the frame: level "no data", no region."""
    column = country.predict_kwargs["territory"]
    census = country.census[country.census[column] != "05004"]
    with pytest.warns(CoverageWarning, match="05004"):
        return clrisk.predict(model, census, **country.predict_kwargs)


@pytest.fixture(scope="module")
def plan(risk):
    return clrisk.prioritise(risk, budget=4)


def _square(x: float, y: float, size: float = 1.0) -> list[list[float]]:
    """A closed counter-clockwise square."""
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]


def _grid(codes, *, numeric=False):
    """A FeatureCollection: territory i is the unit square at (i % 4, i // 4).

    Position ISLAND is a MultiPolygon (square + a small island), position HOLED
    has a hole in its middle, written clockwise-outer to test the orientation
    fix; position NASTY has a name with markup."""
    features = []
    for i, code in enumerate(codes):
        x, y = i % 4, i // 4
        if i == ISLAND:
            geometry = {
                "type": "MultiPolygon",
                "coordinates": [[_square(x, y)], [_square(4.5, 0.2, 0.3)]],
            }
        elif i == HOLED:
            outer = _square(x, y)[::-1]  # clockwise: against RFC 7946
            hole = _square(x + 0.25, y + 0.25, 0.5)  # counter-clockwise
            geometry = {"type": "Polygon", "coordinates": [outer, hole]}
        else:
            geometry = {"type": "Polygon", "coordinates": [_square(x, y)]}
        name = "<script>alert('x')</script>" if i == NASTY else f"Territory {i}"
        props = {"code": code, "name": name, "num": int(code)}
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    return {"type": "FeatureCollection", "features": features}


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def codes(risk):
    return risk.table["territory"].tolist()


@pytest.fixture(scope="module")
def grid_path(tmp_path_factory, codes):
    return _write(tmp_path_factory.mktemp("geo") / "grid.geojson", _grid(codes))


@pytest.fixture(scope="module")
def bounds(grid_path):
    return report.read_boundaries(grid_path, "code", name="name")


def _patches(fig):
    """Territory patches of a map: code -> face colour (hex)."""
    (ax,) = fig.axes
    return {p.get_gid(): to_hex(p.get_facecolor()) for p in ax.patches if p.get_gid()}


def _legend_texts(fig):
    (ax,) = fig.axes
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _luminance(colour: str) -> float:
    r, g, b = to_rgb(colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# --------------------------------------------------------------------------- #
# read_boundaries
# --------------------------------------------------------------------------- #


def test_read_boundaries_polygons_multipolygons_holes(bounds, codes):
    assert bounds.codes == sorted(codes)
    assert all(isinstance(c, str) for c in bounds.codes)
    assert "05001" in bounds.polygons  # leading zero kept
    assert len(bounds.polygons[codes[ISLAND]]) == 2  # MultiPolygon: both parts
    (holed,) = bounds.polygons[codes[HOLED]]
    assert len(holed) == 2  # outer ring and the hole
    outer, hole = holed
    assert report._signed_area(outer) == pytest.approx(1.0)  # now counter-clockwise
    assert report._signed_area(hole) == pytest.approx(-0.25)  # hole clockwise
    assert bounds.names[codes[3]] == "Territory 3"
    assert bounds.key == "code" and bounds.source == "grid.geojson"
    assert bounds.geographic
    assert bounds.match(codes).complete


def test_numeric_codes_become_text_and_the_mismatch_is_explained(grid_path, risk):
    numeric = report.read_boundaries(grid_path, "num")
    assert "5001" in numeric.codes and "05001" not in numeric.codes
    match = numeric.match(risk)
    assert "05001" in match.no_boundary and "5001" in match.no_risk_row
    assert "85001" in match.matched
    assert "leading zeros" in match.message()


def test_missing_key_property_is_a_schema_error_listing_the_properties(grid_path):
    with pytest.raises(SchemaError, match="codigo") as info:
        report.read_boundaries(grid_path, "codigo")
    assert "'code'" in str(info.value) and "'name'" in str(info.value)


def test_feature_without_code_is_reported(tmp_path, codes):
    data = _grid(codes)
    del data["features"][3]["properties"]["code"]
    data["features"][7]["properties"]["code"] = None
    path = _write(tmp_path / "b.geojson", data)
    with pytest.raises(DataValidationError, match="feature 3") as info:
        report.read_boundaries(path, "code")
    assert "feature 7" in str(info.value) and "2 rows" in str(info.value)


@pytest.mark.parametrize(
    ("geometry", "problem"),
    [
        ({"type": "Polygon", "coordinates": [_square(0, 0)[:-1]]}, "not closed"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}, "at least 4"),
        ({"type": "Point", "coordinates": [0, 0]}, "'Point' is not supported"),
        (None, "no geometry"),
        ({"type": "Polygon", "coordinates": [[["a", "b"]] * 4]}, "not \\[x, y\\]"),
        ({"type": "Polygon", "coordinates": [[[0, 0]] * 4]}, "zero area"),
        ({"type": "MultiPolygon", "coordinates": []}, "non-empty list"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, float("nan")]]]},
            "at least 4",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[0, 0], [1, 0], [1, float("nan")], [0, 0]]],
            },
            "non-finite",
        ),
    ],
)
def test_invalid_geometry_names_the_feature_and_the_problem(
    tmp_path, codes, geometry, problem
):
    data = _grid(codes)
    data["features"][4]["geometry"] = geometry
    path = _write(tmp_path / "bad.geojson", data)
    with pytest.raises(DataValidationError, match="invalid geometry") as info:
        report.read_boundaries(path, "code")
    message = str(info.value)
    assert codes[4] in message and "'geometry'" in message
    assert re.search(problem, message)


def test_hole_problems_name_the_ring(tmp_path, codes):
    data = _grid(codes)
    outer, hole = data["features"][HOLED]["geometry"]["coordinates"]
    data["features"][HOLED]["geometry"]["coordinates"] = [outer, hole[:-1]]
    path = _write(tmp_path / "hole.geojson", data)
    with pytest.raises(DataValidationError, match="hole 1 is not closed"):
        report.read_boundaries(path, "code")


def test_duplicated_codes_are_an_error_unless_merged(tmp_path, codes):
    data = _grid(codes)
    data["features"][1]["properties"]["code"] = codes[0]
    path = _write(tmp_path / "dup.geojson", data)
    with pytest.raises(DataValidationError, match="merge_duplicates"):
        report.read_boundaries(path, "code")
    merged = report.read_boundaries(path, "code", merge_duplicates=True)
    assert len(merged.polygons[codes[0]]) == 3  # square, island, second square
    assert codes[1] not in merged.polygons


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"type": "Feature", "geometry": null}', "not a GeoJSON FeatureCollection"),
        ('{"type": "FeatureCollection", "features": []}', "no features"),
    ],
)
def test_files_that_are_not_feature_collections(tmp_path, text, match):
    path = tmp_path / "x.geojson"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError, match=match):
        report.read_boundaries(path, "code")


def test_bom_and_projected_crs(tmp_path, codes):
    data = _grid(codes)
    data["crs"] = {"type": "name", "properties": {"name": "EPSG:32618"}}
    path = tmp_path / "bom.geojson"
    path.write_text("\ufeff" + json.dumps(data), encoding="utf-8")
    projected = report.read_boundaries(path, "code")
    assert len(projected) == 16 and not projected.geographic


# --------------------------------------------------------------------------- #
# level_map
# --------------------------------------------------------------------------- #


def test_level_map_one_colour_per_level_and_breaks_in_legend(risk, bounds):
    fig = report.level_map(risk, bounds)
    colours = _patches(fig)
    table = risk.table.set_index("territory")
    assert set(colours) == set(table.index)  # every territory drawn, once
    present = table["level"].unique()
    assert len(set(colours.values())) == len(present)
    # the colour is a function of the level, and darker for higher levels
    by_level = {
        lv: {colours[c] for c in table.index[table["level"] == lv]} for lv in present
    }
    assert all(len(v) == 1 for v in by_level.values())
    shades = [_luminance(next(iter(by_level[lv]))) for lv in risk.levels.level_names]
    assert shades == sorted(shades, reverse=True)

    legend = " | ".join(_legend_texts(fig))
    for row in risk.levels.breaks.itertuples():
        assert row.level in legend
        if np.isfinite(row.upper_break):
            assert f"{row.upper_break:.1f}" in legend
        assert f"({row.n})" in legend  # territories drawn per level
    assert "no data" not in legend


def test_level_map_draws_no_data_in_grey(risk_no_data, bounds):
    fig = report.level_map(risk_no_data, bounds)
    colours = _patches(fig)
    assert colours["05004"] == report.NO_DATA_COLOUR
    levels = risk_no_data.table["level"]
    assert "no data" in set(levels)
    assert len(set(colours.values())) == levels.nunique()  # levels + "no data"
    assert "no data (1)" in _legend_texts(fig)


def test_level_map_reports_territories_without_boundary_and_extra_boundaries(
    tmp_path, risk, codes
):
    data = _grid(codes)
    data["features"][1]["properties"]["code"] = "99001"  # replaces codes[1]
    path = _write(tmp_path / "partial.geojson", data)
    partial = report.read_boundaries(path, "code")
    match = partial.match(risk)
    assert match.no_boundary == (codes[1],)
    assert match.no_risk_row == ("99001",)
    with pytest.warns(CoverageWarning) as record:
        fig = report.level_map(risk, partial)
    (message,) = [str(w.message) for w in record]
    assert codes[1] in message and "99001" in message
    colours = _patches(fig)
    assert codes[1] not in colours
    assert colours["99001"] == report.NO_DATA_COLOUR


def test_level_map_of_some_territories_into_given_axes(risk, bounds):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    region = risk.table.loc[risk.table["region"] == "85", "territory"].tolist()
    out = report.level_map(risk, bounds, ax, territories=region, title="Region 85")
    assert out is fig
    assert set(_patches(fig)) == set(region)
    assert ax.get_title() == "Region 85"
    with pytest.raises(InvalidParameterError, match="5001"):
        report.level_map(risk, bounds, territories=[5001])


def test_level_map_rejects_wrong_inputs(risk, bounds, grid_path):
    with pytest.raises(InvalidParameterError, match="TerritoryRisk"):
        report.level_map(risk.table, bounds)
    with pytest.raises(InvalidParameterError, match="read_boundaries"):
        report.level_map(risk, grid_path)


def test_region_scope_legend_shows_the_breaks_of_each_region(risk, bounds):
    by_region = risk.classify("jenks", k=3, scope="region")
    legend = " | ".join(_legend_texts(report.level_map(by_region, bounds)))
    for row in by_region.levels.breaks.itertuples():
        if np.isfinite(row.upper_break):
            assert f"{row.group} " in legend
            assert f"{row.upper_break:.1f}" in legend


# --------------------------------------------------------------------------- #
# count_map, targeting_curve, factor_bars
# --------------------------------------------------------------------------- #


def _inside(point, polygon) -> bool:
    from matplotlib.path import Path as MplPath

    outer, *holes = polygon
    return MplPath(outer).contains_point(point) and not any(
        MplPath(h).contains_point(point) for h in holes
    )


def test_count_map_circle_area_proportional_to_expected_count(risk, bounds):
    fig = report.count_map(risk, bounds)
    (ax,) = fig.axes
    (circles,) = [c for c in ax.collections if c.get_gid() == "expected_count"]
    table = risk.table.sort_values("territory")
    expected = table["expected_count"].to_numpy()
    sizes = circles.get_sizes()
    assert len(sizes) == len(table)
    np.testing.assert_allclose(sizes / sizes.max(), expected / expected.max())
    # each circle sits inside its territory (not in a hole, not in the sea)
    for code, point in zip(table["territory"], circles.get_offsets(), strict=True):
        polygons = bounds.polygons[code]
        assert any(_inside(point, p) for p in polygons), code
    assert "40" in _legend_texts(fig)  # reference sizes with round values


def test_count_map_leaves_no_data_territories_without_circle(risk_no_data, bounds):
    fig = report.count_map(risk_no_data, bounds)
    (ax,) = fig.axes
    (circles,) = [c for c in ax.collections if c.get_gid() == "expected_count"]
    assert len(circles.get_sizes()) == len(risk_no_data.table) - 1
    assert _patches(fig)["05004"] == report.NO_DATA_COLOUR
    assert "no data" in _legend_texts(fig)


def test_targeting_curve_plots_the_curve_and_the_selection(plan):
    fig = report.targeting_curve(plan)
    (ax,) = fig.axes
    lines = {ln.get_gid(): ln for ln in ax.lines if ln.get_gid()}
    np.testing.assert_allclose(
        lines["share_expected"].get_ydata(), 100 * plan.curve["share_expected"]
    )
    np.testing.assert_allclose(
        lines["share_children"].get_xdata(), 100 * plan.curve["share_territories"]
    )
    assert lines["selection"].get_ydata()[0] == pytest.approx(100 * plan.covered_share)
    (note,) = ax.texts
    assert "4 territories" in note.get_text()
    with pytest.raises(InvalidParameterError, match="Priorities"):
        report.targeting_curve(plan.curve)


def test_factor_bars_coloured_by_sign(risk):
    fig = report.factor_bars(risk, "85004")
    (ax,) = fig.axes
    bars = {p.get_gid(): p for p in ax.patches if p.get_gid()}
    gaps = risk.factors.gaps.loc["85004"]
    assert set(bars) == set(gaps.index)
    for feature, bar in bars.items():
        assert bar.get_width() == pytest.approx(gaps[feature])
        colour = to_hex(bar.get_facecolor())
        if gaps[feature] > 0:
            assert colour == report._RISK_COLOUR, feature
        elif gaps[feature] < 0:
            assert colour == report._PROTECTIVE_COLOUR, feature
    # the largest risk factor on top
    top = max(bars.values(), key=lambda b: b.get_y())
    assert top.get_gid() == gaps.idxmax()
    assert "85004" in ax.get_title()

    three = report.factor_bars(risk, "85004", n=3)
    shown = {p.get_gid() for p in three.axes[0].patches if p.get_gid()}
    assert shown == set(gaps.abs().nlargest(3).index)


def test_factor_bars_errors(risk, risk_no_data):
    with pytest.raises(InvalidParameterError, match="text"):
        report.factor_bars(risk, 5001)
    with pytest.raises(InvalidParameterError, match="'05001'"):
        report.factor_bars(risk, "5001")
    with pytest.raises(InvalidParameterError, match="no factor weights"):
        report.factor_bars(risk_no_data, "05004")
    with pytest.raises(InvalidParameterError, match="'n'"):
        report.factor_bars(risk, "05001", n=0)


# --------------------------------------------------------------------------- #
# fact_sheets
# --------------------------------------------------------------------------- #


def _pngs(page: str) -> list[bytes]:
    return [
        base64.b64decode(m, validate=True)
        for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    ]


def _region_gaps(risk, codes) -> pd.Series:
    """Region's gap per policy area, computed here independently."""
    table = risk.table.set_index("territory").loc[codes]
    gaps = risk.factors.gaps.loc[codes]
    w = table["weighted_children"] / table["weighted_children"].sum()
    per_feature = gaps.mul(w, axis=0).sum()
    areas = per_feature.index.map(risk.factors.policy_areas)
    return per_feature.groupby(areas.to_numpy()).sum()


def test_fact_sheets_one_self_contained_page_per_region(tmp_path, risk, bounds, plan):
    paths = report.fact_sheets(risk, bounds, tmp_path / "sheets", plan=plan)
    assert [p.name for p in paths] == ["region_05.html", "region_85.html"]
    table = risk.table
    for path, region in zip(paths, ["05", "85"], strict=True):
        page = path.read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>")
        # self-contained and inert
        assert "<script" not in page.lower()
        assert not re.search(r"(href|src)\s*=\s*['\"]?(https?:|//|file:)", page, re.I)
        assert "<link" not in page.lower() and "@import" not in page
        # every territory of the region, none of the others
        mine = table[table["region"] == region]
        others = table[table["region"] != region]
        for code in mine["territory"]:
            assert f"<td>{code}</td>" in page
        for code in others["territory"]:
            assert f"<td>{code}</td>" not in page
        # context: the region's figures from the roll-up
        roll = risk.rollup().set_index("region").loc[region]
        assert f"{roll['expected_count']:,.0f} [" in page
        assert f"{roll['risk']:.1f}% [{roll['risk_low']:.1f}%" in page
        # territories by level with the level's range
        for lv in mine["level"].unique():
            assert f"{lv} — risk " in page
        breaks = risk.levels.breaks
        assert f"&gt; {breaks['upper_break'].iloc[-2]:.1f}%" in page or (
            "high" not in set(mine["level"])
        )
        # main risk and protective policy areas, computed independently
        areas = _region_gaps(risk, mine["territory"].tolist())
        risk_part, prot_part = page.split("<h3>Risk factors</h3>")[1].split(
            "<h3>Protective factors</h3>"
        )
        assert f"<td>{html.escape(areas.idxmax())}</td>" in risk_part
        assert f"<td>{html.escape(areas.idxmin())}</td>" in prot_part.split("<h2>")[0]
        # priorities: selected territories of the region carry their rank
        selected = plan.selection[plan.selection["region"] == region]
        for code, rank in zip(selected["territory"], selected["rank"], strict=True):
            assert f"{code} " in page and f"(rank {rank})" in page
        # data sources
        assert "grid.geojson" in page and "jenks" in page
        # images: level map, count map, factor bars, targeting curve; all decode
        images = _pngs(page)
        assert len(images) == 4
        for png in images:
            assert png.startswith(PNG_SIGNATURE)
            pixels = imread(io.BytesIO(png))
            assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100
            assert pixels.std() > 0.01  # not a blank image


def test_fact_sheet_text_is_escaped(tmp_path, risk, bounds, codes):
    (sheet,) = [
        p
        for p in report.fact_sheets(risk, bounds, tmp_path, title="Risk & <b>work</b>")
        if codes[NASTY][:2] in p.name
    ]
    page = sheet.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script" not in page.lower() and "<b>" not in page
    assert "Risk &amp; &lt;b&gt;work&lt;/b&gt;" in page


def test_fact_sheets_list_territories_missing_from_boundaries(tmp_path, risk, codes):
    data = _grid(codes)
    del data["features"][1]
    partial = report.read_boundaries(_write(tmp_path / "p.geojson", data), "code")
    with pytest.warns(CoverageWarning, match=codes[1]):
        paths = report.fact_sheets(risk, partial, tmp_path / "out")
    page = paths[0].read_text(encoding="utf-8")
    note = page.split("Not on the map")[1].split("</p>")[0]
    assert codes[1] in note
    assert f"<td>{codes[1]}</td>" in page  # still listed with its level


def test_fact_sheets_without_region_or_boundaries(tmp_path, risk_no_data):
    paths = report.fact_sheets(risk_no_data, None, tmp_path)
    assert [p.name for p in paths] == [
        "region_05.html",
        "region_85.html",
        "region_unknown.html",
    ]
    unknown = paths[-1].read_text(encoding="utf-8")
    assert "<td>05004</td>" in unknown and "no data" in unknown
    assert "No boundaries were given" in unknown
    national = dataclasses.replace(
        risk_no_data, table=risk_no_data.table.drop(columns="region")
    )
    (only,) = report.fact_sheets(national, None, tmp_path / "national")
    assert only.name == "all_territories.html"
    page = only.read_text(encoding="utf-8")
    assert all(f"<td>{c}</td>" in page for c in risk_no_data.table["territory"])


def test_drawing_without_matplotlib_names_the_extra(monkeypatch, risk, grid_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    bounds = report.read_boundaries(grid_path, "code")  # needs no matplotlib
    with pytest.raises(ImportError, match=re.escape("clrisk[report]")):
        report.level_map(risk, bounds)


# --------------------------------------------------------------------------- #
# Real boundaries: the 94 Austrian districts (MultiPolygons, some with holes)
# --------------------------------------------------------------------------- #


def _relabel(risk, mapping):
    """The same results with the territory codes renamed."""
    factors = dataclasses.replace(
        risk.factors,
        gaps=risk.factors.gaps.rename(index=mapping),
        shares=risk.factors.shares.rename(index=mapping),
    )
    return dataclasses.replace(
        risk,
        table=risk.table.assign(territory=risk.table["territory"].map(mapping)),
        factors=factors,
        regions=risk.regions.rename(index=mapping),
    )


@pytest.mark.skipif(
    not AUSTRIA.exists(),
    reason="needs ../shared/refdata/emdi/austria_districts.geojson (real district "
    "boundaries, CC BY-SA), which is only in the shared workspace checkout",
)
def test_real_austrian_district_boundaries(tmp_path, risk):
    districts = report.read_boundaries(AUSTRIA, "PB")
    assert len(districts) == 94
    assert "Güssing" in districts.codes  # accents survive
    assert any(len(poly) > 1 for polys in districts.polygons.values() for poly in polys)
    assert sum(len(p) for p in districts.polygons.values()) > 94  # multi-part

    # give the 16 synthetic territories the names of 16 districts
    names = districts.codes[::6][:16]
    real = _relabel(risk, dict(zip(risk.table["territory"], names, strict=True)))
    with pytest.warns(CoverageWarning, match="78 boundaries have no row"):
        fig = report.level_map(real, districts)
    colours = _patches(fig)
    assert len(colours) == 94
    assert len(set(colours.values())) == real.table["level"].nunique() + 1  # + grey
    with pytest.warns(CoverageWarning):
        paths = report.fact_sheets(real, districts, tmp_path)
    for path in paths:
        page = path.read_text(encoding="utf-8")
        region = path.stem.removeprefix("region_")
        for name in real.table.loc[real.table["region"] == region, "territory"]:
            assert f"<td>{html.escape(name)}</td>" in page
        assert all(png.startswith(PNG_SIGNATURE) for png in _pngs(page))
