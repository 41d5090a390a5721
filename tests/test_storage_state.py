"""The storage state adapter: every supported buffer, saved after two experiences and loaded into a
buffer freshly built from the config, holds the same samples (and logits) and, given the same random
state, makes the same choices on the next experience as the buffer that was never saved."""

from __future__ import annotations

import io
import random
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import TensorDataset

from replay_cli.data.origin import sample_references
from replay_cli.storage.build import build_storage_policy
from replay_cli.storage.state import UncoveredState, buffer_state, load_buffer_state, method_state, uncovered
from replay_cli.strategies.build import build_strategy
from replay_cli.training import builders
from replay_cli.training.checkpoint import dataset_rebuilder
from tests.conftest import compose_config


def through_a_file(state: dict) -> dict:
    """What torch.save / torch.load(weights_only=True) give back: plain data only survives."""
    handle = io.BytesIO()
    torch.save(state, handle)
    handle.seek(0)
    return torch.load(handle, weights_only=True)


def contents(buffer) -> dict:
    """Sample references of the buffer and of each group (in order), and the logits if any."""
    groups = getattr(buffer, "buffer_groups", {})
    found = {
        "all": sample_references(buffer.buffer).tolist(),
        "groups": {k: sample_references(g.buffer).tolist() for k, g in groups.items()},
        "sizes": {k: g.max_size for k, g in groups.items()},
    }
    if hasattr(buffer.buffer, "logits"):
        found["logits"] = [buffer.buffer.logits[i].tolist() for i in range(len(buffer.buffer))]
    return found


def same_random_state(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def built(*overrides: str):
    cfg = compose_config("strategy=replay", *overrides)
    benchmark = builders.build_benchmark(cfg)
    model = builders.build_model(cfg, benchmark)
    return cfg, benchmark, build_strategy(cfg, model)


@pytest.mark.parametrize(
    "storage",
    [
        ("storage=reservoir",),
        ("storage=class_balanced",),
        (
            "storage=class_balanced",
            "storage.policy.adaptive_size=false",
            "storage.policy.total_num_classes=10",
        ),
        ("storage=experience_balanced",),
        ("storage=herding",),
        ("storage=closest_to_center", "storage.policy.groupby=experience"),
        ("storage=random", "storage.policy.groupby=null"),
    ],
    ids=lambda o: " ".join(o),
)
def test_a_saved_buffer_continues_as_the_unsaved_one(storage):
    cfg, benchmark, strategy = built("mem_size=30", *storage)
    experiences = list(benchmark.train_stream)
    original = build_storage_policy(cfg.storage, strategy.model)
    for experience in experiences[:2]:
        strategy.clock.train_exp_counter = experience.current_experience
        original.post_adapt(strategy, experience)

    state = through_a_file(buffer_state(original, sample_references))
    restored = build_storage_policy(cfg.storage, strategy.model)
    load_buffer_state(restored, state, dataset_rebuilder(benchmark))
    assert contents(restored) == contents(original)
    fixed_shares = "storage.policy.adaptive_size=false" in storage  # 3 per class, 4 classes seen
    assert len(original.buffer) == (12 if fixed_shares else 30)

    for buffer in (original, restored):
        same_random_state(7)
        buffer.post_adapt(strategy, experiences[2])
    assert contents(restored) == contents(original)


def test_ders_buffer_keeps_its_logits():
    from avalanche.training import DER

    _, benchmark, strategy = built()
    experiences = list(benchmark.train_stream)

    def der():
        return DER(model=strategy.model, optimizer=strategy.optimizer, mem_size=30, train_mb_size=16)

    original = der()
    for experience in experiences[:2]:
        original.experience = experience
        with torch.no_grad():  # different logits per experience, as training would give
            next(original.model.parameters()).add_(0.5)
        original.storage_policy.update(original)
    state = through_a_file(buffer_state(original.storage_policy, sample_references))
    assert state["kind"] == "ClassBalancedBufferWithLogits"

    restored = der()
    load_buffer_state(restored.storage_policy, state, dataset_rebuilder(benchmark))
    before = contents(original.storage_policy)
    assert len(before["logits"]) == 30 and len({tuple(row) for row in before["logits"]}) > 1
    assert contents(restored.storage_policy) == before
    *_, logits = restored.storage_policy.buffer[0]  # what DER's replay loader reads: x, y, t, logits
    assert logits.tolist() == before["logits"][0]

    for strategy_ in (original, restored):
        same_random_state(3)
        strategy_.experience = experiences[2]
        strategy_.storage_policy.update(strategy_)
    assert contents(restored.storage_policy) == contents(original.storage_policy)


def test_an_unsupported_buffer_is_named_not_saved_wrongly():
    from avalanche.training.storage_policy import ReservoirSamplingBuffer

    class MyBuffer(ReservoirSamplingBuffer):
        """A subclass may keep more than its parent: not saved as one."""

    with pytest.raises(UncoveredState, match="MyBuffer"):
        buffer_state(MyBuffer(10), sample_references)
    _, _, strategy = built()
    state = method_state(strategy, MyBuffer(10), None, sample_references)
    assert state["buffer"] is None and "MyBuffer" in state["uncovered"]


def test_what_is_covered_without_an_adapter():
    from avalanche.training.plugins import LwFPlugin

    _, _, strategy = built()
    assert uncovered(strategy, strategy.plugins[0].storage_policy, None) is None
    strategy.plugins.append(LwFPlugin())
    assert "LwFPlugin plugin keeps state" in uncovered(strategy, None, None)

    class Adapter:
        def save(self, strategy, samples_of):
            return {}

        def load(self, strategy, state, rebuild):
            pass

    assert uncovered(strategy, None, Adapter()) is None


def test_a_failing_adapter_is_recorded_not_raised():
    _, _, strategy = built()

    class Broken:
        def save(self, strategy, samples_of):
            raise RuntimeError("disk on fire")

        def load(self, strategy, state, rebuild):
            pass

    state = method_state(strategy, None, Broken(), sample_references)
    assert state["uncovered"] == "saving its state failed (RuntimeError: disk on fire)"


def test_the_private_buffer_parts_the_adapter_reads_are_there():
    """Fails loudly on an Avalanche upgrade that moves what storage/avalanche_internals.py reads."""
    import avalanche
    from avalanche.benchmarks.utils import AvalancheDataset
    from avalanche.training.storage_policy import (
        ExemplarsBuffer,
        ExperienceBalancedBuffer,
        RandomExemplarsSelectionStrategy,
        ReservoirSamplingBuffer,
    )

    from replay_cli.storage import avalanche_internals as internals

    assert avalanche.__version__ == internals.PINNED_AVALANCHE

    def data(*values: float) -> AvalancheDataset:
        return AvalancheDataset([TensorDataset(torch.tensor(values).unsqueeze(1))])

    reservoir = ReservoirSamplingBuffer(1)
    assert isinstance(internals.reservoir_weights(reservoir), torch.Tensor)
    reservoir.buffer = data(-1.0)
    internals.set_reservoir_weights(reservoir, torch.tensor([2.0]))  # above any new weight in [0, 1)
    reservoir.update_from_dataset(data(0.0, 1.0, 2.0))
    assert reservoir.buffer[0][0].item() == -1.0, "the update reads the weights the adapter sets"
    assert internals.reservoir_weights(reservoir).tolist() == [2.0]

    balanced = ExperienceBalancedBuffer(6)
    assert internals.experiences_seen(balanced) == 0
    internals.set_experiences_seen(balanced, 2)
    balanced.post_adapt(None, SimpleNamespace(dataset=data(0.0, 1.0)))
    assert list(balanced.buffer_groups) == [2], "the next group is named by the count the adapter sets"
    assert internals.experiences_seen(balanced) == 3

    selection = RandomExemplarsSelectionStrategy()
    group = internals.parametric_group_buffer(4, selection)
    assert isinstance(group, ExemplarsBuffer) and group.selection_strategy is selection
    assert internals.is_parametric_group_buffer(group) and group.max_size == 4


def test_the_state_key_names_an_adapter_or_is_refused_in_one_line():
    from replay_cli.errors import ConfigError
    from replay_cli.storage.state import state_adapter
    from replay_cli.strategies import cumulative

    assert state_adapter("replay_cli.strategies.cumulative") is cumulative
    assert state_adapter(None) is None
    for wrong in ("replay_cli.strategies.no_such_method", "replay_cli.errors"):  # missing; no save/load
        with pytest.raises(ConfigError, match=rf"strategy.state={wrong} is invalid: expected the dotted"):
            state_adapter(wrong)


def test_buffer_only_covers_a_known_buffer_not_an_unknown_one():
    from avalanche.training.plugins import LwFPlugin
    from avalanche.training.storage_policy import ReservoirSamplingBuffer

    from replay_cli.storage.state import buffer_only, state_adapter

    _, _, strategy = built()
    strategy.plugins.append(LwFPlugin())  # stands for a plugin whose only state is the buffer
    buffer = strategy.plugins[0].storage_policy
    assert state_adapter("replay_cli.storage.state.buffer_only") is buffer_only
    state = method_state(strategy, buffer, buffer_only, sample_references)
    assert state["uncovered"] is None and state["buffer"]["kind"] == type(buffer).__name__

    class MyBuffer(ReservoirSamplingBuffer):
        pass

    assert "MyBuffer" in method_state(strategy, MyBuffer(5), buffer_only, sample_references)["uncovered"]
