"""clrisk.simulate: exact against direct computation, close to the generator's truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from scipy.stats import spearmanr

import clrisk
from clrisk.exceptions import InvalidParameterError
from clrisk.features import design_matrix, encode
from clrisk.scenario import Change, simulate


@pytest.fixture(scope="module")
def small() -> clrisk.Country:
    return clrisk.make_country(
        random_state=6,
        n_territories=40,
        n_regions=4,
        children_per_territory=200,
        survey_children=4000,
    )


@pytest.fixture(scope="module")
def model(small: clrisk.Country) -> clrisk.RiskModel:
    return clrisk.RiskModel(small.spec).fit(small.survey, **small.fit_kwargs)


def _direct(
    model: clrisk.RiskModel, before: pd.DataFrame, after: pd.DataFrame
) -> pd.Series:
    p0 = model.predict_proba(before)[:, 1]
    p1 = model.predict_proba(after)[:, 1]
    return pd.Series(p1 - p0).groupby(before["municipio"].to_numpy()).sum()


def test_set_change_equals_direct_computation(
    small: clrisk.Country, model: clrisk.RiskModel
) -> None:
    census = small.census
    rural = census["h_area"] == "R"
    chosen = sorted(census["municipio"].unique())[::3]
    after = census.copy()
    mask = rural & census["municipio"].isin(chosen)
    after.loc[mask, "h_transf"] = 1
    sc = simulate(
        model,
        census,
        [
            Change(
                "cash_transfer", set="yes", territories=chosen, where={"rural": "yes"}
            )
        ],
        territory="municipio",
        chunk_size=1234,
    )
    direct = _direct(model, census, after)
    got = sc.table.set_index("territory")["change"]
    np.testing.assert_allclose(got.loc[direct.index], direct, rtol=1e-10, atol=1e-9)
    assert (got.loc[[t for t in got.index if t not in chosen]] == 0).all()
    assert sc.national["change"].iloc[0] == pytest.approx(direct.sum(), rel=1e-10)


def test_numeric_shift_and_delta_method(
    small: clrisk.Country, model: clrisk.RiskModel
) -> None:
    after = small.census.assign(h_personas=small.census["h_personas"] - 1)
    sc = simulate(
        model,
        small.census,
        [{"feature": "household_size", "shift": -1}],
        territory="municipio",
    )
    direct = _direct(model, small.census, after)
    np.testing.assert_allclose(
        sc.table.set_index("territory")["change"], direct, rtol=1e-10
    )
    # the national SE by a numerical gradient of the national change
    nat = sc.national.iloc[0]
    coded0 = encode(
        model.spec_,
        small.census,
        source="census",
        territory="municipio",
        indicators=small.indicators,
    )
    coded1 = encode(
        model.spec_,
        after,
        source="census",
        territory="municipio",
        indicators=small.indicators,
    )
    X0, X1 = design_matrix(coded0), design_matrix(coded1)

    def total(beta: np.ndarray) -> float:
        return float((expit(X1 @ beta) - expit(X0 @ beta)).sum())

    eps = 1e-6
    grad = np.array(
        [
            (total(model.params_ + eps * e) - total(model.params_ - eps * e))
            / (2 * eps)
            for e in np.eye(len(model.params_))
        ]
    )
    assert nat["change_se"] == pytest.approx(
        np.sqrt(grad @ model.cov_ @ grad), rel=1e-5
    )


def test_share_change_is_the_expected_mixture(
    small: clrisk.Country, model: clrisk.RiskModel
) -> None:
    census = small.census
    sc = simulate(
        model,
        census,
        [Change("head_social_security", set="yes", share=0.9)],
        territory="municipio",
    )
    everyone = _direct(model, census, census.assign(j_segsoc=1))
    covered = (census["j_segsoc"] == 1).groupby(census["municipio"]).mean()
    q = ((0.9 - covered) / (1 - covered)).clip(0, 1)
    np.testing.assert_allclose(
        sc.table.set_index("territory")["change"], q * everyone, rtol=1e-10, atol=1e-12
    )


def test_share_change_same_in_pieces_and_from_a_file(
    small: clrisk.Country, model: clrisk.RiskModel, tmp_path: Path
) -> None:
    """A scenario sums each territory over the whole pass: pieces of any size,
    and a Parquet file read in batches, give the frame's result."""
    change = [Change("head_social_security", set="yes", share=0.9)]
    kw: dict[str, Any] = {"territory": "municipio"}
    whole = simulate(model, small.census, change, **kw).table
    path = tmp_path / "census.parquet"
    small.census.to_parquet(path, row_group_size=1000)
    for frame, chunk in ((small.census, 777), (small.census, 61), (path, 1500)):
        got = simulate(model, frame, change, chunk_size=chunk, **kw).table
        assert got["territory"].tolist() == whole["territory"].tolist()
        num = whole.select_dtypes("number").columns
        np.testing.assert_allclose(got[num], whole[num], rtol=1e-10, atol=1e-10)


def test_school_for_all_agrees_with_the_truth() -> None:
    """Issue 7's bar, on the default demo country (seed 2024): within 10%
    nationally; the largest territorial effects in the same order."""
    c = clrisk.make_country(random_state=2024)
    model = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    sc = simulate(
        model, c.census, [Change("attends_school", set="yes")], territory="municipio"
    )
    coded = encode(
        c.spec,
        c.census,
        source="census",
        territory="municipio",
        indicators=c.indicators,
    )
    X = design_matrix(coded)
    X_after = X.copy()
    X_after[:, 1 + c.spec.columns.index("attends_school")] = 1.0
    beta = c.truth.coefficients.reindex(["intercept", *c.spec.columns]).to_numpy()
    p = c.truth.child_probability
    true = (
        pd.Series(expit(logit(p) + (X_after - X) @ beta) - p)
        .groupby(np.asarray(coded.territories)[coded.territory])
        .sum()
    )
    est = sc.table.set_index("territory")["change"]
    assert (est < 0).all() and (true < 0).all()
    assert abs(est.sum() / true.sum() - 1) < 0.10
    assert spearmanr(est, true.loc[est.index]).statistic > 0.95
    assert len(set(est.nsmallest(10).index) & set(true.nsmallest(10).index)) >= 8


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"feature": "nope", "set": "yes"}, "no such feature"),
        ({"feature": "attends_school", "set": "maybe"}, "one of its levels"),
        ({"feature": "household_size", "set": "big"}, "must be a number"),
        ({"feature": "attends_school"}, "exactly one of"),
        ({"feature": "attends_school", "set": "yes", "share": 1.5}, r"\[0, 1\]"),
        (
            {"feature": "attends_school", "set": "yes", "where": {"rural": "x"}},
            "level of a binary",
        ),
    ],
)
def test_bad_changes(
    small: clrisk.Country, model: clrisk.RiskModel, change: dict, match: str
) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidParameterError, match=match):
        simulate(model, small.census, [change], territory="municipio")


# ------------------------------------------- regressions of a review (2026-12-02)
def test_changes_apply_one_after_the_other(
    small: clrisk.Country, model: clrisk.RiskModel
) -> None:
    """After "every child attends school", a transfer to children who attend
    reaches every child (was: its where= read the frame as it was, so the
    order of the changes did not matter)."""
    census = small.census
    school = Change("attends_school", set="yes")
    transfer = Change("cash_transfer", set="yes", where={"attends_school": "yes"})
    both = simulate(model, census, [school, transfer], territory="municipio")
    after = census.assign(p_asiste=1, h_transf=1)
    direct = _direct(model, census, after)
    got = both.table.set_index("territory")["change"]
    np.testing.assert_allclose(got.loc[direct.index], direct, rtol=1e-10, atol=1e-9)
    # the other order: the transfer reaches only those who attended already
    other = simulate(model, census, [transfer, school], territory="municipio")
    first = census.assign(
        h_transf=np.where(census["p_asiste"] == 1, 1, census["h_transf"])
    )
    direct2 = _direct(model, census, first.assign(p_asiste=1))
    got2 = other.table.set_index("territory")["change"]
    np.testing.assert_allclose(got2.loc[direct2.index], direct2, rtol=1e-10, atol=1e-9)
    assert other.national["change"].iloc[0] > both.national["change"].iloc[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ([{"feature": "cash_transfer", "value": "yes"}], "takes the keys"),
        ([{"set": "yes"}], "'feature' required"),
        ([Change("cash_transfer", set="yes", territories="05001")], r"\['05001'\]"),
        ([Change("cash_transfer", set="yes", where="rural")], "where= takes a dict"),
        ([Change("household_size", set=[1])], "must be a number"),
        ([Change("household_size", set=True)], "must be a number"),
        (["cash_transfer"], "a Change or a dict"),
        ("cash_transfer", "a Change, a dict or a list"),
    ],
)
def test_bad_changes_get_clear_errors(
    small: clrisk.Country, model: clrisk.RiskModel, changes: Any, message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        simulate(model, small.census, changes, territory="municipio")


def test_a_single_change_may_come_alone(
    small: clrisk.Country, model: clrisk.RiskModel
) -> None:
    one = Change("cash_transfer", set="yes")
    a = simulate(model, small.census, one, territory="municipio")
    b = simulate(model, small.census, [one], territory="municipio")
    pd.testing.assert_frame_equal(a.table, b.table)
    c = simulate(model, small.census, {"feature": "cash_transfer", "set": "yes"},
                 territory="municipio")  # fmt: skip
    pd.testing.assert_frame_equal(a.table, c.table)
