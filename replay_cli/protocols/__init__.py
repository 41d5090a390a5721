"""Protocols: how the training stream is cut into training steps, each followed by an evaluation."""
