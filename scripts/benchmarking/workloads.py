"""The benchmark's workloads: their data (generated files in the real on-disk formats, tensors),
the shared settings, the model, and the Avalanche scenario a researcher would write for them."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# Every workload: MLP with one 400-unit hidden layer (or --model), SGD lr 0.1, class-balanced buffer
# of 500, minibatches of 32 new + 32 replayed samples, evaluation in batches of 256, seed 0, 5
# experiences of 2 classes in the order 0..9.
_IN_ORDER = "benchmark.fixed_class_order=[0,1,2,3,4,5,6,7,8,9]"
WORKLOADS = {
    "synthetic": {"epochs": 1, "overrides": ["benchmark=synthetic"]},  # 60k/10k MNIST-shaped, 5 exps
    "split_digits": {"epochs": 5, "overrides": ["benchmark=split_digits"]},
    "split_cifar10": {
        "epochs": 1,
        "overrides": ["benchmark=split_cifar10", _IN_ORDER, "benchmark.download=false"],
        "files": ("CIFAR10", 5000, 1000),
    },
    "split_mnist": {
        "epochs": 1,
        "overrides": ["benchmark=split_mnist", _IN_ORDER, "benchmark.download=false"],
        "files": ("MNIST", 6000, 1000),
    },
}
MODELS = {"mlp": ("MLP", {"hidden_sizes": [400]}), "cnn": ("CNN", {}), "resnet18": ("ResNet18", {})}
SETTINGS = {
    "mem_size": 500,
    "batch_size": 32,
    "batch_size_mem": 32,
    "eval_mb_size": 256,
    "lr": 0.1,
    "seed": 0,
}
# --protocol online: continual-learning-baselines' online replay (one pass, mini-experiences of 10)
ONLINE = {**SETTINGS, "mem_size": 1000, "batch_size": 10, "batch_size_mem": 10, "experience_size": 10}


def settings(protocol: str) -> dict:
    return ONLINE if protocol == "online" else SETTINGS


def epochs(workload: str, protocol: str) -> int:
    return 1 if protocol == "online" else WORKLOADS[workload]["epochs"]


def load_tensors(workload: str, data_root: str = ""):  # type: ignore[no-untyped-def]
    """(x_train, y_train, x_test, y_test), input shape; uint8 images for the file workloads."""
    from replay_cli.data import datasets
    from replay_cli.data.benchmarks import load_digits_tensors, synthetic_tensors

    if workload == "synthetic":
        return synthetic_tensors((1, 28, 28), 10, 60_000, 10_000, seed=0), (1, 28, 28)
    if workload == "split_digits":
        return load_digits_tensors(test_size=0.3, split_seed=0), (1, 8, 8)
    files = getattr(datasets, WORKLOADS[workload]["files"][0])
    train, test = datasets.load(files, data_root, download=False)
    return (train.images, train.targets, test.images, test.targets), tuple(train.images.shape[1:])


def build_model(name: str, shape, num_classes: int = 10):  # type: ignore[no-untyped-def]
    from replay_cli.models import networks

    class_name, kwargs = MODELS[name]
    return getattr(networks, class_name)(shape, num_classes, **kwargs)


def image_transforms(workload: str):  # type: ignore[no-untyped-def]
    """(train, eval) batched transforms of a file workload (the ones replay-run uses); None else."""
    from replay_cli.data.benchmarks import CLASSIC

    if "files" not in WORKLOADS[workload]:
        return None, None
    return CLASSIC["SplitCIFAR10" if workload == "split_cifar10" else "SplitMNIST"].transforms()


def avalanche_scenario(workload: str, data_root: str):  # type: ignore[no-untyped-def]
    """What a researcher would write: Avalanche's benchmark generators with torchvision's per-sample
    transforms (Avalanche's defaults) for the file workloads, tensors for the others."""
    from avalanche.benchmarks import nc_benchmark
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset

    from replay_cli.data import datasets

    if "files" not in WORKLOADS[workload]:
        (x_train, y_train, x_test, y_test), shape = load_tensors(workload)
        scenario = class_incremental_benchmark(
            {"train": tensor_dataset(x_train, y_train), "test": tensor_dataset(x_test, y_test)},
            class_order=list(range(10)),
            num_experiences=5,
        )
        return scenario, shape
    from torchvision import transforms as T

    cifar = workload == "split_cifar10"
    train, test = datasets.load(getattr(datasets, WORKLOADS[workload]["files"][0]), data_root, download=False)
    norm = T.Normalize(
        *((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)) if cifar else ((0.1307,), (0.3081,))
    )
    augment = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if cifar else []
    to_tensor = [T.ToTensor()] if cifar else []
    scenario = nc_benchmark(
        datasets.ImageSamples(train, pil=cifar),
        datasets.ImageSamples(test, pil=cifar),
        5,
        task_labels=False,
        fixed_class_order=list(range(10)),
        train_transform=T.Compose([*augment, *to_tensor, norm]),
        eval_transform=T.Compose([*to_tensor, norm]),
    )
    return scenario, tuple(train.images.shape[1:])


def write_files(workload: str, root: Path, per_class: int | None) -> None:
    """Full-size files in the real format (or ``per_class`` images per class): each class a random
    prototype image, each sample that prototype plus noise, so a model can learn the classes."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from tests.tiny_datasets import write_cifar10_arrays, write_idx_arrays

    name, train_per_class, test_per_class = WORKLOADS[workload]["files"]
    rng = np.random.default_rng(0)
    shape = (3, 32, 32) if name == "CIFAR10" else (28, 28)
    prototypes = rng.integers(0, 256, size=(10, *shape))

    def split(per: int) -> tuple:
        labels = rng.permutation(np.repeat(np.arange(10), per)).astype(np.uint8)
        noise = rng.normal(0, 48, size=(len(labels), *shape))
        return np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8), labels

    train = split(per_class or train_per_class)
    test = split(max(1, (per_class or train_per_class) * test_per_class // train_per_class))
    if name == "CIFAR10":
        write_cifar10_arrays(root, train, test)
    else:
        write_idx_arrays(root / "MNIST" / "raw", train, test)
