"""The offline (multi-epoch) protocol: one training step per experience."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainingStep:
    """What ``strategy.train`` receives for one step (an experience, or a list of them) and how many
    test experiences the model has seen after it (the columns its average accuracy is taken over)."""

    data: Any
    seen: int


class ExperienceByExperience:
    """Train on each experience in turn (``train_epochs`` passes), evaluating after each.

    Avalanche's ``JointTraining`` is trained once on the whole stream (it refuses a second ``train``
    call), so for it the whole stream is a single step."""

    name = "offline"

    def steps(self, train_stream: Any, strategy: Any) -> list[TrainingStep]:
        from avalanche.training import JointTraining

        experiences = list(train_stream)
        if isinstance(strategy, JointTraining):
            return [TrainingStep(experiences, len(experiences))]
        return [TrainingStep(experience, index + 1) for index, experience in enumerate(experiences)]

    def plugins(self) -> list[Any]:
        """Plugins the strategy needs for this protocol: none."""
        return []

    def train(self, strategy: Any, step: TrainingStep, **loader_settings: Any) -> None:
        strategy.train(step.data, **loader_settings)
