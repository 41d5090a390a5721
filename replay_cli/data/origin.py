"""Where each training sample came from: the ``origin_experience`` and ``origin_index`` data
attributes that :func:`replay_cli.data.benchmarks.with_origin_experience` gives every training sample,
and the readers of data attributes through Avalanche's dataset trees. Both the benchmarks and the
sample positions of the fast path use them."""

from __future__ import annotations

from typing import Any

ORIGIN_ATTRIBUTE = "origin_experience"
ORIGIN_INDEX_ATTRIBUTE = "origin_index"

_FEW = 256  # samples below which reading an attribute one by one beats walking the tree with tensors


def sample_references(dataset: Any) -> Any:
    """(experience of origin, index in it) of each sample of a training dataset (LongTensor (N, 2)),
    in the dataset's order; see :func:`replay_cli.data.benchmarks.with_origin_experience`. Raises
    AttributeError when it carries no origin attributes."""
    import torch

    if len(dataset) == 0:
        return torch.zeros((0, 2), dtype=torch.long)
    return torch.stack(
        [attribute_tensor(dataset, a) for a in (ORIGIN_ATTRIBUTE, ORIGIN_INDEX_ATTRIBUTE)], dim=1
    )


def attribute_tensor(dataset: Any, name: str) -> Any:
    """Data attribute ``name`` (targets, task labels, origin) of an Avalanche dataset as a
    LongTensor (``len(dataset)``): read one by one for a few samples (a mini-experience), by tensor
    indexing through the dataset tree for many (an experience) where that tree allows it. Raises
    AttributeError when the dataset has no such attribute."""
    import torch

    from replay_cli.data import avalanche_internals

    values = avalanche_internals.attribute_values(dataset, name) if len(dataset) > _FEW else None
    if values is None:
        values = torch.as_tensor(list(getattr(dataset, name)), dtype=torch.long)
    return values
