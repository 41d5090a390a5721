"""The only place replay-cli reads Avalanche's private structure (pinned avalanche-lib 0.6.0).

The fast path needs two things Avalanche 0.6 has no public way to give:

* the tensors, data attributes and per-sample transform behind a dataset, by walking its tree of
  subsets and concatenations (``_flat_data``, ``_datasets``, ``_indices``, ``_cumulative_sizes``,
  ``_transform_groups``, ``_data_attributes``), so that a whole dataset is gathered by tensor
  indexing instead of one ``__getitem__`` per sample;
* the point where a multi-dataset loader (the replay loader) builds its samplers and turns them
  into a PyTorch ``DataLoader`` (``MultiDatasetDataLoader._get_loader``, ``_create_samplers``,
  ``termination_dataset``, ``oversample_small_datasets``, ``never_ending``), so that batches are
  fetched in one indexing operation while Avalanche's samplers keep drawing the same batches.

The cost accounting needs one more: the loss function a supervised strategy's ``criterion()`` calls
(``_criterion``), to know that nothing but the training loop's forward calls the model.

``tests/test_fast_path.py::test_avalanche_internals_the_fast_path_reads_are_there`` fails loudly
when an upgrade moves any of these; every function here returns None (the plain path) for a node
it does not know.
"""

from __future__ import annotations

import types
from typing import Any

UNSUPPORTED = object()  # a transform the fast path cannot reproduce per batch
PINNED_AVALANCHE = "0.6.0"


def loss_function(strategy: Any) -> Any:
    """The loss function ``strategy.criterion()`` calls with the output and the targets (None where
    the strategy keeps none)."""
    return getattr(strategy, "_criterion", None)


def sample_transform(dataset: Any) -> Any:
    """The transform of the inputs that every sample of ``dataset`` gets in its current transform
    group: None when samples are read unchanged, the one callable every sample gets exactly once,
    or :data:`UNSUPPORTED` (several, label transforms, unknown nodes)."""
    from torch.utils.data import TensorDataset

    root = getattr(dataset, "_flat_data", dataset)
    if not hasattr(root, "_transform_groups"):
        return None if isinstance(root, TensorDataset) else UNSUPPORTED
    return _walk(root, root._transform_groups.current_group)


def _walk(node: Any, group: str) -> Any:
    from torch.utils.data import TensorDataset

    flat = getattr(node, "_flat_data", None)
    if flat is not None:
        return _walk(flat, group)
    if not hasattr(node, "_datasets"):
        return None if isinstance(node, TensorDataset) else UNSUPPORTED
    below = [_walk(child, group) for child in node._datasets if len(child)]
    if any(b is UNSUPPORTED for b in below) or any(b is not below[0] for b in below[1:]):
        return UNSUPPORTED
    inner = below[0] if below else None
    own = [
        _x_transform(g.transform_groups.get(group))
        for g in (node._frozen_transform_groups, node._transform_groups)
    ]
    own = [t for t in own if t is not None]
    if not own:
        return inner
    if len(own) == 1 and inner is None and own[0] is not UNSUPPORTED:
        return own[0]
    return UNSUPPORTED


def _x_transform(group_transform: Any) -> Any:
    """The input transform inside one group's (tuple) transform; None when there is none. A class
    mapping on the labels (see :func:`_class_mapping`) is allowed: :func:`gather` applies it."""
    from avalanche.benchmarks.utils.transforms import TupleTransform

    if group_transform is None:
        return None
    if not isinstance(group_transform, TupleTransform):
        return UNSUPPORTED
    x, y, *others = [*(group_transform.transforms or []), None, None]
    mapped = y is None or _class_mapping(y) is not None
    return UNSUPPORTED if not mapped or any(o is not None for o in others) else x


def _class_mapping(label_transform: Any) -> Any:
    """The class mapping list of ``partial(lookup, mapping)``, the label transform Avalanche's
    ``nc_benchmark`` freezes on its datasets (classification_dataset.py); None for anything else."""
    import functools

    from avalanche.benchmarks.utils.classification_dataset import lookup

    is_lookup = isinstance(label_transform, functools.partial) and label_transform.func is lookup
    return label_transform.args[0] if is_lookup and len(label_transform.args) == 1 else None


def _mapped_labels(node: Any, fields: list[Any]) -> list[Any]:
    """``fields`` with the node's class mappings applied to the labels (the second field), frozen
    group first, as ``__getitem__`` applies them."""
    import torch

    group = node._transform_groups.current_group
    for groups in (node._frozen_transform_groups, node._transform_groups):
        transform = groups.transform_groups.get(group)
        transforms = getattr(transform, "transforms", None) or []
        mapping = _class_mapping(transforms[1]) if len(transforms) > 1 else None
        if mapping is not None and len(fields) > 1:
            fields[1] = torch.as_tensor(mapping, dtype=fields[1].dtype)[fields[1]]
    return fields


def gather(node: Any, index: Any, read_leaf: Any = None) -> list[Any] | None:
    """Fields of samples ``index`` of an Avalanche dataset tree by tensor indexing, before any
    transform (see :func:`sample_transform`); None if a node is of a kind this does not know.
    ``read_leaf(leaf, index)``: the fields of a leaf (default: its tensors' rows ``index``)."""
    import torch

    read_leaf = read_leaf or _tensor_fields
    flat = getattr(node, "_flat_data", None)
    if flat is not None:  # AvalancheDataset: its data, then the attributes __getitem__ appends
        fields = gather(flat, index, read_leaf)
        for attribute in node._data_attributes.values():
            if fields is not None and attribute.use_in_getitem:
                values = _walk_indexed(attribute.data, index, _sequence_values)
                fields.append(
                    values[0] if values is not None else torch.as_tensor(list(attribute.data))[index]
                )
        return fields
    return _walk_indexed(node, index, read_leaf)


def gather_rows(node: Any, index: Any) -> tuple[Any, list[Any]] | None:
    """:func:`gather` without copying the inputs: ``(inputs, fields)``, where ``inputs`` is the
    first tensor of the one ``TensorDataset`` all samples ``index`` are read from and ``fields[0]``
    the row of it each reads (LongTensor), the other fields as :func:`gather` gives them. None when
    the samples come from several leaves, or from a kind of node this does not know."""
    from torch.utils.data import TensorDataset

    leaves: dict[int, Any] = {}

    def rows(leaf: Any, index: Any) -> list[Any] | None:
        if hasattr(leaf, "_flat_data"):
            return gather(leaf, index, rows)
        if not isinstance(leaf, TensorDataset):
            return None
        leaves[id(leaf)] = leaf
        return [index, *(t.index_select(0, index) for t in leaf.tensors[1:])]

    fields = gather(node, index, rows)
    if fields is None or len(leaves) != 1:
        return None
    (leaf,) = leaves.values()
    return leaf.tensors[0], fields


def attribute_values(dataset: Any, name: str) -> Any:
    """The values of data attribute ``name`` of an Avalanche dataset, by tensor indexing through its
    tree (a LongTensor), or None when that tree is of a kind this does not know."""
    import torch

    attribute = getattr(dataset, "_data_attributes", {}).get(name)
    if attribute is None:
        return None
    values = _walk_indexed(attribute.data, torch.arange(len(dataset)), _sequence_values)
    return values[0].long() if values is not None else None


def _tensor_fields(leaf: Any, index: Any) -> list[Any] | None:
    from torch.utils.data import TensorDataset

    if hasattr(leaf, "_flat_data"):  # a nested Avalanche dataset: its own fields and attributes
        return gather(leaf, index)
    return [t.index_select(0, index) for t in leaf.tensors] if isinstance(leaf, TensorDataset) else None


def _sequence_values(leaf: Any, index: Any) -> list[Any] | None:
    """A data attribute's values (task labels): a constant run is filled, not iterated."""
    import torch
    from avalanche.benchmarks.utils.flat_data import ConstantSequence

    if isinstance(leaf, ConstantSequence):
        return [torch.full((len(index),), leaf[0], dtype=torch.long)] if len(leaf) else None
    if isinstance(leaf, torch.Tensor):
        return [leaf.index_select(0, index)]
    if not isinstance(leaf, (list, tuple)):
        return None
    return [torch.as_tensor(_picked(leaf, index))]


def _picked(values: Any, index: Any) -> Any:
    """``values[index]`` for a Python sequence: just those entries when they are few (a
    mini-experience of a large experience), else the whole sequence converted once (through NumPy
    for integers, a fifth of the time of ``torch.as_tensor``) and indexed."""
    import numpy as np
    import torch

    if 8 * len(index) < len(values):
        return [values[i] for i in index.tolist()]
    array = np.asarray(values)
    whole = torch.from_numpy(array) if array.dtype.kind in "iub" else torch.as_tensor(list(values))
    return whole[index]


def _walk_indexed(node: Any, index: Any, leaf: Any) -> list[Any] | None:
    """``leaf(node, index)`` gathered through FlatData's subset indices and concatenations."""
    import torch

    if hasattr(node, "_flat_data") or not hasattr(node, "_datasets"):
        return leaf(node, index)
    if node._indices is not None:  # FlatData: subset indices, then concatenated datasets
        index = torch.as_tensor(_picked(node._indices, index), dtype=torch.long)
    ends = torch.as_tensor(node._cumulative_sizes, dtype=torch.long)
    which = torch.searchsorted(ends, index, right=True)
    # each child's samples in one run: already so for a whole stream, else sorted (and put back)
    order = None if bool((which[1:] >= which[:-1]).all()) else torch.argsort(which, stable=True)
    runs = (index if order is None else index[order]).split(
        torch.bincount(which, minlength=len(node._datasets)).tolist()
    )
    parts = []
    for k, (child, run) in enumerate(zip(node._datasets, runs, strict=True)):
        if len(run):
            part = _walk_indexed(child, run - (ends[k - 1] if k else 0), leaf)
            if part is None:
                return None
            parts.append(part)
    fields = [torch.cat(f) if len(f) > 1 else f[0] for f in zip(*parts, strict=True)] if parts else None
    if fields is not None and order is not None:  # back to the order of ``index``
        fields = [f.new_empty(f.shape).index_copy_(0, order, f) for f in fields]
    if fields is not None and leaf is not _sequence_values and hasattr(node, "_frozen_transform_groups"):
        fields = _mapped_labels(node, fields)
    return fields


def fetch_batches_from(loader: Any, data: Any, collate_fn: Any) -> None:
    """Make Avalanche's multi-dataset ``loader`` fetch from ``data`` (indexed as the concatenation
    of its datasets) with ``collate_fn``, in this process: the data is in memory already, so
    workers and pinning would only copy it.

    Each ``iter(loader)`` builds the same samplers and batch sampler as Avalanche's
    ``MultiDatasetDataLoader._get_loader``, but skips its FFCV check (``has_ffcv_support``), which
    walks every sample of the dataset trees: about 5 ms for a buffer of 1,000, paid once per
    mini-experience online, for data that is already tensors here."""
    from avalanche.benchmarks.utils.data_loader import (
        MultiDatasetSampler,
        _make_data_loader_with_batched_sampler,
    )

    in_process = {"num_workers": 0, "pin_memory": False, "persistent_workers": False}
    loader.loader_kwargs = {k: v for k, v in loader.loader_kwargs.items() if k != "prefetch_factor"}
    loader.loader_kwargs.update(in_process)
    settings = {**loader.loader_kwargs, "collate_fn": collate_fn}

    def get_loader(self: Any) -> Any:
        samplers = self._create_samplers(
            self.datasets, self.batch_sizes, self.distributed_sampling, self.loader_kwargs
        )
        batch_sampler = MultiDatasetSampler(
            self.datasets,
            samplers,
            termination_dataset_idx=self.termination_dataset,
            oversample_small_datasets=self.oversample_small_datasets,
            never_ending=self.never_ending,
        )
        return _make_data_loader_with_batched_sampler(data, batch_sampler, data_loader_args=settings)

    loader._get_loader = types.MethodType(get_loader, loader)


# ---------------------------------------------------------------- datasets and experiences built by methods
# Avalanche 0.6 builds a task-aware classification dataset from tensors (or a plain dataset with its
# targets) only through these private constructors; its public ``as_*`` helpers need an existing
# Avalanche dataset. Methods that keep their own memory (stream replay's tensor reservoir, iCaRL's
# exemplars) use them to hand that memory back as an Avalanche dataset.


def tensor_classification_dataset(x: Any, y: Any, task_labels: list[int]) -> Any:
    """Avalanche's task-aware dataset over the tensors ``x`` (N, ...) and ``y`` (N,)."""
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset

    return _make_taskaware_tensor_classification_dataset(x, y, task_labels=task_labels)


def classification_dataset(dataset: Any, targets: list[int], transform: Any = None) -> Any:
    """Avalanche's task-aware dataset over a PyTorch ``dataset`` with its ``targets``."""
    from avalanche.benchmarks.utils import _make_taskaware_classification_dataset

    return _make_taskaware_classification_dataset(dataset, targets=targets, transform=transform)


def writable_experience(experience: Any) -> Any:
    """A shallow copy of ``experience`` whose ``dataset`` can be set (Avalanche 0.6's benchmark
    experiences make it read-only; BiC's plugin assigns it). Same class otherwise."""
    import copy

    base = type(experience)

    def set_dataset(self: Any, dataset: Any) -> None:
        self._dataset = dataset

    subclass = type(base.__name__, (base,), {"dataset": property(base.dataset.fget, set_dataset)})
    duplicate = copy.copy(experience)
    duplicate.__class__ = subclass
    return duplicate
