"""The fast path changes how batches are fetched, never what is computed: same batches, same random
draws, same results.json as the plain Avalanche path."""

import functools

import pytest
import torch
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset
from avalanche.benchmarks.utils.classification_dataset import lookup
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


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from tests.tiny_datasets import WRITERS

    root = tmp_path_factory.mktemp("data")
    for name in ("split_mnist", "split_cifar10"):
        WRITERS[name](root)
    return root


def test_split_mnist_on_the_fast_path_gives_the_plain_paths_results(run_in_process, tmp_path, tiny_root):
    """Normalisation per minibatch gives the values of torchvision's per-sample transform: same run."""
    common = (
        "benchmark=split_mnist",
        f"benchmark.dataset_root={tiny_root}",
        "mem_size=20",
        "batch_size_mem=8",
    )
    fast = run_in_process(*common, "fast_path=true", run_dir=tmp_path / "fast")
    plain = run_in_process(*common, "fast_path=false", run_dir=tmp_path / "plain")
    assert fast["config"]["benchmark"]["batched_transforms"] is True
    assert plain["config"]["benchmark"]["batched_transforms"] is False
    assert fast["accuracy_matrix"] == plain["accuracy_matrix"]
    assert fast["buffer_composition"] == plain["buffer_composition"]
    assert fast["final_average_accuracy"] > 0.3


def test_the_fast_path_serves_augmented_cifar_batches(tiny_root):
    """Training batches of split_cifar10 come from the batched loader: normalised floats, and the
    random crops differ from the plain centre image (so augmentation ran per batch)."""
    from avalanche.benchmarks.utils.data_loader import TaskBalancedDataLoader

    from replay_cli.data.benchmarks import classic

    bench = classic("c", "SplitCIFAR10", 5, seed=0, dataset_root=str(tiny_root), download=False)
    data = bench.train_stream[0].dataset.train()
    loader, fields = speed_up(TaskBalancedDataLoader(data, batch_size=10, shuffle=False))
    assert fields is not None and fields[0][0].dtype == torch.uint8
    ((x, y, _),) = list(loader)
    assert x.dtype == torch.float32 and x.shape == (10, 3, 32, 32)
    eval_x = torch.stack([bench.train_stream[0].dataset.eval()[i][0] for i in range(10)])
    assert not torch.equal(x, eval_x)
    assert torch.equal(y, torch.tensor([int(data[i][1]) for i in range(10)]))


def test_avalanche_internals_the_fast_path_reads_are_there():
    """Fails loudly when an Avalanche upgrade moves what replay_cli.data.avalanche_internals reads."""
    from importlib.metadata import version

    from avalanche.benchmarks.utils.data_loader import MultiDatasetDataLoader

    from replay_cli.data import avalanche_internals
    from replay_cli.data.transforms import ImageTransform

    assert version("avalanche-lib") == avalanche_internals.PINNED_AVALANCHE, "re-check avalanche_internals.py"
    transform, other = ImageTransform((0.5,), (0.5,)), ImageTransform((0.1,), (0.3,))
    images = torch.randint(0, 256, (20, 1, 4, 4), dtype=torch.uint8)
    data = tensor_dataset(images, torch.arange(20) % 4)
    one = data.replace_current_transform_group(transform)
    trees = [
        data,
        one,
        one.subset([3, 1, 2]).concat(one.subset([0])),
        one.subset([3, 1]).concat(data.replace_current_transform_group(other).subset([0])),
        one.subset([5, 6]).concat(data.subset([7])),
        one.eval(),
    ]
    flat = trees[2]._flat_data
    assert all(hasattr(flat, a) for a in ("_datasets", "_indices", "_cumulative_sizes", "_transform_groups"))
    assert hasattr(flat, "_frozen_transform_groups") and hasattr(trees[2], "_data_attributes")
    assert avalanche_internals.sample_transform(one) is transform
    # the contract: what the fast path reads, transformed as it says, is what __getitem__ gives
    for tree in trees:
        found = avalanche_internals.sample_transform(tree)
        fields = avalanche_internals.gather(tree, torch.arange(len(tree)))
        assert found is not avalanche_internals.UNSUPPORTED and fields is not None
        inputs = found(fields[0]) if found is not None else fields[0]
        assert torch.equal(inputs, torch.stack([tree[i][0] for i in range(len(tree))]))
        assert torch.equal(fields[1], torch.tensor([int(tree[i][1]) for i in range(len(tree))]))
        targets = avalanche_internals.attribute_values(tree, "targets")
        assert targets is not None and targets.tolist() == [int(t) for t in tree.targets]
        shuffled = torch.randperm(len(tree), generator=torch.Generator().manual_seed(len(tree)))
        picked = avalanche_internals.gather(tree, shuffled)  # across the children, in any order
        assert all(torch.equal(p, f[shuffled]) for p, f in zip(picked, fields, strict=True))
        inputs, located = avalanche_internals.gather_rows(tree, shuffled)  # the inputs left in place
        assert inputs.data_ptr() == images.data_ptr() and torch.equal(inputs[located[0]], picked[0])
        assert all(torch.equal(p, g) for p, g in zip(picked[1:], located[1:], strict=True))
    two_leaves = one.concat(tensor_dataset(images.clone(), torch.arange(20) % 4))
    assert avalanche_internals.gather_rows(two_leaves, torch.arange(40)) is None
    # the cost accounting's read: the loss function criterion() calls
    from avalanche.training import Naive

    model = torch.nn.Linear(4, 2)
    loss = torch.nn.CrossEntropyLoss()
    naive = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), criterion=loss)
    assert avalanche_internals.loss_function(naive) is loss
    assert avalanche_internals.gather(two_leaves, torch.arange(40)) is not None
    loader = ReplayDataLoader(data, data.subset([0, 1]), batch_size=4, batch_size_mem=2)
    assert callable(MultiDatasetDataLoader._get_loader) and callable(loader._create_samplers)
    for name in ("batch_sizes", "distributed_sampling", "loader_kwargs", "termination_dataset"):
        assert hasattr(loader, name), name
    assert hasattr(loader, "oversample_small_datasets") and hasattr(loader, "never_ending")
    # nc_benchmark's class mapping: the label transform the gather applies itself
    assert avalanche_internals._class_mapping(functools.partial(lookup, [2, 0, 1])) == [2, 0, 1]


def test_avalanche_internals_build_method_datasets_and_writable_experiences():
    """The private constructors and the read-only experience dataset that the methods' memories
    (stream replay, iCaRL) and BiC's plugin rely on: an Avalanche upgrade that moves them fails here."""
    from torch.utils.data import TensorDataset

    from replay_cli.data import avalanche_internals

    x, y = torch.randn(6, 1, 2, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    view = avalanche_internals.tensor_classification_dataset(x, y, task_labels=[0] * 6)
    assert len(view) == 6 and list(view.targets) == y.tolist()
    assert list(view.targets_task_labels) == [0] * 6
    wrapped = avalanche_internals.classification_dataset(TensorDataset(x, y), targets=y.tolist())
    assert len(wrapped) == 6 and list(wrapped.targets) == y.tolist()

    from replay_cli.data.benchmarks import split_digits

    experience = split_digits().train_stream[0]
    with pytest.raises(AttributeError):
        experience.dataset = view  # read-only in Avalanche 0.6: why BiC gets a writable copy
    copy = avalanche_internals.writable_experience(experience)
    copy.dataset = view
    assert copy.dataset is view and experience.dataset is not view


def test_the_replay_loader_of_a_classic_benchmark_is_served_batched(tiny_root):
    """nc_benchmark freezes a class mapping on its labels: the replay loader over an experience and
    a buffer of an earlier one still takes the fast path, with the same (mapped) labels."""
    from replay_cli.data.benchmarks import classic

    bench = classic("m", "SplitMNIST", 5, seed=3, dataset_root=str(tiny_root), download=False)
    first, second = (bench.train_stream[i].dataset.train() for i in (0, 1))
    memory = first.concat(second).subset(torch.arange(0, len(first) + len(second), 2))

    def loader() -> ReplayDataLoader:
        return ReplayDataLoader(second, memory, oversample_small_tasks=True, batch_size=4, batch_size_mem=4)

    plain_batches, plain_rng = epochs(loader())
    fast, fields = speed_up(loader())
    assert fields is not None
    fast_batches, fast_rng = epochs(fast)
    for ours, theirs in zip(fast_batches, plain_batches, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    labels = {int(y) for batch in fast_batches for y in batch[1]}
    seen = (bench.train_stream[i].classes_in_this_experience for i in (0, 1))
    assert labels == set().union(*seen) and labels != {0, 1, 2, 3}
    assert torch.equal(fast_rng, plain_rng)


def test_a_mini_experience_and_a_buffer_kept_as_positions_are_served_from_the_stream():
    """Online, the replay loader over a mini-experience and the buffer's view is served by position
    from the training stream gathered once: same batches and random draws as the plain loader."""
    from avalanche.benchmarks.scenarios.online import split_online_stream
    from avalanche.training.storage_policy import ClassBalancedBuffer

    from replay_cli.data.fast_path import FastPathPlugin
    from replay_cli.storage.indexed import indexed
    from replay_cli.training import builders

    benchmark = builders.build_benchmark(compose_config())
    policy = indexed(ClassBalancedBuffer(50), benchmark.positions)
    minis = list(split_online_stream([benchmark.train_stream[0]], experience_size=10))
    for mini in minis[:8]:
        policy.post_adapt(None, mini)
    new = minis[8].dataset.train()

    def loader() -> ReplayDataLoader:
        return ReplayDataLoader(
            new, policy.buffer, oversample_small_tasks=True, batch_size=10, batch_size_mem=10
        )

    plain_batches, plain_rng = epochs(loader())
    plugin = FastPathPlugin(benchmark.positions)
    served = plugin._served_from_stream(loader(), "cpu")
    assert served is not None
    _, inputs, fields = plugin._stream_fields("cpu")  # the stream's inputs are not copied: rows of them
    assert (
        inputs is not None
        and fields[0].dtype == torch.long
        and len(fields[0]) == len(benchmark.positions.source)
    )
    fast_batches, fast_rng = epochs(served)
    assert len(fast_batches) == len(plain_batches) == 2
    for ours, theirs in zip(fast_batches, plain_batches, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert torch.equal(fast_rng, plain_rng)
