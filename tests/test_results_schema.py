"""results.json's published JSON Schema: every key written is described, real files validate, broken
ones do not, and replay-compare warns about a schema version it does not know."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator
from omegaconf import OmegaConf

from replay_cli.compare.cli import main as compare_main
from replay_cli.reporting.schema import SCHEMA_VERSION, results_schema, schema_errors, unknown_version
from replay_cli.training.job import record_failure
from tests.conftest import fake_run, schema_problems


def described(schema: dict, where: str = "$") -> list[str]:
    """Paths of the schema's properties that lack a description or a type (or a reference to one)."""
    missing = []
    for key, sub in schema.get("properties", {}).items():
        if "description" not in sub or not ({"type", "$ref", "anyOf", "enum", "const"} & sub.keys()):
            missing.append(f"{where}.{key}")
        missing += described(sub, f"{where}.{key}")
        missing += described(sub.get("items", {}), f"{where}.{key}[]")
    return missing


def test_the_schema_is_valid_json_schema_and_describes_every_key():
    schema = results_schema()
    Draft202012Validator.check_schema(schema)
    assert described(schema) == []
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_every_key_of_a_run_is_in_the_schema_and_a_full_record_has_them_all(tmp_path):
    results = json.loads((fake_run(tmp_path, [[0.9, 0.1], [0.8, 0.7]]) / "results.json").read_text())
    schema = results_schema()
    assert results["schema_version"] == SCHEMA_VERSION
    assert set(results) == set(schema["properties"])
    assert set(results) == {*schema["required"], *schema["dependentRequired"]["accuracy_matrix"]}
    assert schema_errors(results) == []


def test_a_record_of_a_job_that_failed_before_training_validates(tmp_path):
    record_failure(tmp_path, OmegaConf.create({"seed": 0}), ValueError("no such file"))
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["status"] == "failed" and results["schema_version"] == SCHEMA_VERSION
    assert schema_errors(results) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.update(brand_new_key=1), "Additional properties are not allowed ('brand_new_key'"),
        (lambda r: r["accuracy_matrix"][1].__setitem__(0, 1.5), "$.accuracy_matrix[1][0]: 1.5 is greater"),
        (lambda r: r.update(status="done"), "$.status: 'done' is not one of"),
        (lambda r: r.pop("forgetting"), "'forgetting' is a dependency of 'accuracy_matrix'"),
        (lambda r: r["buffer_composition"][0].pop("per_task"), "$.buffer_composition[0]: 'per_task' is a"),
        (lambda r: r["timings"].update(train_seconds="1 s"), "$.timings.train_seconds: '1 s' is not of type"),
    ],
)
def test_a_broken_results_file_is_refused_with_the_key_named(tmp_path, change, expected):
    path = fake_run(tmp_path, [[0.9, 0.1], [0.8, 0.7]]) / "results.json"
    results = json.loads(path.read_text())
    change(results)
    errors = schema_errors(results)
    assert any(expected in error for error in errors), errors
    path.write_text(json.dumps(results))  # what the suite's check of every written results.json finds
    assert [p.split(" ", 1)[1] for p in schema_problems(tmp_path)] == errors
    path.unlink()


def test_a_schema_version_this_replay_cli_does_not_know(tmp_path):
    assert unknown_version({"status": "completed"}) is None  # written before schema versions: same keys
    assert unknown_version({"schema_version": SCHEMA_VERSION}) is None
    assert "schema_version 99, not one this replay-cli reads (1)" in unknown_version({"schema_version": 99})


def test_replay_compare_warns_in_one_line_about_an_unknown_schema_version(tmp_path, capsys):
    for seed in (0, 1):
        fake_run(tmp_path / f"run{seed}", [[0.9, 0.1], [0.8, 0.7]], seed=seed)
    compare_main([str(tmp_path), "--no-figures", "--format", "csv"])
    assert "warning" not in capsys.readouterr().err
    newer = tmp_path / "run1" / "results.json"
    newer.write_text(json.dumps({**json.loads(newer.read_text()), "schema_version": 99}))
    compare_main([str(tmp_path), "--no-figures", "--format", "csv"])
    out, err = capsys.readouterr()
    (warning,) = [line for line in err.splitlines() if "warning" in line]
    assert warning == (
        f"replay-compare: warning: {newer}: schema_version 99, not one this replay-cli reads (1); "
        "their numbers may be misread (upgrade replay-cli to read them)"
    )
    assert out.count("\n") == 2  # the table is still printed: header and one group of two runs
    newer.unlink()  # the suite checks every results.json it leaves
