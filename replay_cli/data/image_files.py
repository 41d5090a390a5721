"""Datasets kept as folders of image files, read once into uint8 tensors: Tiny ImageNet (JPEG files
under ``tiny-imagenet-200``) and CORe50 (PNG files listed by its batch file lists).

Every image is decoded as torchvision's ``default_loader`` decodes it (PIL, converted to RGB), so
the tensors hold the very pixels Avalanche's ``TinyImagenet`` and ``CORe50`` datasets give. Every
file is checked before it is used: a missing or malformed one ends the command with one line
naming the file and what is wrong (:class:`~replay_cli.errors.UsageError`).
"""

from __future__ import annotations

import csv
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replay_cli.errors import UsageError


@dataclass
class ImageArrays:
    """A dataset split held in memory: ``images`` uint8 ``(N, C, H, W)``, ``targets`` int64 ``(N,)``."""

    images: Any
    targets: Any


TINY_IMAGENET_FOLDER = "tiny-imagenet-200"
TINY_IMAGENET_CLASSES = 200

# CORe50's scenarios: (folder of the file lists under the dataset root, training batches), as
# Avalanche's classic CORe50 generator (avalanche.benchmarks.classic.core50: scen2dirs, nbatch)
CORE50_SCENARIOS = {
    "ni": ("batches_filelists/NI_inc", 8),
    "nc": ("batches_filelists/NC_inc", 9),
    "nic": ("batches_filelists/NIC_inc", 79),
    "nicv2_79": ("NIC_v2_79", 79),
    "nicv2_196": ("NIC_v2_196", 196),
    "nicv2_391": ("NIC_v2_391", 391),
}
# CORe50's 10 categories (avalanche.benchmarks.datasets.core50.core50_data.name2cat)
CORE50_CATEGORIES = (
    "plug_adapter", "mobile_phone", "scissor", "light_bulb", "can",
    "glass", "ball", "marker", "cup", "remote_control",
)  # fmt: skip


def decode_images(paths: Sequence[Path]) -> Any:
    """uint8 tensor ``(N, 3, H, W)`` of the RGB images at ``paths``, in order (decoded by threads:
    PIL releases the GIL while it decodes).

    Raises :class:`UsageError` naming the first file that is missing, not an image, or of another
    size than the first."""
    import numpy as np
    import torch

    if not paths:
        return torch.zeros((0, 3, 1, 1), dtype=torch.uint8)
    first = _rgb(paths[0])
    out = np.empty((len(paths), *first.shape), dtype=np.uint8)

    def put(index: int) -> None:
        pixels = _rgb(paths[index])
        if pixels.shape != first.shape:
            size, expected = "x".join(map(str, pixels.shape[:2])), "x".join(map(str, first.shape[:2]))
            raise UsageError(f"{paths[index]} is {size} pixels, expected {expected} as {paths[0]}")
        out[index] = pixels

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(put, range(len(paths))))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _rgb(path: Path) -> Any:
    """One image as torchvision's ``pil_loader`` reads it: ``(H, W, 3)`` uint8."""
    import numpy as np
    from PIL import Image

    try:
        with open(path, "rb") as source:
            return np.asarray(Image.open(source).convert("RGB"))
    except FileNotFoundError:
        raise UsageError(f"image file not found: {path}") from None
    except (OSError, ValueError) as error:  # PIL's UnidentifiedImageError is an OSError
        raise UsageError(f"{path} is not a readable image ({type(error).__name__}: {error})") from None


def read_tiny_imagenet(root: Path) -> tuple[Any, Any]:
    """Tiny ImageNet's training images (``train/<wnid>/images/*``) and its validation images
    (``val/images``, labelled by ``val/val_annotations.txt``) as the test set, as Avalanche's
    ``TinyImagenet`` dataset reads them: class ids in the order of ``wnids.txt``, samples grouped by
    class. Within a class the training images are in file-name order (Avalanche: the directory's
    listing order, which depends on the file system), the test images in the annotations' order.

    Returns (train, test) :class:`ImageArrays`; raises
    :class:`UsageError` naming the file that is missing or malformed."""
    import torch

    folder = root / TINY_IMAGENET_FOLDER
    wnids = _wnids(folder / "wnids.txt")
    by_class = _val_annotations(folder / "val" / "val_annotations.txt")
    train_paths: list[Path] = []
    train_labels: list[int] = []
    test_paths: list[Path] = []
    test_labels: list[int] = []
    for label, wnid in enumerate(wnids):
        images = folder / "train" / wnid / "images"
        if not images.is_dir():
            raise UsageError(f"Tiny ImageNet folder not found: {images} (class {wnid} of wnids.txt)")
        found = sorted(f for f in images.iterdir() if f.is_file())
        train_paths += found
        train_labels += [label] * len(found)
        names = by_class.get(wnid, [])
        test_paths += [folder / "val" / "images" / name for name in names]
        test_labels += [label] * len(names)

    def arrays(paths: list[Path], labels: list[int]) -> ImageArrays:
        return ImageArrays(decode_images(paths), torch.tensor(labels, dtype=torch.long))

    return arrays(train_paths, train_labels), arrays(test_paths, test_labels)


def _wnids(path: Path) -> list[str]:
    """The class ids of ``wnids.txt`` (first column, first occurrence), exactly 200 of them."""
    try:
        with open(path, newline="") as source:
            rows = [row for row in csv.reader(source) if row]
    except OSError as error:
        raise UsageError(f"{path} is not readable ({type(error).__name__}: {error})") from None
    wnids = list(dict.fromkeys(row[0] for row in rows))
    if len(wnids) != TINY_IMAGENET_CLASSES:
        raise UsageError(
            f"{path} lists {len(wnids)} classes: expected Tiny ImageNet's {TINY_IMAGENET_CLASSES} "
            "WordNet ids, one a line"
        )
    return wnids


def _val_annotations(path: Path) -> dict[str, list[str]]:
    """``val_annotations.txt``: image file names per WordNet id, in the file's order."""
    by_class: dict[str, list[str]] = {}
    try:
        with open(path, newline="") as source:
            for number, row in enumerate(csv.reader(source, dialect="excel-tab"), start=1):
                if len(row) < 2:
                    raise UsageError(
                        f"{path}, line {number}: expected '<image file>\\t<wnid>\\t...' (tab-separated), "
                        f"got {row!r}"
                    )
                by_class.setdefault(row[1], []).append(row[0])
    except OSError as error:
        raise UsageError(f"{path} is not readable ({type(error).__name__}: {error})") from None
    return by_class


def core50_images_folder(mini: bool) -> str:
    return "core50_32x32" if mini else "core50_128x128"


def core50_file_lists(root: Path, scenario: str, run: int) -> tuple[list[Path], Path]:
    """The training batches' file lists and the test file list of ``scenario``'s ``run``, where
    Avalanche's CORe50 generator reads them (``<folder>/run<r>/train_batch_XX_filelist.txt``,
    ``test_filelist.txt``)."""
    folder, batches = CORE50_SCENARIOS[scenario]
    where = root / folder / f"run{run}"
    train = [where / f"train_batch_{batch:02d}_filelist.txt" for batch in range(batches)]
    return train, where / "test_filelist.txt"


def core50_missing(root: Path, scenario: str, run: int, mini: bool, object_level: bool) -> list[str]:
    """The files and folders :func:`read_core50` needs that are absent (relative to ``root``)."""
    train, test = core50_file_lists(root, scenario, run)
    needed = [root / core50_images_folder(mini), *train, test]
    if scenario == "nc" and not object_level:
        needed.append(root / "labels2names.pkl")
    return [os.path.relpath(path, root) for path in needed if not path.exists()]


def read_core50(root: Path, scenario: str, run: int, mini: bool, object_level: bool) -> tuple[list[Any], Any]:
    """One :class:`ImageArrays` per training batch of ``scenario``'s
    ``run`` and one for its complete test set, in the file lists' order, as Avalanche's CORe50
    generator (``create_generic_benchmark_from_filelists``) reads them. ``object_level=False``:
    the 10 categories instead of the 50 objects, mapped as Avalanche maps them (``nc``: the object's
    name in ``labels2names.pkl``; else object // 5).

    Raises :class:`UsageError` naming the file that is missing or malformed."""
    import torch

    train_lists, test_list = core50_file_lists(root, scenario, run)
    to_category = None if object_level else _core50_category(root, scenario, run)
    images = root / core50_images_folder(mini)

    def arrays(file_list: Path) -> ImageArrays:
        entries = _file_list(file_list)
        labels = [label if to_category is None else to_category(label, file_list) for _, label in entries]
        pixels = decode_images([images / path for path, _ in entries])
        return ImageArrays(pixels, torch.tensor(labels, dtype=torch.long))

    return [arrays(f) for f in train_lists], arrays(test_list)


def _file_list(path: Path) -> list[tuple[str, int]]:
    """A CORe50 file list: one ``<image path> <label>`` a line (Avalanche's ``default_flist_reader``)."""
    entries = []
    try:
        with open(path) as source:
            for number, line in enumerate(source, start=1):
                fields = line.split()
                if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                    raise UsageError(
                        f"{path}, line {number}: expected '<image path> <label>', got {line.strip()!r}"
                    )
                entries.append((fields[0], int(fields[1])))
    except OSError as error:
        raise UsageError(f"{path} is not readable ({type(error).__name__}: {error})") from None
    return entries


def _core50_category(root: Path, scenario: str, run: int) -> Any:
    """Object label -> category label, as Avalanche's CORe50Dataset maps them (its objlab2cat table)."""
    if scenario != "nc":
        return lambda label, _where: label // 5
    path = root / "labels2names.pkl"
    try:
        with open(path, "rb") as source:
            names = pickle.load(source)["nc"][run]
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, IndexError, TypeError) as error:
        raise UsageError(
            f"{path} is not CORe50's labels2names.pkl (no names for scenario nc, run {run}: "
            f"{type(error).__name__})"
        ) from None

    def category(label: int, where: Path) -> int:
        try:
            name = str(names[label])[:-1]  # the object's name: category plus its digit 1..5
        except (KeyError, IndexError, TypeError):
            name = ""
        if name not in CORE50_CATEGORIES:
            raise UsageError(f"{path} names no CORe50 category for label {label} of {where}")
        return CORE50_CATEGORIES.index(name)

    return category
