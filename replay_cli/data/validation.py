"""Held-out data for model selection, applied to any built benchmark: a validation stream split off
the training experiences (``benchmark.validation_size``), and the first experiences only
(``stop_after``), the continual tuning protocol of Chaudhry et al. 2019 (A-GEM, section 5).

Both rebuild the scenario with Avalanche's public generators (``benchmark_with_validation_stream``,
``benchmark_from_datasets``), then tag the training samples again
(:func:`~replay_cli.data.benchmarks.with_origin_experience`), so buffers, the fast path and
checkpoints see a training stream like any other.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from replay_cli.data.benchmarks import Benchmark, with_origin_experience
from replay_cli.data.origin import attribute_tensor
from replay_cli.errors import ConfigError

VALID_STREAM = "valid"  # Avalanche's name for it: metrics read ``.../valid_stream/...``
SIZE_KEY = "benchmark.validation_size"


def stratified_split(dataset: Any, validation_size: float, seed: int, experience: int = 0) -> tuple[Any, Any]:
    """Split an Avalanche dataset into (train, validation) subsets: ``floor(validation_size * n_c)``
    samples of each class ``c`` (``n_c`` samples) drawn at random for validation, the rest for
    training, both in the dataset's order. The draw depends only on ``seed``, ``experience`` and the
    class (a ``torch.Generator`` of its own: the global RNGs are untouched), as Avalanche's
    ``split_validation_class_balanced`` would draw it with a seed.

    Raises :class:`ConfigError` (``benchmark.validation_size``) when a class would be left with no
    training or no validation sample."""
    import torch

    targets = attribute_tensor(dataset, "targets")
    validation: list[Any] = []
    for label in targets.unique().tolist():
        members = (targets == label).nonzero().flatten()
        n_valid = int(validation_size * len(members))
        if n_valid == 0 or n_valid == len(members):
            what = "validation" if n_valid == 0 else "training"
            raise ConfigError(
                SIZE_KEY,
                validation_size,
                f"a fraction in (0, 1) leaving every class of every experience training and validation "
                f"samples (class {label} of experience {experience} has {len(members)} training samples: "
                f"none would be left for {what})",
            )
        generator = torch.Generator().manual_seed(seed * 1_000_003 + experience * 1009 + int(label))
        validation.append(members[torch.randperm(len(members), generator=generator)[:n_valid]])
    held = torch.zeros(len(targets), dtype=torch.bool)
    held[torch.cat(validation)] = True
    return dataset.subset(torch.nonzero(~held).flatten().tolist()), dataset.subset(
        torch.nonzero(held).flatten().tolist()
    )


def with_validation_stream(benchmark: Benchmark, validation_size: float, seed: int) -> Benchmark:
    """``benchmark`` with a ``valid`` stream: ``validation_size`` of each training experience,
    stratified by class (:func:`stratified_split`), held out of training. ``validation_size`` 0:
    ``benchmark`` unchanged. Raises :class:`ConfigError` as :func:`stratified_split`."""
    if not validation_size:
        return benchmark
    from avalanche.benchmarks.scenarios.validation_scenario import benchmark_with_validation_stream

    experiences = iter(range(benchmark.n_experiences))

    def split(dataset: Any) -> tuple[Any, Any]:  # called once per training experience, in order
        return stratified_split(dataset, validation_size, seed, next(experiences))

    scenario = benchmark_with_validation_stream(benchmark.scenario, split_strategy=split)
    return replace(benchmark, scenario=with_origin_experience(scenario))


def first_experiences(benchmark: Benchmark, stop_after: int | None) -> Benchmark:
    """``benchmark`` cut to its first ``stop_after`` experiences in every stream (train, test,
    validation); the class split is the full benchmark's. ``None``: unchanged. Raises
    :class:`ConfigError` (``stop_after``) outside [1, n_experiences]."""
    if stop_after is None:
        return benchmark
    n = benchmark.n_experiences
    if not 1 <= stop_after <= n:
        raise ConfigError(
            "stop_after", stop_after, f"an integer in [1, {n}] (the benchmark's experiences) or null"
        )
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets

    streams = {
        name: [experience.dataset for experience in list(stream)[:stop_after]]
        for name, stream in benchmark.scenario.streams.items()
    }
    return replace(benchmark, scenario=with_origin_experience(benchmark_from_datasets(**streams)))


def held_out(benchmark: Benchmark) -> list[int] | None:
    """Validation samples held out of each training experience; None without a validation stream."""
    stream = benchmark.scenario.streams.get(VALID_STREAM)
    return None if stream is None else [len(experience.dataset) for experience in stream]
