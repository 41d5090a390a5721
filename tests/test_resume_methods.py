"""Exact resume for every kind of method state: a run stopped after some steps and resumed from its
checkpoint gives, bit for bit, the accuracy matrix and buffers of the run that was never stopped
(on CPU: ``strategy.device=cpu``, since CUDA kernels need not be deterministic)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replay_cli.config.validation import validate
from replay_cli.training.checkpoint import load_checkpoint
from replay_cli.training.experiment import run_experiment
from tests.conftest import compose_config, replay_run
from tests.tiny_datasets import write_idx_dataset

# Adam keeps per-parameter state across steps: a resume that reset or misplaced it would differ.
PINNED = ("strategy.device=cpu", "strategy.train_epochs=2", "optimizer=adam", "optimizer.lr=0.01")


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root / "MNIST" / "raw", per_class=12, test_per_class=4)
    return root


def run(run_dir: Path, overrides: tuple[str, ...], checkpoint: dict | None = None) -> dict:
    cfg = compose_config(*PINNED, *overrides)
    validate(cfg)
    run_experiment(cfg, run_dir, checkpoint=checkpoint)
    return json.loads((run_dir / "results.json").read_text())


def stopped_then_resumed(tmp_path: Path, overrides: tuple[str, ...], fail_at_step, stop_after: int) -> dict:
    from replay_cli.errors import RunFailed

    fail_at_step(stop_after)  # the evaluation after step `stop_after` fails: steps before it are saved
    with pytest.raises(RunFailed, match="injected failure"):
        run(tmp_path / "stopped", overrides)
    checkpoint = load_checkpoint(tmp_path / "stopped")
    assert len(checkpoint["results"]["accuracy_matrix"]) == stop_after
    return run(tmp_path / "stopped", overrides, checkpoint)


CASES = {
    "reservoir": ("strategy=replay", "storage=reservoir", "mem_size=60"),
    "class_balanced": ("strategy=replay", "storage=class_balanced", "mem_size=60"),
    "herding": ("strategy=replay", "storage=herding", "mem_size=60"),
    "cumulative": ("strategy=cumulative",),
    "der": ("strategy=der", "mem_size=60"),  # its buffer keeps each sample's logits
    "er_ace": ("strategy=er_ace", "mem_size=60"),  # declares its buffer as its whole state
    "gem": ("strategy=gem", "strategy.patterns_per_exp=20"),  # its memory tensors, per experience
    "mer": ("strategy=mer", "mem_size=60", "strategy.n_inner_steps=1"),  # its reservoir (strategy.buffer)
    "lamaml": ("strategy=lamaml", "mem_size=60"),  # its reservoir and its learnt learning rates
}


SLOW_CASES = {"gem", "mer"}  # 10 to 30 s each here: with the slow tests


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_CASES else n for n in CASES]
)
def test_resume_gives_the_uninterrupted_run(name, tmp_path, fail_at_step):
    whole = run(tmp_path / "whole", CASES[name])
    resumed = stopped_then_resumed(tmp_path, CASES[name], fail_at_step, stop_after=2)
    assert resumed["status"] == "completed"
    assert resumed["accuracy_matrix"] == whole["accuracy_matrix"]
    assert resumed["buffer_composition"] == whole["buffer_composition"]
    assert whole["final_average_accuracy"] > 0.3, "well above chance (0.1): a run that learns"


def test_resume_of_a_multi_head_task_incremental_run(mnist_root, tmp_path, fail_at_step):
    overrides = (
        "benchmark=split_mnist",
        f"benchmark.dataset_root={mnist_root}",
        "benchmark.download=false",
        "benchmark.return_task_id=true",
        "strategy=replay",
        "storage=class_balanced",
        "mem_size=20",
    )
    whole = run(tmp_path / "whole", overrides)
    assert whole["benchmark"]["n_tasks"] == 5
    resumed = stopped_then_resumed(tmp_path, overrides, fail_at_step, stop_after=3)
    assert resumed["accuracy_matrix"] == whole["accuracy_matrix"]
    assert resumed["per_task_accuracy"] == whole["per_task_accuracy"]


def test_a_restored_joint_run_is_the_saved_model(tmp_path):
    """Joint training is one step: its checkpoint restores the model that gave the saved row."""
    from replay_cli.strategies.build import build_strategy, method_buffer
    from replay_cli.training import builders
    from replay_cli.training.checkpoint import restore_training_state

    whole = run(tmp_path / "joint", ("strategy=joint",))
    assert whole["n_steps"] == 1 and whole["final_average_accuracy"] > 0.5
    cfg = compose_config(*PINNED, "strategy=joint")
    benchmark = builders.build_benchmark(cfg)
    strategy = build_strategy(cfg, builders.build_model(cfg, benchmark))
    state = load_checkpoint(tmp_path / "joint")
    restore_training_state(
        state, strategy=strategy, storage_policy=method_buffer(strategy), benchmark=benchmark, steps_done=1
    )
    from replay_cli.reporting.metrics import accuracy_row

    row = accuracy_row(strategy.eval(benchmark.test_stream), benchmark.n_experiences)
    assert row == whole["accuracy_matrix"][-1]


def test_a_method_whose_state_no_checkpoint_holds_refuses_resume(tmp_path, fail_at_step, capfd):
    """Learning without Forgetting keeps the previous model in its plugin: not in the checkpoint."""
    from replay_cli.errors import RunFailed

    lwf = ("+strategy.plugins.lwf._target_=avalanche.training.plugins.LwFPlugin", "strategy.train_epochs=1")
    fail_at_step(2)
    with pytest.raises(RunFailed):
        run(tmp_path / "lwf", lwf)
    warnings = [line for line in capfd.readouterr().err.splitlines() if "cannot be resumed" in line]
    assert warnings == [
        "replay-run: warning: this run cannot be resumed: its LwFPlugin plugin keeps state "
        "that no strategy.state adapter saves"
    ]

    result = replay_run(f"resume={tmp_path / 'lwf'}", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        f"replay-run: error: resume={tmp_path / 'lwf'}: strategy replay cannot be resumed: "
        "its LwFPlugin plugin keeps state that no strategy.state adapter saves; run it again"
    )


@pytest.mark.parametrize(
    "method", ["bic", "mir", "gdumb", "agem", "cope", "feature_replay", "generative_replay"]
)
def test_methods_with_state_outside_the_checkpoint_are_uncovered(method):
    """BiC's plugin (ours, extending Avalanche's) keeps its old model and bias layer; MIR and GDumb
    keep what no adapter saves; A-GEM its memory loader, CoPE its prototypes (and a swapped output
    layer), feature replay a buffer of feature vectors, generative replay its generator: none of
    them may pass for resumable."""
    from replay_cli.storage.state import uncovered
    from replay_cli.strategies.build import build_strategy, method_buffer
    from replay_cli.training import builders

    cfg = compose_config(*PINNED, f"strategy={method}")
    benchmark = builders.build_benchmark(cfg)
    strategy = build_strategy(cfg, builders.build_model(cfg, benchmark), benchmark=benchmark)
    assert uncovered(strategy, method_buffer(strategy), None) is not None
