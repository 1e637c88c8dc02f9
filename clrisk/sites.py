"""Risk of production sites and suppliers, for supply-chain due diligence.

:func:`score_sites` attaches to each site (a territory code, optionally the
sector it works in and a volume) the child-labour risk where it operates: the
territory's risk and level, and — when the projection was broken down by the
sector of the household head's activity (``clrisk.predict(..., by=
"head_branch")``) — the risk among children of households working in that
sector there, the expected number of such children, and the reasons (the
territory's lead policy area and main risk factors). Sites that cannot be
scored keep their row with the reason, never dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clrisk.exceptions import DataValidationError, InvalidParameterError, SchemaError
from clrisk.scoring import TerritoryStats
from clrisk.territory import TerritoryRisk

__all__ = ["score_sites"]


def score_sites(
    sites: pd.DataFrame,
    risk: TerritoryRisk,
    *,
    territory: str = "territory",
    sector: str | None = None,
    sector_feature: str | None = None,
    volume: str | None = None,
    n_factors: int = 3,
) -> pd.DataFrame:
    """Risk level and expected exposure of each site, with the reasons.

    Parameters
    ----------
    sites : DataFrame
        One row per site or supplier.
    risk : TerritoryRisk
        From :func:`clrisk.predict`; with ``by=[sector_feature]`` to use
        `sector`.
    territory : str
        Column of `sites` with the territory code (read as text).
    sector : str, optional
        Column of `sites` with the site's sector, a level of `sector_feature`.
    sector_feature : str, optional
        The breakdown variable holding sectors (e.g. ``"head_branch"``).
    volume : str, optional
        Column with the site's volume (tonnes, workers, ...): ``exposure`` is
        volume x sector (or territory) risk.
    n_factors : int
        Main risk factors listed per site.

    Returns
    -------
    DataFrame
        `sites` with ``territory_risk``, ``territory_level``,
        ``lead_policy_area``, ``main_risk_factors``, and with `sector`:
        ``sector_risk``, ``sector_risk_low``, ``sector_risk_high``,
        ``sector_children``, ``sector_expected_count`` and ``sector_level``
        (the level the sector risk falls in, with the breaks of the
        territories' classification in the site's scope group); with
        `volume`: ``exposure``; and ``status`` ("scored" or why not). A
        projection broken down by the sector and other variables (e.g. sex) is
        summed over the others.
    """
    need = [territory, *(c for c in (sector, volume) if c is not None)]
    missing = [c for c in need if c not in sites.columns]
    if missing:
        raise SchemaError(
            "The sites table lacks columns.",
            expected=need,
            received=[str(c) for c in sites.columns],
        )
    if (sector is None) != (sector_feature is None):
        raise InvalidParameterError("Give sector= and sector_feature= together.")
    if pd.api.types.is_numeric_dtype(sites[territory].dtype):
        raise InvalidParameterError(
            f"The site column '{territory}' holds numbers: territory codes must be "
            "read as text (leading zeros); read the file with dtype=str."
        )
    out = sites.copy()
    codes = out[territory].astype("string").str.strip()
    table = risk.table.set_index("territory")
    known = codes.isin(table.index)
    status = np.where(known, "scored", "territory not in the risk table")
    # a code that lost its leading zeros ("5001" for "05001") says so
    padded = {str(c).lstrip("0"): str(c) for c in table.index}
    lost = codes.map(
        lambda c: padded.get(c.lstrip("0")) if isinstance(c, str) else None
    )
    zeros = ~known.to_numpy() & lost.notna().to_numpy()
    status = np.where(
        zeros,
        "territory not in the risk table (leading zeros lost? the table has '"
        + lost.fillna("").astype(str)
        + "')",
        status,
    )
    missing_code = codes.isna().to_numpy() | (codes.fillna("") == "").to_numpy()
    status = np.where(missing_code, "no territory code", status)
    out["territory_risk"] = codes.map(table["risk"]).astype(float)
    no_data = known & out["territory_risk"].isna().to_numpy()
    status = np.where(no_data, "no children scored in the territory", status)
    out["territory_level"] = codes.map(table["level"])
    out["lead_policy_area"] = codes.map(table["lead_policy_area"])
    out["main_risk_factors"] = codes.map(_main_factors(risk, n_factors))
    rate = out["territory_risk"]
    if sector is not None:
        assert sector_feature is not None
        if sector_feature not in risk.stats.by:
            raise InvalidParameterError(
                f"The risk was not broken down by '{sector_feature}': pass "
                f"by=['{sector_feature}'] to clrisk.predict."
            )
        cells = _sector_cells(risk, sector_feature)
        sectors = out[sector].astype("string").str.strip()
        key = pd.MultiIndex.from_arrays([codes, sectors])
        found = key.isin(cells.index)
        levels = set(cells.index.get_level_values(sector_feature))
        unknown = ~sectors.isin(levels).to_numpy()
        status = np.where(
            known & ~no_data & ~found, "no children of that sector there", status
        )
        status = np.where(
            known & unknown,
            f"sector is not a level of '{sector_feature}' ({sorted(levels)})",
            status,
        )
        picked = cells.reindex(key)
        for src, dst in (
            ("risk", "sector_risk"),
            ("risk_low", "sector_risk_low"),
            ("risk_high", "sector_risk_high"),
            ("n_children", "sector_children"),
            ("expected_count", "sector_expected_count"),
        ):
            out[dst] = picked[src].to_numpy()
        rate = out["sector_risk"]
        out["sector_level"] = _level_of(risk, codes, out["sector_risk"])
    if volume is not None:
        out["exposure"] = _volume(out[volume], volume) * rate / 100
    out["status"] = status
    return out


def _sector_cells(risk: TerritoryRisk, sector_feature: str) -> pd.DataFrame:
    """Estimates per territory x sector, summed over any other breakdown."""
    keys = risk.stats.keys[["territory", sector_feature]]
    cells = TerritoryStats.from_cells(keys, risk.stats.sums, risk.stats.layout)
    est = risk.view.estimates(cells.sums, risk.alpha)
    table = pd.concat([cells.keys.reset_index(drop=True), est], axis=1)
    return table.set_index(["territory", sector_feature])


def _level_of(risk: TerritoryRisk, codes: pd.Series, values: pd.Series) -> pd.Series:
    """The level each value falls in, with the breaks of its territory's scope
    group (the nation, or the territory's region): a site is classified as if
    its sector risk were a territory's."""
    breaks = risk.levels.breaks
    if risk.levels.scope == "region":
        assert risk.regions is not None  # region scope needs regions
        group = codes.map(risk.regions.astype(str))
    else:
        group = pd.Series("national", index=codes.index)
    out = pd.Series(pd.NA, index=codes.index, dtype="object")
    for name, rows in breaks.groupby("group", sort=False):
        rows = rows.sort_values("level_code")
        upper = rows["upper_break"].to_numpy(dtype=float)[:-1]  # the top is +inf
        here = (group == name).to_numpy() & values.notna().to_numpy()
        idx = np.searchsorted(upper, values[here].to_numpy(dtype=float), side="left")
        out[here] = rows["level"].to_numpy()[idx]
    return out


def _main_factors(risk: TerritoryRisk, k: int) -> pd.Series:
    """The `k` features pushing each territory's risk up most, as text."""
    gaps = risk.factors.gaps

    def top(row: pd.Series) -> str | None:
        if row.isna().all():  # no children scored there: no factors
            return None
        up = row[row > 0].sort_values(ascending=False).head(k)
        return ", ".join(up.index) if len(up) else "none above national"

    return gaps.apply(top, axis=1)


#: A comma then exactly three digits ("1,234", "12,500"): a thousands separator
#: in some locales, a decimal comma in others.
_AMBIGUOUS = r"^[-+]?[1-9]\d{0,2}(,\d{3})+$"


def _volume(values: pd.Series, name: str) -> pd.Series:
    """Site volumes as numbers >= 0 (one decimal comma is accepted); others,
    and text that could be read two ways, are refused."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.astype(float)
    else:
        text = values.astype("string").str.strip()
        ambiguous = text.str.match(_AMBIGUOUS).fillna(False).to_numpy(dtype=bool)
        _refuse(
            values,
            ambiguous,
            name,
            "volumes with a comma before three digits, which reads as a thousands "
            "separator in some locales and a decimal comma in others",
            "Write volumes without thousands separators (1234, or 1,5 / 1.5 for "
            "decimals).",
        )
        text = text.where(text.str.count(",") != 1, text.str.replace(",", "."))
        numbers = pd.to_numeric(text, errors="coerce").astype(float)
        _refuse(
            values,
            (numbers.isna() & values.notna()).to_numpy(),
            name,
            "volumes that are not numbers",
            "Write volumes as numbers (e.g. 12.5 or 12,5).",
        )
    _refuse(
        values,
        (numbers < 0).to_numpy() | np.isinf(numbers.to_numpy()),
        name,
        "negative or infinite volumes",
        "Give each site's volume as a finite number >= 0.",
    )
    return numbers


def _refuse(
    values: pd.Series, bad: np.ndarray, name: str, problem: str, fix: str
) -> None:
    if bad.any():
        raise DataValidationError(
            column=name,
            problem=problem,
            n_bad=int(bad.sum()),
            examples=[f"row {i}: {v!r}" for i, v in values[bad].head().items()],
            fix=fix,
        )
