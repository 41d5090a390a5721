"""The online protocol and the per-iteration (stream-reservoir) buffer update."""

import json

import numpy as np
import pytest

from replay_cli.keys import flatten
from replay_cli.reporting.wandb_records import offline_runs
from replay_cli.strategies.stream_replay import reservoir_slots
from tests.conftest import compose_config, replay_run

QUICK = ("strategy.device=cpu", "strategy.train_epochs=1")


def test_reservoir_slots_follow_algorithm_r_with_the_same_draws():
    """An independent Algorithm R, item by item, on the same NumPy draws, keeps the same buffer as
    the slots computed batch by batch (batches of uneven size)."""
    stream, size = list(range(500)), 37
    np.random.seed(3)
    ours: list[int] = []
    start = 0
    for batch in (5, 10, 1, 32, 100, 352):
        for position, slot in enumerate(reservoir_slots(start, size, batch)):
            item = stream[start + position]
            if slot == len(ours):
                ours.append(item)
            elif slot >= 0:
                ours[slot] = item
        start += batch
    np.random.seed(3)
    reference: list[int] = []
    for i, item in enumerate(stream):
        if i < size:
            reference.append(item)
        else:
            j = np.random.randint(0, i + 1)
            if j < size:
                reference[j] = item
    assert ours == reference and len(set(ours)) == size


def test_every_sample_is_kept_with_probability_mem_size_over_seen():
    seen, size, seeds = 60, 12, 3000
    kept = np.zeros(seen)
    for seed in range(seeds):
        np.random.seed(seed)
        buffer = [-1] * size
        for item, slot in enumerate(reservoir_slots(0, size, seen)):
            if slot >= 0:
                buffer[slot] = item
        kept[buffer] += 1
    rate = kept / seeds
    # binomial standard deviation sqrt(0.2 * 0.8 / 3000) ~ 0.0073: 6 of them
    assert np.abs(rate - size / seen).max() < 0.045, rate


def _train_first_experience(*overrides: str) -> tuple:
    """Experience 0 of split_digits trained with replay_update=iteration; the minibatch sizes the
    model saw and the strategy."""
    from avalanche.training.plugins import SupervisedPlugin

    from replay_cli.strategies.build import build_strategy
    from replay_cli.training import builders
    from replay_cli.training.experiment import seed_everything

    class MinibatchSizes(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.sizes = []

        def after_forward(self, strategy, **kwargs):
            self.sizes.append(len(strategy.mb_x))

    cfg = compose_config("replay_update=iteration", "storage=reservoir", *QUICK, *overrides)
    seed_everything(0)
    benchmark = builders.build_benchmark(cfg)
    recorder = MinibatchSizes()
    strategy = build_strategy(cfg, builders.build_model(cfg, benchmark), [recorder])
    experience = benchmark.train_stream[0]
    strategy.train(experience)
    return recorder.sizes, strategy, len(experience.dataset)


def test_replay_starts_at_the_second_minibatch_and_every_epoch_pass_is_counted():
    from replay_cli.strategies.build import method_buffer

    sizes, strategy, n = _train_first_experience(
        "mem_size=50", "strategy.train_epochs=2", "batch_size=16", "batch_size_mem=24"
    )
    # each minibatch: its new samples plus min(24, samples buffered so far), from the second on
    new = [min(16, n - start) for start in range(0, n, 16)] * 2
    seen = np.cumsum([0, *new[:-1]])
    assert sizes == [b + min(24, s, 50) for b, s in zip(new, seen, strict=True)]
    assert sizes[0] == 16 and sizes[1] == 32 and sizes[2] == 40
    buffer = method_buffer(strategy)
    assert buffer.samples_seen == 2 * n
    assert len(buffer.buffer) == 50


def test_per_iteration_update_fills_the_buffer_during_the_first_experience(run_in_process):
    results = run_in_process("replay_update=iteration", "storage=reservoir", "mem_size=200", *QUICK)
    compositions = results["buffer_composition"]
    assert len(results["accuracy_matrix"]) == 5 and len(compositions) == 5
    assert compositions[0]["size"] == 200 and compositions[0]["per_experience"] == {"0": 200}
    assert set(compositions[0]["per_class"]) == {"0", "1"}
    assert all(c["size"] == 200 for c in compositions)
    assert set(compositions[-1]["per_experience"]) == {"0", "1", "2", "3", "4"}
    flat = flatten(results["config"])
    assert (flat["replay_update"], flat["protocol"], flat["storage"]) == ("iteration", "offline", "reservoir")


def test_per_iteration_update_gives_the_same_results_on_and_off_the_fast_path(run_in_process, tmp_path):
    overrides = ("replay_update=iteration", "storage=reservoir", "mem_size=100", *QUICK)
    fast = run_in_process(*overrides, "fast_path=true", run_dir=tmp_path / "fast")
    plain = run_in_process(*overrides, "fast_path=false", "loader.num_workers=0", run_dir=tmp_path / "plain")
    assert fast["accuracy_matrix"] == plain["accuracy_matrix"]
    assert fast["buffer_composition"] == plain["buffer_composition"]


@pytest.mark.parametrize(
    "loop",
    ["one_call", pytest.param("per_mini_experience", marks=pytest.mark.slow)],  # slow: 8 s each
)
@pytest.mark.parametrize("storage", ["class_balanced", "experience_balanced"])
def test_online_replay_gives_the_same_results_on_and_off_the_fast_path(
    run_in_process, tmp_path, storage, loop
):
    """On the fast path the buffer is kept as positions (storage/indexed.py) and, in the one-call
    loop, replayed samples are gathered from the stream's tensors: same run."""
    overrides = (
        "protocol=online",
        f"protocol.loop={loop}",
        "protocol.experience_size=20",
        f"storage={storage}",
        "mem_size=60",
    )
    fast = run_in_process(*overrides, *QUICK, "fast_path=true", run_dir=tmp_path / "fast")
    plain_path = ("fast_path=false", "loader.num_workers=0")
    plain = run_in_process(*overrides, *QUICK, *plain_path, run_dir=tmp_path / "plain")
    assert fast["accuracy_matrix"] == plain["accuracy_matrix"]
    assert fast["buffer_composition"] == plain["buffer_composition"]
    assert fast["buffer_composition"][-1]["size"] == 60 and fast["final_average_accuracy"] > 0.3


@pytest.mark.slow
def test_online_run_from_the_console_records_the_anytime_curve_in_results_and_wandb(tmp_path):
    result = replay_run(
        "protocol=online",
        "protocol.experience_size=25",
        "protocol.eval_every=300",
        "replay_update=iteration",
        "storage=reservoir",
        "mem_size=100",
        *QUICK,
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert len(results["accuracy_matrix"]) == 5 and len(results["buffer_composition"]) == 5
    curve = results["anytime_accuracy"]
    seen = [point["samples_seen"] for point in curve]
    assert seen == sorted(seen) and len(seen) >= 3
    # one point each time the samples trained pass a multiple of 300 (mini-experiences of 25)
    assert [s // 300 for s in seen] == list(range(1, len(seen) + 1))
    assert all(0 <= point["stream_accuracy"] <= 1 for point in curve)
    assert flatten(results["config"])["protocol"] == "online"
    (logged,) = offline_runs(tmp_path / "run" / "wandb")
    assert (logged.config["protocol"], logged.config["replay_update"]) == ("online", "iteration")
    assert logged.summary["anytime_accuracy/_type"] == "table-file"
    assert logged.summary["anytime_accuracy/nrows"] == len(curve)


@pytest.mark.parametrize("protocol", ["offline", "online"])
def test_protocol_and_update_rule_are_experiment_columns(protocol):
    from omegaconf import OmegaConf

    cfg = compose_config(f"protocol={protocol}", "replay_update=iteration", "storage=reservoir")
    flat = flatten(OmegaConf.to_container(cfg, resolve=True))
    assert flat["protocol"] == protocol and flat["replay_update"] == "iteration"
    assert "protocol.name" not in flat


@pytest.mark.parametrize(
    ("new", "buffered", "epochs", "expected"), [(10, 200, 1, False), (500, 100, 1, True)]
)
def test_fast_path_materializes_only_what_training_reads_more_than_once(new, buffered, epochs, expected):
    """A mini-experience of 10 beside a buffer of 200 reads 20 samples: gathering 210 costs more."""
    import torch
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset
    from avalanche.benchmarks.utils.data_loader import ReplayDataLoader

    from replay_cli.data.fast_path import worth_materializing

    def data(n):
        return tensor_dataset(torch.zeros(n, 4), torch.zeros(n, dtype=torch.long))

    loader = ReplayDataLoader(data(new), data(buffered), batch_size=10, batch_size_mem=10)
    assert worth_materializing(loader, epochs) is expected


@pytest.mark.parametrize("update", ["iteration", "experience"])
def test_resume_equals_the_uninterrupted_run(update, run_in_process, fail_at_step, tmp_path):
    """Per-iteration: the reservoir's buffer and its count of samples seen come back from the checkpoint."""
    from replay_cli.errors import RunFailed
    from replay_cli.training.checkpoint import load_checkpoint
    from replay_cli.training.experiment import run_experiment

    overrides = (f"replay_update={update}", "storage=reservoir", "mem_size=100", *QUICK)
    whole = run_in_process(*overrides, run_dir=tmp_path / "whole")
    fail_at_step(2)
    with pytest.raises(RunFailed):
        run_in_process(*overrides, run_dir=tmp_path / "cut")
    run_experiment(compose_config(*overrides), tmp_path / "cut", checkpoint=load_checkpoint(tmp_path / "cut"))
    resumed = json.loads((tmp_path / "cut" / "results.json").read_text())
    assert resumed["accuracy_matrix"] == whole["accuracy_matrix"]
    assert resumed["buffer_composition"] == whole["buffer_composition"]


def test_the_anytime_curve_does_not_change_what_the_run_trains(run_in_process, tmp_path):
    """Evaluating between steps draws random numbers; the run must train the same with or without."""
    online = (*QUICK, "protocol=online", "protocol.experience_size=25")
    plain = run_in_process(*online, run_dir=tmp_path / "plain")
    probed = run_in_process(*online, "protocol.eval_every=200", run_dir=tmp_path / "probed")
    assert len(probed["anytime_accuracy"]) > 0 and plain["anytime_accuracy"] == []
    assert probed["accuracy_matrix"] == plain["accuracy_matrix"]
    assert probed["buffer_composition"] == plain["buffer_composition"]


def test_drop_last_with_mini_experiences_longer_than_an_experience_is_refused_before_training(tmp_path):
    """With protocol.drop_last=true only whole mini-experiences train: an experience_size above an
    experience's samples would drop that experience whole (nothing trained, exit 0 before)."""
    result = replay_run(
        "protocol=online",
        "protocol.drop_last=true",
        "protocol.experience_size=1000",
        "logger=none",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "replay-run: error: protocol.experience_size=1000 is invalid"
    )
    assert "(the smallest training experience's samples) with protocol.drop_last=true" in lines[0]
    assert not list(tmp_path.glob("outputs/runs/*/*/results.json"))
