"""Checkpoint state of replay methods as plain data (tensors, numbers, strings, lists, dicts), so that
a checkpoint loads with ``torch.load(weights_only=True)`` and a resumed run continues exactly.

Buffers are written against the documented attributes of Avalanche's storage policies (``buffer``,
``max_size``, ``buffer_groups``, ``seen_classes``, ``seen_groups``, ``selection_strategy``); what
Avalanche keeps private goes through :mod:`replay_cli.storage.avalanche_internals`. Samples are
saved as references (``samples_of(dataset)``: one (experience, index) row per sample) and rebuilt
from the same benchmark (``rebuild(references)``); the live buffer built from the run's config is
filled, never created here.

State a method keeps outside its ``ExemplarsBuffer`` (a strategy's own tensors, a plugin's memory)
is declared by the strategy config's ``state`` key: the dotted path of a :class:`StateAdapter`
(a module or an object with ``save`` and ``load``). A strategy or plugin whose state is neither a
supported buffer nor declared is *uncovered*: its checkpoint says why, and resuming it is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from replay_cli.storage import avalanche_internals as internals

SamplesOf = Callable[[Any], Any]  # AvalancheDataset -> LongTensor (N, 2) of (experience, index)
Rebuild = Callable[[Any], Any]  # LongTensor (N, 2) -> AvalancheDataset of those samples, in order
LOGITS = "logits"  # DER's buffers carry each sample's logits as this data attribute


@runtime_checkable
class StateAdapter(Protocol):
    """What a strategy config's ``state`` key names. ``save`` returns plain data only (tensors,
    numbers, strings, None, lists, dicts with string keys; datasets as ``samples_of(dataset)``);
    ``load`` puts it back into the freshly built strategy before training resumes."""

    def save(self, strategy: Any, samples_of: SamplesOf) -> dict[str, Any]: ...

    def load(self, strategy: Any, state: dict[str, Any], rebuild: Rebuild) -> None: ...


class BufferOnly:
    """The adapter of a method whose only state between steps, beyond model, optimizer, clock and
    RNGs, is its method buffer (saved anyway when of a supported kind): ``state:
    replay_cli.storage.state.buffer_only`` says so for a strategy class or plugin this module does
    not know (ER-ACE, MIR, GDumb...)."""

    def save(self, strategy: Any, samples_of: SamplesOf) -> dict[str, Any]:
        return {}

    def load(self, strategy: Any, state: dict[str, Any], rebuild: Rebuild) -> None:
        """Nothing beyond the buffer, which is loaded before."""


buffer_only = BufferOnly()


class UncoveredState(TypeError):
    """A buffer of a kind this module cannot save."""


# ---------------------------------------------------------------- buffers


def buffer_state(buffer: Any, samples_of: SamplesOf) -> dict[str, Any]:
    """Plain-data state of one of Avalanche's storage policies: ReservoirSamplingBuffer,
    ClassBalancedBuffer, ExperienceBalancedBuffer, ParametricBuffer (with its group buffers) and
    DER's ClassBalancedBufferWithLogits (with the logits). Raises :class:`UncoveredState` for any
    other kind (a subclass too: it may keep more)."""
    save, _ = _handlers(buffer)
    return {"kind": _kind(buffer).__name__, **save(buffer, samples_of)}


def load_buffer_state(buffer: Any, state: dict[str, Any], rebuild: Rebuild) -> None:
    """Fill ``buffer`` (built from the run's config, of the kind ``state`` was saved from) with
    ``state``. Raises :class:`UncoveredState` when the kinds differ or are not supported."""
    _, load = _handlers(buffer)
    if state.get("kind") != _kind(buffer).__name__:
        saved, built = state.get("kind"), _kind(buffer).__name__
        raise UncoveredState(f"the checkpoint holds a {saved} buffer, the run builds a {built}")
    load(buffer, state, rebuild)


def _handlers(buffer: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    from avalanche.training.storage_policy import (
        ClassBalancedBuffer,
        ExperienceBalancedBuffer,
        ParametricBuffer,
        ReservoirSamplingBuffer,
    )
    from avalanche.training.supervised.der import ClassBalancedBufferWithLogits

    kinds = {
        ReservoirSamplingBuffer: (_save_reservoir, _load_reservoir),
        ClassBalancedBuffer: (_save_class_groups, _load_class_groups),
        ClassBalancedBufferWithLogits: (_save_class_groups, _load_class_groups),
        ExperienceBalancedBuffer: (_save_experience_groups, _load_experience_groups),
        ParametricBuffer: (_save_parametric, _load_parametric),
    }
    if _kind(buffer) not in kinds:
        kind = type(buffer).__name__
        raise UncoveredState(f"its storage buffer is a {kind}, which checkpoints cannot hold")
    return kinds[_kind(buffer)]


def _kind(buffer: Any) -> type:
    """The Avalanche policy ``buffer`` is or mirrors (the fast path's position-keeping twins save
    and load as it, so a checkpoint resumes with the fast path on or off)."""
    from replay_cli.storage.indexed import AVALANCHE_KIND

    return AVALANCHE_KIND.get(type(buffer), type(buffer))


def _save_reservoir(buffer: Any, samples_of: SamplesOf) -> dict[str, Any]:
    state = {
        "max_size": buffer.max_size,
        "samples": samples_of(buffer.buffer),
        "weights": internals.reservoir_weights(buffer),
    }
    logits = getattr(buffer.buffer, LOGITS, None)
    if logits is not None and len(buffer.buffer):
        import torch

        state[LOGITS] = torch.stack([logits[i] for i in range(len(logits))])
    return state


def _load_reservoir(buffer: Any, state: dict[str, Any], rebuild: Rebuild) -> None:
    buffer.max_size = state["max_size"]
    buffer.buffer = _with_logits(rebuild(state["samples"]), state.get(LOGITS))
    internals.set_reservoir_weights(buffer, state["weights"])


def _with_logits(dataset: Any, logits: Any) -> Any:
    """``dataset`` carrying ``logits`` (N, classes) as DER's buffer does (returned in each sample)."""
    if logits is None:
        return dataset
    from avalanche.benchmarks.utils import make_avalanche_dataset
    from avalanche.benchmarks.utils.data_attribute import TensorDataAttribute
    from avalanche.benchmarks.utils.flat_data import FlatData

    values = FlatData([list(logits.unbind(0))], discard_elements_not_in_indices=True)
    attribute = TensorDataAttribute(values, name=LOGITS, use_in_getitem=True)
    return make_avalanche_dataset(dataset, data_attributes=[attribute])


def _save_groups(buffer: Any, samples_of: SamplesOf, save_group: Callable[..., Any]) -> list[Any]:
    """Group buffers in the dict's order (the order Avalanche resizes them in)."""
    return [[int(key), save_group(group, samples_of)] for key, group in buffer.buffer_groups.items()]


def _load_groups(
    buffer: Any, groups: list[Any], rebuild: Rebuild, new_group: Callable[[int], Any], load: Any
) -> None:
    buffer.buffer_groups.clear()
    for key, group_state in groups:
        group = new_group(group_state["max_size"])
        load(group, group_state, rebuild)
        buffer.buffer_groups[int(key)] = group


def _group_maker(buffer: Any) -> Callable[[int], Any]:
    """How ``buffer`` makes an empty reservoir group: its own way when it has one (the fast path's
    twins keep positions), else Avalanche's ``ReservoirSamplingBuffer``."""
    from avalanche.training.storage_policy import ReservoirSamplingBuffer

    return getattr(buffer, "new_group", ReservoirSamplingBuffer)


def _save_class_groups(buffer: Any, samples_of: SamplesOf) -> dict[str, Any]:
    return {
        "max_size": buffer.max_size,
        "seen": [int(c) for c in buffer.seen_classes],  # iteration order: it assigns group sizes
        "groups": _save_groups(buffer, samples_of, _save_reservoir),
    }


def _load_class_groups(buffer: Any, state: dict[str, Any], rebuild: Rebuild) -> None:
    buffer.max_size = state["max_size"]
    buffer.seen_classes.clear()
    buffer.seen_classes.update(state["seen"])
    _load_groups(buffer, state["groups"], rebuild, _group_maker(buffer), _load_reservoir)


def _save_experience_groups(buffer: Any, samples_of: SamplesOf) -> dict[str, Any]:
    return {
        "max_size": buffer.max_size,
        "experiences_seen": internals.experiences_seen(buffer),
        "groups": _save_groups(buffer, samples_of, _save_reservoir),
    }


def _load_experience_groups(buffer: Any, state: dict[str, Any], rebuild: Rebuild) -> None:
    buffer.max_size = state["max_size"]
    internals.set_experiences_seen(buffer, state["experiences_seen"])
    _load_groups(buffer, state["groups"], rebuild, _group_maker(buffer), _load_reservoir)


def _save_selected(group: Any, samples_of: SamplesOf) -> dict[str, Any]:
    if not internals.is_parametric_group_buffer(group):
        raise UncoveredState(f"a ParametricBuffer group is a {type(group).__name__}")
    return {"max_size": group.max_size, "samples": samples_of(group.buffer)}


def _load_selected(group: Any, state: dict[str, Any], rebuild: Rebuild) -> None:
    group.buffer = rebuild(state["samples"])


def _save_parametric(buffer: Any, samples_of: SamplesOf) -> dict[str, Any]:
    return {
        "max_size": buffer.max_size,
        "seen": [int(g) for g in buffer.seen_groups],
        "groups": _save_groups(buffer, samples_of, _save_selected),
    }


def _load_parametric(buffer: Any, state: dict[str, Any], rebuild: Rebuild) -> None:
    buffer.max_size = state["max_size"]
    buffer.seen_groups.clear()
    buffer.seen_groups.update(state["seen"])

    def new_group(max_size: int) -> Any:  # groups share the policy's selection strategy, as built
        return internals.parametric_group_buffer(max_size, buffer.selection_strategy)

    _load_groups(buffer, state["groups"], rebuild, new_group, _load_selected)


# ---------------------------------------------------------------- whole methods


def state_adapter(path: str | None) -> StateAdapter | None:
    """The :class:`StateAdapter` named by a strategy config's ``state`` key (None: none declared).
    Raises ``ConfigError`` when the path names nothing with ``save`` and ``load``."""
    if not path:
        return None
    from hydra.utils import get_object

    from replay_cli.errors import ConfigError

    allowed = (
        "the dotted path of a module or object with save(strategy, samples_of) and "
        "load(strategy, state, rebuild)"
    )
    try:
        adapter = get_object(path)
    except Exception:
        raise ConfigError("strategy.state", path, allowed) from None
    if not isinstance(adapter, StateAdapter):
        raise ConfigError("strategy.state", path, allowed)
    return adapter


def uncovered(strategy: Any, buffer: Any | None, adapter: StateAdapter | None) -> str | None:
    """Why a checkpoint of ``strategy`` would miss state it keeps between steps; None when model,
    optimizer, clock, RNGs, ``buffer`` (a supported kind) and ``adapter`` hold all of it.

    Covered without an adapter: Avalanche's Naive, Replay, JointTraining and DER; the ReplayPlugin
    (its storage policy is ``buffer``), the evaluation (Avalanche's and the run's
    :class:`~replay_cli.reporting.evaluation.EvalPhaseAccuracy`), periodic-evaluation and clock plugins, and
    replay-cli's own plugins
    (rebuilt from the config, they keep nothing between steps or save it themselves as adapters)."""
    if buffer is not None and (adapter is None or isinstance(adapter, BufferOnly)):
        try:
            _handlers(buffer)
        except UncoveredState as reason:
            return str(reason)
    if adapter is not None:
        return None
    from avalanche.training import DER, JointTraining, Naive, Replay
    from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
    from avalanche.training.plugins.clock import Clock
    from avalanche.training.templates.base_sgd import PeriodicEval

    from replay_cli.reporting.evaluation import EvalPhaseAccuracy

    known = (EvaluationPlugin, EvalPhaseAccuracy, ReplayPlugin, PeriodicEval, Clock)
    if type(strategy) not in (Naive, Replay, JointTraining, DER):
        return f"the {type(strategy).__name__} strategy keeps state that no strategy.state adapter saves"
    for plugin in strategy.plugins:
        if not (_stateless_ours(plugin) or isinstance(plugin, StateAdapter) or type(plugin) in known):
            return f"its {type(plugin).__name__} plugin keeps state that no strategy.state adapter saves"
    return None


def _stateless_ours(plugin: Any) -> bool:
    """A plugin of replay-cli's own keeps nothing between steps, unless it extends one of Avalanche's
    method plugins (BiC's), whose state comes with it."""
    mro = type(plugin).__mro__
    return mro[0].__module__.startswith("replay_cli.") and not any(
        c.__module__.startswith("avalanche.training.") for c in mro
    )


def method_state(
    strategy: Any, buffer: Any | None, adapter: StateAdapter | None, samples_of: SamplesOf
) -> dict[str, Any]:
    """Everything a method keeps between steps beyond model, optimizer, clock and RNGs:
    ``{"buffer": buffer_state | None, "strategy": adapter's state | None, "plugins": {position:
    state} of the plugins that are adapters themselves, "uncovered": reason | None}``.
    Never raises: a state that cannot be saved is recorded as uncovered (the run goes on; its
    resume is refused)."""
    reason = uncovered(strategy, buffer, adapter)
    state: dict[str, Any] = {"buffer": None, "strategy": None, "plugins": {}, "uncovered": reason}
    try:
        if buffer is not None and reason is None and (adapter is None or _supported(buffer)):
            state["buffer"] = buffer_state(buffer, samples_of)
        if adapter is not None:
            state["strategy"] = adapter.save(strategy, samples_of)
        state["plugins"] = {
            str(i): plugin.save(strategy, samples_of) for i, plugin in _stateful_plugins(strategy)
        }
    except Exception as error:  # a checkpoint never ends a run
        failure = f"saving its state failed ({type(error).__name__}: {error})"
        state.update(buffer=None, strategy=None, plugins={}, uncovered=failure)
    return state


def _stateful_plugins(strategy: Any) -> list[tuple[int, Any]]:
    """Plugins of ours that keep state between steps save it themselves, as a :class:`StateAdapter`
    (keyed by their position: the same config builds the same plugin list)."""
    return [(i, p) for i, p in enumerate(strategy.plugins) if isinstance(p, StateAdapter)]


def load_method_state(
    strategy: Any, buffer: Any | None, adapter: StateAdapter | None, state: dict[str, Any], rebuild: Rebuild
) -> None:
    """Put :func:`method_state`'s output back into the freshly built ``strategy`` and ``buffer``."""
    if buffer is not None and state["buffer"] is not None:
        load_buffer_state(buffer, state["buffer"], rebuild)
    if adapter is not None and state["strategy"] is not None:
        adapter.load(strategy, state["strategy"], rebuild)
    for i, plugin in _stateful_plugins(strategy):
        if str(i) in state.get("plugins", {}):
            plugin.load(strategy, state["plugins"][str(i)], rebuild)


def _supported(buffer: Any) -> bool:
    try:
        _handlers(buffer)
    except UncoveredState:
        return False
    return True
