"""Weight of each factor in each territory: why is risk high *here*?

The default is the **gap decomposition** (methodology section 6): for territory
t and feature j (all indicator columns of a categorical together),

    d_tj = Σ_{c in j} β_c (x̄_tc − x̄_c)

on the log-odds scale, where x̄_tc is the territory's weighted mean of model
column c and x̄_c the national mean. The d_tj add up exactly to η̄_t − η̄ (the
territory's mean linear predictor minus the national one) and do not depend on
which level is the reference. Positive d_tj are risk factors for the territory,
negative ones protective. Each factor's weight is its share (%) of Σ_j |d_tj|;
summed by policy area, the area with the largest positive sum is the **lead
policy area**. The counterfactual risk of factor j is the territory's risk with
every child's linear predictor shifted by −d_tj, i.e. with that factor's mean
contribution at the national level. The composition form Σ_{c in j} β_c x̄_tc
(reference-dependent) is kept for comparison with older country reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clrisk.exceptions import InvalidParameterError

__all__ = ["FactorWeights", "decompose"]


@dataclass(frozen=True, repr=False)
class FactorWeights:
    """Per-territory decomposition of risk into factors.

    Attributes
    ----------
    gaps : DataFrame of shape (n_territories, n_features)
        d_tj on the log-odds scale (index: territory code).
    shares : DataFrame of shape (n_territories, n_features)
        |d_tj| as a percentage of Σ_j |d_tj|.
    by_policy_area : DataFrame of shape (n_territories, n_areas)
        Σ of d_tj over the features of each policy area (signed; see also
        :attr:`policy_area_shares`).
    lead_policy_area : Series of shape (n_territories,)
        The policy area with the largest positive sum (missing when no area
        pushes risk above the national level).
    composition : DataFrame of shape (n_territories, n_features)
        Σ_{c in j} β_c x̄_tc.
    mean_eta : Series of shape (n_territories,)
        η̄_t, the territory's mean linear predictor.
    national_eta : float
        η̄, the national mean linear predictor.
    counterfactual : DataFrame of shape (n_territories, n_features) or None
        Risk (%) if factor j were at its national mean contribution.
    policy_areas : dict of str to str
        Policy area of each feature.
    """

    gaps: pd.DataFrame
    shares: pd.DataFrame
    by_policy_area: pd.DataFrame
    lead_policy_area: pd.Series
    composition: pd.DataFrame
    mean_eta: pd.Series
    national_eta: float
    counterfactual: pd.DataFrame | None
    policy_areas: dict[str, str]

    def __repr__(self) -> str:
        n_t, n_f = self.gaps.shape
        return (
            f"FactorWeights({n_t} territories x {n_f} features, "
            f"{self.by_policy_area.shape[1]} policy areas, counterfactual="
            f"{'yes' if self.counterfactual is not None else 'no'})"
        )

    @property
    def policy_area_shares(self) -> pd.DataFrame:
        """Each policy area's share (%) of Σ_j |d_tj|: the factor shares summed
        by area (methodology §6), so a territory's areas add up to 100.

        Returns
        -------
        DataFrame of shape (n_territories, n_areas)
            Columns in the order of `by_policy_area`; missing for territories
            without scored children (or whose factors all sit at the national
            mean).
        """
        areas = self.shares.columns.map(
            lambda f: self.policy_areas.get(f) or "unassigned"
        )
        summed = self.shares.T.groupby(areas, sort=False).sum(min_count=1).T
        return summed.reindex(columns=self.by_policy_area.columns)

    def long(self, risk: pd.Series | None = None) -> pd.DataFrame:
        """One row per territory x feature, sorted by territory then |gap|.

        Parameters
        ----------
        risk : Series, optional
            Territory risk (%) to compute ``risk_reduction`` against the
            counterfactual.

        Returns
        -------
        DataFrame with columns ``territory``, ``feature``, ``policy_area``,
        ``gap``, ``share``, ``direction`` ("risk", "protective", or missing
        where the gap is 0 or missing: a territory without scored children),
        ``composition`` and, when available, ``counterfactual_risk`` and
        ``risk_reduction``.
        """
        out = self.gaps.stack().rename("gap").reset_index()
        out.columns = ["territory", "feature", "gap"]
        out["policy_area"] = out["feature"].map(self.policy_areas)
        out["share"] = self.shares.stack().to_numpy()
        gap = out["gap"].to_numpy()
        direction = np.full(gap.shape, None, dtype=object)
        direction[gap > 0] = "risk"
        direction[gap < 0] = "protective"
        out["direction"] = direction
        out["composition"] = self.composition.stack().to_numpy()
        if self.counterfactual is not None:
            out["counterfactual_risk"] = self.counterfactual.stack().to_numpy()
            if risk is not None:
                out["risk_reduction"] = (
                    out["territory"].map(risk).to_numpy() - out["counterfactual_risk"]
                )
        order = np.lexsort((-out["gap"].abs().to_numpy(), out["territory"].to_numpy()))
        return out.iloc[order].reset_index(drop=True)

    def top(self, territory: str, n: int = 3) -> pd.DataFrame:
        """The `n` strongest risk factors and protective factors of a territory.

        Raises
        ------
        InvalidParameterError
            For a code not in the table, or a territory without scored
            children (it has no factors).
        """
        if territory not in self.gaps.index:
            raise InvalidParameterError(
                f"No factors for territory {territory!r}: it has no scored children "
                "in the frame, or the code is not a territory's (codes are text "
                f"with leading zeros, e.g. {list(self.gaps.index[:3])})."
            )
        row = self.gaps.loc[territory]
        if row.isna().all():
            raise InvalidParameterError(
                f"Territory {territory!r} has no scored children in the frame, so "
                "no factors."
            )
        row = row.sort_values()
        risk = row[row > 0].iloc[::-1].head(n)
        prot = row[row < 0].head(n)
        return pd.DataFrame(
            {
                "feature": list(risk.index) + list(prot.index),
                "direction": ["risk"] * len(risk) + ["protective"] * len(prot),
                "gap": list(risk.to_numpy()) + list(prot.to_numpy()),
                "share": list(
                    self.shares.loc[territory, list(risk.index) + list(prot.index)]
                ),
                "policy_area": [
                    self.policy_areas[f] for f in [*risk.index, *prot.index]
                ],
            }
        )


def decompose(
    xbar_t: np.ndarray,
    xbar: np.ndarray,
    beta_x: np.ndarray,
    intercept: float,
    x_feature: Sequence[str],
    features: Sequence[str],
    policy_areas: dict[str, str],
    territories: Sequence[str],
) -> FactorWeights:
    """Gap decomposition from territory and national means of the x columns.

    Parameters
    ----------
    xbar_t : ndarray of shape (n_territories, n_x)
        Weighted means of every level indicator and numeric, per territory.
    xbar : ndarray of shape (n_x,)
        National weighted means.
    beta_x : ndarray of shape (n_x,)
        Coefficient of each x column (0 for reference levels).
    intercept : float
    x_feature : sequence of str, length n_x
        Feature of each x column.
    features : sequence of str
        Feature names in report order.
    policy_areas : dict of str to str
    territories : sequence of str

    Returns
    -------
    FactorWeights (without counterfactual)
    """
    pos = {f: i for i, f in enumerate(features)}
    member = np.zeros((len(x_feature), len(features)))
    member[np.arange(len(x_feature)), [pos[f] for f in x_feature]] = 1.0
    gaps = ((xbar_t - xbar) * beta_x) @ member
    comp = (xbar_t * beta_x) @ member
    total_abs = np.abs(gaps).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        # all gaps 0: no factor moves the territory (shares 0); NaN gaps (a
        # territory without scored children): no shares either
        shares = np.where(
            np.isnan(total_abs),
            np.nan,
            np.where(total_abs > 0, 100 * np.abs(gaps) / total_abs, 0.0),
        )
    idx = pd.Index(list(territories), name="territory", dtype=object)
    cols = pd.Index(list(features), name="feature")
    areas = list(dict.fromkeys(policy_areas[f] or "unassigned" for f in features))
    amember = np.zeros((len(features), len(areas)))
    for i, f in enumerate(features):
        amember[i, areas.index(policy_areas[f] or "unassigned")] = 1.0
    by_area = gaps @ amember
    best = np.argmax(by_area, axis=1) if len(areas) else np.zeros(len(idx), int)
    has_risk = by_area.max(axis=1) > 0 if len(areas) else np.zeros(len(idx), bool)
    lead = pd.Series(
        np.where(has_risk, np.asarray(areas, dtype=object)[best], None),
        index=idx,
        name="lead_policy_area",
        dtype=object,
    )
    return FactorWeights(
        gaps=pd.DataFrame(gaps, index=idx, columns=cols),
        shares=pd.DataFrame(shares, index=idx, columns=cols),
        by_policy_area=pd.DataFrame(
            by_area, index=idx, columns=pd.Index(areas, name="policy_area")
        ),
        lead_policy_area=lead,
        composition=pd.DataFrame(comp, index=idx, columns=cols),
        mean_eta=pd.Series(intercept + xbar_t @ beta_x, index=idx, name="mean_eta"),
        national_eta=float(intercept + xbar @ beta_x),
        counterfactual=None,
        policy_areas=dict(policy_areas),
    )
