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


# ---------------------------------------------- regressions of a review (2026-12-02)
@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(
        random_state=9,
        n_territories=30,
        n_regions=3,
        children_per_territory=300,
        survey_children=4000,
    )


def test_sector_figures_summed_over_another_breakdown(
    country: clrisk.Country, risk: clrisk.TerritoryRisk
) -> None:
    """by=[sector, sex] (the gender-sensitive view) gives the same sector figures
    as by=[sector] (was: a bare pandas ValueError)."""
    model = clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)
    both = clrisk.predict(
        model, country.census, **country.predict_kwargs, by=["head_branch", "sex"]
    )
    codes = risk.table["territory"].tolist()
    sites = pd.DataFrame({"m": codes[:6], "s": ["agriculture", "mining"] * 3})
    kw = {"territory": "m", "sector": "s", "sector_feature": "head_branch"}
    one, two = (
        clrisk.score_sites(sites, risk, **kw),
        clrisk.score_sites(sites, both, **kw),
    )
    for col in ("sector_risk", "sector_risk_low", "sector_risk_high",
                "sector_expected_count"):  # fmt: skip
        np.testing.assert_allclose(one[col], two[col], rtol=1e-12)
    assert one["sector_level"].tolist() == two["sector_level"].tolist()


def test_sector_level_uses_the_territory_breaks(risk: clrisk.TerritoryRisk) -> None:
    """A site's sector risk is classified as a territory with that risk would
    be: below the first break low, above the last high."""
    codes = risk.table["territory"].tolist()
    sites = pd.DataFrame({"m": codes, "s": "agriculture"})
    out = clrisk.score_sites(
        sites, risk, territory="m", sector="s", sector_feature="head_branch"
    )
    b = risk.levels.breaks.sort_values("level_code")
    upper = b["upper_break"].to_numpy()[:-1]
    names = b["level"].to_numpy()
    for r, level in zip(out["sector_risk"], out["sector_level"], strict=True):
        if np.isnan(r):
            assert pd.isna(level)
        else:
            assert level == names[int(np.sum(upper < r))]
    # the territories' own risks reproduce their levels
    again = clrisk.score_sites(
        risk.table.rename(columns={"territory": "m"})[["m"]].assign(s="agriculture"),
        risk,
        territory="m",
    )
    assert (again["territory_level"] == risk.table["level"].to_numpy()).all()


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (["1,234", "2"], "comma before three digits"),
        (["-5", "2"], "negative or infinite"),
        ([-5.0, 2.0], "negative or infinite"),
        (["5 t", "2"], "not numbers"),
    ],
)
def test_bad_volumes_are_refused(
    risk: clrisk.TerritoryRisk, volume: list[object], message: str
) -> None:
    codes = risk.table["territory"].tolist()
    sites = pd.DataFrame({"m": codes[:2], "v": volume})
    with pytest.raises(clrisk.DataValidationError, match=message):
        clrisk.score_sites(sites, risk, territory="m", volume="v")


def test_decimal_comma_volume_and_no_data_status(
    country: clrisk.Country,
) -> None:
    model = clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)
    codes = sorted(country.census["municipio"].unique())
    census = country.census[country.census["municipio"] != codes[0]]
    with pytest.warns(clrisk.exceptions.CoverageWarning, match="no rows"):
        risk = clrisk.predict(model, census, **country.predict_kwargs)
    assert codes[0] in set(risk.table["territory"])  # kept from the indicators
    sites = pd.DataFrame({"m": [codes[0], codes[1]], "v": ["3", "12,5"]})
    out = clrisk.score_sites(sites, risk, territory="m", volume="v")
    assert out["status"].tolist() == ["no children scored in the territory", "scored"]
    assert pd.isna(out.loc[0, "main_risk_factors"])  # no factors without children
    r1 = risk.table.set_index("territory").loc[codes[1], "risk"]
    assert out.loc[1, "exposure"] == pytest.approx(12.5 * r1 / 100)


def test_volume_with_a_leading_zero_group_is_a_decimal(
    risk: clrisk.TerritoryRisk,
) -> None:
    codes = risk.table["territory"].tolist()
    sites = pd.DataFrame({"m": codes[:1], "v": ["0,500"]})
    out = clrisk.score_sites(sites, risk, territory="m", volume="v")
    r = risk.table.set_index("territory").loc[codes[0], "risk"]
    assert out.loc[0, "exposure"] == pytest.approx(0.5 * r / 100)
