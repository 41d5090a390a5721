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

AnytimePoint = Mapping[str, Any]


def _experience_accuracy(stream: str) -> re.Pattern[str]:
    return re.compile(rf"^Top1_Acc_Exp/eval_phase/{stream}_stream/(?:Task\d+/)?Exp(\d+)$")


def _stream_accuracy(stream: str) -> re.Pattern[str]:
    return re.compile(rf"^Top1_Acc_Stream/eval_phase/{stream}_stream(?:/Task\d+)?$")


def accuracy_row(
    avalanche_metrics: Mapping[str, float], n_experiences: int, stream: str = "test"
) -> list[float]:
    """Per-experience accuracies of ``stream`` (``test`` or ``valid``) from the dict Avalanche's
    ``strategy.eval`` returns."""
    pattern = _experience_accuracy(stream)
    row: list[float | None] = [None] * n_experiences
    for key, value in avalanche_metrics.items():
        match = pattern.match(key)
        if match:
            row[int(match.group(1))] = float(value)
    missing = [j for j, value in enumerate(row) if value is None]
    if missing:
        raise ValueError(f"evaluation returned no accuracy for {stream} experiences {missing}")
    return row  # type: ignore[return-value]


def stream_accuracy(avalanche_metrics: Mapping[str, float], stream: str = "test") -> float | None:
    """Accuracy over the whole ``stream`` (sample-weighted), as Avalanche computes it."""
    pattern = _stream_accuracy(stream)
    values = [float(v) for k, v in avalanche_metrics.items() if pattern.match(k)]
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
    """Mean accuracy over the first ``seen`` test experiences (all of them when the test stream is
    shorter: one complete test set, as CORe50's, gives its accuracy)."""
    seen = min(seen, len(row))
    return sum(row[:seen]) / seen


def average_incremental_accuracy(matrix: Matrix, seen: Sequence[int]) -> float | None:
    """Average incremental accuracy (Rebuffi et al. 2017, iCaRL; reported by PyCIL and FACIL): the
    mean over training steps of the average accuracy on the experiences seen after that step,
    ``mean_i average_accuracy(A[i], seen[i])``; ``None`` before the first step. A fraction in [0, 1]."""
    if not matrix:
        return None
    return sum(average_accuracy(row, s) for row, s in zip(matrix, seen, strict=True)) / len(matrix)


def average_anytime_accuracy(points: Sequence[AnytimePoint]) -> float | None:
    """Average anytime accuracy, AAA (Caccia et al. 2022; reported by De Lange et al. 2023 and
    AlbinSou/ocl_survey): the mean over the anytime evaluation points of the average accuracy on the
    experiences seen so far, those up to and including the one being trained (``experience``).
    ``points``: dicts with ``experience`` (int) and ``accuracy`` (one float per test experience);
    ``None`` without points. A fraction in [0, 1]."""
    if not points:
        return None
    return sum(average_accuracy(p["accuracy"], p["experience"] + 1) for p in points) / len(points)


def worst_case_accuracy(points: Sequence[AnytimePoint]) -> float | None:
    """Worst-case accuracy, WC-Acc (De Lange et al. 2023, "Continual evaluation for lifelong learning:
    identifying the stability gap", eq. 4; as AlbinSou/ocl_survey reports it) at the last point, while
    experience ``k`` is trained: ``(1/(k+1)) a_k + (1 - 1/(k+1)) min-ACC``, where ``a_k`` is the
    last point's accuracy on experience ``k`` and min-ACC the mean over earlier experiences ``i`` of
    their lowest accuracy at any point after ``i`` was learned (points whose ``experience`` > ``i``).
    ``points``: as :func:`average_anytime_accuracy`, in training order; ``None`` without points or
    without a test experience per training experience (CORe50's one test set). A fraction in [0, 1]."""
    if not points:
        return None
    k = points[-1]["experience"]
    if len(points[-1]["accuracy"]) <= k:  # one test set for several experiences (CORe50)
        return None
    current = points[-1]["accuracy"][k]
    if k == 0:
        return current
    lowest = [min(p["accuracy"][i] for p in points if p["experience"] > i) for i in range(k)]
    min_acc = sum(lowest) / k
    return current / (k + 1) + (1 - 1 / (k + 1)) * min_acc


def _per_experience(matrix: Matrix) -> bool:
    """Whether test experience ``j`` exists for every training step ``j`` before the last
    (forgetting and BWT compare each experience's accuracy after it was learned): not with one
    complete test set for several experiences."""
    columns = len(matrix[-1])
    return columns > 1 and columns >= len(matrix) - 1


def forgetting(matrix: Matrix) -> float | None:
    """Average forgetting (Chaudhry et al. 2018): best earlier accuracy minus final accuracy,
    over every experience but the last; ``None`` until two steps are done, and when the test
    stream has fewer experiences than the steps (one complete test set, as CORe50's)."""
    last = len(matrix) - 1
    if last < 1 or not _per_experience(matrix):
        return None
    drops = [max(matrix[i][j] for i in range(j, last)) - matrix[last][j] for j in range(last)]
    return sum(drops) / len(drops)


def backward_transfer(matrix: Matrix) -> float | None:
    """BWT (Lopez-Paz & Ranzato 2017): mean of final minus just-learned accuracy, negative when
    learning new experiences hurt old ones; ``None`` until two steps are done, and when the test
    stream has fewer experiences than the steps (as :func:`forgetting`)."""
    last = len(matrix) - 1
    if last < 1 or not _per_experience(matrix):
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
