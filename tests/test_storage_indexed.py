"""The fast path's position-keeping storage policies make Avalanche's draws: after every update they
hold the same samples, in the same order, with the same weights, as the Avalanche policy they mirror."""

from __future__ import annotations

import pytest
import torch
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.training.storage_policy import (
    ClassBalancedBuffer,
    ExperienceBalancedBuffer,
    ReservoirSamplingBuffer,
)

from replay_cli.data.origin import sample_references
from replay_cli.data.positions import SamplePositions
from replay_cli.storage.indexed import indexed
from replay_cli.training import builders
from tests.conftest import compose_config


def contents(policy) -> dict:
    groups = getattr(policy, "buffer_groups", {"": policy})
    return {
        "samples": sample_references(policy.buffer).tolist(),
        "targets": list(policy.buffer.targets),
        "groups": {k: sample_references(g.buffer).tolist() for k, g in groups.items()},
        "weights": {k: g._buffer_weights.tolist() for k, g in groups.items()},
        "sizes": {k: g.max_size for k, g in groups.items()},
    }


POLICIES = {
    "reservoir": lambda: ReservoirSamplingBuffer(60),
    "class_balanced": lambda: ClassBalancedBuffer(60),
    "class_balanced fixed": lambda: ClassBalancedBuffer(60, adaptive_size=False, total_num_classes=10),
    "experience_balanced": lambda: ExperienceBalancedBuffer(60),
}


@pytest.mark.parametrize("online", [False, True], ids=["experiences", "mini-experiences"])
@pytest.mark.parametrize("name", list(POLICIES))
def test_the_twin_holds_what_avalanches_policy_holds(name, online):
    make = POLICIES[name]
    benchmark = builders.build_benchmark(compose_config())
    experiences = list(benchmark.train_stream)[:3]
    if online:  # 3 experiences in mini-experiences of 10
        experiences = list(split_online_stream(experiences, experience_size=10, shuffle=True))
    reference, twin = make(), indexed(make(), SamplePositions(benchmark.train_stream))
    assert type(twin) is not type(reference) and isinstance(twin, type(reference))
    for step, experience in enumerate(experiences):
        for policy in (reference, twin):
            torch.manual_seed(step)
            policy.post_adapt(None, experience)
        if step % 17 == 0 or step == len(experiences) - 1:
            assert contents(twin) == contents(reference), f"after update {step}"
    assert len(twin.buffer) == (36 if name == "class_balanced fixed" else 60)  # 6 classes seen


def test_the_twins_buffer_is_rebuilt_only_when_it_changes():
    benchmark = builders.build_benchmark(compose_config())
    twin = indexed(ClassBalancedBuffer(40), SamplePositions(benchmark.train_stream))
    twin.post_adapt(None, benchmark.train_stream[0])
    assert twin.buffer is twin.buffer
    before = twin.buffer
    twin.post_adapt(None, benchmark.train_stream[1])
    assert twin.buffer is not before and len(twin.buffer) == 40


@pytest.mark.parametrize(
    ("overrides", "twin"),
    [
        (("fast_path=true",), True),
        (("fast_path=false",), False),
        (("fast_path=true", "replay_update=iteration", "storage=reservoir"), False),
    ],
)
def test_the_fast_path_builds_the_twin_for_the_replay_plugin(overrides, twin):
    from replay_cli.storage.indexed import IndexedClassBalanced, IndexedReservoir
    from replay_cli.strategies.build import build_strategy, method_buffer

    cfg = compose_config("strategy=replay", "storage=class_balanced", *overrides)
    benchmark = builders.build_benchmark(cfg)
    strategy = build_strategy(cfg, builders.build_model(cfg, benchmark), benchmark=benchmark)
    policy = method_buffer(strategy)
    assert isinstance(policy, (IndexedClassBalanced, IndexedReservoir)) is twin


def test_online_experience_groups_are_mini_experiences_in_the_warning(capsys):
    """Online, the ReplayPlugin updates the policy once per mini-experience: an experience-balanced
    buffer shares itself over mini-experiences, and the warning counts those."""
    from replay_cli.config.validation import validate_against_benchmark

    cfg = compose_config("protocol=online", "storage=experience_balanced", "mem_size=50")
    benchmark = builders.build_benchmark(cfg)
    validate_against_benchmark(cfg, benchmark)
    sizes = [len(e.dataset) for e in benchmark.train_stream]
    expected = sum(-(-n // 10) for n in sizes)
    line = capsys.readouterr().err.strip()
    assert line == (
        f"replay-run: warning: mem_size=50 is smaller than the {expected} mini-experience groups of "
        f"split_digits: storage=experience_balanced keeps no sample of {expected - 50} of them "
        "once all are seen"
    )
