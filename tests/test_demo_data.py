"""Golden tests on the shipped demo data (datasets/demo, models/demo)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clrisk
from clrisk.cli import main
from clrisk.io import read_table

ROOT = Path(__file__).resolve().parents[1]
DATA, MODELS = ROOT / "datasets" / "demo", ROOT / "models" / "demo"
GOLDEN = json.loads((DATA / "golden.json").read_text(encoding="utf-8"))
FIT = {
    "outcome": "trabajo_infantil",
    "weight": "fexp",
    "strata": "estrato",
    "psu": "upm",
    "territory": "cod_mun",
}


def test_refit_from_the_shipped_files_gives_the_shipped_model() -> None:
    spec = clrisk.FeatureSpec.from_toml(DATA / "spec.toml")
    survey, info = read_table(DATA / "encuesta_hogares.csv")
    assert (info.separator, info.decimal) == (";", ",")  # (the text is ASCII)
    assert len(survey) == GOLDEN["survey_rows"]
    indicators, _ = read_table(DATA / "indicadores.xlsx")
    assert indicators["nombre"].str.contains("ñ").any()  # accents survive
    model = clrisk.RiskModel(spec).fit(survey, **FIT, indicators=indicators)
    shipped = clrisk.load_model(MODELS / "model.json")
    np.testing.assert_allclose(model.params_, GOLDEN["params"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(shipped.params_, model.params_, rtol=1e-12)
    np.testing.assert_allclose(shipped.cov_, model.cov_, rtol=1e-9)


def test_shipped_model_scores_the_shipped_census() -> None:
    model = clrisk.load_model(MODELS / "model.json")
    risk = clrisk.predict(model, DATA / "censo.parquet", territory="municipio")
    nat = risk.national().iloc[0]
    assert nat["n_children"] == GOLDEN["census_rows"]
    assert nat["expected_count"] == pytest.approx(
        GOLDEN["national_expected_count"], rel=1e-9
    )
    assert len(risk.table) == GOLDEN["territories"]
    assert risk.table["territory"].str.len().eq(5).all()


def test_boundaries_cover_every_territory() -> None:
    geo = json.loads((DATA / "municipios.geojson").read_text(encoding="utf-8"))
    codes = {f["properties"]["codigo"] for f in geo["features"]}
    census = pd.read_parquet(DATA / "censo.parquet", columns=["municipio"])
    assert codes == set(census["municipio"])


def test_cli_end_to_end_on_the_demo_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, survey = str(DATA / "spec.toml"), str(DATA / "encuesta_hogares.csv")
    ind = str(DATA / "indicadores.xlsx")
    assert main(["check", survey, "--spec", spec, "--indicators", ind, "--quiet"]) == 0
    model = tmp_path / "model.json"
    assert (
        main(
            [
                "fit",
                survey,
                "--spec",
                spec,
                "--outcome",
                "trabajo_infantil",
                "--weight",
                "fexp",
                "--strata",
                "estrato",
                "--psu",
                "upm",
                "--indicators",
                ind,
                "-o",
                str(model),
                "--quiet",
            ]
        )
        == 0
    )
    risk = tmp_path / "riesgo.csv"
    assert (
        main(
            [
                "predict",
                str(DATA / "censo.parquet"),
                "--model",
                str(model),
                "--territory",
                "municipio",
                "-o",
                str(risk),
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    table = pd.read_csv(risk, dtype={"territory": str}, encoding="utf-8-sig")
    assert table["expected_count"].sum() == pytest.approx(
        GOLDEN["national_expected_count"], rel=1e-9
    )
    plan = tmp_path / "plan.csv"
    assert (
        main(["prioritise", str(risk), "--top", "10", "-o", str(plan), "--quiet"]) == 0
    )
    assert len(pd.read_csv(plan)) == GOLDEN["territories"]


def test_cli_simulate_and_vulnerability(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    effect = tmp_path / "effect.csv"
    assert (
        main(
            [
                "simulate",
                str(DATA / "censo.parquet"),
                "--model",
                str(MODELS / "model.json"),
                "--territory",
                "municipio",
                "--set",
                "attends_school=yes",
                "--where",
                "rural=yes",
                "-o",
                str(effect),
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["change_low"] <= out["change"] <= out["change_high"] < 0
    table = pd.read_csv(effect, dtype={"territory": str}, encoding="utf-8-sig")
    assert table["change"].sum() == pytest.approx(out["change"], rel=1e-9)

    ivti = tmp_path / "ivti.csv"
    assert (
        main(
            [
                "vulnerability",
                str(DATA / "indicadores.xlsx"),
                "--territory",
                "codigo",
                "--dimension",
                "economy=pct_pobreza,pct_agro",
                "--dimension",
                "services=escuelas_1000",
                "--orient",
                "escuelas_1000=-1",
                "-o",
                str(ivti),
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["territories"] == GOLDEN["territories"]
    assert sum(out["weights"].values()) == pytest.approx(1.0)
    scores = pd.read_csv(ivti, encoding="utf-8-sig")["score"]
    assert scores.min() == pytest.approx(0) and scores.max() == pytest.approx(100)


def test_cli_bad_pair_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "simulate",
            str(DATA / "censo.parquet"),
            "--model",
            str(MODELS / "model.json"),
            "--set",
            "attends_school",
            "-o",
            "x.csv",
        ]
    )
    assert code == 1
    assert "NAME=VALUE" in capsys.readouterr().err


def test_cli_sites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    census = pd.read_parquet(DATA / "censo.parquet", columns=["municipio"])
    codes = sorted(census["municipio"].unique())
    sites = tmp_path / "proveedores.csv"
    pd.DataFrame(
        {
            "codigo": [codes[0], codes[5], "99999"],
            "rubro": ["agriculture", "mining", "agriculture"],
            "toneladas": ["12,5", "3,0", "1,0"],
        }
    ).to_csv(sites, sep=";", index=False)
    out = tmp_path / "sites.csv"
    assert (
        main(
            [
                "sites",
                str(sites),
                "--model",
                str(MODELS / "model.json"),
                "--frame",
                str(DATA / "censo.parquet"),
                "--territory",
                "municipio",
                "--site-territory",
                "codigo",
                "--sector",
                "rubro",
                "--volume",
                "toneladas",
                "-o",
                str(out),
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["sites"] == 3
    # the mining cell of the sixth territory holds fewer than 50 children: its
    # figures are withheld, as clrisk predict withholds the cell
    assert summary["status"] == {
        "scored": 1,
        "sector figures withheld (fewer than 50 children)": 1,
        "territory not in the risk table": 1,
    }
    scored = pd.read_csv(out, dtype={"codigo": str}, encoding="utf-8-sig")
    assert scored["codigo"].tolist()[0] == codes[0]
    assert scored["exposure"].iloc[0] == pytest.approx(
        12.5 * scored["sector_risk"].iloc[0] / 100
    )
    assert scored.loc[1, ["sector_risk", "exposure"]].isna().all()
    assert pd.notna(scored.loc[1, "territory_risk"])


def test_cli_workbooks_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("openpyxl")
    pytest.importorskip("matplotlib")
    book = tmp_path / "riesgo.xlsx"
    assert (
        main(
            [
                "predict",
                str(DATA / "censo.parquet"),
                "--model",
                str(MODELS / "model.json"),
                "--territory",
                "municipio",
                "-o",
                str(book),
                "--quiet",
            ]
        )
        == 0
    )
    plan = tmp_path / "plan.xlsx"
    assert (
        main(["prioritise", str(book), "--coverage", "0.5", "-o", str(plan), "--quiet"])
        == 0
    )
    sheets = pd.read_excel(plan, sheet_name=None, dtype={"territory": str})
    assert (
        "priorities" in sheets
        and sheets["territories"]["territory"].str.len().eq(5).all()
    )
    out = tmp_path / "informe"
    capsys.readouterr()
    assert (
        main(
            [
                "report",
                str(DATA / "censo.parquet"),
                "--model",
                str(MODELS / "model.json"),
                "--territory",
                "municipio",
                "--region",
                "departamento",
                "--boundaries",
                str(DATA / "municipios.geojson"),
                "--key",
                "codigo",
                "--name",
                "nombre",
                "-o",
                str(out),
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["fact_sheets"]) == 6  # one per region
    page = (out / summary["fact_sheets"][0]).read_text(encoding="utf-8")
    assert "<script" not in page and "data:image/png;base64," in page
    assert (out / "clrisk-results.xlsx").exists()
    geo = json.loads((out / "clrisk-results.geojson").read_text(encoding="utf-8"))
    assert {f["properties"]["level"] for f in geo["features"]} <= {
        "low",
        "medium",
        "high",
    }
    assert summary["geojson"] == ["clrisk-results.geojson"]


def test_cli_fit_with_cross_validation_and_suppression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, survey = str(DATA / "spec.toml"), str(DATA / "encuesta_hogares.csv")
    model = tmp_path / "model.json"
    assert (
        main(
            [
                "fit",
                survey,
                "--spec",
                spec,
                "--outcome",
                "trabajo_infantil",
                "--weight",
                "fexp",
                "--strata",
                "estrato",
                "--psu",
                "upm",
                "--indicators",
                str(DATA / "indicadores.xlsx"),
                "--cv-groups",
                "upm",
                "--folds",
                "4",
                "-o",
                str(model),
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    cv = out["cross_validation"]
    assert 0.7 < cv["auc"] < out["auc"] + 0.02 and not cv["weak"]
    assert "## Cross-validation" in model.with_suffix(".md").read_text("utf-8")
    # a census cut to a few children in one territory: withheld in the export
    census = pd.read_parquet(DATA / "censo.parquet")
    first = census["municipio"].iloc[0]
    small = pd.concat(
        [
            census[census["municipio"] != first],
            census[census["municipio"] == first].head(10),
        ]
    )
    frame = tmp_path / "censo_corto.parquet"
    small.to_parquet(frame, index=False)
    risk = tmp_path / "riesgo.csv"
    assert (
        main(
            [
                "predict",
                str(frame),
                "--model",
                str(model),
                "--territory",
                "municipio",
                "--region",
                "departamento",
                "-o",
                str(risk),
                "--quiet",
            ]
        )
        == 0
    )
    table = pd.read_csv(risk, dtype={"territory": str}, encoding="utf-8-sig")
    row = table.set_index("territory").loc[first]
    assert pd.isna(row["risk"]) and row["reliability"] == "suppressed"
    assert table["suppressed"].sum() >= 2  # complementary suppression in its region


def test_cli_predict_writes_a_suppressed_breakdown(tmp_path: Path) -> None:
    risk = tmp_path / "riesgo.csv"
    assert (
        main(
            [
                "predict",
                str(DATA / "censo.parquet"),
                "--model",
                str(MODELS / "model.json"),
                "--territory",
                "municipio",
                "--by",
                "sex",
                "--min-children",
                "200",
                "-o",
                str(risk),
                "--quiet",
            ]
        )
        == 0
    )
    cells = pd.read_csv(
        tmp_path / "riesgo_by_sex.csv", dtype={"territory": str}, encoding="utf-8-sig"
    )
    assert set(cells["sex"]) == {"female", "male"}
    assert cells["suppressed"].any()  # 200 children per cell is a high bar here
    withheld = cells[cells["suppressed"]]
    assert withheld["expected_count"].isna().all()
    # never a single withheld cell in a territory whose total is published
    table = pd.read_csv(risk, dtype={"territory": str}, encoding="utf-8-sig")
    published = set(table.loc[~table["suppressed"], "territory"])
    lone = withheld.groupby("territory").size()
    assert not any(t in published and k == 1 for t, k in lone.items())


def test_cli_views_as_workbooks(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    model, frame = str(MODELS / "model.json"), str(DATA / "censo.parquet")
    sim = tmp_path / "efecto.xlsx"
    assert (
        main(
            [
                "simulate",
                frame,
                "--model",
                model,
                "--territory",
                "municipio",
                "--set",
                "attends_school=yes",
                "-o",
                str(sim),
                "--quiet",
            ]
        )
        == 0
    )
    assert "scenario" in pd.read_excel(sim, sheet_name=None)
    ivti = tmp_path / "ivti.xlsx"
    assert (
        main(
            [
                "vulnerability",
                str(DATA / "indicadores.xlsx"),
                "--territory",
                "codigo",
                "--dimension",
                "economy=pct_pobreza,pct_agro",
                "-o",
                str(ivti),
                "--quiet",
            ]
        )
        == 0
    )
    assert {"vulnerability", "vulnerability weights"} <= set(
        pd.read_excel(ivti, sheet_name=None)
    )
    census = pd.read_parquet(DATA / "censo.parquet", columns=["municipio"])
    sites = tmp_path / "sites.csv"
    pd.DataFrame({"territory": [census["municipio"].iloc[0]]}).to_csv(
        sites, index=False
    )
    out = tmp_path / "sites.xlsx"
    assert (
        main(
            [
                "sites",
                str(sites),
                "--model",
                model,
                "--frame",
                frame,
                "--territory",
                "municipio",
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    book = pd.read_excel(out, sheet_name=None, dtype=str)
    assert book["sites"]["territory"].tolist() == [census["municipio"].iloc[0]]


def test_cli_predict_policies_and_row_accounting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    census = pd.read_parquet(DATA / "censo.parquet")
    census["p_etnia"] = census["p_etnia"].astype(object)
    census.loc[census.index[:4], "p_etnia"] = "OTRA"
    census.loc[census.index[4:6], "h_personas"] = None
    frame = tmp_path / "censo.parquet"
    census.to_parquet(frame, index=False)
    base = [
        "predict",
        str(frame),
        "--model",
        str(MODELS / "model.json"),
        "--territory",
        "municipio",
        "-o",
        str(tmp_path / "r.csv"),
    ]
    assert main(base) == 1  # unknown code and missing value: stop by default
    assert "OTRA" in capsys.readouterr().err
    with pytest.warns(clrisk.ClriskWarning, match="coded as 'none'"):
        assert (
            main(
                [
                    *base,
                    "--on-invalid",
                    "drop",
                    "--unknown-as",
                    "ethnicity=none",
                    "--format",
                    "json",
                ]
            )
            == 0
        )
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["rows_read"] == len(census) and out["rows_scored"] == len(census) - 2
    assert "recoded (unknown code in 'p_etnia' coded as 'none'): 4" in captured.err


def test_cli_workbook_withholds_small_territories_and_cells(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    book = tmp_path / "riesgo.xlsx"
    base = [
        "predict",
        str(DATA / "censo.parquet"),
        "--model",
        str(MODELS / "model.json"),
        "--territory",
        "municipio",
        "--by",
        "sex",
        "-o",
        str(book),
        "--quiet",
    ]
    assert main([*base, "--min-children", "200"]) == 0
    sheets = pd.read_excel(book, sheet_name=None, dtype={"territory": str})
    assert "factors" not in sheets and "suppression" in sheets
    cells = sheets["breakdown (suppressed)"]
    assert cells.loc[cells["suppressed"], "expected_count"].isna().all()
    assert main([*base, "--min-children", "0"]) == 0  # nothing withheld: full book
    assert "factors" in pd.read_excel(book, sheet_name=None)


def test_cli_report_withholds_small_territories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    census = pd.read_parquet(DATA / "censo.parquet")
    first = census["municipio"].iloc[0]
    census = pd.concat(
        [
            census[census["municipio"] != first],
            census[census["municipio"] == first].head(10),
        ]
    )
    frame = tmp_path / "censo.parquet"
    census.to_parquet(frame, index=False)
    out = tmp_path / "informe"
    assert (
        main(
            [
                "report",
                str(frame),
                "--model",
                str(MODELS / "model.json"),
                "--territory",
                "municipio",
                "--region",
                "departamento",
                "--boundaries",
                str(DATA / "municipios.geojson"),
                "--key",
                "codigo",
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    geo = json.loads((out / "clrisk-results.geojson").read_text(encoding="utf-8"))
    props = {f["properties"]["codigo"]: f["properties"] for f in geo["features"]}
    assert props[first]["risk"] is None and props[first]["suppressed"] is True
    book = pd.read_excel(
        out / "clrisk-results.xlsx", sheet_name=None, dtype={"territory": str}
    )
    assert "factors" not in book and "suppression" in book
    row = book["territories"].set_index("territory").loc[first]
    assert pd.isna(row["expected_count"])
    pages = " ".join(p.read_text(encoding="utf-8") for p in out.glob("*.html"))
    rows = re.findall(rf"<tr><td>{first}</td>.*?</tr>", pages)
    assert rows and all("%" not in r for r in rows)  # no risk published for it


def test_cli_predict_age_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    census = pd.read_parquet(DATA / "censo.parquet")
    adults = census.head(25).assign(p_edad=35)
    frame = tmp_path / "todas_las_edades.parquet"
    pd.concat([census, adults]).to_parquet(frame, index=False)
    assert (
        main(
            [
                "predict",
                str(frame),
                "--model",
                str(MODELS / "model.json"),
                "--territory",
                "municipio",
                "--age-column",
                "p_edad",
                "--age-range",
                "5-17",
                "-o",
                str(tmp_path / "r.csv"),
                "--format",
                "json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["rows_read"] == len(census) + 25
    assert out["rows_scored"] == len(census)
    assert out["rejected"] == {"outside the age range 5-17 ('p_edad')": 25}


def test_readme_figures_of_the_demo_survey() -> None:
    """The README quotes these figures of the demo files: the in-sample
    classification table at the prevalence and the territory effects' SD."""
    survey, _ = read_table(DATA / "encuesta_hogares.csv")
    indicators, _ = read_table(DATA / "indicadores.xlsx")
    model = clrisk.load_model(MODELS / "model.json")
    c = model.diagnostics_.classification
    assert c is not None and round(c.cutoff, 2) == 0.16
    fx = clrisk.territory_effects(model, survey, **FIT, indicators=indicators)
    assert round(fx.sd, 2) == 0.26 and fx.p_value < 0.001
    assert [round(v, 2) for v in fx.sd_interval] == [0.14, 0.41]
