"""Group runs by their swept keys and aggregate each metric over seeds.

:func:`compare` is the one entry point every view uses (terminal table, figures, HTML report and,
later, a W&B summary run): it returns plain data, prints nothing and writes nothing.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from replay_cli.compare.runs import Run, find_runs
from replay_cli.compare.swept import SEED, hashable, swept_keys
from replay_cli.errors import UsageError, closest
from replay_cli.reporting.metrics import HIGHER_IS_BETTER

METRICS = tuple(HIGHER_IS_BETTER)
DEFAULT_METRIC = "final_average_accuracy"
BENCHMARK = "benchmark"
OUTPUT_DIR = "compare"


@dataclass(frozen=True)
class Stat:
    """A metric over the completed runs of a group: mean, sample std (n-1; None for one run) and n."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Stat:
        present = [float(v) for v in values if v is not None]
        mean = statistics.fmean(present) if present else None
        std = statistics.stdev(present) if len(present) > 1 else None
        return cls(mean, std, len(present))


@dataclass
class Group:
    key: dict[str, Any]  # grouping key -> the value its runs share
    runs: list[Run] = field(default_factory=list)

    @property
    def completed(self) -> list[Run]:
        return [run for run in self.runs if run.completed]

    @property
    def excluded(self) -> dict[str, int]:
        """How many runs of each unfinished status were left out of the means."""
        return dict(Counter(run.status for run in self.runs if not run.completed))

    @cached_property
    def stats(self) -> dict[str, Stat]:
        return {metric: Stat.of([run.results.get(metric) for run in self.completed]) for metric in METRICS}

    @property
    def label(self) -> str:
        if not self.key:
            return "all runs"
        if len(self.key) == 1:
            return str(next(iter(self.key.values())))
        return ", ".join(f"{key}={value}" for key, value in self.key.items())

    def value(self, key: str) -> Any:
        """The value of any config key shared by all runs of the group (None when they disagree)."""
        values = {hashable(run.settings.get(key)): run.settings.get(key) for run in self.runs}
        return next(iter(values.values())) if len(values) == 1 else None

    @property
    def seeds(self) -> list[Any]:
        return [run.results.get(SEED, run.config.get(SEED)) for run in self.runs]


@dataclass
class Comparison:
    runs: list[Run]
    roots: list[Path]
    swept: list[str]
    by: list[str]
    metric: str
    groups: list[Group]

    @property
    def benchmarks(self) -> list[str]:
        return sorted({run.benchmark for run in self.runs if run.config})

    @property
    def excluded_runs(self) -> list[Run]:
        return [run for run in self.runs if not run.completed]

    @property
    def key_columns(self) -> list[str]:
        """The grouping keys, with the benchmark first when runs of several are compared."""
        several = len(self.benchmarks) > 1 and BENCHMARK not in self.by
        return [BENCHMARK, *self.by] if several else list(self.by)

    def key_values(self, group: Group) -> dict[str, Any]:
        benchmark = group.runs[0].benchmark
        return {key: benchmark if key == BENCHMARK else group.key.get(key) for key in self.key_columns}

    def rows(self) -> list[dict[str, Any]]:
        """One flat record per group, best first: what CSV, JSON and a W&B table hold."""
        rows = []
        for group in self.groups:
            row = {**self.key_values(group), "runs": len(group.runs), "n": len(group.completed)}
            row["excluded"] = ", ".join(f"{n} {status}" for status, n in sorted(group.excluded.items()))
            for metric, stat in group.stats.items():
                row[f"{metric}_mean"], row[f"{metric}_std"] = stat.mean, stat.std
            rows.append(row)
        return rows

    def output_dir(self) -> Path:
        """Next to what was compared: ``<sweep>/compare`` for one sweep, the common parent otherwise."""
        common = Path(os.path.commonpath([str(run.path) for run in self.runs]))
        return common / OUTPUT_DIR


def compare(
    paths: Sequence[str], by: Sequence[str] | None = None, metric: str = DEFAULT_METRIC
) -> Comparison:
    """Find the runs under ``paths``, group them by ``by`` (default: the swept keys) and aggregate."""
    if metric not in METRICS:
        raise UsageError(
            f"--metric {metric} is not a metric{closest(metric, METRICS)}; choose one of: "
            + ", ".join(METRICS)
        )
    found = find_runs(paths)
    swept = swept_keys(found.runs)
    keys = _grouping_keys(found.runs, swept, by)
    groups = _group(found.runs, keys)
    return Comparison(found.runs, found.roots, swept, keys, metric, _sorted(groups, metric))


def _grouping_keys(runs: Sequence[Run], swept: list[str], by: Sequence[str] | None) -> list[str]:
    """``by`` as asked, checked against the runs' keys; swept benchmark keys are always added."""
    if by is None:
        return list(swept)
    known = {key for run in runs for key in run.settings}
    for key in by:
        if key not in known:
            raise UsageError(f"--by {key} is not a config key of these runs{closest(key, known)}")
    benchmark_keys = [k for k in swept if k.split(".")[0] == BENCHMARK and k not in by]
    return [*benchmark_keys, *by]


def _group(runs: Sequence[Run], keys: Sequence[str]) -> list[Group]:
    """Runs of different benchmarks never share a group, whatever the keys."""
    groups: dict[tuple[str, ...], Group] = {}
    for run in runs:
        if not run.config:  # unreadable: its settings are unknown
            continue
        values = {key: run.settings.get(key) for key in keys}
        identity = (run.benchmark, *(hashable(v) for v in values.values()))
        groups.setdefault(identity, Group(values)).runs.append(run)
    return list(groups.values())


def _sorted(groups: list[Group], metric: str) -> list[Group]:
    sign = -1 if HIGHER_IS_BETTER[metric] else 1

    def order(group: Group) -> tuple[bool, float, str]:
        mean = group.stats[metric].mean
        return (mean is None, sign * mean if mean is not None else 0.0, group.label)

    return sorted(groups, key=order)
