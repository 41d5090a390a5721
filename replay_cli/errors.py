"""Turn every expected failure into one line that names the key and what is allowed.

Researchers type overrides by hand all day; a typo must cost them one glance, not a traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

TRACEBACK_ENV = "HYDRA_FULL_ERROR"
EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 130  # Ctrl-C; a SIGTERM'd run exits 128 + 15 = 143
# How a run ended (results.json "status") -> the exit status of the command: the one mapping used by
# replay-run, sweeps, scripts/reproduce.py and W&B's exit code.
EXIT_BY_STATUS = {"completed": 0, "failed": EXIT_RUN_FAILED, "interrupted": EXIT_INTERRUPTED}


def exit_status_of(status: str) -> int:
    """The exit status for a results.json ``status`` (anything unknown, e.g. a dead ``running``: 1)."""
    return EXIT_BY_STATUS.get(status, EXIT_RUN_FAILED)


def sweep_exit_status(statuses: Iterable[str]) -> int:
    """A sweep exits 0 only when every job completed, 1 otherwise (each job's reason is in its row)."""
    return 0 if all(exit_status_of(s) == 0 for s in statuses) else EXIT_RUN_FAILED


class ConfigError(ValueError):
    """A config value that cannot work: raised before any training starts."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={_show(value)} is invalid: expected {allowed}")


class UsageError(RuntimeError):
    """Bad input that is not a single config value (paths, missing data, ...)."""


class RunFailed(RuntimeError):
    """Training started and broke; the message says where the partial results are."""


class Interruption(KeyboardInterrupt):
    """Raised by the SIGTERM handler, carrying the exit status a signal-killed process would have."""

    def __init__(self, exit_status: int):
        super().__init__()
        self.exit_status = exit_status


class JobEnded(BaseException):
    """Carries a job's error out of Hydra's job runner untouched. Hydra logs "Error executing job"
    for any ``Exception`` a task raises; the command reports its own one line instead."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


class RunInterrupted(RunFailed):
    """Ctrl-C or SIGTERM (what SLURM sends before preemption): results kept, resume command printed."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if value == "" or " " in value else value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def closest(word: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean X?)' hint, or '' when nothing is close."""
    match = difflib.get_close_matches(word, list(candidates), n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def one_line(error: BaseException) -> str:
    """The message a user sees for ``error``: one line, no traceback."""
    from hydra.errors import InstantiationException, MissingConfigException, OverrideParseException

    if isinstance(error, JobEnded):
        return one_line(error.error)
    ours = _first_of(error, (ConfigError, UsageError))
    if ours is not None:
        return str(ours)
    if isinstance(error, InstantiationException) and error.__cause__ is not None:
        return one_line(error.__cause__)  # "Error in call to target 'x':" says nothing; the cause does
    if _is_validation_error(error):
        return _validation_error(error)
    if isinstance(error, OSError) and error.filename:
        return f"cannot write or read {error.filename}: {error.strerror}"
    if isinstance(error, MissingConfigException):
        return _missing_option(error)
    if isinstance(error, OverrideParseException):
        return f"could not parse override: {_first_line(error)}"
    cause = _root_cause(error)
    if cause is not error and type(cause).__module__.startswith("omegaconf"):
        return _omegaconf_error(cause, error)
    return _first_line(error)


def _is_validation_error(error: BaseException) -> bool:
    return type(error).__name__ == "ValidationError" and callable(getattr(error, "errors", None))


def _validation_error(error: Any) -> str:
    """pydantic's ValidationError (what W&B's settings raise): the field and W&B's own reason."""
    try:
        problems = error.errors()
    except Exception:
        return _first_line(error)
    shown = [f"{'.'.join(map(str, p.get('loc', ()))) or 'value'}: {p.get('msg', '')}" for p in problems]
    return "; ".join(shown) or _first_line(error)


def _missing_option(error: Any) -> str:
    group = os.path.dirname(error.missing_cfg_file or "") or "config"
    name = os.path.basename(error.missing_cfg_file or "")
    options = sorted(o for o in (error.options or []) if not o.startswith("_"))
    if not options:
        return _first_line(error)
    return f"{group}={name} is not an option{closest(name, options)}; choose one of: {', '.join(options)}"


def _omegaconf_error(cause: BaseException, wrapper: BaseException) -> str:
    key = getattr(cause, "full_key", None) or ""
    text = str(wrapper)
    not_in_struct = re.search(r"Could not override '([^']+)'", text) or re.search(
        r"Key '([^']+)' is not in struct", str(cause)
    )
    if not_in_struct:
        bad = not_in_struct.group(1)
        return f"{bad} is not a config key; list the keys with: replay-run --cfg job"
    message = _first_line(cause)
    return f"{key}: {message}" if key else message


def _first_of(error: BaseException | None, kinds: tuple[type, ...]) -> BaseException | None:
    """The first error of ``kinds`` along the cause chain (Hydra wraps what builders raise)."""
    while error is not None and not isinstance(error, kinds):
        error = error.__cause__
    return error


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


ONE_LINE_ENV = "REPLAY_CLI_ONE_LINE_ERRORS"


def one_line_errors_enabled() -> bool:
    """True inside :func:`reported_as_one_line` (also in launcher worker processes: it is an env var)."""
    return os.environ.get(ONE_LINE_ENV) == "1"


def exit_code(error: BaseException) -> int:
    """Bad input 2, a run that broke 1, an interrupted run 130 (Ctrl-C) or 143 (SIGTERM)."""
    if isinstance(error, JobEnded):
        return exit_code(error.error)
    if isinstance(error, (RunInterrupted, Interruption)):
        return error.exit_status
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_RUN_FAILED if isinstance(error, RunFailed) else EXIT_BAD_INPUT


def report(error: BaseException, prog: str = "replay-run") -> None:
    print(f"{prog}: error: {one_line(error)}", file=sys.stderr)


@contextmanager
def reported_as_one_line(prog: str = "replay-run") -> Iterator[None]:
    """Run the CLI ``prog`` so that failures print one line and exit non-zero.

    Setting ``HYDRA_FULL_ERROR=1`` yourself keeps the full traceback for debugging.
    """
    if os.environ.get(TRACEBACK_ENV) == "1":
        yield
        return
    os.environ[TRACEBACK_ENV] = "1"  # let Hydra re-raise instead of printing its own report
    os.environ[ONE_LINE_ENV] = "1"
    try:
        yield
    except BrokenPipeError:  # `replay-run --help | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except JobEnded as ended:
        if isinstance(ended.error, KeyboardInterrupt):
            print(f"{prog}: interrupted", file=sys.stderr)
        else:
            report(ended.error, prog)
        sys.exit(exit_code(ended))
    except KeyboardInterrupt as interruption:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(exit_code(interruption))
    except Exception as error:
        report(error, prog)
        sys.exit(exit_code(error))
    finally:
        os.environ.pop(TRACEBACK_ENV, None)
        os.environ.pop(ONE_LINE_ENV, None)
