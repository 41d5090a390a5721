"""The tuning objective: a validation metric by default, a test metric only when asked for."""

import pytest

from replay_cli.config.objective import DEFAULT_OBJECTIVE, objective_value, objectives
from replay_cli.config.validation import validate
from replay_cli.errors import ConfigError
from replay_cli.training.job import _objective
from tests.conftest import compose_config


def _results(test: float, validation: float | None) -> dict:
    block = None if validation is None else {"final_average_accuracy": validation, "forgetting": 0.1}
    return {"final_average_accuracy": test, "validation": block, "average_anytime_accuracy": None}


def test_the_objective_reads_the_validation_block_not_the_test_metric():
    # trial A is better on test, trial B on validation: the objective ranks B first
    trials = {"A": _results(0.9, 0.6), "B": _results(0.7, 0.8)}
    best = max(trials, key=lambda t: objective_value(trials[t], DEFAULT_OBJECTIVE))
    assert best == "B"
    assert max(trials, key=lambda t: objective_value(trials[t], "final_average_accuracy")) == "A"


def test_an_objective_the_run_lacks_is_none_so_the_trial_fails():
    assert objective_value(_results(0.9, None), DEFAULT_OBJECTIVE) is None
    assert objective_value(_results(0.9, 0.5), "average_anytime_accuracy") is None


def test_the_job_returns_the_configured_objective():
    from replay_cli.reporting.results import RunResults

    results = RunResults({}, n_experiences=2, n_steps=2, validation_samples=[3, 3])
    for row, val in (([0.9, 0.0], [0.5, 0.0]), ([0.6, 0.8], [0.4, 0.6])):
        results.add_step(
            row,
            len(results.accuracy_matrix) + 1,
            None,
            {"size": 0, "per_class": {}, "per_experience": {}, "per_task": {}},
            0.1,
            0.1,
        )
        results.add_validation(val, None)
    tuned = compose_config("hparams_search=optuna")
    assert _objective(tuned, results) == pytest.approx(0.5)  # validation: (0.4 + 0.6) / 2
    assert _objective(compose_config(), results) == pytest.approx(0.7)  # no hparams_search: test
    assert tuned.benchmark.validation_size == 0.1


def test_an_unknown_objective_is_refused_naming_the_choices():
    assert objectives()[0].startswith("validation.")
    with pytest.raises(
        ConfigError, match=r"hparams_search.objective=forgetting is invalid: expected one of: "
    ):
        validate(compose_config("hparams_search=optuna", "hparams_search.objective=forgetting"))


def test_a_run_without_the_objective_is_a_failed_trial_and_says_why(capsys):
    from replay_cli.reporting.results import RunResults

    results = RunResults({}, n_experiences=1, n_steps=1)  # no validation stream
    results.add_step(
        [0.9], 1, None, {"size": 0, "per_class": {}, "per_experience": {}, "per_task": {}}, 0.1, 0.1
    )
    assert _objective(compose_config("hparams_search=optuna"), results) is None
    assert "hparams_search.objective=validation.final_average_accuracy: this run has no such value" in (
        capsys.readouterr().out
    )
