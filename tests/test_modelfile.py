"""The portable model file: round trip, validation, refusal of bad files."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clrisk
from clrisk.exceptions import ModelFormatError


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(
        random_state=21,
        n_territories=40,
        n_regions=4,
        children_per_territory=150,
        survey_children=4000,
    )


@pytest.fixture(scope="module")
def model(country: clrisk.Country) -> clrisk.RiskModel:
    return clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)


def test_round_trip_gives_identical_results(
    country: clrisk.Country, model: clrisk.RiskModel, tmp_path: Path
) -> None:
    path = model.save(tmp_path / "model.json")
    loaded = clrisk.load_model(path)
    np.testing.assert_array_equal(loaded.params_, model.params_)
    np.testing.assert_array_equal(loaded.cov_, model.cov_)
    np.testing.assert_array_equal(
        loaded.predict_proba(country.census), model.predict_proba(country.census)
    )
    a = clrisk.predict(model, country.census, **country.predict_kwargs)
    b = clrisk.predict(loaded, country.census, **country.predict_kwargs)
    num = a.table.select_dtypes("number").columns
    np.testing.assert_array_equal(a.table[num].to_numpy(), b.table[num].to_numpy())
    assert loaded.coef_table().equals(model.coef_table())
    assert loaded.summary() == model.summary()
    assert loaded.quality_ == model.quality_


def _edit(path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_tampering_is_detected(model: clrisk.RiskModel, tmp_path: Path) -> None:
    path = model.save(tmp_path / "m.json")
    _edit(path, lambda d: d["params"].__setitem__(1, d["params"][1] + 0.5))
    with pytest.raises(ModelFormatError, match="checksum"):
        clrisk.load_model(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.__setitem__("schema_version", 99), "schema_version 99"),
        (lambda d: d.__setitem__("format", "pickle"), "not a clrisk model"),
        (lambda d: d.__setitem__("extra", 1), "unknown keys"),
        (lambda d: d.pop("cov"), "missing keys"),
    ],
)
def test_bad_files_are_refused(
    model: clrisk.RiskModel,
    tmp_path: Path,
    change,  # type: ignore[no-untyped-def]
    match: str,
) -> None:
    path = _edit(model.save(tmp_path / "m.json"), change)
    with pytest.raises(ModelFormatError, match=match):
        clrisk.load_model(path)


def test_shape_errors_even_with_a_matching_checksum(
    model: clrisk.RiskModel, tmp_path: Path
) -> None:
    """A well-formed file from a buggy writer: the shapes are still checked."""
    from clrisk.modelfile import _checksum

    def shorten(d: dict) -> None:  # type: ignore[type-arg]
        d["params"] = d["params"][:-1]
        d["checksum"] = _checksum(d)

    path = _edit(model.save(tmp_path / "m.json"), shorten)
    with pytest.raises(ModelFormatError, match="'params' has shape"):
        clrisk.load_model(path)


def test_not_json_and_nan(tmp_path: Path, model: clrisk.RiskModel) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x80\x04\x95 pickle bytes")
    with pytest.raises(ModelFormatError, match="not a readable"):
        clrisk.load_model(bad)
    text = model.save(tmp_path / "m.json").read_text(encoding="utf-8")
    nan = tmp_path / "nan.json"
    nan.write_text(text.replace('"params": [\n  ', '"params": [\n  NaN, ', 1))
    with pytest.raises(ModelFormatError):
        clrisk.load_model(nan)


def test_unfitted_model_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(clrisk.ClriskError, match="fitted"):
        clrisk.RiskModel().save(tmp_path / "m.json")


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(60, 300),
    k=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    link=st.sampled_from(["logit", "probit"]),
    weighted=st.booleans(),
)
def test_round_trip_property(
    n: int, k: int, seed: int, link: str, weighted: bool
) -> None:
    """Any fitted model: save -> load gives the same numbers, bit for bit."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + X @ rng.normal(0, 0.5, k))))).astype(
        int
    )
    y[:2] = [0, 1]
    w = rng.uniform(0.5, 3, n) if weighted else None
    model = clrisk.RiskModel(link=link).fit(X, y, sample_weight=w)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = clrisk.load_model(model.save(Path(tmp) / "m.json"))
    np.testing.assert_array_equal(loaded.params_, model.params_)
    np.testing.assert_array_equal(loaded.cov_, model.cov_)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.get_params() == model.get_params()
