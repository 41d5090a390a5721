"""Tiny datasets written in the real on-disk formats, so the classic benchmarks run offline in tests.

MNIST and Fashion-MNIST: the four gzipped idx-ubyte files under ``<root>/MNIST/raw`` and
``<root>/FashionMNIST/raw``; CIFAR: the python pickle batches in ``cifar-10-batches-py`` and
``cifar-100-python``. Every class gets its own bright block, so a model can learn it in one epoch.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def class_images(labels: np.ndarray, shape: tuple[int, ...], num_classes: int, seed: int) -> np.ndarray:
    """uint8 images (N, *shape): low noise plus a bright horizontal band whose position is the class."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(len(labels), *shape), dtype=np.uint8)
    height = shape[0] if len(shape) == 2 else shape[1]
    rows = np.linspace(0, height - 1, num_classes + 1).astype(int)
    for i, label in enumerate(labels):
        band = slice(rows[label], max(rows[label] + 1, rows[label + 1]))
        if len(shape) == 2:
            images[i, band, :] = 255
        else:
            images[i, :, band, :] = 255
    return images


def balanced_labels(per_class: int, num_classes: int, seed: int) -> np.ndarray:
    labels = np.repeat(np.arange(num_classes), per_class)
    return np.random.default_rng(seed).permutation(labels).astype(np.uint8)


def write_idx_dataset(raw_folder: Path, per_class: int = 6, test_per_class: int = 3) -> Path:
    """MNIST-format files (gzipped, as published) for 10 classes of 28x28 images."""
    splits = []
    for seed, per in enumerate((per_class, test_per_class)):
        labels = balanced_labels(per, 10, seed)
        splits.append((class_images(labels, (28, 28), 10, seed), labels))
    return write_idx_arrays(raw_folder, *splits)


def write_idx_arrays(raw_folder: Path, train: tuple, test: tuple) -> Path:
    """(images uint8 (N, 28, 28), labels uint8 (N,)) for each split, as gzipped idx-ubyte files."""
    raw_folder.mkdir(parents=True, exist_ok=True)
    for (images_file, labels_file), (images, labels) in zip(IDX_FILES.values(), (train, test), strict=True):
        with gzip.open(raw_folder / images_file, "wb") as out:
            out.write(struct.pack(">IIII", 0x0803, len(labels), 28, 28) + images.tobytes())
        with gzip.open(raw_folder / labels_file, "wb") as out:
            out.write(struct.pack(">II", 0x0801, len(labels)) + labels.tobytes())
    return raw_folder


def _cifar_batch(labels: np.ndarray, label_key: str, num_classes: int, seed: int, images=None) -> dict:
    if images is None:
        images = class_images(labels, (3, 32, 32), num_classes, seed)
    images = images.reshape(len(labels), -1)
    return {
        "data": images,
        label_key: [int(y) for y in labels],
        "filenames": [f"{i}.png" for i in range(len(labels))],
    }


def _pickle(path: Path, data: dict) -> None:
    with open(path, "wb") as out:
        pickle.dump(data, out)


def write_cifar10(root: Path, per_class: int = 5, test_per_class: int = 2) -> Path:
    train = balanced_labels(per_class, 10, seed=0)
    test = balanced_labels(test_per_class, 10, seed=9)
    return write_cifar10_arrays(
        root,
        (class_images(train, (3, 32, 32), 10, seed=1), train),
        (class_images(test, (3, 32, 32), 10, seed=9), test),
    )


def write_cifar10_arrays(root: Path, train: tuple, test: tuple) -> Path:
    """(images uint8 (N, 3, 32, 32), labels (N,)) for each split, as CIFAR-10's five training
    batches, test batch and meta file."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = train
    for i in range(1, 6):
        part = slice(i - 1, None, 5)
        _pickle(folder / f"data_batch_{i}", _cifar_batch(labels[part], "labels", 10, i, images[part]))
    _pickle(folder / "test_batch", _cifar_batch(test[1], "labels", 10, 9, test[0]))
    _pickle(folder / "batches.meta", {"label_names": [f"class{c}" for c in range(10)]})
    return root


def write_cifar100(root: Path, per_class: int = 2, test_per_class: int = 1) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    _pickle(folder / "train", _cifar_batch(balanced_labels(per_class, 100, 1), "fine_labels", 100, 1))
    _pickle(folder / "test", _cifar_batch(balanced_labels(test_per_class, 100, 2), "fine_labels", 100, 2))
    _pickle(folder / "meta", {"fine_label_names": [f"class{c}" for c in range(100)]})
    return root


WRITERS = {
    "split_mnist": lambda root: write_idx_dataset(root / "MNIST" / "raw"),
    "permuted_mnist": lambda root: write_idx_dataset(root / "MNIST" / "raw"),
    "rotated_mnist": lambda root: write_idx_dataset(root / "MNIST" / "raw"),
    "split_fmnist": lambda root: write_idx_dataset(root / "FashionMNIST" / "raw"),
    "split_cifar10": write_cifar10,
    "split_cifar100": write_cifar100,
}
