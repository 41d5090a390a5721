"""The storage group's policy, built for the run's model."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from replay_cli.instantiate import complete


def build_storage_policy(storage: DictConfig, model: Any, positions: Any = None) -> Any:
    """An Avalanche ``ExemplarsBuffer`` from ``storage.policy``. Selection strategies that read the
    model's features (herding, closest-to-center) are configured as partials and get the model here.

    With ``positions`` (the fast path: the benchmark's
    :class:`~replay_cli.data.positions.SamplePositions`), the reservoir, class-balanced and
    experience-balanced policies come as their position-keeping twins
    (:mod:`replay_cli.storage.indexed`): the same draws and samples, without Avalanche's dataset
    concatenations at every update."""
    from hydra.utils import instantiate

    params = OmegaConf.to_container(storage.policy, resolve=True)
    selection = params.pop("selection_strategy", None)
    if selection is not None:
        params["selection_strategy"] = complete(instantiate(selection), model=model)
    policy = instantiate(params)
    if positions is None:
        return policy
    from replay_cli.storage.indexed import indexed

    return indexed(policy, positions)
