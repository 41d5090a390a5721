"""Batched image transforms: normalisation equals torchvision's per-sample pipeline bit for bit;
random crops and flips are valid ones, drawn per sample with torchvision's distribution."""

import pytest
import torch
from torchvision import transforms as T

from replay_cli.data.benchmarks import CLASSIC
from replay_cli.data.datasets import ImageArrays, ImageSamples
from replay_cli.data.transforms import ImageTransform, reference_pipeline


@pytest.mark.parametrize("generator", ["SplitMNIST", "SplitFMNIST", "SplitCIFAR10", "SplitCIFAR100"])
def test_normalised_batches_equal_torchvisions_per_sample_result_exactly(generator):
    spec = CLASSIC[generator]
    channels = len(spec.mean)
    images = torch.randint(
        0, 256, (64, channels, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    _, evaluation = spec.transforms()
    per_sample = reference_pipeline(evaluation, 32, spec.pil)
    samples = ImageSamples(ImageArrays(images, torch.zeros(64, dtype=torch.long)), spec.pil)
    expected = torch.stack([per_sample(samples[i][0]) for i in range(64)])
    batched = evaluation(images)
    assert batched.dtype == expected.dtype == torch.float32
    assert torch.equal(batched, expected)
    assert torch.equal(evaluation(images[5]), expected[5])  # one image: the same transform


def test_mnist_reference_is_avalanches_normalize_on_tensor_mnist_values():
    images = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    transform = ImageTransform((0.1307,), (0.3081,))
    expected = T.Normalize((0.1307,), (0.3081,))(images[0].float() / 255.0)
    assert torch.equal(transform(images)[0], expected)


def crops_and_flips(image: torch.Tensor, padding: int) -> dict[bytes, tuple[int, int, bool]]:
    """Every valid output for ``image``: each crop of the zero-padded image, flipped or not."""
    padded = torch.nn.functional.pad(image, [padding] * 4)
    size = image.shape[-1]
    found = {}
    for top in range(2 * padding + 1):
        for left in range(2 * padding + 1):
            crop = padded[:, top : top + size, left : left + size]
            found[crop.contiguous().numpy().tobytes()] = (top, left, False)
            found[crop.flip(-1).contiguous().numpy().tobytes()] = (top, left, True)
    return found


def test_random_crops_and_flips_are_valid_and_drawn_per_sample_like_torchvision():
    torch.manual_seed(0)
    image = torch.randint(1, 256, (3, 32, 32), dtype=torch.uint8)  # no zero: padding is recognisable
    n = 4000
    augment = ImageTransform((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), padding=4, flip=True)
    out = augment(image.expand(n, 3, 32, 32).contiguous())
    assert out.shape == (n, 3, 32, 32)
    valid = crops_and_flips(image, 4)
    # undo the scaling exactly: mean 0, std 1 leaves x / 255
    raw = (out * 255).round().to(torch.uint8)
    draws = [valid.get(raw[i].contiguous().numpy().tobytes()) for i in range(n)]
    assert all(d is not None for d in draws), "every output is a crop of the padded image, maybe flipped"
    tops = torch.tensor([d[0] for d in draws])
    lefts = torch.tensor([d[1] for d in draws])
    flips = torch.tensor([d[2] for d in draws], dtype=torch.float32)
    # torchvision: offsets uniform on 0..2p, independently; flip with probability 0.5
    for offsets in (tops, lefts):
        counts = torch.bincount(offsets, minlength=9)
        assert len(counts) == 9 and int(counts.min()) > 0
        assert torch.all((counts.float() / n - 1 / 9).abs() < 0.03)  # 1/9 = 0.111, sd about 0.005
    assert abs(float(flips.mean()) - 0.5) < 0.04  # sd about 0.008
    assert len({(int(t), int(x)) for t, x in zip(tops, lefts, strict=True)}) == 81  # every offset pair
    assert len(set(map(tuple, torch.stack([tops, lefts, flips.long()], 1).tolist()))) > 150


def test_the_batched_and_per_sample_pipelines_draw_the_same_kinds_of_crops():
    """torchvision's RandomCrop + flip on the same image lands in the same set of valid outputs."""
    torch.manual_seed(1)
    image = torch.randint(1, 256, (3, 32, 32), dtype=torch.uint8)
    valid = crops_and_flips(image, 4)
    reference = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()])
    assert all(reference(image).contiguous().numpy().tobytes() in valid for _ in range(200))
