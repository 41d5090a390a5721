"""What a tuning sweep maximises: ``hparams_search.objective``, a metric of results.json, by default
the validation stream's final average accuracy, so that the selection never sees the test stream.

A ``validation.<metric>`` objective reads results.json's ``validation`` block; any other name a test
metric, which the sweep says once, since a configuration chosen on the test stream reports an
optimistic number (Chaudhry et al. 2019, A-GEM, section 5; mammoth's ``--validation``).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from replay_cli.errors import ConfigError
from replay_cli.keys import HIGHER_IS_BETTER, VALIDATION_PREFIX, metric_value

OBJECTIVE_KEY = "hparams_search.objective"
DEFAULT_OBJECTIVE = "validation.final_average_accuracy"


def objectives() -> tuple[str, ...]:
    """Every metric an objective may name (validation ones first): the higher-is-better ones, since
    the sweepers here maximise."""
    names = [name for name, higher in HIGHER_IS_BETTER.items() if higher and name != "train_seconds"]
    return tuple(sorted(names, key=lambda name: not name.startswith(VALIDATION_PREFIX)))


def objective_value(results: dict[str, Any], objective: str) -> float | None:
    """The value of ``objective`` in a run's results.json (as a dict); None when the run has none
    (no validation stream, no anytime curve), which makes the trial a failed one."""
    return metric_value(results, objective)


def check_objective_data(cfg: DictConfig) -> None:
    """A ``validation.<metric>`` objective reads the validation stream: without one
    (``benchmark.validation_size=0``) every trial would train and then fail for want of a value."""
    objective = OmegaConf.select(cfg, OBJECTIVE_KEY)
    if objective is None or uses_test_stream(objective):
        return
    size = OmegaConf.select(cfg, "benchmark.validation_size", default=0)
    if not size:
        raise ConfigError(
            "benchmark.validation_size",
            size,
            f"a fraction in (0, 1) with {OBJECTIVE_KEY}={objective} (it reads the validation stream; "
            f"or choose a test metric: {OBJECTIVE_KEY}={objective.removeprefix(VALIDATION_PREFIX)})",
        )


def uses_test_stream(objective: str) -> bool:
    return not objective.startswith(VALIDATION_PREFIX)


def test_stream_notice(objective: str) -> str:
    """The one line a sweep selecting on the test stream prints."""
    return (
        f"replay-run: {OBJECTIVE_KEY}={objective} selects on the test stream: the best trial's test "
        f"numbers are optimistic (choose {VALIDATION_PREFIX}{objective} to select on held-out data)"
    )
