"""The documentation: its generated tables agree with conf/ and with ``replay-run --help``, its pages
name only options that exist, its worked examples of extending run as written, and the README stays
a short entry point that keeps the fresh-machine commands."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from tests.conftest import REPLAY_RUN, cli_env

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def _reference():
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "scripts" / "docs_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _reference()


@functools.cache
def help_groups() -> dict[str, list[str]]:
    """The groups and options the real ``replay-run --help`` prints."""
    done = subprocess.run([REPLAY_RUN, "--help"], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    section = done.stdout.split("== Config groups (group=option) ==\n", 1)[1].split("\n\n", 1)[0]
    return {
        group.strip(): [option.strip() for option in options.split(",")]
        for group, options in (line.split(":", 1) for line in section.splitlines())
    }


def table_rows(markdown: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in markdown.splitlines()[2:]]


def test_the_generated_group_table_lists_what_replay_run_help_lists():
    listed = help_groups()
    rows = table_rows(reference.groups_table())
    rows = {row[0].strip("`"): [option.strip(" `") for option in row[2].split(",")] for row in rows}
    assert rows == listed
    assert {"strategy", "storage", "benchmark", "experiment"} <= set(rows)


def test_every_option_table_has_a_row_per_option_of_its_group():
    for group, options in help_groups().items():
        rows = table_rows(reference.table(f"options {group}"))
        assert [row[0].strip("`") for row in rows] == options, group
    methods = table_rows(reference.table("methods"))
    assert [row[0].strip("`") for row in methods] == help_groups()["strategy"]


def test_generated_tables_carry_the_configs_values(tmp_path):
    """A default changed in conf/ changes the table: the pages cannot drift from the configs."""
    conf = tmp_path / "conf"
    shutil.copytree(reference.CONF, conf)
    storage = conf / "storage" / "class_balanced.yaml"
    storage.write_text(storage.read_text().replace("adaptive_size: true ", "adaptive_size: false"))
    before, after = reference.options_table("storage"), reference.options_table("storage", conf)
    assert "`policy.adaptive_size`: `true`" in before and "`policy.adaptive_size`: `false`" in after
    top = table_rows(reference.top_level_keys_table())
    assert ["`mem_size`", "`500`", "total buffer capacity (samples)"] in top
    presets = {row[0].strip("`"): row for row in table_rows(reference.table("presets"))}
    assert presets["split_digits_reservoir_200"][1:3] == ["`final_average_accuracy`", "0.8286 ± 0.04"]


def test_every_results_key_of_the_schema_is_in_the_generated_table():
    schema = json.loads(reference.SCHEMA.read_text())
    keys = [row[0].strip("`") for row in table_rows(reference.table("results keys"))]
    assert [k for k in keys if "." not in k] == list(schema["properties"])


def test_every_marker_of_every_page_is_a_table_and_an_unknown_one_fails():
    markers = [m.group("name") for page in PAGES for m in reference.MARKER.finditer(page.read_text())]
    expected = {"groups", "methods", "top-level keys", "results keys", "results schema", "presets", "sweeps"}
    assert expected <= set(markers)
    for name in markers:
        assert reference.table(name).startswith(("|", "```"))
    with pytest.raises(ValueError, match="unknown generated table 'nope'"):
        reference.fill("<!-- generated: nope -->")
    with pytest.raises(ValueError, match="no config group 'nope'"):
        reference.fill("<!-- generated: options nope -->")


def test_pages_name_only_options_that_exist():
    """``group=option`` written by hand in a page (or the README) names an option of conf/ (``nope``:
    the bad-input examples; extending.md adds options of its own)."""
    groups = reference.config_groups()
    written = re.compile(rf"\b({'|'.join(groups)})=([a-z0-9_]+)")
    wrong = [
        f"{page.name}: {m.group(0)}"
        for page in [*PAGES, ROOT / "README.md"]
        for m in written.finditer(page.read_text())
        if m.group(2) not in [*groups[m.group(1)], "nope"] and page.name != "extending.md"
    ]
    assert wrong == []


def test_the_readme_is_short_keeps_the_fresh_machine_commands_and_links_into_the_docs():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/replay-run\n" in readme
    assert "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest\n" in readme
    assert readme.index(".venv/bin/replay-run") < readme.index("## A tour")
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    linked = {DOCS / Path(link).name for link in links if link.endswith(".md")}
    assert linked == set(PAGES) - {DOCS / "index.md"}  # every page but the site's home
    assert all((ROOT / link).exists() for link in links)


def test_the_site_builds_strict_without_the_incoming_notes(tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    command = [str(mkdocs)] if mkdocs.exists() else [sys.executable, "-m", "mkdocs"]
    done = subprocess.run(
        [*command, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env=cli_env({"NO_MKDOCS_2_WARNING": "1"}), timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    running = (tmp_path / "site" / "running" / "index.html").read_text()
    assert "generated:" not in running and "<td><code>experience_balanced</code></td>" in running
    assert not (tmp_path / "site" / "incoming").exists()


# The worked examples of docs/extending.md, run as written: its titled code blocks are the files.
BLOCK = re.compile(
    r'^```(?P<lang>\w+) title="(?P<title>[^"]+)"\n(?P<body>.*?)^```$', re.MULTILINE | re.DOTALL
)


def worked_example(section: str, tmp_path: Path) -> list[str]:
    """Write the files of one section of extending.md (conf/ files into a copy of conf/, modules into
    ``tmp_path``) and return the overrides of its ``replay-run`` line."""
    text = (DOCS / "extending.md").read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    conf = tmp_path / "conf"
    shutil.copytree(reference.CONF, conf)
    command = None
    for block in BLOCK.finditer(text):
        if block.group("title") == "run it":
            command = block.group("body").strip()
        else:
            (tmp_path / block.group("title")).write_text(block.group("body"))
    assert command is not None and "replay-run " in command
    return command.split("replay-run ", 1)[1].split()


def run_example(overrides: list[str], tmp_path: Path) -> dict:
    from replay_cli.config.validation import validate
    from replay_cli.training.experiment import run_experiment

    quick = ["strategy.train_epochs=1", "print_config=false", "progress=false", "logger=none"]
    with initialize_config_dir(config_dir=str(tmp_path / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, *quick])
    validate(cfg)
    run_experiment(cfg, tmp_path / "run")
    return json.loads((tmp_path / "run" / "results.json").read_text())


def test_the_worked_example_of_a_method_runs(tmp_path):
    overrides = worked_example("Add a method", tmp_path)
    assert overrides[0] == "strategy=replay_lwf"
    results = run_example(overrides, tmp_path)
    assert results["status"] == "completed" and results["config"]["strategy"]["name"] == "replay_lwf"
    assert len(results["accuracy_matrix"]) == 5
    composition = results["buffer_composition"][-1]  # the class-balanced buffer of the storage group
    assert composition["size"] == 200 and sorted(composition["per_class"].values()) == [20] * 10


def test_the_worked_example_of_a_benchmark_runs(tmp_path, monkeypatch):
    overrides = worked_example("Add a benchmark", tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # PYTHONPATH=.
    results = run_example(overrides, tmp_path)
    assert results["status"] == "completed"
    assert results["benchmark"]["name"] == "split_wine" and results["benchmark"]["num_classes"] == 3
    assert results["benchmark"]["classes_per_experience"] == [[0], [1], [2]]
    assert results["buffer_composition"][-1]["size"] == 30
    assert results["final_average_accuracy"] > 0.5  # wine is easy: replay keeps the old classes apart


def test_the_worked_example_of_a_storage_policy_runs(tmp_path, monkeypatch):
    overrides = worked_example("Add a storage policy", tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    results = run_example(overrides, tmp_path)
    assert results["status"] == "completed"
    assert [entry["per_experience"] for entry in results["buffer_composition"]] == [
        {str(step): 100} for step in range(5)
    ]  # the 100 latest samples: all of the experience just trained
