"""Experiment presets: every one composes through the console script, carries its reproduction
target, and the embedded split_digits presets reach theirs."""

from pathlib import Path

import pytest
import yaml

from replay_cli.cli import config_dir
from replay_cli.config.keys import HEADLINE_METRICS
from replay_cli.sweeps.reproduce import main, reproduce
from tests.conftest import replay_run

PRESETS = sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("[!_]*.yaml"))
SPLIT_DIGITS = [p for p in PRESETS if p.startswith("split_digits")]


def test_the_required_presets_exist():
    assert {
        "clb_online_replay_split_mnist",
        "clb_replay_split_cifar100",
        "der_er_seq_mnist_200",
        "der_er_seq_mnist_500",
        "der_er_seq_cifar10_200",
        "der_er_seq_cifar10_500",
        "clb_mir_split_mnist",
        "clb_mir_permuted_mnist",
        "clb_mir_split_cifar10",
        "clb_er_ace_split_cifar10",
        "clb_er_aml_split_cifar10",
    } <= set(PRESETS)
    assert len(SPLIT_DIGITS) >= 2


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes_with_its_target(preset, tmp_path):
    result = replay_run(f"experiment={preset}", "--cfg", "job", "--resolve", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    cfg = yaml.safe_load(result.stdout)
    target = cfg["reproduce"]
    assert target["source"] and target["metric"] in HEADLINE_METRICS
    assert 0 < target["target"] <= 1 and 0 < target["tolerance"] < 0.1
    assert isinstance(target.get("verified", False), bool)
    if "storage" in cfg["strategy"]["uses"]:
        assert cfg["storage"]["policy"]["max_size"] == cfg["mem_size"]


def test_der_settings_follow_the_reference():
    from tests.conftest import compose_config

    cfg = compose_config("experiment=der_er_seq_cifar10_500")
    assert (cfg.benchmark.generator, cfg.model.name, cfg.storage.name) == (
        "SplitCIFAR10",
        "resnet18",
        "reservoir",
    )
    assert (cfg.mem_size, cfg.batch_size, cfg.batch_size_mem, cfg.strategy.train_epochs) == (500, 32, 32, 50)
    assert list(cfg.benchmark.fixed_class_order) == list(range(10))


def test_mir_preset_follows_the_reference():
    """continual-learning-baselines experiments/split_mnist/mir.py, as the preset composes it."""
    from tests.conftest import compose_config

    cfg = compose_config("experiment=clb_mir_split_mnist", "seed=2")
    assert (cfg.strategy.name, cfg.model.hidden_sizes[0], cfg.model.dropout, cfg.optimizer.lr) == (
        "mir",
        400,
        0.5,
        0.05,
    )
    assert (cfg.mem_size, cfg.strategy.subsample, cfg.batch_size, cfg.batch_size_mem) == (500, 50, 10, 10)
    assert cfg.benchmark.seed == 0  # the reference's class order for every run seed
    assert cfg.reproduce.verified is True and cfg.reproduce.metric == "final_stream_accuracy"


def test_split_digits_preset_reaches_its_target_on_seed_0(tmp_path):
    row = reproduce("split_digits_reservoir_200", [0], [], tmp_path)
    assert row.passed, (row.values, row.target)


@pytest.mark.slow
@pytest.mark.parametrize("preset", SPLIT_DIGITS)
def test_split_digits_presets_reach_their_targets_over_their_seeds(preset, tmp_path):
    row = reproduce(preset, None, [], tmp_path)
    assert len(row.values) == 3
    assert row.passed, (row.values, row.target)


def test_reproduce_script_prints_the_verdict_and_exits_by_it(tmp_path, capsys):
    code = main(
        ["split_digits_class_balanced_500", "--seeds", "0", "--out", str(tmp_path), "strategy.train_epochs=1"]
    )
    shown = capsys.readouterr().out
    assert "split_digits_class_balanced_500" in shown and "target" in shown
    assert ("pass" in shown) == (code == 0) and ("FAIL" in shown) == (code == 1)
