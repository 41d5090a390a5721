"""Fast path for in-memory tensor data: the same batches, in the same order, fetched by batched indexing.

Avalanche builds every minibatch by calling ``__getitem__`` once per sample through its dataset tree
and collating the samples; with the replay buffer concatenated in, one epoch fetches the buffer's few
hundred samples tens of thousands of times. :class:`FastPathPlugin` runs after the ReplayPlugin has
set ``strategy.dataloader`` (and after the evaluation loader is made) and changes only how that loader
*fetches*: it keeps Avalanche's samplers and PyTorch's ``DataLoader`` (so the batches, their order
and every draw from the random number generators are untouched) and serves each batch of indices
from tensors collated once per dataset. Datasets whose samples could change between fetches (any
transform, anything but a ``TensorDataset`` underneath, a custom collate) stay on the plain path.
"""

from __future__ import annotations

import types
from typing import Any

from avalanche.benchmarks.utils.data_loader import (
    MultiDatasetDataLoader,
    _make_data_loader_with_batched_sampler,
)
from avalanche.training.plugins import SupervisedPlugin
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data._utils.collate import default_collate

_CHUNK = 4096  # samples collated at a time while materializing: bounds the list of Python tuples


class FastPathPlugin(SupervisedPlugin):
    """Batched fetching for the training and evaluation loaders; identical results, less time.

    Test sets are materialized once per run (they are evaluated after every experience); training data
    and the buffer once per experience, since both change between experiences.
    """

    def __init__(self) -> None:
        super().__init__()
        self._eval_cache: dict[int, tuple[Any, list[Any]]] = {}

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        strategy.dataloader, _ = speed_up(strategy.dataloader)

    def before_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        source = strategy.experience.dataset
        cached = self._eval_cache.get(id(source))
        known = cached[1] if cached is not None and cached[0] is source else None
        strategy.dataloader, fields = speed_up(strategy.dataloader, [known] if known is not None else None)
        if fields is not None and known is None:
            self._eval_cache[id(source)] = (source, fields[0])


def speed_up(loader: Any, known: list[list[Any]] | None = None) -> tuple[Any, list[list[Any]] | None]:
    """``loader`` made to fetch by batched indexing when all its datasets allow it (``known``: their
    collated fields from an earlier call), and those fields; or ``loader`` as it was and None.

    Avalanche's loaders keep their samplers and get a batched fetch; a plain PyTorch loader (Avalanche
    makes one for data without task labels) is rebuilt around its own batch sampler and generator."""
    datasets = _datasets(loader)
    if datasets is None or _collate(loader) is not default_collate:
        return loader, None
    if not all(is_plain_tensor_data(d) for d in datasets):
        return loader, None
    fields = known or [materialize(d) for d in datasets]
    if any(f is None or len(f[0]) != len(d) for f, d in zip(fields, datasets, strict=True)):
        return loader, None
    data = BatchedTensors(fields)
    if isinstance(loader, MultiDatasetDataLoader):
        loader._make_pytorch_loader = types.MethodType(_batched_pytorch_loader(data), loader)
        return loader, fields
    return _rebuilt(loader, data), fields


def _datasets(loader: Any) -> list[Any] | None:
    if isinstance(loader, MultiDatasetDataLoader):
        return loader.datasets
    plain_torch = type(loader) is DataLoader and loader.num_workers == 0 and loader.batch_sampler is not None
    return [loader.dataset] if plain_torch else None


def _collate(loader: Any) -> Any:
    if isinstance(loader, MultiDatasetDataLoader):
        return loader.loader_kwargs.get("collate_fn", default_collate)
    return loader.collate_fn


def _rebuilt(loader: DataLoader, data: BatchedTensors) -> DataLoader:
    """The same batch sampler and generator: the same batches and the same random draws."""
    return DataLoader(
        data,
        batch_sampler=loader.batch_sampler,
        collate_fn=_already_collated,
        pin_memory=loader.pin_memory,
        generator=loader.generator,
    )


def _batched_pytorch_loader(data: BatchedTensors) -> Any:
    def make(self: Any, datasets: list[Any], batch_sampler: Any) -> Any:
        kwargs = {**self.loader_kwargs, "collate_fn": _already_collated}
        return _make_data_loader_with_batched_sampler(data, batch_sampler, data_loader_args=kwargs)

    return make


def _already_collated(batch: list[Any]) -> list[Any]:
    return batch


class BatchedTensors:
    """Several collated datasets seen as their concatenation; ``__getitems__`` serves a whole batch
    (PyTorch's fetcher prefers it to one ``__getitem__`` per index)."""

    def __init__(self, per_dataset: list[list[Any]]):
        import torch

        self.fields = [torch.cat(parts) for parts in zip(*per_dataset, strict=True)]

    def __len__(self) -> int:
        return len(self.fields[0])

    def __getitems__(self, indices: list[int]) -> list[Any]:
        import torch

        index = torch.as_tensor(indices, dtype=torch.long)
        return [field[index] for field in self.fields]

    def __getitem__(self, index: int) -> list[Any]:
        return [field[index] for field in self.fields]


def is_plain_tensor_data(dataset: Any) -> bool:
    """True when every sample is read unchanged from in-memory tensors: no transform in any group at
    any level, and only ``TensorDataset`` leaves."""
    flat = getattr(dataset, "_flat_data", None)
    if flat is not None:
        return is_plain_tensor_data(flat)
    if hasattr(dataset, "_datasets"):
        for groups in (getattr(dataset, "_transform_groups", None), dataset._frozen_transform_groups):
            if groups is not None and any(t is not None for t in groups.transform_groups.values()):
                return False
        return all(is_plain_tensor_data(d) for d in dataset._datasets)
    return isinstance(dataset, TensorDataset)


def materialize(dataset: Any) -> list[Any] | None:
    """The whole dataset collated exactly as the plain loader collates each batch; None when a field
    is not a tensor. Gathered by tensor indexing through Avalanche's subset/concat tree when that gives
    what ``__getitem__`` gives (checked on a spread of samples, dtypes included), else one sample at a
    time through ``__getitem__`` itself."""
    import torch

    if len(dataset) == 0:
        return None
    gathered = _gather(dataset, torch.arange(len(dataset)))
    if gathered is not None and _agrees(dataset, gathered):
        return gathered
    chunks = [
        default_collate([dataset[i] for i in range(start, min(start + _CHUNK, len(dataset)))])
        for start in range(0, len(dataset), _CHUNK)
    ]
    if not all(isinstance(f, torch.Tensor) for f in chunks[0]):
        return None
    return [torch.cat(parts) for parts in zip(*chunks, strict=True)]


def _agrees(dataset: Any, fields: list[Any], probes: int = 64) -> bool:
    import torch

    picks = sorted({round(i * (len(dataset) - 1) / (probes - 1)) for i in range(probes)})
    expected = default_collate([dataset[i] for i in picks])
    index = torch.tensor(picks)
    return len(expected) == len(fields) and all(
        isinstance(e, torch.Tensor) and e.dtype == f.dtype and torch.equal(e, f[index])
        for e, f in zip(expected, fields, strict=False)
    )


def _gather(node: Any, index: Any) -> list[Any] | None:
    """Fields of samples ``index`` of an Avalanche dataset tree, by tensor indexing; None if a node is
    of a kind this does not know."""
    import torch

    flat = getattr(node, "_flat_data", None)
    if flat is not None:  # AvalancheDataset: its data, then the attributes __getitem__ appends
        fields = _gather(flat, index)
        for attribute in node._data_attributes.values():
            if fields is not None and attribute.use_in_getitem:
                fields.append(torch.as_tensor(list(attribute.data))[index])
        return fields
    if isinstance(node, TensorDataset):
        return [t[index] for t in node.tensors]
    if not hasattr(node, "_datasets"):
        return None
    if node._indices is not None:  # FlatData: subset indices, then concatenated datasets
        index = torch.as_tensor(list(node._indices), dtype=torch.long)[index]
    ends = torch.as_tensor(node._cumulative_sizes, dtype=torch.long)
    which = torch.searchsorted(ends, index, right=True)
    fields: list[Any] | None = None
    for k, child in enumerate(node._datasets):
        mask = which == k
        if not bool(mask.any()):
            continue
        part = _gather(child, index[mask] - (ends[k - 1] if k else 0))
        if part is None:
            return None
        if fields is None:
            fields = [p.new_empty((len(index), *p.shape[1:])) for p in part]
        for field, values in zip(fields, part, strict=True):
            field[mask] = values
    return fields
