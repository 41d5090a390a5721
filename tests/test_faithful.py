"""replay-run computes exactly what a plain, hand-written Avalanche script computes."""

import random

import numpy as np
import pytest
import torch
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import AGEM, DER, ER_ACE, GEM, MIR, Naive
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


def default_replay_plugin() -> ReplayPlugin:
    """The default config's replay: an experience-balanced buffer of 500, 32 new + 32 replayed."""
    return ReplayPlugin(
        mem_size=500,
        batch_size=32,
        batch_size_mem=32,
        storage_policy=ExperienceBalancedBuffer(max_size=500, adaptive_size=True),
    )


def plain_avalanche_run(seed: int, strategy_class=Naive, epochs: int = 5, evaluator=None, **method) -> tuple:
    """split_digits, the default MLP and SGD and ``strategy_class(**method)``, written with Avalanche
    alone (or with ``evaluator`` in place of Avalanche's accuracy metrics); returns the benchmark,
    the strategy and the test tensors."""
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
    strategy = strategy_class(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.0),
        criterion=nn.CrossEntropyLoss(),
        train_mb_size=32,
        train_epochs=epochs,
        eval_mb_size=256,
        device="cpu",
        evaluator=evaluator or EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[]),
        **method,
    )
    return benchmark, strategy, (x_test, y_test)


def plain_avalanche_accuracy_matrix(
    seed: int, experience_size: int | None = None, **run
) -> list[list[float]]:
    """Trained experience by experience (or, with ``experience_size``, mini-experience by
    mini-experience of ``split_online_stream``, as continual-learning-baselines' online replay does)
    and evaluated on the whole test stream after each experience, as replay-run does (its loaders
    draw random seeds), with the accuracy counted by hand."""
    benchmark, strategy, test = plain_avalanche_run(seed, **run)
    matrix = []
    for experience in benchmark.train_stream:
        if experience_size is None:
            strategy.train(experience)
        else:
            for mini in split_online_stream([experience], experience_size=experience_size):
                strategy.train(mini)
        strategy.eval(benchmark.test_stream)
        matrix.append(hand_accuracy_row(strategy.model, *test))
    return matrix


def assert_same_matrix(ours: dict, plain: list[list[float]]) -> None:
    assert len(ours["accuracy_matrix"]) == len(plain) == 5
    for our_row, plain_row in zip(ours["accuracy_matrix"], plain, strict=True):
        assert our_row == pytest.approx(plain_row, abs=1e-12)  # one sample more or less is >= 1/110
    assert ours["final_average_accuracy"] == pytest.approx(sum(plain[-1]) / 5, abs=1e-12)


def test_default_config_matches_a_hand_written_avalanche_script(run_in_process):
    ours = run_in_process("strategy.device=cpu")
    plain = plain_avalanche_accuracy_matrix(seed=0, plugins=[default_replay_plugin()])
    assert_same_matrix(ours, plain)
    assert all(plain[i][i] >= 0.8 for i in range(5)), "the compared runs learn each experience"


def test_online_protocol_matches_a_hand_written_avalanche_online_replay_script(run_in_process):
    ours = run_in_process(
        "strategy.device=cpu",
        "protocol=online",
        "protocol.loop=per_mini_experience",
        "protocol.experience_size=25",
        "strategy.train_epochs=1",
    )
    plain = plain_avalanche_accuracy_matrix(
        seed=0, experience_size=25, epochs=1, plugins=[default_replay_plugin()]
    )
    assert len(ours["buffer_composition"]) == 5
    assert_same_matrix(ours, plain)


METHODS = {
    "er_ace": (ER_ACE, {"mem_size": 200, "batch_size_mem": 32}),
    "der": (DER, {"mem_size": 200, "batch_size_mem": 32, "alpha": 0.1, "beta": 0.5}),
    "mir": (MIR, {"mem_size": 200, "batch_size_mem": 32, "subsample": 50}),
    "gem": (GEM, {"patterns_per_exp": 50, "memory_strength": 0.5}),  # mem_size: not read
    "agem": (AGEM, {"patterns_per_exp": 50, "sample_size": 256}),
}


@pytest.mark.parametrize("method", METHODS)
def test_replay_methods_match_a_hand_written_avalanche_script(method, run_in_process):
    """The method's config defaults are the hand-written arguments; two epochs, seed 1."""
    ours = run_in_process(
        f"strategy={method}", "strategy.device=cpu", "strategy.train_epochs=2", "mem_size=200", "seed=1"
    )
    strategy_class, arguments = METHODS[method]
    plain = plain_avalanche_accuracy_matrix(seed=1, strategy_class=strategy_class, epochs=2, **arguments)
    assert_same_matrix(ours, plain)
    assert ours["final_average_accuracy"] > 0.3  # replay kept old classes: naive ends near 0.2
