"""Loader settings: validated early, ``auto`` resolved, and passed to Avalanche."""

import pytest

from replay_cli.data.loaders import loader_settings
from tests.conftest import replay_run


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


def test_auto_starts_no_workers_and_pins_only_for_cuda_off_the_fast_path():
    auto = {"num_workers": "auto", "pin_memory": "auto", "persistent_workers": "auto"}
    assert loader_settings(auto, fast_path=True, device="cuda") == {
        "num_workers": 0,
        "pin_memory": False,
        "persistent_workers": False,
    }
    assert loader_settings(None, fast_path=False, device="cuda:0") == {
        "num_workers": 0,
        "pin_memory": True,
        "persistent_workers": False,
    }
    assert loader_settings(auto, fast_path=False, device="cpu")["pin_memory"] is False


def test_explicit_settings_are_kept_and_persistence_needs_workers():
    explicit = {"num_workers": 2, "pin_memory": True, "persistent_workers": True}
    assert loader_settings(explicit, fast_path=True, device="cpu") == explicit
    none = {"num_workers": 0, "pin_memory": False, "persistent_workers": True}
    assert loader_settings(none, False, "cpu")["persistent_workers"] is False


def test_a_loop_that_draws_random_numbers_trains_alike_on_both_paths_by_default(run_in_process, tmp_path):
    """Dropout draws in every forward pass; a loader with workers would draw its samplers' numbers
    ahead of it (here when a buffer of 64 is read again within an epoch: with one worker the
    numbers differ), so ``auto`` starts none: the plain path gives the fast path's numbers on any
    machine."""
    common = ("model.dropout=0.5", "mem_size=64", "strategy.train_epochs=2", "benchmark.n_experiences=3")
    plain = run_in_process(*common, "fast_path=false", run_dir=tmp_path / "plain")
    fast = run_in_process(*common, "fast_path=true", run_dir=tmp_path / "fast")
    assert plain["accuracy_matrix"] == fast["accuracy_matrix"]
    assert plain["buffer_composition"] == fast["buffer_composition"]
    assert fast["accuracy_matrix"][2][2] > 0.5  # it learns


@pytest.mark.slow
def test_worker_processes_give_the_same_results(run_in_process, tmp_path):
    """When nothing in the training loop draws random numbers, workers only move where samples are
    read: the per-sample path with 2 workers trains alike."""
    common = ("fast_path=false", "strategy.train_epochs=2", "benchmark.n_experiences=2")
    workers = run_in_process(*common, "loader.num_workers=2", run_dir=tmp_path / "workers")
    main = run_in_process(*common, "loader.num_workers=0", run_dir=tmp_path / "main")
    assert workers["config"]["loader"]["num_workers"] == 2
    assert workers["accuracy_matrix"] == main["accuracy_matrix"]
