"""Shared fixtures: compose configs in-process (fast) or run the real console script (end to end)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from replay_cli.cli import config_dir

REPLAY_RUN = str(Path(sys.executable).parent / "replay-run")


def schema_problems(root: Path, since: float = 0.0) -> list[str]:
    """Every results.json under ``root`` written since ``since`` (a time.time()) by replay-cli (it
    carries ``schema_version``; files a test wrote by hand to feed a reader do not) that breaks the
    published schema, as ``<file> <path>: <message>``. Only the folders of ``root`` made or changed
    since then are searched (a test's tmp_path, a session fixture's folder), so the check stays cheap
    as the session's temporary folders grow."""
    from replay_cli.reporting.schema import schema_errors

    problems = []
    for path in _results_files(root, since):
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(results, dict) and "schema_version" in results:
            problems += [f"{path} {error}" for error in schema_errors(results)]
    return problems


def _results_files(root: Path, since: float) -> list[Path]:
    found = []
    for entry in root.iterdir():
        if entry.is_symlink():  # pytest's <name>current links to a folder listed anyway
            continue
        stat = entry.stat()
        if max(stat.st_mtime, stat.st_ctime) < since:
            continue
        if entry.is_dir():
            found += [p for p in entry.rglob("results.json") if p.stat().st_mtime >= since]
        elif entry.name == "results.json":
            found.append(entry)
    return found


@pytest.fixture(autouse=True)
def results_follow_the_schema(tmp_path_factory):
    """Every results.json a test's runs write (any strategy, protocol, failed, interrupted, resumed)
    validates against replay_cli/reporting/results.schema.json."""
    started = time.time() - 1
    yield
    problems = schema_problems(tmp_path_factory.getbasetemp(), since=started)
    if problems:
        pytest.fail("results.json breaks the schema:\n" + "\n".join(problems[:20]), pytrace=False)


def compose_config(*overrides: str) -> DictConfig:
    """The config as replay-run composes it; quiet, and without W&B unless a test asks for a logger."""
    quiet = ["print_config=false", "progress=false"]
    if not any(o.startswith("logger") for o in overrides):
        quiet.append("logger=none")
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("config", overrides=[*quiet, *overrides])


@pytest.fixture
def run_in_process(tmp_path):
    """Run an experiment in this process; returns the parsed results.json."""

    def run(*overrides: str, run_dir: Path | None = None) -> dict:
        return run_config(run_dir or tmp_path / "run", *overrides)

    return run


def run_config(run_dir: Path, *overrides: str) -> dict:
    """Compose, validate and run ``overrides`` in this process into ``run_dir``; the parsed results.json."""
    from replay_cli.config.validation import validate
    from replay_cli.training.experiment import run_experiment

    cfg = compose_config(*overrides)
    validate(cfg)
    run_experiment(cfg, run_dir)
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture
def fail_at_step(monkeypatch):
    """``fail_at_step(n)``: the evaluation after training step ``n`` raises, as a crash mid-run would."""
    from replay_cli.reporting import metrics

    def arm(step: int) -> None:
        real_row, calls = metrics.accuracy_row, []

        def failing(*args, **kwargs):
            calls.append(1)
            if len(calls) == step + 1:
                raise RuntimeError("injected failure")
            return real_row(*args, **kwargs)

        monkeypatch.setattr(metrics, "accuracy_row", failing)

    return arm


def replay_run(
    *args: str, cwd: Path, env: dict | None = None, unset: tuple[str, ...] = (), timeout: int = 300
) -> subprocess.CompletedProcess:
    """The installed ``replay-run`` console script, as a user types it (W&B offline unless unset)."""
    return _command([REPLAY_RUN, *args], cwd, env, timeout, unset)


def replay_compare(
    *args: str, cwd: Path, env: dict | None = None, timeout: int = 120
) -> subprocess.CompletedProcess:
    """``replay-compare`` as a user types it. ``python -m`` runs the console script's entry point from the
    code under test, also where the installed scripts come from another checkout."""
    return _command([sys.executable, "-m", "replay_cli.compare", *args], cwd, env, timeout)


def cli_env(env: dict | None = None, unset: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment a user's shell would give the commands: W&B offline (unless unset), and no
    W&B service of this test process (in-process tests start one; a command must start its own)."""
    dropped = {"HYDRA_FULL_ERROR", "WANDB_SERVICE", *unset}
    full_env = {k: v for k, v in os.environ.items() if k not in dropped}
    if "WANDB_MODE" not in unset:
        full_env["WANDB_MODE"] = "offline"
    full_env.update(env or {})
    return full_env


def _command(
    argv: list[str], cwd: Path, env: dict | None, timeout: int, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=cwd, env=cli_env(env, unset), capture_output=True, text=True, timeout=timeout
    )


SMALL_SWEEP = (
    "storage=reservoir,class_balanced",
    "mem_size=100,200",
    "seed=0,1",
    "strategy.train_epochs=1",
    "print_config=false",
    "progress=false",
)


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory) -> Path:
    """2 storage policies x 2 memory sizes x 2 seeds, one epoch each: one process, about 20 s."""
    root = tmp_path_factory.mktemp("sweep")
    result = replay_run("-m", *SMALL_SWEEP, cwd=root)
    assert result.returncode == 0, result.stderr
    (sweep,) = root.glob("outputs/multirun/*/*")
    return sweep


@pytest.fixture(scope="session")
def compared_sweep(small_sweep) -> tuple[Path, dict]:
    """``replay-compare <sweep> --format json`` run once: the sweep and the printed comparison."""
    result = replay_compare(str(small_sweep), "--format", "json", cwd=small_sweep.parent)
    assert result.returncode == 0, result.stderr
    return small_sweep, json.loads(result.stdout)


def fake_run(
    run_dir: Path,
    matrix: list[list[float]],
    *,
    storage: str = "reservoir",
    mem_size: int = 100,
    seed: int = 0,
    strategy: str = "replay",
    benchmark: str = "split_digits",
    status: str = "completed",
    overrides: list[str] | None = None,
    extra: dict | None = None,
) -> Path:
    """A run directory as replay-run leaves it, written by the real RunResults, without training."""
    from replay_cli.reporting.results import ResultsFile, RunResults

    config = {
        "benchmark": {"name": benchmark, "n_experiences": len(matrix[0])},
        "strategy": {"name": strategy, "lr": 0.1},
        "storage": {"name": storage, "policy": {"_target_": f"policies.{storage}", "max_size": mem_size}},
        "mem_size": mem_size,
        "seed": seed,
        "print_config": False,
        **(extra or {}),
    }
    results = RunResults(
        config, n_experiences=len(matrix[0]), n_steps=len(matrix), benchmark={"name": benchmark}
    )
    for step, row in enumerate(matrix):
        origins = {str(j): mem_size // (step + 1) for j in range(step + 1)}
        composition = {
            "size": mem_size,
            "per_class": {},
            "per_experience": origins,
            "per_task": {"0": mem_size},
        }
        seen = len(row) if len(matrix) == 1 else step + 1  # one step: joint training saw everything
        results.add_step(row, seen, None, composition, 0.5 + seed, 0.1)
    if status != "running":
        results.finish(status, error="boom" if status == "failed" else None)
    ResultsFile(run_dir).run_ended(results)
    if overrides is not None:
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    return run_dir


def single_run_dir(root: Path) -> Path:
    runs = sorted((root / "outputs" / "runs").glob("*/*"))
    assert len(runs) == 1, runs
    return runs[0]


HEAVY = ("torch", "avalanche", "wandb", "matplotlib", "pandas", "scipy")


def heavy_imports(*args: str, cwd: Path) -> set[str]:
    """The heavy top-level packages a command imports (``python -X importtime`` lists every module
    imported, nested ones indented): what makes ``--help`` slow, measured without a clock."""
    result = _command([sys.executable, "-X", "importtime", *args], cwd, None, 120)
    assert result.returncode == 0, result.stderr[-2000:]
    modules = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert len(modules) > 50, "importtime listed the imports"
    return {name.split(".")[0] for name in modules} & set(HEAVY)
