"""The portable model file: a fitted RiskModel as checked, plain JSON.

A model file holds everything needed to project and to report: the feature
specification, the coefficients and their covariance, the training summary
(design, diagnostics, row accounting) and the territory indicators kept at fit
time. It is plain JSON, so reading it never runs code (no pickle), and it is
validated on loading: the format name, the ``schema_version`` (a newer one is
refused rather than half-read), every key (unknown keys are refused), the
shapes and finiteness of the numbers, and a SHA-256 checksum of the content,
so that a file edited by hand or damaged in transit is detected.

Users who want to persist their *own* scikit-learn pipelines around clrisk can
use joblib, with the usual warning: loading a joblib/pickle file can run
arbitrary code, so only load files you made yourself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clrisk.diagnostics import ClassificationTable, Diagnostics
from clrisk.exceptions import ClriskError, ModelFormatError, NotFittedError
from clrisk.quality import DataQuality
from clrisk.spec import FeatureSpec
from clrisk.survey import Design

if TYPE_CHECKING:
    from clrisk.model import RiskModel

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "load_model",
    "model_card",
    "model_to_dict",
    "save_model",
]

FORMAT = "clrisk-model"
SCHEMA_VERSION = 2
#: Versions this clrisk reads: 2 added the classification table to the
#: diagnostics (a version-1 file loads without it).
_READABLE = (1, 2)
_KEYS = {
    "format",
    "schema_version",
    "clrisk_version",
    "created",
    "settings",
    "spec",
    "terms",
    "params",
    "cov",
    "classes",
    "training",
    "indicators",
    "checksum",
}
_SETTINGS = {"link", "max_iter", "tol", "lonely_psu", "on_invalid", "penalty"}
_TRAINING = {
    "n_obs",
    "n_features_in",
    "sum_weights",
    "loglik",
    "converged",
    "n_iter",
    "design",
    "diagnostics",
    "quality",
    "outcome",
    "source",
    "weight",
    "territory",
    "feature_names_in",
}


def model_to_dict(model: RiskModel) -> dict[str, Any]:
    """The content of a model file, checksum included.

    Parameters
    ----------
    model : RiskModel
        A fitted, specification-driven model.

    Returns
    -------
    dict
    """
    from clrisk import __version__

    if not hasattr(model, "params_"):
        raise NotFittedError("Only a fitted RiskModel can be saved: call fit first.")
    d, design = model.diagnostics_, model.design_
    body: dict[str, Any] = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "clrisk_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {k: getattr(model, k) for k in sorted(_SETTINGS)},
        "spec": model.spec_.to_dict(),
        "terms": list(model.terms_),
        "params": [float(v) for v in model.params_],
        "cov": [[float(v) for v in row] for row in model.cov_],
        "classes": [_plain(c) for c in model.classes_],
        "training": {
            "n_obs": int(model.n_obs_),
            "sum_weights": float(model.sum_weights_),
            "loglik": float(model.loglik_),
            "converged": bool(model.converged_),
            "n_iter": int(model.n_iter_),
            "design": {
                "kind": design.kind,
                "n_strata": int(design.n_strata),
                "n_psu": int(design.n_psu),
                "df": int(design.df),
                "lonely_strata": list(design.lonely_strata),
            },
            "diagnostics": {
                "auc": float(d.auc),
                "brier": float(d.brier),
                "pseudo_r2": float(d.pseudo_r2),
                "calibration_slope": float(d.calibration_slope),
                "calibration": d.calibration.to_dict(orient="list"),
                "classification": (
                    None
                    if d.classification is None
                    else dataclasses.asdict(d.classification)
                ),
            },
            "quality": {
                "rows_read": model.quality_.rows_read,
                "rows_used": model.quality_.rows_used,
                "rejected": dict(model.quality_.rejected),
                "recoded": dict(model.quality_.recoded),
                "notes": list(model.quality_.notes),
            },
            "outcome": getattr(model, "outcome_name_", None),
            "source": model.source_,
            "weight": model.weight_name_,
            "territory": model.territory_,
            "feature_names_in": [
                str(c) for c in getattr(model, "feature_names_in_", [])
            ],
            "n_features_in": int(getattr(model, "n_features_in_", 0)),
        },
        "indicators": None
        if model.indicators_ is None
        else {
            "codes": [str(c) for c in model.indicators_.index],
            "columns": {
                c: [float(v) for v in model.indicators_[c]]
                for c in model.indicators_.columns
            },
        },
    }
    body["checksum"] = _checksum(body)
    return body


def save_model(model: RiskModel, path: str | Path) -> Path:
    """Write `model` to `path` as a portable JSON model file.

    Returns
    -------
    Path
        The file written.
    """
    from clrisk.io import writable

    path = writable(path)
    text = json.dumps(
        model_to_dict(model), indent=1, ensure_ascii=False, allow_nan=False
    )
    path.write_text(text + "\n", encoding="utf-8")
    return path


def load_model(path: str | Path) -> RiskModel:
    """Read a model file written by :func:`save_model`, validating it.

    Raises
    ------
    ModelFormatError
        The file is not a clrisk model, is of an unknown schema version, has
        unknown or missing keys, inconsistent shapes, non-finite numbers, or a
        checksum that does not match its content.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelFormatError(
            f"'{path}' is not a readable clrisk model file ({exc}); "
            "load only files written by model.save()."
        ) from None
    return model_from_dict(data, where=f"'{path}'")


def model_from_dict(data: Any, *, where: str = "the model") -> RiskModel:
    """A fitted RiskModel from :func:`model_to_dict` content (validated)."""

    def fail(problem: str) -> ModelFormatError:
        return ModelFormatError(f"{where}: {problem}. Re-save it with model.save().")

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise fail("not a clrisk model file (no 'format': 'clrisk-model')")
    version = data.get("schema_version")
    if version not in _READABLE or isinstance(version, bool):
        raise fail(
            f"schema_version {version!r}; this clrisk reads versions "
            f"{', '.join(map(str, _READABLE))} (upgrade clrisk for newer files)"
        )
    _check_keys(data, _KEYS, "top level", fail)
    if data["checksum"] != _checksum(data):
        raise fail("the checksum does not match the content (edited or damaged)")
    _check_keys(data["settings"], _SETTINGS, "settings", fail)
    _check_keys(data["training"], _TRAINING, "training", fail)

    try:
        return _rebuild(data, where, fail)
    except ClriskError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        # well-formed JSON whose values have the wrong shape or type
        raise fail(
            f"a value has the wrong type or shape ({type(exc).__name__}: {exc})"
        ) from None


def _rebuild(data: dict[str, Any], where: str, fail: Any) -> RiskModel:
    """The model from checked content (the keys are known to be right)."""
    from clrisk.model import RiskModel

    spec = FeatureSpec.from_dict(data["spec"], where=where)
    terms = ["intercept", *spec.columns]
    params = _array(data["params"], (len(terms),), "params", fail)
    cov = _array(data["cov"], (len(terms), len(terms)), "cov", fail)
    if data["terms"] != terms:
        raise fail("the terms do not match the specification's columns")
    from clrisk.model import _INFERRED_SOURCE

    inferred = data["training"]["source"] == _INFERRED_SOURCE  # fitted on arrays
    model = RiskModel(None if inferred else spec, **data["settings"])
    try:
        model._check_params()
    except ClriskError as exc:
        raise fail(f"invalid settings ({exc})") from None
    tr = data["training"]
    model.spec_ = spec
    model.terms_ = terms
    model.params_ = params
    model.coef_ = params[None, 1:]
    model.intercept_ = params[:1]
    model.cov_ = cov
    model.classes_ = np.asarray(data["classes"])
    model.n_iter_ = int(tr["n_iter"])
    model.converged_ = bool(tr["converged"])
    model.loglik_ = float(tr["loglik"])
    model.n_obs_ = int(tr["n_obs"])
    model.sum_weights_ = float(tr["sum_weights"])
    model.design_ = Design(**tr["design"])
    diag = dict(tr["diagnostics"])
    for name in ("auc", "brier", "pseudo_r2", "calibration_slope"):
        if not _is_number(diag.get(name)):
            raise fail(f"'training.diagnostics.{name}' is not a number")
    diag["calibration"] = pd.DataFrame(diag["calibration"])
    if diag.get("classification") is not None:
        diag["classification"] = _classification(diag["classification"], fail)
    model.diagnostics_ = Diagnostics(**diag)
    _check_keys(
        tr["quality"],
        {"rows_read", "rows_used", "rejected", "notes", "recoded"},
        "training.quality",
        fail,
    )
    model.quality_ = DataQuality(**tr["quality"])
    model.outcome_name_ = tr["outcome"]
    model.source_ = tr["source"]
    model.weight_name_ = tr["weight"]
    model.territory_ = tr["territory"]
    names = tr["feature_names_in"]
    if names:
        model.feature_names_in_ = np.asarray(names, dtype=object)
    if tr["n_features_in"]:
        model.n_features_in_ = int(tr["n_features_in"])
    model.indicators_ = _indicators(data["indicators"], spec, fail)
    return model


def model_card(model: RiskModel) -> str:
    """A Markdown model card: data, design, diagnostics, coefficients, limits.

    Parameters
    ----------
    model : RiskModel
        A fitted model.

    Returns
    -------
    str
    """
    from clrisk import __version__

    if not hasattr(model, "params_"):
        raise NotFittedError("Only a fitted RiskModel has a model card.")
    d, q, design = model.diagnostics_, model.quality_, model.design_
    coef = model.coef_table()[
        ["term", "coef", "se", "ci_low", "ci_high", "odds_ratio", "p_value"]
    ]
    rows = "\n".join(
        f"| {r.term} | {r.coef:.4f} | {r.se:.4f} | [{r.ci_low:.3f}, {r.ci_high:.3f}] "
        f"| {r.odds_ratio:.3f} | {r.p_value:.4f} |"
        for r in coef.itertuples()
    )
    feats = "\n".join(
        f"| {f.name} | {f.kind} | {f.dimension} | {f.policy_area or '-'} | "
        f"{f.reference or '-'} |"
        for f in model.spec_.features
    )
    rejected = ", ".join(f"{k}: {v:,}" for k, v in q.rejected.items()) or "none"
    weak = (
        " **Weak model: do not present its ranking as solid.**" if d.auc < 0.65 else ""
    )
    return f"""# Model card: {model.spec_.name or "clrisk risk model"}

Generated by clrisk {__version__}. A survey-weighted {model.link} model of child labour
(ILO-ECLAC CLRISK method), fitted by pseudo-maximum likelihood.

## Training data
- Outcome: `{getattr(model, "outcome_name_", "y")}`; source `{model.source_}`; weights
  `{model.weight_name_ or "none (all 1)"}`.
- Rows read {q.rows_read:,}, used {q.rows_used:,}; rejected: {rejected}.
- Sum of weights {model.sum_weights_:,.0f}.
- Variance: {design.kind} ({design.n_strata} strata, {design.n_psu} PSUs, design df
  {design.df}){
        "; strata with one PSU: " + ", ".join(design.lonely_strata)
        if design.lonely_strata
        else ""
    }.
- Converged: {model.converged_} in {model.n_iter_} Newton steps.

## Diagnostics (on the training data)
Weighted AUC {d.auc:.3f}, Brier score {d.brier:.4f}, McFadden pseudo-R² {
        d.pseudo_r2:.3f},
calibration slope {d.calibration_slope:.3f}.{weak}
{_classification_text(d.classification)}
## Features
| feature | kind | dimension | policy area | reference |
|---|---|---|---|---|
{feats}

## Coefficients (log-odds; 95% design-based intervals)
| term | coef | SE | 95% CI | odds ratio | p |
|---|---|---|---|---|---|
{rows}

## Intended use and limits
- Ranks territories by the model-based risk and expected number of children in
  child labour, to prioritise prevention; not for decisions about individual
  children or households.
- The model has no territory effect: territories with the same composition get
  the same risk, and the intervals reflect coefficient uncertainty only, so they
  are narrower than the uncertainty about a territory's true rate
  (`clrisk.territory_effects` / `clrisk fit --territory-effects` estimate how much
  territories differ beyond their features).
- Diagnostics are in-sample; cross-validated figures are more honest.
"""


# --------------------------------------------------------------------- private
def _classification_text(table: ClassificationTable | None) -> str:
    """The model card's paragraph on the classification table (empty when absent)."""
    if table is None:
        return ""
    lines = [
        "",
        f"Classification {table.summary()} (weighted children):",
        "",
        "| observed | flagged | not flagged | total |",
        "|---|---|---|---|",
    ]
    frame = table.table()
    # whole children for expansion weights; significant digits for weights
    # normalised to a small sum
    fmt = ",.0f" if frame.loc["total", "total"] >= 1000 else ",.4g"
    for name, row in frame.iterrows():
        cells = " | ".join(format(v, fmt) for v in row)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines) + "\n"


def _checksum(data: dict[str, Any]) -> str:
    content = {k: v for k, v in data.items() if k != "checksum"}
    canon = json.dumps(
        content,
        sort_keys=True,
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canon.encode("utf-8")).hexdigest()


def _refuse(name: str) -> float:
    raise ValueError(f"non-finite number {name} in the file")


def _check_keys(table: Any, allowed: set[str], where: str, fail: Any) -> None:
    if not isinstance(table, dict):
        raise fail(f"'{where}' is not a table")
    unknown, missing = sorted(set(table) - allowed), sorted(allowed - set(table))
    if unknown or missing:
        raise fail(f"{where}: unknown keys {unknown}, missing keys {missing}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _classification(data: Any, fail: Any) -> ClassificationTable:
    """The classification table of a model file, checked."""
    where = "training.diagnostics.classification"
    fields = {f.name for f in dataclasses.fields(ClassificationTable)}
    _check_keys(data, fields, where, fail)
    cells = ("true_pos", "false_neg", "false_pos", "true_neg")
    if not all(_is_number(data[c]) and math.isfinite(data[c]) for c in cells):
        raise fail(f"'{where}': the four cells must be finite numbers")
    if not all(data[c] >= 0 for c in cells):
        raise fail(f"'{where}': the four cells must be >= 0 (sums of weights)")
    if not (_is_number(data["cutoff"]) and 0 < data["cutoff"] < 1):
        raise fail(f"'{where}.cutoff' must be a number strictly between 0 and 1")
    if data["rule"] not in ("prevalence", "given"):
        raise fail(f"'{where}.rule' must be 'prevalence' or 'given'")
    if not (isinstance(data["n"], int) and not isinstance(data["n"], bool)):
        raise fail(f"'{where}.n' must be a whole number")
    return ClassificationTable(**data)


def _array(values: Any, shape: tuple[int, ...], name: str, fail: Any) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(f"'{name}' is not a table of numbers") from None
    if arr.shape != shape or not np.isfinite(arr).all():
        raise fail(
            f"'{name}' has shape {arr.shape} or non-finite values; "
            f"expected shape {shape}"
        )
    return arr


def _indicators(data: Any, spec: FeatureSpec, fail: Any) -> pd.DataFrame | None:
    if data is None:
        if spec.territory_features:
            raise fail("the model has territory features but no indicator values")
        return None
    _check_keys(data, {"codes", "columns"}, "indicators", fail)
    names = [f.name for f in spec.territory_features]
    if sorted(data["columns"]) != sorted(names):
        raise fail(
            f"indicator columns {sorted(data['columns'])} do not match the "
            f"territory features {names}"
        )
    n = len(data["codes"])
    cols = {c: _array(data["columns"][c], (n,), f"indicators.{c}", fail) for c in names}
    return pd.DataFrame(
        cols, index=pd.Index([str(c) for c in data["codes"]], dtype=object)
    )


def _plain(value: Any) -> Any:
    """A JSON-ready scalar (numpy scalars become Python ones)."""
    item = value.item() if hasattr(value, "item") else value
    if isinstance(item, float) and not math.isfinite(item):
        raise ModelFormatError("A class label is not a finite number.")
    return item
