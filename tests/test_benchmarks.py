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
    assert (len(train), len(test)) == (20, 10)
    assert (raw / "train-images-idx3-ubyte").is_file()
    assert sorted(int(y) for y in train.targets) == sorted(list(range(10)) * 2)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["benchmark.n_experiences=3"],
            "benchmark.n_experiences=3 is invalid: expected a divisor of 10: 1, 2, 5, 10",
        ),
        (["benchmark.fixed_class_order=[0,1]"], "benchmark.fixed_class_order=[0, 1] is invalid"),
    ],
)
def test_class_split_is_checked_before_loading(overrides, message):
    from replay_cli.errors import one_line
    from replay_cli.training.builders import build_benchmark

    cfg = compose_config("benchmark=split_mnist", "benchmark.dataset_root=/does/not/exist", *overrides)
    with pytest.raises(Exception) as error:
        build_benchmark(cfg)
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

    from replay_cli.data.benchmarks import ORIGIN_ATTRIBUTE, synthetic

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
