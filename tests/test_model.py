"""RiskModel against independent references and the generator's truth."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

import clrisk
from clrisk.exceptions import (
    ConvergenceWarning,
    DataValidationError,
    DesignWarning,
    InvalidParameterError,
    NotFittedError,
    SchemaError,
    SeparationError,
)
from clrisk.features import design_matrix, encode


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(random_state=3, n_territories=80, survey_children=6000)


@pytest.fixture(scope="module")
def fitted(country: clrisk.Country) -> clrisk.RiskModel:
    return clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)


def _design(country: clrisk.Country) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    coded = encode(
        country.spec,
        country.survey,
        source="survey",
        territory="cod_mun",
        indicators=country.indicators,
        weight="fexp",
    )
    y = country.survey["trabajo_infantil"].to_numpy(float)
    assert coded.weight is not None
    return design_matrix(coded), y, coded.weight


# ---------------------------------------------------------------- references
@pytest.mark.parametrize("link", ["logit", "probit"])
def test_matches_statsmodels_glm(country: clrisk.Country, link: str) -> None:
    X, y, w = _design(country)
    family_link = (
        sm.families.links.Logit() if link == "logit" else sm.families.links.Probit()
    )
    ref = sm.GLM(
        y, X, family=sm.families.Binomial(link=family_link), var_weights=w
    ).fit(tol=1e-14, maxiter=200)
    model = clrisk.RiskModel(country.spec, link=link).fit(
        country.survey, **country.fit_kwargs
    )
    assert model.converged_
    np.testing.assert_allclose(model.params_, ref.params, rtol=1e-7, atol=1e-9)
    p = model.predict_proba(country.survey)[:, 1]
    np.testing.assert_allclose(p, ref.fittedvalues, rtol=0, atol=1e-8)


def test_matches_plain_irls(country: clrisk.Country, fitted: clrisk.RiskModel) -> None:
    """A textbook IRLS written here, independent of clrisk.solver."""
    X, y, w = _design(country)
    beta = np.zeros(X.shape[1])
    for _ in range(50):
        p = expit(X @ beta)
        z = X @ beta + (y - p) / (p * (1 - p))
        W = w * p * (1 - p)
        beta = np.linalg.solve(X.T @ (W[:, None] * X), X.T @ (W * z))
    np.testing.assert_allclose(expit(X @ fitted.params_), expit(X @ beta), atol=1e-8)


def _reference_design_cov(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, beta: np.ndarray, frame: pd.DataFrame
) -> np.ndarray:
    """Taylor-linearised covariance written with pandas group-bys."""
    p = expit(X @ beta)
    U = pd.DataFrame(X * (w * (y - p))[:, None])
    U["stratum"] = frame["estrato"].to_numpy()
    U["psu"] = frame["upm"].to_numpy()
    totals = U.groupby(["stratum", "psu"]).sum()
    meat = np.zeros((X.shape[1], X.shape[1]))
    for _, block in totals.groupby(level="stratum"):
        z = block.to_numpy()
        n_h = len(z)
        d = z - z.mean(axis=0)
        meat += n_h / (n_h - 1) * d.T @ d
    bread = np.linalg.inv(X.T @ ((w * p * (1 - p))[:, None] * X))
    return bread @ meat @ bread


def test_design_based_se_matches_reference(
    country: clrisk.Country, fitted: clrisk.RiskModel
) -> None:
    X, y, w = _design(country)
    ref = _reference_design_cov(X, y, w, fitted.params_, country.survey)
    np.testing.assert_allclose(fitted.cov_, ref, rtol=1e-6, atol=0)
    assert fitted.design_.kind == "design"
    assert fitted.design_.n_psu == country.survey.groupby(["estrato", "upm"]).ngroups


def test_robust_se_without_design(country: clrisk.Country) -> None:
    kw = {k: v for k, v in country.fit_kwargs.items() if k not in ("strata", "psu")}
    model = clrisk.RiskModel(country.spec).fit(country.survey, **kw)
    X, y, w = _design(country)
    p = expit(X @ model.params_)
    U = X * (w * (y - p))[:, None]
    n = len(y)
    bread = np.linalg.inv(X.T @ ((w * p * (1 - p))[:, None] * X))
    ref = bread @ (n / (n - 1) * U.T @ U) @ bread
    np.testing.assert_allclose(model.cov_, ref, rtol=1e-6)
    assert model.design_.kind == "robust"


# --------------------------------------------------------------------- truth
def _coverage(seed: int) -> tuple[int, int]:
    c = clrisk.make_country(random_state=seed, territory_effect_sd=0.0)
    table = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs).coef_table()
    truth = c.truth.coefficients.reindex(table["term"]).to_numpy()
    inside = (table["ci_low"] <= truth) & (truth <= table["ci_high"])
    return int(inside.sum()), len(table)


def test_truth_within_intervals_one_seed() -> None:
    """With the true model (no territory effect) the estimates sit near the truth."""
    c = clrisk.make_country(random_state=11, territory_effect_sd=0.0)
    table = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs).coef_table()
    truth = c.truth.coefficients.reindex(table["term"]).to_numpy()
    zscores = (table["coef"] - truth) / table["se"]
    assert np.abs(zscores).max() < 4
    assert 0.8 <= np.mean(np.abs(zscores) < 1.96) <= 1.0


@pytest.mark.slow
def test_truth_coverage_over_seeds() -> None:
    """95% CIs cover the true coefficients at about the nominal rate."""
    hits = total = 0
    for seed in range(40):
        h, t = _coverage(1000 + seed)
        hits += h
        total += t
    rate = hits / total  # 40 x 25 = 1000 intervals; binomial SD ~0.7 pp
    assert 0.925 <= rate <= 0.975, rate


# ---------------------------------------------------------------- invariants
@st.composite
def _small_problem(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(30, 80))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = (rng.random(n) < expit(0.3 + X @ [0.8, -0.5])).astype(int)
    y[:2] = [0, 1]
    w = rng.integers(1, 4, n)
    return X, y, w


@given(_small_problem())
def test_integer_weights_equal_repeated_rows(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    X, y, w = problem
    a = clrisk.RiskModel().fit(X, y, sample_weight=w.astype(float))
    b = clrisk.RiskModel().fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(a.params_, b.params_, rtol=1e-8, atol=1e-10)


@given(_small_problem(), st.randoms(use_true_random=False))
def test_row_order_does_not_change_the_fit(
    problem: tuple[np.ndarray, np.ndarray, np.ndarray], rnd: object
) -> None:
    X, y, w = problem
    perm = np.arange(len(y))
    rnd.shuffle(perm)  # type: ignore[attr-defined]
    a = clrisk.RiskModel().fit(X, y, sample_weight=w)
    b = clrisk.RiskModel().fit(X[perm], y[perm], sample_weight=w[perm])
    np.testing.assert_allclose(a.params_, b.params_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.cov_, b.cov_, rtol=1e-8, atol=1e-14)


def test_reference_level_change_keeps_predictions(country: clrisk.Country) -> None:
    spec = country.spec
    feats = [
        clrisk.Feature(**{**f.__dict__, "reference": "agriculture"})
        if f.name == "head_branch"
        else f
        for f in spec.features
    ]
    spec2 = clrisk.FeatureSpec(feats, territory=spec.territory)
    a = clrisk.RiskModel(spec).fit(country.survey, **country.fit_kwargs)
    b = clrisk.RiskModel(spec2).fit(country.survey, **country.fit_kwargs)
    np.testing.assert_allclose(
        a.predict_proba(country.survey), b.predict_proba(country.survey), atol=1e-9
    )
    assert "head_branch[services]" in b.terms_


# ------------------------------------------------------------------ reports
def test_coef_table(fitted: clrisk.RiskModel) -> None:
    t = fitted.coef_table()
    assert list(t.columns[:7]) == [
        "term",
        "coef",
        "se",
        "z",
        "p_value",
        "ci_low",
        "ci_high",
    ]
    assert t["term"].iloc[0] == "intercept"
    np.testing.assert_allclose(t["odds_ratio"], np.exp(t["coef"]))
    np.testing.assert_allclose(t["z"], t["coef"] / t["se"])
    assert ((t["ci_low"] < t["coef"]) & (t["coef"] < t["ci_high"])).all()
    assert "head_branch[agriculture]" in set(t["term"])
    assert "weighted AUC" in fitted.summary()


def test_average_marginal_effects(
    country: clrisk.Country, fitted: clrisk.RiskModel
) -> None:
    ame = fitted.average_marginal_effects(country.survey).set_index("term")
    X, _, w = _design(country)
    wn = w / w.sum()
    beta = fitted.params_
    # numeric: average derivative by central differences
    c = fitted.terms_.index("household_size")
    h = 1e-5
    up, down = X.copy(), X.copy()
    up[:, c] += h
    down[:, c] -= h
    numeric = np.dot(wn, expit(up @ beta) - expit(down @ beta)) / (2 * h)
    assert ame.loc["household_size", "ame"] == pytest.approx(numeric, rel=1e-6)
    # categorical: discrete change from the reference level
    idx = [
        fitted.terms_.index(t) for t in fitted.terms_ if t.startswith("head_branch[")
    ]
    k = fitted.terms_.index("head_branch[agriculture]")
    x0 = X.copy()
    x0[:, idx] = 0
    x1 = x0.copy()
    x1[:, k] = 1
    manual = np.dot(wn, expit(x1 @ beta) - expit(x0 @ beta))
    assert ame.loc["head_branch[agriculture]", "ame"] == pytest.approx(
        manual, rel=1e-10
    )

    # delta-method SE: numerical Jacobian of the AME in beta
    def ame_of(b: np.ndarray) -> float:
        return float(np.dot(wn, expit(x1 @ b) - expit(x0 @ b)))

    J = np.array(
        [(ame_of(beta + e) - ame_of(beta - e)) / 2e-6 for e in np.eye(len(beta)) * 1e-6]
    )
    se = np.sqrt(J @ fitted.cov_ @ J)
    assert ame.loc["head_branch[agriculture]", "se"] == pytest.approx(se, rel=1e-5)


def test_diagnostics_match_direct_computation(fitted: clrisk.RiskModel) -> None:
    d = fitted.diagnostics_
    assert 0.7 < d.auc < 0.95
    assert d.calibration_slope == pytest.approx(1.0, abs=1e-6)  # in-sample logit
    cal = d.calibration
    assert len(cal) == 10
    assert cal["weight"].sum() == pytest.approx(fitted.sum_weights_)
    assert np.isclose(
        (cal["predicted"] * cal["weight"]).sum(),
        (cal["observed"] * cal["weight"]).sum(),
    )  # a logit with intercept reproduces the weighted mean


def test_weighted_auc_pairs() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    p = rng.random(40)
    w = rng.random(40) + 0.1
    num = den = 0.0
    for i in np.flatnonzero(y == 1):
        for j in np.flatnonzero(y == 0):
            den += w[i] * w[j]
            num += w[i] * w[j] * ((p[i] > p[j]) + 0.5 * (p[i] == p[j]))
    assert clrisk.diagnostics.weighted_auc(y, p, w) == pytest.approx(num / den)


# ---------------------------------------------------------------- bad input
def test_constant_outcome(country: clrisk.Country) -> None:
    s = country.survey.assign(trabajo_infantil=0)
    with pytest.raises(DataValidationError, match=r"'trabajo_infantil'.*constant"):
        clrisk.RiskModel(country.spec).fit(s, **country.fit_kwargs)


def test_separation_names_the_level(country: clrisk.Country) -> None:
    s = country.survey.copy()
    s.loc[s["jefe_rama"] == "B", "trabajo_infantil"] = 0
    with pytest.raises(SeparationError, match=r"'jefe_rama'.*'mining'.*outcome 0"):
        clrisk.RiskModel(country.spec).fit(s, **country.fit_kwargs)


def test_separation_by_a_numeric_column() -> None:
    x = np.r_[np.linspace(-2, -0.1, 30), np.linspace(0.1, 2, 30)]
    y = (x > 0).astype(int)
    with pytest.raises(SeparationError, match="perfectly predicted"):
        clrisk.RiskModel().fit(x[:, None], y)


def test_negative_and_missing_weights(country: clrisk.Country) -> None:
    s = country.survey.copy()
    s.loc[[3, 7], "fexp"] = -1.0
    with pytest.raises(DataValidationError, match=r"'fexp'.*negative weights \(2 rows"):
        clrisk.RiskModel(country.spec).fit(s, **country.fit_kwargs)
    s = country.survey.copy()
    s.loc[[5], "fexp"] = np.nan
    with pytest.raises(
        DataValidationError, match=r"'fexp'.*missing values \(1 row; e.g. 'row 5'"
    ):
        clrisk.RiskModel(country.spec).fit(s, **country.fit_kwargs)


def test_missing_column_shows_diff(country: clrisk.Country) -> None:
    s = country.survey.drop(columns=["asiste"])
    with pytest.raises(SchemaError, match="Missing: 'asiste'"):
        clrisk.RiskModel(country.spec).fit(s, **country.fit_kwargs)
    with pytest.raises(SchemaError, match="design columns"):
        clrisk.RiskModel(country.spec).fit(
            country.survey, **{**country.fit_kwargs, "psu": "nope"}
        )


def test_unknown_code_and_drop_policy(country: clrisk.Country) -> None:
    s = country.survey.copy()
    s["etnia"] = s["etnia"].astype(object)
    s.loc[[0, 1, 2], "etnia"] = 9
    with pytest.raises(
        DataValidationError,
        match=r"'etnia'.*codes not in the code map.*'9' \(3 rows, first row 0\)",
    ):
        clrisk.RiskModel(country.spec).fit(s, **country.fit_kwargs)
    model = clrisk.RiskModel(country.spec, on_invalid="drop").fit(
        s, **country.fit_kwargs
    )
    q = model.quality_
    assert q.rows_read == len(s) and q.rows_used == len(s) - 3 and q.reconciles
    assert q.rejected == {"unknown code in 'etnia'": 3}


def test_lonely_psu_policies(country: clrisk.Country) -> None:
    s = country.survey.copy()
    first = s["upm"].iloc[0]
    s.loc[s["upm"] == first, "estrato"] = "lonely"
    with pytest.warns(DesignWarning, match="single PSU"):
        adjust = clrisk.RiskModel(country.spec).fit(s, **country.fit_kwargs)
    with pytest.warns(DesignWarning):
        certainty = clrisk.RiskModel(country.spec, lonely_psu="certainty").fit(
            s, **country.fit_kwargs
        )
    assert adjust.design_.lonely_strata == ["lonely"]
    assert np.all(
        np.diag(adjust.cov_) > np.diag(certainty.cov_)
    )  # adjust is conservative
    with pytest.raises(DataValidationError, match=r"'estrato'.*single PSU.*'lonely'"):
        clrisk.RiskModel(country.spec, lonely_psu="fail").fit(s, **country.fit_kwargs)


def test_collinear_columns_are_named() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 2))
    X = np.column_stack([X, X[:, 0] + X[:, 1]])
    y = rng.integers(0, 2, 100)
    with pytest.raises(DataValidationError, match="collinear"):
        clrisk.RiskModel().fit(X, y)


def test_non_convergence_warns() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 2))
    y = (rng.random(200) < expit(X @ [1.0, -1.0])).astype(int)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        clrisk.RiskModel(max_iter=1).fit(X, y)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"link": "cloglog"}, "'link' parameter"),
        ({"lonely_psu": "drop"}, "'lonely_psu' parameter"),
        ({"max_iter": 0}, "'max_iter' parameter"),
        ({"tol": -1.0}, "'tol' parameter"),
        ({"on_invalid": "ignore"}, "'on_invalid' parameter"),
    ],
)
def test_invalid_parameters(params: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        clrisk.RiskModel(**params).fit(np.eye(3), [0, 1, 0])  # type: ignore[arg-type]


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        clrisk.RiskModel().coef_table()


def test_outcome_rule_as_outcome(country: clrisk.Country) -> None:
    kw = {**country.fit_kwargs, "outcome": country.outcome_rule}
    a = clrisk.RiskModel(country.spec).fit(country.survey, **kw)
    b = clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)
    np.testing.assert_allclose(a.params_, b.params_)


def test_predict_proba_on_census_uses_census_codes(
    country: clrisk.Country, fitted: clrisk.RiskModel
) -> None:
    """Harmonisation: the census scored with its own codes gives the true-model
    ordering of probabilities (same children, different column names and codes)."""
    p = fitted.predict_proba(country.census)[:, 1]
    assert p.shape == (len(country.census),)
    corr = np.corrcoef(p, country.truth.child_probability)[0, 1]
    assert corr > 0.85


def test_sklearn_clone_and_params(fitted: clrisk.RiskModel) -> None:
    from sklearn.base import clone

    c = clone(fitted)
    assert c.get_params()["spec"] == fitted.spec
    assert not hasattr(c, "params_")


def test_sklearn_estimator_checks() -> None:
    """scikit-learn's checks for a plain weighted logit (spec=None).

    Their toy data are perfectly separable, where the unpenalised logit has no
    estimate (and RiskModel rightly raises SeparationError), so the checks run
    with a small ridge penalty.
    """
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(
            clrisk.RiskModel(penalty=1.0),
            expected_failed_checks=EXPECTED_FAILED_CHECKS,
            on_fail=None,
        )
    failed = [r for r in results if r["status"] == "failed"]
    assert not failed, [(r["check_name"], str(r["exception"])[:200]) for r in failed]


#: Checks that do not apply to a risk model, and why.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


# ------------------------------------------------ regressions from the review
def test_outcome_coded_one_two_is_refused(country: clrisk.Country) -> None:
    """Survey codes 1 = yes / 2 = no would silently invert the model."""
    s = country.survey
    coded = s.assign(trabajo_infantil=np.where(s["trabajo_infantil"] == 1, 1, 2))
    with pytest.raises(
        DataValidationError, match=r"'trabajo_infantil'.*other than 0/1"
    ):
        clrisk.RiskModel(country.spec).fit(coded, **country.fit_kwargs)
    as_bool = s.assign(trabajo_infantil=s["trabajo_infantil"].astype(bool))
    model = clrisk.RiskModel(country.spec).fit(as_bool, **country.fit_kwargs)
    assert model.params_[0] < 0  # child labour is the minority class


def test_separation_by_a_numeric_feature_names_its_column(
    country: clrisk.Country,
) -> None:
    s = country.survey.copy()
    s["trabajo_infantil"] = (s["tot_pers"] > s["tot_pers"].quantile(0.8)).astype(int)
    with pytest.raises(SeparationError, match=r"household_size \(column 'tot_pers'\)"):
        clrisk.RiskModel(country.spec).fit(s, **country.fit_kwargs)


def test_zero_weight_rows_do_not_count_for_separation(
    country: clrisk.Country, fitted: clrisk.RiskModel
) -> None:
    s = country.survey.copy()
    s.loc[s.index[:3], "fexp"] = 0.0
    s.loc[s.index[:3], "tot_pers"] = 500  # would be perfectly predicted
    model = clrisk.RiskModel(country.spec).fit(s, **country.fit_kwargs)
    assert model.converged_


def test_zero_weight_sum_names_the_weight_column(country: clrisk.Country) -> None:
    s = country.survey.assign(fexp=0.0)
    with pytest.raises(DataValidationError, match=r"'fexp'.*sum to zero"):
        clrisk.RiskModel(country.spec).fit(s, **country.fit_kwargs)


def test_outcome_rule_only_sees_rows_kept(country: clrisk.Country) -> None:
    s = country.survey.copy()
    s.loc[s.index[:4], "sexo"] = np.nan  # dropped by on_invalid="drop"
    s.loc[s.index[:4], "horas_trab"] = np.nan  # the rule cannot judge them
    kwargs = {**country.fit_kwargs, "outcome": country.outcome_rule}
    model = clrisk.RiskModel(country.spec, on_invalid="drop").fit(s, **kwargs)
    assert model.quality_.rows_used == len(s) - 4


def test_predict_proba_does_not_need_the_weight_column(
    country: clrisk.Country, fitted: clrisk.RiskModel
) -> None:
    full = fitted.predict_proba(country.survey)
    np.testing.assert_array_equal(
        fitted.predict_proba(country.survey.drop(columns="fexp")), full
    )


def test_extreme_covariates_are_not_separation() -> None:
    """Rows predicted to within 1e-10 by a moderate coefficient (very high
    incomes, say) are legitimate; found on the EU-SILC reference data."""
    rng = np.random.default_rng(5)
    x = np.r_[rng.normal(size=3000), np.full(20, 40.0)]
    y = (rng.random(len(x)) < expit(-1 + x)).astype(int)
    model = clrisk.RiskModel().fit(x[:, None], y)
    assert model.converged_
    assert abs(model.params_[1] - 1) < 0.2


def test_near_collinearity_warns_and_exact_errors() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=2000)
    near = x + rng.normal(0, 1e-4, 2000)  # nearly, not exactly, collinear
    y = (rng.random(2000) < expit(0.5 * x)).astype(int)
    with pytest.warns(clrisk.exceptions.CollinearityWarning, match="x0.*x1"):
        clrisk.RiskModel().fit(np.column_stack([x, near]), y)
    with pytest.raises(DataValidationError, match="collinear"):
        clrisk.RiskModel().fit(np.column_stack([x, 2 * x]), y)
    model = clrisk.RiskModel().fit(np.column_stack([x, rng.normal(size=2000)]), y)
    assert model.converged_  # independent columns: no warning (warnings are errors)
