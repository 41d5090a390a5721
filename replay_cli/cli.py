"""``replay-run``: the Hydra entrypoint. Compose, validate, run; nothing heavy is imported before the
task starts, so ``--help``, ``--cfg`` and tab completion stay fast."""

from __future__ import annotations

import math
import os
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


def run(cfg: DictConfig, run_dir: Path) -> float | None:
    """Validate, print the config, train; returns the final average accuracy."""
    from replay_cli.validation import validate

    validate(cfg)
    if cfg.print_config:
        from replay_cli.console import print_config_tree

        print_config_tree(cfg)
    if cfg.num_threads:
        import torch

        torch.set_num_threads(cfg.num_threads)
    from replay_cli.experiment import run_experiment

    return run_experiment(cfg, run_dir).final_average_accuracy


def task(cfg: DictConfig) -> float | None:
    """Hydra's task function. A failing job reports one line, leaves a results.json that says so,
    and lets the other jobs of a sweep go on (returning NaN: no metric for sweepers)."""
    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        return run(cfg, run_dir)
    except Exception as error:
        if not errors.one_line_errors_enabled():
            raise
        errors.report(error)
        _failed_jobs.append(error)
        _record_failure(run_dir, cfg, error)
        return math.nan


def _record_failure(run_dir: Path, cfg: DictConfig, error: BaseException) -> None:
    """A job that failed before training still leaves a results.json saying why."""
    from replay_cli.results import RESULTS_FILE, write_json_atomic

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


def main() -> None:
    import hydra

    from replay_cli import sweep_summary

    with errors.reported_as_one_line():
        hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(task)()
    if _failed_jobs and len(_failed_jobs) == 1 and not sweep_summary.failed_jobs_in_last_sweep:
        sys.exit(errors.exit_code(_failed_jobs[0]))
    if _failed_jobs or sweep_summary.failed_jobs_in_last_sweep:
        sys.exit(errors.EXIT_RUN_FAILED)


if __name__ == "__main__":
    main()
