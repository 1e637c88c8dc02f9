"""Separation: no finite estimate, so RiskModel refuses to report one.

Regressions of an independent review: a 0/1 territory indicator with a single
outcome on one side, and binaries that jointly separate under the probit
link, were fitted with "converged" finite coefficients, small standard errors
and p-values near 0, the coefficient moving with the solver's tolerance.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import clrisk
from clrisk.exceptions import SeparationError
from clrisk.separation import SeparationCheckFailed, find_separation
from clrisk.spec import Feature, Source


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(random_state=3, n_territories=60, survey_children=5000)


# ------------------------------------------------------------ the LP itself
def test_overlapping_classes_are_not_separated() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    y = (rng.random(400) < 1 / (1 + np.exp(-x))).astype(float)
    X = np.c_[np.ones(400), x, rng.integers(0, 2, 400)]
    assert find_separation(X, y, np.ones(400)) is None


def test_quasi_separation_found_with_its_rows_and_column() -> None:
    """y = 0 wherever x2 = 1 (and mixed elsewhere): the coefficient of x2 goes
    to minus infinity; the rows fitted ever closer are those with x2 = 1."""
    rng = np.random.default_rng(1)
    n = 300
    x1 = rng.normal(size=n)
    x2 = (rng.random(n) < 0.2).astype(float)
    y = np.where(x2 == 1, 0.0, (rng.random(n) < 0.5).astype(float))
    found = find_separation(np.c_[np.ones(n), x1, x2], y, np.ones(n))
    assert found is not None
    assert found.direction[2] < 0 and found.direction[1] == 0
    np.testing.assert_array_equal(found.rows, np.flatnonzero(x2 == 1))


def test_rows_of_zero_weight_do_not_count() -> None:
    """The same data are separated once the rows that break it weigh 0."""
    x = np.array([-2.0, -1.0, 1.0, 2.0, 1.5])
    y = np.array([0.0, 0.0, 1.0, 1.0, 0.0])
    X = np.c_[np.ones(5), x]
    assert find_separation(X, y, np.ones(5)) is None
    found = find_separation(X, y, np.array([1.0, 1.0, 1.0, 1.0, 0.0]))
    assert found is not None
    assert found.direction[1] > 0  # risk rising with x, without bound
    assert 3 <= len(found.rows) and set(found.rows) <= {0, 1, 2, 3}


# ------------------------------------------------------------ RiskModel
def test_rare_zero_one_territory_indicator(country: clrisk.Country) -> None:
    """No child labour observed in the 3 territories with an inspection office:
    the indicator's coefficient has no finite estimate (was: about -21 with a
    standard error of 0.34, "converged")."""
    sampled = sorted(country.survey["cod_mun"].unique())[:3]
    indicators = country.indicators.assign(
        inspeccion=country.indicators["codigo"].isin(sampled).astype(int)
    )
    inspection = Feature(
        "inspection",
        "numeric",
        {"indicators": Source("inspeccion")},
        dimension="territory",
        policy_area="labour and employment",
    )
    spec = dataclasses.replace(
        country.spec, features=[*country.spec.features, inspection]
    )
    survey = country.survey.copy()
    there = survey["cod_mun"].isin(sampled)
    survey.loc[there, "trabajo_infantil"] = 0
    kwargs = {**country.fit_kwargs, "indicators": indicators}
    for link in ("logit", "probit"):
        with pytest.raises(
            SeparationError,
            match=rf"value 1 of 'inspection' has outcome 0.*\({int(there.sum())} rows",
        ):
            clrisk.RiskModel(spec, link=link).fit(survey, **kwargs)


def test_binaries_that_separate_together(country: clrisk.Country) -> None:
    """Child labour exactly when at least two of rural, not at school and boy:
    no one feature separates, the three together do (was: fitted under the
    probit link with coefficients of about 13)."""
    s = country.survey
    score = (
        (s["area"] == 2).astype(int)
        + (s["asiste"] == 2).astype(int)
        + (s["sexo"] == 1).astype(int)
    )
    survey = s.assign(trabajo_infantil=(score >= 2).astype(int))
    for link in ("logit", "probit"):
        with pytest.raises(SeparationError) as info:
            clrisk.RiskModel(country.spec, link=link).fit(survey, **country.fit_kwargs)
        message = str(info.value)
        for column in ("'sexo'", "'asiste'", "'area'"):
            assert column in message


def test_extreme_but_not_separated_rows_are_fitted() -> None:
    """One child with a covariate far out (fitted risk about 1e-9) sends the
    fit to the exact check, which finds no separation: the model is fitted."""
    rng = np.random.default_rng(2)
    x = np.r_[rng.normal(size=500), -10.0]
    y = np.r_[(rng.random(500) < 1 / (1 + np.exp(-2 * x[:500]))), False].astype(int)
    model = clrisk.RiskModel().fit(x[:, None], y)
    assert model.converged_
    assert model.predict_proba(np.array([[-10.0]]))[0, 1] < 1e-6


def test_without_the_exact_check_diverging_coefficients_still_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should HiGHS fail, a coefficient of more than 20 per SD of its column
    on rows fitted to 1e-6 of their outcome is still refused."""

    def fail(*args: object) -> None:
        raise SeparationCheckFailed("numerical trouble")

    monkeypatch.setattr(clrisk.model, "find_separation", fail)
    x = np.r_[np.linspace(-2, -0.1, 30), np.linspace(0.1, 2, 30)]
    y = (x > 0).astype(int)
    with pytest.raises(SeparationError, match=r"'x0'.*\(60 rows"):
        clrisk.RiskModel().fit(x[:, None], y)


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_a_few_separated_rows_in_a_large_or_weighted_sample(link: str) -> None:
    """Two rows (of 100,000) that only a column's rare value predicts, or
    three light rows among heavy ones: the gradient criterion is met before
    those rows are fitted close to their outcome (was: a coefficient of 12.5
    with a standard error of 0.7, "converged")."""
    rng = np.random.default_rng(0)
    n = 100_000
    x1 = rng.normal(size=n)
    x2 = np.zeros(n)
    x2[:2] = [1.0, 1.01]
    y = (rng.random(n) < 0.3).astype(int)
    y[:2] = 1
    with pytest.raises(SeparationError, match=r"'x1'.*\(2 rows"):
        clrisk.RiskModel(link=link).fit(np.c_[x1, x2], y)
    w = rng.uniform(100, 1000, n)
    w[:2] = 1.0
    with pytest.raises(SeparationError, match=r"'x1'"):
        clrisk.RiskModel(link=link).fit(np.c_[x1, x2], y, sample_weight=w)
