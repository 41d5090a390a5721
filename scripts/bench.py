"""How fast replay-run is, as ratios measured within one invocation (alternating runs, medians).

P1  replay-run vs a minimal hand-written Avalanche script with identical settings      (goal <= 1.05x)
P2  replay-run vs a raw PyTorch replay loop: same model, optimizer steps and batch
    composition (32 new + 32 replayed samples), same class-balanced buffer size      (goal <= 1.3x)
P3  wall time of ``replay-run --help`` and ``replay-run --cfg job``                  (goal <= 1.5 s)
and the peak memory (max RSS) of every process.

``--protocol online`` measures online continual learning instead (continual-learning-baselines'
online-replay settings: mini-experiences of 10 samples, 10 new + 10 replayed per step, class-balanced
buffer of 1000, one pass): replay-run ``protocol=online`` against a hand-written Avalanche script
(split_online_stream, one ``strategy.train`` per mini-experience, ReplayPlugin) (O1, goal <= 0.33x)
and against a raw PyTorch stream-reservoir loop of the same size (O2, reported); replay-run
``replay_update=iteration storage=reservoir`` (stream-reservoir ER, the raw loop's own algorithm)
against that loop too (O3, reported).

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
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPLAY_RUN = str(Path(sys.executable).parent / "replay-run")
GOALS = {"P1": 1.05, "P2": 1.3, "P3": 1.5}
GOALS_BY_WORKLOAD = {"split_cifar10": {"P1": 0.4, "P2": 1.3}, "split_mnist": {"P1": None, "P2": 1.3}}

# Every workload: MLP with one 400-unit hidden layer (or --model), SGD lr 0.1, class-balanced buffer
# of 500, minibatches of 32 new + 32 replayed samples, evaluation in batches of 256, seed 0, 5
# experiences of 2 classes in the order 0..9.
_IN_ORDER = "benchmark.fixed_class_order=[0,1,2,3,4,5,6,7,8,9]"
WORKLOADS = {
    "synthetic": {"epochs": 1, "overrides": ["benchmark=synthetic"]},  # 60k/10k MNIST-shaped, 5 exps
    "split_digits": {"epochs": 5, "overrides": ["benchmark=split_digits"]},
    "split_cifar10": {
        "epochs": 1,
        "overrides": ["benchmark=split_cifar10", _IN_ORDER, "benchmark.download=false"],
        "files": ("CIFAR10", 5000, 1000),
    },
    "split_mnist": {
        "epochs": 1,
        "overrides": ["benchmark=split_mnist", _IN_ORDER, "benchmark.download=false"],
        "files": ("MNIST", 6000, 1000),
    },
}
MODELS = {"mlp": ("MLP", {"hidden_sizes": [400]}), "cnn": ("CNN", {}), "resnet18": ("ResNet18", {})}
SETTINGS = {
    "mem_size": 500,
    "batch_size": 32,
    "batch_size_mem": 32,
    "eval_mb_size": 256,
    "lr": 0.1,
    "seed": 0,
}
# --protocol online: continual-learning-baselines' online replay (one pass, mini-experiences of 10)
ONLINE = {**SETTINGS, "mem_size": 1000, "batch_size": 10, "batch_size_mem": 10, "experience_size": 10}


def settings(protocol: str) -> dict:
    return ONLINE if protocol == "online" else SETTINGS


def epochs(workload: str, protocol: str) -> int:
    return 1 if protocol == "online" else WORKLOADS[workload]["epochs"]


# ---------------------------------------------------------------- the sides, each in its own process


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


def load_tensors(workload: str, data_root: str = ""):  # type: ignore[no-untyped-def]
    """(x_train, y_train, x_test, y_test), input shape; uint8 images for the file workloads."""
    from replay_cli.data import datasets
    from replay_cli.data.benchmarks import load_digits_tensors, synthetic_tensors

    if workload == "synthetic":
        return synthetic_tensors((1, 28, 28), 10, 60_000, 10_000, seed=0), (1, 28, 28)
    if workload == "split_digits":
        return load_digits_tensors(test_size=0.3, split_seed=0), (1, 8, 8)
    files = getattr(datasets, WORKLOADS[workload]["files"][0])
    train, test = datasets.load(files, data_root, download=False)
    return (train.images, train.targets, test.images, test.targets), tuple(train.images.shape[1:])


def build_model(name: str, shape, num_classes: int = 10):  # type: ignore[no-untyped-def]
    from replay_cli.models import networks

    class_name, kwargs = MODELS[name]
    return getattr(networks, class_name)(shape, num_classes, **kwargs)


def image_transforms(workload: str):  # type: ignore[no-untyped-def]
    """(train, eval) batched transforms of a file workload (the ones replay-run uses); None else."""
    from replay_cli.data.benchmarks import CLASSIC

    if "files" not in WORKLOADS[workload]:
        return None, None
    return CLASSIC["SplitCIFAR10" if workload == "split_cifar10" else "SplitMNIST"].transforms()


def avalanche_scenario(workload: str, data_root: str):  # type: ignore[no-untyped-def]
    """What a researcher would write: Avalanche's benchmark generators with torchvision's per-sample
    transforms (Avalanche's defaults) for the file workloads, tensors for the others."""
    from avalanche.benchmarks import nc_benchmark
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset

    from replay_cli.data import datasets

    if "files" not in WORKLOADS[workload]:
        (x_train, y_train, x_test, y_test), shape = load_tensors(workload)
        scenario = class_incremental_benchmark(
            {"train": tensor_dataset(x_train, y_train), "test": tensor_dataset(x_test, y_test)},
            class_order=list(range(10)),
            num_experiences=5,
        )
        return scenario, shape
    from torchvision import transforms as T

    cifar = workload == "split_cifar10"
    train, test = datasets.load(getattr(datasets, WORKLOADS[workload]["files"][0]), data_root, download=False)
    norm = T.Normalize(
        *((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)) if cifar else ((0.1307,), (0.3081,))
    )
    augment = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if cifar else []
    to_tensor = [T.ToTensor()] if cifar else []
    scenario = nc_benchmark(
        datasets.ImageSamples(train, pil=cifar),
        datasets.ImageSamples(test, pil=cifar),
        5,
        task_labels=False,
        fixed_class_order=list(range(10)),
        train_transform=T.Compose([*augment, *to_tensor, norm]),
        eval_transform=T.Compose([*to_tensor, norm]),
    )
    return scenario, tuple(train.images.shape[1:])


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


# ------------------------------------------------------------------------------- measuring processes


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
        extra = ("replay_update=iteration", "storage=reservoir") if "iteration" in side else ()
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
    argv = [sys.executable, __file__, "--worker", side, "--workloads", workload, "--threads", str(threads)]
    argv += ["--model", model, "--data-root", data_root, "--protocol", protocol]
    wall, peak, _ = measured([*argv, "--json", str(out)], run_dir)
    return {**json.loads(out.read_text()), "wall": wall, "peak_mib": peak}


SIDES = ["replay-run", "avalanche", "raw", "replay-run (fast_path=false)"]
ITERATION_SIDE = "replay-run (replay_update=iteration)"  # online only: the raw loop's own algorithm
GOALS_ONLINE = {"O1": 0.33, "O2": None, "O3": None}


def bench_workload(
    workload: str,
    repeats: int,
    threads: int,
    scratch: Path,
    model: str = "mlp",
    data_root: str = "",
    protocol: str = "offline",
) -> dict:
    sides = SIDES + ([ITERATION_SIDE] if protocol == "online" else [])
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
    online = (
        {
            "O1": paired_ratio("replay-run", "avalanche"),
            "O2": paired_ratio("replay-run", "raw"),
            "O3": paired_ratio(ITERATION_SIDE, "raw"),
        }
        if protocol == "online"
        else {}
    )
    return {
        "sides": summary,
        **online,
        "P1": paired_ratio("replay-run", "avalanche"),
        "P1_fast_path_off": paired_ratio("replay-run (fast_path=false)", "avalanche"),
        "P2": paired_ratio("replay-run", "raw"),
        "P2_plain_avalanche": paired_ratio("avalanche", "raw"),
        # random crops are drawn per batch on the fast path: the same distribution, other draws
        "same_accuracy_matrix_as_avalanche": all(
            a["accuracy_matrix"] == b["accuracy_matrix"]
            for r in ("replay-run (fast_path=false)",)
            + (() if workload == "split_cifar10" else ("replay-run",))
            for a, b in zip(runs[r], runs["avalanche"], strict=True)
        ),
        "final_average_accuracy": {
            side: statistics.median(sum(r["accuracy_matrix"][-1]) / len(r["accuracy_matrix"][-1]) for r in rs)
            for side, rs in runs.items()
        },
    }


def write_files(workload: str, root: Path, per_class: int | None) -> None:
    """Full-size files in the real format (or ``per_class`` images per class): each class a random
    prototype image, each sample that prototype plus noise, so a model can learn the classes."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from tests.tiny_datasets import write_cifar10_arrays, write_idx_arrays

    name, train_per_class, test_per_class = WORKLOADS[workload]["files"]
    rng = np.random.default_rng(0)
    shape = (3, 32, 32) if name == "CIFAR10" else (28, 28)
    prototypes = rng.integers(0, 256, size=(10, *shape))

    def split(per: int) -> tuple:
        labels = rng.permutation(np.repeat(np.arange(10), per)).astype(np.uint8)
        noise = rng.normal(0, 48, size=(len(labels), *shape))
        return np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8), labels

    train = split(per_class or train_per_class)
    test = split(max(1, (per_class or train_per_class) * test_per_class // train_per_class))
    if name == "CIFAR10":
        write_cifar10_arrays(root, train, test)
    else:
        write_idx_arrays(root / "MNIST" / "raw", train, test)


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
    row = "{:<14}{:<44}{:>10}{:>10}{:>8}"
    lines.append(row.format("", "measure", "value", "goal", "met"))
    for workload, result in report["workloads"].items():
        measures = (
            ("O1", "O1 online replay-run / Avalanche online"),
            ("O2", "O2 online replay-run / raw reservoir loop"),
            ("O3", "O3 replay_update=iteration / raw loop"),
        )
        online = "O1" in result  # there P1 and P2 are O1 and O2, with the online goals
        offline = () if online else (("P1", "P1 replay-run / hand-written Avalanche"),)
        offline += () if online else (("P2", "P2 replay-run / raw PyTorch loop"),)
        for key, label in (
            *(m for m in measures if m[0] in result),
            *offline,
            ("P1_fast_path_off", "   replay-run fast_path=false / Avalanche"),
            ("P2_plain_avalanche", "   plain Avalanche / raw PyTorch loop"),
        ):
            goal = {**GOALS, **GOALS_BY_WORKLOAD.get(workload, {}), **GOALS_ONLINE}.get(key)
            met = "" if goal is None else ("yes" if result[key] <= goal else "no")
            lines.append(
                row.format(workload, label, f"{result[key]:.2f}x", f"<= {goal}x" if goal else "", met)
            )
        lines.append(
            row.format(
                workload,
                "   same accuracy matrix as Avalanche",
                str(result["same_accuracy_matrix_as_avalanche"]),
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
            )
        )
    lines.append("")
    side_row = "{:<14}{:<30}{:>14}{:>16}{:>12}{:>12}"
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
