"""The feature specification: what each predictor means in every data set.

A :class:`FeatureSpec` names each feature once, with its kind, its levels and
reference level, its dimension and policy area, and for every *source* (the
survey, the census, the territory indicator table) the column it is read from
and the code map that turns that source's raw codes into the feature's levels.

Model columns
-------------
A categorical feature with levels ``(a, b, c)`` and reference ``a`` gives model
columns ``name[b]`` and ``name[c]``; a binary feature gives one column named
after the feature (its non-reference level); a numeric feature gives one column,
the source value times the source's ``scale``. The model matrix is an intercept
followed by these columns in feature order.

Features of dimension ``"territory"`` are read from the indicator table (source
name ``"indicators"``) and joined to child rows by territory code.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomli_w

from clrisk.exceptions import InvalidParameterError, ModelFormatError, SchemaError

__all__ = [
    "DIMENSIONS",
    "INDICATORS",
    "KINDS",
    "POLICY_AREAS",
    "Feature",
    "FeatureSpec",
    "Source",
]

Kind = Literal["binary", "categorical", "numeric"]
KINDS: tuple[str, ...] = ("binary", "categorical", "numeric")
DIMENSIONS: tuple[str, ...] = ("individual", "household", "territory", "sector")
#: Policy areas named by the regional strategy; any other string is accepted too.
POLICY_AREAS: tuple[str, ...] = (
    "education",
    "social protection",
    "labour and employment",
    "health",
    "rural and agricultural development",
    "inclusion",
    "gender",
)
#: Source name of the territory indicator table.
INDICATORS = "indicators"


@dataclass(frozen=True)
class Source:
    """Where a feature is read from in one data set.

    Parameters
    ----------
    column : str
        Column name in that data set.
    codes : mapping of str to str, optional
        Raw code (as text, e.g. ``"1"``, ``"H"``) to level. Required for binary
        and categorical features unless the raw values already are the levels.
        Integer-valued numbers match their text form (``1``, ``1.0`` and ``"1"``
        all match the code ``"1"``).
    scale : float, default 1.0
        Multiplier for numeric features (e.g. ``0.01`` for a percentage read as
        a share), so units agree across sources.
    """

    column: str
    codes: Mapping[str, str] | None = None
    scale: float = 1.0


@dataclass(frozen=True)
class Feature:
    """One harmonised predictor.

    Parameters
    ----------
    name : str
        Feature name used in model terms and reports.
    kind : {"binary", "categorical", "numeric"}
        Binary features have exactly two levels.
    sources : mapping of str to Source
        Column and code map per data set (e.g. ``"survey"``, ``"census"``, or
        ``"indicators"`` for territory features).
    levels : sequence of str, optional
        Levels of a binary or categorical feature, in report order.
    reference : str, optional
        Reference level (omitted from the model). Defaults to the first level.
    dimension : {"individual", "household", "territory", "sector"}
        Where the factor lives.
    policy_area : str
        The policy sector that can act on it (see :data:`POLICY_AREAS`).
    label : str, optional
        Human-readable description for reports.
    """

    name: str
    kind: Kind
    sources: Mapping[str, Source]
    levels: tuple[str, ...] = ()
    reference: str | None = None
    dimension: str = "individual"
    policy_area: str = ""
    label: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(str(v) for v in self.levels))
        object.__setattr__(self, "sources", dict(self.sources))
        if self.kind not in KINDS:
            raise InvalidParameterError(
                f"Feature '{self.name}': kind must be one of {KINDS}; "
                f"got {self.kind!r}."
            )
        if self.dimension not in DIMENSIONS:
            raise InvalidParameterError(
                f"Feature '{self.name}': dimension must be one of {DIMENSIONS}; "
                f"got {self.dimension!r}."
            )
        if not self.sources:
            raise InvalidParameterError(
                f"Feature '{self.name}' has no source: give the column it is read "
                "from in at least one data set."
            )
        if self.dimension == "territory" and self.kind != "numeric":
            raise InvalidParameterError(
                f"Feature '{self.name}' has dimension 'territory' and must be numeric "
                "(a territory indicator joined by code); make it an individual or "
                "household feature, or code it as a 0/1 numeric indicator."
            )
        if self.kind == "numeric":
            if self.levels or self.reference is not None:
                raise InvalidParameterError(
                    f"Feature '{self.name}' is numeric: it takes no levels or "
                    "reference."
                )
            for name, src in self.sources.items():
                if src.codes:
                    raise InvalidParameterError(
                        f"Feature '{self.name}' is numeric but source '{name}' has a "
                        "code map; use scale for unit conversions."
                    )
                if not (math.isfinite(src.scale) and src.scale != 0):
                    raise InvalidParameterError(
                        f"Feature '{self.name}', source '{name}': scale must be a "
                        f"finite non-zero number; got {src.scale!r}."
                    )
            return
        n_levels = len(self.levels)
        if len(set(self.levels)) != n_levels:
            raise InvalidParameterError(
                f"Feature '{self.name}' lists a level twice: {list(self.levels)}."
            )
        if self.kind == "binary" and n_levels != 2:
            raise InvalidParameterError(
                f"Feature '{self.name}' is binary and needs exactly 2 levels; "
                f"got {list(self.levels)}."
            )
        if self.kind == "categorical" and n_levels < 2:
            raise InvalidParameterError(
                f"Feature '{self.name}' is categorical and needs at least 2 levels; "
                f"got {list(self.levels)}."
            )
        reference = self.levels[0] if self.reference is None else str(self.reference)
        if reference not in self.levels:
            raise InvalidParameterError(
                f"Feature '{self.name}': reference {reference!r} is not one of its "
                f"levels {list(self.levels)}."
            )
        object.__setattr__(self, "reference", reference)
        for name, src in self.sources.items():
            if src.codes is None:
                continue
            bad = sorted({v for v in src.codes.values() if v not in self.levels})
            if bad:
                raise InvalidParameterError(
                    f"Feature '{self.name}', source '{name}': the code map points to "
                    f"{bad}, which are not levels {list(self.levels)}."
                )

    @property
    def reference_index(self) -> int:
        """Position of the reference level in :attr:`levels`."""
        return self.levels.index(str(self.reference))

    @property
    def columns(self) -> list[str]:
        """Model column names this feature contributes."""
        if self.kind == "numeric":
            return [self.name]
        if self.kind == "binary":
            return [self.name]
        return [f"{self.name}[{lv}]" for lv in self.levels if lv != self.reference]

    def source(self, name: str) -> Source:
        """The :class:`Source` of this feature in data set `name`."""
        key = INDICATORS if self.dimension == "territory" else name
        try:
            return self.sources[key]
        except KeyError:
            raise SchemaError(
                f"Feature '{self.name}' has no column for source '{key}'; it is "
                f"defined for {sorted(self.sources)}. Add a [feature.source.{key}] "
                "entry to the specification."
            ) from None


@dataclass(frozen=True, repr=False)
class FeatureSpec:
    """The harmonised features of a risk model.

    Parameters
    ----------
    features : sequence of Feature
        The predictors, in model order.
    train_source, frame_source : str
        Names of the training (survey) and projection (census) sources.
    territory : mapping of str to str, optional
        Territory-code column in each source, including ``"indicators"`` (the
        key of the indicator table). Codes are always compared as text.
    name, description : str
        Free text for reports.

    Examples
    --------
    >>> from clrisk import Feature, FeatureSpec, Source
    >>> sources = {"survey": Source("sexo", {"1": "male", "2": "female"}),
    ...            "census": Source("p_sexo", {"H": "male", "M": "female"})}
    >>> sex = Feature("sex", "binary", levels=("male", "female"),
    ...               sources=sources, policy_area="gender")
    >>> FeatureSpec([sex]).columns
    ['sex']
    """

    features: Sequence[Feature]
    train_source: str = "survey"
    frame_source: str = "census"
    territory: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "territory", dict(self.territory))
        if not self.features:
            raise InvalidParameterError("A FeatureSpec needs at least one feature.")
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidParameterError(
                f"Feature names must be unique; {dupes} repeat."
            )
        if self.territory_features and INDICATORS not in self.territory:
            raise InvalidParameterError(
                "Territory features "
                f"{[f.name for f in self.territory_features]} need the key column of "
                "the indicator table: set territory = {'indicators': '<column>', ...}."
            )

    def __repr__(self) -> str:
        names = ", ".join(f.name for f in self.features)
        label = f"{self.name!r}, " if self.name else ""
        return f"FeatureSpec({label}{len(self.features)} features: {names})"

    # ------------------------------------------------------------------ views
    @property
    def columns(self) -> list[str]:
        """Model column names (without the intercept), in model order."""
        return [c for f in self.features for c in f.columns]

    @property
    def categorical(self) -> list[Feature]:
        """Binary and categorical features read from child rows."""
        return [
            f
            for f in self.features
            if f.kind != "numeric" and f.dimension != "territory"
        ]

    @property
    def numeric(self) -> list[Feature]:
        """Numeric features read from child rows."""
        return [
            f
            for f in self.features
            if f.kind == "numeric" and f.dimension != "territory"
        ]

    @property
    def territory_features(self) -> list[Feature]:
        """Features read from the indicator table and joined by territory code."""
        return [f for f in self.features if f.dimension == "territory"]

    def feature(self, name: str) -> Feature:
        """The feature called `name`."""
        for f in self.features:
            if f.name == name:
                return f
        raise InvalidParameterError(
            f"No feature named {name!r}; the specification has "
            f"{[f.name for f in self.features]}."
        )

    @property
    def sources(self) -> list[str]:
        """Names of the data sets the specification can read."""
        names = {s for f in self.features for s in f.sources}
        names.discard(INDICATORS)
        return sorted(names | {self.train_source, self.frame_source})

    def required_columns(self, source: str) -> list[str]:
        """Columns a table of `source` must have (territory features excluded)."""
        cols = [
            f.source(source).column for f in self.features if f.dimension != "territory"
        ]
        return list(dict.fromkeys(cols))

    def detect_source(
        self, columns: Iterable[str], *, prefer: str | None = None
    ) -> str:
        """The source whose required columns are all in `columns`.

        `prefer` (default: the training source) wins a tie. Raises
        :class:`SchemaError` showing the closest source's missing columns when
        none matches.
        """
        have = set(map(str, columns))
        first = prefer or self.train_source
        candidates = list(
            dict.fromkeys([first, self.train_source, self.frame_source, *self.sources])
        )
        missing: dict[str, list[str]] = {}
        for src in candidates:
            try:
                need = self.required_columns(src)
            except SchemaError:
                continue
            missing[src] = [c for c in need if c not in have]
            if not missing[src]:
                return src
        best = min(missing, key=lambda s: len(missing[s]))
        raise SchemaError(
            f"The table matches no source of the specification; closest is '{best}'.",
            expected=self.required_columns(best),
            received=sorted(have),
        )

    # ------------------------------------------------------------------- TOML
    def to_dict(self) -> dict[str, Any]:
        """A plain, TOML/JSON-ready dictionary (inverse of :meth:`from_dict`)."""
        out: dict[str, Any] = {
            "spec": {
                "name": self.name,
                "description": self.description,
                "train_source": self.train_source,
                "frame_source": self.frame_source,
            },
        }
        if self.territory:
            out["territory"] = dict(self.territory)
        feats = []
        for f in self.features:
            d: dict[str, Any] = {"name": f.name, "kind": f.kind}
            if f.kind != "numeric":
                d["levels"] = list(f.levels)
                d["reference"] = f.reference
            d["dimension"] = f.dimension
            d["policy_area"] = f.policy_area
            if f.label:
                d["label"] = f.label
            srcs: dict[str, Any] = {}
            for sname, s in f.sources.items():
                sd: dict[str, Any] = {"column": s.column}
                if s.codes is not None:
                    sd["codes"] = dict(s.codes)
                if s.scale != 1.0:
                    sd["scale"] = s.scale
                srcs[sname] = sd
            d["source"] = srcs
            feats.append(d)
        out["feature"] = feats
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "") -> FeatureSpec:
        """Build a specification from :meth:`to_dict` output (or parsed TOML)."""
        place = f" in {where}" if where else ""
        try:
            _check_keys(data, {"spec", "territory", "feature"}, f"the file{place}")
            head = dict(data.get("spec", {}))
            _check_keys(
                head,
                {"name", "description", "train_source", "frame_source"},
                f"[spec]{place}",
            )
            feats = []
            for i, fd in enumerate(data["feature"]):
                _check_keys(
                    fd,
                    {"name", "kind", "levels", "reference", "dimension",
                     "policy_area", "label", "source"},
                    f"feature {i + 1}{place}",
                )  # fmt: skip
                sources = {}
                for sname, sd in fd["source"].items():
                    where_src = f"[feature.source.{sname}] of feature {i + 1}{place}"
                    _check_keys(sd, {"column", "codes", "scale"}, where_src)
                    scale = sd.get("scale", 1.0)
                    if isinstance(scale, bool) or not isinstance(scale, int | float):
                        raise ModelFormatError(
                            f"scale in {where_src} must be a number; got {scale!r}."
                        )
                    sources[sname] = Source(
                        column=str(sd["column"]),
                        codes=(
                            {str(k): str(v) for k, v in sd["codes"].items()}
                            if "codes" in sd
                            else None
                        ),
                        scale=float(scale),
                    )
                levels = fd.get("levels", [])
                if not isinstance(levels, list):
                    raise ModelFormatError(
                        f"levels of feature {i + 1}{place} must be a list of strings; "
                        f"got {levels!r}."
                    )
                feats.append(
                    Feature(
                        name=str(fd["name"]),
                        kind=fd["kind"],
                        sources=sources,
                        levels=tuple(levels),
                        reference=fd.get("reference"),
                        dimension=fd.get("dimension", "individual"),
                        policy_area=fd.get("policy_area", ""),
                        label=fd.get("label", ""),
                    )
                )
            return cls(
                feats,
                train_source=head.get("train_source", "survey"),
                frame_source=head.get("frame_source", "census"),
                territory={
                    str(k): str(v) for k, v in data.get("territory", {}).items()
                },
                name=head.get("name", ""),
                description=head.get("description", ""),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            if isinstance(exc, ModelFormatError):
                raise
            if isinstance(exc, InvalidParameterError):
                raise ModelFormatError(f"{exc} (in the specification{place})") from None
            raise ModelFormatError(
                f"The feature specification{place} is malformed: missing or wrong "
                f"entry {exc}. See FeatureSpec.to_toml() for the expected layout."
            ) from None

    def to_toml(self, path: str | Path | None = None) -> str:
        """Write the specification as TOML; return the text."""
        text = tomli_w.dumps(self.to_dict())
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_toml(cls, path_or_text: str | Path) -> FeatureSpec:
        """Read a specification from a TOML file path or TOML text."""
        where = ""
        text = str(path_or_text)
        if isinstance(path_or_text, Path) or (
            "\n" not in text and text.endswith(".toml")
        ):
            where = str(path_or_text)
            try:
                text = Path(path_or_text).read_text(encoding="utf-8")
            except OSError as exc:
                raise ModelFormatError(
                    f"Cannot read the specification file {where}: {exc.strerror}."
                ) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ModelFormatError(
                f"The specification{' ' + where if where else ''} is not valid TOML: "
                f"{exc}."
            ) from None
        return cls.from_dict(data, where=where)


def _check_keys(table: Any, allowed: set[str], where: str) -> None:
    if not isinstance(table, Mapping):
        raise ModelFormatError(f"{where} must be a table; got {table!r}.")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ModelFormatError(
            f"{where} has unknown keys {unknown}; allowed: {sorted(allowed)}."
        )
