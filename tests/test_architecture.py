"""The import contract of .importlinter (folders in data-flow order, no circle of imports) holds for the
package, and the same check fails on a copy of the package with a circle or an upward import in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(where: Path) -> subprocess.CompletedProcess:
    """import-linter's own command, run in ``where`` (it imports the package found there first)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
         "sys.exit(lint_imports_command())", "--no-cache"],
        cwd=where, capture_output=True, text=True, timeout=120,
    )


def package_copy(tmp_path: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "replay_cli", tmp_path / "replay_cli", ignore=ignore)
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text() + f"\n\ndef _added() -> None:\n    {line}  # noqa\n")


def test_the_package_keeps_its_import_contracts():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_a_circle_between_two_modules_of_a_folder_breaks_the_contract(tmp_path):
    copy = package_copy(tmp_path)
    # data/origin.py is what data/benchmarks.py imports: importing it back closes a circle (even lazily).
    add_import(copy / "replay_cli" / "data" / "origin.py", "from replay_cli.data import benchmarks")
    done = lint_imports(copy)
    assert done.returncode == 1
    assert "No circle of imports" in done.stdout and "BROKEN" in done.stdout
    assert "in replay_cli.data." in done.stdout and "- .origin -> .benchmarks" in done.stdout


def test_an_import_against_the_data_flow_breaks_the_layers(tmp_path):
    copy = package_copy(tmp_path)
    # the circle the config checks once made: a benchmark builder reaching up into config/validation.py
    add_import(copy / "replay_cli" / "data" / "benchmarks.py", "from replay_cli.config import validation")
    done = lint_imports(copy)
    assert done.returncode == 1
    assert "replay_cli.data is not allowed to import replay_cli.config" in done.stdout
    assert "replay_cli.data.benchmarks -> replay_cli.config.validation" in done.stdout
