"""Regressions from the final review: clear errors and safe outputs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

import clrisk
from clrisk.cli import main
from clrisk.exceptions import InvalidParameterError, ModelFormatError, SchemaError
from clrisk.io import read_table, write_table
from clrisk.modelfile import _checksum

ROOT = Path(__file__).resolve().parents[1]
DATA, MODELS = ROOT / "datasets" / "demo", ROOT / "models" / "demo"
MODEL = str(MODELS / "model.json")


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    last = err.splitlines()[-1]  # after any progress facts: the one error line
    assert last.startswith("clrisk: error:"), err
    return last


@pytest.mark.parametrize(
    "argv",
    [
        [
            "simulate",
            str(DATA / "censo.parquet"),
            "--model",
            MODEL,
            "--territory",
            "municipio",
            "--set",
            "household_size=abc",
            "-o",
            "x.csv",
        ],
        [
            "simulate",
            str(DATA / "censo.parquet"),
            "--model",
            MODEL,
            "--territory",
            "municipio",
            "--set",
            "attends_school=yes",
            "--territories",
            "99999",
            "-o",
            "x.csv",
        ],
        [
            "simulate",
            str(DATA / "censo.parquet"),
            "--model",
            MODEL,
            "--territory",
            "municipio",
            "--shift",
            "attends_school=1",
            "-o",
            "x.csv",
        ],
        [
            "predict",
            str(DATA / "censo.parquet"),
            "--model",
            MODEL,
            "--territory",
            "municipio",
            "-o",
            "/nonexistent/folder/r.csv",
        ],
        [
            "check",
            str(DATA / "encuesta_hogares.csv"),
            "--spec",
            str(DATA / "spec.toml"),
            "--encoding",
            "no-such-encoding",
        ],
        [
            "vulnerability",
            str(DATA / "indicadores.xlsx"),
            "--territory",
            "codigo",
            "--dimension",
            "p=pct_pobreza",
            "--orient",
            "pct_pobreza=x",
            "-o",
            "v.csv",
        ],
    ],
)
def test_misuse_gives_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(tmp_path / a) if a in ("x.csv", "v.csv") else a for a in argv]
    assert main(argv) == 1
    _one_line_error(capsys)


def test_csv_output_never_holds_a_formula(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "site": ["=cmd|' /C calc'!A0", "+1", "@SUM(A1)", "ok", "-2"],
            "n": [1, -2, 3, 4, 5],
        }
    )
    path = write_table(table, tmp_path / "t.csv")
    got, _ = read_table(path)
    assert got["site"].tolist() == [
        "'=cmd|' /C calc'!A0",
        "'+1",
        "'@SUM(A1)",
        "ok",
        "'-2",
    ]
    assert got["n"].tolist() == ["1", "-2", "3", "4", "5"]  # numbers untouched


def test_csv_frame_honours_read_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    census = pd.read_parquet(DATA / "censo.parquet")
    frame = tmp_path / "censo.csv"
    census.to_csv(frame, sep=";", index=False, encoding="cp1252")
    out = tmp_path / "r.csv"
    assert (
        main(
            [
                "predict",
                str(frame),
                "--model",
                MODEL,
                "--territory",
                "municipio",
                "--sep",
                ";",
                "-o",
                str(out),
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["rows_scored"] == len(census)


def test_duplicate_csv_headers_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,a\n1,2,3\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"\['a'\]"):
        read_table(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d["settings"].__setitem__("link", "foo"), "invalid settings"),
        (lambda d: d["training"]["design"].__setitem__("extra", 1), "wrong type"),
        (
            lambda d: d["training"]["diagnostics"].__setitem__("calibration", 5),
            "wrong type",
        ),
    ],
)
def test_edited_model_files_are_refused_clearly(
    tmp_path: Path,
    change,  # type: ignore[no-untyped-def]
    match: str,
) -> None:
    data = json.loads((MODELS / "model.json").read_text(encoding="utf-8"))
    change(data)
    data["checksum"] = _checksum(data)  # an edit that recomputed the checksum
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelFormatError, match=match):
        clrisk.load_model(path)


def test_sites_with_an_unknown_sector_say_so() -> None:
    model = clrisk.load_model(MODELS / "model.json")
    risk = clrisk.predict(
        model, DATA / "censo.parquet", territory="municipio", by="head_branch"
    )
    code = risk.table["territory"].iloc[0]
    sites = pd.DataFrame(
        {"territory": [code], "sector": ["Agriculture"], "volume": ["2,5"]}
    )
    out = clrisk.score_sites(
        sites, risk, sector="sector", sector_feature="head_branch", volume="volume"
    )
    assert out["status"].iloc[0].startswith("sector is not a level of 'head_branch'")
    with pytest.raises(InvalidParameterError):
        clrisk.score_sites(sites.assign(territory=[5001]), risk)


# -------------------------------------------- review of 2026-12-02 (the CLI path)
def _withheld_by_predict(tmp_path: Path, min_children: int) -> set[str]:
    out = tmp_path / "risk.csv"
    assert main(["predict", str(DATA / "censo.parquet"), "--model", MODEL,
                 "--territory", "municipio", "--min-children", str(min_children),
                 "-o", str(out), "--quiet"]) == 0  # fmt: skip
    table = pd.read_csv(out, dtype={"territory": str})
    return set(table.loc[table["suppressed"], "territory"])


def test_simulate_withholds_what_predict_withholds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """simulate published the territories predict withholds (fewer than
    --min-children children, and their complements)."""
    withheld = _withheld_by_predict(tmp_path, 400)
    assert withheld  # the demo's small territories at this threshold
    out = tmp_path / "sim.csv"
    assert main(["simulate", str(DATA / "censo.parquet"), "--model", MODEL,
                 "--territory", "municipio", "--set", "attends_school=yes",
                 "--min-children", "400", "-o", str(out), "--quiet"]) == 0  # fmt: skip
    table = pd.read_csv(out, dtype={"territory": str})
    assert set(table.loc[table["suppressed"], "territory"]) == withheld
    hidden = table[table["suppressed"]].drop(
        columns=["territory", "suppressed", "suppression_reason"]
    )
    assert hidden.isna().all().all()
    assert not capsys.readouterr().out.count(next(iter(withheld)))  # not in summary
    assert main(["simulate", str(DATA / "censo.parquet"), "--model", MODEL,
                 "--territory", "municipio", "--set", "attends_school=yes",
                 "--min-children", "0", "-o", str(out), "--quiet"]) == 0  # fmt: skip
    assert "suppressed" not in pd.read_csv(out).columns


def test_sites_withhold_small_territories_and_sector_cells(tmp_path: Path) -> None:
    withheld = sorted(_withheld_by_predict(tmp_path, 400))
    model = clrisk.load_model(MODEL)
    risk = clrisk.predict(
        model, DATA / "censo.parquet", territory="municipio", by="head_branch"
    )
    from clrisk.reliability import suppress_breakdown

    cells, _ = suppress_breakdown(risk, min_children=400)
    small = cells[cells["suppressed"] & ~cells["territory"].isin(withheld)].iloc[0]
    big = cells[~cells["suppressed"]].iloc[0]
    sites = pd.DataFrame(
        {
            "territory": [withheld[0], small["territory"], big["territory"]],
            "sector": ["agriculture", small["head_branch"], big["head_branch"]],
        }
    )
    path = tmp_path / "sites.csv"
    sites.to_csv(path, index=False)
    out = tmp_path / "scored.csv"
    assert main(["sites", str(path), "--model", MODEL, "--frame",
                 str(DATA / "censo.parquet"), "--territory", "municipio",
                 "--sector", "sector", "--min-children", "400", "-o", str(out),
                 "--quiet"]) == 0  # fmt: skip
    scored = pd.read_csv(out, dtype={"territory": str})
    assert scored["status"].iloc[0].startswith("territory withheld")
    assert scored.loc[0, ["territory_risk", "sector_risk"]].isna().all()
    assert scored["status"].iloc[1].startswith("sector figures withheld")
    assert pd.notna(scored["territory_risk"].iloc[1])
    assert scored.loc[1, ["sector_risk", "sector_children"]].isna().all()
    assert scored["status"].iloc[2] == "scored"
    assert scored.loc[2, ["territory_risk", "sector_risk"]].notna().all()


def test_fit_takes_on_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two empty rows at the end of an Excel export stopped `clrisk fit`,
    whose advice named a flag it did not have."""
    text = (DATA / "encuesta_hogares.csv").read_text(encoding="utf-8-sig")
    survey = tmp_path / "encuesta.csv"
    survey.write_text(text.rstrip("\n") + "\n" + ";" * 21 + "\n" + ";" * 21 + "\n")
    argv = ["fit", str(survey), "--spec", str(DATA / "spec.toml"),
            "--outcome", "trabajo_infantil", "--weight", "fexp", "--strata",
            "estrato", "--psu", "upm", "--territory", "cod_mun", "--indicators",
            str(DATA / "indicadores.xlsx"), "-o", str(tmp_path / "m.json")]  # fmt: skip
    assert main(argv) == 1
    err = _one_line_error(capsys)
    assert "every column read missing (2 rows" in err and "--on-invalid drop" in err
    assert main([*argv, "--on-invalid", "drop", "--quiet"]) == 0
    model = clrisk.load_model(tmp_path / "m.json")
    assert model.quality_.rows_rejected == 2
    assert model.quality_.rejected == {"empty row": 2}


def test_separator_option_is_one_character_or_a_tab(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("cod\tx\n05001\t1\n", encoding="utf-8")
    table, info = read_table(path, sep="\\t")  # as typed in a shell: '\t'
    assert info.separator == "\t" and table["cod"].tolist() == ["05001"]
    with pytest.raises(InvalidParameterError, match=r"one character.*';;'"):
        read_table(path, sep=";;")


def test_options_take_a_decimal_comma(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    risk = tmp_path / "risk.csv"
    argv = ["predict", str(DATA / "censo.parquet"), "--model", MODEL,
            "--territory", "municipio", "-o", str(risk), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    plan = tmp_path / "plan.csv"
    assert main(["prioritise", str(risk), "--coverage", "0,5", "-o", str(plan),
                 "--format", "json", "--quiet"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["covered_share"] >= 0.5
    # twelve thousand or twelve? refused, not guessed (review of 2026-12-02)
    for budget in ("12,000", "12.000"):
        with pytest.raises(SystemExit) as stop:
            main(["prioritise", str(risk), "--budget", budget, "-o", str(plan)])
        assert stop.value.code == 2
        assert "could be read two ways" in capsys.readouterr().err


def test_a_filtered_table_is_not_named_as_its_file(tmp_path: Path) -> None:
    """Row numbers of a table filtered after reading are not the file's: the
    message names "the survey table", not the file with a wrong row."""
    from clrisk.features import table_name

    table, _ = read_table(DATA / "encuesta_hogares.csv")
    assert table_name(table, "x") == f"'{DATA / 'encuesta_hogares.csv'}'"
    kept = table[table["edad"] != "5"].reset_index(drop=True)
    assert table_name(kept, "the survey table") == "the survey table"


def test_sites_name_codes_that_lost_their_leading_zeros() -> None:
    model = clrisk.load_model(MODEL)
    risk = clrisk.predict(model, DATA / "censo.parquet", territory="municipio")
    code = risk.table["territory"].iloc[0]  # e.g. '05001'
    sites = pd.DataFrame({"territory": [code.lstrip("0"), "", code]})
    out = clrisk.score_sites(sites, risk)
    assert out["status"].tolist() == [
        f"territory not in the risk table (leading zeros lost? the table has '{code}')",
        "no territory code",
        "scored",
    ]


def test_cli_warnings_are_one_line(tmp_path: Path) -> None:
    """The CLI formats warnings as one line in its own words (not Python's
    "file.py:123: ClriskWarning" and the source line), and restores Python's
    format after the command."""
    from clrisk.cli import _format_warning
    from clrisk.exceptions import ClriskWarning

    before = warnings.formatwarning
    seen = []

    def record(message: object, *args: object, **kwargs: object) -> None:
        seen.append(warnings.formatwarning(message, ClriskWarning, "x.py", 1))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record
        census = pd.read_parquet(DATA / "censo.parquet")
        census.loc[:3, "p_etnia"] = "OTRA"
        path = tmp_path / "censo.parquet"
        census.to_parquet(path)
        assert main(["predict", str(path), "--model", MODEL, "--territory",
                     "municipio", "--unknown-as", "ethnicity=none", "-o",
                     str(tmp_path / "r.csv"), "--quiet"]) == 0  # fmt: skip
    assert warnings.formatwarning is before
    lines = [x for x in seen if "OTRA" in x]
    assert lines and all(
        x.startswith("clrisk: warning: ") and x.count("\n") == 1 for x in lines
    )
    text = _format_warning(ClriskWarning("or pass on_invalid='drop'"), ClriskWarning,
                           "x.py", 1)  # fmt: skip
    assert text == "clrisk: warning: or pass --on-invalid drop\n"


def test_fit_errors_name_the_file_in_cli_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Errors of `clrisk fit` said "the survey table" and gave Python advice
    (decimal=',', indicators=<...>) on the command line."""
    indicators, _ = read_table(DATA / "indicadores.xlsx")
    indicators.iloc[2, indicators.columns.get_loc("pct_pobreza")] = "s.d."
    bad = tmp_path / "indicadores.csv"
    indicators.to_csv(bad, index=False)
    argv = ["fit", str(DATA / "encuesta_hogares.csv"), "--spec",
            str(DATA / "spec.toml"), "--outcome", "trabajo_infantil", "--weight",
            "fexp", "--strata", "estrato", "--psu", "upm", "--territory", "cod_mun",
            "-o", str(tmp_path / "m.json")]  # fmt: skip
    assert main([*argv, "--indicators", str(bad)]) == 1
    err = _one_line_error(capsys)
    assert f"'{bad}'" in err and "'pct_pobreza'" in err and "--decimal ," in err
    assert "decimal=" not in err
    assert main(argv) == 1  # the spec has territory features
    assert "pass --indicators <file>" in _one_line_error(capsys)


def test_cli_keeps_codes_of_a_decimal_comma_risk_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    risk = tmp_path / "riesgo.csv"
    risk.write_text(
        "territory;n_children;expected_count;risk\n"
        "11.001;1200;150,5;12,54\n13.101;800;40,25;5,03\n05.001;400;60;15\n",
        encoding="cp1252",
    )
    plan = tmp_path / "plan.csv"
    assert main(["prioritise", str(risk), "--top", "2", "-o", str(plan),
                 "--quiet"]) == 0  # fmt: skip
    ranking = pd.read_csv(plan, dtype={"territory": str})
    assert ranking["territory"].tolist() == ["11.001", "05.001", "13.101"]
    assert ranking["expected_count"].tolist() == [150.5, 60.0, 40.25]


def test_check_validates_an_indicator_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`clrisk check indicators.csv` said the file matched no source, and with
    --source indicators asked to add survey columns to the spec."""
    spec = str(DATA / "spec.toml")
    xlsx = str(DATA / "indicadores.xlsx")
    plain = ["check", xlsx, "--spec", spec]
    for argv in (plain, [*plain, "--source", "indicators"]):
        assert main([*argv, "--format", "json", "--quiet"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["source"] == "indicators" and summary["territories"] == 60
    indicators, _ = read_table(DATA / "indicadores.xlsx")
    bad = tmp_path / "ind.csv"
    pd.concat([indicators, indicators.head(1)]).to_csv(bad, index=False)
    assert main(["check", str(bad), "--spec", spec]) == 1
    assert "repeated territory codes" in _one_line_error(capsys)


@pytest.mark.filterwarnings("ignore::clrisk.exceptions.CoverageWarning")
def test_simulate_and_sites_withhold_with_regions_as_predict_does(
    tmp_path: Path,
) -> None:
    """With --region, predict and report choose complements within regions
    (whose totals they publish); simulate and sites now do the same
    (review of 2026-12-02: they chose national complements, so one could be
    recovered from a region total)."""
    census = pd.read_parquet(DATA / "censo.parquet")
    frame = tmp_path / "censo.parquet"
    census[census["municipio"] != "38019"].to_parquet(frame)
    common = ["--model", MODEL, "--territory", "municipio", "--region",
              "departamento", "--min-children", "100", "--quiet"]  # fmt: skip
    pred, sim, scored = (tmp_path / n for n in ("p.csv", "s.csv", "sites.csv"))
    assert main(["predict", str(frame), *common, "-o", str(pred)]) == 0
    assert main(["simulate", str(frame), *common, "--set", "attends_school=yes",
                 "-o", str(sim)]) == 0  # fmt: skip
    p = pd.read_csv(pred, dtype={"territory": str})
    s = pd.read_csv(sim, dtype={"territory": str})
    withheld = set(p.loc[p["suppressed"], "territory"])
    assert len(withheld) >= 2
    assert set(s.loc[s["suppressed"], "territory"]) == withheld
    sites = tmp_path / "sites_in.csv"
    pd.DataFrame({"territory": sorted(withheld)}).to_csv(sites, index=False)
    assert main(["sites", str(sites), "--frame", str(frame), *common,
                 "-o", str(scored)]) == 0  # fmt: skip
    out = pd.read_csv(scored, dtype={"territory": str})
    assert out["status"].str.startswith("territory withheld").all()


def test_simulate_hides_the_national_change_of_one_withheld_territory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --territories naming one withheld territory, the national change
    is that territory's change: withheld too (review of 2026-12-02)."""
    withheld = sorted(_withheld_by_predict(tmp_path, 400))
    out = tmp_path / "sim.csv"
    capsys.readouterr()
    assert main(["simulate", str(DATA / "censo.parquet"), "--model", MODEL,
                 "--territory", "municipio", "--set", "attends_school=yes",
                 "--territories", withheld[0], "--min-children", "400",
                 "-o", str(out), "--format", "json", "--quiet"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["national"] == "withheld" and "change" not in summary
    table = pd.read_csv(out, dtype={"territory": str})
    assert table.loc[table["territory"] == withheld[0], "change"].isna().all()
    assert summary["rows_read"] == summary["rows_scored"] > 0


def test_simulate_a_parquet_file_without_territory_option(tmp_path: Path) -> None:
    """The spec's territory column is used, as predict uses it."""
    model = clrisk.load_model(MODEL)
    scenario = clrisk.simulate(
        model, DATA / "censo.parquet", {"feature": "attends_school", "set": "yes"}
    )
    assert scenario.quality.rows_read == scenario.quality.rows_used > 0
    assert len(scenario.table) > 1


def test_number_values_refuse_a_thousands_separator(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["simulate", str(DATA / "censo.parquet"), "--model", MODEL,
                 "--territory", "municipio", "--shift", "household_size=1,000",
                 "-o", "x.csv"])  # fmt: skip
    assert code == 1 and "could be read two ways" in _one_line_error(capsys)
