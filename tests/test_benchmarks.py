"""The classic benchmarks on tiny datasets in their real on-disk formats: end to end through the
console script (class- and task-incremental), offline, and the one-line error when data is missing."""

import json
from pathlib import Path

import pytest

from replay_cli.errors import UsageError
from tests.conftest import compose_config, replay_run
from tests.tiny_datasets import WRITERS, write_idx_dataset

CLASSIC = sorted(WRITERS)
SPLITS = [name for name in CLASSIC if name.startswith("split_")]
SMALL_RUN = [
    "strategy.train_epochs=1",
    "mem_size=20",
    "batch_size_mem=8",
    "print_config=false",
    "progress=false",
]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """One folder holding all four datasets, as Avalanche's data dir would."""
    root = tmp_path_factory.mktemp("data")
    for write in WRITERS.values():
        write(root)
    return root


def multirun_results(cwd: Path) -> dict[str, dict]:
    found = {}
    for path in cwd.glob("outputs/multirun/*/*/*/results.json"):
        results = json.loads(path.read_text())
        found[results["benchmark"]["name"]] = results
    return found


@pytest.mark.slow
def test_every_benchmark_runs_end_to_end_class_incremental(data_root, tmp_path):
    result = replay_run(
        "-m",
        f"benchmark={','.join(CLASSIC)}",
        # ++: a multirun composes its sweep config from the default benchmark, which lacks these keys
        f"++benchmark.dataset_root={data_root}",
        "benchmark.n_experiences=2",
        "++benchmark.download=false",
        *SMALL_RUN,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    runs = multirun_results(tmp_path)
    assert sorted(runs) == CLASSIC
    for name, results in runs.items():
        assert results["status"] == "completed", name
        assert len(results["accuracy_matrix"]) == 2, name
        assert results["benchmark"]["n_tasks"] == 1, name
        assert list(results["per_task_accuracy"][-1]) == ["0"], name
        assert 0.0 <= results["final_average_accuracy"] <= 1.0, name
        assert results["buffer_composition"][-1]["size"] == 20, name
    assert runs["split_cifar100"]["benchmark"]["num_classes"] == 100
    assert [len(c) for c in runs["split_cifar100"]["benchmark"]["classes_per_experience"]] == [50, 50]
    assert runs["permuted_mnist"]["benchmark"]["classes_per_experience"] == [list(range(10))] * 2


@pytest.mark.slow
def test_split_benchmarks_run_task_incremental_with_a_head_per_task(data_root, tmp_path):
    result = replay_run(
        "-m",
        f"benchmark={','.join(SPLITS)}",
        f"++benchmark.dataset_root={data_root}",
        "benchmark.n_experiences=5",
        "++benchmark.return_task_id=true",
        "task_balanced_dataloader=true",
        *SMALL_RUN,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    runs = multirun_results(tmp_path)
    assert sorted(runs) == SPLITS
    for name, results in runs.items():
        assert results["status"] == "completed", name
        assert results["benchmark"]["n_tasks"] == 5, name
        per_task = results["per_task_accuracy"]
        assert [list(step) for step in per_task] == [["0", "1", "2", "3", "4"]] * 5, name
        # one test experience per task: per-task accuracy is that experience's accuracy
        assert [per_task[-1][str(t)] for t in range(5)] == pytest.approx(results["accuracy_matrix"][-1])
        assert sorted(results["buffer_composition"][-1]["per_task"]) == ["0", "1", "2", "3", "4"], name
    # the tiny MNIST is easy: with a head per task (two classes each) it is all but solved
    assert runs["split_mnist"]["final_average_accuracy"] >= 0.8


@pytest.mark.parametrize("name", CLASSIC)
def test_each_benchmark_class_incremental(name, data_root, run_in_process):
    results = run_in_process(
        f"benchmark={name}", f"benchmark.dataset_root={data_root}", "benchmark.n_experiences=2", *SMALL_RUN
    )
    assert results["status"] == "completed"
    assert len(results["accuracy_matrix"]) == 2
    assert results["benchmark"]["n_tasks"] == 1
    assert list(results["per_task_accuracy"][-1]) == ["0"]
    assert results["buffer_composition"][-1]["size"] == 20


@pytest.mark.parametrize("name", SPLITS)
def test_each_split_benchmark_task_incremental(name, data_root, run_in_process):
    results = run_in_process(
        f"benchmark={name}",
        f"benchmark.dataset_root={data_root}",
        "benchmark.n_experiences=5",
        "benchmark.return_task_id=true",
        *SMALL_RUN,
    )
    assert results["benchmark"]["n_tasks"] == 5
    assert [list(step) for step in results["per_task_accuracy"]] == [["0", "1", "2", "3", "4"]] * 5
    # one test experience per task: the per-task accuracy is that experience's accuracy
    final = results["per_task_accuracy"][-1]
    assert [final[str(t)] for t in range(5)] == pytest.approx(results["accuracy_matrix"][-1])
    assert sorted(results["buffer_composition"][-1]["per_task"]) == ["0", "1", "2", "3", "4"]


def test_task_balanced_replay_needs_one_slot_per_task_the_buffer_holds(data_root, run_in_process, tmp_path):
    """While the last of 5 tasks trains, the buffer holds 4: batch_size_mem=4 is what Avalanche needs."""
    from replay_cli.errors import ConfigError

    task_il = [
        "benchmark=split_mnist",
        f"benchmark.dataset_root={data_root}",
        "benchmark.return_task_id=true",
        "task_balanced_dataloader=true",
        *(o for o in SMALL_RUN if not o.startswith("batch_size_mem")),
    ]
    results = run_in_process(*task_il, "batch_size_mem=4")
    assert len(results["accuracy_matrix"]) == 5
    assert sorted(results["buffer_composition"][-1]["per_task"]) == ["0", "1", "2", "3", "4"]
    with pytest.raises(ConfigError, match=r"batch_size_mem=3 is invalid: expected an integer >= 4"):
        run_in_process(*task_il, "batch_size_mem=3", run_dir=tmp_path / "refused")


@pytest.mark.slow
def test_console_script_runs_a_task_incremental_benchmark(data_root, tmp_path):
    result = replay_run(
        "benchmark=split_mnist",
        f"benchmark.dataset_root={data_root}",
        "benchmark.return_task_id=true",
        "benchmark.download=false",
        *SMALL_RUN,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(next(tmp_path.glob("outputs/runs/*/*/results.json")).read_text())
    assert results["status"] == "completed"
    assert results["config"]["model"]["head"] == "auto"
    assert results["final_average_accuracy"] >= 0.8  # a head per task: two classes each, easy


def test_missing_data_is_one_line_naming_files_and_folder(tmp_path):
    empty = tmp_path / "nothing-here"
    result = replay_run(
        "benchmark=split_cifar10", f"benchmark.dataset_root={empty}", "benchmark.download=false", cwd=tmp_path
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("replay-run: error: CIFAR-10 files not found: expected data_batch_1, ")
    assert f"in {empty / 'cifar-10-batches-py'} (benchmark.download=false)" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not list(tmp_path.glob("outputs/runs/*/*/results.json")), "no half-written run"


def test_failed_download_is_the_same_one_line(tmp_path, monkeypatch):
    """No network here: torchvision's download fails and the user sees which files to provide."""
    from torchvision.datasets import mnist

    from replay_cli.data import datasets

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(mnist, "download_and_extract_archive", offline)
    with pytest.raises(UsageError, match=r"MNIST files not found: expected train-images-idx3-ubyte.gz, "):
        datasets.load(datasets.MNIST, str(tmp_path), download=True)


def test_gzipped_idx_files_are_extracted_once_and_read(tmp_path):
    from replay_cli.data import datasets

    raw = write_idx_dataset(tmp_path / "MNIST" / "raw", per_class=2, test_per_class=1)
    train, test = datasets.load(datasets.MNIST, str(tmp_path), download=False)
    assert (tuple(train.images.shape), tuple(test.images.shape)) == ((20, 1, 28, 28), (10, 1, 28, 28))
    assert train.images.dtype.is_floating_point is False
    assert (raw / "train-images-idx3-ubyte").is_file()
    assert sorted(int(y) for y in train.targets) == sorted(list(range(10)) * 2)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["benchmark.n_experiences=11"],
            "benchmark.n_experiences=11 is invalid: expected an integer in [1, 10]",
        ),
        (["benchmark.rotations_list=[0,90]"], "benchmark.rotations_list=[0, 90] is invalid"),
        (["benchmark.fixed_class_order=[0,1]"], "benchmark.fixed_class_order=[0, 1] is invalid"),
    ],
)
def test_class_split_is_checked_before_loading(overrides, message):
    from hydra.errors import InstantiationException

    from replay_cli.errors import ConfigError, one_line
    from replay_cli.training.builders import build_benchmark

    benchmark = "rotated_mnist" if "rotations" in overrides[0] else "split_mnist"
    cfg = compose_config(f"benchmark={benchmark}", "benchmark.dataset_root=/does/not/exist", *overrides)
    with pytest.raises(InstantiationException) as error:  # Hydra's, around the builder's own error
        build_benchmark(cfg)
    assert isinstance(error.value.__cause__, ConfigError)
    assert message in one_line(error.value)


@pytest.mark.parametrize(
    ("head", "n_tasks", "multi"), [("auto", 1, False), ("auto", 5, True), ("multi", 1, True)]
)
def test_multi_head_is_chosen_by_task_labels_or_config(head, n_tasks, multi):
    from replay_cli.models.networks import uses_multi_head

    assert uses_multi_head(head, n_tasks) is multi
    assert uses_multi_head("single", 5) is False


def test_multi_head_model_keeps_the_features_layer():
    import torch

    from replay_cli.models.networks import MLP, MultiHead

    model = MultiHead(MLP((1, 28, 28), 10), num_classes=10)
    assert "features" in dict(model.named_modules())
    out = model(torch.zeros(4, 1, 28, 28), torch.tensor([0, 0, 0, 0]))
    assert out.shape == (4, 10)


def test_synthetic_is_class_incremental_seeded_and_tagged():
    """The synthetic benchmark: seeded, class-incremental, tagged with each sample's experience of origin."""
    import torch

    from replay_cli.data.benchmarks import synthetic
    from replay_cli.data.origin import ORIGIN_ATTRIBUTE

    bench = synthetic(
        input_shape=(3, 4, 4), num_classes=6, train_samples=600, test_samples=120, n_experiences=3
    )
    assert (bench.input_shape, bench.num_classes, bench.n_experiences, bench.n_tasks) == ((3, 4, 4), 6, 3, 1)
    assert bench.classes_per_experience() == [[0, 1], [2, 3], [4, 5]]
    assert sum(len(e.dataset) for e in bench.train_stream) == 600
    assert sum(len(e.dataset) for e in bench.test_stream) == 120
    for i, experience in enumerate(bench.train_stream):
        assert set(getattr(experience.dataset, ORIGIN_ATTRIBUTE)) == {i}
    x, y, _ = bench.train_stream[0].dataset[0]
    assert x.shape == (3, 4, 4) and y in (0, 1)
    again = synthetic(
        input_shape=(3, 4, 4), num_classes=6, train_samples=600, test_samples=120, n_experiences=3
    )
    other = synthetic(
        input_shape=(3, 4, 4), num_classes=6, train_samples=600, test_samples=120, n_experiences=3, seed=1
    )
    assert torch.equal(again.train_stream[0].dataset[0][0], x)
    assert not torch.equal(other.train_stream[0].dataset[0][0], x)


@pytest.mark.parametrize(
    ("benchmark", "num_classes", "n_experiences"),
    [
        ("split_digits", 10, 4),
        ("split_digits", 10, 3),
        ("synthetic", 10, 7),
        ("split_mnist", 10, 4),
        ("split_cifar10", 10, 3),
        ("split_fmnist", 10, 6),
        ("split_cifar100", 100, 8),
    ],
)
def test_uneven_class_splits_keep_every_class_and_sample(benchmark, num_classes, n_experiences, data_root):
    """No split drops classes: the first ``num_classes % n_experiences`` experiences get one more."""
    from replay_cli.training.builders import build_benchmark

    extra = ["benchmark.train_samples=600", "benchmark.test_samples=100"] if benchmark == "synthetic" else []
    if benchmark not in ("split_digits", "synthetic"):
        extra = [f"benchmark.dataset_root={data_root}"]
    bench = build_benchmark(
        compose_config(f"benchmark={benchmark}", f"benchmark.n_experiences={n_experiences}", *extra)
    )
    classes = bench.classes_per_experience()
    base, extra_classes = divmod(num_classes, n_experiences)
    assert [len(c) for c in classes] == [base + 1] * extra_classes + [base] * (n_experiences - extra_classes)
    assert sorted(c for exp in classes for c in exp) == list(range(num_classes))
    test_classes = [sorted(int(c) for c in e.dataset.targets.uniques) for e in bench.test_stream]
    assert test_classes == classes
    train_size = sum(len(e.dataset) for e in bench.train_stream)
    expected_size = {"split_digits": 1257, "synthetic": 600}.get(benchmark)
    if expected_size is None:  # every sample of the tiny files
        from replay_cli.data import datasets

        spec = {"split_mnist": "MNIST", "split_cifar10": "CIFAR10", "split_fmnist": "FASHION_MNIST"}
        name = spec.get(benchmark, "CIFAR100")
        expected_size = len(datasets.load(getattr(datasets, name), str(data_root), download=False)[0].targets)
    assert train_size == expected_size


def avalanches_own(monkeypatch, generator_module, loader_name, train, test, generator, *args, **kwargs):
    """Avalanche's own classic generator, reading the given datasets instead of downloading."""
    import importlib

    module = importlib.import_module(generator_module)
    monkeypatch.setattr(module, loader_name, lambda _root: (train, test))
    return getattr(module, generator)(*args, **kwargs)


def torchvision_like(root: Path, files: str):
    """The datasets Avalanche's generators read (torchvision's CIFAR / Avalanche's TensorMNIST)."""
    from replay_cli.data import datasets

    train, test = datasets.load(getattr(datasets, files), str(root), download=False)
    pil = files != "MNIST"
    return datasets.ImageSamples(train, pil), datasets.ImageSamples(test, pil)


CLASSIC_SOURCES = {
    "SplitCIFAR10": ("avalanche.benchmarks.classic.ccifar10", "get_cifar10_dataset", "CIFAR10"),
    "SplitCIFAR100": ("avalanche.benchmarks.classic.ccifar100", "get_cifar100_dataset", "CIFAR100"),
    "SplitMNIST": ("avalanche.benchmarks.classic.cmnist", "get_mnist_dataset", "MNIST"),
    "SplitFMNIST": ("avalanche.benchmarks.classic.cfashion_mnist", "get_fmnist_dataset", "FASHION_MNIST"),
    "PermutedMNIST": ("avalanche.benchmarks.classic.cmnist", "get_mnist_dataset", "MNIST"),
    "RotatedMNIST": ("avalanche.benchmarks.classic.cmnist", "get_mnist_dataset", "MNIST"),
}


def samples(stream, seed: int = 0):
    """Every sample of every experience, drawn under one torch seed (random transforms included)."""
    import torch

    torch.manual_seed(seed)
    return [[e.dataset[i] for i in range(len(e.dataset))] for e in stream]


def same_samples(ours, theirs) -> bool:
    import torch

    return len(ours) == len(theirs) and all(
        len(a) == len(b)
        and all(torch.equal(x[0], y[0]) and int(x[1]) == int(y[1]) for x, y in zip(a, b, strict=True))
        for a, b in zip(ours, theirs, strict=True)
    )


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("generator", sorted(CLASSIC_SOURCES))
def test_classic_benchmarks_equal_avalanches_own_generators(generator, seed, data_root, monkeypatch):
    """Same classes per experience as Avalanche's SplitCIFAR10 & co. for the same seed, and with
    ``batched_transforms=false`` (fast_path=false) the very same samples, random crops included:
    the path replay-run took before it built benchmarks itself."""
    from replay_cli.data.benchmarks import classic

    module, loader, files = CLASSIC_SOURCES[generator]
    n_experiences = 5 if generator.startswith("Split") else 2
    train, test = torchvision_like(data_root, files)
    theirs = avalanches_own(monkeypatch, module, loader, train, test, generator, n_experiences, seed=seed)
    for batched in (False, True):
        ours = classic(
            "x", generator, n_experiences, seed=seed, dataset_root=str(data_root), batched_transforms=batched
        )
        assert ours.classes_per_experience() == [
            sorted(e.classes_in_this_experience) for e in theirs.train_stream
        ]
        assert [len(e.dataset) for e in ours.test_stream] == [len(e.dataset) for e in theirs.test_stream]
    assert same_samples(samples(ours.test_stream), samples(theirs.test_stream))  # batched: exact eval
    plain = classic(
        "x", generator, n_experiences, seed=seed, dataset_root=str(data_root), batched_transforms=False
    )
    assert same_samples(samples(plain.train_stream), samples(theirs.train_stream))
    assert same_samples(samples(plain.test_stream), samples(theirs.test_stream))


def test_split_digits_in_four_experiences_keeps_digits_8_and_9(run_in_process):
    """Issue 17.1: four experiences of ten digits used to train on [[0,1],[2,3],[4,5],[6,7]] only."""
    results = run_in_process("benchmark.n_experiences=4", *SMALL_RUN)
    assert results["benchmark"]["classes_per_experience"] == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert len(results["accuracy_matrix"]) == 4 and all(len(row) == 4 for row in results["accuracy_matrix"])
    assert results["buffer_composition"][-1]["per_class"].keys() == {str(c) for c in range(10)}
