"""replay-cli: experience-replay experiments for continual learning, from Hydra configs to Avalanche runs."""

__version__ = "0.1.0"
