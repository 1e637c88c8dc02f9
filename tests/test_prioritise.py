"""Tests of clrisk.prioritise: hand-computed examples, properties, validation.

The Hypothesis strategies live here rather than in ``tests/strategies.py``
because this change may touch only this file and the module.
"""

from __future__ import annotations

import importlib
import math
import warnings
from collections import Counter
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from clrisk.exceptions import (
    ClriskWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)
from clrisk.prioritise import Priorities, prioritise

NAN = float("nan")


# --------------------------------------------------------------------------- #
# A small table worked by hand
# --------------------------------------------------------------------------- #
#
# code  region  n    E    r     cost   E-rank  r-rank  blend(0.5) score
# 001   A       100  30   30    5      2       1       .5*30/40 + .5*30/30 = .875
# 002   A       400  40   10    8      1       3       .5*40/40 + .5*10/30 = .6667
# 003   B        50  10   20    1      4       2       .5*10/40 + .5*20/30 = .4583
# 004   B       200  20   10    4      3       4       .5*20/40 + .5*10/30 = .4167
# 005   B        10  NaN  NaN   1      5 (no data)
#
# National total of expected child labour: 30 + 40 + 10 + 20 = 100.


def small_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "territory": ["001", "002", "003", "004", "005"],
            "region": ["A", "A", "B", "B", "B"],
            "n_children": [100, 400, 50, 200, 10],
            "expected_count": [30.0, 40.0, 10.0, 20.0, NAN],
            "risk": [30.0, 10.0, 20.0, 10.0, NAN],
            "price": [5.0, 8.0, 1.0, 4.0, 1.0],
        }
    )


def order(result: Priorities) -> list[str]:
    return result.ranking["territory"].tolist()


def chosen(result: Priorities) -> list[str]:
    return result.selection["territory"].tolist()


def reasons(result: Priorities) -> dict[str, str]:
    return dict(zip(result.ranking["territory"], result.ranking["reason"], strict=True))


def test_public_names() -> None:
    module = importlib.import_module("clrisk.prioritise")
    assert module.__all__ == ["Priorities", "prioritise"]


def test_rank_by_expected_count() -> None:
    result = prioritise(small_table())
    assert order(result) == ["002", "001", "004", "003", "005"]
    assert result.ranking["rank"].tolist() == [1, 2, 3, 4, 5]
    assert result.ranking["score"].tolist()[:4] == [40.0, 30.0, 20.0, 10.0]
    assert math.isnan(result.ranking["score"].iloc[4])
    assert result.ranking["reason"].tolist() == ["", "", "", "", "no data"]
    assert not result.ranking["selected"].any()
    assert result.selection.empty
    assert result.total_expected == 100.0
    assert result.covered_share == 0.0
    assert "ranking only" in result.summary()


def test_rank_by_risk_breaks_the_tie_by_code() -> None:
    # 002 and 004 both have risk 10.
    result = prioritise(small_table(), by="risk")
    assert order(result) == ["001", "003", "002", "004", "005"]


def test_rank_by_blend() -> None:
    result = prioritise(small_table(), by="blend", blend=0.5)
    assert order(result) == ["001", "002", "003", "004", "005"]
    np.testing.assert_allclose(
        result.ranking["score"].iloc[:4],
        [0.875, 0.5 + 0.5 / 3, 0.125 + 1 / 3, 0.25 + 0.5 / 3],
    )
    assert result.blend == 0.5
    assert prioritise(small_table()).blend is None


@pytest.mark.parametrize(
    ("blend", "expected_order"),
    [(1.0, ["002", "001", "004", "003"]), (0.0, ["001", "003", "002", "004"])],
)
def test_blend_ends_are_the_pure_rankings(
    blend: float, expected_order: list[str]
) -> None:
    result = prioritise(small_table(), by="blend", blend=blend)
    assert order(result)[:4] == expected_order


def test_top() -> None:
    result = prioritise(small_table(), top=2)
    assert chosen(result) == ["002", "001"]
    assert result.ranking["selected"].tolist() == [True, True, False, False, False]
    assert result.selection["cumulative_expected"].tolist() == [40.0, 70.0]
    assert result.selection["cumulative_share"].tolist() == [0.4, 0.7]
    assert result.selection["cumulative_children"].tolist() == [400.0, 500.0]
    assert result.covered_share == 0.7
    assert result.top == 2
    assert "top 2" in result.summary() and "70.0%" in result.summary()


def test_top_larger_than_the_table_takes_every_territory_with_data() -> None:
    assert chosen(prioritise(small_table(), top=50)) == ["002", "001", "004", "003"]


def test_budget_counts_territories_without_cost() -> None:
    result = prioritise(small_table(), budget=3)
    assert chosen(result) == ["002", "001", "004"]
    assert reasons(result)["003"] == "over budget"
    assert "cumulative_cost" not in result.selection.columns
    assert chosen(prioritise(small_table(), budget=3.0)) == ["002", "001", "004"]


def test_budget_with_cost_skips_what_does_not_fit_and_continues() -> None:
    # Budget 10: take 002 (8, 2 left); 001 (5) and 004 (4) do not fit;
    # 003 (1) does, 1 left; 005 has no data.
    result = prioritise(small_table(), budget=10, cost="price")
    assert chosen(result) == ["002", "003"]
    assert reasons(result) == {
        "002": "",
        "001": "over budget",
        "004": "over budget",
        "003": "",
        "005": "no data",
    }
    assert result.selection["cumulative_cost"].tolist() == [8.0, 9.0]
    assert result.ranking["cost"].tolist() == [8.0, 5.0, 4.0, 1.0, 1.0]
    assert "spent 9.00" in result.summary()


def test_budget_exactly_spent_is_allowed() -> None:
    result = prioritise(small_table(), budget=13, cost="price")
    assert chosen(result) == ["002", "001"]
    assert result.selection["cumulative_cost"].iloc[-1] == 13.0


def test_cost_as_mapping_and_series() -> None:
    costs = {"001": 5.0, "002": 8.0, "003": 1.0, "004": 4.0, "005": 1.0, "999": 3.0}
    by_mapping = prioritise(small_table(), budget=10, cost=costs)
    by_series = prioritise(small_table(), budget=10, cost=pd.Series(costs))
    assert chosen(by_mapping) == chosen(by_series) == ["002", "003"]


def test_budget_is_summed_in_exact_decimal_arithmetic() -> None:
    # 0.1 + 0.2 > 0.3 in floating point; as the decimals typed, 0.1 + 0.2 = 0.3
    # fills the budget exactly, and 0.3 + 0.01 does not fit.
    table = small_table().assign(price=[0.2, 0.1, 0.01, 1.0, 0.0])
    result = prioritise(table, budget=0.3, cost="price")
    spent = sum(Fraction(repr(c)) for c in result.selection["cost"])
    assert spent == Fraction(3, 10)
    assert chosen(result) == ["002", "001"]


@pytest.mark.parametrize(
    ("coverage", "by", "expected_choice"),
    [
        (0.4, "expected_count", ["002"]),
        (0.7, "expected_count", ["002", "001"]),
        (0.71, "expected_count", ["002", "001", "004"]),
        (1.0, "expected_count", ["002", "001", "004", "003"]),
        (0.5, "risk", ["001", "003", "002"]),
    ],
)
def test_coverage(coverage: float, by: str, expected_choice: list[str]) -> None:
    result = prioritise(small_table(), coverage=coverage, by=by)
    assert chosen(result) == expected_choice
    assert result.covered_share >= coverage
    assert result.coverage == coverage
    assert "reached" in result.summary()


def test_region_quota_and_exclusion() -> None:
    result = prioritise(small_table(), top=2, max_per_region=1)
    assert chosen(result) == ["002", "004"]
    assert reasons(result)["001"] == "region quota"
    assert reasons(result)["003"] == ""  # after the stop: not reached

    result = prioritise(small_table(), top=2, max_per_region={"A": 0})
    assert chosen(result) == ["004", "003"]

    result = prioritise(small_table(), top=2, exclude=["002"])
    assert chosen(result) == ["001", "004"]
    assert reasons(result)["002"] == "excluded"
    assert order(result)[0] == "002"  # keeps its rank

    result = prioritise(small_table(), budget=9, cost="price", max_per_region=1)
    # 002 (A, 8); 001 A full; 004 B costs 4 > 1 left; 003 B costs 1.
    assert chosen(result) == ["002", "003"]
    assert reasons(result)["001"] == "region quota"
    assert reasons(result)["004"] == "over budget"


def test_excluded_territories_count_in_the_national_total() -> None:
    result = prioritise(small_table(), coverage=0.5, exclude=["002"])
    assert result.total_expected == 100.0
    assert chosen(result) == ["001", "004"]
    assert result.selection["cumulative_share"].tolist() == [0.3, 0.5]


def test_unreachable_coverage_warns_and_takes_all_it_can() -> None:
    with pytest.warns(ClriskWarning, match=r"coverage target 90\.0%.*60\.0%"):
        result = prioritise(small_table(), coverage=0.9, exclude=["002"])
    assert chosen(result) == ["001", "004", "003"]
    assert result.covered_share == pytest.approx(0.6)
    assert "NOT reached" in result.summary()


def test_curve() -> None:
    curve = prioritise(small_table()).curve
    assert curve.columns.tolist() == [
        "k",
        "share_territories",
        "share_children",
        "share_expected",
    ]
    assert curve["k"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(curve["share_territories"], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(
        curve["share_children"], np.array([0, 400, 500, 700, 750]) / 750
    )
    np.testing.assert_allclose(curve["share_expected"], [0, 0.4, 0.7, 0.9, 1.0])


def test_columns_and_dtypes() -> None:
    table = small_table().assign(level="high", lead_policy_area="education")
    result = prioritise(table, top=1, cost="price")
    assert result.ranking.columns.tolist() == [
        "rank",
        "territory",
        "region",
        "level",
        "lead_policy_area",
        "n_children",
        "expected_count",
        "risk",
        "score",
        "cost",
        "selected",
        "reason",
    ]
    assert result.selection.columns.tolist() == [
        *result.ranking.columns.drop(["selected", "reason"]),
        "cumulative_expected",
        "cumulative_share",
        "cumulative_children",
        "cumulative_cost",
    ]
    assert result.ranking["selected"].dtype == bool
    assert pd.api.types.is_string_dtype(result.ranking["reason"])
    assert result.ranking["territory"].tolist()[0] == "002"


def test_accepts_a_territory_risk_object_and_leaves_the_input_alone() -> None:
    table = small_table()
    before = table.copy()
    result = prioritise(SimpleNamespace(table=table), top=2)
    assert chosen(result) == ["002", "001"]
    pd.testing.assert_frame_equal(table, before)


def test_ties_follow_string_order_of_codes() -> None:
    table = pd.DataFrame(
        {
            "territory": ["9", "10", "05001", "5001", "b", "a"],
            "n_children": [10] * 6,
            "expected_count": [1.0, 1.0, 1.0, 1.0, 2.0, NAN],
            "risk": [5.0] * 6,
        }
    )
    result = prioritise(table, top=2)
    assert order(result) == ["b", "05001", "10", "5001", "9", "a"]
    assert chosen(result) == ["b", "05001"]


def test_summary_mentions_the_rule() -> None:
    assert "budget of 3 territories" in prioritise(small_table(), budget=3).summary()
    text = prioritise(small_table(), top=1, exclude=["001"], by="risk").summary()
    assert "1 excluded" in text and "1 without data" in text


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"by": "rate"}, r"'by' parameter.*Got 'rate'"),
        ({"by": "blend", "blend": 1.5}, r"'blend' parameter.*\[0, 1\]. Got 1.5"),
        ({"blend": -0.1}, r"'blend' parameter.*Got -0.1"),
        ({"top": 2, "budget": 3}, r"at most one of.*top=2 and budget=3"),
        ({"top": 2, "coverage": 0.5}, r"at most one of.*top=2 and coverage=0.5"),
        ({"budget": -1}, r"'budget' parameter.*\[0, inf\). Got -1"),
        ({"budget": math.nan, "cost": "price"}, r"'budget' parameter.*Got nan"),
        ({"budget": 2.5}, r"'budget'.*whole number.*Got 2.5"),
        ({"coverage": 0}, r"'coverage' parameter.*\(0, 1\]. Got 0"),
        ({"coverage": 1.5}, r"'coverage' parameter.*Got 1.5"),
        ({"top": 2.5}, r"'top' parameter.*int.*Got 2.5"),
        ({"top": True}, r"'top' parameter.*Got True"),
        ({"top": -1}, r"'top' parameter.*Got -1"),
        ({"exclude": ["001", "01", 1]}, r"'exclude'.*not in.*'01', 1"),
        ({"exclude": "001"}, r"'exclude'.*collection.*Got '001'"),
        ({"max_per_region": 1}, r"'max_per_region'.*give top, budget or coverage"),
        ({"top": 1, "max_per_region": -1}, r"'max_per_region'.*Got -1"),
        ({"top": 1, "max_per_region": {"Z": 1}}, r"'max_per_region'.*regions.*'Z'"),
        ({"top": 1, "max_per_region": {"A": 1.5}}, r"int >= 0 per region"),
        ({"top": 1, "cost": [1, 2, 3]}, r"'cost' parameter.*Got list"),
    ],
)
def test_invalid_parameters(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match) as info:
        prioritise(small_table(), **kwargs)
    assert isinstance(info.value, ValueError)


def test_risk_must_be_a_table() -> None:
    with pytest.raises(InvalidParameterError, match=r"'risk' parameter.*Got list"):
        prioritise([1, 2, 3])


def test_missing_columns_show_a_diff() -> None:
    table = small_table().rename(columns={"risk": "rate"})
    with pytest.raises(SchemaError, match=r"Missing: 'risk';.*'rate'"):
        prioritise(table)


def test_missing_cost_column_shows_a_diff() -> None:
    with pytest.raises(SchemaError, match=r"'cost'.*'cost_cop'.*Missing: 'cost_cop'"):
        prioritise(small_table(), budget=10, cost="cost_cop")


def test_quota_needs_a_region_column() -> None:
    table = small_table().drop(columns="region")
    with pytest.raises(SchemaError, match=r"'max_per_region'.*Missing: 'region'"):
        prioritise(table, top=2, max_per_region=1)


@pytest.mark.parametrize(
    ("price", "match"),
    [
        ([5.0, -8.0, 1.0, 4.0, 1.0], r"'price'.*negative costs \(1 row; e.g. '002"),
        ([5.0, NAN, 1.0, NAN, NAN], r"'price'.*no cost.*2 rows; e.g. '002.*'004"),
        ([5.0, math.inf, 1.0, 4.0, 1.0], r"'price'.*infinite costs"),
        (["5", "8", "x", "4", "1"], r"'price'.*(numbers|dtype)"),
    ],
)
def test_invalid_cost_values(price: list[Any], match: str) -> None:
    with pytest.raises(DataValidationError, match=match):
        prioritise(small_table().assign(price=price), budget=10, cost="price")


def test_cost_mapping_must_cover_every_territory() -> None:
    costs = {"001": 5.0, "002": 8.0, "003": 1.0}
    with pytest.raises(DataValidationError, match=r"no cost.*'004'\).*keyed by"):
        prioritise(small_table(), budget=10, cost=costs)
    row_indexed = small_table()["price"]  # indexed 0..4, not by code
    with pytest.raises(DataValidationError, match=r"no cost.*4 rows"):
        prioritise(small_table(), budget=10, cost=row_indexed)


def test_duplicate_codes() -> None:
    table = pd.concat([small_table(), small_table().iloc[[2]]], ignore_index=True)
    with pytest.raises(DataValidationError, match=r"duplicated.*2 rows; e.g. '003'"):
        prioritise(table)


def test_numeric_codes_are_refused() -> None:
    table = small_table().assign(territory=[1, 2, 3, 4, 5])
    with pytest.raises(DataValidationError, match=r"'territory'.*strings.*dtype="):
        prioritise(table)


@pytest.mark.parametrize(
    ("column", "values", "match"),
    [
        ("risk", [30.0, 10.0, 120.0, 10.0, NAN], r"'risk'.*outside \[0, 100\]"),
        ("expected_count", [30.0, -1.0, 10.0, 20.0, NAN], r"'expected_count'.*neg"),
        ("n_children", [100, 400, NAN, 200, 10], r"'n_children'.*missing.*'003"),
        ("expected_count", ["a", "b", "c", "d", "e"], r"'expected_count'.*number"),
    ],
)
def test_invalid_values(column: str, values: list[Any], match: str) -> None:
    with pytest.raises(DataValidationError, match=match):
        prioritise(small_table().assign(**{column: values}))


def test_no_territory_with_data() -> None:
    table = small_table().assign(risk=NAN)
    with pytest.raises(DataValidationError, match=r"no territory has both"):
        prioritise(table)


def test_missing_region_with_quota() -> None:
    table = small_table().assign(region=["A", None, "B", "B", "B"])
    with pytest.raises(DataValidationError, match=r"'region'.*missing.*'002'"):
        prioritise(table, top=2, max_per_region=1)


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #

REGIONS = ("north", "south", "east", "west")


def _expected(x: float) -> float:
    """Map a draw in [-500, 10_000] to NaN (5%), a tie-prone small integer
    (40%) or a free float."""
    if x < 0:
        return NAN
    return float(int(x) % 6) if x < 4000 else x


def _risk(x: float) -> float:
    """Map a draw in [-30, 100] to NaN (23%), a multiple of 10 (23%) or a float."""
    if x < 0:
        return NAN
    return float(round(x, -1)) if x < 30 else x


@st.composite
def risk_tables(draw: st.DrawFn, min_size: int = 20, max_size: int = 200) -> Any:
    """Territory tables with exact ties, territories without data and costs.

    Each value comes from one plain draw mapped to its kind (no ``one_of``),
    which keeps generation of 200-row tables fast.
    """
    n = draw(st.integers(min_size, max_size))
    codes = draw(st.lists(st.integers(0, 99_999), min_size=n, max_size=n, unique=True))

    def column(elements: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(elements, min_size=n, max_size=n))

    table = pd.DataFrame(
        {
            "territory": [f"{c:05d}" for c in codes],
            "region": column(st.integers(0, len(REGIONS) - 1).map(REGIONS.__getitem__)),
            "n_children": column(st.integers(1, 10_000)),
            "expected_count": column(st.floats(-500, 1e4).map(_expected)),
            "risk": column(st.floats(-30, 100).map(_risk)),
            "cost": column(st.floats(-10, 100).map(lambda x: max(x, 0.0))),
        }
    )
    assume((table["expected_count"].notna() & table["risk"].notna()).any())
    return table


@st.composite
def problems(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A table and the keyword arguments of one call of prioritise."""
    table = draw(risk_tables())
    kwargs: dict[str, Any] = {
        "by": draw(st.sampled_from(["expected_count", "risk", "blend"])),
        "blend": draw(st.sampled_from([0.0, 0.3, 0.5, 1.0])),
    }
    rule = draw(st.sampled_from(["top", "budget", "budget_cost", "coverage", None]))
    if rule == "top":
        kwargs["top"] = draw(st.integers(0, len(table) + 5))
    elif rule == "budget":
        kwargs["budget"] = draw(st.integers(0, len(table) + 5))
    elif rule == "budget_cost":
        kwargs["budget"] = draw(st.floats(0, float(table["cost"].sum()) + 1))
        kwargs["cost"] = "cost"
    elif rule == "coverage":
        kwargs["coverage"] = draw(st.one_of(st.just(1.0), st.floats(0.01, 1.0)))
    if rule is not None and draw(st.booleans()):
        kwargs["max_per_region"] = draw(
            st.one_of(
                st.integers(0, 10),
                st.dictionaries(st.sampled_from(REGIONS), st.integers(0, 10)).filter(
                    lambda q: set(q) <= set(table["region"])
                ),
            )
        )
    if draw(st.booleans()):
        kwargs["exclude"] = draw(
            st.lists(st.sampled_from(table["territory"].tolist()), max_size=10)
        )
    return table, kwargs


def run(table: pd.DataFrame, **kwargs: Any) -> tuple[Priorities, bool]:
    """Call prioritise; also say whether it warned that coverage is unreachable."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = prioritise(table, **kwargs)
    warned = any(issubclass(w.category, ClriskWarning) for w in caught)
    assert all(issubclass(w.category, ClriskWarning) for w in caught), caught
    return result, warned


def reference(table: pd.DataFrame, **kwargs: Any) -> tuple[list[str], dict[str, str]]:
    """Plain-Python prioritisation: the ranking and the reason per territory
    (``"selected"`` for selected ones). One territory at a time, no numpy."""
    by = kwargs.get("by", "expected_count")
    blend = kwargs.get("blend", 0.5)
    top, budget = kwargs.get("top"), kwargs.get("budget")
    coverage, cost = kwargs.get("coverage"), kwargs.get("cost")
    quota_arg = kwargs.get("max_per_region")
    excluded = set(kwargs.get("exclude") or ())
    rows = table.to_dict("records")

    def has(row: dict[str, Any]) -> bool:
        return math.isfinite(row["expected_count"]) and math.isfinite(row["risk"])

    data = [r for r in rows if has(r)]
    max_e = max(r["expected_count"] for r in data)
    max_r = max(r["risk"] for r in data)

    def score(row: dict[str, Any]) -> float:
        e, r = row["expected_count"], row["risk"]
        if by == "expected_count":
            return float(e)
        if by == "risk":
            return float(r)
        se = e / max_e if max_e > 0 else 0.0
        sr = r / max_r if max_r > 0 else 0.0
        return float(blend * se + (1 - blend) * sr)

    ranked = sorted(
        rows,
        key=lambda r: (
            (0, -score(r), r["territory"]) if has(r) else (1, 0.0, r["territory"])
        ),
    )
    total = 0.0
    for row in ranked:
        if has(row):
            total += row["expected_count"]

    def quota(region: str) -> float:
        if quota_arg is None:
            return math.inf
        if isinstance(quota_arg, int):
            return quota_arg
        return quota_arg.get(region, math.inf)

    result: dict[str, str] = {}
    used: Counter[str] = Counter()
    taken, spent, running = 0, Fraction(0), 0.0
    done = top == 0 or (coverage is not None and total <= 0)
    for row in ranked:
        code = row["territory"]
        if not has(row):
            result[code] = "no data"
        elif code in excluded:
            result[code] = "excluded"
        elif budget is None and (done or (top is None and coverage is None)):
            result[code] = ""
        elif used[row["region"]] >= quota(row["region"]):
            result[code] = "region quota"
        elif budget is not None:
            price = Fraction(repr(float(row[cost]))) if cost else Fraction(1)
            if spent + price <= Fraction(repr(float(budget))):
                spent += price
                used[row["region"]] += 1
                result[code] = "selected"
            else:
                result[code] = "over budget"
        else:
            used[row["region"]] += 1
            result[code] = "selected"
            taken += 1
            running += row["expected_count"]
            done = taken == top if top is not None else running / total >= coverage
    return [r["territory"] for r in ranked], result


@given(problems())
def test_matches_the_plain_reference(
    problem: tuple[pd.DataFrame, dict[str, Any]],
) -> None:
    table, kwargs = problem
    result, _ = run(table, **kwargs)
    ranking, expected_reasons = reference(table, **kwargs)
    assert order(result) == ranking
    got = {
        code: ("selected" if sel else why)
        for code, sel, why in zip(
            result.ranking["territory"],
            result.ranking["selected"],
            result.ranking["reason"],
            strict=True,
        )
    }
    assert got == expected_reasons


@given(problems())
def test_never_over_budget_never_excluded_quota_respected(
    problem: tuple[pd.DataFrame, dict[str, Any]],
) -> None:
    table, kwargs = problem
    result, _ = run(table, **kwargs)
    selection = result.selection
    if kwargs.get("cost"):
        spent = sum((Fraction(repr(c)) for c in selection["cost"]), Fraction(0))
        assert spent <= Fraction(repr(float(kwargs["budget"])))
        if len(selection):
            assert selection["cumulative_cost"].iloc[-1] <= kwargs["budget"]
            assert selection["cumulative_cost"].is_monotonic_increasing
    elif kwargs.get("budget") is not None:
        assert len(selection) <= kwargs["budget"]
    if kwargs.get("top") is not None:
        assert len(selection) <= kwargs["top"]

    picked = set(selection["territory"])
    assert not picked & set(kwargs.get("exclude") or ())
    no_data = table.loc[table["expected_count"].isna() | table["risk"].isna()]
    assert not picked & set(no_data["territory"])
    assert selection["expected_count"].notna().all()

    quota = kwargs.get("max_per_region")
    for region, count in Counter(selection["region"]).items():
        if isinstance(quota, int):
            assert count <= quota
        elif isinstance(quota, dict):
            assert count <= quota.get(region, math.inf)


@given(problems(), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(
    problem: tuple[pd.DataFrame, dict[str, Any]], random: Any
) -> None:
    table, kwargs = problem
    rows = list(range(len(table)))
    random.shuffle(rows)
    shuffled = table.iloc[rows].reset_index(drop=True)
    first, _ = run(table, **kwargs)
    second, _ = run(shuffled, **kwargs)
    pd.testing.assert_frame_equal(first.ranking, second.ranking)
    pd.testing.assert_frame_equal(first.selection, second.selection)
    pd.testing.assert_frame_equal(first.curve, second.curve)
    assert first.total_expected == second.total_expected
    assert first.covered_share == second.covered_share or (
        math.isnan(first.covered_share) and math.isnan(second.covered_share)
    )


@given(problems())
def test_ranking_is_sorted_with_ties_by_code(
    problem: tuple[pd.DataFrame, dict[str, Any]],
) -> None:
    table, kwargs = problem
    ranking, _ = run(table, **kwargs)
    score = ranking.ranking["score"].to_numpy()
    codes = ranking.ranking["territory"].tolist()
    n_data = int(np.isfinite(score).sum())
    assert np.isfinite(score[:n_data]).all()  # no-data territories go last
    assert (ranking.ranking["reason"].iloc[n_data:] == "no data").all()
    for i in range(n_data - 1):
        assert score[i] >= score[i + 1]
        if score[i] == score[i + 1]:
            assert codes[i] < codes[i + 1]
    assert codes[n_data:] == sorted(codes[n_data:])


@given(risk_tables(), st.integers(0, 30))
def test_exact_ties_are_broken_by_code(table: pd.DataFrame, top: int) -> None:
    tied = table.assign(expected_count=1.0, risk=10.0)
    result = prioritise(tied, top=top)
    assert order(result) == sorted(tied["territory"])
    assert chosen(result) == sorted(tied["territory"])[:top]


@given(
    risk_tables(),
    st.one_of(st.just(1.0), st.floats(0.01, 1.0)),
    st.sampled_from(["expected_count", "risk", "blend"]),
    st.one_of(st.none(), st.integers(0, 10)),
    st.lists(st.integers(0, 19), max_size=5),
)
def test_coverage_reaches_the_target_and_is_minimal(
    table: pd.DataFrame,
    coverage: float,
    by: str,
    quota: int | None,
    drop: list[int],
) -> None:
    exclude = table["territory"].iloc[drop].tolist()
    result, warned = run(
        table, coverage=coverage, by=by, max_per_region=quota, exclude=exclude
    )
    selection = result.selection
    share = selection["cumulative_share"]
    if result.total_expected == 0:
        assert selection.empty and math.isnan(result.covered_share)
        return
    if warned:  # unreachable: every eligible territory within quota is taken
        assert result.covered_share < coverage
        reasons_left = result.ranking.loc[~result.ranking["selected"], "reason"]
        assert reasons_left.isin(["no data", "excluded", "region quota"]).all()
        return
    assert share.iloc[-1] >= coverage
    assert result.covered_share == share.iloc[-1]
    without_last = share.iloc[-2] if len(share) > 1 else 0.0
    assert without_last < coverage
    if by == "expected_count" and quota is None and not exclude:
        # Minimal cardinality: the k - 1 largest expected counts fall short.
        has_data = table["expected_count"].notna() & table["risk"].notna()
        largest = np.sort(table.loc[has_data, "expected_count"].to_numpy())[::-1]
        k = len(selection)
        assert math.fsum(largest[: k - 1]) < coverage * result.total_expected * (
            1 + 1e-12
        )


@given(problems())
def test_cumulative_columns_match_a_direct_recomputation(
    problem: tuple[pd.DataFrame, dict[str, Any]],
) -> None:
    table, kwargs = problem
    result, _ = run(table, **kwargs)
    has_data = table["expected_count"].notna() & table["risk"].notna()
    total = math.fsum(table.loc[has_data, "expected_count"])
    assert result.total_expected == pytest.approx(total, rel=1e-12, abs=1e-300)
    selection = result.selection
    expected = selection["expected_count"].to_numpy()
    np.testing.assert_allclose(selection["cumulative_expected"], np.cumsum(expected))
    np.testing.assert_allclose(
        selection["cumulative_children"], np.cumsum(selection["n_children"])
    )
    if total > 0:
        np.testing.assert_allclose(
            selection["cumulative_share"], np.cumsum(expected) / total, rtol=1e-12
        )
        assert selection["cumulative_share"].is_monotonic_increasing
        assert result.covered_share == pytest.approx(
            math.fsum(expected) / total, rel=1e-12
        )
    if kwargs.get("cost"):
        np.testing.assert_allclose(
            selection["cumulative_cost"], np.cumsum(selection["cost"])
        )


def test_curve_when_nothing_is_expected() -> None:
    """All expected counts zero (found by Hypothesis in CI): shares are NaN."""
    table = pd.DataFrame({
        "territory": [f"{i:05d}" for i in range(20)], "region": "north",
        "n_children": 1, "expected_count": 0.0, "risk": 0.0,
    })  # fmt: skip
    curve = prioritise(table, top=0).curve
    assert curve["share_children"].iloc[[0, -1]].tolist() == [0.0, 1.0]
    assert curve["share_expected"].isna().all()


@given(problems())
def test_curve_runs_from_zero_to_one(
    problem: tuple[pd.DataFrame, dict[str, Any]],
) -> None:
    table, kwargs = problem
    curve = run(table, **kwargs)[0].curve
    n_data = int((table["expected_count"].notna() & table["risk"].notna()).sum())
    assert curve["k"].tolist() == list(range(n_data + 1))
    first = curve.iloc[0]
    assert first[["k", "share_territories", "share_children"]].tolist() == [0, 0, 0]
    # shares of a zero total are undefined (NaN), never a made-up number
    if np.isnan(first["share_expected"]):
        assert curve["share_expected"].isna().all()
        data = table["expected_count"].notna() & table["risk"].notna()
        assert table.loc[data, "expected_count"].sum() == 0
    else:
        assert first["share_expected"] == 0.0
    assert curve["share_territories"].iloc[-1] == 1.0
    assert curve["share_children"].iloc[-1] == 1.0
    assert curve["share_children"].is_monotonic_increasing
    if curve["share_expected"].notna().all():  # NaN only when the total is 0
        assert curve["share_expected"].iloc[-1] == 1.0
        assert curve["share_expected"].is_monotonic_increasing
    if kwargs["by"] == "expected_count" and curve["share_expected"].notna().all():
        # The default ranking gives the highest possible curve: concave.
        assert (np.diff(curve["share_expected"].to_numpy(), 2) <= 1e-12).all()


# --------------------------------------------------------------------------- #
# Regressions of an independent review (2026-12-02)
# --------------------------------------------------------------------------- #
def test_children_are_weighted_children_when_the_table_has_them() -> None:
    """A weighted frame's n_children are sample rows: the children reached are
    the weighted ones (was: 0.47 of the children reached instead of 0.35)."""
    table = pd.DataFrame(
        {
            "territory": ["01", "02", "03"],
            "n_children": [10, 100, 100],
            "weighted_children": [100.0, 100.0, 100.0],
            "expected_count": [30.0, 20.0, 10.0],
            "risk": [30.0, 20.0, 10.0],
        }
    )
    p = prioritise(table, top=1)
    assert p.selection["cumulative_children"].tolist() == [100.0]
    assert p.curve["share_children"].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert p.ranking["n_children"].tolist() == [10, 100, 100]  # carried as given
    assert "among 100 children" in p.summary()
    plain = prioritise(table.drop(columns="weighted_children"), top=1)
    assert plain.selection["cumulative_children"].tolist() == [10.0]


def test_costs_that_fill_the_budget_exactly_in_decimal_fit() -> None:
    """0.1 + 0.2 is 0.30000000000000004 in binary floating point; as written,
    it fills a budget of 0.3 (was: the second territory 'over budget')."""
    table = pd.DataFrame(
        {
            "territory": ["01", "02", "03"],
            "n_children": [100, 100, 100],
            "expected_count": [20.0, 10.0, 5.0],
            "risk": [20.0, 10.0, 5.0],
            "cost": [0.1, 0.2, 0.01],
        }
    )
    p = prioritise(table, budget=0.3, cost="cost")
    assert p.ranking["selected"].tolist() == [True, True, False]
    assert p.ranking["reason"].tolist()[2] == "over budget"
    assert p.selection["cumulative_cost"].tolist() == [0.1, 0.3]
    assert "spent 0.30" in p.summary()
    # never more than the budget in decimal either
    q = prioritise(table, budget=0.30999, cost="cost")
    assert q.ranking["selected"].tolist() == [True, True, False]


def test_territories_that_cannot_be_chosen_need_no_cost() -> None:
    table = pd.DataFrame(
        {
            "territory": ["01", "02", "03"],
            "n_children": [100, 100, 100],
            "expected_count": [20.0, NAN, 5.0],
            "risk": [20.0, NAN, 5.0],
            "cost": [1.0, NAN, NAN],
        }
    )
    p = prioritise(table, budget=5, cost="cost", exclude=["03"])
    assert p.ranking.set_index("territory")["selected"].to_dict() == {
        "01": True,
        "02": False,
        "03": False,
    }
    with pytest.raises(DataValidationError, match="no cost for these territories"):
        prioritise(table, budget=5, cost="cost")  # 03 can be chosen: needs a cost


def test_missing_weighted_children_of_a_territory_with_data_is_refused() -> None:
    table = pd.DataFrame(
        {
            "territory": ["01", "02"],
            "n_children": [10, 10],
            "weighted_children": [100.0, NAN],
            "expected_count": [3.0, 2.0],
            "risk": [3.0, 20.0],
        }
    )
    with pytest.raises(DataValidationError, match=r"'weighted_children'.*missing"):
        prioritise(table, top=1)
