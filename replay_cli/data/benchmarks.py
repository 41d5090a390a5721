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

ORIGIN_ATTRIBUTE = "origin_experience"
ORIGIN_INDEX_ATTRIBUTE = "origin_index"


@dataclass
class Benchmark:
    name: str
    scenario: Any  # avalanche CLScenario
    input_shape: tuple[int, ...]
    num_classes: int

    @property
    def train_stream(self) -> Any:
        return self.scenario.train_stream

    @property
    def test_stream(self) -> Any:
        return self.scenario.test_stream

    @property
    def n_experiences(self) -> int:
        return len(self.scenario.train_stream)

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
    """Class-incremental split of the bundled digits (no download, ever)."""
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset

    from replay_cli.config.validation import validate_class_split

    validate_class_split(class_order, n_experiences, num_classes=10)
    x_train, y_train, x_test, y_test = load_digits_tensors(test_size, split_seed)
    scenario = class_incremental_benchmark(
        {"train": tensor_dataset(x_train, y_train), "test": tensor_dataset(x_test, y_test)},
        class_order=list(class_order) if class_order is not None else list(range(10)),
        num_experiences=n_experiences,
    )
    return Benchmark(name, with_origin_experience(scenario), input_shape=(1, 8, 8), num_classes=10)


def with_origin_experience(scenario: Any) -> Any:
    """Rebuild ``scenario`` so each training sample knows where it came from; experiences keep their
    task labels (multi-head models and per-task metrics read them)."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.benchmarks.scenarios.task_aware import _decorate_generic, with_task_labels
    from avalanche.benchmarks.utils.data_attribute import DataAttribute

    def tag(dataset: Any, experience: int) -> Any:
        origin = DataAttribute([experience] * len(dataset), ORIGIN_ATTRIBUTE)
        position = DataAttribute(list(range(len(dataset))), ORIGIN_INDEX_ATTRIBUTE)
        return dataset.__class__([dataset], data_attributes=[origin, position])

    tagged = [tag(exp.dataset, i) for i, exp in enumerate(scenario.train_stream)]
    test = [exp.dataset for exp in scenario.test_stream]

    def task_aware(experience: Any) -> Any:
        experience = with_task_labels(experience)
        # a list, not a set: MultiHeadClassifier indexes its active-units mask with it
        experience.classes_in_this_experience = sorted(experience.classes_in_this_experience)
        return experience

    timeline = with_classes_timeline(benchmark_from_datasets(train=tagged, test=test))
    return _decorate_generic(timeline, task_aware)


@dataclass(frozen=True)
class Classic:
    """An Avalanche classic generator: its module, the data loader it calls, and what it produces."""

    module: str
    data_loader: str  # the module's name for its (train, test) loader, replaced by ours
    dataset: str  # attribute of replay_cli.data.datasets
    input_shape: tuple[int, ...]
    num_classes: int
    splits_classes: bool  # class splits (Split*) vs. one transformed copy per experience


_MNIST = ("avalanche.benchmarks.classic.cmnist", "get_mnist_dataset", "MNIST", (1, 28, 28), 10)
CLASSIC = {
    "SplitMNIST": Classic(*_MNIST, splits_classes=True),
    "PermutedMNIST": Classic(*_MNIST, splits_classes=False),
    "RotatedMNIST": Classic(*_MNIST, splits_classes=False),
    "SplitFMNIST": Classic(
        "avalanche.benchmarks.classic.cfashion_mnist",
        "get_fmnist_dataset",
        "FASHION_MNIST",
        (1, 28, 28),
        10,
        True,
    ),
    "SplitCIFAR10": Classic(
        "avalanche.benchmarks.classic.ccifar10", "get_cifar10_dataset", "CIFAR10", (3, 32, 32), 10, True
    ),
    "SplitCIFAR100": Classic(
        "avalanche.benchmarks.classic.ccifar100", "get_cifar100_dataset", "CIFAR100", (3, 32, 32), 100, True
    ),
}


def classic(
    name: str,
    generator: str,
    n_experiences: int,
    dataset_root: str | None = None,
    download: bool = True,
    fixed_class_order: list[int] | None = None,
    **options: Any,
) -> Benchmark:
    """One of Avalanche's classic benchmarks, with its own default transforms (normalisation; random
    crop and flip for CIFAR training). The generator is Avalanche's; only the data loading is ours,
    so that missing files give one line and nothing is fetched when ``download`` is false."""
    import importlib
    from unittest import mock

    from replay_cli.config.validation import validate_class_split
    from replay_cli.data import datasets

    spec = CLASSIC[generator]
    if spec.splits_classes:
        validate_class_split(
            fixed_class_order, n_experiences, spec.num_classes, key="fixed_class_order", even=True
        )
        options["fixed_class_order"] = list(fixed_class_order) if fixed_class_order is not None else None
    train, test = datasets.load(getattr(datasets, spec.dataset), dataset_root, download)
    module = importlib.import_module(spec.module)
    with mock.patch.object(module, spec.data_loader, lambda _root: (train, test)):
        scenario = getattr(module, generator)(n_experiences, **options)
    return Benchmark(name, with_origin_experience(scenario), spec.input_shape, spec.num_classes)


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
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset

    from replay_cli.config.validation import validate_class_split

    validate_class_split(None, n_experiences, num_classes)
    x_train, y_train, x_test, y_test = synthetic_tensors(
        input_shape, num_classes, train_samples, test_samples, seed
    )
    scenario = class_incremental_benchmark(
        {"train": tensor_dataset(x_train, y_train), "test": tensor_dataset(x_test, y_test)},
        class_order=list(range(num_classes)),
        num_experiences=n_experiences,
    )
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
