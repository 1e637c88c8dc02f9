"""The compiled one-pass kernel (numba), behind the same call as the reference.

:func:`clrisk.scoring.accumulate` is the plain-numpy reference. This module
computes the same sums in one multi-threaded pass: each thread takes a
contiguous range of rows and adds into its own accumulator (no locks, no
atomics); the accumulators are summed at the end. The threads are plain
Python threads running compiled functions that release the GIL
(:func:`_in_threads`), not numba's parallel loops. Four things make it fast:

- **Joint codes.** Categorical features are packed into groups whose joint
  number of levels is at most ``cap`` (4,096 for the risk alone, 64 with the
  territory sums): ``sex`` (2) x ``area`` (2) x ``attends school`` (2) x
  ``age band`` (4) is one code in 0..31. One lookup in a table of the group's
  summed coefficients replaces a lookup per feature, and the territory sums of
  the factor decomposition and of the delta method are kept per joint code
  (one scatter per group, not per feature), then summed back to per-level
  totals after the pass (:meth:`Groups.marginals`).
- **Blocks of rows.** Each thread works on blocks of ``BLOCK`` rows: the joint
  codes, the linear predictor and the logistic function of a block are
  computed column by column in loops that the compiler turns into SIMD code.
  The exponential is evaluated in the loop itself (Cody–Waite reduction and a
  degree-13 polynomial, accurate to a few units in the last place) because a
  call to the C library's ``exp`` cannot be vectorised. The compiler may
  fuse a multiply and an add into one instruction (one rounding instead of
  two; no other fast-math liberty is taken), so the last bits of a sum can
  differ between machines with and without such an instruction.
- **Runs of one cell.** A census sorted by territory has long runs of rows in
  the same cell: each run within a block adds its totals once, rather than
  one update per row.
- **Columns where they lie.** Codes and numerics are read column by column
  through their addresses (:func:`_inputs`, :mod:`clrisk.columns`), so an
  input column that needs no coding (integer level indices, float64
  numerics) is scored without first being copied into one 2-D array.

The probit link keeps a per-row ``erfc`` (no vectorised form); all else is
shared. The counterfactual risks of the factor decomposition (the risk with
every row's linear predictor shifted by a per-cell amount, once per feature)
reuse the same blocks: :func:`shifted_risk_compiled` computes η once per row
and the link once per row and shift. The compiled code is cached on disk
(numba's cache), so only the first call on a machine pays the compilation.

numba is an optional dependency (``pip install "clrisk[fast]"``): without it,
:func:`available` is False and clrisk uses the reference kernel.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from clrisk.columns import Columns, check_columns, column_list
from clrisk.exceptions import InvalidParameterError

# numba is optional (the reference kernel works without it) and imported on
# the first compiled call, not with clrisk: it costs a fraction of a second.
# The compiled functions are set by _compiled().
numba: Any = None
_at: Any = None
_column: Any = None
_dot: Any = None
_add_run: Any = None
_add_pair_run: Any = None
_block: Any = None
_link_block: Any = None
_runs: Any = None
_work: Any = None
_rows: Any = None
_shifted_rows: Any = None
_marginals: Any = None

__all__ = [
    "ACC_BYTES",
    "BLOCK",
    "CAP",
    "CAP_SUMS",
    "Accumulator",
    "Blocks",
    "Groups",
    "accumulate_compiled",
    "available",
    "check_layout",
    "choose_cap",
    "shifted_risk_compiled",
]

Blocks = tuple[bool, bool]  # (x block: Σw·x, g block: Σw·f·x)
# the fitted model as the compiled code reads it (see _model): intercept,
# numeric coefficients, features in group order, their numbers of levels,
# start of each group among them, joint-code tables, start of each group's
# table, probit link
Model = tuple[
    float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool
]

BLOCK = 2048  # rows per block: the block's work arrays stay in the L2 cache
CAP = 4096  # largest joint number of levels of a group, for the lookups alone
CAP_SUMS = 64  # the same when the x or g sums are kept per joint code
_MAX_JOINT = 2**16  # joint codes are held as uint16 in the kernel
# per-thread sums of a pass (Accumulator) beyond which a pass sums each piece
# on its own (clrisk.scoring.PassTotals)
ACC_BYTES = 128 * 2**20

_SQRT2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # low 21 bits zero: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_MAX_A = 1400.0  # exp(-1400) is 0 in float64; keeps 2**-k within two factors
# 1/n! for n = 13..0 (Horner order) for exp(r), |r| <= ln2/2: error < 1e-17
_C = tuple(1.0 / math.factorial(n) for n in range(13, -1, -1))


def available() -> bool:
    """Whether the compiled kernel can be used (numba is installed)."""
    return importlib.util.find_spec("numba") is not None


@dataclass(frozen=True)
class Groups:
    """Categorical features packed into groups with joint codes.

    Attributes
    ----------
    members : tuple of tuple of int
        The features (indices into ``spec.categorical``) of each group, most
        significant first: the joint code of ``(a, b, c)`` is
        ``(code_a * L_b + code_b) * L_c + code_c``.
    sizes : tuple of int
        Number of levels of every feature.
    """

    members: tuple[tuple[int, ...], ...]
    sizes: tuple[int, ...]

    @classmethod
    def pack(cls, sizes: tuple[int, ...], cap: int) -> Groups:
        """Greedy packing, largest features first, joint size at most `cap`.

        A feature with more than `cap` levels forms a group of its own.
        """
        order = sorted(range(len(sizes)), key=lambda j: (-sizes[j], j))
        members: list[list[int]] = []
        joint: list[int] = []
        for j in order:
            L = sizes[j]
            for g, size in enumerate(joint):
                if size * L <= cap:
                    members[g].append(j)
                    joint[g] = size * L
                    break
            else:
                members.append([j])
                joint.append(L)
        return cls(tuple(tuple(m) for m in members), tuple(sizes))

    @property
    def joint_sizes(self) -> tuple[int, ...]:
        """Joint number of levels of each group."""
        return tuple(int(np.prod([self.sizes[j] for j in m])) for m in self.members)

    @property
    def offsets(self) -> np.ndarray:
        """Start of each group's joint codes, then the total (n_groups + 1)."""
        starts: np.ndarray = np.r_[0, np.cumsum(self.joint_sizes)]
        return starts.astype(np.int64)

    def tables(self, luts: tuple[np.ndarray, ...]) -> np.ndarray:
        """Summed coefficients of every joint code, groups concatenated."""
        out = [np.zeros(0)]
        for m in self.members:
            t = np.zeros(1)
            for j in m:
                t = np.add.outer(t, np.asarray(luts[j], np.float64)).ravel()
            out.append(t)
        return np.concatenate(out)

    def marginals(self, joint: np.ndarray) -> np.ndarray:
        """Per-level sums of every feature from per-joint-code sums.

        Parameters
        ----------
        joint : ndarray of shape (n_cells, offsets[-1])

        Returns
        -------
        ndarray of shape (n_cells, sum(sizes)), features in their own order

        Needs numba (compiled with the kernel).
        """
        starts = np.r_[0, np.cumsum(self.sizes)].astype(np.int64)
        out = np.zeros((joint.shape[0], int(starts[-1])))
        _compiled()  # the marginal sums are compiled with the kernel
        _marginals(np.ascontiguousarray(joint), self.level_columns(), out)
        return out

    def level_columns(self) -> np.ndarray:
        """Column of the per-level sums that each joint code adds to, for each
        member feature: shape (offsets[-1], largest group size), -1 padded."""
        starts = np.r_[0, np.cumsum(self.sizes)].astype(np.int64)
        width = max((len(m) for m in self.members), default=0)
        out = np.full((int(self.offsets[-1]), width), -1, dtype=np.int64)
        for m, a, b in zip(
            self.members, self.offsets[:-1], self.offsets[1:], strict=True
        ):
            digits = np.unravel_index(np.arange(b - a), [self.sizes[j] for j in m])
            for k, (j, level) in enumerate(zip(m, digits, strict=True)):
                out[a:b, k] = starts[j] + level
        return out


def _marginals_py(
    joint: np.ndarray, columns: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled by numba; tested through Groups
    """Add each joint code's sums to the per-level sums of its member features.

    Serial loops, not a matrix product: a BLAS call would leave its threads
    spinning against the kernel's (measured 2-5x slower per chunk).
    """
    for c in range(joint.shape[0]):
        for code in range(joint.shape[1]):
            v = joint[c, code]
            for k in range(columns.shape[1]):
                col = columns[code, k]
                if col >= 0:
                    out[c, col] += v


def _pointer_intrinsic() -> Any:
    """``_at(address, row, like)``: a pointer to element `row` of the column
    of `like`'s element type whose first element is at `address` (an
    integer). A numba intrinsic (one LLVM ``inttoptr`` and ``getelementptr``):
    it lets the compiled code read a list of columns, each where it lies,
    through one array of addresses."""
    from numba.core import types
    from numba.extending import intrinsic

    @intrinsic
    def _at(typingctx: Any, address: Any, row: Any, like: Any) -> Any:
        sig = types.CPointer(like.dtype)(address, row, like)  # type: ignore[no-untyped-call]

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            kind = context.get_value_type(signature.return_type)
            return builder.gep(builder.inttoptr(args[0], kind), [args[1]])

        return sig, codegen

    return _at


def _column_py(
    address: int, row: int, k: int, like: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled by numba; tested through the kernel
    """Rows ``row..row+k`` of the column at `address`, as an array of the
    element type of `like` (a view: nothing is copied)."""
    col: np.ndarray = numba.carray(_at(address, row, like), k)
    return col


def _dot_py(
    a: np.ndarray, b: np.ndarray, k: int
) -> float:  # pragma: no cover - compiled by numba; tested through the kernel
    """Σ a[i]·b[i] over i < k in eight lanes (SIMD; no serial chain of sums)."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    k8 = k - k % 8
    for i in range(0, k8, 8):
        s0 += a[i] * b[i]
        s1 += a[i + 1] * b[i + 1]
        s2 += a[i + 2] * b[i + 2]
        s3 += a[i + 3] * b[i + 3]
        s4 += a[i + 4] * b[i + 4]
        s5 += a[i + 5] * b[i + 5]
        s6 += a[i + 6] * b[i + 6]
        s7 += a[i + 7] * b[i + 7]
    for i in range(k8, k):
        s0 += a[i] * b[i]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


def _add_run_py(
    sums: np.ndarray,
    jc: np.ndarray,
    joff: np.ndarray,
    v: np.ndarray,
    num_at: np.ndarray,
    r0: int,
    i0: int,
    i1: int,
) -> None:  # pragma: no cover - compiled by numba; tested through the kernel
    """Add rows ``i0..i1`` of a block (one cell) to that cell's x or g sums.

    `sums` holds one entry per joint code of every group, then one per
    numeric; `v` is the row value added (w for the x block, w·f for g).
    """
    n_groups = joff.shape[0] - 1
    n_joint = joff[n_groups]
    # four groups per loop: four independent scatters per row keep the CPU
    # busy while one waits on its load (measured 1.15x one group per loop;
    # one loop over all groups per row was 1.5x slower)
    g = 0
    while g + 4 <= n_groups:
        ja, jb, jc2, jd = jc[g], jc[g + 1], jc[g + 2], jc[g + 3]
        ca = sums[joff[g] : joff[g + 1]]
        cb = sums[joff[g + 1] : joff[g + 2]]
        cc = sums[joff[g + 2] : joff[g + 3]]
        cd = sums[joff[g + 3] : joff[g + 4]]
        for i in range(i0, i1):
            vi = v[i]
            ca[ja[i]] += vi
            cb[jb[i]] += vi
            cc[jc2[i]] += vi
            cd[jd[i]] += vi
        g += 4
    while g < n_groups:
        jg = jc[g]
        cells = sums[joff[g] : joff[g + 1]]
        for i in range(i0, i1):
            cells[jg[i]] += v[i]
        g += 1
    for q in range(num_at.shape[0]):
        x = _column(num_at[q], r0 + i0, i1 - i0, v)
        sums[n_joint + q] += _dot(v[i0:i1], x, i1 - i0)


def _add_pair_run_py(
    sums: np.ndarray,
    jc: np.ndarray,
    joff: np.ndarray,
    v: np.ndarray,
    u: np.ndarray,
    num_at: np.ndarray,
    r0: int,
    i0: int,
    i1: int,
) -> None:  # pragma: no cover - compiled by numba; tested through the kernel
    """:func:`_add_run_py` for the x and g blocks at once: the two sums of a
    joint code sit side by side (``sums[2c]``: Σv, ``sums[2c + 1]``: Σu), so
    a row's two updates of a group touch one cache line (measured 15-35%
    faster than two separate blocks)."""
    n_groups = joff.shape[0] - 1
    n_joint = joff[n_groups]
    # two groups (four scatters) per loop, as in _add_run_py (measured 1.1-1.3x
    # one group per loop; four groups per loop was no faster)
    g = 0
    while g + 2 <= n_groups:
        ja, jb = jc[g], jc[g + 1]
        ca = sums[2 * joff[g] : 2 * joff[g + 1]]
        cb = sums[2 * joff[g + 1] : 2 * joff[g + 2]]
        for i in range(i0, i1):
            vi, ui = v[i], u[i]
            a = 2 * np.intp(ja[i])
            b = 2 * np.intp(jb[i])
            ca[a] += vi
            ca[a + 1] += ui
            cb[b] += vi
            cb[b + 1] += ui
        g += 2
    if g < n_groups:
        jg = jc[g]
        cells = sums[2 * joff[g] : 2 * joff[g + 1]]
        for i in range(i0, i1):
            j = 2 * np.intp(jg[i])
            cells[j] += v[i]
            cells[j + 1] += u[i]
    for q in range(num_at.shape[0]):
        x = _column(num_at[q], r0 + i0, i1 - i0, v)
        sums[2 * (n_joint + q)] += _dot(v[i0:i1], x, i1 - i0)
        sums[2 * (n_joint + q) + 1] += _dot(u[i0:i1], x, i1 - i0)


def _block_py(
    code_at: np.ndarray,
    code_like: np.ndarray,
    num_at: np.ndarray,
    weight: np.ndarray,
    has_weight: bool,
    r0: int,
    k: int,
    model: Model,
    jc: np.ndarray,
    eta: np.ndarray,
    ww: np.ndarray,
) -> bool:  # pragma: no cover - compiled by numba; tested through the kernel
    """The joint codes `jc`, linear predictor `eta` and weights `ww` (1
    without weights) of rows ``r0..r0+k``. The columns of codes and numerics
    are at the addresses `code_at` and `num_at` (codes of the type of
    `code_like`, numerics float64: see :func:`_inputs`). False (`eta` not
    made) when a joint code lies beyond its group."""
    intercept, beta_num, feat, feat_levels, gstart, jlut, joff, _ = model
    if has_weight:
        wr = weight[r0 : r0 + k]
        for i in range(k):
            ww[i] = wr[i]
    else:
        for i in range(k):
            ww[i] = 1.0
    n_num = num_at.shape[0]
    n_groups = gstart.shape[0] - 1
    # joint code of each group (SIMD over rows), three features per loop
    # where it can: fewer passes over jg and more columns streamed at once
    # (measured 7% less time per row than one feature per loop)
    for g in range(n_groups):
        jg = jc[g]
        col = _column(code_at[feat[gstart[g]]], r0, k, code_like)
        for i in range(k):
            jg[i] = np.uint16(col[i])
        m, end = gstart[g] + 1, gstart[g + 1]
        while m + 3 <= end:
            ca = _column(code_at[feat[m]], r0, k, code_like)
            cb = _column(code_at[feat[m + 1]], r0, k, code_like)
            cc = _column(code_at[feat[m + 2]], r0, k, code_like)
            La = np.uint16(feat_levels[m])
            Lb = np.uint16(feat_levels[m + 1])
            Lc = np.uint16(feat_levels[m + 2])
            for i in range(k):
                j = np.uint16(jg[i] * La) + np.uint16(ca[i])
                j = np.uint16(j * Lb) + np.uint16(cb[i])
                jg[i] = np.uint16(j * Lc) + np.uint16(cc[i])
            m += 3
        while m < end:
            col = _column(code_at[feat[m]], r0, k, code_like)
            L = np.uint16(feat_levels[m])
            for i in range(k):
                jg[i] = np.uint16(jg[i] * L) + np.uint16(col[i])
            m += 1
    # linear predictor: four numeric columns per loop where it can (the
    # terms still added one by one, in column order)
    for i in range(k):
        eta[i] = intercept
    q = 0
    while q + 4 <= n_num:
        b0, b1, b2, b3 = beta_num[q], beta_num[q + 1], beta_num[q + 2], beta_num[q + 3]
        x0 = _column(num_at[q], r0, k, eta)
        x1 = _column(num_at[q + 1], r0, k, eta)
        x2 = _column(num_at[q + 2], r0, k, eta)
        x3 = _column(num_at[q + 3], r0, k, eta)
        for i in range(k):
            eta[i] = (((eta[i] + b0 * x0[i]) + b1 * x1[i]) + b2 * x2[i]) + b3 * x3[i]
        q += 4
    while q < n_num:
        b = beta_num[q]
        x = _column(num_at[q], r0, k, eta)
        for i in range(k):
            eta[i] += b * x[i]
        q += 1
    # the joint codes index the tables and the sums: one beyond its group
    # (a code outside its levels: memory changed after the codes were
    # checked) stops the pass here rather than read or write out of bounds
    for g in range(n_groups):
        jg = jc[g]
        top = np.uint16(0)
        for i in range(k):
            top = max(top, jg[i])
        if top >= joff[g + 1] - joff[g]:
            return False
    for g in range(n_groups):
        jg = jc[g]
        t_g = jlut[joff[g] : joff[g + 1]]
        for i in range(k):
            eta[i] += t_g[jg[i]]
    return True


def _link_block_py(
    eta: np.ndarray,
    ww: np.ndarray,
    k: int,
    probit: bool,
    density: bool,
    wp: np.ndarray,
    wf: np.ndarray,
    poly: np.ndarray,
    s1: np.ndarray,
    s2: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba; tested through the kernel
    """``wp = w·p`` and, when `density`, ``wf = w·f`` (f = dp/dη) for the
    first `k` rows of a block; `poly`, `s1`, `s2` are work arrays."""
    if probit:
        for i in range(k):
            wp[i] = ww[i] * 0.5 * math.erfc(-eta[i] / _SQRT2)
        if density:
            for i in range(k):
                e = eta[i]
                wf[i] = ww[i] * math.exp(-0.5 * e * e) / _SQRT_2PI
        return
    # z = exp(-|eta|) = 2**-n * exp(r), r = n*ln2 - |eta|
    for i in range(k):
        a = min(abs(eta[i]), _MAX_A)
        kf = np.floor(a * _LOG2E + 0.5)
        r = (kf * _LN2_HI - a) + kf * _LN2_LO
        y = _C[0]
        y = y * r + _C[1]
        y = y * r + _C[2]
        y = y * r + _C[3]
        y = y * r + _C[4]
        y = y * r + _C[5]
        y = y * r + _C[6]
        y = y * r + _C[7]
        y = y * r + _C[8]
        y = y * r + _C[9]
        y = y * r + _C[10]
        y = y * r + _C[11]
        y = y * r + _C[12]
        y = y * r + _C[13]
        poly[i] = y
        ki = np.int64(kf)
        h = ki >> 1
        s1[i] = (1023 - h) << 52  # 2**-h and 2**-(n-h): both normal
        s2[i] = (1023 - (ki - h)) << 52
    f1 = s1.view(np.float64)
    f2 = s2.view(np.float64)
    if density:
        for i in range(k):
            z = poly[i] * f1[i] * f2[i]
            u = 1.0 / (1.0 + z)  # the larger of p and 1 - p
            p = u if eta[i] >= 0.0 else z * u
            wp[i] = ww[i] * p
            wf[i] = ww[i] * (z * u * u)
    else:
        for i in range(k):
            z = poly[i] * f1[i] * f2[i]
            u = 1.0 / (1.0 + z)
            wp[i] = ww[i] * (u if eta[i] >= 0.0 else z * u)


def _work_py(
    n_groups: int, block: int
) -> tuple[np.ndarray, ...]:  # pragma: no cover - compiled by numba
    """One thread's work arrays for blocks of rows: joint codes, then five
    float arrays (η, w, w·p, w·f or another row value, the exponential's
    polynomial), the exponential's two scale factors (as int64 bit patterns),
    and ones."""
    return (
        np.zeros((max(n_groups, 1), block), dtype=np.uint16),
        np.empty(block),
        np.empty(block),
        np.empty(block),
        np.empty(block),
        np.empty(block),
        np.empty(block, dtype=np.int64),
        np.empty(block, dtype=np.int64),
        np.ones(block),
    )


def _runs_py(
    cb: np.ndarray, k: int, starts: np.ndarray
) -> int:  # pragma: no cover - compiled by numba; tested through the kernel
    """Starts of the runs of equal cells among the first `k` rows, then `k`:
    returns the number of runs."""
    n_runs = 0
    i0 = 0
    while i0 < k:
        starts[n_runs] = i0
        n_runs += 1
        c = cb[i0]
        i0 += 1
        while i0 < k and cb[i0] == c:
            i0 += 1
    starts[n_runs] = k
    return n_runs


def _rows_py(
    code_at: np.ndarray,
    code_like: np.ndarray,
    num_at: np.ndarray,
    cell: np.ndarray,
    weight: np.ndarray,
    has_weight: bool,
    model: Model,
    acc: np.ndarray,
    do_x: bool,
    do_g: bool,
    lo: int,
    hi: int,
    block: int,
    status: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba; tested through the kernel
    """Rows ``lo..hi`` added to one thread's sums `acc` (n_cells, width);
    ``status[0] = 1`` and a stop at a code beyond its levels."""
    gstart, joff, probit = model[4], model[6], model[7]
    n_num = num_at.shape[0]
    n_groups = gstart.shape[0] - 1
    n_joint = joff[n_groups]
    xs = 4
    gs = xs + (n_joint + n_num) * do_x
    width = acc.shape[1]
    jc, eta, ww, wp, wf, poly, s1, s2, one = _work(n_groups, block)
    for r0 in range(lo, hi, block):
        k = min(block, hi - r0)
        if not _block(
            code_at, code_like, num_at, weight, has_weight, r0, k, model, jc, eta, ww
        ):
            status[0] = 1
            return
        # probability p and density f = dp/deta, weighted
        _link_block(eta, ww, k, probit, True, wp, wf, poly, s1, s2)
        # accumulate run by run: rows of one cell add their totals once (runs
        # found here rather than by _runs: measured 5-10% faster)
        cb = cell[r0 : r0 + k]
        i0 = 0
        while i0 < k:
            c = cb[i0]
            i1 = i0 + 1
            while i1 < k and cb[i1] == c:
                i1 += 1
            m = i1 - i0
            row = acc[c]
            row[0] += m
            row[1] += _dot(ww[i0:i1], one, m) if has_weight else m
            row[2] += _dot(wp[i0:i1], one, m)
            row[3] += _dot(wf[i0:i1], one, m)
            if do_x and do_g:  # both blocks: x and g sums side by side
                _add_pair_run(row[xs:width], jc, joff, ww, wf, num_at, r0, i0, i1)
            elif do_x:
                _add_run(row[xs:gs], jc, joff, ww, num_at, r0, i0, i1)
            elif do_g:
                _add_run(row[gs:width], jc, joff, wf, num_at, r0, i0, i1)
            i0 = i1


def _shifted_rows_py(
    code_at: np.ndarray,
    code_like: np.ndarray,
    num_at: np.ndarray,
    cell: np.ndarray,
    weight: np.ndarray,
    has_weight: bool,
    model: Model,
    shifts_t: np.ndarray,
    acc: np.ndarray,
    lo: int,
    hi: int,
    block: int,
    status: np.ndarray,
) -> None:  # pragma: no cover - compiled by numba; tested through it
    """Rows ``lo..hi``: ``acc[c, j] += w·F(η - shifts_t[j, c])`` for every
    shift j (one thread's sums, shape (n_cells, n_shifts)); ``status[0] =
    1`` and a stop at a code beyond its levels."""
    gstart, probit = model[4], model[7]
    n_groups = gstart.shape[0] - 1
    jc, eta, ww, wp, moved, poly, s1, s2, one = _work(n_groups, block)
    starts = np.empty(block + 1, dtype=np.int64)
    for r0 in range(lo, hi, block):
        k = min(block, hi - r0)
        if not _block(
            code_at, code_like, num_at, weight, has_weight, r0, k, model, jc, eta, ww
        ):
            status[0] = 1
            return
        cb = cell[r0 : r0 + k]
        n_runs = _runs(cb, k, starts)
        for j in range(shifts_t.shape[0]):
            shift = shifts_t[j]
            for i in range(k):
                moved[i] = eta[i] - shift[cb[i]]
            _link_block(moved, ww, k, probit, False, wp, wp, poly, s1, s2)
            for run in range(n_runs):
                i0, i1 = starts[run], starts[run + 1]
                acc[cb[i0], j] += _dot(wp[i0:i1], one, i1 - i0)


def _compiled() -> None:
    """Import numba and compile (or load from its cache) the kernel, once."""
    global numba, _at, _column, _dot, _add_run, _add_pair_run, _marginals
    global _block, _link_block, _runs, _work, _rows, _shifted_rows
    if _rows is None:
        import numba as _numba

        numba = _numba
        _at = _pointer_intrinsic()
        # "contract" is the only fast-math flag: a·b + c may be computed
        # with one rounding (fused multiply-add), never reordered; the
        # exponential's polynomial and the linear predictor take half the
        # instructions (the risk alone at 50M rows: about 1.2x faster)
        jit = numba.njit(
            cache=True, nogil=True, error_model="numpy", fastmath={"contract"}
        )
        _column = jit(_column_py)
        _dot = jit(_dot_py)
        _add_run = jit(_add_run_py)
        _add_pair_run = jit(_add_pair_run_py)
        _marginals = jit(_marginals_py)
        _block = jit(_block_py)
        _link_block = jit(_link_block_py)
        _runs = jit(_runs_py)
        _work = jit(_work_py)
        _shifted_rows = jit(_shifted_rows_py)
        _rows = jit(_rows_py)


_POOL: tuple[ThreadPoolExecutor, int] | None = None  # the pool and its size
_POOL_LOCK = threading.Lock()


def _threads() -> int:
    """Threads of a pass: numba's setting (``NUMBA_NUM_THREADS``,
    ``numba.set_num_threads``), by default the number of CPUs."""
    return int(numba.get_num_threads())


def _in_threads(
    rows: Any,
    n_rows: int,
    n_threads: int,
    args: Any,
    min_rows: int = 4 * BLOCK,
    keep: Any = None,
) -> None:
    """Run ``rows(*args(t, lo, hi))`` for thread t = 0..n_threads-1 on
    contiguous ranges of rows, each in its own thread (the calling one and a
    small pool), and wait for all.

    The compiled functions release the GIL, so the threads run in parallel;
    each writes only its own sums. Plain threads rather than numba's parallel
    loops: OpenMP's workers spin for milliseconds after each loop, which on a
    streamed file took about 10% of the CPU from the reader between batches,
    and a parallel loop takes several seconds more to compile. A few rows run
    in the calling thread alone (``args(t, lo, hi)`` is then called for t = 0
    with all rows).

    Each thread holds `keep` (the columns the compiled code reads through
    their addresses) until its rows are done: a wait cut short (Ctrl-C) can
    then not free them while a thread still reads them.
    """
    global _POOL
    if n_threads <= 1 or n_rows < min_rows:
        rows(*args(0, 0, n_rows))
        return
    with _POOL_LOCK:
        if _POOL is None or _POOL[1] < n_threads - 1:
            pool = ThreadPoolExecutor(n_threads - 1, thread_name_prefix="clrisk-kernel")
            _POOL = (pool, n_threads - 1)
        pool = _POOL[0]
    bounds = [t * n_rows // n_threads for t in range(n_threads + 1)]
    others = [
        pool.submit(_holding, keep, rows, *args(t, bounds[t], bounds[t + 1]))
        for t in range(1, n_threads)
    ]
    try:
        rows(*args(0, bounds[0], bounds[1]))
    finally:
        for future in others:
            future.result()


def check_layout(scorer: Any, layout: Any) -> None:
    """Refuse a layout of sums that does not fit the model: the compiled
    code reads the model's tables and coefficients by the layout's sizes."""
    sizes = tuple(len(lut) for lut in scorer.luts)
    if tuple(layout.level_sizes) != sizes or int(layout.n_numeric) != len(
        scorer.beta_numeric
    ):
        raise InvalidParameterError(
            f"The layout (levels {tuple(layout.level_sizes)}, "
            f"{int(layout.n_numeric)} numerics) does not fit the model (levels "
            f"{sizes}, {len(scorer.beta_numeric)} numerics)."
        )


def _check_status(status: np.ndarray) -> None:
    """Refuse the result of a pass that stopped at a code beyond its levels
    (its sums are incomplete)."""
    if status.any():
        raise InvalidParameterError(
            "A code lies outside its feature's levels (were the codes changed "
            "while they were read?); the pass stopped and gave no result."
        )


def _holding(keep: Any, rows: Any, *args: Any) -> None:
    """``rows(*args)``, with `keep` referenced until it returns."""
    rows(*args)


def _model(scorer: Any, groups: Groups) -> Model:
    """The fitted model for the compiled code, features packed in `groups`."""
    feat = np.array([j for m in groups.members for j in m], dtype=np.int64)
    sizes = np.asarray(groups.sizes, dtype=np.int64)
    bounds = np.cumsum([0, *[len(m) for m in groups.members]]).astype(np.int64)
    return (
        float(scorer.intercept),
        np.asarray(scorer.beta_numeric, dtype=np.float64),
        feat,
        sizes[feat],
        bounds,
        groups.tables(tuple(scorer.luts)),
        groups.offsets,
        scorer.link == "probit",
    )


def _groups(sizes: tuple[int, ...], cap: int) -> Groups:
    """:meth:`Groups.pack`, refusing joint codes beyond the kernel's uint16."""
    groups = Groups.pack(sizes, cap)
    if max(groups.joint_sizes, default=0) > _MAX_JOINT:
        raise InvalidParameterError(
            f"A group of features has more than {_MAX_JOINT:,} joint levels "
            f"(cap {cap}, level sizes {sizes}); use a smaller cap or the numpy "
            "kernel."
        )
    return groups


def _inputs(
    codes: Columns,
    numerics: Columns,
    cell: np.ndarray,
    n_cells: int,
    weight: np.ndarray | None,
    sizes: tuple[int, ...],
    n_numeric: int,
    codes_checked: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Check the rows and lay them out for the compiled code.

    The compiled code trusts its inputs: one column of codes per feature of
    the model (`sizes` levels each) and one of numerics per coefficient
    (`n_numeric`), codes in ``0..L-1`` (checked unless `codes_checked`),
    one length for every row array, and cell numbers in ``0..n_cells-1``.
    It reads the columns of codes and numerics where they lie, through their
    addresses.

    Returns
    -------
    code_at, code_like, num_at, columns
        The address of each column of codes, an empty array of the codes'
        type, the address of each column of numerics, and the columns (as
        given where they are contiguous and of one type, else copies), which
        must stay referenced while the compiled code reads them.
    """
    code_cols = column_list(codes)
    for c in code_cols:
        if c.dtype.kind not in "iub":
            raise InvalidParameterError(f"Codes must be integers; got type {c.dtype}.")
    kind = np.result_type(*code_cols) if code_cols else np.dtype(np.int8)
    if kind.kind not in "iu":  # booleans; or int64 with uint64 (float64)
        kind = np.dtype(np.int8 if kind.kind == "b" else np.int64)
    code_cols = [np.ascontiguousarray(c, dtype=kind) for c in code_cols]
    num_cols = [
        np.ascontiguousarray(c, dtype=np.float64) for c in column_list(numerics)
    ]
    columns = code_cols + num_cols
    if any(c.ndim != 1 for c in columns):
        raise InvalidParameterError("Each column of codes and numerics must be 1-D.")
    lengths = {len(c) for c in columns} | {len(cell)}
    if isinstance(codes, np.ndarray):  # rows without categorical features
        lengths.add(len(codes))
    if isinstance(numerics, np.ndarray):
        lengths.add(len(numerics))
    if weight is not None:
        lengths.add(len(weight))
    if len(lengths) > 1:
        raise InvalidParameterError(
            f"codes, numerics, cells and weights must have one length each row; "
            f"got lengths {sorted(lengths)}."
        )
    if len(cell) and (int(cell.min()) < 0 or int(cell.max()) >= n_cells):
        raise InvalidParameterError(
            f"Cell numbers must be in 0..{n_cells - 1}; got "
            f"{int(cell.min())}..{int(cell.max())}."
        )
    check_columns(code_cols, num_cols, sizes, n_numeric, codes_checked)

    def at(cols: list[np.ndarray]) -> np.ndarray:
        return np.array([c.ctypes.data for c in cols], dtype=np.int64)

    return at(code_cols), np.empty(0, dtype=kind), at(num_cols), columns


def _writable_weight(weight: np.ndarray | None) -> np.ndarray:
    """The weights as a writable float64 array (a placeholder when None): numba
    compiles read-only arrays (zero-copy from Arrow, pandas' copy-on-write)
    apart."""
    if weight is None:
        return np.zeros(1)
    return np.require(weight, dtype=np.float64, requirements=["W"])


def shifted_risk_compiled(
    scorer: Any,
    codes: Columns,
    numerics: Columns,
    cell: np.ndarray,
    shifts: np.ndarray,
    weight: np.ndarray | None,
    *,
    codes_checked: bool = False,
) -> np.ndarray:
    """Σ w·F(η - shift) per cell for each column of `shifts`, as
    :func:`clrisk.scoring.shifted_risk` (the counterfactual risks of the
    factor decomposition), in one multi-threaded pass: η is computed once per
    row and the link evaluated in SIMD blocks for every shift.

    Parameters
    ----------
    scorer : Scorer
    codes : ndarray of shape (n_rows, n_categorical), integer, or its columns
    numerics : ndarray of shape (n_rows, n_numeric), float64, or its columns
    cell : ndarray of shape (n_rows,), integer in ``0..n_cells-1``
    shifts : ndarray of shape (n_cells, n_shifts)
    weight : ndarray of shape (n_rows,), optional
    codes_checked : bool, default False
        Whether every code is known to be a level index (as
        :func:`clrisk.features.encode` makes them): skips checking it.

    Returns
    -------
    ndarray of shape (n_cells, n_shifts)
    """
    _compiled()
    n_cells, n_shifts = shifts.shape
    sizes = tuple(len(lut) for lut in scorer.luts)
    n_num = len(scorer.beta_numeric)
    # the columns stay referenced until the compiled code has read them
    code_at, code_like, num_at, columns = _inputs(
        codes, numerics, cell, n_cells, weight, sizes, n_num, codes_checked
    )
    model = _model(scorer, _groups(sizes, CAP))
    n_threads = _threads()
    acc = np.zeros((n_threads, n_cells, n_shifts))
    cell = np.asarray(cell, dtype=np.int64)
    w = _writable_weight(weight)
    shifts_t = np.ascontiguousarray(shifts.T, dtype=np.float64)

    status = np.zeros((n_threads, 1), dtype=np.int64)

    def args(t: int, lo: int, hi: int) -> tuple[Any, ...]:
        rows = (code_at, code_like, num_at, cell, w, weight is not None, model)
        return (*rows, shifts_t, acc[t], lo, hi, BLOCK, status[t])

    _in_threads(_shifted_rows, len(cell), n_threads, args, keep=columns)
    _check_status(status)
    return np.asarray(acc.sum(axis=0))


def choose_cap(
    layout: Any, n_rows: int, n_cells: int, n_threads: int, blocks: Blocks
) -> int:
    """The largest joint size whose per-thread sums stay small.

    Without the x and g blocks the groups only shorten the lookups: `CAP`.
    With them, at most `CAP_SUMS` (measured faster than 256: one cell's sums
    stay in the L1 cache), and the per-joint-code sums take
    ``n_threads * n_cells * width`` doubles; a cap is kept while that stays
    within half the rows (so that zeroing and adding the sums never outweighs
    the pass) or within the size of the per-level sums themselves.
    """
    if not (blocks[0] or blocks[1]):
        return CAP
    n_blocks = int(blocks[0]) + int(blocks[1])
    plain = n_threads * n_cells * (4 + n_blocks * layout.n_x)
    for cap in (CAP_SUMS, 16, 4):
        groups = Groups.pack(tuple(layout.level_sizes), cap)
        joint = int(groups.offsets[-1]) + layout.n_numeric
        if n_threads * n_cells * (4 + n_blocks * joint) <= max(n_rows // 2, plain):
            return cap
    return 1


def accumulate_compiled(
    scorer: Any,
    codes: Columns,
    numerics: Columns,
    cell: np.ndarray,
    n_cells: int,
    weight: np.ndarray | None,
    layout: Any,
    *,
    blocks: Blocks = (True, True),
    cap: int | None = None,
    codes_checked: bool = False,
) -> np.ndarray:
    """The statistics of each cell, as :func:`clrisk.scoring.accumulate`.

    Parameters
    ----------
    scorer : Scorer
    codes : ndarray of shape (n_rows, n_categorical), integer, or its columns
    numerics : ndarray of shape (n_rows, n_numeric), float, or its columns
    cell : ndarray of shape (n_rows,), integer in ``0..n_cells-1``
    n_cells : int
    weight : ndarray of shape (n_rows,), optional
    layout : StatsLayout
    blocks : (bool, bool), default (True, True)
        Whether to fill the Σw·x block (model-independent territory means, for
        the factor decomposition) and the Σw·f·x block (delta-method
        gradients). Columns not filled are left at 0.
    cap : int, optional
        Largest joint number of levels of a group of features (1: no groups).
        By default chosen by :func:`choose_cap`; the result does not depend on
        it beyond rounding.
    codes_checked : bool, default False
        Whether every code is known to be a level index (as
        :func:`clrisk.features.encode` makes them): skips checking it.

    Returns
    -------
    ndarray of shape (n_cells, layout.width), float64
    """
    acc = Accumulator(scorer, layout, blocks=blocks, cap=cap, n_rows=len(cell))
    acc.add(codes, numerics, cell, n_cells, weight, codes_checked=codes_checked)
    return acc.result(n_cells)


class Accumulator:
    """The compiled kernel's sums over a whole pass, added piece by piece.

    Each thread keeps its own sums per cell and joint code; they are zeroed
    once and summed back to per-level totals once, in :meth:`result` (done
    for every piece, that work outweighs the pass itself: a million rows in
    2,000 cells). The caller numbers the cells for the whole pass; their
    number may grow from one piece to the next.

    Parameters
    ----------
    scorer : Scorer
    layout : StatsLayout
    blocks : (bool, bool), default (True, True)
        As in :func:`accumulate_compiled`.
    cap : int, optional
        Largest joint size of a group of features; by default the largest
        whose per-thread sums fit `ACC_BYTES` (or, given `n_rows`, chosen by
        :func:`choose_cap` for a single call). When more cells arrive than fit,
        the sums so far are summed back to per-level totals and a smaller cap
        takes over.
    n_rows : int, optional
        Rows of a single call (see `cap`).
    """

    def __init__(
        self,
        scorer: Any,
        layout: Any,
        *,
        blocks: Blocks = (True, True),
        cap: int | None = None,
        n_rows: int | None = None,
    ) -> None:
        if not available():
            raise RuntimeError("numba is not installed: use clrisk.scoring.accumulate.")
        check_layout(scorer, layout)
        _compiled()
        self.scorer = scorer
        self.layout = layout
        self.blocks = blocks
        self.n_threads = _threads()
        self._fixed_cap = cap
        self._n_rows = n_rows
        self._groups: Groups | None = None
        self._cap: int  # the cap of _groups, set with them (_reserve)
        self._acc = np.zeros((self.n_threads, 0, 0))
        self._done = np.zeros((0, layout.width))  # per-level sums set aside
        self._widths: dict[int, int] = {}  # cap -> _width(cap)

    def fits(self, n_cells: int) -> bool:
        """Whether the per-thread sums of `n_cells` cells fit `ACC_BYTES`
        (always, for a single call or a fixed cap)."""
        if self._n_rows is not None or self._fixed_cap is not None:
            return True
        width = self._width(self._cap_for(n_cells))
        return 8 * self.n_threads * n_cells * width <= ACC_BYTES

    def add(
        self,
        codes: Columns,
        numerics: Columns,
        cell: np.ndarray,
        n_cells: int,
        weight: np.ndarray | None,
        *,
        codes_checked: bool = False,
    ) -> None:
        """Add rows (cells numbered in ``0..n_cells-1`` for the whole pass);
        codes and numerics as 2-D arrays or their columns (`codes_checked`:
        as in :func:`accumulate_compiled`)."""
        layout = self.layout
        # the columns stay referenced until the compiled code has read them
        code_at, code_like, num_at, columns = _inputs(
            codes,
            numerics,
            cell,
            n_cells,
            weight,
            tuple(layout.level_sizes),
            int(layout.n_numeric),
            codes_checked,
        )
        if self._groups is None or n_cells > self._acc.shape[1]:
            self._reserve(n_cells)
        w, model, acc = _writable_weight(weight), self._model, self._acc
        do_x, do_g = bool(self.blocks[0]), bool(self.blocks[1])

        status = np.zeros((self.n_threads, 1), dtype=np.int64)

        def args(t: int, lo: int, hi: int) -> tuple[Any, ...]:
            rows = (code_at, code_like, num_at, cell, w, weight is not None, model)
            return (*rows, acc[t], do_x, do_g, lo, hi, BLOCK, status[t])

        _in_threads(_rows, len(cell), self.n_threads, args, keep=columns)
        _check_status(status)

    def result(self, n_cells: int) -> np.ndarray:
        """The sums of cells ``0..n_cells-1``: shape (n_cells, layout.width)."""
        out = np.zeros((n_cells, self.layout.width))
        if self._groups is not None:
            part = self._per_level(self._acc[:, :n_cells].sum(axis=0))
            out[: len(part)] += part
        out[: len(self._done)] += self._done[:n_cells]
        return out

    # ------------------------------------------------------------- private
    def _width(self, cap: int) -> int:
        """Columns of the per-thread sums with groups packed to `cap`
        (asked for every piece: worked out once per cap)."""
        if cap not in self._widths:
            groups = Groups.pack(tuple(self.layout.level_sizes), cap)
            n_x = int(groups.offsets[-1]) + int(self.layout.n_numeric)
            self._widths[cap] = (
                4 + n_x * int(self.blocks[0]) + n_x * int(self.blocks[1])
            )
        return self._widths[cap]

    def _cap_for(self, n_cells: int) -> int:
        if self._fixed_cap is not None:
            return self._fixed_cap
        if self._n_rows is not None:
            return choose_cap(
                self.layout, self._n_rows, n_cells, self.n_threads, self.blocks
            )
        if not (self.blocks[0] or self.blocks[1]):
            return CAP
        for cap in (CAP_SUMS, 16, 4):
            if 8 * self.n_threads * n_cells * self._width(cap) <= ACC_BYTES:
                return cap
        return 1

    def _reserve(self, n_cells: int) -> None:
        """Room for `n_cells` cells (a smaller cap when they no longer fit)."""
        cap = self._cap_for(n_cells)
        if self._groups is not None and cap != self._cap:
            self._set_aside()
        if self._groups is None:
            groups = _groups(tuple(self.layout.level_sizes), cap)
            self._cap, self._groups = cap, groups
            self._model = _model(self.scorer, groups)
            self._acc = np.zeros((self.n_threads, 0, self._width(cap)))
        old = self._acc.shape[1]
        if n_cells > old:
            room = ACC_BYTES // (8 * self.n_threads * self._acc.shape[2])
            size = max(n_cells, min(2 * old, 4 * n_cells, room))
            grown = np.zeros((self.n_threads, size, self._acc.shape[2]))
            grown[:, :old] = self._acc
            self._acc = grown

    def _set_aside(self) -> None:
        """Sum the joint-code sums so far back to per-level totals."""
        part = self._per_level(self._acc.sum(axis=0))
        done = np.zeros((max(len(part), len(self._done)), self.layout.width))
        done[: len(part)] += part
        done[: len(self._done)] += self._done
        self._done, self._groups = done, None

    def _per_level(self, sums: np.ndarray) -> np.ndarray:
        """Internal (joint-code) sums of cells to the layout's per-level sums."""
        assert self._groups is not None
        groups, layout = self._groups, self.layout
        n_joint = int(groups.offsets[-1])
        n_num = layout.n_numeric
        out = np.zeros((len(sums), layout.width))
        out[:, :4] = sums[:, :4]
        n_x = n_joint + n_num
        if self.blocks[0] and self.blocks[1]:  # side by side (_add_pair_run)
            parts = {"x": sums[:, 4::2], "g": sums[:, 5::2]}
        elif self.blocks[0] or self.blocks[1]:
            parts = {"x" if self.blocks[0] else "g": sums[:, 4 : 4 + n_x]}
        else:
            parts = {}
        for name, block in (("x", layout.x), ("g", layout.g)):
            if name not in parts:
                continue
            internal = parts[name]
            n_levels = block.start + sum(layout.level_sizes)
            out[:, block.start : n_levels] = groups.marginals(internal[:, :n_joint])
            out[:, n_levels : block.stop] = internal[:, n_joint:n_x]
        return out
