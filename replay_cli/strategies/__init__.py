"""Strategies: an Avalanche strategy class from ``strategy._target_``, its own arguments and plugins
from the strategy's config, the common keys it reads listed under ``uses``."""
