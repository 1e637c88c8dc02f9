"""Model diagnostics on weighted data: AUC, calibration, pseudo-R², Brier score."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import logit

from clrisk.solver import fit_binary, loglik

__all__ = [
    "Diagnostics",
    "calibration_slope",
    "calibration_table",
    "diagnose",
    "weighted_auc",
]


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
    """

    auc: float
    brier: float
    pseudo_r2: float
    calibration_slope: float
    calibration: pd.DataFrame = field(repr=False)

    def summary(self) -> str:
        """A short text summary."""
        return (
            f"weighted AUC {self.auc:.3f}, Brier {self.brier:.4f}, "
            f"McFadden pseudo-R2 {self.pseudo_r2:.3f}, "
            f"calibration slope {self.calibration_slope:.3f}"
        )


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


def diagnose(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> Diagnostics:
    """All diagnostics of probabilities `p` against outcomes `y` with weights `w`."""
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
    )
