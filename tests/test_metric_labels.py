"""The two average accuracies say what they average, in the same words in every view: console summary,
replay-compare's headers and the figures' axes (``average over experiences`` for
final_average_accuracy, ``stream, per sample`` for final_stream_accuracy)."""

import json

import matplotlib.pyplot as plt

from replay_cli.compare.comparison import compare
from replay_cli.compare.plots import _accuracy_vs_mem_size, _metric_title
from replay_cli.compare.tables import headers, render
from replay_cli.reporting.console import ConsoleSummary
from replay_cli.reporting.results import RunResults
from tests.conftest import fake_run

AVERAGE = "final_average_accuracy (average over experiences)"
STREAM = "final_stream_accuracy (stream, per sample)"


def _runs(tmp_path, mem_sizes=(100, 200)):
    for mem_size in mem_sizes:
        for seed in (0, 1):
            run_dir = fake_run(tmp_path / f"{mem_size}-{seed}", [[1.0, 0.0], [0.5 + 0.1 * seed, 1.0]],
                               mem_size=mem_size, seed=seed)  # fmt: skip
            results = json.loads((run_dir / "results.json").read_text())
            results["final_stream_accuracy"] = 0.7 + 0.1 * seed  # fake_run records no stream accuracy
            (run_dir / "results.json").write_text(json.dumps(results))
    return str(tmp_path)


def test_replay_compare_headers_name_what_each_accuracy_averages(tmp_path):
    comparison = compare([_runs(tmp_path)])
    assert AVERAGE in headers(comparison) and STREAM in headers(comparison)
    for fmt in ("markdown", "table"):
        text = render(comparison, fmt)
        assert "average over experiences" in text and "stream, per sample" in text
    row = json.loads(render(comparison, "json"))["rows"][0]  # data keeps the metric names
    assert "final_average_accuracy_mean" in row and "final_stream_accuracy_mean" in row


def test_figure_axes_name_what_the_metric_averages(tmp_path):
    for metric, words in (("final_average_accuracy", "average over experiences"),
                          ("final_stream_accuracy", "stream, per sample")):  # fmt: skip
        comparison = compare([_runs(tmp_path)], metric=metric)
        figure = _accuracy_vs_mem_size(comparison)
        assert figure.axes[0].get_ylabel() == f"{metric.replace('_', ' ')} ({words})"
        assert f"({words}) vs memory size" in _metric_title(comparison)
        plt.close(figure)


def test_the_console_summary_names_what_each_accuracy_averages(capsys):
    results = RunResults({"seed": 0}, n_experiences=2, n_steps=2, benchmark={"name": "b"})
    composition = {"size": 0, "per_class": {}, "per_experience": {}, "per_task": {}}
    results.add_step([0.9, 0.1], 1, 0.3, composition, 0.1, 0.1)
    results.add_step([0.5, 0.9], 2, 0.72, composition, 0.1, 0.1)
    results.finish("completed")
    ConsoleSummary().run_ended(results)
    printed = capsys.readouterr().out
    assert AVERAGE in printed and STREAM in printed
    lines = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in printed.splitlines()
             if line.count("│") == 3}  # fmt: skip
    assert lines[AVERAGE] == "0.700" and lines[STREAM] == "0.720"
