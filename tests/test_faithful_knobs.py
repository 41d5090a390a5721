"""The knobs a preset uses to follow its source: ``benchmark.normalize`` (inputs in [0, 1] or
normalised as Avalanche does) and ``model.init`` (PyTorch's or mammoth's Xavier initialisation)."""

import math

import pytest
import torch
from torch import nn

from tests.conftest import compose_config
from tests.tiny_datasets import write_idx_dataset


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    write_idx_dataset(root / "MNIST" / "raw", per_class=2, test_per_class=1)
    return root


@pytest.mark.parametrize("batched", [True, False])
def test_normalize_false_gives_inputs_in_unit_range_as_to_tensor_alone(mnist_root, batched):
    from replay_cli.data import datasets
    from replay_cli.data.benchmarks import classic

    _, raw = datasets.load(datasets.MNIST, str(mnist_root), download=False)
    kwargs = {"dataset_root": str(mnist_root), "batched_transforms": batched, "seed": 0}
    plain = classic("x", "SplitMNIST", 5, normalize=False, **kwargs)
    normalised = classic("x", "SplitMNIST", 5, **kwargs)
    dataset = plain.test_stream[0].dataset
    x = dataset[0][0]
    assert x.dtype == torch.float32 and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # the very values ToTensor gives: the uint8 image divided by 255
    matches = [torch.equal(x, image.float().div(255)) for image in raw.images]
    assert any(matches)
    x_norm = normalised.test_stream[0].dataset[0][0]
    assert torch.allclose(x_norm, (x - 0.1307) / 0.3081, atol=1e-6)
    assert float(x_norm.min()) < 0.0  # the default normalises: black pixels below zero


def test_normalize_reaches_the_built_benchmark_from_config(mnist_root):
    from replay_cli.training.builders import build_benchmark

    cfg = compose_config(
        "benchmark=split_mnist", f"benchmark.dataset_root={mnist_root}", "benchmark.normalize=false"
    )
    x = build_benchmark(cfg).train_stream[0].dataset[0][0]
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_xavier_init_follows_mammoth_linear_layers_only():
    from replay_cli.models.networks import CNN, MLP, initialise

    torch.manual_seed(0)
    model = initialise(MLP((1, 28, 28), 10, hidden_sizes=(100, 100)), "xavier")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(100, 784), (100, 100), (10, 100)]
    for layer in linears:
        fan_out, fan_in = layer.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert float(layer.weight.abs().max()) <= bound
        assert float(layer.weight.abs().max()) > 0.9 * bound  # uniform over the whole range
        assert torch.count_nonzero(layer.bias) == 0
    # the draws of mammoth's own formula, in module order, from the same generator state
    torch.manual_seed(0)
    reference = MLP((1, 28, 28), 10, hidden_sizes=(100, 100))
    for layer in (m for m in reference.modules() if isinstance(m, nn.Linear)):
        a = math.sqrt(3.0) * math.sqrt(2.0 / (layer.weight.size(1) + layer.weight.size(0)))
        layer.weight.data.uniform_(-a, a)
        layer.bias.data.fill_(0.0)
    for ours, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    torch.manual_seed(0)
    cnn = CNN((1, 8, 8), 10)
    convolution = cnn.features[0].weight.clone()
    initialise(cnn, "xavier")
    assert torch.equal(cnn.features[0].weight, convolution)  # convolutions keep PyTorch's init
    assert torch.count_nonzero(cnn.classifier.bias) == 0


def test_model_init_from_config_torch_by_default():
    from replay_cli.data.benchmarks import split_digits
    from replay_cli.training.builders import build_model

    benchmark = split_digits()
    default = build_model(compose_config(), benchmark)
    xavier = build_model(compose_config("model.init=xavier"), benchmark)
    assert torch.count_nonzero(default.classifier.bias) > 0  # PyTorch's init draws biases
    assert torch.count_nonzero(xavier.classifier.bias) == 0
    assert torch.count_nonzero(xavier.features[1].bias) == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.init=he", "model.init=he is invalid: expected one of: torch, xavier"),
        ("benchmark.normalize=maybe", "benchmark.normalize=maybe is invalid"),
    ],
)
def test_bad_knob_values_are_one_line(override, message, tmp_path):
    from tests.conftest import replay_run

    benchmark = [] if override.startswith("model") else ["benchmark=split_mnist"]
    result = replay_run(*benchmark, override, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not list(tmp_path.glob("outputs/runs/*"))
