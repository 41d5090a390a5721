"""Benchmarks: each builder returns a :class:`Benchmark`, an Avalanche scenario plus the facts the
model and the reports need (input shape, classes, tasks), so nothing is typed twice in the config.

Every training sample carries an ``origin_experience`` data attribute; it survives Avalanche's
subset/concat, which is how the buffer composition per experience of origin is counted exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ORIGIN_ATTRIBUTE = "origin_experience"


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

    @property
    def n_tasks(self) -> int:
        tasks = set()
        for experience in self.train_stream:
            tasks.update(int(t) for t in experience.dataset.targets_task_labels.uniques)
        return len(tasks)

    def classes_per_experience(self) -> list[list[int]]:
        return [sorted(int(c) for c in exp.dataset.targets.uniques) for exp in self.train_stream]


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

    from replay_cli.validation import validate_class_split

    validate_class_split(class_order, n_experiences, num_classes=10)
    x_train, y_train, x_test, y_test = load_digits_tensors(test_size, split_seed)
    scenario = class_incremental_benchmark(
        {"train": tensor_dataset(x_train, y_train), "test": tensor_dataset(x_test, y_test)},
        class_order=list(class_order) if class_order is not None else list(range(10)),
        num_experiences=n_experiences,
    )
    return Benchmark(name, with_origin_experience(scenario), input_shape=(1, 8, 8), num_classes=10)


def with_origin_experience(scenario: Any) -> Any:
    """Rebuild ``scenario`` so each training sample knows the experience it came from."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.benchmarks.utils.data_attribute import DataAttribute

    tagged = [
        exp.dataset.__class__(
            [exp.dataset], data_attributes=[DataAttribute([i] * len(exp.dataset), ORIGIN_ATTRIBUTE)]
        )
        for i, exp in enumerate(scenario.train_stream)
    ]
    test = [exp.dataset for exp in scenario.test_stream]
    return with_classes_timeline(benchmark_from_datasets(train=tagged, test=test))


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

    from replay_cli.validation import validate_class_split

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
