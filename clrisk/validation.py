"""Grouped cross-validation of a risk model: is its territory ranking solid?

In-sample diagnostics flatter a model: the survey rows it is scored on are the
rows it was fitted to. :func:`cross_validate` refits a clone of the model on
part of the survey and scores the rest, with folds made of **whole groups** —
primary sampling units or territories, never single rows. Children of one PSU
share a household cluster, a neighbourhood and an interviewer; splitting them
between the training and the held-out part leaks that shared information and
overstates accuracy. Folding by territory asks the harder question the
projection itself asks: how well does the model predict children of places it
has not seen?

The held-out predictions of all folds together (the *out-of-fold*
predictions) give the cross-validated weighted AUC, Brier score, calibration
table by deciles and calibration slope; each fold is also scored on its own, so
their spread shows how stable the figures are. When the cross-validated AUC is
below 0.65 or the calibration slope is outside [0.8, 1.25] a
:class:`WeakModelWarning` says that the territory ranking must not be presented
as solid.
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from clrisk.benchmark import benchmark_estimator, fit_predict_benchmark
from clrisk.diagnostics import (
    ClassificationTable,
    Diagnostics,
    calibration_slope,
    calibration_table,
    classification_table,
    diagnose,
    weighted_auc,
)
from clrisk.exceptions import (
    ClriskError,
    ClriskWarning,
    DataValidationError,
    DesignWarning,
    InvalidParameterError,
    SchemaError,
)
from clrisk.features import CodedFrame, design_matrix, encode
from clrisk.link import cdf
from clrisk.model import RiskModel
from clrisk.outcome import OutcomeRule

__all__ = [
    "CrossValidation",
    "CrossValidationError",
    "WeakModelWarning",
    "cross_validate",
]

#: Fit arguments given per row (sliced with the rows of each part).
_ROW_ARRAYS = ("y", "sample_weight")


class WeakModelWarning(ClriskWarning):
    """The cross-validated model is too weak to rank territories with confidence."""


class CrossValidationError(ClriskError, ValueError):
    """A cross-validation fold could not be fitted or scored.

    Attributes
    ----------
    fold : int
        The fold (1-based).
    n_splits : int
    held_out : list
        The groups held out in that fold.

    The original error is chained as ``__cause__``.
    """

    def __init__(
        self, message: str, *, fold: int, n_splits: int, held_out: Sequence[Any]
    ) -> None:
        self.fold = fold
        self.n_splits = n_splits
        self.held_out = list(held_out)
        super().__init__(message)


@dataclass(frozen=True, repr=False)
class CrossValidation:
    """Result of :func:`cross_validate`.

    Attributes
    ----------
    diagnostics : Diagnostics
        Weighted AUC, Brier score, McFadden pseudo-R², calibration slope,
        calibration table and classification table (at the weighted prevalence;
        :meth:`classification_table` for another cut-off) of the pooled
        out-of-fold predictions.
    folds : DataFrame of shape (n_splits, 11), or 13 with a benchmark
        One row per fold: ``fold`` (1-based), ``n_groups``, ``n_train``,
        ``n_test`` (held-out rows scored), ``weight`` (their sum of weights),
        ``observed`` and ``predicted`` (weighted mean outcome and probability),
        ``auc``, ``brier``, ``calibration_slope`` (NaN where the held-out part
        has a single class) and ``converged``.
    fold_calibration : DataFrame
        The calibration table of each fold: ``fold`` then the columns of
        :func:`clrisk.diagnostics.calibration_table`.
    predictions : DataFrame of shape (n_scored, 6), or 7 with a benchmark
        The out-of-fold predictions: ``row`` (position in the survey),
        ``group``, ``fold``, ``y`` (0/1), ``weight`` (and ``p_benchmark``) and
        ``p``, in survey order.
        Rows rejected by ``on_invalid="drop"`` are not in it.
    fold_of_group : Series
        The fold of each group, indexed by group label.
    groups : str
        What the folds were made of (column name(s), or ``"groups"`` for labels
        given as an array).
    n_splits : int
    random_state : int or None
    min_auc : float
    slope_range : tuple of (float, float)
    fit_warnings : tuple of str
        Warnings raised while fitting the folds, prefixed by their fold.
        Variance warnings (:class:`~clrisk.exceptions.DesignWarning`) are only
        recorded here, since cross-validation uses no standard errors; other
        warnings are also re-issued.
    benchmark : Diagnostics or None
        The same diagnostics for the benchmark model's out-of-fold
        predictions, when ``benchmark`` was asked for; ``folds`` then also has
        ``benchmark_auc`` and ``benchmark_brier``, and ``predictions``
        ``p_benchmark``.
    benchmark_name : str or None
        The benchmark model's class name.
    """

    diagnostics: Diagnostics
    folds: pd.DataFrame
    fold_calibration: pd.DataFrame = field(repr=False)
    predictions: pd.DataFrame = field(repr=False)
    fold_of_group: pd.Series = field(repr=False)
    groups: str
    n_splits: int
    random_state: int | None
    min_auc: float = 0.65
    slope_range: tuple[float, float] = (0.8, 1.25)
    fit_warnings: tuple[str, ...] = ()
    benchmark: Diagnostics | None = field(default=None, repr=False)
    benchmark_name: str | None = None

    @property
    def auc(self) -> float:
        """Cross-validated weighted AUC (pooled out-of-fold predictions)."""
        return self.diagnostics.auc

    @property
    def brier(self) -> float:
        """Cross-validated weighted Brier score."""
        return self.diagnostics.brier

    @property
    def calibration_slope(self) -> float:
        """Cross-validated calibration slope (1 is ideal; < 1 means overfitting)."""
        return self.diagnostics.calibration_slope

    @property
    def calibration(self) -> pd.DataFrame:
        """Cross-validated calibration by deciles of the predicted probability."""
        return self.diagnostics.calibration

    def classification_table(self, cutoff: float | None = None) -> ClassificationTable:
        """Classification table of the out-of-fold predictions at a cut-off.

        Parameters
        ----------
        cutoff : float in (0, 1), optional
            Children with a held-out probability at or above it are flagged.
            By default, the weighted share of children with the outcome.

        Returns
        -------
        ClassificationTable
        """
        pred = self.predictions
        return classification_table(
            pred["y"].to_numpy(),
            pred["p"].to_numpy(),
            pred["weight"].to_numpy(),
            cutoff,
        )

    @property
    def benchmark_gap(self) -> float:
        """Benchmark AUC minus the logit's, out of fold (NaN without a benchmark).

        Above 0.02, the benchmark finds structure the risk model misses. The
        default trees are not tuned, so a smaller gap is not proof that none
        is missed.
        """
        if self.benchmark is None:
            return np.nan
        return float(self.benchmark.auc - self.auc)

    @property
    def weak(self) -> bool:
        """True when the AUC or the calibration slope fails its threshold."""
        return bool(_weakness(self.auc, self.calibration_slope, self))

    def __repr__(self) -> str:
        return (
            f"CrossValidation({self.n_splits} folds by {self.groups}: "
            f"AUC {self.auc:.3f}, Brier {self.brier:.4f}, "
            f"calibration slope {self.calibration_slope:.3f})"
        )

    def summary(self) -> str:
        """A short text report: pooled figures, their spread over folds, verdict."""
        f = self.folds
        lines = [
            f"Grouped {self.n_splits}-fold cross-validation by {self.groups} "
            f"({len(self.fold_of_group):,} groups, {len(self.predictions):,} "
            "children scored out of fold)",
            f"weighted AUC {self.auc:.3f} (folds {f['auc'].min():.3f}-"
            f"{f['auc'].max():.3f}), Brier {self.brier:.4f}, calibration slope "
            f"{self.calibration_slope:.3f} (folds {f['calibration_slope'].min():.2f}-"
            f"{f['calibration_slope'].max():.2f})",
        ]
        if self.diagnostics.classification is not None:
            lines.append("classification " + self.diagnostics.classification.summary())
        if self.benchmark is not None:
            f = self.folds
            gap = self.benchmark_gap
            lines.append(
                f"benchmark {self.benchmark_name}: weighted AUC "
                f"{self.benchmark.auc:.3f} (folds {f['benchmark_auc'].min():.3f}-"
                f"{f['benchmark_auc'].max():.3f}), Brier {self.benchmark.brier:.4f}; "
                + (
                    f"it beats the risk model by {gap:.3f} in AUC: the model "
                    "misses structure (interactions or non-linear effects) in "
                    "these features that may be worth adding to the specification"
                    if gap > _BENCHMARK_GAP
                    else "it finds no structure the risk model misses (the "
                    "untuned trees are a coarse check: only a gap above "
                    f"{_BENCHMARK_GAP:g} counts)"
                )
            )
        reasons = _weakness(self.auc, self.calibration_slope, self)
        lines.append(
            "verdict: WEAK MODEL - " + "; ".join(reasons) + ". " + _NOT_SOLID
            if reasons
            else "verdict: passes the weak-model thresholds "
            f"(AUC >= {self.min_auc:g}, slope in [{self.slope_range[0]:g}, "
            f"{self.slope_range[1]:g}])"
        )
        return "\n".join(lines)


#: A benchmark AUC higher than the logit's by more than this is worth acting on.
_BENCHMARK_GAP = 0.02

_NOT_SOLID = (
    "The territory ranking must not be presented as solid: publish it, if at "
    "all, as indicative, with these diagnostics, and prefer broad risk levels to "
    "exact ranks."
)


def cross_validate(
    model: RiskModel,
    survey: pd.DataFrame,
    *,
    groups: str | Sequence[str] | np.ndarray | pd.Series,
    n_splits: int = 5,
    random_state: int | None = 0,
    min_auc: float = 0.65,
    slope_range: tuple[float, float] = (0.8, 1.25),
    n_bins: int = 10,
    benchmark: Any = False,
    **fit_kwargs: Any,
) -> CrossValidation:
    """Grouped K-fold cross-validation of a risk model.

    Each fold holds out whole groups (PSUs or territories), refits
    ``sklearn.base.clone(model)`` on the other groups with the same fit
    arguments, and predicts the held-out children.

    Parameters
    ----------
    model : RiskModel
        The model to validate (fitted or not; it is cloned, never changed).
    survey : DataFrame of shape (n_children, n_columns)
        The training survey, as given to :meth:`RiskModel.fit`.
    groups : str, list of str, or array-like of shape (n_children,)
        The column whose values make the folds — the PSU (e.g. ``"upm"``) or the
        territory (e.g. ``"cod_mun"``) — or several columns whose combination
        does (e.g. ``["estrato", "upm"]`` when PSU numbers restart within
        strata), or the group label of each row as an array. A list of strings
        is always read as column names.
    n_splits : int, default 5
        Number of folds, at least 2 and at most the number of groups.
    random_state : int or None, default 0
        Seed of the random assignment of groups to folds; the same seed gives
        the same folds and results.
    min_auc : float, default 0.65
        A cross-validated weighted AUC below this is a weak model.
    slope_range : (float, float), default (0.8, 1.25)
        A cross-validated calibration slope outside this range is a weak model.
    n_bins : int, default 10
        Bins of the calibration tables.
    benchmark : bool or scikit-learn classifier, default False
        Also fit a flexible model on each fold's training rows and score the
        same held-out rows, as an accuracy benchmark for the logit
        (:mod:`clrisk.benchmark`): True for gradient-boosted trees
        (scikit-learn's ``HistGradientBoostingClassifier``, default settings
        but no early stopping, so the trees see every training row;
        categorical features of up to 255 levels split as categories), or a
        classifier instance with ``fit(X, y, sample_weight=)`` and
        ``predict_proba`` (cloned per fold), which receives the level index of
        each categorical feature as a number, then the numeric features.
        It reads the same features, coded the same way, with the same weights.
    **fit_kwargs
        Passed to :meth:`RiskModel.fit` of each fold (``outcome``, ``weight``,
        ``strata``, ``psu``, ``territory``, ``indicators``...). Per-row arrays
        (``y``, ``sample_weight``) are split with the rows.

    Returns
    -------
    CrossValidation

    Raises
    ------
    CrossValidationError
        When a fold's training part cannot be fitted (e.g. a feature level
        present only in the held-out groups) or its held-out part cannot be
        scored; the message names the fold and the original error is chained.
    SchemaError, DataValidationError, InvalidParameterError
        For missing group columns, missing group labels or bad arguments.

    Warns
    -----
    WeakModelWarning
        When the cross-validated AUC is below `min_auc` or the calibration
        slope is outside `slope_range`.

    Notes
    -----
    Groups are assigned to folds so that folds hold about the same number of
    children: groups are shuffled with `random_state`, ordered by size
    (largest first, ties in shuffled order) and each is put in the fold with
    the fewest children so far. Held-out rows are coded with the fold model's
    own ``on_invalid`` policy and weighted with the survey weights, so the
    scores are survey-weighted estimates for the population, like
    ``model.diagnostics_``.

    Examples
    --------
    >>> import clrisk
    >>> from clrisk.validation import cross_validate
    >>> c = clrisk.make_country(random_state=0, n_territories=40, n_regions=4,
    ...                         children_per_territory=150, survey_children=3000)
    >>> cv = cross_validate(clrisk.RiskModel(c.spec), c.survey, groups="upm",
    ...                     **c.fit_kwargs)
    >>> 0.7 < cv.auc < 0.95
    True
    """
    if not isinstance(model, RiskModel):
        raise InvalidParameterError(
            "The 'model' parameter of cross_validate must be a RiskModel; got "
            f"{type(model).__name__}."
        )
    if not isinstance(survey, pd.DataFrame):
        raise InvalidParameterError(
            "The 'survey' parameter of cross_validate must be a pandas DataFrame; "
            f"got {type(survey).__name__}."
        )
    check_fit_kwargs(fit_kwargs, len(survey))
    _check_settings(n_splits, min_auc, slope_range, n_bins, random_state)
    estimator = None
    if benchmark is not False:
        estimator = benchmark_estimator(benchmark, random_state)
    labels, group_name = _group_labels(survey, groups)
    fold_of_group, fold_of_row = _assign_folds(labels, n_splits, random_state)

    parts: list[pd.DataFrame] = []
    fold_rows: list[dict[str, Any]] = []
    fold_cal: list[pd.DataFrame] = []
    caught: list[str] = []
    for k in range(1, n_splits + 1):
        test_idx = np.flatnonzero(fold_of_row == k)
        train_idx = np.flatnonzero(fold_of_row != k)
        held_out = fold_of_group.index[fold_of_group.to_numpy() == k].tolist()
        context = _FoldContext(k, n_splits, group_name, held_out, train_idx, test_idx)
        fitted, notes = _fit_fold(model, survey, train_idx, fit_kwargs, context)
        caught += notes
        coded, y, w, p, rows = _score_fold(
            fitted, model, survey, test_idx, fit_kwargs, context
        )
        part = {"row": rows, "group": labels[rows], "fold": k, "y": y, "weight": w}
        scores, cal = _fold_scores(y, p, w, n_bins)
        if estimator is not None:
            pb = _benchmark_fold(
                estimator, fitted, model, survey, coded, fit_kwargs, context
            )
            part["p_benchmark"] = pb
            both = len(np.unique(y[w > 0])) == 2
            scores["benchmark_auc"] = weighted_auc(y, pb, w) if both else np.nan
            sw = w.sum()
            scores["benchmark_brier"] = (
                float(np.dot(w, (y - pb) ** 2) / sw) if sw > 0 else np.nan
            )
        parts.append(pd.DataFrame({**part, "p": p}))
        fold_rows.append(
            {
                "fold": k,
                "n_groups": len(held_out),
                "n_train": fitted.n_obs_,
                "n_test": len(rows),
                **scores,
                "converged": bool(fitted.converged_),
            }
        )
        fold_cal.append(cal.assign(fold=k)[["fold", *cal.columns]])

    pred = pd.concat(parts, ignore_index=True).sort_values("row", kind="stable")
    pred = pred.reset_index(drop=True)
    y, p, w = (pred[c].to_numpy(dtype=float) for c in ("y", "p", "weight"))
    if len(np.unique(y[w > 0])) < 2:
        raise DataValidationError(
            column=_outcome_label(fit_kwargs),
            problem="the out-of-fold predictions have a single outcome class, so "
            "AUC and calibration are undefined",
            n_bad=len(y),
            fix="Cross-validate on a survey with children with and without the "
            "outcome.",
        )
    result = CrossValidation(
        diagnostics=_pooled(y, p, w, n_bins),
        benchmark=(
            None
            if estimator is None
            else _pooled(y, pred["p_benchmark"].to_numpy(), w, n_bins)
        ),
        folds=pd.DataFrame(fold_rows),
        fold_calibration=pd.concat(fold_cal, ignore_index=True),
        predictions=pred,
        fold_of_group=fold_of_group,
        groups=group_name,
        n_splits=n_splits,
        random_state=random_state,
        min_auc=float(min_auc),
        slope_range=(float(slope_range[0]), float(slope_range[1])),
        fit_warnings=tuple(caught),
        benchmark_name=None if estimator is None else type(estimator).__name__,
    )
    reasons = _weakness(result.auc, result.calibration_slope, result)
    if reasons:
        warnings.warn(
            f"Weak model in grouped cross-validation by {group_name}: "
            + "; ".join(reasons)
            + ". "
            + _NOT_SOLID,
            WeakModelWarning,
            stacklevel=2,
        )
    return result


# ---------------------------------------------------------------- private
@dataclass(frozen=True)
class _FoldContext:
    fold: int
    n_splits: int
    group_name: str
    held_out: list[Any]
    train_idx: np.ndarray
    test_idx: np.ndarray

    def error(self, stage: str, exc: BaseException) -> CrossValidationError:
        shown = ", ".join(repr(g) for g in self.held_out[:5])
        more = len(self.held_out) - 5
        shown += f" and {more} more" if more > 0 else ""
        return CrossValidationError(
            f"Cross-validation fold {self.fold} of {self.n_splits} (by "
            f"{self.group_name}; {len(self.train_idx):,} training rows, "
            f"{len(self.test_idx):,} held-out rows in groups {shown}) could not be "
            f"{stage}: {exc} Fix: use fewer folds (n_splits), fold by a coarser "
            "group, or merge the sparse levels named so that every training part "
            "can be fitted.",
            fold=self.fold,
            n_splits=self.n_splits,
            held_out=self.held_out,
        )


def check_fit_kwargs(
    kwargs: dict[str, Any], n: int, caller: str = "cross_validate"
) -> None:
    """Refuse fit arguments RiskModel.fit does not take, and per-row arrays of
    the wrong length (also used by :func:`clrisk.effects.territory_effects`)."""
    allowed = set(inspect.signature(RiskModel.fit).parameters) - {"self", "X"}
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise InvalidParameterError(
            f"{caller} got fit arguments {unknown} that RiskModel.fit does not "
            f"take; it takes {sorted(allowed)}."
        )
    for name in _ROW_ARRAYS:
        if kwargs.get(name) is not None and len(np.asarray(kwargs[name])) != n:
            raise InvalidParameterError(
                f"The '{name}' argument has {len(np.asarray(kwargs[name]))} values "
                f"but the survey has {n} rows."
            )


def _check_settings(
    n_splits: Any,
    min_auc: Any,
    slope_range: Any,
    n_bins: Any,
    random_state: Any,
) -> None:
    if (
        not isinstance(n_splits, numbers.Integral)
        or isinstance(n_splits, bool)
        or n_splits < 2
    ):
        raise InvalidParameterError(
            "The 'n_splits' parameter of cross_validate must be an int >= 2; "
            f"got {n_splits!r}."
        )
    if not isinstance(min_auc, numbers.Real) or not 0 <= float(min_auc) <= 1:
        raise InvalidParameterError(
            "The 'min_auc' parameter of cross_validate must be a float in [0, 1]; "
            f"got {min_auc!r}."
        )
    ok = (
        isinstance(slope_range, Sequence)
        and len(slope_range) == 2
        and all(isinstance(v, numbers.Real) for v in slope_range)
        and slope_range[0] <= slope_range[1]
    )
    if not ok:
        raise InvalidParameterError(
            "The 'slope_range' parameter of cross_validate must be a pair "
            f"(low, high) of floats with low <= high; got {slope_range!r}."
        )
    if not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise InvalidParameterError(
            "The 'n_bins' parameter of cross_validate must be an int >= 1; "
            f"got {n_bins!r}."
        )
    if random_state is not None and not isinstance(random_state, numbers.Integral):
        raise InvalidParameterError(
            "The 'random_state' parameter of cross_validate must be an int or None; "
            f"got {random_state!r}."
        )


def _group_labels(survey: pd.DataFrame, groups: Any) -> tuple[np.ndarray, str]:
    """The group label of each row (object array) and a name for messages."""
    if isinstance(groups, str) or (
        isinstance(groups, list | tuple)
        and len(groups) > 0
        and all(isinstance(g, str) for g in groups)
    ):
        cols = [groups] if isinstance(groups, str) else list(groups)
        missing = [c for c in cols if c not in survey.columns]
        if missing:
            raise SchemaError(
                "The group column(s) named by 'groups' are not in the survey.",
                expected=cols,
                received=[str(c) for c in survey.columns],
            )
        frame = survey[cols]
        bad = frame.isna().any(axis=1).to_numpy()
        name = cols[0] if len(cols) == 1 else " x ".join(cols)
        if bad.any():
            raise DataValidationError(
                column=name,
                problem="missing group labels, so those children belong to no fold",
                n_bad=int(bad.sum()),
                examples=[f"row {r}" for r in np.flatnonzero(bad)[:5]],
                fix="Fill in the PSU or territory code of every child.",
            )
        if len(cols) == 1:
            labels = frame[cols[0]].to_numpy(dtype=object)
        else:
            labels = np.empty(len(frame), dtype=object)
            labels[:] = list(frame.itertuples(index=False, name=None))
        return labels, name
    arr = np.asarray(groups, dtype=object)
    if arr.ndim != 1 or len(arr) != len(survey):
        raise InvalidParameterError(
            "The 'groups' parameter of cross_validate must name survey column(s) or "
            f"give one label per row ({len(survey)}); got shape {arr.shape}."
        )
    bad = pd.isna(pd.Series(arr)).to_numpy()
    if bad.any():
        raise DataValidationError(
            column="groups",
            problem="missing group labels, so those children belong to no fold",
            n_bad=int(bad.sum()),
            examples=[f"row {r}" for r in np.flatnonzero(bad)[:5]],
            fix="Give every child a group label.",
        )
    return arr, "groups"


def _assign_folds(
    labels: np.ndarray, n_splits: int, random_state: int | None
) -> tuple[pd.Series, np.ndarray]:
    """Fold (1-based) of each group and of each row, balancing rows per fold."""
    codes, uniques = pd.factorize(pd.Series(labels), sort=True)
    uniques = pd.Index(list(uniques), dtype=object, tupleize_cols=False)
    if len(uniques) < n_splits:
        raise InvalidParameterError(
            f"The 'n_splits' parameter of cross_validate ({n_splits}) exceeds the "
            f"number of groups ({len(uniques)}); use at most {len(uniques)} folds "
            "or finer groups."
        )
    sizes = np.bincount(codes, minlength=len(uniques))
    rng = np.random.default_rng(random_state)
    shuffled = rng.permutation(len(uniques))
    order = shuffled[np.argsort(-sizes[shuffled], kind="stable")]
    load = np.zeros(n_splits, dtype=np.int64)
    fold = np.empty(len(uniques), dtype=np.int64)
    for g in order:  # greedy: largest groups first, into the lightest fold
        k = int(np.argmin(load))
        fold[g] = k + 1
        load[k] += sizes[g]
    return pd.Series(fold, index=uniques, name="fold"), fold[codes]


def _slice_kwargs(kwargs: dict[str, Any], idx: np.ndarray) -> dict[str, Any]:
    out = dict(kwargs)
    for name in _ROW_ARRAYS:
        if out.get(name) is not None:
            out[name] = np.asarray(out[name])[idx]
    return out


def _fit_fold(
    model: RiskModel,
    survey: pd.DataFrame,
    train_idx: np.ndarray,
    fit_kwargs: dict[str, Any],
    ctx: _FoldContext,
) -> tuple[RiskModel, list[str]]:
    """Fit a clone on the training part; record (and pass on) its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitted = clone(model).fit(
                survey.iloc[train_idx], **_slice_kwargs(fit_kwargs, train_idx)
            )
        except (ClriskError, np.linalg.LinAlgError) as exc:
            raise ctx.error("fitted", exc) from exc
    notes = []
    for wmsg in caught:
        text = f"fold {ctx.fold} of {ctx.n_splits}: {wmsg.message}"
        notes.append(text)
        if not issubclass(wmsg.category, DesignWarning):
            warnings.warn(text, wmsg.category, stacklevel=3)
    return fitted, notes


def coded_part(
    fitted: RiskModel,
    model: RiskModel,
    survey: pd.DataFrame,
    idx: np.ndarray,
    fit_kwargs: dict[str, Any],
    where: str,
    territory: str | None = None,
) -> tuple[CodedFrame, np.ndarray, np.ndarray]:
    """Rows `idx` of the survey coded as the fold's model codes them, with
    their 0/1 outcome and weight (also used by
    :func:`clrisk.effects.territory_effects`, which names the `territory`
    column even when the model has no territory features)."""
    part = survey.iloc[idx]
    coded = encode(
        fitted.spec_,
        part,
        source=fitted.source_,
        territory=territory or fitted.territory_,
        indicators=_indicators(fitted, fit_kwargs),
        weight=fit_kwargs.get("weight"),
        on_invalid=model.on_invalid,
        where=where,
    )
    rows = coded.rows
    y = _part_outcome(fitted, part, rows, fit_kwargs, idx)
    sw = fit_kwargs.get("sample_weight")
    if sw is not None:
        w = np.asarray(sw, dtype=float)[idx][rows]
    elif coded.weight is not None:
        w = coded.weight
    else:
        w = np.ones(len(rows))
    return coded, y, w


def _indicators(fitted: RiskModel, fit_kwargs: dict[str, Any]) -> pd.DataFrame | None:
    indicators = fit_kwargs.get("indicators")
    if indicators is None and fitted.indicators_ is not None:
        indicators = fitted.indicator_table()
    return indicators


def _score_fold(
    fitted: RiskModel,
    model: RiskModel,
    survey: pd.DataFrame,
    test_idx: np.ndarray,
    fit_kwargs: dict[str, Any],
    ctx: _FoldContext,
) -> tuple[CodedFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coded rows, outcome, weight, probability and survey position of the
    scored rows."""
    try:
        coded, y, w = coded_part(
            fitted,
            model,
            survey,
            test_idx,
            fit_kwargs,
            f"the held-out part of fold {ctx.fold}",
        )
    except ClriskError as exc:
        raise ctx.error("scored", exc) from exc
    # as predict_proba computes it, from the rows already coded
    p = cdf(design_matrix(coded) @ fitted.params_, fitted.link)
    return coded, y, w, p, test_idx[coded.rows]


def _benchmark_fold(
    estimator: Any,
    fitted: RiskModel,
    model: RiskModel,
    survey: pd.DataFrame,
    test: CodedFrame,
    fit_kwargs: dict[str, Any],
    ctx: _FoldContext,
) -> np.ndarray:
    """The benchmark model's held-out probabilities, fitted on the rows the
    fold's risk model was fitted on."""
    try:
        train, y, w = coded_part(
            fitted,
            model,
            survey,
            ctx.train_idx,
            fit_kwargs,
            f"the training part of fold {ctx.fold}",
        )
    except ClriskError as exc:
        raise ctx.error("fitted (benchmark)", exc) from exc
    try:
        return fit_predict_benchmark(estimator, train, y, w, test)
    except (ValueError, TypeError) as exc:
        raise CrossValidationError(
            f"Cross-validation fold {ctx.fold} of {ctx.n_splits}: the benchmark "
            f"{type(estimator).__name__} could not be fitted or scored "
            f"({type(exc).__name__}: {exc}). Fix: check the benchmark's settings, "
            "or use benchmark=True.",
            fold=ctx.fold,
            n_splits=ctx.n_splits,
            held_out=ctx.held_out,
        ) from exc


def _part_outcome(
    fitted: RiskModel,
    test: pd.DataFrame,
    rows: np.ndarray,
    fit_kwargs: dict[str, Any],
    test_idx: np.ndarray,
) -> np.ndarray:
    """The outcome of a part of the survey as 0/1, coded as the fold's fit coded
    it (a training part's is known to be valid: the fit checked it)."""
    outcome = fit_kwargs.get("outcome")
    name = fitted.outcome_name_
    if isinstance(outcome, OutcomeRule):
        raw = pd.Series(outcome.apply(test.iloc[rows]))
    elif outcome is not None:
        raw = test[outcome].iloc[rows].reset_index(drop=True)
        if not pd.api.types.is_numeric_dtype(raw.dtype):
            as_number = pd.to_numeric(raw, errors="coerce")
            if as_number.notna().sum() == raw.notna().sum():
                raw = as_number
    else:
        raw = pd.Series(np.asarray(fit_kwargs["y"])[test_idx][rows])
    values = raw.to_numpy()
    known = raw.notna().to_numpy() & np.isin(values, fitted.classes_)
    if not known.all():
        raise DataValidationError(
            column=name,
            problem="held-out outcome values that are missing or not among the "
            f"classes {fitted.classes_.tolist()} of the training part",
            n_bad=int((~known).sum()),
            examples=[f"row {r}" for r in test_idx[rows][~known][:5]],
            fix="Code the outcome 0/1 for every child.",
        )
    y: np.ndarray = (values == fitted.classes_[1]).astype(np.float64)
    return y


def _outcome_label(fit_kwargs: dict[str, Any]) -> str:
    outcome = fit_kwargs.get("outcome")
    if isinstance(outcome, OutcomeRule):
        return outcome.name
    return str(outcome) if outcome is not None else "y"


def _fold_scores(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, n_bins: int
) -> tuple[dict[str, float], pd.DataFrame]:
    """Scores of one fold's held-out part; NaN where undefined (one class)."""
    sw = w.sum()
    both = len(np.unique(y[w > 0])) == 2
    scores = {
        "weight": float(sw),
        "observed": float(np.dot(w, y) / sw) if sw > 0 else np.nan,
        "predicted": float(np.dot(w, p) / sw) if sw > 0 else np.nan,
        "auc": weighted_auc(y, p, w) if both else np.nan,
        "brier": float(np.dot(w, (y - p) ** 2) / sw) if sw > 0 else np.nan,
        "calibration_slope": calibration_slope(y, p, w) if both else np.nan,
    }
    return scores, calibration_table(y, p, w, n_bins=n_bins)


def _pooled(y: np.ndarray, p: np.ndarray, w: np.ndarray, n_bins: int) -> Diagnostics:
    d = diagnose(y, p, w)
    if n_bins == 10:
        return d
    return Diagnostics(
        auc=d.auc,
        brier=d.brier,
        pseudo_r2=d.pseudo_r2,
        calibration_slope=d.calibration_slope,
        calibration=calibration_table(y, p, w, n_bins=n_bins),
        classification=d.classification,
    )


def _weakness(auc: float, slope: float, cv: CrossValidation) -> list[str]:
    """Why the model is weak (empty when it passes)."""
    reasons = []
    if not auc >= cv.min_auc:
        reasons.append(
            f"cross-validated weighted AUC {auc:.3f} is below {cv.min_auc:g}"
        )
    lo, hi = cv.slope_range
    if not lo <= slope <= hi:
        reasons.append(
            f"cross-validated calibration slope {slope:.3f} is outside "
            f"[{lo:g}, {hi:g}]"
            + (
                " (predictions too extreme, as from overfitting)"
                if slope < lo
                else " (predictions too timid)"
                if slope > hi
                else ""
            )
        )
    return reasons
