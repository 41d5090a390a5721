"""Never lose a run: checkpoints after every step, resume after SIGKILL or SIGTERM, safe loading."""

import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from replay_cli.reporting.wandb_records import offline_runs
from replay_cli.training.checkpoint import CHECKPOINT_FILE
from tests.conftest import REPLAY_RUN, cli_env, compose_config, replay_run

# Adam has optimizer state across experiences: resuming must restore it, not reset it.
SLOW_ENOUGH = (
    "strategy.device=cpu",  # the matrices must be bit-identical: no nondeterministic CUDA kernels
    "storage=class_balanced",
    "mem_size=200",
    "strategy.train_epochs=10",
    "optimizer=adam",
    "optimizer.lr=0.001",
    "print_config=false",
    "progress=false",
)


def wandb_steps(run_dir: Path) -> list[int]:
    """W&B's ``_step`` of every history row, segment after segment (offline runs sort by start time)."""
    return [row["_step"] for run in offline_runs(run_dir / "wandb") if run.run_id for row in run.history]


def results_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def start_and_wait(cwd: Path, run_dir: str, steps: int, *extra: str) -> subprocess.Popen:
    """Start replay-run in the background and return once ``steps`` steps are checkpointed."""
    process = subprocess.Popen(
        [REPLAY_RUN, *SLOW_ENOUGH, f"hydra.run.dir={run_dir}", *extra],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    results = cwd / run_dir / "results.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if (
                json.loads(results.read_text())["experiences_done"] >= steps
                and (cwd / run_dir / CHECKPOINT_FILE).exists()
            ):
                return process
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    pytest.fail(f"the run ended or stalled before {steps} steps: {process.communicate()[1][-500:]}")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    cwd = tmp_path_factory.mktemp("whole")
    result = replay_run(*SLOW_ENOUGH, "hydra.run.dir=whole", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return results_of(cwd / "whole")


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_run(uninterrupted, tmp_path):
    process = start_and_wait(tmp_path, "killed", steps=3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    run_dir = tmp_path / "killed"
    assert results_of(run_dir)["experiences_done"] < 5, "the run finished before it could be killed"

    resumed = replay_run(f"resume={run_dir}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    results = results_of(run_dir)
    assert results["status"] == "completed"
    assert results["accuracy_matrix"] == uninterrupted["accuracy_matrix"]
    assert results["buffer_composition"] == uninterrupted["buffer_composition"]

    runs = [run for run in offline_runs(run_dir / "wandb") if run.run_id]
    files = sorted((run_dir / "wandb").rglob("run-*.wandb"))
    assert len({run.run_id for run in runs}) == 1, f"one W&B run continued: {files} {resumed.stderr}"
    logged = [row["experience"] for run in runs for row in run.history if "average_accuracy" in row]
    assert sorted(logged) == [0, 1, 2, 3, 4], "every experience logged exactly once"
    steps = wandb_steps(run_dir)
    assert len(files) == 2 and all(a < b for a, b in itertools.pairwise(steps)), steps


@pytest.mark.slow  # 30 s of real processes; the in-process interruption tests stay in the default suite
def test_sigterm_keeps_results_says_how_to_resume_and_resume_finishes(uninterrupted, tmp_path):
    process = start_and_wait(tmp_path, "preempted", steps=1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143
    run_dir = tmp_path / "preempted"
    error_lines = [line for line in stderr.splitlines() if line.startswith("replay-run: ")]
    assert len(error_lines) == 1 and f"resume with: replay-run resume={run_dir}" in error_lines[0]
    assert "Traceback" not in stderr and "Error executing job" not in stderr
    interrupted = results_of(run_dir)
    done = interrupted["experiences_done"]
    assert interrupted["status"] == "interrupted" and done >= 1
    assert f"interrupted after step {done - 1} ({done} of 5 steps done)" in error_lines[0]
    (first_segment,) = [run for run in offline_runs(run_dir / "wandb") if run.run_id]
    assert first_segment.exit_code != 0

    resumed = replay_run(f"resume={run_dir}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run_dir} after step {done - 1} ({done} of 5 steps done)" in resumed.stdout
    assert results_of(run_dir)["accuracy_matrix"] == uninterrupted["accuracy_matrix"]
    steps = wandb_steps(run_dir)
    assert len(steps) == 5 and all(a < b for a, b in itertools.pairwise(steps)), steps


@pytest.mark.slow
def test_a_requeued_job_resumes_in_its_own_directory(uninterrupted, tmp_path):
    """What submitit's requeue does: run the same job again in the same directory."""
    process = start_and_wait(tmp_path, "requeued", steps=2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    again = replay_run(*SLOW_ENOUGH, "hydra.run.dir=requeued", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stdout
    assert results_of(tmp_path / "requeued")["accuracy_matrix"] == uninterrupted["accuracy_matrix"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("finished")
    result = replay_run("strategy.train_epochs=1", "logger=none", "hydra.run.dir=run", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd / "run"


def test_resuming_a_completed_run_says_so(finished_run):
    before = (finished_run / "results.json").read_text()
    result = replay_run(f"resume={finished_run}", "print_config=false", cwd=finished_run.parent)
    assert result.returncode == 0, result.stderr
    assert "already completed all 5 steps" in result.stdout
    assert (finished_run / "results.json").read_text() == before
    assert (finished_run / ".hydra" / "config.yaml").is_file(), "the run's own config is kept"


def test_resume_refuses_overrides_that_change_the_experiment(finished_run):
    result = replay_run(f"resume={finished_run}", "optimizer.lr=0.5", cwd=finished_run.parent)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "optimizer.lr=0.5 would change the experiment (the run has optimizer.lr=0.1)" in line


def test_resume_keeps_the_runs_own_instruments(finished_run):
    """Cost and diagnostics for only some steps would not describe the run: another value is refused."""
    refused = replay_run(f"resume={finished_run}", "instruments=false", cwd=finished_run.parent)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert "instruments=false would record cost and diagnostics for only some of the run's steps" in line
    assert "(the run has instruments=true)" in line
    same = replay_run(f"resume={finished_run}", "instruments=true", cwd=finished_run.parent)
    assert same.returncode == 0 and "already completed" in same.stdout


def test_checkpoints_never_execute_code(finished_run, tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    run_dir = tmp_path / "evil"
    run_dir.mkdir()
    (run_dir / CHECKPOINT_FILE).write_bytes(pickle.dumps({"format": Exploit()}))
    result = replay_run(f"resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 2
    assert "is corrupted or truncated" in result.stderr
    assert not marker.exists()


@pytest.mark.slow
def test_the_api_key_appears_in_no_file(tmp_path):
    secret = "0123456789abcdef0123456789abcdef01234567"
    result = replay_run(
        "strategy.train_epochs=1", "hydra.run.dir=run", cwd=tmp_path, env={"WANDB_API_KEY": secret}
    )
    assert result.returncode == 0, result.stderr
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.name == CHECKPOINT_FILE for p in files) and any(p.suffix == ".wandb" for p in files)
    leaking = [p for p in files if secret.encode() in p.read_bytes()]
    assert not leaking


class _SignalAfterResults:
    """A results sink standing for an interruption that is not held back (a ``KeyboardInterrupt``
    raised by the code itself) after step ``at`` is recorded; extra sinks come after the checkpoint."""

    def __init__(self, at: int):
        self.at, self.steps = at, 0

    def experience_done(self, results) -> None:
        self.steps += 1
        if self.steps == self.at:
            raise KeyboardInterrupt

    def run_ended(self, results) -> None:
        pass


def test_a_step_is_printed_as_done_only_once_its_checkpoint_is_written(tmp_path, monkeypatch):
    """A signal right after a step's line still finds that step's checkpoint (SLURM preemption)."""
    from replay_cli.reporting.console import ConsoleSummary
    from replay_cli.training.experiment import run_experiment

    printed = []
    monkeypatch.setattr(
        ConsoleSummary,
        "_print_step",
        lambda self, results: printed.append((tmp_path / CHECKPOINT_FILE).exists()),
    )
    cfg = compose_config(
        "strategy.train_epochs=1", "benchmark.n_experiences=2", "logger=none", "progress=false"
    )
    run_experiment(cfg, tmp_path)
    assert printed == [True, True]


def _checkpoint_write_fails(monkeypatch) -> None:
    from replay_cli.training import checkpoint

    def full_disk(path, write):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(checkpoint, "replace_atomically", full_disk)


@pytest.mark.parametrize(
    ("overrides", "at", "status", "checkpoint_written"),
    [((), 0, "failed", False), (("strategy=mir",), 2, "interrupted", True)],
    ids=["the first checkpoint cannot be written", "a method checkpoints cannot hold"],
)
def test_the_resume_hint_appears_only_when_a_checkpoint_can_be_resumed(
    tmp_path, monkeypatch, overrides, at, status, checkpoint_written
):
    from replay_cli.errors import RunFailed
    from replay_cli.training.experiment import run_experiment

    if not at:
        _checkpoint_write_fails(monkeypatch)
    cfg = compose_config("strategy.train_epochs=1", "logger=none", "progress=false", *overrides)
    with pytest.raises(RunFailed) as stopped:
        run_experiment(cfg, tmp_path, extra_sinks=[_SignalAfterResults(at)])
    message = str(stopped.value)
    assert "resume with" not in message
    assert "no checkpoint to resume from: run the same command again to start over" in message
    assert (tmp_path / CHECKPOINT_FILE).exists() is checkpoint_written
    assert json.loads((tmp_path / "results.json").read_text())["status"] == status


def test_resume_applies_a_fast_path_override_and_only_then(tmp_path):
    """``fast_path`` gives the same results either way: a resume may switch it (and only switches
    it when told to), like the other presentation keys."""
    from replay_cli.training.resume import prepare_resume

    result = replay_run(
        "fast_path=false", "strategy.train_epochs=1", f"hydra.run.dir={tmp_path}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    switched, _ = prepare_resume(compose_config("fast_path=true"), tmp_path, ["fast_path=true"])
    kept, _ = prepare_resume(compose_config(), tmp_path, [])
    assert (switched.fast_path, kept.fast_path) == (True, False)
