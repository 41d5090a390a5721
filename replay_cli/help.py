"""``replay-run --help``: what the command does, every config group with its options, and the composed
config (overrides included). Hydra's own help also lists every group of every installed Hydra plugin,
which costs about a second; this one reads conf/ directly and composes once."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

HEADER = """replay-run: one experience-replay experiment (Avalanche + ReplayPlugin) per command.

  replay-run storage=class_balanced mem_size=500
  replay-run -m storage=reservoir,class_balanced mem_size=100,200,500 seed=0,1,2
  replay-run resume=<run dir>
  replay-compare outputs/multirun/<date>/<time>

Flags: --cfg job (print the config and exit), -m (multirun), --hydra-help (Hydra's own options)
"""


def config_groups(conf_dir: Path) -> dict[str, list[str]]:
    """The groups under conf/ with their options (``hydra`` is the output layout, not a choice)."""
    return {
        group.name: sorted(p.stem for p in group.glob("*.yaml") if not p.stem.startswith("_"))
        for group in sorted(Path(conf_dir).iterdir())
        if group.is_dir() and group.name != "hydra"
    }


def render_help(conf_dir: str, overrides: list[str]) -> str:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=conf_dir, version_base="1.3", job_name="replay-run"):
        cfg = compose("config", overrides=overrides)
    groups = "\n".join(
        f"  {group}: {', '.join(options)}" for group, options in config_groups(Path(conf_dir)).items()
    )
    return (
        f"{HEADER}\n== Config groups (group=option) ==\n{groups}\n\n"
        f"== Config (override any key: foo.bar=value) ==\n{OmegaConf.to_yaml(cfg)}"
    )
