"""Experience replay whose storage policy is updated during training, after optimizer steps, instead
of once per ``strategy.train`` call.

The policy (any of the storage group's: reservoir, class-balanced, experience-balanced, random,
herding, closest-to-center) gets the samples just trained through its ordinary
``post_adapt(strategy, experience)``, with an experience whose dataset is those samples, taken from
the experience being trained in the order the minibatches held them: what Avalanche's
``ReplayPlugin`` passes it after a ``strategy.train`` call on a mini-experience of the same samples.
So, given the same samples and the same random draws, the buffer after each update equals the
buffer after the corresponding mini-experience of the per-mini-experience loop
(tests/test_minibatch_replay.py).

When: after every minibatch that closes a group of the recorded batches (a mini-experience in the
one-call online loop, :class:`replay_cli.protocols.online.OnePass`); with ``every_minibatch``
(``replay_update=iteration``), after every minibatch, each epoch's pass included.

Replay: every minibatch gets ``batch_size_mem`` samples of the buffer (all it holds when fewer),
drawn uniformly without replacement from NumPy's global generator (as mammoth's buffer and
:class:`~replay_cli.strategies.stream_replay.StreamReplayPlugin` draw them), appended after the new
samples. Avalanche's ``ReplayDataLoader`` on a mini-experience no larger than one minibatch draws
the same distribution (a fresh shuffle of the buffer, its first ``batch_size_mem`` samples) from
torch's generator instead. A buffer kept as positions of the training stream is served by the fast
path's batched gather; any other buffer sample by sample, as Avalanche's loader reads it.

Herding and closest-to-center compute the features of the buffer and the new samples at every
update (Avalanche's ``ParametricBuffer``): per minibatch, that forward pass over the buffer is the
honest cost of the policy, and it dominates such a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from replay_cli.data.minibatches import RecordedReplay


@dataclass(frozen=True)
class NewSamples:
    """What a storage policy's ``post_adapt`` reads of an experience: its dataset."""

    dataset: Any


def locate(storage_policy: Any, experience_dataset: Any) -> tuple[Any, Any] | None:
    """Positions and labels of an experience's samples, for a policy kept as positions (see
    :mod:`replay_cli.storage.indexed`; read once per experience); None for any other policy."""
    if not hasattr(storage_policy, "add_positions"):
        return None
    from replay_cli.data.origin import attribute_tensor

    positions = storage_policy.positions.of(experience_dataset)
    return positions, attribute_tensor(experience_dataset, "targets")


def update_storage(
    storage_policy: Any,
    strategy: Any,
    experience_dataset: Any,
    indices: list[int],
    located: tuple[Any, Any] | None = None,
) -> None:
    """Offer the samples at ``indices`` of ``experience_dataset`` (in that order) to the policy, as
    the ReplayPlugin offers a mini-experience of those samples. Draws what the policy draws.
    ``located``: :func:`locate`'s output for the dataset; the samples then go in by position
    (the same update, without building an Avalanche subset)."""
    if located is not None:
        import torch

        at = torch.as_tensor(indices, dtype=torch.long)
        positions, targets = located
        storage_policy.add_positions(strategy, positions[at], targets[at])
        return
    storage_policy.post_adapt(strategy, NewSamples(experience_dataset.subset(indices)))


class MinibatchReplayPlugin(RecordedReplay):
    """Replay from, and update of, ``storage_policy`` per minibatch (see the module docstring)."""

    def __init__(self, storage_policy: Any, batch_size_mem: int, every_minibatch: bool = False):
        super().__init__()
        self.storage_policy, self.batch_size_mem = storage_policy, batch_size_mem
        self.every_minibatch = every_minibatch
        self._fast_path: Any = None
        self._group: list[int] = []  # the samples trained since the last update
        self._located: tuple[Any, Any] | None = None

    def before_training_exp(self, strategy: Any, num_workers: int = 0, **kwargs: Any) -> None:
        from replay_cli.data.fast_path import FastPathPlugin

        super().before_training_exp(strategy, num_workers, **kwargs)
        self._group = []
        self._located = locate(self.storage_policy, strategy.experience.dataset)
        self._fast_path = next((p for p in strategy.plugins if isinstance(p, FastPathPlugin)), None)

    def before_forward(self, strategy: Any, **kwargs: Any) -> None:
        """Append ``batch_size_mem`` buffered samples (uniform, without replacement) to the minibatch."""
        import numpy as np
        import torch

        buffer = self.storage_policy.buffer
        if len(buffer) == 0:
            return
        chosen = np.random.choice(len(buffer), size=min(self.batch_size_mem, len(buffer)), replace=False)
        replayed = self._fetch(buffer, torch.from_numpy(chosen), strategy.device)
        strategy.mbatch = [
            torch.cat([new, old.to(new.device)]) for new, old in zip(strategy.mbatch, replayed, strict=True)
        ]

    def _fetch(self, buffer: Any, index: Any, device: Any) -> list[Any]:
        """The buffer's samples at ``index``, collated as a loader collates them."""
        from torch.utils.data import default_collate

        served = self._fast_path.fetch(buffer, index, device) if self._fast_path is not None else None
        if served is not None:
            return served
        collate = getattr(buffer, "collate_fn", None) or default_collate
        return collate([buffer[i] for i in index.tolist()])

    def after_update(self, strategy: Any, **kwargs: Any) -> None:
        """Offer the minibatch's new samples (with the earlier ones of its group's last pass) after
        the step, when it closes its group."""
        batch = self.batches.trained()
        self._group = batch.indices if batch.starts or self.every_minibatch else self._group + batch.indices
        if batch.closes or self.every_minibatch:
            experience = strategy.experience.dataset
            update_storage(self.storage_policy, strategy, experience, self._group, self._located)
            self._group = []
