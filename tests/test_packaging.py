"""A non-editable install (a built wheel) carries conf/ and composes from it."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_conf_and_composes_from_it(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        timeout=300,
    )
    wheel = next((tmp_path / "dist").glob("replay_cli-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "replay_cli/conf/config.yaml" in names
    assert "replay_cli/conf/storage/class_balanced.yaml" in names
    assert "replay_cli/reporting/results.schema.json" in names  # the published results schema
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv = ['replay-run', '--cfg', 'job']; "
            "from replay_cli.cli import config_dir, main; print('conf at', config_dir()); main()",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert f"conf at {tmp_path / 'site' / 'replay_cli' / 'conf'}" in shown.stdout
    assert "storage:" in shown.stdout and "mem_size: 500" in shown.stdout
