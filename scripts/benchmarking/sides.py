"""The sides the benchmark times, each in its own fresh process: replay-run (its results.json gives
the loop's seconds), and the hand-written Avalanche script and the raw PyTorch loops (workers of
this package, started through scripts/bench.py --worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarking.workloads import (
    ONLINE,
    ROOT,
    SETTINGS,
    WORKLOADS,
    avalanche_scenario,
    build_model,
    epochs,
    image_transforms,
    load_tensors,
    settings,
)

REPLAY_RUN = str(Path(sys.executable).parent / "replay-run")
BENCH = ROOT / "scripts" / "bench.py"


def replay_run_args(
    workload: str,
    threads: int,
    run_dir: Path,
    fast_path: bool = True,
    model: str = "mlp",
    data_root: str = "",
    protocol: str = "offline",
    extra: tuple[str, ...] = (),
) -> list[str]:
    s = settings(protocol)
    root = [f"benchmark.dataset_root={data_root}"] if "files" in WORKLOADS[workload] else []
    model_args = [f"model={model}"] + (["model.hidden_sizes=[400]"] if model == "mlp" else [])
    online = (
        ["protocol=online", f"protocol.experience_size={s['experience_size']}"]
        if protocol == "online"
        else []
    )
    return [
        REPLAY_RUN,
        *WORKLOADS[workload]["overrides"],
        *root,
        *model_args,
        *online,
        "storage=class_balanced",
        *extra,
        f"mem_size={s['mem_size']}",
        f"batch_size={s['batch_size']}",
        f"batch_size_mem={s['batch_size_mem']}",
        f"strategy.eval_mb_size={s['eval_mb_size']}",
        f"optimizer.lr={s['lr']}",
        f"strategy.train_epochs={epochs(workload, protocol)}",
        f"seed={s['seed']}",
        f"num_threads={threads}",
        f"fast_path={str(fast_path).lower()}",
        "logger=none",
        "print_config=false",
        "progress=false",
        f"hydra.run.dir={run_dir}",
    ]


def worker_avalanche(workload: str, model_name: str, data_root: str, protocol: str = "offline") -> dict:
    """The minimal Avalanche script a researcher would write for the same run; online: each
    experience cut by split_online_stream, one ``strategy.train`` per mini-experience."""
    import random

    import numpy as np
    import torch
    from avalanche.benchmarks.scenarios.online import split_online_stream
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
    from avalanche.training.storage_policy import ClassBalancedBuffer

    from replay_cli.reporting.metrics import accuracy_row

    s = settings(protocol)
    random.seed(s["seed"])
    np.random.seed(s["seed"])
    torch.manual_seed(s["seed"])
    scenario, shape = avalanche_scenario(workload, data_root)
    if protocol == "online":  # the online split draws its shuffling seed from python's random
        random.seed(s["seed"])  # state, which building the scenario may have used: as replay-run
    model = build_model(model_name, shape)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=s["lr"]),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=s["batch_size"],
        train_epochs=epochs(workload, protocol),
        eval_mb_size=s["eval_mb_size"],
        device="cuda" if torch.cuda.is_available() else "cpu",
        plugins=[
            ReplayPlugin(
                mem_size=s["mem_size"],
                batch_size=s["batch_size"],
                batch_size_mem=s["batch_size_mem"],
                storage_policy=ClassBalancedBuffer(max_size=s["mem_size"], adaptive_size=True),
            )
        ],
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[]),
    )
    matrix = []
    started = time.perf_counter()
    for experience in scenario.train_stream:
        if protocol == "online":
            for mini in split_online_stream([experience], experience_size=s["experience_size"]):
                strategy.train(mini)
        else:
            strategy.train(experience)
        matrix.append(accuracy_row(strategy.eval(scenario.test_stream), 5))
    return {"seconds": time.perf_counter() - started, "accuracy_matrix": matrix}


def worker_raw(workload: str, model_name: str, data_root: str, protocol: str = "offline") -> dict:
    """Plain PyTorch: the same model, optimizer steps and batch composition, indexing tensors directly
    (on the training device), with the same batched image transforms as replay-run; online: the
    stream-reservoir loop."""
    import torch

    if protocol == "online":
        return worker_raw_stream(workload, model_name, data_root)
    s = SETTINGS
    device, (x_train, y_train), test, classes, model, optimizer, transforms = _raw_setup(
        s, workload, model_name, data_root
    )
    train_transform, eval_transform = transforms
    criterion = torch.nn.CrossEntropyLoss()
    train = [_where(x_train, y_train, c) for c in classes]
    buffer: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    matrix = []
    started = time.perf_counter()
    for x, y in train:
        memory = _concat(buffer.values())
        for _ in range(WORKLOADS[workload]["epochs"]):
            model.train()
            replayed = _batches(memory, s["batch_size_mem"], cycle=True) if memory else None
            for xb, yb in _batches((x, y), s["batch_size"]):
                if replayed is not None:
                    xm, ym = next(replayed)
                    xb, yb = torch.cat([xb, xm]), torch.cat([yb, ym])
                if train_transform is not None:
                    xb = train_transform(xb)
                optimizer.zero_grad()
                loss = criterion(model(xb.to(device)), yb.to(device))
                loss.backward()
                optimizer.step()
        _update_class_balanced(buffer, x, y, s["mem_size"])
        matrix.append(
            [_accuracy(model, xt, yt, s["eval_mb_size"], device, eval_transform) for xt, yt in test]
        )
    return {"seconds": time.perf_counter() - started, "accuracy_matrix": matrix}


def _raw_setup(s: dict, workload: str, model_name: str, data_root: str) -> tuple:
    """What both raw loops start from: seeded torch, the data on the training device, the test split
    per experience (2 classes each), the model, plain SGD and the batched image transforms."""
    import torch

    torch.manual_seed(s["seed"])
    (x_train, y_train, x_test, y_test), shape = load_tensors(workload, data_root)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x_train, y_train, x_test, y_test = (t.to(device) for t in (x_train, y_train, x_test, y_test))
    model = build_model(model_name, shape).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=s["lr"])
    classes = [[2 * i, 2 * i + 1] for i in range(5)]
    test = [_where(x_test, y_test, c) for c in classes]
    return device, (x_train, y_train), test, classes, model, optimizer, image_transforms(workload)


def worker_raw_stream(workload: str, model_name: str, data_root: str) -> dict:
    """Stream-reservoir ER in plain PyTorch (one pass, minibatches of 10 new + 10 drawn uniformly
    from a reservoir buffer updated after every step): the online workload's raw reference."""
    import numpy as np
    import torch

    s = ONLINE
    np.random.seed(s["seed"])
    device, (x_train, y_train), test, classes, model, optimizer, transforms = _raw_setup(
        s, workload, model_name, data_root
    )
    train_transform, eval_transform = transforms
    criterion = torch.nn.CrossEntropyLoss()
    memory_x = torch.empty((s["mem_size"], *x_train.shape[1:]), dtype=x_train.dtype, device=device)
    memory_y = torch.empty(s["mem_size"], dtype=y_train.dtype, device=device)
    seen, matrix = 0, []
    started = time.perf_counter()
    for c in classes:
        model.train()
        for xb, yb in _batches(_where(x_train, y_train, c), s["batch_size"]):
            x_new, y_new = xb, yb
            if seen:
                count = min(seen, s["mem_size"])
                chosen = torch.as_tensor(
                    np.random.choice(count, min(count, s["batch_size_mem"]), replace=False)
                )
                xb, yb = torch.cat([xb, memory_x[chosen]]), torch.cat([yb, memory_y[chosen]])
            if train_transform is not None:
                xb = train_transform(xb)
            optimizer.zero_grad()
            criterion(model(xb), yb).backward()
            optimizer.step()
            for i in range(len(y_new)):  # reservoir sampling (Algorithm R)
                slot = seen if seen < s["mem_size"] else np.random.randint(0, seen + 1)
                if slot < s["mem_size"]:
                    memory_x[slot], memory_y[slot] = x_new[i], y_new[i]
                seen += 1
        matrix.append(
            [_accuracy(model, xt, yt, s["eval_mb_size"], device, eval_transform) for xt, yt in test]
        )
    return {"seconds": time.perf_counter() - started, "accuracy_matrix": matrix}


def _where(x, y, classes):  # type: ignore[no-untyped-def]
    import torch

    mask = torch.isin(y, torch.tensor(classes, device=y.device))
    return x[mask], y[mask]


def _concat(parts):  # type: ignore[no-untyped-def]
    import torch

    parts = list(parts)
    return (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])) if parts else None


def _batches(data, size, cycle=False):  # type: ignore[no-untyped-def]
    """Shuffled minibatches like a shuffling DataLoader (last one short); ``cycle``: reshuffle forever."""
    import torch

    x, y = data
    while True:
        order = torch.randperm(len(y), device=y.device)
        for start in range(0, len(y), size):
            index = order[start : start + size]
            yield x[index], y[index]
        if not cycle:
            return


def _update_class_balanced(buffer, x, y, mem_size):  # type: ignore[no-untyped-def]
    """Equal share per seen class (random samples of each new class; old classes trimmed)."""
    import torch

    for c in torch.unique(y).tolist():
        mask = y == c
        buffer[c] = (x[mask], y[mask])
    share = mem_size // len(buffer)
    for c, (xc, yc) in buffer.items():
        keep = torch.randperm(len(yc), device=yc.device)[:share]
        buffer[c] = (xc[keep], yc[keep])


def _accuracy(model, x, y, batch_size, device, transform=None) -> float:  # type: ignore[no-untyped-def]
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            xb = x[start : start + batch_size].to(device)
            logits = model(transform(xb) if transform is not None else xb)
            correct += int((logits.argmax(1) == y[start : start + batch_size].to(device)).sum())
    return correct / len(y)


def run_worker(
    side: str, workload: str, threads: int, out: str, model: str, data_root: str, protocol: str = "offline"
) -> None:
    import torch

    torch.set_num_threads(threads)
    result = {"avalanche": worker_avalanche, "raw": worker_raw}[side](workload, model, data_root, protocol)
    Path(out).write_text(json.dumps(result))


def measured(argv: list[str], cwd: Path) -> tuple[float, float, int]:
    """Run a process: (wall seconds, peak RSS in MiB, exit code)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    env["WANDB_MODE"] = "disabled"
    started = time.perf_counter()
    # stderr to a file, not a pipe: a worker that warns a lot (Avalanche, once per mini-experience)
    # would fill a pipe nobody reads while waiting, and block
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            sys.exit(f"failed ({process.returncode}): {' '.join(argv)}\n{errors.read().decode()[-3000:]}")
    return wall, usage.ru_maxrss / 1024, process.returncode


def one_side(
    side: str, workload: str, threads: int, scratch: Path, model: str, data_root: str, protocol: str
) -> dict:
    run_dir = Path(tempfile.mkdtemp(dir=scratch))
    if side.startswith("replay-run"):
        fast = "fast_path=false" not in side
        extra = REPLAY_RUN_OVERRIDES.get(side, ())
        argv = replay_run_args(workload, threads, run_dir, fast, model, data_root, protocol, extra)
        wall, peak, _ = measured(argv, run_dir)
        results = json.loads((run_dir / "results.json").read_text())
        seconds = results["timings"]["train_seconds"] + results["timings"]["eval_seconds"]
        return {
            "seconds": seconds,
            "wall": wall,
            "peak_mib": peak,
            "accuracy_matrix": results["accuracy_matrix"],
        }
    out = run_dir / "worker.json"
    argv = [sys.executable, str(BENCH), "--worker", side, "--workloads", workload, "--threads", str(threads)]
    argv += ["--model", model, "--data-root", data_root, "--protocol", protocol]
    wall, peak, _ = measured([*argv, "--json", str(out)], run_dir)
    return {**json.loads(out.read_text()), "wall": wall, "peak_mib": peak}


SIDES = ["replay-run", "avalanche", "raw", "replay-run (fast_path=false)"]
ITERATION_SIDE = "replay-run (replay_update=iteration)"  # online only: the raw loop's own algorithm
PER_MINI_SIDE = "replay-run (protocol.loop=per_mini_experience)"  # online only: the script's own loop
ONLINE_SIDES = [ITERATION_SIDE, PER_MINI_SIDE]
REPLAY_RUN_OVERRIDES = {
    ITERATION_SIDE: ("replay_update=iteration", "storage=reservoir"),
    PER_MINI_SIDE: ("protocol.loop=per_mini_experience",),
}
