"""The ``clrisk`` command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

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
