"""Grouping and aggregation: means over completed runs only, never across benchmarks."""

import statistics

import pytest

from replay_cli.compare.comparison import Stat, compare
from replay_cli.errors import UsageError
from tests.conftest import fake_run


def _matrix(final: float) -> list[list[float]]:
    return [[1.0, 0.0], [final, 1.0]]  # final average accuracy (final + 1) / 2, forgetting 1 - final


def test_mean_std_n_over_seeds_and_best_first(tmp_path):
    finals = {("reservoir", 0): 0.2, ("reservoir", 1): 0.4}
    finals |= {("class_balanced", 0): 0.6, ("class_balanced", 1): 0.7}
    for (storage, seed), final in finals.items():
        fake_run(tmp_path / f"{storage}-{seed}", _matrix(final), storage=storage, seed=seed)
    comparison = compare([str(tmp_path)])
    assert comparison.by == ["storage"]
    assert [g.label for g in comparison.groups] == ["class_balanced", "reservoir"]
    stat = comparison.groups[1].stats["final_average_accuracy"]
    assert stat.n == 2
    assert stat.mean == pytest.approx((1.2 + 1.4) / 4)
    assert stat.std == pytest.approx(statistics.stdev([0.6, 0.7]))
    assert comparison.groups[1].stats["forgetting"].mean == pytest.approx(0.7)
    by_forgetting = compare([str(tmp_path)], metric="forgetting")
    assert [g.label for g in by_forgetting.groups] == ["class_balanced", "reservoir"]  # lower is better
    assert comparison.output_dir() == tmp_path / "compare"


def test_unfinished_runs_are_listed_and_left_out_of_the_means(tmp_path):
    fake_run(tmp_path / "ok", _matrix(0.5))
    fake_run(tmp_path / "failed", _matrix(0.9), seed=1, status="failed")
    fake_run(tmp_path / "running", _matrix(0.9)[:1], seed=2, status="running")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")
    comparison = compare([str(tmp_path)])
    (group,) = comparison.groups
    assert group.stats["final_average_accuracy"] == Stat(0.75, None, 1)
    assert group.excluded == {"failed": 1, "running": 1}
    assert {run.status for run in comparison.excluded_runs} == {"failed", "running", "unreadable"}
    assert comparison.rows()[0]["excluded"] == "1 failed, 1 running"


def test_runs_of_different_benchmarks_are_never_averaged(tmp_path):
    for benchmark in ("split_digits", "split_other"):
        for seed in (0, 1):
            fake_run(tmp_path / f"{benchmark}-{seed}", _matrix(0.5), benchmark=benchmark, seed=seed)
    comparison = compare([str(tmp_path)], by=["storage"])
    assert comparison.key_columns == ["benchmark", "storage"]
    assert sorted(row["benchmark"] for row in comparison.rows()) == ["split_digits", "split_other"]
    assert all(row["n"] == 2 for row in comparison.rows())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"paths": ["missing-dir"]}, "missing-dir does not exist"),
        ({"paths": [""]}, "empty path"),
        ({"paths": ["nothing-*"]}, "nothing-* matches no files or directories"),
        (
            {"paths": ["."], "by": ["storag"]},
            "--by storag is not a config key of these runs (did you mean storage?",
        ),
        ({"paths": ["."], "metric": "acc"}, "--metric acc is not a metric"),
    ],
)
def test_bad_input_is_a_usage_error(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_run(tmp_path / "run", _matrix(0.5))
    with pytest.raises(UsageError) as raised:
        compare(**args)
    assert message in str(raised.value)


def test_a_directory_without_runs_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no runs found under"):
        compare([str(tmp_path)])
