"""clrisk.predict: project a fitted model onto a frame, territory by territory.

One pass over the frame (in chunks, or over pieces given as an iterable)
accumulates the mergeable statistics; everything reported is derived from
them. A second pass, when the frame is in memory, computes the counterfactual
risks of the factor decomposition.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clrisk.exceptions import (
    CoverageWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)
from clrisk.factors import FactorWeights, decompose
from clrisk.features import CodedFrame, encode, to_text_codes
from clrisk.quality import DataQuality
from clrisk.scoring import KERNELS, TerritoryStats, accumulate, shifted_risk
from clrisk.spec import INDICATORS, FeatureSpec
from clrisk.territory import ModelView, TerritoryRisk, classify_risk

if TYPE_CHECKING:
    from clrisk.model import RiskModel

__all__ = ["predict"]

_MAX_GROUPS = 10_000  # combinations of breakdown values


def predict(
    model: RiskModel,
    frame: pd.DataFrame | Iterable[pd.DataFrame],
    *,
    territory: str | None = None,
    weight: str | None = None,
    by: str | Sequence[str] | None = None,
    region: str | None = None,
    indicators: pd.DataFrame | None = None,
    source: str | None = None,
    levels: str = "jenks",
    n_levels: int = 3,
    level_scope: str = "national",
    thresholds: Sequence[float] | None = None,
    counterfactual: bool | None = None,
    on_invalid: str = "error",
    chunk_size: int = 250_000,
    alpha: float = 0.05,
    kernel: str = "auto",
) -> TerritoryRisk:
    """Score every child of `frame` and aggregate by territory in one pass.

    Parameters
    ----------
    model : RiskModel
        A fitted, specification-driven model.
    frame : DataFrame or iterable of DataFrame
        The projection frame (census, registry), whole or in pieces; pieces
        give results identical to the whole.
    territory : str, optional
        Territory-code column (default: the spec's, for the frame's source).
    weight : str, optional
        Frame weights (e.g. an intercensal survey's expansion factors); 1 when
        None (a full census).
    by : str or sequence of str, optional
        Breakdown variables: names of binary/categorical features of the spec
        (harmonised levels, e.g. ``"sex"``) or columns of the frame.
    region : str, optional
        Region column of the frame, for roll-ups and per-region levels.
    indicators : DataFrame, optional
        Territory indicator table (default: the one the model was fitted with).
        Its territories define the expected set: those without rows in the
        frame are reported (``n_children`` 0) with a :class:`CoverageWarning`.
    source : str, optional
        Which source of the spec the frame is (detected from its columns).
    levels : str, default "jenks"
        Level method (see :func:`clrisk.levels.classify`).
    n_levels : int, default 3
    level_scope : {"national", "region"}
    thresholds : sequence of float, optional
        Risk thresholds (%) for ``levels="fixed"``.
    counterfactual : bool, optional
        Compute counterfactual risks (a second pass). Default: when the frame
        is in memory (a DataFrame, list or tuple).
    on_invalid : {"error", "drop"}
        Rows with missing values, unknown codes or unknown territories: raise,
        or reject them and count them in ``quality``.
    chunk_size : int, default 250_000
        Rows scored at a time (bounds the working memory).
    alpha : float, default 0.05
        Intervals are (1 − alpha) delta-method intervals.
    kernel : {"auto", "compiled", "numpy"}, default "auto"
        The scoring kernel: compiled with numba (``clrisk[fast]``), the plain
        numpy reference, or the compiled one when available. Same results.

    Returns
    -------
    TerritoryRisk
    """
    if not hasattr(model, "params_"):
        raise InvalidParameterError(
            "clrisk.predict needs a fitted RiskModel: "
            "call model.fit(survey, ...) first."
        )
    if model.spec is None:
        raise InvalidParameterError(
            "clrisk.predict needs a RiskModel built with a FeatureSpec."
        )
    _check_positive_int(chunk_size, "chunk_size")
    if kernel not in KERNELS:
        raise InvalidParameterError(
            f"The 'kernel' parameter of predict must be one of {KERNELS}; got "
            f"{kernel!r}."
        )
    if not 0 < alpha < 1:
        raise InvalidParameterError(
            f"The 'alpha' parameter of predict must be in (0, 1); got {alpha!r}."
        )
    view = ModelView.from_model(model)
    spec = view.spec
    by_list = [by] if isinstance(by, str) else list(by or [])
    in_memory = isinstance(frame, pd.DataFrame | list | tuple)
    if counterfactual is None:
        counterfactual = in_memory
    elif counterfactual and not in_memory:
        raise InvalidParameterError(
            "counterfactual=True needs a second pass over the frame: pass it as a "
            "DataFrame or a list of pieces, or set counterfactual=False."
        )
    ind_table = indicators if indicators is not None else model.indicator_table()

    parts: list[TerritoryStats] = []
    cached: list[CodedFrame] = []
    pairs: list[pd.DataFrame] = []
    quality = DataQuality()
    for offset, chunk in _pieces(frame, chunk_size):
        if source is None:
            source = spec.detect_source(chunk.columns, prefer=spec.frame_source)
        terr_col = territory or spec.territory.get(source)
        if terr_col is None:
            raise InvalidParameterError(
                "Pass territory=<column of the frame holding the territory code>."
            )
        _check_extra_columns(chunk, by_list, region, spec)
        coded = encode(
            spec,
            chunk,
            source=source,
            territory=terr_col,
            indicators=ind_table,
            weight=weight,
            on_invalid=on_invalid,
            where=f"the {source} frame",
            row_offset=offset,
        )
        quality = quality + coded.quality
        if coded.n == 0:
            continue
        cell, keys = _cells(coded, chunk, by_list, spec)
        sums = accumulate(
            view.scorer,
            coded.codes,
            coded.numerics,
            cell,
            len(keys),
            coded.weight,
            view.layout,
            kernel=kernel,
        )
        used = sums[:, 0] > 0
        parts.append(
            TerritoryStats(keys[used].reset_index(drop=True), sums[used], view.layout)
        )
        if region is not None:
            pairs.append(_region_pairs(coded, chunk, region))
        if counterfactual:
            cached.append(coded)
    if not parts:
        raise DataValidationError(
            column=territory or "territory",
            problem="no row of the frame could be scored",
            n_bad=quality.rows_read,
            fix="Check the frame and the rejected rows: "
            + quality.summary().replace("\n", "; "),
        )
    stats = TerritoryStats.combine(parts)
    cells = stats.by_territory()
    expected = _expected_territories(cells, ind_table, spec, quality)
    regions = _regions(pairs, region) if region is not None else None

    est = view.estimates(cells.sums, alpha)
    est.insert(0, "territory", cells.keys["territory"].to_numpy())
    table = est.set_index("territory").reindex(expected)
    table["n_children"] = table["n_children"].fillna(0).astype(np.int64)
    for col in ("weighted_children", "expected_count"):
        table[col] = table[col].fillna(0.0)
    table = table.reset_index(names="territory")
    if regions is not None:
        table.insert(1, "region", table["territory"].map(regions))

    w = cells.sums[:, 1:2]
    xs = cells.sums[:, view.layout.x]
    weightless = list(cells.keys["territory"][w[:, 0] <= 0])
    if weightless:
        note = (
            f"{len(weightless)} territories have rows but a total weight of 0 (e.g. "
            f"{weightless[:5]}); they are reported with no risk."
        )
        quality.notes.append(note)
        warnings.warn(note, CoverageWarning, stacklevel=2)
    feats = [f.name for f in spec.features]
    with np.errstate(invalid="ignore", divide="ignore"):
        xbar_t = xs / w
    factors = decompose(
        xbar_t=xbar_t,
        xbar=xs.sum(axis=0) / w.sum(),
        beta_x=view.scorer.beta_x,
        intercept=view.scorer.intercept,
        x_feature=view.x_feature,
        features=feats,
        policy_areas={f.name: f.policy_area for f in spec.features},
        territories=list(cells.keys["territory"]),
    )
    if counterfactual:
        factors = _with_counterfactual(factors, view, cached, cells)
    table["lead_policy_area"] = table["territory"].map(factors.lead_policy_area)
    lv = classify_risk(table, regions, levels, n_levels, level_scope, thresholds)
    table.insert(table.columns.get_loc("lead_policy_area"), "level", lv.labels)
    return TerritoryRisk(
        table=table,
        stats=stats,
        factors=factors,
        levels=lv,
        quality=quality,
        regions=regions,
        view=view,
        alpha=alpha,
    )


# --------------------------------------------------------------------- private
def _check_positive_int(value: Any, name: str) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise InvalidParameterError(
            f"The '{name}' parameter of predict must be an int >= 1; got {value!r}."
        )


def _pieces(
    frame: pd.DataFrame | Iterable[pd.DataFrame], chunk_size: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    """(row offset, table) pieces of at most `chunk_size` rows."""
    tables = [frame] if isinstance(frame, pd.DataFrame) else frame
    offset = 0
    for i, table in enumerate(tables):
        if not isinstance(table, pd.DataFrame):
            raise InvalidParameterError(
                f"Piece {i} of the frame is a {type(table).__name__}; expected a "
                "pandas DataFrame."
            )
        for start in range(0, max(len(table), 1), chunk_size):
            yield offset + start, table.iloc[start : start + chunk_size]
        offset += len(table)


def _check_extra_columns(
    chunk: pd.DataFrame, by: list[str], region: str | None, spec: FeatureSpec
) -> None:
    names = {f.name: f for f in spec.features}
    need = [b for b in by if b not in names] + ([region] if region else [])
    missing = [c for c in need if c not in chunk.columns]
    if missing:
        raise SchemaError(
            "The frame lacks the breakdown/region columns named.",
            expected=need,
            received=[str(c) for c in chunk.columns],
        )
    numeric = [b for b in by if b in names and names[b].kind == "numeric"]
    if numeric or any(b in names and names[b].dimension == "territory" for b in by):
        raise InvalidParameterError(
            f"Breakdowns need binary or categorical features; {numeric or by} are not."
        )


def _cells(
    coded: CodedFrame, chunk: pd.DataFrame, by: list[str], spec: FeatureSpec
) -> tuple[np.ndarray, pd.DataFrame]:
    """Cell index of each coded row and the keys of all cells."""
    assert coded.territory is not None
    if not by:
        return coded.territory, pd.DataFrame({"territory": coded.territories})
    cat_pos = {f.name: j for j, f in enumerate(spec.categorical)}
    codes, labels = [], []
    for b in by:
        if b in cat_pos:
            codes.append(coded.codes[:, cat_pos[b]].astype(np.int64))
            labels.append(list(spec.feature(b).levels))
        else:
            c, u = to_text_codes(chunk[b].iloc[coded.rows])
            codes.append(np.where(c < 0, len(u), c))
            labels.append([*u, "missing"])
    sizes = [len(lab) for lab in labels]
    G = int(np.prod(sizes))
    if G > _MAX_GROUPS:
        raise InvalidParameterError(
            f"by={by} has {G:,} combinations of values (more than {_MAX_GROUPS:,}); "
            "breakdowns are for a few groups such as sex or population group, not "
            "for identifiers."
        )
    g = np.zeros(coded.n, dtype=np.int64)
    for c, size in zip(codes, sizes, strict=True):
        g = g * size + c
    # only the (territory, group) cells that occur: memory follows the rows
    cell, combos = pd.factorize(coded.territory.astype(np.int64) * G + g, sort=True)
    combos = np.asarray(combos, dtype=np.int64)
    keys = {"territory": coded.territories[combos // G]}
    rest = combos % G
    digits = []
    for size in reversed(sizes):
        digits.append(rest % size)
        rest = rest // size
    for b, lab, idx in zip(by, labels, reversed(digits), strict=True):
        keys[b] = np.asarray(lab, dtype=object)[idx]
    return cell.astype(np.int64), pd.DataFrame(keys)


def _region_pairs(coded: CodedFrame, chunk: pd.DataFrame, region: str) -> pd.DataFrame:
    assert coded.territory is not None
    c, u = to_text_codes(chunk[region].iloc[coded.rows])
    if (c < 0).any():
        raise DataValidationError(
            column=region,
            problem="missing region codes",
            n_bad=int((c < 0).sum()),
            examples=[f"row {r}" for r in coded.rows[c < 0][:5]],
            fix="Every row needs its region.",
        )
    pairs = np.unique(coded.territory * len(u) + c)
    return pd.DataFrame(
        {
            "territory": coded.territories[pairs // len(u)],
            "region": np.asarray(u, dtype=object)[pairs % len(u)],
        }
    )


def _regions(pairs: list[pd.DataFrame], region: str) -> pd.Series:
    both = pd.concat(pairs, ignore_index=True).drop_duplicates()
    dup = both["territory"].duplicated(keep=False)
    if dup.any():
        bad = (
            both[dup]
            .groupby("territory")["region"]
            .apply(lambda s: "/".join(sorted(s)))
        )
        raise DataValidationError(
            column=region,
            problem="territories that belong to more than one region",
            n_bad=len(bad),
            examples=[f"{t}: {r}" for t, r in bad.head(5).items()],
            fix="Each territory must lie in exactly one region.",
        )
    return pd.Series(
        both["region"].to_numpy(), index=both["territory"].to_numpy(), name="region"
    ).sort_index()


def _expected_territories(
    cells: TerritoryStats,
    ind_table: pd.DataFrame | None,
    spec: FeatureSpec,
    quality: DataQuality,
) -> list[str]:
    observed = list(cells.keys["territory"])
    if ind_table is None or INDICATORS not in spec.territory:
        return observed
    c, u = to_text_codes(ind_table[spec.territory[INDICATORS]])
    listed = sorted(set(np.asarray(u, dtype=object)[c[c >= 0]]))
    empty = sorted(set(listed) - set(observed))
    if empty:
        note = (
            f"{len(empty)} territories of the indicator table have no rows in the "
            f"frame (e.g. {empty[:5]}); they are reported with n_children 0 "
            "and no risk."
        )
        quality.notes.append(note)
        warnings.warn(note, CoverageWarning, stacklevel=3)
    extra = sorted(set(observed) - set(listed))
    if extra:  # possible when the model uses no territory indicator
        note = (
            f"{len(extra)} territories of the frame are not in the indicator table "
            f"(e.g. {extra[:5]}); they are scored, but check their codes (leading "
            "zeros, text vs number)."
        )
        quality.notes.append(note)
        warnings.warn(note, CoverageWarning, stacklevel=3)
    return sorted(set(listed) | set(observed))


def _with_counterfactual(
    factors: FactorWeights,
    view: ModelView,
    cached: list[CodedFrame],
    cells: TerritoryStats,
) -> FactorWeights:
    names = pd.Index(cells.keys["territory"], dtype=object)
    shifts = factors.gaps.to_numpy()
    total = np.zeros_like(shifts)
    for coded in cached:
        assert coded.territory is not None
        glob = names.get_indexer(pd.Index(coded.territories, dtype=object))
        cell = glob[coded.territory]
        total += shifted_risk(
            view.scorer, coded.codes, coded.numerics, cell, shifts, coded.weight
        )
    cf = 100 * total / cells.sums[:, 1:2]
    return replace(
        factors,
        counterfactual=pd.DataFrame(
            cf, index=factors.gaps.index, columns=factors.gaps.columns
        ),
    )
