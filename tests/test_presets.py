"""Experiment presets: every one composes through the console script, carries its reproduction
target, and the embedded split_digits presets reach theirs."""

import json
from pathlib import Path

import pytest
import yaml

from replay_cli.cli import config_dir
from replay_cli.config.keys import HEADLINE_METRICS
from replay_cli.sweeps.reproduce import main, reproduce
from tests.conftest import compose_config, replay_run

PRESETS = sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("[!_]*.yaml"))
SPLIT_DIGITS = [p for p in PRESETS if p.startswith("split_digits")]


def test_the_required_presets_exist():
    assert {
        "clb_online_replay_split_mnist",
        "clb_online_replay_split_cifar10",
        "clb_online_replay_split_cifar100",
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
    assert isinstance(target.get("verified", False), bool)
    assert 0 < target["target"] <= 1 and 0 < target["tolerance"] < 0.1
    if "storage" in cfg["strategy"]["uses"]:
        assert cfg["storage"]["policy"]["max_size"] == cfg["mem_size"]


@pytest.mark.parametrize(
    ("preset", "strategy"),
    [
        ("clb_gdumb_split_mnist", "gdumb"),
        ("clb_gss_greedy_split_mnist", "gss_greedy"),
        ("clb_scr_split_cifar10", "scr"),
        ("clb_icarl_split_cifar100", "icarl"),
    ],
)
def test_own_buffer_method_presets_say_what_clb_computes_and_whether_checked(preset, strategy):
    """continual-learning-baselines reports Avalanche's stream accuracy after the last experience."""
    from tests.conftest import compose_config

    cfg = compose_config(f"experiment={preset}")
    assert cfg.strategy.name == strategy and cfg.strategy.mem_size == cfg.mem_size
    assert cfg.reproduce.metric == "final_stream_accuracy"
    assert isinstance(cfg.reproduce.verified, bool)


def test_der_settings_follow_the_reference():

    cfg = compose_config("experiment=der_er_seq_cifar10_500")
    assert (cfg.benchmark.generator, cfg.model.name, cfg.storage.name) == (
        "SplitCIFAR10",
        "resnet18",
        "reservoir",
    )
    assert (cfg.mem_size, cfg.batch_size, cfg.batch_size_mem, cfg.strategy.train_epochs) == (500, 32, 32, 50)
    assert list(cfg.benchmark.fixed_class_order) == list(range(10))
    assert (cfg.model.nf, cfg.optimizer.lr, cfg.replay_update, cfg.protocol.name) == (
        64,
        0.1,
        "iteration",
        "offline",
    )


@pytest.mark.parametrize("preset", [p for p in PRESETS if p.startswith("der_er_")])
def test_der_presets_run_stream_reservoir_er_with_an_unverified_target(preset):
    from tests.conftest import compose_config

    cfg = compose_config(f"experiment={preset}")
    assert (cfg.replay_update, cfg.storage.name) == ("iteration", "reservoir")
    assert cfg.reproduce.metric == "final_average_accuracy" and cfg.reproduce.verified is False


@pytest.mark.parametrize(
    ("preset", "benchmark", "mem_size", "target"),
    [
        ("clb_online_replay_split_mnist", "split_mnist", 1000, 0.92),
        ("clb_online_replay_split_cifar10", "split_cifar10", 1000, 0.50),
        ("clb_online_replay_split_cifar100", "split_cifar100", 10000, 0.21),
    ],
)
def test_online_replay_presets_follow_continual_learning_baselines(preset, benchmark, mem_size, target):
    from tests.conftest import compose_config

    cfg = compose_config(f"experiment={preset}")
    assert (cfg.protocol.name, cfg.protocol.experience_size, cfg.replay_update) == (
        "online",
        10,
        "experience",
    )
    assert (cfg.benchmark.name, cfg.storage.name, cfg.mem_size) == (benchmark, "class_balanced", mem_size)
    assert (cfg.batch_size, cfg.batch_size_mem, cfg.strategy.train_epochs, cfg.optimizer.lr) == (
        10,
        10,
        1,
        0.1,
    )
    assert cfg.reproduce.metric == "final_stream_accuracy" and cfg.reproduce.target == target


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


def measured(out: Path, preset: str) -> float:
    return json.loads((out / preset / "seed0" / "results.json").read_text())["final_average_accuracy"]


def test_reproduce_passes_a_preset_that_reaches_its_target_on_seed_0(tmp_path, capsys):
    preset = "split_digits_reservoir_200"
    code = main([preset, "--seeds", "0", "--out", str(tmp_path)])
    shown = capsys.readouterr().out
    target = compose_config(f"experiment={preset}").reproduce
    assert abs(measured(tmp_path, preset) - target.target) <= target.tolerance
    assert code == 0 and "pass" in shown and "FAIL" not in shown


def test_reproduce_fails_a_run_far_from_its_target_and_exits_1(tmp_path, capsys):
    preset = "split_digits_class_balanced_500"
    code = main(
        [preset, "--seeds", "0", "--out", str(tmp_path), "strategy.train_epochs=1", "optimizer.lr=0.0001"]
    )
    shown = capsys.readouterr().out
    target = compose_config(f"experiment={preset}").reproduce
    assert measured(tmp_path, preset) < target.target - target.tolerance, "a run that barely learns"
    assert code == 1 and "FAIL" in shown and "pass" not in shown
    assert preset in shown and "target" in shown


@pytest.mark.parametrize(
    ("preset", "settings"),
    [
        (
            "clb_gem_permuted_mnist",  # experiments/permuted_mnist/gem.py, run by its test with n_exp 5
            {
                "strategy.patterns_per_exp": 1000,
                "strategy.memory_strength": 0.5,
                "optimizer.lr": 0.1,
                "benchmark.n_experiences": 5,
                "model.hidden_sizes": [100, 100],
                "reproduce.target": 0.93,
            },
        ),
        (
            "clb_agem_permuted_mnist",
            {
                "strategy.patterns_per_exp": 250,
                "strategy.sample_size": 256,
                "optimizer.lr": 0.1,
                "benchmark.n_experiences": 17,
                "model.hidden_sizes": [256, 256],
                "reproduce.target": 0.81,
            },
        ),
        (
            "clb_gem_split_cifar100",
            {
                "strategy.patterns_per_exp": 256,
                "optimizer.momentum": 0.9,
                "benchmark.n_experiences": 20,
                "benchmark.return_task_id": True,
                "model.nf": 20,
                "reproduce.target": 0.63,
            },
        ),
        (
            "clb_cope_split_mnist",
            {
                "mem_size": 2000,
                "strategy.embedding_size": 32,
                "protocol.experience_size": 10,
                "optimizer.lr": 0.01,
                "model.hidden_sizes": [400, 400],
                "reproduce.target": 0.93,
            },
        ),
        (
            "clb_generative_replay_split_mnist",
            {
                "strategy.replay_size": 100,
                "strategy.train_epochs": 10,
                "strategy.train_mb_size": 16,
                "optimizer.lr": 0.001,
                "strategy.generator.latent_size": 2,
                "reproduce.target": 0.75,
            },
        ),
    ],
)
def test_rehearsal_presets_follow_continual_learning_baselines(preset, settings):
    """Settings read in each experiment script and its test; every target in target_results.csv,
    reported as there: Avalanche's stream accuracy after the last experience."""
    from omegaconf import OmegaConf

    from replay_cli.config.validation import validate

    cfg = compose_config(f"experiment={preset}")
    validate(cfg)
    found = {
        key: OmegaConf.to_container(OmegaConf.create({"v": OmegaConf.select(cfg, key)}))["v"]
        for key in settings
    }
    assert found == settings
    assert cfg.strategy.train_epochs == (10 if "generative" in preset else 1)
    assert cfg.reproduce.metric == "final_stream_accuracy" and cfg.reproduce.verified is True
    assert cfg.reproduce.tolerance == 0.03
    if cfg.strategy.get("check"):  # CoPE's: online, one minibatch per mini-experience
        from hydra.utils import get_method

        get_method(cfg.strategy.check)(cfg, None)
