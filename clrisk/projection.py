"""clrisk.predict: project a fitted model onto a frame, territory by territory.

One pass over the frame (in chunks, or over pieces given as an iterable)
accumulates the mergeable statistics; everything reported is derived from
them. A second pass, when the frame is in memory, computes the counterfactual
risks of the factor decomposition.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from os import PathLike
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from clrisk.exceptions import (
    CoverageWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)
from clrisk.factors import FactorWeights, decompose
from clrisk.features import (
    CodedFrame,
    Policy,
    Workspace,
    encode,
    table_name,
    to_text_codes,
)
from clrisk.quality import DataQuality
from clrisk.scoring import KERNELS, PassTotals, TerritoryStats, shifted_risk
from clrisk.spec import INDICATORS, FeatureSpec
from clrisk.stream import FrameSource, is_file_source, open_frame, read_ahead
from clrisk.territory import ModelView, TerritoryRisk, classify_risk

if TYPE_CHECKING:
    from clrisk.model import RiskModel

__all__ = ["predict", "territory_stats"]

# (row offset, table, where it comes from) of each piece of a frame; a
# generator, so that closing it stops a file's reader thread
Pieces = Generator[tuple[int, pd.DataFrame, str], None, None]

_MAX_GROUPS = 10_000  # combinations of breakdown values


def predict(
    model: RiskModel,
    frame: pd.DataFrame | Iterable[pd.DataFrame] | str | PathLike[str] | Any,
    *,
    territory: str | None = None,
    weight: str | None = None,
    by: str | Sequence[str] | None = None,
    region: str | None = None,
    indicators: pd.DataFrame | None = None,
    source: str | None = None,
    levels: str = "jenks",
    n_levels: int | None = None,
    level_scope: str = "national",
    thresholds: Sequence[float] | None = None,
    counterfactual: bool | None = None,
    on_invalid: Policy = "error",
    chunk_size: int = 500_000,
    alpha: float = 0.05,
    kernel: str = "auto",
    progress: Callable[[int], None] | None = None,
    unknown_as: Mapping[str, str] | None = None,
    age: str | None = None,
    age_range: tuple[float, float] | None = None,
    indicator_territory: str | None = None,
) -> TerritoryRisk:
    """Score every child of `frame` and aggregate by territory in one pass.

    Parameters
    ----------
    model : RiskModel
        A fitted, specification-driven model.
    frame : DataFrame, iterable of DataFrame, path, pyarrow or Dask dataset
        The projection frame (census, registry): in memory, whole or in pieces;
        or the :class:`TerritoryStats` of a pass made elsewhere (see
        :func:`territory_stats`);
        a Parquet, Arrow IPC/Feather or CSV file (or a folder of Parquet files,
        a ``pyarrow.dataset.Dataset`` or a ``pyarrow.Table``), read in batches
        of `chunk_size` rows with only the columns needed (a CSV file's
        separator, encoding and decimal comma are detected as by
        :func:`clrisk.io.read_table`); or a ``dask.dataframe.DataFrame``, whose
        partitions are scored where they live and whose statistics are added.
        All give results identical to the whole frame in memory.
    territory : str, optional
        Territory-code column (default: the spec's, for the frame's source).
    weight : str, optional
        Frame weights (e.g. an intercensal survey's expansion factors); 1 when
        None (a full census).
    by : str or sequence of str, optional
        Breakdown variables: names of binary/categorical features of the spec
        (harmonised levels, e.g. ``"sex"``) or columns of the frame. When one
        is a binary individual feature of the policy area "gender", the table
        gets ``gender_gap``: its second level's risk minus its first level's,
        whichever is the reference (with levels ``("male", "female")``, girls
        minus boys, in points; intervals from :meth:`TerritoryRisk.gap`).
    region : str, optional
        Region column of the frame, for roll-ups and per-region levels.
    indicators : DataFrame, optional
        Territory indicator table (default: the one the model was fitted with).
        Its territories define the expected set: those without rows in the
        frame are reported (``n_children`` 0) with a :class:`CoverageWarning`.
    source : str, optional
        Which source of the spec the frame is (detected from its columns).
    levels : str, default "jenks"
        Level method (see :func:`clrisk.levels.classify`).
    n_levels : int, optional
        Number of levels: by default 3, or ``len(thresholds) + 1`` for
        ``levels="fixed"`` (where an `n_levels` given must equal it).
    level_scope : {"national", "region"}
    thresholds : sequence of float, optional
        Risk thresholds (%) for ``levels="fixed"``.
    counterfactual : bool, optional
        Compute counterfactual risks (a second pass). Default: when the frame
        is in memory (a DataFrame, list or tuple); for a file, True reads it a
        second time; not available for iterators and Dask frames.
    on_invalid : {"error", "drop"}
        Rows with missing values, unknown codes or unknown territories: raise,
        or reject them and count them in ``quality``.
    chunk_size : int, default 500_000
        Rows scored at a time (bounds the working memory).
    alpha : float, default 0.05
        Intervals are (1 − alpha) delta-method intervals.
    kernel : {"auto", "compiled", "numpy"}, default "auto"
        The scoring kernel: compiled with numba (``clrisk[fast]``), the plain
        numpy reference, or the compiled one when available. Same results.
    progress : callable, optional
        Called with the number of rows done after each batch.
    unknown_as : mapping of str to str, optional
        Feature -> level for codes missing from the code map (e.g. a new
        census code): coded as that level with a warning and a quality note,
        instead of following `on_invalid` (see :func:`clrisk.features.encode`).
    age, age_range : str and (float, float), optional
        Score only rows whose `age` column lies in `age_range` (inclusive), e.g.
        ``age="p_edad", age_range=(5, 17)`` on a census of all persons; the
        others are counted in ``quality.rejected`` as "outside the age range"
        (a row with a missing age follows `on_invalid`).
    indicator_territory : str, optional
        Column of the frame whose codes key the territory indicator table,
        when it is not `territory`. CLRISK's Phase II scores finer units
        inside a municipality (``territory="block"``) with the model's
        territory indicators, which are the municipality's
        (``indicator_territory="municipio"``); with ``region="municipio"``
        levels can then be drawn within each municipality and
        :func:`clrisk.intervention_zones` groups its high-risk blocks. The
        indicator table then does not list the frame's territories: no
        coverage warning is given for them.

    Returns
    -------
    TerritoryRisk
    """
    if not hasattr(model, "params_"):
        raise InvalidParameterError(
            "clrisk.predict needs a fitted RiskModel: "
            "call model.fit(survey, ...) first."
        )
    if model.spec is None:
        raise InvalidParameterError(
            "clrisk.predict needs a RiskModel built with a FeatureSpec."
        )
    _check_positive_int(chunk_size, "chunk_size")
    if kernel not in KERNELS:
        raise InvalidParameterError(
            f"The 'kernel' parameter of predict must be one of {KERNELS}; got "
            f"{kernel!r}."
        )
    if not 0 < alpha < 1:
        raise InvalidParameterError(
            f"The 'alpha' parameter of predict must be in (0, 1); got {alpha!r}."
        )
    view = ModelView.from_model(model)
    spec = view.spec
    by_list = [by] if isinstance(by, str) else list(by or [])
    in_memory = isinstance(frame, pd.DataFrame | list | tuple)
    from_file = is_file_source(frame)
    if counterfactual is None:
        counterfactual = in_memory and not isinstance(frame, TerritoryStats)
    elif counterfactual and not (in_memory or from_file):
        raise InvalidParameterError(
            "counterfactual=True needs a second pass over the frame: pass it as a "
            "DataFrame, a list of pieces or a file, or set counterfactual=False."
        )
    ind_table = indicators if indicators is not None else model.indicator_table()

    # the pieces of the frame, and where each comes from (for messages)
    file_src = None
    if from_file:
        file_src = open_frame(frame)
        try:
            source = source or spec.detect_source(
                file_src.columns, prefer=spec.frame_source
            )
        except SchemaError as exc:
            raise SchemaError(f"The frame file '{file_src.name}': {exc}") from None
    elif _is_dask(frame):
        source = source or spec.detect_source(
            list(cast(Any, frame).columns), prefer=spec.frame_source
        )
    terr_col = territory
    if source is not None:
        terr_col = territory or spec.territory.get(source)

    pass_ = _Pass(
        view,
        spec,
        source,
        terr_col,
        ind_table,
        weight,
        on_invalid,
        by_list,
        region,
        kernel,
        dict(unknown_as or {}),
        _age_filter(age, age_range),
        indicator_territory,
    )
    if isinstance(frame, TerritoryStats):  # the pass was made elsewhere
        _check_stats(frame, view, by_list)
        if counterfactual or region is not None:
            raise InvalidParameterError(
                "From ready statistics, counterfactual risks and regions are not "
                "available (they need the rows); set counterfactual=False and "
                "region=None."
            )
        n_rows = int(frame.sums[:, 0].sum())
        pairs: list[pd.DataFrame] = []
        parts, quality = [frame], DataQuality(n_rows, n_rows)
        cached: list[CodedFrame] = []
    elif _is_dask(frame):
        if counterfactual:
            raise InvalidParameterError(
                "counterfactual=True is not available for a Dask frame (it needs a "
                "second pass); set counterfactual=False."
            )
        parts, pairs, quality = _dask_pass(frame, pass_, chunk_size)
        cached = []
    else:
        pairs, quality = [], DataQuality()
        cached = []
        pieces: Pieces = (
            _file_pieces(file_src, pass_, chunk_size)
            if file_src is not None
            else _pieces(frame, chunk_size)
        )
        totals = pass_.totals()
        # coded pieces kept for the counterfactual pass need arrays of their own
        space = None if counterfactual and in_memory else Workspace()
        done = 0
        with closing(pieces):  # an error here stops the file's reader thread too
            for offset, chunk, where in pieces:
                pairs_i, coded = pass_.run(chunk, offset, where, totals, space)
                quality = quality + coded.quality
                if pairs_i is not None:
                    pairs.append(pairs_i)
                if counterfactual and in_memory and coded.n:
                    cached.append(coded)
                done += len(chunk)
                if progress is not None:
                    progress(done)
        parts = [totals.stats()] if len(totals) else []
    if not parts:
        raise DataValidationError(
            column="(every column)",
            problem="no row of the frame could be scored",
            n_bad=quality.rows_read,
            fix="Check the frame and the rejected rows: "
            + quality.summary().replace("\n", "; "),
        )
    stats = TerritoryStats.combine(parts)
    cells = stats.by_territory()
    # indicators keyed by another (coarser) unit than the territories
    fine = indicator_territory not in (None, pass_.territory)
    expected = _expected_territories(cells, None if fine else ind_table, spec, quality)
    regions = _regions(pairs, region) if region is not None else None

    est = view.estimates(cells.sums, alpha)
    est.insert(0, "territory", cells.keys["territory"].to_numpy())
    table = est.set_index("territory").reindex(expected)
    table["n_children"] = table["n_children"].fillna(0).astype(np.int64)
    for col in ("weighted_children", "expected_count"):
        table[col] = table[col].fillna(0.0)
    table = table.reset_index(names="territory")
    if regions is not None:
        table.insert(1, "region", table["territory"].map(regions))

    w = cells.sums[:, 1:2]
    xs = cells.sums[:, view.layout.x]
    weightless = list(cells.keys["territory"][w[:, 0] <= 0])
    if weightless:
        note = (
            f"{len(weightless)} territories have rows but a total weight of 0 (e.g. "
            f"{weightless[:5]}); they are reported with no risk."
        )
        quality.notes.append(note)
        warnings.warn(note, CoverageWarning, stacklevel=2)
    feats = [f.name for f in spec.features]
    with np.errstate(invalid="ignore", divide="ignore"):
        xbar_t = xs / w
    factors = decompose(
        xbar_t=xbar_t,
        xbar=xs.sum(axis=0) / w.sum(),
        beta_x=view.scorer.beta_x,
        intercept=view.scorer.intercept,
        x_feature=view.x_feature,
        features=feats,
        policy_areas={f.name: f.policy_area for f in spec.features},
        territories=list(cells.keys["territory"]),
    )
    if counterfactual and file_src is None:
        factors = _with_counterfactual(factors, view, cached, cells, kernel)
    elif counterfactual:  # a second pass over the file, in batches
        with closing(_file_pieces(file_src, pass_, chunk_size)) as second:
            space = Workspace()  # each piece is used before the next is coded
            coded_frames = (pass_.prepare(c, o, w, space)[1] for o, c, w in second)
            factors = _with_counterfactual(factors, view, coded_frames, cells, kernel)
    table["lead_policy_area"] = table["territory"].map(factors.lead_policy_area)
    lv = classify_risk(table, regions, levels, n_levels, level_scope, thresholds)
    table.insert(table.columns.get_loc("lead_policy_area"), "level", lv.labels)
    result = TerritoryRisk(
        table=table,
        stats=stats,
        factors=factors,
        levels=lv,
        quality=quality,
        regions=regions,
        view=view,
        alpha=alpha,
    )
    gender = [b for b in by_list if _is_gender(spec, b)]
    if gender:  # the spec says which breakdown is sex: add its gap per territory
        feat = spec.feature(gender[0])
        gap = result.gap(gender[0], feat.levels[1], feat.levels[0])
        table = table.copy()
        table["gender_gap"] = table["territory"].map(gap.set_index("territory")["gap"])
        result = replace(result, table=table)
    return result


def _age_filter(
    age: str | None, age_range: tuple[float, float] | None
) -> tuple[str, float, float] | None:
    if age is None and age_range is None:
        return None
    if age is None or age_range is None or len(age_range) != 2:
        raise InvalidParameterError(
            "Give age=<column> and age_range=(lowest, highest) together."
        )
    lo, hi = (float(a) for a in age_range)
    if not lo <= hi:
        raise InvalidParameterError(
            f"age_range must be (lowest, highest); got {age_range}."
        )
    return age, lo, hi


def _check_ages(
    raw: pd.Series,
    age: pd.Series,
    missing: np.ndarray,
    offset: int,
    column: str,
    where: str,
    on_invalid: str,
) -> None:
    """Ages that are not numbers are an error (a format problem of the
    column); missing ones too unless `on_invalid` is "drop"."""
    not_number = (age.isna() & raw.notna()).to_numpy()
    for mask, problem, fix, always in (
        (
            not_number,
            "ages that are not numbers",
            "Write ages in years, as numbers with '.' as the decimal mark.",
            True,
        ),
        (
            missing,
            "missing ages",
            "Fill them in, or pass on_invalid='drop' to reject those rows.",
            False,
        ),
    ):
        if mask.any() and (always or on_invalid == "error"):
            rows = np.flatnonzero(mask)[:5]
            raise DataValidationError(
                column=column,
                problem=problem,
                n_bad=int(mask.sum()),
                examples=[f"row {offset + i}: {raw.iloc[i]!r}" for i in rows],
                fix=fix,
                where=where or "the frame",
            )


def _is_gender(spec: FeatureSpec, name: str) -> bool:
    """A binary feature of the policy area "gender" (e.g. the child's sex)."""
    names = {f.name for f in spec.features}
    if name not in names:
        return False
    feat = spec.feature(name)
    return (
        feat.kind == "binary"
        and feat.policy_area.lower() == "gender"
        and feat.dimension == "individual"
    )


def territory_stats(
    model: RiskModel,
    table: pd.DataFrame,
    *,
    territory: str | None = None,
    weight: str | None = None,
    by: str | Sequence[str] | None = None,
    indicators: pd.DataFrame | None = None,
    source: str | None = None,
    kernel: str = "auto",
    indicator_territory: str | None = None,
) -> TerritoryStats:
    """The one-pass statistics of a table, for a pass made outside :func:`predict`.

    Statistics of separate tables add (``a + b``, or summed by key after
    :meth:`TerritoryStats.to_frame`), and ``clrisk.predict(model, stats)``
    turns their total into territory results identical to a single pass.
    This is how an engine clrisk does not drive (Spark, a database, a job
    queue) runs the same pass; the parameters are those of :func:`predict`.
    Invalid rows are always errors here (no ``on_invalid="drop"``): a row
    dropped on a remote worker would be lost from the accounting.

    Returns
    -------
    TerritoryStats
    """
    if not hasattr(model, "params_") or model.spec is None:
        raise InvalidParameterError(
            "territory_stats needs a RiskModel built with a FeatureSpec and fitted."
        )
    view = ModelView.from_model(model)
    by_list = [by] if isinstance(by, str) else list(by or [])
    ind = indicators if indicators is not None else model.indicator_table()
    pass_ = _Pass(
        view, view.spec, source, territory, ind, weight, "error", by_list, None, kernel,
        indicator_territory=indicator_territory,
    )  # fmt: skip
    totals = pass_.totals()
    _, coded = pass_.run(table, 0, "", totals)
    if coded.n == 0:
        empty = np.zeros((0, view.layout.width))
        keys = pd.DataFrame({k: [] for k in ["territory", *by_list]}, dtype=object)
        return TerritoryStats(keys, empty, view.layout)
    return totals.stats()


def _check_stats(stats: TerritoryStats, view: ModelView, by: list[str]) -> None:
    if stats.layout != view.layout:
        raise InvalidParameterError(
            "These statistics were computed with another model (their layout "
            "differs): recompute them with territory_stats(model, ...)."
        )
    if stats.by != by:
        raise InvalidParameterError(
            f"These statistics are broken down by {stats.by}; pass by={stats.by}."
        )


# --------------------------------------------------------------------- private
@dataclass
class _Pass:
    """The per-piece work: code, assign cells, accumulate (picklable for Dask)."""

    view: ModelView
    spec: FeatureSpec
    source: str | None
    territory: str | None
    indicators: pd.DataFrame | None
    weight: str | None
    on_invalid: Policy
    by: list[str]
    region: str | None
    kernel: str
    unknown_as: dict[str, str] = field(default_factory=dict)
    ages: tuple[str, float, float] | None = None
    indicator_territory: str | None = None

    def prepare(
        self,
        chunk: pd.DataFrame,
        offset: int,
        where: str,
        space: Workspace | None = None,
    ) -> tuple[pd.DataFrame, CodedFrame]:
        """The rows to score (within the age range; with a region when
        regions are asked), and their coding; the others are counted in the
        coding's quality record with their reason, never lost. With `space`,
        the coding is valid until the next piece coded in it."""
        reasons: dict[str, np.ndarray] = {}  # reason -> rows set aside
        if self.ages is not None:
            reasons.update(self._age_rows(chunk, offset, where))
        if self.region is not None and self.region in chunk.columns:
            missing = chunk[self.region].isna().to_numpy()
            if missing.any() and self.on_invalid == "error":
                rows = np.flatnonzero(missing)[:5]
                raise DataValidationError(
                    column=self.region,
                    problem="missing region codes",
                    n_bad=int(missing.sum()),
                    examples=[f"row {offset + i}" for i in rows],
                    fix="Every row needs its region; or pass on_invalid='drop' to "
                    "reject those rows.",
                    where=where or "the frame",
                )
            reasons[f"missing region in '{self.region}'"] = missing
        aside = np.zeros(len(chunk), dtype=bool)
        counts: dict[str, int] = {}
        for reason, mask in reasons.items():  # a row counts for its first reason
            new = mask & ~aside
            if new.any():
                counts[reason] = int(new.sum())
            aside |= new
        if not aside.any():
            return chunk, self.encode(chunk, offset, where, space=space)
        kept = ~aside
        inside = chunk[kept]
        numbers = offset + np.flatnonzero(kept)
        coded = self.encode(inside, offset, where, numbers, space)
        dropped = DataQuality(int(aside.sum()), 0, counts)
        return inside, replace(coded, quality=coded.quality + dropped)

    def _age_rows(
        self, chunk: pd.DataFrame, offset: int, where: str
    ) -> dict[str, np.ndarray]:
        """Rows outside the age range, and rows without an age (those only
        with on_invalid="drop": otherwise an error)."""
        assert self.ages is not None
        column, lo, hi = self.ages
        if column not in chunk.columns:
            raise SchemaError(
                f"The age column {column!r} named by age= is not in the frame.",
                expected=[column],
                received=[str(c) for c in chunk.columns],
            )
        raw = chunk[column]
        age = pd.to_numeric(raw, errors="coerce")
        missing = raw.isna().to_numpy()
        _check_ages(raw, age, missing, offset, column, where, self.on_invalid)
        outside = (age.notna() & ~age.between(lo, hi)).to_numpy()
        return {
            f"outside the age range {lo:g}-{hi:g} ('{column}')": outside,
            f"missing age ('{column}')": missing,
        }

    def encode(
        self,
        chunk: pd.DataFrame,
        offset: int,
        where: str,
        numbers: np.ndarray | None = None,
        space: Workspace | None = None,
    ) -> CodedFrame:
        if self.source is None:  # in-memory pieces: detected on the first one
            self.source = self.spec.detect_source(
                chunk.columns, prefer=self.spec.frame_source
            )
        self.territory = self.territory or self.spec.territory.get(self.source)
        if self.territory is None:
            raise InvalidParameterError(
                "Pass territory=<column of the frame holding the territory code>."
            )
        _check_extra_columns(chunk, self.by, self.region, self.spec)
        return encode(
            self.spec,
            chunk,
            source=self.source,
            territory=self.territory,
            indicators=self.indicators,
            weight=self.weight,
            on_invalid=self.on_invalid,
            where=where or f"the {self.source} frame",
            row_offset=offset,
            unknown_as=self.unknown_as,
            row_numbers=numbers,
            workspace=space,
            indicator_territory=self.indicator_territory,
        )

    def totals(self) -> PassTotals:
        """Empty statistics for a pass with this model and kernel."""
        return PassTotals(self.view.scorer, self.view.layout, self.kernel)

    def run(
        self,
        chunk: pd.DataFrame,
        offset: int,
        where: str,
        totals: PassTotals,
        space: Workspace | None = None,
    ) -> tuple[pd.DataFrame | None, CodedFrame]:
        """Add one piece to `totals`; its (territory, region) pairs, coding
        (in `space` when given, see :meth:`prepare`)."""
        chunk, coded = self.prepare(chunk, offset, where, space)
        if coded.n == 0:
            return None, coded
        cell, keys = _cells(coded, chunk, self.by, self.spec)
        totals.add(
            keys, cell, coded.code_columns, coded.numeric_columns, coded.weight,
            codes_checked=True,  # made by encode: level indices
        )  # fmt: skip
        pairs = _region_pairs(coded, chunk, self.region) if self.region else None
        return pairs, coded

    def columns(self) -> list[str]:
        """The frame columns this pass reads."""
        assert self.source is not None
        names = {f.name for f in self.spec.features}
        need = self.spec.required_columns(self.source)
        extra = [self.territory, self.weight, self.region, self.indicator_territory]
        extra += [b for b in self.by if b not in names]
        if self.ages is not None:
            extra.append(self.ages[0])
        return need + [c for c in dict.fromkeys(extra) if c and c not in need]

    def text_columns(self) -> list[str]:
        """Columns holding codes, read as text where a format leaves it open."""
        assert self.source is not None
        codes = [
            f.source(self.source).column
            for f in self.spec.categorical
            if f.dimension != "territory"
        ]
        extra = [self.territory, self.region, self.indicator_territory, *self.by]
        return [c for c in dict.fromkeys([*codes, *extra]) if c]


def _file_pieces(src: FrameSource | None, pass_: _Pass, chunk_size: int) -> Pieces:
    """Batches of a file with the columns the pass needs, and where each is."""
    assert src is not None
    columns = pass_.columns()
    missing = [c for c in columns if c not in set(src.columns)]
    if missing:
        raise SchemaError(
            f"The frame file '{src.name}' lacks columns the model needs.",
            expected=columns,
            received=src.columns,
        )
    batches = src.batches(columns, chunk_size, pass_.text_columns())
    with closing(read_ahead(batches)) as ahead:  # the reader stops with us
        for offset, chunk in ahead:
            where = f"'{src.name}' (rows {offset:,}-{offset + len(chunk) - 1:,})"
            yield offset, chunk, where


def _is_dask(frame: Any) -> bool:
    return type(frame).__module__.startswith("dask") and hasattr(frame, "to_delayed")


def _partition_pass(
    pass_: _Pass, part: pd.DataFrame, index: int, chunk_size: int
) -> tuple[TerritoryStats | None, pd.DataFrame | None, DataQuality]:
    """One Dask partition: its statistics added up, its pairs, its rows."""
    totals, pairs, quality = pass_.totals(), [], DataQuality()
    space = Workspace()
    for offset, chunk, _ in _pieces(part, chunk_size):
        where = f"partition {index} of the frame"
        p, coded = pass_.run(chunk, offset, where, totals, space)
        quality = quality + coded.quality
        if p is not None:
            pairs.append(p)
    total = totals.stats() if len(totals) else None
    both = pd.concat(pairs, ignore_index=True).drop_duplicates() if pairs else None
    return total, both, quality


def _dask_pass(
    frame: Any, pass_: _Pass, chunk_size: int
) -> tuple[list[TerritoryStats], list[pd.DataFrame], DataQuality]:
    """Map the pass over the partitions (where they live) and gather the sums."""
    from dask.base import compute
    from dask.delayed import delayed

    tasks = [
        delayed(_partition_pass)(pass_, part, i, chunk_size)
        for i, part in enumerate(frame.to_delayed())
    ]
    results = compute(*tasks)  # type: ignore[no-untyped-call]
    quality = DataQuality()
    for _, _, q in results:
        quality = quality + q
    parts = [s for s, _, _ in results if s is not None]
    pairs = [p for _, p, _ in results if p is not None]
    return parts, pairs, quality


def _check_positive_int(value: Any, name: str) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise InvalidParameterError(
            f"The '{name}' parameter of predict must be an int >= 1; got {value!r}."
        )


def _pieces(frame: pd.DataFrame | Iterable[pd.DataFrame], chunk_size: int) -> Pieces:
    """(row offset, table, where) pieces of at most `chunk_size` rows."""
    tables = [frame] if isinstance(frame, pd.DataFrame) else frame
    offset = 0
    for i, table in enumerate(tables):
        if not isinstance(table, pd.DataFrame):
            raise InvalidParameterError(
                f"Piece {i} of the frame is a {type(table).__name__}; expected a "
                "pandas DataFrame."
            )
        # a table read by clrisk.io.read_table knows its file: named while its
        # rows are the file's (pandas keeps attrs through a filter too)
        where = table_name(table, "")
        for start in range(0, max(len(table), 1), chunk_size):
            yield offset + start, table.iloc[start : start + chunk_size], where
        offset += len(table)


def _check_extra_columns(
    chunk: pd.DataFrame, by: list[str], region: str | None, spec: FeatureSpec
) -> None:
    names = {f.name: f for f in spec.features}
    need = [b for b in by if b not in names] + ([region] if region else [])
    missing = [c for c in need if c not in chunk.columns]
    if missing:
        raise SchemaError(
            "The frame lacks the breakdown/region columns named.",
            expected=need,
            received=[str(c) for c in chunk.columns],
        )
    numeric = [b for b in by if b in names and names[b].kind == "numeric"]
    if numeric or any(b in names and names[b].dimension == "territory" for b in by):
        raise InvalidParameterError(
            f"Breakdowns need binary or categorical features; {numeric or by} are not."
        )


def _cells(
    coded: CodedFrame, chunk: pd.DataFrame, by: list[str], spec: FeatureSpec
) -> tuple[np.ndarray, pd.DataFrame]:
    """Cell index of each coded row and the keys of all cells."""
    assert coded.territory is not None
    if not by:  # codes as Python text (not made into Arrow strings and back)
        keys = pd.Series(coded.territories, dtype=object, copy=False)
        return coded.territory, pd.DataFrame({"territory": keys})
    cat_pos = {f.name: j for j, f in enumerate(spec.categorical)}
    codes, labels = [], []
    for b in by:
        if b in cat_pos:
            codes.append(coded.code_columns[cat_pos[b]].astype(np.int64))
            labels.append(list(spec.feature(b).levels))
        else:
            c, u = to_text_codes(chunk[b].iloc[coded.rows])
            codes.append(np.where(c < 0, len(u), c))
            labels.append([*u, "missing"])
    sizes = [len(lab) for lab in labels]
    G = int(np.prod(sizes))
    if G > _MAX_GROUPS:
        raise InvalidParameterError(
            f"by={by} has {G:,} combinations of values (more than {_MAX_GROUPS:,}); "
            "breakdowns are for a few groups such as sex or population group, not "
            "for identifiers."
        )
    g = np.zeros(coded.n, dtype=np.int64)
    for c, size in zip(codes, sizes, strict=True):
        g = g * size + c
    # only the (territory, group) cells that occur: memory follows the rows
    cell, combos = pd.factorize(coded.territory.astype(np.int64) * G + g, sort=True)
    combos = np.asarray(combos, dtype=np.int64)
    keys = {"territory": coded.territories[combos // G]}
    rest = combos % G
    digits = []
    for size in reversed(sizes):
        digits.append(rest % size)
        rest = rest // size
    for b, lab, idx in zip(by, labels, reversed(digits), strict=True):
        keys[b] = np.asarray(lab, dtype=object)[idx]
    return cell.astype(np.int64), pd.DataFrame(keys)


def _region_pairs(coded: CodedFrame, chunk: pd.DataFrame, region: str) -> pd.DataFrame:
    assert coded.territory is not None
    # no missing code: rows without a region were set aside (_Pass.prepare)
    c, u = to_text_codes(chunk[region].iloc[coded.rows])
    pairs = np.unique(coded.territory * len(u) + c)
    return pd.DataFrame(
        {
            "territory": coded.territories[pairs // len(u)],
            "region": np.asarray(u, dtype=object)[pairs % len(u)],
        }
    )


def _regions(pairs: list[pd.DataFrame], region: str) -> pd.Series:
    both = pd.concat(pairs, ignore_index=True).drop_duplicates()
    dup = both["territory"].duplicated(keep=False)
    if dup.any():
        bad = (
            both[dup]
            .groupby("territory")["region"]
            .apply(lambda s: "/".join(sorted(s)))
        )
        raise DataValidationError(
            column=region,
            problem="territories that belong to more than one region",
            n_bad=len(bad),
            examples=[f"{t}: {r}" for t, r in bad.head(5).items()],
            fix="Each territory must lie in exactly one region.",
        )
    return pd.Series(
        both["region"].to_numpy(), index=both["territory"].to_numpy(), name="region"
    ).sort_index()


def _expected_territories(
    cells: TerritoryStats,
    ind_table: pd.DataFrame | None,
    spec: FeatureSpec,
    quality: DataQuality,
) -> list[str]:
    observed = list(cells.keys["territory"])
    if ind_table is None or INDICATORS not in spec.territory:
        return observed
    c, u = to_text_codes(ind_table[spec.territory[INDICATORS]])
    listed = sorted(set(np.asarray(u, dtype=object)[c[c >= 0]]))
    empty = sorted(set(listed) - set(observed))
    if empty:
        note = (
            f"{len(empty)} territories of the indicator table have no rows in the "
            f"frame (e.g. {empty[:5]}); they are reported with n_children 0 "
            "and no risk."
        )
        quality.notes.append(note)
        warnings.warn(note, CoverageWarning, stacklevel=3)
    extra = sorted(set(observed) - set(listed))
    if extra:  # possible when the model uses no territory indicator
        note = (
            f"{len(extra)} territories of the frame are not in the indicator table "
            f"(e.g. {extra[:5]}); they are scored, but check their codes (leading "
            "zeros, text vs number)."
        )
        quality.notes.append(note)
        warnings.warn(note, CoverageWarning, stacklevel=3)
    return sorted(set(listed) | set(observed))


def _with_counterfactual(
    factors: FactorWeights,
    view: ModelView,
    cached: Iterable[CodedFrame],
    cells: TerritoryStats,
    kernel: str,
) -> FactorWeights:
    names = pd.Index(cells.keys["territory"], dtype=object)
    shifts = factors.gaps.to_numpy()
    total = np.zeros_like(shifts)
    for coded in cached:
        if coded.n == 0:
            continue
        assert coded.territory is not None
        glob = names.get_indexer(pd.Index(coded.territories, dtype=object))
        cell = glob[coded.territory]
        total += shifted_risk(
            view.scorer,
            coded.code_columns,
            coded.numeric_columns,
            cell,
            shifts,
            coded.weight,
            kernel=kernel,
            codes_checked=True,  # made by encode: level indices
        )
    cf = 100 * total / cells.sums[:, 1:2]
    return replace(
        factors,
        counterfactual=pd.DataFrame(
            cf, index=factors.gaps.index, columns=factors.gaps.columns
        ),
    )
