"""A key whose value is an interpolation of another (``benchmark.split_seed=${seed}``), typed on the
command line or set by an experiment preset, follows that key in every view: never a grouping key of
replay-compare, listed under ``follows`` in results.json, the sweep summary and W&B's config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replay_cli.compare.comparison import compare
from replay_cli.reporting.wandb_records import offline_runs
from replay_cli.sweeps.summary import summarize
from tests.conftest import compose_config, replay_compare, replay_run

TINY = ("strategy.train_epochs=1", "benchmark.n_experiences=2")
PRESET = "# @package _global_\nbenchmark:\n  split_seed: ${seed}\n"


def _sweep_in_process(root: Path, *common: str) -> None:
    """``replay-run -m <common> mem_size=100,200 seed=0,1`` job by job, with Hydra's records."""
    from replay_cli.training.experiment import run_experiment

    for job, (mem_size, seed) in enumerate([(100, 0), (100, 1), (200, 0), (200, 1)]):
        overrides = [*common, f"mem_size={mem_size}", f"seed={seed}"]
        run_dir = root / str(job)
        run_experiment(compose_config(*TINY, *overrides), run_dir)
        (run_dir / ".hydra").mkdir()
        recorded = [o.replace("{", "\\{").replace("}", "\\}") for o in overrides]  # as Hydra does
        (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- '{o}'\n" for o in recorded))


@pytest.fixture
def preset_dir(tmp_path) -> Path:
    """A user's experiment preset setting ``benchmark.split_seed: ${seed}``, on Hydra's search path."""
    (tmp_path / "presets" / "experiment").mkdir(parents=True)
    (tmp_path / "presets" / "experiment" / "mine.yaml").write_text(PRESET)
    return tmp_path / "presets"


@pytest.mark.parametrize("written", ["command line", "preset"])
def test_a_key_set_to_another_key_is_never_a_grouping_key(written, preset_dir, tmp_path):
    common = (
        ["benchmark.split_seed=${seed}"]
        if written == "command line"
        else [f"hydra.searchpath=[file://{preset_dir}]", "experiment=mine"]
    )
    root = tmp_path / "sweep"
    _sweep_in_process(root, *common)
    results = json.loads((root / "0" / "results.json").read_text())
    assert results["follows"]["benchmark.split_seed"] == "${seed}"
    assert results["follows"]["storage.policy.max_size"] == "${mem_size}"  # as in the config files

    comparison = compare([str(root)])
    assert comparison.swept == ["mem_size"]
    assert sorted((row["mem_size"], row["n"]) for row in comparison.rows()) == [(100, 2), (200, 2)]
    rows = summarize(root)
    assert all("benchmark.split_seed" in row["follows"] for row in rows)
    assert [row["benchmark.split_seed"] for row in rows] == [0, 1, 0, 1]


def test_a_key_given_its_own_values_is_a_grouping_key_again(tmp_path):
    """``benchmark.split_seed=0`` and ``=1`` typed: it no longer follows the seed."""
    from replay_cli.training.experiment import run_experiment

    for job, split_seed in enumerate([0, 0, 1, 1]):
        overrides = [f"benchmark.split_seed={split_seed}", f"seed={job % 2}"]
        run_dir = tmp_path / str(job)
        run_experiment(compose_config(*TINY, *overrides), run_dir)
        (run_dir / ".hydra").mkdir()
        (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    comparison = compare([str(tmp_path)])
    assert comparison.swept == ["benchmark.split_seed"]
    assert [row["n"] for row in comparison.rows()] == [2, 2]


@pytest.mark.slow  # one sweep of 4 jobs through the real command, W&B offline: about 30 s
def test_the_issue_sweep_compares_two_groups_and_every_view_agrees(tmp_path):
    result = replay_run("-m", "benchmark.split_seed=${seed}", "mem_size=100,200", "seed=0,1", *TINY,
                        "print_config=false", "progress=false", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = tmp_path.glob("outputs/multirun/*/*")
    compared = replay_compare(str(sweep), "--format", "json", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    table = json.loads(compared.stdout)
    assert table["swept"] == ["mem_size"]
    assert sorted((row["mem_size"], row["n"]) for row in table["rows"]) == [(100, 2), (200, 2)]
    summary = json.loads((sweep / "sweep_summary.json").read_text())
    assert all("benchmark.split_seed" in row["follows"] for row in summary)
    runs = offline_runs(sweep)
    assert len(runs) == 4
    assert all(run.config["follows"] == summary[0]["follows"] for run in runs)
    assert "benchmark.split_seed" in summary[0]["follows"]
