"""How fast replay-run is, as ratios measured within one invocation (alternating runs, medians).

P1  replay-run vs a minimal hand-written Avalanche script with identical settings      (goal <= 1.05x)
P2  replay-run vs a raw PyTorch replay loop: same model, optimizer steps and batch
    composition (32 new + 32 replayed samples), same class-balanced buffer size      (goal <= 1.3x)
P3  wall time of ``replay-run --help`` and ``replay-run --cfg job``                  (goal <= 1.5 s)
and the peak memory (max RSS) of every process.

``--protocol online`` measures online continual learning instead (continual-learning-baselines'
online-replay settings: mini-experiences of 10 samples, 10 new + 10 replayed per step, class-balanced
buffer of 1000, one pass): replay-run ``protocol=online`` (the one-call loop) against a hand-written
Avalanche script (split_online_stream, one ``strategy.train`` per mini-experience, ReplayPlugin)
(O1, goal <= 0.15x) and against a raw PyTorch stream-reservoir loop of the same size (O2, goal
<= 1.5x); replay-run ``replay_update=iteration storage=reservoir`` (stream-reservoir ER, the raw
loop's own algorithm) against that loop too (O3, goal <= 1.3x); ``fast_path=false`` online against
the Avalanche script (goal <= 1.0x); and ``protocol.loop=per_mini_experience`` (the script's own
loop, whose accuracy matrix must equal the script's) against it. Every ratio row shows the peak
memory (max RSS, MiB) of its two sides beside it.

Workloads: ``synthetic`` and ``split_digits`` (in-memory tensors), and ``split_cifar10`` and
``split_mnist`` on full-size files in the real on-disk formats that this script writes itself
(random images around one prototype per class, so accuracy stays meaningful). On those two the
hand-written Avalanche side uses torchvision's per-sample transforms (Avalanche's defaults:
normalisation; random crop with padding 4 and horizontal flip for CIFAR training) and the raw loop
the same batched transforms replay-run uses. Goals there: replay-run <= 0.4x plain Avalanche and
<= 1.3x the raw loop on split_cifar10.

What is timed for P1 and P2: every side runs in its own fresh process, and inside it the training and
evaluation loop only (train on experience i, evaluate on the whole test stream, for every i): for
replay-run that is the sum of ``train_seconds`` and ``eval_seconds`` in its results.json, for the
other two sides the same span around their loops. Interpreter start, imports, data generation and
model construction are left out on every side (they are reported, as whole-process seconds, beside).
P3 times whole processes, since start-up is the point there.

Usage: python scripts/bench.py [--repeats 3] [--threads 1] [--workloads synthetic split_cifar10 ...]
       [--protocol offline|online] [--model mlp|cnn|resnet18] [--images-per-class N]
       [--json bench.json]. Runs the checkout it lives in (PYTHONPATH is set to it for every
       process). ``--images-per-class`` shrinks the generated files (default: full size, 5000 per
       class for CIFAR-10, 6000 for MNIST) to check that the script works; figures come from full
       size on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarking.report import bench_startup, bench_workload, machine, table
from benchmarking.sides import run_worker
from benchmarking.workloads import MODELS, ROOT, WORKLOADS, write_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="rounds of alternating runs per workload")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads in every run (same on all sides)"
    )
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--startup-repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the report as JSON to this path")
    parser.add_argument("--model", default="mlp", choices=list(MODELS), help="the same model on every side")
    parser.add_argument("--protocol", default="offline", choices=["offline", "online"])
    parser.add_argument(
        "--images-per-class",
        type=int,
        help="smaller generated files (default: full size), to check the script",
    )
    parser.add_argument("--worker", choices=["avalanche", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--data-root", default="", help=argparse.SUPPRESS)
    parser.add_argument("--write-files", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_files:
        write_files(args.write_files, Path(args.data_root), args.images_per_class)
        return
    if args.worker:
        sys.path.insert(0, str(ROOT))
        run_worker(
            args.worker, args.workloads[0], args.threads, args.json, args.model, args.data_root, args.protocol
        )
        return
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="replay-bench-") as scratch:
        report = {
            "machine": machine(),
            "threads": args.threads,
            "repeats": args.repeats,
            "model": args.model,
            "protocol": args.protocol,
            "images_per_class": args.images_per_class or "full size",
            "workloads": {},
        }
        data_root = Path(scratch) / "data"
        for workload in args.workloads:
            if "files" in WORKLOADS[workload]:  # in a child process: every run forked from this
                # one would count the generated arrays in its peak memory (Linux's ru_maxrss)
                write = [sys.executable, __file__, "--write-files", workload, "--data-root", str(data_root)]
                if args.images_per_class:
                    write += ["--images-per-class", str(args.images_per_class)]
                subprocess.run(write, check=True)
            report["workloads"][workload] = bench_workload(
                workload, args.repeats, args.threads, Path(scratch), args.model, str(data_root), args.protocol
            )
        report["startup"] = bench_startup(args.startup_repeats, Path(scratch))
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
