"""AR1 with latent replay (Lomonaco et al., CVPR-W 2020, "Rehearsal-Free Continual Learning over
Small Non-I.I.D. Batches"; Pellegrini et al., IROS 2020, "Latent Replay for Real-Time Continual
Learning") is in Avalanche 0.6 as ``AR1``, but that class builds its own model,
``MobilenetV1(pretrained=True)``, whose ImageNet weights pytorchcv downloads at construction: no
argument turns the download off, and the class takes neither the run's model nor its optimizer.
replay-cli never downloads weights, so ``strategy=ar1`` is refused before anything is built."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from replay_cli.errors import ConfigError


def refuse(cfg: DictConfig, benchmark: Any) -> None:
    """Always raises :class:`ConfigError` naming ``strategy`` and the methods that do run."""
    raise ConfigError(
        "strategy",
        "ar1",
        "a method that runs without downloaded weights (Avalanche 0.6's AR1 always builds MobileNetV1 "
        "with pretrained=True, downloading ImageNet weights, and ignores the model group): for latent "
        "replay use strategy=feature_replay",
    )
