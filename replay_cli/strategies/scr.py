"""SCR (Mai et al. 2021, "Supervised Contrastive Replay"), as Avalanche's ``SCR``: the model's
``features`` followed by a projection head train with a supervised contrastive loss on each replay
minibatch and its augmented copy; evaluation classifies by the nearest class mean of the buffer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from replay_cli.errors import ConfigError


class PerSample(nn.Module):
    """Apply ``transform`` to every sample of a batch with its own random draw (the reference's kornia
    augmentations draw per sample; torchvision's would draw once per batch)."""

    def __init__(self, transform: Any):
        super().__init__()
        self.transform = transform

    def forward(self, batch: Any) -> Any:
        import torch

        return torch.stack([self.transform(sample) for sample in batch])


def augmentations(
    input_shape: Sequence[int],
    crop_scale: Sequence[float],
    horizontal_flip_p: float,
    color_jitter: Sequence[float],
    color_jitter_p: float,
    grayscale_p: float,
) -> PerSample:
    """The reference's SCR augmentations at the benchmark's image size: random resized crop, flip,
    colour jitter (brightness, contrast, saturation, hue), grayscale; colour steps leave one-channel
    images as they are where they need three channels."""
    from torchvision.transforms import v2

    return PerSample(
        v2.Compose(
            [
                v2.RandomResizedCrop(tuple(input_shape[-2:]), scale=tuple(crop_scale), antialias=True),
                v2.RandomHorizontalFlip(horizontal_flip_p),
                v2.RandomApply([v2.ColorJitter(*color_jitter)], p=color_jitter_p),
                v2.RandomGrayscale(grayscale_p),
            ]
        )
    )


def feature_width(features: nn.Module, input_shape: Sequence[int]) -> int:
    """Width of ``features``' output for one input of ``input_shape`` (read once, in eval mode)."""
    import copy

    import torch

    probe = copy.deepcopy(features).cpu().eval()
    with torch.no_grad():
        return int(probe(torch.zeros(1, *input_shape)).flatten(1).shape[1])


def check(cfg: Any, benchmark: Any) -> None:
    """SCR's augmentations (crop, flip, colour jitter, grayscale) read images of shape
    ``[channels, height, width]`` with 1 or 3 channels: other inputs (a vector of ``synthetic``
    features) raise :class:`ConfigError` naming ``benchmark.input_shape`` before training instead of
    a TypeError at the first minibatch."""
    shape = list(benchmark.input_shape)
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise ConfigError(
            "benchmark.input_shape",
            shape,
            "an image shape [channels, height, width] with 1 or 3 channels with strategy=scr "
            "(its augmentations crop, flip and colour-jitter images)",
        )


def build(
    *,
    model: Any,
    criterion: Any,
    benchmark: Any,
    projection_size: int,
    augment: dict[str, Any],
    **strategy_args: Any,
) -> Any:
    """``SCR`` on ``SCRModel(model.features, projection)``, the projection an MLP (width -> width ->
    ``projection_size``) as in the reference; ``criterion`` is unused (SCR brings its own loss). The
    optimizer, built on ``model``, is reset by Avalanche to the SCR model's parameters on the first
    experience, so the projection head trains too."""
    from avalanche.models import SCRModel
    from avalanche.training import SCR

    width = feature_width(model.features, benchmark.input_shape)
    projection = nn.Sequential(
        nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, projection_size)
    )
    return SCR(
        model=SCRModel(feature_extractor=model.features, projection=projection),
        augmentations=augmentations(benchmark.input_shape, **augment),
        **strategy_args,
    )
