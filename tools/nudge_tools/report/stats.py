"""The statistics of `nudge report`: Wilson and Newcombe intervals, the two-proportion z-test, the
log risk ratio interval and the chi-square sample ratio test (scipy for the distributions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats

CONFIDENCE = 0.95


def z_value(confidence: float = CONFIDENCE) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson(successes: float, trials: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion."""
    if trials <= 0:
        return (0.0, 1.0)
    z, p = z_value(confidence), successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe(x1: float, n1: float, x0: float, n0: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p1 - p0 (method 10 of Newcombe 1998)."""
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, confidence)
    l0, u0 = wilson(x0, n0, confidence)
    d = p1 - p0
    return (d - math.hypot(p1 - l1, u0 - p0), d + math.hypot(u1 - p1, p0 - l0))


def z_test(x1: float, n1: float, x0: float, n0: float) -> float:
    """Two-sided p-value of the pooled two-proportion z-test of p1 = p0."""
    pooled = (x1 + x0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:
        return 1.0
    return float(2 * stats.norm.sf(abs(x1 / n1 - x0 / n0) / se))


def relative_interval(x1: float, n1: float, x0: float, n0: float,
                      confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The interval of p1 / p0 - 1 from the log risk ratio (Katz); None with no conversions in an arm."""
    if x1 <= 0 or x0 <= 0:
        return None
    ratio = (x1 / n1) / (x0 / n0)
    se = math.sqrt(max(0.0, 1 / x1 - 1 / n1 + 1 / x0 - 1 / n0))
    z = z_value(confidence)
    return (ratio * math.exp(-z * se) - 1, ratio * math.exp(z * se) - 1)


def sample_ratio_p(observed: Sequence[float], shares: Sequence[float]) -> float:
    """Chi-square goodness-of-fit p-value of counts against expected shares (which sum to 1)."""
    total = sum(observed)
    if any(s <= 0 and o > 0 for o, s in zip(observed, shares, strict=True)):
        return 0.0  # visitors in an arm that should not exist
    pairs = [(o, s * total) for o, s in zip(observed, shares, strict=True) if s > 0]
    result = stats.chisquare([o for o, _ in pairs], [e for _, e in pairs])
    return float(result.pvalue)
