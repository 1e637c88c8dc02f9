"""Grouped cross-validation: folds by group, reproducibility, metrics, warnings."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import clrisk
from clrisk.diagnostics import calibration_slope, calibration_table, weighted_auc
from clrisk.exceptions import (
    ClriskError,
    ClriskWarning,
    DataValidationError,
    DesignWarning,
    InvalidParameterError,
    SchemaError,
)
from clrisk.validation import (
    CrossValidation,
    CrossValidationError,
    WeakModelWarning,
    cross_validate,
)


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(
        random_state=0,
        n_territories=40,
        n_regions=4,
        children_per_territory=150,
        survey_children=3000,
    )


@pytest.fixture(scope="module")
def cv_psu(country: clrisk.Country) -> CrossValidation:
    return cross_validate(
        clrisk.RiskModel(country.spec),
        country.survey,
        groups="upm",
        **country.fit_kwargs,
    )


class _SpyModel(clrisk.RiskModel):
    """Records the groups present in each training part."""

    seen: ClassVar[list[set[Any]]] = []
    column: ClassVar[str] = "upm"

    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> _SpyModel:
        type(self).seen.append(set(X[type(self).column]))
        return super().fit(X, y, **kwargs)  # type: ignore[return-value]


# ------------------------------------------------------------------ folds
@pytest.mark.parametrize("column", ["upm", "cod_mun"])
def test_folds_never_split_a_group(country: clrisk.Country, column: str) -> None:
    _SpyModel.seen = []
    _SpyModel.column = column
    cv = cross_validate(
        _SpyModel(country.spec), country.survey, groups=column, **country.fit_kwargs
    )
    pred = cv.predictions
    # every child scored exactly once, in the fold of its group
    assert pred["row"].tolist() == list(range(len(country.survey)))
    assert (pred.groupby("group")["fold"].nunique() == 1).all()
    assert (
        pred["fold"].to_numpy() == cv.fold_of_group.loc[pred["group"]].to_numpy()
    ).all()
    assert set(cv.fold_of_group.index) == set(country.survey[column])
    assert sorted(cv.fold_of_group.unique()) == list(range(1, cv.n_splits + 1))
    # no held-out group was in the part the fold's model was fitted on
    assert len(_SpyModel.seen) == cv.n_splits
    for k, train_groups in enumerate(_SpyModel.seen, start=1):
        held_out = set(cv.fold_of_group.index[cv.fold_of_group == k])
        assert held_out and not held_out & train_groups
        assert held_out | train_groups == set(country.survey[column])
    f = cv.folds
    assert (f["n_train"] + f["n_test"] == len(country.survey)).all()
    assert f["n_groups"].sum() == country.survey[column].nunique()


def test_folds_are_balanced_in_children(cv_psu: CrossValidation) -> None:
    n = cv_psu.folds["n_test"]
    assert n.max() - n.min() <= cv_psu.predictions.groupby("group").size().max()


def test_group_labels_as_array_or_several_columns(
    country: clrisk.Country, cv_psu: CrossValidation
) -> None:
    kw = country.fit_kwargs
    by_array = cross_validate(
        clrisk.RiskModel(country.spec),
        country.survey,
        groups=country.survey["upm"].to_numpy(),
        **kw,
    )
    assert by_array.groups == "groups"
    # same labels, same seed: same folds and predictions as by column name
    np.testing.assert_array_equal(by_array.predictions["p"], cv_psu.predictions["p"])
    pair = cross_validate(
        clrisk.RiskModel(country.spec), country.survey, groups=["estrato", "upm"], **kw
    )
    assert pair.groups == "estrato x upm"
    assert all(isinstance(g, tuple) for g in pair.fold_of_group.index)
    assert (pair.predictions.groupby("group")["fold"].nunique() == 1).all()


# ------------------------------------------------------ reproducibility
def test_same_seed_same_result(
    country: clrisk.Country, cv_psu: CrossValidation
) -> None:
    again = cross_validate(
        clrisk.RiskModel(country.spec),
        country.survey,
        groups="upm",
        **country.fit_kwargs,
    )
    pd.testing.assert_frame_equal(again.predictions, cv_psu.predictions)
    pd.testing.assert_frame_equal(again.folds, cv_psu.folds)
    pd.testing.assert_series_equal(again.fold_of_group, cv_psu.fold_of_group)
    assert again.auc == cv_psu.auc
    other = cross_validate(
        clrisk.RiskModel(country.spec),
        country.survey,
        groups="upm",
        random_state=1,
        **country.fit_kwargs,
    )
    assert not other.fold_of_group.equals(cv_psu.fold_of_group)


def test_model_is_not_changed(country: clrisk.Country) -> None:
    model = clrisk.RiskModel(country.spec)
    cross_validate(model, country.survey, groups="upm", **country.fit_kwargs)
    assert not hasattr(model, "params_")


# --------------------------------------------------------------- metrics
def test_pooled_metrics_equal_direct_computation(cv_psu: CrossValidation) -> None:
    pred = cv_psu.predictions
    y, p, w = (pred[c].to_numpy() for c in ("y", "p", "weight"))
    assert cv_psu.auc == pytest.approx(weighted_auc(y, p, w), abs=1e-12)
    assert cv_psu.brier == pytest.approx(np.sum(w * (y - p) ** 2) / w.sum(), rel=1e-12)
    assert cv_psu.calibration_slope == pytest.approx(calibration_slope(y, p, w))
    pd.testing.assert_frame_equal(cv_psu.calibration, calibration_table(y, p, w))
    assert cv_psu.calibration["weight"].sum() == pytest.approx(w.sum())


def test_fold_metrics_equal_direct_computation(cv_psu: CrossValidation) -> None:
    pred = cv_psu.predictions
    for row in cv_psu.folds.itertuples():
        part = pred[pred["fold"] == row.fold]
        y, p, w = (part[c].to_numpy() for c in ("y", "p", "weight"))
        assert row.n_test == len(part)
        assert row.weight == pytest.approx(w.sum())
        assert row.auc == pytest.approx(weighted_auc(y, p, w), abs=1e-12)
        assert row.brier == pytest.approx(np.sum(w * (y - p) ** 2) / w.sum())
        assert row.calibration_slope == pytest.approx(calibration_slope(y, p, w))
        cal = cv_psu.fold_calibration
        pd.testing.assert_frame_equal(
            cal[cal["fold"] == row.fold].drop(columns="fold").reset_index(drop=True),
            calibration_table(y, p, w),
        )


def test_out_of_fold_predictions_come_from_the_training_part_only(
    country: clrisk.Country, cv_psu: CrossValidation
) -> None:
    pred = cv_psu.predictions
    test_rows = pred.loc[pred["fold"] == 2, "row"].to_numpy()
    train = np.setdiff1d(np.arange(len(country.survey)), test_rows)
    with warnings.catch_warnings():  # a lonely PSU in the part is not under test
        warnings.simplefilter("ignore", DesignWarning)
        model = clrisk.RiskModel(country.spec).fit(
            country.survey.iloc[train], **country.fit_kwargs
        )
    p = model.predict_proba(country.survey.iloc[test_rows])[:, 1]
    np.testing.assert_allclose(pred.loc[pred["fold"] == 2, "p"], p, rtol=1e-12)
    w = country.survey["fexp"].to_numpy()[test_rows]
    np.testing.assert_allclose(pred.loc[pred["fold"] == 2, "weight"], w)


def test_design_warnings_of_folds_are_recorded_not_raised(
    cv_psu: CrossValidation,
) -> None:
    # pytest turns warnings into errors: reaching here means none escaped
    assert all(w.startswith("fold ") for w in cv_psu.fit_warnings)
    assert cv_psu.folds["converged"].all()


def test_summary_and_repr(cv_psu: CrossValidation) -> None:
    assert "passes the weak-model thresholds" in cv_psu.summary()
    assert repr(cv_psu).startswith("CrossValidation(5 folds by upm")


# --------------------------------------------------------------- warnings
def test_no_weak_model_warning_on_the_synthetic_country(
    cv_psu: CrossValidation,
) -> None:
    assert cv_psu.auc > 0.75
    assert 0.8 <= cv_psu.calibration_slope <= 1.25
    assert not cv_psu.weak


def test_weak_model_warning_on_a_pure_noise_outcome(country: clrisk.Country) -> None:
    survey = country.survey.copy()
    survey["noise"] = np.random.default_rng(1).binomial(1, 0.15, len(survey))
    kwargs = dict(country.fit_kwargs, outcome="noise")
    with pytest.warns(WeakModelWarning, match="must not be presented as solid"):
        cv = cross_validate(
            clrisk.RiskModel(country.spec), survey, groups="upm", **kwargs
        )
    assert cv.weak
    assert cv.auc < 0.65
    assert "WEAK MODEL" in cv.summary()
    assert issubclass(WeakModelWarning, ClriskWarning)


def test_weak_model_thresholds_are_parameters(country: clrisk.Country) -> None:
    model = clrisk.RiskModel(country.spec)
    with pytest.warns(WeakModelWarning, match="AUC .* is below 0.99"):
        cross_validate(
            model, country.survey, groups="upm", min_auc=0.99, **country.fit_kwargs
        )
    with pytest.warns(WeakModelWarning, match=r"outside \[0.95, 1.05\]"):
        cv = cross_validate(
            model,
            country.survey,
            groups="upm",
            slope_range=(0.95, 1.05),
            **country.fit_kwargs,
        )
    assert cv.weak


# ------------------------------------------------------------------ errors
def test_a_fold_that_cannot_be_fitted_is_named(country: clrisk.Country) -> None:
    # 'mining' (code B) only in one territory: the fold holding it out has an
    # empty level in its training part
    survey = country.survey.copy()
    only = survey["cod_mun"] == "05001"
    survey["jefe_rama"] = np.where(
        only, np.where(survey["jefe_rama"] == "S", "B", survey["jefe_rama"]), "S"
    )
    survey.loc[~only & (survey["jefe_rama"] == "B"), "jefe_rama"] = "S"
    with pytest.raises(CrossValidationError, match=r"fold \d of 5") as info:
        cross_validate(
            clrisk.RiskModel(country.spec),
            survey,
            groups="cod_mun",
            **country.fit_kwargs,
        )
    err = info.value
    assert isinstance(err, ClriskError) and isinstance(err, ValueError)
    assert "'05001'" in str(err) and "mining" in str(err)
    assert err.held_out and "05001" in err.held_out
    assert isinstance(err.__cause__, DataValidationError)


def test_bad_arguments(country: clrisk.Country) -> None:
    model = clrisk.RiskModel(country.spec)
    s, kw = country.survey, country.fit_kwargs
    with pytest.raises(SchemaError, match="Missing: 'psu_code'"):
        cross_validate(model, s, groups="psu_code", **kw)
    with pytest.raises(InvalidParameterError, match="exceeds the number of groups"):
        cross_validate(model, s.head(40), groups="cod_mun", n_splits=5, **kw)
    with pytest.raises(InvalidParameterError, match=r"'n_splits'.*got 1"):
        cross_validate(model, s, groups="upm", n_splits=1, **kw)
    with pytest.raises(InvalidParameterError, match="does not take"):
        cross_validate(model, s, groups="upm", wieght="fexp", **kw)
    with pytest.raises(InvalidParameterError, match="must be a RiskModel"):
        cross_validate(object(), s, groups="upm", **kw)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="slope_range"):
        cross_validate(model, s, groups="upm", slope_range=(1.2, 0.8), **kw)
    holes = s.copy()
    holes["upm"] = holes["upm"].astype(float)
    holes.loc[holes.index[[3, 7]], "upm"] = np.nan
    with pytest.raises(DataValidationError, match=r"Column 'upm'.*2 rows"):
        cross_validate(model, holes, groups="upm", **kw)


def test_plain_arrays_without_a_spec() -> None:
    rng = np.random.default_rng(3)
    n = 600
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(X["x1"] - 1)))).astype(int).to_numpy()
    groups = np.repeat(np.arange(60), 10)
    cv = cross_validate(
        clrisk.RiskModel(),
        X,
        groups=groups,
        n_splits=4,
        y=y,
        sample_weight=np.full(n, 2.0),
    )
    assert len(cv.predictions) == n
    assert (cv.predictions["weight"] == 2.0).all()
    assert 0.65 < cv.auc < 0.9
