"""Build the strategy from config and run it: the experiment loop, checkpoints and resume."""
