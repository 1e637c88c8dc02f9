"""Uncertainty of ranks and levels: joint draws of the territory risks.

The delta-method intervals (:mod:`clrisk.territory`) say how uncertain each
territory's risk is. A ranking, or a level, also depends on how territories
move together: all risks share the same coefficients. Draws of the
coefficients ``β_b = β̂ + Δ_b``, ``Δ_b ~ N(0, V)`` with ``V`` their
design-based covariance (methodology, §4), give each territory a risk per
draw, linearised at ``β̂`` on the logit scale exactly as the intervals are::

    logit r_t(b) = logit r_t + g_t'Δ_b / (r_t (1 - r_t)),   g_t = Σw·f·x / Σw

so the frame is not read again: the gradients ``g_t`` come from the same
one-pass statistics. The central quantiles of the draws of ``r_t`` are the
delta-method interval, up to Monte Carlo error; across territories the draws
carry their correlation. From them (:func:`draw_ranks`, :func:`level_shares`):
the interval of each territory's rank and the share of draws in which its
risk falls in each level, the breaks of the classification held fixed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit

__all__ = ["draw_ranks", "draw_risks", "level_shares"]


def draw_risks(
    risk: np.ndarray, gradient: np.ndarray, cov: np.ndarray, draws: np.ndarray
) -> np.ndarray:
    """Joint draws of the territory risks.

    Parameters
    ----------
    risk : ndarray of shape (n_territories,)
        Risk r_t (a proportion).
    gradient : ndarray of shape (n_territories, n_terms)
        Gradient of r_t with respect to the coefficients.
    cov : ndarray of shape (n_terms, n_terms)
        Covariance of the coefficients.
    draws : ndarray of shape (n_draws, n_terms)
        Standard normal draws (one row per draw of the coefficients).

    Returns
    -------
    ndarray of shape (n_territories, n_draws)
        Risk of each territory in each draw (proportions).
    """
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))  # root @ root.T == cov
    shift = gradient @ (root @ draws.T)  # g_t'Δ_b
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = risk * (1 - risk)
        moved = expit(logit(risk)[:, None] + shift / slope[:, None])
    # a risk of exactly 0 or 1 (no spread on the logit scale) stays put
    out: np.ndarray = np.where((slope > 0)[:, None], moved, risk[:, None])
    return out


def draw_ranks(values: np.ndarray) -> np.ndarray:
    """Rank of each territory in each draw: 1 for the largest value.

    Parameters
    ----------
    values : ndarray of shape (n_territories, n_draws)

    Returns
    -------
    ndarray of shape (n_territories, n_draws), int64
        Ties (equal values within a draw) go to the territory listed first.
    """
    order = np.argsort(-values, axis=0, kind="stable")
    ranks = np.empty_like(order)
    places = np.broadcast_to(np.arange(1, len(values) + 1)[:, None], order.shape)
    np.put_along_axis(ranks, order, places, axis=0)
    return ranks


def level_shares(
    risk_pct: np.ndarray,
    groups: np.ndarray,
    breaks: pd.DataFrame,
    level_names: tuple[str, ...],
) -> np.ndarray:
    """Share of draws in which each territory's risk is in each level.

    Parameters
    ----------
    risk_pct : ndarray of shape (n_territories, n_draws)
        Draws of the risk, in %.
    groups : ndarray of shape (n_territories,)
        Scope group of each territory (``"national"`` at national scope).
    breaks : DataFrame
        :attr:`clrisk.levels.Levels.breaks` of the classification.
    level_names : tuple of str
        The levels, lowest first.

    Returns
    -------
    ndarray of shape (n_territories, len(level_names))
        Shares summing to 1 for every territory of a group with breaks.
        A value equal to a break is in the lower level (the class rule of
        :mod:`clrisk.levels`).
    """
    shares = np.zeros((len(risk_pct), len(level_names)))
    for group, block in breaks.groupby("group", sort=False):
        rows = np.flatnonzero(groups == group)
        cut = block.sort_values("level_code")["upper_break"].to_numpy()[:-1]
        codes = np.searchsorted(cut, risk_pct[rows], side="left")
        for code in range(len(cut) + 1):
            shares[rows, code] = (codes == code).mean(axis=1)
    return shares
