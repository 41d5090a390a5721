"""``replay-compare`` end to end on a real sweep (2 policies x 2 memory sizes x 2 seeds), as typed."""

import json
import shutil
import statistics
from collections import defaultdict

import pytest
from PIL import Image

from replay_cli.compare.comparison import METRICS
from replay_cli.keys import metric_label
from tests.conftest import heavy_imports, replay_compare

FIGURES = (
    "accuracy_vs_mem_size",
    "accuracy_matrices",
    "forgetting_curves",
    "buffer_composition",
    "replay_diagnostics",
    "metric_vs_flops",
    "metric_vs_buffer_bytes",
)


def _key(results: dict) -> tuple[str, int]:
    return results["config"]["storage"]["name"], results["config"]["mem_size"]


def _expected(sweep) -> dict:
    """Mean and std of every metric per (storage, mem_size), recomputed from the results files."""
    values = defaultdict(lambda: defaultdict(list))
    for path in sweep.glob("*/results.json"):
        results = json.loads(path.read_text())
        for metric in METRICS:
            if results[metric] is not None:  # the anytime metrics need eval_every
                values[_key(results)][metric].append(results[metric])
    return {
        key: {m: (statistics.fmean(v), statistics.stdev(v), len(v)) for m, v in metrics.items()}
        for key, metrics in values.items()
    }


def test_rows_means_and_stds_match_the_results_files(compared_sweep):
    sweep, printed = compared_sweep
    assert printed["swept"] == ["storage", "mem_size"]
    assert printed["benchmarks"] == ["split_digits"]
    expected = _expected(sweep)
    rows = printed["rows"]
    assert {(row["storage"], row["mem_size"]) for row in rows} == {
        (s, m) for s in ("reservoir", "class_balanced") for m in (100, 200)
    }
    for row in rows:
        assert row["runs"] == row["n"] == 2 and row["excluded"] == ""
        recomputed = expected[(row["storage"], row["mem_size"])]
        assert set(METRICS) - set(recomputed) == {"average_anytime_accuracy", "worst_case_accuracy"}
        for metric in set(METRICS) - set(recomputed):
            assert row[f"{metric}_mean"] is None
        for metric, (mean, std, n) in recomputed.items():
            assert n == 2
            assert row[f"{metric}_mean"] == pytest.approx(mean, abs=1e-12)
            assert row[f"{metric}_std"] == pytest.approx(std, abs=1e-12)
        assert 0.1 < row["final_average_accuracy_mean"] <= 1.0
        assert 0.0 <= row["forgetting_mean"] <= 1.0
    means = [row["final_average_accuracy_mean"] for row in rows]
    assert means == sorted(means, reverse=True)


def test_files_written_and_figures_decode(compared_sweep):
    sweep, _ = compared_sweep
    out = sweep / "compare"
    expected = {"comparison.csv", "comparison.json", "comparison.md", "report.html"}
    expected |= {f"{name}.{ext}" for name in FIGURES for ext in ("png", "pdf")}
    assert {p.name for p in out.iterdir()} == expected
    for name in FIGURES:
        with Image.open(out / f"{name}.png") as image:
            image.load()
            width, height = image.size
        assert 300 <= width <= 3000 and 250 <= height <= 2000, (name, image.size)
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    assert json.loads((out / "comparison.json").read_text())["rows"]
    assert (out / "comparison.csv").read_text().splitlines()[0].startswith("storage,mem_size,runs,n,")


def test_table_markdown_and_by(small_sweep, tmp_path):
    table = replay_compare(str(small_sweep), "--no-figures", "--out", str(tmp_path / "t"), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "split_digits: 8 runs in 4 groups" in table.stdout
    assert table.stdout.count("±") >= 16 and "class_balanced" in table.stdout
    markdown = replay_compare(
        str(small_sweep), "--by", "storage", "--metric", "forgetting", "--format", "markdown", "--no-figures",
        "--out", str(tmp_path / "m"), cwd=tmp_path,
    )  # fmt: skip
    assert markdown.returncode == 0, markdown.stderr
    table = [line for line in markdown.stdout.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in table]
    assert cells[0] == ["storage", "n", *map(metric_label, METRICS), "95% CI", "p", "test", "baseline"]
    assert len(cells) == 4 and all(row[1] == "4" for row in cells[2:])
    assert "averaged over mem_size (not in --by)" in markdown.stdout


def test_unfinished_runs_are_shown_and_left_out(small_sweep, tmp_path):
    sweep = shutil.copytree(small_sweep, tmp_path / "sweep", ignore=shutil.ignore_patterns("compare"))
    failed = json.loads((sweep / "0" / "results.json").read_text())
    failed.update(status="failed", error="CUDA out of memory")
    (sweep / "0" / "results.json").write_text(json.dumps(failed))
    result = replay_compare(str(sweep), "--format", "json", "--no-figures", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    (excluded,) = printed["excluded_runs"]
    assert excluded["status"] == "failed" and "CUDA out of memory" in excluded["detail"]
    (row,) = [r for r in printed["rows"] if (r["storage"], r["mem_size"]) == _key(failed)]
    assert (row["runs"], row["n"], row["excluded"]) == (2, 1, "1 failed")
    others = [json.loads(p.read_text()) for p in sweep.glob("[1-9]*/results.json")]
    (sibling,) = [other for other in others if _key(other) == _key(failed)]
    assert row["final_average_accuracy_mean"] == sibling["final_average_accuracy"]
    assert row["final_average_accuracy_std"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["does-not-exist"], "replay-compare: error: does-not-exist does not exist"),
        ([""], "replay-compare: error: empty path"),
        (["."], "replay-compare: error: no runs found under ."),
        (["outputs/*"], "replay-compare: error: outputs/* matches no files or directories"),
        ([], "replay-compare: error: the following arguments are required: PATH"),
    ],
)
def test_bad_paths_are_one_line_and_exit_2(args, message, tmp_path):
    result = replay_compare(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == result.stderr.strip().splitlines()[0]
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_help_imports_no_heavy_library(tmp_path):
    result = replay_compare("--help", cwd=tmp_path)
    assert result.returncode == 0 and "--format {table,csv,json,markdown}" in result.stdout
    assert heavy_imports("-m", "replay_cli.compare", "--help", cwd=tmp_path) == set()
