"""scripts/bench.py in parts: workloads, the sides it times, the report."""
