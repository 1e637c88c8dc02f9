"""Tests of clrisk.levels: risk-level classifiers checked against the truth."""

from __future__ import annotations

import itertools
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clrisk import levels
from clrisk.exceptions import ClriskWarning, InvalidParameterError
from clrisk.levels import METHODS, breaks, classify

DATA_DRIVEN = ("jenks", "dalenius_hodges", "kmeans", "quantile")
FIXED_THRESHOLDS = {2: [40.0], 3: [20.0, 60.0], 4: [10.0, 40.0, 70.0]}

# Values in [0, 100] (risk in %) on a coarse grid, so ties are frequent.
risk_values = st.one_of(
    st.sampled_from([0.0, 1.0, 2.5, 10.0, 50.0, 99.0]),
    st.floats(0.0, 100.0, allow_nan=False).map(lambda v: round(v, 2)),
)
risk_or_nan = st.one_of(risk_values, st.just(float("nan")))


def _method_kwargs(method: str, k: int) -> dict[str, object]:
    if method == "fixed":
        return {"method": method, "thresholds": FIXED_THRESHOLDS[k]}
    return {"method": method, "k": k}


def _sse(values: np.ndarray, codes: np.ndarray) -> float:
    """Total within-class sum of squared deviations, computed directly."""
    return float(
        sum(
            ((values[codes == c] - values[codes == c].mean()) ** 2).sum()
            for c in np.unique(codes)
        )
    )


def _brute_force_sse(values: np.ndarray, k: int) -> float:
    """Least SSE over every contiguous partition of the distinct values.

    The distinct values carry their multiplicities as weights, so ties are
    never split; with m distinct values there are min(k, m) classes.
    """
    u, counts = np.unique(values, return_counts=True)
    n_classes = min(k, u.size)
    best = np.inf
    for cuts in itertools.combinations(range(1, u.size), n_classes - 1):
        edges = (0, *cuts, u.size)
        total = 0.0
        for lo, hi in itertools.pairwise(edges):
            uu, ww = u[lo:hi], counts[lo:hi]
            total += float((ww * (uu - np.average(uu, weights=ww)) ** 2).sum())
        best = min(best, total)
    return best


# --------------------------------------------------------------------------
# Jenks


@given(values=st.lists(risk_values, min_size=1, max_size=9), k=st.integers(2, 4))
def test_jenks_equals_brute_force_optimum(values: list[float], k: int) -> None:
    x = np.array(values)
    lv = classify(x, method="jenks", k=k)
    assert _sse(x, lv.codes) == pytest.approx(_brute_force_sse(x, k), abs=1e-9)
    # as many classes as the data allow, and tied values share a class
    assert np.unique(lv.codes).size == min(k, np.unique(x).size)
    for v in np.unique(x):
        assert np.unique(lv.codes[x == v]).size == 1
    # the upper break of each class is the largest value in it
    table = lv.breaks
    np.testing.assert_array_equal(table["upper"][:-1], table["upper_break"][:-1])


def test_jenks_textbook_separated_clusters() -> None:
    # Three clusters far apart: SSE 2 + 2 + 2 = 6 when split at the gaps, while
    # any other split puts two clusters (>= 17 apart) in one class.
    x = np.array([52.0, 1.0, 21.0, 2.0, 51.0, 3.0, 20.0, 50.0, 22.0])
    lv = classify(x, method="jenks")
    np.testing.assert_array_equal(lv.breaks["upper_break"], [3.0, 22.0, np.inf])
    assert _sse(x, lv.codes) == pytest.approx(6.0)
    assert lv.labels.tolist() == [
        "high",
        "low",
        "medium",
        "low",
        "high",
        "low",
        "medium",
        "high",
        "medium",
    ]


def test_jenks_one_to_ten_in_two_classes() -> None:
    # Split after s: SSE = var-sum of 1..s plus of s+1..10. By hand:
    # s=5: 10 + 10 = 20; s=4: 5 + 17.5 = 22.5; s=6: 17.5 + 5 = 22.5.
    x = np.arange(1.0, 11.0)
    np.testing.assert_array_equal(breaks(x, k=2), [5.0])
    assert _sse(x, classify(x, k=2).codes) == pytest.approx(20.0)


def test_jenks_weights_ties_by_multiplicity() -> None:
    # Nine 0s and one 10 and one 11: the repeated 0 pulls nothing apart;
    # a split between the 0s is impossible, so the breaks are 0 and 10.
    x = np.array([0.0] * 9 + [10.0, 11.0])
    np.testing.assert_array_equal(breaks(x, k=3), [0.0, 10.0])
    x = np.array([0.0] * 9 + [1.0, 10.0])  # k=2: 1 joins the 0s (SSE 0.9 < 40.5)
    np.testing.assert_array_equal(breaks(x, k=2), [1.0])


def test_jenks_is_fast_enough() -> None:
    x = np.random.default_rng(7).gamma(2.0, 5.0, size=5570)
    t0 = time.perf_counter()
    lv = classify(x, method="jenks", k=3)
    assert time.perf_counter() - t0 < 2.0
    assert lv.breaks["n"].sum() == 5570


# --------------------------------------------------------------------------
# properties shared by every method


@pytest.mark.parametrize("method", METHODS)
@given(
    values=st.lists(risk_or_nan, min_size=0, max_size=30),
    k=st.integers(2, 4),
    data=st.data(),
)
def test_every_method_invariants(
    method: str, values: list[float], k: int, data: st.DataObject
) -> None:
    x = np.array(values, dtype=float)
    kwargs = _method_kwargs(method, k)
    lv = classify(x, **kwargs)
    nan = np.isnan(x)
    codes = lv.codes

    assert codes.dtype == np.int64 and codes.shape == x.shape
    np.testing.assert_array_equal(codes[nan], -1)
    assert np.all((codes[~nan] >= 0) & (codes[~nan] < k))
    assert set(lv.labels[nan]) <= {"no data"}
    np.testing.assert_array_equal(
        lv.labels[~nan], np.array(lv.level_names, dtype=object)[codes[~nan]]
    )
    # monotone: a larger value never gets a lower class
    order = np.argsort(x[~nan], kind="stable")
    assert np.all(np.diff(codes[~nan][order]) >= 0)
    # the class rule reproduces the codes from the breaks
    b = breaks(x, **kwargs)
    np.testing.assert_array_equal(codes[~nan], np.searchsorted(b, x[~nan], side="left"))
    # the breaks table: counts, observed bounds, closing breaks
    table = lv.breaks
    assert list(table.columns) == [
        "group",
        "level",
        "level_code",
        "lower",
        "upper",
        "upper_break",
        "n",
    ]
    assert table["n"].sum() == (~nan).sum()
    if (~nan).any():
        np.testing.assert_array_equal(table["upper_break"], np.append(b, np.inf))
        for row in table.itertuples():
            members = x[codes == row.level_code]
            assert row.n == members.size
            assert row.level == lv.level_names[row.level_code]
            if members.size:
                assert (row.lower, row.upper) == (members.min(), members.max())
        if method in DATA_DRIVEN:  # no empty classes; the lowest levels are used
            assert (table["n"] > 0).all()
    else:
        assert table.empty and b.size == 0
    # invariant to the order of the input
    perm = np.array(data.draw(st.permutations(range(x.size))), dtype=np.int64)
    np.testing.assert_array_equal(classify(x[perm], **kwargs).codes, codes[perm])


@given(values=st.lists(risk_values, min_size=1, max_size=25), k=st.integers(2, 4))
def test_kmeans_never_beats_jenks(values: list[float], k: int) -> None:
    x = np.array(values)
    jenks_sse = _sse(x, classify(x, method="jenks", k=k).codes)
    assert _sse(x, classify(x, method="kmeans", k=k).codes) >= jenks_sse - 1e-9


# --------------------------------------------------------------------------
# each method against a hand-computed answer


def test_quantile_equal_counts() -> None:
    # 10 distinct values, k=3: classes close after ceil(10/3)=4 and ceil(20/3)=7
    x = np.arange(10.0)[::-1]
    np.testing.assert_array_equal(breaks(x, method="quantile"), [3.0, 6.0])
    assert classify(x, method="quantile").breaks["n"].tolist() == [4, 3, 3]


@given(n=st.integers(1, 200), k=st.integers(2, 7))
def test_quantile_counts_differ_by_at_most_one(n: int, k: int) -> None:
    x = np.random.default_rng(n).permutation(n).astype(float)  # distinct
    counts = classify(x, method="quantile", k=k).breaks["n"].to_numpy()
    assert counts.sum() == n
    assert counts.size == min(n, k)
    assert counts.max() - counts.min() <= 1


def test_equal_intervals_have_equal_width() -> None:
    x = np.array([0.0, 1.0, 3.0, 7.5, 12.0])
    b = breaks(x, method="equal", k=4)
    np.testing.assert_allclose(b, [3.0, 6.0, 9.0])
    np.testing.assert_allclose(np.diff(np.concatenate(([0.0], b, [12.0]))), 3.0)
    lv = classify(x, method="equal", k=4)
    # 3.0 sits on a break: lower class; no value falls in (3, 6]: empty level 2
    np.testing.assert_array_equal(lv.codes, [0, 0, 0, 2, 3])
    table = lv.breaks
    assert table["n"].tolist() == [3, 0, 1, 1]
    assert table.loc[1, ["lower", "upper"]].isna().all()


def test_fixed_uses_the_thresholds_exactly() -> None:
    x = np.array([5.0, 10.0, np.nextafter(10.0, 11.0), 20.0, 25.0, np.nan])
    lv = classify(x, method="fixed", thresholds=[10.0, 20.0])
    np.testing.assert_array_equal(lv.codes, [0, 0, 1, 1, 2, -1])
    assert lv.k == 3 and lv.level_names == ("low", "medium", "high")
    np.testing.assert_array_equal(
        breaks(x, method="fixed", thresholds=[10.0, 20.0]), [10.0, 20.0]
    )
    np.testing.assert_array_equal(lv.breaks["upper_break"], [10.0, 20.0, np.inf])
    # classes are kept (and may be empty): nothing above 100
    lv = classify(x, method="fixed", thresholds=[10.0, 100.0], k=3)
    assert lv.breaks["n"].tolist() == [2, 3, 0]


def test_kmeans_finds_well_separated_clusters() -> None:
    rng = np.random.default_rng(3)
    truth = np.repeat([0, 1, 2], [10, 8, 12])
    x = np.array([5.0, 50.0, 95.0])[truth] + rng.uniform(-2.0, 2.0, truth.size)
    shuffle = rng.permutation(truth.size)
    np.testing.assert_array_equal(
        classify(x[shuffle], method="kmeans").codes, truth[shuffle]
    )


def test_kmeans_drops_a_cluster_left_empty() -> None:
    # Quantile start {16.42, 19.15} {26.97, 59.87} {67.27, 78.71} {99.47}: centres
    # 17.785, 43.42, 72.99, 99.47, midpoints 30.6, 58.2, 86.2, so no value is
    # nearest to 43.42 and Lloyd goes on with three clusters.
    x = np.array([16.42, 19.15, 26.97, 59.87, 67.27, 78.71, 99.47])
    lv = classify(x, method="kmeans", k=4)
    assert (lv.breaks["n"] > 0).all()
    assert lv.breaks["n"].sum() == x.size


def test_dalenius_hodges_hand_computed() -> None:
    # 4 bins of width 1 over [0, 4], closed on the right: [0,1], (1,2], (2,3], (3,4]
    # frequencies 16, 4, 1, 9 -> sqrt 4, 2, 1, 3 -> cumulative 4, 6, 7, 10.
    # k=3 targets 10/3 and 20/3; closest cumulative values at the inner edges
    # (4 at edge 1, 6 at edge 2, 7 at edge 3): 4 -> break 1.0; 7 -> break 3.0.
    x = np.array([0.0] + [1.0] + [0.5] * 14 + [1.5] * 4 + [2.5] + [3.5] * 8 + [4.0])
    b = breaks(x, method="dalenius_hodges", bins=4)
    np.testing.assert_array_equal(b, [1.0, 3.0])
    lv = classify(x, method="dalenius_hodges", bins=4)
    assert lv.breaks["n"].tolist() == [16, 5, 9]
    assert lv.codes[1] == 0  # 1.0 is on the edge: first bin, lower class


def test_dalenius_hodges_default_bins() -> None:
    rng = np.random.default_rng(5)
    for n, expected in [(12, 10), (300, 100), (101, 50)]:
        x = rng.gamma(2.0, 5.0, size=n)
        np.testing.assert_array_equal(
            breaks(x, method="dalenius_hodges"),
            breaks(x, method="dalenius_hodges", bins=expected),
        )


# --------------------------------------------------------------------------
# scope, missing data, degenerate input, labels


@pytest.mark.parametrize("method", METHODS)
def test_region_scope_equals_each_region_alone(method: str) -> None:
    rng = np.random.default_rng(11)
    groups = rng.choice(["north", "south", "east"], size=60)
    x = np.where(groups == "south", 40.0, 0.0) + rng.gamma(2.0, 5.0, size=60)
    x[[3, 17]] = np.nan
    kwargs = _method_kwargs(method, 3)
    lv = classify(x, groups=groups, **kwargs)
    assert lv.scope == "region"
    assert lv.breaks["group"].unique().tolist() == ["east", "north", "south"]
    for g, block in lv.breaks.groupby("group", sort=False):
        alone = classify(x[groups == g], **kwargs)
        np.testing.assert_array_equal(lv.codes[groups == g], alone.codes)
        expected = alone.breaks.assign(group=g)
        pd.testing.assert_frame_equal(block.reset_index(drop=True), expected)
    assert classify(x, **kwargs).scope == "national"


def test_region_scope_differs_from_national() -> None:
    x = np.array([1.0, 2.0, 3.0, 101.0, 102.0, 103.0])
    groups = np.array([2, 2, 2, 10, 10, 10])
    lv = classify(x, groups=groups, method="equal", k=2)
    np.testing.assert_array_equal(lv.codes, [0, 0, 1, 0, 0, 1])
    assert lv.breaks["group"].tolist() == ["2", "2", "10", "10"]  # natural order
    np.testing.assert_array_equal(
        classify(x, method="equal", k=2).codes, [0, 0, 0, 1, 1, 1]
    )


@pytest.mark.parametrize("method", METHODS)
def test_nan_is_no_data_and_ignored(method: str) -> None:
    x = np.array([np.nan, 1.0, 2.0, 30.0, np.nan, 31.0, 60.0, 61.0])
    kwargs = _method_kwargs(method, 3)
    lv = classify(x, **kwargs)
    assert lv.labels[[0, 4]].tolist() == ["no data", "no data"]
    np.testing.assert_array_equal(lv.codes[[0, 4]], -1)
    np.testing.assert_array_equal(
        breaks(x, **kwargs), breaks(x[~np.isnan(x)], **kwargs)
    )
    np.testing.assert_array_equal(
        lv.codes[~np.isnan(x)], classify(x[~np.isnan(x)], **kwargs).codes
    )


@pytest.mark.parametrize("method", METHODS)
def test_all_nan(method: str) -> None:
    kwargs = _method_kwargs(method, 3)
    lv = classify([np.nan, np.nan, np.nan], **kwargs)
    np.testing.assert_array_equal(lv.codes, [-1, -1, -1])
    assert lv.labels.tolist() == ["no data"] * 3
    assert lv.breaks.empty
    assert breaks([np.nan], **kwargs).size == 0
    # a region without data gets no rows (and b, with 2 values, cannot fill 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClriskWarning)
        lv = classify([np.nan, 5.0, 6.0], groups=["a", "b", "b"], **kwargs)
    assert set(lv.breaks["group"]) == {"b"}


@pytest.mark.parametrize("method", DATA_DRIVEN)
def test_warns_about_regions_that_cannot_fill_k_levels(method: str) -> None:
    """A one-territory region is always "low" within regions: said, not silent
    (review of 2026-12-02)."""
    values = [1.0, 2.0, 3.0, 4.0, 30.0]
    with pytest.warns(ClriskWarning, match=r"1 region\(s\) with fewer than 3.*\['C'\]"):
        lv = classify(values, method=method, groups=["A"] * 4 + ["C"], k=3)
    assert lv.labels[-1] == "low"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        classify(values, method=method, k=3)  # nationally: no warning
        classify(values, method=method, groups=["A"] * 5, k=3)


def test_warns_about_thresholds_given_as_proportions() -> None:
    with pytest.warns(ClriskWarning, match="in percent"):
        lv = classify([2.8, 10.0, 23.6], method="fixed", thresholds=[0.05, 0.10])
    assert lv.labels.tolist() == ["high"] * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        classify([2.8, 10.0, 23.6], method="fixed", thresholds=[5, 10])
        classify([0.02, 0.1, 0.3], method="fixed", thresholds=[0.05, 0.10])


@pytest.mark.parametrize("method", DATA_DRIVEN)
def test_fewer_distinct_values_than_k(method: str) -> None:
    lv = classify([7.0, 5.0, 5.0, 7.0], method=method, k=3)
    assert lv.labels.tolist() == ["medium", "low", "low", "medium"]
    assert lv.breaks["level"].tolist() == ["low", "medium"]
    if method != "dalenius_hodges":  # whose breaks are bin edges, not values
        np.testing.assert_array_equal(lv.breaks["upper_break"], [5.0, np.inf])
    lv = classify([4.0, 4.0], method=method, k=5)
    np.testing.assert_array_equal(lv.codes, [0, 0])
    assert len(lv.breaks) == 1


def test_equal_with_one_or_two_distinct_values() -> None:
    assert classify([4.0, 4.0], method="equal").labels.tolist() == ["low", "low"]
    # equal intervals keep their meaning: the maximum is "high"
    assert classify([1.0, 2.0], method="equal").labels.tolist() == ["low", "high"]


def test_empty_input() -> None:
    lv = classify([])
    assert lv.codes.size == 0 and lv.breaks.empty
    assert lv.breaks.dtypes.to_dict() == {
        "group": "str",
        "level": "str",
        "level_code": "int64",
        "lower": "float64",
        "upper": "float64",
        "upper_break": "float64",
        "n": "int64",
    }


def test_labels() -> None:
    x = np.arange(8.0)
    assert classify(x, k=4).level_names == ("level 1", "level 2", "level 3", "level 4")
    lv = classify(x, k=2, labels=["calm", "alert"])
    assert lv.breaks["level"].tolist() == ["calm", "alert"]
    assert set(lv.labels) == {"calm", "alert"}
    assert lv.method == "jenks" and lv.k == 2


def test_public_api() -> None:
    assert levels.__all__ == ["METHODS", "Levels", "breaks", "classify"]
    assert METHODS == (
        "jenks",
        "dalenius_hodges",
        "kmeans",
        "quantile",
        "equal",
        "fixed",
    )


# --------------------------------------------------------------------------
# invalid parameters


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"method": "foo"},
            r"'method' parameter of classify must be one of "
            r"'jenks', 'dalenius_hodges', .*; got 'foo'\.",
        ),
        ({"k": 1}, r"'k' parameter of classify must be an int >= 2; got 1\."),
        ({"k": 2.5}, r"'k' parameter .* int >= 2; got 2\.5\."),
        ({"k": True}, r"'k' parameter .* got True\."),
        (
            {"method": "fixed"},
            r"'thresholds' parameter of classify is required "
            r"with method='fixed'.*got None\.",
        ),
        (
            {"method": "fixed", "thresholds": [3.0, 2.0]},
            r"'thresholds' .* strictly increasing .*; got \[3\.0, 2\.0\]\.",
        ),
        ({"method": "fixed", "thresholds": [1.0, 1.0]}, r"strictly increasing"),
        ({"method": "fixed", "thresholds": [1.0, np.nan]}, r"finite numbers"),
        ({"method": "fixed", "thresholds": []}, r"non-empty"),
        ({"method": "fixed", "thresholds": ["a"]}, r"'thresholds' .* got \['a'\]"),
        (
            {"method": "fixed", "thresholds": [1.0, 2.0], "k": 4},
            r"'k' .* must equal len\(thresholds\) \+ 1 = 3 .*; got 4\.",
        ),
        (
            {"thresholds": [1.0]},
            r"'thresholds' parameter of classify is only used "
            r"with method='fixed'; got \[1\.0\] with method='jenks'",
        ),
        ({"bins": 5}, r"'bins' .* only used with method='dalenius_hodges'; got 5"),
        ({"method": "dalenius_hodges", "bins": 1}, r"'bins' .* int >= 2; got 1\."),
        (
            {"groups": ["a", "b"]},
            r"'groups' parameter of classify must be 1-D with "
            r"one region label per value \(4\); got shape \(2,\)\.",
        ),
        ({"groups": ["a", None, "b", "b"]}, r"'groups' .* missing labels; got 1"),
        (
            {"groups": ["1", 1, "b", "b"]},
            r"'groups' .* distinct as text .*; got \[1, '1', 'b'\]\.",
        ),
        (
            {"labels": ["a", "b"]},
            r"'labels' .* must be 3 distinct strings.*"
            r"got \['a', 'b'\]\.",
        ),
        ({"labels": ["a", "a", "b"]}, r"'labels' .* 3 distinct strings"),
        ({"labels": ["a", "no data", "b"]}, r"'labels' .* not 'no data'"),
    ],
)
def test_invalid_parameters(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        classify([1.0, 2.0, 3.0, 4.0], **kwargs)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (
            [1.0, np.inf, -np.inf],
            r"'values' parameter of breaks must be finite.*"
            r"got 2 infinite value\(s\), e\.g\. inf at position 1, -inf at position 2",
        ),
        ([[1.0, 2.0], [3.0, 4.0]], r"'values' .* must be 1-D.*got shape \(2, 2\)\."),
        (3.0, r"'values' .* must be 1-D.*got shape \(\)\."),
        (["a", "b"], r"'values' .* cannot be read as floats"),
    ],
)
def test_invalid_values(values: object, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        breaks(values)  # type: ignore[arg-type]
    with pytest.raises(
        InvalidParameterError, match=match.replace("breaks", "classify")
    ):
        classify(values)  # type: ignore[arg-type]


def test_invalid_parameter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'method'"):
        breaks([1.0], method="natural")
