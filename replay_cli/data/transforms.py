"""Image transforms of the classic benchmarks, applied to whole minibatches of uint8 images.

One :class:`ImageTransform` does, per sample, what Avalanche's default torchvision pipeline does:
optional random crop after zero padding and random horizontal flip (CIFAR training), then
``ToTensor``'s scaling to [0, 1] and ``Normalize``. On a batch ``(N, C, H, W)`` it draws every
sample's crop offsets and flip independently, with torchvision's distribution (offsets uniform in
``[0, 2 * padding]``, flip with probability 0.5). Called on one image ``(C, H, W)`` it is that
image's transform, so Avalanche's per-sample loaders and the batched fast path agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ImageTransform:
    """uint8 images -> normalised float32 images, on the images' device."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    padding: int = 0  # > 0: random crop to the input size after zero padding of this many pixels
    flip: bool = False  # random horizontal flip with probability 0.5

    @property
    def random(self) -> bool:
        return self.padding > 0 or self.flip

    def __call__(self, images: Any) -> Any:
        """``(N, C, H, W)`` or ``(C, H, W)`` uint8 -> the same shape, float32, normalised."""
        if images.dim() == 3:
            return self(images.unsqueeze(0))[0]
        if self.padding:
            images = random_crops(images, self.padding)
        if self.flip:
            images = random_flips(images)
        return normalised(images, self.mean, self.std)


def normalised(images: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
    """``ToTensor`` then ``Normalize``, bit for bit: ToTensor divides by 255 (v2's ``to_dtype``
    multiplies by 1/255, which rounds differently), and ``normalize`` subtracts and divides."""
    import torch
    from torchvision.transforms.v2 import functional as F

    return F.normalize(images.to(torch.float32).div(255), list(mean), list(std))


def random_crops(images: Any, padding: int) -> Any:
    """Each image zero-padded by ``padding`` and cropped back to its size at its own random offset.

    torchvision's ``RandomCrop`` draws one offset per call, so a batch would share it; here the
    padded batch is viewed as all its windows (``unfold``) and each image picks its own."""
    import torch
    from torchvision.transforms.v2 import functional as F

    n, _, height, width = images.shape
    padded = F.pad(images, [padding])
    windows = padded.unfold(2, height, 1).unfold(3, width, 1)  # N, C, 2p+1, 2p+1, H, W (a view)
    top, left = torch.randint(0, 2 * padding + 1, (2, n), device=images.device)
    return windows[torch.arange(n, device=images.device), :, top, left]


def random_flips(images: Any) -> Any:
    """Each image mirrored left-right with probability 0.5, independently."""
    import torch
    from torchvision.transforms.v2 import functional as F

    flip = torch.rand(len(images), device=images.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), F.horizontal_flip(images), images)


def reference_pipeline(transform: ImageTransform, size: int, pil_input: bool) -> Any:
    """The per-sample torchvision pipeline ``transform`` stands for (Avalanche's default transforms):
    ``pil_input`` for PIL images (CIFAR), else float tensors in [0, 1] (Avalanche's TensorMNIST)."""
    from torchvision import transforms as T

    steps: list[Any] = []
    if transform.padding:
        steps.append(T.RandomCrop(size, padding=transform.padding))
    if transform.flip:
        steps.append(T.RandomHorizontalFlip())
    if pil_input:
        steps.append(T.ToTensor())
    steps.append(T.Normalize(transform.mean, transform.std))
    return T.Compose(steps)
