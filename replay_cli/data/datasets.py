"""The on-disk datasets behind the classic benchmarks: where their files live, fetching them when
allowed (torchvision's or Avalanche's download), and reading them once into uint8 tensors
(:class:`ImageArrays`); the folders of image files (Tiny ImageNet, CORe50) are decoded by
:mod:`replay_cli.data.image_files`.

Files are checked before anything is read, so missing data ends the command with one line naming
the files and the folder, never with torchvision's traceback or a hanging download.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replay_cli.data.image_files import ImageArrays
from replay_cli.errors import UsageError

_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@dataclass(frozen=True)
class DatasetFiles:
    """One dataset's files: ``folder`` under the dataset root, and where Avalanche keeps it by default."""

    title: str
    default_name: str  # avalanche's default_dataset_location(<name>)
    folder: str
    files: tuple[str, ...]
    torchvision_class: str  # the dataset class that downloads them (torchvision's unless download_from)
    download_from: str = "torchvision.datasets"  # the module that holds that class

    def default_root(self) -> Path:
        from avalanche.benchmarks.datasets.dataset_utils import default_dataset_location

        return Path(default_dataset_location(self.default_name))

    def missing(self, root: Path) -> list[str]:
        """Files absent from ``root/folder``; an idx-ubyte file counts when its extracted form is there."""
        where = root / self.folder
        return [
            name
            for name in self.files
            if not (where / name).is_file() and not (where / name.removesuffix(".gz")).is_file()
        ]


MNIST = DatasetFiles("MNIST", "mnist", "MNIST/raw", _MNIST_FILES, "MNIST")
FASHION_MNIST = DatasetFiles(
    "Fashion-MNIST", "fashionmnist", "FashionMNIST/raw", _MNIST_FILES, "FashionMNIST"
)
CIFAR10 = DatasetFiles(
    "CIFAR-10",
    "cifar10",
    "cifar-10-batches-py",
    (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
    "CIFAR10",
)
CIFAR100 = DatasetFiles("CIFAR-100", "cifar100", "cifar-100-python", ("train", "test", "meta"), "CIFAR100")
TINY_IMAGENET = DatasetFiles(
    "Tiny ImageNet",
    "tinyimagenet",
    "tiny-imagenet-200",
    ("wnids.txt", "val/val_annotations.txt"),  # the images are checked as they are read
    "TinyImagenet",
    download_from="avalanche.benchmarks.datasets",
)


def load(dataset: DatasetFiles, dataset_root: str | None, download: bool) -> tuple[ImageArrays, ImageArrays]:
    """(train, test) read once from ``dataset_root`` (Avalanche's data dir when null) into tensors.

    Raises :class:`UsageError` (one line naming the files and the folder) when files are missing
    and cannot be fetched."""
    root = Path(dataset_root).expanduser() if dataset_root else dataset.default_root()
    if dataset.missing(root):
        if not download:
            raise UsageError(_missing_message(dataset, root, "benchmark.download=false"))
        _download(dataset, root)
    return READERS[dataset](root)


def _missing_message(dataset: DatasetFiles, root: Path, reason: str) -> str:
    return (
        f"{dataset.title} files not found: expected {', '.join(dataset.missing(root))} in "
        f"{root / dataset.folder} ({reason}); copy them there or point benchmark.dataset_root at the "
        f"folder that holds {dataset.folder}"
    )


def _download(dataset: DatasetFiles, root: Path) -> None:
    """The dataset class's own download (torchvision's or Avalanche's, with its checksums); any
    failure becomes the one-line message."""
    import importlib

    source = getattr(importlib.import_module(dataset.download_from), dataset.torchvision_class)
    fetched(
        lambda: [source(str(root), train=train, download=True) for train in (True, False)],
        lambda reason: _missing_message(dataset, root, reason),
    )


def fetched(download: Callable[[], Any], message: Callable[[str], str]) -> None:
    """Run ``download``; any failure (network, DNS, proxy, checksum: all mean the same to the user)
    becomes :class:`UsageError` with ``message("download failed: <error type>")``."""
    try:
        download()
    except Exception as error:
        raise UsageError(message(f"download failed: {type(error).__name__}")) from error


def _extract_idx(root: Path, dataset: DatasetFiles) -> None:
    """torchvision reads extracted idx-ubyte files; the published form is gzipped."""
    import gzip
    import shutil

    where = root / dataset.folder
    for name in dataset.files:
        target = where / name.removesuffix(".gz")
        if not target.is_file():
            with gzip.open(where / name, "rb") as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)


def read_idx(dataset: DatasetFiles, root: Path) -> tuple[ImageArrays, ImageArrays]:
    """MNIST-format files (idx-ubyte, as MNIST and Fashion-MNIST publish them), by torchvision's reader."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    _extract_idx(root, dataset)
    where = root / dataset.folder

    def split(images: str, labels: str) -> ImageArrays:
        x = read_image_file(os.fspath(where / images.removesuffix(".gz")))
        y = read_label_file(os.fspath(where / labels.removesuffix(".gz")))
        return ImageArrays(x.unsqueeze(1).contiguous(), y.long())

    train_images, train_labels, test_images, test_labels = dataset.files
    return split(train_images, train_labels), split(test_images, test_labels)


def read_cifar(dataset: DatasetFiles, root: Path) -> tuple[ImageArrays, ImageArrays]:
    """CIFAR's python pickles (the batches' data rows are 3x32x32 uint8 images, channel first).
    Only the files' presence is checked, not their md5: files were checked when downloaded, and a
    subset or a re-pickled copy must load too."""
    import numpy as np
    import torch

    where = root / dataset.folder
    train_files = [name for name in dataset.files if name.startswith(("data_batch", "train"))]
    test_files = [name for name in dataset.files if name in ("test_batch", "test")]

    def split(names: list[str]) -> ImageArrays:
        images, labels = [], []
        for name in names:
            batch = _cifar_batch(where / name, dataset)
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(batch["labels"] if "labels" in batch else batch["fine_labels"])
        return ImageArrays(torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long))

    return split(train_files), split(test_files)


def _cifar_batch(path: Path, dataset: DatasetFiles) -> dict[str, Any]:
    """One CIFAR batch pickle; a malformed one is :class:`UsageError` naming the file and what is wrong."""
    kind = dataset.torchvision_class
    try:
        with open(path, "rb") as source:
            batch = pickle.load(source, encoding="latin1")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as error:
        reason = f"{type(error).__name__}: {error}"
        raise UsageError(f"{path} is not a readable {kind} pickle ({reason})") from None
    keys = batch.keys() if isinstance(batch, dict) else ()
    missing = [k for k in ("data", "labels or fine_labels") if not any(p in keys for p in k.split(" or "))]
    if missing:
        raise UsageError(f"{path} is not a {kind} file: it lacks the key {', '.join(missing)}")
    return batch


def load_core50(
    dataset_root: str | None, download: bool, scenario: str, run: int, mini: bool, object_level: bool
) -> tuple[list[ImageArrays], ImageArrays]:
    """CORe50's training batches and complete test set for ``scenario``'s ``run``, read once from
    ``dataset_root`` (Avalanche's data dir when null; see :func:`replay_cli.data.image_files.read_core50`);
    fetched by Avalanche's ``CORe50Dataset`` when files are missing and ``download``.

    Raises :class:`UsageError` (one line naming the files and the folder) when files are missing
    and cannot be fetched."""
    from avalanche.benchmarks.datasets.dataset_utils import default_dataset_location

    from replay_cli.data import image_files

    root = Path(dataset_root).expanduser() if dataset_root else Path(default_dataset_location("core50"))

    def message(reason: str) -> str:
        missing = image_files.core50_missing(root, scenario, run, mini, object_level)
        return (
            f"CORe50 files not found: expected {', '.join(missing)} in {root} ({reason}); copy them "
            "there (core50_128x128 or core50_32x32, batches_filelists, NIC_v2_*, labels2names.pkl) or "
            "point benchmark.dataset_root at the folder that holds them"
        )

    if image_files.core50_missing(root, scenario, run, mini, object_level):
        if not download:
            raise UsageError(message("benchmark.download=false"))

        def fetch() -> None:
            from avalanche.benchmarks.datasets import CORe50Dataset

            CORe50Dataset(root=str(root), mini=mini, download=True)

        fetched(fetch, message)
    return image_files.read_core50(root, scenario, run, mini, object_level)


READERS = {
    MNIST: lambda root: read_idx(MNIST, root),
    FASHION_MNIST: lambda root: read_idx(FASHION_MNIST, root),
    CIFAR10: lambda root: read_cifar(CIFAR10, root),
    CIFAR100: lambda root: read_cifar(CIFAR100, root),
    TINY_IMAGENET: lambda root: _read_tiny_imagenet(root),
}


def _read_tiny_imagenet(root: Path) -> tuple[ImageArrays, ImageArrays]:
    from replay_cli.data.image_files import read_tiny_imagenet

    return read_tiny_imagenet(root)


class ImageSamples:
    """``arrays`` served one sample at a time the way torchvision's datasets serve them, for
    Avalanche's per-sample transforms: PIL images (as torchvision's CIFAR and Fashion-MNIST datasets
    give), or float tensors in [0, 1] (as Avalanche's TensorMNIST gives). A plain class, so that
    DataLoader workers can pickle it."""

    def __init__(self, arrays: ImageArrays, pil: bool) -> None:
        self.targets = arrays.targets.tolist()
        self.pil = pil
        pixels = arrays.images.permute(0, 2, 3, 1) if pil else arrays.images  # PIL wants H, W(, C)
        self._pixels = (pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).numpy() if pil else pixels

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        if self.pil:
            from PIL import Image

            return Image.fromarray(self._pixels[index]), self.targets[index]
        return self._pixels[index].float() / 255.0, self.targets[index]


def image_tensors(arrays: ImageArrays) -> Any:
    """``arrays`` as a ``TensorDataset`` of uint8 images with the ``targets`` Avalanche's generators
    read: transforms then run on whole minibatches (see :mod:`replay_cli.data.transforms`)."""
    from torch.utils.data import TensorDataset

    dataset = TensorDataset(arrays.images, arrays.targets)
    dataset.targets = arrays.targets  # type: ignore[attr-defined]
    return dataset
