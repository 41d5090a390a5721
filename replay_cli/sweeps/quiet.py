"""Optuna announces its study and every trial on the console at INFO level, and resets its logger's
level when imported (so a logging config cannot turn it down). replay-run's sweep prints its own
summary (sweep_summary.csv/json hold every trial's values), so the Optuna preset turns Optuna's
console lines down to warnings before the sweeper imports it."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class QuietOptuna(Callback):
    """Hydra callback of ``hparams_search=optuna``: Optuna logs warnings and errors only."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
