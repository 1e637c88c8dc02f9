"""The flexible accuracy benchmark (methodology §3), scored on the logit's folds."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fit_files import fit_files
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.neighbors import KNeighborsClassifier

import clrisk
from clrisk.benchmark import (
    benchmark_estimator,
    benchmark_matrix,
    fit_predict_benchmark,
)
from clrisk.cli import main
from clrisk.exceptions import InvalidParameterError
from clrisk.features import encode
from clrisk.spec import Feature, FeatureSpec, Source
from clrisk.validation import CrossValidation, cross_validate


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(
        random_state=2, n_territories=60, n_regions=4, survey_children=8000
    )


def _cv(
    country: clrisk.Country, survey: object = None, **kw: object
) -> CrossValidation:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cross_validate(
            clrisk.RiskModel(country.spec),
            country.survey if survey is None else survey,
            groups="upm",
            **kw,
            **country.fit_kwargs,
        )


def test_benchmark_finds_an_interaction_the_logit_cannot(
    country: clrisk.Country,
) -> None:
    """Against truth: child labour drawn from a pure interaction (rural girls and
    urban boys), which additive log-odds cannot rank; trees can."""
    s = country.survey
    xor = (s["area"] == 2).to_numpy() != (s["sexo"] == 1).to_numpy()
    rng = np.random.default_rng(0)
    p_true = 1 / (1 + np.exp(-(-3.0 + 2.5 * xor)))
    survey = s.assign(trabajo_infantil=(rng.random(len(s)) < p_true).astype(int))
    cv = _cv(country, survey, benchmark=True)
    assert cv.benchmark is not None and cv.benchmark_name == (
        "HistGradientBoostingClassifier"
    )
    assert cv.benchmark_gap > 0.05
    assert "misses structure" in cv.summary()
    # the benchmark's held-out probabilities track the truth's
    pred = cv.predictions
    truth = p_true[pred["row"].to_numpy()]
    assert np.corrcoef(truth, pred["p_benchmark"])[0, 1] > 0.8
    assert np.corrcoef(truth, pred["p"])[0, 1] < 0.5


def test_benchmark_adds_nothing_when_the_truth_is_a_logit(
    country: clrisk.Country,
) -> None:
    """The synthetic country's outcome is a logit in these features (plus a
    territory effect neither model has): the trees do not beat it."""
    cv = _cv(country, benchmark=True)
    assert cv.benchmark is not None
    assert cv.benchmark_gap < 0.02
    assert "finds no structure the risk model misses" in cv.summary()
    f = cv.folds
    assert {"benchmark_auc", "benchmark_brier"} <= set(f.columns)
    # the logit's own figures do not depend on the benchmark
    plain = _cv(country)
    assert plain.auc == cv.auc and plain.benchmark is None
    assert np.isnan(plain.benchmark_gap)
    assert "p_benchmark" not in plain.predictions.columns


def test_benchmark_is_fitted_on_the_folds_rows_with_their_weights(
    country: clrisk.Country,
) -> None:
    """A prior-only classifier predicts its training part's weighted outcome
    rate: each fold's held-out rows get their training part's rate, computed
    here from the survey directly."""
    cv = _cv(country, benchmark=DummyClassifier(strategy="prior"))
    assert cv.benchmark_name == "DummyClassifier"
    assert (cv.folds["benchmark_auc"] == 0.5).all()  # a fold's rows all tie
    s = country.survey
    for _, part in cv.predictions.groupby("fold"):
        train = s[~s["upm"].isin(set(part["group"]))]
        rate = np.average(train["trabajo_infantil"], weights=train["fexp"])
        np.testing.assert_allclose(part["p_benchmark"], rate, rtol=1e-12)


def test_matrix_marks_categories(country: clrisk.Country) -> None:
    coded = encode(
        country.spec,
        country.survey,
        source="survey",
        territory="cod_mun",
        indicators=country.indicators,
    )
    X, categorical = benchmark_matrix(coded)
    n_cat = coded.codes.shape[1]
    assert X.shape == (coded.n, n_cat + coded.numerics.shape[1])
    assert categorical[:n_cat].all() and not categorical[n_cat:].any()
    np.testing.assert_array_equal(X[:, :n_cat], coded.codes)


def test_a_given_estimator_is_cloned_not_changed(country: clrisk.Country) -> None:
    estimator = HistGradientBoostingClassifier(max_iter=5, random_state=0)
    _cv(country, benchmark=estimator)
    assert not hasattr(estimator, "n_iter_")  # never fitted itself


@pytest.mark.parametrize("bad", ["yes", 1, object()])
def test_bad_benchmark_is_refused(country: clrisk.Country, bad: object) -> None:
    with pytest.raises(InvalidParameterError, match="'benchmark' parameter"):
        _cv(country, benchmark=bad)


def test_cli_fit_benchmark(
    country: clrisk.Country, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*fit_files(country, tmp_path), "--territory", "cod_mun", "-o",
            str(tmp_path / "m.json"), "--format", "json", "--quiet"]  # fmt: skip
    assert main([*args, "--benchmark"]) != 0
    assert "give --cv-groups too" in capsys.readouterr().err
    assert main([*args, "--benchmark", "--cv-groups", "upm"]) == 0
    cv = json.loads(capsys.readouterr().out)["cross_validation"]
    out = cv["benchmark"]
    assert out["model"] == "HistGradientBoostingClassifier"
    assert out["auc_gap"] == pytest.approx(out["auc"] - cv["auc"])
    assert "benchmark HistGradientBoostingClassifier" in (tmp_path / "m.md").read_text(
        encoding="utf-8"
    )


# ------------------------------------------- regressions of a review (2026-12-02)
@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (
            HistGradientBoostingClassifier,
            r"instance.*HistGradientBoostingClassifier\(\)",
        ),
        (KNeighborsClassifier(), "does not take sample_weight"),
    ],
)
def test_unusable_benchmarks_are_refused_before_any_fit(
    country: clrisk.Country, bad: object, match: str
) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        _cv(country, benchmark=bad)


def test_numpy_true_asks_for_the_default() -> None:
    est = benchmark_estimator(np.True_, 0)
    assert isinstance(est, HistGradientBoostingClassifier)
    assert est.early_stopping is False  # the trees see every training row


def _coded_with_levels(n_levels: int) -> Any:
    rng = np.random.default_rng(0)
    spec = FeatureSpec(
        [
            Feature("big", "categorical", {"s": Source("big")},
                    levels=[str(i) for i in range(n_levels)]),
            Feature("x", "numeric", {"s": Source("x")}),
        ]
    )  # fmt: skip
    table = pd.DataFrame(
        {"big": rng.integers(0, n_levels, 2000).astype(str), "x": rng.normal(size=2000)}
    )
    return encode(spec, table, source="s")


@pytest.mark.parametrize(("n_levels", "native"), [(255, True), (256, False)])
def test_many_levels_are_ordered_codes(n_levels: int, native: bool) -> None:
    coded = _coded_with_levels(n_levels)
    _, categorical = benchmark_matrix(coded)
    assert categorical.tolist() == [native, False]
    y = (coded.codes[:, 0] % 3 == 0).astype(float)  # a pattern only categories see
    p = fit_predict_benchmark(
        benchmark_estimator(True, 0), coded, y, np.ones(coded.n), coded
    )
    assert p.shape == (coded.n,)


def test_categories_follow_max_bins_and_a_users_choice_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    coded = _coded_with_levels(100)
    y = (coded.codes[:, 0] % 2).astype(float)
    seen: list[Any] = []
    fit = HistGradientBoostingClassifier.fit

    def spy(self: Any, X: Any, y: Any, sample_weight: Any = None) -> Any:
        seen.append(self.categorical_features)
        return fit(self, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(HistGradientBoostingClassifier, "fit", spy)
    w = np.ones(coded.n)
    fit_predict_benchmark(benchmark_estimator(True, 0), coded, y, w, coded)
    fit_predict_benchmark(
        HistGradientBoostingClassifier(max_bins=64, max_iter=5), coded, y, w, coded
    )  # 100 levels > 64 bins: an ordered code, not a crash
    user = HistGradientBoostingClassifier(categorical_features=None, max_iter=5)
    fit_predict_benchmark(user, coded, y, w, coded)
    mask = np.array([False, False])  # a user's mask as an array (was: ValueError)
    fit_predict_benchmark(
        HistGradientBoostingClassifier(categorical_features=mask, max_iter=5),
        coded,
        y,
        w,
        coded,
    )
    assert [list(c) if c is not None else None for c in seen] == [
        [True, False],
        [False, False],
        None,
        [False, False],
    ]
