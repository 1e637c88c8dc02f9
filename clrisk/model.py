"""RiskModel: a survey-weighted logit (or probit) of child labour.

The estimator follows scikit-learn's contract (``__init__`` stores arguments,
``fit`` validates and learns attributes ending in ``_``, ``predict_proba`` has
shape ``(n, 2)``). It is driven by a :class:`FeatureSpec`; without one, every
column of ``X`` is a numeric feature, so it also works as a plain weighted
logistic regression (and passes scikit-learn's estimator checks that apply).

``RiskModel.predict`` returns class labels, as scikit-learn requires; territory
risk is :func:`clrisk.predict`.
"""

from __future__ import annotations

import numbers
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import validate_data

from clrisk.diagnostics import Diagnostics, diagnose
from clrisk.exceptions import (
    ClriskError,
    CollinearityWarning,
    ConvergenceWarning,
    DataValidationError,
    InvalidParameterError,
    NotFittedError,
    SchemaError,
    SeparationError,
)
from clrisk.features import (
    CodedFrame,
    Policy,
    design_matrix,
    encode,
    indicator_values,
    table_name,
)
from clrisk.link import LINKS, Link, cdf, pdf, pdf_slope
from clrisk.outcome import OutcomeRule
from clrisk.quality import DataQuality
from clrisk.separation import SeparationCheckFailed, find_separation
from clrisk.solver import GLMFit, fit_binary, newton_step, weighted_gram
from clrisk.spec import Feature, FeatureSpec, Source
from clrisk.survey import LONELY_PSU, Design, design_meat

__all__ = ["RiskModel"]

_INFERRED_SOURCE = "data"


class RiskModel(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Survey-weighted binary risk model with design-based standard errors.

    Parameters
    ----------
    spec : FeatureSpec, optional
        The harmonised features. Without one, every column of ``X`` is taken as
        a numeric feature.
    link : {"logit", "probit"}, default "logit"
    max_iter : int, default 100
        Newton iterations at most.
    tol : float, default 1e-10
        Convergence tolerance on the max-abs gradient per unit weight.
    lonely_psu : {"adjust", "certainty", "fail"}, default "adjust"
        Variance treatment of strata with one PSU (see :mod:`clrisk.survey`).
    on_invalid : {"error", "drop"}, default "error"
        Rows with missing values or unknown codes: raise, or drop and report in
        ``quality_``.
    penalty : float, default 0.0
        L2 (ridge) penalty on the coefficients, not the intercept: the fit
        maximises the weighted mean log pseudo-likelihood
        Σ w_i ℓ_i / Σ w_i − penalty/2 · ‖β‖² (independent of the weights'
        scale). Beyond the official method, for many features or sparse levels;
        with a penalty the standard errors are sandwich approximations around a
        biased estimate. 0 (the default) is the plain pseudo-likelihood.

    Attributes
    ----------
    spec_ : FeatureSpec
        The specification used (inferred when `spec` is None).
    terms_ : list of str
        ``"intercept"`` followed by the model columns.
    params_ : ndarray of shape (n_terms,)
        Intercept and coefficients.
    coef_ : ndarray of shape (1, n_terms - 1)
    intercept_ : ndarray of shape (1,)
    cov_ : ndarray of shape (n_terms, n_terms)
        Design-based (Taylor linearisation) or robust covariance of `params_`.
    design_ : Design
        Strata, PSUs and design degrees of freedom used for `cov_`.
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    n_iter_ : int
    converged_ : bool
    loglik_ : float
        Weighted log pseudo-likelihood at the estimate.
    diagnostics_ : Diagnostics
        Weighted AUC, Brier score, pseudo-R², calibration on the training data.
    quality_ : DataQuality
        Rows read, used and rejected.
    indicators_ : DataFrame or None
        Territory feature values by territory code, kept for projection.
    n_obs_ : int
    sum_weights_ : float

    Notes
    -----
    The outcome, when named as a column (``outcome="..."``), must be coded 0/1
    (or boolean) with 1 = child labour; other codes (e.g. 1 = yes, 2 = no) are
    refused rather than guessed. With ``y`` as an array, scikit-learn's
    convention applies: the larger of the two labels is the positive class.

    The covariance is the sandwich ``A⁻¹ M A⁻¹`` with ``M`` the design
    variance of the score totals and ``A`` the *expected* information (equal
    to the observed one for the logit; for the probit this is the choice of R's
    ``survey::svyglm``, while Stata and statsmodels' HC0 use the observed
    Hessian, which differs by a few per cent). Confidence intervals and
    p-values use the normal distribution; ``design_.df`` gives the design
    degrees of freedom for users who prefer Student's t with few PSUs.
    ``n_iter_`` counts Newton steps, some of which reuse the previous
    information matrix (see :func:`clrisk.solver.fit_binary`).

    Examples
    --------
    >>> import clrisk
    >>> c = clrisk.make_country(random_state=0, n_territories=60)
    >>> model = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    >>> model.coef_table().columns[:4].tolist()
    ['term', 'coef', 'se', 'z']
    """

    def __init__(
        self,
        spec: FeatureSpec | None = None,
        *,
        link: Link = "logit",
        max_iter: int = 100,
        tol: float = 1e-10,
        lonely_psu: str = "adjust",
        on_invalid: Policy = "error",
        penalty: float = 0.0,
    ) -> None:
        self.spec = spec
        self.link = link
        self.max_iter = max_iter
        self.tol = tol
        self.lonely_psu = lonely_psu
        self.on_invalid = on_invalid
        self.penalty = penalty

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        outcome: str | OutcomeRule | None = None,
        weight: str | None = None,
        strata: str | None = None,
        psu: str | None = None,
        territory: str | None = None,
        indicators: pd.DataFrame | None = None,
        sample_weight: Any = None,
        source: str | None = None,
    ) -> RiskModel:
        """Fit by survey-weighted pseudo-maximum likelihood.

        Parameters
        ----------
        X : DataFrame of shape (n_children, n_columns)
            The survey (one row per child), or any array when `spec` is None.
        y : array-like of shape (n_children,), optional
            Binary outcome; alternatively name it with `outcome`.
        outcome : str or OutcomeRule, optional
            Outcome column of `X` (0/1), or a rule computing it.
        weight : str, optional
            Expansion-factor column of `X`.
        strata, psu : str, optional
            Design columns of `X`; PSU codes are taken as nested in strata.
            Without both, the covariance is the robust sandwich.
        territory : str, optional
            Territory-code column of `X` (default from the spec), needed when the
            spec has territory features.
        indicators : DataFrame, optional
            Territory indicator table; kept in ``indicators_`` for projection.
        sample_weight : array-like of shape (n_children,), optional
            Weights as an array (scikit-learn style); exclusive with `weight`.
        source : str, optional
            Which source of the spec `X` is (default ``spec.train_source``).

        Returns
        -------
        self : RiskModel
        """
        self._check_params()
        table, spec, inferred, y = self._as_table(X, y, fitting=True)
        source = source or (_INFERRED_SOURCE if inferred else spec.train_source)
        territory = territory or spec.territory.get(source)
        if weight is not None and sample_weight is not None:
            raise InvalidParameterError(
                "Pass the weights either as weight=<column> or as sample_weight, "
                "not both."
            )
        if (y is None) == (outcome is None):
            raise InvalidParameterError(
                "Give the outcome either as y or as outcome=<column or OutcomeRule>"
                + ("; got both." if y is not None else "; got neither.")
            )
        design_cols = [c for c in (strata, psu) if c is not None]
        missing = [c for c in design_cols if c not in table.columns]
        if missing:
            raise SchemaError(
                "The survey lacks the design columns named.",
                expected=design_cols,
                received=[str(c) for c in table.columns],
            )
        coded = encode(
            spec,
            table,
            source=source,
            territory=territory,
            indicators=indicators,
            weight=weight,
            on_invalid=self.on_invalid,
            where=table_name(table, f"the {source} table"),
        )
        rows = coded.rows
        yv, classes = self._outcome(table, y, outcome, rows)
        w = self._weights(coded, sample_weight, len(table), weight)
        if len(np.unique(yv[w > 0])) < 2:
            raise DataValidationError(
                column=self.outcome_name_,
                problem="only one class among the rows with positive weight",
                n_bad=int((w > 0).sum()),
                fix="A risk model needs children with and without the outcome.",
            )
        strata_v = _design_column(table, strata, rows)
        psu_v = _design_column(table, psu, rows)
        Xm = design_matrix(coded)
        terms = ["intercept", *spec.columns]
        if self.penalty == 0:  # a ridge penalty keeps these estimable
            if not inferred:
                _check_levels(spec, coded, yv, w, source)
            _check_two_valued(spec, Xm, yv, w, terms, rows, source)
            _check_rank(Xm, w, terms)

        fit = fit_binary(
            Xm,
            yv,
            w,
            penalty=float(self.penalty),
            link=self.link,
            max_iter=self.max_iter,
            tol=self.tol,
        )
        if self.penalty == 0:
            _check_separation(fit, Xm, yv, w, self.link, terms, rows, spec, source)
        if not fit.converged:
            warnings.warn(
                f"RiskModel did not converge in {self.max_iter} iterations "
                f"(gradient {fit.gradient_norm:.2e} > tol {self.tol:.0e}); "
                "increase max_iter.",
                ConvergenceWarning,
                stacklevel=2,
            )
        meat, design = design_meat(
            Xm,
            _score_resid(yv, fit.eta, fit.p, w, self.link),
            strata_v,
            psu_v,
            lonely_psu=self.lonely_psu,
            strata_name=strata or "strata",
        )
        bread = linalg.inv(fit.info)
        cov = bread @ meat @ bread

        self.spec_ = spec
        self.classes_ = classes
        self.terms_ = terms
        self.params_ = fit.beta
        self.coef_ = fit.beta[None, 1:]
        self.intercept_ = fit.beta[:1]
        self.cov_ = (cov + cov.T) / 2
        self.design_: Design = design
        self.n_iter_ = fit.n_iter
        self.converged_ = fit.converged
        self.loglik_ = fit.loglik
        self.n_obs_ = len(yv)
        self.sum_weights_ = float(w.sum())
        self.quality_: DataQuality = coded.quality
        self.source_ = source
        self.weight_name_ = weight
        self.territory_ = territory
        self.indicators_ = (
            indicator_values(spec, indicators)
            if indicators is not None and spec.territory_features
            else None
        )
        self.diagnostics_: Diagnostics = diagnose(yv, fit.p, w)
        if not inferred:  # validate_data set them for array input
            self.n_features_in_ = table.shape[1]
            self.feature_names_in_ = np.asarray([str(c) for c in table.columns], object)
        return self

    def save(self, path: str | Path) -> Path:
        """Write the fitted model as a portable, checked JSON file.

        See :mod:`clrisk.modelfile`; read it back with :func:`clrisk.load_model`.

        Returns
        -------
        Path
        """
        from clrisk.modelfile import save_model

        return save_model(self, path)

    # -------------------------------------------------------------- predict
    def decision_function(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Linear predictor x·β of each row.

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        coded = self._encode_for_prediction(X, **kwargs)
        eta: np.ndarray = design_matrix(coded) @ self.params_
        return eta

    def predict_proba(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Probability of each class for each row.

        Parameters
        ----------
        X : DataFrame of shape (n_rows, n_columns)
            Rows of any source of the spec (detected from the columns).
        **kwargs
            ``source``, ``territory``, ``indicators`` to override the defaults.

        Returns
        -------
        ndarray of shape (n_rows, 2)
        """
        p = cdf(self.decision_function(X, **kwargs), self.link)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any, **kwargs: Any) -> np.ndarray:
        """Most likely class of each row (probability above one half).

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        p = self.predict_proba(X, **kwargs)[:, 1]
        labels: np.ndarray = np.asarray(self.classes_)[(p > 0.5).astype(int)]
        return labels

    # -------------------------------------------------------------- reports
    def coef_table(self, *, alpha: float = 0.05) -> pd.DataFrame:
        """Coefficients with design-based standard errors.

        Returns
        -------
        DataFrame of shape (n_terms, 11)
            ``term``, ``coef``, ``se``, ``z``, ``p_value``, ``ci_low``,
            ``ci_high``, ``odds_ratio``, ``or_low``, ``or_high`` (odds ratios are
            NaN for the probit link), ``feature``.
        """
        self._check_fitted()
        se = np.sqrt(np.diag(self.cov_))
        q = stats.norm.ppf(1 - alpha / 2)
        z = self.params_ / se
        lo, hi = self.params_ - q * se, self.params_ + q * se
        is_logit = self.link == "logit"
        return pd.DataFrame(
            {
                "term": self.terms_,
                "coef": self.params_,
                "se": se,
                "z": z,
                "p_value": 2 * stats.norm.sf(np.abs(z)),
                "ci_low": lo,
                "ci_high": hi,
                "odds_ratio": np.exp(self.params_) if is_logit else np.nan,
                "or_low": np.exp(lo) if is_logit else np.nan,
                "or_high": np.exp(hi) if is_logit else np.nan,
                "feature": ["intercept", *self._term_features()],
            }
        )

    def average_marginal_effects(
        self,
        X: pd.DataFrame,
        *,
        weight: str | None = None,
        alpha: float = 0.05,
        **kwargs: Any,
    ) -> pd.DataFrame:
        """Average marginal effects on the probability, with delta-method SEs.

        For a numeric column the average derivative ``mean_w f(η) β_c``; for a
        level of a binary/categorical feature the average discrete change from
        the reference level, ``mean_w [F(η | level) - F(η | reference)]``.

        Parameters
        ----------
        X : DataFrame
            The data to average over (usually the survey).
        weight : str, optional
            Weight column (default: the training weight column when present).
        alpha : float

        Returns
        -------
        DataFrame of shape (n_terms - 1, 7)
            ``term``, ``ame``, ``se``, ``z``, ``p_value``, ``ci_low``, ``ci_high``.
        """
        coded = self._encode_for_prediction(
            X, weight=weight, default_weight=True, **kwargs
        )
        Xm = design_matrix(coded)
        w = coded.weight if coded.weight is not None else np.ones(coded.n)
        w = w / w.sum()
        beta = self.params_
        eta = Xm @ beta
        f = pdf(eta, self.link)
        fprime = pdf_slope(eta, self.link)
        ames, grads = [], []
        col = 1
        for feat in self.spec_.features:
            k = len(feat.columns)
            idx = list(range(col, col + k))
            if feat.kind == "numeric":
                c = idx[0]
                ames.append(np.dot(w, f) * beta[c])
                g = beta[c] * (Xm.T @ (w * fprime))
                g[c] += np.dot(w, f)
                grads.append(g)
            else:
                base = eta - Xm[:, idx] @ beta[idx]
                x0 = Xm.copy()
                x0[:, idx] = 0.0
                p0, f0 = cdf(base, self.link), pdf(base, self.link)
                g0 = x0.T @ (w * f0)
                for c in idx:
                    e1 = base + beta[c]
                    x1 = x0.copy()
                    x1[:, c] = 1.0
                    f1 = pdf(e1, self.link)
                    ames.append(np.dot(w, cdf(e1, self.link) - p0))
                    grads.append(x1.T @ (w * f1) - g0)
            col += k
        G = np.asarray(grads)
        ame = np.asarray(ames)
        se = np.sqrt(np.einsum("ij,jk,ik->i", G, self.cov_, G))
        q = stats.norm.ppf(1 - alpha / 2)
        z = ame / se
        return pd.DataFrame(
            {
                "term": self.terms_[1:],
                "ame": ame,
                "se": se,
                "z": z,
                "p_value": 2 * stats.norm.sf(np.abs(z)),
                "ci_low": ame - q * se,
                "ci_high": ame + q * se,
            }
        )

    def summary(self) -> str:
        """A plain-text summary: design, fit, diagnostics and coefficients."""
        self._check_fitted()
        d = self.design_
        head = [
            f"RiskModel ({self.link}), {self.n_obs_:,} children, "
            f"sum of weights {self.sum_weights_:,.0f}",
            f"variance: {d.kind}"
            + (
                f", {d.n_strata} strata, {d.n_psu} PSUs, df {d.df}"
                if d.kind == "design"
                else ""
            ),
            f"converged: {self.converged_} in {self.n_iter_} iterations; "
            f"log pseudo-likelihood {self.loglik_:,.2f}",
            self.diagnostics_.summary(),
            "",
        ]
        table = self.coef_table()[["term", "coef", "se", "z", "p_value", "odds_ratio"]]
        text: str = table.to_string(index=False, float_format="%.4f")
        return "\n".join(head) + text

    # ------------------------------------------------------------- private
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.input_tags.allow_nan = False
        return tags

    def _check_params(self) -> None:
        if self.link not in LINKS:
            raise InvalidParameterError(
                f"The 'link' parameter of RiskModel must be one of {LINKS}; "
                f"got {self.link!r}."
            )
        if self.lonely_psu not in LONELY_PSU:
            raise InvalidParameterError(
                f"The 'lonely_psu' parameter of RiskModel must be one of {LONELY_PSU}; "
                f"got {self.lonely_psu!r}."
            )
        if self.on_invalid not in ("error", "drop"):
            raise InvalidParameterError(
                "The 'on_invalid' parameter of RiskModel must be 'error' or 'drop'; "
                f"got {self.on_invalid!r}."
            )
        if not isinstance(self.max_iter, numbers.Integral) or self.max_iter < 1:
            raise InvalidParameterError(
                "The 'max_iter' parameter of RiskModel must be an int >= 1; "
                f"got {self.max_iter!r}."
            )
        if not isinstance(self.tol, numbers.Real) or not self.tol > 0:
            raise InvalidParameterError(
                "The 'tol' parameter of RiskModel must be a float > 0; "
                f"got {self.tol!r}."
            )
        if not isinstance(self.penalty, numbers.Real) or not self.penalty >= 0:
            raise InvalidParameterError(
                "The 'penalty' parameter of RiskModel must be a float >= 0; "
                f"got {self.penalty!r}."
            )
        if self.spec is not None and not isinstance(self.spec, FeatureSpec):
            raise InvalidParameterError(
                "The 'spec' parameter of RiskModel must be a FeatureSpec or None; "
                f"got {type(self.spec).__name__}."
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(
                "This RiskModel is not fitted yet: call fit(survey, ...) first."
            )

    def _as_table(
        self, X: Any, y: Any = None, *, fitting: bool
    ) -> tuple[pd.DataFrame, FeatureSpec, bool, Any]:
        """The input as a DataFrame, the spec, whether it is inferred, and y."""
        if self.spec is not None:
            if not isinstance(X, pd.DataFrame):
                raise InvalidParameterError(
                    "A spec-driven RiskModel needs a pandas DataFrame with named "
                    f"columns; got {type(X).__name__}."
                )
            return X, self.spec if fitting else self.spec_, False, y
        try:
            if fitting:
                if y is None:
                    raise InvalidParameterError(
                        "RiskModel requires y to be passed, but the target y is None: "
                        "without a FeatureSpec give the outcome as y."
                    )
                arr, y = validate_data(self, X, y, dtype=np.float64)
            else:
                arr = validate_data(self, X, reset=False, dtype=np.float64)
        except ValueError as exc:
            if isinstance(exc, ClriskError):
                raise
            raise InvalidParameterError(str(exc)) from None
        n_cols = arr.shape[1]
        names = getattr(self, "feature_names_in_", [f"x{i}" for i in range(n_cols)])
        table = pd.DataFrame(arr, columns=[str(c) for c in names])
        return table, _infer_spec(table) if fitting else self.spec_, True, y

    def _encode_for_prediction(
        self,
        X: Any,
        *,
        source: str | None = None,
        territory: str | None = None,
        indicators: pd.DataFrame | None = None,
        weight: str | None = None,
        default_weight: bool = False,
    ) -> CodedFrame:
        self._check_fitted()
        table, spec, inferred, _ = self._as_table(X, fitting=False)
        if source is None:
            source = _INFERRED_SOURCE if inferred else spec.detect_source(table.columns)
        territory = territory or spec.territory.get(source)
        if default_weight and weight is None and source == self.source_:
            weight = getattr(self, "weight_name_", None)  # averages over the survey
        return encode(
            spec,
            table,
            source=source,
            territory=territory,
            indicators=indicators if indicators is not None else self.indicator_table(),
            weight=weight,
            on_invalid="error",
            where=table_name(table, f"the {source} table"),
        )

    def indicator_table(self) -> pd.DataFrame | None:
        """The territory indicators kept at fit time, in the indicator layout.

        Returns
        -------
        DataFrame or None
            Key column and one column per territory feature, as in the indicator
            table given to :meth:`fit` (None when the spec has none).
        """
        self._check_fitted()
        if self.indicators_ is None:
            return None
        key = self.spec_.territory["indicators"]
        out = self.indicators_.reset_index(names=key)
        cols = {
            f.name: f.source("indicators").column for f in self.spec_.territory_features
        }
        scales = {
            f.name: f.source("indicators").scale for f in self.spec_.territory_features
        }
        for name, col in cols.items():
            out[col] = out.pop(name) / scales[name]
        return out

    def _outcome(
        self, table: pd.DataFrame, y: Any, outcome: Any, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        name = "y"
        if isinstance(outcome, OutcomeRule):
            # only the rows kept by the feature coding (on_invalid="drop")
            if len(rows) == len(table):
                raw = pd.Series(outcome.apply(table))
            else:
                full = np.full(len(table), np.nan)
                full[rows] = outcome.apply(table.iloc[rows])
                raw = pd.Series(full)
            name = outcome.name
        elif outcome is not None:
            if outcome not in table.columns:
                raise SchemaError(
                    f"The outcome column {outcome!r} is not in the survey.",
                    expected=[str(outcome)],
                    received=[str(c) for c in table.columns],
                )
            raw = table[outcome]
            name = str(outcome)
        else:
            arr = np.asarray(y)
            if arr.ndim != 1:
                if arr.ndim == 2 and arr.shape[1] == 1:
                    arr = arr.ravel()
                else:
                    raise InvalidParameterError(
                        f"y must be 1-D (one outcome per row); got shape {arr.shape}."
                    )
            if len(arr) != len(table):
                raise InvalidParameterError(
                    f"y has {len(arr)} values but X has {len(table)} rows."
                )
            raw = pd.Series(arr)
        self.outcome_name_ = name
        values = raw.iloc[rows] if len(rows) != len(raw) else raw
        if not pd.api.types.is_numeric_dtype(values.dtype) and outcome is not None:
            # a column read as text (CSV): "0"/"1" are numbers written as text
            as_number = pd.to_numeric(values, errors="coerce")
            if as_number.notna().sum() == values.notna().sum():
                values = as_number
        miss = values.isna().to_numpy()
        if miss.any():
            raise DataValidationError(
                column=name,
                problem="missing outcome values",
                n_bad=int(miss.sum()),
                examples=[f"row {r}" for r in rows[miss][:5]],
                fix="Drop those children or fill in the outcome.",
            )
        kind = type_of_target(values.to_numpy())
        if kind == "continuous":
            raise DataValidationError(
                column=name,
                problem="the outcome is continuous (Unknown label type: "
                "continuous); a binary outcome has 2 values",
                n_bad=len(values),
                examples=values.head(5).tolist(),
                fix="Code the outcome as 0/1.",
            )
        classes = np.unique(values.to_numpy())
        if len(classes) > 2:
            raise DataValidationError(
                column=name,
                problem="Only binary classification is supported. The type of the "
                f"target is multiclass ({len(classes)} distinct values: "
                f"{', '.join(map(str, classes[:5].tolist()))})",
                n_bad=len(values),
                examples=[f"row {r}" for r in rows[:5]],
                fix="Code the outcome as 0/1 or give an OutcomeRule.",
            )
        if outcome is not None and not isinstance(outcome, OutcomeRule):
            # A survey column must say which value is child labour: 0/1 or bool.
            # Codes such as 1 = yes / 2 = no would otherwise invert the model.
            ok = values.isin([0, 1]).to_numpy()
            if not ok.all():
                raise DataValidationError(
                    column=name,
                    problem="outcome values other than 0/1 "
                    f"({', '.join(map(str, classes[:5].tolist()))}), so which one "
                    "means child labour is ambiguous",
                    n_bad=int((~ok).sum()),
                    examples=[f"row {r}" for r in rows[~ok][:5]],
                    fix="Recode the column to 1 = child labour, 0 = not (e.g. "
                    "survey code 2 = no -> 0), or give an OutcomeRule.",
                )
        if len(classes) < 2:
            raise DataValidationError(
                column=name,
                problem=f"the outcome is constant (only one class: {classes[0]!r}), "
                "so no risk model can be fitted",
                n_bad=len(values),
                examples=classes[:1],
                fix="Check the outcome column and the rows kept.",
            )
        return (values.to_numpy() == classes[1]).astype(np.float64), classes

    def _weights(
        self, coded: CodedFrame, sample_weight: Any, n: int, name: str | None
    ) -> np.ndarray:
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=float)
            if sw.shape != (n,):
                raise InvalidParameterError(
                    f"sample_weight has shape {sw.shape}; expected ({n},)."
                )
            sw = sw[coded.rows]
            bad = ~np.isfinite(sw) | (sw < 0)
            if bad.any():
                raise DataValidationError(
                    column="sample_weight",
                    problem="missing, infinite or negative weights",
                    n_bad=int(bad.sum()),
                    examples=[f"row {r}" for r in coded.rows[bad][:5]],
                    fix="Weights must be finite and >= 0.",
                )
            w: np.ndarray = sw
        elif coded.weight is not None:
            w = coded.weight
        else:
            w = np.ones(coded.n)
        if not w.sum() > 0:
            raise DataValidationError(
                column=name or "sample_weight",
                problem="the weights sum to zero",
                n_bad=len(w),
                fix="Give positive expansion factors.",
            )
        return w

    def _term_features(self) -> list[str]:
        return [f.name for f in self.spec_.features for _ in f.columns]


def _score_resid(
    y: np.ndarray, eta: np.ndarray, p: np.ndarray, w: np.ndarray, link: Link
) -> np.ndarray:
    resid: np.ndarray = w * (y - p)
    if link == "logit":
        return resid
    v = np.maximum(p * (1 - p), 1e-300)
    out: np.ndarray = resid * pdf(eta, "probit") / v
    return out


def _infer_spec(table: pd.DataFrame) -> FeatureSpec:
    feats = []
    for c in table.columns:
        if not pd.api.types.is_numeric_dtype(table[c].dtype):
            raise InvalidParameterError(
                f"Column {c!r} is not numeric; without a FeatureSpec every column is "
                "a numeric feature. Pass a FeatureSpec for categorical columns."
            )
        feats.append(
            Feature(str(c), "numeric", sources={_INFERRED_SOURCE: Source(str(c))})
        )
    return FeatureSpec(
        feats, train_source=_INFERRED_SOURCE, frame_source=_INFERRED_SOURCE
    )


def _design_column(
    table: pd.DataFrame, name: str | None, rows: np.ndarray
) -> np.ndarray | None:
    if name is None:
        return None
    col = table[name].iloc[rows]
    miss = col.isna().to_numpy()
    if miss.any():
        raise DataValidationError(
            column=name,
            problem="missing design codes",
            n_bad=int(miss.sum()),
            examples=[f"row {r}" for r in rows[miss][:5]],
            fix="Every surveyed child needs its stratum and PSU.",
        )
    codes: np.ndarray = col.to_numpy()
    return codes


def _check_levels(
    spec: FeatureSpec, coded: CodedFrame, y: np.ndarray, w: np.ndarray, source: str
) -> None:
    """Empty levels (no rows) and levels that perfectly predict the outcome."""
    pos = w > 0
    for j, feat in enumerate(spec.categorical):
        c = coded.code_columns[j][pos]
        L = len(feat.levels)
        n_lv = np.bincount(c, minlength=L)
        n_pos = np.bincount(c, weights=y[pos], minlength=L)
        column = feat.source(source).column
        empty = [feat.levels[k] for k in range(L) if n_lv[k] == 0]
        if empty:
            raise DataValidationError(
                column=column,
                problem=f"levels {empty} of feature '{feat.name}' have "
                "no rows with positive weight, so their coefficients are not "
                "identified",
                n_bad=0,
                examples=empty,
                fix="Merge them with a neighbouring level in the specification.",
            )
        for k in range(L):
            if n_pos[k] == 0 or n_pos[k] == n_lv[k]:
                value = int(n_pos[k] > 0)
                raise SeparationError(
                    column=column,
                    problem=f"every child with level '{feat.levels[k]}' of feature "
                    f"'{feat.name}' has outcome {value}, which separates the outcome "
                    "perfectly (no finite maximum-likelihood estimate)",
                    n_bad=int(n_lv[k]),
                    examples=[f"row {r}" for r in coded.rows[pos][c == k][:5]],
                    fix="Merge that level with a similar one in the specification, or "
                    "drop the feature.",
                )


# Signs of separation that call for the exact check (a linear program: a
# few seconds on 250,000 rows, so not run on every fit): a fit that did not
# converge; a row fitted this close to its outcome (|eta| > 13.8 for the
# logit), rare without separation; or a next Newton step that would still
# move some row's linear predictor by this much. Along a separating
# direction each step adds about 1 (logit) or 0.2 (probit) to it however
# long the solver runs, while a converged fit's next step moves it by less
# than 1e-7 (synthetic surveys of 5,000 to 500,000 children: 2e-8 at most).
# The gradient criterion alone misses separation by a few rows of a large
# survey: their share of the total weight makes their gradient small.
_NEAR = 1e-6
_MOVING = 1e-3
# Without the exact check (its solver failed): a coefficient whose one-SD
# change multiplies the odds by more than e^20 (5e8) is not a risk factor but
# a diverging estimate.
_DIVERGED = 20.0


def _check_separation(
    fit: GLMFit,
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    link: Link,
    terms: list[str],
    rows: np.ndarray,
    spec: FeatureSpec,
    source: str,
) -> None:
    """Raise :class:`SeparationError` when the columns of `X` separate the
    outcome (quasi-completely or completely), naming them."""
    near = (np.abs(y - fit.p) < _NEAR) & (w > 0)
    if fit.converged and not near.any() and _next_step(fit, X, y, w, link) < _MOVING:
        return
    try:
        found = find_separation(X, y, w)
    except SeparationCheckFailed:
        sizes = _standardised_sizes(X, w, fit.beta)
        if not (near.any() and (not fit.converged or sizes.max(initial=0) > _DIVERGED)):
            return
        order, ahead = np.argsort(-sizes, kind="stable")[:3] + 1, near
    else:
        if found is None:
            return
        size = np.abs(found.direction)
        size[0] = 0.0  # the intercept: not a column of the data
        order = np.argsort(-size, kind="stable")[: min(3, np.count_nonzero(size))]
        ahead = np.zeros(len(y), dtype=bool)
        ahead[found.rows] = True
    raise SeparationError(
        column=", ".join(_with_source_column(terms[i], spec, source) for i in order),
        problem="the outcome is (quasi-)perfectly predicted for some rows by the "
        "columns named, so their coefficients diverge (no finite "
        "maximum-likelihood estimate)",
        n_bad=int(ahead.sum()),
        examples=[f"row {r}" for r in rows[np.flatnonzero(ahead)][:5]],
        fix="Merge sparse levels, or drop (or recode) the feature that separates "
        "the outcome.",
    )


def _next_step(
    fit: GLMFit, X: np.ndarray, y: np.ndarray, w: np.ndarray, link: Link
) -> float:
    """How much a further Newton step would move the linear predictor of a
    row (of positive weight), at most."""
    step = newton_step(fit.info, X.T @ _score_resid(y, fit.eta, fit.p, w, link))
    moved = np.abs(X @ step)[w > 0]
    return float(moved.max(initial=0.0))


def _standardised_sizes(X: np.ndarray, w: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """|coefficient| x weighted SD of its column, for each non-intercept term."""
    if X.shape[1] == 1:
        return np.zeros(0)
    mean = np.average(X[:, 1:], axis=0, weights=w)
    sd = np.sqrt(np.average((X[:, 1:] - mean) ** 2, axis=0, weights=w))
    sizes: np.ndarray = np.abs(beta[1:]) * sd
    return sizes


def _check_two_valued(
    spec: FeatureSpec,
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    terms: list[str],
    rows: np.ndarray,
    source: str,
) -> None:
    """A numeric column with two values (a 0/1 indicator) one of which has a
    single outcome separates it, as a level of a categorical feature does.

    Found here even when few rows have that value (then the fit converges
    before those rows are fitted close to their outcome)."""
    numeric = {f.name for f in spec.features if f.kind == "numeric"}
    pos = w > 0
    yp = y[pos]
    for j, term in enumerate(terms):
        if term not in numeric:
            continue
        x = X[pos, j]
        lo, hi = x.min(initial=np.inf), x.max(initial=-np.inf)
        if not lo < hi:
            continue
        low = x == lo
        if not (low | (x == hi)).all():
            continue
        for value, mask in ((lo, low), (hi, ~low)):
            outcomes = yp[mask]
            if outcomes.min() == outcomes.max():
                raise SeparationError(
                    column=_with_source_column(term, spec, source),
                    problem=f"every child with value {value:g} of '{term}' has "
                    f"outcome {int(outcomes[0])}, which separates the outcome "
                    "perfectly (no finite maximum-likelihood estimate)",
                    n_bad=int(mask.sum()),
                    examples=[f"row {r}" for r in rows[pos][mask][:5]],
                    fix="Drop the feature, or recode it so that both values have "
                    "children with and without the outcome.",
                )


def _with_source_column(term: str, spec: FeatureSpec, source: str) -> str:
    """``term`` followed by the data column it comes from, when known."""
    name = term.split("[", 1)[0]
    try:
        column = spec.feature(name).source(source).column
    except ClriskError:  # a term of an inferred spec, or no such source
        return term
    return term if column == name else f"{term} (column '{column}')"


def _check_rank(X: np.ndarray, w: np.ndarray, terms: list[str]) -> None:
    """Raise when model columns are collinear, warn when nearly so, naming them.

    A subset of rows has at most the rank of all rows, so a full-rank
    systematic subsample settles exact collinearity cheaply; otherwise all rows
    are checked. Near-collinearity is judged on the rows checked.
    """
    step = len(w) // 50_000
    exact, near = _collinear(X[::step], w[::step], terms) if step >= 4 else ([], [])
    if step < 4 or exact:
        exact, near = _collinear(X, w, terms)
    if exact:
        raise DataValidationError(
            column=", ".join(exact),
            problem="model columns are constant or a linear "
            "combination of other columns (collinear), so their coefficients are not "
            "identified",
            n_bad=len(X),
            examples=exact,
            fix="Drop one of the collinear features from the specification.",
        )
    if near:
        warnings.warn(
            f"Model columns {near} are nearly collinear (condition number above "
            f"{1 / _NEAR:.0e}): their coefficients are poorly determined and their "
            "standard errors inflated. Consider merging levels or dropping one.",
            CollinearityWarning,
            stacklevel=3,
        )


# smallest / largest eigenvalue of the scaled Gram matrix below which columns
# are exactly (numerically) collinear, and below which nearly so
_EXACT, _NEAR = 1e-10, 1e-6


def _collinear(
    X: np.ndarray, w: np.ndarray, terms: list[str]
) -> tuple[list[str], list[str]]:
    """Names of constant or collinear columns of `X`, and of nearly collinear."""
    G = weighted_gram(X, w / w.mean())
    d = np.sqrt(np.maximum(np.diag(G), 1e-300))
    C = G / d[:, None] / d[None, :]
    values, vectors = linalg.eigh(C)
    ratio = np.maximum(values, 0) / values[-1]
    zero = np.diag(G) <= 1e-300 * len(w)

    def involved(mask: np.ndarray) -> set[str]:
        # the columns that carry each (near-)dependency
        return {
            terms[i]
            for k in np.flatnonzero(mask)
            for i in np.flatnonzero(np.abs(vectors[:, k]) > 0.1)
        }

    exact = involved(ratio < _EXACT) | {terms[i] for i in np.flatnonzero(zero)}
    near = involved((ratio >= _EXACT) & (ratio < _NEAR))
    return sorted(exact), sorted(near - exact)
