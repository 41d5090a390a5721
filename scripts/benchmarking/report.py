"""What the benchmark reports: the ratios between sides against their goals, the machine, the
start-up times, and the table printed at the end."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarking.sides import (
    ITERATION_SIDE,
    ONLINE_SIDES,
    PER_MINI_SIDE,
    REPLAY_RUN,
    SIDES,
    measured,
    one_side,
)

GOALS = {"P1": 1.05, "P2": 1.3, "P3": 1.5}
# online (issue #24): O1 <= 0.15x, O2 <= 1.5x, O3 <= 1.3x, and fast_path=false no slower than the
# plain Avalanche online script
GOALS_ONLINE = {"O1": 0.15, "O2": 1.5, "O3": 1.3, "P1_fast_path_off": 1.0}
# each ratio: (numerator side, denominator side), seconds of the training + evaluation loop
RATIOS = {
    "P1": ("replay-run", "avalanche"),
    "P1_fast_path_off": ("replay-run (fast_path=false)", "avalanche"),
    "P2": ("replay-run", "raw"),
    "P2_plain_avalanche": ("avalanche", "raw"),
}
ONLINE_RATIOS = {
    "O1": ("replay-run", "avalanche"),
    "O2": ("replay-run", "raw"),
    "O3": (ITERATION_SIDE, "raw"),
    "O1_per_mini_experience": (PER_MINI_SIDE, "avalanche"),
}
GOALS_BY_WORKLOAD = {"split_cifar10": {"P1": 0.4, "P2": 1.3}, "split_mnist": {"P1": None, "P2": 1.3}}


def bench_workload(
    workload: str,
    repeats: int,
    threads: int,
    scratch: Path,
    model: str = "mlp",
    data_root: str = "",
    protocol: str = "offline",
) -> dict:
    sides = SIDES + (ONLINE_SIDES if protocol == "online" else [])
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for round_ in range(repeats):
        order = sides[round_ % len(sides) :] + sides[: round_ % len(sides)]  # alternate who goes first
        for side in order:
            runs[side].append(one_side(side, workload, threads, scratch, model, data_root, protocol))
            print(
                f"  {workload} round {round_ + 1}/{repeats} {side}: {runs[side][-1]['seconds']:.2f} s",
                flush=True,
            )

    def paired_ratio(a: str, b: str) -> float:
        return statistics.median(x["seconds"] / y["seconds"] for x, y in zip(runs[a], runs[b], strict=True))

    summary = {
        side: {
            "seconds_median": statistics.median(r["seconds"] for r in rs),
            "seconds": [r["seconds"] for r in rs],
            "process_wall_median": statistics.median(r["wall"] for r in rs),
            "peak_mib_max": max(r["peak_mib"] for r in rs),
        }
        for side, rs in runs.items()
    }
    ratios = {**RATIOS, **(ONLINE_RATIOS if protocol == "online" else {})}
    # online, the per-mini-experience loop is the one that equals the script; random crops are drawn
    # per batch on the fast path: the same distribution, other draws
    if protocol == "online":
        same = (PER_MINI_SIDE,)
    else:
        same = ("replay-run (fast_path=false)",) + (() if workload == "split_cifar10" else ("replay-run",))
    return {
        "sides": summary,
        **{key: paired_ratio(*pair) for key, pair in ratios.items()},
        "ratio_sides": ratios,
        "same_accuracy_matrix_as_avalanche": all(
            a["accuracy_matrix"] == b["accuracy_matrix"]
            for r in same
            for a, b in zip(runs[r], runs["avalanche"], strict=True)
        ),
        "final_average_accuracy": {
            side: statistics.median(sum(r["accuracy_matrix"][-1]) / len(r["accuracy_matrix"][-1]) for r in rs)
            for side, rs in runs.items()
        },
    }


def bench_startup(repeats: int, scratch: Path) -> dict:
    found = {}
    for name, extra in (("--help", ["--help"]), ("--cfg job", ["--cfg", "job"])):
        samples = [measured([REPLAY_RUN, *extra], scratch) for _ in range(repeats)]
        found[name] = {
            "seconds_median": statistics.median(s[0] for s in samples),
            "seconds": [s[0] for s in samples],
            "peak_mib_max": max(s[1] for s in samples),
        }
    return found


def machine() -> dict:
    """Where the figures come from. Torch is asked in a child process: this process stays small, so
    the peak RSS of the processes it starts (forked from it) is theirs, not its own."""
    probe = (
        "import torch; print(torch.__version__); "
        "print(torch.cuda.is_available() and torch.cuda.get_device_name(0))"
    )
    torch_version, gpu = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split("\n")[:2]
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "gpu": None if gpu == "False" else gpu,
        "python": platform.python_version(),
        "torch": torch_version,
        "load_average_at_start": os.getloadavg(),
    }


def table(report: dict) -> str:
    lines = [
        f"machine: {report['machine']['nproc']} CPUs, {report['machine']['cpu']}, "
        f"gpu: {report['machine']['gpu'] or 'none'}, torch threads per run: {report['threads']}, "
        f"repeats: {report['repeats']}, model: {report['model']}, "
        f"generated files: {report['images_per_class']}"
    ]
    row = "{:<14}{:<50}{:>10}{:>10}{:>8}{:>18}"
    lines.append(row.format("", "measure", "value", "goal", "met", "peak MiB (a / b)"))
    for workload, result in report["workloads"].items():
        online = "O1" in result  # there P1 and P2 are O1 and O2, with the online goals
        measures = (
            ("O1", "O1 online replay-run / Avalanche online"),
            ("O2", "O2 online replay-run / raw reservoir loop"),
            ("O3", "O3 replay_update=iteration / raw loop"),
            ("O1_per_mini_experience", "   online loop=per_mini_experience / Avalanche"),
        )
        offline = () if online else (("P1", "P1 replay-run / hand-written Avalanche"),)
        offline += () if online else (("P2", "P2 replay-run / raw PyTorch loop"),)
        goals = {**GOALS, **GOALS_BY_WORKLOAD.get(workload, {}), **(GOALS_ONLINE if online else {})}
        for key, label in (
            *(m for m in measures if m[0] in result),
            *offline,
            ("P1_fast_path_off", "   replay-run fast_path=false / Avalanche"),
            ("P2_plain_avalanche", "   plain Avalanche / raw PyTorch loop"),
        ):
            goal = goals.get(key)
            met = "" if goal is None else ("yes" if result[key] <= goal else "no")
            a, b = (result["sides"][side]["peak_mib_max"] for side in result["ratio_sides"][key])
            lines.append(
                row.format(
                    workload,
                    label,
                    f"{result[key]:.2f}x",
                    f"<= {goal}x" if goal else "",
                    met,
                    f"{a:.0f} / {b:.0f}",
                )
            )
        lines.append(
            row.format(
                workload,
                "   same accuracy matrix as Avalanche",
                str(result["same_accuracy_matrix_as_avalanche"]),
                "",
                "",
                "",
            )
        )
    for name, result in report["startup"].items():
        met = "yes" if result["seconds_median"] <= GOALS["P3"] else "no"
        lines.append(
            row.format(
                "startup",
                f"P3 replay-run {name}",
                f"{result['seconds_median']:.2f} s",
                f"<= {GOALS['P3']} s",
                met,
                f"{result['peak_mib_max']:.0f}",
            )
        )
    lines.append("")
    side_row = "{:<14}{:<48}{:>14}{:>16}{:>12}{:>12}"
    lines.append(side_row.format("", "side", "loop s (med)", "process s (med)", "peak MiB", "final acc"))
    for workload, result in report["workloads"].items():
        for side, s in result["sides"].items():
            lines.append(
                side_row.format(
                    workload,
                    side,
                    f"{s['seconds_median']:.2f}",
                    f"{s['process_wall_median']:.2f}",
                    f"{s['peak_mib_max']:.0f}",
                    f"{result['final_average_accuracy'][side]:.3f}",
                )
            )
    for name, s in report["startup"].items():
        lines.append(
            side_row.format(
                "startup",
                f"replay-run {name}",
                "",
                f"{s['seconds_median']:.2f}",
                f"{s['peak_mib_max']:.0f}",
                "",
            )
        )
    return "\n".join(lines)
