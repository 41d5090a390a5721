"""Loader worker processes (``loader.num_workers > 0``, off the fast path) inside every launcher's
job processes: each launcher runs the jobs and gives the numbers of the basic launcher, seed for seed
(joblib's loky workers used to break torch's DataLoader: hydra #964)."""

import json
from pathlib import Path

import pytest

from tests.conftest import replay_run

WORKERS = (
    "fast_path=false",
    "loader.num_workers=2",
    "seed=0,1",
    "strategy.train_epochs=1",
    "benchmark.n_experiences=2",
    "num_threads=1",  # the same torch threads in every launcher: bit-identical numbers
    "logger=none",
    "print_config=false",
    "progress=false",
)
LAUNCHERS = {
    "basic": (),
    "joblib": ("launcher=joblib", "hydra.launcher.n_jobs=2"),
    "submitit_local": ("launcher=submitit_local",),
    "ray": ("launcher=ray",),
}


def sweep_results(cwd: Path, launcher: str) -> dict[int, dict]:
    """Each job's results.json by seed, after ``replay-run -m`` with loader workers on ``launcher``."""
    result = replay_run("-m", *LAUNCHERS[launcher], *WORKERS, cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (sweep,) = (cwd / "outputs" / "multirun").glob("*/*")
    found = [json.loads(path.read_text()) for path in sweep.glob("*/results.json")]
    return {results["seed"]: results for results in found}


@pytest.fixture(scope="module")
def basic(tmp_path_factory) -> dict[int, dict]:
    return sweep_results(tmp_path_factory.mktemp("basic"), "basic")


@pytest.mark.slow  # one two-job sweep per launcher, about 30 s each (Ray's start: more)
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_every_launcher_runs_loader_workers_with_the_basic_launchers_numbers(launcher, basic, tmp_path):
    results = basic if launcher == "basic" else sweep_results(tmp_path, launcher)
    assert sorted(results) == [0, 1]
    for seed, run in results.items():
        assert run["status"] == "completed" and run["experiences_done"] == 2
        assert run["config"]["loader"]["num_workers"] == 2 and run["config"]["fast_path"] is False
        assert run["accuracy_matrix"] == basic[seed]["accuracy_matrix"]
        assert run["buffer_composition"] == basic[seed]["buffer_composition"]
    assert results[0]["accuracy_matrix"] != results[1]["accuracy_matrix"], "the seeds differ"


def test_the_loaders_start_method_is_python_own_after_a_foreign_one(tmp_path):
    """What a loky worker does to its process (its start method ``loky``) is undone for the loaders;
    Python's own start methods are left as they are."""
    import multiprocessing
    import subprocess
    import sys

    script = (
        "import multiprocessing as mp\n"
        "from joblib.externals.loky.backend import context\n"  # registers loky's start method
        "mp.set_start_method('loky', force=True)\n"
        "from replay_cli.data.loaders import standard_start_method\n"
        "print(standard_start_method(), mp.get_start_method())\n"
        "mp.set_start_method('spawn', force=True)\n"
        "print(standard_start_method(), mp.get_start_method())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    default = multiprocessing.get_all_start_methods()[0]
    assert done.stdout.split("\n")[:2] == [f"{default} {default}", "spawn spawn"]
