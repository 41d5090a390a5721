"""Tiny datasets written in the real on-disk formats, so the classic benchmarks run offline in tests.

MNIST and Fashion-MNIST: the four gzipped idx-ubyte files under ``<root>/MNIST/raw`` and
``<root>/FashionMNIST/raw``; CIFAR: the python pickle batches in ``cifar-10-batches-py`` and
``cifar-100-python``; Tiny ImageNet: JPEG files under ``tiny-imagenet-200``; CORe50: PNG files,
batch file lists and pickles (:func:`write_core50`). Every class gets its own bright block, so a
model can learn it in one epoch (up to 32 classes at 32 pixels: beyond, bands are shared).
"""

from __future__ import annotations

import gzip
import itertools
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


def _save_image(path: Path, pixels: np.ndarray, gray: bool = False) -> None:
    """``pixels`` (3, H, W) uint8 as the image file ``path`` (JPEG or PNG by its suffix)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)))
    (image.convert("L") if gray else image).save(path)


def tiny_imagenet_wnids() -> list[str]:
    return [f"n{index:08d}" for index in range(200)]


def write_tiny_imagenet(root: Path, per_class: int = 2, test_per_class: int = 1) -> Path:
    """Tiny ImageNet's layout: ``tiny-imagenet-200/wnids.txt``, ``train/<wnid>/images/*.JPEG``,
    ``val/images/*.JPEG`` labelled by the tab-separated ``val/val_annotations.txt``; 64x64 RGB JPEG
    files (one grayscale, as the real set has some), 200 classes."""
    folder = root / "tiny-imagenet-200"
    wnids = tiny_imagenet_wnids()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    train = np.repeat(np.arange(200), per_class)
    for i, (label, pixels) in enumerate(
        zip(train, class_images(train, (3, 64, 64), 200, seed=3), strict=True)
    ):
        wnid = wnids[label]
        _save_image(folder / "train" / wnid / "images" / f"{wnid}_{i % per_class}.JPEG", pixels, gray=i == 1)
    test = balanced_labels(test_per_class, 200, seed=4).astype(int)
    lines = []
    for i, (label, pixels) in enumerate(zip(test, class_images(test, (3, 64, 64), 200, seed=5), strict=True)):
        _save_image(folder / "val" / "images" / f"val_{i}.JPEG", pixels)
        lines.append(f"val_{i}.JPEG\t{wnids[label]}\t0\t0\t63\t63\n")
    (folder / "val" / "val_annotations.txt").write_text("".join(lines))
    return root


CORE50_TRAIN_SESSIONS = (1, 2, 4, 5, 6, 8, 9, 11)
CORE50_TEST_SESSIONS = (3, 7, 10)
CORE50_CATEGORY_NAMES = (
    "plug_adapter", "mobile_phone", "scissor", "light_bulb", "can",
    "glass", "ball", "marker", "cup", "remote_control",
)  # fmt: skip
CORE50_BATCHES = {"ni": 8, "nc": 9, "nic": 79, "nicv2_79": 79, "nicv2_196": 196, "nicv2_391": 391}
CORE50_FOLDERS = {
    "ni": "batches_filelists/NI_inc",
    "nc": "batches_filelists/NC_inc",
    "nic": "batches_filelists/NIC_inc",
    "nicv2_79": "NIC_v2_79",
    "nicv2_196": "NIC_v2_196",
    "nicv2_391": "NIC_v2_391",
}


def _core50_path(session: int, obj: int, frame: int) -> str:
    return f"s{session}/o{obj + 1}/C_{session:02d}_{obj + 1:02d}_{frame:03d}.png"


def write_core50(
    root: Path,
    mini: bool = True,
    scenarios: tuple[str, ...] = ("ni", "nc"),
    runs: tuple[int, ...] = (0,),
    frames: int = 1,
) -> Path:
    """CORe50's layout under ``root``: PNG images ``core50_32x32/s<session>/o<object>/C_*.png``
    (``core50_128x128`` unless ``mini``; ``frames`` per object and session), the file lists of
    ``scenarios`` for ``runs`` (``<folder>/run<r>/train_batch_XX_filelist.txt``, ``test_filelist.txt``:
    ``<path> <label>`` lines), and ``paths.pkl``, ``LUP.pkl``, ``labels.pkl``, ``labels2names.pkl``
    (what Avalanche's ``CORe50Dataset`` reads). Objects 5c..5c+4 are category c; in ``nc`` the labels
    are the objects' positions in the run's order, named by labels2names.pkl, as in the real lists."""
    size = 32 if mini else 128
    images_folder = root / ("core50_32x32" if mini else "core50_128x128")
    train = [(s, o, f) for s in CORE50_TRAIN_SESSIONS for o in range(50) for f in range(frames)]
    test = [(s, o, f) for s in CORE50_TEST_SESSIONS for o in range(50) for f in range(frames)]
    everything = train + test
    labels = np.array([o for _, o, _ in everything])
    for (s, o, f), pixels in zip(everything, class_images(labels, (3, size, size), 50, seed=6), strict=True):
        _save_image(images_folder / _core50_path(s, o, f), pixels)
    names: dict[str, list[dict[int, str]]] = {"nc": [{} for _ in range(10)]}
    for scenario in scenarios:
        for run in runs:
            batches, test_entries = _core50_batches(scenario, run, train, test, names)
            where = root / CORE50_FOLDERS[scenario] / f"run{run}"
            where.mkdir(parents=True, exist_ok=True)
            for b, batch in enumerate(batches):
                (where / f"train_batch_{b:02d}_filelist.txt").write_text(_file_list(batch))
            (where / "test_filelist.txt").write_text(_file_list(test_entries))
    ni_batches, ni_test = _core50_batches("ni", 0, train, test, names)
    ordered = [entry for batch in [*ni_batches, ni_test] for entry in batch]
    _pickle(root / "paths.pkl", [path for path, _ in ordered])
    bounds = np.cumsum([0] + [len(b) for b in [*ni_batches, ni_test]])
    _pickle(root / "LUP.pkl", {"ni": [[list(range(a, b)) for a, b in itertools.pairwise(bounds)]]})
    _pickle(root / "labels.pkl", {"ni": [[[label for _, label in b] for b in [*ni_batches, ni_test]]]})
    _pickle(root / "labels2names.pkl", names)
    return root


def _file_list(entries: list[tuple[str, int]]) -> str:
    return "".join(f"{path} {label}\n" for path, label in entries)


def _core50_batches(scenario: str, run: int, train: list, test: list, names: dict) -> tuple[list, list]:
    """The training batches and the test list of ``scenario``'s ``run``: ``(path, label)`` pairs."""
    rng = np.random.default_rng(100 + run)
    if scenario == "ni":  # one batch per training session, every object
        batches = [[(_core50_path(*e), e[1]) for e in train if e[0] == s] for s in CORE50_TRAIN_SESSIONS]
        return batches, [(_core50_path(*e), e[1]) for e in test]
    if scenario == "nc":  # 10 objects, then 5 per batch; labels by position in the run's order
        order = [int(o) for o in rng.permutation(50)]
        label = {obj: i for i, obj in enumerate(order)}
        names["nc"][run] = {
            i: f"{CORE50_CATEGORY_NAMES[obj // 5]}{obj % 5 + 1}" for i, obj in enumerate(order)
        }
        groups = [order[:10]] + [order[10 + 5 * k : 15 + 5 * k] for k in range(8)]
        batches = [[(_core50_path(*e), label[e[1]]) for e in train if e[1] in group] for group in groups]
        return batches, [(_core50_path(*e), label[e[1]]) for e in test]
    entries = [(_core50_path(*e), e[1]) for e in train]  # nic and nicv2: chunks of a shuffled stream
    shuffled = [entries[i] for i in rng.permutation(len(entries))]
    chunks = np.array_split(np.arange(len(shuffled)), CORE50_BATCHES[scenario])
    return [[shuffled[i] for i in chunk] for chunk in chunks], [(_core50_path(*e), e[1]) for e in test]
