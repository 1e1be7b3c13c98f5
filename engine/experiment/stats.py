"""Means, spreads and the paired interval of a gain across seeds (docs/ARCHITECTURE.md, "Experiments").

Pure Python: the Student t quantile comes from the regularised incomplete beta function
(a continued fraction, as in Numerical Recipes' `betacf`), so the report needs no SciPy.
"""

from __future__ import annotations

import math
import statistics


def mean_sd(xs: list[float]) -> tuple[float | None, float | None]:
    """(mean, sample standard deviation); sd is None for fewer than two values."""
    if not xs:
        return None, None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_ppf(p: float, df: float) -> float:
    """The `p` quantile of Student's t (bisection on the CDF; 1e-12 is far below what a report prints)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


def paired_interval(a: list[float], b: list[float], level: float = 0.95) -> dict:
    """The gain b - a over paired values (one pair per seed): mean, per-pair gains and the
    two-sided `level` interval mean ± t(n-1) · sd / sqrt(n); lo/hi are None for one pair."""
    if len(a) != len(b):
        raise ValueError("paired values need the same number of seeds on both sides")
    gains = [y - x for x, y in zip(a, b)]
    n = len(gains)
    mean, sd = mean_sd(gains)
    out: dict = {"n": n, "gains": gains, "mean": mean, "sd": sd, "lo": None, "hi": None, "t": None, "level": level}
    if n >= 2 and sd is not None and mean is not None:
        t = t_ppf(0.5 + level / 2.0, n - 1)
        half = t * sd / math.sqrt(n)
        out.update(t=t, lo=mean - half, hi=mean + half)
    return out
