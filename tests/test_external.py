"""External validation on public data no one on the team wrote (../shared/refdata).

Skipped in a user's clone, where ../shared is absent: the data are not shipped
with clrisk (they belong to the R package emdi, GPL-2).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_external_emdi.py"
REFDATA = Path(__file__).resolve().parents[2] / "shared" / "refdata" / "emdi"

pytestmark = pytest.mark.skipif(
    not REFDATA.exists(),
    reason="../shared/refdata/emdi is not beside this checkout (not shipped)",
)


@pytest.fixture(scope="module")
def figures() -> dict:  # type: ignore[type-arg]
    spec = importlib.util.spec_from_file_location("bench_external_emdi", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run(REFDATA)  # type: ignore[no-any-return]


def test_district_poverty_recovered(figures: dict) -> None:  # type: ignore[type-arg]
    """The README of refdata: a careful weighted logit reaches corr ~0.99."""
    everywhere = figures["clrisk_all"]
    assert everywhere["districts"] == 94
    assert everywhere["pearson"] >= 0.98
    assert everywhere["mae_points"] <= 4.0
    assert everywhere["top19_found"] >= 17
    assert figures["clrisk_out_of_sample"]["pearson"] >= 0.97
    # better than the direct estimator where both exist
    assert (
        figures["clrisk_in_sample"]["mae_points"]
        < figures["direct_in_sample"]["mae_points"]
    )


def test_same_as_an_independent_fit(figures: dict) -> None:  # type: ignore[type-arg]
    """scikit-learn (C=1e6) fitted the same model: within 0.05 points everywhere."""
    assert figures["vs_independent_sklearn_fit"]["max_abs_difference_points"] < 0.05
