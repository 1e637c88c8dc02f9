"""(Quasi-)complete separation, found by one linear program.

A weighted logit or probit has a finite maximum-likelihood estimate exactly
when no direction ``d != 0`` of the coefficients gives every row with positive
weight a margin ``m_i = (2 y_i - 1) x_i'd >= 0`` with ``m_i > 0`` for some row
(Albert & Anderson, 1984). Along such a direction the likelihood rises for
ever: the rows with a positive margin are fitted ever closer to their outcome
and the coefficients diverge, while a solver stopping at a tolerance reports a
finite estimate with a small standard error that means nothing. Konis (2007)
finds such a direction with one linear program::

    maximise sum_i m_i   subject to   m_i >= 0 for every row,  -1 <= d_j <= 1

whose optimum is 0 exactly when there is no separation. It is solved with
HiGHS (``scipy.optimize.linprog``) over the distinct rows, each column scaled
to at most 1 in absolute value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linprog

__all__ = ["Separation", "SeparationCheckFailed", "find_separation"]

# a margin above this (columns scaled to at most 1, |d| <= 1) is a real one;
# HiGHS meets the constraints m_i >= 0 to about 1e-7
_MARGIN = 1e-6


class SeparationCheckFailed(RuntimeError):
    """The linear program did not solve (numerical trouble)."""


@dataclass(frozen=True)
class Separation:
    """A direction along which the likelihood rises without bound.

    Attributes
    ----------
    direction : ndarray of shape (n_columns,)
        The direction on the scale of columns divided by their largest
        absolute value: its non-zero entries are the columns that separate.
    rows : ndarray of int
        Positions (among all rows) of the rows with a positive margin along
        `direction`: rows the model fits ever closer to their outcome (not
        always all of them: another direction may reach more).
    """

    direction: np.ndarray
    rows: np.ndarray


def find_separation(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Separation | None:
    """The separation of outcome `y` by the columns of `X`, if any.

    Parameters
    ----------
    X : ndarray of shape (n, k)
        Model matrix (with the intercept column, if any).
    y : ndarray of shape (n,)
        Outcome, 0 or 1.
    w : ndarray of shape (n,)
        Weights; rows of weight 0 do not count.

    Returns
    -------
    Separation or None
        None when the maximum-likelihood estimate is finite.

    Raises
    ------
    SeparationCheckFailed
        When HiGHS does not solve the linear program.
    """
    counted = np.flatnonzero(w > 0)
    signed = X[counted] * np.where(y[counted] > 0, 1.0, -1.0)[:, None]
    scale = np.abs(signed).max(axis=0, initial=0.0)
    scale[scale == 0] = 1.0
    signed /= scale
    # distinct rows only: a duplicate adds the same constraint
    distinct = signed[~pd.DataFrame(signed).duplicated().to_numpy()]
    result = linprog(
        -distinct.sum(axis=0),
        A_ub=-distinct,
        b_ub=np.zeros(len(distinct)),
        bounds=[(-1.0, 1.0)] * X.shape[1],
        method="highs",
    )
    if result.status != 0:
        raise SeparationCheckFailed(result.message)
    ahead = signed @ result.x > _MARGIN
    if not ahead.any():
        return None
    direction = np.where(np.abs(result.x) > _MARGIN, result.x, 0.0)
    return Separation(direction, counted[ahead])
