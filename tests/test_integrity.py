"""A run directory holds the records of the run that produced its results; checks come before anything
is imported, printed or created; a sweep runs every job it can; every refusal says its reason."""

import json
import pickle
import shutil
import subprocess
import sys

import pytest

from replay_cli import errors
from tests.conftest import cli_env, replay_run
from tests.tiny_datasets import write_cifar10

QUIET = ("strategy.train_epochs=1", "progress=false", "print_config=false")
QUICK = (*QUIET, "logger=none")
HEAVY = ("torch", "avalanche", "wandb", "matplotlib", "pandas", "scipy")


def snapshot(run_dir):
    return {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("replay-run: error: ") and "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two finished runs that differ only in their seed and logger: A seed 1 logged to W&B (offline),
    B seed 0 without logger; both mem_size=100."""
    cwd = tmp_path_factory.mktemp("runs")
    for name, seed, logger in (("A", 1, "logger=wandb"), ("B", 0, "logger=none")):
        result = replay_run(*QUIET, logger, "mem_size=100", f"seed={seed}", f"hydra.run.dir={name}", cwd=cwd)
        assert result.returncode == 0, result.stderr
    return cwd


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("mem_size=-5", "mem_size=-5 is invalid"),
        ("benchmark.n_experiences=11", "benchmark.n_experiences=11 is invalid: expected an integer in"),
        ("benchmark.class_order=[0,0,1]", "benchmark.class_order=[0, 0, 1] is invalid: expected a perm"),
    ],
)
def test_a_refused_command_imports_nothing_heavy_and_leaves_no_directory(override, message, tmp_path):
    probe = (
        f"import sys\nfrom replay_cli import cli\nsys.argv = ['replay-run', {override!r}]\n"
        "try:\n    cli.main()\nexcept SystemExit as end:\n"
        f"    print([m for m in {HEAVY!r} if m in sys.modules], end.code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=cli_env(), capture_output=True, text=True
    )
    assert result.stdout.strip() == "[] 2", result.stderr
    assert message in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_checks_on_the_built_model_come_before_the_config_tree(tmp_path):
    result = replay_run(
        "storage=herding", "storage.layer_name=nope", "print_config=true", "logger=none", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "storage.layer_name=nope is invalid: expected a layer of the model" in one_error_line(result)
    assert "mem_size" not in result.stdout, "the config tree is printed only once the checks passed"
    assert not list(tmp_path.glob("outputs/runs/*")), "no run directory, no date folder left"


def test_a_command_with_another_config_never_rewrites_a_run_directory(two_runs):
    run_dir = two_runs / "A"
    before = snapshot(run_dir)
    asks_500 = replay_run(*QUICK, "seed=1", "hydra.run.dir=A", cwd=two_runs)
    assert asks_500.returncode == 2
    line = one_error_line(asks_500)
    assert "mem_size=100 there, 500 here" in line and "resume=" not in line
    other_storage = replay_run(
        *QUICK, "seed=1", "mem_size=100", "storage=reservoir", "hydra.run.dir=A", cwd=two_runs
    )
    assert other_storage.returncode == 2
    line = one_error_line(other_storage)
    assert "storage=experience_balanced there, reservoir here" in line and "resume=" not in line
    assert snapshot(run_dir) == before, "records, results and checkpoint byte for byte"

    same = replay_run(*QUICK, "seed=1", "mem_size=100", "hydra.run.dir=A", cwd=two_runs)
    assert same.returncode == 0, same.stderr
    assert "already completed all 5 steps" in same.stdout
    after = snapshot(run_dir)
    assert {k: v for k, v in after.items() if k.parts[:2] != (".hydra", "resume")} == before


def test_a_checkpoint_of_another_run_is_refused_and_the_directory_untouched(two_runs, tmp_path):
    target = tmp_path / "B"
    shutil.copytree(two_runs / "B", target)
    shutil.copy(two_runs / "A" / "checkpoint.pt", target / "checkpoint.pt")
    before = snapshot(target)
    for command in ([f"resume={target}"], [*QUICK, "mem_size=100", f"hydra.run.dir={target}"]):
        result = replay_run(*command, cwd=tmp_path)
        assert result.returncode == 2, result.stdout
        line = one_error_line(result)
        assert f"{target / 'checkpoint.pt'} belongs to another run" in line
        assert "seed=1 in the checkpoint, 0 in the directory" in line
        assert snapshot(target) == before


def test_a_checkpoint_whose_steps_disagree_with_results_is_refused(two_runs, tmp_path):
    target = tmp_path / "B"
    shutil.copytree(two_runs / "B", target)
    results = json.loads((target / "results.json").read_text())
    results["accuracy_matrix"] = results["accuracy_matrix"][:2]  # results.json says 2 steps, checkpoint 5
    (target / "results.json").write_text(json.dumps(results))
    before = snapshot(target)
    result = replay_run(f"resume={target}", cwd=tmp_path)
    assert result.returncode == 2
    assert "it holds 5 finished steps" in one_error_line(result)
    assert snapshot(target) == before


@pytest.mark.parametrize(
    ("overrides", "key", "expected"),
    [
        (["logger.mode=disabled"], "logger.mode", "disabled"),
        (["logger=none"], "logger", None),
        (["print_config=true"], "print_config", True),
        (["progress=true"], "progress", True),
        (["num_threads=1"], "num_threads", 1),
    ],
)
def test_every_key_a_resume_may_change_does_change(two_runs, overrides, key, expected):
    from omegaconf import OmegaConf

    from replay_cli.training.resume import prepare_resume
    from tests.conftest import compose_config

    run_dir = two_runs / "A"
    saved = json.loads((run_dir / "results.json").read_text())["config"]
    assert OmegaConf.select(OmegaConf.create(saved), key) != expected, "the run itself had another value"
    cfg = compose_config(f"resume={run_dir}", *(["logger=wandb"] if key == "logger.mode" else []), *overrides)
    state_cfg, _ = prepare_resume(cfg, run_dir, [f"resume={run_dir}", *overrides])
    assert OmegaConf.select(state_cfg, key) == expected
    assert state_cfg.mem_size == 100 and state_cfg.seed == 1, "what the run computes stays"


def test_sweeping_a_group_with_a_key_of_that_group_runs_every_job(tmp_path):
    result = replay_run(
        "-m",
        "storage=herding,closest_to_center",
        "storage.layer_name=features",
        "mem_size=50",
        *QUICK,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (summary,) = tmp_path.glob("outputs/multirun/*/*/sweep_summary.json")
    rows = json.loads(summary.read_text())
    assert [row["status"] for row in rows] == ["completed", "completed"]
    assert {row["overrides"].split()[0] for row in rows} == {"storage=herding", "storage=closest_to_center"}


def test_a_sweep_never_writes_into_an_earlier_sweep_s_directories(tmp_path):
    first = replay_run("-m", "seed=0", *QUICK, "hydra.sweep.dir=S", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = snapshot(tmp_path / "S")
    again = replay_run("-m", "seed=0,1", *QUICK, "hydra.sweep.dir=S", cwd=tmp_path)
    assert again.returncode == 2
    assert "hydra.sweep.dir=S already holds the job directories of another sweep (1)" in one_error_line(again)
    assert snapshot(tmp_path / "S") == before


@pytest.mark.slow
def test_a_failing_optuna_trial_does_not_stop_the_study(tmp_path):
    result = replay_run(
        "hparams_search=optuna", "hydra.sweeper.n_trials=4", "mem_size=choice(0,100)", *QUICK, cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr
    (summary,) = tmp_path.glob("outputs/multirun/*/*/sweep_summary.json")
    rows = json.loads(summary.read_text())
    assert len(rows) == 4
    failed = [row for row in rows if row["status"] == "failed"]
    assert failed and len(failed) < 4
    assert all("mem_size=0 is invalid" in row["error"] for row in failed)
    console = result.stdout + result.stderr
    assert "alembic" not in console, "the sweeper's setup lines stay off the console"
    assert "A new study created" not in console and "Trial 0 finished" not in console


def test_a_malformed_cifar_pickle_is_named_with_its_fault(tmp_path):
    root = write_cifar10(tmp_path / "data")
    broken = root / "cifar-10-batches-py" / "data_batch_2"
    with open(broken, "wb") as out:
        pickle.dump({"pixels": [], "labels": []}, out)
    result = replay_run(
        "benchmark=split_cifar10",
        f"benchmark.dataset_root={root}",
        "benchmark.download=false",
        *QUICK,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    line = one_error_line(result)
    assert f"{broken} is not a CIFAR10 file: it lacks the key data" in line


@pytest.mark.slow
def test_a_sweep_prints_its_config_and_sync_hint_once_and_leaves_no_empty_logs(tmp_path):
    env = {"MPLCONFIGDIR": str(tmp_path / "fresh-matplotlib")}  # a fresh machine builds its font cache
    result = replay_run(
        "-m",
        "seed=0,1",
        "strategy.train_epochs=1",
        "progress=false",
        "print_config=true",
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    console = result.stdout + result.stderr
    assert "font_manager" not in console
    tree_roots = [line for line in result.stdout.splitlines() if line.startswith("├── mem_size: 500")]
    assert len(tree_roots) == 1, "the config tree once per command"
    assert console.count("wandb sync") == 1
    (sweep,) = tmp_path.glob("outputs/multirun/*/*")
    assert len(list(sweep.glob("*/wandb/offline-run-*"))) == 2
    logs = list(sweep.glob("*/replay-run.log"))
    assert all(log.stat().st_size > 0 for log in logs), "a job log holds what the job logged, or is not there"


def test_reproduce_with_missing_data_is_one_line_and_exit_2(tmp_path):
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "reproduce.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "der_er_seq_mnist_200",
            f"benchmark.dataset_root={tmp_path}",
            "benchmark.download=false",
            "logger=none",
            "--seeds",
            "0",
        ],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("reproduce.py: error: MNIST files not found")


def test_one_mapping_from_status_to_exit_code():
    assert [errors.exit_status_of(s) for s in ("completed", "failed", "interrupted", "running")] == [
        0,
        1,
        130,
        1,
    ]
    assert errors.sweep_exit_status(["completed", "completed"]) == 0
    assert errors.sweep_exit_status(["completed", "failed"]) == 1
    assert errors.exit_code(errors.JobEnded(errors.RunInterrupted("stopped", 143))) == 143
    assert errors.exit_code(errors.JobEnded(errors.ConfigError("mem_size", -5, "an integer >= 1"))) == 2


def test_a_later_wandb_failure_says_wandb_s_own_reason():
    import wandb

    with pytest.raises(Exception) as refused:
        wandb.Settings(run_tags=("",))
    line = errors.one_line(refused.value)
    assert "run_tags" in line and "Tags must be between 1 and 64 characters" in line


def test_an_instantiation_error_is_unwrapped_to_its_cause():
    from hydra.errors import InstantiationException

    try:
        try:
            raise KeyError("labels missing in data_batch_1")
        except KeyError as cause:
            raise InstantiationException(
                "Error in call to target 'replay_cli.data.benchmarks.classic':"
            ) from cause
    except InstantiationException as error:
        assert errors.one_line(error) == "'labels missing in data_batch_1'"


def test_finished_progress_bars_do_not_pile_up():
    from types import SimpleNamespace

    from replay_cli.reporting.console import progress_plugin

    bars = progress_plugin(True)
    bars.enabled = True  # as on a terminal
    for step in range(3):
        clock = SimpleNamespace(train_exp_epochs=0, train_exp_counter=step)
        strategy = SimpleNamespace(dataloader=[0, 1], clock=clock)
        bars.before_training_epoch(strategy)
        assert [task.description for task in bars.progress.tasks] == [f"step {step} epoch 1"]
        bars.after_training_iteration(strategy)
        bars.after_training_exp(strategy)
        assert bars.progress.tasks == []


def test_the_reproduction_table_is_never_cut_at_80_columns(capsys, monkeypatch):
    from replay_cli.reproduce import Row, print_table

    monkeypatch.setenv("COLUMNS", "80")
    name = "split_digits_class_balanced_500_with_a_long_suffix"
    print_table([Row(name, "final_average_accuracy", 0.9, 0.05, [0.91, 0.93], "measured here")])
    out = capsys.readouterr().out
    assert name in out and "final_average_accuracy" in out and "0.9200 ± 0.0141" in out
