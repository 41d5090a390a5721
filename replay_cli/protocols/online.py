"""The online protocol: one pass over each experience in minibatches of ``experience_size`` new
samples (plus the replayed ones), the storage policy updated after each of them, evaluation per
original experience. Two loops compute it (``protocol.loop``):

``one_call`` (:class:`OnePass`, the default for the methods that support it): one
``strategy.train`` call per experience; the experience is cut into mini-experiences exactly as
Avalanche's ``split_online_stream`` cuts it (the same shuffle, drawn the same way), each trained as
its minibatches, and the replay plugin updates the storage policy after each mini-experience
(:class:`~replay_cli.strategies.minibatch_replay.MinibatchReplayPlugin`).

``per_mini_experience`` (:class:`MiniExperiences`): Avalanche's online stream of mini-experiences
(``avalanche.benchmarks.scenarios.online.split_online_stream``), one ``strategy.train`` call each,
so the storage policy is updated after every mini-experience as Avalanche's ReplayPlugin does per
call (continual-learning-baselines' "Online Replay"): what a hand-written Avalanche script computes,
at the cost of a training call (loaders, callbacks, optimizer reset) per mini-experience."""

from __future__ import annotations

from typing import Any

from avalanche.training.plugins import SupervisedPlugin

from replay_cli.errors import UsageError
from replay_cli.protocols.offline import TrainingStep


class _Online:
    """What both loops share: the split settings and one step per experience."""

    name = "online"

    def __init__(
        self,
        experience_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        access_task_boundaries: bool = False,
    ):
        self.split = {
            "experience_size": experience_size,
            "shuffle": shuffle,
            "drop_last": drop_last,
            "access_task_boundaries": access_task_boundaries,
        }

    def steps(self, train_stream: Any, strategy: Any) -> list[TrainingStep]:
        """One step per experience; joint training has no stream to cut: refused."""
        from avalanche.training import JointTraining

        if isinstance(strategy, JointTraining):
            raise UsageError("protocol=online cannot train strategy=joint (it trains once on all data)")
        return [TrainingStep(experience, index + 1) for index, experience in enumerate(train_stream)]

    def plugins(self) -> list[Any]:
        """Plugins the strategy needs for this loop (put after the method's own)."""
        return []


class MiniExperiences(_Online):
    """Train each experience mini-experience by mini-experience (``experience_size`` samples each),
    one ``strategy.train`` call each."""

    def train(self, strategy: Any, step: TrainingStep, **loader_settings: Any) -> None:
        from avalanche.benchmarks.scenarios.online import split_online_stream

        for mini in split_online_stream([step.data], **self.split):
            strategy.train(mini, **loader_settings)


class OnePass(_Online, SupervisedPlugin):
    """One ``strategy.train`` call per experience, trained as its mini-experiences.

    As a plugin (after the method's own, before the fast path), it replaces the training loader
    with one over the experience whose batches are, in order, each mini-experience's minibatches
    (``train_mb_size`` new samples at most; the mini-experience's minibatches repeated
    ``train_epochs`` times, as the per-mini-experience loop trains each mini-experience
    ``train_epochs`` times, so the call itself makes one pass). The batches are recorded, the last
    one of each mini-experience marked, and the first of each of its passes
    (:class:`~replay_cli.data.minibatches.RecordedBatches`): the replay plugin updates the buffer
    with the mini-experience's samples there. The mini-experiences are ``split_online_stream``'s:
    a seed from Python's ``random`` per experience, a ``torch.randperm`` with it."""

    def __init__(self, *args: Any, **kwargs: Any):
        _Online.__init__(self, *args, **kwargs)
        SupervisedPlugin.__init__(self)
        self._epochs: int | None = None

    def plugins(self) -> list[Any]:
        return [self]

    def train(self, strategy: Any, step: TrainingStep, **loader_settings: Any) -> None:
        strategy.train(step.data, **loader_settings)

    def mini_experiences(self, n: int) -> list[list[int]]:
        """The indices of each mini-experience of an experience of ``n`` samples, in training order;
        draws what ``split_online_stream`` draws for it."""
        import random

        import torch

        size = self.split["experience_size"]
        seed = random.randint(0, 2**32 - 1)  # FixedSizeExperienceSplitter(seed=None)
        order = list(range(n))
        if self.split["shuffle"]:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        minis = [order[start : start + size] for start in range(0, n, size)]
        return [m for m in minis if len(m) == size] if self.split["drop_last"] else minis

    def before_training_exp(self, strategy: Any, num_workers: int = 0, **kwargs: Any) -> None:
        from replay_cli.data.minibatches import RecordedBatches, recorded_loader

        batches, starts, closes = [], [], []
        size, epochs = strategy.train_mb_size, strategy.train_epochs
        for mini in self.mini_experiences(len(strategy.experience.dataset)):
            cut = [mini[start : start + size] for start in range(0, len(mini), size)]
            batches += cut * epochs
            starts += ([True] + [False] * (len(cut) - 1)) * epochs
            closes += [False] * (len(cut) * epochs - 1) + [True]
        self._epochs, strategy.train_epochs = epochs, 1
        recorded = RecordedBatches(batches, starts, closes, samples=sum(len(b) for b in batches))
        strategy.dataloader = recorded_loader(strategy, recorded, num_workers, **kwargs)

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        strategy.train_epochs = self._epochs


LOOPS = {"one_call": OnePass, "per_mini_experience": MiniExperiences}


def online_protocol(loop: str, **split: Any) -> _Online:
    """The online protocol run by ``loop`` (one of :data:`LOOPS`)."""
    return LOOPS[loop](**split)
