"""Every training sample as one position in one dataset: what the fast path's buffers keep and
how the fast path serves training data gathered once per run."""

from __future__ import annotations

import functools
from typing import Any

from replay_cli.data.origin import sample_references


class SamplePositions:
    """Where every training sample sits in ``source``, the training stream's experience datasets
    concatenated in order: experience ``e``'s sample ``i`` (its origin attributes, see
    :func:`replay_cli.data.benchmarks.with_origin_experience`) at ``offsets[e] + i``."""

    def __init__(self, train_stream: Any):
        import torch
        from avalanche.benchmarks.utils import concat_datasets

        datasets = [experience.dataset for experience in train_stream]
        sizes = torch.tensor([0, *(len(d) for d in datasets)])
        self.offsets = sizes.cumsum(0)[:-1]
        self.source = concat_datasets(datasets)

    def of(self, dataset: Any) -> Any:
        """Positions (LongTensor, ``len(dataset)``) of the samples of a dataset drawn from the
        stream, in its order; raises AttributeError when it carries no origin attributes."""
        if isinstance(dataset, PositionsView) and dataset.positions is self:
            return dataset.held
        references = sample_references(dataset)
        return self.offsets[references[:, 0]] + references[:, 1]

    def positions_of(self, dataset: Any) -> Any:
        """:meth:`of`, or None for a dataset that is not drawn from the stream."""
        try:
            return self.of(dataset)
        except AttributeError:
            return None

    def view(self, held: Any) -> PositionsView:
        """The samples at ``held`` (LongTensor), in that order, as a dataset."""
        return PositionsView(self, held)


class PositionsView:
    """The Avalanche dataset of ``positions.source``'s samples at ``held``, built on first use.

    A buffer kept as positions changes after almost every mini-experience online, and the replay
    loader reads only its length (the fast path serves its samples by position); building the
    Avalanche subset walks Python lists as long as the buffer, so it is built only when something
    reads more (its samples, targets or origin for the buffer composition, a checkpoint, the plain
    path). Any attribute is that dataset's."""

    def __init__(self, positions: SamplePositions, held: Any):
        self.positions, self.held = positions, held

    def __len__(self) -> int:
        return len(self.held)

    @functools.cached_property
    def dataset(self) -> Any:
        return self.positions.source.subset(self.held.tolist())

    def __getitem__(self, index: Any) -> Any:
        return self.dataset[index]

    def __getattr__(self, name: str) -> Any:
        if name in ("positions", "held") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)
