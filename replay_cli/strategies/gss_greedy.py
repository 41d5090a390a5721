"""GSS-greedy (Aljundi et al. 2019, "Gradient based sample selection for online continual learning"),
as Avalanche's ``GSS_greedy``: its buffer is a pair of tensors allocated up front, so the builder
reads their shape from the benchmark, and the composition is read from those tensors."""

from __future__ import annotations

from typing import Any

from replay_cli.strategies.build import BufferLabels


def build(*, benchmark: Any, **strategy_args: Any) -> Any:
    """``GSS_greedy`` with ``input_size`` = the benchmark's input shape (C, H, W)."""
    from avalanche.training import GSS_greedy

    return GSS_greedy(input_size=list(benchmark.input_shape), **strategy_args)


def buffer_labels(strategy: Any) -> BufferLabels:
    """Classes of the filled slots of GSS's memory (``ext_mem_list_y[:current_index]``). GSS keeps
    neither task labels (its replay dataset labels every sample task 0, reported as such) nor the
    experience a sample came from (per-experience counts stay empty)."""
    from avalanche.training.plugins import GSS_greedyPlugin

    plugin = next(p for p in strategy.plugins if isinstance(p, GSS_greedyPlugin))
    filled = plugin.ext_mem_list_current_index
    targets = [int(y) for y in plugin.ext_mem_list_y[:filled].tolist()]
    return BufferLabels(targets=targets, targets_task_labels=[0] * filled)
