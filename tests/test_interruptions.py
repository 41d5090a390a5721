"""A signal at any moment of a step's recording: the interrupt line, results.json, the checkpoint and
W&B's own offline records describe the same finished steps, and a resume logs every step once.

The signal is raised from inside each write (results.json, W&B's log call, checkpoint.pt), not timed:
every point of the interleaving is tested, for SIGTERM and SIGINT in this process and for SIGKILL
in a real one (slow)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from replay_cli.reporting.wandb_records import offline_runs
from tests.conftest import cli_env, compose_config, replay_run

RUN = ("strategy.train_epochs=1", "benchmark.n_experiences=3", "mem_size=100")
WRITES = ("results", "wandb", "checkpoint")
STEP = 1  # the signal lands while the second of three steps is recorded
KILL_INSIDE = Path(__file__).with_name("kill_inside.py")


def arm(write: str, step: int, send: callable) -> list[tuple[object, str, object]]:
    """``send()`` is called from inside ``write`` while step ``step`` is recorded; returns the
    (owner, attribute, wrapper) triples to install (here with monkeypatch, in kill_inside.py directly)."""
    from replay_cli.reporting import results as results_module
    from replay_cli.reporting.wandb_logger import WandbLogger
    from replay_cli.training import checkpoint as checkpoint_module

    if write == "wandb":
        real_log = WandbLogger._log_one_step

        def log(self, results, at):
            if at == step:
                send()
            return real_log(self, results, at)

        return [(WandbLogger, "_log_one_step", log)]
    owner = results_module if write == "results" else checkpoint_module
    real_replace, calls = owner.replace_atomically, []

    def replace(path, write_file):
        recorded = path.name in ("results.json", "checkpoint.pt")
        calls.append(1) if recorded else None

        def write_and_send(handle):
            if recorded and len(calls) == step + 1:
                handle.write(b"{")  # the signal lands half-way through the file
                send()
                handle.seek(0)
                handle.truncate()
            write_file(handle)

        return real_replace(path, write_and_send)

    return [(owner, "replace_atomically", replace)]


def wandb_segments(run_dir: Path) -> list:
    import wandb

    wandb.teardown()  # in this process the W&B service outlives the run; stopping it flushes the files
    return [run for run in offline_runs(run_dir / "wandb") if run.run_id]


def logged_steps(segments: list) -> list[int]:
    return [row["experience"] for run in segments for row in run.history if "average_accuracy" in row]


def all_steps(segments: list) -> list[int]:
    return [row["_step"] for run in segments for row in run.history]


@pytest.fixture
def sigterm_handled():
    """replay-run's own SIGTERM handler, as the command installs it; the test's put back afterwards."""
    from replay_cli.cli import _interrupt_on_sigterm

    before = signal.getsignal(signal.SIGTERM)
    _interrupt_on_sigterm()
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[list[float]]:
    from replay_cli.training.experiment import run_experiment

    return run_experiment(compose_config(*RUN), tmp_path_factory.mktemp("whole")).accuracy_matrix


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("write", WRITES)
def test_a_signal_inside_any_write_leaves_every_record_at_the_same_step(
    write, signum, uninterrupted, sigterm_handled, monkeypatch, tmp_path
):
    from replay_cli.errors import RunInterrupted
    from replay_cli.training.checkpoint import load_checkpoint
    from replay_cli.training.experiment import run_experiment
    from replay_cli.training.resume import prepare_resume, steps_done

    monkeypatch.setenv("WANDB_MODE", "offline")
    with monkeypatch.context() as patched:
        for owner, name, wrapper in arm(write, STEP, lambda: os.kill(os.getpid(), signum)):
            patched.setattr(owner, name, wrapper)
        with pytest.raises(RunInterrupted) as stopped:
            run_experiment(compose_config("logger=wandb", *RUN), tmp_path)

    # the step being recorded when the signal came is finished everywhere, the next one nowhere
    assert f"interrupted after step {STEP} ({STEP + 1} of 3 steps done)" in str(stopped.value)
    assert f"resume with: replay-run resume={tmp_path}" in str(stopped.value)
    assert stopped.value.exit_status == (143 if signum == signal.SIGTERM else 130)
    results = json.loads((tmp_path / "results.json").read_text())
    assert (results["status"], results["experiences_done"]) == ("interrupted", STEP + 1)
    state = load_checkpoint(tmp_path)
    assert steps_done(state) == (STEP + 1, 3)
    assert state["results"]["accuracy_matrix"] == results["accuracy_matrix"]
    (first,) = wandb_segments(tmp_path)
    assert logged_steps([first]) == [0, 1]
    assert max(all_steps([first])) == STEP, "the end-of-run row joins the last logged step"
    assert first.summary["status"] == "interrupted"

    cfg, state = prepare_resume(compose_config("logger=wandb"), tmp_path, [])
    assert run_experiment(cfg, tmp_path, checkpoint=state).accuracy_matrix == uninterrupted
    segments = wandb_segments(tmp_path)
    assert len(segments) == 2 and len({run.run_id for run in segments}) == 1
    assert logged_steps(segments) == [0, 1, 2], "every step's metrics logged exactly once"
    steps = all_steps(segments)
    assert all(a < b for a, b in itertools.pairwise(steps)), f"W&B's _step increases strictly: {steps}"


def test_a_signal_while_training_keeps_the_steps_before_it(sigterm_handled, monkeypatch, tmp_path):
    """Outside the recording a signal stops the run at once: the records hold the steps before it."""
    from replay_cli.errors import RunInterrupted
    from replay_cli.reporting import metrics
    from replay_cli.training.checkpoint import load_checkpoint
    from replay_cli.training.experiment import run_experiment
    from replay_cli.training.resume import steps_done

    real_row, calls = metrics.accuracy_row, []

    def evaluated(*args, **kwargs):
        calls.append(1)
        if len(calls) == STEP + 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_row(*args, **kwargs)

    monkeypatch.setattr(metrics, "accuracy_row", evaluated)
    with pytest.raises(RunInterrupted) as stopped:
        run_experiment(compose_config(*RUN, "logger=none"), tmp_path)
    assert f"interrupted after step {STEP - 1} ({STEP} of 3 steps done)" in str(stopped.value)
    assert json.loads((tmp_path / "results.json").read_text())["experiences_done"] == STEP
    assert steps_done(load_checkpoint(tmp_path)) == (STEP, 3)


@pytest.mark.slow  # real processes: 3 kills and 3 resumes, about 40 s
@pytest.mark.parametrize("write", WRITES)
def test_sigkill_inside_any_write_then_resume_logs_every_step_once(write, uninterrupted, tmp_path):
    """SIGKILL cannot be held back: the checkpoint is written first, so every other record is at most
    one step behind it, and the resume completes them."""
    killed = subprocess.run(
        [sys.executable, str(KILL_INSIDE), write, str(STEP), *RUN, "print_config=false", "progress=false",
         "hydra.run.dir=run"],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    run_dir = tmp_path / "run"
    from replay_cli.training.checkpoint import load_checkpoint
    from replay_cli.training.resume import steps_done

    committed = steps_done(load_checkpoint(run_dir))[0]
    assert committed == (STEP if write == "checkpoint" else STEP + 1)
    written = json.loads((run_dir / "results.json").read_text())["experiences_done"]
    assert committed - 1 <= written <= committed, "results.json is never ahead of the checkpoint"

    resumed = replay_run("resume=run", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"({committed} of 3 steps done)" in resumed.stdout
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["accuracy_matrix"] == uninterrupted
    segments = [run for run in offline_runs(run_dir / "wandb") if run.run_id]
    assert len({run.run_id for run in segments}) == 1
    assert sorted(logged_steps(segments)) == [0, 1, 2], "every step's metrics logged exactly once"
    steps = all_steps(segments)
    assert all(a < b for a, b in itertools.pairwise(steps)), f"W&B's _step increases strictly: {steps}"
