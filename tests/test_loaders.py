"""Loader settings: validated early, ``auto`` resolved per machine and job, and passed to Avalanche."""

import os

import pytest

from replay_cli.data.loaders import loader_settings
from tests.conftest import replay_run

CORES = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("override", "key", "allowed"),
    [
        ("loader.num_workers=-1", "loader.num_workers", "an integer >= 0 or auto"),
        ("loader.pin_memory=maybe", "loader.pin_memory", "true, false or auto"),
        ("loader.persistent_workers=2", "loader.persistent_workers", "true, false or auto"),
    ],
)
def test_bad_loader_settings_exit_2_with_one_line_naming_the_key(override, key, allowed, tmp_path):
    result = replay_run(override, "logger=none", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0] and allowed in lines[0]
    assert "Traceback" not in result.stderr


def test_auto_uses_the_jobs_core_share_off_the_fast_path_and_no_workers_on_it():
    auto = {"num_workers": "auto", "pin_memory": "auto", "persistent_workers": "auto"}
    assert loader_settings(auto, fast_path=True, device="cuda", num_threads=None) == {
        "num_workers": 0,
        "pin_memory": False,
        "persistent_workers": False,
    }
    assert loader_settings(auto, fast_path=False, device="cpu", num_threads=None) == {
        "num_workers": max(0, min(8, CORES - 1)),
        "pin_memory": False,
        "persistent_workers": False,
    }
    # a joblib sweep job with 4 cores of its own: 3 workers, pinned for CUDA
    assert loader_settings(auto, fast_path=False, device="cuda:0", num_threads=4) == {
        "num_workers": 3,
        "pin_memory": True,
        "persistent_workers": False,
    }
    assert loader_settings(auto, fast_path=False, device="cpu", num_threads=1)["num_workers"] == 0
    assert loader_settings(None, fast_path=False, device="cpu", num_threads=64)["num_workers"] == 8
    # online: one training call per mini-experience, never worth a worker start
    assert (
        loader_settings(auto, fast_path=False, device="cpu", num_threads=64, online=True)["num_workers"] == 0
    )


def test_explicit_settings_are_kept_and_persistence_needs_workers():
    explicit = {"num_workers": 2, "pin_memory": True, "persistent_workers": True}
    assert loader_settings(explicit, fast_path=True, device="cpu", num_threads=1) == explicit
    none = {"num_workers": 0, "pin_memory": False, "persistent_workers": True}
    assert loader_settings(none, False, "cpu", None)["persistent_workers"] is False


@pytest.mark.slow
def test_worker_processes_give_the_same_results(run_in_process, tmp_path):
    """Workers only move where samples are read: the per-sample path with 2 workers trains alike."""
    common = ("fast_path=false", "strategy.train_epochs=2", "benchmark.n_experiences=2")
    workers = run_in_process(*common, "loader.num_workers=2", run_dir=tmp_path / "workers")
    main = run_in_process(*common, "loader.num_workers=0", run_dir=tmp_path / "main")
    assert workers["config"]["loader"]["num_workers"] == 2
    assert workers["accuracy_matrix"] == main["accuracy_matrix"]
