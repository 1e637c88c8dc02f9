"""Fuzzing the public boundaries: every outcome is a valid result or a ClriskError.

Never another exception, never a silently shorter result (issue 6).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clrisk
from clrisk.exceptions import ClriskError
from clrisk.io import read_table

NASTY = [
    None,
    np.nan,
    "",
    " ",
    "abc",
    "05001",
    "5001",
    -1,
    0,
    1,
    2,
    1e308,
    np.inf,
    -np.inf,
    True,
    "1,5",
    "ñandú",
    "=1+1",
    10**20,
    "NaN",
]


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(
        random_state=12,
        n_territories=20,
        n_regions=2,
        children_per_territory=40,
        survey_children=2500,
    )


@pytest.fixture(scope="module")
def model(country: clrisk.Country) -> clrisk.RiskModel:
    return clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)


@st.composite
def spoiled(draw: st.DrawFn, table: pd.DataFrame) -> pd.DataFrame:
    """A copy of `table` with some cells, columns and dtypes spoiled."""
    out = table.copy()
    n = len(out)
    for _ in range(draw(st.integers(0, 4))):
        col = draw(st.sampled_from(list(out.columns)))
        action = draw(st.sampled_from(["cells", "dtype", "drop", "rename"]))
        if action == "cells":
            rows = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=5))
            value = draw(st.sampled_from(NASTY))
            out[col] = out[col].astype(object)
            out.iloc[rows, out.columns.get_loc(col)] = value
        elif action == "dtype":
            kind = draw(st.sampled_from(["str", "float", "category", "object"]))
            try:
                out[col] = out[col].astype(kind)
            except (ValueError, TypeError):
                out[col] = out[col].astype(str)
        elif action == "drop":
            out = out.drop(columns=col)
        else:
            out = out.rename(columns={col: col + "_x"})
    if draw(st.booleans()):
        out = out.sample(frac=1.0, random_state=draw(st.integers(0, 99)))
    return out


def _check_accounting(quality: clrisk.DataQuality, n: int) -> None:
    assert quality.rows_read == n, "rows were lost before accounting"
    assert quality.reconciles


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_predict_on_spoiled_frames(
    country: clrisk.Country, model: clrisk.RiskModel, data: st.DataObject
) -> None:
    frame = data.draw(spoiled(country.census))
    policy = data.draw(st.sampled_from(["error", "drop"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clrisk.ClriskWarning)
        try:
            risk = clrisk.predict(
                model, frame, **country.predict_kwargs, on_invalid=policy
            )
        except ClriskError:
            return
    _check_accounting(risk.quality, len(frame))
    assert risk.table["n_children"].sum() == risk.quality.rows_used


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_fit_on_spoiled_surveys(country: clrisk.Country, data: st.DataObject) -> None:
    survey = data.draw(spoiled(country.survey))
    policy = data.draw(st.sampled_from(["error", "drop"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clrisk.ClriskWarning)
        try:
            model = clrisk.RiskModel(country.spec, on_invalid=policy).fit(
                survey, **country.fit_kwargs
            )
        except ClriskError:
            return
    _check_accounting(model.quality_, len(survey))
    assert np.isfinite(model.params_).all() and np.isfinite(model.cov_).all()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.text(alphabet=st.sampled_from(list('a;b,c\t|"\n\r1.5 ñ=')), max_size=300),
    )
)
def test_read_table_on_arbitrary_bytes(tmp_path: Path, content: bytes | str) -> None:
    path = tmp_path / "fuzz.csv"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    try:
        table, info = read_table(path)
    except ClriskError:
        return
    assert isinstance(table, pd.DataFrame) and info.rows == len(table)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_territory_effects_on_spoiled_surveys(
    country: clrisk.Country, model: clrisk.RiskModel, data: st.DataObject
) -> None:
    survey = data.draw(spoiled(country.survey))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clrisk.ClriskWarning)
        try:
            fx = clrisk.territory_effects(model, survey, **country.fit_kwargs)
        except ClriskError:
            return
    assert np.isfinite(fx.sd) and fx.sd >= 0 and 0 <= fx.p_value <= 1
    lo, hi = fx.sd_interval
    assert 0 <= lo <= fx.sd <= hi
    assert np.isfinite(fx.table["effect"]).all()
    assert fx.table["n"].sum() <= len(survey)


ARRAY_VALUES = st.sampled_from([0.0, 1.0, 0.5, -1.0, 2.0, np.nan, np.inf, 1e-300])


@given(
    y=st.lists(ARRAY_VALUES, max_size=8),
    p=st.lists(ARRAY_VALUES, max_size=8),
    w=st.lists(ARRAY_VALUES, max_size=8),
    cutoff=st.one_of(st.none(), st.sampled_from([0.5, 0.0, np.nan, 1.5, 1e-9])),
)
def test_classification_table_on_arbitrary_arrays(
    y: list[float], p: list[float], w: list[float], cutoff: float | None
) -> None:
    from clrisk.diagnostics import classification_table

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning either
        try:
            t = classification_table(np.array(y), np.array(p), np.array(w), cutoff)
        except ClriskError:
            return
    cells = [t.true_pos, t.false_neg, t.false_pos, t.true_neg]
    assert all(np.isfinite(c) and c >= 0 for c in cells)
    assert sum(cells) == pytest.approx(float(np.sum(w)))
    assert 0 < t.cutoff < 1 and t.n == len(y)
