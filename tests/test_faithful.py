"""replay-run computes exactly what a plain, hand-written Avalanche script computes."""

import random

import numpy as np
import pytest
import torch
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from avalanche.training.storage_policy import ExperienceBalancedBuffer
from torch import nn

from replay_cli.data.benchmarks import load_digits_tensors


@torch.no_grad()
def hand_accuracy_row(model: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor) -> list[float]:
    """Accuracy on each test experience (digits 2j and 2j+1), counted by hand from the model's
    predictions: nothing of replay-cli's or Avalanche's metrics."""
    model.eval()
    row = []
    for j in range(5):
        mask = (y_test == 2 * j) | (y_test == 2 * j + 1)
        predicted = model(x_test[mask]).argmax(dim=1)
        row.append(int((predicted == y_test[mask]).sum()) / int(mask.sum()))
    return row


def plain_avalanche_run(seed: int, train_epochs: int = 5) -> tuple:
    """The default config's benchmark and strategy (split_digits, MLP 256, SGD, ReplayPlugin with an
    experience-balanced buffer of 500, 32 new + 32 replayed) written with Avalanche alone."""
    x_train, y_train, x_test, y_test = load_digits_tensors(test_size=0.3, split_seed=0)
    benchmark = class_incremental_benchmark(
        {"train": tensor_dataset(x_train, y_train), "test": tensor_dataset(x_test, y_test)},
        class_order=list(range(10)),
        num_experiences=5,
    )
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.0),
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=32,
        train_epochs=train_epochs,
        eval_mb_size=256,
        device="cpu",
        plugins=[
            ReplayPlugin(
                mem_size=500,
                batch_size=32,
                batch_size_mem=32,
                storage_policy=ExperienceBalancedBuffer(max_size=500, adaptive_size=True),
            )
        ],
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[]),
    )
    return benchmark, strategy, (x_test, y_test)


def plain_avalanche_accuracy_matrix(seed: int) -> list[list[float]]:
    benchmark, strategy, test = plain_avalanche_run(seed)
    matrix = []
    for experience in benchmark.train_stream:
        strategy.train(experience)
        strategy.eval(benchmark.test_stream)  # as replay-run does (its loaders draw random seeds)
        matrix.append(hand_accuracy_row(strategy.model, *test))
    return matrix


def plain_avalanche_online_accuracy_matrix(seed: int, experience_size: int) -> list[list[float]]:
    """Online replay as continual-learning-baselines writes it: each experience cut by
    split_online_stream, one strategy.train per mini-experience, evaluated after each experience."""
    benchmark, strategy, test = plain_avalanche_run(seed, train_epochs=1)
    matrix = []
    for experience in benchmark.train_stream:
        for mini in split_online_stream([experience], experience_size=experience_size):
            strategy.train(mini)
        strategy.eval(benchmark.test_stream)
        matrix.append(hand_accuracy_row(strategy.model, *test))
    return matrix


def test_default_config_matches_a_hand_written_avalanche_script(run_in_process):
    ours = run_in_process("strategy.device=cpu")
    plain = plain_avalanche_accuracy_matrix(seed=0)
    assert len(ours["accuracy_matrix"]) == len(plain) == 5
    for our_row, plain_row in zip(ours["accuracy_matrix"], plain, strict=True):
        assert our_row == pytest.approx(plain_row, abs=1e-12)  # one sample more or less is >= 1/110
    assert ours["final_average_accuracy"] == pytest.approx(sum(plain[-1]) / 5, abs=1e-12)
    assert all(plain[i][i] >= 0.8 for i in range(5)), "the compared runs learn each experience"


def test_online_protocol_matches_a_hand_written_avalanche_online_replay_script(run_in_process):
    ours = run_in_process(
        "strategy.device=cpu", "protocol=online", "protocol.experience_size=25", "strategy.train_epochs=1"
    )
    plain = plain_avalanche_online_accuracy_matrix(seed=0, experience_size=25)
    assert len(plain) == 5 and len(ours["buffer_composition"]) == 5
    for our_row, plain_row in zip(ours["accuracy_matrix"], plain, strict=True):
        assert our_row == pytest.approx(plain_row, abs=1e-12)
