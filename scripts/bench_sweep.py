"""Wall time of an 8-job split_digits grid: joblib (parallel workers) against the basic launcher.

    python scripts/bench_sweep.py [--workers 2] [--model mlp|cnn] [--json out.json]

Each launcher runs the same grid (2 storage policies x 2 memory sizes x 2 seeds) once, in a fresh
temporary directory, as `replay-run -m ...` would; the ratio is joblib / basic. Every joblib worker
pays the ~7 s import of Avalanche that the basic launcher pays once, so the speed-up grows with the
work per job: `--model cnn` is a grid whose jobs are compute-bound.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = ["storage=reservoir,class_balanced", "mem_size=100,200", "seed=0,1"]
QUIET = ["print_config=false", "progress=false", "logger=none"]


def timed_sweep(launcher_args: list[str], model: str) -> float:
    replay_run = str(Path(sys.executable).parent / "replay-run")
    with tempfile.TemporaryDirectory() as cwd:
        started = time.perf_counter()
        command = [replay_run, "-m", *launcher_args, *GRID, f"model={model}", *QUIET]
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    basic = timed_sweep([], args.model)
    joblib = timed_sweep(["launcher=joblib", f"hydra.launcher.n_jobs={args.workers}"], args.model)
    figures = {
        "jobs": 8,
        "model": args.model,
        "workers": args.workers,
        "basic_seconds": round(basic, 1),
        "joblib_seconds": round(joblib, 1),
        "ratio": round(joblib / basic, 2),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    print(
        f"8-job grid ({args.model}): basic {basic:.1f} s, joblib x{args.workers} {joblib:.1f} s, "
        f"ratio {joblib / basic:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
