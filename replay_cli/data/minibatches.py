"""Training loaders whose batches of indices are recorded: a plugin that updates a buffer after each
optimizer step learns which samples of the experience the minibatch held (and, in the one-call
online loop, whether it closes a mini-experience), so the samples enter the buffer with their
references (experience of origin, index there)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from avalanche.training.plugins import SupervisedPlugin


class Trained(NamedTuple):
    """A batch of indices handed out by :class:`RecordedBatches` and trained: whether it starts a
    pass over its group and whether it closes the group (a mini-experience in the one-call online
    loop, whose minibatches are repeated ``train_epochs`` times; every batch is a group otherwise)."""

    indices: list[int]
    starts: bool
    closes: bool


class RecordedBatches:
    """A batch sampler over ``batches`` (index lists) that remembers, in order, the batches it has
    handed out and not yet had trained: with loader workers prefetching, batches still arrive in
    the order drawn. ``starts``/``closes``: per batch, as :class:`Trained` (default: every batch
    both). ``samples``: how many samples one pass over it holds."""

    def __init__(
        self,
        batches: Iterable[list[int]],
        starts: list[bool] | None = None,
        closes: list[bool] | None = None,
        samples: int = 0,
    ):
        self.batches, self.starts, self.closes, self.samples = batches, starts, closes, samples
        self.pending: deque[Trained] = deque()

    def __iter__(self) -> Iterator[list[int]]:
        self.pending.clear()
        for position, batch in enumerate(self.batches):
            batch = list(batch)
            starts = True if self.starts is None else self.starts[position]
            closes = True if self.closes is None else self.closes[position]
            self.pending.append(Trained(batch, starts, closes))
            yield batch

    def __len__(self) -> int:
        return len(self.batches)

    def trained(self) -> Trained:
        """The oldest batch handed out and not yet trained, now trained."""
        return self.pending.popleft()


def shuffled_batches(data: Any, batch_size: int, shuffle: bool, drop_last: bool) -> RecordedBatches:
    """What a plain training loader draws: minibatches of ``batch_size`` in a fresh random order
    (torch's generator) or in order."""
    from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

    order = RandomSampler(data) if shuffle else SequentialSampler(data)
    n = len(data)
    samples = n - n % batch_size if drop_last else n
    return RecordedBatches(BatchSampler(order, batch_size, drop_last=drop_last), samples=samples)


def recorded_loader(strategy: Any, batches: RecordedBatches, num_workers: int = 0, **kwargs: Any) -> Any:
    """A DataLoader over the strategy's adapted dataset drawing ``batches`` (the fast path keeps
    this batch sampler when it serves the loader)."""
    from torch.utils.data import DataLoader

    data = strategy.adapted_dataset
    options = {k: kwargs[k] for k in ("pin_memory", "persistent_workers") if k in kwargs}
    return DataLoader(
        data,
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=getattr(data, "collate_fn", None),
        **(options if num_workers else {}),
    )


def recorded_batches(strategy: Any) -> RecordedBatches | None:
    """The recorded batch sampler of the strategy's current training loader; None for another one."""
    sampler = getattr(strategy.dataloader, "batch_sampler", None)
    return sampler if isinstance(sampler, RecordedBatches) else None


class RecordedReplay(SupervisedPlugin):
    """Base of the replay plugins that update their buffer after each optimizer step: the new data
    is read through a loader whose batches are recorded (:func:`recorded_loader`), unless another
    plugin (the one-call online loop) has put a recorded loader of its own in place by the time
    the epoch starts; ``self.batches`` is the one the epoch draws."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: RecordedBatches | None = None

    def before_training_exp(self, strategy: Any, num_workers: int = 0, **kwargs: Any) -> None:
        batches = shuffled_batches(
            strategy.adapted_dataset,
            strategy.train_mb_size,
            kwargs.get("shuffle", True),
            kwargs.get("drop_last", False),
        )
        strategy.dataloader = recorded_loader(strategy, batches, num_workers, **kwargs)

    def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        self.batches = recorded_batches(strategy)
