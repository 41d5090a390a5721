"""Models with a named ``features`` block and a ``classifier`` head.

Feature-based storage policies (herding, closest_to_center) read the ``features`` output, so every
model here exposes that layer name. :class:`MultiHead` turns any of them into a task-incremental
model: the same ``features``, one output head per task label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from avalanche.models import MultiHeadClassifier, MultiTaskModule
from torch import nn

HEADS = ("auto", "single", "multi")
INITS = ("torch", "xavier")


def initialise(model: nn.Module, init: str = "torch") -> nn.Module:
    """``model`` with its weights initialised as ``init`` says, in place (returned for chaining).

    ``torch``: left as PyTorch's layer constructors made them. ``xavier``: as mammoth's backbones
    (``backbone/__init__.py``, ``xavier``, applied by its MNISTMLP): every ``nn.Linear`` weight drawn
    uniformly in ``[-a, a]`` with ``a = sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio 2010, gain 1)
    and its bias set to 0; convolutions and batch norms keep PyTorch's initialisation. Draws from
    torch's global generator in module order. Raises ValueError for another name."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: expected one of {', '.join(INITS)}")
    if init == "xavier":
        for module in model.modules():
            if type(module) is nn.Linear:  # mammoth: the module's class name is exactly 'Linear'
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    return model


class MLP(nn.Module):
    """Flatten, hidden ReLU layers (``features``), linear ``classifier``."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden_sizes: Sequence[int] = (256,),
        dropout: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class CNN(nn.Module):
    """Two conv blocks pooled to 4x4, then a hidden layer: works for 8x8 up to 32x32 inputs."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        hidden_size: int = 128,
        dropout: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = input_shape[0]
        for out_channels in channels:
            layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
            in_channels = out_channels
        layers += [nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(in_channels * 16, hidden_size), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class ResNet18(nn.Module):
    """The reduced ResNet-18 of GEM and the DER paper (3x3 stem, no max-pool, ``nf`` base filters: 64
    in DER's seq-CIFAR-10, 20 in the "slim" variant), as Avalanche builds it, split into ``features``
    and ``classifier``."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, nf: int = 64):
        super().__init__()
        from avalanche.models.slim_resnet18 import BasicBlock, ResNet

        net = ResNet(BasicBlock, [2, 2, 2, 2], num_classes, nf)
        stem = nn.Conv2d(input_shape[0], nf, kernel_size=3, stride=1, padding=1, bias=False)
        self.features = nn.Sequential(
            stem, net.bn1, nn.ReLU(), net.layer1, net.layer2, net.layer3, net.layer4,
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.classifier = net.linear

    def forward(self, x):
        return self.classifier(self.features(x))


class MultiHead(MultiTaskModule):
    """A single-head model's ``features`` with Avalanche's ``MultiHeadClassifier`` as ``classifier``:
    one head per task label, added as tasks arrive, each masked to the classes its task has seen."""

    def __init__(self, single_head: nn.Module, num_classes: int):
        super().__init__()
        self.features = single_head.features
        self.classifier = MultiHeadClassifier(
            single_head.classifier.in_features, initial_out_features=num_classes
        )
        self.max_class_label = num_classes  # outputs cover every class id from the start

    def forward_single_task(self, x, task_label):
        return self.classifier(self.features(x), task_label)


def uses_multi_head(head: str, n_tasks: int) -> bool:
    """``auto`` gives task-incremental benchmarks (more than one task label) a head per task."""
    return head == "multi" or (head == "auto" and n_tasks > 1)


def feature_extractor(model: nn.Module, method: str) -> nn.Module:
    """The model's ``features`` block (input -> feature vector), for methods that work in feature space.

    Raises :class:`~replay_cli.errors.UsageError` naming ``method`` when the model has none."""
    from replay_cli.errors import UsageError

    features = getattr(model, "features", None)
    if not isinstance(features, nn.Module):
        raise UsageError(
            f"strategy={method} needs a model with a `features` block (its feature extractor); "
            f"{type(model).__name__} has none: choose model=mlp, cnn or resnet18"
        )
    return features
