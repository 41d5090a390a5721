"""The online protocol: each experience is trained as Avalanche's online stream of mini-experiences
(``avalanche.benchmarks.scenarios.online.split_online_stream``), one ``strategy.train`` call each, so
the storage policy is updated after every mini-experience as Avalanche's ReplayPlugin does per call
(continual-learning-baselines' "Online Replay"). Evaluation stays per original experience."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from replay_cli.errors import UsageError
from replay_cli.protocols.offline import TrainingStep


class MiniExperiences:
    """Train each experience mini-experience by mini-experience (``experience_size`` samples each).

    ``eval_every`` (samples, or None): every time the samples trained so far (over the whole stream)
    pass a multiple of it, ``probe(samples_seen)`` is called between mini-experiences; the run loop
    sets ``probe`` to record the anytime stream accuracy."""

    name = "online"

    def __init__(
        self,
        experience_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        access_task_boundaries: bool = False,
        eval_every: int | None = None,
    ):
        self.split = {
            "experience_size": experience_size,
            "shuffle": shuffle,
            "drop_last": drop_last,
            "access_task_boundaries": access_task_boundaries,
        }
        self.eval_every = eval_every
        self.probe: Callable[[int], None] | None = None
        self._first_sample: dict[int, int] = {}  # samples trained before each step

    def steps(self, train_stream: Any, strategy: Any) -> list[TrainingStep]:
        """One step per experience; joint training has no stream to cut: refused."""
        from avalanche.training import JointTraining

        if isinstance(strategy, JointTraining):
            raise UsageError("protocol=online cannot train strategy=joint (it trains once on all data)")
        experiences = list(train_stream)
        seen = 0
        for index, experience in enumerate(experiences):
            self._first_sample[index] = seen
            seen += self._trained(len(experience.dataset))
        return [TrainingStep(experience, index + 1) for index, experience in enumerate(experiences)]

    def _trained(self, n: int) -> int:
        size = self.split["experience_size"]
        return n - n % size if self.split["drop_last"] else n

    def train(self, strategy: Any, step: TrainingStep, **loader_settings: Any) -> None:
        from avalanche.benchmarks.scenarios.online import split_online_stream

        seen = self._first_sample[step.seen - 1]
        for mini in split_online_stream([step.data], **self.split):
            strategy.train(mini, **loader_settings)
            before, seen = seen, seen + len(mini.dataset)
            if (
                self.probe is not None
                and self.eval_every
                and seen // self.eval_every > before // self.eval_every
            ):
                self.probe(seen)
