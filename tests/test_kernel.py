"""The compiled kernel equals the plain-numpy reference kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clrisk
from clrisk import kernel
from clrisk.exceptions import InvalidParameterError
from clrisk.scoring import Scorer, StatsLayout, accumulate, accumulate_reference

pytestmark = pytest.mark.skipif(
    not kernel.available(), reason="numba is not installed (pip install clrisk[fast])"
)


@st.composite
def problems(draw: st.DrawFn) -> tuple:
    """Random layouts, coefficients, codes, numerics, cells and weights."""
    sizes = tuple(draw(st.lists(st.integers(1, 7), min_size=0, max_size=6)))
    n_num = draw(st.integers(0, 3))
    n = draw(st.integers(0, 3000))
    n_cells = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    dtype = draw(st.sampled_from([np.int8, np.int16, np.int32]))
    codes = np.empty((n, len(sizes)), dtype=dtype, order="F")
    for j, L in enumerate(sizes):
        codes[:, j] = rng.integers(0, L, n)
    numerics = np.asfortranarray(rng.normal(0, 3, (n, n_num)))
    cell = rng.integers(0, n_cells, n)
    if draw(st.booleans()):
        cell = np.sort(cell)  # censuses often come sorted by territory
    weight = rng.uniform(0, 5, n) if draw(st.booleans()) else None
    scale = draw(st.sampled_from([0.1, 1.0, 8.0]))  # 8: probabilities near 0 and 1
    luts = tuple(rng.normal(0, scale, L) for L in sizes)
    link = draw(st.sampled_from(["logit", "probit"]))
    scorer = Scorer(
        float(rng.normal(0, scale)), luts, rng.normal(0, scale, n_num), link
    )
    return scorer, codes, numerics, cell, n_cells, weight, StatsLayout(sizes, n_num)


def _close(a: np.ndarray, b: np.ndarray) -> None:
    # 1e-12 relative to the size of the sums (terms of both signs can cancel)
    scale = np.maximum(np.abs(a).max(axis=0, initial=0.0), 1.0)
    np.testing.assert_allclose(a / scale, b / scale, rtol=0, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_compiled_equals_reference(problem: tuple) -> None:
    ref = accumulate_reference(*problem)
    _close(kernel.accumulate_compiled(*problem), ref)


@settings(max_examples=40, deadline=None)
@given(problems(), st.booleans(), st.booleans())
def test_partial_blocks(problem: tuple, do_x: bool, do_g: bool) -> None:
    """Only the blocks asked for are filled; they equal the reference's."""
    layout = problem[-1]
    ref = accumulate_reference(*problem)
    got = kernel.accumulate_compiled(*problem, blocks=(do_x, do_g))
    _close(got[:, :4], ref[:, :4])
    for block, on in ((layout.x, do_x), (layout.g, do_g)):
        if on:
            _close(got[:, block], ref[:, block])
        else:
            assert not got[:, block].any()


def test_dispatch_and_bad_kernel_name() -> None:
    scorer = Scorer(0.5, (np.array([0.0, 1.0]),), np.zeros(0), "logit")
    args = (
        scorer,
        np.array([[0], [1]], np.int16),
        np.zeros((2, 0)),
        np.array([0, 0]),
        1,
        None,
        StatsLayout((2,), 0),
    )
    np.testing.assert_allclose(
        accumulate(*args, kernel="compiled"),
        accumulate(*args, kernel="numpy"),
        rtol=1e-15,
    )
    with pytest.raises(InvalidParameterError, match="'kernel'"):
        accumulate(*args, kernel="gpu")


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(
        random_state=8,
        n_territories=50,
        n_regions=5,
        children_per_territory=300,
        survey_children=5000,
    )


@settings(max_examples=10, deadline=None)
@given(chunk=st.integers(500, 20_000))
def test_predict_same_with_either_kernel(country: clrisk.Country, chunk: int) -> None:
    model = _model(country)
    a = clrisk.predict(
        model, country.census, **country.predict_kwargs, by="sex", kernel="numpy"
    )
    b = clrisk.predict(
        model,
        country.census,
        **country.predict_kwargs,
        by="sex",
        kernel="compiled",
        chunk_size=chunk,
    )
    num = a.table.select_dtypes("number").columns
    np.testing.assert_allclose(a.table[num], b.table[num], rtol=1e-12, atol=1e-12)
    assert a.table["level"].tolist() == b.table["level"].tolist()


_MODELS: dict[int, clrisk.RiskModel] = {}


def _model(country: clrisk.Country) -> clrisk.RiskModel:
    key = id(country)
    if key not in _MODELS:
        _MODELS[key] = clrisk.RiskModel(country.spec).fit(
            country.survey, **country.fit_kwargs
        )
    return _MODELS[key]
