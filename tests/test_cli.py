"""The installed console script, end to end, as a user types it."""

import json

import pytest

from tests.conftest import REPLAY_RUN, heavy_imports, replay_run, single_run_dir


def test_default_command_prints_matrix_and_writes_results(tmp_path):
    result = replay_run(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "accuracy matrix" in result.stdout
    assert "final_average_accuracy" in result.stdout
    assert "mem_size: 500" in result.stdout  # the config tree printed at start
    run_dir = single_run_dir(tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed"
    assert results["final_average_accuracy"] >= 0.85
    assert (run_dir / ".hydra" / "config.yaml").is_file()


@pytest.mark.slow
def test_class_balanced_500_verbatim(tmp_path):
    result = replay_run("storage=class_balanced", "mem_size=500", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    results = json.loads((single_run_dir(tmp_path) / "results.json").read_text())
    assert results["config"]["storage"]["name"] == "class_balanced"
    assert max(entry["size"] for entry in results["buffer_composition"]) == 500


def test_config_tree_can_be_turned_off_and_help_runs_nothing(tmp_path):
    quiet = replay_run("print_config=false", "strategy.train_epochs=1", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "mem_size: 500" not in quiet.stdout
    shown = replay_run("--cfg", "job", cwd=tmp_path)
    assert shown.returncode == 0 and "mem_size: 500" in shown.stdout
    helped = replay_run("storage=herding", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "storage: class_balanced, closest_to_center, experience_balanced, herding" in helped.stdout
    assert "name: herding" in helped.stdout  # the config composed with the overrides
    assert len(list((tmp_path / "outputs" / "runs").glob("*/*"))) == 1, "--help runs nothing"


def test_help_and_cfg_import_no_heavy_library(tmp_path):
    """--help and --cfg compose the config only: torch, Avalanche, W&B... are imported by the run."""
    assert heavy_imports(REPLAY_RUN, "--help", cwd=tmp_path) == set()
    assert heavy_imports(REPLAY_RUN, "storage=herding", "--cfg", "job", cwd=tmp_path) == set()
    assert not (tmp_path / "outputs").exists(), "nothing ran"
    assert heavy_imports(
        REPLAY_RUN,
        "print_config=false",
        "strategy.train_epochs=1",
        "logger=none",
        "hydra.run.dir=run",
        cwd=tmp_path,
    ) >= {"torch", "avalanche"}, "the check sees them"
