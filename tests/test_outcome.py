"""Tests of clrisk.outcome: the national child-labour rule stated as data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import clrisk
from clrisk.exceptions import DataValidationError, InvalidParameterError, SchemaError
from clrisk.outcome import AgeBand, OutcomeRule

RULE = OutcomeRule.default(age="edad", hours="horas", hazardous="peligro")


def _ilo(age: int, hours: float, hazard: int) -> int:
    """The ILO-style rule written out by hand, one child at a time."""
    if hazard and 5 <= age <= 17:
        return 1
    if 5 <= age <= 13:
        return int(hours > 0)
    if 14 <= age <= 15:
        return int(hours > 24)
    if 16 <= age <= 17:
        return int(hours > 36)
    raise AssertionError(f"age {age} is outside the rule")


def _table(rows: list[tuple[float, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["edad", "horas", "peligro"])


# ------------------------------------------------------------- boundary cases
@pytest.mark.parametrize(
    ("age", "hours", "hazard", "expected"),
    [
        (14, 24, 0, 0),  # exactly the allowed 24 h at 14: not child labour
        (14, 25, 0, 1),
        (15, 24.5, 0, 1),
        (13, 1, 0, 1),  # any work below 14
        (13, 0, 0, 0),
        (5, 0.5, 0, 1),
        (5, 0, 0, 0),
        (16, 36, 0, 0),
        (16, 37, 0, 1),
        (17, 36, 1, 1),  # hazardous at 17: child labour whatever the hours
        (17, 0, 1, 1),
        (14, 0, 1, 1),
        (10, 0, 1, 1),
        (15, 10, 0, 0),
    ],
)
def test_default_rule_boundaries(
    age: int, hours: float, hazard: int, expected: int
) -> None:
    out = RULE.apply(_table([(age, hours, hazard)]))
    assert out.tolist() == [expected]
    assert out.dtype == np.int8
    assert _ilo(age, hours, hazard) == expected  # the hand-written rule agrees


def test_default_rule_without_hazard_column() -> None:
    rule = OutcomeRule.default(age="edad", hours="horas")
    table = _table([(17, 0, 1), (17, 40, 0), (14, 24, 1)])
    assert rule.apply(table).tolist() == [0, 1, 0]


def test_default_rule_documented_bands() -> None:
    assert RULE.bands == (
        AgeBand(5, 13, 0.0),
        AgeBand(14, 15, 24.0),
        AgeBand(16, 17, 36.0),
    )
    ages = np.arange(5, 18, dtype=float)
    expected = np.r_[np.zeros(9), [24.0, 24.0], [36.0, 36.0]]
    np.testing.assert_array_equal(RULE.threshold(ages), expected)
    assert np.isnan(RULE.threshold(np.array([4.0, 18.0, 13.5]))).all()


@given(
    rows=st.lists(
        st.tuples(
            st.integers(5, 17),
            st.one_of(st.integers(0, 60), st.floats(0, 60, allow_nan=False)),
            st.integers(0, 1),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_default_rule_equals_hand_written_rule(
    rows: list[tuple[int, float, int]],
) -> None:
    expected = [_ilo(*r) for r in rows]
    assert RULE.apply(_table(rows)).tolist() == expected


def test_band_without_hazard_counts_only_hours() -> None:
    rule = OutcomeRule(
        [AgeBand(10, 14, 0.0), AgeBand(15, 17, 30.0, hazardous=False)],
        age="a",
        hours="h",
        hazardous="z",
    )
    t = pd.DataFrame({"a": [12, 16, 16, 14], "h": [0, 0, 31, 0], "z": [1, 1, 0, 0]})
    assert rule.apply(t).tolist() == [1, 0, 1, 0]


def test_bands_are_sorted() -> None:
    rule = OutcomeRule(
        [AgeBand(16, 17, 36.0), AgeBand(5, 13, 0.0), AgeBand(14, 15, 24.0)],
        age="a",
        hours="h",
    )
    assert [b.min_age for b in rule.bands] == [5, 14, 16]
    assert rule == OutcomeRule.default(age="a", hours="h")


# ----------------------------------------------------------- band validation
@pytest.mark.parametrize(
    "bands",
    [
        [],
        [AgeBand(5, 13, 0.0), AgeBand(13, 15, 24.0)],  # 13 in both
        [AgeBand(10, 17, 0.0), AgeBand(5, 12, 0.0)],  # overlap, given out of order
        [AgeBand(5, 17, 0.0), AgeBand(10, 12, 5.0)],  # one inside another
        [AgeBand(14, 13, 0.0)],  # min > max
        [AgeBand(5, 13, -1.0)],  # negative hours
    ],
    ids=[
        "no-bands",
        "shared-age",
        "overlap-unsorted",
        "nested",
        "min>max",
        "neg-hours",
    ],
)
def test_invalid_bands_rejected(bands: list[AgeBand]) -> None:
    with pytest.raises(InvalidParameterError):
        OutcomeRule(bands, age="a", hours="h")


def test_invalid_band_message_shows_the_band() -> None:
    with pytest.raises(InvalidParameterError, match="min_age=14, max_age=13"):
        OutcomeRule([AgeBand(14, 13, 0.0)], age="a", hours="h")
    with pytest.raises(InvalidParameterError, match="overlap"):
        OutcomeRule([AgeBand(5, 13, 0.0), AgeBand(13, 15, 0.0)], age="a", hours="h")


def test_adjacent_and_single_age_bands_accepted() -> None:
    rule = OutcomeRule([AgeBand(5, 5, 0.0), AgeBand(6, 17, 10.0)], age="a", hours="h")
    t = pd.DataFrame({"a": [5, 6], "h": [1, 10]})
    assert rule.apply(t).tolist() == [1, 0]


def test_nan_max_hours_rejected() -> None:
    with pytest.raises(InvalidParameterError):
        OutcomeRule([AgeBand(5, 13, float("nan"))], age="a", hours="h")


# ---------------------------------------------------------------- bad tables
def test_ages_outside_the_bands_name_the_column_and_rows() -> None:
    t = _table([(4, 0, 0), (10, 0, 0), (18, 5, 0), (19, 1, 0)])
    with pytest.raises(DataValidationError) as info:
        RULE.apply(t, where="the 2016 survey")
    err = info.value
    assert err.column == "edad"
    assert err.n_bad == 3
    assert [e.split(":")[0] for e in err.examples] == ["row 0", "row 2", "row 3"]
    assert "the 2016 survey" in str(err)


def test_missing_hours_rejected() -> None:
    t = _table([(10, 1, 0), (11, np.nan, 0), (12, np.nan, 0)])
    with pytest.raises(DataValidationError) as info:
        RULE.apply(t)
    assert info.value.column == "horas"
    assert info.value.n_bad == 2
    assert [e.split(":")[0] for e in info.value.examples] == ["row 1", "row 2"]


def test_non_numeric_hours_rejected() -> None:
    t = pd.DataFrame({"edad": [10, 11], "horas": ["3", "tres"], "peligro": [0, 0]})
    with pytest.raises(DataValidationError) as info:
        RULE.apply(t)
    assert info.value.column == "horas"
    assert info.value.n_bad == 1
    assert "tres" in str(info.value)


def test_negative_hours_rejected() -> None:
    t = _table([(10, 1, 0), (15, -2, 0)])
    with pytest.raises(DataValidationError) as info:
        RULE.apply(t)
    err = info.value
    assert err.column == "horas"
    assert err.n_bad == 1
    assert err.examples[0].startswith("row 1")
    assert "-2" in str(err)


def test_missing_ages_and_hazard_rejected() -> None:
    with pytest.raises(DataValidationError, match="'edad'"):
        RULE.apply(_table([(np.nan, 1, 0)]))
    with pytest.raises(DataValidationError, match="'peligro'"):
        RULE.apply(pd.DataFrame({"edad": [10], "horas": [1], "peligro": [None]}))


def test_missing_rule_column_is_a_schema_error() -> None:
    t = pd.DataFrame({"edad": [10], "horas_trab": [1], "peligro": [0]})
    with pytest.raises(SchemaError, match="Missing: 'horas'"):
        RULE.apply(t)


def test_examples_show_plain_values() -> None:
    with pytest.raises(DataValidationError) as info:
        RULE.apply(_table([(10, 1, 0), (15, -2, 0)]))
    assert "np.float64" not in str(info.value)


# ------------------------------------------------------------------ round trip
@given(
    edges=st.lists(st.integers(0, 25), min_size=2, max_size=6, unique=True),
    hours=st.lists(st.floats(0, 80, allow_nan=False), min_size=5, max_size=5),
    hazard=st.lists(st.booleans(), min_size=5, max_size=5),
    with_hazard=st.booleans(),
)
def test_to_dict_from_dict_round_trip(
    edges: list[int], hours: list[float], hazard: list[bool], with_hazard: bool
) -> None:
    e = sorted(edges)
    bands = [
        AgeBand(lo, hi - 1, h, z)
        for lo, hi, h, z in zip(e[:-1], e[1:], hours, hazard, strict=False)
    ]
    rule = OutcomeRule(
        bands,
        age="edad",
        hours="horas",
        hazardous="peligro" if with_hazard else None,
        name="trabajo_infantil",
    )
    d = rule.to_dict()
    assert OutcomeRule.from_dict(d) == rule
    assert OutcomeRule.from_dict(json.loads(json.dumps(d))) == rule
    assert ("hazardous" in d) == with_hazard


def test_default_rule_to_dict() -> None:
    d = RULE.to_dict()
    assert d["name"] == "child_labour"
    assert (d["age"], d["hours"], d["hazardous"]) == ("edad", "horas", "peligro")
    assert [(b["min_age"], b["max_age"], b["max_hours"]) for b in d["band"]] == [
        (5, 13, 0.0),
        (14, 15, 24.0),
        (16, 17, 36.0),
    ]


# ------------------------------------------------------------ synthetic country
@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(random_state=0, n_territories=40, survey_children=3000)


def test_country_outcome_comes_from_its_rule(country: clrisk.Country) -> None:
    survey = country.survey
    rule = country.outcome_rule
    assert (rule.age, rule.hours, rule.hazardous) == (
        "edad",
        "horas_trab",
        "act_peligrosa",
    )
    y = rule.apply(survey)
    np.testing.assert_array_equal(y, survey["trabajo_infantil"].to_numpy())
    # the hand-written rule on the survey's own hours and hazard flags agrees
    by_hand = [
        _ilo(a, h, z)
        for a, h, z in zip(
            survey["edad"], survey["horas_trab"], survey["act_peligrosa"], strict=True
        )
    ]
    np.testing.assert_array_equal(by_hand, survey["trabajo_infantil"].to_numpy())
    # both outcomes occur, at every age band
    assert 0 < y.mean() < 1
    for lo, hi in [(5, 13), (14, 15), (16, 17)]:
        band = survey["edad"].between(lo, hi).to_numpy()
        assert 0 < y[band].sum() < band.sum()


def test_country_outcome_reproduces_the_drawn_truth(country: clrisk.Country) -> None:
    # The survey's children are census children: their outcome under the rule
    # must be the child labour the generator drew for them.
    census = country.census
    in_survey = census["hogar_id"].isin(country.survey["id_viv"]).to_numpy()
    truth = country.truth.child_labour[in_survey]
    np.testing.assert_array_equal(country.outcome_rule.apply(country.survey), truth)
