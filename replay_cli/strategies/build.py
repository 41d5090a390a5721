"""Build the configured strategy. A strategy's config names an Avalanche strategy class (or a small
builder with the same call signature) as ``_target_`` with the method's own arguments, its Avalanche
plugins under ``plugins``, the run's top-level keys it reads under ``uses``, and, when it keeps state
beyond its buffer, the adapter that checkpoints it under ``state`` (see
:mod:`replay_cli.storage.state`); adding a method is one config file."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from replay_cli.instantiate import complete, instantiate_group

# Strategy keys read here, not passed to the strategy's constructor; ``check``: a function (cfg,
# benchmark) raising ConfigError for settings the method cannot run with (see validate_against_benchmark);
# ``model_check``: the same for (cfg, model), once the model is built (see validate_model_needs).
_LABELS = (
    "name",
    "uses",
    "plugins",
    "device",
    "buffer_reader",
    "model_needs",
    "model_check",
    "state",
    "check",
    "online_loop",
)


def resolve_device(requested: str) -> str:
    """``auto`` picks CUDA when present (validation already refused CUDA where there is none)."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def build_strategy(
    cfg: DictConfig, model: Any, extra_plugins: Sequence[Any] = (), benchmark: Any = None
) -> Any:
    """The strategy for ``model``, evaluated per test experience (accuracy per experience and on the
    stream), with the method's own plugins first and then ``extra_plugins`` (loading, progress).

    A method that ``uses`` storage gets the storage group's policy: its ``_partial_`` plugins (the
    ReplayPlugin) are completed with it. A builder that declares a ``benchmark`` parameter (GSS's
    input size, iCaRL's class timeline) gets the run's :class:`~replay_cli.data.benchmarks.Benchmark`;
    no other target sees it."""
    import inspect

    import torch
    from hydra.utils import instantiate

    from replay_cli.reporting.evaluation import EvalPhaseAccuracy
    from replay_cli.storage.build import build_storage_policy

    s = cfg.strategy
    storage_policy = None
    if "storage" in s.uses:
        # the fast path keeps buffers as positions, unless the stream reservoir fills it
        stream_reservoir = cfg.get("replay_update") == "iteration" and cfg.storage.name == "reservoir"
        by_position = cfg.get("fast_path") and not stream_reservoir and benchmark
        positions = benchmark.positions if by_position else None
        storage_policy = build_storage_policy(cfg.storage, model, positions)
    plugins = [complete(instantiate(node), storage_policy=storage_policy) for node in s.plugins.values()]
    make_strategy = instantiate_group(s, labels=_LABELS, _partial_=True)
    if "benchmark" in inspect.signature(make_strategy.func).parameters:
        make_strategy = functools.partial(make_strategy, benchmark=benchmark)
    return make_strategy(
        model=model,
        optimizer=instantiate_group(cfg.optimizer)(model.parameters()),
        criterion=torch.nn.CrossEntropyLoss(),
        device=resolve_device(s.device),
        plugins=[*plugins, *extra_plugins],
        evaluator=EvalPhaseAccuracy(),
    )


def method_buffer(strategy: Any) -> Any | None:
    """The replay buffer the method itself keeps (an Avalanche ``ExemplarsBuffer``): the
    ``storage_policy`` of the strategy or of one of its plugins; None for methods without one."""
    from avalanche.training.storage_policy import ExemplarsBuffer

    for owner in (strategy, *strategy.plugins):
        buffer = getattr(owner, "storage_policy", None)
        if isinstance(buffer, ExemplarsBuffer):
            return buffer
    return None


@dataclass(frozen=True)
class BufferLabels:
    """The labels of the samples a method keeps in its own, non-``ExemplarsBuffer`` memory (GSS's
    tensors, iCaRL's exemplar sets), shaped as :func:`replay_cli.reporting.metrics.buffer_composition`
    reads a dataset: one entry per sample; ``origin_experience`` None where the method does not know
    a sample's experience of origin; ``stored_bytes`` what the memory takes (inputs as the method
    stores them, labels), None where unknown."""

    targets: list[int]
    targets_task_labels: list[int]
    origin_experience: list[int] | None = None
    stored_bytes: int | None = None

    def __len__(self) -> int:
        return len(self.targets)


def buffer_samples(strategy: Any, reader: str | None = None) -> Any:
    """What the method's buffer holds, for the composition: the AvalancheDataset of its
    ``ExemplarsBuffer`` (:func:`method_buffer`), or, for a method whose config names a
    ``buffer_reader`` (a dotted path to a function ``strategy -> BufferLabels``), what that reads;
    None for methods without a buffer."""
    if reader is not None:
        from hydra.utils import get_method

        return get_method(reader)(strategy)
    buffer = method_buffer(strategy)
    return buffer.buffer if buffer is not None else None
