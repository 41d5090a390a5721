"""replay-run computes exactly what a plain, hand-written Avalanche script computes."""

import random

import numpy as np
import pytest
import torch
from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import DER, ER_ACE, MIR, Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from avalanche.training.storage_policy import ExperienceBalancedBuffer
from torch import nn

from replay_cli.data.benchmarks import load_digits_tensors
from replay_cli.reporting.metrics import accuracy_row


def plain_avalanche_accuracy_matrix(
    seed: int, strategy_class=Naive, epochs: int = 5, **method
) -> list[list[float]]:
    """split_digits, the default MLP and SGD, ``strategy_class(**method)`` trained experience by
    experience and evaluated on the whole test stream after each: written with Avalanche alone."""
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
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[]),
        **method,
    )
    matrix = []
    for experience in benchmark.train_stream:
        strategy.train(experience)
        matrix.append(accuracy_row(strategy.eval(benchmark.test_stream), 5))
    return matrix


def test_default_config_matches_a_hand_written_avalanche_script(run_in_process):
    ours = run_in_process("strategy.device=cpu")
    replay = ReplayPlugin(
        mem_size=500,
        batch_size=32,
        batch_size_mem=32,
        storage_policy=ExperienceBalancedBuffer(max_size=500, adaptive_size=True),
    )
    plain = plain_avalanche_accuracy_matrix(seed=0, plugins=[replay])
    assert ours["accuracy_matrix"] == plain
    assert ours["final_average_accuracy"] == sum(plain[-1]) / 5


METHODS = {
    "er_ace": (ER_ACE, {"mem_size": 200, "batch_size_mem": 32}),
    "der": (DER, {"mem_size": 200, "batch_size_mem": 32, "alpha": 0.1, "beta": 0.5}),
    "mir": (MIR, {"mem_size": 200, "batch_size_mem": 32, "subsample": 50}),
}


@pytest.mark.parametrize("method", METHODS)
def test_replay_methods_match_a_hand_written_avalanche_script(method, run_in_process):
    """The method's config defaults are the hand-written arguments; two epochs, seed 1."""
    ours = run_in_process(
        f"strategy={method}", "strategy.device=cpu", "strategy.train_epochs=2", "mem_size=200", "seed=1"
    )
    strategy_class, arguments = METHODS[method]
    plain = plain_avalanche_accuracy_matrix(seed=1, strategy_class=strategy_class, epochs=2, **arguments)
    assert ours["accuracy_matrix"] == plain
    assert ours["final_average_accuracy"] > 0.3  # replay kept old classes: naive ends near 0.2
