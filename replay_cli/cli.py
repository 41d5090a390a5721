"""``replay-run``: the Hydra entrypoint. Work out the command (compose, check, run directory), hand the
job to Hydra, exit with the status of what ran. Nothing heavy is imported before the job starts, so
``--help``, ``--cfg``, tab completion and refusals stay fast."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from omegaconf import OmegaConf

from replay_cli import errors


def threads_per_job(n_jobs: int) -> int:
    """Torch threads for one of ``n_jobs`` parallel jobs (-1: one job per core) on this machine."""
    cores = os.cpu_count() or 1
    return 1 if n_jobs in (-1, 0) or n_jobs >= cores else max(1, cores // n_jobs)


OmegaConf.register_new_resolver("threads_per_job", threads_per_job, replace=True)


def config_dir() -> str:
    """conf/ ships inside the wheel; an editable install reads the repository's top-level conf/."""
    packaged = Path(__file__).resolve().parent / "conf"
    return str(packaged if packaged.is_dir() else packaged.parent.parent / "conf")


def _interrupt_on_sigterm() -> None:
    """SLURM sends SIGTERM before preemption: treat it like Ctrl-C, so results are kept and the run
    says how to resume (exit status 143)."""

    def interrupt(signum: int, frame: object) -> None:
        raise errors.Interruption(128 + signum)

    signal.signal(signal.SIGTERM, interrupt)


def main() -> None:
    import hydra

    from replay_cli.command import prepare
    from replay_cli.training.job import task

    _interrupt_on_sigterm()
    with errors.reported_as_one_line():
        arguments = sys.argv[1:]
        if "--help" in arguments or "-h" in arguments:
            from replay_cli.help import render_help

            print(render_help(config_dir(), [a for a in arguments if not a.startswith("-")]))
            return
        command = prepare(arguments, config_dir())
        sys.argv = [sys.argv[0], *command.argv]
        try:
            hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(task)()
        except BaseException as error:
            command.discard_if_refused(error)
            raise
    sys.exit(command.exit_status())


if __name__ == "__main__":
    main()
