"""What the instruments (cost accounting and replay diagnostics) cost: training time with
``instruments=true`` over ``instruments=false``, on the same settings (goal: under 1.05x).

Each side runs in its own fresh process, alternating, ``--repeats`` times; what is compared is the
sum of ``train_seconds`` in results.json (the training loop only: the FLOPs probes and the replay
counter's hooks run there). The figure is the median of the per-round ratios (each round's two runs
are seconds apart, so they share the machine's state), with a bootstrap 95% interval
(``scipy.stats.bootstrap``); the ratio of the two sides' medians is printed beside it. On a 2-CPU
machine one side's runs spread by +-20% and one round's ratio by +-15%: 41 rounds give an interval
about 8% wide. The per-step work the instruments add after training (buffer evaluation, gallery,
files) is reported apart as the median of the remaining wall time difference. The accuracy matrices
of both sides are checked equal.

Usage: python scripts/bench_cost.py [--repeats 5] [--threads 1] [-- OVERRIDES...]
e.g.   python scripts/bench_cost.py --repeats 5 -- benchmark=split_mnist strategy=der
Runs the checkout it lives in; figures are meaningful on an idle machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parents[1]


def one_run(overrides: list[str], instruments: bool, threads: int, workdir: Path) -> dict:
    run_dir = workdir / f"run-{instruments}-{len(list(workdir.iterdir()))}"
    argv = [
        sys.executable,
        "-m",
        "replay_cli.cli",
        f"hydra.run.dir={run_dir}",
        "logger=none",
        "progress=false",
        "print_config=false",
        f"num_threads={threads}",
        f"instruments={str(instruments).lower()}",
        *overrides,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    subprocess.run(argv, cwd=workdir, env=env, check=True, capture_output=True)
    return json.loads((run_dir / "results.json").read_text())


def main() -> None:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--repeats", type=int, default=5)
    cli.add_argument("--threads", type=int, default=1)
    cli.add_argument("overrides", nargs="*", help="replay-run overrides for both sides")
    args = cli.parse_args()
    train = {True: [], False: []}
    wall = {True: [], False: []}
    matrices = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for instruments in (False, True):
                results = one_run(args.overrides, instruments, args.threads, Path(tmp))
                train[instruments].append(results["timings"]["train_seconds"])
                wall[instruments].append(results["timings"]["wall_seconds"])
                matrices.setdefault(instruments, results["accuracy_matrix"])
    same = matrices[True] == matrices[False]
    ratios = [on / off for on, off in zip(train[True], train[False], strict=True)]
    ratio = statistics.median(ratios)
    bootstrap = stats.bootstrap((ratios,), statistics.median, vectorized=False, random_state=0)
    interval = bootstrap.confidence_interval
    extra = statistics.median(wall[True]) - statistics.median(wall[False])
    print(
        json.dumps(
            {
                "overrides": args.overrides,
                "train_seconds_off": train[False],
                "train_seconds_on": train[True],
                "train_time_ratio": ratio,
                "train_time_ratio_ci95": [interval.low, interval.high],
                "ratio_of_medians": statistics.median(train[True]) / statistics.median(train[False]),
                "goal": "<= 1.05",
                "met": ratio <= 1.05,
                "extra_wall_seconds_per_run": extra,
                "same_accuracy_matrix": same,
            },
            indent=2,
        )
    )
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
