"""The only place the storage state adapter reads Avalanche's private buffer structure (pinned
avalanche-lib 0.6.0).

Resuming a buffer exactly needs three things Avalanche 0.6 keeps private and offers no public way
to read or set:

* a reservoir buffer's sorted random weights (``ReservoirSamplingBuffer._buffer_weights``): the next
  update keeps the samples with the largest weights among the old and the new ones, so the weights
  are part of the buffer's state;
* the number of experiences an ``ExperienceBalancedBuffer`` has seen (``_num_exps``): it names the
  next group and sets the group sizes;
* the class of one group of a ``ParametricBuffer`` (``_ParametricSingleBuffer``), which its
  ``post_adapt`` creates and no public constructor builds.

``tests/test_storage_state.py::test_the_private_buffer_parts_the_adapter_reads_are_there`` fails
loudly when an upgrade moves any of these.
"""

from __future__ import annotations

from typing import Any

PINNED_AVALANCHE = "0.6.0"


def reservoir_weights(buffer: Any) -> Any:
    """The sorted (descending) random weights of the samples of a ``ReservoirSamplingBuffer``."""
    return buffer._buffer_weights


def set_reservoir_weights(buffer: Any, weights: Any) -> None:
    buffer._buffer_weights = weights


def experiences_seen(buffer: Any) -> int:
    """How many experiences an ``ExperienceBalancedBuffer`` has been updated with."""
    return int(buffer._num_exps)


def set_experiences_seen(buffer: Any, count: int) -> None:
    buffer._num_exps = int(count)


def parametric_group_buffer(max_size: int, selection_strategy: Any) -> Any:
    """One group of a ``ParametricBuffer``, as its ``post_adapt`` builds it."""
    from avalanche.training.storage_policy import _ParametricSingleBuffer

    return _ParametricSingleBuffer(max_size, selection_strategy)


def is_parametric_group_buffer(buffer: Any) -> bool:
    from avalanche.training.storage_policy import _ParametricSingleBuffer

    return type(buffer) is _ParametricSingleBuffer
