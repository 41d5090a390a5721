"""Experiment presets: every one composes through the console script, carries its reproduction
target, and the embedded split_digits presets reach theirs."""

import json
from pathlib import Path

import pytest
import yaml

from replay_cli.cli import config_dir
from replay_cli.keys import HEADLINE_METRICS
from replay_cli.reproduce import main, reproduce
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
        "der_er_seq_tinyimg_200",
        "der_er_seq_tinyimg_500",
        "mai_er_core50_nc_1k",
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
    assert 0 < target["tolerance"] < 0.1
    if target["target"] is None:  # settings from a source that gives no figure: never verified
        assert target["verified"] is False
    else:
        assert 0 < target["target"] <= 1
    for metric, value in (target.get("also") or {}).items():
        assert metric in HEADLINE_METRICS and 0 < value <= 1
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


# continual-learning-baselines: each preset against tests/target_results.csv and its experiment script
# (protocol: online where the script cuts split_online_stream mini-experiences of 10 samples;
# normalize: false where the script feeds ToTensor alone or no transform)
CLB = {
    "clb_er_ace_split_cifar10": ("offline", True, 0.45),
    "clb_er_aml_split_cifar10": ("offline", True, 0.47),
    "clb_gdumb_split_mnist": ("offline", True, 0.97),
    "clb_gss_greedy_split_mnist": ("offline", True, 0.78),
    "clb_icarl_split_cifar100": ("offline", False, 0.48),
    "clb_mir_permuted_mnist": ("online", False, 0.80),
    "clb_mir_split_cifar10": ("online", False, 0.46),
    "clb_mir_split_mnist": ("online", False, 0.87),
    "clb_online_replay_split_cifar10": ("online", True, 0.50),
    "clb_online_replay_split_cifar100": ("online", True, 0.21),
    "clb_online_replay_split_mnist": ("online", True, 0.92),
    "clb_replay_split_cifar100": ("offline", True, 0.32),
    "clb_scr_split_cifar10": ("online", False, 0.36),
}


def test_every_clb_preset_is_checked():
    checked = {*CLB, *(preset for preset, _ in REHEARSAL_PRESETS)}
    assert sorted(checked) == [p for p in PRESETS if p.startswith("clb_")]


@pytest.mark.parametrize("preset", sorted(CLB))
def test_clb_presets_follow_the_source_and_its_target_file(preset):
    protocol, normalize, target = CLB[preset]
    cfg = compose_config(f"experiment={preset}")
    assert cfg.protocol.name == protocol
    if protocol == "online":
        assert cfg.protocol.experience_size == 10
    assert cfg.benchmark.normalize is normalize
    assert cfg.reproduce.target == target and cfg.reproduce.verified is True
    assert cfg.reproduce.metric == "final_stream_accuracy"  # the source's final eval(test_stream)
    assert "target_results.csv" in cfg.reproduce.source


def test_der_seq_mnist_presets_follow_mammoths_inputs_and_initialisation():
    for preset in ("der_er_seq_mnist_200", "der_er_seq_mnist_500"):
        cfg = compose_config(f"experiment={preset}")
        assert (cfg.benchmark.normalize, cfg.model.init) == (False, "xavier")
        assert list(cfg.model.hidden_sizes) == [100, 100]


@pytest.mark.parametrize(
    ("size", "lr", "class_il", "task_il"), [(200, 0.1, 0.0849, 0.3817), (500, 0.03, 0.0999, 0.4864)]
)
def test_der_seq_tinyimg_presets_follow_mammoths_best_args(size, lr, class_il, task_il):
    cfg = compose_config(f"experiment=der_er_seq_tinyimg_{size}")
    assert (cfg.benchmark.name, cfg.benchmark.n_experiences, cfg.model.name, cfg.model.nf) == (
        "split_tiny_imagenet",
        10,
        "resnet18",
        64,
    )
    assert list(cfg.benchmark.fixed_class_order) == list(range(200))
    assert (cfg.optimizer.lr, cfg.optimizer.momentum, cfg.strategy.train_epochs) == (lr, 0.0, 100)
    assert (cfg.mem_size, cfg.batch_size, cfg.batch_size_mem, cfg.replay_update) == (
        size,
        32,
        32,
        "iteration",
    )
    assert (cfg.reproduce.target, cfg.reproduce.also.task_il_final_average_accuracy) == (class_il, task_il)
    assert cfg.reproduce.verified is False


@pytest.mark.slow
def test_core50_preset_runs_and_reports_without_a_verdict(tmp_path, capsys):
    """Mai et al.'s ER on CORe50-NC on tiny files: every step runs, the row has no target and passes."""
    from tests.tiny_datasets import write_core50

    data = write_core50(tmp_path / "data", scenarios=("nc",))
    overrides = [f"benchmark.dataset_root={data}", "benchmark.mini=true", "model.nf=4", "logger=none"]
    code = main(["mai_er_core50_nc_1k", "--seeds", "0", "--out", str(tmp_path / "out"), *overrides])
    shown = capsys.readouterr().out
    assert code == 0 and "no target" in shown and "FAIL" not in shown
    results = json.loads((tmp_path / "out" / "mai_er_core50_nc_1k" / "seed0" / "results.json").read_text())
    assert results["status"] == "completed" and len(results["accuracy_matrix"]) == 9
    assert (
        results["config"]["benchmark"]["scenario"] == "nc"
        and results["config"]["replay_update"] == "iteration"
    )
    assert results["buffer_composition"][-1]["size"] == 400  # every tiny training image fits in 1,000


def test_a_row_without_a_target_cannot_fail():
    from replay_cli.reproduce import Row

    row = Row("p", "final_stream_accuracy", None, 0.05, [0.1, 0.3], "a source")
    assert row.passed and row.verdict == "no target" and row.target_text == "none"
    missed = Row("p", "final_stream_accuracy", 0.5, 0.05, [0.1, 0.3], "a source")
    assert not missed.passed and "FAIL" in missed.verdict and missed.target_text == "0.5000 ± 0.0500"


def test_reproduce_lists_every_preset_with_source_metric_target_and_verified(capsys):
    assert main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(any(f" {preset} " in line for line in lines) for preset in PRESETS)
    for preset in ("clb_mir_split_mnist", "der_er_seq_tinyimg_500", "mai_er_core50_nc_1k"):
        row = next(line for line in lines if f" {preset} " in line)
        spec = compose_config(f"experiment={preset}").reproduce
        assert spec.metric in row
        assert (" yes " if spec.get("verified", False) else " no ") in row
        assert str(spec.source)[:30] in row
        assert ("none" if spec.target is None else f"{spec.target:.4f}") in row
    also = lines[next(i for i, line in enumerate(lines) if " der_er_seq_tinyimg_500 " in line) + 1]
    assert "task_il_final_average_accuracy" in also and "0.4864" in also


def test_reproduce_checks_the_also_metrics_on_the_same_runs(tmp_path):
    from replay_cli.reproduce import reproduce_rows

    rows = reproduce_rows(
        "split_digits_reservoir_200",
        [0],
        ["++reproduce.also={task_il_final_average_accuracy: 0.5}", "strategy.train_epochs=1"],
        tmp_path,
    )
    assert [r.metric for r in rows] == ["final_average_accuracy", "task_il_final_average_accuracy"]
    results = json.loads((tmp_path / "split_digits_reservoir_200" / "seed0" / "results.json").read_text())
    assert rows[0].values == [results["final_average_accuracy"]]
    assert rows[1].values == [results["task_il_final_average_accuracy"]]
    assert rows[1].target == 0.5 and rows[1].values[0] > rows[0].values[0]  # task-IL: 2 classes per task


REHEARSAL_PRESETS = [
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
]


@pytest.mark.parametrize(("preset", "settings"), REHEARSAL_PRESETS)
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
