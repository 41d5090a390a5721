"""Task-IL by masking, per-class accuracy and the confusion matrix (replay_cli/reporting/class_views.py)."""

import csv
import json

import numpy as np
import pytest
import torch

from replay_cli.data.benchmarks import load_digits_tensors
from replay_cli.reporting import metrics
from replay_cli.reporting.class_views import (
    BUFFER_SHARE_PNG,
    CONFUSION_CSV,
    CONFUSION_PNG,
    TASK_IL_MASKED,
    TASK_IL_SAME,
    class_views_plugin,
    classes_per_test_experience,
    per_class_accuracy,
)
from replay_cli.strategies.build import build_strategy
from replay_cli.training import builders
from tests.conftest import compose_config
from tests.tiny_datasets import write_idx_dataset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TEST_SET_SIZE = len(load_digits_tensors(test_size=0.3, split_seed=0)[3])


def test_per_class_accuracy_is_the_diagonal_over_the_row():
    confusion = [[3, 1, 0], [0, 0, 0], [2, 0, 2]]
    assert per_class_accuracy(confusion) == {"0": 0.75, "2": 0.5}  # class 1 has no test samples


def saved_logits(model, experience, path):
    """The model's outputs on one test experience, written to disk and read back, with the targets."""
    loader = torch.utils.data.DataLoader(experience.dataset, batch_size=len(experience.dataset))
    x, y, *_ = next(iter(loader))
    model.eval()
    with torch.no_grad():
        np.save(path, model(x.to(next(model.parameters()).device)).cpu().numpy())
    return np.load(path), y.numpy()


def test_masked_accuracy_matches_an_independent_computation_from_saved_logits(tmp_path):
    cfg = compose_config(
        "strategy=naive", "model.hidden_sizes=[16]", "strategy.train_epochs=1", "fast_path=false"
    )
    torch.manual_seed(0)
    benchmark = builders.build_benchmark(cfg)
    model = builders.build_model(cfg, benchmark)
    classes = classes_per_test_experience(benchmark)
    plugin = class_views_plugin(benchmark.num_classes, classes)
    strategy = build_strategy(cfg, model, [plugin])
    for experience in list(benchmark.train_stream)[:2]:
        strategy.train(experience)
    evaluation = strategy.eval(benchmark.test_stream)
    views = plugin.views()

    expected_rows, confusion = [], np.zeros((10, 10), dtype=int)
    for j, experience in enumerate(benchmark.test_stream):
        logits, y = saved_logits(model, experience, tmp_path / f"logits_{j}.npy")
        allowed = np.array(classes[j])
        masked = allowed[logits[:, allowed].argmax(axis=1)]
        expected_rows.append(float((masked == y).mean()))
        np.add.at(confusion, (y, logits.argmax(axis=1)), 1)
    assert views.task_il_row == pytest.approx(expected_rows, abs=1e-12)
    assert views.confusion == confusion.tolist()
    # the unmasked argmax of the same pass is Avalanche's class-IL accuracy
    class_il = metrics.accuracy_row(evaluation, benchmark.n_experiences)
    per_experience = [confusion[c, c].sum() / confusion[c].sum() for c in map(np.array, classes)]
    assert class_il == pytest.approx(per_experience)
    # masking only removes wrong answers: never below class-IL, above it once the model forgot
    assert all(t >= c for t, c in zip(views.task_il_row, class_il, strict=True))
    assert views.task_il_row[0] > class_il[0] + 0.3  # naive after two experiences predicts the newest


@pytest.fixture(scope="module")
def digits_runs(tmp_path_factory):
    """Default split_digits runs, replay and naive (5 epochs, seed 0): the numbers the README states."""
    from replay_cli.config.validation import validate
    from replay_cli.training.experiment import run_experiment

    runs = {}
    for strategy in ("replay", "naive"):
        cfg = compose_config(f"strategy={strategy}")
        validate(cfg)
        run_dir = tmp_path_factory.mktemp(strategy)
        run_experiment(cfg, run_dir)
        runs[strategy] = (json.loads((run_dir / "results.json").read_text()), run_dir)
    return runs


def test_task_il_is_at_least_class_il_and_far_above_it_without_replay(digits_runs):
    replay, _ = digits_runs["replay"]
    naive, _ = digits_runs["naive"]
    for results in (replay, naive):
        assert results["task_il_evaluation"] == TASK_IL_MASKED
        matrix, task_il = results["accuracy_matrix"], results["task_il_accuracy_matrix"]
        assert len(task_il) == len(matrix) == 5
        assert (np.array(task_il) >= np.array(matrix)).all()
        # same definitions as class-IL, on the task-IL matrix
        assert results["task_il_final_average_accuracy"] == pytest.approx(sum(task_il[-1]) / 5)
        assert results["task_il_forgetting"] == pytest.approx(metrics.forgetting(task_il))
        assert results["task_il_bwt"] == pytest.approx(metrics.backward_transfer(task_il))
        assert results["task_il_average_accuracy_per_experience"][1] == pytest.approx(sum(task_il[1][:2]) / 2)
    # measured: replay 0.869 class-IL / 0.977 task-IL; naive 0.192 / 0.985
    assert replay["task_il_final_average_accuracy"] >= replay["final_average_accuracy"]
    assert naive["final_average_accuracy"] <= 0.3
    assert naive["task_il_final_average_accuracy"] >= naive["final_average_accuracy"] + 0.6
    assert naive["task_il_forgetting"] < 0.1 < naive["forgetting"]


def test_per_class_accuracies_average_to_the_stream_accuracy(digits_runs):
    for results, _ in digits_runs.values():
        sizes = results["test_samples_per_class"]
        assert sum(sizes.values()) == TEST_SET_SIZE
        assert len(results["per_class_accuracy"]) == 5
        for step, accuracies in enumerate(results["per_class_accuracy"]):
            assert accuracies.keys() == sizes.keys()
            weighted = sum(accuracies[c] * sizes[c] for c in sizes) / TEST_SET_SIZE
            assert weighted == pytest.approx(results["stream_accuracy"][step])


def test_confusion_matrix_covers_the_test_set_in_results_and_csv(digits_runs):
    for results, run_dir in digits_runs.values():
        confusion = results["confusion_matrix"]
        assert len(confusion) == 10 and all(len(row) == 10 for row in confusion)
        assert sum(map(sum, confusion)) == TEST_SET_SIZE
        assert per_class_accuracy(confusion) == results["per_class_accuracy"][-1]
        with open(run_dir / CONFUSION_CSV) as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == ["true", *(f"pred_{p}" for p in range(10))]
        assert [[int(v) for v in row[1:]] for row in rows[1:]] == confusion
        assert (run_dir / CONFUSION_PNG).read_bytes().startswith(PNG_MAGIC)
    # naive keeps nothing: predicts only the last experience's classes, and draws no buffer figure
    naive, naive_dir = digits_runs["naive"]
    assert all(naive["confusion_matrix"][t][p] == 0 for t in range(10) for p in range(8))
    assert not (naive_dir / BUFFER_SHARE_PNG).exists()
    assert (digits_runs["replay"][1] / BUFFER_SHARE_PNG).read_bytes().startswith(PNG_MAGIC)


def test_a_head_per_task_reports_task_il_as_the_accuracy_matrix(tmp_path, run_in_process):
    write_idx_dataset(tmp_path / "data" / "MNIST" / "raw")
    results = run_in_process(
        "benchmark=split_mnist",
        f"benchmark.dataset_root={tmp_path / 'data'}",
        "benchmark.download=false",
        "benchmark.return_task_id=true",
        "strategy.train_epochs=1",
        "mem_size=20",
    )
    assert results["config"]["model"]["head"] == "auto" and results["benchmark"]["n_tasks"] == 5
    assert results["task_il_evaluation"] == TASK_IL_SAME
    assert results["task_il_accuracy_matrix"] == results["accuracy_matrix"]
    assert results["task_il_final_average_accuracy"] == results["final_average_accuracy"]
    assert sum(map(sum, results["confusion_matrix"])) == sum(results["test_samples_per_class"].values())


def test_masking_a_head_per_task_changes_nothing(tmp_path):
    """Why task-IL is not computed twice for multi-head models: masking their outputs to the
    experience's classes gives the accuracy Avalanche already reports."""
    write_idx_dataset(tmp_path / "MNIST" / "raw")
    cfg = compose_config(
        "benchmark=split_mnist",
        f"benchmark.dataset_root={tmp_path}",
        "benchmark.download=false",
        "benchmark.return_task_id=true",
        "strategy=naive",
        "strategy.train_epochs=1",
    )
    benchmark = builders.build_benchmark(cfg)
    model = builders.build_model(cfg, benchmark)
    plugin = class_views_plugin(benchmark.num_classes, classes_per_test_experience(benchmark))
    strategy = build_strategy(cfg, model, [plugin])
    for experience in benchmark.train_stream:
        strategy.train(experience)
    class_il = metrics.accuracy_row(strategy.eval(benchmark.test_stream), benchmark.n_experiences)
    assert plugin.views().task_il_row == pytest.approx(class_il)


def one_step_results():
    from replay_cli.reporting.class_views import ClassViews
    from replay_cli.reporting.results import RunResults

    results = RunResults(
        {"seed": 0}, n_experiences=2, n_steps=2, benchmark={"classes_per_experience": [[0], [1]]}
    )
    composition = {"size": 4, "per_class": {"0": 4}, "per_experience": {"0": 4}, "per_task": {"0": 4}}
    results.add_step(
        [0.75, 0.5], 1, 0.6, composition, 1.0, 0.1, views=ClassViews([0.75, 1.0], [[3, 1], [1, 1]])
    )
    return results


def test_class_view_files_are_written_and_a_failure_only_warns(tmp_path, capsys):
    from replay_cli.reporting.class_views import ClassViewFiles

    results = one_step_results()
    assert results.per_class_accuracy == [{"0": 0.75, "1": 0.5}]
    ClassViewFiles(tmp_path).run_ended(results)
    assert (tmp_path / CONFUSION_CSV).read_text().splitlines() == ["true,pred_0,pred_1", "0,3,1", "1,1,1"]
    assert (tmp_path / BUFFER_SHARE_PNG).read_bytes().startswith(PNG_MAGIC)

    blocked = tmp_path / "blocked"
    (blocked / CONFUSION_CSV).mkdir(parents=True)  # a directory where the CSV should go
    ClassViewFiles(blocked).run_ended(results)
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("replay-run: warning: could not write the class views") and "\n" not in warning
