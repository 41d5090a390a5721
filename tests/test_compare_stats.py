"""Statistics of a comparison: Student t intervals over seeds and tests against a baseline, equal to
scipy's on the same numbers; the significance marker follows --alpha."""

import csv
import io
import json
import math

import pytest
from scipy import stats

from replay_cli.compare.comparison import compare
from replay_cli.compare.stats import versus_baseline
from replay_cli.compare.tables import cells, headers, render
from replay_cli.errors import UsageError
from replay_cli.keys import metric_label
from tests.conftest import fake_run, replay_compare

# final accuracy on experience 0 per (storage, seed): final average accuracy = (final + 1) / 2
FINALS = {
    "reservoir": {0: 0.30, 1: 0.42, 2: 0.35},
    "class_balanced": {0: 0.50, 1: 0.58, 2: 0.61},
}


def _sweep(tmp_path, finals=FINALS, mem_sizes=(100,)):
    for storage, per_seed in finals.items():
        for mem_size in mem_sizes:
            for seed, final in per_seed.items():
                matrix = [[1.0, 0.0], [final, 1.0]]
                fake_run(
                    tmp_path / f"{storage}-{mem_size}-{seed}",
                    matrix,
                    storage=storage,
                    mem_size=mem_size,
                    seed=seed,
                )
    return str(tmp_path)


def _accuracies(storage, finals=FINALS):
    return [(final + 1) / 2 for _, final in sorted(finals[storage].items())]


def _row(comparison, storage):
    (row,) = [row for row in comparison.rows() if row["storage"] == storage]
    return row


def test_confidence_interval_is_student_t_over_seeds(tmp_path):
    comparison = compare([_sweep(tmp_path)])
    for storage in FINALS:
        values = _accuracies(storage)
        row = _row(comparison, storage)
        mean, sem = sum(values) / 3, stats.sem(values)
        low, high = row["final_average_accuracy_ci_low"], row["final_average_accuracy_ci_high"]
        assert low < row["final_average_accuracy_mean"] < high
        half = stats.t.ppf(0.975, df=2) * sem  # 4.303 * sem: three seeds give a wide interval
        assert (low, high) == pytest.approx((mean - half, mean + half), abs=1e-12)
        assert row["forgetting_ci_low"] < row["forgetting_mean"] < row["forgetting_ci_high"]


def test_default_baseline_is_the_best_group_and_the_p_value_is_scipys_paired_t(tmp_path):
    comparison = compare([_sweep(tmp_path)])
    best, other = comparison.groups
    assert best.label == "class_balanced" and best.is_baseline and other.baseline is best
    row = _row(comparison, "reservoir")
    expected = stats.ttest_rel(_accuracies("reservoir"), _accuracies("class_balanced")).pvalue
    assert row["test"] == "paired t"
    assert row["p_value"] == pytest.approx(expected, rel=1e-12)
    assert row["baseline"] == "class_balanced"
    assert _row(comparison, "class_balanced")["test"] == "baseline"


def test_wilcoxon_when_asked(tmp_path):
    finals = {storage: {seed: 0.3 + 0.01 * seed for seed in range(6)} for storage in ("a", "b")}
    finals["b"] = {seed: value + 0.1 + 0.003 * seed for seed, value in finals["a"].items()}
    comparison = compare([_sweep(tmp_path, finals)], test="wilcoxon")
    row = _row(comparison, "a")
    expected = stats.wilcoxon(_accuracies("a", finals), _accuracies("b", finals)).pvalue
    assert row["test"] == "paired Wilcoxon" and row["p_value"] == pytest.approx(expected, rel=1e-12)


def test_groups_whose_seeds_differ_are_tested_unpaired_and_say_so(tmp_path):
    finals = {"reservoir": FINALS["reservoir"], "class_balanced": {3: 0.5, 4: 0.58, 5: 0.61}}
    comparison = compare([_sweep(tmp_path, finals)])
    row = _row(comparison, "reservoir")
    expected = stats.ttest_ind(
        _accuracies("reservoir", finals), _accuracies("class_balanced", finals), equal_var=False
    ).pvalue
    assert row["test"] == "Welch t (unpaired: seeds differ)"
    assert row["p_value"] == pytest.approx(expected, rel=1e-12)
    assert "Welch t (unpaired: seeds differ)" in render(comparison, "table")


def test_the_marker_follows_alpha(tmp_path):
    path = _sweep(tmp_path)
    p_value = _row(compare([path]), "reservoir")["p_value"]
    assert 0.001 < p_value < 0.05
    for alpha, significant in ((0.05, True), (p_value / 2, False)):
        comparison = compare([path], alpha=alpha)
        assert _row(comparison, "reservoir")["significant"] is significant
        body = dict(zip(["class_balanced", "reservoir"], cells(comparison), strict=True))
        p_cell = body["reservoir"][headers(comparison).index("p")]
        assert p_cell.endswith("*") is significant
        assert (
            body["reservoir"][headers(comparison).index(metric_label("final_average_accuracy"))].endswith("*")
            is significant
        )
        assert body["class_balanced"][headers(comparison).index("p")] == "baseline"
        printed = json.loads(render(comparison, "json"))
        assert printed["alpha"] == alpha and printed["rows"][1]["significant"] is significant


def test_a_chosen_baseline_is_tested_at_each_memory_size(tmp_path):
    comparison = compare([_sweep(tmp_path, mem_sizes=(100, 200))], baseline={"storage": "reservoir"})
    rows = comparison.rows()
    assert len(rows) == 4
    for row in rows:
        if row["storage"] == "reservoir":
            assert row["test"] == "baseline" and row["p_value"] is None
        else:
            assert row["baseline"] == "reservoir" and row["test"] == "paired t"
            expected = stats.ttest_rel(_accuracies("class_balanced"), _accuracies("reservoir")).pvalue
            assert row["p_value"] == pytest.approx(expected, rel=1e-12)
    # one group per cell is its baseline: each memory size has its own
    baselines = {(g.key["mem_size"], g.baseline.key["mem_size"]) for g in comparison.groups}
    assert baselines == {(100, 100), (200, 200)}


def test_one_seed_has_no_interval_and_no_test(tmp_path):
    finals = {storage: {0: values[0]} for storage, values in FINALS.items()}
    comparison = compare([_sweep(tmp_path, finals)])
    row = _row(comparison, "reservoir")
    assert row["final_average_accuracy_ci_low"] is None and row["p_value"] is None
    assert row["final_average_accuracy_std"] is None
    assert not math.isnan(row["final_average_accuracy_mean"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": {"storage": "reservoirr"}}, "no group has storage=reservoirr (did you mean reservoir?"),
        ({"baseline": {"mem_size": "100"}}, "--baseline mem_size=100: mem_size is not a grouping key"),
        ({"test": "anova"}, "--test anova is not a test; choose one of: t, wilcoxon"),
        ({"alpha": 1.5}, "--alpha 1.5 is invalid"),
    ],
)
def test_bad_statistics_options_are_usage_errors(kwargs, message, tmp_path):
    with pytest.raises(UsageError) as raised:
        compare([_sweep(tmp_path)], **kwargs)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "storage=nope"], "replay-compare: error: --baseline storage=nope: no group has"),
        (["--baseline", "storage"], "replay-compare: error: argument --baseline: expected KEY=VALUE pairs"),
        (["--alpha", "x"], "replay-compare: error: argument --alpha: invalid float value: 'x'"),
        (["--test", "z"], "replay-compare: error: argument --test: invalid choice: 'z'"),
    ],
)
def test_bad_statistics_options_on_the_command_line_are_one_line(args, message, tmp_path):
    result = replay_compare(_sweep(tmp_path / "runs"), "--no-figures", *args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1


def test_the_command_prints_the_statistics_columns(tmp_path):
    path = _sweep(tmp_path / "runs")
    result = replay_compare(path, "--format", "csv", "--no-figures", "--alpha", "0.01", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["storage"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert list(rows["reservoir"])[-4:] == ["baseline", "test", "p_value", "significant"]
    expected = stats.ttest_rel(_accuracies("reservoir"), _accuracies("class_balanced")).pvalue
    assert float(rows["reservoir"]["p_value"]) == pytest.approx(expected, rel=1e-12)
    assert rows["reservoir"]["significant"] == str(expected < 0.01)
    low, high = (float(rows["reservoir"][f"final_average_accuracy_{b}"]) for b in ("ci_low", "ci_high"))
    assert low < float(rows["reservoir"]["final_average_accuracy_mean"]) < high


@pytest.mark.parametrize(
    ("values", "baseline", "test", "label", "scipy_test"),
    [
        ([], [(0, 0.5), (1, 0.6)], "t", "n/a: no runs", None),
        ([(0, 0.4), (1, 0.5)], [], "t", "n/a: no runs", None),
        ([(0, 0.4)], [(0, 0.5)], "t", "n/a: one run", None),
        ([(0, 0.4), (1, 0.45), (2, 0.5)], [(0, 0.6), (1, 0.62), (2, 0.7)], "t", "paired t", "rel"),
        ([(0, 0.4), (1, 0.45), (2, 0.5)], [(3, 0.6), (4, 0.62), (5, 0.7)], "t",
         "Welch t (unpaired: seeds differ)", "ind"),
        # Optuna trials that all ran seed 0: same seeds, but nothing to pair them by
        ([(0, 0.4), (0, 0.45), (0, 0.5)], [(0, 0.6), (0, 0.62)], "t",
         "Welch t (unpaired: one seed each)", "ind"),
        ([(0, 0.4), (1, 0.45), (1, 0.5)], [(0, 0.6), (1, 0.62)], "t",
         "Welch t (unpaired: a seed repeats)", "ind"),
        ([(0, 0.4), (1, 0.45), (2, 0.5)], [(3, 0.6), (4, 0.62), (5, 0.7)], "wilcoxon",
         "Mann-Whitney U (unpaired: seeds differ)", "mwu"),
    ],
)  # fmt: skip
def test_the_test_column_says_what_was_computed(values, baseline, test, label, scipy_test):
    result = versus_baseline(values, baseline, test)
    assert result.test == label
    a, b = [v for _, v in values], [v for _, v in baseline]
    expected = {
        None: None,
        "rel": lambda: stats.ttest_rel(a, b).pvalue,
        "ind": lambda: stats.ttest_ind(a, b, equal_var=False).pvalue,
        "mwu": lambda: stats.mannwhitneyu(a, b, alternative="two-sided").pvalue,
    }[scipy_test]
    if expected is None:
        assert result.p_value is None
    else:
        assert result.p_value == pytest.approx(expected(), rel=1e-12)


def test_a_group_without_completed_runs_says_no_runs(tmp_path):
    _sweep(tmp_path, {"reservoir": FINALS["reservoir"]})
    for seed in (0, 1):
        fake_run(tmp_path / f"broken-{seed}", [[1.0, 0.0], [0.5, 1.0]], storage="class_balanced", seed=seed,
                 status="failed")  # fmt: skip
    row = _row(compare([str(tmp_path)]), "class_balanced")
    assert (row["test"], row["p_value"]) == ("n/a: no runs", None)


def test_a_cell_where_no_group_completed_says_no_runs(tmp_path):
    for storage in ("reservoir", "class_balanced"):
        for seed in (0, 1):
            fake_run(tmp_path / f"{storage}-{seed}", [[1.0, 0.0], [0.5, 1.0]], storage=storage, seed=seed,
                     status="failed")  # fmt: skip
    comparison = compare([str(tmp_path)])
    assert [(row["test"], row["p_value"]) for row in comparison.rows()] == [("n/a: no runs", None)] * 2
