"""The ``replay-compare`` command: argparse, not Hydra, so ``--help`` answers at once and paths and
globs are typed as in any shell tool."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from replay_cli.compare.comparison import DEFAULT_ALPHA, DEFAULT_METRIC, METRICS
from replay_cli.compare.runs import Run
from replay_cli.compare.stats import TESTS
from replay_cli.compare.tables import FORMATS
from replay_cli.errors import UsageError, reported_as_one_line
from replay_cli.reporting.results import RESULTS_FILE

PROG = "replay-compare"


class _Parser(argparse.ArgumentParser):
    """Bad arguments end like every other bad input: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    cli = _Parser(
        prog=PROG,
        description="Compare runs and sweeps: group runs by the config keys they varied, aggregate over "
        "seeds, print a table, write figures and an HTML report next to the runs.",
        epilog="example: replay-compare outputs/multirun/2025-01-31/12-00-00-000000 --format markdown",
    )
    cli.add_argument(
        "paths", nargs="+", metavar="PATH", help="sweep dirs, run dirs, results.json files or globs"
    )
    cli.add_argument(
        "--by",
        metavar="KEYS",
        type=_keys,
        help="comma-separated config keys to group by (default: the swept keys but seed)",
    )
    cli.add_argument(
        "--metric",
        default=DEFAULT_METRIC,
        choices=METRICS,
        help="sort the groups by this metric and test it against the baseline",
    )
    cli.add_argument(
        "--baseline",
        metavar="KEY=VALUE[,...]",
        type=_assignments("storage=reservoir"),
        help="the group every other is tested against, among groups equal in the other keys, e.g. "
        "storage=reservoir (default: the best group at each memory size)",
    )
    cli.add_argument(
        "--budget",
        metavar="KEY=VALUE[,...]",
        type=_assignments("flops=2G"),
        help="keep only the groups whose mean cost is within the budget: flops=2e9 (training FLOPs), "
        "buffer_bytes=64Ki (largest buffer); suffixes k M G T P (x1000) or Ki Mi Gi (x1024)",
    )
    cli.add_argument(
        "--test",
        default="t",
        choices=TESTS,
        help="t: paired t-test over shared seeds (Welch, unpaired, otherwise); wilcoxon: Wilcoxon "
        "signed-rank (Mann-Whitney U, unpaired, otherwise); the test column says which ran and why. "
        "Default: t",
    )
    cli.add_argument(
        "--alpha",
        default=DEFAULT_ALPHA,
        type=float,
        help=f"mark differences with p < ALPHA as significant (default: {DEFAULT_ALPHA})",
    )
    cli.add_argument(
        "--select-by",
        metavar="METRIC",
        help="per value of the --within keys, keep the configuration with the best mean of this validation "
        "metric (e.g. validation.final_average_accuracy) and report its test metrics, with the "
        "replay-run line for final runs over new seeds",
    )
    cli.add_argument(
        "--within",
        metavar="KEYS",
        type=_keys,
        help="comma-separated config keys: one configuration is chosen per value of them "
        "(default: strategy,storage)",
    )
    cli.add_argument(
        "--select-on-test",
        action="store_true",
        help="allow a test metric in --select-by (optimistic: the report says so)",
    )
    cli.add_argument("--format", default="table", choices=FORMATS, help="what to print (default: table)")
    cli.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where to write tables, figures and report.html (default: <sweep>/compare)",
    )
    cli.add_argument("--no-figures", action="store_true", help="write only the table files (faster)")
    cli.add_argument(
        "--wandb",
        action="store_true",
        help="also log the table and figures as one W&B run in the sweep's group (offline without a key)",
    )
    cli.add_argument(
        "--wandb-project", default="replay-cli", metavar="NAME", help="W&B project (default: replay-cli)"
    )
    cli.add_argument("--wandb-entity", metavar="NAME", help="W&B user or team (default: yours)")
    cli.add_argument(
        "--wandb-group", metavar="NAME", help="W&B group (default: the sweep's, as replay-run uses)"
    )
    return cli


def _keys(text: str) -> list[str]:
    keys = [key.strip() for key in text.split(",") if key.strip()]
    if not keys:
        raise argparse.ArgumentTypeError("expected comma-separated config keys, e.g. storage,mem_size")
    return keys


def _assignments(example: str) -> Callable[[str], dict[str, str]]:
    """A parser of ``KEY=VALUE[,...]`` whose error shows ``example``; a key given twice is refused
    (which value was meant is anyone's guess)."""

    def parse(text: str) -> dict[str, str]:
        pairs = [part.partition("=") for part in text.split(",") if part.strip()]
        if not pairs or any(not key.strip() or not sep or not value.strip() for key, sep, value in pairs):
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE pairs, e.g. {example}")
        keys = [key.strip() for key, _, _ in pairs]
        twice = next((key for key in keys if keys.count(key) > 1), None)
        if twice is not None:
            raise argparse.ArgumentTypeError(f"{twice} is given twice in {text}; give each key once")
        return {key.strip(): value.strip() for key, _, value in pairs}

    return parse


def main(argv: Sequence[str] | None = None) -> None:
    with reported_as_one_line(PROG):
        run(parser().parse_args(argv))


def run(args: argparse.Namespace) -> None:
    from replay_cli.compare.budget import parse_budget
    from replay_cli.compare.comparison import compare
    from replay_cli.compare.files import write_outputs
    from replay_cli.compare.tables import render

    if args.within is not None and args.select_by is None:
        raise UsageError("--within needs --select-by METRIC (the metric that chooses within them)")
    if args.select_on_test and args.select_by is None:
        raise UsageError("--select-on-test needs --select-by METRIC (it allows a test metric there)")
    budget = parse_budget(args.budget or {})
    comparison = compare(
        args.paths,
        args.by,
        args.metric,
        baseline=args.baseline,
        test=args.test,
        alpha=args.alpha,
        select_by=args.select_by,
        within=args.within,
        select_on_test=args.select_on_test,
        budget=budget,
    )
    warning = schema_warning(comparison.runs)
    if warning:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    sys.stdout.write(render(comparison, args.format))
    if args.format not in ("table", "markdown"):  # those print the notes under the table
        for note in comparison.notes():
            print(f"{PROG}: {note}", file=sys.stderr)
    written = write_outputs(comparison, args.out or comparison.output_dir(), figures=not args.no_figures)
    shown = written.report or written.tables["markdown"]
    print(f"{PROG}: wrote {len(written.paths())} files to {written.out_dir} (open {shown})", file=sys.stderr)
    if args.wandb:
        from replay_cli.compare.wandb_upload import upload

        name = upload(comparison, written, args.wandb_project, args.wandb_entity, args.wandb_group)
        print(f"{PROG}: logged {name} to W&B", file=sys.stderr)


def schema_warning(runs: Sequence[Run]) -> str | None:
    """One line for every run whose results.json follows a schema version this replay-cli does not know
    (written by a newer one): its keys may have changed meaning, so its numbers may be misread."""
    from replay_cli.reporting.schema import unknown_version

    odd = [(run, why) for run in runs if (why := unknown_version(run.results))]
    if not odd:
        return None
    run, why = odd[0]
    others = f" and {len(odd) - 1} more" if len(odd) > 1 else ""
    return (
        f"{run.path / RESULTS_FILE}{others}: {why}; their numbers may be misread "
        "(upgrade replay-cli to read them)"
    )


if __name__ == "__main__":
    main()
