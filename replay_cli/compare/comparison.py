"""Group runs by their swept keys, aggregate each metric over seeds, and test each group against its
baseline.

:func:`compare` is the one entry point every view uses (terminal table, figures, HTML report, W&B
summary run): it returns plain data, prints nothing and writes nothing. Grouping and aggregation are
pandas (``groupby``/``agg``), the statistics scipy (:mod:`replay_cli.compare.stats`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replay_cli.compare import selection as choosing
from replay_cli.compare.budget import describe as describe_budget
from replay_cli.compare.budget import within as within_budget
from replay_cli.compare.runs import Run, find_runs
from replay_cli.compare.selection import Choice, Selection
from replay_cli.compare.stats import NO_RUNS, TESTS, Significance, Stat, versus_baseline
from replay_cli.compare.swept import SEED, hashable, swept_keys
from replay_cli.errors import UsageError, closest
from replay_cli.keys import EXPERIMENT_KINDS, HEADLINE_METRICS, HIGHER_IS_BETTER, metric_value

METRICS = HEADLINE_METRICS
DEFAULT_METRIC = "final_average_accuracy"
DEFAULT_ALPHA = 0.05
BENCHMARK = "benchmark"
MEM_SIZE = "mem_size"
OUTPUT_DIR = "compare"


@dataclass(eq=False)
class Group:
    key: dict[str, Any]  # grouping key -> the value its runs share
    runs: list[Run] = field(default_factory=list)
    stats: dict[str, Stat] = field(default_factory=dict)  # metric -> over the completed runs
    baseline: Group | None = None  # the group this one is tested against (itself for a baseline)
    baseline_label: str = ""  # the baseline's values of the keys that tell it apart in its cell
    significance: Significance | None = None  # the test of the compared metric against the baseline
    choice: Choice | None = None  # --select-by: why this configuration was chosen

    @property
    def completed(self) -> list[Run]:
        return [run for run in self.runs if run.completed]

    @property
    def excluded(self) -> dict[str, int]:
        """How many runs of each unfinished status were left out of the means."""
        return dict(Counter(run.status for run in self.runs if not run.completed))

    @property
    def label(self) -> str:
        return label_of(self.key)

    @property
    def is_baseline(self) -> bool:
        return self.baseline is self

    def value(self, key: str) -> Any:
        """The value of any config key shared by all runs of the group (None when they disagree)."""
        values = {hashable(run.settings.get(key)): run.settings.get(key) for run in self.runs}
        return next(iter(values.values())) if len(values) == 1 else None

    @property
    def seeds(self) -> list[Any]:
        return [run_seed(run) for run in self.runs]

    def values(self, metric: str) -> list[tuple[Any, float]]:
        """(seed, value) of ``metric`` for each completed run that has it: what a test compares."""
        found = [(run_seed(run), metric_value(run.results, metric)) for run in self.completed]
        return [(seed, float(value)) for seed, value in found if value is not None]

    def significant(self, alpha: float) -> bool:
        p_value = self.significance.p_value if self.significance else None
        return p_value is not None and p_value < alpha


def run_seed(run: Run) -> Any:
    return run.results.get(SEED, run.config.get(SEED))


def label_of(key: dict[str, Any]) -> str:
    if not key:
        return "all runs"
    if len(key) == 1:
        return str(next(iter(key.values())))
    return ", ".join(f"{k}={v}" for k, v in key.items())


@dataclass
class Comparison:
    runs: list[Run]
    roots: list[Path]
    swept: list[str]
    by: list[str]  # the grouping keys, kept-apart ones included
    metric: str
    groups: list[Group]
    kept_apart: list[str] = field(default_factory=list)  # added to --by: different experiments
    test: str = "t"
    alpha: float = DEFAULT_ALPHA
    baseline: dict[str, str] | None = None  # --baseline; None: the best group at each memory size
    selection: Selection | None = None  # --select-by: the groups are the chosen configurations
    budget: dict[str, float] = field(default_factory=dict)  # --budget: metric -> bound on its group mean
    over_budget: list[Group] = field(default_factory=list)  # groups --budget left out

    @property
    def benchmarks(self) -> list[str]:
        return sorted({run.benchmark for run in self.runs if run.config})

    @property
    def excluded_runs(self) -> list[Run]:
        return [run for run in self.runs if not run.completed]

    @property
    def pooled(self) -> list[str]:
        """Swept keys averaged over because ``--by`` left them out."""
        return [key for key in self.swept if key not in self.by]

    @property
    def key_columns(self) -> list[str]:
        """The grouping keys, with the benchmark first when runs of several are compared."""
        several = len(self.benchmarks) > 1 and BENCHMARK not in self.by
        return [BENCHMARK, *self.by] if several else list(self.by)

    def key_values(self, group: Group) -> dict[str, Any]:
        benchmark = group.runs[0].benchmark
        return {key: benchmark if key == BENCHMARK else group.key.get(key) for key in self.key_columns}

    def notes(self) -> list[str]:
        """What the grouping did beyond the keys asked for, in words."""
        notes = []
        if self.kept_apart:
            notes.append(
                f"kept apart by {', '.join(self.kept_apart)}: runs of different benchmarks, strategies or "
                "protocols are never averaged together"
            )
        if self.pooled:
            notes.append(f"averaged over {', '.join(self.pooled)} (not in --by)")
        if self.selection:
            notes.append(f"selection: {self.selection.describe()}")
            notes += [f"final runs: {command}" for command in self.final_runs()]
        if self.budget:
            bounds = describe_budget(self.budget)
            left_out = "; ".join(group.label for group in self.over_budget) or "none"  # labels hold ", "
            notes.append(f"budget {bounds}: groups over it (or not reporting it) left out: {left_out}")
        return notes

    def final_runs(self) -> list[str]:
        """With ``--select-by``: one ``replay-run -m`` line per chosen configuration, over new seeds."""
        if not self.selection:
            return []
        commands = [
            choosing.final_run_command(group, choosing.new_seeds(self.runs, group)) for group in self.groups
        ]
        return list(dict.fromkeys(commands))  # chosen groups that differ only in tuning-only keys

    def rows(self) -> list[dict[str, Any]]:
        """One flat record per group, best first: what CSV, JSON and the W&B table hold."""
        rows = []
        for group in self.groups:
            row = {**self.key_values(group), "runs": len(group.runs), "n": len(group.completed)}
            row["excluded"] = ", ".join(f"{n} {status}" for status, n in sorted(group.excluded.items()))
            for metric, stat in group.stats.items():
                row.update({f"{metric}_mean": stat.mean, f"{metric}_std": stat.std})
                row.update({f"{metric}_ci_low": stat.ci_low, f"{metric}_ci_high": stat.ci_high})
            significance = group.significance
            row["baseline"] = group.baseline_label or None
            row["test"] = "baseline" if group.is_baseline else significance.test if significance else None
            row["p_value"] = significance.p_value if significance else None
            row["significant"] = group.significant(self.alpha) if significance else None
            if self.selection and group.choice:
                row[f"selected_by_{self.selection.metric}"] = group.choice.value
                row["configurations"] = group.choice.configurations
            rows.append(row)
        return rows

    def frame(self) -> Any:
        """:meth:`rows` as a pandas DataFrame (missing values as None)."""
        import pandas as pd

        rows = self.rows()
        return pd.DataFrame(rows, columns=list(rows[0]) if rows else None).astype(object)

    def output_dir(self) -> Path:
        """Next to what was compared: ``<sweep>/compare`` for one sweep, the common parent otherwise."""
        common = Path(os.path.commonpath([str(run.path) for run in self.runs]))
        return common / OUTPUT_DIR


def compare(
    paths: Sequence[str],
    by: Sequence[str] | None = None,
    metric: str = DEFAULT_METRIC,
    baseline: dict[str, str] | None = None,
    test: str = "t",
    alpha: float = DEFAULT_ALPHA,
    select_by: str | None = None,
    within: Sequence[str] | None = None,
    select_on_test: bool = False,
    budget: dict[str, float] | None = None,
) -> Comparison:
    """Find the runs under ``paths``, group them by ``by`` (default: the swept keys), aggregate over
    seeds and test ``metric`` of each group against its baseline (``baseline``: key -> value as typed,
    e.g. ``{"storage": "reservoir"}``; None: the best group at each memory size).

    ``select_by`` (a metric, ``validation.<name>`` unless ``select_on_test``): keep, per value of the
    ``within`` keys (default strategy and storage), only the configuration with its best mean (see
    :mod:`replay_cli.compare.selection`); the baseline is then the best chosen one. ``budget``
    (:func:`replay_cli.compare.budget.parse_budget`) keeps only the groups whose mean cost is within
    it; the runs of the others are not compared."""
    if metric not in METRICS:
        raise UsageError(
            f"--metric {metric} is not a metric{closest(metric, METRICS)}; choose one of: "
            + ", ".join(METRICS)
        )
    if test not in TESTS:
        raise UsageError(f"--test {test} is not a test; choose one of: {', '.join(TESTS)}")
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha {alpha} is invalid: expected a number between 0 and 1")
    if select_by is not None:
        choosing.check_select_by(select_by, select_on_test)
    found = find_runs(paths)
    swept = swept_keys(found.runs)
    selection = None
    if select_by is not None:
        inside = choosing.within_keys(found.runs, within)
        tuned = [key for key in (by if by is not None else swept) if key not in inside]
        selection = Selection(select_by, inside, tuned, not select_by.startswith("validation."))
        by = [*inside, *tuned]
    keys, kept_apart = _grouping_keys(found.runs, swept, by)
    groups, over_budget = within_budget(_aggregate(_group(found.runs, keys)), budget or {})
    runs = [run for run in found.runs if not any(run in group.runs for group in over_budget)]
    if selection is not None:
        groups = choosing.choose(groups, selection)
    comparison = Comparison(
        runs, found.roots, swept, keys, metric, _sorted(groups, metric), kept_apart, test, alpha, baseline
    )
    comparison.selection = selection
    comparison.budget, comparison.over_budget = dict(budget or {}), over_budget
    _test_against_baselines(comparison)
    return comparison


def _grouping_keys(
    runs: Sequence[Run], swept: list[str], by: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """``by`` as asked, checked against the runs' keys, and the swept keys it may not pool: those of
    the benchmark, strategy and protocol (returned apart, to be said)."""
    if by is None:
        return list(swept), []
    known = {key for run in runs for key in run.settings}
    for key in by:
        if key not in known:
            raise UsageError(f"--by {key} is not a config key of these runs{closest(key, known)}")
    kept_apart = [key for key in swept if key.split(".")[0] in EXPERIMENT_KINDS and key not in by]
    return [*kept_apart, *by], kept_apart


def _group(runs: Sequence[Run], keys: Sequence[str]) -> list[Group]:
    """pandas ``groupby`` on the keys' values (as JSON text: values may be lists). Runs of different
    benchmarks, strategies or protocols never share a group, whatever the keys."""
    import pandas as pd

    readable = [run for run in runs if run.config]  # an unreadable run's settings are unknown
    identity = {"_benchmark": [run.benchmark for run in readable]}
    for key in dict.fromkeys([*EXPERIMENT_KINDS, *keys]):
        identity[key] = [hashable(run.settings.get(key)) for run in readable]
    numbers = pd.DataFrame(identity).groupby(list(identity), sort=False).ngroup()
    groups: dict[int, Group] = {}
    for run, number in zip(readable, numbers, strict=True):
        groups.setdefault(number, Group({key: run.settings.get(key) for key in keys})).runs.append(run)
    return list(groups.values())


def _aggregate(groups: list[Group]) -> list[Group]:
    """Mean, std and n of every metric over each group's completed runs: one pandas ``groupby/agg``."""
    import pandas as pd

    records = [
        {"group": number, **{metric: run.results.get(metric) for metric in METRICS}}
        for number, group in enumerate(groups)
        for run in group.completed
    ]
    values = pd.DataFrame(records, columns=["group", *METRICS]).astype({m: float for m in METRICS})
    table = values.groupby("group")[list(METRICS)].agg(["mean", "std", "count"])
    for number, group in enumerate(groups):
        for metric in METRICS:
            if number in table.index:
                mean, std, count = (table.at[number, (metric, a)] for a in ("mean", "std", "count"))
                group.stats[metric] = Stat.from_aggregates(mean, std, count)
            else:
                group.stats[metric] = Stat(None, None, 0)
    return groups


def _sorted(groups: list[Group], metric: str) -> list[Group]:
    sign = -1 if HIGHER_IS_BETTER[metric] else 1

    def order(group: Group) -> tuple[bool, float, str]:
        mean = group.stats[metric].mean
        return (mean is None, sign * mean if mean is not None else 0.0, group.label)

    return sorted(groups, key=order)


def _test_against_baselines(comparison: Comparison) -> None:
    """Within each cell of comparable groups, test every group against the cell's baseline.

    A cell: the groups of one benchmark that share every key column but the ``--baseline`` keys, or,
    without ``--baseline``, that share the memory size; its baseline is the group matching
    ``--baseline``, or else the best one (groups are sorted best first)."""
    spec = comparison.baseline
    # chosen configurations differ in their tuned keys: only the --within keys tell cells apart
    columns = comparison.selection.within if comparison.selection else comparison.key_columns
    if spec:
        _check_baseline(comparison, spec)
        fixed = [key for key in columns if key not in spec]
    else:
        fixed = [MEM_SIZE] if MEM_SIZE in columns else []
    cells: dict[tuple[str, ...], list[Group]] = {}
    for group in comparison.groups:
        values = comparison.key_values(group)
        cell = (group.runs[0].benchmark, *(hashable(values.get(key)) for key in fixed))
        cells.setdefault(cell, []).append(group)
    for members in cells.values():
        candidates = [
            group
            for group in members
            if group.stats[comparison.metric].n and (not spec or _matches(group, spec))
        ]
        if not candidates:  # no completed run to test against: say so, never leave the cell blank
            for group in members:
                group.significance = Significance(NO_RUNS, None)
            continue
        baseline = candidates[0]
        shown = {key: value for key, value in baseline.key.items() if key not in fixed}
        for group in members:
            group.baseline, group.baseline_label = baseline, label_of(shown)
            if group is not baseline:
                group.significance = versus_baseline(
                    group.values(comparison.metric), baseline.values(comparison.metric), comparison.test
                )


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else hashable(value)


def _matches(group: Group, spec: dict[str, str]) -> bool:
    return all(_shown(group.key.get(key)) == value for key, value in spec.items())


def _check_baseline(comparison: Comparison, spec: dict[str, str]) -> None:
    for key, value in spec.items():
        if key not in comparison.by:
            shown = ", ".join(comparison.by) or "none"
            raise UsageError(f"--baseline {key}={value}: {key} is not a grouping key (these are: {shown})")
        seen = sorted({_shown(group.key.get(key)) for group in comparison.groups})
        if value not in seen:
            raise UsageError(
                f"--baseline {key}={value}: no group has {key}={value}{closest(value, seen)}; "
                f"choose one of: {', '.join(seen)}"
            )
