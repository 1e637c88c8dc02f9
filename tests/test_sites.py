"""clrisk.score_sites: risk where suppliers operate, by territory and sector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clrisk
from clrisk.exceptions import InvalidParameterError


@pytest.fixture(scope="module")
def risk() -> clrisk.TerritoryRisk:
    c = clrisk.make_country(
        random_state=9,
        n_territories=30,
        n_regions=3,
        children_per_territory=300,
        survey_children=4000,
    )
    model = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    return clrisk.predict(model, c.census, **c.predict_kwargs, by="head_branch")


def test_sites_get_sector_risk_exposure_and_reasons(
    risk: clrisk.TerritoryRisk,
) -> None:
    codes = risk.table["territory"].tolist()
    sites = pd.DataFrame(
        {
            "supplier": ["A", "B", "C", "D"],
            "municipio": [codes[0], codes[1], "99999", codes[2]],
            "rubro": ["agriculture", "mining", "agriculture", "commerce"],
            "toneladas": [100.0, 50.0, 10.0, 0.0],
        }
    )
    out = clrisk.score_sites(
        sites,
        risk,
        territory="municipio",
        sector="rubro",
        sector_feature="head_branch",
        volume="toneladas",
    )
    assert len(out) == len(sites)  # no site dropped
    assert out["status"].tolist()[2] == "territory not in the risk table"
    cells = risk.breakdown("territory").set_index(["territory", "head_branch"])
    expected = cells.loc[(codes[0], "agriculture"), "risk"]
    assert out.loc[0, "sector_risk"] == pytest.approx(expected, rel=1e-12)
    assert out.loc[0, "exposure"] == pytest.approx(100 * expected / 100)
    t0 = risk.table.set_index("territory").loc[codes[0]]
    assert out.loc[0, "territory_risk"] == t0["risk"]
    assert out.loc[0, "territory_level"] == t0["level"]
    gaps = risk.factors.gaps.loc[codes[0]]
    first = gaps[gaps > 0].idxmax() if (gaps > 0).any() else "none above national"
    assert out.loc[0, "main_risk_factors"].split(", ")[0] == first
    assert np.isnan(out.loc[2, "sector_risk"])


def test_bad_site_tables(risk: clrisk.TerritoryRisk) -> None:
    sites = pd.DataFrame({"municipio": [5001], "rubro": ["agriculture"]})
    with pytest.raises(InvalidParameterError, match="leading zeros"):
        clrisk.score_sites(sites, risk, territory="municipio")
    sites = pd.DataFrame({"municipio": ["05001"]})
    with pytest.raises(clrisk.SchemaError):
        clrisk.score_sites(
            sites,
            risk,
            territory="municipio",
            sector="rubro",
            sector_feature="head_branch",
        )
    with pytest.raises(InvalidParameterError, match="together"):
        clrisk.score_sites(sites, risk, territory="municipio", sector="municipio")
