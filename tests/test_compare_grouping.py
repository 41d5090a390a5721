"""What is averaged together: seeds only. A key derived from the seed is not a grouping key, runs of
different strategies, protocols or benchmarks are never pooled, and --by says what it kept apart."""

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from replay_cli.cli import config_dir
from replay_cli.compare.comparison import compare
from replay_cli.compare.files import write_outputs
from replay_cli.compare.plots import _anytime_accuracy, _anytime_curves, write_figures
from replay_cli.keys import flatten
from tests.conftest import compose_config, fake_run

MATRIX = [[1.0, 0.0], [0.5, 1.0]]
BENCHMARKS = sorted(path.stem for path in (Path(config_dir()) / "benchmark").glob("*.yaml"))


def _follows_seed(benchmark: str) -> bool:
    unresolved = OmegaConf.to_container(compose_config(f"benchmark={benchmark}"), resolve=False)
    return any(isinstance(v, str) and "${seed}" in v for v in flatten(unresolved).values())


SEEDED = [benchmark for benchmark in BENCHMARKS if _follows_seed(benchmark)]


def test_the_benchmarks_that_follow_the_seed_are_found():
    assert {"split_mnist", "split_cifar10", "permuted_mnist"} <= set(SEEDED)
    assert "split_digits" not in SEEDED  # its split_seed is fixed


@pytest.mark.parametrize("hydra_records", [True, False], ids=["with .hydra", "results only"])
@pytest.mark.parametrize("benchmark", SEEDED)
def test_a_key_that_follows_the_seed_is_not_a_grouping_key(benchmark, hydra_records, tmp_path):
    """``replay-run -m benchmark=B mem_size=100,200 seed=0,1``: two rows of two seeds each."""
    for mem_size in (100, 200):
        for seed in (0, 1):
            overrides = [f"benchmark={benchmark}", f"mem_size={mem_size}", f"seed={seed}"]
            cfg = compose_config(*overrides)
            config = OmegaConf.to_container(cfg, resolve=True)
            run_dir = tmp_path / f"{mem_size}-{seed}"
            fake_run(run_dir, MATRIX, benchmark=benchmark, mem_size=mem_size, seed=seed, extra=config)
            if hydra_records:
                (run_dir / ".hydra").mkdir()
                (run_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
                (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    comparison = compare([str(tmp_path)])
    assert comparison.swept == ["mem_size"]
    assert sorted((row["mem_size"], row["n"]) for row in comparison.rows()) == [(100, 2), (200, 2)]
    assert all(run.interpolated for run in comparison.runs) is hydra_records


def test_by_never_pools_strategies_and_says_what_it_kept_apart(tmp_path):
    """The README's two sweeps: baselines (naive, replay, joint) and a storage sweep."""
    for seed in (0, 1):
        for strategy in ("naive", "replay", "joint"):
            fake_run(tmp_path / f"{strategy}-{seed}", MATRIX, strategy=strategy, storage="eb", seed=seed)
        fake_run(tmp_path / f"reservoir-{seed}", MATRIX, storage="reservoir", seed=seed)
    comparison = compare([str(tmp_path)], by=["storage"])
    assert comparison.kept_apart == ["strategy"]
    assert comparison.key_columns == ["strategy", "storage"]
    assert sorted((row["strategy"], row["storage"], row["n"]) for row in comparison.rows()) == [
        ("joint", "eb", 2),
        ("naive", "eb", 2),
        ("replay", "eb", 2),
        ("replay", "reservoir", 2),
    ]
    assert "kept apart by strategy" in comparison.notes()[0]
    assert json.loads(_json(comparison))["kept_apart"] == ["strategy"]


def test_protocols_are_never_pooled(tmp_path):
    for protocol in ("experience", "online"):
        for seed in (0, 1):
            extra = {"protocol": {"name": protocol, "eval_every": 10}}
            fake_run(tmp_path / f"{protocol}-{seed}", MATRIX, seed=seed, extra=extra)
    comparison = compare([str(tmp_path)], by=["storage"])
    assert comparison.kept_apart == ["protocol"]
    assert sorted((row["protocol"], row["n"]) for row in comparison.rows()) == [
        ("experience", 2),
        ("online", 2),
    ]


def test_presentation_keys_are_never_grouping_keys(tmp_path):
    """num_threads, fast_path and the logger change how a run looks or how fast it goes, not its numbers."""
    for n, (threads, fast, mode) in enumerate([(None, True, "offline"), (2, False, "disabled")]):
        extra = {"num_threads": threads, "fast_path": fast, "logger": {"mode": mode}}
        fake_run(tmp_path / str(n), MATRIX, seed=n, extra=extra)
    comparison = compare([str(tmp_path)])
    assert comparison.swept == [] and [row["n"] for row in comparison.rows()] == [2]


def _json(comparison) -> str:
    from replay_cli.compare.tables import render

    return render(comparison, "json")


def test_write_outputs_takes_any_path_like(tmp_path):
    fake_run(tmp_path / "runs" / "a", MATRIX)
    comparison = compare([str(tmp_path / "runs")])
    for out in (str(tmp_path / "as-str"), tmp_path / "as-path"):
        written = write_outputs(comparison, out, figures=False)
        assert written.out_dir == Path(out)
        assert (Path(out) / "comparison.csv").read_text().startswith("runs,n,")


def _anytime_run(run_dir: Path, storage: str, seed: int, accuracies: list[float]) -> None:
    fake_run(run_dir, MATRIX, storage=storage, seed=seed)
    results = json.loads((run_dir / "results.json").read_text())
    results["anytime_accuracy"] = [
        {"samples_seen": 100 * (i + 1), "stream_accuracy": value} for i, value in enumerate(accuracies)
    ]
    (run_dir / "results.json").write_text(json.dumps(results))


def test_anytime_curves_are_the_mean_over_seeds_with_a_band(tmp_path):
    curves = {
        ("reservoir", 0): [0.2, 0.4, 0.5],
        ("reservoir", 1): [0.4, 0.6, 0.7],
        ("class_balanced", 0): [0.3, 0.5, 0.8],
        ("class_balanced", 1): [0.3, 0.7, 0.6],
    }
    for (storage, seed), accuracies in curves.items():
        _anytime_run(tmp_path / "runs" / f"{storage}-{seed}", storage, seed, accuracies)
    comparison = compare([str(tmp_path / "runs")])
    frame = _anytime_curves(comparison)
    for storage in ("reservoir", "class_balanced"):
        runs = np.array([curves[(storage, seed)] for seed in (0, 1)])
        mine = frame[frame["group"] == storage]
        assert list(mine["samples_seen"]) == [100, 200, 300]
        assert np.allclose(mine["mean"], runs.mean(axis=0))
        assert np.allclose(mine["std"], runs.std(axis=0, ddof=1))
        assert list(mine["count"]) == [2, 2, 2]
    axes = _anytime_accuracy(comparison).axes[0]
    assert sorted(line.get_label() for line in axes.lines) == ["class_balanced", "reservoir"]
    assert len(axes.collections) == 2  # one band per group
    names = [figure.name for figure in write_figures(comparison, tmp_path / "figures")]
    assert "anytime_accuracy" in names


def test_no_anytime_figure_without_anytime_records(tmp_path):
    fake_run(tmp_path / "runs" / "a", MATRIX)
    assert _anytime_curves(compare([str(tmp_path / "runs")])) is None
