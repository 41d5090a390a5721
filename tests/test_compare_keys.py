"""One source of truth for a run's keys: W&B's config columns, replay-compare's keys and the sweep
summary's columns are the same set; the launcher never changes the groups."""

import csv
import json

import pytest

from replay_cli.compare.comparison import compare
from replay_cli.compare.runs import find_runs
from replay_cli.keys import FOLLOWS, HEADLINE_METRICS, flatten, is_presentation
from replay_cli.reporting.results import RunResults
from replay_cli.reporting.wandb_records import offline_runs
from replay_cli.sweeps.summary import COLUMNS, summarize, write_summary
from tests.conftest import replay_run


def test_flatten_names_a_group_by_its_option_once():
    config = {
        "storage": {"name": "reservoir", "policy": {"max_size": 5, "name": "inner"}},
        "mem_size": 5,
        "logger": {"project": "p"},
        "classes": [0, 1],
    }
    assert flatten(config) == {
        "storage": "reservoir",
        "storage.policy.max_size": 5,
        "storage.policy.name": "inner",
        "mem_size": 5,
        "logger.project": "p",
        "classes": [0, 1],
    }


@pytest.mark.parametrize(
    ("key", "presentation"),
    [
        ("num_threads", True),
        ("fast_path", True),
        ("logger", True),
        ("logger.mode", True),
        ("progress", True),
        ("progress_bar", False),
        ("seed", False),
        ("mem_size", False),
    ],
)
def test_presentation_keys(key, presentation):
    assert is_presentation(key) is presentation


def test_the_headline_metrics_are_the_results_summary():
    results = RunResults({"seed": 0}, n_experiences=2, n_steps=2, benchmark={"name": "b"})
    assert tuple(results.summary()) == HEADLINE_METRICS


def test_wandb_columns_compare_keys_and_summary_columns_are_one_set(small_sweep):
    """Per run (storage policies have keys of their own) and over the sweep."""
    wandb_runs = offline_runs(small_sweep)
    wandb_columns = {run.name: set(run.config) - {"_wandb", FOLLOWS} for run in wandb_runs}
    compare_keys = {_wandb_name(run.config): set(run.settings) for run in find_runs([str(small_sweep)]).runs}
    summary = json.loads((small_sweep / "sweep_summary.json").read_text())
    summary_columns = {_wandb_name(row): set(row) - set(COLUMNS) for row in summary}
    assert len(wandb_columns) == 8
    assert wandb_columns == compare_keys == summary_columns
    follows = {_wandb_name(row): row[FOLLOWS] for row in summary}  # the one column beside the config's
    assert {run.name: run.config[FOLLOWS] for run in wandb_runs} == follows
    assert all("storage.policy.max_size" in keys for keys in follows.values())
    with open(small_sweep / "sweep_summary.csv") as handle:
        summary_rows = list(csv.DictReader(handle))
    summary_columns = set(summary_rows[0]) - set(COLUMNS)
    assert summary_columns == set().union(*wandb_columns.values())
    assert {"storage", "mem_size", "seed", "storage.policy.max_size", "optimizer.lr"} <= summary_columns
    assert "storage.name" not in summary_columns  # the group's option is its own column
    for row in summary_rows:
        results = json.loads((small_sweep / row["job"] / "results.json").read_text())
        assert row["storage"] == results["config"]["storage"]["name"]
        assert int(row["mem_size"]) == results["config"]["mem_size"]


def _wandb_name(config: dict) -> str:
    """The run name W&B gives a replay job (``<storage>-m<mem_size>-s<seed>``), nested or flat config."""
    storage = config["storage"]["name"] if isinstance(config["storage"], dict) else config["storage"]
    return f"{storage}-m{config['mem_size']}-s{config['seed']}"


def test_a_job_without_results_gets_its_config_columns(tmp_path):
    job = tmp_path / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- mem_size=-5\n")
    (job / ".hydra" / "config.yaml").write_text(
        "mem_size: -5\nseed: 3\nstorage:\n  name: reservoir\n  policy:\n    max_size: ${mem_size}\n"
    )
    rows = summarize(tmp_path)
    write_summary(tmp_path, rows)
    (row,) = rows
    assert row["status"] == "failed"
    assert (row["storage"], row["storage.policy.max_size"], row["seed"]) == ("reservoir", -5, 3)
    with open(tmp_path / "sweep_summary.csv") as handle:
        (written,) = csv.DictReader(handle)
    assert written["storage.policy.max_size"] == "-5"


@pytest.mark.slow
def test_the_launcher_never_changes_the_groups(tmp_path):
    """The same grid with the basic launcher and with joblib (which sets num_threads per job)."""
    grid = ("storage=reservoir,class_balanced", "seed=0,1", "mem_size=50", "strategy.train_epochs=1")
    quiet = ("logger=none", "print_config=false", "progress=false")
    sweeps = {}
    for launcher in ("basic", "joblib"):
        cwd = tmp_path / launcher
        cwd.mkdir()
        extra = [] if launcher == "basic" else ["launcher=joblib", "hydra.launcher.n_jobs=2"]
        result = replay_run("-m", *extra, *grid, *quiet, cwd=cwd)
        assert result.returncode == 0, result.stderr
        (sweeps[launcher],) = (cwd / "outputs" / "multirun").glob("*/*")
    groups = {}
    for launcher, sweep in sweeps.items():
        comparison = compare([str(sweep)])
        assert comparison.swept == ["storage"]
        groups[launcher] = {(g.label, len(g.completed)) for g in comparison.groups}
    assert groups["basic"] == groups["joblib"] == {("reservoir", 2), ("class_balanced", 2)}
    both = compare([str(sweep) for sweep in sweeps.values()])
    assert both.swept == ["storage"]
    assert {(g.label, len(g.completed)) for g in both.groups} == {("reservoir", 4), ("class_balanced", 4)}
