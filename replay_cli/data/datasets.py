"""The on-disk datasets behind the classic benchmarks: where their files live, fetching them when
allowed, and loading them as the torchvision datasets Avalanche's generators expect.

Files are checked before anything is read, so missing data ends the command with one line naming
the files and the folder, never with torchvision's traceback or a hanging download.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    torchvision_class: str  # the torchvision dataset that downloads them

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


def load(dataset: DatasetFiles, dataset_root: str | None, download: bool) -> tuple[Any, Any]:
    """(train, test) torchvision datasets from ``dataset_root`` (Avalanche's data dir when null)."""
    root = Path(dataset_root).expanduser() if dataset_root else dataset.default_root()
    if dataset.missing(root):
        if not download:
            raise UsageError(_missing_message(dataset, root, "benchmark.download=false"))
        _download(dataset, root)
    return LOADERS[dataset](root)


def _missing_message(dataset: DatasetFiles, root: Path, reason: str) -> str:
    return (
        f"{dataset.title} files not found: expected {', '.join(dataset.missing(root))} in "
        f"{root / dataset.folder} ({reason}); copy them there or point benchmark.dataset_root at the "
        f"folder that holds {dataset.folder}"
    )


def _download(dataset: DatasetFiles, root: Path) -> None:
    """torchvision's own download (with its checksums); any failure becomes the one-line message."""
    import torchvision.datasets

    source = getattr(torchvision.datasets, dataset.torchvision_class)
    try:
        for train in (True, False):
            source(str(root), train=train, download=True)
    except Exception as error:  # network, DNS, proxy, checksum: all mean the same to the user
        reason = f"download failed: {type(error).__name__}"
        raise UsageError(_missing_message(dataset, root, reason)) from error


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


def load_mnist(root: Path) -> tuple[Any, Any]:
    from avalanche.benchmarks.datasets.external_datasets.mnist import TensorMNIST

    _extract_idx(root, MNIST)
    return TensorMNIST(str(root), train=True), TensorMNIST(str(root), train=False)


def load_fashion_mnist(root: Path) -> tuple[Any, Any]:
    from torchvision.datasets import FashionMNIST

    _extract_idx(root, FASHION_MNIST)
    return FashionMNIST(str(root), train=True), FashionMNIST(str(root), train=False)


def load_cifar10(root: Path) -> tuple[Any, Any]:
    from torchvision.datasets import CIFAR10 as Source

    return _pickled_batches(Source, root)


def load_cifar100(root: Path) -> tuple[Any, Any]:
    from torchvision.datasets import CIFAR100 as Source

    return _pickled_batches(Source, root)


def _pickled_batches(source: type, root: Path) -> tuple[Any, Any]:
    """torchvision's CIFAR reader, checking that the batch files exist rather than their md5: files
    were checked when downloaded, and a subset or a re-pickled copy must load too."""
    presence_only = type(
        source.__name__,
        (source,),
        {
            "train_list": [[name, None] for name, _ in source.train_list],
            "test_list": [[name, None] for name, _ in source.test_list],
            "meta": {**source.meta, "md5": None},
        },
    )
    try:
        return presence_only(os.fspath(root), train=True), presence_only(os.fspath(root), train=False)
    except (KeyError, TypeError, EOFError, pickle.UnpicklingError) as error:
        raise UsageError(_malformed_batch(source, Path(root))) from error


def _malformed_batch(source: Any, root: Path) -> str:
    """Which CIFAR pickle is malformed and how (read again only on this error path)."""
    folder = root / source.base_folder
    for name, _ in [*source.train_list, *source.test_list, [source.meta["filename"], None]]:
        needed = (
            [source.meta["key"]] if name == source.meta["filename"] else ["data", "labels or fine_labels"]
        )
        try:
            with open(folder / name, "rb") as handle:
                entry = pickle.load(handle, encoding="latin1")
        except Exception as error:
            return f"{folder / name} is not a readable pickle ({type(error).__name__}: {error})"
        keys = entry.keys() if isinstance(entry, dict) else ()
        missing = [k for k in needed if not any(part in keys for part in k.split(" or "))]
        if missing:
            return f"{folder / name} is not a {source.__name__} file: it lacks the key {', '.join(missing)}"
    return f"{folder} holds malformed {source.__name__} files"


LOADERS = {
    MNIST: load_mnist,
    FASHION_MNIST: load_fashion_mnist,
    CIFAR10: load_cifar10,
    CIFAR100: load_cifar100,
}
