"""Shared Hypothesis strategies for clrisk tests.

The strategies build *valid* objects (feature specifications, coded tables);
tests that need invalid input construct it by hand so the failure is explicit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from clrisk.spec import (
    DIMENSIONS,
    INDICATORS,
    POLICY_AREAS,
    Feature,
    FeatureSpec,
    Source,
)

# ---------------------------------------------------------------- plain text
#: Any printable or control character except surrogates: TOML must escape them.
any_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",)), min_size=0, max_size=10
)
#: Non-empty names (features, columns, sources, levels, raw codes).
names = st.text(
    alphabet=st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8
)
#: Short identifiers, for tables where names must not collide by accident.
idents = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)

#: Finite, non-zero scale factors, including the usual percent -> share one.
scales = st.one_of(
    st.just(1.0),
    st.just(0.01),
    st.floats(
        min_value=-1e6,
        max_value=1e6,
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
    ).filter(lambda v: v != 0.0),
)


# ------------------------------------------------------------------ features
@st.composite
def sources_for(
    draw: st.DrawFn, kind: str, levels: tuple[str, ...], source_names: list[str]
) -> dict[str, Source]:
    """One Source per name; code maps point only to `levels`."""
    out: dict[str, Source] = {}
    for sname in source_names:
        column = draw(names)
        if kind == "numeric":
            out[sname] = Source(column, None, draw(scales))
            continue
        codes: dict[str, str] | None
        if draw(st.booleans()):
            codes = None  # raw values already are the levels
        else:
            raws = draw(st.lists(names, min_size=0, max_size=5, unique=True))
            codes = {r: draw(st.sampled_from(levels)) for r in raws}
        scale = draw(st.sampled_from([1.0, 2.0]))  # ignored, but must round-trip
        out[sname] = Source(column, codes, scale)
    return out


@st.composite
def features(
    draw: st.DrawFn,
    name: str | None = None,
    *,
    allow_territory: bool = True,
) -> Feature:
    """A valid Feature of any kind.

    Territory features are numeric and read from the ``"indicators"`` source
    (the only kind the encoder supports).
    """
    name = draw(names) if name is None else name
    kind = draw(st.sampled_from(["binary", "categorical", "numeric"]))
    dims = [d for d in DIMENSIONS if allow_territory or d != "territory"]
    if kind != "numeric":
        dims = [d for d in dims if d != "territory"]
    dimension = draw(st.sampled_from(dims))
    levels: tuple[str, ...] = ()
    reference = None
    if kind != "numeric":
        n = 2 if kind == "binary" else draw(st.integers(2, 5))
        levels = tuple(draw(st.lists(names, min_size=n, max_size=n, unique=True)))
        reference = draw(st.one_of(st.none(), st.sampled_from(levels)))
    if dimension == "territory":
        source_names = [INDICATORS]
    else:
        source_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    return Feature(
        name,
        kind,  # type: ignore[arg-type]
        draw(sources_for(kind, levels, source_names)),
        levels=levels,
        reference=reference,
        dimension=dimension,
        policy_area=draw(st.one_of(st.sampled_from(POLICY_AREAS), any_text)),
        label=draw(any_text),
    )


@st.composite
def feature_specs(draw: st.DrawFn, max_features: int = 5) -> FeatureSpec:
    """A valid FeatureSpec with unique feature names."""
    fnames = draw(st.lists(names, min_size=1, max_size=max_features, unique=True))
    feats = [draw(features(n)) for n in fnames]
    territory: dict[str, str] = {}
    if any(f.dimension == "territory" for f in feats) or draw(st.booleans()):
        territory = draw(st.dictionaries(names, names, max_size=3))
        territory[INDICATORS] = draw(names)
    return FeatureSpec(
        feats,
        train_source=draw(names),
        frame_source=draw(names),
        territory=territory,
        name=draw(any_text),
        description=draw(any_text),
    )


# -------------------------------------------------------------------- values
def same_code_spellings(code: int) -> list[Any]:
    """Ways a raw integer code appears in real files; all must match ``str(code)``."""
    return [
        code,
        float(code),
        str(code),
        f" {code} ",
        f"{code}\t",
        np.int64(code),
        np.float32(code),
    ]


@st.composite
def mixed_code_columns(draw: st.DrawFn, codes: list[int], n: int) -> pd.Series:
    """An object column of the integer `codes`, each spelled in a random way.

    Returns the column; ``column.attrs["expected"]`` holds the plain integer
    codes, for checking.
    """
    chosen = draw(st.lists(st.sampled_from(codes), min_size=n, max_size=n))
    spelled = [draw(st.sampled_from(same_code_spellings(c))) for c in chosen]
    col = pd.Series(spelled, dtype=object)
    col.attrs["expected"] = chosen
    return col


finite_floats = st.floats(
    min_value=-1e6,
    max_value=1e6,
    allow_nan=False,
    allow_infinity=False,
    allow_subnormal=False,
)
