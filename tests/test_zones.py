"""Intervention zones (methodology §7, Phase II): contiguity and grouping."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import clrisk
from clrisk.cli import main
from clrisk.exceptions import (
    CoverageWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)
from clrisk.report import read_boundaries
from clrisk.zones import contiguity, intervention_zones


def _code(i: int, j: int) -> str:
    return f"{i:02d}{j:03d}"  # leading zeros, as census codes have


def _grid_geojson(path: Path, rows: int, cols: int, jitter: float = 0.0) -> Path:
    """Unit squares on a grid; `jitter` moves every corner a little, by an
    amount that depends on the square (so shared corners no longer match)."""
    features = []
    for i in range(rows):
        for j in range(cols):
            d = jitter * ((i * cols + j) % 7 + 1) / 7
            ring = [[j, i], [j + 1, i], [j + 1, i + 1], [j, i + 1], [j, i]]
            ring = [[x + d, y - d] for x, y in ring]
            features.append(
                {
                    "type": "Feature",
                    "properties": {"code": _code(i, j)},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _grid_pairs(rows: int, cols: int, queen: bool) -> set[tuple[str, str]]:
    """The neighbours of a grid, counted cell by cell (independent of clrisk)."""
    steps = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if queen else [])
    out = set()
    for i in range(rows):
        for j in range(cols):
            for di, dj in steps:
                k, m = i + di, j + dj
                if 0 <= k < rows and 0 <= m < cols:
                    a, b = _code(i, j), _code(k, m)
                    out.add((min(a, b), max(a, b)))
    return out


def _pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["territory"], frame["neighbour"], strict=True))


@pytest.mark.parametrize("rule", ["queen", "rook"])
def test_contiguity_of_a_grid(tmp_path: Path, rule: str) -> None:
    bounds = read_boundaries(_grid_geojson(tmp_path / "g.geojson", 6, 9), "code")
    pairs = contiguity(bounds, rule=rule)
    assert _pairs(pairs) == _grid_pairs(6, 9, queen=rule == "queen")
    assert (pairs["territory"] < pairs["neighbour"]).all()
    assert not pairs.duplicated().any()


def test_snap_joins_corners_that_differ_in_the_last_digits(tmp_path: Path) -> None:
    bounds = read_boundaries(
        _grid_geojson(tmp_path / "g.geojson", 4, 5, jitter=1e-9), "code"
    )
    assert len(contiguity(bounds)) < len(_grid_pairs(4, 5, queen=True))
    assert _pairs(contiguity(bounds, snap=1e-6)) == _grid_pairs(4, 5, queen=True)


def test_a_hole_filled_by_another_area_makes_neighbours(tmp_path: Path) -> None:
    outer = [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]
    hole = [[1, 1], [1, 3], [3, 3], [3, 1], [1, 1]]
    inner = [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]
    far = [[10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]
    feats = [
        {"type": "Feature", "properties": {"c": c}, "geometry": g}
        for c, g in [
            ("A", {"type": "Polygon", "coordinates": [outer, hole]}),
            ("B", {"type": "Polygon", "coordinates": [inner]}),
            ("C", {"type": "MultiPolygon", "coordinates": [[far]]}),
        ]
    ]
    path = tmp_path / "h.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    pairs = contiguity(read_boundaries(path, "c"), rule="rook")
    assert _pairs(pairs) == {("A", "B")}


# ------------------------------------------------------------------ planted zones

ROWS, COLS = 8, 10
# two planted high-risk blobs: an L (5 units) and a square (4 units), a pair
# touching only at a corner, and a lone unit
L_SHAPE = [(1, 1), (2, 1), (3, 1), (3, 2), (3, 3)]
SQUARE = [(5, 6), (5, 7), (6, 6), (6, 7)]
CORNER = [(0, 8), (1, 9)]
LONE = [(7, 0)]


def _planted_table(no_data: tuple[int, int] | None = None) -> pd.DataFrame:
    """A unit table whose high-risk units are known: 'high' inside the blobs."""
    high = set(L_SHAPE + SQUARE + CORNER + LONE)
    rows = []
    for i in range(ROWS):
        for j in range(COLS):
            is_high = (i, j) in high
            n = 100 + 7 * i + j
            r = 30.0 + i * 0.1 if is_high else 5.0 + j * 0.1
            rows.append(
                {
                    "territory": _code(i, j),
                    "region": "north" if i < 4 else "south",
                    "n_children": n,
                    "expected_count": n * r / 100,
                    "risk": r,
                    "level": "high" if is_high else "low",
                }
            )
    table = pd.DataFrame(rows)
    if no_data is not None:
        at = table["territory"] == _code(*no_data)
        table.loc[at, ["expected_count", "risk"]] = np.nan
        table.loc[at, "level"] = "no data"
    return table


def _zone_sets(zones: clrisk.InterventionZones) -> set[frozenset[str]]:
    members = zones.units.dropna(subset=["zone"]).groupby("zone")["territory"]
    return {frozenset(s) for _, s in members}


def _blob(cells: list[tuple[int, int]]) -> frozenset[str]:
    return frozenset(_code(i, j) for i, j in cells)


def test_zones_recover_the_planted_blobs(tmp_path: Path) -> None:
    table = _planted_table()
    bounds = read_boundaries(_grid_geojson(tmp_path / "g.geojson", ROWS, COLS), "code")
    queen = intervention_zones(table, bounds)
    assert _zone_sets(queen) == {
        _blob(L_SHAPE), _blob(SQUARE), _blob(CORNER), _blob(LONE)
    }  # fmt: skip
    rook = intervention_zones(table, contiguity(bounds, rule="rook"))
    assert _zone_sets(rook) == {
        _blob(L_SHAPE), _blob(SQUARE), _blob(LONE), *(_blob([c]) for c in CORNER)
    }  # fmt: skip
    # figures are the units' sums; zone 1 holds the largest expected count
    z = queen.zones
    units = table.set_index("territory")
    for _, row in z.iterrows():
        codes = row["territories"].split(", ")
        assert row["n_units"] == len(codes)
        assert row["expected_count"] == pytest.approx(
            units.loc[codes, "expected_count"].sum(), rel=1e-12
        )
        assert row["risk"] == pytest.approx(
            100 * row["expected_count"] / units.loc[codes, "n_children"].sum()
        )
    assert list(z["zone"]) == [1, 2, 3, 4]
    assert z["expected_count"].is_monotonic_decreasing
    total = table["expected_count"].sum()
    assert queen.total_expected == pytest.approx(total)
    assert z["share"].to_numpy() == pytest.approx(z["expected_count"] / total)
    assert queen.isolated == ()  # the lone unit touches low-risk units
    assert "4 intervention zones" in queen.summary()


def test_within_region_splits_a_zone_at_the_region_border(tmp_path: Path) -> None:
    table = _planted_table()
    table.loc[table["territory"] == _code(3, 3), "region"] = "south"
    bounds = read_boundaries(_grid_geojson(tmp_path / "g.geojson", ROWS, COLS), "code")
    zones = intervention_zones(table, bounds, within_region=True)
    assert _blob(L_SHAPE[:4]) in _zone_sets(zones)
    assert _blob([(3, 3)]) in _zone_sets(zones)
    assert not zones.zones["region"].str.contains(",").any()
    # without the option the L stays whole and lists both regions
    whole = intervention_zones(table, bounds)
    assert _blob(L_SHAPE) in _zone_sets(whole)
    assert "north, south" in set(whole.zones["region"])


def test_units_without_data_are_never_selected_and_do_not_bridge() -> None:
    table = _planted_table(no_data=(2, 1))  # the middle of the L's upright
    table.loc[table["territory"] == _code(2, 1), "level"] = "high"
    pairs = pd.DataFrame(sorted(_grid_pairs(ROWS, COLS, queen=False)))
    zones = intervention_zones(table, pairs, levels="high")
    sets = _zone_sets(zones)
    assert _blob([(1, 1)]) in sets and _blob([(3, 1), (3, 2), (3, 3)]) in sets
    assert not zones.units.set_index("territory").loc[_code(2, 1), "selected"]


def test_selection_by_min_risk_and_by_levels() -> None:
    table = _planted_table()
    pairs = pd.DataFrame(sorted(_grid_pairs(ROWS, COLS, queen=True)))
    by_risk = intervention_zones(table, pairs, min_risk=30.0)
    by_level = intervention_zones(table, pairs)
    assert _zone_sets(by_risk) == _zone_sets(by_level)
    assert by_risk.rule == "risk at least 30%"
    everything = intervention_zones(table, pairs, levels=["low", "high"])
    assert _zone_sets(everything) == {frozenset(table["territory"])}


def test_default_level_of_a_table_is_the_riskiest() -> None:
    table = _planted_table()
    table["level"] = table["level"].map({"high": "A", "low": "B"})
    pairs = pd.DataFrame(sorted(_grid_pairs(ROWS, COLS, queen=True)))
    zones = intervention_zones(table, pairs)
    assert zones.rule == "level 'A'"
    assert len(zones.zones) == 4


def test_mapping_of_neighbours_and_isolated_units() -> None:
    table = _planted_table()
    near = {
        _code(i, j): [_code(i, j + 1)] for i in range(ROWS) for j in range(COLS - 1)
    }
    del near[_code(7, 0)]  # the lone unit is in no pair at all
    zones = intervention_zones(table, near, levels="high")
    assert zones.isolated == (_code(7, 0),)
    assert "touch no other unit" in zones.summary()


@given(
    seed=st.integers(0, 2**31 - 1),
    share=st.floats(0.1, 0.9),
)
def test_zones_do_not_depend_on_row_or_pair_order(seed: int, share: float) -> None:
    rng = np.random.default_rng(seed)
    table = _planted_table()
    table["level"] = np.where(rng.random(len(table)) < share, "high", "low")
    pairs = pd.DataFrame(
        sorted(_grid_pairs(ROWS, COLS, queen=True)), columns=["territory", "neighbour"]
    )
    first = intervention_zones(table, pairs)
    shuffled = table.sample(frac=1.0, random_state=seed)
    flipped = pairs.sample(frac=1.0, random_state=seed)
    swap = rng.random(len(flipped)) < 0.5
    flipped.loc[swap, ["territory", "neighbour"]] = flipped.loc[
        swap, ["neighbour", "territory"]
    ].to_numpy()
    again = intervention_zones(shuffled, flipped)
    pd.testing.assert_frame_equal(first.zones, again.zones)
    # a zone is a connected set of selected units, and touching selected
    # units share a zone
    zone = first.units.set_index("territory")["zone"]
    for a, b in zip(pairs["territory"], pairs["neighbour"], strict=True):
        if pd.notna(zone[a]) and pd.notna(zone[b]):
            assert zone[a] == zone[b]


# ------------------------------------------------------------ from a projection

# with seed 3: 10 of the 12 selected units are among the 12 truly riskiest, and
# their true risk is 1.76 times the country's
OVERLAP = 0.6
RISK_RATIO = 1.4


@pytest.fixture(scope="module")
def projected() -> tuple[clrisk.Country, clrisk.RiskModel, clrisk.TerritoryRisk]:
    c = clrisk.make_country(
        random_state=3,
        n_territories=48,
        n_regions=4,
        children_per_territory=200,
        survey_children=4000,
    )
    model = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    return c, model, clrisk.predict(model, c.census, **c.predict_kwargs)


def _grid_of(codes: list[str], cols: int) -> pd.DataFrame:
    """Rook neighbours of `codes` laid out on a grid in code order."""
    pairs = []
    for k, code in enumerate(codes):
        if (k + 1) % cols and k + 1 < len(codes):
            pairs.append((code, codes[k + 1]))
        if k + cols < len(codes):
            pairs.append((code, codes[k + cols]))
    return pd.DataFrame(pairs, columns=["territory", "neighbour"])


def test_zone_interval_is_the_zone_scored_as_one_territory(
    projected: tuple[clrisk.Country, clrisk.RiskModel, clrisk.TerritoryRisk],
) -> None:
    c, model, risk = projected
    codes = sorted(risk.table["territory"])
    zones = intervention_zones(risk, _grid_of(codes, 8), min_risk=0.0)
    assert len(zones.zones) == 1  # every unit selected: one zone, the country
    national = risk.national()
    for col in ("expected_count", "expected_low", "expected_high", "risk_low"):
        assert zones.zones[col].iloc[0] == pytest.approx(national[col].iloc[0])
    # the largest zone of the high level, against a projection of its
    # children alone (another pass, another code path)
    zones = intervention_zones(risk, _grid_of(codes, 8))
    top = zones.zones.iloc[0]
    members = top["territories"].split(", ")
    territory = c.predict_kwargs["territory"]
    alone = c.census[c.census[territory].isin(members)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoverageWarning)  # the other territories
        sub = clrisk.predict(model, alone, **c.predict_kwargs).national().iloc[0]
    for col in ("n_children", "expected_count", "expected_low", "expected_high"):
        assert top[col] == pytest.approx(sub[col], rel=1e-10)
    for col in ("risk", "risk_low", "risk_high"):
        assert top[col] == pytest.approx(sub[col], rel=1e-10)


def test_zones_of_a_projection_against_the_truth(
    projected: tuple[clrisk.Country, clrisk.RiskModel, clrisk.TerritoryRisk],
) -> None:
    """The units the zones gather (the estimated high level) are the truly
    risky ones: most of them are among the same number of truly riskiest
    units, and their true risk is well above the country's."""
    c, _, risk = projected
    codes = sorted(risk.table["territory"])
    zones = intervention_zones(risk, _grid_of(codes, 8))
    truth = c.truth.territories.set_index("territory")
    chosen = zones.units.loc[zones.units["selected"], "territory"].tolist()
    top = set(truth["true_risk"].nlargest(len(chosen)).index)
    assert len(top & set(chosen)) >= OVERLAP * len(chosen)
    national = truth["true_count"].sum() / truth["n_children"].sum()
    chosen_risk = (
        truth.loc[chosen, "true_count"].sum() / truth.loc[chosen, "n_children"].sum()
    )
    assert chosen_risk > RISK_RATIO * national


# ------------------------------------------------------------------ bad input


def test_codes_read_as_numbers_are_refused_with_the_fix() -> None:
    table = _planted_table()
    pairs = pd.DataFrame({"territory": [1001, 1002], "neighbour": [1002, 1003]})
    with pytest.raises(DataValidationError, match="leading zeros"):
        intervention_zones(table, pairs)


def test_codes_that_lost_their_leading_zeros_are_named() -> None:
    table = _planted_table()
    pairs = pd.DataFrame({"territory": ["1001"], "neighbour": ["1002"]})
    with pytest.raises(DataValidationError, match="leading zeros"):
        intervention_zones(table, pairs)


def test_codes_outside_the_table_are_ignored_with_a_warning() -> None:
    table = _planted_table()
    pairs = pd.DataFrame(sorted(_grid_pairs(ROWS, COLS, queen=True)))
    extra = pd.DataFrame([[_code(0, 0), "99999"]])
    with pytest.warns(CoverageWarning, match="1 codes .*'99999'"):
        zones = intervention_zones(table, pd.concat([pairs, extra]))
    assert len(zones.zones) == 4


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"levels": "high", "min_risk": 20}, InvalidParameterError, "not both"),
        ({"levels": "extreme"}, InvalidParameterError, "no unit has"),
        ({"min_risk": 120}, InvalidParameterError, "between 0 and 100"),
        ({"within_region": "yes"}, InvalidParameterError, "True or"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    table = _planted_table()
    pairs = pd.DataFrame(sorted(_grid_pairs(ROWS, COLS, queen=True)))
    with pytest.raises(error, match=match):
        intervention_zones(table, pairs, **kwargs)


def test_bad_tables() -> None:
    pairs = pd.DataFrame(sorted(_grid_pairs(ROWS, COLS, queen=True)))
    table = _planted_table()
    with pytest.raises(SchemaError, match="region"):
        intervention_zones(table.drop(columns="region"), pairs, within_region=True)
    with pytest.raises(SchemaError, match="min_risk"):
        intervention_zones(table.drop(columns="level"), pairs)
    with pytest.raises(DataValidationError, match="repeated territory codes"):
        intervention_zones(pd.concat([table, table.head(1)]), pairs)
    with pytest.raises(InvalidParameterError, match="list of codes"):
        intervention_zones(table, {_code(0, 0): _code(0, 1)})
    with pytest.raises(InvalidParameterError, match="DataFrame of neighbour pairs"):
        intervention_zones(table, [(_code(0, 0), _code(0, 1))])  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="rule"):
        contiguity(read_boundaries_stub(), rule="bishop")


def read_boundaries_stub() -> clrisk.report.Boundaries:
    ring = np.array([[0.0, 0.0], [1, 0], [1, 1], [0, 0]])
    return clrisk.report.Boundaries({"A": ((ring,),)}, {"A": ""}, "c", "x", False)


# ------------------------------------------------------------------ command line


def test_cli_zones_from_geojson_and_from_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    risk = tmp_path / "risk.csv"
    _planted_table().to_csv(risk, index=False, sep=";", decimal=",", encoding="latin-1")
    geo = _grid_geojson(tmp_path / "g.geojson", ROWS, COLS)
    out = tmp_path / "zones.csv"
    code = main(
        ["zones", str(risk), "--neighbours", str(geo), "--key", "code",
         "-o", str(out), "--units", str(tmp_path / "units.csv"), "--format", "json"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["zones"] == 4 and summary["selected_units"] == 12
    zones = pd.read_csv(out, dtype={"territories": str})
    assert zones["n_units"].tolist() == [5, 4, 2, 1]
    units = pd.read_csv(tmp_path / "units.csv", dtype={"territory": str})
    assert units["territory"].str.len().eq(5).all()  # leading zeros kept
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame(
        sorted(_grid_pairs(ROWS, COLS, queen=False)), columns=["territory", "neighbour"]
    ).to_csv(pairs, index=False)
    code = main(["zones", str(risk), "--neighbours", str(pairs), "-o", str(out)])
    assert code == 0
    assert pd.read_csv(out)["n_units"].tolist() == [5, 4, 1, 1, 1]


def test_cli_zones_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    risk = tmp_path / "risk.csv"
    _planted_table().to_csv(risk, index=False)
    geo = _grid_geojson(tmp_path / "g.geojson", ROWS, COLS)
    out = str(tmp_path / "z.csv")
    code = main(["zones", str(risk), "--neighbours", str(geo), "-o", out])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "--key" in err and len(err.splitlines()) == 1


# ------------------------------------------------- Phase II: blocks in municipalities


@pytest.fixture(scope="module")
def blocks_census(
    projected: tuple[clrisk.Country, clrisk.RiskModel, clrisk.TerritoryRisk],
) -> pd.DataFrame:
    c, _, _ = projected
    block = (c.census["hogar_id"] % 6).astype(str)
    return c.census.assign(block=c.census["municipio"] + "-" + block)


def test_blocks_scored_with_their_municipality_indicators(
    tmp_path: Path,
    projected: tuple[clrisk.Country, clrisk.RiskModel, clrisk.TerritoryRisk],
    blocks_census: pd.DataFrame,
) -> None:
    """Phase II: territory="block" takes the indicators of the block's
    municipality; blocks add up to the municipality's figures, intervals
    included, and a Parquet path gives the same."""
    c, model, muni = projected
    assert c.spec.territory_features  # the model needs indicators
    kwargs = dict(
        territory="block", indicator_territory="municipio", region="municipio"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no coverage warning for the blocks
        blocks = clrisk.predict(model, blocks_census, **kwargs, level_scope="region")
    assert blocks.table["territory"].str.contains("-").all()
    rolled = blocks.rollup().set_index("region")
    whole = muni.table.set_index("territory").loc[rolled.index]
    for col in ("n_children", "expected_count", "risk", "risk_low", "risk_high"):
        np.testing.assert_allclose(rolled[col], whole[col], rtol=1e-10)
    path = tmp_path / "blocks.parquet"
    blocks_census.to_parquet(path)
    streamed = clrisk.predict(model, path, **kwargs, chunk_size=997)
    np.testing.assert_allclose(
        streamed.table["expected_count"], blocks.table["expected_count"], rtol=1e-12
    )
    # zones of high-risk blocks, inside each municipality
    codes = list(blocks.table["territory"])
    pairs = pd.DataFrame(
        list(itertools.pairwise(codes)),
        columns=["territory", "neighbour"],
    )
    zones = intervention_zones(blocks, pairs, within_region=True)
    assert (zones.zones["region"].str.count(",") == 0).all()
    assert zones.zones["n_units"].sum() == (blocks.table["level"] == "high").sum()


def test_rows_without_the_indicator_territory_follow_on_invalid(
    projected: tuple[clrisk.Country, clrisk.RiskModel, clrisk.TerritoryRisk],
    blocks_census: pd.DataFrame,
) -> None:
    _, model, _ = projected
    frame = blocks_census.copy()
    frame.loc[[3, 7], "municipio"] = None
    kwargs = dict(territory="block", indicator_territory="municipio")
    with pytest.raises(DataValidationError, match=r"'municipio'.*row 3"):
        clrisk.predict(model, frame, **kwargs)
    risk = clrisk.predict(model, frame, **kwargs, on_invalid="drop")
    assert risk.quality.rejected == {"missing indicator territory in 'municipio'": 2}
    frame.loc[5, ["municipio", "block"]] = ["99999", "99999-0"]  # no indicators
    with pytest.raises(DataValidationError, match="missing from the indicator table"):
        clrisk.predict(model, frame.drop(index=[3, 7]), **kwargs)


def test_cli_phase_two_blocks_then_zones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parents[1]
    census = pd.read_parquet(root / "datasets" / "demo" / "censo.parquet")
    census["manzana"] = census["municipio"] + "-" + (census.index % 4).astype(str)
    frame = tmp_path / "manzanas.parquet"
    census.to_parquet(frame)
    risk = tmp_path / "riesgo.csv"
    assert main(["predict", str(frame), "--model",
                 str(root / "models" / "demo" / "model.json"), "--territory",
                 "manzana", "--indicator-territory", "municipio", "--region",
                 "municipio", "--level-scope", "region", "--min-children", "0",
                 "-o", str(risk), "--quiet"]) == 0  # fmt: skip
    table = pd.read_csv(risk, dtype={"territory": str, "region": str})
    assert len(table) == 4 * census["municipio"].nunique()
    # each municipality's blocks in a row, neighbours in code order
    pairs = tmp_path / "vecinos.csv"
    codes = sorted(table["territory"])
    pd.DataFrame({"territory": codes[:-1], "neighbour": codes[1:]}).to_csv(
        pairs, index=False
    )
    out = tmp_path / "zonas.csv"
    capsys.readouterr()
    assert main(["zones", str(risk), "--neighbours", str(pairs), "--within-region",
                 "-o", str(out), "--format", "json", "--quiet"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["selected_units"] == (table["level"] == "high").sum()
    zones = pd.read_csv(out, dtype={"region": str})
    assert not zones["region"].str.contains(",").any()


def test_units_without_a_region_form_one_region() -> None:
    """Review of 2026-12-02: a selected unit without a region raised a bare
    TypeError; it now counts in the region "(no region)", as suppress does."""
    table = _planted_table()
    table.loc[table["territory"].isin(_blob(SQUARE)), "region"] = None
    pairs = pd.DataFrame(sorted(_grid_pairs(ROWS, COLS, queen=True)))
    for within in (False, True):
        zones = intervention_zones(table, pairs, within_region=within)
        assert _blob(SQUARE) in _zone_sets(zones)
        assert "(no region)" in set(zones.zones["region"])


def test_each_pair_counts_once_and_islands_are_allowed() -> None:
    table = _planted_table()
    once = sorted(_grid_pairs(ROWS, COLS, queen=False))
    pairs = pd.DataFrame(once, columns=["territory", "neighbour"])
    swapped = pairs.rename(columns={"territory": "neighbour", "neighbour": "territory"})
    both = pd.concat([pairs, swapped])
    # a unit written without a neighbour (an island, as GIS tools list it)
    island = pd.DataFrame({"territory": ["99000"], "neighbour": [None]})
    table = pd.concat(
        [table, table.tail(1).assign(territory="99000")], ignore_index=True
    )
    a = intervention_zones(table, pairs).units.set_index("territory")
    b = intervention_zones(table, pd.concat([both, island])).units.set_index(
        "territory"
    )
    pd.testing.assert_series_equal(a["n_neighbours"], b["n_neighbours"])
    assert a.loc[_code(3, 3), "n_neighbours"] == 4  # an inner cell: 4 rook pairs
    assert b.loc["99000", "n_neighbours"] == 0


def test_a_pair_without_its_first_code_names_the_row(tmp_path: Path) -> None:
    from clrisk.io import read_table

    path = tmp_path / "vecinos.csv"
    path.write_text(
        f"territory,neighbour\n{_code(0, 0)},{_code(0, 1)}\n,{_code(0, 2)}\n"
    )
    pairs, _ = read_table(path)
    with pytest.raises(DataValidationError, match=r"vecinos\.csv.*row 1"):
        intervention_zones(_planted_table(), pairs)


def test_blocks_numbered_within_each_municipality_are_refused(
    projected: tuple[clrisk.Country, clrisk.RiskModel, clrisk.TerritoryRisk],
) -> None:
    """Block "001" of every municipality would be summed into one territory,
    each child with its own municipality's indicators (review of 2026-12-02)."""
    c, model, _ = projected
    frame = c.census.assign(manzana=(c.census["hogar_id"] % 5).astype(str))
    with pytest.raises(DataValidationError, match="lie in several units of"):
        clrisk.predict(
            model, frame, territory="manzana", indicator_territory="municipio"
        )
