"""Names of the cost and replay-diagnostics numbers in results.json, W&B and the sweep summary, and
their per-run totals: plain data, no heavy imports (results.py reads them for every view)."""

from __future__ import annotations

from typing import Any

# summed over steps; the others of a step record are levels (the run's is their maximum)
SUMMED = (
    "train_forward_samples",
    "train_backward_samples",
    "train_flops",
    "eval_forward_samples",
    "eval_flops",
)
LEVELS = ("buffer_bytes", "peak_rss_bytes", "cuda_max_allocated_bytes")
# headline numbers of a run's cost (results.json top level, W&B summary, sweep summary, replay-compare)
COST_HEADLINES = ("train_flops", "buffer_bytes")


def cost_totals(per_step: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's totals of the step records of :meth:`replay_cli.reporting.cost.CostPlugin.step_cost`:
    sums of samples and FLOPs, the largest buffer (``max_buffer_bytes``) and peak memory (bytes);
    None where no step has the value."""
    result: dict[str, Any] = {
        key: sum(step.get(key) or 0 for step in per_step) if per_step else None for key in SUMMED
    }
    for key in LEVELS:
        values = [step[key] for step in per_step if step.get(key) is not None]
        result[f"max_{key}" if key == "buffer_bytes" else key] = max(values) if values else None
    return result


def cost_summary(per_step: list[dict[str, Any]]) -> dict[str, Any]:
    """``train_flops`` (training FLOPs of the whole run) and ``buffer_bytes`` (the largest buffer),
    the two budgets replay-compare compares methods at."""
    totals = cost_totals(per_step)
    return {"train_flops": totals["train_flops"], "buffer_bytes": totals["max_buffer_bytes"]}


def instrument_metrics(results: Any, step: int) -> dict[str, Any]:
    """``cost/<key>`` and ``diagnostics/<key>`` of ``step`` (numbers only), for per-step views."""
    record: dict[str, Any] = {}
    for prefix, records in (("cost", results.cost), ("diagnostics", results.diagnostics)):
        if step < len(records):
            record.update(_flat_numbers(records[step], f"{prefix}/"))
    return record


def _flat_numbers(node: dict[str, Any], prefix: str) -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(_flat_numbers(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[f"{prefix}{key}"] = value
    return flat
