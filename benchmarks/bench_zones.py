"""Benchmark: contiguity and intervention zones for a municipality's census blocks.

Run from the repository root::

    python benchmarks/bench_zones.py                 # 50,000 blocks, 40 points each
    python benchmarks/bench_zones.py --side 100      # 10,000 blocks

The blocks are squares on a grid whose sides are cut into several points (as
digitised boundaries are), so the number of neighbours of each block is known:
8 (queen) or 4 (rook) inside the grid. What is timed is what a user calls:
``contiguity(boundaries, rule=...)`` and ``intervention_zones(table, pairs)``
(best of `--repeats`). The pair counts are checked against the grid's, so the
timing is of a correct result. The record is appended to
``benchmarks/results/zones.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import provenance  # benchmarks/ is the script's folder

from clrisk.report import Boundaries
from clrisk.zones import contiguity, intervention_zones


def _blocks(rows: int, cols: int, per_side: int) -> Boundaries:
    t = np.linspace(0.0, 1.0, per_side, endpoint=False)
    polygons = {}
    for i in range(rows):
        for j in range(cols):
            x, y = float(j), float(i)
            ring = np.concatenate(
                [
                    np.c_[x + t, np.full(per_side, y)],
                    np.c_[np.full(per_side, x + 1), y + t],
                    np.c_[x + 1 - t, np.full(per_side, y + 1)],
                    np.c_[np.full(per_side, x), y + 1 - t],
                    [[x, y]],
                ]
            )
            polygons[f"{i:04d}{j:04d}"] = ((ring,),)
    return Boundaries(polygons, dict.fromkeys(polygons, ""), "block", "grid", False)


def _best(repeats: int, call: object) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = call()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=250, help="grid rows")
    parser.add_argument("--per-side", type=int, default=10, help="points per side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    rows, cols = args.side, args.side * 4 // 5
    bounds = _blocks(rows, cols, args.per_side)
    n = rows * cols
    record: dict[str, object] = {
        **provenance(),
        "blocks": n,
        "points": n * 4 * args.per_side,
    }
    expected = {
        "rook": rows * (cols - 1) + (rows - 1) * cols,
        "queen": rows * (cols - 1) + (rows - 1) * cols + 2 * (rows - 1) * (cols - 1),
    }
    pairs = pd.DataFrame()
    for rule in ("queen", "rook"):
        seconds, pairs = _best(args.repeats, lambda r=rule: contiguity(bounds, rule=r))
        assert len(pairs) == expected[rule], (rule, len(pairs), expected[rule])
        record[f"contiguity_{rule}_s"] = round(seconds, 3)
        print(f"contiguity ({rule}): {len(pairs):,} pairs in {seconds:.2f} s")
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "territory": bounds.codes,
            "n_children": 100,
            "risk": rng.uniform(0, 30, n),
        }
    )
    table["expected_count"] = table["risk"]
    table["level"] = np.where(table["risk"] > 20, "high", "low")
    seconds, zones = _best(args.repeats, lambda: intervention_zones(table, pairs))
    record["zones_s"] = round(seconds, 3)
    record["zones"] = len(zones.zones)  # type: ignore[attr-defined]
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"intervention_zones: {record['zones']:,} zones in {seconds:.2f} s")
    print(f"peak RSS {record['peak_rss_mb']} MB")
    if not args.no_save:
        out = Path(__file__).parent / "results" / "zones.jsonl"
        with out.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(f"appended to {out}")


if __name__ == "__main__":
    main()
