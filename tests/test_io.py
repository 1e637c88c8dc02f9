"""Reading analysts' files: each dialect written, read back, the same table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from clrisk.exceptions import InvalidParameterError, SchemaError
from clrisk.io import read_table, write_table

TABLE = pd.DataFrame(
    {
        "codigo": ["05001", "08001", "11001"],
        "nombre": ["Bogotá", "Peñalolén", 'São "Paulo", SP'],
        "pobreza": ["31.5", "12", "7.25"],
    }
)


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1"])
def test_csv_dialects(tmp_path: Path, sep: str, encoding: str) -> None:
    path = tmp_path / "t.csv"
    TABLE.to_csv(path, sep=sep, index=False, encoding=encoding)  # quotes as needed
    got, info = read_table(path)
    assert info.separator == sep
    pd.testing.assert_frame_equal(got, TABLE)


def test_decimal_comma(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    table = TABLE.assign(pobreza=["31,5", "12", "7,25"])
    table.to_csv(path, sep=";", index=False, encoding="cp1252")
    got, info = read_table(path)
    assert info.decimal == ","
    assert got["pobreza"].tolist() == ["31.5", "12", "7.25"]
    assert got["codigo"].tolist() == TABLE["codigo"].tolist()  # codes untouched


def test_overrides(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    TABLE.to_csv(path, sep="|", index=False, encoding="utf-8")
    got, info = read_table(path, sep="|", encoding="utf-8", decimal=".")
    assert (info.separator, info.encoding) == ("|", "utf-8")
    pd.testing.assert_frame_equal(got, TABLE)


@pytest.mark.parametrize("suffix", [".parquet", ".feather", ".dta"])
def test_binary_formats(tmp_path: Path, suffix: str) -> None:
    if suffix != ".dta":
        pytest.importorskip("pyarrow")
    path = tmp_path / f"t{suffix}"
    if suffix == ".parquet":
        TABLE.to_parquet(path)
    elif suffix == ".feather":
        TABLE.to_feather(path)
    else:
        TABLE.to_stata(path, write_index=False, version=118)
    got, info = read_table(path)
    assert info.format in {"parquet", "arrow", "stata"}
    pd.testing.assert_frame_equal(got.astype(str), TABLE.astype(str), check_dtype=False)


def test_write_table_round_trip(tmp_path: Path) -> None:
    csv = write_table(TABLE, tmp_path / "out.csv")
    assert csv.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    got, _ = read_table(csv)
    pd.testing.assert_frame_equal(got, TABLE)
    with pytest.raises(InvalidParameterError, match=r"\.csv or \.parquet"):
        write_table(TABLE, tmp_path / "out.json")


def test_unknown_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="does not exist"):
        read_table(tmp_path / "none.csv")
    odd = tmp_path / "t.sav"
    odd.write_text("x")
    with pytest.raises(InvalidParameterError, match="extension"):
        read_table(odd)


def test_write_geojson_joins_results(tmp_path: Path) -> None:
    import json
    import warnings

    from clrisk.exceptions import CoverageWarning
    from clrisk.io import write_geojson

    square = {
        "type": "Polygon",
        "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
    }
    geo = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"codigo": c}, "geometry": square}
            for c in ["05001", "08001", "99999"]
        ],
    }
    src = tmp_path / "b.geojson"
    src.write_text(json.dumps(geo), encoding="utf-8")
    table = pd.DataFrame(
        {
            "territory": ["05001", "08001", "11001"],
            "risk": [12.5, float("nan"), 3.0],
            "level": ["high", "low", "low"],
        }
    )
    with pytest.warns(CoverageWarning, match=r"1 territories have no boundary.*11001"):
        out = write_geojson(table, src, "codigo", tmp_path / "out.geojson")
    props = [f["properties"] for f in json.loads(out.read_text("utf-8"))["features"]]
    assert props[0] == {"codigo": "05001", "risk": 12.5, "level": "high"}
    assert props[1]["risk"] is None  # NaN -> null
    assert props[2] == {"codigo": "99999", "risk": None, "level": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoverageWarning)
        with pytest.raises(SchemaError, match="no property 'nope'"):
            write_geojson(table, src, "nope", tmp_path / "x.geojson")
