"""Storage policies: which samples the replay buffer keeps (Avalanche's ``ExemplarsBuffer`` family)."""
