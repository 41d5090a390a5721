"""W&B is a view of results.json: read the offline run file back and compare."""

import json

import pytest

from replay_cli.reporting.wandb_records import offline_runs
from tests.conftest import replay_run, single_run_dir


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("wandb")
    result = replay_run(
        "storage=class_balanced", "mem_size=200", "logger.group=study-1", "logger.tags=[paper]", cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    run_dir = single_run_dir(cwd)
    runs = offline_runs(run_dir / "wandb")
    assert len(runs) == 1
    return json.loads((run_dir / "results.json").read_text()), runs[0], result


def test_run_identity_and_config_columns(logged_run):
    _, run, _ = logged_run
    assert run.name == "class_balanced-m200-s0"
    assert run.group == "study-1"
    assert run.job_type == "train"
    assert set(run.tags) == {"split_digits", "replay", "mlp", "class_balanced", "paper"}
    assert run.config["mem_size"] == 200
    assert run.config["storage"] == "class_balanced"
    assert run.config["optimizer.lr"] == 0.1
    assert run.exit_code == 0


def test_one_history_row_per_experience_equal_to_results(logged_run):
    results, run, _ = logged_run
    rows = [row for row in run.history if "accuracy/exp_0" in row]
    assert [row["experience"] for row in rows] == [0, 1, 2, 3, 4]
    for step, row in enumerate(rows):
        for j in range(5):
            assert row[f"accuracy/exp_{j}"] == pytest.approx(results["accuracy_matrix"][step][j])
        assert row["average_accuracy"] == pytest.approx(results["average_accuracy_per_experience"][step])
        assert row["stream_accuracy"] == pytest.approx(results["stream_accuracy"][step])
        composition = results["buffer_composition"][step]
        assert row["buffer/size"] == composition["size"]
        for kind in ("class", "experience", "task"):
            logged = {k.split("_", 1)[1]: v for k, v in row.items() if k.startswith(f"buffer/{kind}_")}
            assert logged == composition[f"per_{kind}"]
        assert row["buffer/composition/_type"] == "table-file"
        assert row["buffer/composition/nrows"] == sum(
            len(c["per_class"]) for c in results["buffer_composition"][: step + 1]
        )
        assert row["buffer/composition_chart/_type"] == "image-file"
    assert rows[-1]["forgetting"] == pytest.approx(results["forgetting"])
    assert rows[-1]["bwt"] == pytest.approx(results["bwt"])


def test_summary_holds_the_final_metrics_and_matrix(logged_run):
    results, run, _ = logged_run
    for key in ("final_average_accuracy", "forgetting", "bwt"):
        assert run.summary[key] == pytest.approx(results[key])
    assert run.summary["mem_size"] == 200 and run.summary["storage"] == "class_balanced"
    assert run.summary["status"] == "completed"
    assert run.summary["accuracy_matrix/_type"] == "table-file"
    assert run.summary["accuracy_matrix/nrows"] == 5
    assert run.summary["accuracy_matrix_heatmap/_type"] == "image-file"


# README ("The W&B run"): what the run's summary holds.
README_SUMMARY_METRICS = (
    "final_average_accuracy",
    "final_stream_accuracy",
    "forgetting",
    "bwt",
    "train_seconds",
    "task_il_final_average_accuracy",
    "task_il_forgetting",
    "task_il_bwt",
)


def test_summary_holds_every_key_the_readme_promises_with_the_results_values(logged_run):
    results, run, _ = logged_run
    for key in README_SUMMARY_METRICS:
        assert run.summary[key] == pytest.approx(results[key], abs=1e-12), key
    assert run.summary["train_seconds"] == pytest.approx(
        sum(results["timings"]["train_seconds_per_experience"])
    )
    assert run.summary["task_il_evaluation"] == results["task_il_evaluation"]
    assert (run.summary["mem_size"], run.summary["storage"], run.summary["status"]) == (
        200,
        "class_balanced",
        "completed",
    )


def test_offline_run_says_how_to_sync(logged_run):
    _, _, result = logged_run
    assert "wandb sync" in result.stderr


def test_no_key_no_network_still_completes(tmp_path):
    env = {"HOME": str(tmp_path), "NETRC": str(tmp_path / "none"), "WANDB_BASE_URL": "http://127.0.0.1:9"}
    unset = ("WANDB_API_KEY", "WANDB_MODE")
    result = replay_run("strategy.train_epochs=1", "print_config=false", cwd=tmp_path, env=env, unset=unset)
    assert result.returncode == 0, result.stderr
    assert "W&B offline: upload this run later with `wandb sync" in result.stderr
    run_dir = single_run_dir(tmp_path)
    assert json.loads((run_dir / "results.json").read_text())["status"] == "completed"
    assert offline_runs(run_dir / "wandb")


def test_logger_none_logs_nothing(tmp_path):
    result = replay_run("logger=none", "strategy.train_epochs=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.rglob("wandb"))
    assert "wandb" not in result.stderr.lower()


def test_failing_run_finishes_wandb_as_failed_and_keeps_results(
    run_in_process, fail_at_step, monkeypatch, tmp_path
):
    from replay_cli.errors import RunFailed

    monkeypatch.setenv("WANDB_MODE", "offline")
    fail_at_step(2)
    with pytest.raises(RunFailed):
        run_in_process("logger=wandb", "mem_size=100")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "failed" and len(results["accuracy_matrix"]) == 2
    import wandb

    wandb.teardown()  # in this process the W&B service outlives the run; stopping it flushes the file
    (run,) = offline_runs(tmp_path / "run" / "wandb")
    assert run.exit_code == 1
    assert run.summary["status"] == "failed"
    assert [row["experience"] for row in run.history if "accuracy/exp_0" in row] == [0, 1]


def test_resuming_after_a_failure_continues_wandb_steps(run_in_process, fail_at_step, monkeypatch, tmp_path):
    """Both offline segments of the run read back: W&B's steps increase strictly across them and every
    experience is logged exactly once."""
    import itertools

    import wandb

    from replay_cli.errors import RunFailed
    from replay_cli.training.experiment import run_experiment
    from replay_cli.training.resume import prepare_resume
    from tests.conftest import compose_config

    monkeypatch.setenv("WANDB_MODE", "offline")
    fail_at_step(2)
    with pytest.raises(RunFailed):
        run_in_process("logger=wandb", "mem_size=100", "strategy.train_epochs=1")
    wandb.teardown()
    run_dir = tmp_path / "run"
    cfg, state = prepare_resume(compose_config("logger=wandb"), run_dir, [])
    assert run_experiment(cfg, run_dir, checkpoint=state).status == "completed"
    wandb.teardown()
    segments = [run for run in offline_runs(run_dir / "wandb") if run.run_id]
    assert len(segments) == 2 and len({run.run_id for run in segments}) == 1
    steps = [row["_step"] for run in segments for row in run.history]
    assert all(a < b for a, b in itertools.pairwise(steps)), steps
    logged = [row["experience"] for run in segments for row in run.history if "average_accuracy" in row]
    assert logged == [0, 1, 2, 3, 4]


def test_a_broken_wandb_warns_once_and_the_run_goes_on(run_in_process, monkeypatch, capsys):
    import wandb

    def refuse(*args, **kwargs):
        raise RuntimeError("entity nobody-here not found\nsecond line")

    monkeypatch.setattr(wandb, "init", refuse)
    results = run_in_process("logger=wandb", "logger.mode=online", "strategy.train_epochs=1")
    assert results["status"] == "completed"
    warnings = [line for line in capsys.readouterr().err.splitlines() if "W&B" in line]
    assert len(warnings) == 1
    assert "entity nobody-here not found" in warnings[0] and "local results are unaffected" in warnings[0]


def test_task_il_per_class_and_confusion_are_logged_as_in_results(logged_run):
    results, run, result = logged_run
    rows = [row for row in run.history if "accuracy/exp_0" in row]
    for step, row in enumerate(rows):
        for j in range(5):
            assert row[f"task_il_accuracy/exp_{j}"] == pytest.approx(
                results["task_il_accuracy_matrix"][step][j]
            )
        expected = results["task_il_average_accuracy_per_experience"][step]
        assert row["task_il_average_accuracy"] == pytest.approx(expected)
        logged = {
            k.removeprefix("class_accuracy/class_"): v for k, v in row.items() if k.startswith("class_acc")
        }
        assert logged == pytest.approx(results["per_class_accuracy"][step])
    for key in ("task_il_final_average_accuracy", "task_il_forgetting", "task_il_bwt"):
        assert run.summary[key] == pytest.approx(results[key])
    assert run.summary["task_il_evaluation"] == results["task_il_evaluation"]
    assert run.summary["confusion_matrix/_type"] == "table-file"
    assert run.summary["confusion_matrix/nrows"] == 100  # (true, predicted) pairs of 10 classes
    assert run.summary["confusion_matrix_chart_table/_type"] == "table-file"
    assert run.summary["per_class_accuracy/nrows"] == 2 + 4 + 6 + 8 + 10  # classes trained on, per step
    for image in ("confusion_matrix_heatmap", "buffer_share_vs_accuracy"):
        assert run.summary[f"{image}/_type"] == "image-file"
    assert "(task-IL " in result.stdout and "task-IL accuracy matrix" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        (("storage=class_balanced",), "class_balanced-m500-s0"),
        (("strategy=er_ace", "mem_size=200", "seed=1"), "er_ace-m200-s1"),
        (("strategy=rar", "storage=reservoir"), "rar-reservoir-m500-s0"),
        (("strategy=naive", "seed=1"), "naive-s1"),
    ],
)
def test_run_names_tell_strategies_apart(overrides, name):
    from omegaconf import OmegaConf

    from replay_cli.reporting.wandb_logger import run_name
    from tests.conftest import compose_config

    assert run_name(OmegaConf.to_container(compose_config(*overrides), resolve=True)) == name


def test_validation_series_and_summary_mirror_results_json(tmp_path):
    result = replay_run(
        "benchmark.validation_size=0.1", "stop_after=2", "strategy.train_epochs=1", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "validation stream: " in result.stdout and "training samples held out" in result.stdout
    run_dir = single_run_dir(tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    (run,) = offline_runs(run_dir / "wandb")
    validation = results["validation"]
    rows = [row for row in run.history if "val/accuracy/exp_0" in row]
    assert [row["experience"] for row in rows] == [0, 1]
    for step, row in enumerate(rows):
        for j in range(2):
            assert row[f"val/accuracy/exp_{j}"] == pytest.approx(validation["accuracy_matrix"][step][j])
        assert row["val/average_accuracy"] == pytest.approx(
            validation["average_accuracy_per_experience"][step]
        )
        assert row["val/stream_accuracy"] == pytest.approx(validation["stream_accuracy"][step])
    for key in (
        "final_average_accuracy",
        "final_stream_accuracy",
        "forgetting",
        "average_incremental_accuracy",
    ):
        assert run.summary[f"val/{key}"] == pytest.approx(validation[key]), key
    assert run.summary["average_incremental_accuracy"] == pytest.approx(
        results["average_incremental_accuracy"]
    )
