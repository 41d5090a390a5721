"""Continual-learning metrics from the accuracy matrix, and the buffer's composition.

``A[i][j]`` is the accuracy on test experience ``j`` after training step ``i``. These pure functions
are the single definition of every number in results.json, W&B and replay-compare.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

Matrix = Sequence[Sequence[float]]

_EXPERIENCE_ACCURACY = re.compile(r"^Top1_Acc_Exp/eval_phase/test_stream/(?:Task\d+/)?Exp(\d+)$")
_STREAM_ACCURACY = re.compile(r"^Top1_Acc_Stream/eval_phase/test_stream(?:/Task\d+)?$")


def accuracy_row(avalanche_metrics: Mapping[str, float], n_experiences: int) -> list[float]:
    """Per-experience test accuracies from the dict Avalanche's ``strategy.eval`` returns."""
    row: list[float | None] = [None] * n_experiences
    for key, value in avalanche_metrics.items():
        match = _EXPERIENCE_ACCURACY.match(key)
        if match:
            row[int(match.group(1))] = float(value)
    missing = [j for j, value in enumerate(row) if value is None]
    if missing:
        raise ValueError(f"evaluation returned no accuracy for test experiences {missing}")
    return row  # type: ignore[return-value]


def stream_accuracy(avalanche_metrics: Mapping[str, float]) -> float | None:
    """Accuracy over the whole test stream (sample-weighted), as Avalanche computes it."""
    values = [float(v) for k, v in avalanche_metrics.items() if _STREAM_ACCURACY.match(k)]
    return values[0] if len(values) == 1 else None


def pooled_accuracy(row: Sequence[float], sizes: Sequence[int]) -> float:
    """Accuracy over the union of test experiences: their accuracies weighted by their sizes."""
    return sum(a * n for a, n in zip(row, sizes, strict=True)) / sum(sizes)


def per_task_accuracy(row: Sequence[float], tasks: Sequence[int], sizes: Sequence[int]) -> dict[str, float]:
    """Accuracy on each task's test data (pooled over its experiences), keyed by task label."""
    return {
        str(task): pooled_accuracy(
            [a for a, t in zip(row, tasks, strict=True) if t == task],
            [n for n, t in zip(sizes, tasks, strict=True) if t == task],
        )
        for task in sorted(set(tasks))
    }


def average_accuracy(row: Sequence[float], seen: int) -> float:
    """Mean accuracy over the first ``seen`` test experiences."""
    return sum(row[:seen]) / seen


def forgetting(matrix: Matrix) -> float | None:
    """Average forgetting (Chaudhry et al. 2018): best earlier accuracy minus final accuracy,
    over every experience but the last; ``None`` until two steps are done."""
    last = len(matrix) - 1
    if last < 1:
        return None
    drops = [max(matrix[i][j] for i in range(j, last)) - matrix[last][j] for j in range(last)]
    return sum(drops) / len(drops)


def backward_transfer(matrix: Matrix) -> float | None:
    """BWT (Lopez-Paz & Ranzato 2017): mean of final minus just-learned accuracy, negative when
    learning new experiences hurt old ones; ``None`` until two steps are done."""
    last = len(matrix) - 1
    if last < 1:
        return None
    return sum(matrix[last][j] - matrix[j][j] for j in range(last)) / last


def buffer_composition(buffer: Any) -> dict[str, Any]:
    """Counts of the buffer's samples per class, per experience of origin and per task."""
    from replay_cli.data.origin import ORIGIN_ATTRIBUTE

    if buffer is None or len(buffer) == 0:
        return {"size": 0, "per_class": {}, "per_experience": {}, "per_task": {}}
    origin = getattr(buffer, ORIGIN_ATTRIBUTE, None)
    return {
        "size": len(buffer),
        "per_class": _counts(buffer.targets),
        "per_experience": _counts(origin) if origin is not None else {},
        "per_task": _counts(buffer.targets_task_labels),
    }


def _counts(values: Any) -> dict[str, int]:
    counter = Counter(int(v) for v in values)
    return {str(key): counter[key] for key in sorted(counter)}
