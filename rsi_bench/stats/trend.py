"""A linear trend of score over generations."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rsi_bench.stats._checks import Values, as_vector
from rsi_bench.stats._special import student_t_two_sided


@dataclass(frozen=True)
class Trend:
    """Ordinary least-squares line of score on generation."""

    slope: float  # score per generation
    intercept: float
    p_value: float  # two-sided, H0: slope = 0
    n: int  # points fitted


def trend_test(x: Values, y: Values) -> Trend:
    """OLS slope of y (a score) on x (the generation) with a two-sided t-test of slope = 0.

    The p-value is the usual one (Student's t with n - 2 degrees of freedom on
    ``r * sqrt((n - 2) / (1 - r^2))``), the same as ``scipy.stats.linregress``. It assumes
    independent errors of equal variance around the line. Scores of successive generations are
    not independent (same tasks; in a lineage each generation descends from the previous), so
    read the trend as a description of the curve; the paired comparisons and :func:`decide`
    carry the evidence. Needs at least 3 points and at least two distinct x values. A constant
    y gives slope 0 and p = 1.
    """
    xs, ys = as_vector(x, "x"), as_vector(y, "y")
    n = xs.size
    if ys.size != n:
        raise ValueError(f"x and y must have the same length: {n} != {ys.size}")
    if n < 3:
        raise ValueError(f"a trend test needs at least 3 points, got {n}")
    dx, dy = xs - xs.mean(), ys - ys.mean()
    sxx, syy, sxy = float(dx @ dx), float(dy @ dy), float(dx @ dy)
    if sxx == 0.0:
        raise ValueError("x is constant: no slope can be fitted")
    slope = sxy / sxx
    intercept = float(ys.mean()) - slope * float(xs.mean())
    if syy == 0.0:
        return Trend(slope=slope, intercept=intercept, p_value=1.0, n=n)
    r = max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
    df = n - 2
    if abs(r) == 1.0:
        return Trend(slope=slope, intercept=intercept, p_value=0.0, n=n)
    t = r * math.sqrt(df / ((1.0 - r) * (1.0 + r)))
    return Trend(slope=slope, intercept=intercept, p_value=student_t_two_sided(t, df), n=n)
