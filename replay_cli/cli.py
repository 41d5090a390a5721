"""``replay-run``: the Hydra entrypoint. Compose, validate, run; nothing heavy is imported before the
task starts, so ``--help``, ``--cfg`` and tab completion stay fast."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from replay_cli import errors

_failed_jobs: list[BaseException] = []


def config_dir() -> str:
    """conf/ ships inside the wheel; an editable install reads the repository's top-level conf/."""
    packaged = Path(__file__).resolve().parent / "conf"
    return str(packaged if packaged.is_dir() else packaged.parent.parent / "conf")


def run(cfg: DictConfig) -> float | None:
    """Validate, print the config, train; returns the final average accuracy."""
    from hydra.core.hydra_config import HydraConfig

    from replay_cli.validation import validate

    validate(cfg)
    if cfg.print_config:
        from replay_cli.console import print_config_tree

        print_config_tree(cfg)
    from replay_cli.experiment import run_experiment

    results = run_experiment(cfg, Path(HydraConfig.get().runtime.output_dir))
    return results.final_average_accuracy


def task(cfg: DictConfig) -> float | None:
    """Hydra's task function. A failing job reports one line and lets the other jobs of a sweep go on."""
    try:
        return run(cfg)
    except Exception as error:
        if not errors.one_line_errors_enabled():
            raise
        errors.report(error)
        _failed_jobs.append(error)
        return None


def main() -> None:
    import hydra

    with errors.reported_as_one_line():
        hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(task)()
    if _failed_jobs:
        sys.exit(errors.exit_code(_failed_jobs[0]))


if __name__ == "__main__":
    main()
