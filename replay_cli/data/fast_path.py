"""Fast path for in-memory tensor data: the same batches, in the same order, fetched by batched indexing.

Avalanche builds every minibatch by calling ``__getitem__`` once per sample through its dataset tree
and collating the samples; with the replay buffer concatenated in, one epoch fetches the buffer's few
hundred samples tens of thousands of times. :class:`FastPathPlugin` runs after the ReplayPlugin has
set ``strategy.dataloader`` (and after the evaluation loader is made) and changes only how that loader
*fetches*: it keeps Avalanche's samplers and PyTorch's ``DataLoader`` (so the batches and their order
are untouched) and serves each batch of indices from tensors collated once, held on the training
device: the whole training stream once per run (its inputs by row where the dataset holds them;
every experience, mini-experience and buffer kept as positions is a set of positions in it, see
:mod:`replay_cli.data.positions`), each test experience once per run, and any other dataset once
per experience.

The classic benchmarks hold uint8 images with an :class:`~replay_cli.data.transforms.ImageTransform`
per sample; here that transform runs once per minibatch on the device instead (normalisation gives
the same values; random crops and flips the same distribution, drawn per batch). Datasets whose
samples could change otherwise (any other transform, anything but a ``TensorDataset`` underneath, a
custom collate) stay on the plain path.
"""

from __future__ import annotations

from typing import Any

from avalanche.benchmarks.utils.data_loader import MultiDatasetDataLoader
from avalanche.training.plugins import SupervisedPlugin
from torch.utils.data import DataLoader, default_collate

from replay_cli.data import avalanche_internals
from replay_cli.data.positions import PositionsView
from replay_cli.data.transforms import ImageTransform

_CHUNK = 4096  # samples collated at a time while materializing: bounds the list of Python tuples


class FastPathPlugin(SupervisedPlugin):
    """Batched fetching for the training and evaluation loaders; identical results, less time.

    Test sets and the training stream are materialized once per run; training datasets that are not
    drawn from the stream (a method's own memory) once per experience, when training reads them at
    least once over.
    """

    def __init__(self, positions: Any = None) -> None:
        """``positions``: the benchmark's :class:`~replay_cli.data.positions.SamplePositions`; the
        training stream is then gathered once per run, and every training dataset drawn from it
        (an experience, a mini-experience, a buffer kept as positions) is served by indexing it."""
        super().__init__()
        self._eval_cache: dict[int, tuple[Any, list[Any]]] = {}
        self.positions = positions
        self._stream: tuple[Any, Any, list[Any] | None] | None = None  # (transform, inputs, fields)

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        served = self._served_from_stream(strategy.dataloader, strategy.device)
        if served is not None:
            strategy.dataloader = served
        elif worth_materializing(strategy.dataloader, strategy.train_epochs):
            strategy.dataloader, _ = speed_up(strategy.dataloader, device=strategy.device)

    def _served_from_stream(self, loader: Any, device: Any) -> Any:
        """``loader`` fetching from the whole training stream's fields by position, when each of
        its datasets is drawn from the stream (a buffer's :class:`PositionsView`, or a dataset with
        origin attributes, the stream's transform and what ``__getitem__`` gives on two probes); else
        None. Nothing is
        gathered per experience: a mini-experience and a buffer of 1,000 cost two index lookups."""
        datasets = _datasets(loader)
        if not datasets or self.positions is None or _collate(loader) is not default_collate:
            return None
        transform, inputs, fields = self._stream_fields(device)
        if fields is None:
            return None
        at = []
        for dataset in datasets:
            if isinstance(dataset, PositionsView) and dataset.positions is self.positions:
                at.append(dataset.held)  # the stream's own samples, by construction
                continue
            same_transform = avalanche_internals.sample_transform(dataset) == transform
            where = self.positions.positions_of(dataset) if len(dataset) and same_transform else None
            if where is None or not _agrees(dataset, fields, transform, probes=2, at=where, inputs=inputs):
                return None
            at.append(where)
        import torch

        return _served(
            loader, BatchedTensors([fields], transform, at=torch.cat(at).to(device), inputs=inputs)
        )

    def _stream_fields(self, device: Any) -> tuple[Any, Any, list[Any] | None]:
        """The training stream's transform, inputs and fields on ``device``, read once (see
        :func:`materialize_stream`)."""
        if self._stream is None:
            source = self.positions.source
            transform = avalanche_internals.sample_transform(source)
            usable = transform is None or isinstance(transform, ImageTransform)
            inputs, fields = materialize_stream(source, transform) if usable else (None, None)
            on_device = [f.to(device) for f in fields] if fields is not None else None
            self._stream = (transform, inputs.to(device) if inputs is not None else None, on_device)
        return self._stream

    def fetch(self, dataset: Any, index: Any, device: Any) -> list[Any] | None:
        """The samples at ``index`` (LongTensor) of a buffer kept as positions of the training
        stream (a :class:`PositionsView`), collated as the plain loader collates them, from the
        stream's fields on ``device``; None for any other dataset or a stream not served here."""
        if not isinstance(dataset, PositionsView) or dataset.positions is not self.positions:
            return None
        transform, inputs, fields = self._stream_fields(device)
        if fields is None:
            return None
        at = dataset.held.index_select(0, index).to(device)
        return BatchedTensors([fields], transform, at=at, inputs=inputs).__getitems__(range(len(at)))

    def before_eval_exp(self, strategy: Any, **kwargs: Any) -> None:
        source = strategy.experience.dataset
        cached = self._eval_cache.get(id(source))
        known = cached[1] if cached is not None and cached[0] is source else None
        strategy.dataloader, fields = speed_up(
            strategy.dataloader, [known] if known is not None else None, device=strategy.device
        )
        if fields is not None and known is None:
            self._eval_cache[id(source)] = (source, fields[0])


def worth_materializing(loader: Any, epochs: int) -> bool:
    """Materializing costs about one gather per sample of the loader's datasets, whatever is read:
    worth it only when training reads at least that many samples. Online training reads 10 new and
    10 replayed samples from a mini-experience and a buffer of hundreds: it stays on the plain path
    (the same batches either way)."""
    datasets = _datasets(loader)
    if datasets is None:
        return False
    if isinstance(loader, MultiDatasetDataLoader):
        per_epoch = len(loader) * sum(loader.batch_sizes)
    else:
        per_epoch = len(loader.dataset)
    return epochs * per_epoch >= sum(len(d) for d in datasets)


def speed_up(
    loader: Any, known: list[list[Any]] | None = None, device: Any = "cpu"
) -> tuple[Any, list[list[Any]] | None]:
    """``loader`` made to fetch by batched indexing when all its datasets allow it (``known``: their
    collated fields from an earlier call), and those fields; or ``loader`` as it was and None.

    The fields are moved to ``device`` once. Avalanche's loaders keep their samplers and get a
    batched fetch; a plain PyTorch loader (Avalanche makes one for data without task labels) is
    rebuilt around its own batch sampler and generator."""
    datasets = _datasets(loader)
    if datasets is None or _collate(loader) is not default_collate:
        return loader, None
    transforms = {avalanche_internals.sample_transform(d) for d in datasets}
    if len(transforms) != 1:
        return loader, None
    (transform,) = transforms
    if transform is not None and not isinstance(transform, ImageTransform):
        return loader, None
    fields = known or [materialize(d, transform) for d in datasets]
    if any(f is None or len(f[0]) != len(d) for f, d in zip(fields, datasets, strict=True)):
        return loader, None
    fields = [[t.to(device) for t in f] for f in fields]
    return _served(loader, BatchedTensors(fields, transform)), fields


def _served(loader: Any, data: BatchedTensors) -> Any:
    """``loader`` fetching its batches from ``data``: Avalanche's loaders keep their samplers, a
    plain PyTorch loader is rebuilt around its own batch sampler and generator."""
    if isinstance(loader, MultiDatasetDataLoader):
        avalanche_internals.fetch_batches_from(loader, data, _already_collated)
        return loader
    return _rebuilt(loader, data)


def _datasets(loader: Any) -> list[Any] | None:
    if isinstance(loader, MultiDatasetDataLoader):
        return loader.datasets
    plain_torch = type(loader) is DataLoader and loader.batch_sampler is not None  # rebuilt in-process
    return [loader.dataset] if plain_torch else None


def _collate(loader: Any) -> Any:
    if isinstance(loader, MultiDatasetDataLoader):
        return loader.loader_kwargs.get("collate_fn", default_collate)
    return loader.collate_fn


def _rebuilt(loader: DataLoader, data: BatchedTensors) -> DataLoader:
    """The same batch sampler and generator: the same batches and the same random draws."""
    return DataLoader(
        data, batch_sampler=loader.batch_sampler, collate_fn=_already_collated, generator=loader.generator
    )


def _already_collated(batch: list[Any]) -> list[Any]:
    return batch


class BatchedTensors:
    """Several collated datasets seen as their concatenation (or, with ``at``, the samples at those
    positions of one; with ``inputs``, the first field holds the rows of ``inputs`` that are the
    samples' inputs); ``__getitems__`` serves a whole batch (PyTorch's fetcher prefers it to one
    ``__getitem__`` per index), its inputs through ``transform``."""

    def __init__(
        self,
        per_dataset: list[list[Any]],
        transform: ImageTransform | None = None,
        at: Any = None,
        inputs: Any = None,
    ):
        import torch

        self.fields = [
            torch.cat(parts) if len(parts) > 1 else parts[0] for parts in zip(*per_dataset, strict=True)
        ]
        self.transform, self.at, self.inputs = transform, at, inputs

    def __len__(self) -> int:
        return len(self.fields[0]) if self.at is None else len(self.at)

    def __getitems__(self, indices: list[int]) -> list[Any]:
        """The batch at ``indices``; by ``index_select``, a third of the time of ``field[index]``
        on CPU, from an index read through NumPy, a third of the time of ``torch.as_tensor``."""
        import numpy as np
        import torch

        index = torch.from_numpy(np.fromiter(indices, np.int64, len(indices))).to(self.fields[0].device)
        if self.at is not None:
            index = self.at.index_select(0, index)
        inputs, *rest = (field.index_select(0, index) for field in self.fields)
        if self.inputs is not None:
            inputs = self.inputs.index_select(0, inputs)
        return [self.transform(inputs) if self.transform else inputs, *rest]

    def __getitem__(self, index: int) -> list[Any]:
        return self.__getitems__([index])


def is_plain_tensor_data(dataset: Any) -> bool:
    """True when every sample is read unchanged from in-memory tensors."""
    return avalanche_internals.sample_transform(dataset) is None


def materialize(dataset: Any, transform: ImageTransform | None = None) -> list[Any] | None:
    """The whole dataset collated exactly as the plain loader collates each batch, before
    ``transform`` (the transform every sample gets; see :func:`speed_up`); None when a field is not
    a tensor. Gathered by tensor indexing through Avalanche's subset/concat tree when that gives what
    ``__getitem__`` gives (checked on a spread of samples, dtypes included), else one sample at a
    time through ``__getitem__`` itself (transform-free data only)."""
    import torch

    if len(dataset) == 0:
        return None
    gathered = avalanche_internals.gather(dataset, torch.arange(len(dataset)))
    if gathered is not None and _agrees(dataset, gathered, transform):
        return gathered
    if transform is not None:
        return None
    chunks = [
        default_collate([dataset[i] for i in range(start, min(start + _CHUNK, len(dataset)))])
        for start in range(0, len(dataset), _CHUNK)
    ]
    if not all(isinstance(f, torch.Tensor) for f in chunks[0]):
        return None
    return [torch.cat(parts) for parts in zip(*chunks, strict=True)]


def materialize_stream(dataset: Any, transform: ImageTransform | None) -> tuple[Any, list[Any] | None]:
    """``(inputs, fields)`` of the whole training stream: when all its samples read one tensor of
    inputs, that tensor as the dataset holds it (no copy: 180 MiB for 60,000 float MNIST images) and
    ``fields[0]`` the row of each sample in it; else ``(None, materialize(dataset, transform))``."""
    import torch

    located = avalanche_internals.gather_rows(dataset, torch.arange(len(dataset))) if len(dataset) else None
    if located is not None and _agrees(dataset, located[1], transform, inputs=located[0]):
        return located
    return None, materialize(dataset, transform)


def _agrees(
    dataset: Any,
    fields: list[Any],
    transform: ImageTransform | None,
    probes: int = 64,
    at: Any = None,
    inputs: Any = None,
) -> bool:
    """``fields`` (at positions ``at`` when given; the first one rows of ``inputs`` when given) hold
    what ``__getitem__`` gives, after ``transform`` (a random one is checked with its deterministic
    part, put in its place through Avalanche's public transform-group API)."""
    import torch

    if transform is not None and transform.random:
        transform = ImageTransform(transform.mean, transform.std)
        dataset = dataset.replace_current_transform_group(transform)
    picks = sorted({round(i * (len(dataset) - 1) / (probes - 1)) for i in range(probes)})
    expected = default_collate([dataset[i] for i in picks])
    index = torch.tensor(picks) if at is None else at[torch.tensor(picks)]
    got = [f[index] for f in fields]
    if inputs is not None and got:
        got[0] = inputs[got[0]]
    if transform is not None and got:
        got[0] = transform(got[0])
    return len(expected) == len(got) and all(
        isinstance(e, torch.Tensor) and e.dtype == g.dtype and torch.equal(e, g)
        for e, g in zip(expected, got, strict=False)
    )
