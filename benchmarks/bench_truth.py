"""Benchmark: how well clrisk recovers the known truth of synthetic countries (issue 3).

Run from the repository root::

    python benchmarks/bench_truth.py               # 20 seeds of the default country
    python benchmarks/bench_truth.py --seeds 5

For each seed, the default synthetic country (300 municipalities, ~800k
children, survey of ~20k) is generated; the survey-weighted logit is fitted on
the survey and projected onto the census; the territory estimates are compared
with the generator's truth:

- Spearman correlation of estimated and true territory risk;
- error of the national expected count against the true count;
- coverage of the delta-method 95% intervals: the share of territories whose
  true risk lies inside ``[risk_low, risk_high]`` (the count intervals are the
  same intervals times the number of children), and whether the national
  interval holds the true national count;
- the share of true coefficients inside their design-based 95% intervals.

The model has no territory random effect while the generator has one (sd 0.3 on
the log-odds scale), and the intervals carry only the uncertainty of the
coefficients, so territory coverage is expected to fall well short of 95%: this
benchmark says by how much. Results are appended to
``benchmarks/results/truth.jsonl`` (one line per run, with a per-seed list).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from provenance import provenance
from scipy.stats import spearmanr

import clrisk
from clrisk.datasets import TRUE_COEFFICIENTS

RESULTS = Path(__file__).parent / "results" / "truth.jsonl"


def one_seed(seed: int) -> dict[str, float]:
    """Truth-recovery figures of the default country drawn with `seed`."""
    c = clrisk.make_country(random_state=seed)
    model = clrisk.RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    risk = clrisk.predict(model, c.census, **c.predict_kwargs)
    m = risk.table.merge(c.truth.territories, on="territory", suffixes=("", "_true"))
    nat = risk.national().iloc[0]
    total = float(nat["expected_count"])
    true_total = float(m["true_count"].sum())
    coef = model.coef_table().set_index("term")
    true = c.truth.coefficients.reindex(coef.index)
    inside = (coef["ci_low"] <= true) & (true <= coef["ci_high"])
    return {
        "seed": seed,
        "spearman": float(spearmanr(m["risk"], m["true_risk"]).statistic),
        "count_error_percent": 100 * (total / true_total - 1),
        "risk_interval_coverage": float(
            (
                (m["risk_low"] <= m["true_risk"]) & (m["true_risk"] <= m["risk_high"])
            ).mean()
        ),
        "national_interval_covers_truth": float(
            nat["expected_low"] <= true_total <= nat["expected_high"]
        ),
        "mean_risk_interval_width_points": float(
            (m["risk_high"] - m["risk_low"]).mean()
        ),
        "mean_abs_risk_error_points": float((m["risk"] - m["true_risk"]).abs().mean()),
        "coefficient_coverage": float(inside[true.notna()].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    rows = [one_seed(s) for s in range(args.first_seed, args.first_seed + args.seeds)]
    keys = [k for k in rows[0] if k != "seed"]
    summary = {
        k: {"mean": float(np.mean([r[k] for r in rows])),
            "min": float(np.min([r[k] for r in rows])),
            "max": float(np.max([r[k] for r in rows]))}
        for k in keys
    }  # fmt: skip
    record = {
        "benchmark": "truth",
        **provenance(),
        "seeds": args.seeds,
        "true_coefficients": len(TRUE_COEFFICIENTS),
        "seconds": time.perf_counter() - t0,
        "summary": summary,
        "per_seed": rows,
    }
    for k, v in summary.items():
        print(
            f"{k:34s} mean {v['mean']:8.3f}   min {v['min']:8.3f}   max {v['max']:8.3f}"
        )
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
