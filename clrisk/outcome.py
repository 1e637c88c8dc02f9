"""The child-labour outcome stated as data: age bands x weekly hours x hazard.

National laws define child labour by age: e.g. any work at 5-13, more than 24
hours a week at 14-15, more than 36 at 16-17, and any hazardous activity below
18. :class:`OutcomeRule` holds such a rule and turns survey fields into 0/1.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clrisk.exceptions import DataValidationError, InvalidParameterError, SchemaError

__all__ = ["AgeBand", "OutcomeRule"]


@dataclass(frozen=True)
class AgeBand:
    """Ages ``min_age..max_age`` (inclusive) count as child labour above `max_hours`.

    Parameters
    ----------
    min_age, max_age : int
        Inclusive age range.
    max_hours : float
        Weekly hours of work allowed; work of *more* than this is child labour
        (``0`` means any work at all).
    hazardous : bool, default True
        Whether hazardous activity at these ages is child labour whatever the
        hours.
    """

    min_age: int
    max_age: int
    max_hours: float
    hazardous: bool = True


@dataclass(frozen=True)
class OutcomeRule:
    """A national child-labour definition applied to survey columns.

    Parameters
    ----------
    bands : sequence of AgeBand
        Non-overlapping age bands.
    age, hours : str
        Columns with the child's age (years) and weekly hours worked.
    hazardous : str, optional
        Column, 1 when the child's activity is hazardous (0 otherwise).
    name : str
        Name of the outcome (e.g. ``"child_labour"``).

    Examples
    --------
    >>> rule = OutcomeRule.default(age="edad", hours="horas", hazardous="peligro")
    >>> import pandas as pd
    >>> t = pd.DataFrame({"edad": [8, 15, 15, 17], "horas": [2, 20, 30, 0],
    ...                   "peligro": [0, 0, 0, 1]})
    >>> rule.apply(t).tolist()
    [1, 0, 1, 1]
    """

    bands: Sequence[AgeBand]
    age: str
    hours: str
    hazardous: str | None = None
    name: str = "child_labour"

    def __post_init__(self) -> None:
        bands = tuple(sorted(self.bands, key=lambda b: b.min_age))
        object.__setattr__(self, "bands", bands)
        if not bands:
            raise InvalidParameterError("An OutcomeRule needs at least one age band.")
        for b in bands:
            if b.min_age > b.max_age or not b.max_hours >= 0:
                raise InvalidParameterError(
                    f"Invalid age band {b}: need min_age <= max_age and max_hours >= 0."
                )
        for a, b in itertools.pairwise(bands):
            if b.min_age <= a.max_age:
                raise InvalidParameterError(f"Age bands {a} and {b} overlap.")

    @classmethod
    def default(
        cls, *, age: str, hours: str, hazardous: str | None = None
    ) -> OutcomeRule:
        """The ILO-style rule: any work at 5-13, > 24 h at 14-15, > 36 h at 16-17."""
        return cls(
            [AgeBand(5, 13, 0.0), AgeBand(14, 15, 24.0), AgeBand(16, 17, 36.0)],
            age=age,
            hours=hours,
            hazardous=hazardous,
        )

    def threshold(self, age: np.ndarray) -> np.ndarray:
        """Allowed weekly hours at each age (NaN outside every band)."""
        out = np.full(age.shape, np.nan)
        for b in self.bands:
            out[(age >= b.min_age) & (age <= b.max_age)] = b.max_hours
        return out

    def apply(self, table: pd.DataFrame, *, where: str = "the survey") -> np.ndarray:
        """The 0/1 outcome for each row of `table`.

        Returns
        -------
        ndarray of shape (n_rows,), int8

        Raises
        ------
        SchemaError
            A column of the rule is missing.
        DataValidationError
            Missing ages or hours, negative hours, or ages outside every band.
        """
        cols = [c for c in (self.age, self.hours, self.hazardous) if c is not None]
        if any(c not in table.columns for c in cols):
            raise SchemaError(
                f"The outcome rule cannot be applied to {where}.",
                expected=cols,
                received=[str(c) for c in table.columns],
            )
        age = _numbers(table[self.age], self.age, where)
        hours = _numbers(table[self.hours], self.hours, where)
        limit = self.threshold(age)
        outside = np.isnan(limit)
        if outside.any():
            _fail(
                self.age,
                "ages outside every band of the rule",
                outside,
                age,
                where,
                "Filter the population to the rule's ages first.",
            )
        if (hours < 0).any():
            _fail(
                self.hours,
                "negative hours",
                hours < 0,
                hours,
                where,
                "Hours worked must be >= 0.",
            )
        labour = hours > limit
        if self.hazardous is not None:
            hazard = _numbers(table[self.hazardous], self.hazardous, where)
            hazard_ok = np.zeros(age.shape, dtype=bool)
            for b in self.bands:
                if b.hazardous:
                    hazard_ok |= (age >= b.min_age) & (age <= b.max_age)
            labour |= (hazard > 0) & hazard_ok
        return labour.astype(np.int8)

    def to_dict(self) -> dict[str, Any]:
        """A plain dictionary (TOML/JSON-ready)."""
        out: dict[str, Any] = {"name": self.name, "age": self.age, "hours": self.hours}
        if self.hazardous is not None:
            out["hazardous"] = self.hazardous
        out["band"] = [
            {
                "min_age": b.min_age,
                "max_age": b.max_age,
                "max_hours": b.max_hours,
                "hazardous": b.hazardous,
            }
            for b in self.bands
        ]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutcomeRule:
        """Inverse of :meth:`to_dict`."""
        return cls(
            [AgeBand(**b) for b in data["band"]],
            age=data["age"],
            hours=data["hours"],
            hazardous=data.get("hazardous"),
            name=data.get("name", "child_labour"),
        )


def _numbers(col: pd.Series, name: str, where: str) -> np.ndarray:
    values: np.ndarray = pd.to_numeric(col, errors="coerce").to_numpy(
        dtype=float, na_value=np.nan
    )
    bad = np.isnan(values)
    if bad.any():
        _fail(
            name,
            "missing or non-numeric values",
            bad,
            col.to_numpy(),
            where,
            "Every child in the survey needs this field.",
        )
    return values


def _fail(
    name: str, problem: str, mask: np.ndarray, values: Any, where: str, fix: str
) -> None:
    rows = np.flatnonzero(mask)
    raise DataValidationError(
        column=name,
        problem=problem,
        n_bad=len(rows),
        where=where,
        fix=fix,
        examples=[f"row {r}: {_plain(values[r])}" for r in rows[:5]],
    )


def _plain(value: Any) -> str:
    """A value as a person writes it (no numpy reprs)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)
