"""Results as data (results.json, metrics) and their views: console, W&B, figures."""
