"""Feature (latent) replay as Avalanche's ``FeatureReplay``, after PR-ACE (Magistri et al., ICLR 2024,
"Elastic Feature Consolidation for Cold Start Exemplar-Free Incremental Learning"): after each
experience the ``features`` of its samples (the model's output before ``classifier``) go into a
class-balanced buffer; new data is learnt with cross-entropy masked to the experience's classes, and the
classifier alone is trained on replayed features of every class seen."""

from __future__ import annotations

from typing import Any


def build(*, criterion: Any, mask: str, **kwargs: Any) -> Any:
    """``FeatureReplay(criterion=MaskedCrossEntropy(mask=mask), last_layer_name="classifier", ...)``:
    the run's plain cross-entropy is replaced by the masked one the method is defined with; its replay
    loss is a plain cross-entropy of its own. ``mask`` ``new`` (the default here): the new data's
    loss covers the classes of the current experience only, as PR-ACE and Avalanche's docstring say;
    Avalanche's constructor default, ``MaskedCrossEntropy()``, masks to the classes ``seen``, which
    on split_digits forgets as fine-tuning does (0.18 against 0.71 with ``new``, 2 epochs, seed 0)."""
    from avalanche.training.losses import MaskedCrossEntropy
    from avalanche.training.supervised.feature_replay import FeatureReplay

    return FeatureReplay(criterion=MaskedCrossEntropy(mask=mask), last_layer_name="classifier", **kwargs)


def check(cfg: Any, benchmark: Any) -> None:
    """Raises :class:`~replay_cli.errors.ConfigError` under ``protocol=online``: the masked
    cross-entropy reads each experience's ``classes_in_this_experience``, which Avalanche 0.6's online
    mini-experiences (``OnlineCLExperience``) do not have (it failed at the first mini-experience)."""
    from replay_cli.errors import ConfigError

    if cfg.protocol.get("name") == "online":
        raise ConfigError(
            "protocol",
            "online",
            "offline with strategy=feature_replay (its masked cross-entropy reads the experience's classes, "
            "which Avalanche's online mini-experiences do not carry)",
        )
