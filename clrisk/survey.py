"""Design-based variance by Taylor linearisation (strata + PSU, with replacement).

For an estimating equation ``sum_i U_i(beta) = 0`` with Jacobian ``A``, the
variance is ``A^-1 M A^-1`` where ``M`` is the design variance of the total of
the score contributions: per stratum h with n_h PSUs and PSU totals z_hj,
``M = sum_h n_h/(n_h - 1) sum_j (z_hj - zbar_h)(z_hj - zbar_h)'``. This is the
first-stage, with-replacement approximation used by Stata's ``svy`` and R's
``survey`` package (no finite population correction). PSU codes are taken as
nested within strata. With no design, each row is its own PSU in one stratum:
the robust (sandwich) variance with the ``n/(n-1)`` factor.

A stratum with a single PSU ("lonely PSU") has no within-stratum variance. The
``lonely_psu`` policy decides, as statistical offices do (R ``survey``'s
``options(survey.lonely.psu=)``):

- ``"adjust"`` (default): centre the lonely PSU at the mean of all PSU totals
  (conservative);
- ``"certainty"``: the stratum contributes nothing (a self-representing PSU);
- ``"fail"``: raise :class:`DataValidationError` naming the strata.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from clrisk.exceptions import DataValidationError, DesignWarning

__all__ = ["LONELY_PSU", "Design", "design_meat"]

LONELY_PSU: tuple[str, ...] = ("adjust", "certainty", "fail")


@dataclass(frozen=True)
class Design:
    """Summary of the sampling design used for the variance.

    Attributes
    ----------
    kind : str
        ``"design"`` (strata/PSU) or ``"robust"`` (each row its own PSU).
    n_strata, n_psu : int
    df : int
        Design degrees of freedom, n_psu - n_strata.
    lonely_strata : list of str
        Strata with a single PSU.
    """

    kind: str
    n_strata: int
    n_psu: int
    df: int
    lonely_strata: list[str]


def design_meat(
    X: np.ndarray,
    resid: np.ndarray,
    strata: np.ndarray | None,
    psu: np.ndarray | None,
    *,
    lonely_psu: str = "adjust",
    strata_name: str = "strata",
) -> tuple[np.ndarray, Design]:
    """The design variance ``M`` of the total of the scores ``U_i = resid_i X_i``.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_params)
        Model matrix.
    resid : ndarray of shape (n_rows,)
        Weighted score residuals, so that ``U_i = resid_i * X[i]``.
    strata, psu : ndarray of shape (n_rows,), optional
        Stratum and PSU labels (any hashable values).
    lonely_psu : {"adjust", "certainty", "fail"}
    strata_name : str
        Column named in errors and warnings.

    Returns
    -------
    M : ndarray of shape (n_params, n_params)
    design : Design

    Notes
    -----
    With PSUs, the PSU totals are one sparse-times-dense product, without
    forming the ``n_rows x n_params`` score matrix.
    """
    n = X.shape[0]
    kind = "design" if (strata is not None or psu is not None) else "robust"
    if strata is None:
        s_codes, s_labels = np.zeros(n, dtype=np.int64), None
    else:
        s_codes, s_labels = pd.factorize(strata)
    if psu is None:
        p_codes = np.arange(n)
    else:  # PSUs nested in strata: one code per (stratum, PSU) pair
        raw = pd.factorize(psu)[0].astype(np.int64)
        p_codes = pd.factorize(s_codes * (int(raw.max()) + 1 if n else 1) + raw)[0]
    n_psu = int(p_codes.max()) + 1 if n else 0
    if psu is None:  # each row its own PSU
        z = X * resid[:, None]
    else:  # PSU totals of the scores: (PSU indicator scaled by resid) @ X
        ind = sp.csr_matrix((resid, (p_codes, np.arange(n))), shape=(n_psu, n))
        z = np.asarray(ind @ X)
    psu_stratum = np.empty(n_psu, dtype=np.int64)
    psu_stratum[p_codes] = s_codes
    n_strata = int(s_codes.max()) + 1 if n else 0
    n_h = np.bincount(psu_stratum, minlength=n_strata)
    lonely = np.flatnonzero(n_h == 1)
    lonely_names = [str(s_labels[h]) if s_labels is not None else "all" for h in lonely]
    if len(lonely):
        if lonely_psu == "fail":
            raise DataValidationError(
                column=strata_name,
                problem="strata with a single PSU",
                n_bad=len(lonely),
                examples=lonely_names,
                fix="Collapse each with a similar stratum, or pass lonely_psu='adjust' "
                "or 'certainty'.",
            )
        warnings.warn(
            f"{len(lonely)} strata have a single PSU (e.g. {lonely_names[:5]}); "
            f"variance uses lonely_psu='{lonely_psu}'.",
            DesignWarning,
            stacklevel=3,
        )
    # centre PSU totals within strata
    s_ind = sp.csr_matrix(
        (np.ones(n_psu), (psu_stratum, np.arange(n_psu))), shape=(n_strata, n_psu)
    )
    sums = np.asarray(s_ind @ z)
    means = sums / np.maximum(n_h, 1)[:, None]
    centred = z - means[psu_stratum]
    factor = np.where(n_h > 1, n_h / np.maximum(n_h - 1, 1), 0.0)[psu_stratum]
    if len(lonely) and lonely_psu == "adjust":
        is_lonely = np.isin(psu_stratum, lonely)
        grand = z.mean(axis=0)
        centred[is_lonely] = z[is_lonely] - grand
        factor[is_lonely] = 1.0
    meat = (centred * factor[:, None]).T @ centred
    design = Design(kind, n_strata, n_psu, n_psu - n_strata, lonely_names)
    return meat, design
