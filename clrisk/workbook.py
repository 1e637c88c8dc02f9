"""Write results to an Excel workbook (the optional extra ``clrisk[excel]``).

:func:`write_workbook` puts a :class:`~clrisk.territory.TerritoryRisk` and,
when given, the priorities, the model, a scenario and a vulnerability index
into one ``.xlsx`` file for people who work in a spreadsheet. The territory
table alone (a DataFrame, e.g. read back from a results file by the command
line's ``prioritise``) is accepted too; the sheets that need the full result
(levels, factors, regions, national, breakdown, the frame's row accounting)
are then left out.

Layout
------
Every sheet holds one table whose header is row 1 (bold, frozen, with a filter),
so any sheet reads back with ``pandas.read_excel(path, sheet_name=NAME)`` (pass
``dtype={"territory": str, "region": str}``: pandas turns text that looks like
a number into a number, which drops leading zeros; openpyxl and Excel do not).
Column names are those of the Python objects (``expected_count``, ``risk_low``,
...), so the workbook, CSV and Parquet outputs share one vocabulary. The sheets,
in order (those in brackets only when the matching argument or data is there):

==========================  ===================================================
``territories``             one row per territory, by code: ``territory``
                            (text), ``region``, counts, risk (%) and its
                            interval, expected count and its interval,
                            ``level``, ``rank`` (by expected count, ties by
                            code; empty without data), ``lead_policy_area``
``levels``                  method, scope and breaks of the risk levels (and of
                            the vulnerability levels)
``factors``                 factor weights, one row per territory x feature
[``regions``]               regional roll-up (when regions are known)
``national``                the national figures (one row)
[``breakdown``]             the ``by=`` groups, national, per region and per
                            territory (column ``scope``)
[``priorities``]            the ranking, the selection and its running totals
[``targeting curve``]
[``coefficients``]          :meth:`RiskModel.coef_table`
[``diagnostics``]           design, convergence and fit measures
[``calibration``]           calibration by deciles of the fitted probability
[``scenario``]              national row, then one row per territory
[``vulnerability``]         the index, its dimensions and their shares (%)
[``vulnerability weights``]
[``data quality``]          rows read, used and rejected (by reason) and notes,
                            for each source (the frame, the model's survey,
                            territories dropped from the vulnerability index)
``about``                   versions, creation time, run settings and, for each
                            input file, its path, size and SHA-256 checksum
==========================  ===================================================

Cell rules
----------
* Numbers stay numbers (with a display format; the stored value is the full
  float, written by openpyxl with 16 significant digits); NaN and missing
  values are empty cells; ±inf (the top break of a level) is the text
  ``"inf"`` / ``"-inf"``.
* Text is always a string cell (``t="inlineStr"``) with the text number format
  ``@``, so codes keep their leading zeros, and **never a formula**: openpyxl
  would store a string starting with ``=`` as a formula, so the cell type is
  forced to string after the value is set. Text starting with ``=``, ``+``,
  ``-``, ``@``, a tab or a line break also gets Excel's quote prefix, so editing
  the cell in Excel keeps it text.
* Line ends are written as ``\\n``: XML parsers turn a carriage return into a
  line feed, so ``"\\r\\n"`` and ``"\\r"`` are normalised before writing
  (what reads back is what was written).
* Text that Excel cannot store (control characters other than tab and line
  feed, or more than 32,767 characters) raises
  :class:`~clrisk.exceptions.DataValidationError` before anything is written.

The output is deterministic apart from the creation time on the ``about``
sheet (and the timestamps inside the zip container). The file is written to a
temporary name beside `path` and renamed, so a failure never leaves half a
workbook behind.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import numbers
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clrisk.exceptions import (
    DataValidationError,
    InvalidParameterError,
    NotFittedError,
    SchemaError,
)
from clrisk.levels import Levels
from clrisk.model import RiskModel
from clrisk.prioritise import Priorities
from clrisk.quality import DataQuality
from clrisk.scenario import Scenario
from clrisk.territory import TerritoryRisk
from clrisk.vulnerability import VulnerabilityResult

__all__ = ["SHEETS", "write_workbook"]

#: Every sheet :func:`write_workbook` can write, in workbook order.
SHEETS: tuple[str, ...] = (
    "territories",
    "levels",
    "factors",
    "regions",
    "national",
    "breakdown",
    "priorities",
    "targeting curve",
    "coefficients",
    "diagnostics",
    "calibration",
    "scenario",
    "vulnerability",
    "vulnerability weights",
    "data quality",
    "about",
)

_EXCEL_MAX_ROWS = 1_048_576
_EXCEL_MAX_TEXT = 32_767
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_MIN_WIDTH, _MAX_WIDTH = 8.0, 60.0
_CHUNK = 1 << 20  # bytes read at a time for checksums

# display formats (the stored value is always the full number)
_PERCENT = "0.00"  # risk in %, 0-100
_COUNT = "#,##0.0"  # children (weighted, expected)
_INT = "#,##0"
_FRACTION = "0.0%"  # shares 0-1
_TEXT = "@"
_PY_FORMAT: dict[str, Callable[[float], str]] = {
    _PERCENT: "{:.2f}".format,
    _COUNT: "{:,.1f}".format,
    _INT: "{:,.0f}".format,
    _FRACTION: "{:.1%}".format,
}
_COLUMN_FORMATS: dict[str, str] = {
    **dict.fromkeys(
        (
            "risk",
            "risk_low",
            "risk_high",
            "risk_se",
            "scenario_risk",
            "counterfactual_risk",
            "risk_reduction",
        ),
        _PERCENT,
    ),
    **dict.fromkeys(
        (
            "weighted_children",
            "expected_count",
            "expected_low",
            "expected_high",
            "scenario_count",
            "change",
            "change_low",
            "change_high",
            "change_se",
            "cumulative_expected",
            "cumulative_children",
            "cumulative_cost",
            "cost",
        ),
        _COUNT,
    ),
    **dict.fromkeys(("n_children", "n", "rows", "size_bytes", "rank"), _INT),
    **dict.fromkeys(
        ("share_territories", "share_children", "share_expected", "cumulative_share"),
        _FRACTION,
    ),
}
#: identifier columns always written as text, whatever their dtype
_TEXT_COLUMNS = frozenset({"territory", "region"})


@dataclass(frozen=True)
class _Sheet:
    """A table ready to write: header, columns of Python values, formats."""

    name: str
    header: list[str]
    columns: list[list[Any]]  # None (empty), str (text), bool, int or float
    formats: list[str | None]
    widths: list[float]

    @property
    def n_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0


def write_workbook(
    path: str | os.PathLike[str],
    risk: TerritoryRisk | pd.DataFrame,
    *,
    plan: Priorities | None = None,
    model: RiskModel | None = None,
    scenario: Scenario | None = None,
    vulnerability: VulnerabilityResult | None = None,
    inputs: Mapping[str, str | os.PathLike[str]] | None = None,
    extra: Mapping[str, pd.DataFrame] | None = None,
) -> Path:
    """Write territory results (and optionally more) to an Excel workbook.

    Parameters
    ----------
    path : str or path-like
        The ``.xlsx`` file to write (replaced if it exists); its folder must
        exist.
    risk : TerritoryRisk or DataFrame of shape (n_territories, n_columns)
        Output of :func:`clrisk.predict`, or just its ``table`` (at least a
        ``territory`` column; ``rank`` is added when ``expected_count`` and
        ``risk`` are there).
    plan : Priorities, optional
        Output of :func:`clrisk.prioritise`: adds the sheets "priorities" and
        "targeting curve".
    model : RiskModel, optional
        The fitted model: adds "coefficients", "diagnostics", "calibration" and
        the survey's row accounting to "data quality".
    scenario : Scenario, optional
        Output of :func:`clrisk.simulate`: adds "scenario".
    vulnerability : VulnerabilityResult, optional
        Output of :meth:`VulnerabilityIndex.compute`: adds "vulnerability" and
        "vulnerability weights", and its levels to "levels".
    inputs : mapping of str to path, optional
        The files the results were computed from, by label (e.g.
        ``{"survey": "enti.csv", "census": "censo.parquet"}``): the "about"
        sheet records each one's path (as given), size and SHA-256 checksum.
    extra : mapping of str to DataFrame, optional
        More sheets by name (e.g. ``{"sites": scored_sites}``), written before
        "data quality" with the same cell rules.

    Returns
    -------
    Path
        `path`.

    Raises
    ------
    InvalidParameterError
        openpyxl is not installed, `path` is not a writable ``.xlsx`` path, an
        argument has the wrong type, an input file does not exist, or a table
        has more rows than a sheet holds.
    SchemaError
        `risk` is a DataFrame without a ``territory`` column.
    NotFittedError
        `model` is not fitted.
    DataValidationError
        Text that Excel cannot store (control characters, over 32,767
        characters); the message names the sheet, the column and the rows.

    Notes
    -----
    See the module documentation for the sheets and the cell rules: text is
    never written as a formula, numbers stay numbers, NaN is an empty cell.

    Examples
    --------
    >>> plan = clrisk.prioritise(risk, coverage=0.5)  # doctest: +SKIP
    >>> write_workbook("risk.xlsx", risk, plan=plan, model=model)  # doctest: +SKIP
    PosixPath('risk.xlsx')
    """
    xl = _import_openpyxl()
    out = _check_path(path)
    _check_arguments(risk, plan, model, scenario, vulnerability)
    files = _check_inputs(inputs)

    created = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    sheets = [
        _prepare(name, frame, illegal=xl.illegal)
        for name, frame in _tables(
            risk,
            plan,
            model,
            scenario,
            vulnerability,
            files,
            created,
            xl.version,
            extra=_check_extra(extra),
        )
    ]
    _save(xl, sheets, out, created)
    return out


# --------------------------------------------------------------------------- #
# Validation at the boundary
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Openpyxl:
    Workbook: Any
    WriteOnlyCell: Any
    Font: Any
    get_column_letter: Callable[[int], str]
    illegal: Any  # compiled regex of characters Excel cannot store
    version: str


def _import_openpyxl() -> _Openpyxl:
    try:
        import openpyxl
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter
    except ImportError:
        raise InvalidParameterError(
            "Writing an Excel workbook needs openpyxl, which is not installed: "
            'pip install "clrisk[excel]".'
        ) from None
    return _Openpyxl(
        Workbook=openpyxl.Workbook,
        WriteOnlyCell=WriteOnlyCell,
        Font=Font,
        get_column_letter=get_column_letter,
        illegal=ILLEGAL_CHARACTERS_RE,
        version=str(openpyxl.__version__),
    )


def _check_path(path: Any) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise InvalidParameterError(
            "The 'path' parameter of write_workbook must be a str or path-like "
            f"ending in .xlsx. Got {type(path).__name__} instead."
        )
    out = Path(os.fspath(path))
    if out.suffix.lower() != ".xlsx":
        raise InvalidParameterError(
            "The 'path' parameter of write_workbook must end in .xlsx (Excel "
            f"refuses other extensions for this format). Got '{out}' instead."
        )
    if out.is_dir():
        raise InvalidParameterError(
            f"The 'path' parameter of write_workbook names a folder: '{out}'. "
            "Give a file name ending in .xlsx."
        )
    if not out.parent.is_dir():
        raise InvalidParameterError(
            f"The 'path' parameter of write_workbook is '{out}', but the folder "
            f"'{out.parent}' does not exist; create it first."
        )
    return out


def _check_type(value: Any, name: str, kind: type, made_by: str) -> None:
    if value is not None and not isinstance(value, kind):
        raise InvalidParameterError(
            f"The '{name}' parameter of write_workbook must be a {kind.__name__} "
            f"(the output of {made_by}). Got {type(value).__name__} instead."
        )


def _check_arguments(
    risk: Any, plan: Any, model: Any, scenario: Any, vulnerability: Any
) -> None:
    if not isinstance(risk, TerritoryRisk | pd.DataFrame):
        raise InvalidParameterError(
            "The 'risk' parameter of write_workbook must be a TerritoryRisk (the "
            "output of clrisk.predict) or its table, a DataFrame. Got "
            f"{type(risk).__name__} instead."
        )
    if isinstance(risk, pd.DataFrame) and "territory" not in risk.columns:
        raise SchemaError(
            "write_workbook: the 'risk' table needs a 'territory' column.",
            expected=["territory"],
            received=[str(c) for c in risk.columns],
        )
    _check_type(plan, "plan", Priorities, "clrisk.prioritise")
    _check_type(model, "model", RiskModel, "clrisk.RiskModel(...).fit")
    _check_type(scenario, "scenario", Scenario, "clrisk.simulate")
    _check_type(
        vulnerability,
        "vulnerability",
        VulnerabilityResult,
        "VulnerabilityIndex.compute",
    )
    if model is not None and not hasattr(model, "params_"):
        raise NotFittedError(
            "The 'model' parameter of write_workbook is a RiskModel that is not "
            "fitted yet; call its fit method first, or leave model out."
        )


def _check_inputs(inputs: Any) -> list[tuple[str, Path]]:
    if inputs is None:
        return []
    if not isinstance(inputs, Mapping):
        raise InvalidParameterError(
            "The 'inputs' parameter of write_workbook must be a mapping of label "
            "to file path, e.g. {'survey': 'survey.csv'}. Got "
            f"{type(inputs).__name__} instead."
        )
    files = []
    for label, value in inputs.items():
        if not isinstance(value, str | os.PathLike):
            raise InvalidParameterError(
                f"The 'inputs' parameter of write_workbook: the path of {label!r} "
                f"must be a str or path-like. Got {type(value).__name__} instead."
            )
        file = Path(os.fspath(value))
        if not file.is_file():
            raise InvalidParameterError(
                f"The 'inputs' parameter of write_workbook: {label!r} is "
                f"'{file}', which is not an existing file. Give the path of the "
                "file the results were computed from."
            )
        files.append((str(label), file))
    return files


# --------------------------------------------------------------------------- #
# The tables, as DataFrames
# --------------------------------------------------------------------------- #


def _check_extra(
    extra: Mapping[str, pd.DataFrame] | None,
) -> list[tuple[str, pd.DataFrame]]:
    """Extra sheets: DataFrames under names not taken by the standard sheets."""
    if extra is None:
        return []
    if not isinstance(extra, Mapping):
        raise InvalidParameterError(
            "The 'extra' parameter of write_workbook must map sheet names to "
            f"DataFrames; got {type(extra).__name__}."
        )
    out = []
    for name, frame in extra.items():
        if not isinstance(frame, pd.DataFrame) or not isinstance(name, str):
            raise InvalidParameterError(
                f"Extra sheet {name!r} must be a DataFrame under a text name."
            )
        if name in SHEETS or not 0 < len(name) <= 31:
            raise InvalidParameterError(
                f"Extra sheet name {name!r} is taken or not 1-31 characters long."
            )
        out.append((name, frame))
    return out


def _tables(
    risk: TerritoryRisk | pd.DataFrame,
    plan: Priorities | None,
    model: RiskModel | None,
    scenario: Scenario | None,
    vulnerability: VulnerabilityResult | None,
    files: list[tuple[str, Path]],
    created: _dt.datetime,
    openpyxl_version: str,
    extra: Sequence[tuple[str, pd.DataFrame]] = (),
) -> list[tuple[str, pd.DataFrame]]:
    """(sheet name, table) in workbook order."""
    full = isinstance(risk, TerritoryRisk)
    table = risk.table if isinstance(risk, TerritoryRisk) else risk
    levels = [_levels_frame(risk.levels, "risk")] if full else []
    if vulnerability is not None:
        levels.append(_levels_frame(vulnerability.levels, "vulnerability score"))
    tables = [("territories", _territories_frame(table))]
    if levels:
        tables.append(("levels", pd.concat(levels, ignore_index=True)))
    if isinstance(risk, TerritoryRisk):
        risk_by_code = risk.table.set_index("territory")["risk"]
        tables.append(("factors", risk.factors.long(risk_by_code)))
        if risk.regions is not None:
            tables.append(("regions", risk.rollup()))
        tables.append(("national", risk.national()))
        if risk.stats.by:
            tables.append(("breakdown", _breakdown_frame(risk)))
    if plan is not None:
        tables.append(("priorities", _priorities_frame(plan)))
        tables.append(("targeting curve", plan.curve))
    if model is not None:
        alpha = risk.alpha if isinstance(risk, TerritoryRisk) else 0.05
        tables.append(("coefficients", model.coef_table(alpha=alpha)))
        tables.append(("diagnostics", _diagnostics_frame(model)))
        tables.append(("calibration", model.diagnostics_.calibration))
    if scenario is not None:
        tables.append(("scenario", _scenario_frame(scenario)))
    if vulnerability is not None:
        tables.append(("vulnerability", _vulnerability_frame(vulnerability)))
        tables.append(("vulnerability weights", _vulnerability_weights(vulnerability)))
    tables.extend(extra)
    quality = _quality_frame(risk, model, vulnerability)
    if len(quality):
        tables.append(("data quality", quality))
    tables.append(
        (
            "about",
            _about_frame(
                risk, plan, scenario, files, created, openpyxl_version=openpyxl_version
            ),
        )
    )
    return tables


_TERRITORY_ORDER = (
    "territory",
    "region",
    "n_children",
    "weighted_children",
    "risk",
    "risk_low",
    "risk_high",
    "risk_se",
    "expected_count",
    "expected_low",
    "expected_high",
    "level",
    "rank",
    "lead_policy_area",
)


def _territories_frame(table: pd.DataFrame) -> pd.DataFrame:
    if {"expected_count", "risk"} <= set(table.columns):
        table = table.assign(rank=_rank_by_expected(table))
    out = table.reset_index(drop=True)
    first = [c for c in _TERRITORY_ORDER if c in out.columns]
    return out[first + [c for c in out.columns if c not in first]]


def _rank_by_expected(table: pd.DataFrame) -> pd.Series:
    """1 = most children expected; ties by code (string order); no data: empty.

    The same order as :func:`clrisk.prioritise` with its default ``by``.
    """
    expected = pd.to_numeric(table["expected_count"]).to_numpy(dtype=float)
    rate = pd.to_numeric(table["risk"]).to_numpy(dtype=float)
    has_data = np.isfinite(expected) & np.isfinite(rate)
    codes = table["territory"].astype(str).to_numpy(dtype=str)
    key = np.where(has_data, -expected, np.inf)
    order = np.lexsort((codes, key))
    rank = np.empty(len(table), dtype=np.int64)
    rank[order] = np.arange(1, len(table) + 1)
    values = pd.array(rank, dtype="Int64")
    values[~has_data] = pd.NA
    return pd.Series(values, index=table.index)


def _levels_frame(levels: Levels, classification: str) -> pd.DataFrame:
    breaks = levels.breaks.reset_index(drop=True)
    head = pd.DataFrame(
        {
            "classification": classification,
            "method": levels.method,
            "scope": levels.scope,
            "k": levels.k,
        },
        index=breaks.index,
    )
    return pd.concat([head, breaks], axis=1)


def _breakdown_frame(risk: TerritoryRisk) -> pd.DataFrame:
    parts = [risk.breakdown("national").assign(scope="national")]
    if risk.regions is not None:
        parts.append(risk.breakdown("region").assign(scope="region"))
    territory = risk.breakdown("territory").assign(scope="territory")
    if risk.regions is not None:
        territory.insert(0, "region", territory["territory"].map(risk.regions))
    parts.append(territory)
    out = pd.concat(parts, ignore_index=True)
    keys = ["scope"] + [c for c in ("region", "territory") if c in out.columns]
    return out[keys + [c for c in out.columns if c not in keys]]


def _priorities_frame(plan: Priorities) -> pd.DataFrame:
    ranking = plan.ranking.reset_index(drop=True)
    selection = plan.selection.set_index("territory")
    extra = [c for c in selection.columns if c not in ranking.columns]
    return ranking.assign(**{c: ranking["territory"].map(selection[c]) for c in extra})


def _diagnostics_frame(model: RiskModel) -> pd.DataFrame:
    d, design = model.diagnostics_, model.design_
    rows: list[tuple[str, Any]] = [
        ("link", model.link),
        ("children (rows used)", model.n_obs_),
        ("sum of weights", model.sum_weights_),
        ("variance", design.kind),
    ]
    if design.kind == "design":
        rows += [
            ("strata", design.n_strata),
            ("PSUs", design.n_psu),
            ("design degrees of freedom", design.df),
            ("strata with a single PSU", ", ".join(map(str, design.lonely_strata))),
        ]
    rows += [
        ("converged", bool(model.converged_)),
        ("iterations", model.n_iter_),
        ("log pseudo-likelihood", model.loglik_),
        ("weighted AUC", d.auc),
        ("Brier score", d.brier),
        ("McFadden pseudo-R2", d.pseudo_r2),
        ("calibration slope", d.calibration_slope),
    ]
    c = d.classification
    if c is not None:
        rows += [
            (f"classification cut-off ({c.rule})", c.cutoff),
            ("share flagged at the cut-off", c.flagged),
            ("sensitivity at the cut-off", c.sensitivity),
            ("specificity at the cut-off", c.specificity),
            ("positive predictive value at the cut-off", c.ppv),
            ("negative predictive value at the cut-off", c.npv),
            ("accuracy at the cut-off", c.accuracy),
        ]
    return pd.DataFrame(rows, columns=["measure", "value"], dtype=object)


def _scenario_frame(scenario: Scenario) -> pd.DataFrame:
    national = scenario.national.assign(scope="national")
    table = scenario.table.assign(scope="territory")
    out = pd.concat([national, table], ignore_index=True)
    keys = ["scope"] + (["territory"] if "territory" in out.columns else [])
    return out[keys + [c for c in out.columns if c not in keys]]


def _vulnerability_frame(result: VulnerabilityResult) -> pd.DataFrame:
    shares = result.shares.set_index("territory")
    table = result.table.reset_index(drop=True)
    return table.assign(
        **{f"{c}_share": table["territory"].map(shares[c]) for c in shares.columns}
    )


def _vulnerability_weights(result: VulnerabilityResult) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "indicator": [str(i) for i in result.weights.index],
            "weight": result.weights.to_numpy(dtype=float),
        }
    )
    if result.loadings is not None:
        out["loading"] = out["indicator"].map(result.loadings.rename(index=str))
    return out


def _quality_rows(source: str, quality: DataQuality) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [
        (source, "rows read", None, quality.rows_read),
        (source, "rows used", None, quality.rows_used),
    ]
    rows += [(source, "rows rejected", r, n) for r, n in quality.rejected.items()]
    rows.append((source, "rows rejected", "total", quality.rows_rejected))
    ok = "yes" if quality.reconciles else "NO"
    rows.append((source, "check", f"rows read = rows used + rows rejected: {ok}", None))
    rows += [(source, "note", note, None) for note in quality.notes]
    return rows


def _quality_frame(
    risk: TerritoryRisk | pd.DataFrame,
    model: RiskModel | None,
    vulnerability: VulnerabilityResult | None,
) -> pd.DataFrame:
    rows = []
    if isinstance(risk, TerritoryRisk):
        rows += _quality_rows("projection frame", risk.quality)
    if model is not None and isinstance(getattr(model, "quality_", None), DataQuality):
        rows += _quality_rows("survey (model fit)", model.quality_)
    if vulnerability is not None:
        rows += [
            ("vulnerability index", "territory dropped", f"{t}: missing {m}", None)
            for t, m in vulnerability.dropped[["territory", "missing"]].itertuples(
                index=False
            )
        ]
    out = pd.DataFrame(rows, columns=["source", "item", "detail", "rows"], dtype=object)
    return out


def _versions(openpyxl_version: str) -> list[tuple[str, str]]:
    import scipy
    import sklearn

    from clrisk import __version__

    return [
        ("clrisk", __version__),
        ("python", platform.python_version()),
        ("numpy", np.__version__),
        ("pandas", pd.__version__),
        ("scipy", scipy.__version__),
        ("scikit-learn", sklearn.__version__),
        ("openpyxl", openpyxl_version),
    ]


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _about_frame(
    risk: TerritoryRisk | pd.DataFrame,
    plan: Priorities | None,
    scenario: Scenario | None,
    files: list[tuple[str, Path]],
    created: _dt.datetime,
    *,
    openpyxl_version: str,
) -> pd.DataFrame:
    rows: list[tuple[Any, ...]] = [
        ("software", name, version, None, None)
        for name, version in _versions(openpyxl_version)
    ]
    rows.append(("run", "created (UTC)", created.strftime("%Y-%m-%dT%H:%M:%SZ")))
    if isinstance(risk, pd.DataFrame):
        rows.append(("results", "territories", len(risk)))
    else:
        levels = f"{risk.levels.method}, {risk.levels.scope} scope"
        rows += [
            ("results", "territories", len(risk.table)),
            ("results", "children scored", risk.quality.rows_used),
            ("results", "confidence level of intervals", 1 - risk.alpha),
            ("results", "levels", levels),
        ]
        if risk.stats.by:
            by = ", ".join(map(str, risk.stats.by))
            rows.append(("results", "breakdown by", by))
    if plan is not None:
        rows.append(("priorities", "ranked by", plan.by))
        if plan.blend is not None:
            rows.append(("priorities", "blend", plan.blend))
        for rule in ("top", "budget", "coverage"):
            if getattr(plan, rule) is not None:
                rows.append(("priorities", rule, getattr(plan, rule)))
        rows += [
            ("priorities", "territories selected", len(plan.selection)),
            ("priorities", "national expected total", plan.total_expected),
            ("priorities", "share covered", plan.covered_share),
        ]
    if scenario is not None:
        rows += [
            ("scenario", f"change {i}", change.describe())
            for i, change in enumerate(scenario.changes, start=1)
        ]
    rows += [
        ("input", label, str(file), file.stat().st_size, _sha256(file))
        for label, file in files
    ]
    rows = [row + (None,) * (5 - len(row)) for row in rows]
    return pd.DataFrame(
        rows, columns=["section", "name", "value", "size_bytes", "sha256"], dtype=object
    )


# --------------------------------------------------------------------------- #
# From DataFrames to cells
# --------------------------------------------------------------------------- #


def _prepare(name: str, frame: pd.DataFrame, *, illegal: Any) -> _Sheet:
    """Convert a table to Python cell values, checked, with formats and widths."""
    if len(frame) + 1 > _EXCEL_MAX_ROWS:
        raise InvalidParameterError(
            f"write_workbook: the sheet '{name}' would need {len(frame) + 1:,} rows; "
            f"Excel holds {_EXCEL_MAX_ROWS:,}. Write this table to CSV or Parquet "
            "instead."
        )
    header = [_text(str(c)) for c in frame.columns]
    columns, formats = [], []
    for j, column in enumerate(frame.columns):
        values = _to_python(frame.iloc[:, j], as_text=column in _TEXT_COLUMNS)
        _check_text(values, illegal, sheet=name, column=str(column))
        columns.append(values)
        formats.append(_COLUMN_FORMATS.get(str(column)))
    widths = [
        _width(h, values, fmt)
        for h, values, fmt in zip(header, columns, formats, strict=True)
    ]
    return _Sheet(name, header, columns, formats, widths)


def _to_python(series: pd.Series, *, as_text: bool = False) -> list[Any]:
    """Cell values: None (empty), str (text), bool, int or float."""
    dtype = series.dtype
    if not as_text and isinstance(dtype, np.dtype):
        if dtype.kind == "b":
            return [bool(v) for v in series.tolist()]
        if dtype.kind in "iu":
            return [int(v) for v in series.tolist()]
        if dtype.kind == "f":
            return [_number(float(v)) for v in series.tolist()]
    values = series.astype(object).tolist()
    if as_text:
        return [None if _missing(v) else _text(str(v)) for v in values]
    return [_scalar(v) for v in values]


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _number(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _text(value: str) -> str:
    # XML parsers turn CR into LF: write what will be read back
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _scalar(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _number(float(value))
    if isinstance(value, _dt.date | np.datetime64):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:  # Excel has no time zones: store UTC
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return stamp.to_pydatetime()
    return _text(str(value))


def _check_text(values: list[Any], illegal: Any, *, sheet: str, column: str) -> None:
    bad = [
        i
        for i, v in enumerate(values)
        if isinstance(v, str) and (len(v) > _EXCEL_MAX_TEXT or illegal.search(v))
    ]
    if bad:
        raise DataValidationError(
            column=column,
            problem="text that Excel cannot store (control characters other than "
            f"tab and line feed, or more than {_EXCEL_MAX_TEXT:,} characters)",
            n_bad=len(bad),
            examples=[f"row {i + 2}" for i in bad],  # Excel rows; header is row 1
            where=f"sheet '{sheet}'",
            fix="Remove the control characters from the input data, or shorten "
            "the text.",
        )


def _width(header: str, values: list[Any], fmt: str | None) -> float:
    """Column width in characters: the widest cell, within sensible limits."""
    widest = max((len(line) for line in header.split("\n")), default=0) + 2
    show = _PY_FORMAT.get(fmt or "")
    for v in values:
        if v is None:
            continue
        if isinstance(v, str):
            n = max(len(line) for line in v.split("\n"))
        elif isinstance(v, bool):
            n = 5
        elif isinstance(v, int | float):
            n = len(show(v)) if show is not None else len(f"{v:.10g}")
        else:
            n = 19  # a datetime
        widest = max(widest, n + 1)
    return float(min(max(widest, _MIN_WIDTH), _MAX_WIDTH))


def _save(xl: _Openpyxl, sheets: Sequence[_Sheet], out: Path, created: Any) -> None:
    from clrisk import __version__

    wb = xl.Workbook(write_only=True)
    wb.properties.creator = f"clrisk {__version__}"
    wb.properties.created = created.replace(tzinfo=None)
    bold = xl.Font(bold=True)
    for sheet in sheets:
        _write_sheet(xl, wb, sheet, bold)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        wb.save(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _write_sheet(xl: _Openpyxl, wb: Any, sheet: _Sheet, bold: Any) -> None:
    ws = wb.create_sheet(sheet.name)
    ws.freeze_panes = "A2"
    n_cols = len(sheet.header)
    for j, width in enumerate(sheet.widths, start=1):
        ws.column_dimensions[xl.get_column_letter(j)].width = width
    if n_cols:
        last = xl.get_column_letter(n_cols)
        ws.auto_filter.ref = f"A1:{last}{sheet.n_rows + 1}"

    def cell(value: Any, fmt: str | None) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            c = xl.WriteOnlyCell(ws, value=value)
            # openpyxl guesses a formula ("=..."), an error code ("#N/A"): undo
            c.data_type = "s"
            c.number_format = _TEXT
            if value.startswith(_FORMULA_START):
                c.quotePrefix = True
            return c
        if fmt is None or isinstance(value, bool):
            return value
        c = xl.WriteOnlyCell(ws, value=value)
        c.number_format = fmt
        return c

    header = []
    for name in sheet.header:
        c = cell(name, None)
        c.font = bold
        header.append(c)
    ws.append(header)
    for row in zip(*sheet.columns, strict=True):
        ws.append([cell(v, f) for v, f in zip(row, sheet.formats, strict=True)])
