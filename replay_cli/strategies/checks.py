"""Limits of Avalanche's methods that only the built benchmark reveals, named by a strategy's
``check`` key and called before training (see config.validation.validate_against_benchmark)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from replay_cli.errors import ConfigError


def single_head(cfg: DictConfig, benchmark: Any) -> None:
    """Methods that call the model without task labels (DER computing its stored logits, RAR tracing
    the model for its feature layer) cannot drive one head per task: raises :class:`ConfigError`
    on ``model.head`` when the run would build a multi-head model."""
    from replay_cli.models.networks import uses_multi_head

    head = cfg.model.get("head", "auto")
    if uses_multi_head(head, benchmark.n_tasks):
        raise ConfigError(
            "model.head",
            head,
            f"single with strategy={cfg.strategy.name} (Avalanche's method calls the model without task "
            f"labels; {benchmark.name} gives {benchmark.n_tasks} task label(s))",
        )


def rar_feature_node(cfg: DictConfig, model: Any) -> None:
    """RAR finds nearest samples in the features of one node of the model's traced graph
    (torchvision's ``create_feature_extractor``, as Avalanche's RARPlugin does): a name that is not
    a node raises :class:`ConfigError` listing those that are, before training instead of at the
    first replayed minibatch."""
    name = cfg.strategy.plugins.rar.get("name_ext_layer")
    if name is None:
        return
    from torchvision.models.feature_extraction import get_graph_node_names

    nodes = get_graph_node_names(model)[0][1:]  # the first is the input itself, not a feature
    if name not in nodes:
        raise ConfigError("strategy.plugins.rar.name_ext_layer", name, f"null or a node: {', '.join(nodes)}")


def whole_minibatches(cfg: DictConfig, benchmark: Any) -> None:
    """Avalanche's LaMAML trains with ``drop_last=True``: a mini-experience smaller than one
    minibatch is dropped whole, so under the online protocol smaller mini-experiences would train
    nothing. Raises :class:`ConfigError` naming ``protocol.experience_size``."""
    size, batch = cfg.protocol.get("experience_size"), cfg.strategy.train_mb_size
    if cfg.protocol.get("name") == "online" and size < batch:
        raise ConfigError(
            "protocol.experience_size",
            size,
            f"an integer >= {batch} (the training minibatch, strategy.train_mb_size) with "
            f"strategy={cfg.strategy.name} online (Avalanche's method drops an incomplete minibatch, so a "
            "smaller mini-experience trains nothing)",
        )
