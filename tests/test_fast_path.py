"""The fast path changes how batches are fetched, never what is computed: same batches, same random
draws, same results.json as the plain Avalanche path."""

import pytest
import torch
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset
from avalanche.benchmarks.utils.data_loader import ReplayDataLoader
from torch.utils.data import DataLoader

from replay_cli.config.validation import validate
from replay_cli.data.fast_path import is_plain_tensor_data, speed_up
from replay_cli.errors import ConfigError
from tests.conftest import compose_config


@pytest.mark.parametrize(
    "overrides",
    [
        ("storage=class_balanced", "strategy.train_epochs=2"),
        ("storage=reservoir", "task_balanced_dataloader=true", "strategy.train_epochs=1"),
    ],
)
def test_fast_path_gives_the_plain_paths_results_on_split_digits(run_in_process, tmp_path, overrides):
    fast = run_in_process(*overrides, "fast_path=true", run_dir=tmp_path / "fast")
    plain = run_in_process(*overrides, "fast_path=false", run_dir=tmp_path / "plain")
    assert fast["accuracy_matrix"] == plain["accuracy_matrix"]
    assert fast["buffer_composition"] == plain["buffer_composition"]
    assert fast["final_average_accuracy"] > 0.5


def replay_loader(seed: int) -> ReplayDataLoader:
    generator = torch.Generator().manual_seed(seed)
    data = tensor_dataset(torch.rand(100, 3, generator=generator), torch.arange(100) % 4)
    memory = tensor_dataset(torch.rand(10, 3, generator=generator), torch.arange(10) % 2)
    return ReplayDataLoader(data, memory, oversample_small_tasks=True, batch_size=8, batch_size_mem=4)


def epochs(loader, n: int = 2) -> tuple[list, torch.Tensor]:
    torch.manual_seed(0)
    batches = [batch for _ in range(n) for batch in loader]
    return batches, torch.get_rng_state()


def test_batches_and_random_draws_are_those_of_avalanches_replay_loader():
    plain_batches, plain_rng = epochs(replay_loader(1))
    fast, fields = speed_up(replay_loader(1))
    assert fields is not None
    fast_batches, fast_rng = epochs(fast)
    assert len(fast_batches) == len(plain_batches) == 2 * 13
    for ours, theirs in zip(fast_batches, plain_batches, strict=True):
        assert [t.dtype for t in ours] == [t.dtype for t in theirs]
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert torch.equal(fast_rng, plain_rng)


def test_a_plain_pytorch_loader_keeps_its_batches_and_random_draws():
    data = tensor_dataset(torch.rand(50, 3), torch.arange(50) % 5)
    plain_batches, plain_rng = epochs(DataLoader(data, batch_size=8, shuffle=True))
    fast, fields = speed_up(DataLoader(data, batch_size=8, shuffle=True))
    assert fields is not None
    fast_batches, fast_rng = epochs(fast)
    for ours, theirs in zip(fast_batches, plain_batches, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert torch.equal(fast_rng, plain_rng)


def test_transformed_data_stays_on_the_plain_path():
    data = tensor_dataset(torch.rand(10, 3), torch.arange(10))
    assert is_plain_tensor_data(data)
    transformed = data.replace_current_transform_group(lambda x: x * 2)
    assert not is_plain_tensor_data(transformed)
    loader = ReplayDataLoader(transformed, data, batch_size=2, batch_size_mem=2)
    assert speed_up(loader) == (loader, None)


def test_fast_path_is_a_boolean_switch_on_by_default():
    assert compose_config().fast_path is True
    with pytest.raises(ConfigError, match="fast_path"):
        validate(compose_config("fast_path=1"))
