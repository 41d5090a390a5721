"""``replay-run``: the Hydra entrypoint. Compose, validate, run; nothing heavy is imported before the
task starts, so ``--help``, ``--cfg`` and tab completion stay fast."""

from __future__ import annotations

import math
import os
import signal
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from replay_cli import errors

_failed_jobs: list[BaseException] = []


def threads_per_job(n_jobs: int) -> int:
    """Torch threads for one of ``n_jobs`` parallel jobs (-1: one job per core) on this machine."""
    cores = os.cpu_count() or 1
    return 1 if n_jobs in (-1, 0) or n_jobs >= cores else max(1, cores // n_jobs)


OmegaConf.register_new_resolver("threads_per_job", threads_per_job, replace=True)


def config_dir() -> str:
    """conf/ ships inside the wheel; an editable install reads the repository's top-level conf/."""
    packaged = Path(__file__).resolve().parent / "conf"
    return str(packaged if packaged.is_dir() else packaged.parent.parent / "conf")


def run(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> float | None:
    """Validate, print the config, train (or resume); returns the final average accuracy."""
    from replay_cli.config.validation import validate, validate_common_keys
    from replay_cli.training import resume

    checkpoint = None
    if cfg.resume or resume.has_checkpoint(run_dir):  # resume=..., or a requeued job in its own dir
        cfg, checkpoint = resume.prepare_resume(cfg, run_dir, overrides)
        done, total = resume.steps_done(checkpoint)
        if done == total:
            print(f"replay-run: {run_dir} already completed all {total} steps; nothing to resume")
            return _final_average(checkpoint["results"])
        print(f"replay-run: resuming {run_dir} after step {done} of {total}")
    validate(cfg)
    if checkpoint is None:
        validate_common_keys(cfg, overrides)
    if cfg.print_config:
        from replay_cli.reporting.console import print_config_tree

        print_config_tree(cfg)
    if cfg.num_threads:
        import torch

        torch.set_num_threads(cfg.num_threads)
    from replay_cli.training.experiment import run_experiment

    return run_experiment(cfg, run_dir, checkpoint=checkpoint).final_average_accuracy


def _final_average(results: dict) -> float:
    from replay_cli.reporting.results import RunResults

    return RunResults(**results).final_average_accuracy


def task(cfg: DictConfig) -> float | None:
    """Hydra's task function. A failing job reports one line, leaves a results.json that says so,
    and lets the other jobs of a sweep go on (returning NaN: no metric for sweepers)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_config = HydraConfig.get()
    run_dir = Path(hydra_config.runtime.output_dir)
    try:
        return run(cfg, run_dir, list(hydra_config.overrides.task))
    except errors.RunInterrupted:
        raise  # stop the whole sweep: the user or the scheduler asked for it
    except Exception as error:
        if not errors.one_line_errors_enabled():
            raise
        errors.report(error)
        _failed_jobs.append(error)
        if hydra_config.mode == RunMode.MULTIRUN:
            _record_failure(run_dir, cfg, error)  # so that the sweep summary can say why
        return math.nan


def _record_failure(run_dir: Path, cfg: DictConfig, error: BaseException) -> None:
    """A sweep job that failed before training still leaves a results.json saying why."""
    from replay_cli.reporting.results import RESULTS_FILE, write_json_atomic

    if (run_dir / RESULTS_FILE).exists():
        return
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except Exception:
        config = OmegaConf.to_container(cfg, resolve=False)
    write_json_atomic(
        run_dir / RESULTS_FILE,
        {"status": "failed", "error": errors.one_line(error), "experiences_done": 0, "config": config},
    )


def _interrupt_on_sigterm() -> None:
    """SLURM sends SIGTERM before preemption: treat it like Ctrl-C, so results are kept and the run
    says how to resume (exit status 143)."""

    def interrupt(signum: int, frame: object) -> None:
        raise errors.Interruption(128 + signum)

    signal.signal(signal.SIGTERM, interrupt)


def main() -> None:
    import hydra

    from replay_cli.sweeps import summary as sweep_summary
    from replay_cli.training import resume

    _interrupt_on_sigterm()
    with errors.reported_as_one_line():
        arguments = sys.argv[1:]
        if "--help" in arguments or "-h" in arguments:
            from replay_cli.help import render_help

            print(render_help(config_dir(), [a for a in arguments if not a.startswith("-")]))
            return
        sys.argv = [sys.argv[0], *resume.resume_argv(arguments)]
        hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(task)()
    if _failed_jobs and len(_failed_jobs) == 1 and not sweep_summary.failed_jobs_in_last_sweep:
        sys.exit(errors.exit_code(_failed_jobs[0]))
    if _failed_jobs or sweep_summary.failed_jobs_in_last_sweep:
        sys.exit(errors.EXIT_RUN_FAILED)


if __name__ == "__main__":
    main()
