"""Multirun sweeps: one directory, one W&B run and one summary row per job, on every launcher."""

import csv
import json
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from replay_cli.cli import config_dir, threads_per_job
from replay_cli.reporting.wandb_records import offline_runs
from tests.conftest import replay_run

TINY = ("strategy.train_epochs=1", "print_config=false", "progress=false")


def sweep_dir(cwd: Path) -> Path:
    (found,) = list((cwd / "outputs" / "multirun").glob("*/*"))
    return found


def summary_rows(sweep: Path) -> list[dict]:
    rows = json.loads((sweep / "sweep_summary.json").read_text())
    with open(sweep / "sweep_summary.csv") as handle:
        assert [row["job"] for row in csv.DictReader(handle)] == [row["job"] for row in rows]
    return rows


@pytest.mark.parametrize(
    "launcher",
    ["basic", *(pytest.param(name, marks=pytest.mark.slow) for name in ("joblib", "submitit_local", "ray"))],
)
def test_four_job_sweep(launcher, tmp_path):
    extra = [] if launcher == "basic" else [f"launcher={launcher}"]
    result = replay_run(
        "-m", *extra, "storage=reservoir,class_balanced", "mem_size=50,100", *TINY, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    sweep = sweep_dir(tmp_path)
    job_results = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/results.json")}
    assert sorted(job_results) == ["0", "1", "2", "3"]
    assert {(r["config"]["storage"]["name"], r["config"]["mem_size"]) for r in job_results.values()} == {
        ("reservoir", 50),
        ("reservoir", 100),
        ("class_balanced", 50),
        ("class_balanced", 100),
    }
    runs = offline_runs(sweep)
    assert len(runs) == 4 and len({run.run_id for run in runs}) == 4
    assert {run.group for run in runs} == {str(sweep.relative_to(tmp_path / "outputs"))}
    rows = summary_rows(sweep)
    assert [row["status"] for row in rows] == ["completed"] * 4
    for row in rows:
        results = job_results[row["job"]]
        assert row["final_average_accuracy"] == results["final_average_accuracy"]
        assert row["forgetting"] == results["forgetting"]
        assert f"mem_size={results['config']['mem_size']}" in row["overrides"]
        assert Path(row["run_dir"]).name == row["job"]
    if launcher == "joblib":
        assert all(r["config"]["num_threads"] == threads_per_job(-1) for r in job_results.values())
    if launcher == "ray":  # Ray's own lines go to the sweep's launcher.log, not the console
        console = result.stdout + result.stderr
        assert "Token authentication" not in console and "View the dashboard" not in console
        assert "Started a local Ray instance" in (sweep / "launcher.log").read_text()


@pytest.mark.slow
def test_a_failing_job_leaves_the_others_and_a_failed_row(tmp_path):
    result = replay_run("-m", "mem_size=50,-5,100", "logger=none", *TINY, cwd=tmp_path)
    assert result.returncode == 1
    assert "mem_size=-5 is invalid: expected an integer >= 1" in result.stderr
    assert "Traceback" not in result.stderr
    rows = summary_rows(sweep_dir(tmp_path))
    assert [row["status"] for row in rows] == ["completed", "failed", "completed"]
    assert "mem_size=-5" in rows[1]["error"] and rows[1]["final_average_accuracy"] is None
    assert all(0.0 < rows[i]["final_average_accuracy"] <= 1.0 for i in (0, 2))
    # README: a job that failed before training gets a results.json with its status, error and config
    failed = json.loads((tmp_path / rows[1]["run_dir"] / "results.json").read_text())
    assert failed["status"] == "failed" and failed["config"]["mem_size"] == -5
    assert failed["error"] == rows[1]["error"] and "mem_size=-5 is invalid" in failed["error"]
    assert "accuracy_matrix" not in failed and failed.get("experiences_done", 0) == 0


@pytest.mark.slow
def test_optuna_preset_selects_on_the_validation_stream(tmp_path):
    result = replay_run(
        "hparams_search=optuna", "hydra.sweeper.n_trials=6", "logger=none", *TINY, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "selects on the test stream" not in result.stdout + result.stderr
    sweep = sweep_dir(tmp_path)
    rows = summary_rows(sweep)
    assert len(rows) == 6 and all(row["status"] == "completed" for row in rows)
    assert all(row["benchmark.validation_size"] == 0.1 for row in rows)
    validation = [row["validation.final_average_accuracy"] for row in rows]
    test = [row["final_average_accuracy"] for row in rows]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"optimizer.lr", "batch_size", "batch_size_mem", "storage"}
    assert best["best_value"] == max(validation)
    chosen = rows[validation.index(max(validation))]
    assert best["best_params"]["optimizer.lr"] == chosen["optimizer.lr"]
    if validation.index(max(validation)) != test.index(max(test)):  # the two disagree: test lost
        assert best["best_value"] != rows[test.index(max(test))]["validation.final_average_accuracy"]


@pytest.mark.slow
def test_a_test_objective_is_explicit_and_says_so_once(tmp_path):
    result = replay_run(
        "hparams_search=optuna",
        "hparams_search.objective=final_average_accuracy",
        "hydra.sweeper.n_trials=2",
        "logger=none",
        "stop_after=2",
        *TINY,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert output.count("hparams_search.objective=final_average_accuracy selects on the test stream") == 1
    rows = summary_rows(sweep_dir(tmp_path))
    best = yaml.safe_load((sweep_dir(tmp_path) / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(row["final_average_accuracy"] for row in rows)


def hydra_config(*overrides: str):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize(
    ("preset", "swept"),
    [
        ("storage_vs_memory", {"storage", "mem_size", "seed"}),
        ("batch_ratio", {"batch_size_mem", "seed"}),
        ("task_balanced", {"task_balanced_dataloader", "seed"}),
        ("baselines", {"strategy", "seed"}),
        ("replay_methods", {"strategy", "seed"}),
    ],
)
def test_sweep_presets_are_multiruns_over_their_keys(preset, swept):
    cfg = hydra_config(f"sweep={preset}")
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert set(cfg.hydra.sweeper.params) == swept


def test_replay_methods_sweep_runs_every_method_with_the_same_memory_and_seeds():
    cfg = hydra_config("sweep=replay_methods")
    methods = cfg.hydra.sweeper.params.strategy.split(",")
    classic = ["replay", "er_ace", "er_aml", "der", "mir", "rar", "gdumb", "gss_greedy", "icarl", "bic"]
    classic.append("scr")
    rehearsal = ["gem", "agem", "mer", "lamaml", "feature_replay", "generative_replay"]
    assert sorted(methods) == sorted([*classic, *rehearsal])
    assert cfg.hydra.sweeper.params.seed == "0,1,2" and "mem_size" not in cfg.hydra.sweeper.params


@pytest.mark.slow
def test_replay_methods_sweep_compares_one_row_per_method(tmp_path):
    """Six of the methods, two seeds, one epoch: the sweep, then replay-compare (mean ± std per method)."""
    from tests.conftest import replay_compare

    methods = "replay,er_ace,er_aml,der,mir,rar"
    result = replay_run(
        "-m", "sweep=replay_methods", f"strategy={methods}", "seed=0,1", "logger=none", *TINY, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    compared = replay_compare(str(sweep_dir(tmp_path)), "--format", "json", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    rows = json.loads(compared.stdout)["rows"]
    assert sorted(row["strategy"] for row in rows) == sorted(methods.split(","))
    assert all(row["n"] == 2 and row["final_average_accuracy_std"] >= 0 for row in rows)
    for path in sweep_dir(tmp_path).glob("*/results.json"):
        job = json.loads(path.read_text())
        assert job["config"]["mem_size"] == 500
        assert all(0 < step["size"] <= 500 for step in job["buffer_composition"][1:])


@pytest.mark.parametrize(
    ("preset", "launcher"),
    [
        ("joblib", "JoblibLauncher"),
        ("slurm", "SlurmLauncher"),
        ("submitit_local", "LocalLauncher"),
        ("ray", "RayLauncher"),
    ],
)
def test_launcher_presets_compose(preset, launcher):
    cfg = hydra_config(f"launcher={preset}")
    assert cfg.hydra.launcher._target_.endswith(launcher)


def test_slurm_keys_are_overridable():
    cfg = hydra_config("launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=2")
    assert (cfg.hydra.launcher.partition, cfg.hydra.launcher.gpus_per_node) == ("gpu", 2)
    assert {"timeout_min", "cpus_per_task", "mem_gb", "array_parallelism"} <= set(cfg.hydra.launcher)


def test_threads_per_job_never_oversubscribes(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert [threads_per_job(n) for n in (-1, 1, 2, 3, 8, 16)] == [1, 8, 4, 2, 1, 1]


def test_ray_driver_lines_come_from_the_logger_quiet_ray_redirects():
    """Fails loudly when a Ray upgrade moves the modules that log the token notice and the
    dashboard address out of the logger replay_cli.sweeps.ray_internals names."""
    import importlib

    from replay_cli.sweeps import ray_internals

    for module in ("ray._private.worker", "ray._private.authentication.authentication_token_setup"):
        logger = importlib.import_module(module).logger
        assert logger.name.startswith(ray_internals.DRIVER_LOGGER + "."), module
