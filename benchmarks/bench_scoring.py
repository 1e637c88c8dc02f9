"""Benchmark: the one-pass scoring kernel against the naive pipeline (issue 4).

Run from the repository root (about 3 minutes and 8 GiB at the default sizes)::

    python benchmarks/bench_scoring.py
    python benchmarks/bench_scoring.py --sizes 1000000 10000000 --naive-sizes 1000000

A synthetic coded frame of N children x 20 categorical features (2-6 levels,
int8 codes) + 5 numeric features (float64), in ~2,000 territories (sorted, as
censuses usually are), is scored with fixed coefficients. Measured in the same
run and on the same data:

(a) the machine's read bandwidth: ``numpy.sum`` over a 2 GiB float64 array;
(b) the naive pipeline a user would write: pandas DataFrame ->
    ``ColumnTransformer(OneHotEncoder)`` -> ``LogisticRegression.predict_proba``
    (its coefficients set to the same model) -> ``groupby(territory)``;
(c) clrisk's compiled kernel (``clrisk.kernel.accumulate_compiled``), in
    memory, in three variants: (i) risk and expected counts only, (ii) plus the
    per-territory feature sums of the factor decomposition (model-independent),
    (iii) plus the delta-method gradient sums, and (ii)+(iii) together (what
    ``clrisk.predict`` computes);
(d) the numpy reference kernel, for the speed-up of compiling;
(e) cold start: the first call in a fresh process with an empty numba cache
    (compilation) and with the cache filled (loading);
(f) at up to 10M rows, the counterfactual pass of the factor decomposition
    (``clrisk.scoring.shifted_risk``: every row's risk with its linear
    predictor shifted once per feature), numpy reference and compiled.

The grouping of features into joint codes is chosen by the kernel as in
``clrisk.predict`` (``clrisk.kernel.choose_cap``): 4,096 joint levels for (i), 64
for the variants with territory sums at these sizes.

Reported: rows/s, the ratio to the naive pipeline at the same size, and the
share of the bandwidth limit given the bytes each row actually reads. A
checksum of the territory results (expected counts) sits next to each timing:
equal checksums across methods show they computed the same thing. Results are
appended to ``benchmarks/results/scoring.jsonl``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from provenance import provenance

from clrisk import kernel
from clrisk.scoring import Scorer, StatsLayout, accumulate_reference, shifted_risk

RESULTS = Path(__file__).parent / "results" / "scoring.jsonl"
N_CAT, N_NUM, N_TERR = 20, 5, 2000


def make_frame(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Coded frame: codes (n, 20) int8 F-order, numerics (n, 5), sorted cells."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 7, N_CAT)
    codes = np.empty((n, N_CAT), dtype=np.int8, order="F")
    for j, L in enumerate(sizes):
        codes[:, j] = rng.integers(0, L, n, dtype=np.int8)
    numerics = np.empty((n, N_NUM), order="F")
    for q in range(N_NUM):
        numerics[:, q] = rng.normal(0, 1, n)
    cell = np.sort(rng.integers(0, N_TERR, n).astype(np.int32))
    return {"codes": codes, "numerics": numerics, "cell": cell, "sizes": sizes}


def make_scorer(sizes: np.ndarray) -> Scorer:
    rng = np.random.default_rng(1)
    luts = tuple(np.r_[0.0, rng.normal(0, 0.3, L - 1)] for L in sizes)
    return Scorer(-2.5, luts, rng.normal(0, 0.2, N_NUM), "logit")


def checksum(expected: np.ndarray) -> str:
    """Hash of the per-territory expected counts, rounded to 1e-6."""
    return hashlib.sha256(np.round(expected, 6).tobytes()).hexdigest()[:12]


def best_of(fn, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bandwidth() -> float:
    """Read bandwidth in bytes/s: numpy sum over a 2 GiB array (best of 3)."""
    x = np.ones(2**28)
    x.sum()
    t, _ = best_of(x.sum, 3)
    return x.nbytes / t


def naive(frame: dict[str, np.ndarray], scorer: Scorer) -> np.ndarray:
    """pandas -> OneHotEncoder -> LogisticRegression.predict_proba -> groupby."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    sizes = frame["sizes"]
    cat = [f"c{j}" for j in range(N_CAT)]
    num = [f"x{q}" for q in range(N_NUM)]
    df = pd.DataFrame({c: frame["codes"][:, j] for j, c in enumerate(cat)})
    for q, c in enumerate(num):
        df[c] = frame["numerics"][:, q]
    df["territory"] = frame["cell"]
    t0 = time.perf_counter()
    enc = ColumnTransformer(
        [
            (
                "cat",
                OneHotEncoder(categories=[list(range(L)) for L in sizes], drop="first"),
                cat,
            ),
            ("num", "passthrough", num),
        ]
    )
    X = enc.fit_transform(df)  # fitting the encoder = learning the known codes
    lr = LogisticRegression()
    lr.classes_ = np.array([0, 1])
    lr.coef_ = np.r_[
        np.concatenate([lut[1:] for lut in scorer.luts]), scorer.beta_numeric
    ][None, :]
    lr.intercept_ = np.array([scorer.intercept])
    df["p"] = lr.predict_proba(X)[:, 1]
    out = df.groupby("territory")["p"].agg(["size", "sum"])
    naive.seconds = time.perf_counter() - t0  # type: ignore[attr-defined]
    res = np.zeros(N_TERR)
    res[out.index.to_numpy()] = out["sum"].to_numpy()
    return res


def cold_start() -> dict[str, float]:
    """First-call seconds in fresh processes, with an empty numba cache and
    then with it filled: the one-pass kernel, then the counterfactual pass."""
    code = (
        "import time, numpy as np;t0=time.perf_counter();"
        "from clrisk import kernel;from clrisk.scoring import Scorer, StatsLayout;"
        "s=Scorer(0.1,(np.zeros(3),),np.zeros(1),'logit');"
        "c=np.zeros((10,1),np.int8,order='F');x=np.zeros((10,1),order='F');"
        "kernel.accumulate_compiled(s,c,x,np.zeros(10,np.int32),2,None,"
        "StatsLayout((3,),1));t1=time.perf_counter();"
        "kernel.shifted_risk_compiled(s,c,x,np.zeros(10,np.int64),np.zeros((1,2)),None);"
        "print(t1-t0,time.perf_counter()-t1)"
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for name in ("compile_s", "cached_s"):
            done = subprocess.run(
                [sys.executable, "-c", code],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            first, shifted = (float(v) for v in done.stdout.split())
            out[name] = first
            out[f"counterfactual_{name}"] = shifted
    return out


def counterfactual(
    frame: dict[str, np.ndarray], scorer: Scorer, repeats: int
) -> dict[str, dict[str, float]]:
    """The counterfactual pass of the factor decomposition (one shift of the
    linear predictor per territory and feature): numpy reference and compiled."""
    n = len(frame["cell"])
    shifts = np.random.default_rng(2).normal(0, 0.2, (N_TERR, N_CAT + N_NUM))
    cell = frame["cell"].astype(np.int64)
    args = (scorer, frame["codes"], frame["numerics"], cell, shifts, None)
    out = {}
    for name, kind, reps in (("numpy", "numpy", 1), ("compiled", "compiled", repeats)):
        t, sums = best_of(
            partial(shifted_risk, *args, kernel=kind, codes_checked=True), reps
        )
        out[f"counterfactual_{name}"] = {
            "seconds": t,
            "rows_per_s": n / t,
            "checksum": checksum(sums.ravel()),
        }
        print(f"{n:>11,} counterfactual, {name:9s} {n / t / 1e6:8.2f} M rows/s")
    if len({v["checksum"] for v in out.values()}) > 1:
        print("WARNING: the compiled and numpy counterfactual sums differ")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 50_000_000]
    )
    parser.add_argument(
        "--naive-sizes", type=int, nargs="+", default=[1_000_000, 10_000_000]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    if not kernel.available():
        sys.exit("numba is not installed: pip install 'clrisk[fast]'")

    bw = bandwidth()
    print(f"read bandwidth: {bw / 1e9:.1f} GB/s")
    record: dict[str, object] = {
        "benchmark": "scoring",
        **provenance(),
        "numba_threads": __import__("numba").get_num_threads(),
        "bandwidth_gb_s": bw / 1e9,
        "cold_start": cold_start(),
        "runs": [],
    }
    print(f"cold start: {record['cold_start']}")
    variants = {
        "i_risk": (False, False),
        "ii_risk+feature_sums": (True, False),
        "iii_risk+delta_sums": (False, True),
        "ii+iii_full": (True, True),
    }
    for n in args.sizes:
        frame = make_frame(n)
        scorer = make_scorer(frame["sizes"])
        layout = StatsLayout(tuple(int(s) for s in frame["sizes"]), N_NUM)
        row_bytes = frame["codes"].itemsize * N_CAT + 8 * N_NUM + 4
        call = (
            scorer,
            frame["codes"],
            frame["numerics"],
            frame["cell"],
            N_TERR,
            None,
            layout,
        )
        kernel.accumulate_compiled(
            *[a[:1000] if isinstance(a, np.ndarray) else a for a in call]
        )
        run: dict[str, object] = {"rows": n, "bytes_per_row": row_bytes}
        naive_s = None
        if n in args.naive_sizes:
            res = naive(frame, scorer)
            naive_s = naive.seconds  # type: ignore[attr-defined]
            run["naive"] = {
                "seconds": naive_s,
                "rows_per_s": n / naive_s,
                "checksum": checksum(res),
            }
            print(f"{n:>11,} naive pipeline        {n / naive_s / 1e6:8.2f} M rows/s")
        if n <= 10_000_000:
            t, out = best_of(partial(accumulate_reference, *call), 1)
            run["numpy_reference"] = {
                "seconds": t,
                "rows_per_s": n / t,
                "checksum": checksum(out[:, 2]),
            }
            print(f"{n:>11,} numpy reference       {n / t / 1e6:8.2f} M rows/s")
            run.update(counterfactual(frame, scorer, args.repeats))
        for name, blocks in variants.items():
            # the codes are level indices, as encode makes them for predict:
            # not checked again (as in predict's pass)
            t, out = best_of(
                partial(
                    kernel.accumulate_compiled, *call, blocks=blocks, codes_checked=True
                ),
                args.repeats,
            )
            entry = {
                "seconds": t,
                "rows_per_s": n / t,
                "share_of_bandwidth": n / t * row_bytes / bw,
                "checksum": checksum(out[:, 2]),
            }
            if naive_s is not None:
                entry["ratio_to_naive"] = naive_s / t
            run[name] = entry
            ratio = f"  {naive_s / t:7.0f}x naive" if naive_s else ""
            print(
                f"{n:>11,} compiled {name:22s} {n / t / 1e6:8.1f} M rows/s  "
                f"{100 * entry['share_of_bandwidth']:5.1f}% of bandwidth{ratio}"
            )
        record["runs"].append(run)  # type: ignore[union-attr]
        frame = call = None  # free the frame before the next size
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
