"""The ``clrisk`` command line: a thin client of the public API.

A :class:`~clrisk.exceptions.ClriskError` becomes one line on stderr and exit
code 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

from clrisk.datasets import make_country
from clrisk.exceptions import ClriskError
from clrisk.model import RiskModel
from clrisk.prioritise import prioritise
from clrisk.projection import predict

__all__ = ["main"]

_EXAMPLES = """examples:
  clrisk demo                          # synthetic country, results in ./clrisk-demo
  clrisk demo --out results --seed 7   # another country, another folder
  clrisk demo --format json            # machine-readable summary on stdout
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except ClriskError as exc:
        print(f"clrisk: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clrisk",
        description="Child labour risk identification: where children are most at "
        "risk of child labour, and why.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(title="commands")
    demo = sub.add_parser(
        "demo",
        help="generate a synthetic country, fit, project, classify, prioritise",
        description="Run the whole CLRISK workflow on a synthetic country whose true "
        "risk is known, print a summary and write the results as CSV.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("clrisk-demo"),
        help="output folder (default: ./clrisk-demo)",
    )
    demo.add_argument(
        "--seed", type=int, default=2024, help="random seed (default 2024)"
    )
    demo.add_argument(
        "--territories",
        type=int,
        default=300,
        help="municipalities in the synthetic country (default 300)",
    )
    demo.add_argument(
        "--coverage",
        type=float,
        default=0.5,
        help="share of expected child labour the priority list must "
        "cover (default 0.5)",
    )
    demo.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="summary on stdout as text or JSON",
    )
    demo.set_defaults(run=_demo)
    return parser


def _demo(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    text = args.format == "text"

    def say(msg: str) -> None:
        if text:
            print(msg, flush=True)

    say(
        f"Generating a synthetic country ({args.territories} municipalities, seed "
        f"{args.seed})..."
    )
    c = make_country(n_territories=args.territories, random_state=args.seed)
    say(f"  survey: {len(c.survey):,} children; census: {len(c.census):,} children")
    model = RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    say(f"Fitted the survey-weighted logit: {model.diagnostics_.summary()}")
    risk = predict(model, c.census, **c.predict_kwargs, by="sex")
    plan = prioritise(risk, coverage=args.coverage)

    truth = risk.table.merge(c.truth.territories, on="territory", suffixes=("", "_t"))
    rho = float(spearmanr(truth["risk"], truth["true_risk"]).statistic)
    nat = risk.national().iloc[0]
    true_total = float(c.truth.territories["true_count"].sum())
    covered = float(
        (
            (truth["risk_low"] <= truth["true_risk"])
            & (truth["true_risk"] <= truth["risk_high"])
        ).mean()
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "territories.csv": risk.table,
        "priorities.csv": plan.ranking,
        "factors.csv": risk.factors.long(risk.table.set_index("territory")["risk"]),
        "regions.csv": risk.rollup(),
        "by_sex.csv": risk.breakdown("territory"),
        "levels.csv": risk.levels.breaks,
        "coefficients.csv": model.coef_table(),
        "targeting_curve.csv": plan.curve,
    }
    for name, table in files.items():
        table.to_csv(out / name, index=False, encoding="utf-8")
    elapsed = time.perf_counter() - t0
    summary: dict[str, Any] = {
        "national_risk_percent": float(nat["risk"]),
        "national_expected_count": float(nat["expected_count"]),
        "true_national_count": true_total,
        "count_error_percent": 100 * (float(nat["expected_count"]) / true_total - 1),
        "spearman_vs_true_risk": rho,
        "interval_coverage_of_true_risk": covered,
        "selected_territories": len(plan.selection),
        "covered_share": plan.covered_share,
        "output_folder": str(out),
        "files": sorted(files),
        "seconds": elapsed,
    }
    if not text:
        print(json.dumps(summary, indent=2))
        return 0
    print()
    print(risk.summary(n=10))
    print()
    print(plan.summary())
    print()
    print("How well the estimates match the known truth:")
    print(f"  Spearman correlation of territory risk with the true risk: {rho:.3f}")
    print(
        f"  national expected count {nat['expected_count']:,.0f} vs true "
        f"{true_total:,.0f} ({summary['count_error_percent']:+.1f}%)"
    )
    print(
        f"  95% intervals cover the true territory risk in {covered:.0%} of "
        "territories (the model has no territory effect: intervals reflect "
        "coefficient uncertainty only)"
    )
    print()
    print(f"Wrote {', '.join(sorted(files))} to {out}/ in {elapsed:.1f} s.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
