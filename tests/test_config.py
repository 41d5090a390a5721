"""Every group option composes and validates; defaults say what the product promises."""

from pathlib import Path

import pytest

from replay_cli.cli import config_dir
from replay_cli.config.validation import validate
from replay_cli.help import config_groups
from tests.conftest import compose_config

GROUPS = ["benchmark", "model", "strategy", "optimizer", "protocol", "storage"]


def options(group: str) -> list[str]:
    return config_groups(Path(config_dir()))[group]


def test_defaults_are_explicit():
    cfg = compose_config()
    assert cfg.benchmark.name == "split_digits"
    assert cfg.model.name == "mlp"
    assert cfg.strategy.name == "replay"
    assert cfg.storage.name == "experience_balanced"
    assert cfg.storage.policy._target_.endswith("ExperienceBalancedBuffer")
    assert (cfg.mem_size, cfg.batch_size, cfg.batch_size_mem, cfg.task_balanced_dataloader) == (
        500,
        32,
        32,
        False,
    )


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes_and_validates(group):
    assert options(group), f"no options in conf/{group}"
    for option in options(group):
        cfg = compose_config(f"{group}={option}")
        validate(cfg)
        assert cfg[group].name == option


def test_storage_size_follows_mem_size():
    cfg = compose_config("storage=class_balanced", "mem_size=123")
    assert cfg.storage.policy.max_size == 123


def test_feature_based_policies_name_the_model_layer():
    for option in ("herding", "closest_to_center"):
        cfg = compose_config(f"storage={option}", "storage.layer_name=classifier")
        assert cfg.storage.policy.selection_strategy.layer_name == "classifier"
