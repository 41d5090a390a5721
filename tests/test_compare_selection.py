"""replay-compare --select-by: per method, the configuration with the best validation mean, reported
with its test numbers; checked against a recomputation from the results.json files."""

import json
import statistics

import pytest

from replay_cli.compare.comparison import compare
from replay_cli.errors import UsageError
from tests.conftest import fake_run, replay_compare

# (strategy, lr) -> (validation, test) final average accuracy per seed: validation prefers lr=0.01 for
# replay and lr=0.1 for er_ace, while the test stream prefers the other lr for replay
VALUES = {
    ("replay", 0.01): ([0.80, 0.82, 0.78], [0.70, 0.72, 0.71]),
    ("replay", 0.1): ([0.70, 0.71, 0.72], [0.90, 0.88, 0.92]),
    ("er_ace", 0.01): ([0.60, 0.62, 0.61], [0.60, 0.61, 0.59]),
    ("er_ace", 0.1): ([0.75, 0.74, 0.76], [0.77, 0.75, 0.73]),
}


def validation_block(final: float) -> dict:
    """results.json's ``validation`` block, as the real RunResults writes it, of one step whose
    average accuracy is ``final`` (one step: no validation forgetting, which a test below relies on)."""
    from replay_cli.reporting.results import RunResults

    results = RunResults(config={}, n_experiences=2, n_steps=1, validation_samples=[60, 60])
    row = [final, final]
    results.add_step(row=row, seen=1, stream_accuracy=None, composition={}, train_seconds=0, eval_seconds=0)
    results.add_validation(row, final)
    return results.validation_block()


@pytest.fixture
def tuned_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    job = 0
    for (strategy, lr), (validation, test) in VALUES.items():
        for seed in range(3):
            run_dir = fake_run(
                sweep / str(job),
                [[1.0, 0.0], [test[seed], test[seed]]],
                strategy=strategy,
                seed=seed,
                extra={"optimizer": {"name": "sgd", "lr": lr}, "benchmark": {"name": "split_digits"}},
                overrides=[
                    f"strategy={strategy}",
                    f"optimizer.lr={lr}",
                    "benchmark.validation_size=0.1",
                    f"seed={seed}",
                ],
            )
            results = json.loads((run_dir / "results.json").read_text())
            results["validation"] = validation_block(validation[seed])
            (run_dir / "results.json").write_text(json.dumps(results))
            job += 1
    return sweep


def test_one_row_per_method_with_the_validation_choice_and_its_test_numbers(tuned_sweep):
    comparison = compare([str(tuned_sweep)], select_by="validation.final_average_accuracy")
    rows = {row["strategy"]: row for row in comparison.rows()}
    assert set(rows) == {"replay", "er_ace"}
    for strategy, lr in (("replay", 0.01), ("er_ace", 0.1)):
        row = rows[strategy]
        validation, test = VALUES[(strategy, lr)]
        assert row["optimizer.lr"] == lr and row["configurations"] == 2 and row["n"] == 3
        assert row["selected_by_validation.final_average_accuracy"] == pytest.approx(
            statistics.mean(validation)
        )
        assert row["final_average_accuracy_mean"] == pytest.approx(statistics.mean(test))
        assert row["final_average_accuracy_std"] == pytest.approx(statistics.stdev(test))
    # the baseline is the best chosen configuration by test mean; the other is tested against it
    assert rows["er_ace"]["test"] == "baseline" and rows["replay"]["p_value"] is not None
    assert comparison.final_runs() == [
        "replay-run -m strategy=er_ace optimizer.lr=0.1 seed=3,4,5",
        "replay-run -m strategy=replay optimizer.lr=0.01 seed=3,4,5",
    ]


def test_the_command_prints_the_table_and_the_final_runs_and_writes_csv_json(tuned_sweep):
    result = replay_compare(
        str(tuned_sweep), "--select-by", "validation.final_average_accuracy", "--no-figures", cwd=tuned_sweep
    )
    assert result.returncode == 0, result.stderr
    assert "configurations chosen by validation.final_average_accuracy" in result.stdout
    assert "final runs: replay-run -m strategy=replay optimizer.lr=0.01 seed=3,4,5" in result.stdout
    data = json.loads((tuned_sweep / "compare" / "comparison.json").read_text())
    assert data["selection"]["metric"] == "validation.final_average_accuracy"
    assert data["selection"]["within"] == ["strategy", "storage"]
    assert data["selection"]["tuned"] == ["optimizer.lr"]
    assert len(data["selection"]["final_runs"]) == 2 and len(data["rows"]) == 2
    header = (tuned_sweep / "compare" / "comparison.csv").read_text().splitlines()[0].split(",")
    assert {"configurations", "selected_by_validation.final_average_accuracy"} <= set(header)


def test_the_title_says_how_many_configurations_were_compared_and_chosen(tuned_sweep):
    from replay_cli.compare.tables import render

    comparison = compare([str(tuned_sweep)], select_by="validation.final_average_accuracy")
    shown = render(comparison, "markdown")
    assert "2 of 4 configurations chosen by validation.final_average_accuracy: 6 of 12 runs," in shown
    assert shown.count("final runs: ") == 2


def test_the_html_report_carries_the_selection(tuned_sweep):
    from replay_cli.compare.report import render_html

    html = render_html(compare([str(tuned_sweep)], select_by="validation.final_average_accuracy"), [])
    assert "selected by validation.final_average_accuracy" in html
    assert "final runs: replay-run -m strategy=er_ace optimizer.lr=0.1 seed=3,4,5" in html


def test_a_test_metric_selects_only_when_asked_and_says_so(tuned_sweep):
    with pytest.raises(UsageError, match="is a test metric: selecting on the test stream is optimistic"):
        compare([str(tuned_sweep)], select_by="final_average_accuracy")
    comparison = compare([str(tuned_sweep)], select_by="final_average_accuracy", select_on_test=True)
    rows = {row["strategy"]: row for row in comparison.rows()}
    assert rows["replay"]["optimizer.lr"] == 0.1  # the test stream's choice
    assert any("SELECTED ON THE TEST STREAM" in note for note in comparison.notes())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--select-by", "validation.forgetting"],
            "--select-by validation.forgetting: no completed run has it",
        ),
        (["--select-by", "validation.final_avg"], "--select-by validation.final_avg is not a metric"),
        (
            ["--select-by", "validation.final_average_accuracy", "--within", "nope"],
            "--within nope is not a config key",
        ),
        (
            ["--select-by", "validation.final_average_accuracy", "--within", "seed"],
            "--within seed: the seed is what selection averages over; --within takes grouping keys only",
        ),
        (
            ["--select-by", "validation.final_average_accuracy", "--within", "strategy,num_threads"],
            "--within num_threads: num_threads never changes a run's numbers, so it is never a grouping key",
        ),
        (["--select-on-test"], "--select-on-test needs --select-by METRIC"),
        (
            ["--select-by", "validation.final_average_accuracy", "--budget", "flops=1"],
            "--budget: no group is within flops <= 1 (no completed run reports flops)",
        ),
    ],
)
def test_bad_selection_is_one_line_exit_2(tuned_sweep, args, message):
    result = replay_compare(str(tuned_sweep), *args, "--no-figures", cwd=tuned_sweep)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_wandb_carries_the_selection(tuned_sweep, tmp_path):
    from replay_cli.reporting.wandb_records import offline_runs

    out = tmp_path / "out"
    result = replay_compare(
        str(tuned_sweep),
        "--select-by",
        "validation.final_average_accuracy",
        "--wandb",
        "--no-figures",
        "--out",
        str(out),
        cwd=tuned_sweep,
    )
    assert result.returncode == 0, result.stderr
    (run,) = offline_runs(out / "wandb")
    assert run.config["selection"]["metric"] == "validation.final_average_accuracy"
    assert len(run.config["selection"]["final_runs"]) == 2
    (table_file,) = out.glob("wandb/offline-run-*/files/media/table/comparison_*.table.json")
    table = json.loads(table_file.read_text())
    assert "selected_by_validation.final_average_accuracy" in table["columns"] and len(table["data"]) == 2


@pytest.mark.slow
def test_a_real_sweep_selected_by_validation_matches_a_recomputation(tmp_path):
    from collections import defaultdict

    from tests.conftest import replay_run

    result = replay_run(
        "-m",
        "strategy=replay,er_ace",
        "optimizer.lr=0.01,0.1",
        "benchmark.validation_size=0.1",
        "seed=0,1,2",
        "strategy.train_epochs=1",
        "logger=none",
        "print_config=false",
        "progress=false",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (sweep,) = tmp_path.glob("outputs/multirun/*/*")
    found = defaultdict(lambda: defaultdict(list))  # strategy -> lr -> [(validation, test)]
    for path in sweep.glob("*/results.json"):
        results = json.loads(path.read_text())
        config = results["config"]
        pair = (results["validation"]["final_average_accuracy"], results["final_average_accuracy"])
        found[config["strategy"]["name"]][config["optimizer"]["lr"]].append(pair)
    printed = replay_compare(
        str(sweep), "--select-by", "validation.final_average_accuracy", "--format", "json", cwd=tmp_path
    )
    assert printed.returncode == 0, printed.stderr
    rows = {row["strategy"]: row for row in json.loads(printed.stdout)["rows"]}
    assert set(rows) == {"replay", "er_ace"}
    for strategy, by_lr in found.items():
        best_lr = max(by_lr, key=lambda lr: statistics.mean(v for v, _ in by_lr[lr]))
        tests = [t for _, t in by_lr[best_lr]]
        row = rows[strategy]
        assert row["optimizer.lr"] == best_lr and row["configurations"] == 2 and row["n"] == 3
        assert row["final_average_accuracy_mean"] == pytest.approx(statistics.mean(tests), abs=1e-12)
        assert row["final_average_accuracy_std"] == pytest.approx(statistics.stdev(tests), abs=1e-12)
    assert f"final runs: replay-run -m strategy=replay optimizer.lr={rows['replay']['optimizer.lr']}" in (
        printed.stderr
    )
