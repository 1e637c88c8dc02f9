"""A synthetic country with known truth, for demos, tests and validation.

:func:`make_country` draws regions, territories (municipalities with text codes
such as ``"05001"``), households and children aged 5-17 from a known model:
child labour follows a logit in the child, household and territory features
plus a territory random effect. The census holds every child; the survey is a
stratified two-stage sample (PSUs, then households) with expansion weights.
Survey and census use *different* column names and codes for the same things,
as real ones do, so the feature specification does real harmonisation work.
The truth (each child's probability, each territory's risk and expected count,
the coefficients) comes back with the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from clrisk.exceptions import InvalidParameterError
from clrisk.outcome import OutcomeRule
from clrisk.spec import Feature, FeatureSpec, Source

__all__ = ["Country", "Truth", "demo_spec", "make_country"]

AGE_BANDS = ("5-9", "10-13", "14-15", "16-17")
ETHNICITY = ("none", "indigenous", "afro")
SCHOOLING = ("none", "primary", "secondary", "tertiary")
BRANCHES = ("services", "agriculture", "mining", "manufacturing", "commerce")

#: True coefficients of the generating model, by model column of :func:`demo_spec`.
TRUE_COEFFICIENTS: dict[str, float] = {
    "intercept": -3.6,
    "age_group[10-13]": 0.9,
    "age_group[14-15]": 1.5,
    "age_group[16-17]": 1.8,
    "sex": -0.35,
    "attends_school": -1.2,
    "ethnicity[indigenous]": 0.5,
    "ethnicity[afro]": 0.2,
    "migrant": 0.3,
    "head_female": 0.15,
    "head_schooling[primary]": -0.2,
    "head_schooling[secondary]": -0.55,
    "head_schooling[tertiary]": -0.9,
    "head_branch[agriculture]": 0.9,
    "head_branch[mining]": 0.7,
    "head_branch[manufacturing]": 0.2,
    "head_branch[commerce]": 0.35,
    "head_social_security": -0.45,
    "household_size": 0.06,
    "n_children": 0.08,
    "rural": 0.45,
    "cash_transfer": -0.25,
    "agri_share": 1.0,
    "poverty_rate": 1.2,
    "school_supply": -0.05,
}


@dataclass(frozen=True, repr=False)
class Truth:
    """What the generator knows and a real country never does.

    Attributes
    ----------
    coefficients : Series
        True coefficients by model term (``"intercept"`` and ``spec.columns``).
    territory_effect_sd : float
        Standard deviation of the territory random intercept.
    child_probability : ndarray of shape (n_census,)
        Each census child's true probability of child labour.
    child_labour : ndarray of shape (n_census,)
        Each census child's drawn outcome (0/1).
    territories : DataFrame
        One row per territory: ``territory``, ``region``, ``n_children``,
        ``true_risk`` (%), ``true_count`` (sum of true probabilities),
        ``realised_count`` (children in child labour as drawn), ``effect``.
    """

    coefficients: pd.Series
    territory_effect_sd: float
    child_probability: np.ndarray
    child_labour: np.ndarray
    territories: pd.DataFrame

    def __repr__(self) -> str:
        return (
            f"Truth({len(self.coefficients)} coefficients, "
            f"{len(self.child_probability):,} children, "
            f"{len(self.territories):,} territories, "
            f"territory_effect_sd={self.territory_effect_sd:g})"
        )


@dataclass(frozen=True, repr=False)
class Country:
    """A synthetic country: data as an analyst receives them, plus the truth.

    Attributes
    ----------
    survey : DataFrame
        Household survey with a child-labour module, one row per child.
    census : DataFrame
        Every child aged 5-17, no outcome.
    indicators : DataFrame
        One row per territory: code, name, region and indicators.
    spec : FeatureSpec
        Harmonises survey, census and indicators.
    outcome_rule : OutcomeRule
        The national child-labour rule that produced ``survey[outcome]``.
    truth : Truth
    fit_kwargs : dict
        ``RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)``.
    predict_kwargs : dict
        ``clrisk.predict(model, c.census, **c.predict_kwargs)``.
    """

    survey: pd.DataFrame
    census: pd.DataFrame
    indicators: pd.DataFrame
    spec: FeatureSpec
    outcome_rule: OutcomeRule
    truth: Truth
    fit_kwargs: dict[str, Any] = field(default_factory=dict)
    predict_kwargs: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"Country(survey: {len(self.survey):,} children, census: "
            f"{len(self.census):,} children, {len(self.indicators):,} territories)"
        )


def demo_spec() -> FeatureSpec:
    """The feature specification of the synthetic country."""
    yes_no_12 = {"1": "yes", "2": "no"}
    yes_no_10 = {"1": "yes", "0": "no"}

    def binary(
        name: str,
        survey: Source,
        census: Source,
        *,
        levels: tuple[str, str] = ("no", "yes"),
        dimension: str,
        area: str,
        label: str,
    ) -> Feature:
        return Feature(
            name,
            "binary",
            {"survey": survey, "census": census},
            levels=levels,
            dimension=dimension,
            policy_area=area,
            label=label,
        )

    age_codes = {str(a): _age_band(a) for a in range(5, 18)}
    feats = [
        Feature(
            "age_group",
            "categorical",
            {
                "survey": Source("edad", age_codes),
                "census": Source("p_edad", age_codes),
            },
            levels=AGE_BANDS,
            dimension="individual",
            policy_area="education",
            label="Age group of the child",
        ),
        binary(
            "sex",
            Source("sexo", {"1": "male", "2": "female"}),
            Source("p_sexo", {"H": "male", "M": "female"}),
            levels=("male", "female"),
            dimension="individual",
            area="gender",
            label="Child is a girl",
        ),
        binary(
            "attends_school",
            Source("asiste", yes_no_12),
            Source("p_asiste", yes_no_10),
            dimension="individual",
            area="education",
            label="Child attends school",
        ),
        Feature(
            "ethnicity",
            "categorical",
            {
                "survey": Source(
                    "etnia", {"1": "indigenous", "2": "afro", "3": "none"}
                ),
                "census": Source(
                    "p_etnia", {"IND": "indigenous", "AFR": "afro", "NIN": "none"}
                ),
            },
            levels=ETHNICITY,
            dimension="individual",
            policy_area="inclusion",
            label="Ethnic self-identification",
        ),
        binary(
            "migrant",
            Source("migrante", yes_no_12),
            Source("p_migr", yes_no_10),
            dimension="individual",
            area="inclusion",
            label="Child is a migrant",
        ),
        binary(
            "head_female",
            Source("jefe_sexo", {"1": "no", "2": "yes"}),
            Source("j_sexo", {"H": "no", "M": "yes"}),
            dimension="household",
            area="gender",
            label="Household head is a woman",
        ),
        Feature(
            "head_schooling",
            "categorical",
            {
                "survey": Source(
                    "jefe_educ",
                    {"0": "none", "1": "primary", "2": "secondary", "3": "tertiary"},
                ),
                "census": Source(
                    "j_nivel",
                    {"1": "none", "2": "primary", "3": "secondary", "4": "tertiary"},
                ),
            },
            levels=SCHOOLING,
            dimension="household",
            policy_area="education",
            label="Schooling of the household head",
        ),
        Feature(
            "head_branch",
            "categorical",
            {
                "survey": Source(
                    "jefe_rama",
                    {
                        "S": "services",
                        "A": "agriculture",
                        "B": "mining",
                        "C": "manufacturing",
                        "G": "commerce",
                    },
                ),
                "census": Source(
                    "j_rama",
                    {
                        "5": "services",
                        "1": "agriculture",
                        "2": "mining",
                        "3": "manufacturing",
                        "4": "commerce",
                    },
                ),
            },
            levels=BRANCHES,
            dimension="sector",
            policy_area="labour and employment",
            label="Branch of activity of the household head",
        ),
        binary(
            "head_social_security",
            Source("jefe_segsoc", yes_no_12),
            Source("j_segsoc", yes_no_10),
            dimension="household",
            area="social protection",
            label="Head covered by social security",
        ),
        Feature(
            "household_size",
            "numeric",
            {"survey": Source("tot_pers"), "census": Source("h_personas")},
            dimension="household",
            policy_area="social protection",
            label="Persons in the household",
        ),
        Feature(
            "n_children",
            "numeric",
            {"survey": Source("tot_ninos"), "census": Source("h_ninos")},
            dimension="household",
            policy_area="social protection",
            label="Children 5-17 in the household",
        ),
        binary(
            "rural",
            Source("area", {"1": "no", "2": "yes"}),
            Source("h_area", {"U": "no", "R": "yes"}),
            dimension="household",
            area="rural and agricultural development",
            label="Rural residence",
        ),
        binary(
            "cash_transfer",
            Source("transf", yes_no_12),
            Source("h_transf", yes_no_10),
            dimension="household",
            area="social protection",
            label="Household receives a cash transfer",
        ),
        Feature(
            "agri_share",
            "numeric",
            {"indicators": Source("pct_agro", scale=0.01)},
            dimension="territory",
            policy_area="rural and agricultural development",
            label="Share of employment in agriculture",
        ),
        Feature(
            "poverty_rate",
            "numeric",
            {"indicators": Source("pct_pobreza", scale=0.01)},
            dimension="territory",
            policy_area="social protection",
            label="Poverty rate",
        ),
        Feature(
            "school_supply",
            "numeric",
            {"indicators": Source("escuelas_1000")},
            dimension="territory",
            policy_area="education",
            label="Schools per 1,000 children",
        ),
    ]
    return FeatureSpec(
        feats,
        territory={"survey": "cod_mun", "census": "municipio", "indicators": "codigo"},
        name="clrisk synthetic country",
        description="Survey (Spanish-style codes) and census harmonised for CLRISK.",
    )


def make_country(
    *,
    n_territories: int = 300,
    n_regions: int = 12,
    children_per_territory: float = 1800.0,
    survey_children: int = 20_000,
    territory_effect_sd: float = 0.3,
    households_per_psu: int = 12,
    random_state: int | np.random.Generator | None = None,
) -> Country:
    """Generate a synthetic country with known child-labour risk.

    Parameters
    ----------
    n_territories : int, default 300
        Municipalities.
    n_regions : int, default 12
        Regions (departments); each municipality belongs to one.
    children_per_territory : float, default 1800
        Median children aged 5-17 per municipality (sizes are log-normal, so
        the mean is about 1.5 times this; the default census has ~800k children).
    survey_children : int, default 20_000
        Approximate number of children in the survey sample.
    territory_effect_sd : float, default 0.3
        SD of the territory random intercept on the log-odds scale (0 makes
        the logit without territory effects the true model).
    households_per_psu : int, default 12
        Households sampled in each selected PSU.
    random_state : int, Generator or None
        Seed; the same seed gives the same country.

    Returns
    -------
    Country
    """
    for name, value, low in [
        ("n_territories", n_territories, 2),
        ("n_regions", n_regions, 1),
        ("survey_children", survey_children, 100),
        ("households_per_psu", households_per_psu, 2),
    ]:
        if not isinstance(value, int | np.integer) or value < low:
            raise InvalidParameterError(
                f"The '{name}' parameter of make_country must be an int >= {low}; "
                f"got {value!r}."
            )
    if n_regions > min(n_territories, 99):
        raise InvalidParameterError(
            f"n_regions must be at most min(n_territories, 99); got {n_regions}."
        )
    if not (children_per_territory >= 20 and territory_effect_sd >= 0):
        raise InvalidParameterError(
            "children_per_territory must be >= 20 and territory_effect_sd >= 0; got "
            f"{children_per_territory!r} and {territory_effect_sd!r}."
        )
    rng = np.random.default_rng(random_state)
    terr = _territories(
        rng, n_territories, n_regions, children_per_territory, territory_effect_sd
    )
    hh = _households(rng, terr)
    kids = _children(rng, hh, terr)
    beta = pd.Series(TRUE_COEFFICIENTS)
    eta = _true_eta(kids, hh, terr, beta)
    p = expit(eta)
    y = (rng.random(len(p)) < p).astype(np.int8)
    rule = OutcomeRule.default(
        age="edad", hours="horas_trab", hazardous="act_peligrosa"
    )
    hours, hazard = _hours(rng, kids["age"], y, rule)

    census = _census_table(kids, hh, terr)
    sel_hh, weights, strata, psu_ids = _sample(
        rng, hh, terr, survey_children, households_per_psu
    )
    survey = _survey_table(
        kids, hh, terr, sel_hh, weights, strata, psu_ids, hours, hazard
    )
    survey["trabajo_infantil"] = rule.apply(survey)
    indicators = pd.DataFrame(
        {
            "codigo": terr["code"],
            "nombre": terr["name"],
            "departamento": terr["region"],
            "pct_agro": np.round(terr["agri"] * 100, 2),
            "pct_pobreza": np.round(terr["poverty"] * 100, 2),
            "escuelas_1000": np.round(terr["supply"], 3),
            "pct_indigena": np.round(terr["indigenous"] * 100, 2),
        }
    )
    t_idx = kids["t"]
    n_t = np.bincount(t_idx, minlength=n_territories)
    true_count = np.bincount(t_idx, weights=p, minlength=n_territories)
    truth = Truth(
        coefficients=beta,
        territory_effect_sd=territory_effect_sd,
        child_probability=p,
        child_labour=y,
        territories=pd.DataFrame(
            {
                "territory": terr["code"],
                "region": terr["region"],
                "n_children": n_t,
                "true_risk": 100 * true_count / np.maximum(n_t, 1),
                "true_count": true_count,
                "realised_count": np.bincount(
                    t_idx, weights=y, minlength=n_territories
                ),
                "effect": terr["effect"],
            }
        ),
    )
    return Country(
        survey=survey,
        census=census,
        indicators=indicators,
        spec=demo_spec(),
        outcome_rule=rule,
        truth=truth,
        fit_kwargs={
            "outcome": "trabajo_infantil",
            "weight": "fexp",
            "strata": "estrato",
            "psu": "upm",
            "territory": "cod_mun",
            "indicators": indicators,
        },
        predict_kwargs={"territory": "municipio", "region": "departamento"},
    )


# ------------------------------------------------------------------ private
def _age_band(age: int) -> str:
    return (
        "5-9"
        if age <= 9
        else "10-13"
        if age <= 13
        else "14-15"
        if age <= 15
        else "16-17"
    )


_NAME_ROOTS = np.array(
    [
        "Bogotá",
        "Peñalolén",
        "San José",
        "Santa Lucía",
        "Concepción",
        "Belén",
        "Jesús María",
        "Ñuñoa",
        "San Andrés",
        "Guadalupe",
        "La Unión",
        "El Carmen",
        "San Martín",
        "Santa Rosa",
        "Nueva Esperanza",
        "San Pedro",
        "Los Ángeles",
        "Tarapacá",
        "Cañas",
        "Piñas",
        "Maracaná",
        "São Tomé",
        "Itaú",
        "Iguaçu",
    ],
    dtype=object,
)


def _territories(
    rng: np.random.Generator, T: int, R: int, median: float, sd_u: float
) -> dict[str, np.ndarray]:
    region_codes = np.sort(rng.choice(np.arange(10, 100), R, replace=False))
    region_codes[0] = 5  # a single-digit code: "05" keeps its leading zero
    region = np.sort(np.concatenate([np.arange(R), rng.integers(0, R, T - R)]))
    within = np.arange(T) - np.searchsorted(region, region, side="left")
    code = np.array(
        [
            f"{region_codes[r]:02d}{1 + 3 * k:03d}"
            for r, k in zip(region, within, strict=True)
        ],
        dtype=object,
    )
    names = np.array(
        [f"{_NAME_ROOTS[i % len(_NAME_ROOTS)]} {code[i][-3:]}" for i in range(T)],
        dtype=object,
    )
    a = rng.normal(0, 1, R)[region]
    b = rng.normal(0, 1, R)[region]
    rural = expit(-0.4 + 0.8 * a + rng.normal(0, 0.8, T))
    return {
        "code": code,
        "name": names,
        "region": np.array([f"{c:02d}" for c in region_codes], dtype=object)[region],
        "region_idx": region,
        "rural": rural,
        "agri": expit(-1.2 + 2.5 * (rural - 0.4) + 0.5 * a + rng.normal(0, 0.4, T)),
        "poverty": expit(-0.8 + 1.5 * (rural - 0.4) + 0.6 * a + rng.normal(0, 0.4, T)),
        "supply": np.exp(np.log(4.0) + 0.3 * (rural - 0.4) + rng.normal(0, 0.3, T)),
        "indigenous": expit(-2.5 + 1.5 * b + rng.normal(0, 1.0, T)),
        "effect": rng.normal(0, sd_u, T) if sd_u > 0 else np.zeros(T),
        "size": np.clip(np.exp(rng.normal(np.log(median), 0.9, T)), 60, 60 * median),
    }


def _households(
    rng: np.random.Generator, terr: dict[str, np.ndarray]
) -> dict[str, Any]:
    mean_kids = 2.0
    H_t = np.maximum(np.round(terr["size"] / mean_kids).astype(np.int64), 5)
    t = np.repeat(np.arange(len(H_t)), H_t)
    H = len(t)
    rural = rng.random(H) < terr["rural"][t]
    pov = terr["poverty"][t]
    z = -0.8 * rural - 2.0 * (pov - 0.35) + rng.normal(0, 1, H)
    school = np.searchsorted([-1.2, 0.2, 1.3], z).astype(np.int8)  # none..tertiary
    util = np.column_stack(
        [
            np.zeros(H),  # services
            -1.0 + 2.5 * rural + 3.0 * (terr["agri"][t] - 0.3),
            -3.0 + 0.5 * rural,
            -1.0 + 0.0 * rural,
            -0.5 - 0.3 * rural,
        ]
    ) + rng.gumbel(size=(H, 5))
    branch = np.argmax(util, axis=1).astype(np.int8)
    ss = rng.random(H) < expit(
        -0.3
        + 1.2 * (school >= 2)
        - 1.0 * (branch == 1)
        + 0.4 * (branch == 3)
        - 0.5 * rural
    )
    cash = rng.random(H) < expit(-1.5 + 3.0 * (pov - 0.4) + 0.8 * rural - 0.8 * ss)
    n_kids = 1 + rng.poisson(0.6 + 0.5 * rural + 0.4 * (school <= 1))
    adults = 1 + rng.poisson(1.0, H)
    eth_u = rng.random(H)
    ind_share = terr["indigenous"][t]
    ethnicity = np.where(eth_u < ind_share, 1, np.where(eth_u < ind_share + 0.06, 2, 0))
    # PSUs: segments of about 40 households within territory x area
    order = np.lexsort((rng.random(H), rural, t))
    key = t[order] * 2 + rural[order]
    start = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    pos = np.arange(H) - np.repeat(start, np.diff(np.r_[start, H]))
    seg_local = pos // 40
    psu_sorted = (
        np.cumsum(np.r_[1, (np.diff(key) != 0) | (np.diff(seg_local) != 0)]) - 1
    )
    psu = np.empty(H, dtype=np.int64)
    psu[order] = psu_sorted
    return {
        "t": t,
        "rural": rural,
        "school": school,
        "branch": branch,
        "ss": ss,
        "cash": cash,
        "n_kids": n_kids,
        "size": n_kids + adults,
        "head_female": rng.random(H) < 0.3,
        "ethnicity": ethnicity.astype(np.int8),
        "migrant": rng.random(H) < 0.05,
        "psu": psu,
    }


def _children(
    rng: np.random.Generator, hh: dict[str, Any], terr: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    h = np.repeat(np.arange(len(hh["t"])), hh["n_kids"])
    n = len(h)
    age = rng.integers(5, 18, n)
    t = hh["t"][h]
    attend = rng.random(n) < expit(
        4.0
        - 0.45 * np.maximum(age - 11, 0)
        - 0.8 * hh["rural"][h]
        - 0.6 * (hh["school"][h] == 0)
        + 0.4 * hh["cash"][h]
        + 0.1 * (terr["supply"][t] - 4.0)
    )
    band = np.searchsorted([9, 13, 15], age, side="left").astype(np.int8)
    return {
        "h": h,
        "t": t,
        "age": age,
        "band": band,
        "female": rng.random(n) < 0.49,
        "attend": attend,
    }


def _true_eta(
    kids: dict[str, np.ndarray],
    hh: dict[str, Any],
    terr: dict[str, np.ndarray],
    beta: pd.Series,
) -> np.ndarray:
    h, t = kids["h"], kids["t"]
    age_b = np.r_[
        0.0, beta[["age_group[10-13]", "age_group[14-15]", "age_group[16-17]"]]
    ]
    eth_b = np.r_[0.0, beta["ethnicity[indigenous]"], beta["ethnicity[afro]"]]
    sch_b = np.r_[0.0, beta[[f"head_schooling[{s}]" for s in SCHOOLING[1:]]]]
    br_b = np.r_[0.0, beta[[f"head_branch[{b}]" for b in BRANCHES[1:]]]]
    eta: np.ndarray = (
        beta["intercept"]
        + age_b[kids["band"]]
        + beta["sex"] * kids["female"]
        + beta["attends_school"] * kids["attend"]
        + eth_b[hh["ethnicity"][h]]
        + beta["migrant"] * hh["migrant"][h]
        + beta["head_female"] * hh["head_female"][h]
        + sch_b[hh["school"][h]]
        + br_b[hh["branch"][h]]
        + beta["head_social_security"] * hh["ss"][h]
        + beta["household_size"] * hh["size"][h]
        + beta["n_children"] * hh["n_kids"][h]
        + beta["rural"] * hh["rural"][h]
        + beta["cash_transfer"] * hh["cash"][h]
        + beta["agri_share"] * np.round(terr["agri"], 4)[t]
        + beta["poverty_rate"] * np.round(terr["poverty"], 4)[t]
        + beta["school_supply"] * np.round(terr["supply"], 3)[t]
        + terr["effect"][t]
    )
    return eta


def _hours(
    rng: np.random.Generator, age: np.ndarray, y: np.ndarray, rule: OutcomeRule
) -> tuple[np.ndarray, np.ndarray]:
    """Weekly hours and hazard flags that the rule maps back to exactly `y`."""
    n = len(age)
    limit = rule.threshold(age.astype(float))
    hazard = (y == 1) & (rng.random(n) < 0.3)
    over = limit + rng.integers(1, 30, n)
    light = np.where(limit > 0, np.floor(rng.random(n) * (limit + 1)), 0.0)
    hours = np.where(y == 1, np.where(hazard, rng.integers(0, 40, n), over), light)
    hours = np.where((y == 0) & (rng.random(n) < 0.6), 0.0, hours)
    return hours.astype(np.int16), hazard.astype(np.int8)


def _census_table(
    kids: dict[str, np.ndarray], hh: dict[str, Any], terr: dict[str, np.ndarray]
) -> pd.DataFrame:
    h, t = kids["h"], kids["t"]
    return pd.DataFrame(
        {
            "hogar_id": h + 1,
            "municipio": terr["code"][t],
            "departamento": terr["region"][t],
            "p_sexo": np.array(["H", "M"], dtype=object)[kids["female"].astype(int)],
            "p_edad": kids["age"].astype(np.int16),
            "p_asiste": kids["attend"].astype(np.int8),
            "p_etnia": np.array(["NIN", "IND", "AFR"], dtype=object)[
                hh["ethnicity"][h]
            ],
            "p_migr": hh["migrant"][h].astype(np.int8),
            "j_sexo": np.array(["H", "M"], dtype=object)[
                hh["head_female"][h].astype(int)
            ],
            "j_nivel": (hh["school"][h] + 1).astype(np.int8),
            "j_rama": np.array([5, 1, 2, 3, 4], dtype=np.int8)[hh["branch"][h]],
            "j_segsoc": hh["ss"][h].astype(np.int8),
            "h_personas": hh["size"][h].astype(np.int16),
            "h_ninos": hh["n_kids"][h].astype(np.int16),
            "h_area": np.array(["U", "R"], dtype=object)[hh["rural"][h].astype(int)],
            "h_transf": hh["cash"][h].astype(np.int8),
        }
    )


def _sample(
    rng: np.random.Generator,
    hh: dict[str, Any],
    terr: dict[str, np.ndarray],
    target_children: int,
    m: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified two-stage sample: SRS of PSUs per stratum, SRS of m households."""
    psu = hh["psu"]
    n_psu = int(psu.max()) + 1
    psu_t = np.zeros(n_psu, dtype=np.int64)
    psu_t[psu] = hh["t"]
    psu_rural = np.zeros(n_psu, dtype=np.int64)
    psu_rural[psu] = hh["rural"]
    psu_size = np.bincount(psu, minlength=n_psu)
    stratum = terr["region_idx"][psu_t] * 2 + psu_rural
    n_strata = int(stratum.max()) + 1
    N_h = np.bincount(stratum, minlength=n_strata)
    hh_h = np.bincount(stratum, weights=psu_size, minlength=n_strata)
    kids_per_hh = hh["n_kids"].mean()
    total_psus = target_children / kids_per_hh / m
    n_h = np.where(
        N_h > 0, np.clip(np.round(total_psus * hh_h / hh_h.sum()), 2, N_h), 0
    )
    n_h = n_h.astype(np.int64)
    # stage 1: rank PSUs within stratum by a random key
    order = np.lexsort((rng.random(n_psu), stratum))
    first = np.searchsorted(stratum[order], stratum[order], side="left")
    rank = np.empty(n_psu, dtype=np.int64)
    rank[order] = np.arange(n_psu) - first
    psu_in = rank < n_h[stratum]
    # stage 2: m households per selected PSU
    H = len(psu)
    order = np.lexsort((rng.random(H), psu))
    first = np.searchsorted(psu[order], psu[order], side="left")
    hrank = np.empty(H, dtype=np.int64)
    hrank[order] = np.arange(H) - first
    take = psu_in[psu] & (hrank < m)
    sel = np.flatnonzero(take)
    m_psu = np.minimum(psu_size, m)
    w = (N_h[stratum] / n_h[stratum])[psu[sel]] * (psu_size / m_psu)[psu[sel]]
    return sel, w, stratum[psu[sel]], psu[sel]


def _survey_table(
    kids: dict[str, np.ndarray],
    hh: dict[str, Any],
    terr: dict[str, np.ndarray],
    sel_hh: np.ndarray,
    hh_weight: np.ndarray,
    hh_stratum: np.ndarray,
    hh_psu: np.ndarray,
    hours: np.ndarray,
    hazard: np.ndarray,
) -> pd.DataFrame:
    weight_of = np.zeros(len(hh["t"]))
    weight_of[sel_hh] = hh_weight
    in_sample = np.zeros(len(hh["t"]), dtype=bool)
    in_sample[sel_hh] = True
    rows = np.flatnonzero(in_sample[kids["h"]])
    h, t = kids["h"][rows], kids["t"][rows]
    stratum_of = np.zeros(len(hh["t"]), dtype=np.int64)
    stratum_of[sel_hh] = hh_stratum
    psu_of = np.zeros(len(hh["t"]), dtype=np.int64)
    psu_of[sel_hh] = hh_psu
    s = stratum_of[h]
    region = terr["region"][t]
    return pd.DataFrame(
        {
            "id_viv": h + 1,
            "estrato": [f"{r}-{a}" for r, a in zip(region, s % 2 + 1, strict=True)],
            "upm": psu_of[h] + 1,
            "fexp": np.round(weight_of[h], 4),
            "cod_mun": terr["code"][t],
            "dpto": region,
            "sexo": 1 + kids["female"][rows].astype(np.int8),
            "edad": kids["age"][rows].astype(np.int16),
            "asiste": 2 - kids["attend"][rows].astype(np.int8),
            "etnia": np.array([3, 1, 2], dtype=np.int8)[hh["ethnicity"][h]],
            "migrante": 2 - hh["migrant"][h].astype(np.int8),
            "jefe_sexo": 1 + hh["head_female"][h].astype(np.int8),
            "jefe_educ": hh["school"][h].astype(np.int8),
            "jefe_rama": np.array(["S", "A", "B", "C", "G"], dtype=object)[
                hh["branch"][h]
            ],
            "jefe_segsoc": 2 - hh["ss"][h].astype(np.int8),
            "tot_pers": hh["size"][h].astype(np.int16),
            "tot_ninos": hh["n_kids"][h].astype(np.int16),
            "area": 1 + hh["rural"][h].astype(np.int8),
            "transf": 2 - hh["cash"][h].astype(np.int8),
            "horas_trab": hours[rows],
            "act_peligrosa": hazard[rows],
        }
    )
