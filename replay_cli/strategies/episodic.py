"""GEM (Lopez-Paz & Ranzato, NeurIPS 2017, "Gradient Episodic Memory for Continual Learning") and
A-GEM (Chaudhry et al., ICLR 2019, "Efficient Lifelong Learning with A-GEM"), as Avalanche's
``GEM`` and ``AGEM``: both keep an episodic memory of ``patterns_per_exp`` samples of each
experience, filled after training on it, and project each gradient so that the loss on that memory
does not grow (GEM: one constraint per experience, solved with quadprog; A-GEM: one constraint on the
average gradient of ``sample_size`` remembered samples). Their memories are not ``ExemplarsBuffer``s,
so the composition is read where each plugin keeps them."""

from __future__ import annotations

from typing import Any

from replay_cli.reporting.cost import buffer_bytes
from replay_cli.strategies.build import BufferLabels


def _plugin(strategy: Any, kind: type) -> Any:
    return next(p for p in strategy.plugins if isinstance(p, kind))


def gem_memory(strategy: Any) -> BufferLabels:
    """GEM's memory, experience by experience (``memory_y``/``memory_tid`` keyed by the experience
    counter): per class, per task label and per experience of origin; its bytes are those of the
    tensors it keeps (inputs, labels, task labels)."""
    from avalanche.training.plugins import GEMPlugin

    plugin = _plugin(strategy, GEMPlugin)
    targets: list[int] = []
    tasks: list[int] = []
    origin: list[int] = []
    for experience in sorted(plugin.memory_y):
        labels = plugin.memory_y[experience].tolist()
        targets += [int(y) for y in labels]
        tasks += [int(t) for t in plugin.memory_tid[experience].tolist()]
        origin += [int(experience)] * len(labels)
    kept = (plugin.memory_x, plugin.memory_y, plugin.memory_tid)
    stored = sum(int(tensor.nbytes) for memory in kept for tensor in memory.values())
    return BufferLabels(
        targets=targets, targets_task_labels=tasks, origin_experience=origin, stored_bytes=stored
    )


def agem_memory(strategy: Any) -> BufferLabels:
    """A-GEM's memory: one dataset per experience seen (``buffers``, in order), each a random subset
    of that experience's training data."""
    from avalanche.training.plugins import AGEMPlugin

    plugin = _plugin(strategy, AGEMPlugin)
    targets: list[int] = []
    tasks: list[int] = []
    origin: list[int] = []
    for experience, dataset in enumerate(plugin.buffers):
        targets += [int(y) for y in dataset.targets]
        tasks += [int(t) for t in dataset.targets_task_labels]
        origin += [experience] * len(dataset)
    stored = sum(buffer_bytes(dataset) or 0 for dataset in plugin.buffers)
    return BufferLabels(
        targets=targets, targets_task_labels=tasks, origin_experience=origin, stored_bytes=stored
    )


class GEMState:
    """GEM's checkpoint state (a :class:`replay_cli.storage.state.StateAdapter`, named by
    ``conf/strategy/gem.yaml``'s ``state`` key): its memory tensors, experience by experience. The
    gradient constraints are recomputed from them at every step, so nothing else is kept."""

    def save(self, strategy: Any, samples_of: Any) -> dict[str, Any]:
        from avalanche.training.plugins import GEMPlugin

        plugin = _plugin(strategy, GEMPlugin)
        order = sorted(plugin.memory_x)
        return {
            "experiences": order,
            "x": [plugin.memory_x[t] for t in order],
            "y": [plugin.memory_y[t] for t in order],
            "tid": [plugin.memory_tid[t] for t in order],
        }

    def load(self, strategy: Any, state: dict[str, Any], rebuild: Any) -> None:
        from avalanche.training.plugins import GEMPlugin

        plugin = _plugin(strategy, GEMPlugin)
        for key, memory in (("x", plugin.memory_x), ("y", plugin.memory_y), ("tid", plugin.memory_tid)):
            memory.clear()
            memory.update(zip(state["experiences"], state[key], strict=True))


gem_state = GEMState()
