"""Tests of clrisk.spec: the feature specification, its TOML form and validation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import feature_specs

from clrisk.datasets import TRUE_COEFFICIENTS, demo_spec
from clrisk.exceptions import (
    ClriskError,
    InvalidParameterError,
    ModelFormatError,
    SchemaError,
)
from clrisk.spec import INDICATORS, Feature, FeatureSpec, Source

SEX = Feature(
    "sex",
    "binary",
    {
        "survey": Source("sexo", {"1": "male", "2": "female"}),
        "census": Source("p_sexo", {"H": "male", "M": "female"}),
    },
    levels=("male", "female"),
    policy_area="gender",
)
AGE = Feature(
    "age_group",
    "categorical",
    {"survey": Source("edad"), "census": Source("p_edad")},
    levels=("5-9", "10-13", "14-17"),
)
SIZE = Feature(
    "household_size",
    "numeric",
    {"survey": Source("tot_pers"), "census": Source("h_personas")},
    dimension="household",
)
AGRI = Feature(
    "agri_share",
    "numeric",
    {INDICATORS: Source("pct_agro", scale=0.01)},
    dimension="territory",
)


def _minimal_toml() -> str:
    return (
        "[[feature]]\n"
        'name = "sex"\n'
        'kind = "binary"\n'
        'levels = ["male", "female"]\n'
        "[feature.source.survey]\n"
        'column = "sexo"\n'
        'codes = { "1" = "male", "2" = "female" }\n'
    )


# ------------------------------------------------------------------ round trip
@given(spec=feature_specs())
def test_random_spec_round_trips_through_toml_text(spec: FeatureSpec) -> None:
    text = spec.to_toml()
    back = FeatureSpec.from_toml(text)
    assert back == spec
    assert back.columns == spec.columns
    # the written form is stable: writing the read-back spec gives the same text
    assert back.to_toml() == text


@given(spec=feature_specs(max_features=3))
def test_random_spec_round_trips_through_a_file(
    spec: FeatureSpec, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("spec") / "spec.toml"
    text = spec.to_toml(path)
    assert path.read_text(encoding="utf-8") == text
    assert FeatureSpec.from_toml(path) == spec  # a Path
    assert FeatureSpec.from_toml(str(path)) == spec  # a str path


def test_demo_spec_round_trips(tmp_path: Path) -> None:
    spec = demo_spec()
    assert FeatureSpec.from_toml(spec.to_toml()) == spec
    spec.to_toml(tmp_path / "demo.toml")
    assert FeatureSpec.from_toml(tmp_path / "demo.toml") == spec
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_demo_spec_columns_are_the_true_model_terms() -> None:
    # The generator's true coefficients are keyed by model column: the spec's
    # column naming must produce exactly those names, in that order.
    spec = demo_spec()
    assert ["intercept", *spec.columns] == list(TRUE_COEFFICIENTS)
    assert [f.name for f in spec.territory_features] == [
        "agri_share",
        "poverty_rate",
        "school_supply",
    ]
    assert spec.sources == ["census", "survey"]


# --------------------------------------------------------------- model columns
def test_model_column_naming_by_kind() -> None:
    spec = FeatureSpec([SEX, AGE, SIZE, AGRI], territory={INDICATORS: "codigo"})
    assert SEX.columns == ["sex"]
    assert AGE.columns == ["age_group[10-13]", "age_group[14-17]"]
    assert SIZE.columns == ["household_size"]
    assert spec.columns == [
        "sex",
        "age_group[10-13]",
        "age_group[14-17]",
        "household_size",
        "agri_share",
    ]
    assert [f.name for f in spec.categorical] == ["sex", "age_group"]
    assert [f.name for f in spec.numeric] == ["household_size"]
    assert [f.name for f in spec.territory_features] == ["agri_share"]


def test_reference_defaults_to_first_level_and_can_be_chosen() -> None:
    assert SEX.reference == "male"
    assert SEX.reference_index == 0
    assert AGE.reference == "5-9"
    mid = Feature(
        "age_group",
        "categorical",
        {"survey": Source("edad")},
        levels=("5-9", "10-13", "14-17"),
        reference="10-13",
    )
    assert mid.reference_index == 1
    assert mid.columns == ["age_group[5-9]", "age_group[14-17]"]
    with pytest.raises(InvalidParameterError, match="'sex'"):
        Feature("sex", "binary", {"s": Source("x")}, levels=(1, 2), reference=3)
    ints = Feature("k", "binary", {"s": Source("x")}, levels=(1, 2), reference=2)
    assert ints.levels == ("1", "2")
    assert ints.reference == "2"


@given(spec=feature_specs())
def test_columns_follow_the_naming_rule(spec: FeatureSpec) -> None:
    expected: list[str] = []
    for f in spec.features:
        if f.kind == "categorical":
            ref = f.levels[0] if f.reference is None else f.reference
            expected += [f"{f.name}[{lv}]" for lv in f.levels if lv != ref]
        else:
            expected.append(f.name)
    assert spec.columns == expected
    for f in spec.features:
        if f.kind != "numeric":
            assert f.reference in f.levels


# ------------------------------------------------------------ invalid features
INVALID_FEATURES = {
    "bad kind": dict(kind="ordinal", levels=("a", "b")),
    "bad dimension": dict(kind="binary", levels=("a", "b"), dimension="village"),
    "no source": dict(kind="binary", levels=("a", "b"), sources={}),
    "binary with 3 levels": dict(kind="binary", levels=("a", "b", "c")),
    "binary with 1 level": dict(kind="binary", levels=("a",)),
    "categorical with 1 level": dict(kind="categorical", levels=("a",)),
    "duplicate levels": dict(kind="categorical", levels=("a", "b", "a")),
    "duplicate levels after text": dict(kind="categorical", levels=(1, "1", 2)),
    "reference not a level": dict(kind="binary", levels=("a", "b"), reference="c"),
    "code map to a non-level": dict(
        kind="binary",
        levels=("a", "b"),
        sources={"survey": Source("x", {"1": "a", "2": "z"})},
    ),
    "numeric with levels": dict(kind="numeric", levels=("a", "b")),
    "numeric with reference": dict(kind="numeric", reference="a"),
    "numeric with codes": dict(
        kind="numeric", sources={"survey": Source("x", {"1": "1"})}
    ),
    "zero scale": dict(kind="numeric", sources={"survey": Source("x", scale=0.0)}),
    "infinite scale": dict(
        kind="numeric", sources={"survey": Source("x", scale=float("inf"))}
    ),
    "nan scale": dict(
        kind="numeric", sources={"survey": Source("x", scale=float("nan"))}
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_FEATURES))
def test_invalid_feature_raises_naming_the_feature(case: str) -> None:
    kwargs = {"sources": {"survey": Source("x")}, **INVALID_FEATURES[case]}
    with pytest.raises(InvalidParameterError, match="'my_feature'") as info:
        Feature("my_feature", **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ClriskError)
    assert isinstance(info.value, ValueError)


def test_invalid_values_are_shown_in_the_message() -> None:
    with pytest.raises(InvalidParameterError, match="'ordinal'"):
        Feature("f", "ordinal", {"s": Source("x")})  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match=r"\['z'\]"):
        Feature(
            "f", "binary", {"s": Source("x", {"1": "a", "2": "z"})}, levels=("a", "b")
        )
    with pytest.raises(InvalidParameterError, match=r"source 's'.*0"):
        Feature("f", "numeric", {"s": Source("x", scale=0)})


def test_duplicate_feature_names_rejected() -> None:
    with pytest.raises(InvalidParameterError, match=r"\['sex'\]"):
        FeatureSpec([SEX, AGE, SEX])


def test_empty_spec_rejected() -> None:
    with pytest.raises(InvalidParameterError):
        FeatureSpec([])


def test_territory_features_need_the_indicator_key() -> None:
    with pytest.raises(InvalidParameterError, match="agri_share") as info:
        FeatureSpec([SEX, AGRI])
    assert "indicators" in str(info.value)
    with pytest.raises(InvalidParameterError, match="agri_share"):
        FeatureSpec([SEX, AGRI], territory={"survey": "cod_mun"})
    spec = FeatureSpec([SEX, AGRI], territory={INDICATORS: "codigo"})
    assert spec.territory_features == [AGRI]


def test_non_numeric_territory_feature_rejected_at_construction() -> None:
    with pytest.raises(InvalidParameterError, match="mining_zone"):
        Feature(
            "mining_zone",
            "binary",
            {INDICATORS: Source("zona_minera")},
            levels=("0", "1"),
            dimension="territory",
        )


def test_feature_lookup() -> None:
    spec = FeatureSpec([SEX, AGE])
    assert spec.feature("age_group") is spec.features[1]
    with pytest.raises(InvalidParameterError, match="'nope'"):
        spec.feature("nope")


def test_source_of_territory_feature_is_the_indicator_table() -> None:
    assert AGRI.source("survey") == AGRI.source("census") == AGRI.sources[INDICATORS]
    with pytest.raises(SchemaError, match=r"'registry'.*\[feature.source.registry\]"):
        SEX.source("registry")


# ----------------------------------------------------------- reading TOML
def test_minimal_toml_takes_documented_defaults() -> None:
    spec = FeatureSpec.from_toml(_minimal_toml())
    assert spec.train_source == "survey"
    assert spec.frame_source == "census"
    assert spec.territory == {}
    (f,) = spec.features
    assert f.reference == "male"
    assert f.dimension == "individual"
    assert f.sources["survey"] == Source("sexo", {"1": "male", "2": "female"}, 1.0)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[[feature]\nname = 'x'\n", "not valid TOML"),
        ("name = 'x'\nname = 'y'\n", "not valid TOML"),
        ("[spec]\nname = 'no features'\n", "feature"),
        (_minimal_toml().replace('kind = "binary"\n', ""), "kind"),
        (_minimal_toml().replace('name = "sex"\n', ""), "name"),
        (_minimal_toml().replace('column = "sexo"\n', ""), "column"),
        ("[[feature]]\nname = 'sex'\nkind = 'binary'\nlevels = ['a', 'b']\n", "source"),
        (_minimal_toml().replace("{", "[").replace("}", "]"), "not valid TOML"),
        (
            _minimal_toml() + "[feature.source.b]\ncolumn = 'p'\ncodes = 3\n",
            "malformed",
        ),
        ("feature = 3\n", "malformed"),
        ("[[feature]]\nname = 'x'\nkind = 'numeric'\nsource = 'x'\n", "malformed"),
    ],
    ids=[
        "unclosed-table",
        "duplicate-key",
        "no-features",
        "no-kind",
        "no-name",
        "no-column",
        "no-source",
        "codes-not-a-table",
        "codes-a-number",
        "feature-not-an-array",
        "source-not-a-table",
    ],
)
def test_malformed_toml_raises_model_format_error(text: str, needle: str) -> None:
    with pytest.raises(ModelFormatError, match=re.escape(needle)):
        FeatureSpec.from_toml(text)


def test_unknown_feature_key_raises_model_format_error() -> None:
    text = _minimal_toml().replace('kind = "binary"', 'kind = "binary"\nrefernce = "x"')
    with pytest.raises(ModelFormatError, match="refernce"):
        FeatureSpec.from_toml(text)


def test_invalid_feature_in_toml_becomes_model_format_error() -> None:
    text = _minimal_toml().replace('"2" = "female"', '"2" = "other"')
    with pytest.raises(ModelFormatError, match=r"'sex'.*other"):
        FeatureSpec.from_toml(text)
    text = _minimal_toml().replace('"binary"', '"ordinal"')
    with pytest.raises(ModelFormatError, match="ordinal"):
        FeatureSpec.from_toml(text)


def test_missing_file_raises_model_format_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(ModelFormatError, match=r"absent\.toml"):
        FeatureSpec.from_toml(missing)
    with pytest.raises(ModelFormatError, match=r"absent\.toml"):
        FeatureSpec.from_toml(str(missing))


def test_error_from_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(_minimal_toml().replace('"binary"', '"ordinal"'), encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"bad\.toml"):
        FeatureSpec.from_toml(path)


def test_misspelt_source_key_raises_model_format_error() -> None:
    text = _minimal_toml().replace('column = "sexo"', 'column = "sexo"\nscael = 0.01')
    with pytest.raises(ModelFormatError, match="scael"):
        FeatureSpec.from_toml(text)


def test_misspelt_spec_key_raises_model_format_error() -> None:
    text = '[spec]\ntrain_sourse = "encuesta"\n' + _minimal_toml()
    with pytest.raises(ModelFormatError, match="train_sourse"):
        FeatureSpec.from_toml(text)


def test_non_numeric_scale_raises_model_format_error() -> None:
    text = (
        "[[feature]]\nname = 'size'\nkind = 'numeric'\n"
        "[feature.source.survey]\ncolumn = 'tot'\nscale = 'percent'\n"
    )
    with pytest.raises(ModelFormatError, match=r"size|scale"):
        FeatureSpec.from_toml(text)


def test_levels_must_be_a_list_in_toml() -> None:
    text = _minimal_toml().replace('levels = ["male", "female"]', 'levels = "mf"')
    text = text.replace('"male"', '"m"').replace('"female"', '"f"')
    with pytest.raises(ModelFormatError, match="levels"):
        FeatureSpec.from_toml(text)


# ------------------------------------------------------------- detect_source
def test_detect_source_picks_the_matching_source() -> None:
    spec = demo_spec()
    survey_cols = spec.required_columns("survey")
    census_cols = spec.required_columns("census")
    assert "sexo" in survey_cols and "p_sexo" in census_cols
    assert not set(survey_cols) & set(census_cols)
    assert spec.detect_source([*census_cols, "municipio", "extra"]) == "census"
    assert spec.detect_source(["cod_mun", *reversed(survey_cols)]) == "survey"


def test_detect_source_prefer_wins_a_tie() -> None:
    spec = demo_spec()
    both = spec.required_columns("survey") + spec.required_columns("census")
    assert spec.detect_source(both) == "survey"  # the training source by default
    assert spec.detect_source(both, prefer="census") == "census"
    assert spec.detect_source(both, prefer="survey") == "survey"
    # prefer does not override a source that does not match
    census_only = spec.required_columns("census")
    assert spec.detect_source(census_only, prefer="survey") == "census"
    assert spec.detect_source(census_only, prefer="registry") == "census"


def test_detect_source_failure_shows_the_closest_sources_missing_columns() -> None:
    spec = demo_spec()
    cols = [c for c in spec.required_columns("census") if c not in ("p_sexo", "j_rama")]
    with pytest.raises(SchemaError) as info:
        spec.detect_source(cols)
    msg = str(info.value)
    assert "'census'" in msg
    missing = msg.split("Missing:")[1].split(";")[0]
    assert "'p_sexo'" in missing and "'j_rama'" in missing
    assert "'sexo'" not in missing
    assert info.value.expected == spec.required_columns("census")


def test_required_columns_skip_territory_features_and_repeats() -> None:
    twice = Feature("age_years", "numeric", {"survey": Source("edad")})
    spec = FeatureSpec([AGE, twice, AGRI], territory={INDICATORS: "codigo"})
    assert spec.required_columns("survey") == ["edad"]
    with pytest.raises(SchemaError, match="age_group"):
        spec.required_columns("registry")


# ---------------------------------------------------------------- SchemaError
def test_schema_error_message_is_a_diff() -> None:
    err = SchemaError(
        "Table lacks columns.", expected=["a", "b", "c"], received=["a", "c", "d"]
    )
    msg = str(err)
    assert msg.startswith("Table lacks columns.")
    assert "Missing: 'b';" in msg
    assert "present but not expected: 'd'." in msg
    err = SchemaError("x", expected=[f"c{i}" for i in range(12)], received=[])
    assert "and 4 more" in str(err)
    assert "none" in str(err)


@given(st.lists(st.sampled_from("abcdefgh"), unique=True), st.data())
def test_schema_error_missing_list_is_exact(
    expected: list[str], data: st.DataObject
) -> None:
    received = data.draw(st.lists(st.sampled_from("abcdefghxyz"), unique=True))
    err = SchemaError("m", expected=expected, received=received)
    missing = [c for c in expected if c not in received]
    assert err.expected == expected and err.received == received
    part = str(err).split("Missing: ")[1].split(";")[0]
    assert part == (", ".join(repr(c) for c in missing) if missing else "none")
