"""Run experiment presets over several seeds; print measured vs target with pass/fail per row.

    python scripts/reproduce.py der_er_seq_mnist_200 der_er_seq_mnist_500 benchmark.dataset_root=/data
    python scripts/reproduce.py split_digits_reservoir_200 --seeds 0 1 2 3 4
    python scripts/reproduce.py --list          # every preset: source, metric, target, verified

Arguments with ``=`` are Hydra overrides applied to every run. Exit code 1 when a row misses its
target; bad input (a missing dataset, a bad override) is one line and exit code 2, as with replay-run.
"""

import sys

from replay_cli.reproduce import main

if __name__ == "__main__":
    sys.exit(main())
