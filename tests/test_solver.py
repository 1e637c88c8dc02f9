"""clrisk.solver: the lagged-Hessian Newton solver and its large-data warm start."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from clrisk.solver import _WARM_ROWS, fit_binary, weighted_gram


def _data(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
    beta = np.r_[-1.5, rng.normal(0, 0.5, k - 1)]
    y = (rng.random(n) < expit(X @ beta)).astype(float)
    w = rng.uniform(1, 50, n)
    return X, y, w


def _irls(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Textbook IRLS, independent of clrisk.solver."""
    beta = np.zeros(X.shape[1])
    for _ in range(30):
        p = expit(X @ beta)
        W = w * p * (1 - p)
        z = X @ beta + (y - p) / (p * (1 - p))
        beta = np.linalg.solve(X.T @ (W[:, None] * X), X.T @ (W * z))
    return beta


def test_weighted_gram_matches_direct_product() -> None:
    X, _, w = _data(40_000, 7)
    np.testing.assert_allclose(weighted_gram(X, w, block=999), X.T @ (w[:, None] * X),
                               rtol=1e-12)  # fmt: skip


@pytest.mark.parametrize("n", [5_000, 4 * _WARM_ROWS + 17])
def test_matches_irls_with_and_without_warm_start(n: int) -> None:
    """Above 4 x _WARM_ROWS rows the solver starts from a subsample fit."""
    X, y, w = _data(n, 6)
    fit = fit_binary(X, y, w)
    assert fit.converged
    np.testing.assert_allclose(expit(X @ fit.beta), expit(X @ _irls(X, y, w)),
                               rtol=0, atol=1e-10)  # fmt: skip


def test_returned_information_is_exact_at_the_solution() -> None:
    """The lagged Hessian must never leak into the covariance."""
    X, y, w = _data(4 * _WARM_ROWS + 1, 5, seed=3)
    fit = fit_binary(X, y, w)
    p = expit(X @ fit.beta)
    np.testing.assert_allclose(fit.info, weighted_gram(X, w * p * (1 - p)),
                               rtol=1e-10)  # fmt: skip


def test_start_does_not_change_the_solution() -> None:
    X, y, w = _data(4 * _WARM_ROWS + 3, 5, seed=4)
    a = fit_binary(X, y, w)
    b = fit_binary(X, y, w, beta0=np.zeros(X.shape[1]))
    np.testing.assert_allclose(expit(X @ a.beta), expit(X @ b.beta), atol=1e-10)
    np.testing.assert_allclose(a.info, b.info, rtol=1e-8)
