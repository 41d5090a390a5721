"""The sweepers' and launchers' own setup lines stay off the console.

Optuna announces its study and every trial on the console at INFO level, and resets its logger's
level when imported (so a logging config cannot turn it down). replay-run's sweep prints its own
summary (sweep_summary.csv/json hold every trial's values), so the Optuna preset turns Optuna's
console lines down to warnings before the sweeper imports it.

Ray announces its token authentication and the local instance's dashboard address on the console
when the launcher starts it; the Ray preset sends those lines to the sweep's ``launcher.log``
(the jobs' own output still reaches the console through Ray)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class QuietOptuna(Callback):
    """Hydra callback of ``hparams_search=optuna``: Optuna logs warnings and errors only."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)


LAUNCHER_LOG = "launcher.log"


class QuietRay(Callback):
    """Hydra callback of ``launcher=ray``: what Ray's driver-side modules log (the token notice,
    the dashboard address) goes to ``<sweep dir>/launcher.log`` only. The handler sits on their
    logger (:data:`~replay_cli.sweeps.ray_internals.DRIVER_LOGGER`) because ``ray.init`` clears the
    handlers of the ``ray`` logger itself; the preset passes ``configure_logging: false`` so that
    it adds no console handler there."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        path = Path(config.hydra.sweep.dir) / LAUNCHER_LOG
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        from replay_cli.sweeps.ray_internals import DRIVER_LOGGER

        driver = logging.getLogger(DRIVER_LOGGER)
        driver.handlers = [handler]
        driver.setLevel(logging.INFO)
        driver.propagate = False
