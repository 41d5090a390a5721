"""What a run measures at each evaluation: Avalanche's accuracy per test experience and on the stream."""

from __future__ import annotations

from typing import Any

from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin


def _ignored(self: Any, strategy: Any, *args: Any, **kwargs: Any) -> None:
    """Eval-phase metrics do nothing on a training callback."""


class EvalPhaseAccuracy(EvaluationPlugin):
    """Avalanche's ``accuracy_metrics(experience=True, stream=True)``, with no loggers, dispatched
    only in the eval phase.

    Avalanche's EvaluationPlugin forwards every callback to its metrics, training iterations
    included: it finds each one by an AttributeError caught in ``__getattribute__`` and copies the
    current experience (``experience.logging()``) before every call. These accuracy metrics run in
    ``mode="eval"`` and ignore every training callback, so those calls change nothing and cost about
    a tenth of a small model's training time; here the training callbacks are plain no-ops, and the
    eval-phase ones are Avalanche's own. Same metric values, same keys.

    Raises nothing of its own; metric names as Avalanche's (``Top1_Acc_Exp/eval_phase/...``).
    """

    before_training = before_training_exp = before_train_dataset_adaptation = _ignored
    after_train_dataset_adaptation = before_training_epoch = before_training_iteration = _ignored
    before_forward = after_forward = before_backward = after_backward = _ignored
    before_update = after_update = after_training_iteration = after_training_epoch = _ignored
    after_training_exp = after_training = _ignored

    def __init__(self) -> None:
        super().__init__(accuracy_metrics(experience=True, stream=True), loggers=[])
