"""The errors and warnings clrisk raises.

Every error is a :class:`ClriskError` and also a built-in exception, so code that
already catches ``ValueError`` keeps working::

    ClriskError (Exception)
    ├── SchemaError (ClriskError, ValueError)          missing or renamed columns
    ├── DataValidationError (ClriskError, ValueError)  bad values in a column
    │   └── SeparationError                            outcome perfectly predicted
    ├── InvalidParameterError (ClriskError, ValueError) a bad argument
    ├── ModelFormatError (ClriskError, ValueError)     an unreadable model file
    └── NotFittedError (ClriskError, sklearn NotFittedError)

    ClriskWarning (UserWarning)
    ├── ConvergenceWarning                             the solver stopped early
    ├── CollinearityWarning                            nearly collinear columns
    ├── DesignWarning                                  e.g. a stratum with one PSU
    ├── CoverageWarning                                territories without rows
    └── WeakModelWarning (clrisk.validation)           weak cross-validated model
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "ClriskError",
    "ClriskWarning",
    "CollinearityWarning",
    "ConvergenceWarning",
    "CoverageWarning",
    "DataValidationError",
    "DesignWarning",
    "InvalidParameterError",
    "ModelFormatError",
    "NotFittedError",
    "SchemaError",
    "SeparationError",
]


class ClriskError(Exception):
    """Base class of every error clrisk raises on purpose."""


class SchemaError(ClriskError, ValueError):
    """Columns are missing or unexpected.

    Parameters
    ----------
    message : str
        What went wrong and how to fix it.
    expected, received : sequence of str, optional
        Column lists; when given, the message shows their difference.
    """

    def __init__(
        self,
        message: str,
        *,
        expected: Sequence[str] | None = None,
        received: Sequence[str] | None = None,
    ) -> None:
        self.expected = list(expected) if expected is not None else None
        self.received = list(received) if received is not None else None
        if self.expected is not None and self.received is not None:
            missing = [c for c in self.expected if c not in set(self.received)]
            extra = [c for c in self.received if c not in set(self.expected)]
            message = (
                f"{message} Missing: {_short(missing)}; present but not expected: "
                f"{_short(extra)}."
            )
        super().__init__(message)


class DataValidationError(ClriskError, ValueError):
    """Values in a column are invalid.

    The message names the column, the number of bad rows, up to five examples
    (row numbers or codes) and the fix.
    """

    def __init__(
        self,
        *,
        column: str,
        problem: str,
        n_bad: int,
        examples: Iterable[Any] = (),
        fix: str = "",
        where: str = "",
    ) -> None:
        self.column = column
        self.n_bad = int(n_bad)
        self.examples = list(examples)[:5]
        place = f" in {where}" if where else ""
        rows = "row" if self.n_bad == 1 else "rows"
        message = f"Column '{column}'{place}: {problem}"
        if self.n_bad or self.examples:  # not for a problem of the whole file
            message += f" ({self.n_bad} {rows}"
            if self.examples:
                message += f"; e.g. {', '.join(repr(e) for e in self.examples)}"
            message += ")"
        message += "."
        if fix:
            message += f" {fix}"
        super().__init__(message)


class SeparationError(DataValidationError):
    """A feature level predicts the outcome perfectly, so the logit has no MLE."""


class InvalidParameterError(ClriskError, ValueError):
    """An argument has an invalid value (names the parameter and the value)."""


class ModelFormatError(ClriskError, ValueError):
    """A model or specification file cannot be read or fails validation."""


class NotFittedError(ClriskError, _SklearnNotFittedError):  # type: ignore[misc]
    """A model was used before :meth:`RiskModel.fit`."""


class ClriskWarning(UserWarning):
    """Base class of clrisk's warnings."""


class ConvergenceWarning(ClriskWarning):
    """The solver stopped before reaching its tolerance."""


class DesignWarning(ClriskWarning):
    """The survey design needed an adjustment (e.g. a stratum with one PSU)."""


class CollinearityWarning(ClriskWarning):
    """Model columns are nearly collinear: coefficients poorly determined."""


class CoverageWarning(ClriskWarning):
    """Territories expected in the results have no rows in the frame."""


def _short(items: Sequence[Any], limit: int = 8) -> str:
    if not items:
        return "none"
    shown = ", ".join(repr(i) for i in items[:limit])
    more = len(items) - limit
    return shown + (f" and {more} more" if more > 0 else "")
