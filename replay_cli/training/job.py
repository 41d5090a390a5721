"""One Hydra job of ``replay-run``: resume or start the run, show the config once, train.

A single run lets its error out to the command (one line, the exit status of
:func:`replay_cli.errors.exit_code`); a sweep job records its failure in results.json and returns
no value, so that the sweeper marks that job or trial failed and the others go on.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from replay_cli import errors
from replay_cli.config.objective import OBJECTIVE_KEY, objective_value, test_stream_notice, uses_test_stream
from replay_cli.reporting.results import RunResults


def task(cfg: DictConfig) -> float | None:
    """Hydra's task function: the run's final average accuracy, or under ``hparams_search`` its
    objective (:mod:`replay_cli.config.objective`); None for a failed sweep job or an objective the run
    has not (a value every sweeper takes as "failed": the pinned Optuna refuses NaN and would stop the
    study)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_config = HydraConfig.get()
    run_dir = Path(hydra_config.runtime.output_dir)
    sweep_job = hydra_config.mode == RunMode.MULTIRUN
    first_job = not sweep_job or str(hydra_config.job.get("num", 0)) == "0"
    try:
        return run(cfg, run_dir, list(hydra_config.overrides.task), show_config=first_job)
    except BaseException as error:
        if not errors.one_line_errors_enabled():
            raise
        if not sweep_job or isinstance(error, (errors.RunInterrupted, KeyboardInterrupt)):
            raise errors.JobEnded(error) from error  # the command reports it; a sweep stops here
        errors.report(error)
        record_failure(run_dir, cfg, error)  # so that the sweep summary can say why
        return None


def run(cfg: DictConfig, run_dir: Path, overrides: list[str], show_config: bool = True) -> float | None:
    """Validate, train (or resume) and return the final average accuracy, or the tuning objective
    ``hparams_search.objective`` when set. The config tree is printed once the checks on the built
    benchmark and model have passed, and only by the first job of a sweep (with the line saying that
    a test objective selects on the test stream)."""
    from replay_cli.config.validation import validate, validate_common_keys
    from replay_cli.reporting.console import steps_done_text
    from replay_cli.training import resume

    checkpoint = None
    if cfg.resume or resume.has_checkpoint(run_dir):  # resume=..., or a requeued job in its own dir
        cfg, checkpoint = resume.prepare_resume(cfg, run_dir, overrides)
        done, total = resume.steps_done(checkpoint)
        if done == total:
            print(f"replay-run: {run_dir} already completed all {total} steps; nothing to resume")
            return _objective(cfg, RunResults(**checkpoint["results"]))
        print(f"replay-run: resuming {run_dir} {steps_done_text(done, total)}")
    validate(cfg)
    if checkpoint is None:
        validate_common_keys(cfg, overrides)
    if cfg.num_threads:
        import torch

        torch.set_num_threads(cfg.num_threads)
    from replay_cli.training.experiment import run_experiment

    def show() -> None:
        if cfg.print_config and show_config:
            from replay_cli.reporting.console import print_config_tree

            print_config_tree(cfg)
        objective = OmegaConf.select(cfg, OBJECTIVE_KEY)
        if show_config and objective is not None and uses_test_stream(objective):
            print(test_stream_notice(objective))

    return _objective(cfg, run_experiment(cfg, run_dir, checkpoint=checkpoint, on_built=show))


def _objective(cfg: DictConfig, results: RunResults) -> float | None:
    """What the sweeper maximises: ``hparams_search.objective`` of the run, else its final average
    accuracy."""
    objective = OmegaConf.select(cfg, OBJECTIVE_KEY)
    if objective is None:
        return results.final_average_accuracy
    value = objective_value(results.to_dict(), objective)
    if value is None:
        print(
            f"replay-run: {OBJECTIVE_KEY}={objective}: this run has no such value; the trial counts as failed"
        )
    return value


def record_failure(run_dir: Path, cfg: DictConfig, error: BaseException) -> None:
    """A sweep job that failed before training still leaves a results.json saying why."""
    from replay_cli.reporting.results import RESULTS_FILE, write_json_atomic
    from replay_cli.reporting.schema import SCHEMA_VERSION

    if (run_dir / RESULTS_FILE).exists():
        return
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:
        config = OmegaConf.to_container(cfg, resolve=False)
    write_json_atomic(
        run_dir / RESULTS_FILE,
        {
            "schema_version": SCHEMA_VERSION,
            "status": "failed",
            "error": errors.one_line(error),
            "experiences_done": 0,
            "config": config,
        },
    )
