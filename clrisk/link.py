"""Link functions of the binary risk model: probability, density and derivative."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.special import expit, ndtr

__all__ = ["LINKS", "Link", "cdf", "pdf", "pdf_slope"]

Link = Literal["logit", "probit"]
LINKS: tuple[str, ...] = ("logit", "probit")
_SQRT_2PI = np.sqrt(2.0 * np.pi)


def cdf(eta: np.ndarray, link: Link) -> np.ndarray:
    """Probability F(eta)."""
    return expit(eta) if link == "logit" else ndtr(eta)


def pdf(eta: np.ndarray, link: Link, p: np.ndarray | None = None) -> np.ndarray:
    """Density dF/deta; pass `p` = F(eta) to save work for the logit."""
    if link == "logit":
        p = expit(eta) if p is None else p
        return p * (1.0 - p)
    return np.exp(-0.5 * eta * eta) / _SQRT_2PI


def pdf_slope(eta: np.ndarray, link: Link, p: np.ndarray | None = None) -> np.ndarray:
    """Second derivative d2F/deta2."""
    if link == "logit":
        p = expit(eta) if p is None else p
        return p * (1.0 - p) * (1.0 - 2.0 * p)
    return -eta * pdf(eta, link)
