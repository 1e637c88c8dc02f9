"""External validation on real public data no one on the team wrote (issue 6).

Run from the repository root (needs ``../shared/refdata/emdi``; without it the
script says so and stops)::

    python benchmarks/bench_external_emdi.py

Data: the Austrian EU-SILC synthetic survey (1,945 persons with weights, 70 of
94 districts) and population (25,000 persons, all 94 districts) of the R
package emdi (see ``../shared/refdata/README.md``). Outcome: ``poor`` =
equivalised income below 10,885.33 (60% of the weighted median, the emdi
vignettes' threshold). clrisk fits its survey-weighted logit on the sample
(13 income components and household size, in thousands of euros, plus sex;
districts as strata), projects it onto the population, and aggregates by
district. Compared with:

- the **true** district poverty rate, known from the population;
- the weighted **direct** estimate from the sample (70 districts only);
- ``HCR_logit`` of ``reference/district_truth_direct_logit_DERIVED.csv``: the
  same model fitted independently with scikit-learn (C=1e6, standardised).

Reported: Pearson and Spearman correlation, mean absolute error (percentage
points), and agreement of the top 19 districts (20%), over all districts, the
24 out-of-sample ones, and the 70 in-sample ones. Results are written to
``benchmarks/results/external_emdi.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import clrisk
from clrisk import Feature, FeatureSpec, Source

REFDATA = Path(__file__).resolve().parents[2] / "shared" / "refdata" / "emdi"
RESULTS = Path(__file__).parent / "results" / "external_emdi.json"
THRESHOLD = 10885.33
MONEY = [
    "cash",
    "self_empl",
    "unempl_ben",
    "age_ben",
    "surv_ben",
    "sick_ben",
    "dis_ben",
    "rent",
    "fam_allow",
    "house_allow",
    "cap_inv",
    "tax_adj",
]
TOP = 19


def spec() -> FeatureSpec:
    """Sample and population share column names; money in thousands of euros."""

    def src(col: str, scale: float = 1.0) -> dict[str, Source]:
        return {"smp": Source(col, scale=scale), "pop": Source(col, scale=scale)}

    feats = [Feature("eqsize", "numeric", sources=src("eqsize"))]
    feats += [Feature(c, "numeric", sources=src(c, 1e-3)) for c in MONEY]
    feats.append(
        Feature("gender", "binary", levels=("male", "female"), sources=src("gender"))
    )
    return FeatureSpec(
        feats,
        train_source="smp",
        frame_source="pop",
        territory={"smp": "district", "pop": "district"},
        name="EU-SILC Austria (emdi), poverty",
    )


def metrics(est: pd.Series, true: pd.Series) -> dict[str, float]:
    """Agreement of estimated and true rates (proportions), by district."""
    both = pd.concat([est, true], axis=1, keys=["est", "true"]).dropna()
    top_est = set(both["est"].nlargest(TOP).index)
    top_true = set(both["true"].nlargest(TOP).index)
    return {
        "districts": len(both),
        "pearson": float(np.corrcoef(both["est"], both["true"])[0, 1]),
        "spearman": float(spearmanr(both["est"], both["true"]).statistic),
        "mae_points": float(100 * (both["est"] - both["true"]).abs().mean()),
        f"top{TOP}_found": len(top_est & top_true) if len(both) >= TOP else None,
    }


def run(refdata: Path = REFDATA) -> dict[str, Any]:
    """Fit, project and compare; returns the figures."""
    smp = pd.read_csv(refdata / "csv" / "eusilcA_smp.csv")
    pop = pd.read_csv(refdata / "csv" / "eusilcA_pop.csv")
    ref = pd.read_csv(refdata / "reference" / "district_truth_direct_logit_DERIVED.csv")
    smp["poor"] = (smp["eqIncome"] < THRESHOLD).astype(int)
    pop["poor"] = (pop["eqIncome"] < THRESHOLD).astype(int)

    model = clrisk.RiskModel(spec()).fit(
        smp, outcome="poor", weight="weight", strata="district"
    )
    risk = clrisk.predict(model, pop, territory="district")
    est = risk.table.set_index("territory")["risk"] / 100
    true = pop.groupby("district")["poor"].mean()
    w = smp["weight"] * smp["poor"]
    direct = w.groupby(smp["district"]).sum() / smp.groupby("district")["weight"].sum()
    sampled = set(smp["district"])
    out_of_sample = [d for d in true.index if d not in sampled]
    in_sample = [d for d in true.index if d in sampled]
    reference = ref.set_index("district")["HCR_logit"]
    return {
        "data": "emdi eusilcA_smp (1,945) / eusilcA_pop (25,000), 94 districts",
        "threshold": THRESHOLD,
        "model": {
            "converged": bool(model.converged_),
            "weighted_auc": float(model.diagnostics_.auc),
            "design": f"{model.design_.kind}, {model.design_.n_strata} strata",
        },
        "clrisk_all": metrics(est, true),
        "clrisk_out_of_sample": metrics(est[out_of_sample], true[out_of_sample]),
        "clrisk_in_sample": metrics(est[in_sample], true[in_sample]),
        "direct_in_sample": metrics(direct, true[in_sample]),
        "vs_independent_sklearn_fit": {
            "max_abs_difference_points": float(
                100 * (est - reference.reindex(est.index)).abs().max()
            ),
        },
        "national": {
            "estimated_percent": float(risk.national()["risk"].iloc[0]),
            "true_percent": float(100 * pop["poor"].mean()),
        },
    }


def main() -> None:
    if not REFDATA.exists():
        print(
            f"skipped: {REFDATA} is not here (the external reference data sit "
            "beside the repository in ../shared/refdata, not in a user's clone)"
        )
        sys.exit(0)
    figures = run()
    print(json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
