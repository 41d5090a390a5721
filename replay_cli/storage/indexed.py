"""Avalanche's storage policies kept as sample positions instead of concatenated datasets.

Avalanche's ``ReservoirSamplingBuffer`` concatenates the new data with its buffer and takes a subset
at every update, and the balanced buffers concatenate their groups every time ``buffer`` is read:
each such operation walks Python lists as long as the buffer. Once per experience that is nothing;
online (one update per mini-experience of 10 samples, the ReplayPlugin reading ``buffer`` twice
more) it dominates a run. The policies here make the same random draws in the same order and hold
the same samples in the same order, as positions in one dataset (the training stream's experiences
concatenated, :class:`~replay_cli.data.positions.SamplePositions`); ``buffer`` is that dataset's
subset, built once per change. Each twin's ``add_positions(strategy, positions, targets)`` is its
update for samples given by position (the per-minibatch update of
:mod:`replay_cli.strategies.minibatch_replay` reads an experience's positions and labels once).
"""

from __future__ import annotations

from typing import Any

from avalanche.training.storage_policy import (
    ClassBalancedBuffer,
    ExperienceBalancedBuffer,
    ReservoirSamplingBuffer,
)

from replay_cli.data.origin import attribute_tensor
from replay_cli.data.positions import SamplePositions


class IndexedReservoir(ReservoirSamplingBuffer):
    """``ReservoirSamplingBuffer`` on positions: the same weights (one ``torch.rand`` per new
    sample), the same sort, the same samples in the same order."""

    def __init__(self, max_size: int, positions: SamplePositions):
        super().__init__(max_size)
        self.positions = positions
        self.held = positions.offsets.new_empty(0)
        self.changes = 0  # counts changes of ``held``: a balanced parent caches its view by them
        self._view: Any = None

    @property
    def buffer(self) -> Any:
        if self._view is None:
            self._view = self.positions.view(self.held)
        return self._view

    @buffer.setter
    def buffer(self, dataset: Any) -> None:
        """Set from a dataset of the training stream (a checkpoint's rebuilt buffer)."""
        self._hold(self.positions.of(dataset))

    def _hold(self, held: Any) -> None:
        self.held, self._view, self.changes = held, None, self.changes + 1

    def post_adapt(self, agent: Any, exp: Any) -> None:
        self.update_from_positions(self.positions.of(exp.dataset))

    def update_from_dataset(self, new_data: Any) -> None:
        self.update_from_positions(self.positions.of(new_data))

    def add_positions(self, strategy: Any, new: Any, targets: Any = None) -> None:
        """The update for the samples at positions ``new``."""
        self.update_from_positions(new)

    def update_from_positions(self, new: Any) -> None:
        import torch

        weights = torch.cat([torch.rand(len(new)), self._buffer_weights])
        candidates = torch.cat([new, self.held])
        sorted_weights, order = weights.sort(descending=True)
        self._hold(candidates[order[: self.max_size]])
        self._buffer_weights = sorted_weights[: self.max_size]

    def resize(self, strategy: Any, new_size: int) -> None:
        self.max_size = new_size
        if len(self.held) > new_size:
            self._hold(self.held[:new_size])
            self._buffer_weights = self._buffer_weights[:new_size]


class _GroupsView:
    """``buffer`` of a balanced policy: its groups' samples concatenated in group order, rebuilt
    when a group changed."""

    positions: SamplePositions
    buffer_groups: dict[int, IndexedReservoir]

    @property
    def buffer(self) -> Any:
        import torch

        key = tuple((id(group), group.changes) for group in self.buffer_groups.values())
        if getattr(self, "_view_key", None) != key:
            held = [self.positions.offsets.new_empty(0), *(g.held for g in self.buffer_groups.values())]
            self._view_key, self._view = key, self.positions.view(torch.cat(held))
        return self._view

    @buffer.setter
    def buffer(self, dataset: Any) -> None:
        raise AttributeError("a balanced buffer is set through its buffer_groups")

    def new_group(self, max_size: int) -> IndexedReservoir:
        """An empty group (what a checkpoint's groups are loaded into)."""
        return IndexedReservoir(max_size, self.positions)


class IndexedClassBalanced(_GroupsView, ClassBalancedBuffer):
    """``ClassBalancedBuffer`` on positions: classes met in the order Avalanche meets them (first
    appearance in the new data), one :class:`IndexedReservoir` per class, the same shares."""

    def __init__(self, policy: ClassBalancedBuffer, positions: SamplePositions):
        super().__init__(policy.max_size, policy.adaptive_size, policy.total_num_classes)
        self.positions = positions

    def update_from_dataset(self, new_data: Any, strategy: Any = None) -> None:
        if len(new_data) == 0:
            return
        self.add_positions(strategy, self.positions.of(new_data), attribute_tensor(new_data, "targets"))

    def add_positions(self, strategy: Any, new: Any, targets: Any) -> None:
        """The update for the samples at positions ``new`` (their labels ``targets``)."""
        classes = list(dict.fromkeys(targets.tolist()))
        self.seen_classes.update(classes)
        share = dict(zip(self.seen_classes, self.get_group_lengths(len(self.seen_classes)), strict=True))
        for label in classes:
            group = self.buffer_groups.get(label)
            if group is None:
                group = self.buffer_groups[label] = self.new_group(share[label])
                group.update_from_positions(new[targets == label])
            else:
                group.update_from_positions(new[targets == label])
                group.resize(strategy, share[label])
        for label, group in self.buffer_groups.items():
            group.resize(strategy, share[label])


class IndexedExperienceBalanced(_GroupsView, ExperienceBalancedBuffer):
    """``ExperienceBalancedBuffer`` on positions: one :class:`IndexedReservoir` per update."""

    def __init__(self, policy: ExperienceBalancedBuffer, positions: SamplePositions):
        super().__init__(policy.max_size, policy.adaptive_size, policy.total_num_groups)
        self.positions = positions

    def post_adapt(self, agent: Any, exp: Any) -> None:
        self.add_positions(agent, self.positions.of(exp.dataset))

    def add_positions(self, agent: Any, new: Any, targets: Any = None) -> None:
        """The update for the samples at positions ``new`` (one new group)."""
        self._num_exps += 1
        lengths = self.get_group_lengths(self._num_exps)
        group = self.new_group(lengths[-1])
        group.update_from_positions(new)
        self.buffer_groups[self._num_exps - 1] = group
        for length, existing in zip(lengths, self.buffer_groups.values(), strict=False):
            existing.resize(agent, length)


def indexed(policy: Any, positions: SamplePositions) -> Any:
    """``policy`` (freshly built, empty) as its position-keeping twin; other policies unchanged."""
    if type(policy) is ReservoirSamplingBuffer:
        return IndexedReservoir(policy.max_size, positions)
    if type(policy) is ClassBalancedBuffer:
        return IndexedClassBalanced(policy, positions)
    if type(policy) is ExperienceBalancedBuffer:
        return IndexedExperienceBalanced(policy, positions)
    return policy


# Each twin saves and loads as the Avalanche policy it mirrors (a checkpoint resumes either way).
AVALANCHE_KIND = {
    IndexedReservoir: ReservoirSamplingBuffer,
    IndexedClassBalanced: ClassBalancedBuffer,
    IndexedExperienceBalanced: ExperienceBalancedBuffer,
}
