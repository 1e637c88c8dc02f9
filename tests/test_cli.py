"""The ``clrisk`` command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clrisk
from clrisk.cli import main

FILES = [
    "by_sex.csv", "coefficients.csv", "factors.csv", "levels.csv", "priorities.csv",
    "regions.csv", "targeting_curve.csv", "territories.csv",
]  # fmt: skip


def test_demo_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", "--out", str(tmp_path), "--territories", "60",
                 "--format", "json"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == FILES
    table = pd.read_csv(tmp_path / "territories.csv", dtype={"territory": str})
    assert len(table) == 60
    assert table["territory"].str.len().eq(5).all()  # leading zeros kept
    assert table["expected_count"].sum() == pytest.approx(
        summary["national_expected_count"], rel=1e-9
    )
    assert 0.5 <= summary["covered_share"] < 0.6
    assert summary["spearman_vs_true_risk"] > 0.7


def test_demo_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--territories", "40"]) == 0
    out = capsys.readouterr().out
    assert "National risk:" in out
    assert "Spearman correlation" in out
    assert "nan" not in out.lower()  # missing lead areas are shown in words


def test_error_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--out", str(tmp_path), "--territories", "40",
                 "--coverage", "1.5"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("clrisk: error: ") and "\n" not in err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_python_dash_m(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clrisk", "demo", "--out", str(tmp_path),
         "--territories", "30", "--format", "json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["selected_territories"] > 0


# ------------------------------------------------ check / fit / predict / prioritise
@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A country exported as an analyst would get it: Latin-1, ';', decimal comma."""
    import clrisk

    c = clrisk.make_country(
        random_state=4,
        n_territories=30,
        n_regions=3,
        children_per_territory=150,
        survey_children=3000,
    )
    tmp = tmp_path_factory.mktemp("country")
    paths = {
        "spec": tmp / "spec.toml",
        "survey": tmp / "encuesta.csv",
        "census": tmp / "censo.parquet",
        "indicators": tmp / "indicadores.csv",
    }
    c.spec.to_toml(paths["spec"])
    survey = c.survey.copy()
    survey["fexp"] = survey["fexp"].map(lambda v: f"{v:.3f}".replace(".", ","))
    survey.to_csv(paths["survey"], sep=";", index=False, encoding="cp1252")
    c.census.to_parquet(paths["census"], index=False)
    ind = c.indicators.copy()
    ind["nombre"] = "Peñalolén"  # accents must survive cp1252
    ind.to_csv(
        paths["indicators"], sep=";", index=False, encoding="cp1252", decimal=","
    )
    return paths


def test_check_fit_predict_prioritise(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "check",
                str(files["survey"]),
                "--spec",
                str(files["spec"]),
                "--indicators",
                str(files["indicators"]),
                "--format",
                "json",
                "--quiet",
            ]
        )
        == 0
    )
    check = json.loads(capsys.readouterr().out)
    assert (
        check["rows_read"] == check["rows_usable"] > 0 and check["source"] == "survey"
    )

    model = tmp_path / "model.json"
    assert (
        main(
            [
                "fit",
                str(files["survey"]),
                "--spec",
                str(files["spec"]),
                "--outcome",
                "trabajo_infantil",
                "--weight",
                "fexp",
                "--strata",
                "estrato",
                "--psu",
                "upm",
                "--indicators",
                str(files["indicators"]),
                "-o",
                str(model),
                "--format",
                "json",
            ]
        )
        == 0
    )
    fit = json.loads(capsys.readouterr().out)
    assert fit["converged"] and model.exists() and model.with_suffix(".md").exists()
    assert "## Coefficients" in model.with_suffix(".md").read_text(encoding="utf-8")

    risk = tmp_path / "risk.csv"
    assert (
        main(
            [
                "predict",
                str(files["census"]),
                "--model",
                str(model),
                "--territory",
                "municipio",
                "--region",
                "departamento",
                "-o",
                str(risk),
                "--format",
                "json",
            ]
        )
        == 0
    )
    pred = json.loads(capsys.readouterr().out)
    assert pred["territories"] == 30 and pred["rows_scored"] == pred["rows_read"]
    table = pd.read_csv(risk, dtype={"territory": str}, encoding="utf-8-sig")
    assert table["territory"].str.len().eq(5).all()

    plan = tmp_path / "plan.csv"
    assert (
        main(
            [
                "prioritise",
                str(risk),
                "--coverage",
                "0.5",
                "-o",
                str(plan),
                "--format",
                "json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["covered_share"] >= 0.5 and plan.exists()


def test_bad_spec_file_is_one_line(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "spec.toml"
    bad.write_text("[spec]\nname = 1\n[[feature]]\nname = 'x'\nkind = 'weird'\n")
    assert main(["check", str(files["survey"]), "--spec", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len([ln for ln in err if ln.startswith("clrisk: error:")]) == 1


def test_read_table_detects_locale_settings(files: dict[str, Path]) -> None:
    from clrisk.io import read_table

    table, info = read_table(files["indicators"])
    assert (info.encoding, info.separator, info.decimal) == ("cp1252", ";", ",")
    assert table["nombre"].iloc[0] == "Peñalolén"
    assert table["codigo"].str.len().eq(5).all()  # leading zeros kept
    # decimal commas converted: the values read back are the ones written
    raw = files["indicators"].read_text(encoding="cp1252")
    assert "," in raw.splitlines()[1]  # the file really has decimal commas
    c = clrisk.make_country(
        random_state=4,
        n_territories=30,
        n_regions=3,
        children_per_territory=150,
        survey_children=3000,
    )
    np.testing.assert_allclose(
        pd.to_numeric(table["pct_pobreza"]), c.indicators["pct_pobreza"], rtol=1e-12
    )


def test_read_excel_by_sheet_name_and_index(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    from clrisk.exceptions import InvalidParameterError
    from clrisk.io import read_table

    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"a": [1]}).to_excel(xl, sheet_name="notas", index=False)
        pd.DataFrame({"codigo": ["05001", "08001"], "pobreza": [31.5, 12.0]}).to_excel(
            xl, sheet_name="datos", index=False
        )
    by_name, info = read_table(path, sheet="datos")
    by_index, _ = read_table(path, sheet=1)
    assert info.sheet == "datos" and by_name.equals(by_index)
    assert by_name["codigo"].tolist() == ["05001", "08001"]
    with pytest.raises(InvalidParameterError, match=r"no sheet 'x'.*'notas', 'datos'"):
        read_table(path, sheet="x")


def test_installed_script_smoke(tmp_path: Path) -> None:
    """The console script itself, as a user calls it."""
    import shutil

    script = shutil.which("clrisk")
    if script is None:
        pytest.skip("the clrisk script is not on PATH (package not installed)")
    done = subprocess.run(
        [
            script,
            "demo",
            "--out",
            str(tmp_path),
            "--territories",
            "30",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == FILES


def test_reading_options_override_detection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import clrisk

    c = clrisk.make_country(
        random_state=4,
        n_territories=20,
        n_regions=2,
        children_per_territory=100,
        survey_children=2000,
    )
    spec = tmp_path / "spec.toml"
    c.spec.to_toml(spec)
    survey = tmp_path / "survey.txt"
    c.survey.to_csv(survey, sep="|", index=False, encoding="latin-1")
    ind = tmp_path / "ind.xlsx"
    pytest.importorskip("openpyxl")
    with pd.ExcelWriter(ind) as xl:
        pd.DataFrame({"x": [1]}).to_excel(xl, sheet_name="cover", index=False)
        c.indicators.to_excel(xl, sheet_name="data", index=False)
    args = [
        "check",
        str(survey),
        "--spec",
        str(spec),
        "--indicators",
        str(ind),
        "--sep",
        "|",
        "--encoding",
        "latin-1",
        "--sheet",
        "1",
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "separator '|'" in err and "encoding 'latin-1'" in err
    assert "sheet 'data'" in err


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal (the progress bar shows only there)."""

    def isatty(self) -> bool:
        return True


def test_predict_progress_bar_on_a_terminal(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal, predict draws a tqdm bar out of the file's row count."""
    model = tmp_path / "model.json"
    fit = ["fit", str(files["survey"]), "--spec", str(files["spec"]), "--outcome",
           "trabajo_infantil", "--weight", "fexp", "--indicators",
           str(files["indicators"]), "-o", str(model), "--quiet"]  # fmt: skip
    assert main(fit) == 0
    n_rows = len(pd.read_parquet(files["census"]))
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    args = ["predict", str(files["census"]), "--model", str(model),
            "--territory", "municipio", "-o", str(tmp_path / "r.csv")]  # fmt: skip
    assert main(args) == 0
    bar = term.getvalue()
    total = f"{n_rows / 1000:.2f}k"
    assert "rows" in bar and "100%" in bar and f"{total}/{total}" in bar
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main([*args, "--quiet"]) == 0
    assert "%" not in quiet.getvalue()


def test_predict_error_names_file_row_and_flag(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A census CSV with an unknown code: the message names the file, the
    code's first row, and the fix in the command line's words."""
    model = tmp_path / "model.json"
    fit = ["fit", str(files["survey"]), "--spec", str(files["spec"]), "--outcome",
           "trabajo_infantil", "--weight", "fexp", "--indicators",
           str(files["indicators"]), "-o", str(model), "--quiet"]  # fmt: skip
    assert main(fit) == 0
    census = pd.read_parquet(files["census"])
    census.loc[123, "p_sexo"] = "X"
    path = tmp_path / "censo.csv"
    census.to_csv(path, sep=";", index=False, encoding="cp1252")
    capsys.readouterr()
    args = ["predict", str(path), "--model", str(model), "--territory", "municipio",
            "-o", str(tmp_path / "r.csv"), "--quiet"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"'{path}'" in err and "first row 123" in err
    assert "--on-invalid drop" in err and "on_invalid=" not in err


def test_predict_with_uncertainty(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--uncertainty adds the rank interval and level probabilities, withheld
    with the rest of a small territory's row; territories are ranked among
    those published (a rank counting a withheld one would bound its figures)."""
    import clrisk

    model = tmp_path / "model.json"
    fit = ["fit", str(files["survey"]), "--spec", str(files["spec"]), "--outcome",
           "trabajo_infantil", "--weight", "fexp", "--indicators",
           str(files["indicators"]), "-o", str(model), "--quiet"]  # fmt: skip
    assert main(fit) == 0
    out = tmp_path / "riesgo.csv"
    args = ["predict", str(files["census"]), "--model", str(model), "--territory",
            "municipio", "--uncertainty", "--min-children", "140", "-o", str(out),
            "--quiet"]  # fmt: skip
    assert main(args) == 0
    table = pd.read_csv(out, dtype={"territory": str})
    levels = ["p_low", "p_medium", "p_high"]
    assert {"rank", "rank_low", "rank_high", *levels} <= set(table.columns)
    shown = table[~table["suppressed"]]
    withheld = table[table["suppressed"]]
    assert len(shown) and len(withheld)
    np.testing.assert_allclose(shown[levels].sum(axis=1), 1.0)
    assert withheld[["rank_low", *levels]].isna().all().all()
    risk = clrisk.predict(
        clrisk.load_model(model), files["census"], territory="municipio"
    )
    assert sorted(shown["rank"]) == list(range(1, len(shown) + 1))
    expected = risk.uncertainty(territories=list(shown["territory"]))
    expected = expected.set_index("territory")
    got = shown.set_index("territory")
    np.testing.assert_array_equal(
        got["rank_high"], expected.loc[got.index, "rank_high"].astype(int)
    )
