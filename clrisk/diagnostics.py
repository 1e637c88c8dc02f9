"""Model diagnostics on weighted data: AUC, calibration, pseudo-R², Brier score,
and the classification table at a cut-off."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import logit

from clrisk.exceptions import DataValidationError, InvalidParameterError
from clrisk.solver import fit_binary, loglik

__all__ = [
    "ClassificationTable",
    "Diagnostics",
    "calibration_slope",
    "calibration_table",
    "classification_table",
    "diagnose",
    "weighted_auc",
]


@dataclass(frozen=True)
class ClassificationTable:
    """Children flagged at a cut-off of the predicted probability, against the outcome.

    A child is *flagged* when its probability is at or above the cut-off. The
    four cells are sums of survey weights, so the rates are estimates for the
    population the survey represents.

    Attributes
    ----------
    cutoff : float
        The cut-off of the predicted probability.
    rule : str
        How the cut-off was chosen: ``"prevalence"`` (the weighted share of
        children with the outcome, the default) or ``"given"``.
    true_pos, false_neg, false_pos, true_neg : float
        Weighted children: with the outcome and flagged, with the outcome and
        not flagged, without it and flagged, without it and not flagged.
    n : int
        Children (rows) in the table.
    """

    cutoff: float
    rule: str
    true_pos: float
    false_neg: float
    false_pos: float
    true_neg: float
    n: int

    @property
    def sensitivity(self) -> float:
        """Share of children with the outcome who are flagged (true-positive rate)."""
        return _ratio(self.true_pos, self.true_pos + self.false_neg)

    @property
    def specificity(self) -> float:
        """Share of children without the outcome who are not flagged."""
        return _ratio(self.true_neg, self.true_neg + self.false_pos)

    @property
    def ppv(self) -> float:
        """Share of flagged children who have the outcome (precision)."""
        return _ratio(self.true_pos, self.true_pos + self.false_pos)

    @property
    def npv(self) -> float:
        """Share of children not flagged who do not have the outcome."""
        return _ratio(self.true_neg, self.true_neg + self.false_neg)

    @property
    def accuracy(self) -> float:
        """Share of children classified correctly."""
        total = self.true_pos + self.false_neg + self.false_pos + self.true_neg
        return _ratio(self.true_pos + self.true_neg, total)

    @property
    def flagged(self) -> float:
        """Share of children flagged."""
        total = self.true_pos + self.false_neg + self.false_pos + self.true_neg
        return _ratio(self.true_pos + self.false_pos, total)

    def table(self) -> pd.DataFrame:
        """The 2 x 2 table of weighted children, with totals.

        Returns
        -------
        DataFrame of shape (3, 3)
            Rows ``observed`` 1, 0 and ``total``; columns ``flagged``,
            ``not flagged`` and ``total``.
        """
        cells = np.array(
            [[self.true_pos, self.false_neg], [self.false_pos, self.true_neg]]
        )
        full = np.vstack([cells, cells.sum(axis=0)])
        full = np.column_stack([full, full.sum(axis=1)])
        return pd.DataFrame(
            full,
            index=pd.Index(["1", "0", "total"], name="observed"),
            columns=["flagged", "not flagged", "total"],
        )

    def summary(self) -> str:
        """A short text summary."""
        return (
            f"at cut-off {self.cutoff:.4f} ({self.rule}): "
            f"{self.flagged:.1%} flagged, sensitivity {self.sensitivity:.3f}, "
            f"specificity {self.specificity:.3f}, PPV {self.ppv:.3f}, "
            f"NPV {self.npv:.3f}, accuracy {self.accuracy:.3f}"
        )


@dataclass(frozen=True)
class Diagnostics:
    """Fit diagnostics of a risk model on one data set.

    Attributes
    ----------
    auc : float
        Weighted area under the ROC curve.
    brier : float
        Weighted mean squared error of the probabilities.
    pseudo_r2 : float
        McFadden's pseudo-R², 1 - logL / logL(intercept only).
    calibration_slope : float
        Slope of the weighted logit of the outcome on logit(p); 1 is ideal.
    calibration : DataFrame
        Calibration by deciles of p (Hosmer-Lemeshow style): ``bin``, ``n``,
        ``weight``, ``predicted``, ``observed``.
    classification : ClassificationTable or None
        The classification table at the weighted prevalence of the outcome;
        None for a model saved before clrisk kept it.
    """

    auc: float
    brier: float
    pseudo_r2: float
    calibration_slope: float
    calibration: pd.DataFrame = field(repr=False)
    classification: ClassificationTable | None = field(default=None, repr=False)

    def summary(self) -> str:
        """A short text summary."""
        text = (
            f"weighted AUC {self.auc:.3f}, Brier {self.brier:.4f}, "
            f"McFadden pseudo-R2 {self.pseudo_r2:.3f}, "
            f"calibration slope {self.calibration_slope:.3f}"
        )
        if self.classification is not None:
            text += f"; {self.classification.summary()}"
        return text


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else np.nan


def weighted_auc(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, order: np.ndarray | None = None
) -> float:
    """Weighted AUC: P(p_i > p_j) over weighted (positive, negative) pairs.

    Ties in `p` count one half. `order` (an argsort of `p`) may be passed to
    save the sort.
    """
    order = np.argsort(p, kind="stable") if order is None else order
    ps, ys, ws = p[order], y[order] > 0, w[order]
    starts = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])  # tie groups
    pos = np.add.reduceat(np.where(ys, ws, 0.0), starts)
    neg = np.add.reduceat(np.where(ys, 0.0, ws), starts)
    below = np.cumsum(neg) - neg  # negative weight strictly below each group
    total = pos.sum() * neg.sum()
    return float(np.dot(pos, below + 0.5 * neg) / total) if total > 0 else np.nan


def calibration_table(
    y: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    n_bins: int = 10,
    order: np.ndarray | None = None,
) -> pd.DataFrame:
    """Observed vs predicted rates in weighted quantile bins of `p`.

    `order` (an argsort of `p`) may be passed to save the sort.

    Returns
    -------
    DataFrame of shape (n_bins, 5)
    """
    order = np.argsort(p, kind="stable") if order is None else order
    cum = np.cumsum(w[order])
    edges = cum[-1] * np.arange(1, n_bins) / n_bins
    bins = np.empty(len(p), dtype=np.int64)
    bins[order] = np.searchsorted(edges, cum, side="left")
    sw = np.bincount(bins, weights=w, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = pd.DataFrame(
            {
                "bin": np.arange(1, n_bins + 1),
                "n": np.bincount(bins, minlength=n_bins),
                "weight": sw,
                "predicted": np.bincount(bins, weights=w * p, minlength=n_bins) / sw,
                "observed": np.bincount(bins, weights=w * y, minlength=n_bins) / sw,
            }
        )
    return table


def calibration_slope(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """Slope of a weighted logit of `y` on logit(`p`) (1 means well calibrated)."""
    lp = logit(np.clip(p, 1e-12, 1 - 1e-12))
    X = np.column_stack([np.ones_like(lp), lp])
    # (0, 1) is the answer for in-sample logit fits with an intercept: start there
    return float(fit_binary(X, y.astype(float), w, beta0=np.array([0.0, 1.0])).beta[1])


def classification_table(
    y: np.ndarray, p: np.ndarray, w: np.ndarray, cutoff: float | None = None
) -> ClassificationTable:
    """Weighted classification table of probabilities `p` at a cut-off.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Outcome, 0/1.
    p : ndarray of shape (n,)
        Predicted probabilities.
    w : ndarray of shape (n,)
        Survey weights (>= 0).
    cutoff : float in (0, 1), optional
        A child is flagged when ``p >= cutoff``. By default, the weighted share
        of children with the outcome: child labour is rare, so the
        conventional 0.5 flags few children (5.6% on the demo survey, catching
        22% of those in child labour), while the prevalence flags
        the children whose predicted risk is above the average child's and
        tends to balance sensitivity and specificity (Cramer, 1999).

    Returns
    -------
    ClassificationTable

    Raises
    ------
    InvalidParameterError
        For a cut-off outside (0, 1) or not a number, or arrays of different
        lengths.
    DataValidationError
        For an outcome not 0/1, probabilities outside [0, 1] or missing,
        negative or missing weights or weights summing to 0, or (for the
        default cut-off) a single outcome class.

    Examples
    --------
    >>> import numpy as np
    >>> t = classification_table(np.array([1, 0, 1, 0]), np.array([.9, .2, .4, .6]),
    ...                          np.ones(4), cutoff=0.5)
    >>> t.sensitivity, t.specificity
    (0.5, 0.5)
    """
    yb, p, w = _check_inputs(y, p, w)
    if cutoff is None:
        rule, cut = "prevalence", float(np.dot(w, yb) / w.sum())
        if not 0 < cut < 1:
            raise DataValidationError(
                column="y",
                problem="the weighted children all have the outcome or none does, "
                "so the default cut-off (the prevalence) is not a probability "
                "strictly between 0 and 1",
                n_bad=len(yb),
                fix="Give the cut-off, or a table with both outcomes.",
            )
    else:
        ok = isinstance(cutoff, numbers.Real) and not isinstance(cutoff, bool)
        if not ok or not 0 < float(cutoff) < 1:
            raise InvalidParameterError(
                "The 'cutoff' parameter must be a probability strictly between 0 "
                f"and 1; got {cutoff!r}."
            )
        rule, cut = "given", float(cutoff)
    flag = np.asarray(p) >= cut
    return ClassificationTable(
        cutoff=cut,
        rule=rule,
        true_pos=float(w[yb & flag].sum()),
        false_neg=float(w[yb & ~flag].sum()),
        false_pos=float(w[~yb & flag].sum()),
        true_neg=float(w[~yb & ~flag].sum()),
        n=len(flag),
    )


def _check_inputs(
    y: np.ndarray, p: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcome as bool, probabilities and weights, checked: same length, y 0/1,
    p in [0, 1], w finite >= 0 with a positive sum."""
    try:
        ya, pa, wa = (np.asarray(v, dtype=float).ravel() for v in (y, p, w))
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"classification_table takes numeric arrays y, p and w ({exc})."
        ) from None
    if not len(ya) == len(pa) == len(wa):
        raise InvalidParameterError(
            "classification_table takes y, p and w of the same length; got "
            f"{len(ya)}, {len(pa)} and {len(wa)}."
        )
    for name, bad, problem, fix in (
        ("y", ~np.isin(ya, (0.0, 1.0)), "values other than 0 and 1",
         "Code the outcome 0/1."),
        ("p", ~((pa >= 0) & (pa <= 1)), "values that are not probabilities in "
         "[0, 1] (or missing)", "Give every child's predicted probability."),
        ("w", ~(np.isfinite(wa) & (wa >= 0)), "weights that are negative, "
         "infinite or missing", "Give finite weights >= 0."),
    ):  # fmt: skip
        if bad.any():
            raise DataValidationError(
                column=name,
                problem=problem,
                n_bad=int(bad.sum()),
                examples=[f"row {i}" for i in np.flatnonzero(bad)[:5]],
                fix=fix,
            )
    if not wa.sum() > 0:
        raise DataValidationError(
            column="w",
            problem="the weights sum to 0, so there is no one to classify",
            n_bad=len(wa),
            fix="Give positive weights.",
        )
    return ya == 1.0, pa, wa


def diagnose(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> Diagnostics:
    """All diagnostics of probabilities `p` against outcomes `y` with weights `w`.

    The classification table is at the weighted prevalence of the outcome.
    """
    ybar = float(np.dot(w, y) / w.sum())
    ll = loglik(y, p, w)
    ll0 = loglik(y, np.full_like(p, ybar), w)
    order = np.argsort(p, kind="stable")
    return Diagnostics(
        auc=weighted_auc(y, p, w, order),
        brier=float(np.dot(w, (y - p) ** 2) / w.sum()),
        pseudo_r2=1.0 - ll / ll0,
        calibration_slope=calibration_slope(y, p, w),
        calibration=calibration_table(y, p, w, order=order),
        classification=classification_table(y, p, w),
    )
