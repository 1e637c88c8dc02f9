"""Streaming a frame from files (Parquet, Arrow IPC, CSV) and from Dask."""

from __future__ import annotations

import warnings
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clrisk
from clrisk.exceptions import ClriskWarning, DataValidationError, SchemaError
from clrisk.stream import open_frame

pa = pytest.importorskip("pyarrow", reason="pyarrow is needed to read Parquet/Arrow")
pq = pytest.importorskip("pyarrow.parquet")
feather = pytest.importorskip("pyarrow.feather")


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(
        random_state=11,
        n_territories=40,
        n_regions=4,
        children_per_territory=200,
        survey_children=4000,
    )


@pytest.fixture(scope="module")
def model(country: clrisk.Country) -> clrisk.RiskModel:
    return clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)


@pytest.fixture(scope="module")
def whole(country: clrisk.Country, model: clrisk.RiskModel) -> clrisk.TerritoryRisk:
    return clrisk.predict(model, country.census, **country.predict_kwargs, by="sex")


def _same(a: clrisk.TerritoryRisk, b: clrisk.TerritoryRisk) -> None:
    num = a.table.select_dtypes("number").columns
    np.testing.assert_allclose(a.table[num], b.table[num], rtol=1e-12, atol=1e-12)
    assert a.table["territory"].tolist() == b.table["territory"].tolist()
    assert a.table["level"].tolist() == b.table["level"].tolist()
    np.testing.assert_allclose(a.stats.sums, b.stats.sums, rtol=1e-12, atol=1e-9)
    assert a.quality.rows_read == b.quality.rows_read


def _files(country: clrisk.Country, tmp: Path) -> dict[str, Path]:
    census = country.census
    paths = {
        "parquet": tmp / "census.parquet",
        "feather": tmp / "census.feather",
        "csv": tmp / "census.csv",
    }
    pq.write_table(
        pa.Table.from_pandas(census, preserve_index=False),
        paths["parquet"],
        row_group_size=1500,
    )
    feather.write_feather(census, paths["feather"], chunksize=2000)
    census.to_csv(paths["csv"], index=False)
    return paths


@pytest.mark.parametrize("fmt", ["parquet", "feather", "csv"])
@pytest.mark.parametrize("chunk", [777, 250_000])
def test_file_equals_in_memory(
    country: clrisk.Country,
    model: clrisk.RiskModel,
    whole: clrisk.TerritoryRisk,
    tmp_path: Path,
    fmt: str,
    chunk: int,
) -> None:
    path = _files(country, tmp_path)[fmt]
    seen: list[int] = []
    risk = clrisk.predict(
        model,
        path,
        **country.predict_kwargs,
        by="sex",
        chunk_size=chunk,
        progress=seen.append,
    )
    _same(whole, risk)
    assert seen[-1] == len(country.census) and seen == sorted(seen)
    # leading zeros survive every format (CSV codes are read as text)
    assert risk.table["territory"].str.len().eq(5).all()


def test_feather_version_1_equals_in_memory(
    country: clrisk.Country,
    model: clrisk.RiskModel,
    whole: clrisk.TerritoryRisk,
    tmp_path: Path,
) -> None:
    """Feather v1 (no record batches, as old R/pandas exports write it) is read
    whole and scored like the frame in memory (was: refused as unreadable)."""
    path = tmp_path / "old.feather"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # writing v1 (pyarrow 25)
        feather.write_feather(country.census, path, version=1)
    assert path.read_bytes()[:4] == b"FEA1"
    with pytest.warns(ClriskWarning, match="Feather version 1.*read whole"):
        risk = clrisk.predict(
            model, path, **country.predict_kwargs, by="sex", chunk_size=999
        )
    _same(whole, risk)
    broken = tmp_path / "broken.feather"
    broken.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with (
        pytest.warns(ClriskWarning, match="Feather version 1"),
        pytest.raises(DataValidationError, match=r"broken\.feather.*cannot be read"),
    ):
        clrisk.predict(model, broken, **country.predict_kwargs)


def test_parquet_text_codes_read_as_dictionaries_equal_in_memory(
    country: clrisk.Country, model: clrisk.RiskModel, tmp_path: Path
) -> None:
    """Text codes read as Parquet dictionaries (one per row group, each with
    other entries) code as in memory: blanks stripped, missing rejected."""
    census = country.census.copy()
    rng = np.random.default_rng(5)
    terr = census["municipio"].astype(object)
    pick = rng.random(len(census))
    terr[pick < 0.05] = " " + terr[pick < 0.05]  # " 05001" is "05001"
    terr[pick > 0.99] = None  # missing territory: rejected with a reason
    census["municipio"] = terr
    census["p_sexo"] = census["p_sexo"].astype(object).where(pick < 0.98, None)
    census = census.sample(frac=1.0, random_state=3)  # row groups differ
    path = tmp_path / "messy.parquet"
    pq.write_table(
        pa.Table.from_pandas(census, preserve_index=False), path, row_group_size=999
    )
    kw = {**country.predict_kwargs, "on_invalid": "drop", "by": "sex"}
    want = clrisk.predict(model, census.reset_index(drop=True), **kw)
    got = clrisk.predict(model, path, chunk_size=500, **kw)
    _same(want, got)
    assert got.quality.rejected == want.quality.rejected
    assert sum(got.quality.rejected.values()) > 0


def test_file_counterfactual_reads_twice(
    country: clrisk.Country,
    model: clrisk.RiskModel,
    whole: clrisk.TerritoryRisk,
    tmp_path: Path,
) -> None:
    path = _files(country, tmp_path)["parquet"]
    risk = clrisk.predict(model, path, **country.predict_kwargs, by="sex")
    assert risk.factors.counterfactual is None  # one pass by default
    risk = clrisk.predict(
        model,
        path,
        **country.predict_kwargs,
        by="sex",
        counterfactual=True,
        chunk_size=1000,
    )
    assert whole.factors.counterfactual is not None
    assert risk.factors.counterfactual is not None
    np.testing.assert_allclose(
        risk.factors.counterfactual, whole.factors.counterfactual, rtol=1e-12
    )


def test_only_needed_columns_are_read(country: clrisk.Country, tmp_path: Path) -> None:
    path = _files(country, tmp_path)["parquet"]
    src = open_frame(path)
    assert set(src.columns) == set(country.census.columns)
    _, first = next(src.batches(["municipio", "p_sexo"], 100, ()))
    assert list(first.columns) == ["municipio", "p_sexo"] and len(first) == 100


def test_missing_column_names_the_file(
    country: clrisk.Country, model: clrisk.RiskModel, tmp_path: Path
) -> None:
    path = tmp_path / "short.parquet"
    country.census.drop(columns="p_sexo").to_parquet(path)
    with pytest.raises(SchemaError, match=r"short\.parquet.*p_sexo"):
        clrisk.predict(model, path, **country.predict_kwargs)


def test_truncated_parquet_is_a_clear_error(
    country: clrisk.Country, model: clrisk.RiskModel, tmp_path: Path
) -> None:
    path = _files(country, tmp_path)["parquet"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataValidationError, match=r"census\.parquet.*cannot be read"):
        clrisk.predict(model, path, **country.predict_kwargs)


def test_corrupt_parquet_mid_stream_names_the_rows(
    country: clrisk.Country, model: clrisk.RiskModel, tmp_path: Path
) -> None:
    path = tmp_path / "corrupt.parquet"
    pq.write_table(
        pa.Table.from_pandas(country.census, preserve_index=False),
        path,
        row_group_size=2000,
        compression="none",
    )
    meta = pq.ParquetFile(path).metadata
    group = meta.row_group(2)  # rows 4,000-5,999
    col = group.column(list(country.census.columns).index("p_sexo"))
    start = col.data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + 64] = b"\xff" * 64  # garbage in one page header
    path.write_bytes(bytes(data))
    with pytest.raises(
        DataValidationError, match=r"corrupt\.parquet', rows from 4,000"
    ):
        clrisk.predict(model, path, **country.predict_kwargs, chunk_size=2000)


def test_wrong_type_mid_stream_csv(
    country: clrisk.Country, model: clrisk.RiskModel, tmp_path: Path
) -> None:
    census = country.census.copy()
    census["h_personas"] = census["h_personas"].astype(object)
    census.loc[census.index[5000], "h_personas"] = "cinco"
    path = tmp_path / "bad.csv"
    census.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"h_personas.*bad\.csv.*row 5,?000"):
        clrisk.predict(model, path, **country.predict_kwargs, chunk_size=1000)


def test_territory_of_the_wrong_type_in_one_file_of_a_dataset(
    country: clrisk.Country, model: clrisk.RiskModel, tmp_path: Path
) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    half = len(country.census) // 2
    country.census.iloc[:half].to_parquet(folder / "a.parquet")
    country.census.iloc[half:].assign(
        municipio=lambda d: d["municipio"].astype(int)
    ).to_parquet(folder / "b.parquet")
    with pytest.raises(
        DataValidationError, match=r"'municipio'.*int64 in file.*b\.parquet"
    ):
        clrisk.predict(model, folder, **country.predict_kwargs)


def test_unknown_extension(
    country: clrisk.Country, model: clrisk.RiskModel, tmp_path: Path
) -> None:
    path = tmp_path / "census.xyz"
    path.write_text("a,b\n")
    with pytest.raises(clrisk.InvalidParameterError, match="extension"):
        clrisk.predict(model, path, **country.predict_kwargs)


def test_dask_equals_in_memory(
    country: clrisk.Country, model: clrisk.RiskModel, whole: clrisk.TerritoryRisk
) -> None:
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    frame = dd.from_pandas(country.census, npartitions=13)
    cluster = None
    for _ in range(2):  # starting worker processes can time out on a busy machine
        try:
            cluster = distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            break
        except (RuntimeError, TimeoutError, OSError):
            continue
    if cluster is None:
        pytest.skip("a local Dask cluster of 2 processes could not be started here")
    with cluster, distributed.Client(cluster):
        risk = clrisk.predict(
            model, frame, **country.predict_kwargs, by="sex", chunk_size=3000
        )
    _same(whole, risk)


def test_stats_made_elsewhere_give_the_same_result(
    country: clrisk.Country, model: clrisk.RiskModel, whole: clrisk.TerritoryRisk
) -> None:
    """The Spark recipe's pieces: stats per batch -> flat tables -> sum -> predict."""
    from clrisk.scoring import StatsLayout, TerritoryStats

    cuts = np.linspace(0, len(country.census), 8).astype(int)
    batches = [country.census.iloc[a:b] for a, b in pairwise(cuts)]
    flat = pd.concat(
        clrisk.territory_stats(model, b, territory="municipio", by="sex").to_frame()
        for b in batches
    )
    summed = flat.groupby(["territory", "sex"], as_index=False).sum()
    stats = TerritoryStats.from_frame(summed, StatsLayout.for_spec(model.spec_))
    risk = clrisk.predict(model, stats, by="sex", territory="municipio")
    num = whole.table.select_dtypes("number").columns
    cols = [c for c in num if c in risk.table.columns]
    np.testing.assert_allclose(
        risk.table[cols], whole.table[cols], rtol=1e-12, atol=1e-12
    )
    assert risk.quality.rows_used == len(country.census)
    with pytest.raises(clrisk.InvalidParameterError, match="broken down by"):
        clrisk.predict(model, stats, territory="municipio")


def test_read_ahead_keeps_order_and_raises_where_the_error_is() -> None:
    """Batches come in order; an error while reading is raised after the
    batches before it, and a caller stopping early stops the reader."""
    import threading

    from clrisk.stream import read_ahead

    def batches(n: int, fail_at: int | None = None):  # type: ignore[no-untyped-def]
        for i in range(n):
            if i == fail_at:
                raise DataValidationError(
                    column="(file)", problem="bad batch", n_bad=0, fix="re-export it"
                )
            yield i

    assert list(read_ahead(batches(50))) == list(range(50))
    got = []
    with pytest.raises(DataValidationError, match="bad batch"):
        for item in read_ahead(batches(10, fail_at=6)):
            got.append(item)
    assert got == [0, 1, 2, 3, 4, 5]
    reader = read_ahead(batches(1_000_000))
    assert next(reader) == 0
    reader.close()  # the caller stops: the background reader ends too
    assert not any(t.name == "clrisk-read-ahead" for t in threading.enumerate())


def _rss_file_kib() -> int:
    """Resident pages of mapped files in this process (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile line")  # pragma: no cover


def test_parquet_row_groups_read_are_released(tmp_path: Path) -> None:
    """A Parquet file is read memory-mapped (no copy of its column chunks);
    the pages of row groups already read leave the process's resident memory,
    so it holds about one row group of the file, not the whole file read so
    far. The batches are those of an ordinary read."""
    from clrisk.stream import _Mapping, _row_group_starts

    if not Path("/proc/self/status").exists():
        pytest.skip("resident memory by mapped file is read from Linux's /proc")
    rng = np.random.default_rng(0)
    n, groups = 400_000, 8
    table = pd.DataFrame({f"x{i}": rng.random(n) for i in range(12)})  # 38 MB
    path = tmp_path / "big.parquet"
    pq.write_table(
        pa.Table.from_pandas(table),
        path,
        row_group_size=n // groups,
        compression="none",
        use_dictionary=False,  # row groups start at their first data page
    )
    meta = pq.ParquetFile(path).metadata
    done = _row_group_starts(meta)
    first = [meta.row_group(k).column(0).data_page_offset for k in range(groups)]
    assert done(0) == first[0] and done(n // groups - 1) == first[0]
    assert [done(k * n // groups) for k in range(1, groups)] == first[1:]
    assert _Mapping.open(path) is not None
    src = open_frame(path)
    before = _rss_file_kib()
    read, grown_mib = [], 0.0
    for _offset, batch in src.batches(list(table.columns), 70_000, ()):
        grown_mib = max(grown_mib, (_rss_file_kib() - before) / 1024)
        read.append(batch)
    # batches kept after their pages were handed back still hold their data
    pd.testing.assert_frame_equal(pd.concat(read, ignore_index=True), table)
    assert path.stat().st_size > 36 * 2**20
    # without handing pages back: about 36 MiB by the end; with: about 11
    assert grown_mib < 20, f"{grown_mib:.1f} MiB of the file were resident"


def test_empty_parquet_file_is_a_clear_error(
    model: clrisk.RiskModel, country: clrisk.Country, tmp_path: Path
) -> None:
    path = tmp_path / "empty.parquet"
    path.write_bytes(b"")
    with pytest.raises(DataValidationError, match=r"empty\.parquet.*cannot be read"):
        clrisk.predict(model, path, **country.predict_kwargs)


def test_parquet_cut_short_while_read_is_refused_between_batches(
    tmp_path: Path,
) -> None:
    """A memory-mapped file that another program cuts short while it is read
    is refused, naming the file and the rows, before the next batch is read
    (reading past its new end would stop the process)."""
    import os

    path = tmp_path / "rewritten.parquet"
    x = np.random.default_rng(0).random(400_000)
    pq.write_table(pa.table({"x": x}), path, row_group_size=50_000, compression="none")
    batches = open_frame(path).batches(["x"], 50_000, ())
    next(batches)
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(
        DataValidationError, match=r"rewritten\.parquet', rows from 50,000.*cut short"
    ):
        list(batches)
    # cut short after it was opened, before its first batch
    pq.write_table(pa.table({"x": x}), path, row_group_size=50_000, compression="none")
    source = open_frame(path)
    os.truncate(path, path.stat().st_size // 2)
    with pytest.raises(DataValidationError, match=r"rewritten\.parquet', rows from 0"):
        list(source.batches(["x"], 50_000, ()))
