"""Benchmark: fit a 500k-row x ~60-column survey with design-based SEs (issue 2).

Run from the repository root::

    python benchmarks/bench_fit.py                # 500,000 rows, 3 repeats
    python benchmarks/bench_fit.py --rows 100000  # smaller

The survey is generated here from a known logit (12 categorical features of
five levels = 48 dummy columns, plus 12 numeric features: 60 model columns and
an intercept), with 400 strata of 10 PSUs each. What is timed is what a user
calls: ``RiskModel(spec).fit(survey, outcome=..., weight=..., strata=...,
psu=...)`` from the raw table, i.e. harmonising codes, building the design
matrix, the Newton solve to convergence and the Taylor-linearised design-based
covariance. The time of each stage is reported separately as well, and the
coefficients are checked against the truth so that the timing is of a correct
fit. The result is appended to ``benchmarks/results/fit.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import provenance  # benchmarks/ is the script's folder

import clrisk
from clrisk import Feature, FeatureSpec, Source
from clrisk.features import design_matrix, encode
from clrisk.solver import fit_binary
from clrisk.survey import design_meat

N_CAT, N_LEVELS, N_NUM = 12, 5, 12

RESULTS = Path(__file__).parent / "results" / "fit.jsonl"


def make_survey(n_rows: int, seed: int) -> tuple[pd.DataFrame, FeatureSpec, np.ndarray]:
    """A survey table, its spec, and the true coefficients (intercept first)."""
    rng = np.random.default_rng(seed)
    levels = tuple(f"l{j}" for j in range(N_LEVELS))
    features = [
        Feature(f"c{i:02d}", "categorical", levels=levels,
                sources={"survey": Source(f"c{i:02d}")})
        for i in range(N_CAT)
    ] + [
        Feature(f"x{i:02d}", "numeric", sources={"survey": Source(f"x{i:02d}")})
        for i in range(N_NUM)
    ]  # fmt: skip
    spec = FeatureSpec(features, train_source="survey", frame_source="survey")
    data: dict[str, np.ndarray] = {}
    eta = np.full(n_rows, -2.0)
    beta = [-2.0]
    for i in range(N_CAT):
        codes = rng.integers(0, N_LEVELS, n_rows)
        effects = np.r_[0.0, rng.normal(0, 0.3, N_LEVELS - 1)]
        eta += effects[codes]
        beta.extend(effects[1:])
        data[f"c{i:02d}"] = np.asarray(levels, dtype=object)[codes]
    for i in range(N_NUM):
        x = rng.normal(0, 1, n_rows)
        b = rng.normal(0, 0.2)
        eta += b * x
        beta.append(b)
        data[f"x{i:02d}"] = x
    n_strata, psu_per_stratum = 400, 10
    psu = rng.integers(0, n_strata * psu_per_stratum, n_rows)
    data["stratum"] = (psu // psu_per_stratum).astype(str)
    data["psu"] = psu.astype(str)
    data["weight"] = rng.uniform(20, 200, n_rows)
    data["y"] = (rng.random(n_rows) < 1 / (1 + np.exp(-eta))).astype(np.int8)
    return pd.DataFrame(data), spec, np.asarray(beta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()

    survey, spec, beta = make_survey(args.rows, args.seed)
    kwargs = {"outcome": "y", "weight": "weight", "strata": "stratum", "psu": "psu"}
    clrisk.RiskModel(spec).fit(survey.iloc[:5000], **kwargs)  # warm imports

    totals = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        model = clrisk.RiskModel(spec).fit(survey, **kwargs)
        totals.append(time.perf_counter() - t0)

    # stage timings: the same steps fit() takes, called one by one
    t0 = time.perf_counter()
    coded = encode(spec, survey, source="survey", weight="weight")
    t1 = time.perf_counter()
    X = design_matrix(coded)
    y = survey["y"].to_numpy(float)
    t2 = time.perf_counter()
    sol = fit_binary(X, y, coded.weight)
    t3 = time.perf_counter()
    design_meat(X, (y - sol.p) * coded.weight, survey["stratum"].to_numpy(),
                survey["psu"].to_numpy())  # fmt: skip
    t4 = time.perf_counter()
    stages = {"encode_s": t1 - t0, "design_matrix_s": t2 - t1, "solve_s": t3 - t2,
              "design_se_s": t4 - t3}  # fmt: skip

    se = np.sqrt(np.diag(model.cov_))
    z = (np.r_[model.intercept_, model.coef_.ravel()] - beta) / se
    record = {
        "benchmark": "fit",
        **provenance(),
        "rows": args.rows,
        "model_columns": len(beta) - 1,
        "strata": int(survey["stratum"].nunique()),
        "psu": int(survey["psu"].nunique()),
        "fit_s_best": min(totals),
        "fit_s_all": totals,
        "newton_iterations": int(model.n_iter_),
        **stages,
        "max_abs_z_vs_truth": float(np.max(np.abs(z))),
        "share_truth_in_95ci": float(np.mean(np.abs(z) < 1.96)),
    }
    print(json.dumps(record, indent=2))
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
