"""Training and inference loops, distributed helpers, checkpoints and resume."""
