"""``python -m replay_cli.compare``: the same entry point as the ``replay-compare`` console script."""

from replay_cli.compare.cli import main

main()
