"""Multirun sweeps: the summary of every job and the preset reproductions."""
