"""Reliability flags, suppression of small territories, complementary suppression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import clrisk
from clrisk.exceptions import DataValidationError, InvalidParameterError, SchemaError
from clrisk.reliability import (
    DEFAULT_MIN_CHILDREN,
    RELIABILITY_LABELS,
    SuppressionRecord,
    assess,
    suppress,
)

ADDITIVE = ("n_children", "weighted_children", "expected_count")


@pytest.fixture(scope="module")
def risk() -> clrisk.TerritoryRisk:
    c = clrisk.make_country(
        random_state=0,
        n_territories=40,
        n_regions=4,
        children_per_territory=150,
        survey_children=3000,
    )
    model = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    return clrisk.predict(model, c.census, **c.predict_kwargs)


def _table(
    n: list[int], region: list[str] | None = None, cv: list[float] | None = None
) -> pd.DataFrame:
    """A territory table as clrisk.predict makes it (risk 10%)."""
    k = len(n)
    nn = np.asarray(n)
    r = np.where(nn > 0, 10.0, np.nan)
    se = r * (np.asarray(cv) / 100 if cv is not None else 0.1)
    out = pd.DataFrame(
        {
            "territory": [f"{i + 1:05d}" for i in range(k)],
            "n_children": nn.astype(np.int64),
            "weighted_children": 1.5 * nn,
            "expected_count": 0.15 * nn,
            "risk": r,
            "risk_se": se,
            "level": np.where(nn > 0, "low", "no data"),
        }
    )
    if region is not None:
        out.insert(1, "region", region)
    return out


# ----------------------------------------------------------------- assess
def test_assess_adds_cv_flags_and_suppression(risk: clrisk.TerritoryRisk) -> None:
    before = risk.table.copy()
    out = assess(risk)
    pd.testing.assert_frame_equal(risk.table, before)  # input not changed
    cols = list(out.columns)
    at = cols.index("risk_se")
    assert cols[at + 1 : at + 4] == ["risk_cv", "reliability", "suppressed"]
    cv = 100 * out["risk_se"] / out["risk"]
    np.testing.assert_allclose(out["risk_cv"], cv)
    expected = np.select(
        [cv < 15, cv <= 30], ["reliable", "use with caution"], "unreliable"
    )
    assert out["reliability"].tolist() == expected.tolist()
    assert (out["suppressed"] == (out["n_children"] < DEFAULT_MIN_CHILDREN)).all()
    pd.testing.assert_frame_equal(out[before.columns], before)
    # custom thresholds, as statistical offices draw them
    strict = assess(risk.table, cv_thresholds=(8, 12), min_children=100)
    assert set(strict["reliability"]) >= {"reliable", "use with caution", "unreliable"}
    assert (strict["suppressed"] == (strict["n_children"] < 100)).all()


def test_reliability_bands_and_boundaries() -> None:
    table = _table(
        [100, 100, 100, 100, 100, 100, 0], cv=[5, 14.999, 15, 30, 30.001, 80, 10]
    )
    table.loc[5, ["risk", "risk_se"]] = [0.0, 0.5]  # zero risk with an SE
    out = assess(table)
    assert out["reliability"].tolist() == [
        "reliable",
        "reliable",
        "use with caution",
        "use with caution",
        "unreliable",
        "unreliable",
        "no data",
    ]
    assert np.isinf(out.loc[5, "risk_cv"])
    assert set(out["reliability"]) <= set(RELIABILITY_LABELS)
    # territories without children are not suppressed: nothing to withhold
    assert not out.loc[6, "suppressed"]
    moved = assess(table, cv_thresholds=(20, 30))
    assert moved.loc[2, "reliability"] == "reliable"


def test_undefined_cv_is_not_assessed() -> None:
    table = _table([100, 100])
    table.loc[1, "risk_se"] = np.nan
    assert assess(table)["reliability"].tolist() == ["reliable", "not assessed"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cv_thresholds": (30, 15)}, "cv_thresholds"),
        ({"cv_thresholds": (0, 15)}, "cv_thresholds"),
        ({"cv_thresholds": 15}, "cv_thresholds"),
        ({"min_children": -1}, "min_children"),
        ({"min_children": 2.5}, "min_children"),
    ],
)
def test_assess_rejects_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        assess(_table([100]), **kwargs)


def test_assess_rejects_bad_tables() -> None:
    with pytest.raises(SchemaError, match="Missing: 'risk_se'"):
        assess(_table([100]).drop(columns="risk_se"))
    bad = _table([100, 60])
    bad["n_children"] = bad["n_children"].astype(float)
    bad.loc[1, "n_children"] = np.nan
    with pytest.raises(DataValidationError, match=r"n_children.*'00002'"):
        assess(bad)
    with pytest.raises(InvalidParameterError, match="TerritoryRisk or a DataFrame"):
        assess([1, 2])  # type: ignore[arg-type]


# --------------------------------------------------------------- suppress
def test_suppress_blanks_small_territories(risk: clrisk.TerritoryRisk) -> None:
    assessed = assess(risk, min_children=70)
    out, record = suppress(risk, min_children=70)
    sup = out["suppressed"].to_numpy()
    primary = assessed["suppressed"].to_numpy()
    assert (sup >= primary).all() and sup.sum() > primary.sum()
    codes = out["territory"].to_numpy()
    assert set(record.primary) == set(codes[primary])
    assert set(record.suppressed) == set(codes[sup])
    blanked = [c for c in out.columns if c not in ("territory", "region")]
    blanked = [c for c in blanked if c not in ("suppressed", "reliability")]
    blanked.remove("suppression_reason")
    assert list(record.columns_blanked) == blanked
    assert out.loc[sup, blanked].isna().all().all()
    assert (out.loc[sup, "reliability"] == "suppressed").all()
    assert out.loc[sup, "suppression_reason"].notna().all()
    assert out.loc[~sup, "suppression_reason"].isna().all()
    # identifiers stay; published rows are exactly the assessed ones
    pd.testing.assert_series_equal(out["territory"], assessed["territory"])
    pd.testing.assert_series_equal(out["region"], assessed["region"])
    pub = assessed.loc[~sup, ["territory", "risk", "risk_cv", "reliability"]]
    pd.testing.assert_frame_equal(out.loc[~sup, pub.columns], pub)
    assert (out.loc[~sup, "n_children"] == assessed.loc[~sup, "n_children"]).all()
    # the record is about codes, never values
    frame = record.to_frame()
    assert list(frame.columns) == ["territory", "kind", "reason"]
    assert set(frame["kind"]) == {"primary", "complementary"}
    assert "complementary" in record.summary()
    _assert_no_disclosure(out, assess(risk, min_children=70), record, "region")


def test_complementary_is_the_next_smallest_of_the_region() -> None:
    table = _table(
        [30, 400, 90, 0, 120, 90, 200, 40, 45],
        region=["A", "A", "A", "A", "A", "A", "B", "B", "B"],
    )
    out, record = suppress(table)
    # A: 00001 (30) is alone; the smallest other with children is 00003 (90, ties
    # broken by code over 00006); 00004 has no children and protects nothing.
    # B: 00008 and 00009 are both small: no complement needed.
    assert record.primary == ("00001", "00008", "00009")
    assert record.complementary == ("00003",)
    assert record.protects == {"00003": "00001"}
    assert record.withheld_totals == ()
    assert record.reasons["00003"] == "complementary: protects 00001 from subtraction"
    assert out.loc[out["territory"] == "00004", "suppression_reason"].isna().all()


def test_a_territory_whose_children_all_weigh_0_protects_nothing() -> None:
    """Its rows add nothing to the weighted totals, so withholding it would not
    stop the region total minus the published territories giving back the
    small one (review of 2026-12-02)."""
    table = _table([30, 400, 90, 60], region=["A"] * 4)
    zero = table["territory"] == "00004"  # the smallest after 00001
    table.loc[zero, ["weighted_children", "expected_count"]] = 0.0
    table.loc[zero, ["risk", "risk_se"]] = np.nan
    out, record = suppress(table)
    assert record.complementary == ("00003",)
    assert record.protects == {"00003": "00001"}
    published = out[~out["suppressed"]]
    assert (
        published["weighted_children"].sum()
        < table["weighted_children"].sum()
        - (table.loc[table["territory"] == "00001", "weighted_children"].iloc[0])
    )


def test_national_total_is_protected_without_regions() -> None:
    table = _table([30, 400, 90, 60])
    _, record = suppress(table)
    assert record.region is None
    assert record.primary == ("00001",) and record.complementary == ("00004",)
    # region=None ignores a region column
    with_regions = _table([30, 400, 90, 60], region=["A", "A", "B", "B"])
    _, rec = suppress(with_regions, region=None)
    assert rec.complementary == ("00004",)
    with pytest.raises(SchemaError, match="'province'"):
        suppress(with_regions, region="province")


def test_a_region_with_one_territory_has_its_total_withheld() -> None:
    # region C has a single small territory: its total is that territory, so it
    # is withheld, and so is a second region (with a suppressed territory) so
    # that the national total does not give C back.
    table = _table([30, 500, 300, 80, 900, 600], region=["C", "A", "A", "A", "B", "B"])
    out, record = suppress(table)
    assert record.primary == ("00001",)
    assert record.withheld_totals == ("A", "C")
    assert record.complementary == ("00004",)
    assert record.protects == {"00004": "region C"}
    _assert_no_disclosure(out, assess(table), record, "region")


def test_suppress_unreliable_on_request() -> None:
    table = _table([100, 100, 100], region=["A", "A", "A"], cv=[10, 45, 12])
    out, record = suppress(table)
    assert not out["suppressed"].any()
    out, record = suppress(table, suppress_unreliable=True)
    assert record.primary == ("00002",)
    assert record.reasons["00002"] == "unreliable (CV above 30%)"
    assert len(record.complementary) == 1
    assert "or unreliable" in record.summary()


def test_integer_and_text_columns_become_blankable() -> None:
    table = _table([30, 60, 400])
    out, _ = suppress(table)
    assert str(out["n_children"].dtype) == "Int64"
    assert out.loc[0, "n_children"] is pd.NA
    assert pd.isna(out.loc[0, "level"])
    assert out.loc[2, "n_children"] == 400


def test_record_is_a_small_dataclass(risk: clrisk.TerritoryRisk) -> None:
    _, record = suppress(risk, min_children=0)
    assert isinstance(record, SuppressionRecord)
    assert record.suppressed == () and record.to_frame().empty
    assert record.summary().startswith("Suppressed 0 of 40 territories")


# ------------------------------------------------- disclosure by subtraction
def _recoverable(out: pd.DataFrame, record: SuppressionRecord, region: str | None):
    """Suppressed territories whose value the published figures determine.

    Unknowns: suppressed territories, withheld region totals and, when
    withheld, the national total. Equations: each region total is the sum of its
    territories, the national total the sum of the regions (or territories).
    A value is determined iff its unit vector lies in the row space of the
    equations restricted to the unknowns.
    """
    codes = out["territory"].tolist()
    regs = out[region].astype(str).tolist() if region else ["national"] * len(codes)
    names = sorted(set(regs))
    cells = [f"t:{c}" for c in codes] + [f"r:{r}" for r in names] + ["n"]
    col = {c: i for i, c in enumerate(cells)}
    rows = []
    if region:
        for r in names:
            eq = np.zeros(len(cells))
            eq[col[f"r:{r}"]] = 1
            for c, rr in zip(codes, regs, strict=True):
                if rr == r:
                    eq[col[f"t:{c}"]] = -1
            rows.append(eq)
        eq = np.zeros(len(cells))
        eq[col["n"]] = 1
        for r in names:
            eq[col[f"r:{r}"]] = -1
        rows.append(eq)
    else:
        eq = np.zeros(len(cells))
        eq[col["n"]] = 1
        for c in codes:
            eq[col[f"t:{c}"]] = -1
        rows.append(eq)
    unknown = [f"t:{c}" for c in record.suppressed]
    unknown += [f"r:{r}" for r in record.withheld_totals if r != "national"]
    if "national" in record.withheld_totals:
        unknown.append("n")
    A = np.asarray(rows)[:, [col[u] for u in unknown]]
    rank = np.linalg.matrix_rank(A)
    found = []
    for j, u in enumerate(unknown):
        if u.startswith("t:"):
            e = np.zeros((1, len(unknown)))
            e[0, j] = 1
            if np.linalg.matrix_rank(np.vstack([A, e])) == rank:
                found.append(u[2:])
    return found


def _assert_no_disclosure(
    out: pd.DataFrame,
    full: pd.DataFrame,
    record: SuppressionRecord,
    region: str | None,
) -> None:
    sup = out["suppressed"].to_numpy()
    regs = full[region].astype(str) if region else pd.Series("all", index=full.index)
    for col in ADDITIVE:
        values = full[col].to_numpy(dtype=float)
        published = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=float)
        assert np.isnan(published[sup]).all()
        for r in regs.unique():
            if r in record.withheld_totals or (
                region is None and "national" in record.withheld_totals
            ):
                continue
            inside = (regs == r).to_numpy()
            total = values[inside].sum()  # published region (or national) total
            gap = total - np.nansum(published[inside & ~sup])
            for v in values[inside & sup]:
                # the gap is the sum of >= 2 positive values, never one of them
                assert not np.isclose(gap, v, rtol=1e-9, atol=1e-9), (col, r, v)
    assert _recoverable(out, record, region) == []


@st.composite
def territory_tables(draw: st.DrawFn) -> tuple[pd.DataFrame, int, bool]:
    k = draw(st.integers(1, 24))
    n_regions = draw(st.integers(1, min(5, k)))
    sizes = st.one_of(st.just(0), st.integers(1, 60), st.integers(60, 500))
    n = draw(st.lists(sizes, min_size=k, max_size=k))
    regions = draw(
        st.lists(st.integers(0, n_regions - 1), min_size=k, max_size=k).map(
            lambda rs: [f"R{r}" for r in rs]
        )
    )
    rates = draw(st.lists(st.floats(0.5, 40), min_size=k, max_size=k))
    table = _table(n, region=regions)
    nn = np.asarray(n, dtype=float)
    table["risk"] = np.where(nn > 0, rates, np.nan)
    table["risk_se"] = table["risk"] * 0.1
    table["expected_count"] = (
        table["weighted_children"] * np.nan_to_num(table["risk"]) / 100
    )
    min_children = draw(st.integers(1, 120))
    use_regions = draw(st.booleans())
    return table, min_children, use_regions


@given(territory_tables())
def test_no_suppressed_value_can_be_recovered(
    case: tuple[pd.DataFrame, int, bool],
) -> None:
    table, min_children, use_regions = case
    region = "region" if use_regions else None
    out, record = suppress(table, min_children=min_children, region=region)
    full = assess(table, min_children=min_children)
    sup = out["suppressed"].to_numpy()
    n = table["n_children"].to_numpy()
    # primary suppression is exactly the small territories with children
    assert set(record.primary) == set(
        table.loc[(n > 0) & (n < min_children), "territory"]
    )
    assert set(record.suppressed) == set(out.loc[sup, "territory"])
    assert not (sup & (n == 0)).any()  # empty territories protect nothing
    # every published region (or national) total hides 0 or >= 2 territories
    regs = table["region"] if use_regions else pd.Series("national", index=table.index)
    for r, k in pd.Series(sup).groupby(regs.to_numpy()).sum().items():
        assert k != 1 or r in record.withheld_totals
    _assert_no_disclosure(out, full, record, region)
    # published rows are untouched
    keep = ~sup
    np.testing.assert_array_equal(
        out.loc[keep, "risk"].to_numpy(), full.loc[keep, "risk"].to_numpy()
    )


def test_breakdown_cells_are_suppressed_with_their_complement() -> None:
    """Issue 7: small-cell suppression per (territory, sex) cell; the published
    territory total minus published cells never reveals a withheld cell."""
    import clrisk
    from clrisk.reliability import suppress_breakdown

    c = clrisk.make_country(
        random_state=12,
        n_territories=12,
        n_regions=2,
        children_per_territory=600,
        survey_children=2500,
    )
    model = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    census = c.census
    first = census["municipio"].iloc[0]
    girls = (census["municipio"] == first) & (census["p_sexo"] == "M")
    census = pd.concat([census[~girls], census[girls].head(5)])
    risk = clrisk.predict(model, census, **c.predict_kwargs, by="sex")
    cells, record = suppress_breakdown(risk, min_children=50)
    mine = cells[cells["territory"] == first].set_index("sex")
    assert mine.loc["female", "suppressed"] and mine.loc["male", "suppressed"]
    assert f"{first}|female" in record.primary
    assert f"{first}|male" in record.complementary
    # every other territory: cells published, and they add up to the total
    total = risk.table.set_index("territory")["expected_count"]
    shown = cells[~cells["suppressed"].astype(bool)]
    sums = shown.groupby("territory")["expected_count"].sum()
    for t, value in sums.items():
        n_cells = (cells["territory"] == t).sum()
        if (shown["territory"] == t).sum() == n_cells:
            assert value == pytest.approx(total[t], rel=1e-12)
    # the withheld territory: nothing of it can be recovered from what is shown
    assert mine["expected_count"].isna().all()
