"""Can the buffer serve every group its policy balances over? Fixed shares below one sample are
refused from the config alone; an adaptive split that must leave groups out, which only the built
benchmark tells, runs with one warning line."""

from __future__ import annotations

import sys
from typing import Any

from omegaconf import DictConfig

from replay_cli.errors import ConfigError, UsageError

# Balanced policies (by the class name of ``storage.policy._target_``): the group they share the
# buffer over, and the key that fixes the number of shares when ``adaptive_size`` is false.
_FIXED_SHARES = {
    "ClassBalancedBuffer": ("class", "total_num_classes"),
    "ExperienceBalancedBuffer": ("experience", "num_experiences"),
}


def _policy_kind(storage: DictConfig) -> str:
    return str(storage.policy._target_).rsplit(".", 1)[-1]


def check_fixed_shares(storage: DictConfig, mem_size: int) -> None:
    """Raise :class:`UsageError` when ``adaptive_size=false`` splits ``mem_size`` into more fixed
    shares than it has samples: some groups would get none, and the run would be fine-tuning."""
    kind, policy = _policy_kind(storage), storage.policy
    if kind not in _FIXED_SHARES or policy.get("adaptive_size") is not False:
        return
    group, key = _FIXED_SHARES[kind]
    shares = policy.get(key)
    if shares is not None and mem_size < shares:
        raise UsageError(
            f"mem_size={mem_size} with storage.policy.{key}={shares} (adaptive_size=false) gives each "
            f"{group} {mem_size // shares} samples: set mem_size >= {shares} or "
            "storage.policy.adaptive_size=true"
        )


def warn_unserved_groups(
    storage: DictConfig, mem_size: int, benchmark: Any, mini_experiences: int | None = None
) -> str | None:
    """The one warning line (also printed to stderr) when ``mem_size`` is smaller than the number of
    classes, experiences or tasks of ``benchmark`` that the policy shares the buffer over; None when
    every group can keep a sample (reservoir sampling has no groups). ``mini_experiences``: under
    ``protocol=online``, how many mini-experiences the stream is cut into; the ReplayPlugin updates
    the policy once per mini-experience, so each is an experience group.

    Raises :class:`ConfigError` when fixed experience shares (``adaptive_size=false``) are fewer
    than the mini-experiences: each would get its share and the buffer would outgrow ``mem_size``."""
    kind = _policy_kind(storage)
    group = _FIXED_SHARES[kind][0] if kind in _FIXED_SHARES else storage.policy.get("groupby")
    if (kind not in _FIXED_SHARES and kind != "ParametricBuffer") or group is None:
        return None
    groups = {
        "class": benchmark.num_classes,
        "experience": mini_experiences or benchmark.n_experiences,
        "task": benchmark.n_tasks,
    }
    shares = storage.policy.get("num_experiences")
    fixed = kind == "ExperienceBalancedBuffer" and storage.policy.get("adaptive_size") is False
    if fixed and mini_experiences and shares < mini_experiences:
        raise ConfigError(
            "storage.policy.num_experiences",
            shares,
            f"an integer >= {mini_experiences} with protocol=online and adaptive_size=false (each of the "
            f"{mini_experiences} mini-experiences is an experience group with a fixed share)",
        )
    if mem_size >= groups[group]:
        return None
    named = "mini-experience" if group == "experience" and mini_experiences else group
    line = (
        f"replay-run: warning: mem_size={mem_size} is smaller than the {groups[group]} {named} groups of "
        f"{benchmark.name}: storage={storage.name} keeps no sample of {groups[group] - mem_size} of them "
        "once all are seen"
    )
    print(line, file=sys.stderr)
    return line
