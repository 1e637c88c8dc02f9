"""clrisk.workbook.write_workbook: the sheets, exact numbers, text codes, the
row accounting, input checksums, and text that is never written as a formula."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import clrisk
from clrisk.exceptions import (
    CoverageWarning,
    DataValidationError,
    InvalidParameterError,
    NotFittedError,
    SchemaError,
)
from clrisk.scenario import Change, simulate
from clrisk.vulnerability import VulnerabilityIndex
from clrisk.workbook import SHEETS, write_workbook

openpyxl = pytest.importorskip("openpyxl")

NASTY = {
    "05": "=1+1",
    "55": "+SUM(A1)",
    "66": "-2+3",
    "84": '=HYPERLINK("http://example.invalid/x","click")',
}
MORE_NASTY = [
    "@cmd",
    "\tcmd",
    "=cmd|' /C calc'!A0",
    "#N/A",
    "-",
    "+",
    "=",
    "@",
    " =1+1",
    "Bogotá",
    "Peñalolén",
    "São Tomé",
]


# --------------------------------------------------------------------------- #
# Fixtures: one country, a clean result with everything, a dirty one
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(
        random_state=0,
        n_territories=40,
        n_regions=4,
        children_per_territory=150,
        survey_children=3000,
    )


@pytest.fixture(scope="module")
def model(country: clrisk.Country) -> clrisk.RiskModel:
    return clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)


@pytest.fixture(scope="module")
def risk(country: clrisk.Country, model: clrisk.RiskModel) -> clrisk.TerritoryRisk:
    return clrisk.predict(model, country.census, **country.predict_kwargs, by="sex")


@pytest.fixture(scope="module")
def plan(risk: clrisk.TerritoryRisk) -> clrisk.Priorities:
    return clrisk.prioritise(risk, coverage=0.5)


@pytest.fixture(scope="module")
def scenario(country: clrisk.Country, model: clrisk.RiskModel) -> clrisk.Scenario:
    return simulate(
        model,
        country.census,
        [Change("cash_transfer", set="yes")],
        territory=country.predict_kwargs["territory"],
    )


@pytest.fixture(scope="module")
def vulnerability(country: clrisk.Country) -> clrisk.VulnerabilityResult:
    index = VulnerabilityIndex(
        {"labour": ["pct_agro"], "poverty": ["pct_pobreza", "escuelas_1000"]},
        territory="codigo",
        orientation={"escuelas_1000": -1},
    )
    return index.compute(country.fit_kwargs["indicators"])


@pytest.fixture(scope="module")
def survey_csv(country: clrisk.Country, tmp_path_factory: Any) -> Path:
    path = tmp_path_factory.mktemp("inputs") / "encuesta.csv"
    country.survey.to_csv(path, index=False, sep=";", decimal=",")
    return path


@pytest.fixture(scope="module")
def full(
    tmp_path_factory: Any,
    risk: clrisk.TerritoryRisk,
    plan: clrisk.Priorities,
    model: clrisk.RiskModel,
    scenario: clrisk.Scenario,
    vulnerability: clrisk.VulnerabilityResult,
    survey_csv: Path,
) -> Path:
    path = tmp_path_factory.mktemp("book") / "risk.xlsx"
    out = write_workbook(
        path,
        risk,
        plan=plan,
        model=model,
        scenario=scenario,
        vulnerability=vulnerability,
        inputs={"survey": survey_csv},
    )
    assert out == path
    return path


@pytest.fixture(scope="module")
def dirty(country: clrisk.Country, model: clrisk.RiskModel) -> clrisk.TerritoryRisk:
    """Formula-like region labels, rejected rows, a territory without rows."""
    census = country.census.copy()
    region = country.predict_kwargs["region"]
    census[region] = census[region].map(NASTY)
    census.loc[census.index[:7], "h_personas"] = np.nan
    census = census[census["municipio"] != "05004"]
    with pytest.warns(CoverageWarning):
        return clrisk.predict(
            model, census, **country.predict_kwargs, on_invalid="drop"
        )


@pytest.fixture(scope="module")
def dirty_book(tmp_path_factory: Any, dirty: clrisk.TerritoryRisk) -> Path:
    return write_workbook(tmp_path_factory.mktemp("dirty") / "dirty.xlsx", dirty)


def _sheet(path: Path, name: str) -> pd.DataFrame:
    return pd.read_excel(path, sheet_name=name, dtype={"territory": str, "region": str})


@functools.lru_cache(maxsize=8)
def _load(path: Path) -> Any:
    """The workbook as openpyxl reads it (cached: tests only read it)."""
    return openpyxl.load_workbook(path)


def _cells(path: Path, name: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in _load(path)[name].iter_rows()]


def _column(path: Path, sheet: str, header: str) -> list[Any]:
    """The openpyxl cells of one column, without the header."""
    rows = _cells(path, sheet)
    j = [c.value for c in rows[0]].index(header)
    return [row[j] for row in rows[1:]]


# --------------------------------------------------------------------------- #
# Layout
# --------------------------------------------------------------------------- #


def test_sheet_names_in_order(full: Path) -> None:
    names = _load(full).sheetnames
    assert names == list(SHEETS)


def test_minimal_workbook_has_only_the_core_sheets(
    tmp_path: Path, country: clrisk.Country, model: clrisk.RiskModel
) -> None:
    kwargs = {"territory": country.predict_kwargs["territory"]}
    risk = clrisk.predict(model, country.census, **kwargs)
    assert risk.regions is None
    path = write_workbook(str(tmp_path / "small.xlsx"), risk)
    assert isinstance(path, Path)
    assert openpyxl.load_workbook(path).sheetnames == [
        "territories",
        "levels",
        "factors",
        "national",
        "data quality",
        "about",
    ]


def test_table_read_back_writes_the_same_territories_sheet(
    tmp_path: Path, full: Path, plan: clrisk.Priorities
) -> None:
    """The command line's case: a risk table read from a file, and a plan."""
    table = _sheet(full, "territories").drop(columns="rank")
    path = write_workbook(tmp_path / "plan.xlsx", table, plan=plan)
    assert openpyxl.load_workbook(path).sheetnames == [
        "territories",
        "priorities",
        "targeting curve",
        "about",
    ]
    again = _sheet(path, "territories")
    pd.testing.assert_frame_equal(again, _sheet(full, "territories"))
    assert all(c.data_type == "s" for c in _column(path, "territories", "territory"))


def test_headers_bold_frozen_filtered_and_sized(full: Path) -> None:
    book = _load(full)
    for ws in book.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        assert all(c.font.b for c in ws[1]), ws.title
        last = ws.cell(1, ws.max_column).column_letter
        assert ws.auto_filter.ref == f"A1:{last}{ws.max_row}", ws.title
        for j in range(1, ws.max_column + 1):
            width = ws.column_dimensions[ws.cell(1, j).column_letter].width
            assert 8 <= width <= 60, (ws.title, j, width)
    # the widest text decides: the lead policy area is wider than the level
    ws = book["territories"]
    header = [c.value for c in ws[1]]
    letter = {h: ws.cell(1, j).column_letter for j, h in enumerate(header, start=1)}
    wide = ws.column_dimensions[letter["lead_policy_area"]].width
    assert wide > ws.column_dimensions[letter["level"]].width


# --------------------------------------------------------------------------- #
# Territories: text codes, exact numbers, rank
# --------------------------------------------------------------------------- #


def test_territory_codes_are_text_and_keep_leading_zeros(
    full: Path, risk: clrisk.TerritoryRisk
) -> None:
    codes = risk.table["territory"].tolist()
    assert any(code.startswith("0") for code in codes)
    for sheet in ("territories", "factors", "priorities", "vulnerability"):
        cells = _column(full, sheet, "territory")
        assert all(c.data_type == "s" for c in cells), sheet
        assert all(c.number_format == "@" for c in cells), sheet
        assert set(c.value for c in cells) == set(codes), sheet
    assert [c.value for c in _column(full, "territories", "territory")] == codes
    assert _sheet(full, "territories")["territory"].tolist() == codes


def test_numbers_equal_the_risk_table(full: Path, risk: clrisk.TerritoryRisk) -> None:
    got = _sheet(full, "territories")
    table = risk.table
    assert len(got) == len(table)
    assert set(table.columns) <= set(got.columns)
    numeric = table.select_dtypes("number").columns
    assert {"risk", "risk_low", "expected_count", "n_children"} <= set(numeric)
    for col in numeric:
        np.testing.assert_allclose(
            got[col].to_numpy(float), table[col].to_numpy(float), rtol=0, atol=1e-12
        )
    for col in ("region", "level", "lead_policy_area"):
        assert got[col].fillna("<na>").tolist() == table[col].fillna("<na>").tolist()
    # numbers are number cells, whatever their display format
    assert all(c.data_type == "n" for c in _column(full, "territories", "risk"))


def test_rank_is_by_expected_count_as_prioritise_ranks(
    full: Path, plan: clrisk.Priorities
) -> None:
    got = _sheet(full, "territories").set_index("territory")["rank"]
    want = plan.ranking.set_index("territory")["rank"]
    assert plan.by == "expected_count"
    assert got.astype(int).to_dict() == want.astype(int).to_dict()


def test_other_sheets_match_their_sources(
    full: Path,
    risk: clrisk.TerritoryRisk,
    plan: clrisk.Priorities,
    model: clrisk.RiskModel,
    scenario: clrisk.Scenario,
    vulnerability: clrisk.VulnerabilityResult,
) -> None:
    def close(got: pd.DataFrame, want: pd.DataFrame, cols: Any = None) -> None:
        assert len(got) == len(want)
        for col in cols if cols is not None else want.columns:
            np.testing.assert_allclose(
                got[col].to_numpy(float), want[col].to_numpy(float), atol=1e-12
            )

    regions = _sheet(full, "regions")
    close(regions, risk.rollup(), ["risk", "expected_count", "expected_high"])
    assert regions["region"].tolist() == risk.rollup()["region"].tolist()
    close(_sheet(full, "national"), risk.national())
    long = risk.factors.long(risk.table.set_index("territory")["risk"])
    factors = _sheet(full, "factors")
    close(factors, long, ["gap", "share", "composition"])
    assert factors["feature"].tolist() == long["feature"].tolist()
    breakdown = _sheet(full, "breakdown")
    n_terr = len(risk.breakdown("territory"))
    assert breakdown["scope"].value_counts().to_dict() == {
        "national": 2,
        "region": 8,
        "territory": n_terr,
    }
    priorities = _sheet(full, "priorities")
    close(priorities, plan.ranking, ["rank", "expected_count", "score"])
    assert priorities["selected"].tolist() == plan.ranking["selected"].tolist()
    chosen = priorities[priorities["selected"]]
    close(chosen, plan.selection, ["cumulative_share", "cumulative_expected"])
    close(_sheet(full, "targeting curve"), plan.curve)
    coef = _sheet(full, "coefficients")
    close(coef, model.coef_table(), ["coef", "se", "p_value"])
    assert coef["term"].tolist() == model.terms_
    diagnostics = _sheet(full, "diagnostics").set_index("measure")["value"]
    assert diagnostics["weighted AUC"] == pytest.approx(model.diagnostics_.auc)
    close(_sheet(full, "calibration"), model.diagnostics_.calibration)
    sc = _sheet(full, "scenario")
    assert sc["scope"].tolist() == ["national"] + ["territory"] * len(scenario.table)
    close(sc.iloc[1:], scenario.table, ["change", "change_low", "scenario_count"])
    assert sc["change"].iloc[0] == pytest.approx(scenario.national["change"].iloc[0])
    vul = _sheet(full, "vulnerability")
    close(vul, vulnerability.table, ["score"])
    assert vul["labour_share"].tolist() == pytest.approx(
        vulnerability.shares["labour"].tolist()
    )
    weights = _sheet(full, "vulnerability weights")
    assert weights["weight"].sum() == pytest.approx(1.0)


def test_levels_sheet_has_method_scope_and_breaks(
    full: Path, risk: clrisk.TerritoryRisk
) -> None:
    levels = pd.read_excel(full, sheet_name="levels")
    mine = levels[levels["classification"] == "risk"].reset_index(drop=True)
    breaks = risk.levels.breaks
    assert len(mine) == len(breaks)
    assert set(mine["method"]) == {risk.levels.method}
    assert set(mine["scope"]) == {risk.levels.scope}
    assert mine["level"].tolist() == breaks["level"].tolist()
    np.testing.assert_allclose(mine["lower"], breaks["lower"], atol=1e-12)
    # the top class is open: +inf is written as the text "inf"
    top = _column(full, "levels", "upper_break")[len(breaks) - 1]
    assert (top.value, top.data_type) == ("inf", "s")
    uppers = pd.to_numeric(mine["upper_break"]).to_numpy(float)
    np.testing.assert_allclose(uppers, breaks["upper_break"], atol=1e-12)
    assert "vulnerability score" in set(levels["classification"])


# --------------------------------------------------------------------------- #
# Data quality and provenance
# --------------------------------------------------------------------------- #


def _reconcile(quality: pd.DataFrame, source: str) -> dict[str, int]:
    rows = quality[quality["source"] == source]
    count = rows.set_index(["item", rows["detail"].fillna("")])["rows"]
    rejected = rows[(rows["item"] == "rows rejected") & (rows["detail"] != "total")]
    by_reason = int(rejected["rows"].sum())
    assert count[("rows read", "")] == count[("rows used", "")] + by_reason
    assert count[("rows rejected", "total")] == by_reason
    check = rows.loc[rows["item"] == "check", "detail"].tolist()
    assert check == ["rows read = rows used + rows rejected: yes"]
    return dict(zip(rejected["detail"], rejected["rows"].astype(int), strict=True))


def test_data_quality_reconciles(
    dirty_book: Path, dirty: clrisk.TerritoryRisk, full: Path, model: Any
) -> None:
    quality = pd.read_excel(dirty_book, sheet_name="data quality")
    assert _reconcile(quality, "projection frame") == dirty.quality.rejected
    assert dirty.quality.rejected  # the test has rejected rows to account for
    rows = quality.set_index("item")["rows"]
    assert rows["rows read"] == dirty.quality.rows_read
    assert rows["rows used"] == dirty.quality.rows_used
    notes = quality.loc[quality["item"] == "note", "detail"].tolist()
    assert notes == dirty.quality.notes
    full_quality = pd.read_excel(full, sheet_name="data quality")
    assert set(full_quality["source"]) == {"projection frame", "survey (model fit)"}
    _reconcile(full_quality, "survey (model fit)")
    survey = full_quality[full_quality["source"] == "survey (model fit)"]
    used = survey.loc[survey["item"] == "rows used", "rows"].item()
    assert used == model.quality_.rows_used


def test_territory_without_data_has_empty_cells(
    dirty_book: Path, dirty: clrisk.TerritoryRisk
) -> None:
    rows = _cells(dirty_book, "territories")
    header = [c.value for c in rows[0]]
    row = next(r for r in rows[1:] if r[0].value == "05004")
    cell = dict(zip(header, row, strict=True))
    want = dirty.table.set_index("territory").loc["05004"]
    assert np.isnan(want["risk"]) and want["n_children"] == 0
    for col, value in want.items():
        if pd.isna(value):
            assert cell[col].value is None, col
        else:
            assert cell[col].value == value, col
    assert cell["rank"].value is None  # ranked only with data, as prioritise
    assert cell["level"].value == "no data"


def test_about_sheet_versions_and_input_checksum(full: Path, survey_csv: Path) -> None:
    about = pd.read_excel(full, sheet_name="about", dtype=object)
    software = about[about["section"] == "software"].set_index("name")["value"]
    assert software["clrisk"] == clrisk.__version__
    assert software["python"] == ".".join(map(str, sys.version_info[:3]))
    assert software["openpyxl"] == openpyxl.__version__
    created = about.loc[about["name"] == "created (UTC)", "value"].item()
    assert pd.Timestamp(created).tzinfo is not None
    source = about[about["section"] == "input"].set_index("name")
    assert source.loc["survey", "value"] == str(survey_csv)
    assert int(source.loc["survey", "size_bytes"]) == survey_csv.stat().st_size
    digest = hashlib.sha256(survey_csv.read_bytes()).hexdigest()
    assert source.loc["survey", "sha256"] == digest
    changes = about.loc[about["section"] == "scenario", "value"].tolist()
    assert changes == ["cash_transfer = yes"]


def test_output_is_deterministic_apart_from_the_date(
    tmp_path: Path,
    risk: clrisk.TerritoryRisk,
    plan: clrisk.Priorities,
    model: clrisk.RiskModel,
) -> None:
    def values(path: Path) -> dict[str, list[tuple[Any, ...]]]:
        book = openpyxl.load_workbook(path)
        return {
            ws.title: [
                row
                for row in ws.iter_rows(values_only=True)
                if row[:2] != ("run", "created (UTC)")
            ]
            for ws in book.worksheets
        }

    a = write_workbook(tmp_path / "a.xlsx", risk, plan=plan, model=model)
    b = write_workbook(tmp_path / "b.xlsx", risk, plan=plan, model=model)
    assert values(a) == values(b)


# --------------------------------------------------------------------------- #
# Text is never a formula
# --------------------------------------------------------------------------- #


def _assert_no_formula(path: Path) -> None:
    book = _load(path)
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in zf.read(name) and b"<f " not in zf.read(name)


def test_formula_like_region_labels_are_written_as_text(
    dirty_book: Path, dirty: clrisk.TerritoryRisk
) -> None:
    want = dirty.table["region"].tolist()
    cells = _column(dirty_book, "territories", "region")
    assert {v for v in want if isinstance(v, str)} == set(NASTY.values())
    for c, value in zip(cells, want, strict=True):
        if isinstance(value, str):
            assert c.data_type == "s"
            assert c.value == value
            assert c.quotePrefix  # Excel keeps it text when the cell is edited
        else:
            assert c.value is None
    regions = _column(dirty_book, "regions", "region")
    assert [c.value for c in regions] == dirty.rollup()["region"].tolist()
    assert all(c.data_type == "s" for c in regions)
    _assert_no_formula(dirty_book)


def test_any_text_column_is_escaped(tmp_path: Path, risk: clrisk.TerritoryRisk) -> None:
    n = len(risk.table)
    labels = [MORE_NASTY[i % len(MORE_NASTY)] for i in range(n)]
    policy = [f"=SUM({i})" if i % 2 else "-x" for i in range(n)]
    table = risk.table.assign(region=labels, lead_policy_area=policy)
    path = write_workbook(
        tmp_path / "nasty.xlsx", dataclasses.replace(risk, table=table)
    )
    for header, want in (("region", labels), ("lead_policy_area", policy)):
        cells = _column(path, "territories", header)
        assert [c.value for c in cells] == want
        assert all(c.data_type == "s" for c in cells)
        risky = [c.quotePrefix for c in cells if c.value[:1] in "=+-@\t"]
        assert risky and all(risky)
    book = pd.read_excel(path, sheet_name="territories", keep_default_na=False)
    assert book["region"].tolist() == labels  # "#N/A" is text, not an error
    _assert_no_formula(path)


def test_carriage_returns_are_written_as_line_feeds(
    tmp_path: Path, risk: clrisk.TerritoryRisk
) -> None:
    n = len(risk.table)
    labels = ["\r=1+1", "a\r\nb", "c\rd", "plain"] * (n // 4) + ["x"] * (n % 4)
    table = risk.table.assign(region=labels)
    path = write_workbook(tmp_path / "cr.xlsx", dataclasses.replace(risk, table=table))
    cells = _column(path, "territories", "region")
    assert [c.value for c in cells[:4]] == ["\n=1+1", "a\nb", "c\nd", "plain"]
    assert cells[0].data_type == "s" and cells[0].quotePrefix
    _assert_no_formula(path)


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #


def test_missing_openpyxl_names_the_extra(
    tmp_path: Path, risk: clrisk.TerritoryRisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(InvalidParameterError, match=r'pip install "clrisk\[excel\]"'):
        write_workbook(tmp_path / "x.xlsx", risk)
    assert not (tmp_path / "x.xlsx").exists()


def test_control_characters_are_refused_before_writing(
    tmp_path: Path, risk: clrisk.TerritoryRisk
) -> None:
    labels = risk.table["region"].tolist()
    labels[3] = "bad\x07bell"
    bad = dataclasses.replace(risk, table=risk.table.assign(region=labels))
    path = tmp_path / "bad.xlsx"
    with pytest.raises(DataValidationError, match=r"'region'.*'territories'.*row 5"):
        write_workbook(path, bad)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"path": "risk.csv"}, r"must end in \.xlsx.*risk\.csv"),
        ({"path": "no/such/folder/risk.xlsx"}, "does not exist"),
        ({"path": 3}, "must be a str or path-like.*int"),
        ({"plan": "top 10"}, "'plan' parameter.*Priorities.*str"),
        ({"scenario": 1.0}, "'scenario' parameter.*Scenario.*float"),
        ({"vulnerability": []}, "'vulnerability' parameter.*list"),
        ({"model": object()}, "'model' parameter.*RiskModel.*object"),
        ({"inputs": ["survey.csv"]}, "'inputs' parameter.*mapping.*list"),
        ({"inputs": {"survey": "nope.csv"}}, "'survey' is 'nope.csv'.*not an exist"),
        ({"inputs": {"survey": 5}}, "path of 'survey' must be a str"),
    ],
)
def test_bad_arguments(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    risk: clrisk.TerritoryRisk,
    kwargs: dict[str, Any],
    match: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    args = {"path": "risk.xlsx", **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        write_workbook(args.pop("path"), risk, **args)
    assert list(tmp_path.iterdir()) == []


def test_risk_must_be_a_territory_risk_or_its_table(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match=r"'risk' parameter.*Got dict"):
        write_workbook(tmp_path / "x.xlsx", {"territory": []})  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match=r"'territory' column.*Missing: 'territory'"):
        write_workbook(tmp_path / "x.xlsx", pd.DataFrame({"code": ["01"]}))
    assert list(tmp_path.iterdir()) == []


def test_unfitted_model_is_refused(
    tmp_path: Path, country: clrisk.Country, risk: clrisk.TerritoryRisk
) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        write_workbook(tmp_path / "x.xlsx", risk, model=clrisk.RiskModel(country.spec))


def test_extra_sheets_follow_the_cell_rules(tmp_path: Path) -> None:
    from clrisk.exceptions import InvalidParameterError as Bad

    table = pd.DataFrame({"territory": ["05001"], "note": ["=HYPERLINK(1)"]})
    path = write_workbook(
        tmp_path / "x.xlsx",
        table,
        extra={"sites": table.rename(columns={"note": "site"})},
    )
    book = openpyxl.load_workbook(path)
    cell = book["sites"]["B2"]
    assert cell.value == "=HYPERLINK(1)" and cell.data_type == "s"
    with pytest.raises(Bad, match="taken"):
        write_workbook(tmp_path / "y.xlsx", table, extra={"territories": table})
