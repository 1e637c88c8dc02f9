"""Policy scenarios: what a change to children's circumstances would achieve.

:func:`simulate` scores the frame twice in the same pass — as it is, and with
the changes applied to the coded features — and reports, per territory and
nationally, the change in the expected number of children in child labour
with a delta-method interval: how many children a policy is expected to keep
out of child labour, and where.

A :class:`Change` sets a feature to a level (``set="yes"``), sets or shifts a
numeric feature (``set=0.8``, ``shift=-1``), or raises the share of children
at a level to a target (``share=0.9`` with ``set="yes"``: in each territory,
the children not yet at that level move with probability ``q_t = (share −
s_t)/(1 − s_t)``, s_t the territory's current share; the result is the
expectation over who moves). A change may be limited to some territories and
to children with given levels of other features (``where={"rural": "yes"}``).
Numeric values are in the feature's coded units (after the spec's ``scale``).

The model is a model of association: a scenario says what the fitted
relationships imply, not what a programme would cause.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.stats as st

from clrisk.columns import as_matrix
from clrisk.exceptions import CoverageWarning, InvalidParameterError
from clrisk.features import CodedFrame, Policy, Workspace
from clrisk.projection import Pieces, _file_pieces, _Pass, _pieces
from clrisk.quality import DataQuality
from clrisk.spec import FeatureSpec
from clrisk.stream import is_file_source, open_frame
from clrisk.territory import ModelView

if TYPE_CHECKING:
    from clrisk.model import RiskModel

__all__ = ["Change", "Scenario", "simulate"]


@dataclass(frozen=True)
class Change:
    """One change to the children's features.

    Parameters
    ----------
    feature : str
        A feature of the model's specification.
    set : str or float, optional
        The level (binary/categorical) or value (numeric) to set.
    shift : float, optional
        Added to a numeric feature.
    share : float, optional
        With `set` (a level): raise the share of children at that level to
        this value in each territory (in expectation).
    territories : sequence of str, optional
        Only children of these territories (codes as text).
    where : mapping of str to str, optional
        Only children with these levels of other features.
    """

    feature: str
    set: str | float | None = None
    shift: float | None = None
    share: float | None = None
    territories: Sequence[str] | None = None
    where: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """A short text, e.g. ``attends_school = yes (rural = yes)``."""
        what = (
            f"share of {self.feature} = {self.set} raised to {self.share:.0%}"
            if self.share is not None
            else f"{self.feature} + {self.shift:g}"
            if self.shift is not None
            else f"{self.feature} = {self.set}"
        )
        scope = [f"{k} = {v}" for k, v in self.where.items()]
        if self.territories is not None:
            scope.append(f"{len(self.territories)} territories")
        return what + (f" ({', '.join(scope)})" if scope else "")


@dataclass(frozen=True, repr=False)
class Scenario:
    """The effect of a set of changes, per territory and nationally.

    Attributes
    ----------
    table : DataFrame
        One row per territory: ``territory``, ``n_children``,
        ``expected_count`` (as is), ``scenario_count``, ``change`` (scenario −
        as is; negative = fewer children in child labour), ``change_low``,
        ``change_high``, ``change_se``, ``risk`` and ``scenario_risk`` (%).
    national : DataFrame
        The same for the whole frame (one row).
    changes : tuple of Change
    alpha : float
    quality : DataQuality
        Rows read, scored and rejected (with ``on_invalid="drop"``), by reason.
    """

    table: pd.DataFrame
    national: pd.DataFrame
    changes: tuple[Change, ...]
    alpha: float
    quality: DataQuality = field(default_factory=DataQuality)

    def __repr__(self) -> str:
        return (
            f"Scenario({len(self.changes)} changes, {len(self.table)} territories, "
            f"national change {self.national['change'].iloc[0]:+,.0f})"
        )

    def summary(self, n: int = 10) -> str:
        """The national effect and the `n` territories with the largest ones."""
        nat = self.national.iloc[0]
        head = [
            "Scenario: " + "; ".join(c.describe() for c in self.changes),
            f"Children in child labour: {nat['expected_count']:,.0f} as is, "
            f"{nat['scenario_count']:,.0f} in the scenario: change "
            f"{nat['change']:+,.0f} [{nat['change_low']:+,.0f}, "
            f"{nat['change_high']:+,.0f}] ({100 * (1 - self.alpha):.0f}% interval)",
            "",
        ]
        top = self.table.reindex(
            self.table["change"].abs().sort_values(ascending=False).index
        ).head(n)
        cols = ["territory", "expected_count", "scenario_count", "change"]
        text: str = top[cols].to_string(index=False, float_format=lambda v: f"{v:,.1f}")
        return "\n".join(head) + text


def simulate(
    model: RiskModel,
    frame: pd.DataFrame | Iterable[pd.DataFrame] | Any,
    changes: Change | Mapping[str, Any] | Sequence[Change | Mapping[str, Any]],
    *,
    territory: str | None = None,
    weight: str | None = None,
    indicators: pd.DataFrame | None = None,
    source: str | None = None,
    on_invalid: Policy = "error",
    chunk_size: int = 500_000,
    alpha: float = 0.05,
    kernel: str = "auto",
    indicator_territory: str | None = None,
) -> Scenario:
    """The change in expected child labour if `changes` were applied.

    Parameters
    ----------
    model : RiskModel
        A fitted, specification-driven model.
    frame : DataFrame, iterable of DataFrame, or path
        The projection frame, as for :func:`clrisk.predict`.
    changes : Change, dict, or sequence of Change or dict
        Applied one after the other, in order: a change's ``where=`` sees the
        features as the earlier changes left them (after "every child attends
        school", a transfer ``where={"attends_school": "yes"}`` reaches every
        child). A dict is ``Change(**dict)``. A ``share`` change must be the
        only one.
    territory, weight, indicators, source, on_invalid, chunk_size, alpha, kernel,
    indicator_territory
        As for :func:`clrisk.predict`.

    Returns
    -------
    Scenario
    """
    if not hasattr(model, "params_") or model.spec is None:
        raise InvalidParameterError("simulate needs a fitted RiskModel with a spec.")
    if not 0 < alpha < 1:
        raise InvalidParameterError(f"alpha must be in (0, 1); got {alpha!r}.")
    view = ModelView.from_model(model)
    todo = _changes(changes)
    if not todo:
        raise InvalidParameterError("Give at least one change.")
    for c in todo:
        _check_change(c, view.spec)
    if len(todo) > 1 and any(c.share is not None for c in todo):
        raise InvalidParameterError(
            "A 'share' change must be simulated alone (its effect is an average "
            "over who moves); run the other changes in a separate scenario."
        )
    ind = indicators if indicators is not None else model.indicator_table()
    pass_ = _Pass(
        view, view.spec, source, territory, ind, weight, on_invalid, [], None, kernel,
        indicator_territory=indicator_territory,
    )  # fmt: skip
    if is_file_source(frame):
        src = open_frame(frame)
        pass_.source = pass_.source or view.spec.detect_source(
            src.columns, prefer=view.spec.frame_source
        )
        # the columns to read need the territory column now, as in predict
        pass_.territory = pass_.territory or view.spec.territory.get(pass_.source)
        pieces: Pieces = _file_pieces(src, pass_, chunk_size)
    else:
        pieces = _pieces(frame, chunk_size)

    # the frame as it is and as changed, each summed per territory for the
    # whole pass (memory follows the territories, not the pieces)
    base_totals, moved_totals = pass_.totals(), pass_.totals()
    share_of: dict[str, np.ndarray] = {}  # for a share= change
    space = Workspace()  # each piece is used before the next is coded
    quality = DataQuality()
    with closing(pieces) as rows:  # an error here stops a file's reader
        for offset, chunk, where in rows:
            _, coded = pass_.prepare(chunk, offset, where, space)
            quality = quality + coded.quality
            if coded.n == 0:
                continue
            assert coded.territory is not None
            keys = pd.DataFrame({"territory": coded.territories})
            cell, row_weight = coded.territory, coded.weight
            base_totals.add(
                keys, cell, coded.code_columns, coded.numeric_columns, row_weight,
                codes_checked=True,  # made by encode: level indices
            )  # fmt: skip
            codes, numerics, selected = _apply(coded, todo, view.spec)
            moved_totals.add(
                keys, cell, codes, numerics, row_weight,
                codes_checked=True,  # encode's codes, changed to level indices
            )  # fmt: skip
            if todo[0].share is not None:
                share = _share_sums(coded, todo[0], view.spec, selected)
                for t, sums in zip(coded.territories, share, strict=True):
                    share_of[t] = share_of.get(t, 0.0) + sums
    if not len(base_totals):
        raise InvalidParameterError("No row of the frame could be scored.")
    base, moved = base_totals.stats(), moved_totals.stats()
    index = pd.Index(base.keys["territory"], dtype=object)
    share = np.array([share_of.get(t, np.zeros(2)) for t in index]).reshape(-1, 2)
    _check_territories(todo, index)
    q = _move_probability(todo[0], share)
    result = _scenario(view, index, base.sums, moved.sums, q, todo, alpha)
    return replace(result, quality=quality)


# --------------------------------------------------------------------- private
_KEYS = ("feature", "set", "shift", "share", "territories", "where")


def _changes(changes: Any) -> tuple[Change, ...]:
    """The changes as a tuple of Change (one Change or dict may come alone)."""
    if isinstance(changes, Change | Mapping):
        changes = [changes]
    if isinstance(changes, str) or not isinstance(changes, Iterable):
        raise InvalidParameterError(
            "The 'changes' parameter of simulate must be a Change, a dict or a list "
            f"of them; got {type(changes).__name__}."
        )
    out = []
    for c in changes:
        if isinstance(c, Mapping):
            unknown = sorted(str(k) for k in c if k not in _KEYS)
            if unknown or "feature" not in c:
                raise InvalidParameterError(
                    f"A change given as a dict takes the keys {list(_KEYS)} "
                    f"('feature' required); got {sorted(map(str, c))}."
                )
            c = Change(**c)
        if not isinstance(c, Change):
            raise InvalidParameterError(
                f"Each change must be a Change or a dict; got {type(c).__name__}."
            )
        if isinstance(c.territories, str):
            raise InvalidParameterError(
                f"Change of '{c.feature}': territories= takes a list of codes; got "
                f"the text {c.territories!r} (write [{c.territories!r}])."
            )
        if not isinstance(c.where, Mapping):
            raise InvalidParameterError(
                f"Change of '{c.feature}': where= takes a dict of feature to level; "
                f"got {type(c.where).__name__}."
            )
        out.append(c)
    return tuple(out)


def _check_change(c: Change, spec: FeatureSpec) -> None:
    try:
        feat = spec.feature(c.feature)
    except Exception:
        raise InvalidParameterError(
            f"Change of '{c.feature}': no such feature; the features are "
            f"{spec.columns and [f.name for f in spec.features]}."
        ) from None
    given = [k for k in ("set", "shift") if getattr(c, k) is not None]
    if len(given) != 1:
        raise InvalidParameterError(
            f"Change of '{c.feature}': give exactly one of set= or shift=."
        )
    if feat.kind == "numeric":
        if c.share is not None:
            raise InvalidParameterError(
                f"share= needs a level; '{c.feature}' is numeric."
            )
        value = c.set if c.set is not None else c.shift
        try:
            ok = not isinstance(value, str | bool | np.bool_) and bool(
                np.isfinite(float(value))  # type: ignore[arg-type]
            )
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidParameterError(
                f"Change of numeric '{c.feature}': set=/shift= must be a number."
            )
    else:
        if c.shift is not None:
            raise InvalidParameterError(
                f"Change of '{c.feature}': shift= needs a numeric feature; "
                f"'{c.feature}' is {feat.kind}: use set= one of {list(feat.levels)}."
            )
        if str(c.set) not in feat.levels:
            raise InvalidParameterError(
                f"Change of '{c.feature}': set= must be one of its levels "
                f"{list(feat.levels)}; got {c.set!r}."
            )
        if c.share is not None and not 0 <= c.share <= 1:
            raise InvalidParameterError(f"share= must be in [0, 1]; got {c.share!r}.")
    for name, level in c.where.items():
        try:
            wf = spec.feature(name)
        except Exception:
            raise InvalidParameterError(f"where= names no feature '{name}'.") from None
        if wf.kind == "numeric" or str(level) not in wf.levels:
            raise InvalidParameterError(
                f"where={{'{name}': {level!r}}} must name a level of a binary or "
                f"categorical feature ({list(wf.levels)})."
            )


def _check_territories(changes: tuple[Change, ...], seen: pd.Index) -> None:
    """Territories named by a change must be in the frame: none is an error,
    some missing a warning (a code typo would otherwise give a zero effect)."""
    for c in changes:
        if c.territories is None:
            continue
        wanted = sorted({str(t) for t in c.territories})
        missing = [t for t in wanted if t not in seen]
        if len(missing) == len(wanted):
            raise InvalidParameterError(
                f"Change of '{c.feature}': none of its territories {wanted[:5]} is "
                "in the frame; check the codes (text, with leading zeros)."
            )
        if missing:
            warnings.warn(
                f"Change of '{c.feature}': {len(missing)} of its territories are not "
                f"in the frame (e.g. {missing[:5]}); they are left out. Codes are "
                "text: check leading zeros ('05001', not '5001').",
                CoverageWarning,
                stacklevel=3,
            )


def _selected(
    coded: CodedFrame, c: Change, spec: FeatureSpec, codes: np.ndarray
) -> np.ndarray:
    """Rows the change applies to; `where=` is read in `codes` (the features
    as the earlier changes left them)."""
    cat = {f.name: j for j, f in enumerate(spec.categorical)}
    mask = np.ones(coded.n, dtype=bool)
    for name, level in c.where.items():
        idx = spec.feature(name).levels.index(str(level))
        mask &= codes[:, cat[name]] == idx
    if c.territories is not None:
        wanted = {str(t) for t in c.territories}
        in_chunk = np.array([t in wanted for t in coded.territories], dtype=bool)
        assert coded.territory is not None
        mask &= in_chunk[coded.territory]
    return mask


def _apply(
    coded: CodedFrame, changes: tuple[Change, ...], spec: FeatureSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes and numerics with the changes applied one after the other; rows of
    the first change."""
    # new arrays (not the coded frame's own, which the changes must not touch)
    codes = as_matrix(coded.code_columns, coded.n)
    numerics = as_matrix(coded.numeric_columns, coded.n, np.float64)
    cat = {f.name: j for j, f in enumerate(spec.categorical)}
    num = {f.name: q for q, f in enumerate(spec.numeric + spec.territory_features)}
    first = None
    for c in changes:
        rows = _selected(coded, c, spec, codes)
        first = rows if first is None else first
        feat = spec.feature(c.feature)
        if feat.kind != "numeric":
            codes[rows, cat[c.feature]] = feat.levels.index(str(c.set))
        elif c.set is not None:
            numerics[rows, num[c.feature]] = float(c.set)
        else:
            numerics[rows, num[c.feature]] += float(c.shift)  # type: ignore[arg-type]
    assert first is not None
    return codes, numerics, first


def _share_sums(
    coded: CodedFrame, c: Change, spec: FeatureSpec, rows: np.ndarray
) -> np.ndarray:
    """Per territory: weight of the selected children, and of those at the level."""
    assert coded.territory is not None
    T = len(coded.territories)
    w = coded.weight if coded.weight is not None else np.ones(coded.n)
    out = np.zeros((T, 2))
    if c.share is None:
        return out
    cat = {f.name: j for j, f in enumerate(spec.categorical)}
    at = coded.code_columns[cat[c.feature]] == spec.feature(c.feature).levels.index(
        str(c.set)
    )
    out[:, 0] = np.bincount(coded.territory, weights=w * rows, minlength=T)
    out[:, 1] = np.bincount(coded.territory, weights=w * (rows & at), minlength=T)
    return out


def _move_probability(c: Change, share: np.ndarray) -> np.ndarray:
    """q_t: 1 for set/shift; for share, the chance a child not at the level moves."""
    if c.share is None:
        return np.ones(len(share))
    with np.errstate(invalid="ignore", divide="ignore"):
        s0 = share[:, 1] / share[:, 0]
        q = (c.share - s0) / (1.0 - s0)
    return np.where(np.isfinite(q), np.clip(q, 0.0, 1.0), 0.0)


def _scenario(
    view: ModelView,
    territories: pd.Index,
    base: np.ndarray,
    moved: np.ndarray,
    q: np.ndarray,
    changes: tuple[Change, ...],
    alpha: float,
) -> Scenario:
    z = st.norm.ppf(1 - alpha / 2)
    delta = q * (moved[:, 2] - base[:, 2])
    grad = q[:, None] * (view.gradient_sums(moved) - view.gradient_sums(base))

    def rows(d: np.ndarray, g: np.ndarray, b: np.ndarray) -> dict[str, Any]:
        se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", g, view.cov, g), 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "n_children": b[:, 0].astype(np.int64),
                "expected_count": b[:, 2],
                "scenario_count": b[:, 2] + d,
                "change": d,
                "change_low": d - z * se,
                "change_high": d + z * se,
                "change_se": se,
                "risk": 100 * b[:, 2] / b[:, 1],
                "scenario_risk": 100 * (b[:, 2] + d) / b[:, 1],
            }

    table = pd.DataFrame(
        {"territory": territories.to_numpy(dtype=object), **rows(delta, grad, base)}
    )
    national = pd.DataFrame(
        rows(
            delta.sum(keepdims=True),
            grad.sum(axis=0, keepdims=True),
            base.sum(axis=0, keepdims=True),
        )
    )
    return Scenario(table, national, changes, alpha)
