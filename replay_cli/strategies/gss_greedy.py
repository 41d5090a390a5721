"""GSS-greedy (Aljundi et al. 2019, "Gradient based sample selection for online continual learning"),
as Avalanche's ``GSS_greedy``: its buffer is a pair of tensors allocated up front, so the builder
reads their shape from the benchmark, and the composition is read from those tensors."""

from __future__ import annotations

from typing import Any

from replay_cli.errors import ConfigError
from replay_cli.strategies.build import BufferLabels

MEMORY_BATCH = 32  # replayed samples per minibatch: Avalanche's ReplayDataLoader default, not settable


def build(*, benchmark: Any, mem_size: int, train_mb_size: int, **strategy_args: Any) -> Any:
    """``GSS_greedy`` with ``input_size`` = the benchmark's input shape (C, H, W).

    Raises :class:`ConfigError` when ``mem_size`` is below one minibatch (new plus replayed): GSS
    scores each minibatch against buffer subsets of its size and finds none in a smaller buffer."""
    from avalanche.training import GSS_greedy

    needed = train_mb_size + MEMORY_BATCH
    if mem_size < needed:
        raise ConfigError(
            "mem_size",
            mem_size,
            f"an integer >= {needed} with strategy=gss_greedy (one minibatch: batch_size {train_mb_size} "
            f"new + {MEMORY_BATCH} replayed)",
        )
    return GSS_greedy(
        input_size=list(benchmark.input_shape),
        mem_size=mem_size,
        train_mb_size=train_mb_size,
        **strategy_args,
    )


def buffer_labels(strategy: Any) -> BufferLabels:
    """Classes of the filled slots of GSS's memory (``ext_mem_list_y[:current_index]``). GSS keeps
    neither task labels (its replay dataset labels every sample task 0, reported as such) nor the
    experience a sample came from (per-experience counts stay empty)."""
    from avalanche.training.plugins import GSS_greedyPlugin

    plugin = next(p for p in strategy.plugins if isinstance(p, GSS_greedyPlugin))
    filled = plugin.ext_mem_list_current_index
    targets = [int(y) for y in plugin.ext_mem_list_y[:filled].tolist()]
    stored = plugin.ext_mem_list_x[:filled].nbytes + plugin.ext_mem_list_y[:filled].nbytes
    return BufferLabels(targets=targets, targets_task_labels=[0] * filled, stored_bytes=int(stored))


def check(cfg: Any, benchmark: Any) -> None:
    """Avalanche 0.6's GSS-greedy scores a minibatch against buffer subsets of the minibatch's size
    and fails ("max() arg is an empty sequence") while its buffer holds fewer samples than that; under
    the online protocol, mini-experiences smaller than one minibatch (new plus replayed) get there.
    Raises :class:`ConfigError` naming ``protocol.experience_size``."""
    needed = cfg.strategy.train_mb_size + MEMORY_BATCH
    size = cfg.protocol.get("experience_size")
    if size is not None and size < needed:
        raise ConfigError(
            "protocol.experience_size",
            size,
            f"an integer >= {needed} with strategy=gss_greedy (one minibatch: batch_size "
            f"{cfg.strategy.train_mb_size} new + {MEMORY_BATCH} replayed)",
        )
