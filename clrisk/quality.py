"""Row accounting: every input row is either used or rejected with a reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["DataQuality"]


@dataclass
class DataQuality:
    """How many rows came in, how many were used, and why the others were not.

    Records add up (``a + b``), so chunks and partitions merge exactly.

    Attributes
    ----------
    rows_read : int
        Rows received.
    rows_used : int
        Rows fitted or scored.
    rejected : dict of str to int
        Rows rejected, by reason (e.g. ``"missing value in 'sex'"``).
    notes : list of str
        Other facts worth reporting (e.g. territories without rows).
    recoded : dict of str to int
        Rows kept but coded by a stated policy rather than the code map (e.g.
        an unknown code mapped to a level with ``unknown_as``), by reason.
    """

    rows_read: int = 0
    rows_used: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    recoded: dict[str, int] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        """Total rows rejected, all reasons together."""
        return sum(self.rejected.values())

    @property
    def reconciles(self) -> bool:
        """True when read = used + rejected."""
        return self.rows_read == self.rows_used + self.rows_rejected

    def __add__(self, other: DataQuality) -> DataQuality:
        seen = {_key(n) for n in self.notes}
        merged = Counter(self.rejected)
        merged.update(other.rejected)
        recoded = Counter(self.recoded)
        recoded.update(other.recoded)
        return DataQuality(
            self.rows_read + other.rows_read,
            self.rows_used + other.rows_used,
            dict(sorted(merged.items())),
            self.notes + [n for n in other.notes if _key(n) not in seen],
            dict(sorted(recoded.items())),
        )

    def summary(self) -> str:
        """One line per count, for printing."""
        lines = [f"rows read: {self.rows_read:,}", f"rows used: {self.rows_used:,}"]
        lines += [f"rejected ({reason}): {n:,}" for reason, n in self.rejected.items()]
        lines += [f"recoded ({reason}): {n:,}" for reason, n in self.recoded.items()]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _key(note: str) -> str:
    """Notes with the same text before ", e.g." say the same thing: keep one."""
    return note.split(", e.g.", 1)[0]
