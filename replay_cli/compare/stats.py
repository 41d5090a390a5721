"""The statistics of a comparison, all from scipy.stats: a Student t confidence interval of a group's
mean over seeds, and a test of a group against its baseline.

Paired over seeds when both groups ran exactly the same seeds (the same seed gives both the same class
order and initialisation, so the per-seed difference removes that variance): Student's paired t-test
(``scipy.stats.ttest_rel``) or the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``). Otherwise
unpaired: Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``) or, for ``wilcoxon``, its unpaired
rank counterpart, the Mann-Whitney U test (``scipy.stats.mannwhitneyu``). All tests are two-sided.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TESTS = ("t", "wilcoxon")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Stat:
    """A metric over the completed runs of a group: mean, sample std (n-1; None for one run), n, and the
    bounds of the 95% Student t confidence interval of the mean (None below two runs)."""

    mean: float | None
    std: float | None
    n: int
    ci_low: float | None = None
    ci_high: float | None = None

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stat:
        """The statistics of one list of values (None: a run without this metric, left out)."""
        import pandas as pd

        series = pd.Series([v for v in values if v is not None], dtype=float)
        return cls.from_aggregates(series.mean(), series.std(), series.count())

    @classmethod
    def from_aggregates(cls, mean: float, std: float, n: int) -> Stat:
        """From pandas' ``mean``, ``std`` (ddof=1) and ``count``, where missing values are NaN."""
        if n == 0:
            return cls(None, None, 0)
        if n == 1:
            return cls(float(mean), None, 1)
        low, high = confidence_interval(float(mean), float(std), int(n))
        return cls(float(mean), float(std), int(n), low, high)


def confidence_interval(mean: float, std: float, n: int) -> tuple[float | None, float | None]:
    """The 95% interval of the mean of ``n`` values, Student t with n-1 degrees of freedom."""
    from scipy import stats

    if n < 2 or not math.isfinite(std):
        return None, None
    if std == 0:
        return mean, mean
    low, high = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=std / math.sqrt(n))
    return float(low), float(high)


@dataclass(frozen=True)
class Significance:
    test: str  # what was computed, e.g. "paired t", "Welch t (unpaired: seeds differ)", "n/a: no runs"
    p_value: float | None  # None: too few runs, or no variation to test


NO_RUNS, ONE_RUN = "n/a: no runs", "n/a: one run"


def versus_baseline(
    values: Sequence[tuple[Any, float]],
    baseline: Sequence[tuple[Any, float]],
    test: str = "t",
    paired: bool | None = None,
) -> Significance:
    """Two-sided test of ``values`` against ``baseline``, each a list of (seed, metric of one run).

    Paired when both ran the same seeds, each once, at least two (``paired`` forces either way).
    ``test`` of the result says what was computed: ``n/a: no runs`` / ``n/a: one run`` when a side has
    too few runs for any test; ``paired t`` or ``paired Wilcoxon``; otherwise the unpaired test and
    why it is unpaired (``seeds differ``, ``one seed each``: both sides ran the same single seed,
    ``a seed repeats``, or ``forced``)."""
    from functools import partial

    from scipy import stats

    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, not {test!r}")
    if not values or not baseline:
        return Significance(NO_RUNS, None)
    if min(len(values), len(baseline)) < 2:
        return Significance(ONE_RUN, None)
    mine, theirs = dict(values), dict(baseline)
    reason = _unpaired_because(mine, theirs, len(values), len(baseline))
    if paired is not None:
        reason = None if paired else (reason or "forced")
    if reason is None:
        seeds = sorted(mine, key=str)
        a, b = [mine[s] for s in seeds], [theirs[s] for s in seeds]
        name, run = ("paired t", stats.ttest_rel) if test == "t" else ("paired Wilcoxon", stats.wilcoxon)
    else:
        a, b = [value for _, value in values], [value for _, value in baseline]
        if test == "t":
            name, run = f"Welch t (unpaired: {reason})", partial(stats.ttest_ind, equal_var=False)
        else:
            name = f"Mann-Whitney U (unpaired: {reason})"
            run = partial(stats.mannwhitneyu, alternative="two-sided")
    try:
        p_value = float(run(a, b).pvalue)
    except ValueError:  # e.g. Wilcoxon on differences that are all zero
        return Significance(name, None)
    return Significance(name, p_value if math.isfinite(p_value) else None)


def _unpaired_because(
    mine: dict[Any, float], theirs: dict[Any, float], n_mine: int, n_theirs: int
) -> str | None:
    """Why two groups cannot be paired over seeds (None: they can)."""
    if set(mine) != set(theirs):
        return "seeds differ"
    if len(mine) < 2:
        return "one seed each"
    if len(mine) < n_mine or len(theirs) < n_theirs:
        return "a seed repeats"
    return None
