"""The comparison as text: a rich table for the terminal, CSV, JSON, markdown and HTML for papers and
scripts.

Every format reads :meth:`Comparison.rows` (CSV, JSON: every number) or :func:`display` (terminal,
markdown, HTML: the same cells as text), so the numbers are the same everywhere; pandas writes the
CSV, markdown (through tabulate) and HTML.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

from replay_cli.compare.comparison import METRICS, Comparison, Group
from replay_cli.keys import metric_label
from replay_cli.reporting.instrument_keys import COST_HEADLINES

FORMATS = ("table", "csv", "json", "markdown")
_DIGITS = {"train_seconds": 2}
MARKER = "*"
CI, P_VALUE, TEST, BASELINE = "95% CI", "p", "test", "baseline"


def fmt_stat(mean: float | None, std: float | None, metric: str) -> str:
    """``mean ± std`` with the metric's precision; a single run has no std."""
    if mean is None:
        return "n/a"
    if metric in COST_HEADLINES:  # FLOPs and bytes: three significant digits, e.g. 1.84e+08
        return f"{mean:.3g}" if std is None else f"{mean:.3g} ± {std:.2g}"
    digits = _DIGITS.get(metric, 3)
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def headers(comparison: Comparison) -> list[str]:
    extra = ["excluded"] if comparison.excluded_runs else []
    chosen = _selection_headers(comparison)
    metrics = [metric_label(metric) for metric in METRICS]
    return [*comparison.key_columns, "n", *extra, *chosen, *metrics, CI, P_VALUE, TEST, BASELINE]


def _selection_headers(comparison: Comparison) -> list[str]:
    """With --select-by: the configurations compared and the chosen one's mean selection metric."""
    selection = comparison.selection
    return ["configurations", f"selected by {selection.metric}"] if selection else []


def cells(comparison: Comparison) -> list[list[str]]:
    """The table body as strings, one list per group: shared by the terminal, markdown and HTML."""
    body = []
    for group, row in zip(comparison.groups, comparison.rows(), strict=True):
        keys = [_show(row[key]) for key in comparison.key_columns]
        extra = [row["excluded"]] if comparison.excluded_runs else []
        if comparison.selection:
            value = row[f"selected_by_{comparison.selection.metric}"]
            extra += [str(row["configurations"]), fmt_stat(value, None, comparison.selection.metric)]
        marked = MARKER if group.significant(comparison.alpha) else ""
        stats = [
            f"{fmt_stat(row[f'{m}_mean'], row[f'{m}_std'], m)} {marked if m == comparison.metric else ''}"
            for m in METRICS
        ]
        test = "" if group.is_baseline else row["test"] or ""
        tested = [_ci(row, comparison.metric), _p_value(group, row, marked), test, row["baseline"] or ""]
        body.append([*keys, str(row["n"]), *extra, *(s.strip() for s in stats), *tested])
    return body


def display(comparison: Comparison) -> Any:
    """:func:`headers` and :func:`cells` as a pandas DataFrame of strings."""
    import pandas as pd

    return pd.DataFrame(cells(comparison), columns=headers(comparison))


def _ci(row: dict[str, Any], metric: str) -> str:
    low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    digits = _DIGITS.get(metric, 3)
    return "n/a" if low is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def _p_value(group: Group, row: dict[str, Any], marked: str) -> str:
    if group.is_baseline:
        return "baseline"
    return "n/a" if row["p_value"] is None else f"{row['p_value']:.3g} {marked}".strip()


def title(comparison: Comparison) -> str:
    n_runs, n_groups = len(comparison.runs), len(comparison.groups)
    shown = f"{n_runs} runs in {n_groups} groups"
    selection = comparison.selection
    if selection:
        compared = sum(group.choice.configurations for group in comparison.groups if group.choice)
        chosen_runs = sum(len(group.runs) for group in comparison.groups)
        shown = (
            f"{n_groups} of {compared} configurations chosen by {selection.metric}"
            f"{' ON THE TEST STREAM (optimistic)' if selection.on_test else ''}"
            f": {chosen_runs} of {n_runs} runs"
        )
    return (
        f"{', '.join(comparison.benchmarks)}: {shown}, mean ± std over seeds, "
        f"best {comparison.metric} first; {CI} and p of {comparison.metric} against the baseline, "
        f"{MARKER} p < {comparison.alpha:g}"
    )


def excluded_lines(comparison: Comparison) -> list[str]:
    return [f"{run.status}: {run.path} {run.detail()}".rstrip() for run in comparison.excluded_runs]


def render(comparison: Comparison, fmt: str) -> str:
    """``comparison`` in one of :data:`FORMATS`, ready to print."""
    return {"table": _rich, "csv": to_csv, "json": to_json, "markdown": to_markdown}[fmt](comparison)


def to_csv(comparison: Comparison) -> str:
    frame = comparison.frame()
    for key in comparison.key_columns:
        frame[key] = frame[key].map(_show)
    return frame.to_csv(index=False, lineterminator="\n")


def to_json(comparison: Comparison) -> str:
    data = {
        "benchmarks": comparison.benchmarks,
        "swept": comparison.swept,
        "by": comparison.key_columns,
        "kept_apart": comparison.kept_apart,
        "pooled": comparison.pooled,
        "metric": comparison.metric,
        "test": comparison.test,
        "alpha": comparison.alpha,
        "baseline": comparison.baseline,
        "selection": selection_json(comparison),
        "budget": comparison.budget,
        "over_budget": [group.label for group in comparison.over_budget],
        "rows": comparison.rows(),
        "excluded_runs": [
            {"path": str(run.path), "status": run.status, "detail": run.detail()}
            for run in comparison.excluded_runs
        ],
    }
    return json.dumps(data, indent=2) + "\n"


def selection_json(comparison: Comparison) -> dict[str, Any] | None:
    selection = comparison.selection
    if selection is None:
        return None
    return {
        "metric": selection.metric,
        "within": selection.within,
        "tuned": selection.tuned,
        "on_test_stream": selection.on_test,
        "final_runs": comparison.final_runs(),
    }


def to_markdown(comparison: Comparison) -> str:
    lines = [display(comparison).to_markdown(index=False)]
    lines += [f"\n{note}" for note in [title(comparison), *comparison.notes()]]
    lines += [f"\nExcluded from the means: {line}" for line in excluded_lines(comparison)]
    return "\n".join(lines) + "\n"


def to_html(comparison: Comparison) -> str:
    return display(comparison).to_html(index=False, table_id="results", border=0, justify="left")


def _rich(comparison: Comparison) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title(comparison))
    for name in headers(comparison):
        is_metric = name in (*map(metric_label, METRICS), CI, P_VALUE)
        shown = f"{name} {'↓' if name == metric_label(comparison.metric) else ''}".strip()
        table.add_column(shown, justify="right" if is_metric or name == "n" else "left")
    for row in cells(comparison):
        table.add_row(*row)
    out = io.StringIO()
    terminal = sys.stdout.isatty()
    width = Console().width if terminal else 400  # a pipe or file: never wrap a column
    console = Console(file=out, width=width, force_terminal=terminal, highlight=False)
    console.print(table)
    for note in comparison.notes():
        console.print(note, markup=False)
    for line in excluded_lines(comparison):
        console.print(f"excluded from the means: {line}", markup=False)
    return out.getvalue()


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)
