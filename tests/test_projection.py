"""clrisk.predict: truth recovery, exactness, roll-ups, factors and coverage."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit
from scipy.stats import spearmanr

import clrisk
from clrisk.exceptions import (
    CoverageWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)


@pytest.fixture(scope="module")
def small() -> clrisk.Country:
    return clrisk.make_country(
        random_state=5, n_territories=40, n_regions=4, children_per_territory=150,
        survey_children=4000,
    )  # fmt: skip


@pytest.fixture(scope="module")
def small_model(small: clrisk.Country) -> clrisk.RiskModel:
    return clrisk.RiskModel(small.spec).fit(small.survey, **small.fit_kwargs)


@pytest.fixture(scope="module")
def small_risk(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> clrisk.TerritoryRisk:
    return clrisk.predict(small_model, small.census, **small.predict_kwargs, by="sex")


# --------------------------------------------------------------------- truth
def test_default_country_recovers_the_truth() -> None:
    """Issue 3's bar: Spearman >= 0.9 and national count within 5% of the truth."""
    c = clrisk.make_country(random_state=2024)
    model = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    risk = clrisk.predict(model, c.census, **c.predict_kwargs)
    merged = risk.table.merge(c.truth.territories, on="territory")
    assert len(merged) == len(c.truth.territories) == 300
    rho = spearmanr(merged["risk"], merged["true_risk"]).statistic
    assert rho >= 0.9, rho
    total = risk.national()["expected_count"].iloc[0]
    assert abs(total / c.truth.territories["true_count"].sum() - 1) < 0.05


def test_risk_equals_direct_mean_of_probabilities(
    small: clrisk.Country,
    small_model: clrisk.RiskModel,
    small_risk: clrisk.TerritoryRisk,
) -> None:
    p = small_model.predict_proba(small.census)[:, 1]
    direct = (
        pd.Series(p)
        .groupby(small.census["municipio"].to_numpy())
        .agg(["mean", "sum", "size"])
    )
    table = small_risk.table.set_index("territory").loc[direct.index]
    np.testing.assert_allclose(table["risk"], 100 * direct["mean"], rtol=1e-12)
    np.testing.assert_allclose(table["expected_count"], direct["sum"], rtol=1e-12)
    np.testing.assert_array_equal(table["n_children"], direct["size"])


def test_delta_method_se_matches_numerical_gradient(
    small: clrisk.Country,
    small_model: clrisk.RiskModel,
    small_risk: clrisk.TerritoryRisk,
) -> None:
    from clrisk.features import design_matrix, encode

    coded = encode(small.spec, small.census, source="census", territory="municipio",
                   indicators=small_model.indicator_table())  # fmt: skip
    X = design_matrix(coded)
    terr = small.census["municipio"].to_numpy()
    target = small_risk.table["territory"].iloc[3]
    rows = terr == target
    beta = small_model.params_
    grad = np.array(
        [
            (expit(X[rows] @ (beta + e)).mean() - expit(X[rows] @ (beta - e)).mean())
            / 2e-6
            for e in np.eye(len(beta)) * 1e-6
        ]
    )
    se = 100 * np.sqrt(grad @ small_model.cov_ @ grad)
    got = small_risk.table.set_index("territory").loc[target, "risk_se"]
    assert got == pytest.approx(se, rel=1e-5)


# ----------------------------------------------------------------- exactness
def _assert_same(a: clrisk.TerritoryRisk, b: clrisk.TerritoryRisk) -> None:
    num = a.table.select_dtypes("number").columns
    np.testing.assert_allclose(a.table[num], b.table[num], rtol=1e-12, atol=1e-12)
    assert a.table["territory"].tolist() == b.table["territory"].tolist()
    assert a.table["level"].tolist() == b.table["level"].tolist()
    np.testing.assert_allclose(a.stats.sums, b.stats.sums, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(a.factors.gaps, b.factors.gaps, rtol=1e-10, atol=1e-12)
    assert a.factors.counterfactual is not None and b.factors.counterfactual is not None
    np.testing.assert_allclose(a.factors.counterfactual, b.factors.counterfactual,
                               rtol=1e-12, atol=1e-12)  # fmt: skip


@settings(max_examples=30, deadline=None)
@given(
    chunk=st.integers(200, 5000),
    seed=st.integers(0, 2**32 - 1),
    n_pieces=st.integers(1, 5),
)
def test_chunking_order_and_pieces_do_not_change_results(
    small: clrisk.Country,
    small_model: clrisk.RiskModel,
    small_risk: clrisk.TerritoryRisk,
    chunk: int,
    seed: int,
    n_pieces: int,
) -> None:
    rng = np.random.default_rng(seed)
    census = small.census.iloc[rng.permutation(len(small.census))]
    cuts = np.sort(rng.integers(0, len(census), n_pieces - 1))
    pieces = [
        census.iloc[a:b]
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(census)], strict=True)
    ]
    other = clrisk.predict(
        small_model, pieces, **small.predict_kwargs, by="sex", chunk_size=chunk
    )
    _assert_same(small_risk, other)


@given(chunk=st.integers(1, 7))
def test_tiny_chunks(
    small: clrisk.Country, small_model: clrisk.RiskModel, chunk: int
) -> None:
    part = small.census.iloc[:150]
    # 150 rows cover only a few territories: the coverage warning is expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoverageWarning)
        whole = clrisk.predict(small_model, part, **small.predict_kwargs, by="sex")
        other = clrisk.predict(
            small_model, part, **small.predict_kwargs, by="sex", chunk_size=chunk
        )
    _assert_same(whole, other)


def test_generator_of_pieces_without_counterfactual(
    small: clrisk.Country,
    small_model: clrisk.RiskModel,
    small_risk: clrisk.TerritoryRisk,
) -> None:
    gen = (small.census.iloc[i : i + 1000] for i in range(0, len(small.census), 1000))
    risk = clrisk.predict(small_model, gen, **small.predict_kwargs, by="sex")
    assert risk.factors.counterfactual is None
    np.testing.assert_allclose(risk.table["risk"], small_risk.table["risk"], rtol=1e-12)
    gen = (small.census.iloc[i : i + 1000] for i in range(0, len(small.census), 1000))
    with pytest.raises(InvalidParameterError, match="second pass"):
        clrisk.predict(small_model, gen, **small.predict_kwargs, counterfactual=True)


# ------------------------------------------------------------------ roll-ups
def test_rollups_and_breakdowns_add_up(small_risk: clrisk.TerritoryRisk) -> None:
    t = small_risk.table
    nat = small_risk.national().iloc[0]
    assert t["expected_count"].sum() == pytest.approx(nat["expected_count"], rel=1e-12)
    assert t["n_children"].sum() == nat["n_children"]
    reg = small_risk.rollup().set_index("region")
    by_region = t.groupby("region")[["expected_count", "n_children"]].sum()
    np.testing.assert_allclose(
        reg.loc[by_region.index, "expected_count"],
        by_region["expected_count"],
        rtol=1e-12,
    )
    assert reg["expected_count"].sum() == pytest.approx(
        nat["expected_count"], rel=1e-12
    )
    cells = small_risk.breakdown("territory")
    summed = cells.groupby("territory")["expected_count"].sum()
    np.testing.assert_allclose(
        summed.loc[t["territory"]], t["expected_count"], rtol=1e-12
    )
    sexes = small_risk.breakdown("national")
    assert set(sexes["sex"]) == {"male", "female"}
    assert sexes["expected_count"].sum() == pytest.approx(
        nat["expected_count"], rel=1e-12
    )
    regsex = small_risk.breakdown("region")
    assert regsex["n_children"].sum() == nat["n_children"]
    # the interval is around the estimate and inside (0, 100)
    assert ((t["risk_low"] < t["risk"]) & (t["risk"] < t["risk_high"])).all()
    assert nat["risk_high"] - nat["risk_low"] < (t["risk_high"] - t["risk_low"]).max()


def test_weighted_frame(small: clrisk.Country, small_model: clrisk.RiskModel) -> None:
    """Frame weights (an intercensal sample): duplicating rows = weight 2."""
    census = small.census.assign(
        w=np.where(np.arange(len(small.census)) % 2 == 0, 2.0, 1.0)
    )
    weighted = clrisk.predict(small_model, census, **small.predict_kwargs, weight="w")
    doubled = pd.concat([small.census, small.census.iloc[::2]], ignore_index=True)
    plain = clrisk.predict(small_model, doubled, **small.predict_kwargs)
    cols = ["weighted_children", "expected_count", "risk", "risk_low", "risk_high"]
    np.testing.assert_allclose(weighted.table[cols], plain.table[cols], rtol=1e-10)


# ------------------------------------------------------------------- factors
def test_gaps_sum_to_mean_linear_predictor_gap(
    small: clrisk.Country,
    small_model: clrisk.RiskModel,
    small_risk: clrisk.TerritoryRisk,
) -> None:
    f = small_risk.factors
    eta = small_model.decision_function(small.census)
    direct = pd.Series(eta).groupby(small.census["municipio"].to_numpy()).mean()
    np.testing.assert_allclose(
        f.mean_eta.loc[direct.index], direct, rtol=1e-10, atol=1e-10
    )
    assert f.national_eta == pytest.approx(eta.mean(), abs=1e-10)
    resid = f.gaps.sum(axis=1) - (f.mean_eta - f.national_eta)
    assert np.abs(resid).max() < 1e-10
    np.testing.assert_allclose(f.shares.sum(axis=1), 100.0)
    np.testing.assert_allclose(
        f.by_policy_area.sum(axis=1), f.gaps.sum(axis=1), atol=1e-12
    )
    # each area's share: its factors' |d_tj| over all factors' (methodology §6)
    areas = f.policy_area_shares
    assert list(areas.columns) == list(f.by_policy_area.columns)
    np.testing.assert_allclose(areas.sum(axis=1), 100.0)
    for area in areas.columns:
        cols = [j for j, a in f.policy_areas.items() if a == area]
        direct = 100 * f.gaps[cols].abs().sum(axis=1) / f.gaps.abs().sum(axis=1)
        np.testing.assert_allclose(areas[area], direct, rtol=1e-12)


def test_policy_area_shares_keep_features_without_an_area(
    small: clrisk.Country,
) -> None:
    """A feature without a policy area counts under "unassigned" in the shares
    as in by_policy_area (review of 2026-12-02: it was lost)."""
    import dataclasses

    feats = [
        dataclasses.replace(f, policy_area="") if f.name == "household_size" else f
        for f in small.spec.features
    ]
    spec = dataclasses.replace(small.spec, features=tuple(feats))
    model = clrisk.RiskModel(spec).fit(small.survey, **small.fit_kwargs)
    f = clrisk.predict(model, small.census, **small.predict_kwargs).factors
    areas = f.policy_area_shares
    assert "unassigned" in areas.columns
    np.testing.assert_allclose(areas.sum(axis=1), 100.0)
    np.testing.assert_allclose(areas["unassigned"], f.shares["household_size"])


def test_gaps_do_not_depend_on_the_reference_level(
    small: clrisk.Country, small_risk: clrisk.TerritoryRisk
) -> None:
    feats = [
        clrisk.Feature(**{**f.__dict__, "reference": f.levels[-1]})
        if f.kind != "numeric"
        else f
        for f in small.spec.features
    ]
    spec2 = clrisk.FeatureSpec(feats, territory=small.spec.territory)
    model2 = clrisk.RiskModel(spec2).fit(small.survey, **small.fit_kwargs)
    risk2 = clrisk.predict(model2, small.census, **small.predict_kwargs)
    np.testing.assert_allclose(risk2.factors.gaps, small_risk.factors.gaps, atol=1e-7)
    assert not np.allclose(risk2.factors.composition, small_risk.factors.composition)


def test_counterfactual_matches_direct_computation(
    small: clrisk.Country,
    small_model: clrisk.RiskModel,
    small_risk: clrisk.TerritoryRisk,
) -> None:
    f = small_risk.factors
    assert f.counterfactual is not None
    eta = small_model.decision_function(small.census)
    terr = small.census["municipio"].to_numpy()
    t = f.gaps.index[7]
    for feature in ("attends_school", "agri_share"):
        rows = terr == t
        direct = 100 * expit(eta[rows] - f.gaps.loc[t, feature]).mean()
        assert f.counterfactual.loc[t, feature] == pytest.approx(direct, rel=1e-12)


def test_lead_policy_area_is_the_largest_positive_area(
    small_risk: clrisk.TerritoryRisk,
) -> None:
    f = small_risk.factors
    for t, row in f.by_policy_area.iterrows():
        lead = small_risk.table.set_index("territory").loc[t, "lead_policy_area"]
        if row.max() > 0:
            assert lead == row.idxmax()
        else:
            assert pd.isna(lead)
    long = f.long(small_risk.table.set_index("territory")["risk"])
    assert set(long["direction"]) <= {"risk", "protective"}
    assert len(long) == f.gaps.size
    top = f.top(f.gaps.index[0])
    assert (top.loc[top["direction"] == "risk", "gap"] > 0).all()


# -------------------------------------------------------------------- levels
def test_levels_and_reclassification(small_risk: clrisk.TerritoryRisk) -> None:
    assert set(small_risk.table["level"]) <= {"low", "medium", "high"}
    hi = small_risk.table.loc[small_risk.table["level"] == "high", "risk"].min()
    lo = small_risk.table.loc[small_risk.table["level"] == "low", "risk"].max()
    assert hi > lo
    per_region = small_risk.classify("quantile", scope="region")
    assert per_region.levels.scope == "region"
    assert set(per_region.levels.breaks["group"]) == set(small_risk.table["region"])
    fixed = small_risk.classify("fixed", thresholds=[5.0, 10.0])
    expect = np.where(
        fixed.table["risk"] <= 5,
        "low",
        np.where(fixed.table["risk"] <= 10, "medium", "high"),
    )
    assert fixed.table["level"].tolist() == expect.tolist()


# ------------------------------------------------------------ coverage/input
def test_territory_without_rows_is_reported(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    gone = small.census["municipio"].iloc[0]
    census = small.census[small.census["municipio"] != gone]
    with pytest.warns(CoverageWarning, match="1 territories of the indicator table"):
        risk = clrisk.predict(small_model, census, **small.predict_kwargs)
    row = risk.table.set_index("territory").loc[gone]
    assert (
        row["n_children"] == 0 and row["expected_count"] == 0 and np.isnan(row["risk"])
    )
    assert row["level"] == "no data"
    assert len(risk.table) == len(small.indicators)
    assert any("no rows in the frame" in n for n in risk.quality.notes)
    plan = clrisk.prioritise(risk, top=5)
    assert gone not in set(plan.selection["territory"])


def test_unknown_territory_is_an_error_or_reported(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    census = small.census.copy()
    census.loc[census.index[:3], "municipio"] = "99999"
    with pytest.raises(
        DataValidationError,
        match=r"'municipio'.*'99999' \(3 rows, first row 0\).*leading zeros",
    ):
        clrisk.predict(small_model, census, **small.predict_kwargs)
    risk = clrisk.predict(
        small_model, census, **small.predict_kwargs, on_invalid="drop"
    )
    q = risk.quality
    assert (
        q.rows_read == len(census) and q.rows_used == len(census) - 3 and q.reconciles
    )
    assert risk.table["n_children"].sum() == len(census) - 3


def test_numeric_territory_codes_lose_leading_zeros(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    census = small.census.assign(municipio=small.census["municipio"].astype(int))
    with pytest.raises(DataValidationError, match="leading zeros"):
        clrisk.predict(small_model, census, **small.predict_kwargs)


def test_region_conflict_and_bad_parameters(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    census = small.census.copy()
    census.loc[census.index[0], "departamento"] = "zz"
    with pytest.raises(DataValidationError, match="more than one region"):
        clrisk.predict(small_model, census, **small.predict_kwargs)
    with pytest.raises(InvalidParameterError, match="chunk_size"):
        clrisk.predict(small_model, small.census, **small.predict_kwargs, chunk_size=0)
    with pytest.raises(clrisk.SchemaError, match="Missing: 'nope'"):
        clrisk.predict(small_model, small.census, **small.predict_kwargs, by="nope")
    with pytest.raises(InvalidParameterError, match="fitted"):
        clrisk.predict(clrisk.RiskModel(small.spec), small.census)


def test_prioritise_on_territory_risk(small_risk: clrisk.TerritoryRisk) -> None:
    plan = clrisk.prioritise(small_risk, coverage=0.5)
    assert plan.covered_share >= 0.5
    ranked = small_risk.table.sort_values(
        ["expected_count", "territory"], ascending=[False, True]
    )
    assert (
        plan.ranking["territory"].tolist()[: len(plan.selection)]
        == ranked["territory"].tolist()[: len(plan.selection)]
    )


def test_no_warnings_on_clean_run(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clrisk.predict(small_model, small.census, **small.predict_kwargs)


# ------------------------------------------------ regressions from the review
def test_empty_territory_with_region_scope_and_quotas(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    gone = small.census["municipio"].iloc[0]
    census = small.census[small.census["municipio"] != gone]
    with pytest.warns(CoverageWarning, match="no rows"):
        risk = clrisk.predict(
            small_model, census, **small.predict_kwargs, level_scope="region"
        )
    row = risk.table.set_index("territory").loc[gone]
    assert row["level"] == "no data" and row["n_children"] == 0
    assert pd.isna(row["region"])
    assert (risk.table["level"] != "no data").sum() == len(risk.table) - 1
    plan = clrisk.prioritise(risk, top=5, max_per_region=2)
    assert gone not in set(plan.selection["territory"])
    assert plan.selection["region"].value_counts().max() <= 2


def test_frame_codes_missing_from_the_indicator_table_are_reported(
    small: clrisk.Country,
) -> None:
    spec = clrisk.FeatureSpec(
        [f for f in small.spec.features if f.dimension != "territory"],
        territory=small.spec.territory,
    )
    model = clrisk.RiskModel(spec).fit(small.survey, **small.fit_kwargs)
    census = small.census.copy()
    census.loc[census.index[:5], "municipio"] = "99999"
    with pytest.warns(CoverageWarning, match=r"not in the indicator table.*99999"):
        risk = clrisk.predict(
            model, census, **small.predict_kwargs, indicators=small.indicators
        )
    assert "99999" in set(risk.table["territory"])
    assert any("99999" in note for note in risk.quality.notes)


def test_dropped_codes_are_named_in_the_quality_record(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    census = small.census.copy()
    census.loc[census.index[:5], "municipio"] = "99999"
    risk = clrisk.predict(
        small_model, census, **small.predict_kwargs, on_invalid="drop"
    )
    assert risk.quality.reconciles and risk.quality.rows_rejected == 5
    assert any("'99999' (5 rows, first row 0)" in note for note in risk.quality.notes)


def test_every_territory_code_missing_is_a_clear_error(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    census = small.census.assign(municipio=np.nan)
    with pytest.raises(DataValidationError, match="no row of the frame"):
        clrisk.predict(small_model, census, **small.predict_kwargs, on_invalid="drop")


def test_duplicate_columns_are_a_schema_error(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    census = pd.concat([small.census, small.census[["p_sexo"]]], axis=1)
    with pytest.raises(SchemaError, match=r"several columns named \['p_sexo'\]"):
        clrisk.predict(small_model, census, **small.predict_kwargs)


def test_territory_with_zero_weight_is_reported(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    census = small.census.assign(w=1.0)
    first = census["municipio"].iloc[0]
    census.loc[census["municipio"] == first, "w"] = 0.0
    with pytest.warns(CoverageWarning, match="total weight of 0"):
        risk = clrisk.predict(small_model, census, **small.predict_kwargs, weight="w")
    assert pd.isna(risk.table.set_index("territory").loc[first, "risk"])


def test_breakdown_by_an_identifier_is_refused(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    pieces = [small.census.assign(child_id=np.arange(k * 8000, k * 8000 + len(
        small.census)).astype(str)) for k in range(2)]  # fmt: skip
    census = pd.concat(pieces, ignore_index=True)
    with pytest.raises(InvalidParameterError, match="not for identifiers"):
        clrisk.predict(small_model, census, **small.predict_kwargs, by="child_id")


def test_gender_gap_is_girls_minus_boys_with_intervals(
    small_risk: clrisk.TerritoryRisk,
) -> None:
    table = small_risk.table.set_index("territory")
    by_sex = small_risk.breakdown("territory").pivot(
        index="territory", columns="sex", values="risk"
    )
    np.testing.assert_allclose(
        table["gender_gap"], by_sex["female"] - by_sex["male"], rtol=1e-12
    )
    gap = small_risk.gap("sex", "female", "male").set_index("territory")
    assert ((gap["gap_low"] <= gap["gap"]) & (gap["gap"] <= gap["gap_high"])).all()
    nat = small_risk.gap("sex", "female", "male", scope="national").iloc[0]
    by = small_risk.breakdown("national").set_index("sex")["risk"]
    assert nat["gap"] == pytest.approx(by["female"] - by["male"], rel=1e-12)
    with pytest.raises(InvalidParameterError, match="not a breakdown"):
        small_risk.gap("rural", "yes", "no")


def test_a_frame_of_boys_alone_gets_a_missing_gender_gap(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    """by="sex" on a frame without girls (review of 2026-12-02: it raised)."""
    boys = small.census[small.census["p_sexo"] == "H"]
    risk = clrisk.predict(small_model, boys, **small.predict_kwargs, by="sex")
    assert risk.table["gender_gap"].isna().all()
    assert risk.table["risk"].notna().all()
    gap = risk.gap("sex", "female", "male", scope="national").iloc[0]
    assert np.isnan(gap["gap"]) and gap["risk_male"] > 0
    with pytest.raises(InvalidParameterError, match="not groups of 'sex'"):
        risk.gap("sex", "girls", "male")


def test_gender_gap_delta_method_by_numerical_gradient(
    small: clrisk.Country,
    small_model: clrisk.RiskModel,
    small_risk: clrisk.TerritoryRisk,
) -> None:
    from clrisk.features import design_matrix, encode

    coded = encode(
        small_model.spec_,
        small.census,
        source="census",
        territory="municipio",
        indicators=small.indicators,
    )
    X = design_matrix(coded)
    girl = small.census["p_sexo"].to_numpy() == "M"
    nat = small_risk.gap("sex", "female", "male", scope="national").iloc[0]

    def gap(beta: np.ndarray) -> float:
        p = expit(X @ beta)
        return 100 * (p[girl].mean() - p[~girl].mean())

    eps = 1e-6
    grad = np.array(
        [
            (gap(small_model.params_ + eps * e) - gap(small_model.params_ - eps * e))
            / (2 * eps)
            for e in np.eye(len(small_model.params_))
        ]
    )
    se = np.sqrt(grad @ small_model.cov_ @ grad)
    z = (nat["gap_high"] - nat["gap"]) / se
    assert z == pytest.approx(1.959964, rel=1e-4)


def test_unknown_codes_mapped_to_a_stated_level(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    """Issue 6's policy: error (default), drop, or map to a stated level."""
    census = small.census.copy()
    census["p_etnia"] = census["p_etnia"].astype(object)
    census.loc[census.index[:7], "p_etnia"] = "OTRA"  # a code the spec lacks
    with pytest.raises(DataValidationError, match="'OTRA' \\(7 rows, first row 0\\)"):
        clrisk.predict(small_model, census, **small.predict_kwargs)
    with pytest.warns(clrisk.ClriskWarning, match="rows of 'p_etnia'.*coded as 'none'"):
        risk = clrisk.predict(
            small_model,
            census,
            **small.predict_kwargs,
            unknown_as={"ethnicity": "none"},
            chunk_size=5,
        )
    assert risk.quality.rows_used == len(census) and risk.quality.reconciles
    assert risk.quality.recoded == {"unknown code in 'p_etnia' coded as 'none'": 7}
    mapped = census.assign(p_etnia=census["p_etnia"].replace("OTRA", "NIN"))
    direct = clrisk.predict(small_model, mapped, **small.predict_kwargs)
    np.testing.assert_allclose(risk.table["risk"], direct.table["risk"], rtol=1e-12)
    dropped = clrisk.predict(
        small_model, census, **small.predict_kwargs, on_invalid="drop"
    )
    assert dropped.quality.rows_used == len(census) - 7
    with pytest.raises(InvalidParameterError, match="unknown_as"):
        clrisk.predict(
            small_model,
            census,
            **small.predict_kwargs,
            unknown_as={"ethnicity": "martian"},
        )


def test_rows_outside_the_age_range_are_counted_not_lost(
    small: clrisk.Country, small_model: clrisk.RiskModel, tmp_path
) -> None:
    """A census of all persons: adults are counted as outside the range."""
    adults = small.census.head(30).assign(p_edad=40)
    babies = small.census.head(5).assign(p_edad=2)
    census = pd.concat([adults, small.census, babies], ignore_index=True)
    # without the filter, ages outside the code map are errors naming the rows
    with pytest.raises(
        DataValidationError, match=r"'p_edad'.*'40' \(30 rows, first row 0\)"
    ):
        clrisk.predict(small_model, census, **small.predict_kwargs)
    risk = clrisk.predict(
        small_model,
        census,
        **small.predict_kwargs,
        age="p_edad",
        age_range=(5, 17),
        chunk_size=1000,
    )
    q = risk.quality
    assert q.rows_read == len(census) and q.reconciles
    assert q.rejected == {"outside the age range 5-17 ('p_edad')": 35}
    np.testing.assert_allclose(risk.table["risk"], small_risk_table(small, small_model))
    # row numbers in messages stay those of the whole input after filtering
    bad = census.copy()
    bad["p_sexo"] = bad["p_sexo"].astype(object)
    bad.loc[40, "p_sexo"] = None  # row 40 of the input, 10th of the filtered rows
    with pytest.raises(DataValidationError, match="'row 40'"):
        clrisk.predict(
            small_model, bad, **small.predict_kwargs, age="p_edad", age_range=(5, 17)
        )
    path = tmp_path / "census.parquet"
    census.to_parquet(path)
    streamed = clrisk.predict(
        small_model,
        path,
        **small.predict_kwargs,
        age="p_edad",
        age_range=(5, 17),
        chunk_size=777,
    )
    assert streamed.quality.rejected == q.rejected


def small_risk_table(small: clrisk.Country, model: clrisk.RiskModel) -> np.ndarray:
    return (
        clrisk.predict(model, small.census, **small.predict_kwargs)
        .table["risk"]
        .to_numpy()
    )


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 300),
    n_keys=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_cells_with_equal_keys_are_summed_in_key_order(
    n: int, n_keys: int, seed: int
) -> None:
    """TerritoryStats.from_cells sums rows with equal keys, sorted by the key
    tuples, exactly as summing each group of rows in row order."""
    from clrisk.scoring import StatsLayout, TerritoryStats

    rng = np.random.default_rng(seed)
    layout = StatsLayout((2,), 1)
    pools = [["05001", "5001", "10", "9", "a"], ["f", "m"], ["x", "y", "missing"]]
    keys = pd.DataFrame(
        {f"k{i}": rng.choice(pools[i], n) for i in range(n_keys)}, dtype=object
    ).rename(columns={"k0": "territory"})
    sums = rng.normal(size=(n, layout.width))
    got = TerritoryStats.from_cells(keys, sums, layout)
    tuples = list(map(tuple, keys.to_numpy()))
    want_keys = sorted(set(tuples))
    want = np.array(
        [
            np.sum([sums[i] for i, t in enumerate(tuples) if t == k], axis=0)
            for k in want_keys
        ]
    ).reshape(len(want_keys), layout.width)
    assert list(map(tuple, got.keys.to_numpy())) == want_keys
    assert list(got.keys.columns) == list(keys.columns)
    np.testing.assert_allclose(got.sums, want, rtol=1e-13, atol=1e-13)


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 400), min_size=1, max_size=6),
    by=st.booleans(),
    seed=st.integers(0, 999),
)
def test_pass_totals_equal_combined_pieces(
    sizes: list[int], by: bool, seed: int
) -> None:
    """Pieces added to one pass (cells numbered for the whole pass, sums kept
    across pieces) give the statistics of combining per-piece statistics, with
    either kernel; a cap change mid-pass (more cells than fit) changes nothing."""
    from clrisk import kernel as compiled
    from clrisk.scoring import (
        PassTotals,
        Scorer,
        StatsLayout,
        TerritoryStats,
        accumulate_reference,
    )

    rng = np.random.default_rng(seed)
    layout = StatsLayout((3, 2, 4), 2)
    luts = tuple(np.r_[0.0, rng.normal(0, 0.5, L - 1)] for L in layout.level_sizes)
    scorer = Scorer(-1.0, luts, rng.normal(0, 0.3, 2), "logit")
    kernels = ["numpy", "compiled"] if compiled.available() else ["numpy"]
    passes = {k: PassTotals(scorer, layout, k) for k in kernels}
    if compiled.available():  # room for 3 cells only: cap 64, 16, 4, 1 in turn
        passes["compiled"]._acc = compiled.Accumulator(scorer, layout)
        small = compiled.ACC_BYTES
        compiled.ACC_BYTES = 8 * passes["compiled"]._acc.n_threads * 3 * 60
    parts = []
    try:
        for n in sizes:
            codes = np.stack([rng.integers(0, L, n) for L in layout.level_sizes], 1)
            codes = np.asfortranarray(codes.astype(np.int8))
            numerics = np.asfortranarray(rng.normal(size=(n, 2)))
            weight = rng.uniform(0.5, 2.0, n)
            terr = rng.choice(["05001", "05002", "11001", "76001", "9"], n)
            cols = {"territory": terr}
            if by:
                cols["sex"] = rng.choice(["f", "m"], n)
            frame = pd.DataFrame(cols, dtype=object)
            cell, uniq = pd.factorize(pd.MultiIndex.from_frame(frame))
            keys = pd.DataFrame(list(uniq), columns=list(cols), dtype=object)
            for totals in passes.values():
                totals.add(keys, cell.astype(np.int64), codes, numerics, weight)
            sums = accumulate_reference(
                scorer, codes, numerics, cell, len(keys), weight, layout
            )
            if n:
                parts.append(TerritoryStats(keys, sums, layout))
    finally:
        if compiled.available():
            compiled.ACC_BYTES = small
    if not parts:
        return
    want = TerritoryStats.combine(parts)
    for totals in passes.values():
        got = totals.stats()
        pd.testing.assert_frame_equal(got.keys, want.keys)
        np.testing.assert_allclose(got.sums, want.sums, rtol=1e-12, atol=1e-12)


def test_missing_keys_are_cells_of_their_own() -> None:
    """A missing key (NaN/None, e.g. from a table sent through an engine) is
    its own cell, never merged into a neighbour; equal keys of one piece add
    up, with either kernel."""
    from clrisk import kernel as compiled
    from clrisk.scoring import PassTotals, Scorer, StatsLayout, TerritoryStats

    layout = StatsLayout((2,), 0)
    keys = pd.DataFrame(
        {"territory": ["a", "a", "b", "b"], "sex": ["f", "m", None, "m"]}, dtype=object
    )
    sums = np.arange(4 * layout.width, dtype=float).reshape(4, -1) + 1
    got = TerritoryStats.from_cells(keys, sums, layout)
    assert len(got.keys) == 4
    assert got.keys.iloc[3].tolist()[0] == "b" and pd.isna(got.keys.iloc[3, 1])
    none = TerritoryStats.from_cells(
        pd.DataFrame({"territory": ["a", "b", "c"], "g": [None] * 3}, dtype=object),
        sums[:3],
        layout,
    )
    assert none.keys["territory"].tolist() == ["a", "b", "c"]

    scorer = Scorer(-1.0, (np.array([0.0, 0.5]),), np.zeros(0), "logit")
    twice = pd.DataFrame({"territory": ["a", "a"], "sex": ["m", "m"]}, dtype=object)
    codes = np.zeros((3, 1), dtype=np.int16, order="F")
    numerics = np.zeros((3, 0), order="F")
    kernels = ["numpy", "compiled"] if compiled.available() else ["numpy"]
    for k in kernels:
        totals = PassTotals(scorer, layout, k)
        totals.add(twice, np.array([0, 1, 1]), codes, numerics, None)
        assert totals.stats().sums[0, 0] == 3  # all three rows counted


def test_an_error_mid_pass_stops_the_file_reader(tmp_path: Path) -> None:
    """A pass that stops on an error (here: the progress callback) leaves no
    reader thread behind, even while the exception is kept."""
    import threading

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    country = clrisk.make_country(random_state=2, n_territories=20, n_regions=4)
    model = clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)
    path = tmp_path / "census.parquet"
    pq.write_table(
        pa.Table.from_pandas(country.census, preserve_index=False),
        path,
        row_group_size=200,
    )

    def stop(done: int) -> None:
        raise KeyboardInterrupt("stopped by the user")

    kept = []
    try:
        clrisk.predict(
            model, path, **country.predict_kwargs, chunk_size=200, progress=stop
        )
    except KeyboardInterrupt as exc:
        kept.append(exc)  # the traceback (and the pass's frames) stay alive
    assert kept
    assert not any(t.name == "clrisk-read-ahead" for t in threading.enumerate())


def test_factor_tables_of_territories_without_children(
    small: clrisk.Country, small_model: clrisk.RiskModel
) -> None:
    """A territory whose children all weigh 0 has no gaps: its shares and
    directions are missing, not 0 and "protective"; top() of a territory with no
    rows says so (was: a bare KeyError). Review of 2026-12-02."""
    census = small.census.assign(w=1.0)
    codes = sorted(census["municipio"].unique())
    census.loc[census["municipio"] == codes[0], "w"] = 0.0
    census = census[census["municipio"] != codes[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clrisk.exceptions.CoverageWarning)
        risk = clrisk.predict(small_model, census, weight="w", **small.predict_kwargs)
    f = risk.factors
    assert f.shares.loc[codes[0]].isna().all()
    long = f.long()
    zero = long[long["territory"] == codes[0]]
    assert zero["direction"].isna().all() and zero["share"].isna().all()
    other = long[long["territory"] == codes[2]]
    assert set(other["direction"]) <= {"risk", "protective"}
    assert f.shares.loc[codes[2]].sum() == pytest.approx(100)
    with pytest.raises(InvalidParameterError, match="no scored children"):
        f.top(codes[0])
    with pytest.raises(InvalidParameterError, match="no scored children"):
        f.top(codes[1])
    assert len(f.top(codes[2])) > 0
