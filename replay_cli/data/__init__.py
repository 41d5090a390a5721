"""Benchmarks and datasets: what is trained and evaluated on, and how it is loaded."""
