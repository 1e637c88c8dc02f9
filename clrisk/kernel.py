"""The compiled one-pass kernel (numba), behind the same call as the reference.

:func:`clrisk.scoring.accumulate` is the plain-numpy reference. This module
fuses the same work — table lookups, the link function and the per-cell sums —
into one multi-threaded loop over the rows: each thread takes a contiguous
range of rows and adds into its own accumulator (no locks, no atomics); the
accumulators are summed at the end. Each row's linear predictor is built in
registers from the column-major codes. (Building it feature by feature over
blocks of a few thousand rows was measured too: slower here, because every
feature then loads and stores the block's partial sums.) The compiled code is
cached on disk (numba's cache), so only the first call on a machine pays the
compilation.

numba is an optional dependency (``pip install "clrisk[fast]"``): without it,
:func:`available` is False and clrisk uses the reference kernel.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np

# numba is optional (the reference kernel works without it) and imported on
# the first compiled call, not with clrisk: it costs a fraction of a second.
# The kernel below reads `numba.prange` from this module's globals when it is
# compiled, after _compiled() has set the name.
numba: Any = None
_KERNEL: Any = None

__all__ = ["Blocks", "accumulate_compiled", "available"]

Blocks = tuple[bool, bool]  # (x block: Σw·x, g block: Σw·f·x)

_SQRT2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def available() -> bool:
    """Whether the compiled kernel can be used (numba is installed)."""
    return importlib.util.find_spec("numba") is not None


def _kernel_py(
    codes: np.ndarray,
    numerics: np.ndarray,
    cell: np.ndarray,
    weight: np.ndarray,
    has_weight: bool,
    intercept: float,
    lut: np.ndarray,
    lut_start: np.ndarray,
    beta_num: np.ndarray,
    probit: bool,
    n_cells: int,
    x_start: int,
    g_start: int,
    n_levels: int,
    width: int,
    do_x: bool,
    do_g: bool,
    n_threads: int,
) -> np.ndarray:  # pragma: no cover - compiled by numba; tested through it
    n, n_cat = codes.shape
    n_num = numerics.shape[1]
    acc = np.zeros((n_threads, n_cells, width))
    for t in numba.prange(n_threads):
        for r in range(t * n // n_threads, (t + 1) * n // n_threads):
            e = intercept
            for j in range(n_cat):
                e += lut[lut_start[j] + codes[r, j]]
            for q in range(n_num):
                e += beta_num[q] * numerics[r, q]
            if probit:
                p = 0.5 * math.erfc(-e / _SQRT2)
                f = math.exp(-0.5 * e * e) / _SQRT_2PI
            else:  # z / (1 + z)^2 keeps f accurate where p is close to 1
                z = math.exp(-e)
                p = 1.0 / (1.0 + z)
                f = z * p * p
            w = weight[r] if has_weight else 1.0
            wf = w * f
            c = cell[r]
            acc[t, c, 0] += 1.0
            acc[t, c, 1] += w
            acc[t, c, 2] += w * p
            acc[t, c, 3] += wf
            if do_x:
                for j in range(n_cat):
                    acc[t, c, x_start + lut_start[j] + codes[r, j]] += w
                for q in range(n_num):
                    acc[t, c, x_start + n_levels + q] += w * numerics[r, q]
            if do_g:
                for j in range(n_cat):
                    acc[t, c, g_start + lut_start[j] + codes[r, j]] += wf
                for q in range(n_num):
                    acc[t, c, g_start + n_levels + q] += wf * numerics[r, q]
    out = np.zeros((n_cells, width))
    for t in range(n_threads):
        out += acc[t]
    return out


def _compiled() -> Any:
    """The compiled kernel (numba imported and the function wrapped once)."""
    global numba, _KERNEL
    if _KERNEL is None:
        import numba as _numba

        numba = _numba
        _KERNEL = numba.njit(
            parallel=True, cache=True, nogil=True, error_model="numpy"
        )(_kernel_py)
    return _KERNEL


def accumulate_compiled(
    scorer: Any,
    codes: np.ndarray,
    numerics: np.ndarray,
    cell: np.ndarray,
    n_cells: int,
    weight: np.ndarray | None,
    layout: Any,
    *,
    blocks: Blocks = (True, True),
) -> np.ndarray:
    """The statistics of each cell, as :func:`clrisk.scoring.accumulate`.

    Parameters
    ----------
    scorer : Scorer
    codes : ndarray of shape (n_rows, n_categorical), integer
    numerics : ndarray of shape (n_rows, n_numeric), float
    cell : ndarray of shape (n_rows,), integer in ``0..n_cells-1``
    n_cells : int
    weight : ndarray of shape (n_rows,), optional
    layout : StatsLayout
    blocks : (bool, bool), default (True, True)
        Whether to fill the Σw·x block (model-independent territory means, for
        the factor decomposition) and the Σw·f·x block (delta-method
        gradients). Columns not filled are left at 0.

    Returns
    -------
    ndarray of shape (n_cells, layout.width), float64
    """
    if not available():
        raise RuntimeError("numba is not installed: use clrisk.scoring.accumulate.")
    kernel = _compiled()
    luts = scorer.luts
    lut = np.concatenate(luts) if luts else np.zeros(0)
    has_weight = weight is not None
    w = np.asarray(weight, dtype=np.float64) if has_weight else np.zeros(1)
    return kernel(
        codes,
        numerics,
        cell,
        w,
        has_weight,
        float(scorer.intercept),
        lut.astype(np.float64),
        layout.level_offsets.astype(np.int64),
        np.asarray(scorer.beta_numeric, dtype=np.float64),
        scorer.link == "probit",
        int(n_cells),
        int(layout.x.start),
        int(layout.g.start),
        int(sum(layout.level_sizes)),
        int(layout.width),
        bool(blocks[0]),
        bool(blocks[1]),
        int(numba.get_num_threads()),
    )
