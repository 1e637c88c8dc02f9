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
    p: np.ndarray = expit(eta) if link == "logit" else ndtr(eta)
    return p


def pdf(eta: np.ndarray, link: Link, p: np.ndarray | None = None) -> np.ndarray:
    """Density dF/deta; pass `p` = F(eta) to save work for the logit.

    The logit density is F(eta)·F(-eta), not p·(1 - p): 1 - p loses its
    digits when p is near 1 (and is 0 beyond eta = 37, where the density is
    not), F(-eta) keeps them.
    """
    if link == "logit":
        q: np.ndarray = expit(eta) if p is None else p
        density: np.ndarray = q * expit(-eta)
        return density
    f: np.ndarray = np.exp(-0.5 * eta * eta) / _SQRT_2PI
    return f


def pdf_slope(eta: np.ndarray, link: Link, p: np.ndarray | None = None) -> np.ndarray:
    """Second derivative d2F/deta2."""
    if link == "logit":
        q: np.ndarray = expit(eta) if p is None else p
        return pdf(eta, link, q) * (1.0 - 2.0 * q)
    slope: np.ndarray = -eta * pdf(eta, link)
    return slope
