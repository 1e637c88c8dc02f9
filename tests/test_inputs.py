"""Analysts' files scored as they are written, or refused with a reason.

Regressions of an independent review of the inputs: thousands separators of
decimal-comma files read as decimal points, duplicate column names resolved
silently, ages that are not numbers scored as children, trailing separators
shifting every column, a pyarrow Table refused with a bare traceback, a CSV
path read without the dialect detection, a missing region reported at the
wrong row, and codes written "1.0" refused in CSV but read in Parquet.
"""

from __future__ import annotations

import codecs
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clrisk
from clrisk.exceptions import ClriskWarning, DataValidationError, SchemaError
from clrisk.io import read_table


@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(
        random_state=5,
        n_territories=30,
        n_regions=3,
        children_per_territory=60,
        survey_children=3000,
    )


@pytest.fixture(scope="module")
def model(country: clrisk.Country) -> clrisk.RiskModel:
    return clrisk.RiskModel(country.spec).fit(country.survey, **country.fit_kwargs)


@pytest.fixture(scope="module")
def census(country: clrisk.Country) -> pd.DataFrame:
    """The census with an expansion factor (integers from 200 to 2,999)."""
    rng = np.random.default_rng(0)
    return country.census.assign(
        fexp=rng.integers(200, 3000, len(country.census)).astype(float)
    )


def _same(a: clrisk.TerritoryRisk, b: clrisk.TerritoryRisk) -> None:
    assert a.quality.rows_used == b.quality.rows_used
    np.testing.assert_allclose(
        a.table["expected_count"], b.table["expected_count"], rtol=1e-12
    )


def _spanish(census: pd.DataFrame, path: Path) -> None:
    """As Excel saves it in a Spanish locale: ';', cp1252, weights with a
    thousands '.' (2.581) and decimal commas (0,5 added to some)."""
    out = census.astype({"fexp": object})
    fexp = census["fexp"].to_numpy() + np.where(np.arange(len(census)) % 3, 0.0, 0.5)
    out["fexp"] = [
        f"{v:,.1f}".replace(",", "X").replace(".", ",").replace("X", ".")
        if v % 1
        else f"{int(v):,}".replace(",", ".")
        for v in fexp
    ]
    out.to_csv(path, sep=";", index=False, encoding="cp1252")


def test_thousands_separators_of_a_decimal_comma_file(
    tmp_path: Path, model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    path = tmp_path / "censo.csv"
    _spanish(census, path)
    assert ";2.581" in path.read_text(encoding="cp1252")  # as Excel writes it
    with pytest.warns(ClriskWarning, match=r"'fexp'.*thousands separator"):
        table, info = read_table(path)
    assert info.decimal == ","
    fexp = census["fexp"].to_numpy() + np.where(np.arange(len(census)) % 3, 0.0, 0.5)
    np.testing.assert_array_equal(table["fexp"].astype(float), fexp)
    truth = clrisk.predict(
        model, census.assign(fexp=fexp), territory="municipio", weight="fexp"
    )
    _same(clrisk.predict(model, table, territory="municipio", weight="fexp"), truth)
    # the path itself, streamed in batches with the same detection
    with pytest.warns(ClriskWarning, match="thousands separator"):
        streamed = clrisk.predict(
            model, path, territory="municipio", weight="fexp", chunk_size=1000
        )
    _same(streamed, truth)


def test_dot_meaning_two_things_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("cod;fexp\n05001;1.234\n05002;1.5\n05003;7\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"'fexp'.*'1\.5', rows \[1\]"):
        read_table(path)
    table, _ = read_table(path, decimal=".")  # as the user says
    assert table["fexp"].tolist() == ["1.234", "1.5", "7"]


def test_decimal_points_in_a_semicolon_file_stay(tmp_path: Path) -> None:
    """Values such as 0.125 or 31.5 cannot be grouped thousands: read as
    written, without a warning."""
    path = tmp_path / "t.csv"
    path.write_text("cod;p\n05001;0.125\n05002;31.5\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table, _ = read_table(path)
    assert table["p"].tolist() == ["0.125", "31.5"]


def test_three_decimals_beside_decimal_points_are_refused(tmp_path: Path) -> None:
    """pandas' to_csv(sep=";") writes '.' decimals: a column whose values all
    have three decimals (5.394) could be 5394 or 5.394 when another column
    shows '.' as a decimal point and none a decimal comma; the user says
    which (review of 2026-12-02: it was read as 5394 with only a warning)."""
    path = tmp_path / "ind.csv"
    path.write_text(
        "cod;pct_agro;escuelas_1000\n05001;13.45;5.394\n05002;7.5;4.125\n",
        encoding="utf-8",
    )
    with pytest.raises(DataValidationError, match=r"'escuelas_1000'.*'5\.394'.*"
                       r"'pct_agro'.*'13\.45'.*--decimal \."):  # fmt: skip
        read_table(path)
    table, _ = read_table(path, decimal=".")
    assert table["escuelas_1000"].tolist() == ["5.394", "4.125"]
    # the same when the decimal point shows first, and when streamed
    flipped = tmp_path / "flipped.csv"
    flipped.write_text(
        "cod;escuelas_1000;pct_agro\n05001;5.394;13\n05002;4.125;7.5\n",
        encoding="utf-8",
    )
    with pytest.raises(DataValidationError, match="'escuelas_1000'"):
        read_table(flipped)
    # a decimal comma anywhere in the file keeps '.' as thousands
    path.write_text(
        "cod;pct_agro;fexp\n05001;13,45;5.394\n05002;7,5;4.125\n", encoding="utf-8"
    )
    with pytest.warns(ClriskWarning, match="thousands separator"):
        table, _ = read_table(path)
    assert table["fexp"].tolist() == ["5394", "4125"]


def test_thousands_beside_decimal_points_are_refused_when_streamed(
    tmp_path: Path, model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    path = tmp_path / "censo.csv"
    out = census.assign(fexp=[f"{int(v):,}".replace(",", ".") for v in census["fexp"]])
    out["h_personas"] = out["h_personas"] + 0.5  # household sizes written 4.5
    out.to_csv(path, sep=";", index=False)
    expected = r"'fexp'.*decimal point in 'h_personas'"
    with pytest.raises(DataValidationError, match=expected):
        clrisk.predict(
            model, path, territory="municipio", weight="fexp", chunk_size=500
        )


def test_text_codes_such_as_na_are_kept_in_excel(tmp_path: Path) -> None:
    """'NA' (e.g. a code for 'no answer') is a code in an Excel sheet as in a
    CSV file, not a missing value (review of 2026-12-02)."""
    pytest.importorskip("openpyxl")
    frame = pd.DataFrame(
        {"cod": ["05001", "05002", "05003"], "etnia": ["NA", "1", None]}
    )
    frame.to_excel(tmp_path / "t.xlsx", index=False)
    frame.to_csv(tmp_path / "t.csv", index=False)
    from_excel, _ = read_table(tmp_path / "t.xlsx")
    from_csv, _ = read_table(tmp_path / "t.csv")
    assert from_excel["etnia"].tolist()[:2] == ["NA", "1"]
    assert pd.isna(from_excel["etnia"].iloc[2])
    pd.testing.assert_frame_equal(from_excel, from_csv)


def test_trailing_separators_and_extra_fields(
    tmp_path: Path, model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    lines = census.to_csv(sep=";", index=False, lineterminator="\n").splitlines()
    path = tmp_path / "trail.csv"
    path.write_text("\n".join([lines[0]] + [x + ";" for x in lines[1:]]) + "\n")
    table, info = read_table(path)
    assert info.columns == census.shape[1]
    assert table["municipio"].tolist() == census["municipio"].tolist()
    truth = clrisk.predict(model, census, territory="municipio")
    _same(clrisk.predict(model, table, territory="municipio"), truth)
    _same(clrisk.predict(model, path, territory="municipio", chunk_size=999), truth)
    # a field too many (a separator inside an unquoted value): on the first
    # data line or a later one, an error, never a line silently cut
    for at, message in ((1, "first data line has 18 fields"), (500, "line 501")):
        extra = tmp_path / f"extra{at}.csv"
        shifted = [*lines[:at], lines[at] + ";9", *lines[at + 1 :]]
        extra.write_text("\n".join(shifted) + "\n")
        with pytest.raises(DataValidationError, match=message):
            read_table(extra)
        with pytest.raises(DataValidationError, match=message):
            clrisk.predict(model, extra, territory="municipio", chunk_size=100)


def test_mac_line_ends_and_utf16(tmp_path: Path, census: pd.DataFrame) -> None:
    head = census.head(50)
    text = head.to_csv(sep="\t", index=False, lineterminator="\n")
    mac = tmp_path / "mac.csv"
    mac.write_bytes(text.replace("\n", "\r").encode("cp1252"))
    unicode_text = tmp_path / "unicode.txt"
    unicode_text.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    for path, encoding in ((mac, "utf-8-sig"), (unicode_text, "utf-16")):
        table, info = read_table(path)
        assert (info.rows, info.encoding) == (50, encoding)
        assert table["municipio"].tolist() == head["municipio"].tolist()


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_duplicate_column_names(
    tmp_path: Path, model: clrisk.RiskModel, census: pd.DataFrame, suffix: str
) -> None:
    """A second 'p_sexo' column: refused by every reader, never one copy used."""
    dup = census.head(200).copy()
    dup.insert(3, "copy", "H")
    dup.columns = [c if c != "copy" else "p_sexo" for c in dup.columns]
    path = tmp_path / f"dup{suffix}"
    if suffix == ".csv":
        dup.to_csv(path, index=False)
    elif suffix == ".xlsx":
        pytest.importorskip("openpyxl")
        dup.to_excel(path, index=False)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = [pa.array(dup.iloc[:, j].astype(str)) for j in range(dup.shape[1])]
        pq.write_table(pa.Table.from_arrays(arrays, names=list(dup.columns)), path)
    with pytest.raises(SchemaError, match=r"several columns named \['p_sexo'\]"):
        read_table(path)
    if suffix != ".xlsx":  # predict reads Excel through read_table (the CLI)
        with pytest.raises(SchemaError, match=r"several columns named \['p_sexo'\]"):
            clrisk.predict(model, path, territory="municipio")


def test_ages_that_are_not_numbers_or_missing(
    model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    frame = census.assign(edad=census["p_edad"].astype(str).astype(object))
    bad = frame.copy()
    bad.loc[[3, 7], "edad"] = ["30 años", "treinta"]
    with pytest.raises(DataValidationError, match=r"'edad'.*not numbers.*row 3"):
        clrisk.predict(model, bad, territory="municipio", age="edad", age_range=(5, 17))
    blank = frame.copy()
    blank.loc[[4, 9, 2000], "edad"] = None
    with pytest.raises(DataValidationError, match=r"'edad'.*missing ages.*row 2000"):
        clrisk.predict(
            model, blank, territory="municipio", age="edad", age_range=(5, 17)
        )
    dropped = clrisk.predict(
        model,
        blank,
        territory="municipio",
        age="edad",
        age_range=(5, 17),
        on_invalid="drop",
        chunk_size=700,
    )
    assert dropped.quality.rejected == {"missing age ('edad')": 3}
    assert dropped.quality.rows_used == len(census) - 3
    assert dropped.quality.rows_read == len(census)


def test_missing_region_at_its_row(
    model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    frame = census.copy()
    frame.loc[3001, "departamento"] = None
    with pytest.raises(DataValidationError, match=r"'departamento'.*row 3001"):
        clrisk.predict(
            model, frame, territory="municipio", region="departamento", chunk_size=1000
        )
    dropped = clrisk.predict(
        model,
        frame,
        territory="municipio",
        region="departamento",
        on_invalid="drop",
        chunk_size=1000,
    )
    assert dropped.quality.rejected == {"missing region in 'departamento'": 1}
    assert dropped.quality.rows_used == len(census) - 1


def test_pyarrow_table(model: clrisk.RiskModel, census: pd.DataFrame) -> None:
    import pyarrow as pa

    table = pa.Table.from_pandas(census, preserve_index=False)
    truth = clrisk.predict(model, census, territory="municipio")
    _same(clrisk.predict(model, table, territory="municipio", chunk_size=500), truth)


def test_integer_codes_written_with_a_zero_fraction(
    tmp_path: Path, model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    """A code column with a missing value is float in pandas: CSV holds 1.0,
    Parquet 1.0 as a number; both mean code 1."""
    frame = census.astype({"p_asiste": float})
    frame.loc[5, "p_asiste"] = np.nan
    csv, parquet = tmp_path / "f.csv", tmp_path / "f.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet)
    assert ",1.0," in csv.read_text()
    a = clrisk.predict(model, csv, territory="municipio", on_invalid="drop")
    b = clrisk.predict(model, parquet, territory="municipio", on_invalid="drop")
    _same(a, b)
    assert a.quality.rejected == {"missing value in 'p_asiste'": 1}


def test_sheet_named_by_a_number(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    path = tmp_path / "indicadores.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"a": ["x"]}).to_excel(book, sheet_name="notas", index=False)
        pd.DataFrame({"b": ["y"]}).to_excel(book, sheet_name="2018", index=False)
    table, info = read_table(path, sheet=2018)
    assert (info.sheet, list(table.columns)) == ("2018", ["b"])
    table, info = read_table(path, sheet=0)
    assert info.sheet == "notas"


# ------------------------------------------------ regressions from the second review
def test_streamed_decimal_commas_do_not_depend_on_the_batch_size(
    tmp_path: Path, model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    """'.' as thousands in one row, as a decimal point in another: refused
    whatever the batches (was: read one way or the other per batch)."""
    frame = census.astype({"h_personas": object})
    frame.loc[10, "h_personas"] = "1.005"
    frame.loc[3500, "h_personas"] = "4.5"
    path = tmp_path / "t.csv"
    frame.to_csv(path, sep=";", index=False)
    for chunk_size in (1000, 10**6):
        with (
            warnings.catch_warnings(),  # the first batch's '1.005' warns
            pytest.raises(DataValidationError, match=r"'h_personas'.*rows \[3500\]"),
        ):
            warnings.simplefilter("ignore", ClriskWarning)
            clrisk.predict(model, path, territory="municipio", chunk_size=chunk_size)


def test_stray_separator_in_a_file_with_trailing_separators(
    tmp_path: Path, model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    """Every line ends with ';' and one value holds a ';': its line is refused
    (was: its fields shifted one place, the last one dropped)."""
    lines = census.to_csv(sep=";", index=False, lineterminator="\n").splitlines()
    lines = [lines[0]] + [x + ";" for x in lines[1:]]
    fields = lines[700].split(";")
    fields[3] = "X;" + fields[3]
    lines[700] = ";".join(fields)[:-1]  # as many fields as the trailing lines
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match=r"more fields.*row 699"):
        read_table(path)
    with pytest.raises(DataValidationError, match=r"more fields.*row 699"):
        clrisk.predict(model, path, territory="municipio", chunk_size=300)


def test_code_map_keys_with_a_zero_fraction(
    country: clrisk.Country, census: pd.DataFrame
) -> None:
    """A code map written {"1.0": "yes", "0.0": "no"} still reads the data's
    "1.0" and "0.0" (which code as "1" and "0")."""
    import dataclasses

    from clrisk.features import encode
    from clrisk.spec import Source

    feats = []
    for f in country.spec.features:
        if f.name == "migrant":
            sources = {
                **f.sources,
                "census": Source("p_migr", {"1.0": "yes", "0.0": "no"}),
            }
            f = dataclasses.replace(f, sources=sources)
        feats.append(f)
    spec = dataclasses.replace(country.spec, features=feats)
    frame = census.assign(p_migr=census["p_migr"].map({1: "1.0", 0: "0.0"}))
    coded = encode(
        spec,
        frame,
        source="census",
        territory="municipio",
        indicators=country.indicators,
    )
    assert coded.quality.rows_used == len(census)


def test_a_filtered_table_does_not_name_its_file(
    tmp_path: Path, model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    """Row numbers of a filtered table are positions in it, not in the file:
    the message does not pretend otherwise."""
    path = tmp_path / "t.csv"
    census.assign(
        p_etnia=np.where(np.arange(len(census)) == 2000, "ZZ", census["p_etnia"])
    ).to_csv(path, index=False)
    table, _ = read_table(path)
    with pytest.raises(DataValidationError, match=rf"in '{path}'.*first row 2000"):
        clrisk.predict(model, table, territory="municipio")
    girls = table[table["p_sexo"] == table.loc[2000, "p_sexo"]]
    with pytest.raises(DataValidationError) as info:
        clrisk.predict(model, girls, territory="municipio")
    assert str(path) not in str(info.value)


def test_streamed_encodings_beyond_the_first_megabyte(
    tmp_path: Path, model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    big = pd.concat([census] * 6, ignore_index=True)  # about 2 MB of CSV
    big.loc[len(big) - 1, "p_etnia"] = "NIÑ"  # cp1252 only near the end
    truth = clrisk.predict(
        model,
        big.assign(p_etnia=big["p_etnia"].replace("NIÑ", "NIN")),
        territory="municipio",
        on_invalid="drop",
    )
    late = tmp_path / "late.csv"
    big.to_csv(late, index=False, encoding="cp1252")
    got = clrisk.predict(model, late, territory="municipio", on_invalid="drop")
    assert got.quality.rejected == {"unknown code in 'p_etnia'": 1}
    assert got.quality.rows_used == truth.quality.rows_used - 1
    wide = tmp_path / "unicode.txt"
    wide.write_bytes(
        codecs.BOM_UTF16_LE
        + big.to_csv(sep="\t", index=False, lineterminator="\n").encode("utf-16-le")
    )
    streamed = clrisk.predict(model, wide, territory="municipio", on_invalid="drop")
    assert streamed.quality.rows_used == got.quality.rows_used


# ------------------------------------------------ regressions from the third review
@pytest.mark.parametrize(
    "text",
    [
        "a;b;c\n\n1;2;3;4\n5;6;7\n",  # a blank line before the first record
        "a;b;c\n1;2;3;;\n4;5;6;;\n7;8;9;X;\n",  # two trailing fields, then a value
    ],
)
def test_a_field_too_many_is_never_cut(tmp_path: Path, text: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(DataValidationError, match="fields"):
        read_table(path)


def test_trailing_empty_fields_read(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a;b;c\n1;2;3;;\n4;5;6;;\n")
    table, _ = read_table(path)
    assert table.to_numpy().tolist() == [["1", "2", "3"], ["4", "5", "6"]]


def test_separator_of_the_header_with_decimal_commas_and_trailing_ones(
    tmp_path: Path,
) -> None:
    """Data lines ending in ';' with decimal commas: the ',' is steadier
    there than the ';', but the header says ';'."""
    lines = ["cod;p"] + [f"{5000 + i:05d};{i},5;" for i in range(60)]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    table, info = read_table(path)
    assert (info.separator, info.decimal) == (";", ",")
    assert table["p"].iloc[3] == "3.5"


def test_utf8_character_across_the_first_megabyte(tmp_path: Path) -> None:
    from clrisk.stream import open_frame

    head = "cod;nombre;n\n" + "05001;abc;1\n" * 87_000  # 1,044,013 bytes
    k = 2**20 - 1 - len(head.encode()) - len("05001;")
    text = head + "05001;" + "x" * k + "Ñandú;1\n" + "05001;Ñandú;1\n" * 3
    assert text.encode().index("Ñ".encode()) == 2**20 - 1  # across the boundary
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    source = open_frame(path)
    rows = pd.concat(chunk for _, chunk in source.batches(["nombre"], 50_000, ()))
    assert rows["nombre"].iloc[-1] == "Ñandú"


def test_code_columns_keep_their_dots_when_streamed(
    tmp_path: Path, model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    """Territory codes written 05.001 in a decimal-comma file are codes, not
    thousands: read as written (and matched to the indicator table's)."""
    from clrisk.stream import open_frame

    frame = census.assign(
        municipio=census["municipio"].str[:2] + "." + census["municipio"].str[2:]
    )
    path = tmp_path / "t.csv"
    frame.to_csv(path, sep=";", index=False)
    source = open_frame(path)
    chunk = next(source.batches(["municipio", "h_personas"], 1000, ["municipio"]))[1]
    assert chunk["municipio"].iloc[0] == frame["municipio"].iloc[0]


def test_a_separator_given_brings_its_decimal_mark(tmp_path: Path) -> None:
    from clrisk.stream import open_frame

    path = tmp_path / "t.txt"
    path.write_text("cod;p\n05001;1,5\n05002;2\n")
    source = open_frame(path, sep=";")
    chunk = next(source.batches(["p"], 10, ()))[1]
    assert chunk["p"].tolist() == ["1.5", "2"]


def test_code_columns_are_kept_as_written(tmp_path: Path) -> None:
    """In a decimal-comma file, codes such as 11.001 are codes, not 11001: as
    clrisk.predict keeps them when it streams the path (review of
    2026-12-02: read_table rewrote them, and refused '05.001')."""
    path = tmp_path / "t.csv"
    path.write_text(
        "municipio;p_edad;x\n11.001;7;1,5\n13.101;8;2,5\n05.001;9;3\n",
        encoding="utf-8",
    )
    table, _ = read_table(path, codes=["municipio"])
    assert table["municipio"].tolist() == ["11.001", "13.101", "05.001"]
    assert table["x"].tolist() == ["1.5", "2.5", "3"]
    with pytest.raises(DataValidationError, match="'municipio'"):
        read_table(path)  # without knowing: '.' both ways in one column


@pytest.mark.parametrize(
    "columns",
    [["poblacion", "cuestionario", "tasa"], ["tasa", "cuestionario", "poblacion"]],
)
def test_the_decimal_mark_is_judged_on_every_column(
    tmp_path: Path, columns: list[str]
) -> None:
    """A decimal comma anywhere in the file settles it, whatever the column
    order (review of 2026-12-02: a column to the right was never seen)."""
    values = {"poblacion": ["12.345", "980"], "cuestionario": ["2.1", "2.1"],
              "tasa": ["3,5", "12,25"]}  # fmt: skip
    frame = pd.DataFrame(
        {"codigo": ["05001", "05002"], **{c: values[c] for c in columns}}
    )
    path = tmp_path / "t.csv"
    frame.to_csv(path, sep=";", index=False)
    with pytest.warns(ClriskWarning, match="'poblacion'"):
        table, _ = read_table(path)
    assert table["poblacion"].tolist() == ["12345", "980"]
    assert table["tasa"].tolist() == ["3.5", "12.25"]
    assert table["cuestionario"].tolist() == ["2.1", "2.1"]


def test_text_marker_with_a_dot_in_a_decimal_comma_column_is_not_a_number(
    tmp_path: Path, model: clrisk.RiskModel, census: pd.DataFrame
) -> None:
    """A 'no data' marker such as 's.d.' among decimal-comma numbers is named
    as a value that is not a number, by row (was: refused as '.' read two
    ways, as if it were a decimal point)."""
    frame = census.astype({"h_personas": object})
    frame.loc[5, "h_personas"] = "2,5"
    frame.loc[40, "h_personas"] = "s.d."
    path = tmp_path / "t.csv"
    frame.to_csv(path, sep=";", index=False)
    with pytest.raises(DataValidationError, match=r"not numbers.*row 40.*'s\.d\.'"):
        clrisk.predict(model, path, territory="municipio")
