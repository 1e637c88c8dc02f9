"""Tests of clrisk.features: harmonised coding of survey, census and indicators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import finite_floats, mixed_code_columns, same_code_spellings

import clrisk
from clrisk.datasets import demo_spec
from clrisk.exceptions import DataValidationError, InvalidParameterError, SchemaError
from clrisk.features import (
    CodedFrame,
    Workspace,
    _sorted_text_codes,
    design_matrix,
    encode,
    indicator_values,
    to_text_codes,
)
from clrisk.spec import INDICATORS, Feature, FeatureSpec, Source


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def country() -> clrisk.Country:
    return clrisk.make_country(random_state=0, n_territories=40, survey_children=3000)


@pytest.fixture(scope="module")
def same_children(country: clrisk.Country) -> pd.DataFrame:
    """The census rows of exactly the children in the survey, in survey order.

    The generator numbers households the same way in both tables (``id_viv``
    and ``hogar_id``) and keeps children in generation order, so the census
    rows of the sampled households are the survey's children.
    """
    census = country.census
    rows = census[census["hogar_id"].isin(country.survey["id_viv"])]
    return rows.reset_index(drop=True)


def _encode_survey(
    country: clrisk.Country, table: pd.DataFrame, **kw: object
) -> CodedFrame:
    return encode(
        country.spec,
        table,
        source="survey",
        territory="cod_mun",
        indicators=country.indicators,
        **kw,  # type: ignore[arg-type]
    )


def _levels(coded: CodedFrame) -> pd.DataFrame:
    """Decode a CodedFrame's codes back to level names."""
    return pd.DataFrame(
        {
            f.name: np.asarray(f.levels, dtype=object)[coded.codes[:, j]]
            for j, f in enumerate(coded.spec.categorical)
        }
    )


# A small spec of features taken from the demo spec, plus one territory feature.
SMALL = ("sex", "attends_school", "ethnicity", "head_schooling", "head_branch")


def _small_spec() -> FeatureSpec:
    demo = demo_spec()
    feats = [demo.feature(n) for n in (*SMALL, "household_size", "agri_share")]
    return FeatureSpec(feats, territory=demo.territory)


def _indicators() -> pd.DataFrame:
    # "5001" is a decoy: a different territory from "05001".
    return pd.DataFrame(
        {
            "codigo": ["05001", "05004", "10001", "5001"],
            "pct_agro": [40.0, 10.0, 25.0, 99.0],
        }
    )


# -------------------------------------------------------------- harmonisation
def test_survey_and_census_codes_of_hand_built_children_agree() -> None:
    """Three children written once with survey codes and once with census codes."""
    spec = _small_spec()
    survey = pd.DataFrame(
        {
            "sexo": [2, 1, 2],
            "asiste": [1, 2, 1],
            "etnia": [1, 3, 2],
            "jefe_educ": [2, 0, 3],
            "jefe_rama": ["A", "S", "G"],
            "tot_pers": [5, 3, 8],
            "cod_mun": ["05001", "05004", "10001"],
        }
    )
    census = pd.DataFrame(
        {  # other names, codes and dtypes for the same facts
            "municipio": ["05001", "05004", "10001"],
            "p_sexo": ["M", "H", "M"],
            "p_asiste": [1.0, 0.0, 1.0],
            "p_etnia": ["IND", "NIN", "AFR"],
            "j_nivel": np.array([3, 1, 4], dtype=np.int8),
            "j_rama": pd.Series(["1", " 5", "4 "], dtype=object),
            "h_personas": np.array([5, 3, 8], dtype=np.int16),
        }
    )
    expected_levels = pd.DataFrame(
        {
            "sex": ["female", "male", "female"],
            "attends_school": ["yes", "no", "yes"],
            "ethnicity": ["indigenous", "none", "afro"],
            "head_schooling": ["secondary", "none", "tertiary"],
            "head_branch": ["agriculture", "services", "commerce"],
        }
    )
    expected_numerics = np.array([[5.0, 0.40], [3.0, 0.10], [8.0, 0.25]])
    ind = _indicators()
    a = encode(spec, survey, source="survey", territory="cod_mun", indicators=ind)
    b = encode(spec, census, source="census", territory="municipio", indicators=ind)
    for coded in (a, b):
        pd.testing.assert_frame_equal(
            _levels(coded), expected_levels, check_dtype=False
        )
        np.testing.assert_allclose(coded.numerics, expected_numerics, rtol=1e-15)
        assert coded.territories.tolist() == ["05001", "05004", "10001"]
        assert coded.territory.tolist() == [0, 1, 2]
        assert coded.codes.dtype == np.int8  # no feature has over 127 levels
        assert coded.numerics.dtype == np.float64
        assert coded.quality.rows_used == 3 and coded.quality.reconciles
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.numerics, b.numerics)


def test_survey_and_census_of_the_same_children_code_identically(
    country: clrisk.Country, same_children: pd.DataFrame
) -> None:
    survey = country.survey
    assert len(same_children) == len(survey)
    assert (same_children["p_edad"].to_numpy() == survey["edad"].to_numpy()).all()
    a = _encode_survey(country, survey, weight="fexp")
    b = encode(
        country.spec,
        same_children,
        source="census",
        territory="municipio",
        indicators=country.indicators,
    )
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.numerics, b.numerics)
    np.testing.assert_array_equal(
        a.territories[a.territory], b.territories[b.territory]
    )
    np.testing.assert_array_equal(design_matrix(a), design_matrix(b))
    # not trivially equal: every level of every feature occurs
    for j, f in enumerate(country.spec.categorical):
        assert np.unique(a.codes[:, j]).size == len(f.levels), f.name
    # and the coding is right, checked against raw columns
    lv = _levels(a)
    assert ((lv["sex"] == "female") == (survey["sexo"] == 2)).all()
    assert ((lv["sex"] == "female") == (same_children["p_sexo"] == "M")).all()
    age = survey["edad"].to_numpy()
    band = np.select(
        [age <= 9, age <= 13, age <= 15], ["5-9", "10-13", "14-15"], "16-17"
    )
    assert (lv["age_group"].to_numpy() == band).all()
    np.testing.assert_array_equal(a.weight, survey["fexp"].to_numpy())


def test_census_codes_every_child(country: clrisk.Country) -> None:
    coded = encode(
        country.spec,
        country.census,
        source="census",
        territory="municipio",
        indicators=country.indicators,
    )
    assert coded.n == len(country.census)
    assert coded.quality.rows_rejected == 0
    assert coded.territories.tolist() == sorted(country.indicators["codigo"])
    np.testing.assert_array_equal(coded.rows, np.arange(len(country.census)))


# ---------------------------------------------------------------- text codes
def test_to_text_codes_normalises_numbers_and_blanks() -> None:
    col = pd.Series([1, 1.0, "1", " 1 ", 2.5, None, "a ", True], dtype=object)
    codes, uniques = to_text_codes(col)
    text = [uniques[c] if c >= 0 else None for c in codes]
    assert text == ["1", "1", "1", "1", "2.5", None, "a", "1"]
    assert codes.dtype == np.int64


@settings(max_examples=60)
@given(
    values=st.lists(
        st.sampled_from(["05001", " 05001", "05004", "10001", "a", None]),
        min_size=0,
        max_size=30,
    ),
    unused=st.lists(st.sampled_from(["99999", "05002", "x "]), max_size=3),
    shuffle=st.randoms(use_true_random=False),
)
def test_sorted_text_codes_same_for_categorical_and_text(
    values: list[str | None], unused: list[str], shuffle: object
) -> None:
    """A Parquet dictionary column (categorical, with unused categories in any
    order) codes like the same values as text: sorted distinct codes present,
    blanks stripped, missing values -1."""
    cats = list(dict.fromkeys([v for v in values if v is not None] + unused))
    shuffle.shuffle(cats)  # type: ignore[attr-defined]
    as_text = pd.Series(values, dtype=object)
    as_cat = pd.Series(pd.Categorical(values, categories=cats))
    expected = sorted({v.strip() for v in values if v is not None})
    for col in (as_text, as_cat):
        # `out` (a workspace's memory, holding anything) is used or not
        for out in (None, np.full(len(values), -7, dtype=np.int64)):
            index, distinct = _sorted_text_codes(col, out)
            assert list(distinct) == expected
            assert index.dtype == np.int64
            decoded = [distinct[i] if i >= 0 else None for i in index]
            assert decoded == [v.strip() if v is not None else None for v in values]


def test_texts_of_mixed_values_as_one_by_one() -> None:
    """Text values are stripped on the fast path; any other value (a number,
    a bool, a numpy string) takes the general one."""
    from clrisk.features import _text, _texts

    for values in (
        [" 05001", "05002 ", "\t7"],
        [" 05001", 1.0, True, np.str_(" b "), 3],
        [],
    ):
        array = np.asarray(values, dtype=object)
        assert _texts(array) == [_text(v) for v in values]


def test_codes_are_int16_beyond_127_levels() -> None:
    levels = tuple(f"l{k}" for k in range(200))
    feat = Feature("f", "categorical", {"s": Source("raw")}, levels=levels)
    spec = FeatureSpec([feat], train_source="s", frame_source="s")
    table = pd.DataFrame({"raw": ["l0", "l199", "l150"]})
    coded = encode(spec, table, source="s")
    assert coded.codes.dtype == np.int16
    assert coded.codes[:, 0].tolist() == [0, 199, 150]


def test_workspace_reuses_memory_and_codes_the_same(country: clrisk.Country) -> None:
    """Pieces coded in one workspace (largest first, then smaller, then larger
    again) equal pieces coded on their own; the coded arrays are the
    workspace's, and a column already holding level indices in the code type
    is the input's own (not a copy)."""
    space = Workspace()
    census = country.census
    names = [f.name for f in country.spec.categorical]
    sex, attends = names.index("sex"), names.index("attends_school")
    assert names[0] == "age_group"
    assert census["p_asiste"].dtype == np.int8  # 0/1: level indices already
    kept: list[np.ndarray] = []
    for start, stop in [(0, 500), (500, 520), (520, 1400)]:
        piece = census.iloc[start:stop]
        kw = dict(source="census", territory="municipio", indicators=country.indicators)
        alone = encode(country.spec, piece, **kw)  # type: ignore[arg-type]
        shared = encode(country.spec, piece, workspace=space, **kw)  # type: ignore[arg-type]
        np.testing.assert_array_equal(shared.codes, alone.codes)
        np.testing.assert_array_equal(shared.numerics, alone.numerics)
        np.testing.assert_array_equal(shared.territory, alone.territory)
        assert list(shared.territories) == list(alone.territories)
        assert shared.codes.flags.f_contiguous and shared.numerics.flags.f_contiguous
        own = shared.code_columns[attends]
        assert np.shares_memory(own, piece["p_asiste"].to_numpy())
        assert not own.flags.writeable  # the caller's data, read only
        assert not np.shares_memory(shared.code_columns[sex], census.to_numpy())
        # the first feature's codes (age groups from ages) start the workspace
        kept.append(shared.code_columns[0])
    # the first two pieces share memory (the second fits in the first's);
    # the third, larger, needed more
    assert np.shares_memory(kept[0], kept[1])
    assert not np.shares_memory(kept[1], kept[2])


def test_numeric_sum_overflow_is_not_mistaken_for_bad_values() -> None:
    """Huge finite values whose sum overflows are kept; infinities are not."""
    feat = Feature("x", "numeric", {"s": Source("x")})
    spec = FeatureSpec([feat], train_source="s", frame_source="s")
    coded = encode(spec, pd.DataFrame({"x": [1e308, 1e308, 1.0]}), source="s")
    assert coded.numerics[:, 0].tolist() == [1e308, 1e308, 1.0]
    with pytest.raises(DataValidationError, match="infinite"):
        encode(spec, pd.DataFrame({"x": [1e308, -np.inf, 1.0]}), source="s")


@given(data=st.data())
def test_codes_match_by_text_whatever_the_spelling(data: st.DataObject) -> None:
    col = data.draw(mixed_code_columns([1, 2, 3, 10], n=12))
    levels = {"1": "one", "2": "two", "3": "three", "10": "ten"}
    feat = Feature(
        "f", "categorical", {"s": Source("raw", levels)}, levels=tuple(levels.values())
    )
    spec = FeatureSpec([feat], train_source="s", frame_source="s")
    coded = encode(spec, pd.DataFrame({"raw": col}), source="s")
    expected = [list(levels).index(str(c)) for c in col.attrs["expected"]]
    assert coded.codes[:, 0].tolist() == expected


@pytest.mark.parametrize("spelling", same_code_spellings(7), ids=repr)
def test_each_spelling_matches_code(spelling: object) -> None:
    feat = Feature(
        "f", "binary", {"s": Source("raw", {"7": "b", "0": "a"})}, levels=("a", "b")
    )
    spec = FeatureSpec([feat], train_source="s", frame_source="s")
    coded = encode(
        spec, pd.DataFrame({"raw": pd.Series([spelling, 0], dtype=object)}), source="s"
    )
    assert coded.codes[:, 0].tolist() == [1, 0]


def test_text_matching_is_not_numeric_matching() -> None:
    # "01" and 1.5 are different codes from "1": they are reported, not guessed.
    feat = Feature(
        "f", "binary", {"s": Source("raw", {"1": "a", "2": "b"})}, levels=("a", "b")
    )
    spec = FeatureSpec([feat], train_source="s", frame_source="s")
    table = pd.DataFrame({"raw": pd.Series(["01", 1.5, 1, "01"], dtype=object)})
    with pytest.raises(DataValidationError) as info:
        encode(spec, table, source="s")
    assert info.value.n_bad == 3
    assert "'01' (2 rows, first row 0)" in str(info.value)
    assert "'1.5' (1 row, first row 1)" in str(info.value)


def test_levels_used_directly_without_code_map() -> None:
    feat = Feature("area", "binary", {"s": Source("area")}, levels=("urban", "rural"))
    spec = FeatureSpec([feat], train_source="s", frame_source="s")
    coded = encode(
        spec, pd.DataFrame({"area": ["rural", " urban", "rural "]}), source="s"
    )
    assert coded.codes[:, 0].tolist() == [1, 0, 1]


# ----------------------------------------------------------------- numerics
@given(
    shares=st.lists(finite_floats, min_size=1, max_size=30),
    scale=st.sampled_from([0.01, 1.0, 2.5, -1.0, 1e-3]),
)
def test_numeric_scale_converts_units(shares: list[float], scale: float) -> None:
    share = np.asarray(shares)
    table = pd.DataFrame({"share": share, "pct": share * 100.0, "raw": share})
    as_pct = FeatureSpec(
        [Feature("x", "numeric", {"s": Source("pct", scale=0.01)})],
        train_source="s",
        frame_source="s",
    )
    as_share = FeatureSpec(
        [Feature("x", "numeric", {"s": Source("share")})],
        train_source="s",
        frame_source="s",
    )
    scaled = FeatureSpec(
        [Feature("x", "numeric", {"s": Source("raw", scale=scale)})],
        train_source="s",
        frame_source="s",
    )
    a = encode(as_pct, table, source="s").numerics[:, 0]
    b = encode(as_share, table, source="s").numerics[:, 0]
    np.testing.assert_array_equal(b, share)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(
        encode(scaled, table, source="s").numerics[:, 0], share * scale
    )


@given(
    pcts=st.lists(
        st.floats(0, 100, allow_nan=False), min_size=2, max_size=10, unique=True
    )
)
def test_indicator_scale_converts_units(pcts: list[float]) -> None:
    codes = [f"{i:05d}" for i in range(len(pcts))]
    ind = pd.DataFrame({"k": codes, "pct": pcts, "share": np.asarray(pcts) / 100.0})

    def spec(src: Source) -> FeatureSpec:
        f = Feature("agri", "numeric", {INDICATORS: src}, dimension="territory")
        return FeatureSpec([f], territory={INDICATORS: "k"})

    a = indicator_values(spec(Source("pct", scale=0.01)), ind)
    b = indicator_values(spec(Source("share")), ind)
    assert a.index.tolist() == codes
    np.testing.assert_allclose(a["agri"], b["agri"], rtol=1e-12, atol=1e-300)


def test_numeric_dtypes_are_read_as_numbers() -> None:
    spec = FeatureSpec(
        [Feature("x", "numeric", {"s": Source("x")})],
        train_source="s",
        frame_source="s",
    )
    for col in (
        pd.Series([1, 2, 3], dtype="Int64"),
        pd.Series(["1", "2.0", "3"]),
        pd.Series([True, False, True]),
        pd.Series([1.0, 2.0, 3.0], dtype=np.float32),
    ):
        got = encode(spec, pd.DataFrame({"x": col}), source="s").numerics[:, 0]
        np.testing.assert_array_equal(got, np.asarray(col, dtype=np.float64))


# ---------------------------------------------------------------- territories
def _territory_spec() -> FeatureSpec:
    sex = demo_spec().feature("sex")
    agri = demo_spec().feature("agri_share")
    return FeatureSpec(
        [sex, agri], territory={"survey": "cod_mun", INDICATORS: "codigo"}
    )


def test_indicators_join_by_text_code_keeping_leading_zeros() -> None:
    table = pd.DataFrame({"sexo": [1, 2, 1], "cod_mun": ["05001", "5001", "05001"]})
    coded = encode(
        _territory_spec(),
        table,
        source="survey",
        territory="cod_mun",
        indicators=_indicators(),
    )
    np.testing.assert_allclose(coded.numerics[:, 0], [0.40, 0.99, 0.40])
    assert coded.territories.tolist() == ["05001", "5001"]
    assert coded.territory.tolist() == [0, 1, 0]


def test_numeric_territory_column_loses_leading_zeros_and_says_so() -> None:
    table = pd.DataFrame({"sexo": [1, 2, 1, 2], "cod_mun": [5004, 5004, 10001, 5004]})
    with pytest.raises(DataValidationError) as info:
        encode(
            _territory_spec(),
            table,
            source="survey",
            territory="cod_mun",
            indicators=_indicators(),
        )
    err = info.value
    assert err.column == "cod_mun"
    assert err.n_bad == 3
    msg = str(err)
    assert "leading zeros" in msg
    assert "'5004' (3 rows," in msg
    assert "10001" not in msg  # that one is found: its code has no leading zero


def test_numeric_indicator_key_gets_a_dtype_hint() -> None:
    ind = pd.DataFrame({"codigo": [5001, 5004], "pct_agro": [40.0, 10.0]})
    table = pd.DataFrame({"sexo": [1, 2], "cod_mun": ["05001", "5004"]})
    with pytest.raises(DataValidationError, match="dtype=str") as info:
        encode(
            _territory_spec(),
            table,
            source="survey",
            territory="cod_mun",
            indicators=ind,
        )
    assert info.value.n_bad == 1
    assert "'05001' (1 row," in str(info.value)


def test_territory_features_match_a_pandas_merge(country: clrisk.Country) -> None:
    coded = _encode_survey(country, country.survey)
    merged = country.survey[["cod_mun"]].merge(
        country.indicators, left_on="cod_mun", right_on="codigo", how="left"
    )
    n_child = len(country.spec.numeric)
    for q, f in enumerate(country.spec.territory_features):
        src = f.source(INDICATORS)
        expected = merged[src.column].to_numpy(dtype=float) * src.scale
        np.testing.assert_array_equal(coded.numerics[:, n_child + q], expected)


def test_one_territory_code_is_one_territory_whatever_its_spelling() -> None:
    spec = FeatureSpec(
        [Feature("x", "numeric", {"s": Source("x")})],
        train_source="s",
        frame_source="s",
    )
    table = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0],
            "t": pd.Series(["05001", " 05001", "05002"], dtype=object),
        }
    )
    coded = encode(spec, table, source="s", territory="t")
    assert coded.territories.tolist() == ["05001", "05002"]
    assert coded.territory.tolist() == [0, 0, 1]


# ------------------------------------------------------------ bad input: errors
def test_missing_column_shows_the_diff(country: clrisk.Country) -> None:
    table = country.survey.drop(columns=["sexo", "tot_pers"])
    with pytest.raises(SchemaError) as info:
        _encode_survey(country, table)
    msg = str(info.value)
    missing = msg.split("Missing: ")[1].split(";")[0]
    assert missing == "'sexo', 'tot_pers'"
    assert "'survey'" in msg
    assert "sexo" not in info.value.received


def test_missing_territory_or_weight_column_is_a_schema_error(
    country: clrisk.Country,
) -> None:
    with pytest.raises(SchemaError, match="Missing: 'peso'"):
        _encode_survey(country, country.survey, weight="peso")
    with pytest.raises(SchemaError, match="Missing: 'municipio'"):
        encode(
            country.spec,
            country.survey,
            source="survey",
            territory="municipio",
            indicators=country.indicators,
        )


def test_unknown_codes_listed_with_counts(country: clrisk.Country) -> None:
    table = country.survey.head(50).copy()
    table["etnia"] = table["etnia"].astype(object)
    table.loc[[3, 7, 9], "etnia"] = 9
    table.loc[[20], "etnia"] = "X"
    with pytest.raises(DataValidationError) as info:
        _encode_survey(country, table)
    err = info.value
    assert err.column == "etnia"
    assert err.n_bad == 4
    msg = str(err)
    assert "'9' (3 rows," in msg and "'X' (1 row," in msg
    assert "ethnicity" in msg and "4 rows" in msg
    assert "on_invalid='drop'" in msg


def test_missing_categorical_values_name_rows(country: clrisk.Country) -> None:
    table = country.survey.head(30).astype({"asiste": "float64"})
    table.loc[[4, 11], "asiste"] = np.nan
    with pytest.raises(DataValidationError) as info:
        _encode_survey(country, table, row_offset=1000)
    err = info.value
    assert err.column == "asiste"
    assert err.n_bad == 2
    assert err.examples == ["row 1004", "row 1011"]
    assert "attends_school" in str(err)


@pytest.mark.parametrize("policy", ["error", "drop"])
def test_decimal_comma_in_numeric_column(country: clrisk.Country, policy: str) -> None:
    table = country.survey.head(20).astype({"tot_pers": object})
    table.loc[[2, 5], "tot_pers"] = ["3,5", "4,0"]
    with pytest.raises(DataValidationError) as info:
        _encode_survey(country, table, on_invalid=policy)
    err = info.value
    assert err.column == "tot_pers"
    assert err.n_bad == 2
    assert err.examples == ["row 2: '3,5'", "row 5: '4,0'"]
    assert "decimal" in str(err)


@pytest.mark.parametrize("column", ["tot_pers", "fexp"])
def test_infinite_values_rejected(country: clrisk.Country, column: str) -> None:
    table = country.survey.head(20).astype({column: "float64"})
    table.loc[[1, 8, 9], column] = [np.inf, -np.inf, np.inf]
    with pytest.raises(DataValidationError) as info:
        _encode_survey(country, table, weight="fexp", on_invalid="drop")
    assert info.value.column == column
    assert info.value.n_bad == 3
    assert info.value.examples == ["row 1", "row 8", "row 9"]


def test_negative_weights_rejected(country: clrisk.Country) -> None:
    table = country.survey.head(20).copy()
    table.loc[[6, 13], "fexp"] = [-1.5, -2.0]
    with pytest.raises(DataValidationError) as info:
        _encode_survey(country, table, weight="fexp")
    err = info.value
    assert err.column == "fexp"
    assert err.n_bad == 2
    assert err.examples == ["row 6: -1.5", "row 13: -2"]
    # or rejected with their reason, never silently
    dropped = _encode_survey(country, table, weight="fexp", on_invalid="drop")
    assert dropped.quality.rejected == {"negative weight in 'fexp'": 2}
    assert dropped.quality.reconciles and 6 not in dropped.rows
    # zero weights are fine
    table.loc[[6, 13], "fexp"] = 0.0
    coded = _encode_survey(country, table, weight="fexp")
    assert coded.weight[[6, 13]].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "codes",
    [["05001", "05004", "05001"], ["05001", "05004", " 05001"]],
    ids=["exact", "after-blanks"],
)
def test_indicator_table_with_repeated_codes(codes: list[str]) -> None:
    ind = pd.DataFrame({"codigo": codes, "pct_agro": [1.0, 2.0, 3.0]})
    with pytest.raises(DataValidationError) as info:
        indicator_values(_territory_spec(), ind)
    err = info.value
    assert err.column == "codigo"
    assert err.n_bad == 2
    assert err.examples == ["05001"]


def test_indicator_table_with_missing_values_or_codes() -> None:
    ind = pd.DataFrame(
        {"codigo": ["05001", "05004", "10001"], "pct_agro": [1.0, np.nan, 3.0]}
    )
    with pytest.raises(DataValidationError) as info:
        indicator_values(_territory_spec(), ind)
    assert info.value.column == "pct_agro"
    assert info.value.n_bad == 1
    assert info.value.examples == ["05004"]
    ind = pd.DataFrame({"codigo": ["05001", None, None], "pct_agro": [1.0, 2.0, 3.0]})
    with pytest.raises(DataValidationError) as info:
        indicator_values(_territory_spec(), ind)
    assert info.value.column == "codigo"
    assert info.value.n_bad == 2
    assert info.value.examples == ["row 1", "row 2"]  # the rows, as elsewhere
    with pytest.raises(SchemaError, match="Missing: 'pct_agro'"):
        indicator_values(_territory_spec(), ind.rename(columns={"pct_agro": "agro"}))


def test_territory_missing_from_indicator_table(country: clrisk.Country) -> None:
    table = country.survey.head(40).copy()
    table.loc[[0, 1, 30], "cod_mun"] = ["99999", "99999", "88888"]
    with pytest.raises(DataValidationError) as info:
        _encode_survey(country, table)
    err = info.value
    assert err.column == "cod_mun"
    assert err.n_bad == 3
    assert "'99999' (2 rows," in str(err) and "'88888' (1 row," in str(err)


def test_bad_arguments(country: clrisk.Country) -> None:
    with pytest.raises(InvalidParameterError, match=r"'on_invalid'.*'skip'"):
        _encode_survey(country, country.survey, on_invalid="skip")
    with pytest.raises(InvalidParameterError, match="DataFrame"):
        encode(country.spec, country.survey.to_numpy(), source="survey")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="territory="):
        encode(
            country.spec, country.survey, source="survey", indicators=country.indicators
        )
    with pytest.raises(InvalidParameterError, match="indicators="):
        encode(country.spec, country.survey, source="survey", territory="cod_mun")
    with pytest.raises(SchemaError, match="registry"):
        encode(country.spec, country.survey, source="registry")


# ------------------------------------------------------------- on_invalid=drop
def _spoil(country: clrisk.Country) -> tuple[pd.DataFrame, dict[str, set[int]]]:
    """60 survey rows with known problems; some rows have several."""
    table = country.survey.head(60).astype({"asiste": "float64", "etnia": object})
    table = table.astype({"tot_pers": "float64"})
    problems = {
        "asiste missing": {1, 2, 40},
        "etnia unknown": {2, 5, 6},
        "tot_pers missing": {6, 7},
        "cod_mun missing": {10},
        "cod_mun absent": {11, 40},
        "fexp missing": {12, 5},
    }
    table.loc[list(problems["asiste missing"]), "asiste"] = np.nan
    table.loc[list(problems["etnia unknown"]), "etnia"] = "9"
    table.loc[list(problems["tot_pers missing"]), "tot_pers"] = np.nan
    table.loc[list(problems["cod_mun missing"]), "cod_mun"] = np.nan
    table.loc[list(problems["cod_mun absent"]), "cod_mun"] = "77777"
    table.loc[list(problems["fexp missing"]), "fexp"] = np.nan
    return table, problems


def test_drop_rejects_exactly_the_bad_rows(country: clrisk.Country) -> None:
    table, problems = _spoil(country)
    bad = set().union(*problems.values())
    coded = _encode_survey(country, table, weight="fexp", on_invalid="drop")
    keep = [i for i in range(len(table)) if i not in bad]
    assert coded.rows.tolist() == keep
    q = coded.quality
    assert (q.rows_read, q.rows_used, q.rows_rejected) == (60, 60 - len(bad), len(bad))
    assert q.reconciles
    # one reason per row: every reason names the right column and counts no more
    # rows than have that problem
    assert set(q.rejected) == {
        "missing value in 'asiste'",
        "unknown code in 'etnia'",
        "missing value in 'tot_pers'",
        "missing territory in 'cod_mun'",
        "territory not in the indicator table ('cod_mun')",
        "missing value in 'fexp'",
    }
    limit = {
        "missing value in 'asiste'": problems["asiste missing"],
        "unknown code in 'etnia'": problems["etnia unknown"],
        "missing value in 'tot_pers'": problems["tot_pers missing"],
        "missing territory in 'cod_mun'": problems["cod_mun missing"],
        "territory not in the indicator table ('cod_mun')": problems["cod_mun absent"],
        "missing value in 'fexp'": problems["fexp missing"],
    }
    for reason, k in q.rejected.items():
        assert 0 < k <= len(limit[reason])
    # the kept rows are coded exactly as if the bad rows had never been there
    clean = _encode_survey(country, table.iloc[keep], weight="fexp")
    np.testing.assert_array_equal(coded.codes, clean.codes)
    np.testing.assert_array_equal(coded.numerics, clean.numerics)
    np.testing.assert_array_equal(coded.weight, clean.weight)
    np.testing.assert_array_equal(
        coded.territories[coded.territory], clean.territories[clean.territory]
    )


@given(data=st.data())
def test_drop_accounting_on_random_problems(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 25))
    miss_a = data.draw(st.sets(st.integers(0, n - 1)))
    unknown_a = data.draw(st.sets(st.integers(0, n - 1)))
    miss_x = data.draw(st.sets(st.integers(0, n - 1)))
    feat = Feature(
        "a", "binary", {"s": Source("a", {"1": "p", "2": "q"})}, levels=("p", "q")
    )
    x = Feature("x", "numeric", {"s": Source("x")})
    spec = FeatureSpec([feat, x], train_source="s", frame_source="s")
    a = np.where(np.arange(n) % 2 == 0, "1", "2").astype(object)
    a[list(unknown_a)] = "3"
    a[list(miss_a)] = None
    xs = np.arange(n, dtype=float)
    xs[list(miss_x)] = np.nan
    coded = encode(spec, pd.DataFrame({"a": a, "x": xs}), source="s", on_invalid="drop")
    bad = miss_a | unknown_a | miss_x
    q = coded.quality
    assert q.reconciles and q.rows_read == n
    assert q.rows_rejected == len(bad)
    assert coded.rows.tolist() == sorted(set(range(n)) - bad)
    empty = miss_a & miss_x  # every column of the row missing
    assert q.rejected.get("empty row", 0) == len(empty)
    assert q.rejected.get("missing value in 'a'", 0) == len(miss_a - empty)
    assert q.rejected.get("unknown code in 'a'", 0) == len(unknown_a - miss_a)
    assert q.rejected.get("missing value in 'x'", 0) == len(miss_x - miss_a - unknown_a)
    np.testing.assert_array_equal(coded.numerics[:, 0], xs[coded.rows])


def test_drop_when_every_territory_is_missing() -> None:
    spec = FeatureSpec(
        [Feature("x", "numeric", {"s": Source("x")})],
        train_source="s",
        frame_source="s",
    )
    table = pd.DataFrame({"x": [1.0, 2.0], "t": [np.nan, np.nan]})
    coded = encode(spec, table, source="s", territory="t", on_invalid="drop")
    assert coded.n == 0
    assert coded.quality.rejected == {"missing territory in 't'": 2}


# ------------------------------------------------------------- design matrix
def test_design_matrix_matches_get_dummies(country: clrisk.Country) -> None:
    spec = country.spec
    survey = country.survey
    coded = _encode_survey(country, survey)
    X = design_matrix(coded)
    assert X.shape == (len(survey), 1 + len(spec.columns))
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X[:, 0], 1.0)
    ind = country.indicators.set_index("codigo")
    parts = []
    for f in spec.features:
        if f.kind == "numeric":
            src = f.source("survey")
            if f.dimension == "territory":
                raw = ind.loc[survey["cod_mun"], src.column].to_numpy()
            else:
                raw = survey[src.column].to_numpy()
            parts.append(pd.DataFrame({f.name: raw.astype(float) * src.scale}))
            continue
        src = f.source("survey")
        names = survey[src.column].astype(str).map(dict(src.codes))
        cat = pd.Categorical(names, categories=list(f.levels))
        dummies = pd.get_dummies(cat, dtype=float).drop(columns=[f.reference])
        if f.kind == "binary":
            dummies.columns = [f.name]
        else:
            dummies.columns = [f"{f.name}[{lv}]" for lv in dummies.columns]
        parts.append(dummies)
    expected = pd.concat(parts, axis=1)
    assert list(expected.columns) == spec.columns
    np.testing.assert_array_equal(X[:, 1:], expected.to_numpy())


def test_design_matrix_with_a_non_first_reference() -> None:
    feat = Feature(
        "g",
        "categorical",
        {"s": Source("g")},
        levels=("a", "b", "c"),
        reference="b",
    )
    sex = Feature("sex", "binary", {"s": Source("s")}, levels=("m", "f"), reference="f")
    spec = FeatureSpec([feat, sex], train_source="s", frame_source="s")
    coded = encode(
        spec, pd.DataFrame({"g": list("abcab"), "s": list("mffmm")}), source="s"
    )
    assert spec.columns == ["g[a]", "g[c]", "sex"]
    np.testing.assert_array_equal(
        design_matrix(coded),
        [
            [1, 1, 0, 1],
            [1, 0, 0, 0],
            [1, 0, 1, 0],
            [1, 1, 0, 1],
            [1, 0, 0, 1],
        ],
    )


# ------------------------------------------------------------- row order etc.
@settings(max_examples=20)
@given(perm=st.permutations(range(60)))
def test_row_order_invariance(country: clrisk.Country, perm: list[int]) -> None:
    c = country
    table, _ = _spoil(c)
    a = _encode_survey(c, table, weight="fexp", on_invalid="drop")
    b = _encode_survey(c, table.iloc[perm], weight="fexp", on_invalid="drop")
    orig = np.asarray(perm)[b.rows]  # original position of each row b kept
    assert sorted(orig.tolist()) == a.rows.tolist()
    where = np.searchsorted(a.rows, orig)
    np.testing.assert_array_equal(b.codes, a.codes[where])
    np.testing.assert_array_equal(b.numerics, a.numerics[where])
    np.testing.assert_array_equal(b.weight, a.weight[where])
    np.testing.assert_array_equal(b.territories, a.territories)
    np.testing.assert_array_equal(b.territory, a.territory[where])
    # the counts agree; the notes' examples are the first bad rows in each order
    assert (b.quality.rows_read, b.quality.rows_used, b.quality.rejected) == (
        a.quality.rows_read,
        a.quality.rows_used,
        a.quality.rejected,
    )
    assert len(b.quality.notes) == len(a.quality.notes)


@settings(max_examples=20)
@given(cut=st.integers(0, 60))
def test_chunks_add_up_to_the_whole(country: clrisk.Country, cut: int) -> None:
    c = country
    table, _ = _spoil(c)
    whole = _encode_survey(c, table, weight="fexp", on_invalid="drop")
    first = _encode_survey(c, table.iloc[:cut], weight="fexp", on_invalid="drop")
    rest = _encode_survey(
        c, table.iloc[cut:], weight="fexp", on_invalid="drop", row_offset=cut
    )
    np.testing.assert_array_equal(np.vstack([first.codes, rest.codes]), whole.codes)
    np.testing.assert_array_equal(
        np.vstack([first.numerics, rest.numerics]), whole.numerics
    )
    np.testing.assert_array_equal(np.r_[first.rows, rest.rows + cut], whole.rows)
    merged = first.quality + rest.quality
    assert (merged.rows_read, merged.rows_used, merged.rejected) == (
        whole.quality.rows_read,
        whole.quality.rows_used,
        whole.quality.rejected,
    )
    # one note per rejection reason, whatever the chunking (examples may differ)
    assert [n.split(", e.g.")[0] for n in sorted(merged.notes)] == [
        n.split(", e.g.")[0] for n in sorted(whole.quality.notes)
    ]


@settings(max_examples=30)
@given(
    values=st.lists(st.integers(-128, 127), min_size=1, max_size=50),
    dtype=st.sampled_from(["int8", "int16", "int64", "uint8"]),
)
def test_integer_fast_path_equals_text_coding(values: list[int], dtype: str) -> None:
    """Integer columns are coded by a lookup table; same as via their text."""
    from clrisk.features import _integer_codes, _level_index, to_text_codes

    if dtype == "uint8":
        values = [abs(v) for v in values]
    col = pd.Series(np.asarray(values, dtype=dtype))
    # some codes unknown; "x" and "y" make at least two levels
    levels = tuple(sorted({str(v) for v in values[::2]} | {"x", "y"}))
    feat = clrisk.Feature("g", "categorical", levels=levels,
                          sources={"s": clrisk.Source("g")})  # fmt: skip
    fast = _integer_codes(col, feat, None)
    fcodes, uniques = to_text_codes(col)
    slow = np.array([_level_index(feat, None, u) for u in uniques])[fcodes]
    assert fast is not None
    np.testing.assert_array_equal(fast, slow)


@settings(max_examples=40)
@given(
    first=st.one_of(st.integers(-130, 130), st.integers(-200, 40_000)),
    n_levels=st.integers(2, 8),
    gap=st.booleans(),
    dtype=st.sampled_from(["int8", "int16", "int32", "int64"]),
    out=st.sampled_from([None, "int8", "int16"]),
    seed=st.integers(0, 2**16),
)
@example(first=0, n_levels=3, gap=False, dtype="int8", out="int8", seed=0)
@example(first=1, n_levels=2, gap=False, dtype="int16", out="int16", seed=0)
@example(first=-5, n_levels=4, gap=False, dtype="int8", out="int8", seed=0)
@example(first=-128, n_levels=3, gap=False, dtype="int8", out="int8", seed=0)
@example(first=3, n_levels=3, gap=False, dtype="int8", out="int8", seed=0)
def test_consecutive_integer_codes_equal_text_coding(
    first: int, n_levels: int, gap: bool, dtype: str, out: str | None, seed: int
) -> None:
    """Codes first..first+k-1 for levels 0..k-1 (the subtraction shortcut, in
    the column's own type when it is that of the output; the column itself
    when it already holds the level indices in that type), or with a gap in
    the code map (the lookup table): same as via their text."""
    from clrisk.features import _integer_codes, _level_index, to_text_codes

    raw = [first + k + (1 if gap and k == n_levels - 1 else 0) for k in range(n_levels)]
    if np.iinfo(dtype).max < max(raw) or np.iinfo(dtype).min > min(raw):
        return
    levels = tuple(f"l{k}" for k in range(n_levels))
    code_map = {str(c): lev for c, lev in zip(raw, levels, strict=True)}
    source = clrisk.Source("g", codes=code_map)
    feat = clrisk.Feature("g", "categorical", levels=levels, sources={"s": source})
    values = np.random.default_rng(seed).choice(raw, 60).astype(dtype)
    col = pd.Series(values)
    into = None if out is None else np.full(len(values), 99, dtype=out)
    fast = _integer_codes(col, feat, code_map, out=into)
    fcodes, uniques = to_text_codes(col)
    slow = np.array([_level_index(feat, code_map, u) for u in uniques])[fcodes]
    assert fast is not None
    as_is = first == 0 and not gap and dtype == (out or "int16")
    if as_is:
        assert np.shares_memory(fast, col.to_numpy())
    else:
        assert into is None or fast is into
    np.testing.assert_array_equal(fast, slow)


def test_empty_rows_are_rejected_as_empty(country: clrisk.Country) -> None:
    """A row with every column missing (a blank line of an export) is an
    "empty row", not a missing value of its first column; a row missing one
    value keeps that reason."""
    table = country.survey.head(50).copy()
    table = table.astype({"edad": "float64"})  # room for NaN
    table.loc[3, "edad"] = np.nan
    blank = pd.DataFrame([[np.nan] * table.shape[1]] * 2, columns=table.columns)
    table = pd.concat([table, blank], ignore_index=True)
    coded = _encode_survey(country, table, on_invalid="drop")
    assert coded.quality.rejected == {
        "missing value in 'edad'": 1,
        "empty row": 2,
    }
    assert coded.n == 49
    with pytest.raises(
        DataValidationError, match=r"every column read missing \(2 rows.*row 50"
    ):
        _encode_survey(country, table)
    with pytest.raises(DataValidationError, match=r"missing values.*row 3"):
        _encode_survey(country, table.drop(index=[50, 51]))


def test_workspace_remembers_sorted_categories_yet_codes_each_table() -> None:
    """A categorical column's categories are made into sorted text once and
    reused while the next tables have the same categories (a Parquet
    dictionary per row group); each table still lists only its own codes,
    " 05001" and "05001" are one code, and new categories are not mistaken
    for the old."""
    from clrisk.features import _sorted_text_codes

    space = Workspace()
    same = ["05001", "00002", " 05001", "10000", "00300"]
    tables = [
        (same, [0, 2, 1, 4]),
        (same, [3, 3]),
        (same, [2, 4, 4]),
        (["9", "05001", "1", "00002", "7"], [0, 2, 1, 4]),  # as many, others
        (same, [1]),
    ]
    for categories, numbers in tables:
        column = pd.Series(pd.Categorical.from_codes(numbers, categories=categories))
        index, distinct = _sorted_text_codes(column, space=space, name="territory")
        text = [categories[k].strip() for k in numbers]
        assert list(distinct) == sorted(set(text))
        assert [distinct[i] for i in index] == text
