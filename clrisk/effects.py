"""Territory random intercept: how much territories differ beyond their features.

The CLRISK logit gives two territories with the same composition the same risk.
Real territories also differ in ways the features do not record (local labour
markets, harvest calendars, enforcement). Methodology §3 asks for "a territory
random intercept (empirical Bayes shrinkage) for small areas"; this module
estimates it on the survey, given the fitted model:

    η_i = x_i·β̂ + u_t,    u_t ~ N(0, σ²)

- **σ** (the SD of the territory effects on the link scale) maximises the
  Laplace approximation of the marginal likelihood, with β held at the fitted
  survey-weighted estimate. A likelihood-ratio test of σ = 0 (its p-value from
  the boundary mixture ½χ²₀ + ½χ²₁) says whether territories differ beyond
  their features at all, and a profile-likelihood interval says by how much.
- **Each surveyed territory's effect** û_t is the posterior mode given σ̂: the
  territory's own evidence (observed against predicted child labour) shrunk
  towards 0 by a factor that grows as its sample shrinks. Its standard error
  is the posterior SD.

Survey weights enter as in weighted multilevel models (Pfeffermann et al.,
1998; Rabe-Hesketh and Skrondal, 2006): within each territory they are scaled
to sum to the effective sample size (Σw)²/Σw², so that a territory's evidence
counts its (effective number of) children, not the people they represent.
Territories whose children all weigh 0 are left out.

Notes
-----
β is held at the fitted (population-averaged) estimate rather than refitted
with the effects; for effects of the size seen in practice (σ up to about 0.5)
the conditional coefficients are within a few percent of these. Under the
probit link the expected information replaces the observed one in the Laplace
step (they are equal under the logit). The projection (:func:`clrisk.predict`)
does not add these effects: they diagnose how far the features leave
territories apart, and point to territories whose survey evidence disagrees
with the model.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from clrisk.exceptions import (
    ClriskError,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)
from clrisk.features import design_matrix
from clrisk.link import Link, cdf, pdf
from clrisk.model import RiskModel
from clrisk.validation import check_fit_kwargs, coded_part

__all__ = ["TerritoryEffects", "territory_effects"]

_EPS = 1e-300
_MIN_TERRITORIES = 5
_LOG_SD = (math.log(1e-3), math.log(10.0))  # search range of log σ
_TOL = 1e-10  # Newton steps of the modes
_MAX_ITER = 200
_FLAT = 1e-6  # a likelihood-ratio statistic below this is 0 (σ at the boundary)


@dataclass(frozen=True, repr=False)
class TerritoryEffects:
    """Result of :func:`territory_effects`.

    Attributes
    ----------
    sd : float
        Estimated SD σ of the territory effects, on the link (log-odds for the
        logit) scale; 0 when the likelihood is highest without effects.
    sd_interval : tuple of (float, float)
        Profile-likelihood interval of σ at `level`. The lower end inverts the
        boundary test of σ = 0, so it is 0 exactly when `p_value` >= 1 - level;
        the upper end may be infinite when the profile stays high.
    lr_stat : float
        Likelihood-ratio statistic of σ = 0.
    p_value : float
        Its p-value (boundary mixture ½χ²₀ + ½χ²₁).
    table : DataFrame
        One row per surveyed territory, sorted by code: ``territory``, ``n``
        (children), ``n_eff`` (effective sample size), ``observed`` and
        ``predicted`` (weighted % with the outcome, and the model's mean
        prediction, in the survey), ``effect`` (û_t), ``se`` (its posterior
        SD), ``shrinkage`` (the share of the territory's own evidence kept:
        0 = all shrunk to the model, 1 = none).
    link : {"logit", "probit"}
    level : float
    """

    sd: float
    sd_interval: tuple[float, float]
    lr_stat: float
    p_value: float
    table: pd.DataFrame = field(repr=False)
    link: Link = "logit"
    level: float = 0.95

    def __repr__(self) -> str:
        return (
            f"TerritoryEffects(sd={self.sd:.3f}, {len(self.table)} territories, "
            f"p={self.p_value:.3g})"
        )

    def summary(self) -> str:
        """A short text report."""
        scale = "log-odds" if self.link == "logit" else "probit"
        lo, hi = self.sd_interval
        t = self.table
        verdict = (
            "territories differ beyond what the features explain"
            if self.p_value < 0.05
            else "no evidence that territories differ beyond their features"
        )
        return "\n".join(
            [
                f"Territory random intercept (empirical Bayes, Laplace), "
                f"{len(t)} surveyed territories:",
                f"SD {self.sd:.3f} on the {scale} scale ({self.level:.0%} interval "
                f"{lo:.3f}-{hi:.3f}); likelihood-ratio test of no territory effect "
                f"{self.lr_stat:.2f}, p = {self.p_value:.3g}: {verdict}.",
                f"effects from {t['effect'].min():+.3f} to {t['effect'].max():+.3f}; "
                "a territory's own evidence is weighted "
                f"{t['shrinkage'].median():.2f} (median; 1 = its survey alone, "
                "0 = the model alone)",
            ]
        )


def territory_effects(
    model: RiskModel,
    survey: pd.DataFrame,
    *,
    level: float = 0.95,
    **fit_kwargs: Any,
) -> TerritoryEffects:
    """Estimate the territory random intercept on the survey, given the model.

    Parameters
    ----------
    model : RiskModel
        A fitted model.
    survey : DataFrame of shape (n_children, n_columns)
        The training survey, as given to :meth:`RiskModel.fit`.
    level : float, default 0.95
        Level of the profile-likelihood interval of σ.
    **fit_kwargs
        The arguments given to :meth:`RiskModel.fit` (``outcome`` or ``y``,
        ``weight`` or ``sample_weight``, ``territory``, ``indicators``...);
        ``territory`` defaults to the model's territory column. Rows are coded
        with the model's ``on_invalid`` policy, as the fit coded them.

    Returns
    -------
    TerritoryEffects

    Raises
    ------
    InvalidParameterError
        For an unfitted model, no ``territory``, or a bad `level`.
    SchemaError
        For an outcome column not in the survey.
    DataValidationError
        For fewer than 5 territories with children of positive weight (σ
        cannot be estimated), a likelihood that keeps rising with σ (e.g.
        every territory's children all in or all out of child labour), or any
        data problem the fit would report.

    Examples
    --------
    >>> import clrisk
    >>> from clrisk.effects import territory_effects
    >>> c = clrisk.make_country(random_state=0, n_territories=40,
    ...                         survey_children=6000, territory_effect_sd=0.6)
    >>> m = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    >>> fx = territory_effects(m, c.survey, **c.fit_kwargs)
    >>> fx.p_value < 0.05
    True
    """
    if not isinstance(model, RiskModel) or not hasattr(model, "params_"):
        raise InvalidParameterError(
            "territory_effects needs a fitted RiskModel: call fit first."
        )
    if not isinstance(level, numbers.Real) or not 0 < float(level) < 1:
        raise InvalidParameterError(
            f"The 'level' parameter must be in (0, 1); got {level!r}."
        )
    if not isinstance(survey, pd.DataFrame):
        raise InvalidParameterError(
            "The 'survey' parameter of territory_effects must be a pandas "
            f"DataFrame; got {type(survey).__name__}."
        )
    if fit_kwargs.get("outcome") is None and fit_kwargs.get("y") is None:
        raise InvalidParameterError(
            "territory_effects needs the outcome: pass outcome='<column>' (or y=), "
            "as to RiskModel.fit."
        )
    territory = fit_kwargs.get("territory") or model.territory_
    if not territory:
        raise InvalidParameterError(
            "territory_effects needs the survey's territory column: pass "
            "territory='...' (the model was fitted without one)."
        )
    check_fit_kwargs(fit_kwargs, len(survey), "territory_effects")
    outcome = fit_kwargs.get("outcome")
    if isinstance(outcome, str) and outcome not in survey.columns:
        raise SchemaError(
            f"The outcome column {outcome!r} is not in the survey.",
            expected=[outcome],
            received=[str(c) for c in survey.columns],
        )
    coded, y, w = coded_part(
        model,
        model,
        survey,
        np.arange(len(survey)),
        fit_kwargs,
        "the survey",
        territory=str(territory),
    )
    assert coded.territory is not None  # a territory column was given
    terr, codes = coded.territory, coded.territories
    weighed = np.bincount(terr, weights=w, minlength=len(codes)) > 0
    keep = weighed[terr]  # territories whose children all weigh 0 tell nothing
    terr, offset, y, w = terr[keep], _offset(coded, model)[keep], y[keep], w[keep]
    present = np.unique(terr)
    if len(present) < _MIN_TERRITORIES:
        raise DataValidationError(
            column=str(territory),
            problem=f"the survey has children of positive weight in {len(present)} "
            "territories, too few to estimate how much territories differ",
            n_bad=coded.n,
            fix=f"Use a survey covering at least {_MIN_TERRITORIES} territories.",
        )
    t = np.searchsorted(present, terr)
    n_t = len(present)
    sw = np.bincount(t, weights=w, minlength=n_t)
    sw2 = np.bincount(t, weights=w * w, minlength=n_t)
    scale = sw / sw2
    ws = w * scale[t]  # sums to the effective sample size in each territory
    link: Link = model.link
    fit = _Laplace(offset, y, ws, t, n_t, link)

    null = fit.value(0.0)
    best = optimize.minimize_scalar(
        lambda a: -fit.value(math.exp(a)),
        bounds=_LOG_SD,
        method="bounded",
        options={"xatol": 1e-6},
    )
    top = -float(best.fun)
    if float(best.x) > _LOG_SD[1] - 1e-3:
        pure = np.bincount(t, weights=ws * y, minlength=n_t)
        extreme = int(np.sum((pure <= 0) | (pure >= np.bincount(t, weights=ws))))
        raise DataValidationError(
            column=str(territory),
            problem="the likelihood keeps rising with the spread of the territory "
            f"effects (no estimate below SD {math.exp(_LOG_SD[1]):g}); "
            f"{extreme} of {n_t} territories have children all in or all out of "
            "child labour",
            n_bad=extreme,
            fix="Territory effects cannot be estimated from this survey; use "
            "coarser territories or a survey with more children per territory.",
        )
    if 2.0 * (top - null) > _FLAT:
        sd = math.exp(float(best.x))
    else:  # no higher than without effects: σ = 0 is the estimate
        sd, top = 0.0, null
    lr = max(2.0 * (top - null), 0.0)
    p_value = 0.5 * float(stats.chi2.sf(lr, 1)) if lr > 0 else 1.0
    interval = _profile_interval(fit, sd, top, null, float(level))

    u, info = fit.modes(sd) if sd > 0 else (np.zeros(n_t), fit.info(np.zeros(n_t)))
    prec = info + (1.0 / sd**2 if sd > 0 else np.inf)
    p_fixed = cdf(offset, link)  # the model's own prediction
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "territory": codes[present],
                "n": np.bincount(t, minlength=n_t),
                "n_eff": sw * scale,
                "observed": 100 * np.bincount(t, weights=w * y, minlength=n_t) / sw,
                "predicted": 100
                * np.bincount(t, weights=w * p_fixed, minlength=n_t)
                / sw,
                "effect": u,
                "se": 1.0 / np.sqrt(prec),
                "shrinkage": sd**2 * info / (1.0 + sd**2 * info),
            }
        )
    return TerritoryEffects(
        sd=sd,
        sd_interval=interval,
        lr_stat=lr,
        p_value=p_value,
        table=table,
        link=link,
        level=float(level),
    )


class _Laplace:
    """The Laplace-approximate marginal log-likelihood of σ, and the modes."""

    def __init__(
        self,
        offset: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        t: np.ndarray,
        n_t: int,
        link: Link,
    ) -> None:
        self.offset, self.y, self.w, self.t, self.n_t = offset, y, w, t, n_t
        self.link = link
        self._u = np.zeros(n_t)  # warm start of the modes

    def _rows(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-territory log-likelihood, score and information at `u`."""
        eta = self.offset + u[self.t]
        p = np.clip(cdf(eta, self.link), _EPS, 1 - 1e-16)
        ll = self.w * (self.y * np.log(p) + (1 - self.y) * np.log1p(-p))
        if self.link == "logit":
            score, info = self.w * (self.y - p), self.w * p * (1 - p)
        else:
            f = pdf(eta, self.link)
            v = p * (1 - p)
            score, info = self.w * (self.y - p) * f / v, self.w * f * f / v
        n = self.n_t
        return (
            np.bincount(self.t, weights=ll, minlength=n),
            np.bincount(self.t, weights=score, minlength=n),
            np.bincount(self.t, weights=info, minlength=n),
        )

    def info(self, u: np.ndarray) -> np.ndarray:
        """Information of each territory's effect at `u` (likelihood part)."""
        return self._rows(u)[2]

    def modes(self, sd: float) -> tuple[np.ndarray, np.ndarray]:
        """Posterior modes of the effects given σ, and their information.

        Each territory's log-posterior is strictly concave in its effect:
        Newton steps, halved where they would lower it, reach its maximum
        from any start.
        """
        prior = 1.0 / sd**2
        u = self._u.copy()
        ll, score, info = self._rows(u)
        objective = ll - 0.5 * prior * u * u
        for _ in range(_MAX_ITER):
            step = (score - prior * u) / (info + prior)
            scale = np.ones(self.n_t)
            for _ in range(60):  # halve where the step overshoots
                new = u + scale * step
                ll_new, score_new, info_new = self._rows(new)
                obj_new = ll_new - 0.5 * prior * new * new
                worse = obj_new < objective - 1e-12 * np.abs(objective)
                if not worse.any():
                    break
                scale[worse] *= 0.5
            u, ll, score, info, objective = new, ll_new, score_new, info_new, obj_new
            if np.max(np.abs(scale * step)) < _TOL:
                break
        gradient = np.abs(score - prior * u)
        if not np.all(gradient <= 1e-6 * (info + prior) + 1e-9):
            raise ClriskError(
                "territory_effects: the territory effects did not converge at SD "
                f"{sd:.4g} (largest gradient {gradient.max():.3g}). Report this "
                "with the data's shape: it should not happen."
            )
        self._u = u
        return u, info

    def value(self, sd: float) -> float:
        """Laplace approximation of the marginal log-likelihood at σ = `sd`."""
        if sd == 0:
            return float(self._rows(np.zeros(self.n_t))[0].sum())
        u, _ = self.modes(sd)
        ll, _, info = self._rows(u)
        return float(
            ll.sum() - np.sum(u * u) / (2 * sd**2) - 0.5 * np.log1p(sd**2 * info).sum()
        )


def _profile_interval(
    fit: _Laplace, sd: float, top: float, null: float, level: float
) -> tuple[float, float]:
    """The profile-likelihood interval of σ at `level`.

    The upper end is where the profile falls χ²₁(level)/2 below its top. The
    lower end inverts the boundary test of σ = 0 (its null distribution is the
    mixture ½χ²₀ + ½χ²₁): it is 0 exactly when that test does not reject at
    1 − level, else where the profile falls χ²₁(2·level − 1)/2 below its top,
    so the interval and the p-value never disagree.
    """
    upper_drop = 0.5 * float(stats.chi2.ppf(level, 1))
    lower_drop = 0.5 * float(stats.chi2.ppf(2 * level - 1, 1))
    lo_bound, hi_bound = _LOG_SD

    def gap(a: float, drop: float) -> float:
        return fit.value(math.exp(a)) - (top - drop)

    if sd == 0 or null >= top - lower_drop:
        lo = 0.0
    else:
        lo = math.exp(_root(gap, lo_bound, math.log(sd), lower_drop))
    start = math.log(sd) if sd > 0 else lo_bound
    hi = (
        math.exp(_root(gap, start, hi_bound, upper_drop))
        if gap(hi_bound, upper_drop) < 0
        else math.inf
    )
    return lo, hi


def _root(f: Any, a: float, b: float, drop: float) -> float:
    """Where f(·, drop) crosses 0 between a (above) and b (below), or the end
    nearest to it when the profile is too flat to cross."""
    fa, fb = f(a, drop), f(b, drop)
    if fa * fb > 0:
        return a if abs(fa) < abs(fb) else b
    return float(optimize.brentq(f, a, b, args=(drop,), xtol=1e-8))


def _offset(coded: Any, model: RiskModel) -> np.ndarray:
    """The model's linear predictor x·β̂ of each coded row."""
    eta: np.ndarray = design_matrix(coded) @ model.params_
    return eta
