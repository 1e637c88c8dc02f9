"""A synthetic country's survey, specification and indicators as files, for
tests of `clrisk fit` on the command line."""

from __future__ import annotations

from pathlib import Path

import clrisk


def fit_files(country: clrisk.Country, folder: Path) -> list[str]:
    """Write the files and return the start of a `clrisk fit` command line:
    ``fit SURVEY --spec SPEC --outcome ... --weight ... --indicators IND``."""
    survey, spec = folder / "survey.csv", folder / "spec.toml"
    indicators = folder / "indicators.csv"
    country.survey.to_csv(survey, index=False)
    country.spec.to_toml(spec)
    country.indicators.to_csv(indicators, index=False)
    return ["fit", str(survey), "--spec", str(spec), "--outcome",
            "trabajo_infantil", "--weight", "fexp", "--indicators",
            str(indicators)]  # fmt: skip
