"""The compiled kernel equals the plain-numpy reference kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clrisk
from clrisk import kernel
from clrisk.exceptions import InvalidParameterError
from clrisk.scoring import (
    Scorer,
    StatsLayout,
    accumulate,
    accumulate_reference,
    shifted_risk,
)

pytestmark = pytest.mark.skipif(
    not kernel.available(), reason="numba is not installed (pip install clrisk[fast])"
)


@st.composite
def problems(draw: st.DrawFn) -> tuple:
    """Random layouts, coefficients, codes, numerics, cells and weights."""
    # up to 10 features and 9 numerics: groups and numeric columns are
    # handled several per loop in the kernel, with remainders
    sizes = tuple(draw(st.lists(st.integers(1, 7), min_size=0, max_size=10)))
    n_num = draw(st.integers(0, 9))
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
    form = draw(st.sampled_from(["fortran", "c", "columns"]))
    codes, numerics = _form(codes, form, rng), _form(numerics, form, rng)
    return scorer, codes, numerics, cell, n_cells, weight, StatsLayout(sizes, n_num)


def _form(a: np.ndarray, form: str, rng: np.random.Generator) -> object:
    """Rows as the kernel may get them: a Fortran-ordered 2-D array (columns
    contiguous), a C-ordered one, or a list of columns, each contiguous or a
    strided view, and read-only (columns of an Arrow table)."""
    if form == "fortran":
        return a
    if form == "c":
        return np.ascontiguousarray(a)
    columns = []
    for j in range(a.shape[1]):
        if rng.random() < 0.5:
            col = a[:, j].copy()
        else:  # every other element of a larger array
            wide = np.zeros(2 * len(a), dtype=a.dtype)
            wide[::2] = a[:, j]
            col = wide[::2]
        col.flags.writeable = False
        columns.append(col)
    return columns


def _close(a: np.ndarray, b: np.ndarray) -> None:
    # 1e-12 relative to the size of the sums (terms of both signs can cancel)
    scale = np.maximum(np.abs(a).max(axis=0, initial=0.0), 1.0)
    np.testing.assert_allclose(a / scale, b / scale, rtol=0, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(problems(), st.sampled_from([None, 1, 4, 16, 64, 256, 4096]))
def test_compiled_equals_reference(problem: tuple, cap: int | None) -> None:
    """Any packing of the features into joint codes gives the same sums."""
    ref = accumulate_reference(*problem)
    _close(kernel.accumulate_compiled(*problem, cap=cap), ref)


@pytest.mark.parametrize("cap", [1, 6, 4096])
@pytest.mark.parametrize("n_num", [4, 9])
def test_many_groups_and_numerics(cap: int, n_num: int) -> None:
    """Every loop that takes several groups, features or numeric columns at
    once, and its remainder: 11 features (11 groups at cap 1; groups of one
    or two at cap 6; two groups, of five and six features, at 4096) and 4
    or 9 numerics, with every choice of blocks."""
    rng = np.random.default_rng(cap + n_num)
    sizes = (2, 3, 4, 5, 6, 7, 2, 3, 2, 2, 3)
    n, n_cells = 5000, 7
    codes = np.empty((n, len(sizes)), dtype=np.int8, order="F")
    for j, L in enumerate(sizes):
        codes[:, j] = rng.integers(0, L, n)
    numerics = np.asfortranarray(rng.normal(0, 1, (n, n_num)))
    cell = np.sort(rng.integers(0, n_cells, n))
    luts = tuple(rng.normal(0, 0.5, L) for L in sizes)
    scorer = Scorer(-1.0, luts, rng.normal(0, 0.3, n_num), "logit")
    problem = (scorer, codes, numerics, cell, n_cells, rng.uniform(0, 2, n))
    layout = StatsLayout(sizes, n_num)
    ref = accumulate_reference(*problem, layout)
    for blocks in ((False, False), (True, False), (False, True), (True, True)):
        got = kernel.accumulate_compiled(*problem, layout, blocks=blocks, cap=cap)
        _close(got[:, :4], ref[:, :4])
        for block, on in ((layout.x, blocks[0]), (layout.g, blocks[1])):
            if on:
                _close(got[:, block], ref[:, block])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=0, max_size=12), st.integers(1, 300))
def test_groups_pack_every_feature_once(sizes: list[int], cap: int) -> None:
    """Each feature is in one group; a group is one feature or fits the cap."""
    groups = kernel.Groups.pack(tuple(sizes), cap)
    members = sorted(j for m in groups.members for j in m)
    assert members == list(range(len(sizes)))
    for m, joint in zip(groups.members, groups.joint_sizes, strict=True):
        assert len(m) == 1 or joint <= cap
    # marginals of a joint count table give back each feature's level counts
    rng = np.random.default_rng(len(sizes) * 1000 + cap)
    codes = np.stack([rng.integers(0, L, 50) for L in sizes], axis=1) if sizes else None
    joint = np.zeros((1, int(groups.offsets[-1])))
    for m, start in zip(groups.members, groups.offsets[:-1], strict=True):
        idx = np.zeros(50, np.int64)
        for j in m:
            idx = idx * sizes[j] + codes[:, j]
        np.add.at(joint[0], start + idx, 1.0)
    want = (
        np.concatenate(
            [np.bincount(codes[:, j], minlength=L) for j, L in enumerate(sizes)]
        )
        if sizes
        else np.zeros(0)
    )
    np.testing.assert_array_equal(groups.marginals(joint)[0], want)


def test_joint_codes_beyond_uint16_are_refused() -> None:
    """A cap letting a group pass 65,536 joint levels is a clear error."""
    scorer = Scorer(0.0, (np.zeros(300), np.zeros(300)), np.zeros(0), "logit")
    args = (
        scorer,
        np.zeros((4, 2), np.int16),
        np.zeros((4, 0)),
        np.zeros(4, np.int64),
        1,
        None,
        StatsLayout((300, 300), 0),
    )
    with pytest.raises(InvalidParameterError, match="65,536 joint levels"):
        kernel.accumulate_compiled(*args, cap=2**20)
    np.testing.assert_allclose(
        kernel.accumulate_compiled(*args), accumulate_reference(*args), atol=1e-12
    )


def test_extreme_linear_predictors() -> None:
    """|eta| beyond the range of exp (to 1e6): finite, p in [0, 1], exact f."""
    eta = np.array([-1e6, -800.0, -40.0, 0.0, 40.0, 800.0, 1e6])
    scorer = Scorer(0.0, (), np.array([1.0]), "logit")
    args = (
        scorer,
        np.zeros((eta.size, 0), np.int16),
        eta[:, None].copy(order="F"),
        np.arange(eta.size),
        eta.size,
        None,
        StatsLayout((), 1),
    )
    got = kernel.accumulate_compiled(*args)
    assert np.isfinite(got).all()
    z = np.exp(-np.abs(eta))  # f = z / (1 + z)^2 without cancellation
    p = np.where(eta >= 0, 1 / (1 + z), z / (1 + z))
    np.testing.assert_allclose(got[:, 2], p, rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(got[:, 3], z / (1 + z) ** 2, rtol=1e-14, atol=1e-300)
    # the numpy reference too, row by row (its logit density is F(eta)F(-eta),
    # which keeps its digits where 1 - p does not)
    ref = accumulate_reference(*args)
    np.testing.assert_allclose(ref[:, 3], z / (1 + z) ** 2, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=1e-300)


@settings(max_examples=60, deadline=None)
@given(problems(), st.integers(0, 4), st.sampled_from([0.0, 0.5, 20.0]))
def test_shifted_risk_compiled_equals_reference(
    problem: tuple, n_shifts: int, spread: float
) -> None:
    """The counterfactual pass: Σ w·F(η - shift[cell, j]) per cell and shift,
    any link, weights, cell order and block boundary, equals the reference."""
    scorer, codes, numerics, cell, n_cells, weight, _ = problem
    rng = np.random.default_rng(n_shifts)
    shifts = rng.normal(0, spread, (n_cells, n_shifts))
    args = (scorer, codes, numerics, cell, shifts, weight)
    ref = shifted_risk(*args, kernel="numpy")
    got = kernel.shifted_risk_compiled(*args)
    assert got.shape == (n_cells, n_shifts)
    _close(got, ref)


@settings(max_examples=40, deadline=None)
@given(problems(), st.booleans(), st.booleans(), st.sampled_from([None, 1, 64]))
def test_partial_blocks(problem: tuple, do_x: bool, do_g: bool, cap: int) -> None:
    """Only the blocks asked for are filled; they equal the reference's."""
    layout = problem[-1]
    ref = accumulate_reference(*problem)
    got = kernel.accumulate_compiled(*problem, blocks=(do_x, do_g), cap=cap)
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


def test_accumulator_sets_sums_aside_when_cells_outgrow_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pieces whose cells outgrow the per-thread budget switch to smaller
    groups mid-pass; the totals still equal the reference over all rows."""
    rng = np.random.default_rng(3)
    layout = StatsLayout((3, 2, 4, 5), 2)
    luts = tuple(np.r_[0.0, rng.normal(0, 0.5, L - 1)] for L in layout.level_sizes)
    scorer = Scorer(-1.0, luts, rng.normal(0, 0.3, 2), "logit")
    n = 3000
    codes = np.asfortranarray(
        np.stack([rng.integers(0, L, n) for L in layout.level_sizes], 1), np.int16
    )
    numerics = np.asfortranarray(rng.normal(size=(n, 2)))
    cell = np.r_[np.zeros(1000, np.int64), rng.integers(0, 40, 2000)]
    acc = kernel.Accumulator(scorer, layout)
    monkeypatch.setattr(kernel, "ACC_BYTES", 8 * acc.n_threads * 5 * 130)
    caps = []
    for lo, hi, n_cells in ((0, 1000, 1), (1000, 2000, 40), (2000, 3000, 40)):
        acc.add(codes[lo:hi], numerics[lo:hi], cell[lo:hi], n_cells, None)
        caps.append(acc._cap)
    assert caps[0] > caps[1]  # the cap came down when the cells arrived
    want = accumulate_reference(scorer, codes, numerics, cell, 40, None, layout)
    np.testing.assert_allclose(acc.result(40), want, rtol=1e-12, atol=1e-12)


def test_accumulator_refuses_cell_numbers_out_of_range() -> None:
    """Cell numbers outside 0..n_cells-1 are a clear error, not a stray write."""
    layout = StatsLayout((2,), 0)
    scorer = Scorer(0.0, (np.array([0.0, 1.0]),), np.zeros(0), "logit")
    acc = kernel.Accumulator(scorer, layout)
    codes = np.zeros((3, 1), dtype=np.int16, order="F")
    for cell in ([0, 1, 2], [0, -1, 1]):
        with pytest.raises(InvalidParameterError, match="Cell numbers"):
            acc.add(codes, np.zeros((3, 0)), np.array(cell), 2, None)
    weight = np.ones(3)
    weight.flags.writeable = False  # zero-copy from Arrow, or copy-on-write
    acc.add(codes, np.zeros((3, 0)), np.array([0, 1, 1]), 2, weight)
    np.testing.assert_array_equal(acc.result(2)[:, 0], [1, 2])


def test_columns_equal_the_matrix_exactly() -> None:
    """Codes and numerics given as separate columns (each where it lies, of
    the codes' type or another) give the very sums of the 2-D arrays."""
    rng = np.random.default_rng(3)
    n, n_cells, sizes = 20_000, 13, (3, 5, 2, 4)
    codes = np.asfortranarray(
        np.stack([rng.integers(0, L, n) for L in sizes], 1).astype(np.int8)
    )
    numerics = np.asfortranarray(rng.normal(0, 1, (n, 3)))
    cell = np.sort(rng.integers(0, n_cells, n))
    luts = tuple(rng.normal(0, 0.5, L) for L in sizes)
    scorer = Scorer(-1.0, luts, rng.normal(0, 0.3, 3), "logit")
    layout = StatsLayout(sizes, 3)
    matrix = kernel.accumulate_compiled(
        scorer, codes, numerics, cell, n_cells, None, layout
    )
    code_cols = [codes[:, j].copy() for j in range(len(sizes))]
    num_cols = [numerics[:, q].copy() for q in range(3)]
    got = kernel.accumulate_compiled(
        scorer, code_cols, num_cols, cell, n_cells, None, layout
    )
    np.testing.assert_array_equal(got, matrix)
    shifts = rng.normal(0, 0.3, (n_cells, 2))
    np.testing.assert_array_equal(
        kernel.shifted_risk_compiled(scorer, code_cols, num_cols, cell, shifts, None),
        kernel.shifted_risk_compiled(scorer, codes, numerics, cell, shifts, None),
    )
    np.testing.assert_array_equal(
        accumulate_reference(scorer, code_cols, num_cols, cell, n_cells, None, layout),
        accumulate_reference(scorer, codes, numerics, cell, n_cells, None, layout),
    )


def test_columns_of_the_wrong_shape_or_type_are_refused() -> None:
    """The compiled code reads columns through their addresses and trusts
    them: each must be 1-D, of the rows' length, one per feature of the
    model, and codes integers within the feature's levels (the reference
    kernel refuses the same)."""
    scorer = Scorer(0.0, (np.array([0.0, 1.0]),), np.zeros(1), "logit")
    layout = StatsLayout((2,), 1)
    cell = np.zeros(4, np.int64)
    x = [np.zeros(4)]
    good = [np.zeros(4, np.int8)]
    shifts = np.zeros((1, 1))
    for codes, numerics, match in (
        ([np.zeros(3, np.int8)], x, "one length"),
        (good, [np.zeros(5)], "one length"),
        ([np.zeros((4, 1), np.int8)], x, "1-D"),
        ([np.zeros(4)], x, "integers"),
        ([], x, "codes have 0 columns; the model has 1"),
        (good * 2, x, "codes have 2 columns"),
        (good, [], "numerics have 0 columns; the model has 1"),
        (good, x * 3, "numerics have 3 columns"),
        ([np.array([0, 1, 2, 0], np.int8)], x, r"in 0\.\.1 .*got 0\.\.2"),
        ([np.array([0, -1, 1, 0], np.int8)], x, r"got -1\.\.1"),
        (np.zeros((4, 1, 1), np.int8), x, "2-D array or a sequence"),
    ):
        with pytest.raises(InvalidParameterError, match=match):
            kernel.accumulate_compiled(scorer, codes, numerics, cell, 1, None, layout)
        with pytest.raises(InvalidParameterError, match=match):
            kernel.shifted_risk_compiled(scorer, codes, numerics, cell, shifts, None)
        if match not in ("1-D", "integers") and "one length" not in match:
            with pytest.raises(InvalidParameterError, match=match):
                accumulate_reference(scorer, codes, numerics, cell, 1, None, layout)
    # codes known to be level indices (encode's) are not checked again; one
    # beyond its levels all the same (memory changed after the check) stops
    # the compiled pass rather than read or write out of bounds
    kernel.accumulate_compiled(
        scorer, good, x, cell, 1, None, layout, codes_checked=True
    )
    wrong = [np.array([0, 1, 2, 0], np.int8)]
    with pytest.raises(InvalidParameterError, match="outside its feature's levels"):
        kernel.accumulate_compiled(
            scorer, wrong, x, cell, 1, None, layout, codes_checked=True
        )
    with pytest.raises(InvalidParameterError, match="outside its feature's levels"):
        kernel.shifted_risk_compiled(
            scorer, wrong, x, cell, shifts, None, codes_checked=True
        )
    # a layout of sums that does not fit the model
    for other in (StatsLayout((3,), 1), StatsLayout((2,), 0)):
        with pytest.raises(InvalidParameterError, match="does not fit the model"):
            kernel.accumulate_compiled(scorer, good, x, cell, 1, None, other)
        with pytest.raises(InvalidParameterError, match="does not fit the model"):
            accumulate_reference(scorer, good, x, cell, 1, None, other)


def test_reference_reads_boolean_codes_as_levels_and_counts_rows() -> None:
    """Boolean codes are levels 0/1 in both kernels (not a mask); the rows
    are told by the columns, zero included."""
    scorer = Scorer(0.0, (np.array([0.0, 3.0]),), np.zeros(0), "logit")
    codes = [np.array([True, False])]
    eta = scorer.linear_predictor(codes, [])
    np.testing.assert_array_equal(eta, [3.0, 0.0])
    layout, cell = StatsLayout((2,), 0), np.array([0, 1])
    np.testing.assert_allclose(
        accumulate(scorer, codes, [], cell, 2, None, layout, kernel="numpy"),
        kernel.accumulate_compiled(scorer, codes, [], cell, 2, None, layout),
        atol=1e-15,
    )
    assert scorer.linear_predictor(np.zeros((0, 1), np.int8), []).shape == (0,)
    assert scorer.linear_predictor([np.zeros(0, np.int8)], []).shape == (0,)
    with pytest.raises(InvalidParameterError, match="must have 4 rows"):
        Scorer(0.0, (np.zeros(2), np.zeros(2)), np.zeros(0), "logit").linear_predictor(
            [np.zeros(4, np.int8), np.zeros(1, np.int8)], []
        )


def test_compiled_passes_refuse_bad_cells_and_lengths() -> None:
    """Both compiled passes check what they trust: cell numbers in range and
    one length for every row array (the numpy reference raises too)."""
    scorer = Scorer(0.0, (np.array([0.0, 1.0]),), np.zeros(0), "logit")
    codes = np.zeros((4, 1), dtype=np.int8, order="F")
    numerics = np.zeros((4, 0))
    shifts = np.zeros((2, 1))
    for cell in ([0, 1, 1, -1], [0, 1, 1, 1_000_000]):
        with pytest.raises(InvalidParameterError, match="Cell numbers"):
            kernel.shifted_risk_compiled(
                scorer, codes, numerics, np.array(cell), shifts, None
            )
    with pytest.raises(InvalidParameterError, match="one length"):
        kernel.shifted_risk_compiled(
            scorer, codes, numerics, np.zeros(4, np.int64), shifts, np.ones(3)
        )
    acc = kernel.Accumulator(scorer, StatsLayout((2,), 0))
    with pytest.raises(InvalidParameterError, match="one length"):
        acc.add(codes, numerics, np.zeros(5, np.int64), 2, None)


@pytest.mark.parametrize("n_threads", [2, 3])
def test_threads_split_rows_and_add_up(
    monkeypatch: pytest.MonkeyPatch, n_threads: int
) -> None:
    """Enough rows for several threads (each a contiguous range into its own
    sums): the same sums as the reference, for both compiled passes."""
    monkeypatch.setattr(kernel, "_threads", lambda: n_threads)
    rng = np.random.default_rng(n_threads)
    n, n_cells, sizes = 40_000, 37, (3, 5, 2)
    codes = np.asfortranarray(
        np.stack([rng.integers(0, L, n) for L in sizes], 1).astype(np.int8)
    )
    numerics = np.asfortranarray(rng.normal(0, 1, (n, 2)))
    cell = rng.integers(0, n_cells, n)  # unsorted: runs of one row
    weight = rng.uniform(0, 3, n)
    luts = tuple(rng.normal(0, 0.5, L) for L in sizes)
    scorer = Scorer(-1.0, luts, rng.normal(0, 0.3, 2), "logit")
    layout = StatsLayout(sizes, 2)
    acc = kernel.Accumulator(scorer, layout)
    assert acc.n_threads == n_threads
    acc.add(codes, numerics, cell, n_cells, weight)
    ref = accumulate_reference(scorer, codes, numerics, cell, n_cells, weight, layout)
    _close(acc.result(n_cells), ref)
    shifts = rng.normal(0, 0.3, (n_cells, 4))
    args = (scorer, codes, numerics, cell, shifts, weight)
    _close(kernel.shifted_risk_compiled(*args), shifted_risk(*args, kernel="numpy"))


@pytest.mark.parametrize("kernel_name", ["compiled", "numpy"])
def test_pass_totals_pieces_with_the_same_keys_and_new_ones(kernel_name: str) -> None:
    """Pieces whose keys repeat those of the piece before (a file's batches)
    and pieces with other keys add to the right cells."""
    import pandas as pd

    from clrisk.scoring import PassTotals

    scorer = Scorer(-0.5, (np.array([0.0, 1.0]),), np.array([0.3]), "logit")
    layout = StatsLayout((2,), 1)
    rng = np.random.default_rng(4)
    totals = PassTotals(scorer, layout, kernel_name)
    every: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    names = {"a": 0, "b": 1, "c": 2}
    for piece in (["a", "b"], ["a", "b"], ["b", "c"], ["a", "b"], ["c"]):
        n = 50
        cell = rng.integers(0, len(piece), n)
        codes = rng.integers(0, 2, (n, 1)).astype(np.int8)
        x = rng.normal(0, 1, (n, 1))
        keys = pd.DataFrame({"territory": pd.Series(piece, dtype=object)})
        totals.add(keys, cell, codes, x, None)
        every.append((np.array([names[piece[c]] for c in cell]), codes, x))
    cells = np.concatenate([e[0] for e in every])
    codes = np.concatenate([e[1] for e in every])
    x = np.concatenate([e[2] for e in every])
    expected = accumulate_reference(scorer, codes, x, cells, 3, None, layout)
    stats = totals.stats()
    assert stats.keys["territory"].tolist() == ["a", "b", "c"]
    _close(stats.sums, expected)
