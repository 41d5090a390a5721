"""The one-call online loop and the per-minibatch update of every storage policy: the same buffer as
the per-mini-experience loop given the same samples and draws, the same results on and off the fast
path, the anytime curve in every loop, resume."""

import json
import random
from collections import Counter

import numpy as np
import pytest

from tests.conftest import compose_config

QUICK = ("strategy.device=cpu", "strategy.train_epochs=1")
INDEXED = ["reservoir", "class_balanced", "experience_balanced"]  # position-keeping twins on the fast path
POLICIES = ["reservoir", "class_balanced", "experience_balanced", "random", "herding", "closest_to_center"]


def _references(dataset):
    """(experience of origin, index there) of each sample, in order."""
    from replay_cli.data.origin import sample_references

    return sample_references(dataset).tolist() if len(dataset) else []


def _seed(seed):
    """Python's, NumPy's and torch's generators (the policies draw from one or another)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("storage", POLICIES)
def test_the_buffer_after_each_minibatch_equals_the_buffer_after_its_mini_experience(storage, fast_path):
    """The one-call loop's mini-experiences are split_online_stream's (same shuffle, drawn the same
    way), and its update of the policy after a mini-experience's minibatches leaves the buffer the
    per-mini-experience loop leaves, sample for sample, for every storage policy and its
    position-keeping twin, given the same draws before each update."""
    from avalanche.benchmarks.scenarios.online import split_online_stream

    from replay_cli.protocols.online import OnePass
    from replay_cli.storage.build import build_storage_policy
    from replay_cli.strategies.build import build_strategy
    from replay_cli.strategies.minibatch_replay import locate, update_storage
    from replay_cli.training import builders

    cfg = compose_config("protocol=online", f"storage={storage}", "mem_size=30", f"fast_path={fast_path}")
    benchmark = builders.build_benchmark(cfg)
    model = builders.build_model(cfg, benchmark)
    strategy = build_strategy(cfg, model, benchmark=benchmark)
    positions = benchmark.positions if fast_path else None
    per_mini = build_storage_policy(cfg.storage, model, positions)
    one_call = build_storage_policy(cfg.storage, model, positions)
    protocol = OnePass(experience_size=10)
    updates = 0
    for index, experience in enumerate(list(benchmark.train_stream)[:3]):
        random.seed(index)
        minis = list(split_online_stream([experience], experience_size=10))
        random.seed(index)
        groups = protocol.mini_experiences(len(experience.dataset))
        located = locate(one_call, experience.dataset)  # the twins take samples by position
        assert (located is not None) == (fast_path and storage in INDEXED)
        assert len(groups) == len(minis) > 1
        for mini, group in zip(minis, groups, strict=True):
            # the same samples, in the same order
            assert _references(mini.dataset) == [[index, i] for i in group]
            _seed(updates)
            per_mini.post_adapt(strategy, mini)
            _seed(updates)
            update_storage(one_call, strategy, experience.dataset, group, located)
            assert _references(one_call.buffer) == _references(per_mini.buffer)
            updates += 1
    assert updates > 30 and 0 < len(one_call.buffer) <= 30


class _BufferCounts:
    """After every training iteration: the buffer's samples per class, and the new samples seen."""

    def __init__(self, policy):
        from avalanche.training.plugins import SupervisedPlugin

        outer = self

        class Spy(SupervisedPlugin):
            def before_training_iteration(self, strategy, **kwargs):
                outer.seen.update(strategy.mb_y.tolist())

            def after_training_iteration(self, strategy, **kwargs):
                targets = policy().buffer.targets if len(policy().buffer) else []
                outer.counts.append((Counter(int(t) for t in targets), Counter(outer.seen)))

        self.plugin, self.seen, self.counts = Spy(), Counter(), []


def test_per_iteration_class_balanced_buffer_is_balanced_after_every_minibatch():
    """replay_update=iteration storage=class_balanced mem_size=100 on split_digits: after every
    minibatch each class seen holds min(its samples seen, its share) samples, the shares being
    Avalanche's (100 // classes seen, the first classes one more); at the end 10 per class."""
    from replay_cli.strategies.build import build_strategy, method_buffer
    from replay_cli.training import builders
    from replay_cli.training.experiment import seed_everything

    cfg = compose_config("replay_update=iteration", "storage=class_balanced", "mem_size=100", *QUICK)
    seed_everything(0)
    benchmark = builders.build_benchmark(cfg)
    holder = {}
    spy = _BufferCounts(lambda: method_buffer(holder["strategy"]))
    strategy = holder["strategy"] = build_strategy(
        cfg, builders.build_model(cfg, benchmark), [spy.plugin], benchmark=benchmark
    )
    for experience in benchmark.train_stream:
        strategy.train(experience)
    assert len(spy.counts) > 30  # minibatches of 32 over the ~1,250 training samples
    for held, seen in spy.counts:
        classes = sorted(seen)
        share, extra = divmod(100, len(classes))
        shares = {c: share + (i < extra) for i, c in enumerate(classes)}
        assert set(held) <= set(classes)
        assert all(held[c] == min(seen[c], shares[c]) for c in classes), (held, seen)
    assert spy.counts[-1][0] == {c: 10 for c in range(10)}


@pytest.mark.parametrize("storage", ["herding", "random"])
def test_per_iteration_update_runs_with_a_feature_based_policy(run_in_process, storage):
    results = run_in_process("replay_update=iteration", f"storage={storage}", "mem_size=50", *QUICK)
    sizes = [c["size"] for c in results["buffer_composition"]]
    assert sizes == [50] * 5 and results["final_average_accuracy"] > 0.3
    assert set(results["buffer_composition"][-1]["per_class"]) == {str(c) for c in range(10)}


@pytest.mark.parametrize("protocol", ["offline", "online"])
def test_the_anytime_curve_trains_the_same_and_records_each_point(protocol, run_in_process, tmp_path):
    """Evaluating while training draws random numbers (put back): the same run with or without the
    curve, in the offline protocol and the one-call online loop; a point every 200 samples trained
    (split_digits' experiences hold about 250)."""
    overrides = (*QUICK, f"protocol={protocol}", "storage=class_balanced")
    plain = run_in_process(*overrides, run_dir=tmp_path / "plain")
    probed = run_in_process(*overrides, "protocol.eval_every=200", run_dir=tmp_path / "probed")
    assert probed["accuracy_matrix"] == plain["accuracy_matrix"]
    assert probed["buffer_composition"] == plain["buffer_composition"]
    points = probed["anytime_accuracy"]
    assert [p["samples_seen"] // 200 for p in points] == list(range(1, len(points) + 1)) and len(points) >= 5
    assert all(set(p) == {"samples_seen", "stream_accuracy", "experience", "accuracy"} for p in points)
    experiences = [p["experience"] for p in points]
    assert experiences == sorted(experiences) and experiences[0] == 0 and experiences[-1] == 4
    for point in points:  # nothing learned yet of the experiences after the one training
        assert len(point["accuracy"]) == 5 and all(
            a == 0 for a in point["accuracy"][point["experience"] + 1 :]
        )
        assert 0 <= point["stream_accuracy"] <= 1


@pytest.mark.parametrize("update", ["experience", "iteration"])
def test_one_call_loop_resumes_exactly(update, run_in_process, fail_at_step, tmp_path):
    """Cut after the second experience and resumed: the same matrix, buffers and anytime curve (its
    count of samples trained comes back from the checkpoint)."""
    from replay_cli.errors import RunFailed
    from replay_cli.training.checkpoint import load_checkpoint
    from replay_cli.training.experiment import run_experiment

    overrides = (
        *QUICK,
        "protocol=online",
        "protocol.experience_size=10",
        "protocol.eval_every=250",
        f"replay_update={update}",
        "storage=class_balanced",
        "mem_size=60",
    )
    whole = run_in_process(*overrides, run_dir=tmp_path / "whole")
    fail_at_step(2)
    with pytest.raises(RunFailed):
        run_in_process(*overrides, run_dir=tmp_path / "cut")
    run_experiment(compose_config(*overrides), tmp_path / "cut", checkpoint=load_checkpoint(tmp_path / "cut"))
    resumed = json.loads((tmp_path / "cut" / "results.json").read_text())
    assert resumed["accuracy_matrix"] == whole["accuracy_matrix"]
    assert resumed["buffer_composition"] == whole["buffer_composition"]
    assert resumed["anytime_accuracy"] == whole["anytime_accuracy"]


def test_results_of_an_interrupted_step_keep_only_the_finished_steps_anytime_points():
    """A signal while step 1 trains: results.json and its AAA describe step 0 only, as the checkpoint does."""
    from replay_cli.reporting.results import RunResults

    results = RunResults(config={}, n_experiences=2, n_steps=2)
    results.add_step([0.8, 0.0], seen=1, stream_accuracy=0.4, composition={}, train_seconds=1, eval_seconds=1)
    results.add_anytime(100, 0.4, experience=0, accuracy=[0.6, 0.0])
    results.add_anytime(200, 0.5, experience=0, accuracy=[0.8, 0.0])
    results.add_anytime(300, 0.3, experience=1, accuracy=[0.2, 0.4])  # step 1, unfinished
    written = results.to_dict()
    assert [p["samples_seen"] for p in written["anytime_accuracy"]] == [100, 200]
    assert written["average_anytime_accuracy"] == pytest.approx((0.6 + 0.8) / 2)
    results.add_step([0.2, 0.4], seen=2, stream_accuracy=0.3, composition={}, train_seconds=1, eval_seconds=1)
    assert [p["samples_seen"] for p in results.to_dict()["anytime_accuracy"]] == [100, 200, 300]


def test_one_call_is_the_online_default_for_replay_and_methods_with_own_buffers_keep_theirs():
    from omegaconf import OmegaConf

    from replay_cli.protocols.online import MiniExperiences, OnePass, online_protocol

    def loop(*overrides):
        cfg = compose_config("protocol=online", *overrides)
        return OmegaConf.to_container(cfg, resolve=True)["protocol"]["loop"]

    assert loop() == "one_call" and loop("strategy=naive") == "one_call"
    assert loop("strategy=er_ace") == loop("strategy=der") == "per_mini_experience"
    assert loop("protocol.loop=per_mini_experience") == "per_mini_experience"
    assert isinstance(online_protocol("one_call", experience_size=10), OnePass)
    assert isinstance(online_protocol("per_mini_experience", experience_size=10), MiniExperiences)


@pytest.mark.parametrize("epochs", [1, 2])
def test_one_call_minibatches_are_each_mini_experience_trained_train_epochs_times(epochs):
    """Mini-experiences of 25 in minibatches of at most 10 (batch_size), each mini-experience's
    minibatches repeated train_epochs times within the single pass; the replay plugin sees the
    end of each mini-experience and the strategy trains one epoch."""
    from avalanche.training.plugins import SupervisedPlugin

    from replay_cli.instantiate import instantiate_group
    from replay_cli.strategies.build import build_strategy, method_buffer
    from replay_cli.training import builders

    class Sizes(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.new, self.total, self.epochs = [], [], 0

        def before_training_iteration(self, strategy, **kwargs):
            self.new.append(len(strategy.mb_y))

        def after_forward(self, strategy, **kwargs):
            self.total.append(len(strategy.mb_y))

        def before_training_epoch(self, strategy, **kwargs):
            self.epochs += 1

    cfg = compose_config(
        "protocol=online",
        "protocol.experience_size=25",
        "batch_size=10",
        "batch_size_mem=7",
        "strategy.device=cpu",
        f"strategy.train_epochs={epochs}",
    )
    benchmark = builders.build_benchmark(cfg)
    protocol = instantiate_group(cfg.protocol, labels=("name", "eval_every"))
    sizes = Sizes()
    strategy = build_strategy(
        cfg, builders.build_model(cfg, benchmark), [*protocol.plugins(), sizes], benchmark=benchmark
    )
    experience = benchmark.train_stream[0]
    strategy.train(experience)
    n = len(experience.dataset)
    minis = [min(25, n - start) for start in range(0, n, 25)]
    expected = [b for m in minis for b in [min(10, m - s) for s in range(0, m, 10)] * epochs]
    assert sizes.new == expected and sizes.epochs == 1 and strategy.train_epochs == epochs
    # replay from the second mini-experience on (the buffer is updated when a mini-experience ends)
    first = len(range(0, 25, 10)) * epochs
    assert sizes.total[:first] == expected[:first]
    assert all(t == b + 7 for t, b in zip(sizes.total[first:], expected[first:], strict=True))
    held = _references(method_buffer(strategy).buffer)  # each sample once, whatever train_epochs
    assert len(held) == len({tuple(r) for r in held}) == min(n, 500)


@pytest.mark.slow
def test_both_online_loops_reach_the_same_accuracy_over_seeds(run_in_process, tmp_path):
    """Paired over 6 seeds on split_digits (continual-learning-baselines' online settings scaled
    down: mini-experiences of 10, 10 new + 10 replayed, class-balanced 200, one pass). The loops
    train the same mini-experiences in the same order and differ only in their random draws
    (replayed samples, buffer weights), so the per-seed differences of final average accuracy are
    noise around 0 if the loops compute the same thing: their mean must lie within 3 standard
    errors of 0 (measured here: differences' sd about 0.065 over 8 seeds, so about 0.08 for 6). The
    bound must stay tight enough to see a real difference: a one-call loop that replayed nothing
    (naive) is more than three bounds below, and the test checks that it would be caught."""
    import statistics

    online = (
        *QUICK,
        "protocol=online",
        "protocol.experience_size=10",
        "batch_size=10",
        "batch_size_mem=10",
        "storage=class_balanced",
        "mem_size=200",
    )

    def final(*overrides, seed):
        run_dir = tmp_path / "-".join([*overrides, str(seed)]).replace("=", "_")
        return run_in_process(*online, *overrides, f"seed={seed}", run_dir=run_dir)["final_average_accuracy"]

    seeds = range(6)
    one_call = [final("protocol.loop=one_call", seed=s) for s in seeds]
    per_mini = [final("protocol.loop=per_mini_experience", seed=s) for s in seeds]
    differences = [a - b for a, b in zip(one_call, per_mini, strict=True)]
    bound = 3 * statistics.stdev(differences) / len(differences) ** 0.5
    assert 0 < bound < 0.12, differences
    assert abs(statistics.mean(differences)) <= bound, (one_call, per_mini)
    naive = [final("strategy=naive", seed=s) for s in seeds[:3]]
    assert statistics.mean(per_mini) - statistics.mean(naive) > 3 * bound, (naive, per_mini)
