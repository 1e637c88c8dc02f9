"""The README's code runs, and the public API is what it says it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import clrisk

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.skipif(not README.exists(), reason="README.md is not in this checkout")
def test_readme_opens_with_the_two_commands() -> None:
    first = re.search(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert first is not None
    lines = [ln.split("#")[0].strip() for ln in first.group(1).strip().splitlines()]
    assert lines == [
        "pip install . && clrisk demo",
        'pip install ".[test]" && python -m pytest',
    ]


@pytest.mark.skipif(not README.exists(), reason="README.md is not in this checkout")
def test_readme_quickstart_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _python_blocks()
    assert blocks, "the README has no Python example"
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "intercept" in out and "Selected" in out


def test_public_api() -> None:
    assert sorted(clrisk.__all__) == sorted(
        [
            "AgeBand", "Change", "ClassificationTable", "Scenario", "simulate",
            "score_sites", "VulnerabilityIndex",
            "VulnerabilityResult", "ClriskError", "ClriskWarning", "Country",
            "DataQuality",
            "DataValidationError", "Diagnostics", "FactorWeights", "Feature",
            "FeatureSpec", "InvalidParameterError", "Levels", "ModelFormatError",
            "OutcomeRule", "Priorities", "RiskModel", "SchemaError", "Source",
            "TerritoryEffects", "territory_effects",
            "TerritoryRisk", "TerritoryStats", "Truth", "__version__", "classify",
            "load_model",
            "make_country", "predict", "prioritise", "territory_stats",
            "CrossValidation", "cross_validate",
            "write_workbook", "InterventionZones", "intervention_zones",
        ]
    )  # fmt: skip
    for name in clrisk.__all__:
        obj = getattr(clrisk, name)
        if callable(obj):
            assert obj.__doc__, f"clrisk.{name} has no docstring"
