"""replay-compare --wandb: one comparison run in the sweep's own W&B group, with table and figures."""

import json

from replay_cli.reporting.wandb_logger import wandb_group_for
from replay_cli.reporting.wandb_records import offline_runs
from tests.conftest import replay_compare


def test_comparison_is_logged_beside_the_sweep_runs(small_sweep, tmp_path):
    out = tmp_path / "compare"
    result = replay_compare(str(small_sweep), "--wandb", "--out", str(out), cwd=small_sweep.parent)
    assert result.returncode == 0, result.stderr
    assert "wandb sync" in result.stderr
    (comparison,) = offline_runs(out / "wandb")
    job_groups = {run.group for run in offline_runs(small_sweep) if run.group}
    assert job_groups == {comparison.group}, "the comparison sits in the sweep's own group"
    assert comparison.job_type == "compare"
    assert comparison.config["swept"] == ["storage", "mem_size"]
    (row,) = [row for row in comparison.history if "comparison/_type" in row]
    assert row["comparison/_type"] == "table-file"
    assert row["comparison/nrows"] == 4  # 2 policies x 2 memory sizes, seeds aggregated
    figures = {key.split("/")[1] for key in row if key.startswith("figures/") and key.endswith("/_type")}
    assert {"accuracy_vs_mem_size", "accuracy_matrices", "forgetting_curves", "buffer_composition"} <= figures
    assert comparison.summary["runs"] == 8 and comparison.exit_code == 0
    (table_file,) = out.glob("wandb/offline-run-*/files/media/table/comparison_*.table.json")
    columns = json.loads(table_file.read_text())["columns"]
    csv_header = (out / "comparison.csv").read_text().splitlines()[0].split(",")
    assert columns == csv_header  # the same columns as the table files, statistics included
    assert {"final_average_accuracy_ci_low", "baseline", "test", "p_value", "significant"} <= set(columns)


def test_group_is_the_sweep_path_below_outputs(tmp_path):
    assert (
        wandb_group_for(tmp_path / "outputs" / "multirun" / "2026-01-02" / "03-04-05")
        == "multirun/2026-01-02/03-04-05"
    )
    assert wandb_group_for("outputs/multirun/a/b") == "multirun/a/b"
