"""The comparison as text: a rich table for the terminal, CSV, JSON and markdown for papers and scripts.

Every format reads :meth:`Comparison.rows` or :func:`cells`, so the numbers are the same everywhere.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

from replay_cli.compare.comparison import METRICS, Comparison

FORMATS = ("table", "csv", "json", "markdown")
_DIGITS = {"train_seconds": 2}


def fmt_stat(mean: float | None, std: float | None, metric: str) -> str:
    """``mean ± std`` with the metric's precision; a single run has no std."""
    if mean is None:
        return "n/a"
    digits = _DIGITS.get(metric, 3)
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def headers(comparison: Comparison) -> list[str]:
    extra = ["excluded"] if comparison.excluded_runs else []
    return [*comparison.key_columns, "n", *extra, *METRICS]


def cells(comparison: Comparison) -> list[list[str]]:
    """The table body as strings, one list per group: shared by the terminal, markdown and HTML."""
    body = []
    for row in comparison.rows():
        keys = [_show(row[key]) for key in comparison.key_columns]
        extra = [row["excluded"]] if comparison.excluded_runs else []
        stats = [fmt_stat(row[f"{m}_mean"], row[f"{m}_std"], m) for m in METRICS]
        body.append([*keys, str(row["n"]), *extra, *stats])
    return body


def title(comparison: Comparison) -> str:
    n_runs, n_groups = len(comparison.runs), len(comparison.groups)
    return (
        f"{', '.join(comparison.benchmarks)}: {n_runs} runs in {n_groups} groups, mean ± std over seeds, "
        f"best {comparison.metric} first"
    )


def excluded_lines(comparison: Comparison) -> list[str]:
    return [f"{run.status}: {run.path} {run.detail()}".rstrip() for run in comparison.excluded_runs]


def render(comparison: Comparison, fmt: str) -> str:
    """``comparison`` in one of :data:`FORMATS`, ready to print."""
    return {"table": _rich, "csv": to_csv, "json": to_json, "markdown": to_markdown}[fmt](comparison)


def to_csv(comparison: Comparison) -> str:
    rows = comparison.rows()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _show(v) if k in comparison.key_columns else v for k, v in r.items()} for r in rows)
    return out.getvalue()


def to_json(comparison: Comparison) -> str:
    data = {
        "benchmarks": comparison.benchmarks,
        "swept": comparison.swept,
        "by": comparison.key_columns,
        "metric": comparison.metric,
        "rows": comparison.rows(),
        "excluded_runs": [
            {"path": str(run.path), "status": run.status, "detail": run.detail()}
            for run in comparison.excluded_runs
        ],
    }
    return json.dumps(data, indent=2) + "\n"


def to_markdown(comparison: Comparison) -> str:
    head = headers(comparison)
    lines = [_md_row(head), _md_row(["---"] * len(head))]
    lines += [_md_row(row) for row in cells(comparison)]
    lines += [f"\nExcluded from the means: {line}" for line in excluded_lines(comparison)]
    return "\n".join(lines) + "\n"


def _md_row(values: list[str]) -> str:
    return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"


def _rich(comparison: Comparison) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title(comparison))
    for name in headers(comparison):
        is_metric = name in METRICS
        shown = f"{name} {'↓' if name == comparison.metric else ''}".strip()
        table.add_column(shown, justify="right" if is_metric or name == "n" else "left")
    for row in cells(comparison):
        table.add_row(*row)
    out = io.StringIO()
    terminal = sys.stdout.isatty()
    width = Console().width if terminal else 200  # a pipe or file: never wrap a column
    console = Console(file=out, width=width, force_terminal=terminal, highlight=False)
    console.print(table)
    for line in excluded_lines(comparison):
        console.print(f"excluded from the means: {line}", markup=False)
    return out.getvalue()


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value)
