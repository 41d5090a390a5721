"""Every training sample as one position in one dataset: what the fast path's buffers keep and
how the fast path serves training data gathered once per run."""

from __future__ import annotations

from typing import Any

from replay_cli.data.benchmarks import ORIGIN_ATTRIBUTE, ORIGIN_INDEX_ATTRIBUTE, sample_references

_VIEWS_KEPT = 8  # recent views remembered by identity (a buffer's view, read by the replay loader)


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
        self._views: dict[int, tuple[Any, Any]] = {}

    def of(self, dataset: Any) -> Any:
        """Positions (LongTensor, ``len(dataset)``) of the samples of ``dataset``, in its order."""
        references = sample_references(dataset)
        return self.offsets[references[:, 0]] + references[:, 1]

    def view(self, positions: Any) -> Any:
        """The Avalanche dataset of those samples, in that order (remembered as such: see
        :meth:`positions_of`)."""
        view = self.source.subset(positions.tolist())
        self._views[id(view)] = (view, positions)
        while len(self._views) > _VIEWS_KEPT:
            del self._views[next(iter(self._views))]
        return view

    def positions_of(self, dataset: Any) -> Any:
        """Positions of the samples of ``dataset`` when it is a recent :meth:`view` or carries the
        origin attributes; else None."""
        known = self._views.get(id(dataset))
        if known is not None and known[0] is dataset:
            return known[1]
        if not all(hasattr(dataset, a) for a in (ORIGIN_ATTRIBUTE, ORIGIN_INDEX_ATTRIBUTE)):
            return None
        return self.of(dataset)
