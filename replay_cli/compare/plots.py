"""Paper-ready figures of a comparison, each saved as PNG and PDF.

Matplotlib is imported inside the functions (it costs a second) and used through ``Figure`` objects
rather than pyplot, so nothing depends on a display or on global state.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replay_cli.compare.budget import metric_vs_cost, replay_diagnostics
from replay_cli.compare.comparison import Comparison, Group
from replay_cli.compare.stats import Stat
from replay_cli.keys import metric_label
from replay_cli.reporting.figures import draw_accuracy_matrix, draw_stacked_bars

BASELINES = {"naive": "lower bound", "joint": "upper bound"}
_BOUND_COLORS = {"naive": "tab:red", "joint": "tab:green"}
MEM_SIZE = "mem_size"
STRATEGY = "strategy"
ANYTIME = "anytime_accuracy"  # results.json: [{"samples_seen": int, "stream_accuracy": float}, ...]
MARKER = "*"
_DPI = 100


@dataclass(frozen=True)
class FigureFile:
    name: str
    title: str
    png: Path
    pdf: Path


def write_figures(comparison: Comparison, out_dir: Path) -> list[FigureFile]:
    """Every figure that the compared runs can fill; returns what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    makers: list[tuple[str, str, Callable[[Comparison], Any]]] = [
        ("accuracy_vs_mem_size", _metric_title(comparison), _accuracy_vs_mem_size),
        ("accuracy_matrices", "Accuracy matrix of each group (mean over seeds)", _accuracy_matrices),
        ("forgetting_curves", "Accuracy on each experience after each training step", _forgetting_curves),
        ("buffer_composition", "Buffer composition after each step (mean over seeds)", _buffer_composition),
        (
            "replay_diagnostics",
            "Replays and memory overfitting after each step (mean ± std)",
            replay_diagnostics,
        ),
        (
            "metric_vs_flops",
            _cost_title(comparison, "training FLOPs"),
            lambda c: metric_vs_cost(c, "train_flops"),
        ),
        (
            "metric_vs_buffer_bytes",
            _cost_title(comparison, "buffer bytes"),
            lambda c: metric_vs_cost(c, "buffer_bytes"),
        ),
        ("anytime_accuracy", "Stream accuracy during training (mean ± std over seeds)", _anytime_accuracy),
    ]
    written = []
    for name, title, make in makers:
        figure = make(comparison)
        if figure is not None:
            figure.suptitle(title)
            written.append(_save(figure, out_dir, name, title))
    return written


def _save(figure: Any, out_dir: Path, name: str, title: str) -> FigureFile:
    png, pdf = out_dir / f"{name}.png", out_dir / f"{name}.pdf"
    figure.savefig(png, dpi=_DPI, bbox_inches="tight")
    figure.savefig(pdf, bbox_inches="tight")
    return FigureFile(name, title, png, pdf)


def _is_baseline(group: Group) -> bool:
    return group.value(STRATEGY) in BASELINES


def _plotted(comparison: Comparison) -> list[Group]:
    """Groups with at least one completed run, in table order."""
    return [group for group in comparison.groups if group.completed]


def _cost_title(comparison: Comparison, cost: str) -> str:
    return f"{comparison.metric.replace('_', ' ')} vs {cost} (mean ± std over seeds; ringed: Pareto front)"


def _metric_title(comparison: Comparison) -> str:
    return (
        f"{metric_label(comparison.metric, readable=True)} vs memory size (mean ± std; {MARKER} p < "
        f"{comparison.alpha:g} against the baseline at that size)"
    )


def _accuracy_vs_mem_size(comparison: Comparison) -> Any:
    """One line per storage policy (and any other swept key), error bars over seeds, bounds as bands,
    a star above each point significantly different from its baseline."""
    from matplotlib.figure import Figure

    groups = _plotted(comparison)
    replay = [g for g in groups if not _is_baseline(g) and isinstance(g.value(MEM_SIZE), int | float)]
    if not replay:
        return None
    benchmarks = sorted({g.runs[0].benchmark for g in groups})
    figure = Figure(figsize=(5.5 * len(benchmarks), 4), layout="constrained")
    for axes, benchmark in zip(
        figure.subplots(1, len(benchmarks), squeeze=False)[0], benchmarks, strict=True
    ):
        mine = [g for g in groups if g.runs[0].benchmark == benchmark]
        _draw_lines(axes, [g for g in replay if g in mine], comparison)
        _draw_bounds(axes, [g for g in mine if _is_baseline(g)], comparison.metric)
        axes.set_xticks(sorted({g.value(MEM_SIZE) for g in replay if g in mine}))
        axes.set(xlabel=MEM_SIZE, ylabel=metric_label(comparison.metric, readable=True), title=benchmark)
        if "accuracy" in comparison.metric or comparison.metric == "forgetting":
            axes.set_ylim(0, 1.02)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    return figure


def _draw_lines(axes: Any, groups: Sequence[Group], comparison: Comparison) -> None:
    """One line per combination of the keys other than mem_size that differ between these groups."""
    varying = [k for k in groups[0].key if k != MEM_SIZE and len({str(g.key[k]) for g in groups}) > 1]
    lines: dict[str, list[Group]] = {}
    for group in groups:
        parts = [str(group.key[k]) if k == "storage" else f"{k}={group.key[k]}" for k in varying]
        lines.setdefault(", ".join(parts) or "replay", []).append(group)
    for label, members in lines.items():
        members.sort(key=lambda g: g.value(MEM_SIZE))
        stats = [g.stats[comparison.metric] for g in members]
        line = axes.errorbar(
            [g.value(MEM_SIZE) for g in members],
            [s.mean for s in stats],
            yerr=[s.std or 0.0 for s in stats],
            marker="o",
            capsize=4,
            label=label,
        )
        for group, stat in zip(members, stats, strict=True):
            if group.significant(comparison.alpha):
                axes.annotate(
                    MARKER,
                    (group.value(MEM_SIZE), stat.mean + (stat.std or 0.0)),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    color=line.lines[0].get_color(),
                    fontsize="large",
                )


def _draw_bounds(axes: Any, baselines: Sequence[Group], metric: str) -> None:
    """A baseline ignores mem_size: all its runs make one band, mean ± std."""
    for strategy, bound in BASELINES.items():
        runs = [run for g in baselines if g.value(STRATEGY) == strategy for run in g.completed]
        stat = Stat.of([run.results.get(metric) for run in runs])
        if stat.mean is None:
            continue
        color = _BOUND_COLORS[strategy]
        axes.axhline(stat.mean, linestyle="--", color=color, label=f"{strategy} ({bound})")
        spread = stat.std or 0.0
        axes.axhspan(stat.mean - spread, stat.mean + spread, color=color, alpha=0.15)


def _grid(n: int) -> tuple[Any, list[Any]]:
    """A figure with ``n`` panels, at most four per row."""
    from matplotlib.figure import Figure

    cols = min(4, n)
    rows = math.ceil(n / cols)
    figure = Figure(figsize=(3.4 * cols, 3.0 * rows + 0.5), layout="constrained")
    panels = list(figure.subplots(rows, cols, squeeze=False).flat)
    for spare in panels[n:]:
        spare.set_visible(False)
    return figure, panels[:n]


def _mean_matrix(group: Group) -> tuple[Any, Any]:
    """Mean and std of the accuracy matrix over the group's completed runs."""
    import numpy as np

    matrices = [np.asarray(run.results["accuracy_matrix"], dtype=float) for run in group.completed]
    shape = matrices[0].shape
    stacked = np.stack([m for m in matrices if m.shape == shape])
    return stacked.mean(axis=0), stacked.std(axis=0, ddof=1) if len(stacked) > 1 else np.zeros(shape)


def _accuracy_matrices(comparison: Comparison) -> Any:
    groups = _plotted(comparison)
    if not groups:
        return None
    figure, panels = _grid(len(groups))
    for axes, group in zip(panels, groups, strict=True):
        mean, _ = _mean_matrix(group)
        image = draw_accuracy_matrix(axes, mean, fontsize=7)
        axes.set(title=_wrap(group.label), xlabel="test experience", ylabel="after step")
    figure.colorbar(image, ax=panels, shrink=0.8, label="accuracy")
    return figure


def _forgetting_curves(comparison: Comparison) -> Any:
    groups = _plotted(comparison)
    if not groups:
        return None
    figure, panels = _grid(len(groups))
    for axes, group in zip(panels, groups, strict=True):
        mean, std = _mean_matrix(group)
        steps = mean.shape[0]
        for j in range(mean.shape[1]):
            first = min(j, steps - 1)  # joint training has one step that learns every experience
            x = list(range(first, steps))
            line = axes.plot(x, mean[first:, j], marker=".", label=f"exp {j}")[0]
            axes.fill_between(
                x,
                mean[first:, j] - std[first:, j],
                mean[first:, j] + std[first:, j],
                color=line.get_color(),
                alpha=0.15,
            )
        axes.set(title=_wrap(group.label), xlabel="after step", ylabel="accuracy", ylim=(-0.02, 1.02))
        axes.set_xticks(range(steps))
        axes.grid(alpha=0.3)
    _legend(figure, panels)
    return figure


def _buffer_composition(comparison: Comparison) -> Any:
    groups = [g for g in _plotted(comparison) if any(_buffer_sizes(run) for run in g.completed)]
    if not groups:
        return None
    figure, panels = _grid(len(groups))
    for axes, group in zip(panels, groups, strict=True):
        steps, origins, counts = _mean_composition(group)
        stacks = {f"from exp {o}": [counts[step].get(o, 0.0) for step in steps] for o in origins}
        draw_stacked_bars(axes, steps, stacks)
        axes.set(title=_wrap(group.label), xlabel="after step", ylabel="samples in buffer")
    _legend(figure, panels)
    return figure


def _anytime_accuracy(comparison: Comparison) -> Any:
    """Per benchmark, one line per group: the mean stream accuracy over seeds at each number of training
    samples seen, with a band of ± one std, from the runs that evaluated during training."""
    curves = _anytime_curves(comparison)
    if curves is None:
        return None
    from matplotlib.figure import Figure

    benchmarks = list(dict.fromkeys(curves["benchmark"]))
    figure = Figure(figsize=(5.5 * len(benchmarks), 4), layout="constrained")
    panels = figure.subplots(1, len(benchmarks), squeeze=False)[0]
    for axes, benchmark in zip(panels, benchmarks, strict=True):
        mine = curves[curves["benchmark"] == benchmark]
        for label, curve in mine.groupby("group", sort=False):
            x, mean, std = curve["samples_seen"], curve["mean"], curve["std"].fillna(0.0)
            line = axes.plot(x, mean, label=label)[0]
            axes.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        axes.set(xlabel="training samples seen", ylabel="stream accuracy", title=benchmark, ylim=(0, 1.02))
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    return figure


def _anytime_curves(comparison: Comparison) -> Any:
    """Mean, std and n of the stream accuracy per (group, samples seen) over completed runs: a pandas
    ``groupby/agg``; None when no run recorded accuracy during training."""
    import pandas as pd

    points = [
        {
            "benchmark": run.benchmark,
            "group": group.label,
            "samples_seen": point["samples_seen"],
            "stream_accuracy": point["stream_accuracy"],
        }
        for group in _plotted(comparison)
        for run in group.completed
        for point in run.results.get(ANYTIME) or []
    ]
    if not points:
        return None
    frame = pd.DataFrame(points)
    curves = frame.groupby(["benchmark", "group", "samples_seen"], sort=False)["stream_accuracy"]
    return (
        curves.agg(["mean", "std", "count"])
        .reset_index()
        .sort_values(["benchmark", "samples_seen"], kind="stable")
    )


def _legend(figure: Any, panels: Sequence[Any]) -> None:
    """One legend for all panels, beside them: the series are the same in every panel."""
    labels: dict[str, Any] = {}
    for axes in panels:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            labels.setdefault(label, handle)
    figure.legend(list(labels.values()), list(labels), loc="outside right upper", fontsize="small")


def _buffer_sizes(run: Any) -> list[int]:
    return [
        entry.get("size", 0) for entry in run.results.get("buffer_composition") or [] if entry.get("size")
    ]


def _mean_composition(group: Group) -> tuple[list[int], list[str], dict[int, dict[str, float]]]:
    """Per step, the mean count of buffer samples from each experience of origin (per class if unknown)."""
    totals: dict[int, dict[str, float]] = {}
    runs = group.completed
    for run in runs:
        for entry in run.results.get("buffer_composition") or []:
            parts = entry.get("per_experience") or entry.get("per_class") or {}
            step = totals.setdefault(int(entry["experience"]), {})
            for origin, count in parts.items():
                step[origin] = step.get(origin, 0.0) + count / len(runs)
    origins = sorted({o for step in totals.values() for o in step}, key=lambda o: (len(o), o))
    return sorted(totals), origins, totals


def _wrap(label: str, width: int = 34) -> str:
    return textwrap.fill(label, width)
