"""Networks built from the model group."""
