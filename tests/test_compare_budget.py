"""Equal-budget comparison (replay_cli/compare/budget.py): --budget parsing and filtering, the Pareto
front, the cost figures and the replay-diagnostics curves in the figures and the HTML report."""

from __future__ import annotations

import json

import pytest

from replay_cli.compare.budget import pareto_front, parse_budget
from replay_cli.compare.cli import main
from replay_cli.compare.comparison import compare
from replay_cli.errors import UsageError
from replay_cli.reporting.instrument_keys import cost_totals
from tests.conftest import fake_run, replay_compare, replay_run

MATRIX = [[0.9, 0.0], [0.6, 0.8]]
# strategy -> (train FLOPs, buffer bytes, final matrix row scale): MIR costs more and reaches more
METHODS = {
    "naive": (1e8, 0, 0.5),
    "replay": (2e8, 68_000, 0.8),
    "mir": (5e8, 68_000, 0.9),
    "der": (2.2e8, 88_000, 0.7),
}


def _costed_run(path, strategy, seed, flops, buffer_bytes, scale):
    """A fake run whose results.json carries cost and diagnostics as replay-run writes them."""
    matrix = [[v * scale for v in row] for row in MATRIX]
    fake_run(path, matrix, strategy=strategy, seed=seed)
    results = json.loads((path / "results.json").read_text())
    step = {
        "train_forward_samples": 1000,
        "train_backward_samples": 1000,
        "train_flops": flops / 2 + seed,
        "eval_forward_samples": 500,
        "eval_flops": 1e6,
        "buffer_bytes": buffer_bytes,
        "peak_rss_bytes": 10**8,
        "cuda_max_allocated_bytes": None,
    }
    results["cost"] = {"per_step": [step, step], **cost_totals([step, step])}
    results.update(train_flops=flops + 2 * seed, buffer_bytes=buffer_bytes)
    unread = {"replay_counts": None, "memory_overfitting": None, "forgetting_events": None, "gallery": None}
    overfitting = {"gap": 0.2 * scale, "buffer_accuracy": 0.9, "heldout_accuracy": 0.7}
    results["diagnostics"] = {
        "per_step": [
            unread,
            {
                **unread,
                "replay_counts": {"mean": 3.0 + seed, "replays": 10, "max": 5, "never_replayed_share": 0.1},
                "memory_overfitting": {**overfitting, "per_experience": {"0": overfitting}},
            },
        ]
    }
    (path / "results.json").write_text(json.dumps(results))


@pytest.fixture
def costed_sweep(tmp_path):
    for strategy, (flops, size, scale) in METHODS.items():
        for seed in (0, 1):
            _costed_run(tmp_path / "sweep" / f"{strategy}-{seed}", strategy, seed, flops, size, scale)
    return tmp_path / "sweep"


def test_budget_values_and_bad_budgets():
    assert parse_budget({"flops": "2e9", "buffer_bytes": "64Ki"}) == {
        "train_flops": 2e9,
        "buffer_bytes": 65536,
    }
    assert parse_budget({"flops": "1.5G"}) == {"train_flops": 1.5e9}
    assert parse_budget({"flops": "2E9", "buffer_bytes": "70k"}) == {"train_flops": 2e9, "buffer_bytes": 7e4}
    for prefix_as_written_elsewhere in ("2m", "2g", "64ki", "3K"):  # m is milli; no lowercase G
        with pytest.raises(UsageError, match="case as written"):
            parse_budget({"flops": prefix_as_written_elsewhere})
    with pytest.raises(UsageError, match="--budget memory=1: memory is not a budget; choose one of: flops"):
        parse_budget({"memory": "1"})
    with pytest.raises(UsageError, match="--budget flops=lots is invalid: expected a positive number"):
        parse_budget({"flops": "lots"})
    with pytest.raises(UsageError, match="--budget flops=1e400 is invalid: it overflows to infinity"):
        parse_budget({"flops": "1e400"})


def test_pareto_front_keeps_the_points_nothing_beats():
    costs, values = [1, 2, 3, 4, 2.5], [0.5, 0.8, 0.7, 0.9, 0.8]
    assert pareto_front(costs, values, higher_is_better=True) == [0, 1, 3]
    assert pareto_front(costs, [1 - v for v in values], higher_is_better=False) == [0, 1, 3]


def test_budget_keeps_only_the_groups_within_it(costed_sweep):
    everything = compare([str(costed_sweep)])
    assert {g.label for g in everything.groups} == {"naive", "replay", "mir", "der"}
    within = compare([str(costed_sweep)], budget=parse_budget({"flops": "3e8"}))
    assert {g.label for g in within.groups} == {"naive", "replay", "der"}
    assert [g.label for g in within.over_budget] == ["mir"]
    assert len(within.runs) == 6
    assert any("left out: mir" in note for note in within.notes())
    both = compare([str(costed_sweep)], budget=parse_budget({"flops": "3e8", "buffer_bytes": "70k"}))
    assert {g.label for g in both.groups} == {"naive", "replay"}
    left_out = ("left out: mir; der", "left out: der; mir")
    assert any(note.endswith(left_out) for note in both.notes())
    row = next(r for r in both.rows() if r["strategy"] == "replay")
    assert row["train_flops_mean"] == pytest.approx(2e8 + 1) and row["buffer_bytes_mean"] == 68_000


def test_cli_budget_filters_and_refuses_a_bad_one_in_one_line(costed_sweep, capsys):
    main([str(costed_sweep), "--budget", "buffer_bytes=70000", "--format", "json", "--no-figures"])
    shown = json.loads(capsys.readouterr().out)
    assert sorted(group["strategy"] for group in shown["rows"]) == ["mir", "naive", "replay"]
    with pytest.raises(SystemExit) as ended:
        main([str(costed_sweep), "--budget", "flops=-3"])
    assert ended.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "--budget flops=-3 is invalid" in error


def test_cost_figures_and_diagnostic_curves_are_drawn_and_reported(costed_sweep, tmp_path):
    from replay_cli.compare import budget
    from replay_cli.compare.files import write_outputs

    comparison = compare([str(costed_sweep)])
    written = write_outputs(comparison, tmp_path / "out")
    names = [figure.name for figure in written.figures]
    assert {"replay_diagnostics", "metric_vs_flops", "metric_vs_buffer_bytes"} <= set(names)
    report = written.report.read_text()
    assert 'id="metric_vs_flops"' in report and 'id="replay_diagnostics"' in report

    axes = budget.metric_vs_cost(comparison, "train_flops").axes[0]
    assert axes.get_xlabel().startswith("training FLOPs") and axes.get_xscale() == "linear"  # 5x apart
    front = next(line for line in axes.lines if line.get_label() == "Pareto front")
    assert list(front.get_xdata()) == [1e8 + 1, 2e8 + 1, 5e8 + 1]  # naive, replay, mir; der is beaten
    axes = budget.metric_vs_cost(comparison, "buffer_bytes").axes[0]
    labels = axes.get_legend_handles_labels()[1]
    assert "naive (costs none)" in labels and axes.get_xlabel().startswith("largest buffer (bytes")
    replays, gap = budget.replay_diagnostics(comparison).axes[:2]
    mir = next(line for line in replays.lines if line.get_label() == "mir")
    assert list(mir.get_xdata()) == [1] and list(mir.get_ydata()) == [3.5]  # mean over seeds 0 and 1
    assert gap.get_ylabel().startswith("memory overfitting gap")


@pytest.mark.slow
def test_a_real_sweep_over_methods_writes_the_cost_figures(tmp_path):
    sweep = ("strategy=replay,mir,naive", "seed=0,1", "strategy.train_epochs=1", "benchmark.n_experiences=3")
    result = replay_run("-m", *sweep, "print_config=false", "progress=false", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    (root,) = tmp_path.glob("outputs/multirun/*/*")
    shown = replay_compare(str(root), "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    groups = {group["strategy"]: group for group in json.loads(shown.stdout)["rows"]}
    assert groups["mir"]["train_flops_mean"] > groups["replay"]["train_flops_mean"]
    assert groups["naive"]["buffer_bytes_mean"] == 0
    for name in ("metric_vs_flops", "metric_vs_buffer_bytes", "replay_diagnostics"):
        assert (root / "compare" / f"{name}.png").is_file()
    summary = json.loads((root / "sweep_summary.json").read_text())
    assert all(row["train_flops"] > 0 for row in summary if row["status"] == "completed")


def test_the_report_shows_each_groups_last_buffer_gallery(costed_sweep, tmp_path):
    import numpy as np

    from replay_cli.compare.files import write_outputs
    from replay_cli.reporting import diagnostics

    run = costed_sweep / "replay-0"
    results = json.loads((run / "results.json").read_text())
    results["diagnostics"]["per_step"][-1]["gallery"] = "buffer_gallery_step_1.png"
    (run / "results.json").write_text(json.dumps(results))
    grid = np.full((9, 40, 3), 200, dtype=np.uint8)
    diagnostics.write_gallery(run / "buffer_gallery_step_1.png", grid, [3], (2, 2))
    report = write_outputs(compare([str(costed_sweep)]), tmp_path / "out").report.read_text()
    assert "<h2>Buffer galleries (after the last step)</h2>" in report
    assert 'id="gallery-replay"' in report and 'id="gallery-mir"' not in report


@pytest.mark.parametrize("fmt", ["table", "json"])
@pytest.mark.parametrize("select", [[], ["--select-by", "validation.final_average_accuracy"]])
def test_a_budget_no_group_is_within_is_one_line_naming_the_cheapest(costed_sweep, capsys, fmt, select):
    """Nothing printed but the reason, and the budget's reason even when --select-by would find nothing."""
    with pytest.raises(SystemExit) as ended:
        main([str(costed_sweep), "--budget", "flops=50M", "--format", fmt, "--no-figures", *select])
    assert ended.value.code == 2
    shown = capsys.readouterr()
    assert shown.out == ""
    prefix = (
        "replay-compare: error: --budget: no group is within flops <= 5e+07 (smallest mean flops: 1e+08, in "
    )
    error = shown.err.strip()
    assert error.count("\n") == 0 and error.startswith(prefix) and "naive" in error[len(prefix) :], error
    assert not (costed_sweep / "compare").exists()


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ("flops=1e8,flops=2e8", "argument --budget: flops is given twice in flops=1e8,flops=2e8"),
        ("flops=", "argument --budget: expected KEY=VALUE pairs, e.g. flops=2G"),
        ("flops=1e400", "--budget flops=1e400 is invalid: it overflows to infinity"),
    ],
)
def test_cli_refuses_a_repeated_empty_or_infinite_budget(costed_sweep, capsys, budget, message):
    with pytest.raises(SystemExit) as ended:
        main([str(costed_sweep), "--budget", budget, "--no-figures"])
    assert ended.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and message in error, error
