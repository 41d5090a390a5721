"""What a ``replay-run`` command will do, worked out before Hydra runs it: compose the config, check
everything that can be checked on it, and decide the run directory, so that a refused command prints
one line, imports nothing heavy and leaves no directory, and a directory that holds a run is never
given another run's records."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from replay_cli import errors
from replay_cli.training import resume

MULTIRUN_FLAGS = ("-m", "--multirun")
RESUME_SUBDIR = ".hydra/resume"  # a resuming command's own Hydra files; the run's stay as they are


@dataclass
class Command:
    """The argv Hydra gets, and what the command created (to remove it again when it is refused)."""

    argv: list[str]
    run_dir: Path | None = None
    created: bool = False
    sweep_dir: Path | None = None
    existing_parent: Path | None = None  # the nearest folder above run_dir that existed before

    def discard_if_refused(self, error: BaseException) -> None:
        """A refused command leaves no run directory behind (only one it created itself)."""
        if not self.created or self.run_dir is None or errors.exit_code(error) != errors.EXIT_BAD_INPUT:
            return
        shutil.rmtree(self.run_dir, ignore_errors=True)
        for parent in self.run_dir.parents:  # the date folder too, when nothing else is in it
            if parent == self.existing_parent:
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def exit_status(self) -> int:
        """A single run that returned completed; a sweep exits by its summary's statuses."""
        if self.sweep_dir is None:
            return 0
        from replay_cli.sweeps.summary import read_statuses

        statuses = read_statuses(self.sweep_dir)
        return 0 if statuses is None else errors.sweep_exit_status(statuses)


def prepare(argv: list[str], conf_dir: str) -> Command:
    """Compose and check the command described by ``argv`` (overrides and Hydra flags)."""
    flags = [a for a in argv if a.startswith("-")]
    if any(f not in MULTIRUN_FLAGS for f in flags):
        return Command(argv)  # --cfg, --info, --hydra-help, ...: Hydra's own business
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [a for a in argv if not a.startswith("-")]
    parsed = OverridesParser.create().parse_overrides(overrides)
    sweeping = any(o.is_sweep_override() for o in parsed)
    if bool(flags) or sweeping:
        overrides = _per_job_keys_of_swept_groups(overrides, parsed)
        parsed = OverridesParser.create().parse_overrides(overrides)
    fixed = [text for text, o in zip(overrides, parsed, strict=True) if not o.is_sweep_override()]
    cfg = _compose(conf_dir, fixed)
    if flags or sweeping or getattr(cfg.hydra.mode, "name", cfg.hydra.mode) == "MULTIRUN":  # RunMode
        from replay_cli.config.validation import validate_sweep

        validate_sweep(cfg)
        sweep_dir = _resolved(cfg, "hydra.sweep.dir")
        if sweep_dir:
            _refuse_a_used_sweep_dir(Path(sweep_dir))
        pinned = [f"hydra.sweep.dir={_quoted(sweep_dir)}"] if sweep_dir else []
        return Command([*flags, *overrides, *pinned], sweep_dir=Path(sweep_dir) if sweep_dir else None)
    return _single_run(cfg, overrides)


def _single_run(cfg: DictConfig, overrides: list[str]) -> Command:
    resumed = resume.resume_dir(overrides)
    job = _job_config(cfg)
    if resumed is not None:
        resume.check_resume(job, resumed, overrides, f"resume={resumed}")
        extra = [f"hydra.run.dir={_quoted(str(resumed))}", f"hydra.output_subdir={RESUME_SUBDIR}"]
        return Command([*overrides, *extra], run_dir=resumed)
    from replay_cli.config.validation import validate, validate_common_keys

    validate(job)
    validate_common_keys(job, overrides)
    text = _resolved(cfg, "hydra.run.dir")
    if text is None:
        return Command(overrides)
    run_dir = Path(text)
    pinned = [f"hydra.run.dir={_quoted(text)}"]
    if not resume.holds_a_run(run_dir):
        existing = next((p for p in run_dir.absolute().parents if p.exists()), None)
        created = not run_dir.exists()
        return Command(
            [*overrides, *pinned], run_dir=run_dir.absolute(), created=created, existing_parent=existing
        )
    resume.check_same_run(run_dir, OmegaConf.to_container(job, resolve=True))  # type: ignore[arg-type]
    if resume.has_checkpoint(run_dir):
        resume.check_resume(job, run_dir, overrides, f"hydra.run.dir={text}")
    return Command([*overrides, *pinned, f"hydra.output_subdir={RESUME_SUBDIR}"], run_dir=run_dir)


def _refuse_a_used_sweep_dir(sweep_dir: Path) -> None:
    """A new sweep never writes into the job directories of an earlier one (their records would be
    rewritten by jobs that may not even produce results there)."""
    jobs = [p for p in sweep_dir.glob("*") if resume.holds_a_run(p)] if sweep_dir.is_dir() else []
    if jobs:
        raise errors.UsageError(
            f"hydra.sweep.dir={sweep_dir} already holds the job directories of another sweep ({len(jobs)}); "
            "their records stay as they are: choose another hydra.sweep.dir"
        )


def _per_job_keys_of_swept_groups(overrides: list[str], parsed: list[Any]) -> list[str]:
    """``-m storage=herding,closest_to_center storage.layer_name=features``: Hydra applies the plain
    key to the sweep's base config (the default storage, which has no layer_name) and fails. As a
    one-value sweep (``choice(features)``) it is applied to each job's own config, as it should be."""
    swept = {o.key_or_group for o in parsed if o.is_sweep_override() and "." not in o.key_or_group}
    rewritten = []
    for text, override in zip(overrides, parsed, strict=True):
        group = override.key_or_group.split(".", 1)[0]
        if group in swept and "." in override.key_or_group and not override.is_sweep_override():
            key, _, value = text.partition("=")
            text = f"{key}=choice({value})"
        rewritten.append(text)
    return rewritten


def _compose(conf_dir: str, overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=conf_dir, version_base="1.3", job_name="replay-run"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def _job_config(cfg: DictConfig) -> DictConfig:
    job = cfg.copy()
    with open_dict(job):
        del job["hydra"]
    return job


def _resolved(cfg: DictConfig, key: str) -> str | None:
    """A Hydra path with ``${now:...}`` resolved once, so Hydra and this command mean the same folder."""
    try:
        value = OmegaConf.select(cfg, key)
    except Exception:  # an interpolation only Hydra's job runtime can resolve: leave it to Hydra
        return None
    return str(value) if value is not None else None


def _quoted(path: str) -> str:
    return "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"
