"""What a run measures at each evaluation: Avalanche's accuracy per test experience and on the stream."""

from __future__ import annotations

from typing import Any

from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin


def _ignored(self: Any, strategy: Any, *args: Any, **kwargs: Any) -> None:
    """A callback on which these metrics do nothing."""


class EvalPhaseAccuracy(EvaluationPlugin):
    """Avalanche's ``accuracy_metrics(experience=True, stream=True)``, with no loggers, dispatched
    only in the eval phase.

    Avalanche's EvaluationPlugin forwards every callback to its metrics, training iterations
    included: it finds each one by an AttributeError caught in ``__getattribute__`` and copies the
    current experience (``experience.logging()``) before every call. These accuracy metrics run in
    ``mode="eval"``, reset per experience or stream and update after each eval iteration: they
    ignore every training callback and the eval ones before the forward pass and after it, so those
    calls change nothing and cost about a tenth of a small model's training time. Here they are
    plain no-ops, and the others are Avalanche's own. Same metric values, same keys.

    Raises nothing of its own; metric names as Avalanche's (``Top1_Acc_Exp/eval_phase/...``).
    """

    model_free_iterations = True  # no callback calls the model or changes the minibatch (cost accounting)
    before_training = before_training_exp = before_train_dataset_adaptation = _ignored
    after_train_dataset_adaptation = before_training_epoch = before_training_iteration = _ignored
    before_forward = after_forward = before_backward = after_backward = _ignored
    before_update = after_update = after_training_iteration = after_training_epoch = _ignored
    after_training_exp = after_training = _ignored
    before_eval_iteration = before_eval_forward = after_eval_forward = _ignored

    def __init__(self) -> None:
        super().__init__(accuracy_metrics(experience=True, stream=True), loggers=[])
