"""The classification table at a cut-off (methodology §3): counts, rates, truth."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_files import fit_files
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix

import clrisk
from clrisk.cli import main
from clrisk.diagnostics import ClassificationTable, classification_table
from clrisk.exceptions import InvalidParameterError
from clrisk.modelfile import _checksum, model_from_dict, model_to_dict
from clrisk.validation import cross_validate


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(random_state=5, n_territories=60, survey_children=6000)


@pytest.fixture(scope="module")
def fitted(country: clrisk.Country) -> clrisk.RiskModel:
    return clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60),
    seed=st.integers(0, 2**32 - 1),
    cutoff=st.floats(0.01, 0.99),
)
def test_cells_equal_sklearn_weighted_confusion_matrix(
    n: int, seed: int, cutoff: float
) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = rng.choice([0.1, 0.25, 0.5, 0.75, 0.9, cutoff], n)  # ties at the cut-off
    w = rng.random(n) * 3
    t = classification_table(y, p, w, cutoff)
    cm = confusion_matrix(y, (p >= cutoff).astype(int), labels=[1, 0], sample_weight=w)
    got = [[t.true_pos, t.false_neg], [t.false_pos, t.true_neg]]
    np.testing.assert_allclose(got, cm, rtol=1e-12, atol=1e-12)
    assert t.n == n and t.rule == "given" and t.cutoff == cutoff
    table = t.table()
    assert table.loc["total", "total"] == pytest.approx(w.sum())
    pos = t.true_pos + t.false_neg
    if pos > 0:
        assert t.sensitivity == pytest.approx(t.true_pos / pos)
    else:
        assert np.isnan(t.sensitivity)


def test_rates_by_hand() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.6, 0.2, 0.7, 0.3, 0.2, 0.1, 0.1])
    w = np.array([1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0])
    t = classification_table(y, p, w, cutoff=0.5)
    # flagged: rows 0, 1 (outcome, weight 3) and 3 (no outcome, weight 1)
    assert (t.true_pos, t.false_neg, t.false_pos, t.true_neg) == (3, 1, 1, 5)
    assert t.sensitivity == 0.75
    assert t.specificity == 5 / 6
    assert t.ppv == 0.75
    assert t.npv == 5 / 6
    assert t.accuracy == 0.8
    assert t.flagged == 0.4


def test_default_cutoff_is_the_weighted_prevalence() -> None:
    y = np.array([1, 0, 0, 0])
    w = np.array([3.0, 1.0, 1.0, 1.0])
    t = classification_table(y, np.array([0.6, 0.4, 0.2, 0.5]), w)
    assert t.rule == "prevalence" and t.cutoff == 0.5
    assert (t.true_pos, t.false_pos) == (3.0, 1.0)  # 0.5 itself is flagged


@pytest.mark.parametrize("cutoff", [0, 1, -0.1, 1.5, float("nan"), "0.3", True])
def test_cutoff_outside_the_unit_interval_is_refused(cutoff: object) -> None:
    with pytest.raises(InvalidParameterError, match=r"'cutoff'.*strictly between"):
        classification_table(np.array([0, 1]), np.array([0.2, 0.8]), np.ones(2), cutoff)  # type: ignore[arg-type]


def test_census_flags_match_the_true_probabilities(
    country: clrisk.Country, fitted: clrisk.RiskModel
) -> None:
    """Against truth: the children flagged in the census hold the labour the truth
    expects of them, and the model's table is close to the oracle's."""
    truth = country.truth
    p = fitted.predict_proba(country.census, **_census_kwargs(country))[:, 1]
    y = truth.child_labour
    ones = np.ones(len(y))
    t = classification_table(y, p, ones)
    flag = p >= t.cutoff
    expected_tp = truth.child_probability[flag].sum()
    sd = np.sqrt((truth.child_probability * (1 - truth.child_probability))[flag].sum())
    assert abs(t.true_pos - expected_tp) < 4 * sd
    oracle = classification_table(y, truth.child_probability, ones, t.cutoff)
    assert abs(t.sensitivity - oracle.sensitivity) < 0.06
    assert abs(t.specificity - oracle.specificity) < 0.06
    assert t.sensitivity <= oracle.sensitivity + 0.02  # the truth ranks best


def _census_kwargs(country: clrisk.Country) -> dict[str, object]:
    return {"territory": country.predict_kwargs["territory"]}


def test_fitted_model_keeps_the_table_and_the_file_round_trips(
    fitted: clrisk.RiskModel, tmp_path: Path
) -> None:
    c = fitted.diagnostics_.classification
    assert isinstance(c, ClassificationTable) and c.rule == "prevalence"
    assert c.true_pos + c.false_neg == pytest.approx(
        c.cutoff * fitted.sum_weights_, rel=1e-9
    )  # the cut-off is the weighted share with the outcome
    assert c.n == fitted.n_obs_
    assert "sensitivity" in fitted.summary()
    loaded = clrisk.load_model(fitted.save(tmp_path / "m.json"))
    assert loaded.diagnostics_.classification == c
    card = clrisk.modelfile.model_card(loaded)
    assert "| observed | flagged | not flagged | total |" in card


def test_model_file_without_the_table_still_loads(fitted: clrisk.RiskModel) -> None:
    data = json.loads(json.dumps(model_to_dict(fitted)))
    del data["training"]["diagnostics"]["classification"]
    data["checksum"] = _checksum(data)
    model = model_from_dict(data)
    assert model.diagnostics_.classification is None
    assert "sensitivity" not in model.summary()
    assert "not flagged" not in clrisk.modelfile.model_card(model)


def test_cross_validated_table_uses_the_out_of_fold_predictions(
    country: clrisk.Country,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = cross_validate(
            clrisk.RiskModel(country.spec),
            country.survey,
            groups="upm",
            n_bins=5,
            **country.fit_kwargs,
        )
    pred = cv.predictions
    y, p, w = (pred[k].to_numpy() for k in ("y", "p", "weight"))
    assert cv.classification_table(0.2) == classification_table(y, p, w, 0.2)
    assert cv.diagnostics.classification == classification_table(y, p, w)
    assert "sensitivity" in cv.summary()


def test_workbook_lists_the_table(fitted: clrisk.RiskModel, tmp_path: Path) -> None:
    from clrisk.workbook import _diagnostics_frame

    frame = _diagnostics_frame(fitted).set_index("measure")["value"]
    c = fitted.diagnostics_.classification
    assert c is not None
    assert frame["classification cut-off (prevalence)"] == c.cutoff
    assert frame["sensitivity at the cut-off"] == c.sensitivity


def _fit_args(country: clrisk.Country, tmp_path: Path) -> list[str]:
    kw = country.fit_kwargs
    return [*fit_files(country, tmp_path), "--strata", kw["strata"], "--psu",
            kw["psu"], "--territory", kw["territory"], "-o",
            str(tmp_path / "model.json"), "--format", "json", "--quiet"]  # fmt: skip


def test_cli_fit_reports_the_table_at_the_chosen_cutoff(
    country: clrisk.Country, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _fit_args(country, tmp_path)
    assert main([*args, "--cv-groups", "upm", "--cutoff", "0.25"]) == 0
    out = json.loads(capsys.readouterr().out)
    cv = out["cross_validation"]["classification"]
    assert cv["cutoff"] == 0.25 and cv["rule"] == "given"
    assert out["classification"]["rule"] == "prevalence"
    card = (tmp_path / "model.md").read_text(encoding="utf-8")
    assert "at cut-off 0.2500 (given)" in card


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cutoff", "0.3"], "give --cv-groups too"),
        (["--cv-groups", "upm", "--cutoff", "1.2"], "strictly between 0 and 1"),
    ],
)
def test_cli_cutoff_errors(
    country: clrisk.Country,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    assert main([*_fit_args(country, tmp_path), *extra]) != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "model.json").exists()


def test_table_frame_shape() -> None:
    t = classification_table(np.array([1, 0]), np.array([0.8, 0.1]), np.ones(2), 0.5)
    table = t.table()
    assert isinstance(table, pd.DataFrame) and table.shape == (3, 3)
    assert table.loc["1", "flagged"] == 1 and table.loc["0", "not flagged"] == 1


# ------------------------------------------- regressions of a review (2026-12-02)
@pytest.mark.parametrize(
    ("y", "p", "w", "error", "match"),
    [
        ([1, 0], [0.5, np.nan], [1, 1], "DataValidationError", "'p'.*probabilities"),
        ([1, 0], [0.5, 1.2], [1, 1], "DataValidationError", "'p'.*probabilities"),
        ([1, 2], [0.5, 0.2], [1, 1], "DataValidationError", "'y'.*other than 0"),
        ([1, np.nan], [0.5, 0.2], [1, 1], "DataValidationError", "'y'"),
        ([1, 0], [0.5, 0.2], [1, -1], "DataValidationError", "'w'.*negative"),
        ([1, 0], [0.5, 0.2], [0, 0], "DataValidationError", "sum to 0"),
        ([1, 0], [0.5, 0.2, 0.1], [1, 1], "InvalidParameterError", "same length"),
        ([1, 1], [0.5, 0.2], [1, 1], "DataValidationError", "Give the cut-off"),
    ],
)
def test_bad_inputs_are_refused(
    y: list[float], p: list[float], w: list[float], error: str, match: str
) -> None:
    import clrisk.exceptions as ex

    with pytest.raises(getattr(ex, error), match=match):
        classification_table(np.array(y), np.array(p), np.array(w))


def test_single_class_with_a_given_cutoff_is_fine() -> None:
    t = classification_table(np.array([1, 1]), np.array([0.5, 0.2]), np.ones(2), 0.3)
    assert t.sensitivity == 0.5 and np.isnan(t.specificity)


def test_model_file_versions_and_checks(fitted: clrisk.RiskModel) -> None:
    """Files are written as schema 2 (an older clrisk says "upgrade" rather than
    misreading them); schema 1 files load, with or without the table; a damaged
    table is refused on loading, not later."""
    data = json.loads(json.dumps(model_to_dict(fitted)))
    assert data["schema_version"] == 2
    old = json.loads(json.dumps(data))
    old["schema_version"] = 1
    old["checksum"] = _checksum(old)
    assert model_from_dict(old).diagnostics_.classification == (
        fitted.diagnostics_.classification
    )
    for key, value, match in [
        ("true_pos", "abc", "finite numbers"),
        ("true_pos", -5.0, ">= 0"),
        ("cutoff", [0.1], "cutoff"),
        ("rule", "anything", "rule"),
        ("n", 1.5, "whole number"),
    ]:
        bad = json.loads(json.dumps(data))
        bad["training"]["diagnostics"]["classification"][key] = value
        bad["checksum"] = _checksum(bad)
        with pytest.raises(clrisk.ModelFormatError, match=match):
            model_from_dict(bad)
    bad = json.loads(json.dumps(data))
    bad["training"]["diagnostics"]["auc"] = "abc"
    bad["checksum"] = _checksum(bad)
    with pytest.raises(clrisk.ModelFormatError, match="auc' is not a number"):
        model_from_dict(bad)


def test_cli_json_is_strict_when_no_one_is_flagged(
    country: clrisk.Country, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _fit_args(country, tmp_path)
    assert main([*args, "--cv-groups", "upm", "--cutoff", "0.99"]) == 0
    text = capsys.readouterr().out

    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    out = json.loads(text, parse_constant=refuse)
    assert out["cross_validation"]["classification"]["ppv"] is None
