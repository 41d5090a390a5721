"""Benchmarks: each builder returns a :class:`Benchmark`, an Avalanche scenario plus the facts the
model and the reports need (input shape, classes, tasks), so nothing is typed twice in the config.

Every training sample carries ``origin_experience`` and ``origin_index`` (its position in that
experience) data attributes; they survive Avalanche's subset/concat, which is how the buffer
composition per experience of origin is counted exactly and how a checkpointed buffer is rebuilt.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from replay_cli.data.origin import ORIGIN_ATTRIBUTE, ORIGIN_INDEX_ATTRIBUTE


@dataclass
class Benchmark:
    name: str
    scenario: Any  # avalanche CLScenario
    input_shape: tuple[int, ...]
    num_classes: int

    @property
    def train_stream(self) -> Any:
        return self.scenario.train_stream

    @functools.cached_property
    def positions(self) -> Any:
        """Every training sample's position in the training stream concatenated (the fast path's
        buffers and loaders share it; see :mod:`replay_cli.data.positions`)."""
        from replay_cli.data.positions import SamplePositions

        return SamplePositions(self.train_stream)

    @property
    def test_stream(self) -> Any:
        return self.scenario.test_stream

    @property
    def n_experiences(self) -> int:
        return len(self.scenario.train_stream)

    @property
    def n_test_experiences(self) -> int:
        """Test experiences: as many as training experiences, or one complete test set (CORe50)."""
        return len(self.scenario.test_stream)

    @functools.cached_property
    def n_tasks(self) -> int:
        """Distinct task labels of the training stream (read once: several builders and every step ask)."""
        tasks = set()
        for experience in self.train_stream:
            tasks.update(int(t) for t in experience.dataset.targets_task_labels.uniques)
        return len(tasks)

    def classes_per_experience(self) -> list[list[int]]:
        return [sorted(int(c) for c in exp.dataset.targets.uniques) for exp in self.train_stream]

    def test_tasks_and_sizes(self) -> tuple[list[int], list[int]]:
        """Task label and number of samples of each test experience (for per-task accuracy)."""
        tasks = [int(min(exp.dataset.targets_task_labels.uniques)) for exp in self.test_stream]
        return tasks, [len(exp.dataset) for exp in self.test_stream]


def load_digits_tensors(test_size: float, split_seed: int) -> tuple[Any, Any, Any, Any]:
    """scikit-learn's digits as float images in [0, 1], split stratified and reproducibly."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.data / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    labels = torch.tensor(digits.target, dtype=torch.long)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_size, stratify=labels, random_state=split_seed
    )
    return x_train, y_train, x_test, y_test


def split_digits(
    name: str = "split_digits",
    n_experiences: int = 5,
    test_size: float = 0.3,
    split_seed: int = 0,
    class_order: list[int] | None = None,
) -> Benchmark:
    """Class-incremental split of the bundled digits (no download, ever); every class kept (see
    :func:`classes_per_experience`)."""
    validate_class_split(class_order, n_experiences, num_classes=10)
    order = list(class_order) if class_order is not None else list(range(10))
    scenario = class_split(*load_digits_tensors(test_size, split_seed), order, n_experiences)
    return Benchmark(name, with_origin_experience(scenario), input_shape=(1, 8, 8), num_classes=10)


def class_split(
    x_train: Any, y_train: Any, x_test: Any, y_test: Any, order: list[int], n_experiences: int
) -> Any:
    """Avalanche's class-incremental scenario of in-memory tensors, classes in ``order``, all kept."""
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark

    from replay_cli.data.datasets import ImageArrays, image_tensors

    return class_incremental_benchmark(
        {
            "train": image_tensors(ImageArrays(x_train, y_train)),
            "test": image_tensors(ImageArrays(x_test, y_test)),
        },
        class_order=order,
        num_classes_per_exp=classes_per_experience(len(order), n_experiences),
    )


def with_origin_experience(scenario: Any) -> Any:
    """Rebuild ``scenario`` so each training sample knows where it came from; experiences keep their
    task labels (multi-head models and per-task metrics read them), and streams other than train and
    test (a validation stream) are kept. Avalanche's public API only: ``update_data_attribute``,
    ``benchmark_from_datasets``, ``with_classes_timeline`` and ``with_task_labels``."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    def tag(dataset: Any, experience: int) -> Any:
        again = hasattr(dataset, ORIGIN_ATTRIBUTE)  # a rebuilt benchmark (validation split, first K)
        dataset = dataset.update_data_attribute(ORIGIN_ATTRIBUTE, [experience] * len(dataset))
        dataset = dataset.update_data_attribute(ORIGIN_INDEX_ATTRIBUTE, list(range(len(dataset))))
        # Avalanche 0.6's update_data_attribute keeps the old attribute object readable by name when
        # the attribute existed: a dataset made over the updated one reads only the new values
        return dataset.subset(list(range(len(dataset)))) if again else dataset

    tagged = [tag(exp.dataset, i) for i, exp in enumerate(scenario.train_stream)]
    kept = {
        name: [exp.dataset for exp in stream] for name, stream in scenario.streams.items() if name != "train"
    }
    rebuilt = with_task_labels(with_classes_timeline(benchmark_from_datasets(train=tagged, **kept)))
    for stream in rebuilt.streams.values():
        for experience in stream:  # the stream's own objects: a list, not a set, because
            # MultiHeadClassifier indexes its active-units mask with it
            experience.classes_in_this_experience = sorted(experience.classes_in_this_experience)
    return rebuilt


@dataclass(frozen=True)
class Classic:
    """One of Avalanche's classic benchmarks: its files and its default transforms (normalisation;
    CIFAR training: random crop with 4 pixels of padding and horizontal flip; Tiny ImageNet and
    CORe50 training: horizontal flip)."""

    files: str  # attribute of replay_cli.data.datasets
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    padding: int = 0  # training: random crop after zero padding of this many pixels
    flip: bool = False  # training: random horizontal flip
    pil: bool = False  # Avalanche's per-sample path sees PIL images (CIFAR, FMNIST), else tensors
    experiences: str = "split"  # split (classes), permuted or rotated (all classes, one copy each),
    # batches (CORe50: the dataset's own file lists)

    def transforms(self, normalize: bool = True) -> tuple[Any, Any]:
        """(train, eval) :class:`~replay_cli.data.transforms.ImageTransform`; ``normalize=False``
        keeps the inputs in [0, 1] (mean 0, std 1: ``ToTensor`` alone, as mammoth's seq-mnist)."""
        from replay_cli.data.transforms import ImageTransform

        mean, std = (self.mean, self.std) if normalize else ((0.0,) * len(self.mean), (1.0,) * len(self.std))
        train = ImageTransform(mean, std, padding=self.padding, flip=self.flip)
        return train, ImageTransform(mean, std)

    def served(self, input_shape: tuple[int, ...], batched: bool, normalize: bool) -> tuple[Any, Any, Any]:
        """(wrap, train transform, eval transform): ``wrap`` makes an
        :class:`~replay_cli.data.datasets.ImageArrays` the dataset Avalanche's generators are given.
        ``batched``: uint8 tensors with :class:`ImageTransform` (run per minibatch on the fast path);
        else samples served one at a time as Avalanche's own datasets serve them, with the
        torchvision pipeline the transform stands for."""
        from replay_cli.data import datasets
        from replay_cli.data.transforms import reference_pipeline

        train_transform, eval_transform = self.transforms(normalize)
        if batched:
            return datasets.image_tensors, train_transform, eval_transform
        return (
            functools.partial(datasets.ImageSamples, pil=self.pil),
            reference_pipeline(train_transform, input_shape[-1], self.pil),
            reference_pipeline(eval_transform, input_shape[-1], self.pil),
        )


_MNIST_NORM = ((0.1307,), (0.3081,))
_CIFAR10_NORM = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
_CIFAR100_NORM = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
CLASSIC = {
    "SplitMNIST": Classic("MNIST", 10, *_MNIST_NORM),
    "PermutedMNIST": Classic("MNIST", 10, *_MNIST_NORM, experiences="permuted"),
    "RotatedMNIST": Classic("MNIST", 10, *_MNIST_NORM, experiences="rotated"),
    "SplitFMNIST": Classic("FASHION_MNIST", 10, (0.2860,), (0.3530,), pil=True),
    "SplitCIFAR10": Classic("CIFAR10", 10, *_CIFAR10_NORM, padding=4, flip=True, pil=True),
    "SplitCIFAR100": Classic("CIFAR100", 100, *_CIFAR100_NORM, padding=4, flip=True, pil=True),
    # Avalanche's SplitTinyImageNet normalises with CIFAR-10's constants
    "SplitTinyImageNet": Classic("TINY_IMAGENET", 200, *_CIFAR10_NORM, flip=True, pil=True),
}


def classic(
    name: str,
    generator: str,
    n_experiences: int,
    seed: int | None = None,
    return_task_id: bool = False,
    dataset_root: str | None = None,
    download: bool = True,
    fixed_class_order: list[int] | None = None,
    rotations_list: list[int] | None = None,
    batched_transforms: bool = True,
    normalize: bool = True,
) -> Benchmark:
    """One of Avalanche's classic benchmarks, built by Avalanche's ``nc_benchmark`` as its own
    generator builds it (same class order, permutations and rotations for the same seed), from
    files read once into uint8 tensors.

    ``batched_transforms``: the samples are those uint8 tensors and the transforms run on whole
    minibatches (:mod:`replay_cli.data.transforms`); else Avalanche's per-sample path with
    torchvision's transforms, as Avalanche's generator gives it. Class splits that do not divide
    the classes evenly give the first experiences one class more (see :func:`classes_per_experience`).
    ``normalize=False``: inputs in [0, 1], no mean/std normalisation (as mammoth's seq-mnist).
    Raises :class:`ConfigError` for a class order that is not a permutation or more experiences
    than classes, :class:`UsageError` for missing files."""
    from avalanche.benchmarks import nc_benchmark

    from replay_cli.data import datasets
    from replay_cli.errors import ConfigError

    spec = CLASSIC[generator]
    if spec.experiences == "split":
        validate_class_split(fixed_class_order, n_experiences, spec.num_classes, key="fixed_class_order")
    if rotations_list is not None and (
        len(rotations_list) != n_experiences or not all(-180 <= r <= 180 for r in rotations_list)
    ):
        allowed = f"{n_experiences} angles in [-180, 180] (one per experience) or null"
        raise ConfigError("benchmark.rotations_list", list(rotations_list), allowed)
    train, test = datasets.load(getattr(datasets, spec.files), dataset_root, download)
    input_shape = tuple(train.images.shape[1:])
    wrap, train_transform, eval_transform = spec.served(input_shape, batched_transforms, normalize)
    common = {
        "task_labels": return_task_id,
        "train_transform": train_transform,
        "eval_transform": eval_transform,
    }
    if spec.experiences == "split":
        counts = classes_per_experience(spec.num_classes, n_experiences)
        scenario = nc_benchmark(
            wrap(train),
            wrap(test),
            n_experiences,
            seed=seed,
            fixed_class_order=list(fixed_class_order) if fixed_class_order is not None else None,
            per_exp_classes={i: c for i, c in enumerate(counts) if c != counts[-1]} or None,
            **common,
        )
    else:
        views = transformed_copies(spec.experiences, n_experiences, seed, rotations_list)
        scenario = nc_benchmark(
            [wrap(view(train)) for view in views],
            [wrap(view(test)) for view in views],
            n_experiences,
            shuffle=False,
            class_ids_from_zero_in_each_exp=True,
            one_dataset_per_exp=True,
            **common,
        )
    return Benchmark(name, with_origin_experience(scenario), input_shape, spec.num_classes)


_IMAGENET_NORM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# Avalanche's CORe50 transforms: ImageNet's normalisation, random horizontal flip when training
CORE50 = Classic("", 50, *_IMAGENET_NORM, flip=True, pil=True, experiences="batches")


def core50(
    name: str = "core50",
    scenario: str = "nicv2_391",
    run: int = 0,
    object_level: bool = True,
    mini: bool = False,
    dataset_root: str | None = None,
    download: bool = True,
    batched_transforms: bool = True,
    normalize: bool = True,
) -> Benchmark:
    """Avalanche's CORe50 benchmark (Lomonaco & Maltoni 2017, "CORe50: a New Dataset and
    Benchmark for Continuous Object Recognition"), built as Avalanche's ``CORe50`` generator builds
    it: one training experience per batch file list of ``scenario``'s ``run`` (``ni``: 8 batches of
    new instances, ``nc``: 9 of new classes, ``nic`` / ``nicv2_79``: 79, ``nicv2_196``,
    ``nicv2_391``), in the lists' order, task label 0, and ONE test experience holding the complete
    test set (sessions 3, 7 and 10). 50 object classes, or 10 categories when
    ``object_level=False``; 128x128 RGB images, 32x32 when ``mini``. Images are read once into
    uint8 tensors (``batched_transforms``: served by the fast path; else per sample, as Avalanche
    serves them); ``normalize=False``: inputs in [0, 1].

    Raises :class:`ConfigError` for an unknown scenario or a run outside 0..9, :class:`UsageError`
    for missing or malformed files."""
    from avalanche.benchmarks.scenarios.deprecated.generic_benchmark_creation import (
        create_multi_dataset_generic_benchmark,
    )

    from replay_cli.data import datasets
    from replay_cli.data.image_files import CORE50_SCENARIOS
    from replay_cli.errors import ConfigError

    if scenario not in CORE50_SCENARIOS:
        raise ConfigError("benchmark.scenario", scenario, f"one of: {', '.join(CORE50_SCENARIOS)}")
    if not (isinstance(run, int) and 0 <= run <= 9):
        raise ConfigError("benchmark.run", run, "an integer in [0, 9] (CORe50's ten class orders)")
    train, test = datasets.load_core50(dataset_root, download, scenario, run, mini, object_level)
    input_shape = tuple(test.images.shape[1:])
    wrap, train_transform, eval_transform = CORE50.served(input_shape, batched_transforms, normalize)
    built = create_multi_dataset_generic_benchmark(
        [wrap(batch) for batch in train],
        [wrap(test)],
        complete_test_set_only=True,
        train_transform=train_transform,
        eval_transform=eval_transform,
    )
    return Benchmark(name, with_origin_experience(built), input_shape, 50 if object_level else 10)


def classes_per_experience(num_classes: int, n_experiences: int) -> list[int]:
    """How many classes each experience gets: all of them, as evenly as possible, the first
    ``num_classes % n_experiences`` experiences one more (10 classes in 4: [3, 3, 2, 2])."""
    base, extra = divmod(num_classes, n_experiences)
    return [base + 1] * extra + [base] * (n_experiences - extra)


def transformed_copies(kind: str, n_experiences: int, seed: int | None, rotations: list[int] | None) -> list:
    """One function per experience mapping :class:`~replay_cli.data.datasets.ImageArrays` to its
    permuted or rotated copy, drawn as Avalanche's PermutedMNIST / RotatedMNIST draw them for
    ``seed`` (numpy's RandomState: ``permutation(784)`` or ``randint(-180, 181)`` per experience).
    Computed once on the uint8 images: the pixel permutation and the nearest-neighbour rotation
    only move pixel values, so they commute with the scaling to [0, 1]."""
    import numpy as np
    import torch
    from torchvision.transforms import functional as F

    from replay_cli.data.datasets import ImageArrays

    rng = np.random.RandomState(seed)
    views = []
    for experience in range(n_experiences):
        if kind == "permuted":
            order = torch.from_numpy(rng.permutation(784)).long()

            def view(a: Any, order: Any = order) -> ImageArrays:
                return ImageArrays(a.images.flatten(1)[:, order].view_as(a.images), a.targets)

        else:
            angle = rotations[experience] if rotations is not None else int(rng.randint(-180, 181))

            def view(a: Any, angle: int = angle) -> ImageArrays:
                return ImageArrays(F.rotate(a.images, angle, fill=[0.0]), a.targets)

        views.append(view)
    return views


def synthetic(
    name: str = "synthetic",
    input_shape: tuple[int, ...] = (1, 28, 28),
    num_classes: int = 10,
    train_samples: int = 60_000,
    test_samples: int = 10_000,
    n_experiences: int = 5,
    seed: int = 0,
) -> Benchmark:
    """Class-incremental random tensors of any shape and size, for throughput at any scale without
    data. ``seed`` fixes the data alone; the run's seed still drives training."""
    validate_class_split(None, n_experiences, num_classes)
    tensors = synthetic_tensors(input_shape, num_classes, train_samples, test_samples, seed)
    scenario = class_split(*tensors, list(range(num_classes)), n_experiences)
    return Benchmark(
        name, with_origin_experience(scenario), input_shape=tuple(input_shape), num_classes=num_classes
    )


def synthetic_tensors(
    input_shape: tuple[int, ...], num_classes: int, train_samples: int, test_samples: int, seed: int
) -> tuple[Any, Any, Any, Any]:
    """Each class a random prototype plus noise: learnable, so accuracies stay meaningful."""
    import torch

    shape = tuple(input_shape)
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.rand((num_classes, *shape), generator=generator)

    def sample(size: int) -> tuple[Any, Any]:
        labels = torch.randint(num_classes, (size,), generator=generator)
        noise = torch.randn((size, *shape), generator=generator).mul_(0.5)
        return prototypes[labels].add_(noise), labels

    return *sample(train_samples), *sample(test_samples)


def check_class_split(node: Any) -> None:
    """The class-split checks of a benchmark config node, made from the config alone (no import of
    torch or Avalanche) so that a bad split is refused before anything is built or printed; the
    builders above check the same when called directly.

    Raises :class:`ConfigError` for a class order that is not a permutation of the benchmark's
    classes or more experiences than classes."""
    builder = str(node.get("_target_", "")).rsplit(".", 1)[-1]
    n_experiences = node.get("n_experiences")
    if builder == "split_digits":
        validate_class_split(node.get("class_order"), n_experiences, num_classes=10)
    elif builder == "synthetic":
        validate_class_split(None, n_experiences, node.get("num_classes"))
    elif builder == "classic" and node.get("generator") in CLASSIC:
        spec = CLASSIC[node.get("generator")]
        if spec.experiences == "split":
            order = node.get("fixed_class_order")
            validate_class_split(order, n_experiences, spec.num_classes, key="fixed_class_order")


def validate_class_split(
    class_order: list[int] | None,
    n_experiences: int,
    num_classes: int,
    key: str = "class_order",
) -> None:
    """For class-incremental builders: a class order is a permutation of the classes, and every
    experience gets at least one class (uneven splits keep every class)."""
    from replay_cli.errors import ConfigError

    if class_order is not None and sorted(class_order) != list(range(num_classes)):
        raise ConfigError(
            f"benchmark.{key}", list(class_order), f"a permutation of 0..{num_classes - 1} or null"
        )
    if n_experiences > num_classes:
        raise ConfigError("benchmark.n_experiences", n_experiences, f"an integer in [1, {num_classes}]")
