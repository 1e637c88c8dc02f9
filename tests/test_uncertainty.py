"""Ranks and levels under the coefficients' uncertainty (methodology, §4).

The linearised draws of :meth:`TerritoryRisk.uncertainty` are checked against
exact ones: the same draws of the coefficients, every census child scored
anew for each draw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit

import clrisk
from clrisk.exceptions import InvalidParameterError
from clrisk.features import design_matrix, encode
from clrisk.uncertainty import draw_ranks

SEED = 11


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(
        random_state=5,
        n_territories=40,
        n_regions=4,
        children_per_territory=150,
        survey_children=3000,
    )


@pytest.fixture(scope="module")
def model(country: clrisk.Country) -> clrisk.RiskModel:
    return clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)


@pytest.fixture(scope="module")
def risk(country: clrisk.Country, model: clrisk.RiskModel) -> clrisk.TerritoryRisk:
    return clrisk.predict(model, country.census, **country.predict_kwargs)


@pytest.fixture(scope="module")
def draws(
    country: clrisk.Country, model: clrisk.RiskModel
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Territory codes, children per territory, and the risk (%) of every
    territory in 2,000 draws of the coefficients made as the method makes
    them (same seed, same root of the covariance), computed row by row from
    the census: linearised (as the method) and exact (every child scored
    anew with each draw)."""
    coded = encode(
        country.spec,
        country.census,
        source="census",
        territory=country.predict_kwargs["territory"],
        indicators=country.indicators,
    )
    X = design_matrix(coded)
    cov = (model.cov_ + model.cov_.T) / 2
    values, vectors = np.linalg.eigh(cov)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    normal = np.random.default_rng(SEED).standard_normal((2000, len(cov)))
    shifts = normal @ root.T  # draws minus the estimate
    t = coded.territory
    counts = np.bincount(t)
    p = expit(X @ model.params_)
    r = np.bincount(t, weights=p) / counts
    grad = (
        np.stack([np.bincount(t, weights=p * (1 - p) * x) for x in X.T], axis=1)
        / counts[:, None]
    )
    linear = expit(logit(r)[:, None] + grad @ shifts.T / (r * (1 - r))[:, None])
    exact = pd.DataFrame(expit(X @ (model.params_ + shifts).T)).groupby(t).mean()
    names = np.asarray(coded.territories, dtype=object)
    return names, counts, 100 * linear, 100 * exact.to_numpy()


def _ranks(values: np.ndarray) -> np.ndarray:
    """Rank of each row in each column, 1 for the largest (a second way)."""
    return (-values).argsort(axis=0).argsort(axis=0) + 1


def _rank_interval(ranks: np.ndarray) -> np.ndarray:
    return np.quantile(ranks, [0.025, 0.975], axis=1, method="inverted_cdf")


def _level_shares(pct: np.ndarray, risk: clrisk.TerritoryRisk) -> np.ndarray:
    breaks = risk.levels.breaks.sort_values("level_code")["upper_break"].to_numpy()
    level = np.searchsorted(breaks[:-1], pct, side="left")
    return np.stack(
        [(level == k).mean(axis=1) for k in range(len(risk.levels.level_names))],
        axis=1,
    )


@pytest.mark.parametrize("rank_by", ["expected_count", "risk"])
def test_ranks_and_levels_equal_the_row_by_row_draws(
    risk: clrisk.TerritoryRisk,
    draws: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    rank_by: str,
) -> None:
    """From the one-pass statistics, as from every child: the same draws."""
    names, counts, linear, _ = draws
    got = risk.uncertainty(rank_by=rank_by, top=10, random_state=SEED)
    got = got.set_index("territory").loc[names]
    values = linear * counts[:, None] if rank_by == "expected_count" else linear
    ranks = _ranks(values)
    lo, hi = _rank_interval(ranks)
    np.testing.assert_array_equal(got["rank_low"], lo)
    np.testing.assert_array_equal(got["rank_high"], hi)
    np.testing.assert_allclose(got["p_top"], (ranks <= 10).mean(axis=1), atol=1e-12)
    levels = [f"p_{name}" for name in risk.levels.level_names]
    np.testing.assert_allclose(got[levels], _level_shares(linear, risk), atol=1e-12)


def test_close_to_exact_draws(
    risk: clrisk.TerritoryRisk,
    draws: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Against every child scored anew with each draw: rank intervals within
    one place; level probabilities within 0.15 (exact draws sit about 0.3
    points higher: the mean of the logistic over the coefficients' spread,
    which the linearisation, like the delta-method intervals, leaves out)."""
    names, counts, _, exact = draws
    got = risk.uncertainty(random_state=SEED).set_index("territory").loc[names]
    lo, hi = _rank_interval(_ranks(exact * counts[:, None]))
    assert np.abs(got["rank_low"].to_numpy() - lo).max() <= 1
    assert np.abs(got["rank_high"].to_numpy() - hi).max() <= 1
    levels = [f"p_{name}" for name in risk.levels.level_names]
    assert np.abs(got[levels].to_numpy() - _level_shares(exact, risk)).max() < 0.15


def test_draws_of_the_risk_give_the_delta_intervals(
    risk: clrisk.TerritoryRisk,
) -> None:
    """Risk level probabilities from thresholds placed at each territory's
    own interval bounds: 2.5% below the lower bound, 2.5% above the upper
    (the draws are the delta method's, on the logit scale)."""
    table = risk.table
    for bound, expected in (("risk_low", 0.025), ("risk_high", 0.975)):
        for _, row in table.sample(5, random_state=0).iterrows():
            one = risk.classify("fixed", thresholds=[row[bound]])
            got = one.uncertainty(n_draws=20_000, random_state=1)
            below = f"p_{one.levels.level_names[0]}"
            p_low = got.set_index("territory").loc[row["territory"], below]
            # Monte Carlo sd at 20,000 draws: 0.0011
            assert abs(p_low - expected) < 0.005


def test_region_scope_uses_each_regions_breaks(
    risk: clrisk.TerritoryRisk,
    draws: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    names, _, linear, _ = draws
    by_region = risk.classify("quantile", scope="region")
    got = by_region.uncertainty(random_state=SEED).set_index("territory").loc[names]
    region = pd.Series(names).map(risk.regions).astype(str).to_numpy()
    assert len(set(region)) == 4
    for group, block in by_region.levels.breaks.groupby("group"):
        rows = region == group
        cut = block.sort_values("level_code")["upper_break"].to_numpy()[:-1]
        level = np.searchsorted(cut, linear[rows], side="left")
        for code, name in enumerate(by_region.levels.level_names):
            np.testing.assert_allclose(
                got.loc[rows, f"p_{name}"], (level == code).mean(axis=1), atol=1e-12
            )


def test_shape_seed_and_point_rank(risk: clrisk.TerritoryRisk) -> None:
    a = risk.uncertainty(random_state=3)
    b = risk.uncertainty(random_state=3)
    pd.testing.assert_frame_equal(a, b)
    assert list(a["territory"]) == list(risk.table["territory"])
    levels = [f"p_{name}" for name in risk.levels.level_names]
    np.testing.assert_allclose(a[levels].sum(axis=1), 1.0)
    # the point rank orders the table's expected counts, ties by code
    order = risk.table.sort_values(
        ["expected_count", "territory"], ascending=[False, True]
    )["territory"]
    assert list(a.set_index("territory").loc[order, "rank"]) == list(
        range(1, len(order) + 1)
    )
    assert ((a["rank_low"] <= a["rank"]) & (a["rank"] <= a["rank_high"])).mean() > 0.9


def test_bad_arguments(risk: clrisk.TerritoryRisk) -> None:
    with pytest.raises(InvalidParameterError, match=r"'rank_by'.*'rate'"):
        risk.uncertainty(rank_by="rate")
    with pytest.raises(InvalidParameterError, match=r"'n_draws'.*0"):
        risk.uncertainty(n_draws=0)
    with pytest.raises(InvalidParameterError, match=r"'top'.*1 to 40"):
        risk.uncertainty(top=41)
    with pytest.raises(InvalidParameterError, match=r"'top'.*True"):
        risk.uncertainty(top=True)
    with pytest.raises(InvalidParameterError, match=r"'n_draws'.*True"):
        risk.uncertainty(n_draws=True)
    with pytest.raises(InvalidParameterError, match=r"'random_state'.*'a'"):
        risk.uncertainty(random_state="a")


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(-3, 3), min_size=4, max_size=4), min_size=1, max_size=8
    )
)
def test_draw_ranks(values: list[list[int]]) -> None:
    """Ranks 1..n in every draw; larger values first; ties to the first listed."""
    v = np.asarray(values, dtype=float)
    ranks = draw_ranks(v)
    for d in range(v.shape[1]):
        expected = np.lexsort((np.arange(len(v)), -v[:, d]))
        np.testing.assert_array_equal(ranks[expected, d], np.arange(1, len(v) + 1))


def test_fixed_levels_take_their_number_from_the_thresholds(
    country: clrisk.Country, model: clrisk.RiskModel, risk: clrisk.TerritoryRisk
) -> None:
    """One threshold, two levels, without k (was: "k must equal 2; got 3")."""
    two = risk.classify("fixed", thresholds=[8.0])
    assert len(two.levels.level_names) == 2
    again = clrisk.predict(
        model,
        country.census,
        levels="fixed",
        thresholds=[8.0],
        counterfactual=False,
        **country.predict_kwargs,
    )
    assert list(again.table["level"]) == list(two.table["level"])
    with pytest.raises(InvalidParameterError, match=r"'k'.*must equal"):
        risk.classify("fixed", k=3, thresholds=[8.0])
