"""Benchmark: ``clrisk.predict`` streaming a large Parquet file (issue 4, part d).

Run from the repository root::

    python benchmarks/bench_stream.py                   # 50M rows (writes ~2.3 GB)
    python benchmarks/bench_stream.py --rows 5000000
    python benchmarks/bench_stream.py --required         # non-null columns

A Parquet file of N children x 20 categorical features (integer codes, 2-6
levels) + 5 numeric features + a text territory code (2,000 territories,
leading zeros) is written once to a temporary folder (row groups of 1M rows;
columns nullable as pandas writes them, or required with ``--required``);
a model with the same 25 features is fitted on a 200,000-row sample and saved
(in a process of its own). Then, for each ``--chunks`` size, in a fresh
process each run (so that peak memory is that of loading the model and the
pass alone), best of ``--repeats``:

- reading the file's batches as clrisk does and nothing else: the floor of
  the pass on this machine;
- the same pass as ``clrisk.predict`` (batches read ahead, validated and
  coded in a reused workspace, cells numbered for the whole pass, the
  compiled kernel's pass-wide sums) with the kernel computing (d) the risk
  and expected counts only, and (e) those plus the delta-method sums: what
  the file pass costs beyond reading it, sums by sums;
- ``clrisk.predict(model, path, territory="territory")`` end to end (reading,
  validating and coding each batch, the compiled kernel with the delta-method
  and factor sums, territory results), with its wall time and peak resident
  memory (``ru_maxrss``, and the same just before the pass);
- the same through the numpy reference kernel, when ``--reference`` is given.

Each run also records its CPU time (user + system, all threads): on a
machine shared with other work, wall times vary from run to run, CPU time
less.

Before the pass, each run calls ``clrisk.predict`` once on the file's first
1,000 rows: that first call loads the compiled kernel from numba's disk cache
(about 2 s here; its time is recorded as ``first_call_seconds``, and
``bench_scoring.py`` measures the cold compile), so the pass time is the pass.

A checksum of the territory expected counts is recorded with each timing.
Results are appended to ``benchmarks/results/stream.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from provenance import provenance

RESULTS = Path(__file__).parent / "results" / "stream.jsonl"
N_CAT, N_NUM, N_TERR = 20, 5, 2000
SIZES = np.random.default_rng(0).integers(2, 7, N_CAT)


def _table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {
        f"c{j}": rng.integers(0, L, n, dtype=np.int8) for j, L in enumerate(SIZES)
    }
    for q in range(N_NUM):
        data[f"x{q}"] = rng.normal(0, 1, n)
    terr = np.sort(rng.integers(0, N_TERR, n))
    data["territory"] = np.char.zfill((terr + 1).astype(str), 5).astype(object)
    return pd.DataFrame(data)


def _spec() -> object:
    from clrisk import Feature, FeatureSpec, Source

    feats = [
        Feature(
            f"c{j}",
            "categorical",
            levels=tuple(str(k) for k in range(L)),
            sources={"survey": Source(f"c{j}"), "census": Source(f"c{j}")},
        )
        for j, L in enumerate(SIZES)
    ] + [
        Feature(
            f"x{q}",
            "numeric",
            sources={"survey": Source(f"x{q}"), "census": Source(f"x{q}")},
        )
        for q in range(N_NUM)
    ]
    return FeatureSpec(feats, territory={"survey": "territory", "census": "territory"})


def write_file(
    path: Path, n: int, group: int = 1_000_000, required: bool = False
) -> None:
    """The frame as Parquet, row groups of `group` rows. Columns are
    nullable, as pandas writes them, unless `required` (no definition levels
    to decode)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for i, start in enumerate(range(0, n, group)):
        table = pa.Table.from_pandas(
            _table(min(group, n - start), 100 + i), preserve_index=False
        )
        if required:
            table = table.cast(
                pa.schema([f.with_nullable(False) for f in table.schema])
            )
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


FIT = """
import sys, numpy as np
sys.path.insert(0, {bench!r})
import bench_stream as b, clrisk
survey = b._table(200_000, 1)
rng = np.random.default_rng(2)
eta = -2 + 0.3 * (survey[[f"c{{j}}" for j in range(b.N_CAT)]].to_numpy() == 1).sum(1)
survey["y"] = (rng.random(len(survey)) < 1 / (1 + np.exp(-eta))).astype(int)
clrisk.RiskModel(b._spec()).fit(survey, outcome="y").save({model!r})
"""

RUN = """
import resource, time, hashlib, json, numpy as np
import clrisk

def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

from clrisk import kernel
import pyarrow.parquet as pq
model = clrisk.load_model({model!r})
# first call in the process, on 1,000 rows: loads the compiled kernel from
# numba's cache (cold start; timed apart from the pass)
head = next(pq.ParquetFile({path!r}).iter_batches(batch_size=1000)).to_pandas()
t0 = time.perf_counter()
clrisk.predict(model, head, territory="territory", kernel={kernel!r},
               counterfactual=False)
first_call = time.perf_counter() - t0
del head
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c0, t0 = cpu_seconds(), time.perf_counter()
risk = clrisk.predict(model, {path!r}, territory="territory", chunk_size={chunk},
                      kernel={kernel!r}, counterfactual=False)
t, c = time.perf_counter() - t0, cpu_seconds() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
e = np.round(risk.table["expected_count"].to_numpy(), 6)
print(json.dumps({{"seconds": t, "cpu_seconds": c, "first_call_seconds": first_call,
                  "peak_rss_mb": peak / 1024,
                  "rss_before_mb": base / 1024,
                  "rows": int(risk.quality.rows_used),
                  "checksum": hashlib.sha256(e.tobytes()).hexdigest()[:12]}}))
"""

# the pass of clrisk.predict over a file (projection._file_pieces, _Pass.run,
# PassTotals.add) with the kernel filling only the sums asked for
PASS = """
import resource, time, hashlib, json, numpy as np
from contextlib import closing
import clrisk
from clrisk import kernel, stream
from clrisk.features import Workspace, encode
from clrisk.territory import ModelView

def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

view = ModelView.from_model(clrisk.load_model({model!r}))
src = stream.open_frame({path!r})
columns = view.spec.required_columns("census") + ["territory"]

def one_pass(limit):
    acc = kernel.Accumulator(view.scorer, view.layout, blocks={blocks!r})
    space, ids, rows = Workspace(), {{}}, 0
    batches = src.batches(columns, {chunk}, ["territory"])
    with closing(stream.read_ahead(batches)) as ahead:  # the reader stops with us
        for offset, chunk in ahead:
            coded = encode(view.spec, chunk, source="census", territory="territory",
                           row_offset=offset, workspace=space)
            glob = np.fromiter(
                (ids.setdefault(k, len(ids)) for k in coded.territories),
                dtype=np.int64, count=len(coded.territories))
            acc.add(coded.code_columns, coded.numeric_columns, glob[coded.territory],
                    len(ids), None, codes_checked=True)
            rows += coded.n
            if rows >= limit:
                break
    order = np.argsort(np.array(list(ids), dtype=object))
    return rows, acc.result(len(ids))[order]

one_pass(1)  # loads the compiled kernel from numba's cache
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
c0, t0 = cpu_seconds(), time.perf_counter()
rows, sums = one_pass(float("inf"))
t, c = time.perf_counter() - t0, cpu_seconds() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
e = np.round(sums[:, 2], 6)
print(json.dumps({{"seconds": t, "cpu_seconds": c, "peak_rss_mb": peak / 1024,
                  "rss_before_mb": base / 1024, "rows": rows,
                  "checksum": hashlib.sha256(e.tobytes()).hexdigest()[:12]}}))
"""
PASSES = {"d_risk_only": (False, False), "e_risk+delta_sums": (False, True)}


def fit(model: Path) -> None:
    """Fit the model on a survey sample and save it (in its own process)."""
    code = FIT.format(bench=str(Path(__file__).parent), model=str(model))
    subprocess.run([sys.executable, "-c", code], check=True)


def run(path: Path, model: Path, chunk: int, kernel: str) -> dict[str, float]:
    code = RUN.format(path=str(path), model=str(model), chunk=chunk, kernel=kernel)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_pass(
    path: Path, model: Path, chunk: int, blocks: tuple[bool, bool]
) -> dict[str, float]:
    """The file pass with the kernel filling only `blocks` (fresh process)."""
    code = PASS.format(path=str(path), model=str(model), chunk=chunk, blocks=blocks)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_only(path: Path, chunk: int) -> float:
    """Seconds to read the file's batches as clrisk does, doing nothing else
    (the floor of the pass on this machine)."""
    code = (
        "import time, clrisk.stream as s\n"
        f"src = s.open_frame({str(path)!r})\n"
        "t = time.perf_counter()\n"
        f"for _ in src.batches(src.columns, {chunk}, ['territory']): pass\n"
        "print(time.perf_counter() - t)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def best(one_run: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The fastest of ``args.repeats`` runs, with every run's seconds."""
    runs = [one_run() for _ in range(args.repeats)]
    res = min(runs, key=lambda r: r["seconds"])
    return {
        **res,
        "all_seconds": [r["seconds"] for r in runs],
        "rows_per_s": args.rows / res["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument(
        "--chunks", type=int, nargs="+", default=[250_000, 500_000, 1_000_000]
    )
    parser.add_argument(
        "--file",
        type=Path,
        help="an existing frame file written by this benchmark (skips writing it)",
    )
    parser.add_argument(
        "--required",
        action="store_true",
        help="write the file with required (non-null) columns instead of nullable",
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or Path(tmp) / "frame.parquet"
        model = Path(tmp) / "model.json"
        import pyarrow.parquet as pq

        if args.file is None:
            write_file(path, args.rows, required=args.required)
        else:
            args.rows = pq.ParquetFile(path).metadata.num_rows
        fit(model)
        size_mb = path.stat().st_size / 2**20
        print(f"frame: {args.rows:,} rows, {size_mb:,.0f} MiB")
        record: dict[str, object] = {
            "benchmark": "stream",
            **provenance(),
            "rows": args.rows,
            "file_mib": size_mb,
            "required_columns": all(not f.nullable for f in pq.read_schema(path)),
        }
        for chunk in args.chunks:
            t_read = min(read_only(path, chunk) for _ in range(args.repeats))
            record[f"read_only_{chunk}"] = {"seconds": t_read}
            print(f"chunk {chunk:>9,} read only: {t_read:7.2f} s")
            for name, blocks in PASSES.items():
                res = best(partial(run_pass, path, model, chunk, blocks), args)
                record[f"{name}_{chunk}"] = res
                print(
                    f"chunk {chunk:>9,} pass {name:18s}: {res['seconds']:7.2f} s, "
                    f"CPU {res['cpu_seconds']:5.2f} s, peak RSS "
                    f"{res['peak_rss_mb']:,.0f} MB, checksum {res['checksum']}"
                )
            kernels = ["compiled", "numpy"] if args.reference else ["compiled"]
            for kernel in kernels:
                res = best(partial(run, path, model, chunk, kernel), args)
                record[f"{kernel}_{chunk}"] = res
                rate = args.rows / res["seconds"] / 1e6
                print(
                    f"chunk {chunk:>9,} {kernel:9s}: {res['seconds']:7.2f} s (best of "
                    f"{args.repeats}), {rate:6.2f} M rows/s, CPU "
                    f"{res['cpu_seconds']:5.2f} s, "
                    f"peak RSS {res['peak_rss_mb']:,.0f} MB (before the pass "
                    f"{res['rss_before_mb']:,.0f} MB), checksum {res['checksum']}; "
                    f"first call {res['first_call_seconds']:.2f} s"
                )
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
