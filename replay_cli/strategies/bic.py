"""BiC (Wu et al. 2019) on our benchmarks: Avalanche's ``BiCPlugin`` holds out validation samples by
assigning ``experience.dataset``, which Avalanche 0.6's ``DatasetExperience`` (the scenarios built
with ``benchmark_from_datasets``, as all ours are) makes read-only."""

from __future__ import annotations

import copy
from typing import Any

from avalanche.training.plugins import SupervisedPlugin


class WritableExperience(SupervisedPlugin):
    """Before BiC's plugin reads the experience, the strategy gets a shallow copy of it whose
    ``dataset`` may be reassigned; the benchmark's own experience stays as it was (so a later
    experience, an evaluation or a resume sees the full data)."""

    def before_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        strategy.experience = writable(strategy.experience)


def writable(experience: Any) -> Any:
    """A shallow copy of ``experience`` with a settable ``dataset`` (same class otherwise)."""
    base = type(experience)

    def set_dataset(self: Any, dataset: Any) -> None:
        self._dataset = dataset

    subclass = type(base.__name__, (base,), {"dataset": property(base.dataset.fget, set_dataset)})
    duplicate = copy.copy(experience)
    duplicate.__class__ = subclass
    return duplicate
