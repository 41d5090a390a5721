"""Meta-learning rehearsal: MER (Riemer et al., ICLR 2019, "Learning to Learn without Forgetting by
Maximizing Transfer and Minimizing Interference") and La-MAML (Gupta et al., NeurIPS 2020,
"Look-ahead Meta Learning for Continual Learning"), as Avalanche's ``MER`` and
``supervised.lamaml_v2.LaMAML`` (torch.func; no ``higher``). Both keep a reservoir buffer
(``ReservoirSamplingBuffer``, updated after each experience) inside ``strategy.buffer``, where
neither the composition nor the checkpoint would look, so this module reads and saves it; La-MAML
also learns one learning rate per parameter (``alpha_params``), saved with it."""

from __future__ import annotations

from typing import Any

from torch import nn

from replay_cli.storage.state import buffer_state, load_buffer_state


def reservoir(strategy: Any) -> Any:
    """The ``ReservoirSamplingBuffer`` MER and La-MAML keep as ``strategy.buffer.storage_policy``."""
    return strategy.buffer.storage_policy


def buffer_samples(strategy: Any) -> Any:
    """The reservoir's dataset (for :func:`replay_cli.reporting.metrics.buffer_composition`)."""
    return reservoir(strategy).buffer


class TaskLabelsIgnored(nn.Module):
    """A single-head model called as La-MAML calls every model, ``model(x, task_labels)``
    (``torch.func.functional_call(model, params, (x, t))``): the task labels are dropped. (It does
    not alias the wrapped model's blocks: a module registered twice breaks La-MAML's fast weights.)"""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Any, task_labels: Any = None) -> Any:
        return self.model(x)


def build_lamaml(*, model: nn.Module, **kwargs: Any) -> Any:
    """``LaMAML(model=..., **kwargs)``; a model that is not an Avalanche ``MultiTaskModule`` (whose
    forward takes the task labels) is wrapped in :class:`TaskLabelsIgnored`. Note: La-MAML
    re-initialises the model's linear and convolutional weights (Kaiming normal, zero biases), as
    the reference does."""
    from avalanche.models import MultiTaskModule
    from avalanche.training.supervised.lamaml_v2 import LaMAML

    if not isinstance(model, MultiTaskModule):
        model = TaskLabelsIgnored(model)
    return LaMAML(model=model, **kwargs)


def save(strategy: Any, samples_of: Any) -> dict[str, Any]:
    """The reservoir (as :func:`replay_cli.storage.state.buffer_state`) and, for La-MAML, its
    learnt per-parameter learning rates (``[[name, tensor], ...]``; None before the first experience)."""
    alphas = getattr(strategy, "alpha_params", None)
    learnt = getattr(strategy, "alpha_params_initialized", False)
    return {
        "reservoir": buffer_state(reservoir(strategy), samples_of),
        # [name, tensor] pairs in the model's parameter order: La-MAML pairs them with the parameters
        # by position
        "alpha_params": [[k, v.detach().cpu().clone()] for k, v in alphas.items()] if learnt else None,
    }


def load(strategy: Any, state: dict[str, Any], rebuild: Any) -> None:
    """Refill the reservoir; give La-MAML back its learning rates (its SGD optimizer over them is
    rebuilt at the start of every experience, as Avalanche does)."""
    import torch

    load_buffer_state(reservoir(strategy), state["reservoir"], rebuild)
    if state.get("alpha_params") is not None:
        alphas = nn.ParameterDict()  # filled in order: built from a plain dict it would sort its keys
        for name, value in state["alpha_params"]:
            alphas[name] = nn.Parameter(value.clone(), requires_grad=True)
        strategy.alpha_params = alphas.to(strategy.device)
        strategy.alpha_params_initialized = True
        strategy.optimizer_alpha = torch.optim.SGD(strategy.alpha_params.parameters(), lr=strategy.lr_alpha)
