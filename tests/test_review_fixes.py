"""Regressions from the final review: clear errors and safe outputs."""

from __future__ import annotations

import json
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
