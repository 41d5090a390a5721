"""Equal-budget comparison: methods placed by what they cost (training FLOPs, buffer bytes) against
what they reach, the Pareto front marked, and ``--budget`` keeping only the groups within a budget
(Prabhu et al. 2023, "Computationally Budgeted Continual Learning"; buffers in bytes, not samples).
Also the per-step replay diagnostics of each group (replay counts, memory-overfitting gap).

The costs are the runs' results.json ``train_flops`` and ``buffer_bytes`` (see
:mod:`replay_cli.reporting.cost`)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from replay_cli.errors import UsageError

# --budget names -> the results.json metric each bounds, and how an axis names it
BUDGETS = {"flops": "train_flops", "buffer_bytes": "buffer_bytes"}
_NAMES = {metric: name for name, metric in BUDGETS.items()}
AXIS_LABELS = {
    "train_flops": "training FLOPs (forward + backward, whole run)",
    "buffer_bytes": "largest buffer (bytes)",
}
_UNITS = {"train_flops": "FLOP", "buffer_bytes": "B"}
# SI and IEC prefixes, case as they are written: "m" is milli, not mega, so it is refused
_SUFFIXES = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
_BUDGET_VALUE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(Ki|Mi|Gi|k|M|G|T|P)?\s*$")


def parse_budget(assignments: dict[str, str]) -> dict[str, float]:
    """``{"flops": "2e9", "buffer_bytes": "64Ki"}`` -> ``{"train_flops": 2e9, "buffer_bytes": 65536}``.
    Values: a number, optionally with k, M, G, T, P (powers of 1000) or Ki, Mi, Gi (powers of 1024),
    case as written (``m`` would be milli: refused).
    Raises :class:`UsageError` naming the key and what is allowed."""
    bounds = {}
    for key, text in assignments.items():
        if key not in BUDGETS:
            raise UsageError(
                f"--budget {key}={text}: {key} is not a budget; choose one of: {', '.join(BUDGETS)}"
            )
        match = _BUDGET_VALUE.match(text)
        if match is None or float(match.group(1)) <= 0:
            raise UsageError(
                f"--budget {key}={text} is invalid: expected a positive number, optionally with a suffix "
                "k, M, G, T, P (powers of 1000) or Ki, Mi, Gi (powers of 1024), case as written, "
                "e.g. 2e9, 2G or 64Ki"
            )
        bound = float(match.group(1)) * _SUFFIXES[match.group(2) or ""]
        if not math.isfinite(bound):
            raise UsageError(
                f"--budget {key}={text} is invalid: it overflows to infinity; expected a finite number, "
                "e.g. 2e9 or 64Ki"
            )
        bounds[BUDGETS[key]] = bound
    return bounds


def within(groups: Sequence[Any], bounds: dict[str, float]) -> tuple[list[Any], list[Any]]:
    """(kept, left out): a group is kept when the mean of each bounded cost over its completed runs
    is at most the bound; a group whose runs do not report that cost is left out. Raises
    :class:`UsageError` when groups there were but none is within the budget (an empty table helps
    nobody: the line says the cheapest group instead)."""
    kept, left_out = [], []
    for group in groups:
        means = {metric: group.stats[metric].mean for metric in bounds}
        fits = all(mean is not None and mean <= bounds[m] for m, mean in means.items())
        (kept if fits else left_out).append(group)
    if bounds and left_out and not kept:
        raise UsageError(f"--budget: no group is within {describe(bounds)} ({_cheapest(left_out, bounds)})")
    return kept, left_out


def describe(bounds: dict[str, float]) -> str:
    """``{"train_flops": 2e9}`` -> ``flops <= 2e+09``: the bounds as ``--budget`` names them."""
    return " and ".join(f"{_NAMES[metric]} <= {bound:.4g}" for metric, bound in bounds.items())


def _cheapest(groups: Sequence[Any], bounds: dict[str, float]) -> str:
    """Per bounded cost, the smallest group mean and its group: how far off the budget is."""
    parts = []
    for metric in bounds:
        costed = [(g.stats[metric].mean, g.label) for g in groups if g.stats[metric].mean is not None]
        if costed:
            mean, label = min(costed, key=lambda pair: pair[0])
            parts.append(f"smallest mean {_NAMES[metric]}: {mean:.3g}, in {label}")
        else:
            parts.append(f"no completed run reports {_NAMES[metric]}")
    return "; ".join(parts)


def pareto_front(costs: Sequence[float], values: Sequence[float], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats: none costs at most as much and reaches at least
    as good a value, one of the two strictly. Sorted by cost."""
    sign = 1 if higher_is_better else -1
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -sign * values[i]))
    front, best = [], None
    for i in order:
        if best is None or sign * values[i] > best:
            front.append(i)
            best = sign * values[i]
    return front


# ---------------------------------------------------------------- figures


def metric_vs_cost(comparison: Any, cost: str) -> Any:
    """Per benchmark, one point per group: mean ``cost`` (x, log) against the mean compared metric
    (y), error bars of one std over seeds both ways, the Pareto front as a dashed step line through
    its ringed points. Groups that cost nothing (no buffer: naive) are drawn as horizontal lines.
    None when no run reports ``cost``."""
    from matplotlib.figure import Figure

    from replay_cli.keys import HIGHER_IS_BETTER

    metric = comparison.metric
    groups = [g for g in comparison.groups if g.completed and g.stats[metric].mean is not None]
    groups = [g for g in groups if g.stats[cost].mean is not None]
    if not groups:
        return None
    benchmarks = sorted({g.runs[0].benchmark for g in groups})
    figure = Figure(figsize=(6.5 * len(benchmarks), 4.5), layout="constrained")
    panels = figure.subplots(1, len(benchmarks), squeeze=False)[0]
    for axes, benchmark in zip(panels, benchmarks, strict=True):
        mine = [g for g in groups if g.runs[0].benchmark == benchmark]
        free = [g for g in mine if not g.stats[cost].mean]
        placed = [g for g in mine if g.stats[cost].mean]
        for group in free:
            axes.axhline(
                group.stats[metric].mean, linestyle=":", color="gray", label=f"{group.label} (costs none)"
            )
        for group in placed:
            x, y = group.stats[cost], group.stats[metric]
            axes.errorbar(
                x.mean, y.mean, xerr=x.std or 0.0, yerr=y.std or 0.0, marker="o", capsize=3, label=group.label
            )
        if placed:
            xs = [g.stats[cost].mean for g in placed]
            ys = [g.stats[metric].mean for g in placed]
            front = pareto_front(xs, ys, HIGHER_IS_BETTER[metric])
            axes.step(
                [xs[i] for i in front],
                [ys[i] for i in front],
                where="post",
                linestyle="--",
                color="black",
                linewidth=1,
                label="Pareto front",
            )
            axes.scatter(
                [xs[i] for i in front],
                [ys[i] for i in front],
                s=160,
                facecolors="none",
                edgecolors="black",
                zorder=3,
            )
        _cost_axis(axes, cost, [g.stats[cost].mean for g in placed])
        axes.set(ylabel=metric.replace("_", " "), title=benchmark)
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize="small", loc="best")
    return figure


def _cost_axis(axes: Any, cost: str, values: Sequence[float]) -> None:
    """Engineering units (k, M, G) on the cost axis; a log scale when the costs span over 10x."""
    from matplotlib.ticker import EngFormatter, MaxNLocator, NullFormatter

    log = bool(values) and max(values) > 10 * min(values)
    if log:
        axes.set_xscale("log")
        axes.xaxis.set_minor_formatter(NullFormatter())
    else:  # labels such as "140 MFLOP" are wide: a few ticks, slanted, never run into each other
        axes.xaxis.set_major_locator(MaxNLocator(nbins=4))
    axes.xaxis.set_major_formatter(EngFormatter(unit=_UNITS[cost]))
    axes.tick_params(axis="x", labelrotation=30)
    axes.set_xlabel(AXIS_LABELS[cost] + ("; log scale" if log else ""))


def _step_series(group: Any, read: Any) -> tuple[list[int], list[float], list[float]] | None:
    """Mean and std over the group's completed runs of ``read(step record)`` per step (None values
    left out); None when no run has one."""
    import numpy as np

    per_step: dict[int, list[float]] = {}
    for run in group.completed:
        records = (run.results.get("diagnostics") or {}).get("per_step") or []
        for step, record in enumerate(records):
            value = read(record)
            if value is not None:
                per_step.setdefault(step, []).append(float(value))
    if not per_step:
        return None
    steps = sorted(per_step)
    means = [float(np.mean(per_step[s])) for s in steps]
    stds = [float(np.std(per_step[s], ddof=1)) if len(per_step[s]) > 1 else 0.0 for s in steps]
    return steps, means, stds


def _replays_per_sample(record: dict[str, Any]) -> float | None:
    counts = record.get("replay_counts")
    return counts["mean"] if counts else None


def _overfitting_gap(record: dict[str, Any]) -> float | None:
    gap = record.get("memory_overfitting")
    return gap["gap"] if gap else None


def replay_diagnostics(comparison: Any) -> Any:
    """Two panels, one line per group (mean ± std over seeds) after each step: how many times a
    buffered sample was replayed during the step (mean over the buffer), and the memory-overfitting
    gap (accuracy on the buffer minus on held-out samples of its classes). None without diagnostics."""
    from matplotlib.figure import Figure

    panels_spec = [
        ("replays per buffered sample (in the step)", _replays_per_sample),
        ("memory overfitting gap (accuracy)", _overfitting_gap),
    ]
    series = {
        group.label: [_step_series(group, read) for _, read in panels_spec]
        for group in comparison.groups
        if group.completed
    }
    if not any(s for both in series.values() for s in both):
        return None
    figure = Figure(figsize=(11, 4), layout="constrained")
    panels = figure.subplots(1, 2)
    for index, (axes, (ylabel, _)) in enumerate(zip(panels, panels_spec, strict=True)):
        for label, both in series.items():
            if both[index] is None:
                continue
            steps, mean, std = both[index]
            line = axes.plot(steps, mean, marker=".", label=label)[0]
            low = [m - s for m, s in zip(mean, std, strict=True)]
            high = [m + s for m, s in zip(mean, std, strict=True)]
            axes.fill_between(steps, low, high, color=line.get_color(), alpha=0.15)
        axes.set(xlabel="after step", ylabel=ylabel)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
    panels[1].set_title("buffer accuracy − held-out accuracy, same classes", fontsize="medium")
    panels[0].set_title("times each buffered sample was replayed, mean", fontsize="medium")
    handles = {lbl: h for axes in panels for h, lbl in zip(*axes.get_legend_handles_labels(), strict=True)}
    # below the panels: beside them, at the top, it ran into the figure's title
    figure.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncols=min(3, len(handles)),
        fontsize="small",
    )
    return figure
