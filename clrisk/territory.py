"""TerritoryRisk: risk, expected counts, intervals, levels and roll-ups.

Everything here is derived from the one-pass statistics
(:class:`~clrisk.scoring.TerritoryStats`): for any set of children (a territory,
a region, the nation, a territory x sex cell)

- risk r = Σw·p / Σw (reported in %), expected count E = Σw·p;
- the gradient of r with respect to the coefficients, Σw·f·x / Σw, which with
  the coefficient covariance V gives the delta-method variance g'Vg. The 95%
  interval is built on the logit scale, expit(logit r ± z·se/(r(1−r))), so it
  stays inside (0, 100%); E's interval is Σw times r's.

Because the sums add, regional and national figures are computed from the
summed statistics and are consistent with the territories (expected counts add
up exactly; intervals account for the correlation between territories through
the shared coefficients).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats as st
from scipy.special import expit, logit

from clrisk.exceptions import InvalidParameterError
from clrisk.factors import FactorWeights
from clrisk.levels import Levels, classify
from clrisk.quality import DataQuality
from clrisk.scoring import Scorer, StatsLayout, TerritoryStats
from clrisk.spec import FeatureSpec
from clrisk.uncertainty import draw_ranks, draw_risks, level_shares

if TYPE_CHECKING:
    from clrisk.model import RiskModel

__all__ = ["ESTIMATE_COLUMNS", "TerritoryRisk"]

#: Columns of every estimate table (territories, regions, nation, breakdowns).
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "n_children",
    "weighted_children",
    "expected_count",
    "expected_low",
    "expected_high",
    "risk",
    "risk_low",
    "risk_high",
    "risk_se",
)


@dataclass(frozen=True)
class ModelView:
    """What the projection needs from a fitted model, aligned with the stats."""

    spec: FeatureSpec
    scorer: Scorer
    layout: StatsLayout
    cov: np.ndarray
    term_to_x: np.ndarray  # x-block column of each non-intercept model term
    x_feature: tuple[str, ...]  # feature of each x-block column

    @classmethod
    def from_model(cls, model: RiskModel) -> ModelView:
        """Build from a fitted :class:`RiskModel`."""
        spec = model.spec_
        xnames: list[tuple[str, str | None]] = [
            (f.name, lv) for f in spec.categorical for lv in f.levels
        ] + [(f.name, None) for f in spec.numeric + spec.territory_features]
        pos = {k: i for i, k in enumerate(xnames)}
        term_to_x = []
        for f in spec.features:
            if f.kind == "numeric":
                term_to_x.append(pos[(f.name, None)])
            else:
                term_to_x += [pos[(f.name, lv)] for lv in f.levels if lv != f.reference]
        return cls(
            spec=spec,
            scorer=Scorer.from_params(spec, model.params_, model.link),
            layout=StatsLayout.for_spec(spec),
            cov=model.cov_,
            term_to_x=np.asarray(term_to_x, dtype=np.int64),
            x_feature=tuple(name for name, _ in xnames),
        )

    def gradient_sums(self, sums: np.ndarray) -> np.ndarray:
        """Σw·f·x for each model term (intercept first), per cell."""
        g = sums[:, self.layout.g]
        return np.column_stack([sums[:, 3], g[:, self.term_to_x]])

    def estimates(self, sums: np.ndarray, alpha: float) -> pd.DataFrame:
        """Risk, expected count and delta-method intervals per row of `sums`."""
        w, wp = sums[:, 1], sums[:, 2]
        G = self.gradient_sums(sums)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = wp / w
            se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", G, self.cov, G), 0)) / w
            z = st.norm.ppf(1 - alpha / 2)
            half = z * se / (r * (1 - r))
            lo, hi = expit(logit(r) - half), expit(logit(r) + half)
        return pd.DataFrame(
            {
                "n_children": sums[:, 0].astype(np.int64),
                "weighted_children": w,
                "expected_count": wp,
                "expected_low": w * lo,
                "expected_high": w * hi,
                "risk": 100 * r,
                "risk_low": 100 * lo,
                "risk_high": 100 * hi,
                "risk_se": 100 * se,
            }
        )


@dataclass(frozen=True, repr=False)
class TerritoryRisk:
    """Child-labour risk per territory, with its uncertainty and its causes.

    Attributes
    ----------
    table : DataFrame of shape (n_territories, n_columns)
        One row per territory, sorted by code: ``territory``, ``region`` (when
        given), the :data:`ESTIMATE_COLUMNS`, ``level``, ``lead_policy_area``
        (missing where no policy area raises the risk above the national level).
        Territories expected (e.g. in the indicator table) but without rows in
        the frame have ``n_children`` 0, missing risk and level ``"no data"``.
    stats : TerritoryStats
        The one-pass statistics (per territory x breakdown group).
    factors : FactorWeights
        Gap decomposition, shares, policy areas, counterfactuals.
    levels : Levels
        The risk-level classification and its breaks.
    quality : DataQuality
        Rows read, scored and rejected.
    regions : Series or None
        Region of each territory.
    view : ModelView
        The model as the projection used it.
    alpha : float
        1 − confidence level of the intervals.
    """

    table: pd.DataFrame
    stats: TerritoryStats
    factors: FactorWeights
    levels: Levels
    quality: DataQuality
    regions: pd.Series | None
    view: ModelView
    alpha: float = 0.05

    def __repr__(self) -> str:
        by = f", by {self.stats.by}" if self.stats.by else ""
        return (
            f"TerritoryRisk({len(self.table):,} territories, "
            f"{self.quality.rows_used:,} children scored{by})"
        )

    # ----------------------------------------------------------- roll-ups
    def national(self) -> pd.DataFrame:
        """The national figures (one row)."""
        _, sums = self.stats.total()
        return self.view.estimates(sums, self.alpha)

    def rollup(self) -> pd.DataFrame:
        """Figures per region (requires ``region=`` in :func:`clrisk.predict`).

        Returns
        -------
        DataFrame of shape (n_regions, 1 + len(ESTIMATE_COLUMNS))
        """
        if self.regions is None:
            raise InvalidParameterError(
                "No regions are known: pass region=<column> to clrisk.predict."
            )
        cells = self.stats.by_territory()
        region = cells.keys["territory"].map(self.regions).to_numpy()
        merged = TerritoryStats.from_cells(
            pd.DataFrame({"region": region}), cells.sums, cells.layout
        )
        out = self.view.estimates(merged.sums, self.alpha)
        out.insert(0, "region", merged.keys["region"].to_numpy())
        return out

    def breakdown(self, scope: str = "territory") -> pd.DataFrame:
        """Figures by the breakdown groups (``by=`` of :func:`clrisk.predict`).

        Parameters
        ----------
        scope : {"territory", "region", "national"}

        Returns
        -------
        DataFrame: the scope's key column(s), one column per breakdown
        variable, then :data:`ESTIMATE_COLUMNS`.
        """
        by = self.stats.by
        if not by:
            raise InvalidParameterError(
                "No breakdown was computed: pass by=[...] to clrisk.predict."
            )
        if scope == "territory":
            keys, sums = self.stats.keys, self.stats.sums
        elif scope == "national":
            keys, sums = self.stats.total(by)
        elif scope == "region":
            if self.regions is None:
                raise InvalidParameterError(
                    "No regions are known: pass region=<column> to clrisk.predict."
                )
            k = self.stats.keys.copy()
            k.insert(0, "region", k.pop("territory").map(self.regions))
            merged = TerritoryStats.from_cells(k, self.stats.sums, self.stats.layout)
            keys, sums = merged.keys, merged.sums
        else:
            raise InvalidParameterError(
                "The 'scope' parameter of breakdown must be 'territory', 'region' or "
                f"'national'; got {scope!r}."
            )
        est = self.view.estimates(sums, self.alpha)
        return pd.concat([keys.reset_index(drop=True), est], axis=1)

    def gap(
        self, variable: str, level: str, reference: str, scope: str = "territory"
    ) -> pd.DataFrame:
        """Risk of one group minus another's (points), with delta-method intervals.

        E.g. ``gap("sex", "female", "male")``: the gender gap per territory.
        Other breakdown variables are summed over.

        Parameters
        ----------
        variable : str
            A breakdown variable (``by=`` of :func:`clrisk.predict`).
        level, reference : str
            The two groups compared: ``risk(level) − risk(reference)``.
        scope : {"territory", "national"}

        Returns
        -------
        DataFrame
            The scope's key, ``risk_<level>``, ``risk_<reference>``, ``gap``,
            ``gap_low``, ``gap_high`` (percentage points; NaN where a group has
            no children).
        """
        if variable not in self.stats.by:
            raise InvalidParameterError(
                f"'{variable}' is not a breakdown of this result (by={self.stats.by});"
                f" pass by=['{variable}'] to clrisk.predict."
            )
        if scope not in ("territory", "national"):
            raise InvalidParameterError(
                f"The 'scope' parameter of gap must be 'territory' or 'national'; "
                f"got {scope!r}."
            )
        keys = self.stats.keys[["territory", variable]].copy()
        if scope == "national":
            keys["territory"] = "national"
        cells = TerritoryStats.from_cells(keys, self.stats.sums, self.stats.layout)
        groups = set(cells.keys[variable])
        if variable in {f.name for f in self.view.spec.categorical}:
            # a level of the feature that no child of the frame has: NaN gaps
            groups |= set(self.view.spec.feature(variable).levels)
        missing = [g for g in (level, reference) if g not in groups]
        if missing:
            raise InvalidParameterError(
                f"{missing} are not groups of '{variable}'; the groups are "
                f"{sorted(groups)}."
            )
        names = pd.Index(sorted(set(cells.keys["territory"])), dtype=object)

        def side(group: str) -> tuple[np.ndarray, np.ndarray]:
            rows = (cells.keys[variable] == group).to_numpy()
            pos = names.get_indexer(cells.keys.loc[rows, "territory"])
            r = np.full(len(names), np.nan)
            g = np.zeros((len(names), len(self.view.cov)))
            s = cells.sums[rows]
            with np.errstate(invalid="ignore", divide="ignore"):
                r[pos] = s[:, 2] / s[:, 1]
                g[pos] = self.view.gradient_sums(s) / s[:, 1:2]
            return r, g

        (ra, ga), (rb, gb) = side(level), side(reference)
        grad = ga - gb
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", grad, self.view.cov, grad), 0))
        z = st.norm.ppf(1 - self.alpha / 2)
        d = ra - rb
        key = "territory" if scope == "territory" else "scope"
        return pd.DataFrame({
            key: names.to_numpy(),
            f"risk_{level}": 100 * ra,
            f"risk_{reference}": 100 * rb,
            "gap": 100 * d,
            "gap_low": 100 * (d - z * se),
            "gap_high": 100 * (d + z * se),
        })  # fmt: skip

    # ------------------------------------------------------- uncertainty
    def uncertainty(
        self,
        *,
        rank_by: str = "expected_count",
        top: int | None = None,
        n_draws: int = 2000,
        random_state: int | np.random.Generator | None = 0,
        territories: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Intervals of the territories' ranks, and the chance of each level.

        Joint draws of the coefficients from their covariance give every
        territory a risk per draw, linearised as the delta-method intervals
        are (see :mod:`clrisk.uncertainty`), so they carry the correlation
        between territories that a ranking needs.

        Parameters
        ----------
        rank_by : {"expected_count", "risk"}
            Rank 1 is the territory with most expected children in child
            labour, or with the highest risk.
        top : int, optional
            Also give the probability of being among the first `top`.
        n_draws : int, default 2000
            Draws of the coefficients (Monte Carlo error of a probability:
            at most 0.5 / sqrt(n_draws), about 1.1 points for 2,000).
        random_state : int, Generator or None, default 0
            Seed of the draws: fixed by default, so a published table can be
            reproduced.
        territories : sequence of str, optional
            Rank among these territories only (e.g. those published when
            small ones are withheld: ranks counting a withheld territory
            would bound its figures); the others get no rank.

        Returns
        -------
        DataFrame
            One row per territory of :attr:`table` (in its order):
            ``territory``, ``rank`` (of the estimates; ties by territory
            code), ``rank_low`` and ``rank_high`` (the central ``1 - alpha``
            interval of the rank in the draws: the best and worst plausible
            places), ``p_top`` when `top` is given, and ``p_<level>`` for
            each risk level: the share of draws in which the territory's risk
            falls in that level, the breaks of :attr:`levels` held fixed.
            Territories without children have missing values.
        """
        if rank_by not in ("expected_count", "risk"):
            raise InvalidParameterError(
                "The 'rank_by' parameter must be 'expected_count' or 'risk'; "
                f"got {rank_by!r}."
            )
        if (
            isinstance(n_draws, bool)
            or not isinstance(n_draws, int | np.integer)
            or n_draws < 1
        ):
            raise InvalidParameterError(
                f"The 'n_draws' parameter must be a positive integer; got {n_draws!r}."
            )
        cells = self.stats.by_territory()
        w = cells.sums[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = cells.sums[:, 2] / w
            grad = self.view.gradient_sums(cells.sums) / w[:, None]
        scored = np.isfinite(r)
        codes = cells.keys["territory"].to_numpy(dtype=object)
        if territories is not None:
            scored &= np.isin(codes.astype(str), np.asarray(territories, dtype=str))
        names = codes[scored]
        r, grad, w = r[scored], grad[scored], w[scored]
        if top is not None and (
            isinstance(top, bool)
            or not isinstance(top, int | np.integer)
            or not 1 <= top <= len(r)
        ):
            raise InvalidParameterError(
                f"The 'top' parameter must be an integer from 1 to {len(r)} (the "
                f"territories with children); got {top!r}."
            )
        try:
            rng = np.random.default_rng(random_state)
        except (TypeError, ValueError):
            raise InvalidParameterError(
                "The 'random_state' parameter must be an integer, a numpy "
                f"Generator or None; got {random_state!r}."
            ) from None
        normal = rng.standard_normal((n_draws, len(self.view.cov)))
        risks = draw_risks(r, grad, self.view.cov, normal)
        point = w * r if rank_by == "expected_count" else r
        order = np.lexsort((names.astype(str), -point))  # ties by territory code
        rank = np.empty(len(r), dtype=np.int64)
        rank[order] = np.arange(1, len(r) + 1)
        # the draws ranked in the same order as the estimates: ties alike
        values = risks * w[:, None] if rank_by == "expected_count" else risks
        ranks = np.empty_like(risks, dtype=np.int64)
        ranks[order] = draw_ranks(values[order])
        q = np.quantile(
            ranks, [self.alpha / 2, 1 - self.alpha / 2], axis=1, method="inverted_cdf"
        )
        out = pd.DataFrame({
            "territory": names,
            "rank": rank,
            "rank_low": q[0].astype(np.int64),
            "rank_high": q[1].astype(np.int64),
        })  # fmt: skip
        if top is not None:
            out["p_top"] = (ranks <= top).mean(axis=1)
        groups = (
            np.full(len(r), "national", dtype=object)
            if self.levels.scope == "national"
            else pd.Series(names).map(self.regions).astype(str).to_numpy()
        )
        shares = level_shares(
            100 * risks, groups, self.levels.breaks, self.levels.level_names
        )
        for j, level in enumerate(self.levels.level_names):
            out[f"p_{level}"] = shares[:, j]
        whole = self.table[["territory"]].merge(out, on="territory", how="left")
        for col in ("rank", "rank_low", "rank_high"):
            whole[col] = whole[col].astype("Int64")
        return whole

    # ----------------------------------------------------------- levels
    def classify(
        self,
        method: str = "jenks",
        *,
        k: int | None = None,
        scope: str = "national",
        thresholds: Any = None,
    ) -> TerritoryRisk:
        """A copy with territories classified into risk levels anew.

        Parameters
        ----------
        method : {"jenks", "dalenius_hodges", "kmeans", "quantile", "equal", "fixed"}
        k : int, optional
            Number of levels: by default 3, or ``len(thresholds) + 1`` for
            "fixed" (where a `k` given must equal it).
        scope : {"national", "region"}
            Classify all territories together, or within each region.
        thresholds : sequence of float, optional
            Risk (%) thresholds for method "fixed".
        """
        levels = classify_risk(self.table, self.regions, method, k, scope, thresholds)
        table = self.table.assign(level=levels.labels)
        return replace(self, table=table, levels=levels)

    def summary(self, n: int = 10) -> str:
        """National figures and the `n` territories with most expected children."""
        nat = self.national().iloc[0]
        lines = [
            f"Children scored: {int(nat['n_children']):,} "
            f"(weighted {nat['weighted_children']:,.0f}); rows rejected: "
            f"{self.quality.rows_rejected:,}",
            f"National risk: {nat['risk']:.2f}% "
            f"[{nat['risk_low']:.2f}, {nat['risk_high']:.2f}]; expected children in "
            f"child labour: {nat['expected_count']:,.0f} "
            f"[{nat['expected_low']:,.0f}, {nat['expected_high']:,.0f}]",
            f"Levels ({self.levels.method}, {self.levels.scope}): "
            + ", ".join(
                f"{lv} {int((self.table['level'] == lv).sum())}"
                for lv in self.levels.level_names
            ),
            "",
        ]
        cols = ["territory", "level", "expected_count", "risk", "lead_policy_area"]
        top = self.table.sort_values(
            ["expected_count", "territory"], ascending=[False, True]
        ).head(n)[cols]
        # no policy area pushes the risk above the national level there
        none = "- (none above national)"
        top["lead_policy_area"] = top["lead_policy_area"].fillna(none)
        text: str = top.to_string(
            index=False,
            formatters={"expected_count": "{:,.0f}".format, "risk": "{:.2f}%".format},
        )
        return "\n".join(lines) + text


def classify_risk(
    table: pd.DataFrame,
    regions: pd.Series | None,
    method: str,
    k: int | None,
    scope: str,
    thresholds: Any,
) -> Levels:
    """Classify ``table["risk"]`` into levels, nationally or within regions."""
    if scope not in ("national", "region"):
        raise InvalidParameterError(
            f"The 'scope' parameter must be 'national' or 'region'; got {scope!r}."
        )
    groups = None
    if scope == "region":
        if regions is None:
            raise InvalidParameterError(
                "scope='region' needs regions: pass region=<column> to clrisk.predict."
            )
        groups = table["territory"].map(regions).to_numpy()
    return classify(
        table["risk"].to_numpy(dtype=float),
        method=method,
        k=k,
        groups=groups,
        thresholds=thresholds,
    )
